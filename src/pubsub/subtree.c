/* The subscription tree (include/chand/pubsub.h): a trie of topic levels.
 *
 * Each node is one filter level; its literal children sit in an
 * open-addressing hash table (linear probing, backward-shift deletion) so
 * a node with 100,000 children costs one probe per level, and its '+' and
 * '#' children have their own pointers.  A node holds the subscriptions
 * whose (inner) filter ends there.  Every subscription is also listed
 * under its owner in a second hash table, so removing a client's
 * subscriptions does not walk the tree.  Both lists keep each entry's
 * index, so removal is O(1) once the entry is found.
 *
 * Matching walks literal children in a loop and recurses for '+', so the
 * stack depth is the number of '+' levels on a path (bounded by
 * SUBTREE_MAX_LEVELS). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chand/pubsub.h"

struct st_sub {
	struct st_node *node;
	struct st_owner *own;
	void *owner;
	size_t node_ix, owner_ix;
	uint32_t subid;
	uint8_t opts;
	size_t flen;
	char filter[];               /* full filter, NUL-terminated */
};

struct st_node {
	struct st_node *parent;
	struct st_node **kids;       /* hash table of literal children, NULL = empty slot */
	size_t nkids, kcap;          /* kcap: 0 or a power of two */
	struct st_node *plus, *hash;
	struct st_sub **subs;
	size_t nsubs, scap;
	uint32_t hv;                 /* hash of level */
	size_t llen;
	char level[];
};

struct st_owner {
	void *owner;
	struct st_sub **subs;
	size_t n, cap;
};

struct subtree {
	struct st_node *root;
	struct st_owner **owners;    /* hash table by owner pointer */
	size_t nowners, ocap;
	size_t count;
};

/* FNV-1a with murmur3's finaliser: FNV alone leaves the low bits (the
 * table index) poorly mixed for levels differing in a digit or two. */
static uint32_t st_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static size_t st_ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

/* realloc for one more entry: the new array (*cap updated) or NULL. */
static void *st_grow(void *arr, size_t *cap, size_t elsz)
{
	size_t nc = *cap ? *cap * 2 : 4;
	void *na = realloc(arr, nc * elsz);

	if (na != NULL)
		*cap = nc;
	return na;
}

/* ---- generic linear-probing tables (backward-shift deletion) ---- */

/* Removes slot i of a table of capacity cap (a power of two) whose
 * entries' home slot is given by home(). */
#define ST_TABLE_DELETE(tab, cap, i, home) do {                              \
	size_t m_ = (cap) - 1, i_ = (i), j_ = (i);                           \
	(tab)[i_] = NULL;                                                    \
	for (;;) {                                                           \
		size_t k_;                                                   \
		j_ = (j_ + 1) & m_;                                          \
		if ((tab)[j_] == NULL)                                       \
			break;                                               \
		k_ = home((tab)[j_]) & m_;                                   \
		/* Move j_ to the hole unless its home lies in (i_, j_]. */  \
		if ((i_ <= j_) ? (i_ < k_ && k_ <= j_) : (i_ < k_ || k_ <= j_)) \
			continue;                                            \
		(tab)[i_] = (tab)[j_];                                       \
		(tab)[j_] = NULL;                                            \
		i_ = j_;                                                     \
	}                                                                    \
} while (0)

#define ST_NODE_HOME(n) ((size_t)(n)->hv)
#define ST_OWNER_HOME(o) st_ptr_hash((o)->owner)

static struct st_node *st_kid_find(const struct st_node *n, const char *l, size_t ll, uint32_t hv,
                                   size_t *slot)
{
	size_t m, i;

	if (n->kcap == 0)
		return NULL;
	m = n->kcap - 1;
	for (i = hv & m; n->kids[i] != NULL; i = (i + 1) & m) {
		struct st_node *k = n->kids[i];

		if (k->hv == hv && k->llen == ll && memcmp(k->level, l, ll) == 0) {
			if (slot != NULL)
				*slot = i;
			return k;
		}
	}
	return NULL;
}

static void st_kid_put(struct st_node **tab, size_t cap, struct st_node *k)
{
	size_t m = cap - 1, i;

	for (i = k->hv & m; tab[i] != NULL; i = (i + 1) & m)
		;
	tab[i] = k;
}

