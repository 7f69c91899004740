/* libFuzzer target for MQTT topic names and filters and the subscription
 * tree (src/pubsub/topic.c, src/pubsub/subtree.c, pure).
 *
 * The input is split into lines ('\n'): every line is tried as a filter
 * and as a topic name.  Checks:
 *   - the checkers never crash and report a position within the string;
 *   - for each (filter line, topic line) that are both valid, topic_match
 *     agrees with the small reference matcher below;
 *   - topic_filter_covers is sound on the pairs: wide covers narrow and
 *     narrow matches the topic imply wide matches it;
 *   - a subtree holding the first FZ_MAX_SUBS filter lines (three owners)
 *     reports, for every topic line, exactly the pairs brute force finds,
 *     before and after removals; add's return values and subtree_count
 *     follow a shadow list.
 * Build (clang): clang -fsanitize=fuzzer,address,undefined -Iinclude
 *   -include config.h fuzz/fuzz_topic.c src/pubsub/topic.c src/pubsub/subtree.c */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chand/pubsub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_LINES 64
#define FZ_MAX_SUBS 48
#define FZ_OWNERS 3

struct fz_str {
	const char *s;
	size_t n;
};

/* Splits s into its '/' levels (allocated array); count in *nl. */
static struct fz_str *fz_levels(const char *s, size_t n, size_t *nl)
{
	size_t count = 1, k = 0, start = 0;
	struct fz_str *v;

	for (size_t i = 0; i < n; i++)
		count += s[i] == '/';
	v = malloc(count * sizeof *v);
	if (v == NULL)
		abort();
	for (size_t i = 0; i <= n; i++)
		if (i == n || s[i] == '/') {
			v[k].s = s + start;
			v[k].n = i - start;
			k++;
			start = i + 1;
		}
	*nl = count;
	return v;
}

static bool fz_is(const struct fz_str *l, char c)
{
	return l->n == 1 && l->s[0] == c;
}

/* The reference: both valid, filter not shared.  Level arrays compared
 * index by index, straight from MQTT 4.7. */
static bool fz_ref_match(const char *f, size_t fn, const char *t, size_t tn)
{
	size_t nf, nt, i;
	struct fz_str *fl = fz_levels(f, fn, &nf), *tl = fz_levels(t, tn, &nt);
	bool r = true;

	if (t[0] == '$' && (fz_is(&fl[0], '+') || fz_is(&fl[0], '#')))
		r = false;
	for (i = 0; r && i < nf; i++) {
		if (fz_is(&fl[i], '#'))
			break;           /* matches what is left, even nothing */
		if (i >= nt)
			r = false;
		else if (!fz_is(&fl[i], '+') &&
		         (fl[i].n != tl[i].n || memcmp(fl[i].s, tl[i].s, fl[i].n) != 0))
			r = false;
	}
	if (r && i == nf && nf != nt)
		r = false;
	free(fl);
	free(tl);
	return r;
}

static bool fz_match_ref_any(const char *f, size_t fn, const char *t, size_t tn)
{
	const char *in;
	size_t il;

	if (topic_filter_shared(f, fn, NULL, NULL, &in, &il) == 1)
		return fz_ref_match(in, il, t, tn);
	return fz_ref_match(f, fn, t, tn);
}

struct fz_sub {
	struct fz_str f;
	int owner;
	bool live, seen;
};

struct fz_state {
	struct fz_sub subs[FZ_MAX_SUBS];
	size_t nsubs;
	size_t hits;
};

static char fz_owners[FZ_OWNERS];

static void fz_cb(void *arg, void *owner, const char *filter, uint8_t opts, uint32_t subid)
{
	struct fz_state *st = arg;
	struct fz_sub *s;

	if (subid >= st->nsubs)
		abort();
	s = &st->subs[subid];
	/* subid is the index of the shadow entry that made (or last replaced) it. */
	if (!s->live || s->seen || owner != &fz_owners[s->owner] || opts != (uint8_t)subid ||
	    strlen(filter) != s->f.n || memcmp(filter, s->f.s, s->f.n) != 0)
		abort();
	s->seen = true;
	st->hits++;
}

