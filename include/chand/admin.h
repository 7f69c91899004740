/* The admin protocol between chanctl and chand (doc/ADMIN-PROTOCOL.md)
 * and the agent's admin server.
 *
 * Wire format: a stream of frames over a Unix stream socket, each a
 * 4-byte big-endian length followed by that many bytes of one JSON
 * object (UTF-8).  A request is {"v":ADMIN_PROTOCOL_VERSION,"cmd":"...",
 * ...}.  The agent answers with zero or more records {"rec":{...}} and
 * ends with {"ok":true,...} or {"ok":false,"code":"CHDnnnn","error":"..."}.
 * A connection may carry several requests one after the other.
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
/* Largest frame either side accepts; checked before allocating. */
#define ADMIN_FRAME_MAX (64u * 1024 * 1024)
/* Once a frame has started, the rest must arrive within this time. */
#define ADMIN_STALL_MS 30000
/* Concurrent admin connections the agent serves; more are refused. */
#define ADMIN_MAX_CONNS 64

/* ---- frame codec (pure: no I/O) ---- */

void admin_hdr_encode(uint32_t len, uint8_t out[4]);
/* 0 with *len, or -1 if the length is 0 or above ADMIN_FRAME_MAX. */
int admin_hdr_decode(const uint8_t in[4], uint32_t *len);
/* Header + compact JSON of obj, malloc'd; NULL on allocation failure
 * or if it would exceed ADMIN_FRAME_MAX. */
uint8_t *admin_frame_encode(const json_t *obj, size_t *len);
/* The JSON object in a payload, or NULL with a one-line reason. */
json_t *admin_frame_decode(const uint8_t *payload, size_t len, char *err, size_t errlen);
/* The JSON text of frames (admin_json.c): RFC 8259, strings checked for
 * UTF-8, duplicate keys and nesting deeper than 32 refused; built for
 * throughput on long strings (base64 bodies). */
json_t *admin_json_load(const char *buf, size_t len, char *err, size_t errlen);
/* Writes the compact JSON of v at (*buf + off), growing *buf (realloc) and
 * *cap as needed; *len = bytes written. 0, or -1 on allocation failure. */
int admin_json_dump(const json_t *v, char **buf, size_t *len, size_t *cap, size_t off);
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
	ADMIN_IO_BAD = -3,       /* bad length or not a JSON object */
};

void admin_io_init(struct admin_io *io, int fd);
/* Frees the buffers; does not close fd. */
void admin_io_free(struct admin_io *io);
/* Reads one frame into *out. idle_ms bounds the wait for its first byte
 * (-1: forever); the rest must follow within ADMIN_STALL_MS. Returns an
 * enum admin_io_rc; on failure err says why. */
int admin_io_read(struct admin_io *io, json_t **out, int idle_ms, char *err, size_t errlen);
/* Appends a frame to the write buffer (flushed when it grows large). */
int admin_io_queue(struct admin_io *io, const json_t *obj);
int admin_io_flush(struct admin_io *io);
/* admin_io_queue + admin_io_flush. */
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
/* Any other frame (obj stolen), for multi-step commands. */
int admin_send(struct admin_conn *c, json_t *obj);
int admin_flush(struct admin_conn *c);
/* Reads the client's next frame (multi-step commands: acknowledgements).
 * timeout_ms -1 waits forever (until the agent stops). Returns an enum
 * admin_io_rc; *out is the frame on ADMIN_IO_OK (caller json_decref). */
int admin_recv(struct admin_conn *c, json_t **out, int timeout_ms);

/* Pipelining (doc/ADMIN-PROTOCOL.md "Streams"): a client may send
 * requests flagged "stream":true without waiting for each reply.  Once a
 * command calls admin_stream_fail(), later stream requests on that
 * connection are answered {"ok":false,"skipped":true,...} unprocessed,
 * until a request without the flag arrives. */
void admin_stream_fail(struct admin_conn *c, enum chd_code_id code);
/* The next request if one has already arrived (buffered or readable now):
 * ADMIN_IO_OK with *out, or 0 if none is ready, or a negative
 * enum admin_io_rc. For commands that batch pipelined requests. */
int admin_try_recv(struct admin_conn *c, json_t **out);
/* Hands a request read with admin_try_recv back to the dispatcher, which
 * runs it next (at most one). */
void admin_unrecv(struct admin_conn *c, json_t *req);

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
