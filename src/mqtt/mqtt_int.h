/* Internals of the telemetry service (src/mqtt), shared by its files:
 *   mqtt_svc.c     lifecycle, channels, admin operations, status
 *   mqtt_loop.c    the event loop: listeners, sockets, TLS, timers
 *   mqtt_proto.c   one handler per MQTT packet type
 *   mqtt_broker.c  sessions, subscriptions, delivery, retained messages, wills
 *   mqtt_persist.c the writer thread: group commit of QoS 1/2 state
 *   mqtt_route.c   routes: publications out to queues, routed ones in
 *   mqtt_early.c   routed QoS 1 publications sent before their rows
 *
 * Threads and locks: one loop thread owns every socket and all broker
 * state, and holds mq.mtx whenever it is not sleeping in epoll_wait.
 * Admin threads take mq.mtx for their short operations (define, status,
 * disconnect a client) and wake the loop through mq.wake_fd.  The writer
 * thread never touches broker state: it takes jobs from its own queue
 * (pq_mtx), runs them in one transaction, and hands them back through the
 * done list and mq.wake_fd; the loop runs their completions.  The writer
 * reads a job only after the loop has finished with it (a held job of
 * mqtt_early.c is trimmed before it is submitted; the loop keeps changing
 * only the mq_early its ops point to, which the writer never reads). */
#ifndef CHAND_MQTT_INT_H
#define CHAND_MQTT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chand/mqtt.h"
#include "chand/mqtt_auth.h"
#include "chand/mqtt_codec.h"
#include "chand/pubsub.h"
#include "chand/store_mqtt.h"
#include "chand/tls.h"

/* Bounds (doc/TELEMETRY.md). */
#define MQ_CONNECT_TIMEOUT_MS 10000   /* TCP accept -> CONNECT done (TLS included) */
#define MQ_FIRST_BYTE_MS 5000         /* accept -> first byte */
#define MQ_PER_SOURCE_MAX 64          /* connections per source address not yet CONNECTed */
#define MQ_INFLIGHT_DEFAULT 32        /* QoS 1/2 messages in flight to a client (v3) */
#define MQ_RECEIVE_MAX 1024           /* QoS 1/2 from a client awaiting our ack */
#define MQ_MEMQ_MAX 1000              /* messages of a session held in memory */
#define MQ_CLEANQ_MAX 100000          /* waiting messages of a clean (memory) session */
#define MQ_ALIAS_MAX 64               /* topic aliases a client may set */
#define MQ_LINGER_MS 250
#define MQ_OUTBUF_HIGH (1024 * 1024)  /* output bytes beyond which a session's queue waits */
#define MQ_EARLY_HOLD_MS 100          /* longest wait for acks before rows are written (mqtt_early.c) */
#define MQ_INQ_JOBS 4                 /* batches of routed publications on their way at once */

struct mq_conn;
struct mq_sess;
struct mq_job;
struct mq_out;

/* A routed QoS 1 publication sent to a persistent session before its row
 * was written (mqtt_early.c): shared by the entry and its OUT_ADD op. */
struct mq_early {
	struct mq_out *o;       /* the entry; NULL once settled (acked, expired, session gone) */
	struct mq_job *job;     /* the held job of routed publications, NULL once submitted */
	bool settled;           /* the session needs no row for it any more */
	unsigned refs;          /* the entry and the op (loop thread only) */
};

/* A publication, shared (refcounted) by every queue that holds it. */
struct mq_msg {
	unsigned refs;
	char *topic;
	size_t tlen;
	uint8_t *payload;
	size_t plen;
	uint8_t *props;         /* forwardable MQTT 5 properties (raw) */
	size_t prlen;
	uint8_t qos;
	bool retain;
	int64_t expiry_ms;      /* wall clock, 0 = never */
	uint64_t origin;        /* session id of the publisher (no-local), 0 = none */
	char *path;             /* queue managers it came through ("QM1,QM2"), NULL = none */
};

/* A message on its way to one session. */
struct mq_out {
	struct mq_out *next;
	struct mq_msg *m;
	int64_t seq;            /* its row in the store, 0 = memory only */
	uint8_t qos;            /* effective QoS */
	bool retain;            /* retain flag as sent */
	bool dup;
	uint16_t pid;
	uint8_t state;          /* STORE_MQTT_QUEUED / _SENT / _RELSENT */
	bool held;              /* in flight, waiting for its packet id to be durable */
	uint32_t sub_id;        /* 0 = none */
	struct mq_early *early; /* sent before its row was written (seq 0 until then) */
};

