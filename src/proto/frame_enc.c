/* Frame codec: encoders.  Each appends exactly one frame to a frame_buf.
 *
 * Control frames are rare, so after writing one we run the decoder over
 * it: the encoder can then never emit what the decoder refuses, without a
 * second copy of the rules.  MSG is the hot path and checks its fields
 * directly (the unit tests hold the two sets of rules together). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chand/frame.h"
#include "frame_int.h"

static void put_header(uint8_t *p, uint8_t version, uint8_t type, uint16_t flags, uint32_t len,
                       uint32_t counter)
{
	memcpy(p, FRAME_MAGIC, 4);
	p[4] = version;
	p[5] = type;
	be16_put(p + 6, flags);
	be32_put(p + 8, len);
	be32_put(p + 12, counter);
}

/* Appends u8 length + bytes; the caller bounded len to 255. */
static uint8_t *put_str8(uint8_t *p, const char *s, size_t len)
{
	*p++ = (uint8_t)len;
	if (len)
		memcpy(p, s, len);
	return p + len;
}

/* A control frame: the caller wrote the payload into tmp (at most
 * FRAME_CTRL_PAYLOAD_MAX bytes).  Copies header + payload into b, then
 * proves it decodes; on any failure b is restored. */
static int emit_ctrl(struct frame_buf *b, struct frame_writer *w, uint8_t type, uint16_t flags,
                     const uint8_t *payload, size_t len, struct frame_err *err)
{
	const struct frame_rule *r = frame_rule_of(type);
	uint8_t version = r->stable ? 1 : w->version;
	struct frame_header h;
	struct frame f;
	uint8_t *p;
	int rc;

	if (frame_buf_reserve(b, FRAME_HEADER_LEN + len) != FRAME_OK) {
		frame_seterr(err, "%s: out of memory", frame_type_name(type));
		return FRAME_ENOMEM;
	}
	p = b->p + b->len;
	put_header(p, version, type, flags, (uint32_t)len, w->counter);
	if (len)
		memcpy(p + FRAME_HEADER_LEN, payload, len);
	rc = frame_header_decode(p, FRAME_HEADER_LEN + len, &h, FRAME_CTRL_PAYLOAD_MAX, err);
	if (rc == FRAME_OK)
		rc = frame_decode(&h, p + FRAME_HEADER_LEN, len, &f, err);
	if (rc != FRAME_OK)
		return FRAME_EBAD;
	b->len += FRAME_HEADER_LEN + len;
	w->counter++;
	return FRAME_OK;
}

/* Bounded strlen for a field; false if longer than max. */
static bool field_len(const char *s, size_t max, size_t *len, const char *what,
                      const char *field, struct frame_err *err)
{
	*len = s ? strnlen(s, max + 1) : 0;
	if (*len > max) {
		frame_seterr(err, "%s: %s: longer than %zu bytes", what, field, max);
		return false;
	}
	return true;
}

static uint8_t *put_values(uint8_t *p, uint32_t batchsz, uint32_t maxmsgl, uint32_t hbint,
                           uint32_t seqwrap)
{
	be32_put(p, batchsz);
	be32_put(p + 4, maxmsgl);
	be32_put(p + 8, hbint);
	be32_put(p + 12, seqwrap);
	return p + 16;
}

int frame_encode_init(struct frame_buf *b, struct frame_writer *w, const struct frame_init *f,
                      struct frame_err *err)
{
	uint8_t tmp[256], *p = tmp;
	size_t lc, lq, lp, ls;

	if (!field_len(f->channel, FRAME_NAME_MAX, &lc, "INIT", "channel", err) ||
	    !field_len(f->qmgr, FRAME_NAME_MAX, &lq, "INIT", "qmgr", err) ||
	    !field_len(f->peer_qmgr, FRAME_NAME_MAX, &lp, "INIT", "peer qmgr", err) ||
	    !field_len(f->sslciph, FRAME_CIPHER_MAX, &ls, "INIT", "sslciph", err))
		return FRAME_EBAD;
	*p++ = f->min_version;
	*p++ = f->max_version;
	*p++ = f->chtype;
	p = put_str8(p, f->channel, lc);
	p = put_str8(p, f->qmgr, lq);
	p = put_str8(p, f->peer_qmgr, lp);
	p = put_values(p, f->batchsz, f->maxmsgl, f->hbint, f->seqwrap);
	p = put_str8(p, f->sslciph, ls);
	return emit_ctrl(b, w, FRAME_INIT, f->ping ? FRAME_F_INIT_PING : 0, tmp, (size_t)(p - tmp),
	                 err);
}

