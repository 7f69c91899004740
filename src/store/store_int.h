/* Internals shared by the store's source files (not part of the contract in
 * include/chand/store.h).  The unit tests include it to reach the SQLite
 * handle (disk-full simulation) and the query-plan check. */
#ifndef CHAND_STORE_INT_H
#define CHAND_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "chand/store.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_BUSY_MS 10000
#define STORE_MAXDEPTH_MAX 999999999L
#define STORE_MAXMSGL_MAX 104857600L

/* Messages are stored under pos = (9 - priority) << 55 | seq: file order is
 * delivery order (see store_db.c).  2^55 sequence numbers last a thousand
 * years at a million messages a second. */
#define STORE_SEQ_MAX ((INT64_C(1) << 55) - 1)
static inline int64_t store_pos(int prio, int64_t seq)
{
	return ((int64_t)(MSG_PRIORITY_MAX - prio) << 55) | seq;
}

/* Cached statements, prepared on first use (see store_sql[] in store_db.c). */
enum store_stmt {
	SQ_Q_GET,          /* queue row (+ np depth) by name */
	SQ_Q_INSERT,
	SQ_Q_UPDATE,
	SQ_Q_DELETE,
	SQ_Q_LIST,
	SQ_Q_XMITQ_USER,   /* a remote definition that uses a queue as XMITQ */
	SQ_Q_DEPTH_ADD,
	SQ_Q_DEPTH_ZERO,
	SQ_M_INSERT,
	SQ_M_ORDER,        /* pos of a queue's persistent messages in delivery order */
	SQ_M_ORDER_AFTER,  /* the same, after a given pos (a claim's resume point) */
	SQ_DATA_VERSION,   /* changes when another connection commits */
	SQ_M_EXISTS,       /* is the row at a pos still there */
	SQ_M_DEL,          /* by seq */
	SQ_M_DEL_RET,      /* by seq, RETURNING qid (message not locked here) */
	SQ_M_HEAD_PRIO,    /* first pos of one priority band: oldest-message lookup */
	SQ_M_PUTTIME,
	SQ_M_PURGE,
	SQ_CD_INSERT,
	SQ_CD_REPLACE,
	SQ_CD_GET,
	SQ_CD_DELETE,
	SQ_CD_LIST,
	SQ_CS_GET,
	SQ_CS_SET,
	SQ_CS_DELETE,
	SQ_MQ_SID,         /* MQTT (store_mqtt.c): client id -> session row id */
	SQ_MQ_S_PUT,
	SQ_MQ_S_TOUCH,
	SQ_MQ_S_GET,
	SQ_MQ_S_LIST,
	SQ_MQ_S_DEL,
	SQ_MQ_SUB_PUT,
	SQ_MQ_SUB_DEL,
	SQ_MQ_SUB_DEL_ALL,
	SQ_MQ_SUB_LIST,
	SQ_MQ_OUT_ADD,
	SQ_MQ_OUT_SET,
	SQ_MQ_OUT_DEL,
	SQ_MQ_OUT_DEL_SEQ,
	SQ_MQ_OUT_DEL_ALL,
	SQ_MQ_OUT_LOAD,
	SQ_MQ_OUT_COUNT,
	SQ_MQ_OUT_COUNT_ALL,
	SQ_MQ_OUT_MAX,
	SQ_MQ_IN2_PUT,
	SQ_MQ_IN2_DEL,
	SQ_MQ_IN2_DEL_ALL,
	SQ_MQ_IN2_LIST,
	SQ_MQ_R_PUT,
	SQ_MQ_R_DEL,
	SQ_MQ_R_LIST,
	SQ__COUNT
};

/* One per database file open in this process: handles of the same file
 * share it.  The write mutex serialises this process's writers before
 * they reach SQLite, so they queue on a condition variable instead of
 * SQLite's sleep-and-retry busy handler (which adds up to 100 ms per
 * retry under contention). */
struct store_np;
struct store_npm;
struct store_nplog;

/* WAL bytes not yet copied to the database after which a commit
 * checkpoints (16 MiB): fewer checkpoints than SQLite's default 1000
 * pages, each of which syncs the file. */
#define STORE_CKPT_BYTES (16 * 1024 * 1024)

/* How long the checkpoint that restarts a busy WAL waits, with the write
 * mutex held, for readers of the WAL to finish (store_db.c). */
#define STORE_CKPT_READER_MS 20

