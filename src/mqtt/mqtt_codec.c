/* MQTT packet codec (include/chand/mqtt_codec.h): fixed header, the
 * decoder of every packet type for MQTT 3.1, 3.1.1 and 5.0, v5
 * properties, UTF-8 checks, and the encoders.
 *
 * Decoding never allocates and never trusts a length: every read is
 * checked against the packet, and what is decoded are views into it.
 * Normative statements are cited as [MQTT-x.y.z-n]: 3.1.1 numbering for
 * rules of every version, 5.0 numbering for v5-only rules (marked v5). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/mqtt_codec.h"

/* ---- small helpers ---- */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Variable byte integer [MQTT-1.5.5]: 1 and *v, *used; 0 when the bytes
 * end inside it; -1 when it runs past 4 bytes or is not minimal (a
 * continued encoding ending in 0x00 encodes the same value in fewer
 * bytes, [MQTT-1.5.5-1] v5). */
static int vbi_get(const uint8_t *p, size_t n, uint32_t *v, size_t *used)
{
	uint32_t val = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (i >= n)
			return 0;
		val |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i > 0 && p[i] == 0)
				return -1;
			*v = val;
			*used = i + 1;
			return 1;
		}
	}
	return -1;
}

static size_t vbi_size(uint32_t v)
{
	return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

/* Position of the first byte that makes p[0..len) an invalid MQTT UTF-8
 * string, or len if it is valid.  ASCII runs go 8 bytes at a time. */
static size_t utf8_bad_at(const uint8_t *p, size_t len)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i], c1;

		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			/* no byte >= 0x80 and no zero byte */
			if (((w | ((w - ones) & ~w)) & highs) == 0) {
				i += 8;
				continue;
			}
		}
		if (c < 0x80) {
			if (c == 0)
				return i;                     /* U+0000 [MQTT-1.5.3-2] */
			i++;
			continue;
		}
		if (c < 0xc2)                           /* continuation, or overlong 2-byte */
			return i;
		if (c < 0xe0) {
			if (len - i < 2 || (p[i + 1] & 0xc0) != 0x80)
				return i;
			i += 2;
			continue;
		}
		if (c < 0xf0) {
			if (len - i < 3)
				return i;
			c1 = p[i + 1];
			if ((c1 & 0xc0) != 0x80 || (p[i + 2] & 0xc0) != 0x80)
				return i;
			if (c == 0xe0 && c1 < 0xa0)         /* overlong */
				return i;
			if (c == 0xed && c1 >= 0xa0)        /* surrogates [MQTT-1.5.3-1] */
				return i;
			i += 3;
			continue;
		}
		if (c < 0xf5) {
			if (len - i < 4)
				return i;
			c1 = p[i + 1];
			if ((c1 & 0xc0) != 0x80 || (p[i + 2] & 0xc0) != 0x80 ||
			    (p[i + 3] & 0xc0) != 0x80)
				return i;
			if (c == 0xf0 && c1 < 0x90)         /* overlong */
				return i;
			if (c == 0xf4 && c1 >= 0x90)        /* past U+10FFFF */
				return i;
			i += 4;
			continue;
		}
		return i;
	}
	return len;
}

bool mqtt_utf8_valid(const uint8_t *p, size_t len)
{
	return len == 0 || utf8_bad_at(p, len) == len;
}

/* Position of the first wildcard in a topic name, or len.  Eight bytes
 * at a time: a word has a '+' or '#' iff w ^ '+'x8 or w ^ '#'x8 has a
 * zero byte. */
static size_t wildcard_at(const uint8_t *p, size_t len)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	const uint64_t plus = ones * '+', hash = ones * '#';
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t w, a, b;
		memcpy(&w, p + i, 8);
		a = w ^ plus;
		b = w ^ hash;
		if ((((a - ones) & ~a) | ((b - ones) & ~b)) & highs)
			break;
	}
	for (; i < len; i++)
		if (p[i] == '+' || p[i] == '#')
			return i;
	return len;
}

/* ---- names ---- */

const char *mqtt_ptype_name(int type)
{
	static const char *const names[] = {
		NULL, "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};

	if (type < 1 || type > 15)
		return "reserved";
	return names[type];
}

const char *mqtt_reason_name(uint8_t reason)
{
	switch (reason) {
	case 0x00: return "Success";
	case 0x01: return "Granted QoS 1";
	case 0x02: return "Granted QoS 2";
	case 0x04: return "Disconnect with Will Message";
	case 0x10: return "No matching subscribers";
	case 0x11: return "No subscription existed";
	case 0x18: return "Continue authentication";
	case 0x19: return "Re-authenticate";
	case 0x80: return "Unspecified error";
	case 0x81: return "Malformed Packet";
	case 0x82: return "Protocol Error";
	case 0x83: return "Implementation specific error";
	case 0x84: return "Unsupported Protocol Version";
	case 0x85: return "Client Identifier not valid";
	case 0x86: return "Bad User Name or Password";
	case 0x87: return "Not authorized";
	case 0x88: return "Server unavailable";
	case 0x89: return "Server busy";
	case 0x8A: return "Banned";
	case 0x8B: return "Server shutting down";
	case 0x8C: return "Bad authentication method";
	case 0x8D: return "Keep Alive timeout";
	case 0x8E: return "Session taken over";
	case 0x8F: return "Topic Filter invalid";
	case 0x90: return "Topic Name invalid";
	case 0x91: return "Packet Identifier in use";
	case 0x92: return "Packet Identifier not found";
	case 0x93: return "Receive Maximum exceeded";
	case 0x94: return "Topic Alias invalid";
	case 0x95: return "Packet too large";
	case 0x96: return "Message rate too high";
	case 0x97: return "Quota exceeded";
	case 0x98: return "Administrative action";
	case 0x99: return "Payload format invalid";
	case 0x9A: return "Retain not supported";
	case 0x9B: return "QoS not supported";
	case 0x9C: return "Use another server";
	case 0x9D: return "Server moved";
	case 0x9E: return "Shared Subscriptions not supported";
	case 0x9F: return "Connection rate exceeded";
	case 0xA0: return "Maximum connect time";
	case 0xA1: return "Subscription Identifiers not supported";
	case 0xA2: return "Wildcard Subscriptions not supported";
	default: return "Unknown reason code";
	}
}

/* Reason codes each v5 packet type may carry (MQTT 5, 2.4 and each
 * packet's reason code table). */
static bool reason_ok(enum mqtt_ptype t, uint8_t rc)
{
	switch (t) {
	case MQTT_CONNACK:
		return rc == 0x00 || (rc >= 0x80 && rc <= 0x8A) || rc == 0x8C || rc == 0x90 ||
		       rc == 0x95 || rc == 0x97 || (rc >= 0x99 && rc <= 0x9D) || rc == 0x9F;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
		return rc == 0x00 || rc == 0x10 || rc == 0x80 || rc == 0x83 || rc == 0x87 ||
		       rc == 0x90 || rc == 0x91 || rc == 0x97 || rc == 0x99;
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return rc == 0x00 || rc == 0x92;
	case MQTT_SUBACK:
		return rc <= 0x02 || rc == 0x80 || rc == 0x83 || rc == 0x87 || rc == 0x8F ||
		       rc == 0x91 || rc == 0x97 || rc == 0x9E || rc == 0xA1 || rc == 0xA2;
	case MQTT_UNSUBACK:
		return rc == 0x00 || rc == 0x11 || rc == 0x80 || rc == 0x83 || rc == 0x87 ||
		       rc == 0x8F || rc == 0x91;
	case MQTT_DISCONNECT:
		return rc == 0x00 || rc == 0x04 || (rc >= 0x80 && rc <= 0x83) || rc == 0x87 ||
		       rc == 0x89 || rc == 0x8B || (rc >= 0x8D && rc <= 0x90) ||
		       (rc >= 0x93 && rc <= 0xA2);
	case MQTT_AUTH:
		return rc == 0x00 || rc == 0x18 || rc == 0x19;
	default:
		return false;
	}
}

/* ---- property table (MQTT 5, 2.2.2.2) ---- */

enum ptyp { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VBI, PT_STR, PT_BIN, PT_PAIR };

#define IN(t) (1u << (t))
#define IN_WILL 1u   /* bit 0 (no packet type 0): the will properties of CONNECT */

struct pdef {
	uint8_t type;        /* enum ptyp */
	uint32_t bit;        /* MQTT_PB_* */
	uint32_t allowed;    /* IN(...) | IN_WILL */
	const char *name;
};

#define PROP_ID_MAX 0x2A

static const struct pdef PDEF[PROP_ID_MAX + 1] = {
	[MQTT_PROP_PAYLOAD_FORMAT] = {PT_BYTE, MQTT_PB_PAYLOAD_FORMAT,
		IN(MQTT_PUBLISH) | IN_WILL, "Payload Format Indicator"},
	[MQTT_PROP_MESSAGE_EXPIRY] = {PT_U32, MQTT_PB_MESSAGE_EXPIRY,
		IN(MQTT_PUBLISH) | IN_WILL, "Message Expiry Interval"},
	[MQTT_PROP_CONTENT_TYPE] = {PT_STR, MQTT_PB_CONTENT_TYPE,
		IN(MQTT_PUBLISH) | IN_WILL, "Content Type"},
	[MQTT_PROP_RESPONSE_TOPIC] = {PT_STR, MQTT_PB_RESPONSE_TOPIC,
		IN(MQTT_PUBLISH) | IN_WILL, "Response Topic"},
	[MQTT_PROP_CORRELATION_DATA] = {PT_BIN, MQTT_PB_CORRELATION_DATA,
		IN(MQTT_PUBLISH) | IN_WILL, "Correlation Data"},
	[MQTT_PROP_SUB_ID] = {PT_VBI, MQTT_PB_SUB_ID,
		IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE), "Subscription Identifier"},
	[MQTT_PROP_SESSION_EXPIRY] = {PT_U32, MQTT_PB_SESSION_EXPIRY,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT), "Session Expiry Interval"},
	[MQTT_PROP_ASSIGNED_CLIENT_ID] = {PT_STR, MQTT_PB_ASSIGNED_CLIENT_ID,
		IN(MQTT_CONNACK), "Assigned Client Identifier"},
	[MQTT_PROP_SERVER_KEEP_ALIVE] = {PT_U16, MQTT_PB_SERVER_KEEP_ALIVE,
		IN(MQTT_CONNACK), "Server Keep Alive"},
	[MQTT_PROP_AUTH_METHOD] = {PT_STR, MQTT_PB_AUTH_METHOD,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH), "Authentication Method"},
	[MQTT_PROP_AUTH_DATA] = {PT_BIN, MQTT_PB_AUTH_DATA,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH), "Authentication Data"},
	[MQTT_PROP_REQUEST_PROBLEM_INFO] = {PT_BYTE, MQTT_PB_REQUEST_PROBLEM_INFO,
		IN(MQTT_CONNECT), "Request Problem Information"},
	[MQTT_PROP_WILL_DELAY] = {PT_U32, MQTT_PB_WILL_DELAY, IN_WILL, "Will Delay Interval"},
	[MQTT_PROP_REQUEST_RESPONSE_INFO] = {PT_BYTE, MQTT_PB_REQUEST_RESPONSE_INFO,
		IN(MQTT_CONNECT), "Request Response Information"},
	[MQTT_PROP_RESPONSE_INFO] = {PT_STR, MQTT_PB_RESPONSE_INFO,
		IN(MQTT_CONNACK), "Response Information"},
	[MQTT_PROP_SERVER_REFERENCE] = {PT_STR, MQTT_PB_SERVER_REFERENCE,
		IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT), "Server Reference"},
	[MQTT_PROP_REASON_STRING] = {PT_STR, MQTT_PB_REASON_STRING,
		IN(MQTT_CONNACK) | IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) |
		IN(MQTT_PUBCOMP) | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) | IN(MQTT_DISCONNECT) |
		IN(MQTT_AUTH), "Reason String"},
	[MQTT_PROP_RECEIVE_MAXIMUM] = {PT_U16, MQTT_PB_RECEIVE_MAXIMUM,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK), "Receive Maximum"},
	[MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = {PT_U16, MQTT_PB_TOPIC_ALIAS_MAXIMUM,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK), "Topic Alias Maximum"},
	[MQTT_PROP_TOPIC_ALIAS] = {PT_U16, MQTT_PB_TOPIC_ALIAS, IN(MQTT_PUBLISH), "Topic Alias"},
	[MQTT_PROP_MAXIMUM_QOS] = {PT_BYTE, MQTT_PB_MAXIMUM_QOS, IN(MQTT_CONNACK), "Maximum QoS"},
	[MQTT_PROP_RETAIN_AVAILABLE] = {PT_BYTE, MQTT_PB_RETAIN_AVAILABLE,
		IN(MQTT_CONNACK), "Retain Available"},
	[MQTT_PROP_USER] = {PT_PAIR, MQTT_PB_USER,
		IN_WILL | IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_PUBLISH) | IN(MQTT_PUBACK) |
		IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP) | IN(MQTT_SUBSCRIBE) |
		IN(MQTT_SUBACK) | IN(MQTT_UNSUBSCRIBE) | IN(MQTT_UNSUBACK) | IN(MQTT_DISCONNECT) |
		IN(MQTT_AUTH), "User Property"},
	[MQTT_PROP_MAXIMUM_PACKET_SIZE] = {PT_U32, MQTT_PB_MAXIMUM_PACKET_SIZE,
		IN(MQTT_CONNECT) | IN(MQTT_CONNACK), "Maximum Packet Size"},
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {PT_BYTE, MQTT_PB_WILDCARD_SUB_AVAILABLE,
		IN(MQTT_CONNACK), "Wildcard Subscription Available"},
	[MQTT_PROP_SUB_ID_AVAILABLE] = {PT_BYTE, MQTT_PB_SUB_ID_AVAILABLE,
		IN(MQTT_CONNACK), "Subscription Identifier Available"},
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = {PT_BYTE, MQTT_PB_SHARED_SUB_AVAILABLE,
		IN(MQTT_CONNACK), "Shared Subscription Available"},
};

