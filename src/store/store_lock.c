/* Process-wide state shared by every store handle: the table of messages
 * handed out but not yet confirmed, the arrival sequence, and the change
 * notifier.  None of it is persistent: after a crash nothing is locked and
 * the sequence restarts above the highest one on disk. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "chand/log.h"
#include "store_int.h"

/* ---- lock table: open addressing, linear probing, keyed by seq ---- */

struct lk_slot {
	int64_t seq;     /* 0: empty (sequences start at 1) */
	uint64_t owner;
	const void *db;  /* which database (struct store_shared) ... */
	int64_t qid;     /* ...and queue: confirm needs no lookup */
};

static pthread_mutex_t lk_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct lk_slot *lk_tab;
static size_t lk_cap, lk_used;
/* For claim hints (store_int.h, struct claim_hint): locks given back
 * without a delete, and committed puts per priority.  Each is bumped
 * after the change is visible (the lock out of the table, the commit
 * done), so a claimer that read the sum before its walk and finds it
 * unchanged knows its walk saw every change before its position. */
static _Atomic uint64_t lk_back_gen;
static _Atomic uint64_t lk_put_gen[MSG_PRIORITY_MAX + 1];

static size_t lk_hash(int64_t seq, size_t cap)
{
	uint64_t h = (uint64_t)seq * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & (cap - 1);
}

static size_t lk_find(int64_t seq)
{
	size_t i = lk_hash(seq, lk_cap);

	while (lk_tab[i].seq != 0 && lk_tab[i].seq != seq)
		i = (i + 1) & (lk_cap - 1);
	return i;
}

