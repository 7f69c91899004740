/* SSLPEER filter parser and matcher.  Pure: no I/O, no GnuTLS, no global
 * state, so it can be fuzzed and unit tested on its own.  The rules are
 * those of IBM MQ's SSLPEER as doc/SSLPEER.md states them; where MQ
 * is silent our choices are written in doc/SSLPEER.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/dnfilter.h"

struct dnf_elem {
	enum dnf_attr attr;
	char *lit;           /* the value without its wildcard stars, unescaped */
	size_t litlen;
	bool lead_star;      /* "*abc": suffix match */
	bool trail_star;     /* "abc*": prefix match; both: contains */
};

struct dnf_filter {
	struct dnf_elem *e;
	size_t n;
};

/* ---- attribute names ---- */

static const char *const dnf_names[DNF__COUNT] = {
	[DNF_CN] = "CN", [DNF_T] = "T", [DNF_OU] = "OU", [DNF_O] = "O", [DNF_L] = "L",
	[DNF_ST] = "ST", [DNF_C] = "C", [DNF_STREET] = "STREET", [DNF_PC] = "PC",
	[DNF_DC] = "DC", [DNF_E] = "E", [DNF_SERIALNUMBER] = "SERIALNUMBER",
	[DNF_UID] = "UID", [DNF_UNSTRUCTUREDNAME] = "UNSTRUCTUREDNAME",
	[DNF_UNSTRUCTUREDADDRESS] = "UNSTRUCTUREDADDRESS", [DNF_DNQ] = "DNQ",
};

static const struct {
	const char *name;
	enum dnf_attr attr;
} dnf_aliases[] = {
	{ "CN", DNF_CN }, { "T", DNF_T }, { "OU", DNF_OU }, { "O", DNF_O }, { "L", DNF_L },
	{ "ST", DNF_ST }, { "SP", DNF_ST }, { "S", DNF_ST }, { "C", DNF_C },
	{ "STREET", DNF_STREET }, { "PC", DNF_PC }, { "DC", DNF_DC }, { "E", DNF_E },
	{ "MAIL", DNF_E }, { "EMAIL", DNF_E }, { "EMAILADDRESS", DNF_E },
	{ "SERIALNUMBER", DNF_SERIALNUMBER }, { "UID", DNF_UID },
	{ "USERID", DNF_UID }, { "UNSTRUCTUREDNAME", DNF_UNSTRUCTUREDNAME },
	{ "UNSTRUCTUREDADDRESS", DNF_UNSTRUCTUREDADDRESS }, { "DNQ", DNF_DNQ },
};

static const struct {
	const char *oid;
	enum dnf_attr attr;
} dnf_oids[] = {
	{ "2.5.4.3", DNF_CN }, { "2.5.4.12", DNF_T }, { "2.5.4.11", DNF_OU },
	{ "2.5.4.10", DNF_O }, { "2.5.4.7", DNF_L }, { "2.5.4.8", DNF_ST }, { "2.5.4.6", DNF_C },
	{ "2.5.4.9", DNF_STREET }, { "2.5.4.17", DNF_PC },
	{ "0.9.2342.19200300.100.1.25", DNF_DC }, { "1.2.840.113549.1.9.1", DNF_E },
	{ "0.9.2342.19200300.100.1.1", DNF_UID }, { "1.2.840.113549.1.9.2", DNF_UNSTRUCTUREDNAME },
	{ "1.2.840.113549.1.9.8", DNF_UNSTRUCTUREDADDRESS }, { "2.5.4.46", DNF_DNQ },
};

static char dnf_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char dnf_upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

const char *dnf_attr_name(enum dnf_attr a)
{
	if ((unsigned)a >= DNF__COUNT)
		return "?";
	return dnf_names[a];
}

int dnf_attr_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof dnf_aliases / sizeof dnf_aliases[0]; i++) {
		const char *a = dnf_aliases[i].name;
		size_t k;

		if (strlen(a) != len)
			continue;
		for (k = 0; k < len && dnf_upper(name[k]) == a[k]; k++)
			;
		if (k == len)
			return (int)dnf_aliases[i].attr;
	}
	return -1;
}

