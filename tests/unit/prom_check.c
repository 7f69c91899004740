/* A strict checker of the Prometheus text exposition format (see
 * prom_check.h).  Written from the format's description: stricter than
 * Prometheus itself where chand has no reason to be loose (no
 * timestamps, no blank lines, no other comments). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_check.h"

#define PC_MAX_FAM 256
#define PC_MAX_SERIES 8192

struct pc_fam {
	char name[128];
	bool help, type, samples, closed;
	char kind[16];
};

struct pc {
	struct pc_fam fam[PC_MAX_FAM];
	size_t nfam;
	char **series;
	size_t nseries;
	char *why;
	size_t whylen;
	int line;
};

static bool pc_fail(struct pc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool pc_fail(struct pc *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->why, p->whylen, "line %d: ", p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->whylen)
		vsnprintf(p->why + n, p->whylen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static bool name_ok(const char *s, size_t n, bool colon)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static struct pc_fam *pc_family(struct pc *p, const char *name, size_t n)
{
	for (size_t i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == n && strncmp(p->fam[i].name, name, n) == 0)
			return &p->fam[i];
	if (p->nfam == PC_MAX_FAM || n >= sizeof(p->fam[0].name))
		return NULL;
	struct pc_fam *f = &p->fam[p->nfam++];
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, n);
	return f;
}

/* The family a sample name belongs to: itself, or for summaries and
 * histograms the base name. chand has neither: the name itself. */
