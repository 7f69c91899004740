/* MQTT topic names and filters: validation, shared-subscription split,
 * matching and filter coverage (pure; include/chand/pubsub.h). */
#include <string.h>

#include "chand/pubsub.h"

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN 7

static int topic_fail(size_t pos, const char *msg, size_t *errpos, const char **why)
{
	if (errpos != NULL)
		*errpos = pos;
	if (why != NULL)
		*why = msg;
	return -1;
}

int topic_name_check(const char *t, size_t len, size_t *errpos, const char **why)
{
	if (len == 0)
		return topic_fail(0, "empty topic name", errpos, why);
	for (size_t i = 0; i < len && i < TOPIC_MAX_LEN; i++) {
		if (t[i] == '+' || t[i] == '#')
			return topic_fail(i, "wildcard in a topic name", errpos, why);
		if (t[i] == '\0')
			return topic_fail(i, "NUL in a topic name", errpos, why);
	}
	if (len > TOPIC_MAX_LEN)
		return topic_fail(TOPIC_MAX_LEN, "topic name longer than 65535 bytes", errpos, why);
	return 0;
}

/* A plain (not shared) filter; positions are reported plus base. */
static int topic_filter_check_plain(const char *f, size_t len, size_t base, size_t *errpos,
                                    const char **why)
{
	if (len == 0)
		return topic_fail(base, "empty topic filter", errpos, why);
	for (size_t i = 0; i < len; i++) {
		bool starts = i == 0 || f[i - 1] == '/';
		bool ends = i + 1 == len || f[i + 1] == '/';

		switch (f[i]) {
		case '\0':
			return topic_fail(base + i, "NUL in a topic filter", errpos, why);
		case '+':
			if (!starts || !ends)
				return topic_fail(base + i, "'+' must occupy a whole level", errpos, why);
			break;
		case '#':
			if (!starts || !ends)
				return topic_fail(base + i, "'#' must occupy a whole level", errpos, why);
			if (i + 1 != len)
				return topic_fail(base + i, "'#' must be the last level", errpos, why);
			break;
		default:
			break;
		}
	}
	return 0;
}