int dnf_attr_from_oid(const char *oid)
{
	for (size_t i = 0; i < sizeof dnf_oids / sizeof dnf_oids[0]; i++)
		if (strcmp(oid, dnf_oids[i].oid) == 0)
			return (int)dnf_oids[i].attr;
	return -1;
}

/* Strict UTF-8 (no overlongs, surrogates or NUL); own copy so this file
 * links with nothing but libc (the fuzzer builds it alone). */
static bool dnf_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned long cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* ---- the certificate side ---- */

void dnf_subject_init(struct dnf_subject *s)
{
	memset(s, 0, sizeof *s);
}

int dnf_subject_add(struct dnf_subject *s, enum dnf_attr attr, const char *value, size_t len)
{
	char *v;

	if ((unsigned)attr >= DNF__COUNT || attr == DNF_SERIALNUMBER ||
	    !dnf_utf8_ok((const unsigned char *)value, len))
		return -1;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct dnf_ava *a = realloc(s->avas, cap * sizeof *a);
		if (a == NULL)
			return -1;
		s->avas = a;
		s->cap = cap;
	}
	v = malloc(len + 1);
	if (v == NULL)
		return -1;
	memcpy(v, value, len);
	v[len] = '\0';
	s->avas[s->n].attr = attr;
	s->avas[s->n].value = v;
	s->n++;
	return 0;
}

int dnf_subject_set_serial(struct dnf_subject *s, const uint8_t *bytes, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i = 0;

	/* DER integers carry a 00 in front when the top bit is set; operators
	 * copy serials with or without it, so leading zeros never count. */
	while (i < n && bytes[i] == 0)
		i++;
	if (n - i > 64)
		return -1;
	for (; i < n; i++) {
		s->serial[o++] = hex[bytes[i] >> 4];
		s->serial[o++] = hex[bytes[i] & 0xf];
	}
	s->serial[o] = '\0';
	if (s->serial[0] == '0')
		memmove(s->serial, s->serial + 1, o);
	if (s->serial[0] == '\0' && n > 0)
		strcpy(s->serial, "0");
	return 0;
}

void dnf_subject_free(struct dnf_subject *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->avas[i].value);
	free(s->avas);
	dnf_subject_init(s);
}

/* ---- parser ---- */

struct dnf_parser {
	const char *text;
	size_t n;            /* strlen(text) */
	size_t i;            /* current byte */
	size_t *errpos;
	char *err;
	size_t errlen;
};

/* 1-based character position of byte offset `at`: UTF-8 continuation
 * bytes do not start a character. */
static size_t dnf_charpos(const char *text, size_t at)
{
	size_t pos = 1;

	for (size_t i = 0; i < at && text[i] != '\0'; i++)
		if (((unsigned char)text[i] & 0xc0) != 0x80)
			pos++;
	return pos;
}