struct mq_sub {
	struct mq_sub *next;
	char *filter;
	uint8_t qos;
	uint8_t opts;           /* bit0 no_local, bit1 retain as published, bits 2-3 retain handling */
	uint32_t sub_id;
};

struct mq_sess {
	struct mq_sess *hnext;          /* hash chain */
	char *client_id;
	uint64_t id;
	unsigned refs;                  /* jobs that point here, + 1 while in the table */
	bool gone;                      /* removed from the table */
	char channel[CHAND_NAME_MAX + 1];
	bool persistent;                /* kept in the store */
	int64_t expiry_s;               /* -1 never */
	int64_t disconnected_ms;        /* 0 while connected */
	int protocol;
	char *identity;
	uint16_t next_pid;
	struct mq_conn *conn;           /* NULL while offline */
	struct mq_sub *subs;
	/* outbound: in flight (sent, not yet acknowledged), then waiting */
	struct mq_out *fl_head, *fl_tail;
	unsigned n_flight;
	struct mq_out *q_head, *q_tail;
	size_t n_queued;
	bool backlog;                   /* more rows in the store than in q */
	int64_t loaded_upto;            /* highest store seq brought into memory */
	int64_t stored;                 /* rows in the store (for status) */
	unsigned rows_pending;          /* OUT_ADD rows of uncommitted jobs (not early ones) */
	unsigned early_rows;            /* early entries whose job has not completed */
	/* inbound QoS 2 packet ids received, not yet released */
	uint16_t *in2;
	size_t n_in2, cap_in2;
	uint64_t msgs_in, msgs_out, dropped;
	int64_t last_msg_ms;
	/* a will waiting for its delay (session went away) */
	struct mq_msg *will;
	int64_t will_at_mono;
};

enum mq_cstate { MC_TLS, MC_CONNECT, MC_ACTIVE, MC_CLOSING };

struct mq_ev {
	int kind;               /* MQ_EV_* */
	void *p;
};
#define MQ_EV_WAKE 1
#define MQ_EV_LISTEN 2
#define MQ_EV_CONN 3

struct mq_chan;

struct mq_conn {
	struct mq_ev ev;
	struct mq_conn *next, *prev;    /* mq.conns */
	uint64_t id;
	unsigned refs;                  /* jobs pointing here, + 1 while open */
	int fd;
	struct mq_chan *ch;
	struct tls_conn *tc;            /* NULL for plain TCP */
	enum mq_cstate state;
	bool dead;                      /* closed, freed when refs drop to 0 */
	bool epollout;
	bool counted_source;            /* holds a per-source slot */
	bool counted_chan;              /* counts in ch->nconns */
	struct sockaddr_storage peer_ss;
	char peer[80];
	int64_t deadline;               /* monotonic: end of the linger after close */
	int64_t accepted_mono;
	int64_t last_rx;                /* monotonic: last packet received */
	bool got_byte;
	uint16_t keepalive;
	enum mqtt_ver version;
	uint8_t *rb;
	size_t rlen, rcap;
	struct mqtt_wbuf w;
	size_t woff;
	size_t again;                   /* length of a send that returned AGAIN */
	struct mq_sess *sess;
	struct mq_msg *will;
	uint32_t will_delay;
	int64_t will_expiry_s;          /* v5 message expiry of the will, 0 = none */
	unsigned paused;                /* waiting for a commit before answering more */
	struct mq_conn *next_dirty;     /* output to flush at the end of the round */
	bool dirty;
	uint16_t client_recv_max;
	uint32_t client_max_packet;     /* 0 = no limit */
	char *aliases[MQ_ALIAS_MAX + 1];
	unsigned inflight_in;
	uint16_t *in1;                  /* QoS 1 packet ids awaiting our PUBACK */
	size_t n_in1, cap_in1;
	char user[MQTT_USER_MAX + 1];   /* MQTT user name given */
	char identity[512];             /* who the ACL sees */
	bool anonymous;
	struct tls_info tls;
	int64_t connected_ms;
	uint64_t msgs_in, msgs_out;
	char why[256];                  /* why it closed (for the log) */
	bool will_suppressed;           /* normal DISCONNECT */
};

struct mq_chan {
	struct mq_ev ev;
	struct mq_chan *next;
	struct mqtt_def def;
	int lfd;                        /* -1 while stopped */
	bool running;
	bool deleted;
	int64_t start_ms;
	unsigned nconns;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out, conns_total, refused;
	struct mqtt_passwd *pw;
	struct mqtt_acl *acl;
	char last_error_code[16];
	char last_error[300];
	int64_t log_window;             /* refusal log budget (mqtt_loop.c) */
	unsigned log_count, log_suppressed;
};

