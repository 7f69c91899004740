/* Channel wire protocol: the frame codec (doc/PROTOCOL.md is the spec).
 *
 * Pure functions: bytes in, structs out; structs in, bytes out.  No I/O,
 * no logging, no global state: safe from any thread.
 *
 * Reading, in a blocking thread-per-channel style:
 *
 *	read exactly FRAME_HEADER_LEN bytes;
 *	frame_header_decode(hdr, FRAME_HEADER_LEN, &h, max_payload, &err);
 *	check h.type is expected in the current state, h.counter, h.version;
 *	read exactly h.length bytes (the length is bounded: allocate now);
 *	frame_decode(&h, payload, h.length, &f, &err);
 *
 * max_payload is FRAME_CTRL_PAYLOAD_MAX until INIT_ACK is exchanged, then
 * frame_max_payload(negotiated MAXMSGL).
 *
 * Writing: encoders append one complete frame to a struct frame_buf (on
 * failure the buffer is left as it was), so several frames can be sent
 * with one write.  A struct frame_writer numbers the frames. */
#ifndef CHAND_FRAME_H
#define CHAND_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand/codes.h"
#include "chand/message.h"
#include "chand/util.h"

/* ---- header ---- */
#define FRAME_HEADER_LEN 16
#define FRAME_MAGIC "CHND"            /* 0x43 0x48 0x4e 0x44, never changes */
#define FRAME_VERSION_MIN 1           /* protocol versions this build speaks */
#define FRAME_VERSION_MAX 3

/* ---- limits (every length and count is checked against these) ---- */
#define FRAME_NAME_MAX CHAND_NAME_MAX         /* 48: channel, qmgr, queue */
#define FRAME_CIPHER_MAX 64                   /* SSLCIPH name */
#define FRAME_TEXT_MAX 512                    /* ERROR text, bytes of UTF-8 */
#define FRAME_CODE_LEN 7                      /* "CHDnnnn" */
#define FRAME_FORMAT_MAX MSG_FORMAT_MAX       /* 8 */
#define FRAME_PROPS_MAX 65536                 /* message properties, bytes */
#define FRAME_PING_MAX 4096                   /* PING echo data */
#define FRAME_BATCHSZ_MAX 9999
#define FRAME_MAXMSGL_MAX 104857600u          /* 100 MiB: body bytes */
#define FRAME_HBINT_MAX 999999                /* seconds */
#define FRAME_SEQWRAP_MIN 100
#define FRAME_SEQWRAP_MAX 999999999u
#define FRAME_EXPIRY_MAX_MS 3153600000000LL   /* 100 years of remaining life */
/* MSG payload without body: fixed part plus every string and the
 * properties at their maximum. */
#define FRAME_MSG_FIXED 90
#define FRAME_MSG_OVERHEAD_MAX (FRAME_MSG_FIXED + 4 * FRAME_NAME_MAX + FRAME_FORMAT_MAX + \
                                FRAME_PROPS_MAX)
/* Every frame type but MSG fits in this: the limit before negotiation. */
#define FRAME_CTRL_PAYLOAD_MAX 4096
/* Absolute cap on any payload, whatever was negotiated. */
#define FRAME_PAYLOAD_MAX ((size_t)FRAME_MAXMSGL_MAX + FRAME_MSG_OVERHEAD_MAX)

enum frame_type {
	FRAME_INIT = 0x01,
	FRAME_INIT_ACK = 0x02,
	FRAME_ERROR = 0x03,
	FRAME_RESYNC = 0x10,
	FRAME_RESYNC_ACK = 0x11,
	FRAME_MSG = 0x20,
	FRAME_END_BATCH = 0x21,
	FRAME_CONFIRM = 0x22,
	FRAME_HB = 0x30,
	FRAME_HB_ACK = 0x31,
	FRAME_PING = 0x32,
	FRAME_PING_ACK = 0x33,
	FRAME_STOP = 0x40,
	FRAME_STOP_ACK = 0x41,
};

/* Header flag bits, per frame type; every other bit must be zero. */
#define FRAME_F_INIT_PING 0x0001        /* INIT: a ping session, no transfer */
#define FRAME_F_RESYNC_INDOUBT 0x0001   /* RESYNC: the sender has an in-doubt batch */
#define FRAME_F_RESYNC_RESET 0x0002     /* RESYNC: sender's seq was reset: adopt it */
#define FRAME_F_RESYNC_COMMITTED 0x0001 /* RESYNC_ACK: the in-doubt batch is committed */
#define FRAME_F_MSG_PERSISTENT 0x0001   /* MSG */

/* Channel types as they travel in INIT / INIT_ACK. */
enum frame_chtype {
	FRAME_CH_SDR = 1,
	FRAME_CH_RCVR = 2,
	FRAME_CH_SVR = 3,
	FRAME_CH_RQSTR = 4,
};

