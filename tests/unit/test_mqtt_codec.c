/* The MQTT packet codec: every packet type both ways (decode of hand-built
 * bytes, encode and decode back), one test per normative statement the
 * codec enforces (named after it: 3.1.1 numbering unless the rule is
 * v5-only), malformed packets, and a deterministic mutation loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chand/mqtt_codec.h"

/* ---- helpers ---- */

struct bld {
	uint8_t b[8192];
	size_t n;
};

static void b8(struct bld *x, uint8_t v)
{
	cr_assert(x->n < sizeof(x->b));
	x->b[x->n++] = v;
}

static void b16(struct bld *x, uint16_t v)
{
	b8(x, (uint8_t)(v >> 8));
	b8(x, (uint8_t)v);
}

static void b32(struct bld *x, uint32_t v)
{
	b16(x, (uint16_t)(v >> 16));
	b16(x, (uint16_t)v);
}

static void bvbi(struct bld *x, uint32_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		b8(x, v ? (uint8_t)(c | 0x80) : c);
	} while (v);
}

static void braw(struct bld *x, const void *p, size_t n)
{
	cr_assert(x->n + n <= sizeof(x->b));
	memcpy(x->b + x->n, p, n);
	x->n += n;
}

static void bbin(struct bld *x, const void *p, size_t n)
{
	b16(x, (uint16_t)n);
	braw(x, p, n);
}

static void bstr(struct bld *x, const char *s)
{
	bbin(x, s, strlen(s));
}

/* property section: length then the bytes of p */
static void bprops(struct bld *x, const struct bld *p)
{
	bvbi(x, (uint32_t)p->n);
	braw(x, p->b, p->n);
}

static void bnoprops(struct bld *x)
{
	b8(x, 0);
}

static uint8_t pb[9000];
static size_t pn;
static struct mqtt_packet pk;
static struct mqtt_error er;

/* The packet under test: first byte, then remaining length, then body. */
static void mk(uint8_t first, const struct bld *body)
{
	struct bld h = {.n = 0};

	b8(&h, first);
	bvbi(&h, (uint32_t)body->n);
	memcpy(pb, h.b, h.n);
	memcpy(pb + h.n, body->b, body->n);
	pn = h.n + body->n;
}

static void mkraw(const uint8_t *p, size_t n)
{
	memcpy(pb, p, n);
	pn = n;
}

static int dec(enum mqtt_ver v)
{
	memset(&er, 0, sizeof(er));
	return mqtt_decode(pb, pn, v, &pk, &er);
}

static int decc(enum mqtt_ver v)
{
	memset(&er, 0, sizeof(er));
	return mqtt_decode_ex(pb, pn, v, MQTT_DEC_CLIENT, &pk, &er);
}

static bool text_has(const char *sub)
{
	return sub == NULL || strstr(er.text, sub) != NULL;
}

#define OK(call) cr_assert_eq((call), 0, "%s", er.text)
#define FAILS(call, rc, sub)                                                              \
	do {                                                                              \
		cr_assert_eq((call), -1, "accepted, expected reason 0x%02x", (unsigned)(rc));  \
		cr_assert_eq(er.reason, (rc), "reason 0x%02x, text: %s", er.reason, er.text); \
		cr_assert(er.text[0] != '\0');                                            \
		cr_assert(text_has(sub), "text: %s", er.text);                           \
	} while (0)

static bool beq(struct mqtt_bytes b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.p, s, b.len) == 0);
}

static struct mqtt_bytes B(const char *s)
{
	return (struct mqtt_bytes){(const uint8_t *)s, strlen(s)};
}

/* Copies an encoded buffer in as the packet under test. */
static void take(struct mqtt_wbuf *w)
{
	cr_assert(w->len <= sizeof(pb));
	memcpy(pb, w->p, w->len);
	pn = w->len;
	w->len = 0;
}

/* CONNECT variable header start */
static void conn_hdr(struct bld *x, const char *name, uint8_t level, uint8_t flags)
{
	bstr(x, name);
	b8(x, level);
	b8(x, flags);
	b16(x, 60);
}

/* ---- fixed header ---- */

Test(mqtt_fixed, need_more_until_remaining_length_complete)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	const uint8_t p[] = {0x30, 0x80, 0x80};

	cr_assert_eq(mqtt_fixed_header(p, 0, &tf, &rem, &hl), MQTT_NEED_MORE);
	cr_assert_eq(mqtt_fixed_header(p, 1, &tf, &rem, &hl), MQTT_NEED_MORE);
	cr_assert_eq(mqtt_fixed_header(p, 3, &tf, &rem, &hl), MQTT_NEED_MORE);
}

Test(mqtt_fixed, remaining_length_one_to_four_bytes)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	const uint8_t a[] = {0x32, 0x7f}, b[] = {0x32, 0x80, 0x01},
	              c[] = {0x32, 0xff, 0xff, 0xff, 0x7f};

	cr_assert_eq(mqtt_fixed_header(a, 2, &tf, &rem, &hl), MQTT_OK);
	cr_assert(tf == 0x32 && rem == 127 && hl == 2);
	cr_assert_eq(mqtt_fixed_header(b, 3, &tf, &rem, &hl), MQTT_OK);
	cr_assert(rem == 128 && hl == 3);
	cr_assert_eq(mqtt_fixed_header(c, 5, &tf, &rem, &hl), MQTT_OK);
	cr_assert(rem == MQTT_REMAINING_MAX && hl == 5);
}

Test(mqtt_fixed, five_byte_remaining_length_malformed)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	const uint8_t p[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};

	cr_assert_eq(mqtt_fixed_header(p, sizeof(p), &tf, &rem, &hl), MQTT_MALFORMED);
}

Test(mqtt_fixed, non_minimal_length_MQTT_1_5_5_1)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	const uint8_t p[] = {0xc0, 0x80, 0x00};

	cr_assert_eq(mqtt_fixed_header(p, sizeof(p), &tf, &rem, &hl), MQTT_MALFORMED);
	mkraw(p, sizeof(p));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "remaining length");
}

Test(mqtt_fixed, remaining_length_must_match_packet)
{
	const uint8_t shortp[] = {0xc0, 0x01}, longp[] = {0xc0, 0x00, 0x00};

	mkraw(shortp, sizeof(shortp));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "does not match");
	mkraw(longp, sizeof(longp));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "does not match");
}

Test(mqtt_fixed, reserved_packet_type_0_and_15_in_v3)
{
	const uint8_t t0[] = {0x00, 0x00}, t15[] = {0xf0, 0x00};

	mkraw(t0, 2);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "reserved packet type");
	mkraw(t15, 2);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "reserved packet type");
	OK(dec(MQTT_V5));   /* AUTH in v5 */
	cr_assert_eq(pk.type, MQTT_AUTH);
}

/* ---- UTF-8 ---- */

Test(mqtt_utf8, well_formed_accepted)
{
	const char *s = "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80/long ascii run over eight bytes";

	cr_assert(mqtt_utf8_valid((const uint8_t *)s, strlen(s)));
	cr_assert(mqtt_utf8_valid(NULL, 0));
	cr_assert(mqtt_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));   /* U+10FFFF */
}

Test(mqtt_utf8, null_character_MQTT_1_5_3_2)
{
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"ab\0cd", 5));
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"0123456789\0abcdef", 17));
}

Test(mqtt_utf8, surrogates_MQTT_1_5_3_1)
{
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));   /* U+D800 */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xed\xbf\xbf", 3));   /* U+DFFF */
	cr_assert(mqtt_utf8_valid((const uint8_t *)"\xed\x9f\xbf", 3));       /* U+D7FF */
}

Test(mqtt_utf8, ill_formed_MQTT_1_5_3_1)
{
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xc0\x80", 2));          /* overlong NUL */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));      /* overlong */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xf0\x80\x80\xaf", 4));  /* overlong */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xf5\x80\x80\x80", 4));
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\x80", 1));              /* lone continuation */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"a\xe2\x82", 3));         /* truncated */
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xc3(", 2));
	cr_assert_not(mqtt_utf8_valid((const uint8_t *)"\xff", 1));
}

/* Decision (header): control characters and non-characters are accepted:
 * 1.5.3 says senders SHOULD NOT send them, receivers MAY refuse them. */