/* One property as read off the wire, unvalidated. */
struct pval {
	uint8_t id;
	uint32_t num;
	struct mqtt_bytes a, b;
	size_t bad_at;    /* on failure: offset of the trouble */
};

/* Reads the property at *off in p[0..n): 1 and advances *off; -1 when it
 * is truncated or of an unknown identifier (v->bad_at tells where). */
static int prop_next(const uint8_t *p, size_t n, size_t *off, struct pval *v)
{
	size_t o = *off, used, l;
	uint32_t id;

	v->bad_at = o;
	if (vbi_get(p + o, n - o, &id, &used) != 1 || id > PROP_ID_MAX || PDEF[id].type == PT_NONE)
		return -1;
	v->id = (uint8_t)id;
	o += used;
	v->bad_at = o;
	switch (PDEF[id].type) {
	case PT_BYTE:
		if (n - o < 1)
			return -1;
		v->num = p[o++];
		break;
	case PT_U16:
		if (n - o < 2)
			return -1;
		v->num = get16(p + o);
		o += 2;
		break;
	case PT_U32:
		if (n - o < 4)
			return -1;
		v->num = get32(p + o);
		o += 4;
		break;
	case PT_VBI:
		if (vbi_get(p + o, n - o, &v->num, &used) != 1)
			return -1;
		o += used;
		break;
	case PT_STR:
	case PT_BIN:
	case PT_PAIR:
		if (n - o < 2)
			return -1;
		l = get16(p + o);
		if (n - o - 2 < l)
			return -1;
		v->a.p = p + o + 2;
		v->a.len = l;
		o += 2 + l;
		if (PDEF[id].type == PT_PAIR) {
			v->bad_at = o;
			if (n - o < 2)
				return -1;
			l = get16(p + o);
			if (n - o - 2 < l)
				return -1;
			v->b.p = p + o + 2;
			v->b.len = l;
			o += 2 + l;
		}
		break;
	default:
		return -1;
	}
	*off = o;
	return 1;
}

bool mqtt_user_next(const struct mqtt_props *props, size_t *pos, struct mqtt_bytes *key,
                    struct mqtt_bytes *value)
{
	struct pval v;

	if (!props->raw.p)
		return false;
	while (*pos < props->raw.len) {
		if (prop_next(props->raw.p, props->raw.len, pos, &v) != 1) {
			*pos = props->raw.len;
			return false;
		}
		if (v.id == MQTT_PROP_USER) {
			*key = v.a;
			*value = v.b;
			return true;
		}
	}
	return false;
}

/* ---- decoding ---- */

struct rd {
	const uint8_t *p;
	size_t n, off;            /* n: end of what may be read now */
	const char *pkt;          /* packet name, for messages */
	struct mqtt_error *err;
	enum mqtt_ver ver;
	bool client;              /* decoding what a server sends */
};

static int rd_fail(struct rd *r, uint8_t reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int rd_fail(struct rd *r, uint8_t reason, const char *fmt, ...)
{
	char *t = r->err->text;
	size_t cap = sizeof(r->err->text);
	int k;
	va_list ap;

	r->err->reason = reason;
	k = snprintf(t, cap, "%s: ", r->pkt);
	if (k < 0 || (size_t)k >= cap)
		return -1;
	va_start(ap, fmt);
	vsnprintf(t + k, cap - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

static int rd_need(struct rd *r, const char *field, size_t k)
{
	if (k > r->n - r->off)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "%s at offset %zu: truncated (needs %zu bytes, %zu left)", field, r->off,
		               k, r->n - r->off);
	return 0;
}

static int rd_u8(struct rd *r, const char *field, uint8_t *v)
{
	if (rd_need(r, field, 1))
		return -1;
	*v = r->p[r->off++];
	return 0;
}

static int rd_u16(struct rd *r, const char *field, uint16_t *v)
{
	if (rd_need(r, field, 2))
		return -1;
	*v = get16(r->p + r->off);
	r->off += 2;
	return 0;
}

static int rd_vbi(struct rd *r, const char *field, uint32_t *v)
{
	size_t used;
	int rc = vbi_get(r->p + r->off, r->n - r->off, v, &used);

	if (rc == 0)
		return rd_fail(r, MQTT_RC_MALFORMED, "%s at offset %zu: truncated variable byte integer",
		               field, r->off);
	if (rc < 0)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "%s at offset %zu: bad variable byte integer (over 4 bytes or not minimal)",
		               field, r->off);
	r->off += used;
	return 0;
}

/* Two-byte length then that many bytes (binary data). */
static int rd_bin(struct rd *r, const char *field, struct mqtt_bytes *b)
{
	uint16_t l;
	size_t at = r->off;

	if (rd_u16(r, field, &l))
		return -1;
	if (l > r->n - r->off)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "%s at offset %zu: length %u runs past the end (%zu bytes left)", field,
		               at, (unsigned)l, r->n - r->off);
	b->p = r->p + r->off;
	b->len = l;
	r->off += l;
	return 0;
}

