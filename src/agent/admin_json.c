/* JSON text <-> jansson values for admin frames, built for bulk strings.
 *
 * Why not json_loadb/json_dumpb: jansson reads and writes strings one
 * character at a time through a stream layer, about 25 MB/s on the
 * machines we measured; a put or get batch of 256 1 KiB messages is
 * 350 KB of base64 each way, so jansson alone capped the queue
 * throughput below 20,000 messages/s.  This codec scans strings with
 * memchr-style loops and builds the same jansson values (objects keep
 * their member order), so everything else keeps using the jansson API.
 *
 * The grammar is RFC 8259: one value, objects, arrays, strings (every
 * escape, UTF-8 checked, no unpaired surrogates), integers (must fit
 * json_int_t), reals, true, false, null.  Duplicate keys and nesting
 * deeper than ADMIN_JSON_DEPTH are refused. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/admin.h"
#include "chand/util.h"

#define ADMIN_JSON_DEPTH 32

struct jparse {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
	char *tmp;           /* unescape buffer */
	size_t tmpcap;
};

static json_t *parse_value(struct jparse *jp, int depth);

static json_t *jfail(struct jparse *jp, const char *what)
{
	if (jp->err[0] == '\0')
		snprintf(jp->err, jp->errlen, "invalid JSON at byte %zu: %s",
		         (size_t)(jp->p - jp->start), what);
	return NULL;
}

static void skip_ws(struct jparse *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' ||
	                           *jp->p == '\r'))
		jp->p++;
}

static int hex4(const char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* True if the n bytes are plain ASCII text (the common case: base64,
 * names), checked a word at a time. */
static bool ascii_only(const char *s, size_t n)
{
	size_t i = 0;
	uint64_t acc = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)s[i];
	return (acc & 0x8080808080808080ULL) == 0;
}

/* A string starting after its opening quote. Returns the bytes in *out
 * (pointing into the input when there were no escapes, else into tmp). */
static int parse_string_raw(struct jparse *jp, const char **out, size_t *len)
{
	const char *s = jp->p, *q = s;

	/* Fast scan to the closing quote, stopping at escapes and controls. */
	while (q < jp->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
		q++;
	if (q < jp->end && *q == '"') {
		if (!ascii_only(s, (size_t)(q - s)) && !utf8_valid((const uint8_t *)s, (size_t)(q - s))) {
			jfail(jp, "string is not valid UTF-8");
			return -1;
		}
		*out = s;
		*len = (size_t)(q - s);
		jp->p = q + 1;
		return 0;
	}

	/* Slow path: unescape into tmp (never longer than the input). */
	size_t need = (size_t)(jp->end - s) + 1;
	if (jp->tmpcap < need) {
		char *t = realloc(jp->tmp, need);
		if (t == NULL) {
			jfail(jp, "out of memory");
			return -1;
		}
		jp->tmp = t;
		jp->tmpcap = need;
	}
	char *o = jp->tmp;
	const char *r = s;
	for (;;) {
		if (r >= jp->end) {
			jp->p = r;
			jfail(jp, "unterminated string");
			return -1;
		}
		unsigned char c = (unsigned char)*r;
		if (c == '"')
			break;
		if (c < 0x20) {
			jp->p = r;
			jfail(jp, "control character in string");
			return -1;
		}
		if (c != '\\') {
			*o++ = (char)c;
			r++;
			continue;
		}
		if (r + 1 >= jp->end) {
			jp->p = r;
			jfail(jp, "unterminated escape");
			return -1;
		}
		char e = r[1];
		r += 2;
		switch (e) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			int cp = r + 4 <= jp->end ? hex4(r) : -1;
			if (cp < 0) {
				jp->p = r;
				jfail(jp, "bad \\u escape");
				return -1;
			}
			r += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				int lo = r + 6 <= jp->end && r[0] == '\\' && r[1] == 'u' ? hex4(r + 2) : -1;
				if (lo < 0xdc00 || lo > 0xdfff) {
					jp->p = r;
					jfail(jp, "unpaired surrogate in \\u escape");
					return -1;
				}
				r += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				jp->p = r;
				jfail(jp, "unpaired surrogate in \\u escape");
				return -1;
			}
			o += put_utf8(o, (unsigned)cp);
			break;
		}
		default:
			jp->p = r - 1;
			jfail(jp, "bad escape");
			return -1;
		}
	}
	*len = (size_t)(o - jp->tmp);
	jp->p = r + 1;
	if (!utf8_valid((const uint8_t *)jp->tmp, *len)) {
		/* utf8_valid refuses NUL, which \u0000 may legitimately hold:
		 * check again without NUL bytes. */
		for (size_t i = 0; i < *len; i++) {
			if (jp->tmp[i] == '\0')
				continue;
			size_t k = i;
			while (k < *len && jp->tmp[k] != '\0')
				k++;
			if (!utf8_valid((const uint8_t *)jp->tmp + i, k - i)) {
				jfail(jp, "string is not valid UTF-8");
				return -1;
			}
			i = k;
		}
	}
	*out = jp->tmp;
	return 0;
}