/* A unit of work for the writer thread: store operations, run in one
 * transaction with other jobs, and what to do once they are durable. */
enum mq_op_kind {
	OP_SESS_PUT, OP_SESS_DEL, OP_SESS_TOUCH, OP_SUB_PUT, OP_SUB_DEL, OP_OUT_ADD, OP_OUT_SET,
	OP_OUT_DEL, OP_IN2_PUT, OP_IN2_DEL, OP_RET_PUT, OP_RET_DEL,
	OP_Q_PUT,           /* a route's message onto a queue (or a queue manager's XMITQ) */
	OP_Q_CONFIRM,       /* routed messages taken from MQTT_ROUTE_QUEUE: delete them */
};

struct mq_route;

struct mq_op {
	enum mq_op_kind kind;
	char *client_id;                /* malloc'd */
	struct mq_msg *m;               /* OUT_ADD, RET_PUT (a reference) */
	char *text;                     /* SUB_*: filter; RET_DEL: topic; SESS_PUT: identity */
	char channel[CHAND_NAME_MAX + 1];
	int protocol;
	int64_t expiry_s, when_ms, seq;
	uint16_t pid;
	uint8_t state, qos, opts;
	uint32_t sub_id;
	struct mq_early *early;         /* OUT_ADD: the entry was sent before the row (a reference) */
	struct mq_sess *sess;           /* OUT_ADD: whose (a reference) */
	struct chd_msg *qmsg;           /* Q_PUT: the message (malloc'd) */
	char qname[CHAND_NAME_MAX + 1]; /* Q_PUT: queue, qmgr (empty: local) */
	char qmgr[CHAND_NAME_MAX + 1];
	struct mq_route *route;         /* Q_PUT: whose counters (never freed while running) */
	struct msg_list *locked;        /* Q_CONFIRM */
};

enum mq_done {
	DONE_NONE,
	DONE_PUBLISH,       /* a client's QoS 1/2 PUBLISH: ack it, deliver */
	DONE_PUBREL,        /* a client's PUBREL: send PUBCOMP */
	DONE_SEND,          /* outbound QoS 2 ids recorded: send the PUBLISHes */
	DONE_PUBREC_IN,     /* a subscriber's PUBREC recorded: send PUBREL */
	DONE_ADMIN,         /* chanctl put --topic: wake the waiter */
	DONE_CONNACK,       /* session stored: send CONNACK, resume the session */
	DONE_SUBACK,        /* subscriptions stored: send SUBACK, then retained messages */
	DONE_BYTES,         /* send pkt (e.g. UNSUBACK) */
	DONE_INQ,           /* routed publications taken from the queue: delivered */
};

/* A route at run time; counters are atomic (the writer updates them). */
struct mq_route {
	struct mq_route *next;
	struct mqtt_route_def def;
	bool deleted;
	atomic_ullong matched, forwarded, dropped, loops;
	pthread_mutex_t why_mtx;
	char last_drop[256];
};

struct mq_waiter {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	size_t pending;                 /* jobs not yet completed */
	size_t ok;                      /* jobs committed */
	int rc;                         /* the first failure */
};

/* A subscriber of a clean (memory) session to deliver to once the
 * publication is committed. */
struct mq_tgt {
	struct mq_sess *sess;           /* a reference */
	struct mq_msg *m;               /* a reference */
	uint8_t qos;
	bool retain;
	uint32_t sub_id;
};

struct mq_job {
	struct mq_job *next;
	struct mq_tgt *tg;
	size_t ntg, captg;
	struct mq_op *ops;
	size_t nops, cap;
	enum mq_done done;
	struct mq_conn *conn;           /* a reference */
	uint16_t pid;
	uint8_t qos;
	struct mq_msg *m;               /* DONE_PUBLISH/ADMIN: deliver after commit (a reference) */
	struct mq_sess *sess;           /* DONE_SEND / PUBREC_IN (a reference) */
	struct mq_waiter *waiter;
	struct mqtt_wbuf pkt;           /* DONE_CONNACK / SUBACK / BYTES: the answer */
	size_t count;                   /* DONE_INQ: messages taken */
	int64_t seq_mark;               /* session rows up to this seq are durable */
	unsigned early_open;            /* DONE_INQ held: early entries not settled yet */
	int64_t hold_until;             /* DONE_INQ held: monotonic end of the wait */
	int rc;                         /* 0, or a store error */
	char err[256];
};

