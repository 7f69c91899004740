/* Internals of the channel module shared by its files (doc/CHANNELS.md
 * describes the design).
 *
 * Threads: one watcher (starts senders that have work, runs retry
 * timers, wakes idle senders when messages arrive), one thread per
 * connection (inbound connections, running channels, admin pings).  Each
 * connection thread has its own store handle and an eventfd: writing it
 * interrupts the thread's blocking TLS calls (it is the tls_conn's cancel
 * fd).  It is written only when the thread is idle (new messages, a
 * quiesce request) or when the connection must end now (force stop).
 *
 * Locking: one mutex (sup.mtx) guards every struct chan_rt and the list
 * of connections.  Connection threads take it briefly to publish status
 * (once per batch) and to read stop requests. */
#ifndef CHAND_CHAN_INT_H
#define CHAND_CHAN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "chand/channel.h"
#include "chand/frame.h"
#include "chand/store_ext.h"

/* Timers of doc/PROTOCOL.md section 8 (ms). */
#define CHAN_T_NEGO_MS 30000
#define CHAN_BATCH_OPEN_MAX_MS 30000       /* an open batch never stays silent longer */
#define CHAN_STACK_SIZE (256 * 1024)
#define CHAN_RBUF_SIZE (256 * 1024)
#define CHAN_FLUSH_BYTES (8u * 1024 * 1024)   /* send buffered MSG frames beyond this */
#define CHAN_ARENA_STREAM (32u * 1024 * 1024) /* receiver: spill to disk beyond this */
#define CHAN_TXN_HOLD_MS 200                /* receiver: longest hold of the write lock mid-batch */
#define CHAN_MAX_PINGS 16
#define CHAN_INBOUND_SPARE 64              /* connection threads beyond max_channels */
/* A channel idle this long gives its store handle back (about 200 KiB
 * of SQLite caches each); it is opened again when work comes. */
#define CHAN_STORE_IDLE_MS 5000
#define CHAN_NP_DELETE_GROUP 200           /* sender: confirmed nonpersistent deletes per txn */
/* Batches a sender keeps in flight: version 3 thirty-two, version 2
 * eight, version 1 one (doc/PROTOCOL.md 7.3).  Each end commits in one
 * transaction what arrived while its previous commit ran, so the window
 * bounds how much one commit (and fsync) can take: eight held one
 * persistent channel of 1 KiB messages at ~80,000 msgs/s, sixteen
 * ~92,000, thirty-two ~100,000 (what ten channels reach on the same two
 * CPUs) and sixty-four no more (doc/PERFORMANCE.md, "A faster machine,
 * and what changed on it"). */
#define CHAN_WINDOW 32
#define CHAN_WINDOW_V2 8
/* sender: in-flight bytes beyond which no new batch starts (64 KiB
 * messages would otherwise put CHAN_WINDOW x 3 MiB on the wire) */
#define CHAN_WINDOW_BYTES (16u * 1024 * 1024)
/* receiver: batches committed in one transaction at most (a window) */
#define CHAN_GROUP_MAX CHAN_WINDOW
/* receiver: the longest wait for the END_BATCH of a batch that has begun
 * arriving, to commit it with the group (it follows the sender's fsync) */
#define CHAN_GROUP_WAIT_MS 5
#define CHAN_WATCH_MIN_MS 10               /* watcher: at most one scan per this */

int64_t chan_t_reply_ms(uint32_t hbint);
int64_t chan_t_dead_ms(uint32_t hbint);   /* -1: none (HBINT 0) */

enum chan_stop { STOP_NONE = 0, STOP_QUIESCE = 1, STOP_SHUTDOWN = 2, STOP_FORCE = 3 };

struct chan_rt;

/* A connection thread (inbound, running channel, admin ping). */
struct chan_conn {
	int wake_fd;                 /* eventfd; the tls_conn's cancel fd */
	struct chan_rt *rt;          /* the channel instance it runs, once claimed */
	bool idle_sender;            /* waiting for messages: wake on store changes */
	bool idle;                   /* between batches: wake for a quiesce stop */
	enum chan_stop stop;         /* requested stop */
	char stop_why[96];           /* text for ERROR CHD5002 on a force stop: written and read
	                              * only through chan_conn_set_why/get_why (own lock) */
	bool counted;                /* counts against limits.max_channels */
	struct tls_peer_chain *peer_chain; /* what the peer sent (refresh security re-checks it);
	                              * chan_sup.mtx */
	struct chan_conn *next;
};

/* One defined channel: its definition and what status shows. */
struct chan_rt {
	struct chan_def def;
	bool defined;                /* false once deleted (the entry is kept) */
	struct chan_conn *conn;      /* the running instance, or NULL */
	bool launching;              /* a thread is being created for it */
	bool stopped;                /* STOPPED: stays so until start channel */
	long failures;               /* consecutive failed starts (retry schedule) */
	int64_t retry_at_mono;       /* RETRYING: when to try again (0: none) */
	bool ran;                    /* st holds the figures of a run since agent start */
	/* nonpersistent members of the sender's in-doubt batches: they share
	 * their batch's fate at the next resync of this process (not kept on
	 * disk); np_bids[i] is the batch of np_seqs[i], np_batch the last */
	int64_t *np_seqs;
	uint64_t *np_bids;
	size_t n_np;
	uint64_t np_batch;
	struct chan_status st;
};