/* Room for one more child at load <= 1/2; 0 or -1. */
static int st_kid_reserve(struct st_node *n)
{
	size_t nc;
	struct st_node **nt;

	if ((n->nkids + 1) * 2 <= n->kcap)
		return 0;
	nc = n->kcap ? n->kcap * 2 : 4;
	nt = calloc(nc, sizeof *nt);
	if (nt == NULL)
		return -1;
	for (size_t i = 0; i < n->kcap; i++)
		if (n->kids[i] != NULL)
			st_kid_put(nt, nc, n->kids[i]);
	free(n->kids);
	n->kids = nt;
	n->kcap = nc;
	return 0;
}

static struct st_node *st_node_new(struct st_node *parent, const char *l, size_t ll, uint32_t hv)
{
	struct st_node *n = calloc(1, sizeof *n + ll + 1);

	if (n == NULL)
		return NULL;
	n->parent = parent;
	n->hv = hv;
	n->llen = ll;
	memcpy(n->level, l, ll);
	return n;
}

static void st_node_free(struct st_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->kcap; i++)
		st_node_free(n->kids[i]);
	st_node_free(n->plus);
	st_node_free(n->hash);
	for (size_t i = 0; i < n->nsubs; i++)
		free(n->subs[i]);
	free(n->kids);
	free(n->subs);
	free(n);
}

/* Frees n and its empty ancestors (never the root). */
static void st_prune(struct st_node *n)
{
	while (n->parent != NULL && n->nsubs == 0 && n->nkids == 0 && n->plus == NULL &&
	       n->hash == NULL) {
		struct st_node *p = n->parent;
		size_t slot;

		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else if (st_kid_find(p, n->level, n->llen, n->hv, &slot) == n) {
			ST_TABLE_DELETE(p->kids, p->kcap, slot, ST_NODE_HOME);
			p->nkids--;
		}
		free(n->kids);
		free(n->subs);
		free(n);
		n = p;
	}
}

/* ---- owners ---- */

static struct st_owner *st_owner_find(const struct subtree *t, const void *owner, size_t *slot)
{
	size_t m, i;

	if (t->ocap == 0)
		return NULL;
	m = t->ocap - 1;
	for (i = st_ptr_hash(owner) & m; t->owners[i] != NULL; i = (i + 1) & m)
		if (t->owners[i]->owner == owner) {
			if (slot != NULL)
				*slot = i;
			return t->owners[i];
		}
	return NULL;
}

static int st_owner_reserve(struct subtree *t)
{
	size_t nc, m;
	struct st_owner **nt;

	if ((t->nowners + 1) * 2 <= t->ocap)
		return 0;
	nc = t->ocap ? t->ocap * 2 : 16;
	nt = calloc(nc, sizeof *nt);
	if (nt == NULL)
		return -1;
	m = nc - 1;
	for (size_t i = 0; i < t->ocap; i++) {
		struct st_owner *o = t->owners[i];
		size_t j;

		if (o == NULL)
			continue;
		for (j = st_ptr_hash(o->owner) & m; nt[j] != NULL; j = (j + 1) & m)
			;
		nt[j] = o;
	}
	free(t->owners);
	t->owners = nt;
	t->ocap = nc;
	return 0;
}

static void st_owner_drop(struct subtree *t, struct st_owner *o)
{
	size_t slot;

	if (st_owner_find(t, o->owner, &slot) == o) {
		ST_TABLE_DELETE(t->owners, t->ocap, slot, ST_OWNER_HOME);
		t->nowners--;
	}
	free(o->subs);
	free(o);
}

/* ---- the tree ---- */