Test(mqtt_utf8, control_characters_accepted)
{
	cr_assert(mqtt_utf8_valid((const uint8_t *)"\x01\x1f\x7f", 3));
	cr_assert(mqtt_utf8_valid((const uint8_t *)"\xc2\x80\xc2\x9f", 4));   /* U+0080, U+009F */
	cr_assert(mqtt_utf8_valid((const uint8_t *)"\xef\xbf\xbf", 3));       /* U+FFFF */
}

Test(mqtt_utf8, bom_kept_MQTT_1_5_3_3)
{
	struct bld x = {.n = 0};

	bstr(&x, "\xef\xbb\xbf" "t");
	braw(&x, "p", 1);
	mk(0x30, &x);
	OK(dec(MQTT_V311));
	cr_assert(beq(pk.u.publish.topic, "\xef\xbb\xbf" "t"));
}

Test(mqtt_utf8, invalid_topic_closes_MQTT_1_5_3_1)
{
	struct bld x = {.n = 0};

	bstr(&x, "a/\xed\xa0\x80");
	mk(0x30, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "invalid UTF-8");
	cr_assert(strstr(er.text, "position 2") != NULL, "%s", er.text);
}

/* ---- CONNECT ---- */

Test(mqtt_3_1, connect_v311_all_fields)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0xee);   /* user, pass, will retain, will qos 1, will, clean */
	bstr(&x, "dev1");
	bstr(&x, "will/t");
	bbin(&x, "bye\0", 4);
	bstr(&x, "alice");
	bbin(&x, "s\0cret", 6);
	mk(0x10, &x);
	OK(dec(0));
	cr_assert_eq(pk.type, MQTT_CONNECT);
	const struct mqtt_connect *c = &pk.u.connect;
	cr_assert_eq(c->version, MQTT_V311);
	cr_assert(c->clean && c->will && c->will_retain && c->will_qos == 1);
	cr_assert(c->has_username && c->has_password);
	cr_assert_eq(c->keepalive, 60);
	cr_assert(beq(c->client_id, "dev1") && beq(c->will_topic, "will/t") && beq(c->username, "alice"));
	cr_assert(c->will_payload.len == 4 && c->password.len == 6);
}

Test(mqtt_3_1, connect_v31_mqisdp)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQIsdp", 3, 0x02);
	bstr(&x, "old-client");
	mk(0x10, &x);
	OK(dec(0));
	cr_assert_eq(pk.u.connect.version, MQTT_V31);
	cr_assert(beq(pk.u.connect.client_id, "old-client"));
	cr_assert_not(pk.u.connect.will);
}

Test(mqtt_3_1, connect_v5_properties_and_will_properties)
{
	struct bld x = {.n = 0}, p = {.n = 0}, wp = {.n = 0};

	b8(&p, MQTT_PROP_SESSION_EXPIRY);
	b32(&p, 3600);
	b8(&p, MQTT_PROP_RECEIVE_MAXIMUM);
	b16(&p, 10);
	b8(&p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	b32(&p, 65536);
	b8(&p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	b16(&p, 5);
	b8(&p, MQTT_PROP_USER);
	bstr(&p, "k1");
	bstr(&p, "v1");
	b8(&p, MQTT_PROP_USER);
	bstr(&p, "k2");
	bstr(&p, "v2");
	b8(&wp, MQTT_PROP_WILL_DELAY);
	b32(&wp, 30);
	b8(&wp, MQTT_PROP_CONTENT_TYPE);
	bstr(&wp, "text/plain");
	conn_hdr(&x, "MQTT", 5, 0x04 | 0x10);   /* will, will qos 2, clean 0 */
	bprops(&x, &p);
	bstr(&x, "");                           /* v5: the server assigns one */
	bprops(&x, &wp);
	bstr(&x, "w");
	bbin(&x, "", 0);
	mk(0x10, &x);
	OK(dec(0));
	const struct mqtt_connect *c = &pk.u.connect;
	cr_assert_eq(c->version, MQTT_V5);
	cr_assert_not(c->clean);
	cr_assert_eq(c->will_qos, 2);
	cr_assert_eq(c->props.session_expiry, 3600);
	cr_assert_eq(c->props.receive_maximum, 10);
	cr_assert_eq(c->props.maximum_packet_size, 65536);
	cr_assert_eq(c->props.topic_alias_maximum, 5);
	cr_assert_eq(c->props.n_user, 2);
	cr_assert(c->will_props.present & MQTT_PB_WILL_DELAY);
	cr_assert_eq(c->will_props.will_delay, 30);
	cr_assert(beq(c->will_props.content_type, "text/plain"));
	cr_assert_eq(c->client_id.len, 0);

	struct mqtt_bytes k, v;
	size_t pos = 0;
	cr_assert(mqtt_user_next(&c->props, &pos, &k, &v));
	cr_assert(beq(k, "k1") && beq(v, "v1"));
	cr_assert(mqtt_user_next(&c->props, &pos, &k, &v));
	cr_assert(beq(k, "k2") && beq(v, "v2"));
	cr_assert_not(mqtt_user_next(&c->props, &pos, &k, &v));
}

Test(mqtt_3_1, unknown_protocol_name_MQTT_3_1_2_1)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTX", 4, 0x02);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_UNSUPPORTED_VERSION, "protocol name");
}

Test(mqtt_3_1, unsupported_protocol_level_MQTT_3_1_2_2)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 6, 0x02);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_UNSUPPORTED_VERSION, "level 6");
	cr_assert_eq(er.level, 6);   /* the server picks CONNACK 0x01 (v3) or 0x84 (v5) */

	x.n = 0;
	conn_hdr(&x, "MQTT", 3, 0x02);   /* 3 goes with MQIsdp only */
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_UNSUPPORTED_VERSION, NULL);
	x.n = 0;
	conn_hdr(&x, "MQIsdp", 4, 0x02);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_UNSUPPORTED_VERSION, "MQIsdp");
}

Test(mqtt_3_1, reserved_flag_must_be_zero_MQTT_3_1_2_3)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x03);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "reserved bit");
}

Test(mqtt_3_1, will_qos_3_MQTT_3_1_2_14)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x04 | 0x18);
	bstr(&x, "c");
	bstr(&x, "w");
	bstr(&x, "m");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "will QoS 3");
}

Test(mqtt_3_1, will_qos_without_will_flag_MQTT_3_1_2_13)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x08);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "without will flag");
}

Test(mqtt_3_1, will_retain_without_will_flag_MQTT_3_1_2_15)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 5, 0x02 | 0x20);
	bnoprops(&x);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "will retain");
}

Test(mqtt_3_1, password_without_username_MQTT_3_1_2_22)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x40);
	bstr(&x, "c");
	bbin(&x, "pw", 2);
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "password without user name");

	/* v5 allows it (3.1.2.9) */
	x.n = 0;
	conn_hdr(&x, "MQTT", 5, 0x02 | 0x40);
	bnoprops(&x);
	bstr(&x, "c");
	bbin(&x, "pw", 2);
	mk(0x10, &x);
	OK(dec(0));
	cr_assert(pk.u.connect.has_password && !pk.u.connect.has_username);
}

Test(mqtt_3_1, empty_client_id_needs_clean_session_MQTT_3_1_3_8)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x00);
	bstr(&x, "");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_CLIENT_ID_INVALID, "clean session");

	x.n = 0;
	conn_hdr(&x, "MQTT", 4, 0x02);   /* [MQTT-3.1.3-6]: allowed with clean session */
	bstr(&x, "");
	mk(0x10, &x);
	OK(dec(0));
}

Test(mqtt_3_1, v31_client_id_required)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQIsdp", 3, 0x02);
	bstr(&x, "");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_CLIENT_ID_INVALID, "3.1");
}

Test(mqtt_3_1, client_id_utf8_MQTT_3_1_3_4)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02);
	bbin(&x, "c\0", 2);
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "client identifier");
}

Test(mqtt_3_1, username_utf8_MQTT_3_1_3_11)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x80);
	bstr(&x, "c");
	bbin(&x, "\xff", 1);
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "user name");
}

Test(mqtt_3_1, first_packet_must_be_connect_MQTT_3_1_0_1)
{
	const uint8_t ping[] = {0xc0, 0x00};

	mkraw(ping, 2);
	FAILS(dec(0), MQTT_RC_PROTOCOL_ERROR, "first packet");
}