struct mq_state {
	pthread_mutex_t mtx;
	atomic_int admin_wait;          /* admin threads waiting for mtx (mq_admin_lock) */
	struct mqtt_host host;
	bool started;
	atomic_bool stopping;
	int ep;
	int wake_fd;
	struct mq_ev wake_ev;
	pthread_t loop_thr, writer_thr;
	struct store *rd;               /* the loop's reader handle */
	int64_t rows_durable;           /* session rows up to this seq are durable */
	struct mq_chan *chans;
	struct mq_conn *conns;
	uint64_t next_conn_id, next_sess_id;
	/* sessions by client id */
	struct mq_sess **stab;
	size_t stab_size, nsess;
	struct subtree *subs;
	/* retained messages by topic */
	struct mq_msg **rtab;
	size_t rtab_size, nret;
	/* writer queue */
	pthread_mutex_t pq_mtx;
	pthread_cond_t pq_cond;
	struct mq_job *pq_head, *pq_tail;
	struct mq_job *done_head, *done_tail;
	bool writer_stop;
	struct tls_ctx *refresh_ctx;    /* set by refresh security, taken by the loop */
	struct mq_job *lazy;            /* operations nobody waits for, submitted each round */
	struct mq_route *routes, *dead_routes;
	/* the consumer of MQTT_ROUTE_QUEUE (mqtt_route.c) */
	bool inq_ready, inq_more;
	unsigned inq_jobs;              /* DONE_INQ jobs held or submitted, not completed */
	struct mq_job *held_head, *held_tail;   /* DONE_INQ jobs waiting for acks (mqtt_early.c) */
	int64_t inq_retry_at;
	uint64_t inq_gen, inq_owner;
	uint64_t inq_done, inq_bad;
};

extern struct mq_state mq;

/* mqtt_msg helpers (mqtt_broker.c) */
struct mq_msg *mq_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                          const uint8_t *props, size_t prlen, uint8_t qos, bool retain,
                          int64_t expiry_ms);
void mq_msg_ref(struct mq_msg *m);
void mq_msg_unref(struct mq_msg *m);

/* sessions (mqtt_broker.c) */
struct mq_sess *mq_sess_find(const char *client_id);
struct mq_sess *mq_sess_add(const char *client_id);
/* Ends a session: subscriptions out of the tree, queues dropped, removed
 * from the table (and from the store when persistent: op added to job,
 * or a job of its own when job is NULL). */
void mq_sess_drop(struct mq_sess *s, struct mq_job *job);
void mq_sess_unref(struct mq_sess *s);
/* Publishes m as if a client on channel had (ACLs already checked):
 * retained store, fanout to subscribers. QoS 0: delivered now. QoS 1/2:
 * the store rows go into job and the delivery happens when it commits
 * (mq_deliver_committed). */
void mq_publish(struct mq_msg *m, struct mq_job *job);
void mq_deliver_committed(struct mq_job *job);
/* mq_publish with a job of its own (wills): nobody waits for the ack. */
void mq_publish_now(struct mq_msg *m);
/* Moves waiting messages of an online session into flight and onto its
 * connection's output. */
void mq_sess_pump(struct mq_sess *s);
/* The client of s acknowledged pid (PUBACK / PUBREC / PUBCOMP). */
void mq_sess_acked(struct mq_sess *s, enum mqtt_ptype type, uint16_t pid);
/* A resumed persistent session: loads its waiting rows and resends what
 * was in flight (DUP). */
void mq_sess_resume(struct mq_sess *s);
/* Retained messages matching filter, sent to the session just subscribed. */
void mq_send_retained(struct mq_sess *s, const char *filter, size_t flen, uint8_t qos,
                      uint32_t sub_id);
void mq_retained_set(struct mq_msg *m);   /* in memory; the store op is the caller's */
void mq_sess_timers(int64_t now_mono, int64_t now_ms);
bool mq_in2_has(struct mq_sess *s, uint16_t pid);
void mq_in2_add(struct mq_sess *s, uint16_t pid);
void mq_in2_del(struct mq_sess *s, uint16_t pid);
size_t mq_sess_pending(const struct mq_sess *s);

/* the writer (mqtt_persist.c) */
struct mq_job *mq_job_new(enum mq_done done);
struct mq_op *mq_job_op(struct mq_job *j, enum mq_op_kind kind, const char *client_id);
/* Hands the job to the writer (a job without operations completes at once
 * in the loop's next round, after earlier jobs). */