struct chan_sup {
	struct chan_host host;
	pthread_mutex_t mtx;
	pthread_cond_t cond;         /* a connection thread ended */
	struct chan_rt **v;
	size_t n, cap;
	struct chan_conn *conns;
	int nthreads;                /* live connection threads */
	int ncounted;                /* conns counted against max_channels */
	atomic_bool stopping;
	pthread_t watcher;
	bool watcher_on;
	atomic_bool watcher_quit;
	atomic_int kick;             /* watcher: rescan now */
	int proto_max;               /* highest protocol version offered (chan_sup_start) */
};

extern struct chan_sup chan_sup;

/* ---- supervisor (chan_sup.c) ---- */
/* The reason of a requested stop: the operator's thread writes it, the
 * connection's thread reads it (a leaf lock of their own). */
void chan_conn_set_why(struct chan_conn *c, const char *why);
void chan_conn_get_why(struct chan_conn *c, char *buf, size_t len, const char *dflt);
struct chan_rt *chan_rt_find(const char *name);          /* mtx held; defined only */
struct chan_rt *chan_rt_get_or_add(const struct chan_def *d); /* mtx held */
/* Starts the channel's initiator thread (mtx held). 0, or -1 with a reason. */
int chan_launch(struct chan_rt *rt, struct chan_result *r);
/* Creates a detached connection thread with a small stack. */
int chan_thread_spawn(void *(*fn)(void *), void *arg);
void chan_thread_done(void);
/* Connection registry. */
struct chan_conn *chan_conn_new(void);                   /* registered; NULL on failure */
void chan_conn_free(struct chan_conn *c);                /* unregisters */
void chan_conn_wake(struct chan_conn *c);                /* writes the eventfd */
void chan_conn_drain(struct chan_conn *c);               /* reads it empty (a force stop stays) */
void chan_conn_drain_all(struct chan_conn *c);           /* reads it empty */
void chan_kick_watcher(void);

/* ---- one connection's protocol machinery (chan_sess.c) ---- */

enum chan_end {
	END_NONE = 0,
	END_ERROR,            /* failure: code/text say why */
	END_STOPPED,          /* our operator's stop (quiesce or force) */
	END_SHUTDOWN,         /* our agent is ending */
	END_DISCINT,          /* our disconnect interval, or the peer's */
	END_PEER_STOP,        /* the peer ended it: OPERATOR or SHUTDOWN */
};

struct chan_sess {
	struct chan_conn *conn;
	struct chan_rt *rt;          /* NULL for pings and unclaimed inbound */
	struct chan_def def;         /* snapshot taken at start */
	struct store *st;            /* opened on demand: use chan_store() */
	int64_t work_mono;           /* last batch (0: none yet): the handle's idle clock */
	struct tls_conn *tc;
	char peer_addr[80];
	bool initiator;
	bool sending;
	bool encrypted;
	uint64_t owner;              /* store_lock owner */

	/* negotiated */
	uint32_t batchsz, maxmsgl, hbint, seqwrap;
	char peer_qmgr[CHAND_NAME_MAX + 1];

	/* framing */
	struct frame_writer w;
	struct frame_buf out;
	uint32_t rcounter;           /* frames received */
	uint8_t rversion;            /* 0 until negotiated */
	size_t max_payload;
	uint8_t *rbuf;
	size_t rcap, rstart, rend;

	/* stop protocol */
	bool stop_sent, stop_ack_sent, stop_acked, peer_stop;
	int peer_stop_reason;
	int my_stop_reason;

	/* result */
	enum chan_end end;
	enum chd_code_id code;
	char text[640];
	bool peer_error;             /* the error came in an ERROR frame */
	char peer_code[8];           /* its code as sent (may be newer than our catalogue) */
	bool error_sent;

	/* live counters published to status */
	uint64_t bytes_sent, bytes_received;
	int64_t last_send_mono, last_recv_mono;
};