static json_t *parse_number(struct jparse *jp)
{
	const char *s = jp->p, *q = s;
	bool real = false;
	char buf[64];

	if (q < jp->end && *q == '-')
		q++;
	if (q >= jp->end || *q < '0' || *q > '9')
		return jfail(jp, "bad number");
	if (*q == '0')
		q++;
	else
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	if (q < jp->end && *q == '.') {
		real = true;
		q++;
		if (q >= jp->end || *q < '0' || *q > '9')
			return jfail(jp, "bad number");
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < jp->end && (*q == 'e' || *q == 'E')) {
		real = true;
		q++;
		if (q < jp->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= jp->end || *q < '0' || *q > '9')
			return jfail(jp, "bad number");
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	}
	if ((size_t)(q - s) >= sizeof(buf))
		return jfail(jp, "number too long");
	memcpy(buf, s, (size_t)(q - s));
	buf[q - s] = '\0';
	jp->p = q;
	errno = 0;
	if (!real) {
		long long v = strtoll(buf, NULL, 10);
		if (errno == ERANGE)
			return jfail(jp, "integer out of range");
		return json_integer((json_int_t)v);
	}
	double d = strtod(buf, NULL);
	if (!isfinite(d))
		return jfail(jp, "number out of range");
	return json_real(d);
}

static bool lit(struct jparse *jp, const char *w, size_t n)
{
	if ((size_t)(jp->end - jp->p) >= n && memcmp(jp->p, w, n) == 0) {
		jp->p += n;
		return true;
	}
	return false;
}

static json_t *parse_object(struct jparse *jp, int depth)
{
	json_t *o = json_object();

	if (o == NULL)
		return jfail(jp, "out of memory");
	jp->p++;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
		return o;
	}
	for (;;) {
		const char *k;
		size_t klen;
		char *key;

		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != '"')
			goto bad_key;
		jp->p++;
		if (parse_string_raw(jp, &k, &klen) != 0)
			goto fail;
		if (memchr(k, '\0', klen) != NULL) {
			jfail(jp, "NUL in object key");
			goto fail;
		}
		key = strndup(k, klen);
		if (key == NULL) {
			jfail(jp, "out of memory");
			goto fail;
		}
		if (json_object_get(o, key) != NULL) {
			free(key);
			jfail(jp, "duplicate object key");
			goto fail;
		}
		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != ':') {
			free(key);
			jfail(jp, "':' expected");
			goto fail;
		}
		jp->p++;
		json_t *v = parse_value(jp, depth + 1);
		if (v == NULL) {
			free(key);
			goto fail;
		}
		int rc = json_object_set_new_nocheck(o, key, v);
		free(key);
		if (rc != 0) {
			jfail(jp, "out of memory");
			goto fail;
		}
		skip_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == '}') {
			jp->p++;
			return o;
		}
		jfail(jp, "',' or '}' expected");
		goto fail;
	}
bad_key:
	jfail(jp, "string key expected");
fail:
	json_decref(o);
	return NULL;
}

static json_t *parse_array(struct jparse *jp, int depth)
{
	json_t *a = json_array();

	if (a == NULL)
		return jfail(jp, "out of memory");
	jp->p++;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == ']') {
		jp->p++;
		return a;
	}
	for (;;) {
		json_t *v = parse_value(jp, depth + 1);
		if (v == NULL || json_array_append_new(a, v) != 0) {
			if (v != NULL)
				jfail(jp, "out of memory");
			json_decref(a);
			return NULL;
		}
		skip_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == ']') {
			jp->p++;
			return a;
		}
		json_decref(a);
		return jfail(jp, "',' or ']' expected");
	}
}

