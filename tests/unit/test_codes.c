/* The CHD catalogue (include/chand/codes.h) and the rule that every log
 * line an operator may act on carries a code: the catalogue is checked
 * row by row, and the source tree is scanned so that a log_info/warn/error
 * call with a NULL code cannot come back unnoticed. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "chand/codes.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

static const char *const code_ids[] = {
#define CHD_X_ID(id, code, text, help) #id,
	CHD_CODES(CHD_X_ID)
#undef CHD_X_ID
};

static const char *srcdir(void)
{
	const char *s = getenv("TEST_SRCDIR");

	return s != NULL && *s != '\0' ? s : TEST_SRCDIR;
}

/* The range digit a code id must fall in, from its prefix. */
static char range_of(const char *id)
{
	static const struct { const char *prefix; char digit; } map[] = {
		{ "Q_", '2' }, { "KS_", '3' }, { "TLS_", '4' }, { "CH_", '5' }, { "ADM_", '6' },
		{ "MQ_", '7' },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(id, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].digit;
	return '1';
}

Test(codes, format_and_range, .timeout = 30)
{
	size_t n;
	const struct chd_code *t = code_table(&n);

	cr_assert_eq(n, (size_t)CHD__COUNT);
	cr_assert_eq(n, sizeof(code_ids) / sizeof(code_ids[0]));
	for (size_t i = 0; i < n; i++) {
		const char *c = t[i].code;
		cr_assert_not_null(c, "row %zu (%s) has no code", i, code_ids[i]);
		cr_expect(strlen(c) == 7 && strncmp(c, "CHD", 3) == 0 && isdigit((unsigned char)c[3]) &&
		          isdigit((unsigned char)c[4]) && isdigit((unsigned char)c[5]) &&
		          isdigit((unsigned char)c[6]),
		          "%s: code '%s' is not CHDnnnn", code_ids[i], c);
		cr_expect(c[3] == range_of(code_ids[i]), "%s: code %s is outside the %cxxx range",
		          code_ids[i], c, range_of(code_ids[i]));
		cr_expect(strcmp(c + 3, "0000") != 0 && strcmp(c + 4, "000") != 0,
		          "%s: %s is not a usable number", code_ids[i], c);
	}
}

Test(codes, unique_and_ordered, .timeout = 30)
{
	size_t n;
	const struct chd_code *t = code_table(&n);

	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++)
			cr_expect(strcmp(t[i].code, t[j].code) != 0, "%s and %s share code %s",
			          code_ids[i], code_ids[j], t[i].code);
		/* explain --all lists the table in order: keep it sorted */
		if (i + 1 < n)
			cr_expect(strcmp(t[i].code, t[i + 1].code) < 0, "%s (%s) listed before %s (%s)",
			          code_ids[i], t[i].code, code_ids[i + 1], t[i + 1].code);
	}
}

Test(codes, text_and_help, .timeout = 30)
{
	size_t n;
	const struct chd_code *t = code_table(&n);

	for (size_t i = 0; i < n; i++) {
		cr_expect(t[i].text != NULL && t[i].text[0] != '\0', "%s: empty text", t[i].code);
		cr_expect(t[i].help != NULL && strlen(t[i].help) >= 20, "%s: help too short",
		          t[i].code);
		if (t[i].help != NULL && t[i].help[0] != '\0')
			cr_expect(t[i].help[strlen(t[i].help) - 1] == '.',
			          "%s: help is not a sentence ending in '.'", t[i].code);
		cr_expect(strcmp(code_text((enum chd_code_id)i), t[i].text) == 0);
		cr_expect(strcmp(code_str((enum chd_code_id)i), t[i].code) == 0);
	}
	/* released texts are quoted by docs and scripts: they never change */
	cr_expect_str_eq(code_text(CHD_TLS_SSLPEER), "SSLPEER mismatch");
	cr_expect_str_eq(code_str(CHD_TLS_SSLPEER), "CHD4005");
	cr_expect_str_eq(code_text(CHD_Q_FULL), "queue full");
	cr_expect_str_eq(code_str(CHD_Q_FULL), "CHD2002");
	cr_expect_str_eq(code_str(CHD_TLS_NO_CERT), "CHD4001");
	cr_expect_str_eq(code_str((enum chd_code_id)CHD__COUNT), "CHD0000");
}

