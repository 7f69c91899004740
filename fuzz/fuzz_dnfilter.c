/* libFuzzer target for the SSLPEER filter (src/tls/dnfilter.c, pure).
 * Parses arbitrary bytes, matches the result against a fixed subject, and
 * checks the properties the rest of chand relies on:
 *   - a refused filter has a position within the text (1..chars+1);
 *   - an accepted filter's canonical text parses again to the same text.
 * Build (clang): clang -fsanitize=fuzzer,address,undefined -Iinclude
 *   -include config.h fuzz/fuzz_dnfilter.c src/tls/dnfilter.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chand/dnfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dnf_subject fz_subject;
static int fz_ready;

static void fz_init(void)
{
	static const struct {
		enum dnf_attr a;
		const char *v;
	} avas[] = {
		{ DNF_DC, "com" }, { DNF_DC, "acme" }, { DNF_C, "GB" }, { DNF_O, "Acme, Inc." },
		{ DNF_OU, "Sales" }, { DNF_OU, "EMEA" }, { DNF_L, "London" },
		{ DNF_ST, "Greater London" }, { DNF_CN, "QM2" }, { DNF_CN, "日本" },
		{ DNF_E, "qm2@acme.example" }, { DNF_UID, "Société" }, { DNF_T, "*star*" },
	};
	static const uint8_t serial[] = { 0x00, 0x4c, 0xd0, 0x49, 0xd5, 0x02, 0x5f, 0x38 };

	dnf_subject_init(&fz_subject);
	for (size_t i = 0; i < sizeof avas / sizeof avas[0]; i++)
		if (dnf_subject_add(&fz_subject, avas[i].a, avas[i].v, strlen(avas[i].v)) != 0)
			abort();
	if (dnf_subject_set_serial(&fz_subject, serial, sizeof serial) != 0)
		abort();
	fz_ready = 1;
}

static size_t fz_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnf_filter *f = NULL, *g = NULL;
	char *text, err[256], why[512];
	static char canon[4 * DNF_MAX_LEN + 64], again[4 * DNF_MAX_LEN + 64];
	size_t pos = 0, need;

	if (!fz_ready)
		fz_init();
	/* The filter is a C string: an embedded NUL simply ends it. */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dnf_parse(text, &f, &pos, err, sizeof err) != 0) {
		if (f != NULL || pos < 1 || pos > fz_chars(text) + 1 || err[0] == '\0')
			abort();
		free(text);
		return 0;
	}
	(void)dnf_match(f, &fz_subject, why, sizeof why);
	(void)dnf_match(f, &fz_subject, NULL, 0);
	need = dnf_format(f, canon, sizeof canon);
	if (need >= sizeof canon)
		abort();
	/* Canonical text may exceed 1024 bytes (escapes); re-parse only what fits. */
	if (need <= DNF_MAX_LEN) {
		if (dnf_parse(canon, &g, &pos, err, sizeof err) != 0)
			abort();
		dnf_format(g, again, sizeof again);
		if (strcmp(canon, again) != 0 || dnf_count(f) != dnf_count(g))
			abort();
		dnf_free(g);
	}
	dnf_free(f);
	free(text);
	return 0;
}