Test(mqtt_3_1, second_connect_is_protocol_error_MQTT_3_1_0_2)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02);
	bstr(&x, "c");
	mk(0x10, &x);
	OK(dec(0));
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
}

Test(mqtt_3_1, connect_flags_in_fixed_header_MQTT_2_2_2_1)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02);
	bstr(&x, "c");
	mk(0x11, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "flags");
}

Test(mqtt_3_1, will_topic_wildcard_refused)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x04);
	bstr(&x, "c");
	bstr(&x, "a/#");
	bstr(&x, "m");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_TOPIC_NAME_INVALID, "wildcard '#' at position 2");
}

Test(mqtt_3_1, truncated_and_trailing_bytes)
{
	struct bld x = {.n = 0};

	conn_hdr(&x, "MQTT", 4, 0x02 | 0x80 | 0x40);
	bstr(&x, "c");
	bstr(&x, "u");           /* password missing */
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "password");

	x.n = 0;
	conn_hdr(&x, "MQTT", 4, 0x02);
	bstr(&x, "c");
	b8(&x, 0);
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "unexpected bytes");

	const uint8_t tiny[] = {0x10, 0x03, 0x00, 0x04, 'M'};
	mkraw(tiny, sizeof(tiny));
	FAILS(dec(0), MQTT_RC_MALFORMED, "protocol name");
}

Test(mqtt_3_1, connect_round_trip_every_version)
{
	static const enum mqtt_ver vs[] = {MQTT_V31, MQTT_V311, MQTT_V5};
	struct mqtt_wbuf w, ub;

	mqtt_wbuf_init(&w);
	mqtt_wbuf_init(&ub);
	cr_assert_eq(mqtt_user_append(&ub, "site", 4, "lab", 3), 0);
	for (size_t i = 0; i < 3; i++) {
		struct mqtt_connect c;
		memset(&c, 0, sizeof(c));
		c.version = vs[i];
		c.clean = true;
		c.keepalive = 45;
		c.client_id = B("rt-client");
		c.has_username = c.has_password = true;
		c.username = B("bob");
		c.password = B("pw");
		c.will = true;
		c.will_qos = 2;
		c.will_retain = true;
		c.will_topic = B("status/rt");
		c.will_payload = B("offline");
		if (vs[i] == MQTT_V5) {
			c.props.present = MQTT_PB_SESSION_EXPIRY | MQTT_PB_REQUEST_PROBLEM_INFO | MQTT_PB_USER;
			c.props.session_expiry = 120;
			c.props.request_problem_info = 1;
			c.props.n_user = 1;
			c.props.raw = (struct mqtt_bytes){ub.p, ub.len};
			c.will_props.present = MQTT_PB_WILL_DELAY | MQTT_PB_PAYLOAD_FORMAT;
			c.will_props.will_delay = 10;
			c.will_props.payload_format = 1;
		}
		cr_assert_eq(mqtt_encode_connect(&w, &c), 0);
		take(&w);
		OK(dec(0));
		const struct mqtt_connect *d = &pk.u.connect;
		cr_assert_eq(d->version, vs[i]);
		cr_assert(d->clean && d->will && d->will_retain && d->will_qos == 2 && d->keepalive == 45);
		cr_assert(beq(d->client_id, "rt-client") && beq(d->username, "bob") &&
		          beq(d->password, "pw") && beq(d->will_topic, "status/rt") &&
		          beq(d->will_payload, "offline"));
		if (vs[i] == MQTT_V5) {
			struct mqtt_bytes k, v;
			size_t pos = 0;
			cr_assert_eq(d->props.session_expiry, 120);
			cr_assert_eq(d->props.request_problem_info, 1);
			cr_assert(mqtt_user_next(&d->props, &pos, &k, &v) && beq(k, "site") && beq(v, "lab"));
			cr_assert_eq(d->will_props.will_delay, 10);
			cr_assert_eq(d->will_props.payload_format, 1);
		}
	}
	mqtt_wbuf_free(&w);
	mqtt_wbuf_free(&ub);
}

Test(mqtt_3_1, connect_encoder_refuses_bad_flags)
{
	struct mqtt_wbuf w;
	struct mqtt_connect c;

	mqtt_wbuf_init(&w);
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V311;
	c.client_id = B("c");
	c.will_qos = 1;   /* without will */
	errno = 0;
	cr_assert_eq(mqtt_encode_connect(&w, &c), -1);
	cr_assert_eq(errno, EINVAL);
	c.will_qos = 0;
	c.has_password = true;   /* without user name in 3.1.1 */
	cr_assert_eq(mqtt_encode_connect(&w, &c), -1);
	cr_assert_eq(w.len, 0);
	mqtt_wbuf_free(&w);
}

/* ---- v5 properties ---- */

/* A v5 PUBLISH (QoS 0, topic "t") with the given properties. */
static void publish_with_props(const struct bld *p)
{
	struct bld x = {.n = 0};

	bstr(&x, "t");
	bprops(&x, p);
	braw(&x, "pl", 2);
	mk(0x30, &x);
}

Test(mqtt_2_2_2, property_not_allowed_in_packet_is_malformed)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_SESSION_EXPIRY);
	b32(&p, 1);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "Session Expiry Interval");
	cr_assert(strstr(er.text, "not allowed in PUBLISH") != NULL, "%s", er.text);
}

Test(mqtt_2_2_2, will_delay_only_in_will_properties)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_WILL_DELAY);
	b32(&p, 5);
	conn_hdr(&x, "MQTT", 5, 0x02);
	bprops(&x, &p);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_MALFORMED, "Will Delay Interval");
}

Test(mqtt_2_2_2, duplicate_property_is_protocol_error)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_CONTENT_TYPE);
	bstr(&p, "a");
	b8(&p, MQTT_PROP_CONTENT_TYPE);
	bstr(&p, "b");
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "more than once");
}

Test(mqtt_2_2_2, user_property_may_repeat_in_order)
{
	struct bld p = {.n = 0};
	struct mqtt_bytes k, v;
	size_t pos = 0;

	b8(&p, MQTT_PROP_USER);
	bstr(&p, "a");
	bstr(&p, "1");
	b8(&p, MQTT_PROP_PAYLOAD_FORMAT);
	b8(&p, 1);
	b8(&p, MQTT_PROP_USER);
	bstr(&p, "a");
	bstr(&p, "2");
	publish_with_props(&p);
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.publish.props.n_user, 2);
	cr_assert(mqtt_user_next(&pk.u.publish.props, &pos, &k, &v) && beq(v, "1"));
	cr_assert(mqtt_user_next(&pk.u.publish.props, &pos, &k, &v) && beq(v, "2"));
	cr_assert_not(mqtt_user_next(&pk.u.publish.props, &pos, &k, &v));
}

Test(mqtt_2_2_2, user_property_utf8_checked)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_USER);
	bstr(&p, "a");
	bbin(&p, "\xc0\x80", 2);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "User Property");
}

Test(mqtt_2_2_2, subscription_identifier_zero_is_protocol_error)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_SUB_ID);
	bvbi(&p, 0);
	b16(&x, 1);
	bprops(&x, &p);
	bstr(&x, "a");
	b8(&x, 0);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "Subscription Identifier");
}

Test(mqtt_2_2_2, subscription_identifier_twice_in_subscribe)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_SUB_ID);
	bvbi(&p, 1);
	b8(&p, MQTT_PROP_SUB_ID);
	bvbi(&p, 2);
	b16(&x, 1);
	bprops(&x, &p);
	bstr(&x, "a");
	b8(&x, 0);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "more than once");
}

Test(mqtt_2_2_2, topic_alias_zero_is_protocol_error)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_TOPIC_ALIAS);
	b16(&p, 0);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "Topic Alias");
}

Test(mqtt_2_2_2, receive_maximum_zero_is_protocol_error)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_RECEIVE_MAXIMUM);
	b16(&p, 0);
	conn_hdr(&x, "MQTT", 5, 0x02);
	bprops(&x, &p);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_PROTOCOL_ERROR, "Receive Maximum");
}

Test(mqtt_2_2_2, maximum_packet_size_zero_is_protocol_error)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	b32(&p, 0);
	conn_hdr(&x, "MQTT", 5, 0x02);
	bprops(&x, &p);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_PROTOCOL_ERROR, "Maximum Packet Size");
}