/* Every message ends in " at position N" (check-peer moves it up front). */
static int dnf_fail(struct dnf_parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dnf_fail(struct dnf_parser *p, size_t at, const char *fmt, ...)
{
	size_t pos = dnf_charpos(p->text, at);
	va_list ap;

	if (p->errpos != NULL)
		*p->errpos = pos;
	if (p->err != NULL && p->errlen > 0) {
		char msg[256];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		snprintf(p->err, p->errlen, "%s at position %zu", msg, pos);
	}
	return -1;
}

static bool dnf_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool dnf_sep(char c)
{
	return c == ',' || c == ';';
}

static bool dnf_namechar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

static int dnf_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = dnf_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void dnf_skip_blanks(struct dnf_parser *p)
{
	while (p->i < p->n && dnf_blank(p->text[p->i]))
		p->i++;
}

/* A value being collected: bytes plus, for each, whether it was written
 * escaped (an escaped star is never a wildcard, an escaped blank is never
 * trimmed). */
struct dnf_val {
	char *b;
	bool *esc;
	size_t len;
};

/* Reads one escape after the backslash at p->i; appends to v. */
static int dnf_escape(struct dnf_parser *p, struct dnf_val *v)
{
	size_t at = p->i;
	char c;
	int h1, h2;

	if (p->i + 1 >= p->n)
		return dnf_fail(p, at, "backslash at the end of the filter");
	c = p->text[p->i + 1];
	if (strchr(",;\"\\*=+<># ", c) != NULL) {
		v->b[v->len] = c;
		v->esc[v->len++] = true;
		p->i += 2;
		return 0;
	}
	/* RFC 4514 hex pairs, so DNs copied from tools that print \C3\A9 work. */
	h1 = dnf_hexval(c);
	h2 = p->i + 2 < p->n ? dnf_hexval(p->text[p->i + 2]) : -1;
	if (h1 >= 0 && h2 >= 0) {
		if (h1 == 0 && h2 == 0)
			return dnf_fail(p, at, "escaped NUL byte");
		v->b[v->len] = (char)(h1 * 16 + h2);
		v->esc[v->len++] = true;
		p->i += 3;
		return 0;
	}
	if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
		return dnf_fail(p, at, "unknown escape sequence");
	return dnf_fail(p, at, "unknown escape '\\%c'", c);
}

static int dnf_serial_norm(struct dnf_parser *p, struct dnf_elem *e, size_t at)
{
	size_t o = 0;

	for (size_t k = 0; k < e->litlen; k++) {
		char c = e->lit[k];
		if (c == ':' || c == ' ')
			continue;
		if (dnf_hexval(c) < 0)
			return dnf_fail(p, at, "SERIALNUMBER value must be hexadecimal digits "
			                       "(optionally separated by ':')");
		e->lit[o++] = dnf_lower(c);
	}
	e->lit[o] = '\0';
	e->litlen = o;
	if (o == 0 && !e->lead_star && !e->trail_star)
		return dnf_fail(p, at, "SERIALNUMBER value must be hexadecimal digits "
		                       "(optionally separated by ':')");
	/* Leading zeros never count (see dnf_subject_set_serial) unless the
	 * value is a suffix pattern, where they are significant digits. */
	if (!e->lead_star) {
		size_t z = 0;
		while (z + 1 < o && e->lit[z] == '0')
			z++;
		if (z > 0) {
			memmove(e->lit, e->lit + z, o - z + 1);
			e->litlen -= z;
		}
	}
	return 0;
}

/* Parses the value at p->i (just after '=') into e. */
static int dnf_value(struct dnf_parser *p, struct dnf_elem *e)
{
	struct dnf_val v;
	size_t vstart, keep, first = 0;
	int rc = -1;

	dnf_skip_blanks(p);
	vstart = p->i;
	/* A value is never longer than the filter, so this bounds it. */
	v.b = malloc(p->n + 1);
	v.esc = malloc(p->n + 1);
	v.len = 0;
	if (v.b == NULL || v.esc == NULL) {
		dnf_fail(p, vstart, "out of memory");
		goto out;
	}
	if (p->i < p->n && p->text[p->i] == '"') {
		p->i++;
		for (;;) {
			char c;
			if (p->i >= p->n) {
				dnf_fail(p, vstart, "unterminated quote");
				goto out;
			}
			c = p->text[p->i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (dnf_escape(p, &v) != 0)
					goto out;
				continue;
			}
			v.b[v.len] = c;
			v.esc[v.len++] = false;
			p->i++;
		}
		p->i++;
		dnf_skip_blanks(p);
		if (p->i < p->n && !dnf_sep(p->text[p->i])) {
			dnf_fail(p, p->i, "unexpected character after the closing quote "
			                  "(expected ',' or ';')");
			goto out;
		}
		keep = v.len;
	} else {
		while (p->i < p->n && !dnf_sep(p->text[p->i])) {
			char c = p->text[p->i];
			if (c == '\\') {
				if (dnf_escape(p, &v) != 0)
					goto out;
				continue;
			}
			if (c == '"') {
				dnf_fail(p, p->i, "quote inside an unquoted value "
				                  "(quote the whole value, or write \\\")");
				goto out;
			}
			v.b[v.len] = c;
			v.esc[v.len++] = false;
			p->i++;
		}
		/* Unquoted blanks at the end are layout, not value. */
		keep = v.len;
		while (keep > 0 && dnf_blank(v.b[keep - 1]) && !v.esc[keep - 1])
			keep--;
	}
	if (keep == 0) {
		dnf_fail(p, vstart, "empty value for %s", dnf_attr_name(e->attr));
		goto out;
	}
	if (!v.esc[0] && v.b[0] == '*') {
		e->lead_star = true;
		first = 1;
	}
	if (keep > first && !v.esc[keep - 1] && v.b[keep - 1] == '*') {
		e->trail_star = true;
		keep--;
	}
	if (!dnf_utf8_ok((const unsigned char *)v.b + first, keep - first)) {
		dnf_fail(p, vstart, "value of %s is not valid UTF-8", dnf_attr_name(e->attr));
		goto out;
	}
	e->litlen = keep - first;
	e->lit = malloc(e->litlen + 1);
	if (e->lit == NULL) {
		dnf_fail(p, vstart, "out of memory");
		goto out;
	}
	memcpy(e->lit, v.b + first, e->litlen);
	e->lit[e->litlen] = '\0';
	rc = 0;
	if (e->attr == DNF_SERIALNUMBER)
		rc = dnf_serial_norm(p, e, vstart);
	/* "*" alone or "**": any value (the attribute must still be there). */
	if (e->litlen == 0 && e->lead_star)
		e->trail_star = false;
out:
	free(v.b);
	free(v.esc);
	return rc;
}

static void dnf_elem_free(struct dnf_elem *e)
{
	free(e->lit);
	e->lit = NULL;
}

void dnf_free(struct dnf_filter *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		dnf_elem_free(&f->e[i]);
	free(f->e);
	free(f);
}

int dnf_parse(const char *text, struct dnf_filter **out, size_t *errpos, char *err,
              size_t errlen)
{
	struct dnf_parser p = { text, 0, 0, errpos, err, errlen };
	struct dnf_filter *f;
	size_t cap;

	*out = NULL;
	if (text == NULL)
		text = p.text = "";
	p.n = strlen(text);
	if (p.n > DNF_MAX_LEN)
		return dnf_fail(&p, DNF_MAX_LEN, "filter longer than %d bytes", DNF_MAX_LEN);
	dnf_skip_blanks(&p);
	if (p.i == p.n)
		return dnf_fail(&p, p.i, "empty filter");
	/* Each element needs at least "X=v", so n/3+1 elements at most. */
	cap = p.n / 3 + 1;
	f = calloc(1, sizeof *f);
	if (f == NULL || (f->e = calloc(cap, sizeof *f->e)) == NULL) {
		free(f);
		return dnf_fail(&p, 0, "out of memory");
	}
	for (;;) {
		struct dnf_elem *e;
		size_t nstart, nlen;
		int attr;

		dnf_skip_blanks(&p);
		nstart = p.i;
		while (p.i < p.n && dnf_namechar(text[p.i]))
			p.i++;
		nlen = p.i - nstart;
		if (nlen == 0) {
			char c = p.i < p.n ? text[p.i] : '\0';
			if (c == '\0' || dnf_sep(c))
				dnf_fail(&p, p.i, "empty element (expected ATTRIBUTE=value)");
			else if (c == '=')
				dnf_fail(&p, p.i, "missing attribute name before '='");
			else if ((unsigned char)c >= 0x21 && (unsigned char)c < 0x7f)
				dnf_fail(&p, p.i, "unexpected '%c' (expected an attribute name)", c);
			else
				dnf_fail(&p, p.i, "unexpected character (expected an attribute name)");
			goto fail;
		}
		attr = dnf_attr_lookup(text + nstart, nlen);
		if (attr < 0) {
			/* "O=Acme, Inc." is the usual way to get here: say so. */
			bool hint = f->n > 0 && (p.i >= p.n || text[p.i] != '=');
			dnf_fail(&p, nstart, "unknown attribute '%.*s'%s", (int)(nlen > 40 ? 40 : nlen),
			         text + nstart, hint ? " (a ',' or ';' inside a value must be quoted "
			                               "or escaped)" : "");
			goto fail;
		}
		if (p.i < p.n && dnf_blank(text[p.i])) {
			size_t sp = p.i;
			dnf_skip_blanks(&p);
			if (p.i < p.n && text[p.i] == '=')
				dnf_fail(&p, sp, "space before '='");
			else
				dnf_fail(&p, sp, "missing '=' after '%.*s'", (int)nlen, text + nstart);
			goto fail;
		}
		if (p.i >= p.n || text[p.i] != '=') {
			dnf_fail(&p, p.i, "missing '=' after '%.*s'", (int)nlen, text + nstart);
			goto fail;
		}
		p.i++;
		e = &f->e[f->n++];
		e->attr = (enum dnf_attr)attr;
		if (dnf_value(&p, e) != 0)
			goto fail;
		if (p.i >= p.n)
			break;
		/* dnf_value stops only at the end or at a separator. */
		p.i++;
	}
	*out = f;
	return 0;
fail:
	dnf_free(f);
	return -1;
}

size_t dnf_count(const struct dnf_filter *f)
{
	return f != NULL ? f->n : 0;
}

/* ---- formatting ---- */

struct dnf_out {
	char *buf;
	size_t len, pos;
};

static void dnf_putc(struct dnf_out *o, char c)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos] = c;
	o->pos++;
}

