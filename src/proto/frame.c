/* Frame codec: header rules, names, output buffer, field validators. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chand/frame.h"
#include "frame_int.h"

/* Bounds of each payload, so that a header alone tells whether the frame
 * can be legal: a 50 MB heartbeat is refused before anything is read. */
static const struct frame_rule rule_init = {25, 231, FRAME_F_INIT_PING, true};
static const struct frame_rule rule_init_ack = {21, 132, 0, true};
static const struct frame_rule rule_error = {10, 10 + FRAME_TEXT_MAX, 0, true};
static const struct frame_rule rule_resync = {FRAME_RESYNC_LEN, FRAME_RESYNC_LEN,
                                              FRAME_F_RESYNC_INDOUBT | FRAME_F_RESYNC_RESET, false};
static const struct frame_rule rule_resync_ack = {FRAME_RESYNC_ACK_LEN, FRAME_RESYNC_ACK_LEN,
                                                  FRAME_F_RESYNC_COMMITTED, false};
static const struct frame_rule rule_msg = {FRAME_MSG_FIXED + 2, (uint32_t)FRAME_PAYLOAD_MAX,
                                           FRAME_F_MSG_PERSISTENT, false};
static const struct frame_rule rule_batch = {FRAME_BATCH_LEN, FRAME_BATCH_LEN, 0, false};
static const struct frame_rule rule_empty = {0, 0, 0, false};
static const struct frame_rule rule_ping = {0, FRAME_PING_MAX, 0, false};
static const struct frame_rule rule_stop = {FRAME_STOP_LEN, FRAME_STOP_LEN, 0, false};

const struct frame_rule *frame_rule_of(int type)
{
	switch (type) {
	case FRAME_INIT: return &rule_init;
	case FRAME_INIT_ACK: return &rule_init_ack;
	case FRAME_ERROR: return &rule_error;
	case FRAME_RESYNC: return &rule_resync;
	case FRAME_RESYNC_ACK: return &rule_resync_ack;
	case FRAME_MSG: return &rule_msg;
	case FRAME_END_BATCH: return &rule_batch;
	case FRAME_CONFIRM: return &rule_batch;
	case FRAME_HB: return &rule_empty;
	case FRAME_HB_ACK: return &rule_empty;
	case FRAME_PING: return &rule_ping;
	case FRAME_PING_ACK: return &rule_ping;
	case FRAME_STOP: return &rule_stop;
	case FRAME_STOP_ACK: return &rule_empty;
	default: return NULL;
	}
}

const char *frame_type_name(int type)
{
	switch (type) {
	case FRAME_INIT: return "INIT";
	case FRAME_INIT_ACK: return "INIT_ACK";
	case FRAME_ERROR: return "ERROR";
	case FRAME_RESYNC: return "RESYNC";
	case FRAME_RESYNC_ACK: return "RESYNC_ACK";
	case FRAME_MSG: return "MSG";
	case FRAME_END_BATCH: return "END_BATCH";
	case FRAME_CONFIRM: return "CONFIRM";
	case FRAME_HB: return "HB";
	case FRAME_HB_ACK: return "HB_ACK";
	case FRAME_PING: return "PING";
	case FRAME_PING_ACK: return "PING_ACK";
	case FRAME_STOP: return "STOP";
	case FRAME_STOP_ACK: return "STOP_ACK";
	default: return "UNKNOWN";
	}
}

static const char *const chtype_names[] = {NULL, "SDR", "RCVR", "SVR", "RQSTR"};

const char *frame_chtype_name(int chtype)
{
	if (chtype >= FRAME_CH_SDR && chtype <= FRAME_CH_RQSTR)
		return chtype_names[chtype];
	return "UNKNOWN";
}

int frame_chtype_parse(const char *s)
{
	if (s == NULL)
		return -1;
	for (int t = FRAME_CH_SDR; t <= FRAME_CH_RQSTR; t++)
		if (strcasecmp(s, chtype_names[t]) == 0)
			return t;
	return -1;
}

const char *frame_stop_reason_name(int reason)
{
	switch (reason) {
	case FRAME_STOP_OPERATOR: return "OPERATOR";
	case FRAME_STOP_DISCINT: return "DISCINT";
	case FRAME_STOP_SHUTDOWN: return "SHUTDOWN";
	case FRAME_STOP_PING_END: return "PING_END";
	default: return "UNKNOWN";
	}
}

bool frame_chtype_pair(int ini, int resp, bool *initiator_sends)
{
	bool ok, sends = false;

	if (ini == FRAME_CH_SDR && resp == FRAME_CH_RCVR)
		ok = sends = true;
	else if (ini == FRAME_CH_SVR && resp == FRAME_CH_RQSTR)
		ok = sends = true;
	else if (ini == FRAME_CH_RQSTR && resp == FRAME_CH_SVR)
		ok = true;
	else
		ok = false;
	if (ok && initiator_sends)
		*initiator_sends = sends;
	return ok;
}