Test(codes, lookup, .timeout = 30)
{
	size_t n;
	const struct chd_code *t = code_table(&n);
	char buf[16];

	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(code_lookup(t[i].code), &t[i], "lookup %s", t[i].code);
		cr_expect_eq(code_lookup(t[i].code + 3), &t[i], "lookup %s", t[i].code + 3);
		snprintf(buf, sizeof(buf), "chd%s", t[i].code + 3);
		cr_expect_eq(code_lookup(buf), &t[i], "lookup %s", buf);
	}
	cr_expect_eq(code_lookup("4001"), &t[CHD_TLS_NO_CERT]);
	cr_expect_null(code_lookup(NULL));
	cr_expect_null(code_lookup(""));
	cr_expect_null(code_lookup("CHD"));
	cr_expect_null(code_lookup("CHD9999"));
	cr_expect_null(code_lookup("CHD40011"));
	cr_expect_null(code_lookup("40a1"));
	cr_expect_null(code_lookup("XYZ4001"));
}

/* --- the source scan ------------------------------------------------- */

struct scan {
	char found[8192];  /* "file:line\n" of each offending call */
	int count;
	int calls;         /* calls seen, to prove the scan looked at something */
	int files;
};

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Scans one file's text for log_info( / log_warn( / log_error( whose first
 * argument is NULL (possibly after a line break). */
static void scan_text(struct scan *sc, const char *name, const char *text)
{
	static const char *const fns[] = { "log_info", "log_warn", "log_error" };

	for (const char *p = text; *p != '\0'; p++) {
		size_t len = 0;
		for (size_t k = 0; k < 3; k++)
			if (strncmp(p, fns[k], strlen(fns[k])) == 0 && p[strlen(fns[k])] == '(')
				len = strlen(fns[k]);
		if (len == 0 || (p > text && ident_char(p[-1])))
			continue;
		const char *a = p + len + 1;
		while (isspace((unsigned char)*a))
			a++;
		sc->calls++;
		if (strncmp(a, "NULL", 4) == 0 && !ident_char(a[4])) {
			const char *q = a + 4;
			while (isspace((unsigned char)*q))
				q++;
			if (*q != ',')
				continue;
			int line = 1;
			for (const char *r = text; r < p; r++)
				line += *r == '\n';
			sc->count++;
			size_t used = strlen(sc->found);
			snprintf(sc->found + used, sizeof(sc->found) - used, "%s:%d\n", name, line);
		}
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

static void scan_dir(struct scan *sc, const char *root, const char *rel)
{
	char path[4096];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	cr_assert_not_null(d = opendir(path), "cannot open %s", path);
	while ((e = readdir(d)) != NULL) {
		char sub[2048], full[4096];
		struct stat sb;
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
		snprintf(full, sizeof(full), "%s/%s", root, sub);
		if (stat(full, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			scan_dir(sc, root, sub);
			continue;
		}
		size_t l = strlen(e->d_name);
		if (l < 3 || (strcmp(e->d_name + l - 2, ".c") != 0 && strcmp(e->d_name + l - 2, ".h") != 0))
			continue;
		char *text = slurp(full);
		cr_assert_not_null(text, "cannot read %s", full);
		scan_text(sc, sub, text);
		sc->files++;
		free(text);
	}
	closedir(d);
}

Test(codes, scanner_finds_null_codes, .timeout = 30)
{
	struct scan sc = { .found = "" };

	scan_text(&sc, "x.c",
	          "void f(void)\n{\n\tlog_info(NULL, \"a\");\n\tlog_warn(code_str(CHD_Q_FULL), \"b\");\n"
	          "\tlog_error(\n\t\tNULL , \"c\");\n\tlog_debug(\"d\");\n\tmy_log_info(NULL, \"e\");\n"
	          "\tlog_warn(NULLISH, \"f\");\n}\n");
	cr_expect_eq(sc.count, 2, "found %d:\n%s", sc.count, sc.found);
	cr_expect_str_eq(sc.found, "x.c:3\nx.c:5\n");
	cr_expect_eq(sc.calls, 4);
}

Test(codes, every_log_call_has_a_code, .timeout = 30)
{
	struct scan sc = { .found = "" };

	scan_dir(&sc, srcdir(), "src");
	cr_assert_gt(sc.files, 20, "only %d source files under %s/src", sc.files, srcdir());
	cr_assert_gt(sc.calls, 50, "only %d log calls found under %s/src", sc.calls, srcdir());
	cr_expect_eq(sc.count, 0,
	             "%d log_info/log_warn/log_error call(s) with a NULL code (give each a "
	             "CHD code from include/chand/codes.h):\n%s",
	             sc.count, sc.found);
}