void mq_job_submit(struct mq_job *j);
void mq_job_free(struct mq_job *j);
/* What one op holds (its strings and references). */
void mq_op_free(struct mq_op *op);
/* The job of this loop round for operations nobody waits for (deletes of
 * acknowledged rows, session touches): submitted by mq_lazy_flush(). */
struct mq_job *mq_lazy(void);
void mq_lazy_flush(void);
int mq_writer_start(void);
void mq_writer_stop(void);
/* Completions of committed jobs (loop thread). */
void mq_run_done(void);

/* the loop (mqtt_loop.c) */
int mq_loop_start(void);
void mq_loop_stop(void);
void mq_loop_close(void);
/* mq.mtx for an admin thread: the loop lets it in between two events. */
void mq_admin_lock(void);
void mq_wake(void);
int mq_listen(struct mq_chan *ch, char *err, size_t errlen);
void mq_unlisten(struct mq_chan *ch);
/* Queues bytes for the connection (flushed by the loop). */
void mq_conn_send(struct mq_conn *c);
/* Ends a connection: why is logged; publish_will says whether its will
 * goes out (not after a normal DISCONNECT). */
void mq_conn_close(struct mq_conn *c, enum chd_code_id code, bool publish_will, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* v5: DISCONNECT with reason, then close. v3: just close. */
void mq_conn_abort(struct mq_conn *c, enum chd_code_id code, uint8_t reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void mq_conn_unref(struct mq_conn *c);
/* A commit the connection waited for is done: read its input again. */
void mq_conn_unpause(struct mq_conn *c);

/* packets (mqtt_proto.c) */
/* One whole packet from c. 0 go on, -1 the connection was closed. */
int mq_handle_packet(struct mq_conn *c, const uint8_t *pkt, size_t len);
/* Encodes m for the session's connection; false if it could not be sent
 * (too large for the client: dropped). */
bool mq_send_publish(struct mq_conn *c, const struct mq_out *o);
bool mq_send_publish_fits(struct mq_conn *c, const struct mq_out *o);
/* A committed SUBACK job: the SUBACK, then the retained messages. */
void mq_deliver_suback(struct mq_job *j);

/* routes (mqtt_route.c) */
/* Adds the Q_PUT operations of the routes m matches to job (or to the
 * lazy job for QoS 0 with no job). */
void mq_routes_apply(struct mq_msg *m, struct mq_job *job);
/* Takes routed publications from MQTT_ROUTE_QUEUE when some wait and
 * fewer than MQ_INQ_JOBS batches are on their way (loop thread, each round). */
void mq_inq_poll(void);
/* A committed (or failed) batch of the consumer. */
void mq_inq_done(struct mq_job *job);
/* The writer's part of a Q_PUT / Q_CONFIRM: 0, or a store error. */
int mq_route_run_op(struct store *st, struct mq_op *op);
void mq_route_op_free(struct mq_op *op);
void mq_routes_load(struct store *st);
void mq_routes_free(void);
int mq_inq_prepare(struct store *st);

/* routed publications sent before their rows (mqtt_early.c) */
/* May op (an OUT_ADD of a DONE_INQ job) go to session s at once, before
 * its row: QoS 1, s online, nothing of s in the store that memory lacks,
 * no row of s waiting for a commit? */
bool mq_early_ok(const struct mq_sess *s, const struct mq_op *op, const struct mq_job *job);
/* o (new, not queued yet) is op's entry: the row waits for the hold. */
void mq_early_attach(struct mq_out *o, struct mq_op *op, struct mq_job *job);
/* The entry o is done with (acked, expired, dropped, session gone). */
void mq_early_settle(struct mq_out *o);
void mq_early_unref(struct mq_early *e);
/* A DONE_INQ job: held while some of its early entries wait for their
 * acks, submitted in order (all of them when force is set). */
void mq_early_hold(struct mq_job *job);
void mq_early_release(bool force);
/* Milliseconds until the oldest held job must go, or -1. */
int mq_early_timeout(void);
/* The completion of an early entry's OUT_ADD (committed or failed). */
void mq_early_done(struct mq_op *op, int rc);

/* channels (mqtt_svc.c) */
struct mq_chan *mq_chan_find(const char *name);
void mq_chan_error(struct mq_chan *ch, enum chd_code_id code, const char *text);
/* May session s receive a publication on topic (its channel's ACL)? */
bool mq_may_read(const struct mq_sess *s, const char *topic);

#endif
