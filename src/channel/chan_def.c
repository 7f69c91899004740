/* Channel definitions: defaults, attribute parsing from JSON, the checks
 * of define/alter time, the stored JSON form, CONNAME parsing and the
 * retry schedule.  Pure: no I/O. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chand/chandef.h"
#include "chand/cipherspec.h"

static int def_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int def_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code_vset(NULL, (enum chd_code_id)0, err, errlen, fmt, ap); /* the caller gives the code */
	va_end(ap);
	return -1;
}

/* ---- names ---- */

static const char *const type_names[] = { NULL, "sdr", "rcvr", "svr", "rqstr" };

const char *chan_type_name(enum chan_type t)
{
	if ((int)t >= CHT_SDR && (int)t <= CHT_RQSTR)
		return type_names[t];
	return "unknown";
}

int chan_type_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int t = CHT_SDR; t <= CHT_RQSTR; t++)
		if (strcasecmp(s, type_names[t]) == 0)
			return t;
	return -1;
}

const char *chan_sslcauth_name(enum sslcauth a)
{
	return a == SSLCAUTH_OPTIONAL ? "optional" : "required";
}

bool chan_def_initiates(const struct chan_def *d)
{
	return d->type == CHT_SDR || d->type == CHT_RQSTR ||
	       (d->type == CHT_SVR && d->conname[0] != '\0');
}

bool chan_def_sends(const struct chan_def *d)
{
	return d->type == CHT_SDR || d->type == CHT_SVR;
}

bool chan_def_triggers(const struct chan_def *d)
{
	return d->type == CHT_SDR || (d->type == CHT_SVR && d->conname[0] != '\0');
}

/* ---- defaults ---- */

void chan_def_init(struct chan_def *d, const char *name, enum chan_type t)
{
	memset(d, 0, sizeof(*d));
	if (name != NULL)
		str_copy(d->name, name, sizeof(d->name));
	d->type = t;
	d->sslcauth = SSLCAUTH_REQUIRED;
	d->batchsz = CHAN_DEF_BATCHSZ;
	d->batchint = CHAN_DEF_BATCHINT;
	d->hbint = CHAN_DEF_HBINT;
	d->discint = CHAN_DEF_DISCINT;
	d->maxmsgl = CHAN_DEF_MAXMSGL;
	d->shortrty = CHAN_DEF_SHORTRTY;
	d->shorttmr = CHAN_DEF_SHORTTMR;
	d->longrty = CHAN_DEF_LONGRTY;
	d->longtmr = CHAN_DEF_LONGTMR;
	d->seqwrap = CHAN_DEF_SEQWRAP;
}

/* ---- attribute table ---- */

enum attr_kind { AK_STR, AK_LONG };

struct attr {
	const char *key;
	enum attr_kind kind;
	size_t off;          /* offset of the field in struct chan_def */
	size_t size;         /* AK_STR: buffer size */
	long min, max;       /* AK_LONG */
};

#define ASTR(k, f) { k, AK_STR, offsetof(struct chan_def, f), sizeof(((struct chan_def *)0)->f), 0, 0 }
#define ALONG(k, f, lo, hi) { k, AK_LONG, offsetof(struct chan_def, f), 0, lo, hi }

/* type and sslcauth are words, handled apart. */
static const struct attr attrs[] = {
	ASTR("conname", conname),
	ASTR("xmitq", xmitq),
	ASTR("sslciph", sslciph),
	ASTR("certlabl", certlabl),
	ASTR("sslpeer", sslpeer),
	ALONG("batchsz", batchsz, 1, FRAME_BATCHSZ_MAX),
	ALONG("batchint", batchint, 0, CHAN_BATCHINT_MAX),
	ALONG("hbint", hbint, 0, FRAME_HBINT_MAX),
	ALONG("discint", discint, 0, CHAN_DISCINT_MAX),
	ALONG("maxmsgl", maxmsgl, 1, (long)FRAME_MAXMSGL_MAX),
	ALONG("shortrty", shortrty, 0, CHAN_RETRY_MAX),
	ALONG("shorttmr", shorttmr, 0, CHAN_RETRY_MAX),
	ALONG("longrty", longrty, 0, CHAN_RETRY_MAX),
	ALONG("longtmr", longtmr, 0, CHAN_RETRY_MAX),
	ALONG("seqwrap", seqwrap, FRAME_SEQWRAP_MIN, (long)FRAME_SEQWRAP_MAX),
	ASTR("descr", descr),
	ASTR("verify_host", verify_host),
	ALONG("keyupdate_bytes", keyupdate_bytes, 0, CHAN_KEYUPDATE_MAX),
};
#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))

