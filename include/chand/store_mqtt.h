/* MQTT state of telemetry channels in the queue manager's database
 * (doc/STORAGE.md, "MQTT tables"): persistent sessions with their subscriptions, the
 * publications queued for each session (waiting for an offline client, or
 * in flight at QoS 1/2), the inbound QoS 2 packet ids not yet released, and
 * the retained messages.  All of it lives in the main database (WAL,
 * synchronous=FULL), so it survives kill -9 once the transaction commits.
 *
 * Every write joins the transaction opened on the handle by store_begin()
 * if there is one (group commit: the broker's writer thread commits many
 * clients' operations at once), else runs in its own.  Reads see the
 * handle's open transaction, else the last commit.
 *
 * Client ids, topics and filters are NUL-terminated strings stored with
 * their exact byte length (any UTF-8, never normalised); client ids are 1
 * to STORE_MQTT_CLIENTID_MAX bytes.
 *
 * Return codes: STORE_OK; STORE_BAD_ARG (a bad argument, nothing done);
 * STORE_NOT_FOUND (no such session / row; nothing changed and an open
 * transaction stays usable); STORE_ERR or STORE_DISK_FULL (SQLite failed:
 * an open transaction is rolled back, store_commit() then reports it).
 * store_errmsg() says why.  Tables and choices: doc/STORAGE.md, "MQTT
 * tables". */
#ifndef CHAND_STORE_MQTT_H
#define CHAND_STORE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand/store.h"

#define STORE_MQTT_CLIENTID_MAX 65535

struct store_mqtt_session {
	char *client_id;          /* malloc'd (in lists) */
	char channel[CHAND_NAME_MAX + 1];
	int protocol;             /* 3, 4 or 5 */
	int64_t expiry_s;         /* session expiry interval; -1 = never expires */
	int64_t disconnected_ms;  /* wall clock when the client went away; 0 = connected */
	uint16_t next_pid;        /* next packet id to use for outbound */
	char *identity;           /* malloc'd, may be NULL */
};

struct store_mqtt_sub {
	char *filter;             /* malloc'd */
	uint8_t qos;              /* granted */
	uint8_t opts;             /* bit0 no_local, bit1 retain_as_published, bits2-3 retain_handling */
	uint32_t sub_id;          /* 0 = none */
};

/* A publication (queued for a session, or retained).  Blobs are malloc'd
 * in results (payload/props NULL when their length is 0). */
struct store_mqtt_msg {
	int64_t seq;              /* per-row id assigned by the store (output of add) */
	char *topic;
	uint8_t *payload;
	size_t payload_len;
	uint8_t *props;           /* raw MQTT 5 property bytes to forward (opaque to the store) */
	size_t props_len;
	uint8_t qos;
	bool retain;
	int64_t expiry_ms;        /* absolute wall clock, 0 = never */
	int64_t put_ms;
	uint16_t pid;             /* outbound packet id, 0 = not sent yet */
	uint8_t state;            /* 0 queued, 1 PUBLISH sent (awaiting PUBACK/PUBREC),
	                           * 2 PUBREL sent (awaiting PUBCOMP) */
};

#define STORE_MQTT_QUEUED 0
#define STORE_MQTT_SENT 1
#define STORE_MQTT_RELSENT 2

/* ---- sessions ---- */
/* Insert or replace by client_id; a replaced session keeps its
 * subscriptions, queue and inbound QoS 2 ids. */
int store_mqtt_session_put(struct store *st, const struct store_mqtt_session *s);
/* Removes the session and its subscriptions, queued messages and inbound
 * QoS 2 ids.  STORE_NOT_FOUND if there was none. */
int store_mqtt_session_delete(struct store *st, const char *client_id);
/* STORE_NOT_FOUND if there is no such session. */
int store_mqtt_session_touch(struct store *st, const char *client_id, int64_t disconnected_ms,
                             uint16_t next_pid);
/* Fetches one session (fields malloc'd: free with store_mqtt_session_clear).
 * STORE_NOT_FOUND if there is none. */
int store_mqtt_session_get(struct store *st, const char *client_id,
                           struct store_mqtt_session *out);
void store_mqtt_session_clear(struct store_mqtt_session *s);

