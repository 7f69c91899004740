#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chand/codes.h"

static const struct chd_code codes[CHD__COUNT] = {
#define CHD_X_ROW(id, code, text, help) [CHD_##id] = { code, text, help },
	CHD_CODES(CHD_X_ROW)
#undef CHD_X_ROW
};

const char *code_str(enum chd_code_id id)
{
	return (unsigned)id < CHD__COUNT ? codes[id].code : "CHD0000";
}

const char *code_text(enum chd_code_id id)
{
	return (unsigned)id < CHD__COUNT ? codes[id].text : "unknown";
}

const struct chd_code *code_lookup(const char *code)
{
	char want[16];

	if (code == NULL)
		return NULL;
	if (strncasecmp(code, "CHD", 3) == 0)
		code += 3;
	if (strlen(code) != 4)
		return NULL;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)code[i]))
			return NULL;
	memcpy(want, "CHD", 3);
	memcpy(want + 3, code, 5);
	for (size_t i = 0; i < CHD__COUNT; i++)
		if (strcmp(codes[i].code, want) == 0)
			return &codes[i];
	return NULL;
}

const struct chd_code *code_table(size_t *count)
{
	*count = CHD__COUNT;
	return codes;
}

int code_vset(enum chd_code_id *codep, enum chd_code_id code, char *text, size_t len,
              const char *fmt, va_list ap)
{
	if (codep != NULL)
		*codep = code;
	if (text != NULL && len > 0)
		vsnprintf(text, len, fmt, ap);
	return -1;
}
