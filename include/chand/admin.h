/* The agent's admin server (src/agent/admin_server.c): command
 * registration, replies and request fields for command functions, and
 * the server's lifecycle.  The protocol itself -- frames, their I/O and
 * the client -- is chand/admin_proto.h (src/admin), shared with chanctl.
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

#include "chand/admin_proto.h"
#include "chand/codes.h"

/* Concurrent admin connections the agent serves; more are refused. */
#define ADMIN_MAX_CONNS 64
/* Stack of a connection thread: room for jansson's recursive parser at
 * its deepest nesting (2048 levels take about 170 KiB) plus our frames. */
#define ADMIN_THREAD_STACK (512 * 1024)

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