static bool pc_comment(struct pc *p, const char *l)
{
	bool help = strncmp(l, "# HELP ", 7) == 0, type = strncmp(l, "# TYPE ", 7) == 0;
	const char *name = l + 7, *sp;
	struct pc_fam *f;

	if (!help && !type)
		return pc_fail(p, "a comment other than # HELP or # TYPE: %s", l);
	sp = strchr(name, ' ');
	if (sp == NULL)
		return pc_fail(p, "%s without a %s", help ? "HELP" : "TYPE", help ? "text" : "type");
	if (!name_ok(name, (size_t)(sp - name), true))
		return pc_fail(p, "invalid metric name in %s", l);
	f = pc_family(p, name, (size_t)(sp - name));
	if (f == NULL)
		return pc_fail(p, "too many families");
	if (f->samples)
		return pc_fail(p, "%s for %s after its samples", help ? "HELP" : "TYPE", f->name);
	if (help) {
		if (f->help)
			return pc_fail(p, "second HELP for %s", f->name);
		f->help = true;
		for (const char *c = sp + 1; *c; c++)
			if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
				return pc_fail(p, "bad escape in HELP text of %s", f->name);
			else if (*c == '\\')
				c++;
		return true;
	}
	if (f->type)
		return pc_fail(p, "second TYPE for %s", f->name);
	static const char *const kinds[] = { "counter", "gauge", "histogram", "summary", "untyped" };
	for (size_t i = 0; i < 5; i++)
		if (strcmp(sp + 1, kinds[i]) == 0) {
			f->type = true;
			snprintf(f->kind, sizeof(f->kind), "%s", kinds[i]);
			return true;
		}
	return pc_fail(p, "unknown type '%s' for %s", sp + 1, f->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool pc_sample(struct pc *p, const char *l, struct pc_fam **last)
{
	const char *c = l;
	size_t n = 0;

	while (c[n] && c[n] != '{' && c[n] != ' ')
		n++;
	if (!name_ok(c, n, true))
		return pc_fail(p, "invalid metric name: %s", l);
	struct pc_fam *f = pc_family(p, c, n);
	if (f == NULL)
		return pc_fail(p, "too many families");
	if (!f->type)
		return pc_fail(p, "sample of %s before (or without) its TYPE", f->name);
	if (f->closed || (f->samples && *last != f))
		return pc_fail(p, "samples of %s are not together", f->name);
	if (*last != NULL && *last != f)
		(*last)->closed = true;
	f->samples = true;
	*last = f;
	if (strcmp(f->kind, "counter") == 0 && (n < 6 || strncmp(c + n - 6, "_total", 6) != 0))
		return pc_fail(p, "counter %s does not end in _total", f->name);

	/* Labels: sorted copy of "name=value" pairs for the duplicate check. */
	char *labels[64];
	size_t nl = 0;
	bool ok = true;
	c += n;
	if (*c == '{') {
		c++;
		while (*c != '}') {
			size_t ln = 0;
			while (c[ln] && c[ln] != '=')
				ln++;
			if (!name_ok(c, ln, false) || (ln >= 2 && c[0] == '_' && c[1] == '_')) {
				ok = pc_fail(p, "invalid label name in %s", l);
				break;
			}
			if (c[ln] != '=' || c[ln + 1] != '"') {
				ok = pc_fail(p, "label without a quoted value in %s", l);
				break;
			}
			const char *v = c + ln + 2;
			size_t vn = 0;
			while (v[vn] && v[vn] != '"') {
				if (v[vn] == '\n') {
					ok = false;
					break;
				}
				if (v[vn] == '\\') {
					if (v[vn + 1] != '\\' && v[vn + 1] != '"' && v[vn + 1] != 'n') {
						ok = false;
						break;
					}
					vn++;
				}
				vn++;
			}
			if (!ok || v[vn] != '"') {
				ok = pc_fail(p, "bad label value in %s", l);
				break;
			}
			for (size_t i = 0; i < nl; i++)
				if (strncmp(labels[i], c, ln) == 0 && labels[i][ln] == '=') {
					ok = pc_fail(p, "label %.*s twice in %s", (int)ln, c, l);
					break;
				}
			if (!ok || nl == 64) {
				ok = ok ? pc_fail(p, "too many labels") : ok;
				break;
			}
			labels[nl++] = strndup(c, (size_t)(v + vn + 1 - c));
			c = v + vn + 1;
			if (*c == ',')
				c++;
			else if (*c != '}') {
				ok = pc_fail(p, "expected , or } in %s", l);
				break;
			}
		}
		if (ok)
			c++;
	}
	if (ok && *c != ' ')
		ok = pc_fail(p, "no space before the value in %s", l);
	if (ok) {
		char *end;
		const char *val = c + 1;
		double d = strtod(val, &end);
		bool special = strcmp(val, "NaN") == 0 || strcmp(val, "+Inf") == 0 ||
		               strcmp(val, "-Inf") == 0;
		if (!special && (end == val || *end != '\0' || isnan(d)))
			ok = pc_fail(p, "bad value (or a timestamp) in %s", l);
	}
	if (ok) {
		/* The series key: name then sorted labels. */
		qsort(labels, nl, sizeof(labels[0]), cmp_str);
		size_t klen = n + 2;
		for (size_t i = 0; i < nl; i++)
			klen += strlen(labels[i]) + 1;
		char *key = malloc(klen);
		size_t o = (size_t)snprintf(key, klen, "%.*s|", (int)n, l);
		for (size_t i = 0; i < nl; i++)
			o += (size_t)snprintf(key + o, klen - o, "%s,", labels[i]);
		for (size_t i = 0; i < p->nseries && ok; i++)
			if (strcmp(p->series[i], key) == 0)
				ok = pc_fail(p, "duplicate series %s", l);
		if (ok && p->nseries < PC_MAX_SERIES)
			p->series[p->nseries++] = key;
		else
			free(key);
	}
	for (size_t i = 0; i < nl; i++)
		free(labels[i]);
	return ok;
}

bool prom_check(const char *text, char *why, size_t whylen)
{
	struct pc *p = calloc(1, sizeof(*p));
	struct pc_fam *last = NULL;
	bool ok = true;
	size_t tl = strlen(text);

	if (p == NULL)
		return false;
	p->series = calloc(PC_MAX_SERIES, sizeof(char *));
	p->why = why;
	p->whylen = whylen;
	if (tl == 0 || text[tl - 1] != '\n') {
		ok = pc_fail(p, "the text does not end with a newline");
		tl = 0;
	}
	for (const char *l = text; ok && l < text + tl;) {
		const char *e = strchr(l, '\n');
		char *line = strndup(l, (size_t)(e - l));
		p->line++;
		if (line[0] == '\0')
			ok = pc_fail(p, "empty line");
		else if (line[0] == '#')
			ok = pc_comment(p, line);
		else
			ok = pc_sample(p, line, &last);
		free(line);
		l = e + 1;
	}
	for (size_t i = 0; i < p->nseries; i++)
		free(p->series[i]);
	free(p->series);
	free(p);
	return ok;
}

bool prom_value(const char *text, const char *series, double *out)
{
	size_t n = strlen(series);

	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ') {
			*out = strtod(l + n + 1, NULL);
			return true;
		}
	return false;
}
