/* The queue store: one SQLite database per queue manager.  The store and
 * the keystore are the only modules that speak SQL.
 *
 * Each thread opens its own handle (struct store); handles of one process
 * share a global arrival sequence, the in-memory lock table of messages
 * handed out but not yet confirmed, and a change notifier.
 *
 * Persistent messages, definitions and channel sync records live in
 * <data_dir>/<qmgr>.db (WAL, synchronous=FULL: durable when a call
 * returns).  Nonpersistent messages live in the process's memory
 * (store_np.c), applied with the transaction they belong to, so they
 * never cost file I/O (and, like IBM MQ's, do not survive a restart). */
#ifndef CHAND_STORE_H
#define CHAND_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand/message.h"
#include "chand/util.h"

enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,            /* database error; store_errmsg() says why */
	STORE_UNKNOWN_Q = -2,
	STORE_FULL = -3,           /* MAXDEPTH reached */
	STORE_TOO_LONG = -4,       /* body longer than MAXMSGL */
	STORE_EXISTS = -5,
	STORE_NOT_EMPTY = -6,
	STORE_PUT_INHIBITED = -7,
	STORE_GET_INHIBITED = -8,
	STORE_NO_MSG = -9,
	STORE_BAD_XMITQ = -10,
	STORE_IN_USE = -11,
	STORE_DISK_FULL = -12,
	STORE_NOT_FOUND = -13,     /* channel definition / sync record */
	STORE_BAD_NAME = -14,
	STORE_BAD_ARG = -15,
	STORE_WRONG_TYPE = -16,    /* queue of the wrong type: a direct put to a transmission
	                            * queue (no header), a get from a remote definition... */
};

enum queue_type { QTYPE_LOCAL = 1, QTYPE_REMOTE = 2 };
enum queue_usage { QUSAGE_NORMAL = 0, QUSAGE_XMITQ = 1 };

#define QUEUE_DEFAULT_MAXDEPTH 5000
#define QUEUE_DEFAULT_MAXMSGL 4194304
#define QUEUE_DESCR_MAX 64

struct queue_def {
	char name[CHAND_NAME_MAX + 1];
	enum queue_type type;
	enum queue_usage usage;           /* local only */
	long maxdepth;                    /* local only */
	long maxmsgl;                     /* local only */
	bool put_enabled, get_enabled;
	char rname[CHAND_NAME_MAX + 1];   /* remote only */
	char rqmname[CHAND_NAME_MAX + 1]; /* remote only */
	char xmitq[CHAND_NAME_MAX + 1];   /* remote only; "" = queue named rqmname */
	char descr[QUEUE_DESCR_MAX + 1];
	int64_t created_ms, altered_ms;   /* output */
	long curdepth;                    /* output: persistent + nonpersistent */
	int64_t oldest_put_ms;            /* output: put time of the oldest message, 0 if empty */
};

struct store_opts {
	const char *qmgr;        /* local queue manager name (for remote resolution) */
	long max_msg_length;     /* agent-wide cap on top of MAXMSGL; 0 = none */
	bool reset_np;           /* the agent's first handle only: start with no nonpersistent
	                          * messages, and remove the file older versions kept them in */
};

struct store;

/* Once, at the start of a process with many handles (the agent), before
 * any SQLite database is opened: each connection's page cache then grows
 * page by page instead of starting with a bulk allocation of 20 pages
 * (320 KiB of 16 KiB pages, resident, for every idle channel's handle).
 * Returns STORE_OK, or STORE_ERR when SQLite was already in use. */
int store_process_init(void);

/* Opens (creating, migrating) <path>. The nonpersistent db is <path minus
 * ".db">.np.db. Returns STORE_OK or an error with a reason in err. */
int store_open(struct store **out, const char *path, const struct store_opts *opts,
               char *err, size_t errlen);
void store_close(struct store *st);
/* One-line reason for the last error on this handle. */
const char *store_errmsg(const struct store *st);
/* Schema version this build writes (PRAGMA user_version). */
int store_schema_version(void);

/* Explicit transactions (BEGIN IMMEDIATE ... COMMIT). Calls below join an
 * open transaction instead of opening their own. */
int store_begin(struct store *st);
/* store_begin, unless another handle of this database is writing at this
 * moment: then STORE_IN_USE at once instead of waiting for it (a caller
 * that would hold the write lock across a wait of its own, and can as
 * well write later, keeps out of the others' way). */