Test(mqtt_2_2_2, byte_flags_must_be_0_or_1)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_PAYLOAD_FORMAT);
	b8(&p, 2);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "Payload Format Indicator");

	p.n = 0;
	b8(&p, MQTT_PROP_REQUEST_PROBLEM_INFO);
	b8(&p, 2);
	conn_hdr(&x, "MQTT", 5, 0x02);
	bprops(&x, &p);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_PROTOCOL_ERROR, "Request Problem Information");
}

Test(mqtt_2_2_2, property_length_past_end_is_malformed)
{
	struct bld x = {.n = 0};

	bstr(&x, "t");
	b8(&x, 20);   /* property length 20, nothing follows */
	mk(0x30, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "property length");
}

Test(mqtt_2_2_2, unknown_property_is_malformed)
{
	struct bld p = {.n = 0};

	b8(&p, 0x7f);
	b8(&p, 0);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "unknown property identifier 0x7f");
}

Test(mqtt_2_2_2, truncated_property_value_is_malformed)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_MESSAGE_EXPIRY);
	b16(&p, 0);   /* 2 of 4 bytes */
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "truncated");
}

Test(mqtt_2_2_2, non_minimal_variable_byte_integer_MQTT_1_5_5_1)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_SUB_ID);
	b8(&p, 0x81);
	b8(&p, 0x00);   /* 1 in two bytes */
	publish_with_props(&p);
	FAILS(decc(MQTT_V5), MQTT_RC_MALFORMED, NULL);
}

Test(mqtt_2_2_2, auth_data_without_method_is_protocol_error)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_AUTH_DATA);
	bbin(&p, "xx", 2);
	conn_hdr(&x, "MQTT", 5, 0x02);
	bprops(&x, &p);
	bstr(&x, "c");
	mk(0x10, &x);
	FAILS(dec(0), MQTT_RC_PROTOCOL_ERROR, "Authentication Data without");
}

Test(mqtt_3_3, response_topic_no_wildcards_MQTT_3_3_2_14)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_RESPONSE_TOPIC);
	bstr(&p, "reply/+");
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "Response Topic");
}

/* ---- PUBLISH ---- */

Test(mqtt_3_3, qos_3_is_malformed_MQTT_3_3_1_4)
{
	struct bld x = {.n = 0};

	bstr(&x, "t");
	b16(&x, 1);
	mk(0x36, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "QoS 3");
}

Test(mqtt_3_3, dup_must_be_0_for_qos0_MQTT_3_3_1_2)
{
	struct bld x = {.n = 0};

	bstr(&x, "t");
	mk(0x38, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "DUP");
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "DUP");
}

Test(mqtt_3_3, topic_name_no_wildcards_MQTT_3_3_2_2)
{
	struct bld x = {.n = 0};

	bstr(&x, "a/+/c");
	mk(0x30, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_TOPIC_NAME_INVALID, "wildcard '+' at position 2");
	x.n = 0;
	bstr(&x, "#");
	bnoprops(&x);
	mk(0x30, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_TOPIC_NAME_INVALID, "position 0");
	x.n = 0;
	bstr(&x, "building-one/floor-two/#");   /* past the 8-byte fast path */
	mk(0x30, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_TOPIC_NAME_INVALID, "'#' at position 23");
	x.n = 0;
	bstr(&x, "building-one/floor-two/room");
	mk(0x30, &x);
	OK(dec(MQTT_V311));
}

Test(mqtt_3_3, packet_identifier_nonzero_MQTT_2_3_1_1)
{
	struct bld x = {.n = 0};

	bstr(&x, "t");
	b16(&x, 0);
	mk(0x32, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "packet identifier");
	x.n = 0;
	bstr(&x, "t");   /* QoS 1 without any identifier */
	mk(0x32, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "packet identifier");
}

Test(mqtt_3_3, empty_topic_name_MQTT_4_7_3_1)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	bstr(&x, "");
	mk(0x30, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_TOPIC_NAME_INVALID, "empty");
	x.n = 0;
	bstr(&x, "");
	bnoprops(&x);
	mk(0x30, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "topic alias");
	/* v5 with a topic alias: the broker resolves it */
	b8(&p, MQTT_PROP_TOPIC_ALIAS);
	b16(&p, 7);
	x.n = 0;
	bstr(&x, "");
	bprops(&x, &p);
	braw(&x, "data", 4);
	mk(0x30, &x);
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.publish.topic.len, 0);
	cr_assert_eq(pk.u.publish.props.topic_alias, 7);
	cr_assert(beq(pk.u.publish.payload, "data"));
}

Test(mqtt_3_3, subscription_identifier_from_client_MQTT_3_3_4_6)
{
	struct bld p = {.n = 0};

	b8(&p, MQTT_PROP_SUB_ID);
	bvbi(&p, 300);
	b8(&p, MQTT_PROP_SUB_ID);
	bvbi(&p, 5);
	publish_with_props(&p);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "[MQTT-3.3.4-6]");
	OK(decc(MQTT_V5));   /* a server may send several */
	cr_assert_eq(pk.u.publish.props.n_sub_ids, 2);
	cr_assert(pk.u.publish.props.sub_ids[0] == 300 && pk.u.publish.props.sub_ids[1] == 5);
}

Test(mqtt_3_3, publish_v311_fields)
{
	struct bld x = {.n = 0};

	bstr(&x, "a/b");
	b16(&x, 0x1234);
	braw(&x, "\x00\x01payload", 9);
	mk(0x3d, &x);   /* dup, qos 2, retain */
	OK(dec(MQTT_V311));
	const struct mqtt_publish *p = &pk.u.publish;
	cr_assert(p->dup && p->retain && p->qos == 2 && p->pid == 0x1234);
	cr_assert(beq(p->topic, "a/b"));
	cr_assert(p->payload.len == 9 && memcmp(p->payload.p, "\x00\x01payload", 9) == 0);
	cr_assert_eq(p->props.present, 0);
}

Test(mqtt_3_3, publish_empty_payload)
{
	struct bld x = {.n = 0};

	bstr(&x, "r");
	mk(0x31, &x);
	OK(dec(MQTT_V311));
	cr_assert_eq(pk.u.publish.payload.len, 0);
	cr_assert(pk.u.publish.retain);
}