_Static_assert(sizeof(long) >= 8, "keyupdate_bytes needs a 64-bit long");

/* A numeric attribute's value in its range: 0 if so, else -1 with the
 * reason (prefix: "channel NAME: " or ""). keyupdate_bytes has a gap:
 * 0 (never) or at least CHAN_KEYUPDATE_MIN. */
static int long_check(const struct attr *a, long long n, const char *prefix, char *err,
                      size_t errlen)
{
	if (a->off == offsetof(struct chan_def, keyupdate_bytes) &&
	    (n < 0 || n > a->max || (n > 0 && n < CHAN_KEYUPDATE_MIN)))
		return def_err(err, errlen, "%s%s must be 0 (never) or from %ld to %ld (got %lld)",
		               prefix, a->key, CHAN_KEYUPDATE_MIN, a->max, n);
	if (n < a->min || n > a->max)
		return def_err(err, errlen, "%s%s must be from %ld to %ld (got %lld)", prefix, a->key,
		               a->min, a->max, n);
	return 0;
}

static bool text_ok(const char *s)
{
	if (!utf8_valid((const uint8_t *)s, strlen(s)))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int chan_def_apply_json(struct chan_def *d, const json_t *obj, char *err, size_t errlen)
{
	const json_t *v;

	if (!json_is_object(obj))
		return def_err(err, errlen, "channel attributes: not a JSON object");
	if ((v = json_object_get(obj, "type")) != NULL) {
		int t = json_is_string(v) ? chan_type_parse(json_string_value(v)) : -1;
		if (t < 0)
			return def_err(err, errlen, "TYPE must be one of sdr, rcvr, svr, rqstr");
		d->type = (enum chan_type)t;
	}
	if ((v = json_object_get(obj, "sslcauth")) != NULL) {
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(s, "required") == 0)
			d->sslcauth = SSLCAUTH_REQUIRED;
		else if (strcasecmp(s, "optional") == 0)
			d->sslcauth = SSLCAUTH_OPTIONAL;
		else
			return def_err(err, errlen, "SSLCAUTH must be required or optional");
	}
	for (size_t i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];
		char *field = (char *)d + a->off;

		if ((v = json_object_get(obj, a->key)) == NULL)
			continue;
		if (a->kind == AK_STR) {
			const char *s;
			if (!json_is_string(v))
				return def_err(err, errlen, "%s must be a string", a->key);
			s = json_string_value(v);
			if (strlen(s) >= a->size)
				return def_err(err, errlen, "%s is %zu bytes long (at most %zu)", a->key,
				               strlen(s), a->size - 1);
			if (!text_ok(s))
				return def_err(err, errlen, "%s holds control characters or invalid UTF-8",
				               a->key);
			str_copy(field, s, a->size);
		} else {
			json_int_t n;
			if (!json_is_integer(v))
				return def_err(err, errlen, "%s must be an integer", a->key);
			n = json_integer_value(v);
			if (long_check(a, (long long)n, "", err, errlen) != 0)
				return -1;
			*(long *)(void *)field = (long)n;
		}
	}
	/* "no" is the default (no check), stored as "" */
	if (strcasecmp(d->verify_host, "no") == 0)
		d->verify_host[0] = '\0';
	else if (strcasecmp(d->verify_host, "yes") == 0)
		str_copy(d->verify_host, "yes", sizeof(d->verify_host));
	/* store the canonical CipherSpec name, whatever alias was given */
	if (d->sslciph[0] != '\0') {
		const struct cipherspec *cs = cs_lookup(d->sslciph);
		if (cs != NULL)
			str_copy(d->sslciph, cs->name, sizeof(d->sslciph));
	}
	return 0;
}

/* ---- validation ---- */

static bool host_ok(const char *h, bool v6);