static int check_utf8(struct rd *r, const char *field, size_t at, struct mqtt_bytes b)
{
	size_t bad;

	if (b.len == 0)
		return 0;
	bad = utf8_bad_at(b.p, b.len);
	if (bad != b.len)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "%s at offset %zu: invalid UTF-8 (byte 0x%02x at position %zu%s) "
		               "[MQTT-1.5.3-1]", field, at, b.p[bad], bad,
		               b.p[bad] == 0 ? ", U+0000" : "");
	return 0;
}

/* UTF-8 encoded string [MQTT-1.5.3]. */
static int rd_str(struct rd *r, const char *field, struct mqtt_bytes *b)
{
	size_t at = r->off;

	if (rd_bin(r, field, b))
		return -1;
	return check_utf8(r, field, at, *b);
}

static int rd_pid(struct rd *r, uint16_t *pid)
{
	size_t at = r->off;

	if (rd_u16(r, "packet identifier", pid))
		return -1;
	if (*pid == 0)
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "packet identifier at offset %zu is 0 [MQTT-2.3.1-1]", at);
	return 0;
}

/* Topic name: UTF-8, no wildcards [MQTT-3.3.2-2], at least one character
 * [MQTT-4.7.3-1] unless allow_empty. */
static int check_topic_name(struct rd *r, const char *field, size_t at, struct mqtt_bytes t,
                            bool allow_empty, uint8_t wild_reason)
{
	size_t w;

	if (t.len == 0) {
		if (allow_empty)
			return 0;
		return rd_fail(r, MQTT_RC_TOPIC_NAME_INVALID,
		               "%s at offset %zu: empty topic name [MQTT-4.7.3-1]", field, at);
	}
	w = wildcard_at(t.p, t.len);
	if (w != t.len)
		return rd_fail(r, wild_reason,
		               "%s at offset %zu: wildcard '%c' at position %zu of the topic name "
		               "[MQTT-3.3.2-2]", field, at, t.p[w], w);
	return 0;
}

static const char *prop_where_name(uint32_t where)
{
	if (where == IN_WILL)
		return "will properties";
	for (int t = 1; t <= 15; t++)
		if (where == IN(t))
			return mqtt_ptype_name(t);
	return "?";
}

/* v5 properties: length, then each property checked against the table
 * and its own rules.  where: IN(type) or IN_WILL. */
static int rd_props(struct rd *r, uint32_t where, struct mqtt_props *pr)
{
	uint32_t plen = 0;
	size_t end;
	const char *wn = prop_where_name(where);

	if (rd_vbi(r, "property length", &plen))
		return -1;
	if (plen > r->n - r->off)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "property length %u at offset %zu runs past the end (%zu bytes left)",
		               (unsigned)plen, r->off, r->n - r->off);
	end = r->off + plen;
	pr->raw.p = r->p + r->off;
	pr->raw.len = plen;
	while (r->off < end) {
		struct pval v;
		const struct pdef *d;
		size_t at = r->off;

		if (prop_next(r->p, end, &r->off, &v) != 1) {
			uint32_t id;
			size_t used;
			if (vbi_get(r->p + at, end - at, &id, &used) == 1 &&
			    (id > PROP_ID_MAX || PDEF[id].type == PT_NONE))
				return rd_fail(r, MQTT_RC_MALFORMED,
				               "%s: unknown property identifier 0x%02x at offset %zu", wn,
				               (unsigned)id, at);
			return rd_fail(r, MQTT_RC_MALFORMED,
			               "%s: property at offset %zu truncated or bad (at offset %zu)", wn,
			               at, v.bad_at);
		}
		d = &PDEF[v.id];
		if (!(d->allowed & where))
			return rd_fail(r, MQTT_RC_MALFORMED,
			               "%s at offset %zu is not allowed in %s", d->name, at, wn);
		if ((pr->present & d->bit) && v.id != MQTT_PROP_USER &&
		    !(v.id == MQTT_PROP_SUB_ID && where == IN(MQTT_PUBLISH)))
			return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
			               "%s at offset %zu: included more than once", d->name, at);
		switch (v.id) {
		case MQTT_PROP_PAYLOAD_FORMAT:
		case MQTT_PROP_REQUEST_PROBLEM_INFO:
		case MQTT_PROP_REQUEST_RESPONSE_INFO:
		case MQTT_PROP_MAXIMUM_QOS:
		case MQTT_PROP_RETAIN_AVAILABLE:
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		case MQTT_PROP_SUB_ID_AVAILABLE:
		case MQTT_PROP_SHARED_SUB_AVAILABLE:
			if (v.num > 1)
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
				               "%s at offset %zu: value %u (must be 0 or 1)", d->name, at,
				               (unsigned)v.num);
			break;
		case MQTT_PROP_RECEIVE_MAXIMUM:
		case MQTT_PROP_TOPIC_ALIAS:
		case MQTT_PROP_MAXIMUM_PACKET_SIZE:
		case MQTT_PROP_SUB_ID:
			if (v.num == 0)
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "%s at offset %zu: value 0",
				               d->name, at);
			break;
		default:
			break;
		}
		if (d->type == PT_STR || d->type == PT_PAIR) {
			if (check_utf8(r, d->name, at, v.a))
				return -1;
			if (d->type == PT_PAIR && check_utf8(r, d->name, at, v.b))
				return -1;
		}
		pr->present |= d->bit;
		switch (v.id) {
		case MQTT_PROP_PAYLOAD_FORMAT: pr->payload_format = (uint8_t)v.num; break;
		case MQTT_PROP_MESSAGE_EXPIRY: pr->message_expiry = v.num; break;
		case MQTT_PROP_CONTENT_TYPE: pr->content_type = v.a; break;
		case MQTT_PROP_RESPONSE_TOPIC:
			/* [MQTT-3.3.2-14] v5: a topic name, no wildcards */
			if (v.a.len == 0 || wildcard_at(v.a.p, v.a.len) != v.a.len)
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
				               "Response Topic at offset %zu: empty or has a wildcard "
				               "[MQTT-3.3.2-14]", at);
			pr->response_topic = v.a;
			break;
		case MQTT_PROP_CORRELATION_DATA: pr->correlation_data = v.a; break;
		case MQTT_PROP_SUB_ID:
			if (where == IN(MQTT_PUBLISH) && !r->client)
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
				               "Subscription Identifier at offset %zu: not allowed from a "
				               "client [MQTT-3.3.4-6]", at);
			if (pr->n_sub_ids >= MQTT_SUB_IDS_MAX)
				return rd_fail(r, MQTT_RC_IMPL_SPECIFIC,
				               "Subscription Identifier at offset %zu: more than %d", at,
				               MQTT_SUB_IDS_MAX);
			pr->sub_ids[pr->n_sub_ids++] = v.num;
			break;
		case MQTT_PROP_SESSION_EXPIRY: pr->session_expiry = v.num; break;
		case MQTT_PROP_ASSIGNED_CLIENT_ID: pr->assigned_client_id = v.a; break;
		case MQTT_PROP_SERVER_KEEP_ALIVE: pr->server_keep_alive = (uint16_t)v.num; break;
		case MQTT_PROP_AUTH_METHOD: pr->auth_method = v.a; break;
		case MQTT_PROP_AUTH_DATA: pr->auth_data = v.a; break;
		case MQTT_PROP_REQUEST_PROBLEM_INFO: pr->request_problem_info = (uint8_t)v.num; break;
		case MQTT_PROP_WILL_DELAY: pr->will_delay = v.num; break;
		case MQTT_PROP_REQUEST_RESPONSE_INFO:
			pr->request_response_info = (uint8_t)v.num;
			break;
		case MQTT_PROP_RESPONSE_INFO: pr->response_info = v.a; break;
		case MQTT_PROP_SERVER_REFERENCE: pr->server_reference = v.a; break;
		case MQTT_PROP_REASON_STRING: pr->reason_string = v.a; break;
		case MQTT_PROP_RECEIVE_MAXIMUM: pr->receive_maximum = (uint16_t)v.num; break;
		case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: pr->topic_alias_maximum = (uint16_t)v.num; break;
		case MQTT_PROP_TOPIC_ALIAS: pr->topic_alias = (uint16_t)v.num; break;
		case MQTT_PROP_MAXIMUM_QOS: pr->maximum_qos = (uint8_t)v.num; break;
		case MQTT_PROP_RETAIN_AVAILABLE: pr->retain_available = (uint8_t)v.num; break;
		case MQTT_PROP_USER: pr->n_user++; break;
		case MQTT_PROP_MAXIMUM_PACKET_SIZE: pr->maximum_packet_size = v.num; break;
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
			pr->wildcard_sub_available = (uint8_t)v.num;
			break;
		case MQTT_PROP_SUB_ID_AVAILABLE: pr->sub_id_available = (uint8_t)v.num; break;
		case MQTT_PROP_SHARED_SUB_AVAILABLE: pr->shared_sub_available = (uint8_t)v.num; break;
		default: break;
		}
	}
	/* Authentication Data without Authentication Method (v5 3.1.2.11.10,
	 * 3.2.2.3.18, 3.15.2.2.3). */
	if ((pr->present & MQTT_PB_AUTH_DATA) && !(pr->present & MQTT_PB_AUTH_METHOD))
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "%s: Authentication Data without Authentication Method", wn);
	return 0;
}