static void dnf_puts(struct dnf_out *o, const char *s)
{
	while (*s)
		dnf_putc(o, *s++);
}

static void dnf_puthex(struct dnf_out *o, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";

	dnf_putc(o, '\\');
	dnf_putc(o, hex[c >> 4]);
	dnf_putc(o, hex[c & 0xf]);
}

static void dnf_format_elem(struct dnf_out *o, const struct dnf_elem *e)
{
	const char *s = e->lit;
	size_t n = e->litlen;
	bool quote = false;

	dnf_puts(o, dnf_attr_name(e->attr));
	dnf_putc(o, '=');
	if (e->attr == DNF_SERIALNUMBER) {
		if (e->lead_star)
			dnf_putc(o, '*');
		for (size_t k = 0; k < n; k++)
			dnf_putc(o, dnf_upper(s[k]));
		if (e->trail_star)
			dnf_putc(o, '*');
		return;
	}
	for (size_t k = 0; k < n; k++)
		if (dnf_sep(s[k]))
			quote = true;
	if (n > 0 && (dnf_blank(s[0]) || dnf_blank(s[n - 1])))
		quote = true;
	if (quote)
		dnf_putc(o, '"');
	if (e->lead_star)
		dnf_putc(o, '*');
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];
		bool at_end = (k == 0 && !e->lead_star) || (k == n - 1 && !e->trail_star);

		if (c < 0x20 || c == 0x7f)
			dnf_puthex(o, c);
		else if (c == '\\' || c == '"' || (c == '*' && at_end)) {
			dnf_putc(o, '\\');
			dnf_putc(o, (char)c);
		} else {
			dnf_putc(o, (char)c);
		}
	}
	if (e->trail_star)
		dnf_putc(o, '*');
	if (quote)
		dnf_putc(o, '"');
}