int chan_def_validate(const struct chan_def *d, char *err, size_t errlen)
{
	char why[512];
	struct chan_addr addrs[CHAN_CONNAME_ADDRS];

	if (!name_valid(d->name, why, sizeof(why)))
		return def_err(err, errlen, "invalid channel name: %s", why);
	if (d->type < CHT_SDR || d->type > CHT_RQSTR)
		return def_err(err, errlen, "channel %s: TYPE must be one of sdr, rcvr, svr, rqstr",
		               d->name);
	if ((d->type == CHT_SDR || d->type == CHT_RQSTR) && d->conname[0] == '\0')
		return def_err(err, errlen, "channel %s: a %s channel needs CONNAME (--conname HOST:PORT)",
		               d->name, d->type == CHT_SDR ? "sender" : "requester");
	if (d->conname[0] != '\0' &&
	    chan_conname_parse(d->conname, addrs, CHAN_CONNAME_ADDRS, why, sizeof(why)) < 0)
		return def_err(err, errlen, "channel %s: CONNAME '%s': %s", d->name, d->conname, why);
	if (chan_def_sends(d) && d->xmitq[0] == '\0')
		return def_err(err, errlen, "channel %s: a %s channel needs XMITQ (--xmitq Q)", d->name,
		               d->type == CHT_SDR ? "sender" : "server");
	if (d->xmitq[0] != '\0' && !name_valid(d->xmitq, why, sizeof(why)))
		return def_err(err, errlen, "channel %s: invalid XMITQ: %s", d->name, why);
	if (cs_check(d->sslciph, why, sizeof(why)) != 0)
		return def_err(err, errlen, "channel %s: SSLCIPH: %s", d->name, why);
	if (!text_ok(d->certlabl))
		return def_err(err, errlen, "channel %s: CERTLABL holds control characters", d->name);
	if (d->sslpeer[0] != '\0') {
		struct dnf_filter *f = NULL;
		size_t pos = 0;
		/* the parser's reason names the position of the error */
		if (dnf_parse(d->sslpeer, &f, &pos, why, sizeof(why)) != 0)
			return def_err(err, errlen, "channel %s: SSLPEER: %s", d->name, why);
		dnf_free(f);
	}
	if (d->sslcauth != SSLCAUTH_REQUIRED && d->sslcauth != SSLCAUTH_OPTIONAL)
		return def_err(err, errlen, "channel %s: SSLCAUTH must be required or optional",
		               d->name);
	for (size_t i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];
		char prefix[CHAND_NAME_MAX + 16];
		long n;
		if (a->kind != AK_LONG)
			continue;
		n = *(const long *)(const void *)((const char *)d + a->off);
		snprintf(prefix, sizeof(prefix), "channel %s: ", d->name);
		if (long_check(a, n, prefix, err, errlen) != 0)
			return -1;
	}
	if (!text_ok(d->descr))
		return def_err(err, errlen, "channel %s: DESCR holds control characters", d->name);
	if (d->verify_host[0] != '\0' && strcmp(d->verify_host, "yes") != 0) {
		bool v6 = strchr(d->verify_host, ':') != NULL;
		if (!host_ok(d->verify_host, v6))
			return def_err(err, errlen, "VERIFY_HOST '%s' is not yes, no or a host name",
			               d->verify_host);
	}
	if (d->verify_host[0] != '\0' && !chan_def_initiates(d))
		return def_err(err, errlen, "VERIFY_HOST applies to the end that connects (SDR, "
		               "RQSTR, SVR with CONNAME); %s is a %s", d->name, chan_type_name(d->type));
	if (d->verify_host[0] != '\0' && d->sslciph[0] == '\0')
		return def_err(err, errlen, "VERIFY_HOST needs TLS: set SSLCIPH");
	return 0;
}

/* ---- JSON ---- */

json_t *chan_def_to_json(const struct chan_def *d)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "type", json_string(chan_type_name(d->type)));
	for (size_t i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];
		const char *field = (const char *)d + a->off;
		if (a->kind == AK_STR)
			json_object_set_new(o, a->key, json_string(field));
		else
			json_object_set_new(o, a->key, json_integer(*(const long *)(const void *)field));
		if (strcmp(a->key, "certlabl") == 0)
			json_object_set_new(o, "sslcauth", json_string(chan_sslcauth_name(d->sslcauth)));
	}
	return o;
}

int chan_def_from_text(struct chan_def *d, const char *name, const char *text, char *err,
                       size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	char why[512];
	int t;

	if (o == NULL)
		return def_err(err, errlen, "channel %s: stored definition is not JSON: %s", name, je.text);
	if (json_is_string(json_object_get(o, "type")) &&
	    strcmp(json_string_value(json_object_get(o, "type")), "mqtt") == 0) {
		/* a telemetry channel: the mqtt module's, same namespace */
		json_decref(o);
		return 1;
	}
	t = chan_type_parse(json_string_value(json_object_get(o, "type")));
	chan_def_init(d, name, t < 0 ? CHT_SDR : (enum chan_type)t);
	if (t < 0 || chan_def_apply_json(d, o, why, sizeof(why)) != 0) {
		json_decref(o);
		return def_err(err, errlen, "channel %s: stored definition is invalid: %s", name,
		               t < 0 ? "no TYPE" : why);
	}
	json_decref(o);
	return 0;
}

