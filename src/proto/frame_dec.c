/* Frame codec: payload decoders.  Every read is bounds-checked against
 * the payload; every field is validated; nothing may trail. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/frame.h"
#include "frame_int.h"

struct rd {
	const uint8_t *p;
	size_t n, off;
	const char *what;     /* frame type name for messages */
	struct frame_err *err;
};

static bool rd_fail(struct rd *r, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool rd_fail(struct rd *r, const char *field, const char *fmt, ...)
{
	char tmp[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	frame_seterr(r->err, "%s: %s: %s", r->what, field, tmp);
	return false;
}

static bool rd_need(struct rd *r, const char *field, size_t k)
{
	if (k > r->n - r->off)
		return rd_fail(r, field, "truncated (needs %zu bytes at offset %zu, payload is %zu)",
		               k, r->off, r->n);
	return true;
}

static bool rd_u8(struct rd *r, const char *field, uint8_t *v)
{
	if (!rd_need(r, field, 1))
		return false;
	*v = r->p[r->off++];
	return true;
}

static bool rd_u16(struct rd *r, const char *field, uint16_t *v)
{
	if (!rd_need(r, field, 2))
		return false;
	*v = be16_get(r->p + r->off);
	r->off += 2;
	return true;
}

static bool rd_u32(struct rd *r, const char *field, uint32_t *v)
{
	if (!rd_need(r, field, 4))
		return false;
	*v = be32_get(r->p + r->off);
	r->off += 4;
	return true;
}

static bool rd_u64(struct rd *r, const char *field, uint64_t *v)
{
	if (!rd_need(r, field, 8))
		return false;
	*v = be64_get(r->p + r->off);
	r->off += 8;
	return true;
}

/* u32 in [lo, hi] */
static bool rd_u32r(struct rd *r, const char *field, uint32_t lo, uint32_t hi, uint32_t *v)
{
	if (!rd_u32(r, field, v))
		return false;
	if (*v < lo || *v > hi)
		return rd_fail(r, field, "%u outside %u-%u", *v, lo, hi);
	return true;
}

/* A length-prefixed (u8) string; returns its bytes in place. */
static bool rd_str8(struct rd *r, const char *field, const uint8_t **s, size_t *len)
{
	uint8_t l;

	if (!rd_u8(r, field, &l) || !rd_need(r, field, l))
		return false;
	*s = r->p + r->off;
	*len = l;
	r->off += l;
	return true;
}

enum name_opt { NAME_REQUIRED, NAME_OPTIONAL };

static bool rd_name(struct rd *r, const char *field, enum name_opt opt,
                    char out[FRAME_NAME_MAX + 1])
{
	const uint8_t *s;
	size_t len;
	char why[128];

	if (!rd_str8(r, field, &s, &len))
		return false;
	if (len == 0) {
		if (opt == NAME_REQUIRED)
			return rd_fail(r, field, "empty");
		out[0] = '\0';
		return true;
	}
	if (!frame_name_ok(s, len, why, sizeof(why)))
		return rd_fail(r, field, "%s", why);
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static bool rd_cipher(struct rd *r, char out[FRAME_CIPHER_MAX + 1])
{
	const uint8_t *s;
	size_t len;

	if (!rd_str8(r, "sslciph", &s, &len))
		return false;
	if (!frame_cipher_ok(s, len))
		return rd_fail(r, "sslciph", "not a CipherSpec name (A-Z a-z 0-9 _, at most %d)",
		               FRAME_CIPHER_MAX);
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static bool rd_chtype(struct rd *r, uint8_t *v)
{
	if (!rd_u8(r, "channel type", v))
		return false;
	if (*v < FRAME_CH_SDR || *v > FRAME_CH_RQSTR)
		return rd_fail(r, "channel type", "unknown type %u", *v);
	return true;
}

/* BATCHSZ, MAXMSGL, HBINT, SEQWRAP in that order. */
static bool rd_values(struct rd *r, uint32_t *batchsz, uint32_t *maxmsgl, uint32_t *hbint,
                      uint32_t *seqwrap)
{
	return rd_u32r(r, "BATCHSZ", 1, FRAME_BATCHSZ_MAX, batchsz) &&
	       rd_u32r(r, "MAXMSGL", 1, FRAME_MAXMSGL_MAX, maxmsgl) &&
	       rd_u32r(r, "HBINT", 0, FRAME_HBINT_MAX, hbint) &&
	       rd_u32r(r, "SEQWRAP", FRAME_SEQWRAP_MIN, FRAME_SEQWRAP_MAX, seqwrap);
}

static bool rd_end(struct rd *r)
{
	if (r->off != r->n)
		return rd_fail(r, "payload", "%zu trailing bytes", r->n - r->off);
	return true;
}

static bool dec_init(struct rd *r, uint16_t flags, struct frame_init *f)
{
	f->ping = (flags & FRAME_F_INIT_PING) != 0;
	if (!rd_u8(r, "min version", &f->min_version) || !rd_u8(r, "max version", &f->max_version))
		return false;
	if (f->min_version < 1 || f->min_version > f->max_version)
		return rd_fail(r, "versions", "bad range %u-%u", f->min_version, f->max_version);
	return rd_chtype(r, &f->chtype) && rd_name(r, "channel", NAME_REQUIRED, f->channel) &&
	       rd_name(r, "qmgr", NAME_REQUIRED, f->qmgr) &&
	       rd_name(r, "peer qmgr", NAME_OPTIONAL, f->peer_qmgr) &&
	       rd_values(r, &f->batchsz, &f->maxmsgl, &f->hbint, &f->seqwrap) &&
	       rd_cipher(r, f->sslciph) && rd_end(r);
}

static bool dec_init_ack(struct rd *r, struct frame_init_ack *f)
{
	if (!rd_u8(r, "version", &f->version))
		return false;
	if (f->version < 1)
		return rd_fail(r, "version", "0 is not a version");
	return rd_chtype(r, &f->chtype) && rd_name(r, "qmgr", NAME_REQUIRED, f->qmgr) &&
	       rd_values(r, &f->batchsz, &f->maxmsgl, &f->hbint, &f->seqwrap) &&
	       rd_cipher(r, f->sslciph) && rd_end(r);
}

static bool dec_error(struct rd *r, struct frame_error *f)
{
	const uint8_t *s;
	size_t len;
	uint16_t tl;

	if (!rd_str8(r, "code", &s, &len))
		return false;
	if (!frame_code_ok(s, len))
		return rd_fail(r, "code", "not CHDnnnn");
	memcpy(f->code, s, len);
	f->code[len] = '\0';
	if (!rd_u16(r, "text", &tl))
		return false;
	if (tl > FRAME_TEXT_MAX)
		return rd_fail(r, "text", "%u bytes (at most %d)", tl, FRAME_TEXT_MAX);
	if (!rd_need(r, "text", tl))
		return false;
	if (!frame_text_ok(r->p + r->off, tl))
		return rd_fail(r, "text", "not one line of UTF-8");
	memcpy(f->text, r->p + r->off, tl);
	f->text[tl] = '\0';
	r->off += tl;
	return rd_end(r);
}

static bool dec_resync(struct rd *r, uint16_t flags, struct frame_resync *f)
{
	f->indoubt = (flags & FRAME_F_RESYNC_INDOUBT) != 0;
	f->reset = (flags & FRAME_F_RESYNC_RESET) != 0;
	if (f->indoubt && f->reset)
		return rd_fail(r, "flags", "INDOUBT and RESET together");
	if (!rd_u64(r, "batch id", &f->batch_id) ||
	    !rd_u32r(r, "seq", 0, FRAME_SEQWRAP_MAX, &f->seq) ||
	    !rd_u64(r, "in-doubt batch id", &f->indoubt_batch) ||
	    !rd_u32r(r, "in-doubt seq", 0, FRAME_SEQWRAP_MAX, &f->indoubt_seq) ||
	    !rd_u32r(r, "in-doubt count", 0, FRAME_BATCHSZ_MAX, &f->indoubt_count))
		return false;
	if (f->indoubt) {
		if (f->indoubt_batch == 0 || f->indoubt_count == 0)
			return rd_fail(r, "in-doubt batch", "id and count must be non-zero");
		if (f->indoubt_batch <= f->batch_id)
			return rd_fail(r, "in-doubt batch", "id %llu not after committed %llu",
			               (unsigned long long)f->indoubt_batch,
			               (unsigned long long)f->batch_id);
	} else if (f->indoubt_batch != 0 || f->indoubt_seq != 0 || f->indoubt_count != 0) {
		return rd_fail(r, "in-doubt batch", "fields set without the INDOUBT flag");
	}
	return rd_end(r);
}

static bool dec_resync_ack(struct rd *r, uint16_t flags, struct frame_resync_ack *f)
{
	f->committed = (flags & FRAME_F_RESYNC_COMMITTED) != 0;
	return rd_u64(r, "batch id", &f->batch_id) &&
	       rd_u32r(r, "seq", 0, FRAME_SEQWRAP_MAX, &f->seq) && rd_end(r);
}

static bool rd_i64r(struct rd *r, const char *field, int64_t hi, int64_t *v)
{
	uint64_t u;

	if (!rd_u64(r, field, &u))
		return false;
	if (u > (uint64_t)hi)
		return rd_fail(r, field, "%llu outside 0-%lld", (unsigned long long)u, (long long)hi);
	*v = (int64_t)u;
	return true;
}

static bool dec_msg(struct rd *r, uint16_t flags, struct frame_msg *f)
{
	const uint8_t *s;
	size_t len;
	uint8_t prio;
	uint32_t l;

	f->persistent = (flags & FRAME_F_MSG_PERSISTENT) != 0;
	if (!rd_u64(r, "batch id", &f->batch_id) || !rd_u32(r, "seq", &f->seq))
		return false;
	if (f->batch_id == 0)
		return rd_fail(r, "batch id", "0 is not a batch");
	if (f->persistent ? (f->seq == 0 || f->seq > FRAME_SEQWRAP_MAX) : f->seq != 0)
		return rd_fail(r, "seq", "%u invalid for a %s message", f->seq,
		               f->persistent ? "persistent" : "nonpersistent");
	if (!rd_u8(r, "priority", &prio))
		return false;
	if (prio > MSG_PRIORITY_MAX)
		return rd_fail(r, "priority", "%u outside 0-%d", prio, MSG_PRIORITY_MAX);
	f->priority = prio;
	if (!rd_need(r, "msgid", 2 * MSG_ID_LEN))
		return false;
	memcpy(f->msgid, r->p + r->off, MSG_ID_LEN);
	memcpy(f->correlid, r->p + r->off + MSG_ID_LEN, MSG_ID_LEN);
	r->off += 2 * MSG_ID_LEN;
	if (!rd_i64r(r, "put time", INT64_MAX, &f->put_time_ms) ||
	    !rd_i64r(r, "expiry", FRAME_EXPIRY_MAX_MS, &f->expiry_remaining_ms) ||
	    !rd_name(r, "xmit qmgr", NAME_REQUIRED, f->xmit_qm) ||
	    !rd_name(r, "xmit queue", NAME_REQUIRED, f->xmit_q))
		return false;
	if (!rd_str8(r, "format", &s, &len))
		return false;
	if (!frame_format_ok(s, len))
		return rd_fail(r, "format", "not up to %d printable ASCII characters",
		               FRAME_FORMAT_MAX);
	memcpy(f->format, s, len);
	f->format[len] = '\0';
	if (!rd_name(r, "reply queue", NAME_OPTIONAL, f->reply_q) ||
	    !rd_name(r, "reply qmgr", NAME_OPTIONAL, f->reply_qm))
		return false;
	if (!rd_u32r(r, "properties", 0, FRAME_PROPS_MAX, &l) || !rd_need(r, "properties", l))
		return false;
	if (!utf8_valid(r->p + r->off, l))
		return rd_fail(r, "properties", "not UTF-8 (or contain NUL)");
	f->props = l ? (const char *)(r->p + r->off) : NULL;
	f->props_len = l;
	r->off += l;
	if (!rd_u32r(r, "body", 0, FRAME_MAXMSGL_MAX, &l))
		return false;
	/* The body runs to the end of the payload: exactly. */
	if (l != r->n - r->off)
		return rd_fail(r, "body", "length %u but %zu bytes remain", l, r->n - r->off);
	f->body = r->p + r->off;
	f->body_len = l;
	r->off += l;
	return true;
}

static bool dec_batch(struct rd *r, struct frame_batch *f)
{
	if (!rd_u64(r, "batch id", &f->batch_id) ||
	    !rd_u32r(r, "count", 1, FRAME_BATCHSZ_MAX, &f->count) ||
	    !rd_u32r(r, "last seq", 0, FRAME_SEQWRAP_MAX, &f->last_seq))
		return false;
	if (f->batch_id == 0)
		return rd_fail(r, "batch id", "0 is not a batch");
	return rd_end(r);
}

static bool dec_stop(struct rd *r, struct frame_stop *f)
{
	if (!rd_u8(r, "reason", &f->reason))
		return false;
	if (f->reason < FRAME_STOP_OPERATOR || f->reason > FRAME_STOP_PING_END)
		return rd_fail(r, "reason", "unknown reason %u", f->reason);
	return rd_end(r);
}

int frame_decode(const struct frame_header *h, const uint8_t *payload, size_t n,
                 struct frame *out, struct frame_err *err)
{
	const struct frame_rule *rule = frame_rule_of(h->type);
	struct rd r = {payload, n, 0, frame_type_name(h->type), err};
	bool ok;

	/* The header may not come from frame_header_decode: check it again. */
	if (rule == NULL || (h->flags & ~rule->flags) != 0 || n != h->length ||
	    n < rule->min_len || n > rule->max_len) {
		frame_seterr(err, "%s: header does not match the payload (length %zu)",
		             frame_type_name(h->type), n);
		return FRAME_EBAD;
	}
	memset(&out->u, 0, sizeof(out->u));
	out->h = *h;
	switch (h->type) {
	case FRAME_INIT: ok = dec_init(&r, h->flags, &out->u.init); break;
	case FRAME_INIT_ACK: ok = dec_init_ack(&r, &out->u.init_ack); break;
	case FRAME_ERROR: ok = dec_error(&r, &out->u.error); break;
	case FRAME_RESYNC: ok = dec_resync(&r, h->flags, &out->u.resync); break;
	case FRAME_RESYNC_ACK: ok = dec_resync_ack(&r, h->flags, &out->u.resync_ack); break;
	case FRAME_MSG: ok = dec_msg(&r, h->flags, &out->u.msg); break;
	case FRAME_END_BATCH:
	case FRAME_CONFIRM: ok = dec_batch(&r, &out->u.batch); break;
	case FRAME_PING:
	case FRAME_PING_ACK:
		out->u.ping.data = n ? payload : NULL;
		out->u.ping.len = n;
		ok = true;
		break;
	case FRAME_STOP: ok = dec_stop(&r, &out->u.stop); break;
	default: ok = true; break;  /* HB, HB_ACK, STOP_ACK: length 0 checked above */
	}
	return ok ? FRAME_OK : FRAME_EBAD;
}

int frame_decode_buf(const uint8_t *p, size_t n, size_t max_payload, struct frame *out,
                     size_t *consumed, struct frame_err *err)
{
	struct frame_header h;
	int rc = frame_header_decode(p, n, &h, max_payload, err);

	if (rc == FRAME_NEED_MORE) {
		*consumed = FRAME_HEADER_LEN;
		return rc;
	}
	if (rc != FRAME_OK)
		return rc;
	if (n - FRAME_HEADER_LEN < h.length) {
		*consumed = FRAME_HEADER_LEN + (size_t)h.length;
		return FRAME_NEED_MORE;
	}
	rc = frame_decode(&h, p + FRAME_HEADER_LEN, h.length, out, err);
	if (rc == FRAME_OK)
		*consumed = FRAME_HEADER_LEN + (size_t)h.length;
	return rc;
}

int frame_msg_to_chd(const struct frame_msg *fm, int64_t now_ms, struct chd_msg *out)
{
	memset(out, 0, sizeof(*out));
	/* Like msg_copy(): a body buffer even when empty, so body != NULL. */
	out->body = malloc(fm->body_len ? fm->body_len : 1);
	if (out->body == NULL)
		return FRAME_ENOMEM;
	if (fm->body_len)
		memcpy(out->body, fm->body, fm->body_len);
	out->body_len = fm->body_len;
	if (fm->props_len) {
		out->props = malloc(fm->props_len + 1);
		if (out->props == NULL) {
			free(out->body);
			out->body = NULL;
			return FRAME_ENOMEM;
		}
		memcpy(out->props, fm->props, fm->props_len);
		out->props[fm->props_len] = '\0';
	}
	memcpy(out->msgid, fm->msgid, MSG_ID_LEN);
	memcpy(out->correlid, fm->correlid, MSG_ID_LEN);
	out->priority = fm->priority;
	out->persistent = fm->persistent;
	out->put_time_ms = fm->put_time_ms;
	out->expiry_ms = 0;
	if (fm->expiry_remaining_ms > 0) {
		/* Saturate rather than overflow on an absurd clock; never 0 (= never). */
		if (now_ms > INT64_MAX - fm->expiry_remaining_ms)
			out->expiry_ms = INT64_MAX;
		else
			out->expiry_ms = now_ms + fm->expiry_remaining_ms;
		if (out->expiry_ms <= 0)
			out->expiry_ms = 1;
	}
	memcpy(out->format, fm->format, sizeof(out->format));
	memcpy(out->reply_q, fm->reply_q, sizeof(out->reply_q));
	memcpy(out->reply_qm, fm->reply_qm, sizeof(out->reply_qm));
	memcpy(out->xmit_qm, fm->xmit_qm, sizeof(out->xmit_qm));
	memcpy(out->xmit_q, fm->xmit_q, sizeof(out->xmit_q));
	return FRAME_OK;
}