int frame_encode_init_ack(struct frame_buf *b, struct frame_writer *w,
                          const struct frame_init_ack *f, struct frame_err *err)
{
	uint8_t tmp[160], *p = tmp;
	size_t lq, ls;

	if (!field_len(f->qmgr, FRAME_NAME_MAX, &lq, "INIT_ACK", "qmgr", err) ||
	    !field_len(f->sslciph, FRAME_CIPHER_MAX, &ls, "INIT_ACK", "sslciph", err))
		return FRAME_EBAD;
	*p++ = f->version;
	*p++ = f->chtype;
	p = put_str8(p, f->qmgr, lq);
	p = put_values(p, f->batchsz, f->maxmsgl, f->hbint, f->seqwrap);
	p = put_str8(p, f->sslciph, ls);
	return emit_ctrl(b, w, FRAME_INIT_ACK, 0, tmp, (size_t)(p - tmp), err);
}

/* Copies text into out (FRAME_TEXT_MAX bytes at most) as one line of
 * valid UTF-8: control characters become spaces, broken sequences '?'. */
static size_t sanitize_text(const char *text, uint8_t *out)
{
	const uint8_t *s = (const uint8_t *)(text ? text : "");
	size_t o = 0;

	while (*s != '\0') {
		uint8_t c = *s;
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
		             (c & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 1) {
			if (o + 1 > FRAME_TEXT_MAX)
				break;
			out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : c;
			s++;
			continue;
		}
		/* strnlen stops at the terminator, so a cut sequence is caught. */
		if (len == 0 || strnlen((const char *)s, len) < len || !utf8_valid(s, len)) {
			if (o + 1 > FRAME_TEXT_MAX)
				break;
			out[o++] = '?';
			s++;
			continue;
		}
		if (o + len > FRAME_TEXT_MAX)
			break;
		memcpy(out + o, s, len);
		o += len;
		s += len;
	}
	return o;
}

int frame_encode_error(struct frame_buf *b, struct frame_writer *w, const char *code,
                       const char *text)
{
	uint8_t tmp[16 + FRAME_TEXT_MAX], *p = tmp;
	size_t tl;

	if (code == NULL || !frame_code_ok((const uint8_t *)code, strnlen(code, 8)))
		return FRAME_EBAD;
	p = put_str8(p, code, FRAME_CODE_LEN);
	tl = sanitize_text(text, p + 2);
	be16_put(p, (uint16_t)tl);
	p += 2 + tl;
	return emit_ctrl(b, w, FRAME_ERROR, 0, tmp, (size_t)(p - tmp), NULL);
}

