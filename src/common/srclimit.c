/* Per-source counts of unauthenticated connections and per-source log
 * rate limits (include/chand/srclimit.h): one hash table for the whole
 * process under one mutex, held only for a lookup. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/srclimit.h"
#include "chand/util.h"

#define SRC_BUCKETS 1024
/* An entry whose count fell to 0 is kept this long after its last log
 * line, so the limiter still knows that line (intervals are shorter). */
#define SRC_LOG_KEEP_MS 60000
/* Past this many entries every insertion first sweeps the whole table. */
#define SRC_SWEEP_AT 4096

struct src_key {
	uint8_t family;        /* 4 or 6 */
	uint8_t addr[16];      /* IPv4: 4 bytes; IPv6: the /64 prefix */
};

struct src_ent {
	struct src_key key;
	int count;
	struct ratelimit rl;
	struct src_ent *next;
};

static pthread_mutex_t src_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct src_ent *src_tab[SRC_BUCKETS];
static size_t src_n;

bool ratelimit_allow(struct ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                     unsigned *suppressed)
{
	if (rl->used && now_ms - rl->last_ms < interval_ms) {
		rl->suppressed++;
		return false;
	}
	if (suppressed != NULL)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now_ms;
	rl->used = true;
	return true;
}

/* false for families that are not limited */
static bool src_key_of(const struct sockaddr_storage *peer, struct src_key *k)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(k, 0, sizeof(*k));
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
		k->family = 4;
		memcpy(k->addr, &a->sin_addr, 4);
		return true;
	}
	if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
		const uint8_t *b = a->sin6_addr.s6_addr;
		if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
			k->family = 4;
			memcpy(k->addr, b + 12, 4);
		} else {
			k->family = 6;
			memcpy(k->addr, b, 8);
		}
		return true;
	}
	return false;
}

static size_t src_hash(const struct src_key *k)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	h = (h ^ k->family) * 16777619u;
	for (size_t i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * 16777619u;
	return h % SRC_BUCKETS;
}

static bool src_stale(const struct src_ent *e, int64_t now)
{
	return e->count == 0 && (!e->rl.used || now - e->rl.last_ms >= SRC_LOG_KEEP_MS);
}

/* Drops the stale entries of one chain (src_mtx held). */
static void src_sweep_chain(size_t b, int64_t now)
{
	struct src_ent **pp = &src_tab[b];

	while (*pp != NULL) {
		struct src_ent *e = *pp;
		if (src_stale(e, now)) {
			*pp = e->next;
			free(e);
			src_n--;
		} else {
			pp = &e->next;
		}
	}
}

/* The entry of k, made if create (NULL if absent or out of memory);
 * src_mtx held. */
static struct src_ent *src_find(const struct src_key *k, bool create)
{
	size_t b = src_hash(k);
	int64_t now = time_mono_ms();
	struct src_ent *e;

	for (e = src_tab[b]; e != NULL; e = e->next)
		if (memcmp(&e->key, k, sizeof(*k)) == 0)
			return e;
	if (!create)
		return NULL;
	if (src_n >= SRC_SWEEP_AT)
		for (size_t i = 0; i < SRC_BUCKETS; i++)
			src_sweep_chain(i, now);
	else
		src_sweep_chain(b, now);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->key = *k;
	e->next = src_tab[b];
	src_tab[b] = e;
	src_n++;
	return e;
}

int srclimit_enter(const struct sockaddr_storage *peer, int max)
{
	struct src_key k;
	struct src_ent *e;
	int rc = 0;

	if (!src_key_of(peer, &k))
		return 0;
	pthread_mutex_lock(&src_mtx);
	e = src_find(&k, true);
	if (e == NULL) {
		/* out of memory: refusing would let an allocation failure lock
		 * everyone out; without an entry leave() finds nothing to undo */
		rc = 0;
	} else if (max > 0 && e->count >= max) {
		rc = -1;
	} else {
		e->count++;
	}
	pthread_mutex_unlock(&src_mtx);
	return rc;
}

void srclimit_leave(const struct sockaddr_storage *peer)
{
	struct src_key k;
	struct src_ent *e;

	if (!src_key_of(peer, &k))
		return;
	pthread_mutex_lock(&src_mtx);
	e = src_find(&k, false);
	if (e != NULL && e->count > 0 && --e->count == 0)
		src_sweep_chain(src_hash(&k), time_mono_ms());
	pthread_mutex_unlock(&src_mtx);
}

int srclimit_count(const struct sockaddr_storage *peer)
{
	struct src_key k;
	struct src_ent *e;
	int n = 0;

	if (!src_key_of(peer, &k))
		return 0;
	pthread_mutex_lock(&src_mtx);
	e = src_find(&k, false);
	if (e != NULL)
		n = e->count;
	pthread_mutex_unlock(&src_mtx);
	return n;
}

bool srclimit_log_allow(const struct sockaddr_storage *peer, int64_t interval_ms,
                        unsigned *suppressed)
{
	struct src_key k;
	struct src_ent *e;
	bool ok = true;

	if (suppressed != NULL)
		*suppressed = 0;
	if (!src_key_of(peer, &k))
		return true;
	pthread_mutex_lock(&src_mtx);
	e = src_find(&k, true);
	if (e != NULL)
		ok = ratelimit_allow(&e->rl, time_mono_ms(), interval_ms, suppressed);
	pthread_mutex_unlock(&src_mtx);
	return ok;
}

void srclimit_source_str(const struct sockaddr_storage *peer, char *buf, size_t len)
{
	struct src_key k;
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (!src_key_of(peer, &k)) {
		str_copy(buf, "?", len);
		return;
	}
	if (inet_ntop(k.family == 4 ? AF_INET : AF_INET6, k.addr, host, sizeof(host)) == NULL) {
		str_copy(buf, "?", len);
		return;
	}
	snprintf(buf, len, "%s%s", host, k.family == 6 ? "/64" : "");
}