/* STOP reasons. */
enum frame_stop_reason {
	FRAME_STOP_OPERATOR = 1,   /* stop channel (quiesce) */
	FRAME_STOP_DISCINT = 2,    /* disconnect interval expired */
	FRAME_STOP_SHUTDOWN = 3,   /* the agent is shutting down */
	FRAME_STOP_PING_END = 4,   /* end of a ping session */
};

enum frame_rc {
	FRAME_OK = 0,
	FRAME_NEED_MORE = 1,   /* header: fewer than FRAME_HEADER_LEN bytes yet */
	FRAME_EBAD = -1,       /* malformed; err->why says why (send CHD5009) */
	FRAME_ENOMEM = -2,
};

/* One-line reason of a failure, suitable for a log line and ERROR text. */
struct frame_err {
	char why[192];
};

struct frame_header {
	uint8_t version;
	uint8_t type;        /* enum frame_type */
	uint16_t flags;
	uint32_t length;     /* payload bytes after the header */
	uint32_t counter;    /* frames sent before this one on this connection, mod 2^32 */
};

/* ---- frame contents ---- */
struct frame_init {                      /* initiator -> responder */
	uint8_t min_version, max_version;
	uint8_t chtype;                      /* initiator's enum frame_chtype */
	bool ping;                           /* FRAME_F_INIT_PING */
	char channel[FRAME_NAME_MAX + 1];
	char qmgr[FRAME_NAME_MAX + 1];       /* initiator's queue manager */
	char peer_qmgr[FRAME_NAME_MAX + 1];  /* qmgr it expects to reach; "" = any */
	uint32_t batchsz, maxmsgl, hbint, seqwrap;
	char sslciph[FRAME_CIPHER_MAX + 1];  /* initiator's SSLCIPH; "" = plain TCP */
};

struct frame_init_ack {                  /* responder -> initiator */
	uint8_t version;                     /* chosen protocol version */
	uint8_t chtype;                      /* responder's enum frame_chtype */
	char qmgr[FRAME_NAME_MAX + 1];       /* responder's queue manager */
	uint32_t batchsz, maxmsgl, hbint, seqwrap;   /* negotiated values */
	char sslciph[FRAME_CIPHER_MAX + 1];  /* responder's SSLCIPH */
};

struct frame_error {
	char code[FRAME_CODE_LEN + 1];       /* "CHD5009" */
	char text[FRAME_TEXT_MAX + 1];       /* one line of UTF-8 */
};

struct frame_resync {                    /* sending end -> receiving end */
	bool indoubt;                        /* FRAME_F_RESYNC_INDOUBT */
	bool reset;                          /* FRAME_F_RESYNC_RESET */
	uint64_t batch_id;                   /* last committed batch id */
	uint32_t seq;                        /* last committed sequence number */
	uint64_t indoubt_batch;              /* all zero unless indoubt */
	uint32_t indoubt_seq;
	uint32_t indoubt_count;
};

struct frame_resync_ack {                /* receiving end -> sending end */
	bool committed;                      /* FRAME_F_RESYNC_COMMITTED */
	uint64_t batch_id;                   /* receiver's last committed, after resolution */
	uint32_t seq;
};

/* One message.  Decoded: props and body point INTO the payload that was
 * decoded (zero copy; valid only while that buffer lives; props is not
 * NUL-terminated). frame_msg_to_chd() makes an owned struct chd_msg. */
struct frame_msg {
	uint64_t batch_id;
	uint32_t seq;                        /* persistent: 1..SEQWRAP; nonpersistent: 0 */
	bool persistent;                     /* FRAME_F_MSG_PERSISTENT */
	int priority;                        /* 0-9 */
	uint8_t msgid[MSG_ID_LEN];
	uint8_t correlid[MSG_ID_LEN];
	int64_t put_time_ms;                 /* >= 0 */
	int64_t expiry_remaining_ms;         /* 0: never; else 1..FRAME_EXPIRY_MAX_MS */
	char xmit_qm[FRAME_NAME_MAX + 1];    /* destination queue manager (required) */
	char xmit_q[FRAME_NAME_MAX + 1];     /* destination queue there (required) */
	char format[FRAME_FORMAT_MAX + 1];
	char reply_q[FRAME_NAME_MAX + 1];
	char reply_qm[FRAME_NAME_MAX + 1];
	const char *props;                   /* UTF-8 "k=v\n..." or NULL */
	size_t props_len;
	const uint8_t *body;
	size_t body_len;
};

struct frame_batch {                     /* END_BATCH and CONFIRM */
	uint64_t batch_id;
	uint32_t count;                      /* messages in the batch, 1..BATCHSZ */
	uint32_t last_seq;                   /* seq of its last persistent message */
};

