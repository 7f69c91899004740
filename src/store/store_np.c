/* Nonpersistent messages, in memory.
 *
 * They never survive a restart of the agent and must never cost an fsync,
 * so they do not need SQLite at all: keeping them in the database cost
 * about 7 us of SQLite and page-cache copying per message at each end of
 * a channel, and a 64 KiB body was copied four times through the file
 * (WAL, checkpoint, read back, overwritten by secure_delete).  Here a put
 * is one copy and a get one copy.
 *
 * One struct store_np per database file open in the process (in
 * struct store_shared), alive while the process has a handle on that
 * file open (the agent keeps its first handle for its whole life).  Per
 * queue, ten FIFO bands (one per priority) in arrival (seq) order: seq is
 * allocated under the write mutex, so appending at commit keeps each band
 * sorted.  A hash on seq finds a message for a delete.
 *
 * Transactions: a handle's puts, deletes and purges are kept in an ordered
 * log and applied when its SQLite transaction commits, or dropped when it
 * rolls back, so store_begin/commit/rollback mean the same for both kinds
 * of messages (each still atomic on its own, as the two files were before).
 * Only one handle of a database is ever inside a write transaction (the
 * write mutex), so only the writer ever has a log, and a message's del_by
 * can only name the writer. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define NP_BANDS (MSG_PRIORITY_MAX + 1)

struct store_npm {
	struct chd_msg m;              /* owns body and props */
	struct store_npq *q;
	struct store_npm *prev, *next; /* in its band */
	struct store_npm *hnext;       /* seq hash chain */
	const struct store *del_by;    /* deleted in this handle's open transaction */
};

struct store_npq {
	int64_t qid;
	long depth;
	struct store_npm *head[NP_BANDS], *tail[NP_BANDS];
	struct store_npq *next;
};

struct store_np {
	pthread_mutex_t mtx;
	struct store_npq *queues;
	struct store_npm **hash;
	size_t hcap, count;
};

enum np_op { NP_PUT, NP_DEL, NP_PURGE };

struct store_nplog {
	enum np_op op;
	int64_t qid;
	struct store_npm *msg; /* PUT: not linked yet, owned by the log; DEL: linked */
};

/* ---- life ---- */

int store_np_init(struct store_shared *sh)
{
	struct store_np *np = calloc(1, sizeof(*np));

	if (np == NULL)
		return -1;
	if (pthread_mutex_init(&np->mtx, NULL) != 0) {
		free(np);
		return -1;
	}
	sh->np = np;
	return 0;
}

static void npm_free(struct store_npm *x)
{
	msg_clear(&x->m);
	free(x);
}

static void np_clear(struct store_np *np)
{
	struct store_npq *q, *qn;

	for (q = np->queues; q != NULL; q = qn) {
		qn = q->next;
		for (int b = 0; b < NP_BANDS; b++) {
			struct store_npm *x, *xn;
			for (x = q->head[b]; x != NULL; x = xn) {
				xn = x->next;
				npm_free(x);
			}
		}
		free(q);
	}
	np->queues = NULL;
	free(np->hash);
	np->hash = NULL;
	np->hcap = np->count = 0;
}

void store_np_free(struct store_shared *sh)
{
	if (sh->np == NULL)
		return;
	np_clear(sh->np);
	pthread_mutex_destroy(&sh->np->mtx);
	free(sh->np);
	sh->np = NULL;
}

void store_np_wipe(struct store_shared *sh)
{
	pthread_mutex_lock(&sh->np->mtx);
	np_clear(sh->np);
	pthread_mutex_unlock(&sh->np->mtx);
}

bool store_np_empty(struct store_shared *sh)
{
	bool e;

	pthread_mutex_lock(&sh->np->mtx);
	e = sh->np->count == 0;
	pthread_mutex_unlock(&sh->np->mtx);
	return e;
}

/* ---- lookups (mutex held) ---- */

static size_t np_slot(const struct store_np *np, int64_t seq)
{
	uint64_t h = (uint64_t)seq * UINT64_C(0x9E3779B97F4A7C15);

	return (size_t)(h >> 20) & (np->hcap - 1);
}

static struct store_npm *np_find(const struct store_np *np, int64_t seq)
{
	struct store_npm *x;

	if (np->hcap == 0)
		return NULL;
	for (x = np->hash[np_slot(np, seq)]; x != NULL; x = x->hnext)
		if (x->m.seq == seq)
			return x;
	return NULL;
}