Test(mqtt_3_3, publish_round_trip_v3)
{
	struct mqtt_wbuf w;
	struct mqtt_publish_out o = {.topic = B("x/y"), .payload = B("hi"), .qos = 1, .dup = true,
	                             .retain = true, .pid = 9};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V311, &o), 0);
	cr_assert_eq(w.len, mqtt_publish_size(MQTT_V311, &o));
	const uint8_t want[] = {0x3b, 0x09, 0x00, 0x03, 'x', '/', 'y', 0x00, 0x09, 'h', 'i'};
	cr_assert_eq(w.len, sizeof(want));
	cr_assert(memcmp(w.p, want, sizeof(want)) == 0);
	take(&w);
	OK(dec(MQTT_V31));
	cr_assert(pk.u.publish.dup && pk.u.publish.retain && pk.u.publish.pid == 9);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_3, publish_round_trip_v5_forwarded_properties)
{
	struct bld p = {.n = 0};
	struct mqtt_wbuf fwd, w;
	struct mqtt_publish in;
	uint32_t subs[] = {1, 200000};

	b8(&p, MQTT_PROP_PAYLOAD_FORMAT);
	b8(&p, 1);
	b8(&p, MQTT_PROP_MESSAGE_EXPIRY);
	b32(&p, 100);
	b8(&p, MQTT_PROP_CONTENT_TYPE);
	bstr(&p, "application/json");
	b8(&p, MQTT_PROP_RESPONSE_TOPIC);
	bstr(&p, "reply/1");
	b8(&p, MQTT_PROP_CORRELATION_DATA);
	bbin(&p, "\x00\xff", 2);
	b8(&p, MQTT_PROP_TOPIC_ALIAS);
	b16(&p, 4);
	b8(&p, MQTT_PROP_USER);
	bstr(&p, "u");
	bstr(&p, "1");
	publish_with_props(&p);
	OK(dec(MQTT_V5));
	in = pk.u.publish;

	mqtt_wbuf_init(&fwd);
	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_props_forward_encode(&in.props, &fwd), 0);
	/* the broker sends its own expiry, no alias, and the subscribers' ids */
	struct mqtt_publish_out o = {.topic = in.topic, .payload = in.payload, .qos = 1, .pid = 3,
	                             .fwd_props = {fwd.p, fwd.len}, .sub_ids = subs, .n_sub_ids = 2,
	                             .has_expiry = true, .message_expiry = 42};
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V5, &o), 0);
	cr_assert_eq(w.len, mqtt_publish_size(MQTT_V5, &o));
	take(&w);
	OK(decc(MQTT_V5));
	const struct mqtt_publish *q = &pk.u.publish;
	cr_assert(beq(q->topic, "t") && beq(q->payload, "pl") && q->qos == 1 && q->pid == 3);
	cr_assert_eq(q->props.payload_format, 1);
	cr_assert_eq(q->props.message_expiry, 42);
	cr_assert(beq(q->props.content_type, "application/json"));
	cr_assert(beq(q->props.response_topic, "reply/1"));
	cr_assert(q->props.correlation_data.len == 2);
	cr_assert_not(q->props.present & MQTT_PB_TOPIC_ALIAS);
	cr_assert(q->props.n_sub_ids == 2 && q->props.sub_ids[1] == 200000);
	cr_assert_eq(q->props.n_user, 1);
	mqtt_wbuf_free(&fwd);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_3, forward_encode_leaves_out_alias_expiry_sub_ids)
{
	struct mqtt_props pr;
	struct mqtt_wbuf w;

	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_TOPIC_ALIAS | MQTT_PB_MESSAGE_EXPIRY | MQTT_PB_SUB_ID;
	pr.topic_alias = 3;
	pr.message_expiry = 9;
	pr.sub_ids[0] = 4;
	pr.n_sub_ids = 1;
	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_props_forward_encode(&pr, &w), 0);
	cr_assert_eq(w.len, 0);
	pr.present |= MQTT_PB_CONTENT_TYPE;
	pr.content_type = B("ct");
	cr_assert_eq(mqtt_props_forward_encode(&pr, &w), 0);
	const uint8_t want[] = {0x03, 0x00, 0x02, 'c', 't'};
	cr_assert(w.len == sizeof(want) && memcmp(w.p, want, sizeof(want)) == 0);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_3, publish_encoder_refuses_out_of_range)
{
	struct mqtt_wbuf w;
	struct mqtt_publish_out o = {.topic = B("t"), .qos = 3, .pid = 1};

	mqtt_wbuf_init(&w);
	errno = 0;
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V311, &o), -1);
	cr_assert_eq(errno, EINVAL);
	o.qos = 1;
	o.pid = 0;
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V311, &o), -1);
	o.qos = 0;
	o.dup = true;
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V311, &o), -1);
	o.dup = false;
	o.topic = B("");
	o.topic_alias = 2;
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V311, &o), -1);   /* no aliases in v3 */
	cr_assert_eq(mqtt_publish_size(MQTT_V311, &o), 0);
	cr_assert_eq(w.len, 0);
	cr_assert_eq(mqtt_encode_publish(&w, MQTT_V5, &o), 0);   /* empty topic with an alias */
	cr_assert_gt(w.len, 0);
	mqtt_wbuf_free(&w);
}

/* ---- PUBACK PUBREC PUBREL PUBCOMP ---- */

Test(mqtt_3_6, pubrel_flags_must_be_2_MQTT_2_2_2_1)
{
	const uint8_t bad[] = {0x60, 0x02, 0x00, 0x01}, good[] = {0x62, 0x02, 0x00, 0x01},
	              puback2[] = {0x42, 0x02, 0x00, 0x01};

	mkraw(bad, sizeof(bad));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags 0x0 (must be 0x2)");
	mkraw(good, sizeof(good));
	OK(dec(MQTT_V311));
	cr_assert_eq(pk.u.ack.pid, 1);
	mkraw(puback2, sizeof(puback2));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags");
}

Test(mqtt_3_6, v31_pubrel_with_dup_accepted)
{
	const uint8_t p[] = {0x6a, 0x02, 0x00, 0x01};

	mkraw(p, sizeof(p));
	OK(dec(MQTT_V31));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags");
}

Test(mqtt_3_4, v3_ack_length_exactly_2)
{
	const uint8_t p[] = {0x40, 0x03, 0x00, 0x01, 0x00}, z[] = {0x40, 0x02, 0x00, 0x00};

	mkraw(p, sizeof(p));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "unexpected bytes");
	OK(dec(MQTT_V5));   /* v5: a reason code */
	mkraw(z, sizeof(z));
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "packet identifier");
}

Test(mqtt_3_4, v5_ack_short_forms)
{
	const uint8_t two[] = {0x50, 0x02, 0x00, 0x07}, three[] = {0x50, 0x03, 0x00, 0x07, 0x10};

	mkraw(two, sizeof(two));
	OK(dec(MQTT_V5));
	cr_assert(pk.type == MQTT_PUBREC && pk.u.ack.pid == 7 && pk.u.ack.reason == 0);
	mkraw(three, sizeof(three));
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.ack.reason, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	cr_assert_eq(pk.u.ack.props.present, 0);
}

Test(mqtt_3_4, v5_ack_reason_code_must_fit_MQTT_3_4_2_1)
{
	const uint8_t puback[] = {0x40, 0x03, 0x00, 0x07, 0x92},
	              pubcomp[] = {0x70, 0x03, 0x00, 0x07, 0x92};

	mkraw(puback, sizeof(puback));
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "0x92 not for PUBACK");
	mkraw(pubcomp, sizeof(pubcomp));
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.ack.reason, MQTT_RC_PID_NOT_FOUND);
}

Test(mqtt_3_4, ack_round_trip_all_types)
{
	static const enum mqtt_ptype ts[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
	struct mqtt_wbuf w;
	struct mqtt_props pr;

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_REASON_STRING;
	pr.reason_string = B("because");
	for (size_t i = 0; i < 4; i++) {
		uint8_t rc = ts[i] <= MQTT_PUBREC ? 0x87 : 0x92;
		cr_assert_eq(mqtt_encode_ack(&w, MQTT_V311, ts[i], 300, 0, NULL), 0);
		cr_assert_eq(w.len, 4);
		cr_assert_eq(w.p[0], ts[i] << 4 | (ts[i] == MQTT_PUBREL ? 2 : 0));
		take(&w);
		OK(dec(MQTT_V311));
		cr_assert(pk.type == ts[i] && pk.u.ack.pid == 300);

		cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, ts[i], 301, rc, &pr), 0);
		take(&w);
		OK(dec(MQTT_V5));
		cr_assert(pk.type == ts[i] && pk.u.ack.pid == 301 && pk.u.ack.reason == rc);
		cr_assert(beq(pk.u.ack.props.reason_string, "because"));
	}
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_4, v5_ack_success_omits_reason)
{
	struct mqtt_wbuf w;
	const uint8_t want[] = {0x40, 0x02, 0x00, 0x07}, want3[] = {0x40, 0x03, 0x00, 0x07, 0x10};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, MQTT_PUBACK, 7, 0, NULL), 0);
	cr_assert(w.len == 4 && memcmp(w.p, want, 4) == 0);
	w.len = 0;
	cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, MQTT_PUBACK, 7, 0x10, NULL), 0);
	cr_assert(w.len == 5 && memcmp(w.p, want3, 5) == 0);
	w.len = 0;
	cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, MQTT_PUBACK, 0, 0, NULL), -1);
	cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, MQTT_PUBACK, 1, 0x92, NULL), -1);
	cr_assert_eq(w.len, 0);
	mqtt_wbuf_free(&w);
}

/* ---- SUBSCRIBE ---- */

Test(mqtt_3_8, subscribe_flags_must_be_2_MQTT_3_8_1_1)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bstr(&x, "a");
	b8(&x, 0);
	mk(0x80, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags");
}

Test(mqtt_3_8, at_least_one_filter_MQTT_3_8_3_3)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	mk(0x82, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "no topic filter");
	bnoprops(&x);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "no topic filter");
}

