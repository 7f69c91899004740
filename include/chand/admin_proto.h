/* The admin protocol between chanctl and chand (doc/ADMIN-PROTOCOL.md):
 * the frame codec, buffered frame I/O and the client side.  The admin
 * module (src/admin/libadmin.a); no agent code, so chanctl links it
 * alone.  The agent's admin server is chand/admin.h.
 *
 * Wire format: a stream of frames over a Unix stream socket.  A frame is
 * an 8-byte header (two big-endian 32-bit lengths: the JSON text, then
 * the attachment), one JSON object (UTF-8) and a raw binary attachment
 * (often empty).  Bulk bytes, i.e. message bodies, travel in the
 * attachment; the JSON names them with "blobs": [len, len, ...], the
 * lengths of consecutive parts that together make up the attachment.
 * JSON is read and written only with jansson.
 *
 * A request is {"v":ADMIN_PROTOCOL_VERSION,"cmd":"...", ...}.  The agent
 * answers with zero or more records {"rec":{...}} and ends with
 * {"ok":true,...} or {"ok":false,"code":"CHDnnnn","error":"..."}.  A
 * connection may carry several requests one after the other. */
#ifndef CHAND_ADMIN_PROTO_H
#define CHAND_ADMIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "chand/codes.h"

/* Bumped on any incompatible change of a command's fields or flow. */
#define ADMIN_PROTOCOL_VERSION 1
/* Frame header: JSON length, attachment length (big-endian uint32). */
#define ADMIN_HDR_LEN 8
/* Largest JSON text of a frame; checked before allocating. */
#define ADMIN_JSON_MAX (16u * 1024 * 1024)
/* Largest attachment of a frame; checked before allocating. */
#define ADMIN_FRAME_MAX (64u * 1024 * 1024)
/* Once a frame has started, the rest must arrive within this time. */
#define ADMIN_STALL_MS 30000

/* ---- frame codec (pure: no I/O) ---- */

void admin_hdr_encode(uint32_t json_len, uint32_t att_len, uint8_t out[ADMIN_HDR_LEN]);
/* 0 with both lengths, or -1 with a reason if the JSON length is 0 or
 * above ADMIN_JSON_MAX or the attachment is above ADMIN_FRAME_MAX. */
int admin_hdr_decode(const uint8_t in[ADMIN_HDR_LEN], uint32_t *json_len, uint32_t *att_len,
                     char *err, size_t errlen);
/* A whole frame (header, compact JSON of obj, attachment), malloc'd;
 * NULL on allocation failure, if a length is out of bounds or if obj's
 * "blobs" do not describe att_len bytes exactly. */
uint8_t *admin_frame_encode_blob(const json_t *obj, const uint8_t *att, size_t att_len,
                                 size_t *len);
/* The same without attachment. */
uint8_t *admin_frame_encode(const json_t *obj, size_t *len);
/* The JSON object of a frame's JSON text (jansson; duplicate keys
 * refused), or NULL with a one-line reason (jansson's, with its line,
 * column and byte position). */
json_t *admin_frame_decode(const uint8_t *payload, size_t len, char *err, size_t errlen);
/* Decodes one complete frame of len bytes: its object (caller
 * json_decref) with *att / *att_len pointing into frame; NULL with a
 * reason if truncated, followed by extra bytes, or invalid. */
json_t *admin_frame_parse(const uint8_t *frame, size_t len, const uint8_t **att,
                          size_t *att_len, char *err, size_t errlen);
/* Checks that obj's "blobs" (an array of integer lengths, each >= 0)
 * cover exactly att_len bytes; no "blobs" is right only for att_len 0.
 * 0, or -1 with a reason. Every frame read or written passes this. */
int admin_blobs_check(const json_t *obj, size_t att_len, char *err, size_t errlen);
/* A new request {"v":ADMIN_PROTOCOL_VERSION,"cmd":cmd}. */
json_t *admin_request_new(const char *cmd);
/* Checks a request's envelope. 0 with *cmd (borrowed from req), or -1
 * with *code ADM_BAD_REQUEST (missing/ill-typed "v" or "cmd") or
 * ADM_VERSION ("incompatible chanctl (protocol X) and chand (protocol Y)"). */