static int np_hash_grow(struct store_np *np)
{
	size_t cap = np->hcap ? np->hcap * 2 : 1024;
	struct store_npm **h = calloc(cap, sizeof(*h)), **old = np->hash;
	size_t ocap = np->hcap;

	if (h == NULL)
		return -1;
	np->hash = h;
	np->hcap = cap;
	for (size_t i = 0; i < ocap; i++) {
		struct store_npm *x, *xn;
		for (x = old[i]; x != NULL; x = xn) {
			size_t s = np_slot(np, x->m.seq);
			xn = x->hnext;
			x->hnext = h[s];
			h[s] = x;
		}
	}
	free(old);
	return 0;
}

static struct store_npq *np_queue(struct store_np *np, int64_t qid, bool create)
{
	struct store_npq **pp, *q;

	for (pp = &np->queues; (q = *pp) != NULL; pp = &q->next)
		if (q->qid == qid) {
			/* move to front: a busy queue is found first */
			*pp = q->next;
			q->next = np->queues;
			np->queues = q;
			return q;
		}
	if (!create || (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->qid = qid;
	q->next = np->queues;
	np->queues = q;
	return q;
}

/* Links x at the tail of its band (seq order: see the top of the file). */
static void np_link(struct store_np *np, struct store_npq *q, struct store_npm *x)
{
	int b = x->m.priority;
	size_t s = np_slot(np, x->m.seq);

	x->q = q;
	x->next = NULL;
	x->prev = q->tail[b];
	if (q->tail[b] != NULL)
		q->tail[b]->next = x;
	else
		q->head[b] = x;
	q->tail[b] = x;
	x->hnext = np->hash[s];
	np->hash[s] = x;
	np->count++;
	q->depth++;
}

static void np_unlink(struct store_np *np, struct store_npm *x)
{
	struct store_npq *q = x->q;
	int b = x->m.priority;
	struct store_npm **pp;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		q->head[b] = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	else
		q->tail[b] = x->prev;
	for (pp = &np->hash[np_slot(np, x->m.seq)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == x) {
			*pp = x->hnext;
			break;
		}
	np->count--;
	q->depth--;
}

/* ---- the handle's log ---- */

static int log_add(struct store *st, enum np_op op, int64_t qid, struct store_npm *msg)
{
	if (st->nplog_n == st->nplog_cap) {
		size_t cap = st->nplog_cap ? st->nplog_cap * 2 : 256;
		struct store_nplog *v = realloc(st->nplog, cap * sizeof(*v));
		if (v == NULL)
			return store_fail(st, STORE_ERR, "out of memory");
		st->nplog = v;
		st->nplog_cap = cap;
	}
	st->nplog[st->nplog_n].op = op;
	st->nplog[st->nplog_n].qid = qid;
	st->nplog[st->nplog_n].msg = msg;
	st->nplog_n++;
	return STORE_OK;
}

int store_np_put(struct store *st, int64_t qid, const struct chd_msg *m)
{
	struct store_npm *x = calloc(1, sizeof(*x));

	if (x == NULL || msg_copy(&x->m, m) != 0) {
		free(x);
		return store_fail(st, STORE_ERR, "out of memory");
	}
	x->m.persistent = false;
	if (log_add(st, NP_PUT, qid, x) != STORE_OK) {
		npm_free(x);
		return STORE_ERR;
	}
	return STORE_OK;
}

int store_np_del(struct store *st, int64_t seq, int64_t *qid, bool *gone)
{
	struct store_np *np = st->sh->np;
	struct store_npm *x;
	int rc = STORE_OK;

	*gone = false;
	pthread_mutex_lock(&np->mtx);
	x = np_find(np, seq);
	if (x != NULL && x->del_by == NULL) {
		if ((rc = log_add(st, NP_DEL, x->q->qid, x)) == STORE_OK) {
			x->del_by = st;
			*qid = x->q->qid;
			*gone = true;
		}
	}
	pthread_mutex_unlock(&np->mtx);
	return rc;
}

int store_np_purge(struct store *st, int64_t qid, long *n)
{
	long d = store_np_depth(st, qid);
	int rc = log_add(st, NP_PURGE, qid, NULL);

	if (rc == STORE_OK && n != NULL)
		*n = d;
	return rc;
}

long store_np_depth(struct store *st, int64_t qid)
{
	struct store_np *np = st->sh->np;
	struct store_npq *q;
	long d = 0;

	pthread_mutex_lock(&np->mtx);
	if ((q = np_queue(np, qid, false)) != NULL)
		d = q->depth;
	pthread_mutex_unlock(&np->mtx);
	/* what this handle's open transaction did, as SQLite shows a
	 * connection its own uncommitted rows */
	for (size_t i = 0; i < st->nplog_n; i++) {
		const struct store_nplog *l = &st->nplog[i];
		if (l->qid != qid)
			continue;
		if (l->op == NP_PUT)
			d++;
		else if (l->op == NP_DEL)
			d--;
		else
			d = 0;
	}
	return d;
}

void store_np_settle(struct store *st, bool committed)
{
	struct store_np *np = st->sh->np;

	if (st->nplog_n == 0)
		return;
	pthread_mutex_lock(&np->mtx);
	for (size_t i = 0; i < st->nplog_n; i++) {
		struct store_nplog *l = &st->nplog[i];
		struct store_npq *q;

		switch (l->op) {
		case NP_PUT:
			if (!committed) {
				npm_free(l->msg);
				break;
			}
			if ((np->count + 1) * 2 > np->hcap && np_hash_grow(np) != 0 && np->hcap == 0) {
				/* out of memory with no table at all: the message is lost,
				 * as it would be at a restart */
				npm_free(l->msg);
				break;
			}
			if ((q = np_queue(np, l->qid, true)) == NULL) {
				npm_free(l->msg);
				break;
			}
			np_link(np, q, l->msg);
			break;
		case NP_DEL:
			if (!committed) {
				l->msg->del_by = NULL;
				break;
			}
			np_unlink(np, l->msg);
			npm_free(l->msg);
			break;
		case NP_PURGE:
			if (!committed || (q = np_queue(np, l->qid, false)) == NULL)
				break;
			for (int b = 0; b < NP_BANDS; b++)
				while (q->head[b] != NULL) {
					struct store_npm *x = q->head[b];
					/* a message deleted earlier in this log is already
					 * gone; only the writer has a log, so del_by is
					 * never another handle's */
					np_unlink(np, x);
					npm_free(x);
				}
			np->queues = q->next; /* np_queue moved it to the front */
			free(q);
			break;
		}
	}
	pthread_mutex_unlock(&np->mtx);
	st->nplog_n = 0;
}

/* ---- reading: iteration in delivery order, mutex held ---- */

void store_np_lock(struct store *st)
{
	pthread_mutex_lock(&st->sh->np->mtx);
}

void store_np_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->sh->np->mtx);
}

struct store_npm *store_np_first(struct store *st, int64_t qid)
{
	struct store_npq *q = np_queue(st->sh->np, qid, false);