struct frame_ping {                      /* PING and PING_ACK; data points into the payload */
	const uint8_t *data;
	size_t len;
};

struct frame_stop {
	uint8_t reason;                      /* enum frame_stop_reason */
};

struct frame {
	struct frame_header h;               /* h.type selects the member of u */
	union {
		struct frame_init init;
		struct frame_init_ack init_ack;
		struct frame_error error;
		struct frame_resync resync;
		struct frame_resync_ack resync_ack;
		struct frame_msg msg;
		struct frame_batch batch;        /* END_BATCH, CONFIRM */
		struct frame_ping ping;          /* PING, PING_ACK */
		struct frame_stop stop;
	} u;                                 /* HB, HB_ACK, STOP_ACK: empty */
};

/* ---- names ---- */
const char *frame_type_name(int type);          /* "MSG"; "UNKNOWN" */
const char *frame_chtype_name(int chtype);      /* "SDR"; "UNKNOWN" */
int frame_chtype_parse(const char *s);          /* "sdr"/"SDR" -> FRAME_CH_SDR; -1 */
const char *frame_stop_reason_name(int reason); /* "OPERATOR"; "UNKNOWN" */
/* True if an initiator of type ini may talk to a responder of type resp;
 * *initiator_sends (if non-NULL) says which way messages flow. */
bool frame_chtype_pair(int ini, int resp, bool *initiator_sends);

/* ---- decoding ---- */
/* Largest payload to accept once MAXMSGL is negotiated. */
size_t frame_max_payload(uint32_t maxmsgl);

/* Parses and checks a header: magic, version, type, flags, and length
 * against the type's bounds and max_payload, BEFORE the caller allocates.
 * FRAME_NEED_MORE if n < FRAME_HEADER_LEN and the bytes so far are a
 * valid prefix; FRAME_OK; or FRAME_EBAD with err->why (err may be NULL). */
int frame_header_decode(const uint8_t *p, size_t n, struct frame_header *h,
                        size_t max_payload, struct frame_err *err);

/* Decodes the n == h->length payload bytes of a frame whose header h was
 * accepted by frame_header_decode.  Validates every field (names, ranges,
 * UTF-8, flags) and that nothing trails.  out->h = *h.  MSG and PING data
 * point into payload.  FRAME_OK or FRAME_EBAD with err->why. */
int frame_decode(const struct frame_header *h, const uint8_t *payload, size_t n,
                 struct frame *out, struct frame_err *err);

/* Header + payload from one contiguous buffer.  FRAME_NEED_MORE (with
 * *consumed = bytes needed in all, or FRAME_HEADER_LEN) until p holds the
 * whole frame; then FRAME_OK with *consumed = frame length, or FRAME_EBAD. */
int frame_decode_buf(const uint8_t *p, size_t n, size_t max_payload, struct frame *out,
                     size_t *consumed, struct frame_err *err);

/* Owned copy of a decoded message (body and props malloc'd, expiry made
 * absolute from now_ms, the transmission header kept).  msg_clear() frees
 * it.  FRAME_OK or FRAME_ENOMEM. */
int frame_msg_to_chd(const struct frame_msg *fm, int64_t now_ms, struct chd_msg *out);

/* ---- encoding ---- */
struct frame_buf {
	uint8_t *p;
	size_t len, cap;
};
void frame_buf_init(struct frame_buf *b);
void frame_buf_free(struct frame_buf *b);
void frame_buf_reset(struct frame_buf *b);                 /* len = 0, keeps memory */
int frame_buf_reserve(struct frame_buf *b, size_t extra);  /* FRAME_OK / FRAME_ENOMEM */

struct frame_writer {
	uint8_t version;     /* FRAME_VERSION_MIN until INIT_ACK, then the chosen one */
	uint32_t counter;    /* counter of the next frame */
};
void frame_writer_init(struct frame_writer *w);

/* Each encoder appends one frame and advances w->counter; on failure
 * (FRAME_EBAD for invalid contents, with err->why; FRAME_ENOMEM) b and w
 * are unchanged.  err may be NULL.  The encoders refuse anything the
 * decoder would refuse, so a peer never sees a malformed frame from us. */
int frame_encode_init(struct frame_buf *b, struct frame_writer *w, const struct frame_init *f,
                      struct frame_err *err);
int frame_encode_init_ack(struct frame_buf *b, struct frame_writer *w,
                          const struct frame_init_ack *f, struct frame_err *err);
/* code: "CHDnnnn" (else FRAME_EBAD).  The text is made sendable rather than
 * refused: control characters become spaces, invalid UTF-8 becomes '?',
 * and it is cut (on a character boundary) to FRAME_TEXT_MAX bytes. */
int frame_encode_error(struct frame_buf *b, struct frame_writer *w, const char *code,
                       const char *text);