/* ---- CONNAME ---- */

static bool host_ok(const char *h, bool v6)
{
	size_t n = strlen(h);

	if (n == 0 || n > CHAN_HOST_MAX)
		return false;
	for (const char *p = h; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || c == '.' || c == '-' || c == '_')
			continue;
		if (v6 && (c == ':' || c == '%'))
			continue;
		return false;
	}
	return true;
}

static bool port_parse(const char *s, size_t n, int *port)
{
	char buf[8];
	long v;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)buf[i]))
			return false;
	if (!parse_long(buf, 1, 65535, &v))
		return false;
	*port = (int)v;
	return true;
}

/* One element, already trimmed, of n bytes. */
static int addr_parse(const char *s, size_t n, struct chan_addr *a, char *err, size_t errlen)
{
	char buf[CHAN_CONNAME_MAX + 1];
	const char *hs;
	size_t hn;
	bool v6 = false;

	if (n == 0)
		return def_err(err, errlen, "empty address");
	memcpy(buf, s, n);
	buf[n] = '\0';
	a->port = CHAN_DEFAULT_PORT;
	if (buf[n - 1] == ')') {
		/* HOST(PORT) */
		char *lp = strchr(buf, '(');
		if (lp == NULL || lp == buf)
			return def_err(err, errlen, "'%s': expected HOST(PORT)", buf);
		if (!port_parse(lp + 1, (size_t)(buf + n - 1 - (lp + 1)), &a->port))
			return def_err(err, errlen, "'%s': the port must be a number from 1 to 65535", buf);
		hs = buf;
		hn = (size_t)(lp - buf);
		v6 = memchr(hs, ':', hn) != NULL;
	} else if (buf[0] == '[') {
		/* [V6]:PORT or [V6] */
		char *rb = strchr(buf, ']');
		if (rb == NULL)
			return def_err(err, errlen, "'%s': missing ']'", buf);
		hs = buf + 1;
		hn = (size_t)(rb - hs);
		v6 = true;
		if (rb[1] == ':') {
			if (!port_parse(rb + 2, strlen(rb + 2), &a->port))
				return def_err(err, errlen, "'%s': the port must be a number from 1 to 65535",
				               buf);
		} else if (rb[1] != '\0') {
			return def_err(err, errlen, "'%s': expected [ADDRESS]:PORT", buf);
		}
	} else {
		char *c1 = strchr(buf, ':'), *c2 = strrchr(buf, ':');
		hs = buf;
		hn = n;
		if (c1 != NULL && c1 == c2) {
			/* HOST:PORT */
			hn = (size_t)(c1 - buf);
			if (!port_parse(c1 + 1, strlen(c1 + 1), &a->port))
				return def_err(err, errlen, "'%s': the port must be a number from 1 to 65535",
				               buf);
		} else if (c1 != NULL) {
			v6 = true; /* a bare IPv6 address: default port */
		}
	}
	if (hn == 0 || hn > CHAN_HOST_MAX)
		return def_err(err, errlen, "'%s': missing or too long host", buf);
	memcpy(a->host, hs, hn);
	a->host[hn] = '\0';
	if (!host_ok(a->host, v6))
		return def_err(err, errlen, "'%s': invalid host name '%s'", buf, a->host);
	return 0;
}

int chan_conname_parse(const char *conname, struct chan_addr *out, size_t max, char *err,
                       size_t errlen)
{
	const char *p = conname;
	size_t n = 0;

	if (conname == NULL || conname[0] == '\0')
		return def_err(err, errlen, "empty CONNAME");
	if (strlen(conname) > CHAN_CONNAME_MAX)
		return def_err(err, errlen, "longer than %d bytes", CHAN_CONNAME_MAX);
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		const char *s = p;

		while (len > 0 && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		if (n == max)
			return def_err(err, errlen, "more than %zu addresses", max);
		if (addr_parse(s, len, &out[n], err, errlen) != 0)
			return -1;
		n++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return (int)n;
}

/* ---- retry schedule ---- */

bool chan_retry_next(const struct chan_def *d, long failures, int64_t *delay_ms,
                     long *retries_left)
{
	long total = d->shortrty + d->longrty;

	if (failures < 1)
		failures = 1;
	if (failures > total) {
		*delay_ms = 0;
		*retries_left = 0;
		return false;
	}
	*delay_ms = (int64_t)(failures <= d->shortrty ? d->shorttmr : d->longtmr) * 1000;
	*retries_left = total - failures + 1;
	return true;
}
