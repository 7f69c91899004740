/* The admin protocol between chanctl and chand (doc/ADMIN-PROTOCOL.md)
 * and the agent's admin server.
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
 * connection may carry several requests one after the other.
 *
 * Commands are a table (struct admin_cmd) that any module registers, so
 * a new family of commands lives in its own file: the command function
 * reads its fields from the request, replies through the helpers below
 * and returns 0 to keep serving the connection or -1 to close it. */
#ifndef CHAND_ADMIN_H
#define CHAND_ADMIN_H

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
/* Concurrent admin connections the agent serves; more are refused. */
#define ADMIN_MAX_CONNS 64
/* Stack of a connection thread: room for jansson's recursive parser at
 * its deepest nesting (2048 levels take about 170 KiB) plus our frames. */
#define ADMIN_THREAD_STACK (512 * 1024)

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

/* ---- the agent's admin server: command registration ---- */

struct agent;
struct store;
struct admin_conn;

struct admin_cmd {
	const char *name;                               /* "define queue" */
	int (*fn)(struct admin_conn *c, json_t *req);   /* 0 keep serving, -1 close */
};

/* Adds a table ending with a { NULL, NULL } entry (static storage).
 * Call before the server starts (agent_module.admin_cmds does it). A
 * name registered twice is a programming error (fatalx). */
void admin_register(const struct admin_cmd *cmds);
/* The same for commands whose requests may carry an attachment
 * (admin_req_blob). The agent refuses an attachment on any other command
 * as a malformed request, before running it. */
void admin_register_blob(const struct admin_cmd *cmds);

/* ---- replies (inside a command function) ---- */

/* Final success: {"ok":true, ...fields}. fields (stolen, may be NULL)
 * is an object whose members are added. Returns 0, or -1 if the client
 * is gone. */
int admin_reply_ok(struct admin_conn *c, json_t *fields);
/* Final failure: {"ok":false,"code":"CHDnnnn","error":"<text>"}; returns
 * 0 (or -1 if the client is gone). The text is one line. */
int admin_reply_err(struct admin_conn *c, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with extra members (stolen, may be NULL), e.g. how many of a
 * batch were put before the failure. */
int admin_reply_err_fields(struct admin_conn *c, enum chd_code_id code, json_t *fields,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A malformed request: logs CHD6002 with the reason, sends an error and
 * returns -1 (the command function returns that: the connection closes). */
int admin_bad_request(struct admin_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Streams {"rec":rec} (rec stolen). Buffered: flushed when large, before
 * any admin_recv and with the final reply. 0, or -1 if the client is gone. */
int admin_send_record(struct admin_conn *c, json_t *rec);
/* {"rec":rec,"blobs":[len]} with data as the attachment (copied or
 * written out before returning). */
int admin_send_record_blob(struct admin_conn *c, json_t *rec, const uint8_t *data, size_t len);
/* Any other frame (obj stolen), for multi-step commands. */
int admin_send(struct admin_conn *c, json_t *obj);
int admin_flush(struct admin_conn *c);
/* Reads the client's next frame (multi-step commands: acknowledgements).
 * timeout_ms -1 waits forever (until the agent stops). Returns an enum
 * admin_io_rc; *out is the frame on ADMIN_IO_OK (caller json_decref). */
int admin_recv(struct admin_conn *c, json_t **out, int timeout_ms);

/* The attachment of the request being run (borrowed: valid until the
 * command function returns; NULL when *len is 0). Already checked
 * against the request's "blobs". */
const uint8_t *admin_req_blob(struct admin_conn *c, size_t *len);

/* Pipelining (doc/ADMIN-PROTOCOL.md "Streams"): a client may send
 * requests flagged "stream":true without waiting for each reply.  Once a
 * command calls admin_stream_fail(), later stream requests on that
 * connection are answered {"ok":false,"skipped":true,...} unprocessed,
 * until a request without the flag arrives. */
void admin_stream_fail(struct admin_conn *c, enum chd_code_id code);
/* The next request if one has already arrived (buffered or readable now):
 * ADMIN_IO_OK with *out and its attachment (*att malloc'd, caller frees;
 * NULL when *att_len is 0), or 0 if none is ready, or a negative
 * enum admin_io_rc. For commands that batch pipelined requests. */
int admin_try_recv(struct admin_conn *c, json_t **out, uint8_t **att, size_t *att_len);
/* Hands a request read with admin_try_recv (and its attachment, both
 * stolen) back to the dispatcher, which runs it next (at most one). */
void admin_unrecv(struct admin_conn *c, json_t *req, uint8_t *att, size_t att_len);

/* ---- request fields: each returns 0, or -1 after admin_bad_request ---- */

/* *out borrowed from req; NULL if absent and !required. */
int admin_get_str(struct admin_conn *c, const json_t *req, const char *key, bool required,
                  const char **out);
/* *out unchanged if absent and !required; *present (may be NULL) says. */
int admin_get_int(struct admin_conn *c, const json_t *req, const char *key, bool required,
                  long long *out, bool *present);
int admin_get_bool(struct admin_conn *c, const json_t *req, const char *key, bool required,
                   bool *out, bool *present);

/* ---- context ---- */

/* This connection's store handle (one per connection thread). */
struct store *admin_store(struct admin_conn *c);
struct agent *admin_agent(struct admin_conn *c);
/* Unique non-zero id of the connection (a store_lock owner). */
uint64_t admin_conn_id(struct admin_conn *c);
/* True if the client closed its end (for commands that wait a long time
 * without reading). */
bool admin_client_gone(struct admin_conn *c);
/* Peer credentials, for logs. */
void admin_conn_peer(struct admin_conn *c, long *uid, long *pid);

/* ---- server lifecycle (chand main only) ---- */

/* Creates the socket (refusing if another agent answers there, removing a
 * stale one), applies admin.mode and admin.group. Returns the listening
 * fd, or -1 with a reason in err. */
int admin_listen(struct agent *a, char *err, size_t errlen);
/* Accepts pending connections on the listening fd (non-blocking),
 * checks credentials and starts a thread for each. Returns -1 when
 * accept ran out of file descriptors (caller pauses accepting). */
int admin_accept(struct agent *a, int lfd);
/* Stops every connection thread (bounded by timeout_ms), closes the
 * pooled store handles and removes the socket file. */
void admin_shutdown(struct agent *a, int timeout_ms);
/* Registers the queue and message commands of this module. */
void admin_register_builtin(void);

#endif