size_t dnf_format(const struct dnf_filter *f, char *buf, size_t len)
{
	struct dnf_out o = { buf, len, 0 };

	for (size_t i = 0; f != NULL && i < f->n; i++) {
		if (i > 0)
			dnf_puts(&o, ", ");
		dnf_format_elem(&o, &f->e[i]);
	}
	if (len > 0)
		buf[o.pos < len ? o.pos : len - 1] = '\0';
	return o.pos;
}

/* ---- matching ---- */

/* ASCII case folding only: non-ASCII UTF-8 bytes compare exactly, so
 * "société" does not match "SOCIÉTÉ" (see doc/SSLPEER.md). */
static bool dnf_eq_fold(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (dnf_lower(a[k]) != dnf_lower(b[k]))
			return false;
	return true;
}

static bool dnf_value_match(const struct dnf_elem *e, const char *v)
{
	size_t vn = strlen(v), ln = e->litlen;

	if (e->lead_star && e->trail_star) {
		if (ln > vn)
			return false;
		for (size_t k = 0; k + ln <= vn; k++)
			if (dnf_eq_fold(v + k, e->lit, ln))
				return true;
		return false;
	}
	if (e->lead_star)
		return vn >= ln && dnf_eq_fold(v + vn - ln, e->lit, ln);
	if (e->trail_star)
		return vn >= ln && dnf_eq_fold(v, e->lit, ln);
	return vn == ln && dnf_eq_fold(v, e->lit, ln);
}