void chan_sess_init(struct chan_sess *s, struct chan_conn *conn);
void chan_sess_free(struct chan_sess *s);
/* Records the first failure (later ones are effects). Returns -1. */
int chan_fail(struct chan_sess *s, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* `stop channel --mode force` arrived: records the end with the operator's
 * reason (chan_fail with CHD_CH_STOP) and returns -1. */
int chan_fail_forced(struct chan_sess *s);
/* Sends s->out (and empties it). 0 or -1 (failure recorded). */
int chan_flush(struct chan_sess *s);
/* Sends ERROR code/text (best effort, bounded) unless one was sent or
 * received already. */
void chan_send_error(struct chan_sess *s, enum chd_code_id code, const char *text);

enum chan_rd { RD_FRAME = 1, RD_TIMEOUT = 0, RD_WOKEN = 2, RD_ERR = -1 };
/* Reads the next frame into *f (pointers into the read buffer, valid until
 * the next read). timeout_ms < 0: no limit. RD_WOKEN when the wake fd
 * fired (drained; nothing consumed). ERROR frames become RD_ERR with the
 * peer's code and text recorded. Counter and version are checked. */
int chan_read_frame(struct chan_sess *s, int64_t timeout_ms, struct frame *f);
/* How chan_await treats a wake-up (PROTOCOL.md 10).  A force stop always
 * ends the session with the operator's reason. */
enum chan_wake {
	WAKE_FORCE_ENDS,             /* other wake-ups are absorbed (a frame the peer owes) */
	WAKE_STOP_ENDS,              /* any stop ends it: "channel ended" (before transfer) */
	WAKE_RETURNS,                /* other wake-ups return RD_WOKEN: the caller looks at
	                              * its queue and its stop request (idle, batch, CONFIRMs) */
};
/* The one wait for the peer's next frame in a session's transfer (the
 * sender's and receiver's data loops, the replies they wait for).
 * timeout_ms < 0: no limit; 0: only what has come already.  what names
 * the frame the peer owes: at the timeout the session ends with CHD5010
 * "no WHAT within N s"; what NULL: the timeout returns RD_TIMEOUT (the
 * caller's own deadline, heartbeat or batch window).  RD_FRAME, RD_TIMEOUT,
 * RD_WOKEN (WAKE_RETURNS), or RD_ERR with the failure recorded. */
int chan_await(struct chan_sess *s, int64_t timeout_ms, enum chan_wake wake, const char *what,
               struct frame *f);
/* A whole batch (MSG frames up to END_BATCH) is in the read buffer, after
 * reading for up to wait_ms (0: only what the socket holds already). */
bool chan_batch_wait(struct chan_sess *s, int64_t wait_ms);
/* True if a whole frame is already buffered. */
bool chan_frame_buffered(struct chan_sess *s);
/* snprintf that may truncate (long names meet short buffers in texts). */
void chan_sfmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Catalogue id of a code string; CHD4013 if unknown here. */
enum chd_code_id chan_code_id(const char *code);
/* The code to show for the session's failure (the peer's own string). */
const char *chan_sess_code(const struct chan_sess *s);
/* Fails the session with CHD5009 "unexpected TYPE in state STATE". */
int chan_unexpected(struct chan_sess *s, const struct frame *f, const char *state);
/* The session's store handle, opened if needed (NULL after a failure,
 * recorded); and its release when unused for CHAN_STORE_IDLE_MS. */
struct store *chan_store(struct chan_sess *s);
void chan_store_idle(struct chan_sess *s);
/* Reads the stop request of the session's connection (mtx taken). */
enum chan_stop chan_stop_req(struct chan_sess *s);
void chan_set_idle(struct chan_sess *s, bool idle, bool sender);

/* Status publishing (mtx taken inside). */
void chan_status_state(struct chan_rt *rt, enum chan_state st, const char *substate);
void chan_status_substate(struct chan_sess *s, const char *substate);
void chan_status_error(struct chan_rt *rt, enum chd_code_id code, const char *text);
void chan_status_tls(struct chan_sess *s);
/* Resync done: the channel is RUNNING from sequence number seq (counters
 * reset, retries and the previous error cleared), and the start is logged. */
void chan_enter_running(struct chan_sess *s, uint32_t seq);

/* ---- negotiation (chan_connect.c, chan_inbound.c) ---- */
void chan_params_of(const struct chan_def *d, struct tls_params *p);
/* TCP_NODELAY and SO_KEEPALIVE on a channel socket; with
 * limits.dead_peer_timeout, keepalive timings and TCP_USER_TIMEOUT. */
void chan_sock_opts(int fd);
/* Initiator: connect, TLS, INIT/INIT_ACK. ping: a ping session. 0 or -1. */
int chan_open_initiator(struct chan_sess *s, bool ping);
void chan_sup_inbound_thread(int fd, const char *peer_addr);

/* ---- roles ---- */
int chan_run_sender(struct chan_sess *s);     /* chan_send.c */
int chan_run_receiver(struct chan_sess *s);   /* chan_recv.c */
/* Ping session, initiator side (chan_ping.c): after INIT_ACK. */
int chan_ping_exchange(struct chan_sess *s, int64_t *rtt_us);
int chan_ping_respond(struct chan_sess *s);

/* End of a run: state, retry, logs (chan_sup.c). */
void chan_finish(struct chan_sess *s);

/* Dead-letter header (chan_dlq.c). Builds the props of a DLQ copy of m:
 * the header lines, then m's own properties. malloc'd, NULL on failure. */
char *chan_dlq_props(const struct chd_msg *m, enum chd_code_id reason, const char *reason_text,
                     const char *channel, int64_t now_ms);
/* Puts a copy of m to the DLQ inside the open transaction. STORE_OK or
 * the store's code with a reason in why. */
int chan_dlq_put(struct store *st, const char *dlq, const struct chd_msg *m,
                 enum chd_code_id reason, const char *reason_text, const char *channel,
                 char *why, size_t whylen);

#endif