static json_t *parse_value(struct jparse *jp, int depth)
{
	if (depth > ADMIN_JSON_DEPTH)
		return jfail(jp, "nested too deeply");
	skip_ws(jp);
	if (jp->p >= jp->end)
		return jfail(jp, "unexpected end of input");
	switch (*jp->p) {
	case '{':
		return parse_object(jp, depth);
	case '[':
		return parse_array(jp, depth);
	case '"': {
		const char *s;
		size_t n;
		jp->p++;
		if (parse_string_raw(jp, &s, &n) != 0)
			return NULL;
		json_t *v = json_stringn_nocheck(s, n);
		return v != NULL ? v : jfail(jp, "out of memory");
	}
	case 't':
		if (lit(jp, "true", 4))
			return json_true();
		break;
	case 'f':
		if (lit(jp, "false", 5))
			return json_false();
		break;
	case 'n':
		if (lit(jp, "null", 4))
			return json_null();
		break;
	default:
		if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
			return parse_number(jp);
		break;
	}
	return jfail(jp, "unexpected character");
}

json_t *admin_json_load(const char *buf, size_t len, char *err, size_t errlen)
{
	struct jparse jp = { .p = buf, .end = buf + len, .start = buf, .err = err, .errlen = errlen };
	json_t *v;

	err[0] = '\0';
	v = parse_value(&jp, 0);
	if (v != NULL) {
		skip_ws(&jp);
		if (jp.p != jp.end) {
			jfail(&jp, "trailing data after the value");
			json_decref(v);
			v = NULL;
		}
	}
	free(jp.tmp);
	return v;
}

/* ---- dump ---- */

struct jbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool reserve(struct jbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void put(struct jbuf *b, const char *s, size_t n)
{
	if (reserve(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

/* True if one of the 8 bytes is a control character, '"' or '\\'
 * (the classic has-zero-byte bit trick on each test). */
static bool needs_escape8(const char *s)
{
	uint64_t w, q, bs, lt;
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

	memcpy(&w, s, 8);
	q = w ^ (ones * '"');
	bs = w ^ (ones * '\\');
	lt = w - ones * 0x20;
	return (((q - ones) & ~q) | ((bs - ones) & ~bs) | (lt & ~w)) & highs;
}

static void put_string(struct jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;

	put(b, "\"", 1);
	while (i < n) {
		size_t run = i;
		/* Eight bytes at a time while none needs escaping (base64). */
		while (run + 8 <= n && !needs_escape8(s + run))
			run += 8;
		while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
			run++;
		put(b, s + i, run - i);
		if (run == n)
			break;
		unsigned char c = (unsigned char)s[run];
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		switch (c) {
		case '"': put(b, "\\\"", 2); break;
		case '\\': put(b, "\\\\", 2); break;
		case '\n': put(b, "\\n", 2); break;
		case '\r': put(b, "\\r", 2); break;
		case '\t': put(b, "\\t", 2); break;
		default: put(b, esc, 6); break;
		}
		i = run + 1;
	}
	put(b, "\"", 1);
}

static int dump_value(struct jbuf *b, const json_t *v, int depth)
{
	char num[64];
	int n;

	if (depth > ADMIN_JSON_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m;
		bool first = true;
		put(b, "{", 1);
		json_object_foreach((json_t *)v, k, m) {
			if (!first)
				put(b, ",", 1);
			first = false;
			put_string(b, k, strlen(k));
			put(b, ":", 1);
			if (dump_value(b, m, depth + 1) != 0)
				return -1;
		}
		put(b, "}", 1);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		put(b, "[", 1);
		json_array_foreach(v, i, m) {
			if (i > 0)
				put(b, ",", 1);
			if (dump_value(b, m, depth + 1) != 0)
				return -1;
		}
		put(b, "]", 1);
		break;
	}
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		put(b, num, (size_t)n);
		break;
	case JSON_REAL:
		n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		/* Keep it a real when read back. */
		if (strpbrk(num, ".eE") == NULL && n + 2 < (int)sizeof(num)) {
			num[n++] = '.';
			num[n++] = '0';
		}
		put(b, num, (size_t)n);
		break;
	case JSON_TRUE: put(b, "true", 4); break;
	case JSON_FALSE: put(b, "false", 5); break;
	case JSON_NULL: put(b, "null", 4); break;
	}
	return b->oom ? -1 : 0;
}

int admin_json_dump(const json_t *v, char **buf, size_t *len, size_t *cap, size_t off)
{
	struct jbuf b = { .p = *buf, .len = off, .cap = *cap };

	if (dump_value(&b, v, 0) != 0) {
		*buf = b.p;
		*cap = b.cap;
		return -1;
	}
	*buf = b.p;
	*cap = b.cap;
	*len = b.len - off;
	return 0;
}