/* Every session with its subscriptions (for loading at start), sorted by
 * client_id (bytewise); subscriptions sorted by filter.  *out malloc'd
 * (NULL if none); free with store_mqtt_sessions_free. */
struct store_mqtt_session_full {
	struct store_mqtt_session s;
	struct store_mqtt_sub *subs;
	size_t nsubs;
	int64_t queued;           /* rows in its queue */
};
int store_mqtt_session_list(struct store *st, struct store_mqtt_session_full **out, size_t *n);
void store_mqtt_sessions_free(struct store_mqtt_session_full *v, size_t n);

/* ---- subscriptions ---- */
/* Insert or replace by (client_id, filter).  STORE_NOT_FOUND if the
 * session does not exist. */
int store_mqtt_sub_put(struct store *st, const char *client_id, const struct store_mqtt_sub *sub);
/* STORE_NOT_FOUND if there was no such subscription. */
int store_mqtt_sub_delete(struct store *st, const char *client_id, const char *filter);

/* ---- queued publications of a session, in seq order ---- */
/* Appends m (its pid and state are stored as given) and fills m->seq.
 * Seqs only ever grow, across restarts too, even after the last row was
 * deleted.  STORE_NOT_FOUND if the session does not exist. */
int store_mqtt_out_add(struct store *st, const char *client_id, struct store_mqtt_msg *m);
/* STORE_NOT_FOUND if the session has no such row. */
int store_mqtt_out_set(struct store *st, const char *client_id, int64_t seq, uint16_t pid,
                       uint8_t state);
/* STORE_NOT_FOUND if the session has no such row. */
int store_mqtt_out_delete(struct store *st, const char *client_id, int64_t seq);
/* Up to max rows with seq > after_seq, in seq order; expired rows
 * (expiry_ms != 0 && < now_ms) are deleted on the way (in the open
 * transaction, else in one of their own) and not returned.  *out
 * malloc'd (NULL if none); free with store_mqtt_msgs_free.  An unknown
 * session has no rows (STORE_OK, *n = 0). */
/* The highest seq of a session row, 0 if none, -1 on error. */
int64_t store_mqtt_out_max(struct store *st);
int store_mqtt_out_load(struct store *st, const char *client_id, int64_t after_seq, size_t max,
                        int64_t now_ms, struct store_mqtt_msg **out, size_t *n);
/* Rows in the session's queue (0 for an unknown session); -1 on error. */
int64_t store_mqtt_out_count(struct store *st, const char *client_id);
void store_mqtt_msgs_free(struct store_mqtt_msg *v, size_t n);

/* ---- inbound QoS 2 packet ids received (PUBREC sent), not yet released by PUBREL ---- */
/* Putting an id already there is not an error.  STORE_NOT_FOUND if the
 * session does not exist. */
int store_mqtt_in2_put(struct store *st, const char *client_id, uint16_t pid);
/* STORE_NOT_FOUND if the id was not there (MQTT 5: reason 0x92). */
int store_mqtt_in2_delete(struct store *st, const char *client_id, uint16_t pid);
/* Ascending; *pids malloc'd (NULL if none). */
int store_mqtt_in2_list(struct store *st, const char *client_id, uint16_t **pids, size_t *n);

/* ---- retained messages: one per topic ---- */
/* Replaces the topic's message (pid and state are not kept); an empty
 * payload is the caller's business (it calls delete). */
int store_mqtt_retain_put(struct store *st, const struct store_mqtt_msg *m);
/* STORE_NOT_FOUND if the topic had none. */
int store_mqtt_retain_delete(struct store *st, const char *topic);
/* All of them, sorted by topic (for loading at start); seq is the row's
 * id.  Free with store_mqtt_msgs_free. */
int store_mqtt_retain_list(struct store *st, struct store_mqtt_msg **out, size_t *n);

/* ---- route definitions (doc/TELEMETRY.md): JSON text owned by the mqtt module ---- */
int store_route_put(struct store *st, const char *name, const char *attrs, bool replace);
int store_route_delete(struct store *st, const char *name);
/* Every route, sorted by name: two malloc'd arrays of malloc'd strings. */
int store_route_list(struct store *st, char ***names, char ***attrs, size_t *n);
void store_route_list_free(char **names, char **attrs, size_t n);

#endif