static int rd_end(struct rd *r)
{
	if (r->off != r->n)
		return rd_fail(r, MQTT_RC_MALFORMED, "%zu unexpected bytes at offset %zu",
		               r->n - r->off, r->off);
	return 0;
}

static int dec_connect(struct rd *r, struct mqtt_connect *c)
{
	struct mqtt_bytes name;
	uint8_t level, fl;
	size_t at;

	if (rd_bin(r, "protocol name", &name) || rd_u8(r, "protocol level", &level))
		return -1;
	r->err->level = level;
	if (name.len == 4 && memcmp(name.p, "MQTT", 4) == 0) {
		if (level != MQTT_V311 && level != MQTT_V5)
			return rd_fail(r, MQTT_RC_UNSUPPORTED_VERSION,
			               "protocol level %u with protocol name MQTT [MQTT-3.1.2-2]",
			               (unsigned)level);
	} else if (name.len == 6 && memcmp(name.p, "MQIsdp", 6) == 0) {
		if (level != MQTT_V31)
			return rd_fail(r, MQTT_RC_UNSUPPORTED_VERSION,
			               "protocol level %u with protocol name MQIsdp", (unsigned)level);
	} else {
		return rd_fail(r, MQTT_RC_UNSUPPORTED_VERSION,
		               "unknown protocol name (%zu bytes) at offset 2 [MQTT-3.1.2-1]", name.len);
	}
	c->version = (enum mqtt_ver)level;
	r->ver = c->version;
	at = r->off;
	if (rd_u8(r, "connect flags", &fl))
		return -1;
	if (fl & 0x01)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "connect flags at offset %zu: reserved bit set [MQTT-3.1.2-3]", at);
	c->clean = fl & 0x02;
	c->will = fl & 0x04;
	c->will_qos = (fl >> 3) & 3;
	c->will_retain = fl & 0x20;
	c->has_password = fl & 0x40;
	c->has_username = fl & 0x80;
	if (c->will_qos == 3)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "connect flags at offset %zu: will QoS 3 [MQTT-3.1.2-14]", at);
	if (!c->will && c->will_qos != 0)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "connect flags at offset %zu: will QoS without will flag [MQTT-3.1.2-13]",
		               at);
	if (!c->will && c->will_retain)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "connect flags at offset %zu: will retain without will flag "
		               "[MQTT-3.1.2-15]", at);
	if (c->version != MQTT_V5 && c->has_password && !c->has_username)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "connect flags at offset %zu: password without user name "
		               "[MQTT-3.1.2-22]", at);
	if (rd_u16(r, "keep alive", &c->keepalive))
		return -1;
	if (c->version == MQTT_V5 && rd_props(r, IN(MQTT_CONNECT), &c->props))
		return -1;
	at = r->off;
	if (rd_str(r, "client identifier", &c->client_id))
		return -1;
	if (c->client_id.len == 0) {
		/* 3.1: 1 to 23 characters; 3.1.1: empty only with clean session
		 * [MQTT-3.1.3-8]; v5: the server assigns one. */
		if (c->version == MQTT_V31)
			return rd_fail(r, MQTT_RC_CLIENT_ID_INVALID,
			               "client identifier at offset %zu: empty (MQTT 3.1 needs one)", at);
		if (c->version == MQTT_V311 && !c->clean)
			return rd_fail(r, MQTT_RC_CLIENT_ID_INVALID,
			               "client identifier at offset %zu: empty without clean session "
			               "[MQTT-3.1.3-8]", at);
	}
	if (c->will) {
		if (c->version == MQTT_V5 && rd_props(r, IN_WILL, &c->will_props))
			return -1;
		at = r->off;
		if (rd_str(r, "will topic", &c->will_topic) ||
		    check_topic_name(r, "will topic", at, c->will_topic, false,
		                     MQTT_RC_TOPIC_NAME_INVALID) ||
		    rd_bin(r, "will payload", &c->will_payload))
			return -1;
	}
	if (c->has_username && rd_str(r, "user name", &c->username))
		return -1;
	if (c->has_password && rd_bin(r, "password", &c->password))
		return -1;
	return rd_end(r);
}

static int dec_connack(struct rd *r, struct mqtt_connack *c)
{
	uint8_t fl;

	if (rd_u8(r, "acknowledge flags", &fl) || rd_u8(r, "reason code", &c->reason))
		return -1;
	if (fl & 0xfe)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "acknowledge flags at offset 2: reserved bits set [MQTT-3.2.2-1]");
	/* 3.1: the whole byte is reserved (no session present flag) */
	c->session_present = r->ver != MQTT_V31 && (fl & 1);
	if (r->ver == MQTT_V5) {
		if (!reason_ok(MQTT_CONNACK, c->reason))
			return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "reason code 0x%02x not for CONNACK",
			               (unsigned)c->reason);
		if (rd_props(r, IN(MQTT_CONNACK), &c->props))
			return -1;
	} else if (c->reason > MQTT_V3_NOT_AUTHORIZED) {
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "return code %u (0..5)",
		               (unsigned)c->reason);
	}
	if (c->session_present && c->reason != 0)
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "session present with a refusal [MQTT-3.2.2-4]");
	return rd_end(r);
}

static int dec_publish(struct rd *r, uint8_t flags, struct mqtt_publish *p)
{
	size_t at;

	p->dup = flags & 0x08;
	p->qos = (flags >> 1) & 3;
	p->retain = flags & 0x01;
	if (p->qos == 3)
		return rd_fail(r, MQTT_RC_MALFORMED, "QoS 3 in the fixed header [MQTT-3.3.1-4]");
	if (p->qos == 0 && p->dup)
		return rd_fail(r, MQTT_RC_MALFORMED, "DUP set with QoS 0 [MQTT-3.3.1-2]");
	at = r->off;
	if (rd_str(r, "topic name", &p->topic))
		return -1;
	if (p->qos > 0 && rd_pid(r, &p->pid))
		return -1;
	if (r->ver == MQTT_V5 && rd_props(r, IN(MQTT_PUBLISH), &p->props))
		return -1;
	/* v5: an empty topic name goes with a topic alias (3.3.2.3.4) */
	if (p->topic.len == 0 && r->ver == MQTT_V5 && !(p->props.present & MQTT_PB_TOPIC_ALIAS))
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "topic name at offset %zu: empty without a topic alias", at);
	if (check_topic_name(r, "topic name", at, p->topic, r->ver == MQTT_V5,
	                     MQTT_RC_TOPIC_NAME_INVALID))
		return -1;
	p->payload.p = r->p + r->off;
	p->payload.len = r->n - r->off;
	r->off = r->n;
	return 0;
}

static int dec_ack(struct rd *r, enum mqtt_ptype t, struct mqtt_ack *a)
{
	if (rd_pid(r, &a->pid))
		return -1;
	if (r->ver == MQTT_V5) {
		/* Reason code and property length may be left out
		 * (3.4.2.1: remaining length 2 means success, under 4 no properties). */
		if (r->off < r->n) {
			if (rd_u8(r, "reason code", &a->reason))
				return -1;
			if (!reason_ok(t, a->reason))
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "reason code 0x%02x not for %s",
				               (unsigned)a->reason, r->pkt);
			if (r->off < r->n && rd_props(r, IN(t), &a->props))
				return -1;
		}
	}
	return rd_end(r);
}

/* Subscription options byte / v3 requested QoS byte. */
static int check_sub_options(struct rd *r, size_t at, uint8_t o, struct mqtt_sub_entry *e)
{
	if (r->ver != MQTT_V5) {
		if (o & 0xfc)
			return rd_fail(r, MQTT_RC_MALFORMED,
			               "requested QoS at offset %zu: reserved bits set [MQTT-3.8.3-4]", at);
	} else if (o & 0xc0) {
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "subscription options at offset %zu: reserved bits set [MQTT-3.8.3-5]",
		               at);
	}
	e->qos = o & 3;
	if (e->qos == 3)
		return rd_fail(r, MQTT_RC_MALFORMED,
		               "subscription options at offset %zu: QoS 3 [MQTT-3.8.3-4]", at);
	e->no_local = o & 0x04;
	e->retain_as_published = o & 0x08;
	e->retain_handling = (o >> 4) & 3;
	if (e->retain_handling == 3)
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "subscription options at offset %zu: retain handling 3", at);
	return 0;
}