struct subtree *subtree_new(void)
{
	struct subtree *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->root = st_node_new(NULL, "", 0, 0);
	if (t->root == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void subtree_free(struct subtree *t)
{
	if (t == NULL)
		return;
	st_node_free(t->root);
	for (size_t i = 0; i < t->ocap; i++)
		if (t->owners[i] != NULL) {
			free(t->owners[i]->subs);
			free(t->owners[i]);
		}
	free(t->owners);
	free(t);
}

size_t subtree_count(const struct subtree *t)
{
	return t->count;
}

/* The filter levels the tree is keyed on: the inner filter of a shared one. */
static void st_key(const char *f, size_t flen, const char **k, size_t *klen)
{
	if (topic_filter_shared(f, flen, NULL, NULL, k, klen) != 1) {
		*k = f;
		*klen = flen;
	}
}

/* Finds the node of a valid key without creating anything; NULL if absent. */
static struct st_node *st_find(const struct subtree *t, const char *k, size_t klen)
{
	struct st_node *n = t->root;
	size_t pos = 0;

	while (n != NULL && pos <= klen) {
		const char *l = k + pos, *slash = memchr(l, '/', klen - pos);
		size_t ll = slash != NULL ? (size_t)(slash - l) : klen - pos;

		pos += ll + 1;
		if (ll == 1 && l[0] == '+')
			n = n->plus;
		else if (ll == 1 && l[0] == '#')
			n = n->hash;
		else
			n = st_kid_find(n, l, ll, st_hash(l, ll), NULL);
	}
	return n;
}

/* The subscription of owner with this full filter at node n, or NULL:
 * scans whichever of the node's and the owner's lists is shorter. */
static struct st_sub *st_sub_find(const struct st_node *n, const struct st_owner *o, const char *f,
                                  size_t flen)
{
	if (n == NULL || o == NULL)
		return NULL;
	if (n->nsubs <= o->n) {
		for (size_t i = 0; i < n->nsubs; i++) {
			struct st_sub *s = n->subs[i];

			if (s->own == o && s->flen == flen && memcmp(s->filter, f, flen) == 0)
				return s;
		}
	} else {
		for (size_t i = 0; i < o->n; i++) {
			struct st_sub *s = o->subs[i];

			if (s->node == n && s->flen == flen && memcmp(s->filter, f, flen) == 0)
				return s;
		}
	}
	return NULL;
}

int subtree_add(struct subtree *t, const char *filter, size_t flen, void *owner, uint8_t opts,
                uint32_t subid)
{
	const char *k;
	size_t klen, pos, levels = 1;
	struct st_node *n;
	struct st_owner *o;
	struct st_sub *s;
	bool new_owner = false;

	if (topic_filter_check(filter, flen, NULL, NULL) != 0) {
		errno = EINVAL;
		return -1;
	}
	st_key(filter, flen, &k, &klen);
	for (size_t i = 0; i < klen; i++)
		levels += k[i] == '/';
	if (levels > SUBTREE_MAX_LEVELS) {
		errno = EINVAL;
		return -1;
	}
	o = st_owner_find(t, owner, NULL);
	s = st_sub_find(st_find(t, k, klen), o, filter, flen);
	if (s != NULL) {
		s->opts = opts;
		s->subid = subid;
		return 1;
	}

	/* New: make the path, then the entry; on failure prune what we made. */
	n = t->root;
	for (pos = 0; pos <= klen;) {
		const char *l = k + pos, *slash = memchr(l, '/', klen - pos);
		size_t ll = slash != NULL ? (size_t)(slash - l) : klen - pos;
		struct st_node **slotp = NULL, *c;
		uint32_t hv = st_hash(l, ll);

		pos += ll + 1;
		if (ll == 1 && l[0] == '+')
			slotp = &n->plus;
		else if (ll == 1 && l[0] == '#')
			slotp = &n->hash;
		if (slotp != NULL) {
			if (*slotp == NULL && (*slotp = st_node_new(n, l, ll, hv)) == NULL)
				goto nomem;
			n = *slotp;
			continue;
		}
		c = st_kid_find(n, l, ll, hv, NULL);
		if (c == NULL) {
			if (st_kid_reserve(n) != 0 || (c = st_node_new(n, l, ll, hv)) == NULL)
				goto nomem;
			st_kid_put(n->kids, n->kcap, c);
			n->nkids++;
		}
		n = c;
	}
	if (o == NULL) {
		if (st_owner_reserve(t) != 0 || (o = calloc(1, sizeof *o)) == NULL)
			goto nomem;
		o->owner = owner;
		new_owner = true;
	}
	if (o->n == o->cap) {
		struct st_sub **v = st_grow(o->subs, &o->cap, sizeof *v);

		if (v == NULL)
			goto nomem_owner;
		o->subs = v;
	}
	if (n->nsubs == n->scap) {
		struct st_sub **v = st_grow(n->subs, &n->scap, sizeof *v);

		if (v == NULL)
			goto nomem_owner;
		n->subs = v;
	}
	s = malloc(sizeof *s + flen + 1);
	if (s == NULL)
		goto nomem_owner;
	if (new_owner) {
		size_t m = t->ocap - 1, j;

		for (j = st_ptr_hash(owner) & m; t->owners[j] != NULL; j = (j + 1) & m)
			;
		t->owners[j] = o;
		t->nowners++;
	}
	s->node = n;
	s->own = o;
	s->owner = owner;
	s->opts = opts;
	s->subid = subid;
	s->flen = flen;
	memcpy(s->filter, filter, flen);
	s->filter[flen] = '\0';
	s->node_ix = n->nsubs;
	n->subs[n->nsubs++] = s;
	s->owner_ix = o->n;
	o->subs[o->n++] = s;
	t->count++;
	return 0;

nomem_owner:
	if (new_owner) {
		free(o->subs);
		free(o);
	}
nomem:
	st_prune(n);
	errno = ENOMEM;
	return -1;
}

/* Unlinks s from its node and owner lists and frees it; prunes the node
 * but not the owner (the caller decides). */
static void st_sub_unlink(struct subtree *t, struct st_sub *s)
{
	struct st_node *n = s->node;
	struct st_owner *o = s->own;

	n->subs[s->node_ix] = n->subs[--n->nsubs];
	n->subs[s->node_ix]->node_ix = s->node_ix;
	o->subs[s->owner_ix] = o->subs[--o->n];
	o->subs[s->owner_ix]->owner_ix = s->owner_ix;
	t->count--;
	free(s);
	st_prune(n);
}

int subtree_remove(struct subtree *t, const char *filter, size_t flen, void *owner)
{
	const char *k;
	size_t klen;
	struct st_owner *o;
	struct st_sub *s;

	if (topic_filter_check(filter, flen, NULL, NULL) != 0)
		return -1;
	o = st_owner_find(t, owner, NULL);
	if (o == NULL)
		return -1;
	st_key(filter, flen, &k, &klen);
	s = st_sub_find(st_find(t, k, klen), o, filter, flen);
	if (s == NULL)
		return -1;
	st_sub_unlink(t, s);
	if (o->n == 0)
		st_owner_drop(t, o);
	return 0;
}

size_t subtree_remove_owner(struct subtree *t, void *owner)
{
	struct st_owner *o = st_owner_find(t, owner, NULL);
	size_t n;

	if (o == NULL)
		return 0;
	n = o->n;
	while (o->n > 0)
		st_sub_unlink(t, o->subs[o->n - 1]);
	st_owner_drop(t, o);
	return n;
}

/* ---- matching ---- */

struct st_match {
	const char *topic;
	size_t tlen;
	subtree_match_fn fn;
	void *arg;
};

static void st_report(const struct st_node *n, const struct st_match *m)
{
	for (size_t i = 0; i < n->nsubs; i++) {
		const struct st_sub *s = n->subs[i];

		m->fn(m->arg, s->owner, s->filter, s->opts, s->subid);
	}
}

/* n matched the topic's levels before pos (pos == tlen + 1: all of them). */
static void st_walk(const struct st_node *n, size_t pos, const struct st_match *m)
{
	while (n != NULL) {
		const char *l, *slash;
		size_t ll;

		if (n->hash != NULL && (n->parent != NULL || m->topic[0] != '$'))
			st_report(n->hash, m);   /* '#': the rest, or this parent level */
		if (pos > m->tlen) {
			st_report(n, m);
			return;
		}
		l = m->topic + pos;
		slash = memchr(l, '/', m->tlen - pos);
		ll = slash != NULL ? (size_t)(slash - l) : m->tlen - pos;
		pos += ll + 1;
		if (n->plus != NULL && (n->parent != NULL || m->topic[0] != '$'))
			st_walk(n->plus, pos, m);
		n = st_kid_find(n, l, ll, st_hash(l, ll), NULL);
	}
}

void subtree_match(const struct subtree *t, const char *topic, size_t tlen, subtree_match_fn fn,
                   void *arg)
{
	struct st_match m = { topic, tlen, fn, arg };

	if (topic_name_check(topic, tlen, NULL, NULL) != 0)
		return;
	st_walk(t->root, 0, &m);
}