/* Page size of a database the store creates.  SQLite writes a WAL frame,
 * and reads a page it does not cache, with one system call per page: with
 * 16 KiB pages a channel batch of 1 KiB messages costs a quarter of the
 * pwrite/pread calls of 4 KiB pages (measured: 63,000 -> 18,000 pwrites
 * and 30% less CPU per channel end for 50,000 messages; doc/STORAGE.md).
 * A database made before keeps its own size (WAL mode cannot change it). */
#define STORE_PAGE_SIZE 16384

struct store_shared {
	dev_t dev;
	ino_t ino;
	pthread_mutex_t wmtx;
	/* group sync (store_db.c): commits write the WAL without syncing it;
	 * whoever needs one durable syncs for every commit written so far */
	pthread_mutex_t smtx;
	pthread_cond_t scond;
	uint64_t commit_gen;      /* commits that wrote to the WAL */
	uint64_t durable_gen;     /* the WAL is synced up to this commit */
	uint64_t syncs;           /* WAL syncs made */
	bool syncing;             /* a thread is syncing (the others wait) */
	/* checkpoints (store_db.c): the WAL's frames at the last commit (under
	 * the write mutex) and how many of them the last checkpoint copied */
	int wal_frames;
	_Atomic int ckpt_copied;
	struct store_np *np;      /* its nonpersistent messages (store_np.c) */
	int64_t born;             /* the file's birth time (ns), 0 if unknown */
	int refs;
	struct store_shared *next;
};

enum store_txn { TXN_NONE, TXN_OPEN, TXN_FAILED };

/* Where a handle's last store_lock claim ended on a queue (store_msg.c):
 * the next claim by the same owner starts after pos instead of walking
 * again past the messages it holds (a sender holds up to 32 batches), as
 * long as no message can have become claimable before pos since: no lock
 * was given back without a delete, and nothing was put at a higher
 * priority than pos's (a put of the same priority comes after pos: seqs
 * are allocated under the write mutex, in commit order). */
struct claim_hint {
	bool set;
	int64_t qid;
	uint64_t owner;
	int64_t pos;             /* the last message claimed */
	uint64_t gen;            /* store_lk_gen_at(prio of pos) before that walk */
};

struct store_pend {
	int64_t seq;
	bool always;  /* drop the lock at rollback too (expired messages) */
};

struct store {
	sqlite3 *db;
	struct store_shared *sh;
	sqlite3_stmt *stmt[SQ__COUNT];
	char err[512];
	char qmgr[CHAND_NAME_MAX + 1];
	long max_msg_length;
	enum store_txn txn;      /* explicit transaction (store_begin) */
	bool sqlerr;             /* the last failure came from SQLite */
	bool wrote;              /* the WAL hook saw this commit write frames */
	int ckpt_frames;         /* WAL frames of STORE_CKPT_BYTES at this file's page size */
	bool ckpt_due;           /* the WAL passed ckpt_frames: checkpoint after this commit */
	bool gate_off;           /* store_gate_off() */
	int sqlrc;               /* ...and its store code (ERR or DISK_FULL) */
	struct store_pend *pend; /* messages deleted in the open transaction: */
	size_t npend, cappend;   /* their locks go at commit */
	struct store_nplog *nplog; /* nonpersistent changes of the open */
	size_t nplog_n, nplog_cap; /* transaction, applied at commit */
	unsigned put_prios;      /* priorities put in the open transaction (bits; any:
	                          * wake waiters and claim hints at commit) */
	struct claim_hint hint;  /* store_lock: where this handle's last claim ended */
};