static int dec_subscribe(struct rd *r, bool unsub, struct mqtt_subscribe *s)
{
	if (rd_pid(r, &s->pid))
		return -1;
	if (r->ver == MQTT_V5 &&
	    rd_props(r, unsub ? IN(MQTT_UNSUBSCRIBE) : IN(MQTT_SUBSCRIBE), &s->props))
		return -1;
	s->payload.p = r->p + r->off;
	s->payload.len = r->n - r->off;
	while (r->off < r->n) {
		struct mqtt_sub_entry e;
		size_t at = r->off;

		if (rd_str(r, "topic filter", &e.filter))
			return -1;
		if (e.filter.len == 0)
			return rd_fail(r, MQTT_RC_MALFORMED,
			               "topic filter at offset %zu: empty [MQTT-4.7.3-1]", at);
		if (!unsub) {
			uint8_t o;
			size_t oat = r->off;
			if (rd_u8(r, "subscription options", &o) || check_sub_options(r, oat, o, &e))
				return -1;
			if (e.no_local && e.filter.len >= 7 && memcmp(e.filter.p, "$share/", 7) == 0)
				return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
				               "subscription at offset %zu: No Local on a shared "
				               "subscription [MQTT-3.8.3-4]", at);
		}
		s->n++;
	}
	if (s->n == 0)
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "no topic filter [%s]",
		               unsub ? "MQTT-3.10.3-2" : "MQTT-3.8.3-3");
	return 0;
}

static int dec_suback(struct rd *r, enum mqtt_ptype t, struct mqtt_suback *s)
{
	if (rd_pid(r, &s->pid))
		return -1;
	if (t == MQTT_UNSUBACK && r->ver != MQTT_V5)
		return rd_end(r);
	if (r->ver == MQTT_V5 && rd_props(r, IN(t), &s->props))
		return -1;
	s->codes.p = r->p + r->off;
	s->codes.len = r->n - r->off;
	if (s->codes.len == 0)
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "no reason code");
	for (size_t i = 0; i < s->codes.len; i++) {
		uint8_t c = s->codes.p[i];
		bool ok = r->ver == MQTT_V5 ? reason_ok(t, c) : (c <= 2 || c == 0x80);
		if (!ok)
			return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
			               "return code 0x%02x at offset %zu not allowed", (unsigned)c,
			               r->off + i);
	}
	r->off = r->n;
	return 0;
}

static int dec_reason_pkt(struct rd *r, enum mqtt_ptype t, struct mqtt_reason_pkt *d)
{
	if (r->ver != MQTT_V5 || r->off == r->n)
		return rd_end(r);
	if (rd_u8(r, "reason code", &d->reason))
		return -1;
	if (!reason_ok(t, d->reason))
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR, "reason code 0x%02x not for %s",
		               (unsigned)d->reason, r->pkt);
	if (r->off < r->n && rd_props(r, IN(t), &d->props))
		return -1;
	if (t == MQTT_DISCONNECT && r->client && (d->props.present & MQTT_PB_SESSION_EXPIRY))
		return rd_fail(r, MQTT_RC_PROTOCOL_ERROR,
		               "Session Expiry Interval from the server [MQTT-3.14.2-2]");
	return rd_end(r);
}

int mqtt_fixed_header(const uint8_t *buf, size_t len, uint8_t *type_flags, uint32_t *remaining,
                      size_t *hdr_len)
{
	size_t used;
	int rc;

	if (len < 2)
		return MQTT_NEED_MORE;
	rc = vbi_get(buf + 1, len - 1, remaining, &used);
	if (rc == 0)
		return MQTT_NEED_MORE;
	if (rc < 0)
		return MQTT_MALFORMED;
	*type_flags = buf[0];
	*hdr_len = 1 + used;
	return MQTT_OK;
}

/* Flags each packet type must carry [MQTT-2.2.2-1]; -1: PUBLISH (checked
 * field by field). */
static int required_flags(int type)
{
	switch (type) {
	case MQTT_PUBLISH: return -1;
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE: return 0x2;
	default: return 0;
	}
}

int mqtt_decode_ex(const uint8_t *pkt, size_t len, enum mqtt_ver version, unsigned flags,
                   struct mqtt_packet *out, struct mqtt_error *err)
{
	struct rd r = {pkt, len, 0, "packet", err, version, (flags & MQTT_DEC_CLIENT) != 0};
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	int type, req, rc;

	err->reason = 0;
	err->level = 0;
	err->text[0] = '\0';
	out->type = 0;
	out->flags = 0;
	rc = len == 0 ? MQTT_NEED_MORE : mqtt_fixed_header(pkt, len, &tf, &rem, &hl);
	if (rc == MQTT_NEED_MORE)
		return rd_fail(&r, MQTT_RC_MALFORMED, "truncated fixed header (%zu bytes)", len);
	if (rc != MQTT_OK)
		return rd_fail(&r, MQTT_RC_MALFORMED,
		               "bad remaining length (over 4 bytes or not minimal) [MQTT-1.5.5-1]");
	if (hl + rem != len)
		return rd_fail(&r, MQTT_RC_MALFORMED,
		               "remaining length %u does not match the packet (%zu bytes after the "
		               "header)", (unsigned)rem, len - hl);
	type = tf >> 4;
	out->type = (enum mqtt_ptype)type;
	out->flags = tf & 0x0f;
	r.pkt = mqtt_ptype_name(type);
	r.off = hl;
	if (version != 0 && version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5)
		return rd_fail(&r, MQTT_RC_IMPL_SPECIFIC, "decoder called with version %d",
		               (int)version);
	if (type == 0 || (type == MQTT_AUTH && version != MQTT_V5))
		return rd_fail(&r, MQTT_RC_MALFORMED, "reserved packet type %d", type);
	req = required_flags(type);
	if (req >= 0 && out->flags != req &&
	    /* MQTT 3.1 let senders set DUP on these retransmissions */
	    !(version == MQTT_V31 && req == 2 && out->flags == 0xa))
		return rd_fail(&r, MQTT_RC_MALFORMED, "fixed header flags 0x%x (must be 0x%x) "
		               "[MQTT-2.2.2-1]", (unsigned)out->flags, (unsigned)req);
	if (r.client) {
		if (version == 0)
			return rd_fail(&r, MQTT_RC_IMPL_SPECIFIC, "client side decoding needs a version");
		if (type == MQTT_CONNECT || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ||
		    type == MQTT_PINGREQ)
			return rd_fail(&r, MQTT_RC_PROTOCOL_ERROR, "not sent by a server");
	} else {
		if (version == 0 && type != MQTT_CONNECT)
			return rd_fail(&r, MQTT_RC_PROTOCOL_ERROR,
			               "first packet is not CONNECT [MQTT-3.1.0-1]");
		if (version != 0 && type == MQTT_CONNECT)
			return rd_fail(&r, MQTT_RC_PROTOCOL_ERROR, "second CONNECT [MQTT-3.1.0-2]");
		if (type == MQTT_CONNACK || type == MQTT_SUBACK || type == MQTT_UNSUBACK ||
		    type == MQTT_PINGRESP)
			return rd_fail(&r, MQTT_RC_PROTOCOL_ERROR, "not sent by a client");
	}
	switch (type) {
	case MQTT_CONNECT:
		memset(&out->u.connect, 0, sizeof(out->u.connect));
		return dec_connect(&r, &out->u.connect);
	case MQTT_CONNACK:
		memset(&out->u.connack, 0, sizeof(out->u.connack));
		return dec_connack(&r, &out->u.connack);
	case MQTT_PUBLISH:
		memset(&out->u.publish, 0, sizeof(out->u.publish));
		return dec_publish(&r, out->flags, &out->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		memset(&out->u.ack, 0, sizeof(out->u.ack));
		return dec_ack(&r, (enum mqtt_ptype)type, &out->u.ack);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		memset(&out->u.subscribe, 0, sizeof(out->u.subscribe));
		return dec_subscribe(&r, type == MQTT_UNSUBSCRIBE, &out->u.subscribe);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		memset(&out->u.suback, 0, sizeof(out->u.suback));
		return dec_suback(&r, (enum mqtt_ptype)type, &out->u.suback);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return rd_end(&r);
	case MQTT_DISCONNECT:
		memset(&out->u.disconnect, 0, sizeof(out->u.disconnect));
		return dec_reason_pkt(&r, MQTT_DISCONNECT, &out->u.disconnect);
	case MQTT_AUTH:
		memset(&out->u.auth, 0, sizeof(out->u.auth));
		return dec_reason_pkt(&r, MQTT_AUTH, &out->u.auth);
	default:
		return rd_fail(&r, MQTT_RC_MALFORMED, "reserved packet type %d", type);
	}
}

int mqtt_decode(const uint8_t *pkt, size_t len, enum mqtt_ver version, struct mqtt_packet *out,
                struct mqtt_error *err)
{
	return mqtt_decode_ex(pkt, len, version, 0, out, err);
}

bool mqtt_sub_next(const struct mqtt_subscribe *s, enum mqtt_ver version, size_t *pos,
                   struct mqtt_sub_entry *e)
{
	const uint8_t *p = s->payload.p;
	size_t n = s->payload.len, o = *pos, l;
	uint8_t opt;