int frame_encode_errorf(struct frame_buf *b, struct frame_writer *w, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int frame_encode_resync(struct frame_buf *b, struct frame_writer *w,
                        const struct frame_resync *f, struct frame_err *err);
int frame_encode_resync_ack(struct frame_buf *b, struct frame_writer *w,
                            const struct frame_resync_ack *f, struct frame_err *err);
/* The channel's path: a stored message (transmission header in
 * m->xmit_qm/xmit_q) as the seq-th message of batch batch_id.  Expiry is
 * sent as the time remaining at now_ms (at least 1 ms if already past).
 * Persistent messages need seq >= 1, nonpersistent ones seq == 0. */
int frame_encode_msg(struct frame_buf *b, struct frame_writer *w, uint64_t batch_id,
                     uint32_t seq, const struct chd_msg *m, int64_t now_ms,
                     struct frame_err *err);
/* The same from a struct frame_msg (re-encoding a decoded message). */
int frame_encode_msg_frame(struct frame_buf *b, struct frame_writer *w,
                           const struct frame_msg *f, struct frame_err *err);
int frame_encode_end_batch(struct frame_buf *b, struct frame_writer *w,
                           const struct frame_batch *f, struct frame_err *err);
int frame_encode_confirm(struct frame_buf *b, struct frame_writer *w,
                         const struct frame_batch *f, struct frame_err *err);
int frame_encode_hb(struct frame_buf *b, struct frame_writer *w);
int frame_encode_hb_ack(struct frame_buf *b, struct frame_writer *w);
int frame_encode_ping(struct frame_buf *b, struct frame_writer *w, const uint8_t *data,
                      size_t len, struct frame_err *err);
int frame_encode_ping_ack(struct frame_buf *b, struct frame_writer *w, const uint8_t *data,
                          size_t len, struct frame_err *err);
int frame_encode_stop(struct frame_buf *b, struct frame_writer *w, int reason,
                      struct frame_err *err);
int frame_encode_stop_ack(struct frame_buf *b, struct frame_writer *w);
/* Any decoded frame (f->h.type picks the encoder; f->h.flags are ignored:
 * they follow from the contents). */
int frame_encode(struct frame_buf *b, struct frame_writer *w, const struct frame *f,
                 struct frame_err *err);

/* ---- protocol rules shared by both ends (pure) ---- */

/* The sequence number after seq (1..seqwrap, then 1 again). */
uint32_t frame_seq_next(uint32_t seq, uint32_t seqwrap);

/* The local end of a channel, as negotiation sees it. */
struct frame_params {
	const char *channel;       /* the channel name (responder: from SNI / definition) */
	int chtype;                /* enum frame_chtype */
	const char *qmgr;          /* local queue manager */
	uint32_t batchsz, maxmsgl, hbint, seqwrap;
	uint8_t max_version;       /* highest version offered; 0: FRAME_VERSION_MAX */
};

/* Responder: checks INIT against the local definition and fills the
 * INIT_ACK to send (sslciph is left empty: the caller fills it).  On
 * refusal returns false with the code for the ERROR frame and a one-line
 * reason naming both values.  Checks version overlap, channel name, type
 * pairing, the expected queue manager and SEQWRAP; the CipherSpec, channel
 * existence and channel limits are the caller's (agent state). */
bool frame_negotiate(const struct frame_init *in, const struct frame_params *local,
                     struct frame_init_ack *ack, enum chd_code_id *code,
                     char *why, size_t whylen);
/* Initiator: checks INIT_ACK against the INIT it sent. */
bool frame_check_init_ack(const struct frame_init *sent, const struct frame_init_ack *ack,
                          enum chd_code_id *code, char *why, size_t whylen);

/* Receiving end: answers RESYNC from its last committed batch id and
 * sequence number.  True with *ack filled (ack->committed: the in-doubt
 * batch is committed here; with rs->reset the caller must record rs->seq
 * as its own), or false with a reason naming both numbers (send CHD5007). */
bool frame_resync_answer(const struct frame_resync *rs, uint64_t my_batch, uint32_t my_seq,
                         struct frame_resync_ack *ack, char *why, size_t whylen);
/* Sending end: checks RESYNC_ACK against the RESYNC it sent.  True if
 * consistent (then ack->committed says: delete the in-doubt batch, or back
 * it out; both ends continue from ack->batch_id / ack->seq). */
bool frame_resync_check_ack(const struct frame_resync *sent, const struct frame_resync_ack *ack,
                            char *why, size_t whylen);
/* The same when several batches are in doubt (version 2: batch_id+1 ..
 * indoubt_batch): seqs[i] is the last seq of batch batch_id+1+i.  The
 * receiver may have committed any of them. */
bool frame_resync_check_ack_v(const struct frame_resync *sent, const struct frame_resync_ack *ack,
                              const uint32_t *seqs, size_t nseqs, char *why, size_t whylen);

#endif