int admin_request_check(const json_t *req, const char **cmd, enum chd_code_id *code,
                        char *err, size_t errlen);

/* ---- buffered frame I/O on a blocking stream socket (both ends) ---- */

struct admin_io {
	int fd;
	uint8_t *rbuf;
	size_t rcap, rstart, rend;
	uint8_t *wbuf;
	size_t wlen, wcap;
};

enum admin_io_rc {
	ADMIN_IO_OK = 1,
	ADMIN_IO_EOF = 0,        /* peer closed between frames */
	ADMIN_IO_ERR = -1,       /* read/write error or closed inside a frame */
	ADMIN_IO_TIMEOUT = -2,
	ADMIN_IO_BAD = -3,       /* bad length, not a JSON object, bad "blobs" */
};

void admin_io_init(struct admin_io *io, int fd);
/* Frees the buffers; does not close fd. */
void admin_io_free(struct admin_io *io);
/* Reads one frame: *out its object, *att its attachment (malloc'd, the
 * caller frees; NULL when *att_len is 0), already checked against the
 * object's "blobs". idle_ms bounds the wait for its first byte (-1:
 * forever); the rest must follow within ADMIN_STALL_MS. Returns an enum
 * admin_io_rc; on failure err says why. */
int admin_io_read_blob(struct admin_io *io, json_t **out, uint8_t **att, size_t *att_len,
                       int idle_ms, char *err, size_t errlen);
/* The same for frames without attachment: one is ADMIN_IO_BAD. */
int admin_io_read(struct admin_io *io, json_t **out, int idle_ms, char *err, size_t errlen);
/* Appends a frame to the write buffer (flushed when it grows large).
 * obj's "blobs" must describe att_len bytes (admin_blobs_check). A large
 * attachment is written straight from att, not copied. */
int admin_io_queue_blob(struct admin_io *io, const json_t *obj, const uint8_t *att,
                        size_t att_len);
int admin_io_queue(struct admin_io *io, const json_t *obj);
int admin_io_flush(struct admin_io *io);
/* admin_io_queue(_blob) + admin_io_flush. */
int admin_io_write_blob(struct admin_io *io, const json_t *obj, const uint8_t *att,
                        size_t att_len);
int admin_io_write(struct admin_io *io, const json_t *obj);
/* True if a read would find data at once (buffered or on the socket). */
bool admin_io_ready(struct admin_io *io);

/* ---- client (chanctl) ---- */

/* Connects to the agent's admin socket at path. Returns the connected
 * fd (close-on-exec), or -1 with a one-line reason in err: "no agent at
 * PATH" when nothing listens there (no such file, refused, not a
 * socket), otherwise what failed. */
int admin_connect(const char *path, char *err, size_t errlen);

enum admin_call_rc {
	ADMIN_CALL_OK = 0,       /* final {"ok":true,...} */
	ADMIN_CALL_REFUSED = 1,  /* final {"ok":false,"code","error"} */
	ADMIN_CALL_STOPPED = 2,  /* the record callback asked to stop */
	ADMIN_CALL_LOST = -1,    /* the connection broke; err says how */
	ADMIN_CALL_BAD = -2,     /* a frame that is neither a record nor a final reply */
};

/* Gets each {"rec":...} of a reply (rec borrowed); non-zero stops. */
typedef int (*admin_rec_fn)(void *arg, json_t *rec);

/* One request and its reply: sends req (stolen; NULL counts as a broken
 * connection), passes each record to on_rec (may be NULL) and returns
 * at the final frame an enum admin_call_rc. On ADMIN_CALL_OK and
 * ADMIN_CALL_REFUSED *final (may be NULL) is that frame (caller
 * json_decref), otherwise NULL. Frames with an attachment are refused
 * (ADMIN_CALL_LOST with the reason). */
int admin_call(struct admin_io *io, json_t *req, admin_rec_fn on_rec, void *arg,
               json_t **final, char *err, size_t errlen);

#endif