Test(mqtt_3_8, requested_qos_reserved_bits_MQTT_3_8_3_4)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bstr(&x, "a");
	b8(&x, 0x04);
	mk(0x82, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "reserved bits");
	x.n = 0;
	b16(&x, 1);
	bstr(&x, "a");
	b8(&x, 0x03);
	mk(0x82, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "QoS 3");
}

Test(mqtt_3_8, v5_options_reserved_bits_MQTT_3_8_3_5)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bnoprops(&x);
	bstr(&x, "a");
	b8(&x, 0x40);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_MALFORMED, "reserved bits");
}

Test(mqtt_3_8, v5_retain_handling_3_is_protocol_error)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bnoprops(&x);
	bstr(&x, "a");
	b8(&x, 0x30);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "retain handling 3");
}

Test(mqtt_3_8, no_local_on_shared_subscription_MQTT_3_8_3_4)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bnoprops(&x);
	bstr(&x, "$share/g/a");
	b8(&x, 0x04);
	mk(0x82, &x);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "No Local");
}

Test(mqtt_3_8, empty_filter_MQTT_4_7_3_1)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bstr(&x, "");
	b8(&x, 0);
	mk(0x82, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "empty");
}

Test(mqtt_3_8, filter_utf8_MQTT_3_8_3_1)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bbin(&x, "a\0", 2);
	b8(&x, 0);
	mk(0x82, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "topic filter");
}

Test(mqtt_3_8, subscribe_round_trip_v5)
{
	struct mqtt_wbuf w;
	struct mqtt_props pr;
	struct mqtt_sub_entry in[2] = {
		{.filter = B("a/+/c"), .qos = 1, .no_local = true, .retain_as_published = true,
		 .retain_handling = 2},
		{.filter = B("$share/g/x/#"), .qos = 2},
	}, e;
	size_t pos = 0;

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_SUB_ID;
	pr.sub_ids[0] = 268435455;
	pr.n_sub_ids = 1;
	cr_assert_eq(mqtt_encode_subscribe(&w, MQTT_V5, 11, in, 2, &pr), 0);
	take(&w);
	OK(dec(MQTT_V5));
	const struct mqtt_subscribe *s = &pk.u.subscribe;
	cr_assert(pk.type == MQTT_SUBSCRIBE && s->pid == 11 && s->n == 2);
	cr_assert(s->props.n_sub_ids == 1 && s->props.sub_ids[0] == 268435455);
	cr_assert(mqtt_sub_next(s, MQTT_V5, &pos, &e));
	cr_assert(beq(e.filter, "a/+/c") && e.qos == 1 && e.no_local && e.retain_as_published &&
	          e.retain_handling == 2);
	cr_assert(mqtt_sub_next(s, MQTT_V5, &pos, &e));
	cr_assert(beq(e.filter, "$share/g/x/#") && e.qos == 2 && !e.no_local);
	cr_assert_not(mqtt_sub_next(s, MQTT_V5, &pos, &e));
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_8, subscribe_round_trip_v311)
{
	struct mqtt_wbuf w;
	struct mqtt_sub_entry in[3] = {{.filter = B("a")}, {.filter = B("b/#"), .qos = 2},
	                               {.filter = B("+"), .qos = 1}}, e;
	size_t pos = 0, n = 0;

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_subscribe(&w, MQTT_V311, 5, in, 3, NULL), 0);
	cr_assert_eq(w.p[0], 0x82);
	take(&w);
	OK(dec(MQTT_V311));
	cr_assert_eq(pk.u.subscribe.n, 3);
	while (mqtt_sub_next(&pk.u.subscribe, MQTT_V311, &pos, &e)) {
		cr_assert(e.filter.len == in[n].filter.len && e.qos == in[n].qos);
		n++;
	}
	cr_assert_eq(n, 3);
	cr_assert_eq(mqtt_encode_subscribe(&w, MQTT_V311, 0, in, 3, NULL), -1);
	cr_assert_eq(mqtt_encode_subscribe(&w, MQTT_V311, 1, in, 0, NULL), -1);
	mqtt_wbuf_free(&w);
}

/* ---- UNSUBSCRIBE ---- */

Test(mqtt_3_10, at_least_one_filter_MQTT_3_10_3_2)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	mk(0xa2, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "MQTT-3.10.3-2");
}

Test(mqtt_3_10, unsubscribe_flags_must_be_2_MQTT_3_10_1_1)
{
	struct bld x = {.n = 0};

	b16(&x, 1);
	bstr(&x, "a");
	mk(0xa0, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags");
}

Test(mqtt_3_10, unsubscribe_round_trip)
{
	struct mqtt_wbuf w;
	struct mqtt_bytes f[2] = {B("a/b"), B("c/#")}, g;
	struct mqtt_props pr;

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	for (int v = MQTT_V311; v <= MQTT_V5; v++) {
		size_t pos = 0;
		cr_assert_eq(mqtt_encode_unsubscribe(&w, (enum mqtt_ver)v, 77, f, 2, &pr), 0);
		take(&w);
		OK(dec((enum mqtt_ver)v));
		cr_assert(pk.type == MQTT_UNSUBSCRIBE && pk.u.subscribe.pid == 77 && pk.u.subscribe.n == 2);
		cr_assert(mqtt_unsub_next(&pk.u.subscribe, &pos, &g) && beq(g, "a/b"));
		cr_assert(mqtt_unsub_next(&pk.u.subscribe, &pos, &g) && beq(g, "c/#"));
		cr_assert_not(mqtt_unsub_next(&pk.u.subscribe, &pos, &g));
	}
	/* Subscription Identifier is not allowed in UNSUBSCRIBE */
	pr.present = MQTT_PB_SUB_ID;
	pr.sub_ids[0] = 1;
	pr.n_sub_ids = 1;
	cr_assert_eq(mqtt_encode_unsubscribe(&w, MQTT_V5, 77, f, 2, &pr), -1);
	mqtt_wbuf_free(&w);
}

/* ---- SUBACK, UNSUBACK ---- */

Test(mqtt_3_9, suback_both_ways)
{
	struct mqtt_wbuf w;
	const uint8_t c3[] = {0, 1, 2, 0x80}, c5[] = {0, 0x87, 0xa2};
	const uint8_t want[] = {0x90, 0x06, 0x00, 0x05, 0, 1, 2, 0x80};
	struct mqtt_props pr;

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_suback(&w, MQTT_V311, 5, c3, 4, NULL), 0);
	cr_assert(w.len == sizeof(want) && memcmp(w.p, want, sizeof(want)) == 0);
	take(&w);
	OK(decc(MQTT_V311));
	cr_assert(pk.u.suback.pid == 5 && pk.u.suback.codes.len == 4 && pk.u.suback.codes.p[3] == 0x80);
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "not sent by a client");

	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_REASON_STRING;
	pr.reason_string = B("acl");
	cr_assert_eq(mqtt_encode_suback(&w, MQTT_V5, 6, c5, 3, &pr), 0);
	take(&w);
	OK(decc(MQTT_V5));
	cr_assert(pk.u.suback.codes.len == 3 && pk.u.suback.codes.p[1] == 0x87);
	cr_assert(beq(pk.u.suback.props.reason_string, "acl"));
	/* v3 has no 0x87; v5 no 0x03 */
	cr_assert_eq(mqtt_encode_suback(&w, MQTT_V311, 5, c5, 3, NULL), -1);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_9, suback_bad_return_code)
{
	const uint8_t p[] = {0x90, 0x03, 0x00, 0x01, 0x03};

	mkraw(p, sizeof(p));
	FAILS(decc(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "return code 0x03");
}

Test(mqtt_3_11, unsuback_both_ways)
{
	struct mqtt_wbuf w;
	const uint8_t c5[] = {0x00, 0x11};
	const uint8_t want3[] = {0xb0, 0x02, 0x00, 0x09};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_unsuback(&w, MQTT_V311, 9, c5, 2, NULL), 0);
	cr_assert(w.len == 4 && memcmp(w.p, want3, 4) == 0);
	take(&w);
	OK(decc(MQTT_V311));
	cr_assert(pk.type == MQTT_UNSUBACK && pk.u.suback.pid == 9 && pk.u.suback.codes.len == 0);
	cr_assert_eq(mqtt_encode_unsuback(&w, MQTT_V5, 9, c5, 2, NULL), 0);
	take(&w);
	OK(decc(MQTT_V5));
	cr_assert(pk.u.suback.codes.len == 2 && pk.u.suback.codes.p[1] == 0x11);
	mqtt_wbuf_free(&w);
}