int frame_encode_errorf(struct frame_buf *b, struct frame_writer *w, const char *code,
                        const char *fmt, ...)
{
	char text[2 * FRAME_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return frame_encode_error(b, w, code, text);
}

int frame_encode_resync(struct frame_buf *b, struct frame_writer *w,
                        const struct frame_resync *f, struct frame_err *err)
{
	uint8_t tmp[FRAME_RESYNC_LEN];
	uint16_t flags = (f->indoubt ? FRAME_F_RESYNC_INDOUBT : 0) |
	                 (f->reset ? FRAME_F_RESYNC_RESET : 0);

	be64_put(tmp, f->batch_id);
	be32_put(tmp + 8, f->seq);
	be64_put(tmp + 12, f->indoubt_batch);
	be32_put(tmp + 20, f->indoubt_seq);
	be32_put(tmp + 24, f->indoubt_count);
	return emit_ctrl(b, w, FRAME_RESYNC, flags, tmp, sizeof(tmp), err);
}

int frame_encode_resync_ack(struct frame_buf *b, struct frame_writer *w,
                            const struct frame_resync_ack *f, struct frame_err *err)
{
	uint8_t tmp[FRAME_RESYNC_ACK_LEN];

	be64_put(tmp, f->batch_id);
	be32_put(tmp + 8, f->seq);
	return emit_ctrl(b, w, FRAME_RESYNC_ACK, f->committed ? FRAME_F_RESYNC_COMMITTED : 0, tmp,
	                 sizeof(tmp), err);
}

static int encode_batch(struct frame_buf *b, struct frame_writer *w, uint8_t type,
                        const struct frame_batch *f, struct frame_err *err)
{
	uint8_t tmp[FRAME_BATCH_LEN];

	be64_put(tmp, f->batch_id);
	be32_put(tmp + 8, f->count);
	be32_put(tmp + 12, f->last_seq);
	return emit_ctrl(b, w, type, 0, tmp, sizeof(tmp), err);
}

int frame_encode_end_batch(struct frame_buf *b, struct frame_writer *w,
                           const struct frame_batch *f, struct frame_err *err)
{
	return encode_batch(b, w, FRAME_END_BATCH, f, err);
}

int frame_encode_confirm(struct frame_buf *b, struct frame_writer *w,
                         const struct frame_batch *f, struct frame_err *err)
{
	return encode_batch(b, w, FRAME_CONFIRM, f, err);
}

int frame_encode_hb(struct frame_buf *b, struct frame_writer *w)
{
	return emit_ctrl(b, w, FRAME_HB, 0, NULL, 0, NULL);
}

int frame_encode_hb_ack(struct frame_buf *b, struct frame_writer *w)
{
	return emit_ctrl(b, w, FRAME_HB_ACK, 0, NULL, 0, NULL);
}

int frame_encode_stop_ack(struct frame_buf *b, struct frame_writer *w)
{
	return emit_ctrl(b, w, FRAME_STOP_ACK, 0, NULL, 0, NULL);
}

static int encode_ping(struct frame_buf *b, struct frame_writer *w, uint8_t type,
                       const uint8_t *data, size_t len, struct frame_err *err)
{
	if (len > FRAME_PING_MAX || (len > 0 && data == NULL)) {
		frame_seterr(err, "%s: data of %zu bytes (at most %d)", frame_type_name(type), len,
		             FRAME_PING_MAX);
		return FRAME_EBAD;
	}
	return emit_ctrl(b, w, type, 0, data, len, err);
}

int frame_encode_ping(struct frame_buf *b, struct frame_writer *w, const uint8_t *data,
                      size_t len, struct frame_err *err)
{
	return encode_ping(b, w, FRAME_PING, data, len, err);
}

int frame_encode_ping_ack(struct frame_buf *b, struct frame_writer *w, const uint8_t *data,
                          size_t len, struct frame_err *err)
{
	return encode_ping(b, w, FRAME_PING_ACK, data, len, err);
}

int frame_encode_stop(struct frame_buf *b, struct frame_writer *w, int reason,
                      struct frame_err *err)
{
	uint8_t r = (uint8_t)reason;

	if (reason < FRAME_STOP_OPERATOR || reason > FRAME_STOP_PING_END) {
		frame_seterr(err, "STOP: unknown reason %d", reason);
		return FRAME_EBAD;
	}
	return emit_ctrl(b, w, FRAME_STOP, 0, &r, 1, err);
}

/* ---- MSG: the hot path ---- */

/* The message's fields, wherever they come from. */
struct msg_src {
	uint64_t batch_id;
	uint32_t seq;
	bool persistent;
	int priority;
	const uint8_t *msgid, *correlid;
	int64_t put_time_ms, expiry_remaining_ms;
	const char *xmit_qm, *xmit_q, *format, *reply_q, *reply_qm;
	const char *props;
	size_t props_len;
	const uint8_t *body;
	size_t body_len;
};

static bool msg_name(const char *s, bool required, size_t *len, const char *field,
                     struct frame_err *err)
{
	char why[128];

	if (!field_len(s, FRAME_NAME_MAX, len, "MSG", field, err))
		return false;
	if (*len == 0) {
		if (required)
			frame_seterr(err, "MSG: %s: empty", field);
		return !required;
	}
	if (!frame_name_ok((const uint8_t *)s, *len, why, sizeof(why))) {
		frame_seterr(err, "MSG: %s: %s", field, why);
		return false;
	}
	return true;
}

static int encode_msg(struct frame_buf *b, struct frame_writer *w, const struct msg_src *m,
                      struct frame_err *err)
{
	size_t lqm, lq, lf, lrq, lrqm, len;
	uint8_t *p;

	if (m->batch_id == 0) {
		frame_seterr(err, "MSG: batch id 0");
		return FRAME_EBAD;
	}
	if (m->persistent ? (m->seq == 0 || m->seq > FRAME_SEQWRAP_MAX) : m->seq != 0) {
		frame_seterr(err, "MSG: seq %u invalid for a %s message", m->seq,
		             m->persistent ? "persistent" : "nonpersistent");
		return FRAME_EBAD;
	}
	if (m->priority < 0 || m->priority > MSG_PRIORITY_MAX) {
		frame_seterr(err, "MSG: priority %d outside 0-%d", m->priority, MSG_PRIORITY_MAX);
		return FRAME_EBAD;
	}
	if (m->put_time_ms < 0 || m->expiry_remaining_ms < 0 ||
	    m->expiry_remaining_ms > FRAME_EXPIRY_MAX_MS) {
		frame_seterr(err, "MSG: put time or expiry out of range");
		return FRAME_EBAD;
	}
	if (!msg_name(m->xmit_qm, true, &lqm, "xmit qmgr", err) ||
	    !msg_name(m->xmit_q, true, &lq, "xmit queue", err) ||
	    !msg_name(m->reply_q, false, &lrq, "reply queue", err) ||
	    !msg_name(m->reply_qm, false, &lrqm, "reply qmgr", err) ||
	    !field_len(m->format, FRAME_FORMAT_MAX, &lf, "MSG", "format", err))
		return FRAME_EBAD;
	if (!frame_format_ok((const uint8_t *)m->format, lf)) {
		frame_seterr(err, "MSG: format: not printable ASCII");
		return FRAME_EBAD;
	}
	if (m->props_len > FRAME_PROPS_MAX ||
	    !utf8_valid((const uint8_t *)m->props, m->props_len)) {
		frame_seterr(err, "MSG: properties: %zu bytes, or not UTF-8", m->props_len);
		return FRAME_EBAD;
	}
	if (m->body_len > FRAME_MAXMSGL_MAX || (m->body_len > 0 && m->body == NULL)) {
		frame_seterr(err, "MSG: body of %zu bytes (at most %u)", m->body_len,
		             FRAME_MAXMSGL_MAX);
		return FRAME_EBAD;
	}
	len = FRAME_MSG_FIXED + lqm + lq + lf + lrq + lrqm + m->props_len + m->body_len;
	if (frame_buf_reserve(b, FRAME_HEADER_LEN + len) != FRAME_OK) {
		frame_seterr(err, "MSG: out of memory");
		return FRAME_ENOMEM;
	}
	p = b->p + b->len;
	put_header(p, w->version, FRAME_MSG, m->persistent ? FRAME_F_MSG_PERSISTENT : 0,
	           (uint32_t)len, w->counter);
	p += FRAME_HEADER_LEN;
	be64_put(p, m->batch_id);
	be32_put(p + 8, m->seq);
	p[12] = (uint8_t)m->priority;
	memcpy(p + 13, m->msgid, MSG_ID_LEN);
	memcpy(p + 13 + MSG_ID_LEN, m->correlid, MSG_ID_LEN);
	be64_put(p + 61, (uint64_t)m->put_time_ms);
	be64_put(p + 69, (uint64_t)m->expiry_remaining_ms);
	p += 77;
	p = put_str8(p, m->xmit_qm, lqm);
	p = put_str8(p, m->xmit_q, lq);
	p = put_str8(p, m->format, lf);
	p = put_str8(p, m->reply_q, lrq);
	p = put_str8(p, m->reply_qm, lrqm);
	be32_put(p, (uint32_t)m->props_len);
	if (m->props_len)
		memcpy(p + 4, m->props, m->props_len);
	p += 4 + m->props_len;
	be32_put(p, (uint32_t)m->body_len);
	if (m->body_len)
		memcpy(p + 4, m->body, m->body_len);
	b->len += FRAME_HEADER_LEN + len;
	w->counter++;
	return FRAME_OK;
}

int frame_encode_msg(struct frame_buf *b, struct frame_writer *w, uint64_t batch_id,
                     uint32_t seq, const struct chd_msg *m, int64_t now_ms,
                     struct frame_err *err)
{
	struct msg_src s;
	int64_t rem = 0;

	if (m->expiry_ms != 0) {
		/* Remaining life, not the absolute time: the two hosts' clocks
		 * need not agree.  Already past: 1 ms, the receiver drops it. */
		if (m->expiry_ms <= now_ms) {
			rem = 1;
		} else {
			/* Unsigned: the difference of two int64 may not fit one. */
			uint64_t d = (uint64_t)m->expiry_ms - (uint64_t)now_ms;
			rem = d > (uint64_t)FRAME_EXPIRY_MAX_MS ? FRAME_EXPIRY_MAX_MS : (int64_t)d;
		}
	}
	s = (struct msg_src){
		.batch_id = batch_id,
		.seq = seq,
		.persistent = m->persistent,
		.priority = m->priority,
		.msgid = m->msgid,
		.correlid = m->correlid,
		.put_time_ms = m->put_time_ms,
		.expiry_remaining_ms = rem,
		.xmit_qm = m->xmit_qm,
		.xmit_q = m->xmit_q,
		.format = m->format,
		.reply_q = m->reply_q,
		.reply_qm = m->reply_qm,
		.props = m->props,
		.props_len = m->props ? strnlen(m->props, FRAME_PROPS_MAX + 1) : 0,
		.body = m->body,
		.body_len = m->body_len,
	};
	return encode_msg(b, w, &s, err);
}

int frame_encode_msg_frame(struct frame_buf *b, struct frame_writer *w,
                           const struct frame_msg *f, struct frame_err *err)
{
	struct msg_src s = {
		.batch_id = f->batch_id,
		.seq = f->seq,
		.persistent = f->persistent,
		.priority = f->priority,
		.msgid = f->msgid,
		.correlid = f->correlid,
		.put_time_ms = f->put_time_ms,
		.expiry_remaining_ms = f->expiry_remaining_ms,
		.xmit_qm = f->xmit_qm,
		.xmit_q = f->xmit_q,
		.format = f->format,
		.reply_q = f->reply_q,
		.reply_qm = f->reply_qm,
		.props = f->props,
		.props_len = f->props ? f->props_len : 0,
		.body = f->body,
		.body_len = f->body_len,
	};
	return encode_msg(b, w, &s, err);
}

int frame_encode(struct frame_buf *b, struct frame_writer *w, const struct frame *f,
                 struct frame_err *err)
{
	switch (f->h.type) {
	case FRAME_INIT: return frame_encode_init(b, w, &f->u.init, err);
	case FRAME_INIT_ACK: return frame_encode_init_ack(b, w, &f->u.init_ack, err);
	case FRAME_ERROR: return frame_encode_error(b, w, f->u.error.code, f->u.error.text);
	case FRAME_RESYNC: return frame_encode_resync(b, w, &f->u.resync, err);
	case FRAME_RESYNC_ACK: return frame_encode_resync_ack(b, w, &f->u.resync_ack, err);
	case FRAME_MSG: return frame_encode_msg_frame(b, w, &f->u.msg, err);
	case FRAME_END_BATCH: return frame_encode_end_batch(b, w, &f->u.batch, err);
	case FRAME_CONFIRM: return frame_encode_confirm(b, w, &f->u.batch, err);
	case FRAME_HB: return frame_encode_hb(b, w);
	case FRAME_HB_ACK: return frame_encode_hb_ack(b, w);
	case FRAME_PING: return frame_encode_ping(b, w, f->u.ping.data, f->u.ping.len, err);
	case FRAME_PING_ACK: return frame_encode_ping_ack(b, w, f->u.ping.data, f->u.ping.len, err);
	case FRAME_STOP: return frame_encode_stop(b, w, f->u.stop.reason, err);
	case FRAME_STOP_ACK: return frame_encode_stop_ack(b, w);
	default:
		frame_seterr(err, "unknown frame type 0x%02x", f->h.type);
		return FRAME_EBAD;
	}
}
