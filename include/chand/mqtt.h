/* Telemetry channels (doc/TELEMETRY.md): IBM MQ's CHLTYPE(MQTT), a
 * listener of the agent on which MQTT 3.1, 3.1.1 and 5.0 clients connect
 * over TLS (or plain TCP when SSLCIPH is empty).
 *
 * The definition (struct mqtt_def) is pure: attributes, defaults, ranges
 * and their JSON form, stored in the same table as message channel
 * definitions (one namespace of channel names, "type":"mqtt").
 *
 * The running part is one event loop thread that owns every MQTT socket
 * (epoll, non-blocking GnuTLS) and a writer thread that commits QoS 1/2
 * publications and session changes in group transactions (doc/TELEMETRY.md). */
#ifndef CHAND_MQTT_H
#define CHAND_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "chand/codes.h"
#include "chand/dnfilter.h"
#include "chand/keystore.h"
#include "chand/tls.h"
#include "chand/util.h"

#define MQTT_ADDR_MAX 64
#define MQTT_PATH_MAX 1024
#define MQTT_USER_MAX 256

enum mqtt_identity {
	MQTT_ID_CLIENTID = 0,   /* IBM MQ USECLTID(YES) */
	MQTT_ID_USERNAME = 1,   /* the MQTT user name (checked against --password-file) */
	MQTT_ID_CERT_CN = 2,    /* mosquitto use_identity_as_username */
	MQTT_ID_CERT_DN = 3,    /* mosquitto use_subject_as_username */
};

/* Protocol versions a channel accepts (bits). */
#define MQTT_PROTO_V31 0x1u
#define MQTT_PROTO_V311 0x2u
#define MQTT_PROTO_V5 0x4u
#define MQTT_PROTO_ALL (MQTT_PROTO_V31 | MQTT_PROTO_V311 | MQTT_PROTO_V5)

/* Defaults and ranges. */
#define MQTT_DEF_MAX_CLIENTS 10000
#define MQTT_DEF_MAX_PACKET (1024L * 1024 * 4 + 1024)   /* a 4 MiB message and its header */
#define MQTT_DEF_KEEPALIVE_MAX 65535
#define MQTT_DEF_SESSION_EXPIRY_MAX 4294967295LL       /* "never" for MQTT 3 sessions */

struct mqtt_def {
	char name[CHAND_NAME_MAX + 1];
	char address[MQTT_ADDR_MAX + 1];     /* "" = every IPv4 address (0.0.0.0) */
	long port;                           /* 1..65535 */
	unsigned protocols;                  /* MQTT_PROTO_* */
	char sslciph[64];                    /* "" = plain TCP */
	char certlabl[KS_LABEL_MAX + 1];     /* "" = the queue manager's keystore.label */
	int sslcauth;                        /* enum sslcauth: never, optional, required */
	char sslpeer[DNF_MAX_LEN + 1];
	enum mqtt_identity identity;
	char mcauser[MQTT_USER_MAX + 1];     /* "" = none */
	char password_file[MQTT_PATH_MAX + 1];
	char acl_file[MQTT_PATH_MAX + 1];
	int allow_anonymous;                 /* -1 = default: yes unless a password file is set */
	long max_clients;
	long max_packet;
	long keepalive_max;
	long long session_expiry_max;
	char descr[65];
};

void mqtt_def_init(struct mqtt_def *d, const char *name);
/* Sets the attributes present in obj (lower-case names as in the display
 * JSON). Members that belong to message channels only (conname, xmitq,
 * batchsz...) are refused by name. 0, or -1 with a one-line reason. */
int mqtt_def_apply_json(struct mqtt_def *d, const json_t *obj, char *err, size_t errlen);
/* Cross-attribute checks done at define/alter time. 0 or -1 with reason. */
int mqtt_def_validate(const struct mqtt_def *d, char *err, size_t errlen);
json_t *mqtt_def_to_json(const struct mqtt_def *d);
int mqtt_def_from_text(struct mqtt_def *d, const char *name, const char *text, char *err,
                       size_t errlen);
bool mqtt_def_allow_anonymous(const struct mqtt_def *d);
const char *mqtt_identity_name(enum mqtt_identity id);
const char *mqtt_sslcauth_name(int sslcauth);
/* "v31,v311,v5" */
void mqtt_protocols_text(unsigned protocols, char *buf, size_t len);

/* ---- routes (doc/TELEMETRY.md): publications carried further ---- */

#define MQTT_ROUTE_FILTER_MAX 1024
#define MQTT_ROUTE_PREFIX_MAX 256
/* The queue every agent takes routed publications from (created at start). */
#define MQTT_ROUTE_QUEUE "SYSTEM.MQTT.PUBLISH"