int store_begin_try(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/* Waits until every commit made so far to this database (by any handle of
 * this process) is durable.  Commits are durable when they return; what a
 * reader sees may not be yet: a reader whose result leaves the process
 * calls this first (store_lock and store_browse do). */
void store_durable_gate(struct store *st);
/* For a handle whose persistent messages leave the process only after a
 * later commit of this process (which is durable, and so makes what it
 * read durable): store_lock and store_browse no longer wait. */
void store_gate_off(struct store *st);
/* Commits that wrote, and WAL syncs made for them, since the database was
 * first opened by this process (fewer syncs than commits: group sync). */
void store_sync_stats(struct store *st, uint64_t *commits, uint64_t *syncs);

/* ---- queue definitions ---- */
void queue_def_init(struct queue_def *q, enum queue_type type); /* defaults */
int store_queue_define(struct store *st, const struct queue_def *q, bool replace);
int store_queue_get(struct store *st, const char *name, struct queue_def *out);
/* purge=false refuses a queue holding messages (STORE_NOT_EMPTY). */
int store_queue_delete(struct store *st, const char *name, bool purge);
/* Definitions whose names match pattern (see name_match), sorted by name.
 * *out is malloc'd. */
int store_queue_list(struct store *st, const char *pattern, struct queue_def **out, size_t *n);

/* ---- messages ---- */
/* Puts msgs[0..n) to queue (local, or remote definition, or if qmgr names
 * another queue manager the transmission queue of that name), in one
 * transaction. Stops at the first message that cannot be put; what was put
 * before it is committed. *done = number put. msgid/put_time/seq are filled
 * in. Persistent messages are durable when this returns.  Inside a
 * transaction opened with store_begin() nothing is committed: the caller
 * decides (a channel receiver sends a failed message to the DLQ). */
int store_put(struct store *st, const char *queue, const char *qmgr,
              struct chd_msg *msgs, size_t n, size_t *done);

/* Resolves where a put to queue (and optional qmgr) lands: the local queue
 * name and, for remote destinations, the transmission header. */
int store_resolve(struct store *st, const char *queue, const char *qmgr,
                  char local_q[CHAND_NAME_MAX + 1], char xmit_qm[CHAND_NAME_MAX + 1],
                  char xmit_q[CHAND_NAME_MAX + 1]);

/* Copies up to max messages from the head (priority desc, then arrival)
 * without removing them. Expired messages are skipped. */
int store_browse(struct store *st, const char *queue, size_t max, struct msg_list *out);

/* Takes up to max messages from the head of a local queue and locks them
 * in this process for owner (any unique non-zero id): other getters skip
 * them. Expired messages met on the way are removed. STORE_NO_MSG if none.
 * Then either store_confirm() removes them (durably) or store_release()
 * hands them back. Locks live in memory only: after a crash the messages
 * are simply still there. */
int store_lock(struct store *st, const char *queue, size_t max, uint64_t owner,
               struct msg_list *out);
int store_confirm(struct store *st, const struct msg_list *msgs);
void store_release(const struct msg_list *msgs);
/* Releases every lock held by owner (connection closed). */
void store_release_owner(uint64_t owner);
/* Removes every message of a queue; *n = how many. */
int store_purge(struct store *st, const char *queue, long *n);

/* Waits until something is put anywhere in this process (or timeout_ms
 * passes); returns immediately if a put happened since *gen was read.
 * Usage: gen = store_change_gen(); try; if none: store_wait(&gen, ms). */
uint64_t store_change_gen(void);
void store_wait(uint64_t *gen, int timeout_ms);
/* Wakes every waiter (shutdown). */
void store_wake_all(void);

/* ---- channel definitions: opaque text (JSON) owned by the channel module ---- */
int store_chandef_put(struct store *st, const char *name, const char *attrs, bool replace);
int store_chandef_get(struct store *st, const char *name, char **attrs); /* malloc'd */
int store_chandef_delete(struct store *st, const char *name);
/* names (malloc'd array of malloc'd strings) matching pattern, sorted. */
int store_chandef_list(struct store *st, const char *pattern, char ***names, size_t *n);

/* ---- channel sync records (exactly-once bookkeeping) ---- */
struct chan_sync {
	char name[CHAND_NAME_MAX + 1];
	uint64_t seq;            /* last committed message sequence number */
	uint64_t batch_id;       /* last committed batch id */
	bool indoubt;            /* sender: a batch was sent but not confirmed */
	uint64_t indoubt_batch;  /* its batch id */
	uint64_t indoubt_seq;    /* sequence number of its last message */
	uint32_t indoubt_count;  /* messages in it */
	int64_t updated_ms;
};
/* STORE_NOT_FOUND (and a zeroed *out with name set) if none yet. */
int store_sync_get(struct store *st, const char *channel, struct chan_sync *out);
/* Joins the open transaction if any, so a receiver can commit the batch's
 * messages and its sync record atomically. */
int store_sync_set(struct store *st, const struct chan_sync *s);
int store_sync_delete(struct store *st, const char *channel);

#endif
