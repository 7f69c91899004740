/* libFuzzer target for the MQTT packet codec (src/mqtt/mqtt_codec.c, pure).
 *
 * The input is one packet as a peer would send it.  It is decoded as a
 * server does (before CONNECT, then under 3.1, 3.1.1 and 5.0) and as a
 * client does (under each version).  Beyond "never crash, never read out
 * of bounds", it checks:
 *   - a refused packet always has a reason code and a text;
 *   - the fixed header parser agrees with the decoder, and asks for more
 *     bytes only when the header is really incomplete;
 *   - every accepted packet re-encodes (the encoders accept what the
 *     decoder accepts), the re-encoding decodes under the same rules, and
 *     encoding that again gives the same bytes (one canonical form);
 *   - a PUBLISH re-encoded from its decoded fields and its forwardable
 *     properties decodes to the same fields, and mqtt_publish_size tells
 *     its exact size;
 *   - SUBSCRIBE / UNSUBSCRIBE iterators yield exactly n entries.
 * Run: fuzz/run.sh [seconds] mqtt */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chand/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool bytes_eq(struct mqtt_bytes a, struct mqtt_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void check_users_eq(const struct mqtt_props *a, const struct mqtt_props *b)
{
	struct mqtt_bytes ka, va, kb, vb;
	size_t pa = 0, pb = 0, n = 0;

	if (a->n_user != b->n_user)
		abort();
	while (mqtt_user_next(a, &pa, &ka, &va)) {
		if (!mqtt_user_next(b, &pb, &kb, &vb) || !bytes_eq(ka, kb) || !bytes_eq(va, vb))
			abort();
		n++;
	}
	if (n != a->n_user || mqtt_user_next(b, &pb, &kb, &vb))
		abort();
}

/* Builds what the broker would send for a decoded PUBLISH. */
static int publish_out(const struct mqtt_publish *p, enum mqtt_ver v, struct mqtt_wbuf *fwd,
                       struct mqtt_publish_out *o)
{
	memset(o, 0, sizeof(*o));
	o->topic = p->topic;
	o->payload = p->payload;
	o->qos = p->qos;
	o->retain = p->retain;
	o->dup = p->dup;
	o->pid = p->pid;
	if (v == MQTT_V5) {
		if (mqtt_props_forward_encode(&p->props, fwd) != 0)
			return -1;
		o->fwd_props.p = fwd->p;
		o->fwd_props.len = fwd->len;
		o->sub_ids = p->props.sub_ids;
		o->n_sub_ids = p->props.n_sub_ids;
		o->has_expiry = p->props.present & MQTT_PB_MESSAGE_EXPIRY;
		o->message_expiry = p->props.message_expiry;
		o->topic_alias = (p->props.present & MQTT_PB_TOPIC_ALIAS) ? p->props.topic_alias : 0;
	}
	return 0;
}

static void check_publish_eq(const struct mqtt_publish *a, const struct mqtt_publish *b)
{
	const struct mqtt_props *x = &a->props, *y = &b->props;

	if (!bytes_eq(a->topic, b->topic) || !bytes_eq(a->payload, b->payload) ||
	    a->qos != b->qos || a->retain != b->retain || a->dup != b->dup || a->pid != b->pid)
		abort();
	if (x->present != y->present || x->payload_format != y->payload_format ||
	    x->message_expiry != y->message_expiry || x->topic_alias != y->topic_alias ||
	    !bytes_eq(x->content_type, y->content_type) ||
	    !bytes_eq(x->response_topic, y->response_topic) ||
	    !bytes_eq(x->correlation_data, y->correlation_data) || x->n_sub_ids != y->n_sub_ids ||
	    memcmp(x->sub_ids, y->sub_ids, x->n_sub_ids * sizeof(x->sub_ids[0])) != 0)
		abort();
	check_users_eq(x, y);
}

/* Encodes a decoded packet back; 0 or -1 (only out of memory may fail). */
static int reencode(struct mqtt_wbuf *w, const struct mqtt_packet *pk, enum mqtt_ver v)
{
	int rc = -1;

	switch (pk->type) {
	case MQTT_CONNECT:
		return mqtt_encode_connect(w, &pk->u.connect);
	case MQTT_CONNACK:
		return mqtt_encode_connack(w, v, pk->u.connack.session_present, pk->u.connack.reason,
		                           &pk->u.connack.props);
	case MQTT_PUBLISH: {
		struct mqtt_wbuf fwd;
		struct mqtt_publish_out o;
		mqtt_wbuf_init(&fwd);
		if (publish_out(&pk->u.publish, v, &fwd, &o) == 0) {
			size_t before = w->len, want = mqtt_publish_size(v, &o);
			rc = mqtt_encode_publish(w, v, &o);
			if (rc == 0 && w->len - before != want)
				abort();
		}
		mqtt_wbuf_free(&fwd);
		return rc;
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return mqtt_encode_ack(w, v, pk->type, pk->u.ack.pid, pk->u.ack.reason,
		                       &pk->u.ack.props);
	case MQTT_SUBSCRIBE: {
		const struct mqtt_subscribe *s = &pk->u.subscribe;
		struct mqtt_sub_entry *e = calloc(s->n, sizeof(*e));
		size_t pos = 0, n = 0;
		if (!e)
			return -1;
		while (n < s->n && mqtt_sub_next(s, v, &pos, &e[n]))
			n++;
		if (n != s->n || pos != s->payload.len || mqtt_sub_next(s, v, &pos, &e[0]))
			abort();
		rc = mqtt_encode_subscribe(w, v, s->pid, e, n, &s->props);
		free(e);
		return rc;
	}
	case MQTT_UNSUBSCRIBE: {
		const struct mqtt_subscribe *s = &pk->u.subscribe;
		struct mqtt_bytes *f = calloc(s->n, sizeof(*f));
		size_t pos = 0, n = 0;
		if (!f)
			return -1;
		while (n < s->n && mqtt_unsub_next(s, &pos, &f[n]))
			n++;
		if (n != s->n || pos != s->payload.len || mqtt_unsub_next(s, &pos, &f[0]))
			abort();
		rc = mqtt_encode_unsubscribe(w, v, s->pid, f, n, &s->props);
		free(f);
		return rc;
	}
	case MQTT_SUBACK:
		return mqtt_encode_suback(w, v, pk->u.suback.pid, pk->u.suback.codes.p,
		                          pk->u.suback.codes.len, &pk->u.suback.props);
	case MQTT_UNSUBACK:
		return mqtt_encode_unsuback(w, v, pk->u.suback.pid, pk->u.suback.codes.p,
		                            pk->u.suback.codes.len, &pk->u.suback.props);
	case MQTT_PINGREQ:
		return mqtt_encode_pingreq(w);
	case MQTT_PINGRESP:
		return mqtt_encode_pingresp(w);
	case MQTT_DISCONNECT:
		return mqtt_encode_disconnect(w, v, pk->u.disconnect.reason, &pk->u.disconnect.props);
	case MQTT_AUTH:
		return mqtt_encode_auth(w, pk->u.auth.reason, &pk->u.auth.props);
	}
	abort();
}

static void one(const uint8_t *data, size_t size, enum mqtt_ver ver, unsigned flags)
{
	struct mqtt_packet pk, pk2, pk3;
	struct mqtt_error err;
	struct mqtt_wbuf b1, b2;
	enum mqtt_ver v;

	if (mqtt_decode_ex(data, size, ver, flags, &pk, &err) != 0) {
		if (err.reason == 0 || err.text[0] == '\0')
			abort();
		return;
	}
	v = pk.type == MQTT_CONNECT ? pk.u.connect.version : ver;
	mqtt_wbuf_init(&b1);
	mqtt_wbuf_init(&b2);
	if (reencode(&b1, &pk, v) != 0)
		abort();     /* the decoder accepted what the encoder refuses */
	if (mqtt_decode_ex(b1.p, b1.len, ver, flags, &pk2, &err) != 0)
		abort();     /* the encoder wrote what the decoder refuses */
	if (pk2.type != pk.type)
		abort();
	if (pk.type == MQTT_PUBLISH)
		check_publish_eq(&pk.u.publish, &pk2.u.publish);
	if (reencode(&b2, &pk2, v) != 0 || b2.len != b1.len || memcmp(b1.p, b2.p, b1.len) != 0)
		abort();
	if (mqtt_decode_ex(b2.p, b2.len, ver, flags, &pk3, &err) != 0)
		abort();
	mqtt_wbuf_free(&b1);
	mqtt_wbuf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum mqtt_ver vers[] = {MQTT_V31, MQTT_V311, MQTT_V5};
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	int rc = mqtt_fixed_header(data, size, &tf, &rem, &hl);

	if (rc == MQTT_NEED_MORE) {
		/* incomplete only if every byte after the first continues */
		for (size_t i = 1; i < size; i++)
			if (i >= 5 || !(data[i] & 0x80))
				abort();
	} else if (rc == MQTT_OK) {
		if (hl < 2 || hl > MQTT_FIXED_HEADER_MAX || hl > size || tf != data[0] ||
		    rem > MQTT_REMAINING_MAX)
			abort();
	}

	one(data, size, 0, 0);
	for (size_t i = 0; i < 3; i++) {
		one(data, size, vers[i], 0);
		one(data, size, vers[i], MQTT_DEC_CLIENT);
	}
	return 0;
}