	if (q == NULL)
		return NULL;
	for (int b = MSG_PRIORITY_MAX; b >= 0; b--)
		if (q->head[b] != NULL)
			return q->head[b];
	return NULL;
}

struct store_npm *store_np_next(struct store_npm *x)
{
	if (x->next != NULL)
		return x->next;
	for (int b = x->m.priority - 1; b >= 0; b--)
		if (x->q->head[b] != NULL)
			return x->q->head[b];
	return NULL;
}

bool store_np_after(struct store *st, int64_t qid, int64_t pos, struct store_npm **out)
{
	struct store_npq *q = np_queue(st->sh->np, qid, false);
	struct store_npm *x;

	*out = NULL;
	if (q == NULL || store_np_first(st, qid) == NULL)
		return true;
	x = np_find(st->sh->np, pos & STORE_SEQ_MAX);
	if (x == NULL || x->q != q || store_pos(x->m.priority, x->m.seq) != pos)
		return false;
	*out = store_np_next(x);
	return true;
}

const struct chd_msg *store_np_msg(const struct store_npm *x)
{
	return &x->m;
}

bool store_np_hidden(const struct store *st, const struct store_npm *x)
{
	return x->del_by == st;
}

bool store_np_remove(struct store *st, struct store_npm *x)
{
	if (x->del_by != NULL)
		return false;
	np_unlink(st->sh->np, x);
	npm_free(x);
	return true;
}

int store_np_oldest(struct store *st, int64_t qid, int64_t *seq, int64_t *put_ms)
{
	struct store_npq *q;

	*seq = 0;
	*put_ms = 0;
	store_np_lock(st);
	if ((q = np_queue(st->sh->np, qid, false)) != NULL)
		for (int b = 0; b < NP_BANDS; b++) {
			const struct store_npm *x = q->head[b];
			if (x != NULL && (*seq == 0 || x->m.seq < *seq)) {
				*seq = x->m.seq;
				*put_ms = x->m.put_time_ms;
			}
		}
	store_np_unlock(st);
	return STORE_OK;
}