/* store_db.c */
int store_stmt_get(struct store *st, enum store_stmt id, sqlite3_stmt **out);
int store_fail(struct store *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int store_sqlfail(struct store *st, int sqlrc, const char *what);
/* Starts a write transaction (mutex + BEGIN IMMEDIATE) unless the caller
 * opened one with store_begin(); *own says which. */
int store_wbegin(struct store *st, bool *own);
/* Ends what store_wbegin started.  own: COMMIT if commit is true, else
 * ROLLBACK.  Joined: nothing, unless SQLite failed (st->sqlerr), in which
 * case the caller's transaction is rolled back and marked failed.
 * Returns STORE_OK or the commit's error. */
int store_wend(struct store *st, bool own, bool commit);
int store_pend_add(struct store *st, int64_t seq, bool always);
/* EXPLAIN QUERY PLAN over the hot read/delete statements: 0 if all use an
 * index, else -1 with the offending plan line in err. */
int store_plan_check(struct store *st, char *err, size_t errlen);
sqlite3 *store_sqlite(struct store *st);

/* store_queue.c */
struct store_qrow {
	int64_t qid;
	struct queue_def def;
};
/* STORE_OK, STORE_UNKNOWN_Q, or a database error. curdepth is filled. */
int store_qrow_get(struct store *st, const char *name, struct store_qrow *out);
int store_queue_oldest(struct store *st, int64_t qid, int64_t *put_ms);
/* True if the fixed-size field holds a terminated string. */
bool store_fixed_ok(const char *s, size_t size);

/* store_np.c: nonpersistent messages in memory (see the top of the file) */
int store_np_init(struct store_shared *sh);
void store_np_free(struct store_shared *sh);
void store_np_wipe(struct store_shared *sh);
bool store_np_empty(struct store_shared *sh);
/* Logged in the handle's transaction; applied by store_np_settle. */
int store_np_put(struct store *st, int64_t qid, const struct chd_msg *m);
/* *gone: it was there (and *qid its queue). */
int store_np_del(struct store *st, int64_t seq, int64_t *qid, bool *gone);
int store_np_purge(struct store *st, int64_t qid, long *n);
/* Committed depth plus what this handle's open transaction did. */
long store_np_depth(struct store *st, int64_t qid);
/* Applies (committed) or drops the handle's log; called by the commit and
 * rollback paths of store_db.c, after the SQLite COMMIT and before any
 * lock is dropped. */
void store_np_settle(struct store *st, bool committed);
/* Iteration in delivery order, between store_np_lock and store_np_unlock. */
void store_np_lock(struct store *st);
void store_np_unlock(struct store *st);
struct store_npm *store_np_first(struct store *st, int64_t qid);
struct store_npm *store_np_next(struct store_npm *x);
/* The first message of queue qid after pos, if it can be found without
 * walking: pos is a nonpersistent message still there, or the queue has
 * no nonpersistent message (*out NULL).  false: walk from the head. */
bool store_np_after(struct store *st, int64_t qid, int64_t pos, struct store_npm **out);
const struct chd_msg *store_np_msg(const struct store_npm *x);
/* Deleted by this handle's open transaction: invisible to it. */
bool store_np_hidden(const struct store *st, const struct store_npm *x);
/* Removes x now (an expired message); false if a transaction deletes it. */
bool store_np_remove(struct store *st, struct store_npm *x);
/* The oldest message (smallest seq) of a queue; *seq 0 if none. */
int store_np_oldest(struct store *st, int64_t qid, int64_t *seq, int64_t *put_ms);

/* store_msg.c, tests only: called once, at the first message the next
 * claim walk visits (its snapshot taken, nothing claimed yet), so a test
 * can commit through another handle in between. */
extern void (*store_test_claim_hook)(void *arg);
extern void *store_test_claim_arg;

/* store_lock.c: process-wide lock table, arrival sequence, notifier */
/* Claims seq (a message of queue qid in database db) for owner; false if
 * someone holds it already. */
bool store_lk_claim(int64_t seq, uint64_t owner, const void *db, int64_t qid);
/* The queue of a locked message, if it is locked in database db. */
bool store_lk_qid(int64_t seq, const void *db, int64_t *qid);
/* Gives seq's lock back: the message is claimable again. */
void store_lk_drop(int64_t seq);
/* Drops seq's lock after its delete committed (it is gone). */
void store_lk_drop_gone(int64_t seq);
/* A committed transaction put messages of the priorities in bits prios. */
void store_lk_put_seen(unsigned prios);
/* What claim hints watch: [0] locks given back without a delete, [1 + p]
 * committed puts of priority p.  Each only grows. */
#define STORE_LK_GENS (MSG_PRIORITY_MAX + 2)
void store_lk_gens(uint64_t g[STORE_LK_GENS]);
/* Of a snapshot g: the changes after which a claimer positioned at
 * priority prio must walk from the head again. */
static inline uint64_t store_lk_gen_at(const uint64_t g[STORE_LK_GENS], int prio)
{
	uint64_t s = g[0];

	for (int p = prio + 1; p <= MSG_PRIORITY_MAX; p++)
		s += g[1 + p];
	return s;
}
int64_t store_seq_next(void);
void store_seq_observe(int64_t seq);
/* Forgets the sequence, as a new process would (tests). */
void store_seq_reset(void);
void store_notify(void);

#endif