/* ---- CONNACK ---- */

Test(mqtt_3_2, connack_v3_bytes)
{
	struct mqtt_wbuf w;
	const uint8_t v311[] = {0x20, 0x02, 0x01, 0x00}, v31[] = {0x20, 0x02, 0x00, 0x00},
	              refused[] = {0x20, 0x02, 0x00, 0x05};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V311, true, 0, NULL), 0);
	cr_assert(w.len == 4 && memcmp(w.p, v311, 4) == 0);
	take(&w);
	OK(decc(MQTT_V311));
	cr_assert(pk.u.connack.session_present && pk.u.connack.reason == 0);
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V31, true, 0, NULL), 0);   /* no flag in 3.1 */
	cr_assert(w.len == 4 && memcmp(w.p, v31, 4) == 0);
	w.len = 0;
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V311, false, MQTT_V3_NOT_AUTHORIZED, NULL), 0);
	cr_assert(w.len == 4 && memcmp(w.p, refused, 4) == 0);
	w.len = 0;
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V311, false, 6, NULL), -1);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_2, session_present_with_refusal_MQTT_3_2_2_4)
{
	struct mqtt_wbuf w;
	const uint8_t p[] = {0x20, 0x02, 0x01, 0x02};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V5, true, 0x85, NULL), -1);
	cr_assert_eq(w.len, 0);
	mkraw(p, sizeof(p));
	FAILS(decc(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "session present");
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_2, connack_reserved_flags_MQTT_3_2_2_1)
{
	const uint8_t p[] = {0x20, 0x02, 0x02, 0x00};

	mkraw(p, sizeof(p));
	FAILS(decc(MQTT_V311), MQTT_RC_MALFORMED, "reserved");
}

Test(mqtt_3_2, connack_v5_properties_round_trip)
{
	struct mqtt_wbuf w;
	struct mqtt_props pr;

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_ASSIGNED_CLIENT_ID | MQTT_PB_MAXIMUM_QOS | MQTT_PB_RETAIN_AVAILABLE |
	             MQTT_PB_SERVER_KEEP_ALIVE | MQTT_PB_TOPIC_ALIAS_MAXIMUM |
	             MQTT_PB_RECEIVE_MAXIMUM | MQTT_PB_MAXIMUM_PACKET_SIZE |
	             MQTT_PB_WILDCARD_SUB_AVAILABLE | MQTT_PB_SUB_ID_AVAILABLE |
	             MQTT_PB_SHARED_SUB_AVAILABLE | MQTT_PB_SESSION_EXPIRY;
	pr.assigned_client_id = B("auto-7");
	pr.maximum_qos = 1;
	pr.retain_available = 1;
	pr.server_keep_alive = 90;
	pr.topic_alias_maximum = 10;
	pr.receive_maximum = 100;
	pr.maximum_packet_size = 1 << 20;
	pr.wildcard_sub_available = 1;
	pr.session_expiry = 0xffffffffu;
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V5, true, 0, &pr), 0);
	take(&w);
	OK(decc(MQTT_V5));
	const struct mqtt_props *q = &pk.u.connack.props;
	cr_assert(pk.u.connack.session_present);
	cr_assert_eq(q->present, pr.present);
	cr_assert(beq(q->assigned_client_id, "auto-7"));
	cr_assert(q->maximum_qos == 1 && q->server_keep_alive == 90 && q->receive_maximum == 100);
	cr_assert(q->maximum_packet_size == (1u << 20) && q->session_expiry == 0xffffffffu);
	cr_assert(q->sub_id_available == 0 && q->shared_sub_available == 0);

	/* refusal with the v5 reason for an unsupported protocol version */
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V5, false, MQTT_RC_UNSUPPORTED_VERSION, NULL), 0);
	const uint8_t want[] = {0x20, 0x03, 0x00, 0x84, 0x00};
	cr_assert(w.len == 5 && memcmp(w.p, want, 5) == 0);
	/* Topic Alias is not a CONNACK property */
	w.len = 0;
	pr.present = MQTT_PB_TOPIC_ALIAS;
	pr.topic_alias = 1;
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V5, false, 0, &pr), -1);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_2, connack_from_client_refused)
{
	const uint8_t p[] = {0x20, 0x02, 0x00, 0x00};

	mkraw(p, sizeof(p));
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "not sent by a client");
}

/* ---- PINGREQ, PINGRESP ---- */

Test(mqtt_3_12, ping_both_ways)
{
	struct mqtt_wbuf w;
	const uint8_t extra[] = {0xc0, 0x01, 0x00}, flags[] = {0xc1, 0x00};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_pingreq(&w), 0);
	cr_assert(w.len == 2 && w.p[0] == 0xc0 && w.p[1] == 0);
	take(&w);
	OK(dec(MQTT_V311));
	cr_assert_eq(pk.type, MQTT_PINGREQ);
	cr_assert_eq(mqtt_encode_pingresp(&w), 0);
	cr_assert(w.len == 2 && w.p[0] == 0xd0);
	take(&w);
	OK(decc(MQTT_V5));
	cr_assert_eq(pk.type, MQTT_PINGRESP);
	mkraw(extra, sizeof(extra));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "unexpected bytes");
	mkraw(flags, sizeof(flags));
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "flags");
	mqtt_wbuf_free(&w);
}

/* ---- DISCONNECT ---- */

Test(mqtt_3_14, disconnect_v3)
{
	const uint8_t ok[] = {0xe0, 0x00}, extra[] = {0xe0, 0x01, 0x00}, fl[] = {0xe2, 0x00};

	mkraw(ok, 2);
	OK(dec(MQTT_V311));
	cr_assert_eq(pk.type, MQTT_DISCONNECT);
	mkraw(extra, 3);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, NULL);
	mkraw(fl, 2);
	FAILS(dec(MQTT_V311), MQTT_RC_MALFORMED, "[MQTT-2.2.2-1]");
}

Test(mqtt_3_14, disconnect_v5_round_trip)
{
	struct mqtt_wbuf w;
	struct mqtt_props pr;
	const uint8_t bare[] = {0xe0, 0x00}, one[] = {0xe0, 0x01, 0x04};

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	cr_assert_eq(mqtt_encode_disconnect(&w, MQTT_V5, 0, &pr), 0);
	cr_assert(w.len == 2 && memcmp(w.p, bare, 2) == 0);
	w.len = 0;
	pr.present = MQTT_PB_REASON_STRING | MQTT_PB_SERVER_REFERENCE;
	pr.reason_string = B("shutting down");
	pr.server_reference = B("other:8883");
	cr_assert_eq(mqtt_encode_disconnect(&w, MQTT_V5, MQTT_RC_SERVER_SHUTTING_DOWN, &pr), 0);
	take(&w);
	OK(decc(MQTT_V5));
	cr_assert_eq(pk.u.disconnect.reason, MQTT_RC_SERVER_SHUTTING_DOWN);
	cr_assert(beq(pk.u.disconnect.props.server_reference, "other:8883"));
	mkraw(one, 3);   /* reason without property length */
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.disconnect.reason, MQTT_RC_DISCONNECT_WITH_WILL);
	mqtt_wbuf_free(&w);
}

Test(mqtt_3_14, session_expiry_from_server_MQTT_3_14_2_2)
{
	struct bld x = {.n = 0}, p = {.n = 0};

	b8(&p, MQTT_PROP_SESSION_EXPIRY);
	b32(&p, 10);
	b8(&x, 0);
	bprops(&x, &p);
	mk(0xe0, &x);
	OK(dec(MQTT_V5));   /* from a client: allowed (the broker checks it against CONNECT) */
	cr_assert_eq(pk.u.disconnect.props.session_expiry, 10);
	FAILS(decc(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "[MQTT-3.14.2-2]");
}

Test(mqtt_3_14, disconnect_reason_code_must_fit)
{
	const uint8_t p[] = {0xe0, 0x01, 0x01};

	mkraw(p, 3);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "0x01 not for DISCONNECT");
}

/* ---- AUTH ---- */