static bool lk_grow(void)
{
	size_t ncap = lk_cap ? lk_cap * 2 : 256;
	struct lk_slot *nt = calloc(ncap, sizeof(*nt)), *old = lk_tab;
	size_t ocap = lk_cap;

	if (nt == NULL)
		return false;
	lk_tab = nt;
	lk_cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].seq != 0)
			lk_tab[lk_find(old[i].seq)] = old[i];
	free(old);
	return true;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void lk_remove_at(size_t i)
{
	size_t j = i;

	lk_tab[i].seq = 0;
	lk_used--;
	for (;;) {
		size_t k;
		j = (j + 1) & (lk_cap - 1);
		if (lk_tab[j].seq == 0)
			return;
		k = lk_hash(lk_tab[j].seq, lk_cap);
		/* move j back to i unless its home k lies cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		lk_tab[i] = lk_tab[j];
		lk_tab[j].seq = 0;
		i = j;
	}
}

bool store_lk_claim(int64_t seq, uint64_t owner, const void *db, int64_t qid)
{
	bool ok = false;
	size_t i;

	pthread_mutex_lock(&lk_mtx);
	if ((lk_used + 1) * 2 > lk_cap && !lk_grow())
		goto out; /* out of memory: behave as if locked, the getter skips it */
	i = lk_find(seq);
	if (lk_tab[i].seq == 0) {
		lk_tab[i].seq = seq;
		lk_tab[i].owner = owner;
		lk_tab[i].db = db;
		lk_tab[i].qid = qid;
		lk_used++;
		ok = true;
	}
out:
	pthread_mutex_unlock(&lk_mtx);
	return ok;
}

bool store_lk_qid(int64_t seq, const void *db, int64_t *qid)
{
	bool found = false;
	size_t i;

	pthread_mutex_lock(&lk_mtx);
	if (lk_cap != 0 && lk_tab[i = lk_find(seq)].seq == seq && lk_tab[i].db == db) {
		*qid = lk_tab[i].qid;
		found = true;
	}
	pthread_mutex_unlock(&lk_mtx);
	return found;
}

static void lk_drop(int64_t seq, bool back)
{
	size_t i;

	pthread_mutex_lock(&lk_mtx);
	if (lk_cap != 0 && lk_tab[i = lk_find(seq)].seq == seq) {
		lk_remove_at(i);
		if (back)
			atomic_fetch_add(&lk_back_gen, 1);
	}
	pthread_mutex_unlock(&lk_mtx);
}

void store_lk_drop(int64_t seq)
{
	lk_drop(seq, true);
}

void store_lk_drop_gone(int64_t seq)
{
	lk_drop(seq, false);
}

void store_lk_put_seen(unsigned prios)
{
	for (int p = 0; p <= MSG_PRIORITY_MAX; p++)
		if (prios & (1u << p))
			atomic_fetch_add(&lk_put_gen[p], 1);
}

void store_lk_gens(uint64_t g[STORE_LK_GENS])
{
	g[0] = atomic_load(&lk_back_gen);
	for (int p = 0; p <= MSG_PRIORITY_MAX; p++)
		g[1 + p] = atomic_load(&lk_put_gen[p]);
}

void store_release(const struct msg_list *msgs)
{
	if (msgs == NULL || msgs->n == 0)
		return;
	pthread_mutex_lock(&lk_mtx);
	for (size_t n = 0; n < msgs->n && lk_cap != 0; n++) {
		size_t i = lk_find(msgs->v[n].seq);
		if (lk_tab[i].seq == msgs->v[n].seq)
			lk_remove_at(i);
	}
	atomic_fetch_add(&lk_back_gen, 1);
	pthread_mutex_unlock(&lk_mtx);
	store_notify(); /* they are available again */
}

void store_release_owner(uint64_t owner)
{
	bool any = false;

	pthread_mutex_lock(&lk_mtx);
	for (size_t i = 0; i < lk_cap;) {
		/* removal may shift a later entry into slot i: look at it again */
		if (lk_tab[i].seq != 0 && lk_tab[i].owner == owner) {
			lk_remove_at(i);
			any = true;
		} else {
			i++;
		}
	}
	if (any)
		atomic_fetch_add(&lk_back_gen, 1);
	pthread_mutex_unlock(&lk_mtx);
	if (any)
		store_notify();
}

/* ---- arrival sequence ---- */

static _Atomic int64_t seq_last;

int64_t store_seq_next(void)
{
	return atomic_fetch_add(&seq_last, 1) + 1;
}

void store_seq_reset(void)
{
	atomic_store(&seq_last, 0);
}

void store_seq_observe(int64_t seq)
{
	int64_t cur = atomic_load(&seq_last);

	while (cur < seq && !atomic_compare_exchange_weak(&seq_last, &cur, seq))
		;
}

/* ---- change notifier ---- */

static pthread_mutex_t nt_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nt_cond;
static pthread_once_t nt_once = PTHREAD_ONCE_INIT;
static uint64_t nt_gen;

/* A monotonic clock, so setting the wall clock never stretches a wait. */
static void nt_init(void)
{
	pthread_condattr_t a;

	if (pthread_condattr_init(&a) != 0 ||
	    pthread_condattr_setclock(&a, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&nt_cond, &a) != 0)
		fatalx("store: cannot create the change notifier condition variable");
	pthread_condattr_destroy(&a);
}

void store_notify(void)
{
	pthread_once(&nt_once, nt_init);
	pthread_mutex_lock(&nt_mtx);
	nt_gen++;
	pthread_cond_broadcast(&nt_cond);
	pthread_mutex_unlock(&nt_mtx);
}

uint64_t store_change_gen(void)
{
	uint64_t g;

	pthread_mutex_lock(&nt_mtx);
	g = nt_gen;
	pthread_mutex_unlock(&nt_mtx);
	return g;
}

void store_wait(uint64_t *gen, int timeout_ms)
{
	struct timespec dl;

	pthread_once(&nt_once, nt_init);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&nt_mtx);
	while (nt_gen == *gen && timeout_ms != 0) {
		int rc = timeout_ms < 0 ? pthread_cond_wait(&nt_cond, &nt_mtx)
		                        : pthread_cond_timedwait(&nt_cond, &nt_mtx, &dl);
		if (rc == ETIMEDOUT)
			break;
	}
	*gen = nt_gen;
	pthread_mutex_unlock(&nt_mtx);
}

void store_wake_all(void)
{
	store_notify();
}