/* Certificate values go into log lines: control characters become '?'. */
static void dnf_put_value(struct dnf_out *o, const char *v)
{
	for (; *v; v++)
		dnf_putc(o, ((unsigned char)*v < 0x20 || *v == 0x7f) ? '?' : *v);
}

/* The filter element and a certificate value as they appear in reasons. */
static void dnf_elem_text(const struct dnf_elem *e, char *buf, size_t len)
{
	struct dnf_out o = { buf, len, 0 };

	dnf_format_elem(&o, e);
	buf[o.pos < len ? o.pos : len - 1] = '\0';
}

static void dnf_value_text(const char *v, char *buf, size_t len)
{
	struct dnf_out o = { buf, len, 0 };

	dnf_put_value(&o, v);
	buf[o.pos < len ? o.pos : len - 1] = '\0';
}

/* Writes the reason for a failed element; why may be NULL. */
static bool dnf_fail_match(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool dnf_fail_match(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return false;
}

bool dnf_match(const struct dnf_filter *f, const struct dnf_subject *s, char *why,
               size_t whylen)
{
	char ft[DNF_MAX_LEN + 64], vt[512];

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	for (size_t i = 0; i < f->n; i++) {
		const struct dnf_elem *e = &f->e[i];
		const char *an = dnf_attr_name(e->attr);
		size_t have = 0, nth = 0;
		const struct dnf_ava *cand = NULL;
		bool ok = false;

		if (e->attr == DNF_SERIALNUMBER) {
			if (s->serial[0] == '\0')
				return dnf_fail_match(why, whylen, "certificate serial number is unknown");
			if (!dnf_value_match(e, s->serial)) {
				size_t k;
				for (k = 0; s->serial[k] != '\0'; k++)
					vt[k] = dnf_upper(s->serial[k]);
				vt[k] = '\0';
				dnf_elem_text(e, ft, sizeof ft);
				return dnf_fail_match(why, whylen, "%s does not match the certificate "
				                      "serial number %s", ft, vt);
			}
			continue;
		}
		if (e->attr == DNF_OU || e->attr == DNF_DC) {
			/* Positional: the k-th OU of the filter against the k-th of
			 * the certificate, in the order the subject encodes them. */
			for (size_t j = 0; j < i; j++)
				if (f->e[j].attr == e->attr)
					nth++;
			for (size_t j = 0; j < s->n; j++) {
				if (s->avas[j].attr != e->attr)
					continue;
				if (have == nth)
					cand = &s->avas[j];
				have++;
			}
			if (have == 0)
				return dnf_fail_match(why, whylen, "certificate has no %s", an);
			dnf_elem_text(e, ft, sizeof ft);
			if (cand == NULL)
				return dnf_fail_match(why, whylen, "%s is %s number %zu but the certificate "
				                      "has only %zu %s", ft, an, nth + 1, have, an);
			if (!dnf_value_match(e, cand->value)) {
				dnf_value_text(cand->value, vt, sizeof vt);
				return dnf_fail_match(why, whylen, "%s does not match %s=%s (%s %zu)", ft, an,
				                      vt, an, nth + 1);
			}
			continue;
		}
		/* Other attributes: any of the certificate's values may match. */
		for (size_t j = 0; j < s->n && !ok; j++) {
			if (s->avas[j].attr != e->attr)
				continue;
			have++;
			cand = &s->avas[j];
			ok = dnf_value_match(e, cand->value);
		}
		if (ok)
			continue;
		if (have == 0)
			return dnf_fail_match(why, whylen, "certificate has no %s", an);
		dnf_elem_text(e, ft, sizeof ft);
		if (have == 1) {
			dnf_value_text(cand->value, vt, sizeof vt);
			return dnf_fail_match(why, whylen, "%s does not match %s=%s", ft, an, vt);
		}
		return dnf_fail_match(why, whylen, "%s does not match any of the certificate's "
		                      "%zu %s values", ft, have, an);
	}
	return true;
}