size_t frame_max_payload(uint32_t maxmsgl)
{
	if (maxmsgl > FRAME_MAXMSGL_MAX)
		maxmsgl = FRAME_MAXMSGL_MAX;
	return (size_t)maxmsgl + FRAME_MSG_OVERHEAD_MAX;
}

uint32_t frame_seq_next(uint32_t seq, uint32_t seqwrap)
{
	return seq >= seqwrap ? 1 : seq + 1;
}

void frame_seterr(struct frame_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->why, sizeof(err->why), fmt, ap);
	va_end(ap);
}

int frame_header_decode(const uint8_t *p, size_t n, struct frame_header *h,
                        size_t max_payload, struct frame_err *err)
{
	const struct frame_rule *r;
	size_t m = n < 4 ? n : 4;

	if (n == 0)
		return FRAME_NEED_MORE;
	/* Refuse a stranger (an HTTP client, a TLS hello on a plain port) on
	 * its first bytes instead of waiting for 16 of them. */
	if (memcmp(p, FRAME_MAGIC, m) != 0) {
		frame_seterr(err, "bad magic 0x%02x%02x%02x%02x (not a chand channel peer)",
		             p[0], m > 1 ? p[1] : 0, m > 2 ? p[2] : 0, m > 3 ? p[3] : 0);
		return FRAME_EBAD;
	}
	if (n < FRAME_HEADER_LEN)
		return FRAME_NEED_MORE;
	h->version = p[4];
	h->type = p[5];
	h->flags = be16_get(p + 6);
	h->length = be32_get(p + 8);
	h->counter = be32_get(p + 12);
	r = frame_rule_of(h->type);
	if (r == NULL) {
		frame_seterr(err, "unknown frame type 0x%02x", h->type);
		return FRAME_EBAD;
	}
	if (h->version < FRAME_VERSION_MIN || h->version > FRAME_VERSION_MAX) {
		frame_seterr(err, "%s: unsupported protocol version %u (this agent speaks %d-%d)",
		             frame_type_name(h->type), h->version, FRAME_VERSION_MIN,
		             FRAME_VERSION_MAX);
		return FRAME_EBAD;
	}
	if (r->stable && h->version != 1) {
		frame_seterr(err, "%s: must be sent as version 1, not %u", frame_type_name(h->type),
		             h->version);
		return FRAME_EBAD;
	}
	if ((h->flags & ~r->flags) != 0) {
		frame_seterr(err, "%s: reserved flag bits 0x%04x set", frame_type_name(h->type),
		             h->flags & ~r->flags);
		return FRAME_EBAD;
	}
	if (h->length < r->min_len || h->length > r->max_len) {
		frame_seterr(err, "%s: payload length %u outside %u-%u", frame_type_name(h->type),
		             h->length, r->min_len, r->max_len);
		return FRAME_EBAD;
	}
	if (h->length > max_payload) {
		frame_seterr(err, "%s: payload length %u exceeds the limit %zu",
		             frame_type_name(h->type), h->length, max_payload);
		return FRAME_EBAD;
	}
	return FRAME_OK;
}

/* ---- output buffer ---- */

void frame_buf_init(struct frame_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
}

void frame_buf_free(struct frame_buf *b)
{
	free(b->p);
	frame_buf_init(b);
}

void frame_buf_reset(struct frame_buf *b)
{
	b->len = 0;
}

int frame_buf_reserve(struct frame_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return FRAME_ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return FRAME_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (p == NULL)
		return FRAME_ENOMEM;
	b->p = p;
	b->cap = cap;
	return FRAME_OK;
}

void frame_writer_init(struct frame_writer *w)
{
	w->version = FRAME_VERSION_MIN;
	w->counter = 0;
}

/* ---- field validators ---- */

bool frame_name_ok(const uint8_t *s, size_t n, char *why, size_t whylen)
{
	char tmp[FRAME_NAME_MAX + 1];

	if (n > FRAME_NAME_MAX) {
		snprintf(why, whylen, "name is %zu bytes long (at most %d)", n, FRAME_NAME_MAX);
		return false;
	}
	/* name_valid() works on C strings: a NUL inside would hide the rest. */
	if (memchr(s, '\0', n) != NULL) {
		snprintf(why, whylen, "name contains a NUL byte");
		return false;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return name_valid(tmp, why, whylen);
}

bool frame_cipher_ok(const uint8_t *s, size_t n)
{
	if (n > FRAME_CIPHER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

bool frame_format_ok(const uint8_t *s, size_t n)
{
	if (n > FRAME_FORMAT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

bool frame_code_ok(const uint8_t *s, size_t n)
{
	if (n != FRAME_CODE_LEN || memcmp(s, "CHD", 3) != 0)
		return false;
	for (size_t i = 3; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool frame_text_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return utf8_valid(s, n);
}