	if (!p || o >= n || n - o < 2)
		return false;
	l = get16(p + o);
	if (n - o - 2 < l + 1)
		return false;
	e->filter.p = p + o + 2;
	e->filter.len = l;
	opt = p[o + 2 + l];
	e->qos = opt & 3;
	if (version == MQTT_V5) {
		e->no_local = opt & 0x04;
		e->retain_as_published = opt & 0x08;
		e->retain_handling = (opt >> 4) & 3;
	} else {
		e->no_local = false;
		e->retain_as_published = false;
		e->retain_handling = 0;
	}
	*pos = o + 3 + l;
	return true;
}

bool mqtt_unsub_next(const struct mqtt_subscribe *s, size_t *pos, struct mqtt_bytes *filter)
{
	const uint8_t *p = s->payload.p;
	size_t n = s->payload.len, o = *pos, l;

	if (!p || o >= n || n - o < 2)
		return false;
	l = get16(p + o);
	if (n - o - 2 < l)
		return false;
	filter->p = p + o + 2;
	filter->len = l;
	*pos = o + 2 + l;
	return true;
}

/* ---- encoding ---- */

void mqtt_wbuf_init(struct mqtt_wbuf *w)
{
	w->p = NULL;
	w->len = 0;
	w->cap = 0;
}

void mqtt_wbuf_free(struct mqtt_wbuf *w)
{
	free(w->p);
	mqtt_wbuf_init(w);
}

int mqtt_wbuf_reserve(struct mqtt_wbuf *w, size_t extra)
{
	size_t need, cap;
	uint8_t *np;

	if (extra > SIZE_MAX - w->len) {
		errno = ENOMEM;
		return -1;
	}
	need = w->len + extra;
	if (need <= w->cap)
		return 0;
	cap = w->cap < 64 ? 64 : w->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	np = realloc(w->p, cap);
	if (!np) {
		errno = ENOMEM;
		return -1;
	}
	w->p = np;
	w->cap = cap;
	return 0;
}

static int einval(void)
{
	errno = EINVAL;
	return -1;
}

static inline uint8_t *put8(uint8_t *d, uint8_t v)
{
	*d = v;
	return d + 1;
}

static inline uint8_t *put16(uint8_t *d, uint16_t v)
{
	d[0] = (uint8_t)(v >> 8);
	d[1] = (uint8_t)v;
	return d + 2;
}

static inline uint8_t *put32(uint8_t *d, uint32_t v)
{
	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
	return d + 4;
}

static uint8_t *putvbi(uint8_t *d, uint32_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*d++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
	return d;
}

static uint8_t *putbin(uint8_t *d, struct mqtt_bytes b)
{
	d = put16(d, (uint16_t)b.len);
	if (b.len)
		memcpy(d, b.p, b.len);
	return d + b.len;
}

static uint8_t *putraw(uint8_t *d, struct mqtt_bytes b)
{
	if (b.len)
		memcpy(d, b.p, b.len);
	return d + b.len;
}

/* Bytes of the property block (without its length) props would encode
 * to in a packet of that kind; false if it cannot be encoded there. */
static bool props_size(const struct mqtt_props *pr, uint32_t where, size_t *out)
{
	size_t sz = 0;

	*out = 0;
	if (!pr)
		return true;
	for (unsigned id = 1; id <= PROP_ID_MAX; id++) {
		const struct pdef *d = &PDEF[id];
		const struct mqtt_bytes *s = NULL;
		uint32_t num = 0;

		if (d->type == PT_NONE || id == MQTT_PROP_USER || id == MQTT_PROP_SUB_ID ||
		    !(pr->present & d->bit))
			continue;
		if (!(d->allowed & where))
			return false;
		switch (id) {
		case MQTT_PROP_PAYLOAD_FORMAT: num = pr->payload_format; break;
		case MQTT_PROP_REQUEST_PROBLEM_INFO: num = pr->request_problem_info; break;
		case MQTT_PROP_REQUEST_RESPONSE_INFO: num = pr->request_response_info; break;
		case MQTT_PROP_MAXIMUM_QOS: num = pr->maximum_qos; break;
		case MQTT_PROP_RETAIN_AVAILABLE: num = pr->retain_available; break;
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE: num = pr->wildcard_sub_available; break;
		case MQTT_PROP_SUB_ID_AVAILABLE: num = pr->sub_id_available; break;
		case MQTT_PROP_SHARED_SUB_AVAILABLE: num = pr->shared_sub_available; break;
		case MQTT_PROP_RECEIVE_MAXIMUM: num = pr->receive_maximum ? 0 : 2; break;
		case MQTT_PROP_TOPIC_ALIAS: num = pr->topic_alias ? 0 : 2; break;
		case MQTT_PROP_MAXIMUM_PACKET_SIZE: num = pr->maximum_packet_size ? 0 : 2; break;
		case MQTT_PROP_CONTENT_TYPE: s = &pr->content_type; break;
		case MQTT_PROP_RESPONSE_TOPIC: s = &pr->response_topic; break;
		case MQTT_PROP_CORRELATION_DATA: s = &pr->correlation_data; break;
		case MQTT_PROP_ASSIGNED_CLIENT_ID: s = &pr->assigned_client_id; break;
		case MQTT_PROP_AUTH_METHOD: s = &pr->auth_method; break;
		case MQTT_PROP_AUTH_DATA: s = &pr->auth_data; break;
		case MQTT_PROP_RESPONSE_INFO: s = &pr->response_info; break;
		case MQTT_PROP_SERVER_REFERENCE: s = &pr->server_reference; break;
		case MQTT_PROP_REASON_STRING: s = &pr->reason_string; break;
		default: break;
		}
		if (num > 1)     /* a 0/1 byte out of range, or a must-be-nonzero at 0 */
			return false;
		switch (d->type) {
		case PT_BYTE: sz += 2; break;
		case PT_U16: sz += 3; break;
		case PT_U32: sz += 5; break;
		default:
			if (s->len > MQTT_STRING_MAX)
				return false;
			sz += 3 + s->len;
			break;
		}
	}
	if (pr->n_sub_ids > 0) {
		if (!(where & IN(MQTT_PUBLISH)) && !(where & IN(MQTT_SUBSCRIBE) && pr->n_sub_ids == 1))
			return false;
		if (pr->n_sub_ids > MQTT_SUB_IDS_MAX)
			return false;
		for (size_t i = 0; i < pr->n_sub_ids; i++) {
			if (pr->sub_ids[i] == 0 || pr->sub_ids[i] > MQTT_REMAINING_MAX)
				return false;
			sz += 1 + vbi_size(pr->sub_ids[i]);
		}
	}
	if (pr->n_user > 0) {
		struct mqtt_bytes k, v;
		size_t pos = 0, n = 0;
		if (!(where & PDEF[MQTT_PROP_USER].allowed))
			return false;
		while (n < pr->n_user && mqtt_user_next(pr, &pos, &k, &v)) {
			sz += 5 + k.len + v.len;
			n++;
		}
		if (n != pr->n_user)
			return false;
	}
	*out = sz;
	return true;
}

static uint8_t *props_write(uint8_t *d, const struct mqtt_props *pr)
{
	if (!pr)
		return d;
	for (unsigned id = 1; id <= PROP_ID_MAX; id++) {
		const struct pdef *dd = &PDEF[id];

		if (dd->type == PT_NONE || id == MQTT_PROP_USER || id == MQTT_PROP_SUB_ID ||
		    !(pr->present & dd->bit))
			continue;
		d = put8(d, (uint8_t)id);
		switch (id) {
		case MQTT_PROP_PAYLOAD_FORMAT: d = put8(d, pr->payload_format); break;
		case MQTT_PROP_MESSAGE_EXPIRY: d = put32(d, pr->message_expiry); break;
		case MQTT_PROP_CONTENT_TYPE: d = putbin(d, pr->content_type); break;
		case MQTT_PROP_RESPONSE_TOPIC: d = putbin(d, pr->response_topic); break;
		case MQTT_PROP_CORRELATION_DATA: d = putbin(d, pr->correlation_data); break;
		case MQTT_PROP_SESSION_EXPIRY: d = put32(d, pr->session_expiry); break;
		case MQTT_PROP_ASSIGNED_CLIENT_ID: d = putbin(d, pr->assigned_client_id); break;
		case MQTT_PROP_SERVER_KEEP_ALIVE: d = put16(d, pr->server_keep_alive); break;
		case MQTT_PROP_AUTH_METHOD: d = putbin(d, pr->auth_method); break;
		case MQTT_PROP_AUTH_DATA: d = putbin(d, pr->auth_data); break;
		case MQTT_PROP_REQUEST_PROBLEM_INFO: d = put8(d, pr->request_problem_info); break;
		case MQTT_PROP_WILL_DELAY: d = put32(d, pr->will_delay); break;
		case MQTT_PROP_REQUEST_RESPONSE_INFO: d = put8(d, pr->request_response_info); break;
		case MQTT_PROP_RESPONSE_INFO: d = putbin(d, pr->response_info); break;
		case MQTT_PROP_SERVER_REFERENCE: d = putbin(d, pr->server_reference); break;
		case MQTT_PROP_REASON_STRING: d = putbin(d, pr->reason_string); break;
		case MQTT_PROP_RECEIVE_MAXIMUM: d = put16(d, pr->receive_maximum); break;
		case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: d = put16(d, pr->topic_alias_maximum); break;
		case MQTT_PROP_TOPIC_ALIAS: d = put16(d, pr->topic_alias); break;
		case MQTT_PROP_MAXIMUM_QOS: d = put8(d, pr->maximum_qos); break;
		case MQTT_PROP_RETAIN_AVAILABLE: d = put8(d, pr->retain_available); break;
		case MQTT_PROP_MAXIMUM_PACKET_SIZE: d = put32(d, pr->maximum_packet_size); break;
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE: d = put8(d, pr->wildcard_sub_available); break;
		case MQTT_PROP_SUB_ID_AVAILABLE: d = put8(d, pr->sub_id_available); break;
		case MQTT_PROP_SHARED_SUB_AVAILABLE: d = put8(d, pr->shared_sub_available); break;
		default: break;
		}
	}
	for (size_t i = 0; i < pr->n_sub_ids; i++) {
		d = put8(d, MQTT_PROP_SUB_ID);
		d = putvbi(d, pr->sub_ids[i]);
	}
	if (pr->n_user > 0) {
		struct mqtt_bytes k, v;
		size_t pos = 0, n = 0;
		while (n < pr->n_user && mqtt_user_next(pr, &pos, &k, &v)) {
			d = put8(d, MQTT_PROP_USER);
			d = putbin(d, k);
			d = putbin(d, v);
			n++;
		}
	}
	return d;
}

/* Reserves a packet of remaining length rem and writes its fixed header;
 * returns where the rest goes, or NULL (errno set). */
static uint8_t *begin(struct mqtt_wbuf *w, uint8_t first, size_t rem)
{
	uint8_t *d;

	if (rem > MQTT_REMAINING_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (mqtt_wbuf_reserve(w, 1 + vbi_size((uint32_t)rem) + rem))
		return NULL;
	d = w->p + w->len;
	*d++ = first;
	return putvbi(d, (uint32_t)rem);
}

/* Closes a packet begun with begin(): d must be exactly at its end. */
static int finish(struct mqtt_wbuf *w, uint8_t *d)
{
	w->len = (size_t)(d - w->p);
	return 0;
}

static bool ver_ok(enum mqtt_ver v)
{
	return v == MQTT_V31 || v == MQTT_V311 || v == MQTT_V5;
}

/* Size of a v5 property section (length prefix included). */
static size_t props_section(size_t plen)
{
	return vbi_size((uint32_t)plen) + plen;
}

size_t mqtt_publish_size(enum mqtt_ver v, const struct mqtt_publish_out *p)
{
	size_t rem;

	if (!ver_ok(v) || p->qos > 2 || (p->qos > 0 && p->pid == 0) || (p->qos == 0 && p->dup) ||
	    p->topic.len > MQTT_STRING_MAX)
		return 0;
	if (p->topic.len == 0 && !(v == MQTT_V5 && p->topic_alias != 0))
		return 0;
	rem = 2 + p->topic.len + (p->qos ? 2 : 0);
	if (v == MQTT_V5) {
		size_t pl = p->fwd_props.len + (p->has_expiry ? 5 : 0) + (p->topic_alias ? 3 : 0);
		for (size_t i = 0; i < p->n_sub_ids; i++) {
			if (p->sub_ids[i] == 0 || p->sub_ids[i] > MQTT_REMAINING_MAX)
				return 0;
			pl += 1 + vbi_size(p->sub_ids[i]);
		}
		if (pl > MQTT_REMAINING_MAX)
			return 0;
		rem += props_section(pl);
	}
	if (p->payload.len > MQTT_REMAINING_MAX || rem + p->payload.len > MQTT_REMAINING_MAX)
		return 0;
	rem += p->payload.len;
	return 1 + vbi_size((uint32_t)rem) + rem;
}

int mqtt_encode_publish(struct mqtt_wbuf *w, enum mqtt_ver v, const struct mqtt_publish_out *p)
{
	size_t total = mqtt_publish_size(v, p), rem, pl = 0;
	uint8_t *d;

	if (total == 0)
		return einval();
	rem = 2 + p->topic.len + (p->qos ? 2 : 0) + p->payload.len;
	if (v == MQTT_V5) {
		pl = p->fwd_props.len + (p->has_expiry ? 5 : 0) + (p->topic_alias ? 3 : 0);
		for (size_t i = 0; i < p->n_sub_ids; i++)
			pl += 1 + vbi_size(p->sub_ids[i]);
		rem += props_section(pl);
	}
	d = begin(w, (uint8_t)(MQTT_PUBLISH << 4 | (p->dup ? 8 : 0) | p->qos << 1 |
	                       (p->retain ? 1 : 0)), rem);
	if (!d)
		return -1;
	d = putbin(d, p->topic);
	if (p->qos)
		d = put16(d, p->pid);
	if (v == MQTT_V5) {
		d = putvbi(d, (uint32_t)pl);
		d = putraw(d, p->fwd_props);
		if (p->has_expiry) {
			d = put8(d, MQTT_PROP_MESSAGE_EXPIRY);
			d = put32(d, p->message_expiry);
		}
		if (p->topic_alias) {
			d = put8(d, MQTT_PROP_TOPIC_ALIAS);
			d = put16(d, p->topic_alias);
		}
		for (size_t i = 0; i < p->n_sub_ids; i++) {
			d = put8(d, MQTT_PROP_SUB_ID);
			d = putvbi(d, p->sub_ids[i]);
		}
	}
	d = putraw(d, p->payload);
	return finish(w, d);
}

int mqtt_props_forward_encode(const struct mqtt_props *props, struct mqtt_wbuf *w)
{
	struct mqtt_props f;
	size_t sz;
	uint8_t *d;

	memset(&f, 0, sizeof(f));
	f.present = props->present & (MQTT_PB_PAYLOAD_FORMAT | MQTT_PB_CONTENT_TYPE |
	                              MQTT_PB_RESPONSE_TOPIC | MQTT_PB_CORRELATION_DATA |
	                              MQTT_PB_USER);
	f.payload_format = props->payload_format;
	f.content_type = props->content_type;
	f.response_topic = props->response_topic;
	f.correlation_data = props->correlation_data;
	f.n_user = props->n_user;
	f.raw = props->raw;
	if (!props_size(&f, IN(MQTT_PUBLISH), &sz))
		return einval();
	if (sz == 0)
		return 0;
	if (mqtt_wbuf_reserve(w, sz))
		return -1;
	d = props_write(w->p + w->len, &f);
	w->len = (size_t)(d - w->p);
	return 0;
}

int mqtt_user_append(struct mqtt_wbuf *w, const char *key, size_t klen, const char *value,
                     size_t vlen)
{
	uint8_t *d;

	if (klen > MQTT_STRING_MAX || vlen > MQTT_STRING_MAX)
		return einval();
	if (mqtt_wbuf_reserve(w, 5 + klen + vlen))
		return -1;
	d = put8(w->p + w->len, MQTT_PROP_USER);
	d = putbin(d, (struct mqtt_bytes){(const uint8_t *)key, klen});
	d = putbin(d, (struct mqtt_bytes){(const uint8_t *)value, vlen});
	w->len = (size_t)(d - w->p);
	return 0;
}

int mqtt_encode_connack(struct mqtt_wbuf *w, enum mqtt_ver v, bool session_present,
                        uint8_t reason, const struct mqtt_props *props)
{
	size_t pl = 0, rem = 2;
	uint8_t *d;

	if (!ver_ok(v) || (session_present && reason != 0))
		return einval();
	if (v == MQTT_V5) {
		if (!reason_ok(MQTT_CONNACK, reason) || !props_size(props, IN(MQTT_CONNACK), &pl))
			return einval();
		rem += props_section(pl);
	} else if (reason > MQTT_V3_NOT_AUTHORIZED) {
		return einval();
	}
	d = begin(w, MQTT_CONNACK << 4, rem);
	if (!d)
		return -1;
	/* 3.1 has no session present flag: the byte is reserved */
	d = put8(d, session_present && v != MQTT_V31 ? 1 : 0);
	d = put8(d, reason);
	if (v == MQTT_V5) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	return finish(w, d);
}

int mqtt_encode_ack(struct mqtt_wbuf *w, enum mqtt_ver v, enum mqtt_ptype type, uint16_t pid,
                    uint8_t reason, const struct mqtt_props *props)
{
	size_t pl = 0, rem = 2;
	uint8_t *d;

	if (!ver_ok(v) || pid == 0 || type < MQTT_PUBACK || type > MQTT_PUBCOMP)
		return einval();
	if (v == MQTT_V5) {
		if (!reason_ok(type, reason) || !props_size(props, IN(type), &pl))
			return einval();
		if (pl > 0)
			rem += 1 + props_section(pl);
		else if (reason != 0)
			rem += 1;
	}
	d = begin(w, (uint8_t)(type << 4 | (type == MQTT_PUBREL ? 2 : 0)), rem);
	if (!d)
		return -1;
	d = put16(d, pid);
	if (rem > 2)
		d = put8(d, reason);
	if (pl > 0) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	return finish(w, d);
}

static int encode_xxback(struct mqtt_wbuf *w, enum mqtt_ver v, enum mqtt_ptype t, uint16_t pid,
                         const uint8_t *codes, size_t n, const struct mqtt_props *props)
{
	size_t pl = 0, rem = 2;
	uint8_t *d;

	if (!ver_ok(v) || pid == 0)
		return einval();
	if (t == MQTT_UNSUBACK && v != MQTT_V5) {
		n = 0;
	} else {
		if (n == 0 || n > MQTT_REMAINING_MAX)
			return einval();
		for (size_t i = 0; i < n; i++)
			if (v == MQTT_V5 ? !reason_ok(t, codes[i]) : !(codes[i] <= 2 || codes[i] == 0x80))
				return einval();
		rem += n;
	}
	if (v == MQTT_V5) {
		if (!props_size(props, IN(t), &pl))
			return einval();
		rem += props_section(pl);
	}
	d = begin(w, (uint8_t)(t << 4), rem);
	if (!d)
		return -1;
	d = put16(d, pid);
	if (v == MQTT_V5) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	if (n)
		memcpy(d, codes, n);
	return finish(w, d + n);
}

int mqtt_encode_suback(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid, const uint8_t *codes,
                       size_t n, const struct mqtt_props *props)
{
	return encode_xxback(w, v, MQTT_SUBACK, pid, codes, n, props);
}

int mqtt_encode_unsuback(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                         const uint8_t *codes, size_t n, const struct mqtt_props *props)
{
	return encode_xxback(w, v, MQTT_UNSUBACK, pid, codes, n, props);
}

static int encode_empty(struct mqtt_wbuf *w, uint8_t first)
{
	uint8_t *d = begin(w, first, 0);

	if (!d)
		return -1;
	return finish(w, d);
}

int mqtt_encode_pingresp(struct mqtt_wbuf *w)
{
	return encode_empty(w, MQTT_PINGRESP << 4);
}

int mqtt_encode_pingreq(struct mqtt_wbuf *w)
{
	return encode_empty(w, MQTT_PINGREQ << 4);
}

/* DISCONNECT and AUTH (v5): reason and properties, both left out when
 * success without properties. */
static int encode_reason_pkt(struct mqtt_wbuf *w, enum mqtt_ptype t, uint8_t reason,
                             const struct mqtt_props *props)
{
	size_t pl = 0, rem = 0;
	uint8_t *d;

	if (!reason_ok(t, reason) || !props_size(props, IN(t), &pl))
		return einval();
	if (reason != 0 || pl > 0)
		rem = 1 + props_section(pl);
	d = begin(w, (uint8_t)(t << 4), rem);
	if (!d)
		return -1;
	if (rem) {
		d = put8(d, reason);
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	return finish(w, d);
}

int mqtt_encode_disconnect(struct mqtt_wbuf *w, enum mqtt_ver v, uint8_t reason,
                           const struct mqtt_props *props)
{
	if (!ver_ok(v))
		return einval();
	if (v != MQTT_V5)
		return encode_empty(w, MQTT_DISCONNECT << 4);
	return encode_reason_pkt(w, MQTT_DISCONNECT, reason, props);
}

int mqtt_encode_auth(struct mqtt_wbuf *w, uint8_t reason, const struct mqtt_props *props)
{
	return encode_reason_pkt(w, MQTT_AUTH, reason, props);
}

int mqtt_encode_connect(struct mqtt_wbuf *w, const struct mqtt_connect *c)
{
	enum mqtt_ver v = c->version;
	size_t pl = 0, wpl = 0, rem;
	uint8_t fl = 0, *d;
	bool v5 = v == MQTT_V5;

	if (!ver_ok(v) || c->will_qos > 2 || (!c->will && (c->will_qos || c->will_retain)) ||
	    (!v5 && c->has_password && !c->has_username) || c->client_id.len > MQTT_STRING_MAX ||
	    (c->will && (c->will_topic.len > MQTT_STRING_MAX ||
	                 c->will_payload.len > MQTT_STRING_MAX)) ||
	    (c->has_username && c->username.len > MQTT_STRING_MAX) ||
	    (c->has_password && c->password.len > MQTT_STRING_MAX))
		return einval();
	rem = (v == MQTT_V31 ? 8 : 6) + 1 + 1 + 2 + 2 + c->client_id.len;
	if (v5) {
		if (!props_size(&c->props, IN(MQTT_CONNECT), &pl))
			return einval();
		rem += props_section(pl);
	}
	if (c->will) {
		rem += 4 + c->will_topic.len + c->will_payload.len;
		if (v5) {
			if (!props_size(&c->will_props, IN_WILL, &wpl))
				return einval();
			rem += props_section(wpl);
		}
	}
	if (c->has_username)
		rem += 2 + c->username.len;
	if (c->has_password)
		rem += 2 + c->password.len;
	fl = (uint8_t)((c->clean ? 0x02 : 0) | (c->will ? 0x04 : 0) | c->will_qos << 3 |
	               (c->will_retain ? 0x20 : 0) | (c->has_password ? 0x40 : 0) |
	               (c->has_username ? 0x80 : 0));
	d = begin(w, MQTT_CONNECT << 4, rem);
	if (!d)
		return -1;
	if (v == MQTT_V31)
		d = putbin(d, (struct mqtt_bytes){(const uint8_t *)"MQIsdp", 6});
	else
		d = putbin(d, (struct mqtt_bytes){(const uint8_t *)"MQTT", 4});
	d = put8(d, (uint8_t)v);
	d = put8(d, fl);
	d = put16(d, c->keepalive);
	if (v5) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, &c->props);
	}
	d = putbin(d, c->client_id);
	if (c->will) {
		if (v5) {
			d = putvbi(d, (uint32_t)wpl);
			d = props_write(d, &c->will_props);
		}
		d = putbin(d, c->will_topic);
		d = putbin(d, c->will_payload);
	}
	if (c->has_username)
		d = putbin(d, c->username);
	if (c->has_password)
		d = putbin(d, c->password);
	return finish(w, d);
}

int mqtt_encode_subscribe(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                          const struct mqtt_sub_entry *e, size_t n,
                          const struct mqtt_props *props)
{
	size_t pl = 0, rem = 2;
	uint8_t *d;

	if (!ver_ok(v) || pid == 0 || n == 0)
		return einval();
	for (size_t i = 0; i < n; i++) {
		if (e[i].qos > 2 || e[i].retain_handling > 2 || e[i].filter.len > MQTT_STRING_MAX)
			return einval();
		rem += 3 + e[i].filter.len;
		if (rem > MQTT_REMAINING_MAX)
			return einval();
	}
	if (v == MQTT_V5) {
		if (!props_size(props, IN(MQTT_SUBSCRIBE), &pl))
			return einval();
		rem += props_section(pl);
	}
	d = begin(w, MQTT_SUBSCRIBE << 4 | 2, rem);
	if (!d)
		return -1;
	d = put16(d, pid);
	if (v == MQTT_V5) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t o = e[i].qos;
		if (v == MQTT_V5)
			o |= (uint8_t)((e[i].no_local ? 0x04 : 0) | (e[i].retain_as_published ? 0x08 : 0) |
			               e[i].retain_handling << 4);
		d = putbin(d, e[i].filter);
		d = put8(d, o);
	}
	return finish(w, d);
}

int mqtt_encode_unsubscribe(struct mqtt_wbuf *w, enum mqtt_ver v, uint16_t pid,
                            const struct mqtt_bytes *filters, size_t n,
                            const struct mqtt_props *props)
{
	size_t pl = 0, rem = 2;
	uint8_t *d;

	if (!ver_ok(v) || pid == 0 || n == 0)
		return einval();
	for (size_t i = 0; i < n; i++) {
		if (filters[i].len > MQTT_STRING_MAX)
			return einval();
		rem += 2 + filters[i].len;
		if (rem > MQTT_REMAINING_MAX)
			return einval();
	}
	if (v == MQTT_V5) {
		if (!props_size(props, IN(MQTT_UNSUBSCRIBE), &pl))
			return einval();
		rem += props_section(pl);
	}
	d = begin(w, MQTT_UNSUBSCRIBE << 4 | 2, rem);
	if (!d)
		return -1;
	d = put16(d, pid);
	if (v == MQTT_V5) {
		d = putvbi(d, (uint32_t)pl);
		d = props_write(d, props);
	}
	for (size_t i = 0; i < n; i++)
		d = putbin(d, filters[i]);
	return finish(w, d);
}