Test(mqtt_3_15, auth_round_trip)
{
	struct mqtt_wbuf w;
	struct mqtt_props pr;
	const uint8_t bare[] = {0xf0, 0x00}, bad[] = {0xf0, 0x02, 0x05, 0x00};

	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_AUTH_METHOD | MQTT_PB_AUTH_DATA;
	pr.auth_method = B("SCRAM-SHA-1");
	pr.auth_data = B("nonce");
	cr_assert_eq(mqtt_encode_auth(&w, MQTT_RC_CONTINUE_AUTH, &pr), 0);
	take(&w);
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.type, MQTT_AUTH);
	cr_assert_eq(pk.u.auth.reason, MQTT_RC_CONTINUE_AUTH);
	cr_assert(beq(pk.u.auth.props.auth_method, "SCRAM-SHA-1"));
	cr_assert(beq(pk.u.auth.props.auth_data, "nonce"));
	OK(decc(MQTT_V5));
	mkraw(bare, 2);
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.auth.reason, 0);
	mkraw(bad, 4);
	FAILS(dec(MQTT_V5), MQTT_RC_PROTOCOL_ERROR, "not for AUTH");
	cr_assert_eq(mqtt_encode_auth(&w, 0x87, NULL), -1);
	mqtt_wbuf_free(&w);
}

/* ---- misc ---- */

Test(mqtt_misc, names)
{
	cr_assert_str_eq(mqtt_reason_name(0x81), "Malformed Packet");
	cr_assert_str_eq(mqtt_reason_name(0x84), "Unsupported Protocol Version");
	cr_assert_str_eq(mqtt_reason_name(0xA2), "Wildcard Subscriptions not supported");
	cr_assert_str_eq(mqtt_reason_name(0x03), "Unknown reason code");
	cr_assert_str_eq(mqtt_ptype_name(MQTT_PUBREL), "PUBREL");
	cr_assert_str_eq(mqtt_ptype_name(MQTT_AUTH), "AUTH");
	cr_assert_str_eq(mqtt_ptype_name(0), "reserved");
	cr_assert_str_eq(mqtt_ptype_name(16), "reserved");
}

Test(mqtt_misc, encoder_failure_leaves_buffer_unchanged)
{
	struct mqtt_wbuf w;
	struct mqtt_props pr;
	struct mqtt_sub_entry e = {.filter = B("a"), .qos = 3};

	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_encode_pingreq(&w), 0);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_RECEIVE_MAXIMUM;   /* 0: not encodable */
	cr_assert_eq(mqtt_encode_connack(&w, MQTT_V5, false, 0, &pr), -1);
	cr_assert_eq(mqtt_encode_subscribe(&w, MQTT_V5, 1, &e, 1, NULL), -1);
	pr.present = MQTT_PB_USER;   /* claims a user property raw does not hold */
	pr.n_user = 1;
	cr_assert_eq(mqtt_encode_disconnect(&w, MQTT_V5, 0, &pr), -1);
	cr_assert_eq(w.len, 2);
	mqtt_wbuf_free(&w);
}

Test(mqtt_misc, user_properties_built_by_append)
{
	struct mqtt_wbuf ub, w;
	struct mqtt_props pr;
	struct mqtt_bytes k, v;
	size_t pos = 0;

	mqtt_wbuf_init(&ub);
	mqtt_wbuf_init(&w);
	cr_assert_eq(mqtt_user_append(&ub, "a", 1, "1", 1), 0);
	cr_assert_eq(mqtt_user_append(&ub, "b", 1, "", 0), 0);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_USER;
	pr.n_user = 2;
	pr.raw = (struct mqtt_bytes){ub.p, ub.len};
	cr_assert_eq(mqtt_encode_ack(&w, MQTT_V5, MQTT_PUBACK, 1, 0, &pr), 0);
	take(&w);
	OK(dec(MQTT_V5));
	cr_assert_eq(pk.u.ack.props.n_user, 2);
	cr_assert(mqtt_user_next(&pk.u.ack.props, &pos, &k, &v) && beq(k, "a") && beq(v, "1"));
	cr_assert(mqtt_user_next(&pk.u.ack.props, &pos, &k, &v) && beq(k, "b") && v.len == 0);
	mqtt_wbuf_free(&ub);
	mqtt_wbuf_free(&w);
}

Test(mqtt_misc, error_text_names_packet_and_offset)
{
	struct bld x = {.n = 0};

	bstr(&x, "ok/t");
	b16(&x, 0);
	mk(0x32, &x);
	FAILS(dec(MQTT_V311), MQTT_RC_PROTOCOL_ERROR, "PUBLISH: packet identifier at offset 8");
	cr_assert(strchr(er.text, '\n') == NULL);
}

/* Deterministic mutations of valid packets: nothing crashes or reads out
 * of bounds (the ASan build checks), every refusal has a reason, every
 * acceptance re-encodes when it is a PUBLISH. */
static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

Test(mqtt_misc, mutation_loop, .timeout = 60)
{
	struct mqtt_wbuf w, seeds[6];
	struct mqtt_sub_entry e = {.filter = B("a/+"), .qos = 1, .retain_handling = 1};
	struct mqtt_props pr;
	struct mqtt_connect c;
	size_t accepted = 0, refused = 0;

	for (int i = 0; i < 6; i++)
		mqtt_wbuf_init(&seeds[i]);
	mqtt_wbuf_init(&w);
	memset(&pr, 0, sizeof(pr));
	pr.present = MQTT_PB_REASON_STRING;
	pr.reason_string = B("r");
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V5;
	c.client_id = B("cid");
	c.will = true;
	c.will_topic = B("w");
	c.will_props.present = MQTT_PB_WILL_DELAY;
	struct mqtt_publish_out o = {.topic = B("s/t"), .payload = B("pp"), .qos = 2, .pid = 4,
	                             .has_expiry = true, .message_expiry = 5, .topic_alias = 2};
	cr_assert_eq(mqtt_encode_connect(&seeds[0], &c), 0);
	cr_assert_eq(mqtt_encode_publish(&seeds[1], MQTT_V5, &o), 0);
	cr_assert_eq(mqtt_encode_subscribe(&seeds[2], MQTT_V5, 3, &e, 1, NULL), 0);
	cr_assert_eq(mqtt_encode_ack(&seeds[3], MQTT_V5, MQTT_PUBREL, 3, 0x92, &pr), 0);
	cr_assert_eq(mqtt_encode_disconnect(&seeds[4], MQTT_V5, 0x8b, &pr), 0);
	cr_assert_eq(mqtt_encode_unsubscribe(&seeds[5], MQTT_V5, 3, &e.filter, 1, NULL), 0);

	for (int it = 0; it < 60000; it++) {
		struct mqtt_wbuf *s = &seeds[rnd() % 6];
		uint8_t buf[256];
		size_t n = s->len;
		int muts = 1 + (int)(rnd() % 4);
		enum mqtt_ver v = (enum mqtt_ver)(3 + rnd() % 3);

		memcpy(buf, s->p, n);
		for (int m = 0; m < muts; m++) {
			size_t at = rnd() % n;
			switch (rnd() % 3) {
			case 0: buf[at] = (uint8_t)rnd(); break;
			case 1: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
			default: if (n > 2) n--; break;   /* truncate */
			}
		}
		memset(&er, 0, sizeof(er));
		if (mqtt_decode_ex(buf, n, s == &seeds[0] ? 0 : v, rnd() % 2 ? MQTT_DEC_CLIENT : 0,
		                   &pk, &er) == 0) {
			accepted++;
			if (pk.type == MQTT_PUBLISH && v != MQTT_V5 && s != &seeds[0]) {
				struct mqtt_publish_out q = {.topic = pk.u.publish.topic,
				                             .payload = pk.u.publish.payload,
				                             .qos = pk.u.publish.qos, .pid = pk.u.publish.pid,
				                             .dup = pk.u.publish.dup,
				                             .retain = pk.u.publish.retain};
				w.len = 0;
				cr_assert_eq(mqtt_encode_publish(&w, v, &q), 0);
			}
		} else {
			refused++;
			cr_assert(er.reason != 0 && er.text[0] != '\0');
		}
	}
	cr_assert(accepted > 100 && refused > 100, "accepted %zu refused %zu", accepted, refused);
	for (int i = 0; i < 6; i++)
		mqtt_wbuf_free(&seeds[i]);
	mqtt_wbuf_free(&w);
}