struct mqtt_route_def {
	char name[CHAND_NAME_MAX + 1];
	char topic[MQTT_ROUTE_FILTER_MAX + 1];      /* topic filter */
	char queue[CHAND_NAME_MAX + 1];             /* --queue: put matching publications there */
	char qmgr[CHAND_NAME_MAX + 1];              /* --qmgr: forward to that queue manager */
	char remote_prefix[MQTT_ROUTE_PREFIX_MAX + 1];
	char local_prefix[MQTT_ROUTE_PREFIX_MAX + 1];
	int qos_min;                                /* 0..2 */
	char descr[65];
};

void mqtt_route_init(struct mqtt_route_def *r, const char *name);
int mqtt_route_apply_json(struct mqtt_route_def *r, const json_t *obj, char *err, size_t errlen);
/* Filter syntax (with the position of an error), exactly one of queue
 * and qmgr, prefixes only with qmgr. 0 or -1 with a one-line reason. */
int mqtt_route_validate(const struct mqtt_route_def *r, char *err, size_t errlen);
json_t *mqtt_route_to_json(const struct mqtt_route_def *r);
int mqtt_route_from_text(struct mqtt_route_def *r, const char *name, const char *text, char *err,
                         size_t errlen);
/* The topic a publication on topic gets at the far end: local_prefix
 * removed (if the topic starts with it), remote_prefix added. False if
 * the result would be too long or empty. */
bool mqtt_route_topic(const struct mqtt_route_def *r, const char *topic, char *out, size_t len);

/* ---- the running module (src/mqtt/mqtt_svc.c) ---- */

struct store;
struct tls_ctx;

struct mqtt_host {
	const char *qmgr;
	const char *default_label;           /* keystore.label */
	int handshake_timeout_ms;
	int (*store_open)(void *arg, struct store **out, char *err, size_t errlen);
	struct tls_ctx *(*tls_get)(void *arg);   /* a reference, or NULL */
	uint64_t (*owner_id)(void);              /* a unique store_lock owner */
	void *arg;
};

/* The result of an operation: a code and a one-line text. */
struct mqtt_result {
	enum chd_code_id code;
	char text[512];
	size_t published;        /* mqtt_op_publish: how many were committed */
};

/* Loads telemetry channel definitions and persistent sessions, starts the
 * loop and writer threads, and starts the channels that were running when
 * the agent last stopped. 0, or -1 (logged). */
int mqtt_svc_start(const struct mqtt_host *host);
/* Stops listening, disconnects clients (their wills are not published:
 * the sessions live on), commits what is pending, joins the threads. */
void mqtt_svc_stop(void);

/* True if name is a telemetry channel defined here. */
bool mqtt_svc_has(const char *name);
int mqtt_op_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                   struct mqtt_result *r);
int mqtt_op_alter(struct store *st, const char *name, const json_t *attrs,
                  struct mqtt_result *r);
int mqtt_op_delete(struct store *st, const char *name, struct mqtt_result *r);
/* Definitions whose names match pattern, as display JSON objects. */
json_t *mqtt_op_display(const char *pattern);
int mqtt_op_start(struct store *st, const char *name, struct mqtt_result *r);
/* client NULL: stop the channel (disconnects everyone); else disconnect
 * that one client (the channel keeps running). */
int mqtt_op_stop(struct store *st, const char *name, const char *client, struct mqtt_result *r);
/* Status records of the channels matching pattern; with clients, each
 * carries "clients" (those whose id matches client_pattern; NULL = all). */
json_t *mqtt_op_status(const char *pattern, bool clients, const char *client_pattern);
/* Publishes n bodies on topic as if a client had (chanctl put --topic);
 * returns when QoS 1/2 publications are committed. 0 or -1 with r. */
int mqtt_op_publish(const char *topic, uint8_t qos, bool retain, const uint8_t *const *bodies,
                    const size_t *lens, size_t n, struct mqtt_result *r);
/* Routes: define (checks the target exists: the queue, or a transmission
 * queue for the queue manager), delete, display (definitions with their
 * counters: matched, forwarded, dropped and why, loops prevented). */
int mqtt_op_route_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                         struct mqtt_result *r);
int mqtt_op_route_delete(struct store *st, const char *name, struct mqtt_result *r);
json_t *mqtt_op_route_display(const char *pattern);
/* refresh security: reloads password and ACL files (keeping the old ones
 * of a channel whose new files do not parse) and re-checks connected
 * clients' certificates against ctx. */
void mqtt_op_refresh(struct tls_ctx *ctx);

#endif