static void fz_check_tree(const struct subtree *t, struct fz_state *st, const struct fz_str *topic)
{
	size_t want = 0;

	for (size_t i = 0; i < st->nsubs; i++) {
		st->subs[i].seen = false;
		if (st->subs[i].live && topic_match_n(st->subs[i].f.s, st->subs[i].f.n, topic->s, topic->n))
			want++;
	}
	st->hits = 0;
	subtree_match(t, topic->s, topic->n, fz_cb, st);
	if (st->hits != want)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_str lines[FZ_MAX_LINES];
	bool fok[FZ_MAX_LINES], tok[FZ_MAX_LINES], nulfree[FZ_MAX_LINES];
	size_t nlines = 0, start = 0, live = 0;
	const char *s = (const char *)data;
	struct fz_state *st;
	struct subtree *t;

	for (size_t i = 0; i <= size && nlines < FZ_MAX_LINES; i++)
		if (i == size || s[i] == '\n') {
			lines[nlines].s = s + start;
			lines[nlines].n = i - start;
			nlines++;
			start = i + 1;
		}

	for (size_t i = 0; i < nlines; i++) {
		size_t pos = 0;
		const char *why = NULL;

		fok[i] = topic_filter_check(lines[i].s, lines[i].n, &pos, &why) == 0;
		if (!fok[i] && (why == NULL || pos > lines[i].n))
			abort();
		tok[i] = topic_name_check(lines[i].s, lines[i].n, &pos, &why) == 0;
		if (!tok[i] && (why == NULL || pos > lines[i].n))
			abort();
		/* A valid name is a valid filter, unless it is a malformed shared one. */
		if (tok[i] && !fok[i] &&
		    topic_filter_shared(lines[i].s, lines[i].n, NULL, NULL, NULL, NULL) != -1)
			abort();
		nulfree[i] = memchr(lines[i].s, '\0', lines[i].n) == NULL;
		(void)topic_filter_shared(lines[i].s, lines[i].n, NULL, NULL, NULL, NULL);
	}

	/* Matching against the reference. */
	for (size_t i = 0; i < nlines; i++)
		for (size_t j = 0; j < nlines; j++) {
			bool m = topic_match_n(lines[i].s, lines[i].n, lines[j].s, lines[j].n);

			if (!fok[i] || !tok[j]) {
				if (m)
					abort();
				continue;
			}
			if (m != fz_match_ref_any(lines[i].s, lines[i].n, lines[j].s, lines[j].n))
				abort();
		}

	/* covers(): soundness on the lines given (NUL-terminated copies). */
	if (nlines <= 16) {
		char *z[16];

		for (size_t i = 0; i < nlines; i++) {
			z[i] = malloc(lines[i].n + 1);
			if (z[i] == NULL)
				abort();
			memcpy(z[i], lines[i].s, lines[i].n);
			z[i][lines[i].n] = '\0';
		}
		for (size_t w = 0; w < nlines; w++)
			for (size_t n = 0; n < nlines; n++) {
				/* An embedded NUL ends the C string: judge only whole lines. */
				if (!nulfree[w] || !nulfree[n] || !topic_filter_covers(z[w], z[n]))
					continue;
				if (!fok[w] || !fok[n])
					abort();
				for (size_t k = 0; k < nlines; k++)
					if (tok[k] &&
					    topic_match_n(lines[n].s, lines[n].n, lines[k].s, lines[k].n) &&
					    !topic_match_n(lines[w].s, lines[w].n, lines[k].s, lines[k].n))
						abort();
			}
		for (size_t i = 0; i < nlines; i++)
			free(z[i]);
	}

	/* The tree against brute force. */
	st = calloc(1, sizeof *st);
	t = subtree_new();
	if (st == NULL || t == NULL)
		abort();
	for (size_t i = 0; i < nlines && st->nsubs < FZ_MAX_SUBS; i++) {
		size_t k = st->nsubs++, levels = 1;
		struct fz_sub *sub = &st->subs[k];
		int dup = 0, r;

		sub->f = lines[i];
		sub->owner = (int)(i % FZ_OWNERS);
		for (size_t c = 0; c < lines[i].n; c++)
			levels += lines[i].s[c] == '/';
		for (size_t j = 0; j < k; j++)
			if (st->subs[j].live && st->subs[j].owner == sub->owner &&
			    st->subs[j].f.n == sub->f.n && memcmp(st->subs[j].f.s, sub->f.s, sub->f.n) == 0) {
				st->subs[j].live = false;
				live--;
				dup = 1;
			}
		r = subtree_add(t, sub->f.s, sub->f.n, &fz_owners[sub->owner], (uint8_t)k, (uint32_t)k);
		if (r == -1) {
			/* Only invalid or over-deep filters are refused (no ENOMEM here). */
			if (errno != EINVAL || (fok[i] && levels <= SUBTREE_MAX_LEVELS))
				abort();
			continue;
		}
		if (!fok[i] || r != dup)
			abort();
		sub->live = true;
		live++;
	}
	if (subtree_count(t) != live)
		abort();
	for (size_t j = 0; j < nlines; j++)
		fz_check_tree(t, st, &lines[j]);

	/* Remove every other live subscription, then check again. */
	for (size_t k = 0; k < st->nsubs; k += 2)
		if (st->subs[k].live) {
			if (subtree_remove(t, st->subs[k].f.s, st->subs[k].f.n,
			                   &fz_owners[st->subs[k].owner]) != 0)
				abort();
			st->subs[k].live = false;
			live--;
		}
	if (subtree_count(t) != live)
		abort();
	for (size_t j = 0; j < nlines; j++)
		fz_check_tree(t, st, &lines[j]);

	/* Drop owner 0 as a whole, check, then remove owner by owner. */
	for (int o = 0; o < FZ_OWNERS; o++) {
		size_t n = 0;

		for (size_t k = 0; k < st->nsubs; k++)
			if (st->subs[k].live && st->subs[k].owner == o) {
				st->subs[k].live = false;
				n++;
			}
		if (subtree_remove_owner(t, &fz_owners[o]) != n)
			abort();
		live -= n;
		if (subtree_count(t) != live)
			abort();
		if (o == 0)
			for (size_t j = 0; j < nlines; j++)
				fz_check_tree(t, st, &lines[j]);
	}
	subtree_free(t);
	free(st);
	return 0;
}