int topic_filter_shared(const char *f, size_t len, const char **group, size_t *glen,
                        const char **inner, size_t *ilen)
{
	size_t i;

	if (len < SHARE_PREFIX_LEN || memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
		return 0;
	for (i = SHARE_PREFIX_LEN; i < len && f[i] != '/'; i++)
		if (f[i] == '+' || f[i] == '#' || f[i] == '\0')
			return -1;
	if (i == SHARE_PREFIX_LEN || i >= len - 1)
		return -1;
	if (group != NULL)
		*group = f + SHARE_PREFIX_LEN;
	if (glen != NULL)
		*glen = i - SHARE_PREFIX_LEN;
	if (inner != NULL)
		*inner = f + i + 1;
	if (ilen != NULL)
		*ilen = len - i - 1;
	return 1;
}

int topic_filter_check(const char *f, size_t len, size_t *errpos, const char **why)
{
	size_t i;

	if (len > TOPIC_MAX_LEN)
		return topic_fail(TOPIC_MAX_LEN, "topic filter longer than 65535 bytes", errpos, why);
	if (len < SHARE_PREFIX_LEN || memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
		return topic_filter_check_plain(f, len, 0, errpos, why);
	/* Shared: the same walk as topic_filter_shared, with positions. */
	for (i = SHARE_PREFIX_LEN; i < len && f[i] != '/'; i++) {
		if (f[i] == '+' || f[i] == '#')
			return topic_fail(i, "wildcard in a share name", errpos, why);
		if (f[i] == '\0')
			return topic_fail(i, "NUL in a share name", errpos, why);
	}
	if (i == SHARE_PREFIX_LEN)
		return topic_fail(i, "empty share name", errpos, why);
	if (i == len)
		return topic_fail(i, "shared subscription without a topic filter", errpos, why);
	return topic_filter_check_plain(f + i + 1, len - i - 1, i + 1, errpos, why);
}

/* One level of s (length len) starting at *pos: sets *l and *ll and moves
 * *pos past the level and its '/'; *pos becomes len + 1 after the last. */
static void topic_level(const char *s, size_t len, size_t *pos, const char **l, size_t *ll)
{
	const char *slash = memchr(s + *pos, '/', len - *pos);
	size_t end = slash != NULL ? (size_t)(slash - s) : len;

	*l = s + *pos;
	*ll = end - *pos;
	*pos = end + 1;
}

/* Both valid, filter not shared.  Walks the levels side by side: '+' and
 * '#' only ever stand for whole levels, so no backtracking is needed. */
static bool topic_match_plain(const char *f, size_t flen, const char *t, size_t tlen)
{
	size_t fp = 0, tp = 0;

	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	for (;;) {
		const char *fl, *tl;
		size_t fll, tll;

		if (fp > flen)                   /* filter done */
			return tp > tlen;
		topic_level(f, flen, &fp, &fl, &fll);
		if (fll == 1 && fl[0] == '#')
			return true;             /* the rest, or the parent level */
		if (tp > tlen)
			return false;            /* topic done, filter is not */
		topic_level(t, tlen, &tp, &tl, &tll);
		if (fll == 1 && fl[0] == '+')
			continue;
		if (fll != tll || memcmp(fl, tl, fll) != 0)
			return false;
	}
}

bool topic_match_n(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	const char *inner;
	size_t ilen;

	if (topic_filter_check(filter, flen, NULL, NULL) != 0 ||
	    topic_name_check(topic, tlen, NULL, NULL) != 0)
		return false;
	if (topic_filter_shared(filter, flen, NULL, NULL, &inner, &ilen) == 1) {
		filter = inner;
		flen = ilen;
	}
	return topic_match_plain(filter, flen, topic, tlen);
}

bool topic_match(const char *filter, const char *topic)
{
	return topic_match_n(filter, strlen(filter), topic, strlen(topic));
}

/* Both valid plain filters.  For every topic N matches, does W? */
static bool topic_covers_plain(const char *w, size_t wlen, const char *n, size_t nlen)
{
	size_t wp = 0, np = 0;
	bool first = true, nempty0 = false;

	for (size_t lev = 0;; lev++, first = false) {
		const char *wl, *nl;
		size_t wll, nll;
		bool wplus, whash, nplus, nhash;

		if (wp > wlen)                   /* wide done: narrow must be too */
			return np > nlen;
		topic_level(w, wlen, &wp, &wl, &wll);
		whash = wll == 1 && wl[0] == '#';
		wplus = wll == 1 && wl[0] == '+';
		if (np > nlen)                   /* narrow done: only "#" matches the parent */
			return whash;
		topic_level(n, nlen, &np, &nl, &nll);
		nhash = nll == 1 && nl[0] == '#';
		nplus = nll == 1 && nl[0] == '+';
		/* A leading wildcard of wide misses '$' topics, which a narrow
		 * filter can only reach with a literal first level. */
		if (first && (wplus || whash) && nll > 0 && nl[0] == '$')
			return false;
		if (first)
			nempty0 = nll == 0;
		if (whash)
			return true;
		if (wplus) {
			/* Narrow "#" matches the parent level (wide "+" does not)
			 * unless the parent is no topic: at the first level, or
			 * after an empty first level ("" is no topic name).  So
			 * wide "+/#" covers narrow "#", and "/+/#" covers "/#". */
			if (nhash)
				return (first || (lev == 1 && nempty0)) && wp <= wlen && wlen - wp == 1 &&
				       w[wp] == '#';
			continue;
		}
		if (nplus || nhash || wll != nll || memcmp(wl, nl, wll) != 0)
			return false;
	}
}

bool topic_filter_covers(const char *wide, const char *narrow)
{
	size_t wlen = strlen(wide), nlen = strlen(narrow);
	const char *wg, *ng, *wi, *ni;
	size_t wgl, ngl, wil, nil;
	int ws, ns;

	if (topic_filter_check(wide, wlen, NULL, NULL) != 0 ||
	    topic_filter_check(narrow, nlen, NULL, NULL) != 0)
		return false;
	ws = topic_filter_shared(wide, wlen, &wg, &wgl, &wi, &wil);
	ns = topic_filter_shared(narrow, nlen, &ng, &ngl, &ni, &nil);
	if (ws == 1) {
		if (ns != 1 || wgl != ngl || memcmp(wg, ng, wgl) != 0)
			return false;
		wide = wi;
		wlen = wil;
	}
	if (ns == 1) {
		narrow = ni;
		nlen = nil;
	}
	return topic_covers_plain(wide, wlen, narrow, nlen);
}
