/* pubsub: topic names and filters (MQTT 3.1.1 / 5.0 section 4.7, shared
 * subscriptions 5.0 section 4.8.2), filter coverage, and the subscription
 * tree checked against brute force. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chand/pubsub.h"

/* ---- helpers ---- */

static int name_ok(const char *t)
{
	return topic_name_check(t, strlen(t), NULL, NULL);
}

static int filter_ok(const char *f)
{
	return topic_filter_check(f, strlen(f), NULL, NULL);
}

/* Expects the name (length n) refused at pos. */
static void name_bad_n(const char *t, size_t n, size_t pos)
{
	size_t at = 9999;
	const char *why = NULL;

	cr_assert_eq(topic_name_check(t, n, &at, &why), -1, "name \"%.*s\" accepted", (int)n, t);
	cr_assert_eq(at, pos, "name \"%.*s\": error at %zu, expected %zu (%s)", (int)n, t, at, pos,
	             why);
	cr_assert(why != NULL && why[0] != '\0');
}

static void filter_bad_n(const char *f, size_t n, size_t pos)
{
	size_t at = 9999;
	const char *why = NULL;

	cr_assert_eq(topic_filter_check(f, n, &at, &why), -1, "filter \"%.*s\" accepted", (int)n, f);
	cr_assert_eq(at, pos, "filter \"%.*s\": error at %zu, expected %zu (%s)", (int)n, f, at, pos,
	             why);
	cr_assert(why != NULL && why[0] != '\0');
}

#define name_bad(t, pos) name_bad_n((t), strlen(t), (pos))
#define filter_bad(f, pos) filter_bad_n((f), strlen(f), (pos))
#define MATCH(f, t) cr_assert(topic_match((f), (t)), "\"%s\" should match \"%s\"", (f), (t))
#define NOMATCH(f, t) cr_assert(!topic_match((f), (t)), "\"%s\" should not match \"%s\"", (f), (t))
#define COVERS(w, n) cr_assert(topic_filter_covers((w), (n)), "\"%s\" should cover \"%s\"", (w), (n))
#define NOCOVER(w, n) cr_assert(!topic_filter_covers((w), (n)), "\"%s\" should not cover \"%s\"", \
                                (w), (n))

/* ---- names and filters: validity ---- */

/* [MQTT-4.7.3-1] at least one character. */
Test(topic_check, empty_MQTT_4_7_3_1)
{
	name_bad("", 0);
	filter_bad("", 0);
}

/* [MQTT-4.7.1-1] wildcards may be used in filters but not in names. */
Test(topic_check, name_wildcards_MQTT_4_7_1_1)
{
	name_bad("+", 0);
	name_bad("#", 0);
	name_bad("sport/+/x", 6);
	name_bad("sport/tennis#", 12);
	name_bad("a+b", 1);
	cr_assert_eq(name_ok("sport/tennis/player1"), 0);
}

/* [MQTT-4.7.3-2] no U+0000. */
Test(topic_check, nul_MQTT_4_7_3_2)
{
	name_bad_n("ab\0c", 4, 2);
	name_bad_n("\0", 1, 0);
	filter_bad_n("a/\0/b", 5, 2);
	filter_bad_n("$share/g\0/a", 11, 8);
	filter_bad_n("$share/g/a\0", 11, 10);
}

/* [MQTT-4.7.3-3] at most 65535 bytes. */
Test(topic_check, length_MQTT_4_7_3_3)
{
	char *s = malloc(TOPIC_MAX_LEN + 2);

	cr_assert_not_null(s);
	memset(s, 'x', TOPIC_MAX_LEN + 1);
	cr_assert_eq(topic_name_check(s, TOPIC_MAX_LEN, NULL, NULL), 0);
	cr_assert_eq(topic_filter_check(s, TOPIC_MAX_LEN, NULL, NULL), 0);
	name_bad_n(s, TOPIC_MAX_LEN + 1, TOPIC_MAX_LEN);
	filter_bad_n(s, TOPIC_MAX_LEN + 1, TOPIC_MAX_LEN);
	/* A wildcard before the limit is reported first. */
	s[10] = '+';
	name_bad_n(s, TOPIC_MAX_LEN + 1, 10);
	free(s);
}

/* [MQTT-4.7.1-2] '#' alone or after '/', and last. 4.7.1.2 examples. */
Test(topic_check, multi_level_MQTT_4_7_1_2)
{
	cr_assert_eq(filter_ok("#"), 0);
	cr_assert_eq(filter_ok("sport/tennis/#"), 0);
	cr_assert_eq(filter_ok("sport/tennis/player1/#"), 0);
	cr_assert_eq(filter_ok("/#"), 0);
	filter_bad("sport/tennis#", 12);
	filter_bad("sport/tennis/#/ranking", 13);
	filter_bad("#/", 0);
	filter_bad("##", 0);
	filter_bad("a/#b", 2);
	filter_bad("a/b#", 3);
	filter_bad("#sport", 0);
}

/* [MQTT-4.7.1-3] '+' occupies a whole level. 4.7.1.3 examples. */
Test(topic_check, single_level_MQTT_4_7_1_3)
{
	cr_assert_eq(filter_ok("+"), 0);
	cr_assert_eq(filter_ok("+/tennis/#"), 0);
	cr_assert_eq(filter_ok("sport/+/player1"), 0);
	cr_assert_eq(filter_ok("+/+"), 0);
	cr_assert_eq(filter_ok("/+"), 0);
	cr_assert_eq(filter_ok("+/"), 0);
	cr_assert_eq(filter_ok("+/#"), 0);
	filter_bad("sport+", 5);
	filter_bad("+sport", 0);
	filter_bad("a/++/b", 2);
	filter_bad("a/b+c", 3);
	filter_bad("+#", 0);
}

/* 4.7.3: spaces, slashes only, empty levels and '$' are all valid. */
Test(topic_check, valid_oddities)
{
	static const char *ok[] = { "Accounts payable", "/", "//", "/finance", "finance/",
	                            "a//b", "$SYS/broker/load", "$", "日本/温度", "ACCOUNTS" };

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		cr_assert_eq(name_ok(ok[i]), 0, "name %s", ok[i]);
		cr_assert_eq(filter_ok(ok[i]), 0, "filter %s", ok[i]);
	}
	cr_assert_eq(filter_ok("a//+//#"), 0);
	cr_assert_eq(filter_ok("$SYS/#"), 0);
}

/* NULL errpos/why are fine. */
Test(topic_check, null_outputs)
{
	cr_assert_eq(topic_name_check("a+", 2, NULL, NULL), -1);
	cr_assert_eq(topic_filter_check("a+", 2, NULL, NULL), -1);
}

/* ---- shared subscriptions (MQTT 5.0 4.8.2) ---- */

static void shared_is(const char *f, const char *group, const char *inner)
{
	const char *g = NULL, *in = NULL;
	size_t gl = 0, il = 0;

	cr_assert_eq(topic_filter_shared(f, strlen(f), &g, &gl, &in, &il), 1, "%s", f);
	cr_assert_eq(gl, strlen(group), "%s", f);
	cr_assert_eq(memcmp(g, group, gl), 0, "%s", f);
	cr_assert_eq(il, strlen(inner), "%s", f);
	cr_assert_eq(memcmp(in, inner, il), 0, "%s", f);
	cr_assert_eq(filter_ok(f), 0, "%s", f);
}

Test(topic_shared, split)
{
	shared_is("$share/g1/sensors/+", "g1", "sensors/+");
	shared_is("$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+");
	shared_is("$share/g/#", "g", "#");
	shared_is("$share/g//", "g", "/");
	shared_is("$share/g/$SYS/#", "g", "$SYS/#");
	shared_is("$share/日本/x", "日本", "x");
	cr_assert_eq(topic_filter_shared("a/b", 3, NULL, NULL, NULL, NULL), 0);
	cr_assert_eq(topic_filter_shared("$share", 6, NULL, NULL, NULL, NULL), 0);
	cr_assert_eq(topic_filter_shared("$sharex/g/a", 11, NULL, NULL, NULL, NULL), 0);
	cr_assert_eq(topic_filter_shared("$SHARE/g/a", 10, NULL, NULL, NULL, NULL), 0);
	/* "$share" alone is an ordinary filter. */
	cr_assert_eq(filter_ok("$share"), 0);
}

/* [MQTT-4.8.2-1] a ShareName at least one character long;
 * [MQTT-4.8.2-2] no '/', '+', '#' in it, then '/' and a Topic Filter. */
Test(topic_shared, malformed_MQTT_4_8_2_1_and_2)
{
	static const char *bad[] = { "$share/", "$share//a", "$share/g", "$share/g/", "$share/g+/a",
	                             "$share/#", "$share/+/a" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(topic_filter_shared(bad[i], strlen(bad[i]), NULL, NULL, NULL, NULL), -1,
		             "%s", bad[i]);
	filter_bad("$share/", 7);
	filter_bad("$share//a", 7);
	filter_bad("$share/g", 8);
	filter_bad("$share/g/", 9);
	filter_bad("$share/g+/a", 8);
	filter_bad("$share/#", 7);
	/* Errors in the inner filter are positions in the whole string. */
	filter_bad("$share/g/a/b#", 12);
	filter_bad("$share/grp/sport+", 16);
	filter_bad("$share/g/#/a", 9);
}

Test(topic_shared, match_inner)
{
	MATCH("$share/g/sensors/+", "sensors/t1");
	NOMATCH("$share/g/sensors/+", "$share/g/sensors/t1");
	NOMATCH("$share/g/#", "$SYS/x");
	MATCH("$share/g/$SYS/#", "$SYS/x");
}

/* ---- matching ---- */

/* 4.7.1.2: "sport/tennis/player1/#" and "sport/#". */
Test(topic_match, multi_level_examples_MQTT_4_7_1_2)
{
	MATCH("sport/tennis/player1/#", "sport/tennis/player1");
	MATCH("sport/tennis/player1/#", "sport/tennis/player1/ranking");
	MATCH("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon");
	MATCH("sport/#", "sport");
	MATCH("sport/#", "sport/");
	MATCH("#", "sport/tennis");
	MATCH("#", "/");
	NOMATCH("sport/tennis/player1/#", "sport/tennis");
	NOMATCH("sport/tennis/player1/#", "sport/tennis/player2");
	NOMATCH("sport/#", "sports");
	/* Invalid filters match nothing. */
	NOMATCH("sport/tennis#", "sport/tennis");
	NOMATCH("sport/tennis/#/ranking", "sport/tennis/x/ranking");
}

/* 4.7.1.3: "sport/tennis/+", "sport/+", "+/+", "/+". */
Test(topic_match, single_level_examples_MQTT_4_7_1_3)
{
	MATCH("sport/tennis/+", "sport/tennis/player1");
	MATCH("sport/tennis/+", "sport/tennis/player2");
	NOMATCH("sport/tennis/+", "sport/tennis/player1/ranking");
	NOMATCH("sport/+", "sport");
	MATCH("sport/+", "sport/");
	MATCH("+/+", "/finance");
	MATCH("/+", "/finance");
	NOMATCH("+", "/finance");
	MATCH("+", "finance");
	MATCH("sport/+/player1", "sport/tennis/player1");
	MATCH("+/tennis/#", "sport/tennis/player1/ranking");
	MATCH("+/tennis/#", "sport/tennis");
	NOMATCH("+/tennis/#", "sport/golf/x");
	NOMATCH("sport+", "sport+");
}

/* [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic
 * starting with '$'. 4.7.2 examples. */
Test(topic_match, dollar_topics_MQTT_4_7_2_1)
{
	NOMATCH("#", "$SYS/broker/clients");
	NOMATCH("#", "$");
	NOMATCH("+/monitor/Clients", "$SYS/monitor/Clients");
	NOMATCH("+", "$SYS");
	NOMATCH("+/#", "$SYS/x");
	MATCH("$SYS/#", "$SYS/monitor/Clients");
	MATCH("$SYS/#", "$SYS");
	MATCH("$SYS/monitor/+", "$SYS/monitor/Clients");
	MATCH("$SYS/+/Clients", "$SYS/monitor/Clients");
	/* Only the first character counts: '$' later is ordinary. */
	MATCH("#", "a/$SYS");
	MATCH("+/+", "a/$b");
	MATCH("+", "x$");
}

/* [MQTT-4.7.3-4] no normalisation: bytes compared as they are; 4.7.3:
 * case, leading/trailing '/', spaces, empty levels. */
Test(topic_match, exact_bytes_MQTT_4_7_3_4)
{
	NOMATCH("ACCOUNTS", "Accounts");
	MATCH("Accounts payable", "Accounts payable");
	NOMATCH("/finance", "finance");
	NOMATCH("finance", "/finance");
	NOMATCH("finance", "finance/");
	MATCH("finance/", "finance/");
	MATCH("a//b", "a//b");
	NOMATCH("a/b", "a//b");
	MATCH("a/+/b", "a//b");
	NOMATCH("a/+/b", "a/b");
	MATCH("+/+", "/");
	NOMATCH("+", "/");
	MATCH("/", "/");
	MATCH("+//+", "//");
	MATCH("a/#", "a//");
	/* U+00E9 precomposed vs e + U+0301: different bytes, no match. */
	NOMATCH("caf\xc3\xa9", "cafe\xcc\x81");
}

Test(topic_match, utf8_levels)
{
	MATCH("日本/+/温度", "日本/東京/温度");
	NOMATCH("日本/+/温度", "日本/東京/湿度");
	MATCH("日本/#", "日本");
	MATCH("+/東京", "日本/東京");
	/* '/' never appears inside a multibyte sequence: splitting bytes is right. */
	MATCH("Ελλάδα/+", "Ελλάδα/Αθήνα");
}

Test(topic_match, explicit_lengths)
{
	/* Lengths are honoured: no reading past them. */
	cr_assert(topic_match_n("a/#xyz", 3, "a/b", 3));
	cr_assert(topic_match_n("a/b", 3, "a/bcd", 3));
	cr_assert(!topic_match_n("a/b", 3, "a/bcd", 4));
	cr_assert(!topic_match_n("", 0, "a", 1));
	cr_assert(!topic_match_n("#", 1, "", 0));
	cr_assert(!topic_match_n("#", 1, "a+", 2));
}

/* ---- coverage ---- */

Test(topic_covers, basics)
{
	COVERS("a/#", "a/+/b");
	COVERS("a/#", "a");
	COVERS("a/#", "a/#");
	COVERS("a/#", "a/b/#");
	COVERS("#", "a/b");
	COVERS("#", "#");
	COVERS("#", "+/#");
	COVERS("+/#", "#");          /* both miss $-topics; "+/#" matches "a" as "a" + zero levels */
	NOCOVER("+/+/#", "#");
	NOCOVER("+", "#");
	NOCOVER("a/+/#", "a/#");
	COVERS("a/+", "a/b");
	COVERS("a/+", "a/+");
	COVERS("+/+", "/");
	COVERS("a/b", "a/b");
	COVERS("a/+/#", "a/b/c");
	COVERS("a/+/#", "a/+");
	NOCOVER("a/+", "a/#");
	NOCOVER("a/+", "a");
	NOCOVER("a/+", "a/b/c");
	NOCOVER("a/b", "a/+");
	NOCOVER("a/b", "a/#");
	NOCOVER("a/b", "a/b/c");
	NOCOVER("a/b/c", "a/b");
	NOCOVER("a/+/#", "a");
	NOCOVER("a/+/#", "a/#");
	NOCOVER("a", "+");
	NOCOVER("b/#", "a/#");
	NOCOVER("a/b", "a//b");
}

/* [MQTT-4.7.2-1] applies: a leading wildcard does not cover a '$' filter. */
Test(topic_covers, dollar_MQTT_4_7_2_1)
{
	NOCOVER("#", "$SYS/#");
	NOCOVER("#", "$SYS");
	NOCOVER("+/#", "$SYS/x");
	NOCOVER("+/x", "$SYS/x");
	COVERS("$SYS/#", "$SYS/broker/+");
	COVERS("#", "+/$SYS");       /* '$' not first: ordinary */
	COVERS("+", "+");
}

Test(topic_covers, shared_and_invalid)
{
	COVERS("a/#", "$share/g/a/b");
	NOCOVER("a/b", "$share/g/a/#");
	COVERS("$share/g/a/#", "$share/g/a/b");
	NOCOVER("$share/g/a/#", "$share/h/a/b");
	NOCOVER("$share/g/a/#", "a/b");
	NOCOVER("a/#", "a/b#");
	NOCOVER("a/#x", "a/b");
	NOCOVER("", "a");
	NOCOVER("#", "");
}

/* ---- the subscription tree ---- */

#define MAXHITS 20000

struct hit {
	void *owner;
	char filter[128];
	uint8_t opts;
	uint32_t subid;
};

struct hits {
	struct hit *v;
	size_t n;
};

static void collect(void *arg, void *owner, const char *filter, uint8_t opts, uint32_t subid)
{
	struct hits *h = arg;

	cr_assert_lt(h->n, MAXHITS);
	h->v[h->n].owner = owner;
	snprintf(h->v[h->n].filter, sizeof h->v[h->n].filter, "%s", filter);
	h->v[h->n].opts = opts;
	h->v[h->n].subid = subid;
	h->n++;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	int c = strcmp(x->filter, y->filter);

	if (c != 0)
		return c;
	return (x->owner > y->owner) - (x->owner < y->owner);
}

static struct hits hits_new(void)
{
	struct hits h = { calloc(MAXHITS, sizeof(struct hit)), 0 };

	cr_assert_not_null(h.v);
	return h;
}

static void match_into(const struct subtree *t, const char *topic, struct hits *h)
{
	h->n = 0;
	subtree_match(t, topic, strlen(topic), collect, h);
	qsort(h->v, h->n, sizeof *h->v, hit_cmp);
}

static int add(struct subtree *t, const char *f, void *owner, uint8_t opts, uint32_t subid)
{
	return subtree_add(t, f, strlen(f), owner, opts, subid);
}

static int del(struct subtree *t, const char *f, void *owner)
{
	return subtree_remove(t, f, strlen(f), owner);
}

static int A, B, C;   /* owners: their addresses */

Test(subtree, add_replace_remove)
{
	struct subtree *t = subtree_new();
	struct hits h = hits_new();

	cr_assert_not_null(t);
	cr_assert_eq(add(t, "sport/tennis/+", &A, 1, 0), 0);
	cr_assert_eq(add(t, "sport/#", &A, 0, 7), 0);
	cr_assert_eq(add(t, "sport/tennis/+", &B, 2, 0), 0);
	cr_assert_eq(subtree_count(t), 3);
	/* Replace: same owner, same filter -> new options, count unchanged. */
	cr_assert_eq(add(t, "sport/tennis/+", &A, 2, 9), 1);
	cr_assert_eq(subtree_count(t), 3);

	match_into(t, "sport/tennis/player1", &h);
	cr_assert_eq(h.n, 3);
	cr_assert_str_eq(h.v[0].filter, "sport/#");
	cr_assert_eq(h.v[0].owner, &A);
	cr_assert_eq(h.v[0].subid, 7);
	cr_assert_str_eq(h.v[1].filter, "sport/tennis/+");
	cr_assert_str_eq(h.v[2].filter, "sport/tennis/+");
	for (size_t i = 1; i < 3; i++)
		if (h.v[i].owner == &A)
			cr_assert(h.v[i].opts == 2 && h.v[i].subid == 9);
		else
			cr_assert(h.v[i].owner == &B && h.v[i].opts == 2 && h.v[i].subid == 0);

	match_into(t, "sport", &h);
	cr_assert_eq(h.n, 1);
	match_into(t, "sport/tennis/player1/ranking", &h);
	cr_assert_eq(h.n, 1);

	cr_assert_eq(del(t, "sport/tennis/+", &C), -1);
	cr_assert_eq(del(t, "sport/tennis", &A), -1);
	cr_assert_eq(del(t, "sport/+/+", &A), -1);
	cr_assert_eq(del(t, "sport/tennis/+", &A), 0);
	cr_assert_eq(del(t, "sport/tennis/+", &A), -1);
	cr_assert_eq(subtree_count(t), 2);
	match_into(t, "sport/tennis/player1", &h);
	cr_assert_eq(h.n, 2);
	cr_assert_eq(del(t, "sport/#", &A), 0);
	cr_assert_eq(del(t, "sport/tennis/+", &B), 0);
	cr_assert_eq(subtree_count(t), 0);
	match_into(t, "sport/tennis/player1", &h);
	cr_assert_eq(h.n, 0);
	/* Reusable after being emptied (pruned nodes). */
	cr_assert_eq(add(t, "sport/tennis/+", &A, 0, 0), 0);
	match_into(t, "sport/tennis/x", &h);
	cr_assert_eq(h.n, 1);
	free(h.v);
	subtree_free(t);
}

Test(subtree, invalid_filters_refused)
{
	struct subtree *t = subtree_new();
	char *deep = malloc(2 * (SUBTREE_MAX_LEVELS + 1) + 1);

	cr_assert_not_null(t);
	cr_assert_not_null(deep);
	errno = 0;
	cr_assert_eq(add(t, "a/#/b", &A, 0, 0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(add(t, "", &A, 0, 0), -1);
	cr_assert_eq(add(t, "$share/g", &A, 0, 0), -1);
	cr_assert_eq(del(t, "a+", &A), -1);
	/* SUBTREE_MAX_LEVELS levels are fine, one more is not. */
	for (size_t i = 0; i < SUBTREE_MAX_LEVELS; i++)
		memcpy(deep + 2 * i, "+/", 2);
	deep[2 * SUBTREE_MAX_LEVELS - 1] = '\0';
	cr_assert_eq(add(t, deep, &A, 0, 0), 0);
	deep[2 * SUBTREE_MAX_LEVELS - 1] = '/';
	memcpy(deep + 2 * SUBTREE_MAX_LEVELS, "x", 2);
	cr_assert_eq(add(t, deep, &A, 0, 0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(subtree_count(t), 1);
	free(deep);
	subtree_free(t);
}

Test(subtree, dollar_and_empty_levels_MQTT_4_7_2_1)
{
	struct subtree *t = subtree_new();
	struct hits h = hits_new();

	cr_assert_eq(add(t, "#", &A, 0, 0), 0);
	cr_assert_eq(add(t, "+/monitor/Clients", &A, 0, 0), 0);
	cr_assert_eq(add(t, "$SYS/#", &B, 0, 0), 0);
	cr_assert_eq(add(t, "$SYS/monitor/+", &B, 0, 0), 0);
	cr_assert_eq(add(t, "+/+", &C, 0, 0), 0);
	cr_assert_eq(add(t, "/", &C, 0, 0), 0);
	cr_assert_eq(add(t, "a//b", &C, 0, 0), 0);
	cr_assert_eq(add(t, "a/+/b", &C, 0, 0), 0);

	match_into(t, "$SYS/monitor/Clients", &h);
	cr_assert_eq(h.n, 2);
	cr_assert_eq(h.v[0].owner, &B);
	cr_assert_eq(h.v[1].owner, &B);
	match_into(t, "x/monitor/Clients", &h);
	cr_assert_eq(h.n, 2);            /* "#" and "+/monitor/Clients" */
	match_into(t, "/", &h);
	cr_assert_eq(h.n, 3);            /* "#", "+/+", "/" */
	match_into(t, "a//b", &h);
	cr_assert_eq(h.n, 3);            /* "#", "a//b", "a/+/b" */
	match_into(t, "$SYS", &h);
	cr_assert_eq(h.n, 1);            /* "$SYS/#" (parent level) */
	/* Invalid topics match nothing. */
	match_into(t, "a/+", &h);
	cr_assert_eq(h.n, 0);
	h.n = 0;
	subtree_match(t, "", 0, collect, &h);
	cr_assert_eq(h.n, 0);
	free(h.v);
	subtree_free(t);
}

Test(subtree, shared_reported_with_full_filter)
{
	struct subtree *t = subtree_new();
	struct hits h = hits_new();

	cr_assert_eq(add(t, "$share/g1/sensors/+", &A, 1, 0), 0);
	cr_assert_eq(add(t, "$share/g1/sensors/+", &B, 1, 0), 0);
	cr_assert_eq(add(t, "$share/g2/sensors/+", &B, 1, 0), 0);
	cr_assert_eq(add(t, "sensors/+", &B, 1, 0), 0);          /* distinct from the shared ones */
	cr_assert_eq(add(t, "$share/g1/sensors/+", &A, 2, 0), 1);
	cr_assert_eq(subtree_count(t), 4);
	match_into(t, "sensors/t1", &h);
	cr_assert_eq(h.n, 4);
	cr_assert_str_eq(h.v[0].filter, "$share/g1/sensors/+");
	cr_assert_str_eq(h.v[1].filter, "$share/g1/sensors/+");
	cr_assert_str_eq(h.v[2].filter, "$share/g2/sensors/+");
	cr_assert_str_eq(h.v[3].filter, "sensors/+");
	match_into(t, "$share/g1/sensors/t1", &h);
	cr_assert_eq(h.n, 0);
	cr_assert_eq(del(t, "sensors/+", &A), -1);
	cr_assert_eq(del(t, "$share/g2/sensors/+", &A), -1);
	cr_assert_eq(del(t, "$share/g1/sensors/+", &A), 0);
	match_into(t, "sensors/t1", &h);
	cr_assert_eq(h.n, 3);
	cr_assert_eq(subtree_remove_owner(t, &B), 3);
	cr_assert_eq(subtree_count(t), 0);
	free(h.v);
	subtree_free(t);
}

Test(subtree, remove_owner_many_owners)
{
	enum { OWNERS = 500 };
	static char owners[OWNERS];
	struct subtree *t = subtree_new();
	struct hits h = hits_new();
	char f[64];

	for (int i = 0; i < OWNERS; i++) {
		cr_assert_eq(add(t, "fleet/+/status", &owners[i], 1, 0), 0);
		snprintf(f, sizeof f, "fleet/dev%d/cmd/#", i);
		cr_assert_eq(add(t, f, &owners[i], 1, (uint32_t)i + 1), 0);
		cr_assert_eq(add(t, "#", &owners[i], 0, 0), 0);
	}
	cr_assert_eq(subtree_count(t), 3 * OWNERS);
	match_into(t, "fleet/dev7/status", &h);
	cr_assert_eq(h.n, 2 * OWNERS);
	match_into(t, "fleet/dev7/cmd/reboot", &h);
	cr_assert_eq(h.n, OWNERS + 1);
	cr_assert_eq(subtree_remove_owner(t, &owners[7]), 3);
	cr_assert_eq(subtree_remove_owner(t, &owners[7]), 0);
	cr_assert_eq(subtree_count(t), 3 * OWNERS - 3);
	match_into(t, "fleet/dev7/cmd/reboot", &h);
	cr_assert_eq(h.n, OWNERS - 1);
	for (size_t i = 0; i < h.n; i++)
		cr_assert_neq(h.v[i].owner, &owners[7]);
	for (int i = 0; i < OWNERS; i += 2)
		subtree_remove_owner(t, &owners[i]);
	match_into(t, "fleet/dev9/status", &h);
	cr_assert_eq(h.n, 2 * (OWNERS / 2 - 1));         /* odd owners but 7 */
	for (size_t i = 0; i < h.n; i++)
		cr_assert_eq(((char *)h.v[i].owner - owners) % 2, 1);
	for (int i = 1; i < OWNERS; i += 2)
		cr_assert_eq(subtree_remove_owner(t, &owners[i]), i == 7 ? 0 : 3);
	cr_assert_eq(subtree_count(t), 0);
	match_into(t, "fleet/dev9/status", &h);
	cr_assert_eq(h.n, 0);
	free(h.v);
	subtree_free(t);
}

Test(subtree, wildcard_combinations)
{
	static const char *filters[] = { "#", "+", "+/#", "+/+", "a", "a/#", "a/+", "a/b", "a/b/#",
	                                 "a/+/c", "+/b/+", "+/+/+", "/#", "+/", "a//c", "$a/#" };
	static const struct {
		const char *topic;
		unsigned mask;            /* bit i: filters[i] matches */
	} cases[] = {
		{ "a", 0x0001 | 0x0002 | 0x0004 | 0x0010 | 0x0020 },
		{ "a/b", 0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0080 | 0x0100 },
		{ "a/b/c", 0x0001 | 0x0004 | 0x0020 | 0x0100 | 0x0200 | 0x0400 | 0x0800 },
		{ "a//c", 0x0001 | 0x0004 | 0x0020 | 0x0200 | 0x0800 | 0x4000 },
		{ "/", 0x0001 | 0x0004 | 0x0008 | 0x1000 | 0x2000 },
		{ "x/", 0x0001 | 0x0004 | 0x0008 | 0x2000 },
		{ "$a", 0x8000 },
		{ "$a/b", 0x8000 },
	};
	struct subtree *t = subtree_new();
	struct hits h = hits_new();
	const size_t nf = sizeof filters / sizeof filters[0];

	for (size_t i = 0; i < nf; i++)
		cr_assert_eq(add(t, filters[i], &A, 0, (uint32_t)i), 0);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		unsigned got = 0;

		match_into(t, cases[c].topic, &h);
		for (size_t i = 0; i < h.n; i++) {
			cr_assert_eq(got & (1u << h.v[i].subid), 0, "twice: %s", h.v[i].filter);
			got |= 1u << h.v[i].subid;
		}
		cr_assert_eq(got, cases[c].mask, "topic %s: got %#x, expected %#x", cases[c].topic, got,
		             cases[c].mask);
		/* topic_match agrees with the table too. */
		for (size_t i = 0; i < nf; i++)
			cr_assert_eq(topic_match(filters[i], cases[c].topic), (cases[c].mask >> i) & 1,
			             "%s vs %s", filters[i], cases[c].topic);
	}
	free(h.v);
	subtree_free(t);
}

Test(subtree, ten_thousand_subscriptions, .timeout = 30)
{
	enum { N = 10000 };
	static char owners[100];
	struct subtree *t = subtree_new();
	struct hits h = hits_new();
	char f[64], topic[64];

	/* dev/<i>/temp for each i, owner i % 100; plus dev/+/temp for owner 0
	 * and site/<i % 10>/# for owner 1. */
	for (int i = 0; i < N; i++) {
		snprintf(f, sizeof f, "dev/%d/temp", i);
		cr_assert_eq(add(t, f, &owners[i % 100], 1, (uint32_t)i), 0);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(f, sizeof f, "site/%d/#", i);
		cr_assert_eq(add(t, f, &owners[1], 0, 0), 0);
	}
	cr_assert_eq(add(t, "dev/+/temp", &owners[0], 0, 0), 0);
	cr_assert_eq(subtree_count(t), N + 11);
	for (int i = 0; i < N; i += 37) {
		snprintf(topic, sizeof topic, "dev/%d/temp", i);
		match_into(t, topic, &h);
		cr_assert_eq(h.n, 2, "%s", topic);
		snprintf(f, sizeof f, "dev/%d/temp", i);
		cr_assert(strcmp(h.v[0].filter, "dev/+/temp") == 0 && h.v[0].owner == &owners[0]);
		cr_assert(strcmp(h.v[1].filter, f) == 0 && h.v[1].owner == &owners[i % 100] &&
		          h.v[1].subid == (uint32_t)i);
	}
	match_into(t, "dev/10000/temp", &h);
	cr_assert_eq(h.n, 1);
	match_into(t, "site/3/a/b", &h);
	cr_assert_eq(h.n, 1);
	/* Remove half the exact ones, check the rest are intact. */
	for (int i = 0; i < N; i += 2) {
		snprintf(f, sizeof f, "dev/%d/temp", i);
		cr_assert_eq(del(t, f, &owners[i % 100]), 0);
	}
	cr_assert_eq(subtree_count(t), N / 2 + 11);
	for (int i = 0; i < 200; i++) {
		snprintf(topic, sizeof topic, "dev/%d/temp", i);
		match_into(t, topic, &h);
		cr_assert_eq(h.n, i % 2 ? 2 : 1, "%s", topic);
	}
	/* Owner 1 had dev/<i>/temp for odd i with i % 100 == 1, and 10 site filters. */
	cr_assert_eq(subtree_remove_owner(t, &owners[1]), N / 100 + 10);
	free(h.v);
	subtree_free(t);
}

/* ---- property: the tree agrees with brute force over topic_match ---- */

/* An independent matcher: recursion over levels, written from the spec. */
static bool ref_match(const char *f, const char *t, bool first)
{
	const char *fe = strchr(f, '/'), *te = strchr(t, '/');
	size_t fl = fe ? (size_t)(fe - f) : strlen(f), tl = te ? (size_t)(te - t) : strlen(t);

	if (fl == 1 && f[0] == '#')
		return !(first && t[0] == '$');
	if (fl == 1 && f[0] == '+') {
		if (first && t[0] == '$')
			return false;
	} else if (fl != tl || memcmp(f, t, fl) != 0) {
		return false;
	}
	if (fe == NULL)
		return te == NULL;
	if (te == NULL)              /* topic done: only a trailing "/#" matches the parent */
		return strcmp(fe + 1, "#") == 0;
	return ref_match(fe + 1, te + 1, false);
}

struct prop_sub {
	char filter[64];
	int owner;
	uint8_t opts;
	bool live;
};

static uint32_t prng_state;

static uint32_t prng(void)
{
	/* xorshift32: fixed seed, reproducible */
	prng_state ^= prng_state << 13;
	prng_state ^= prng_state >> 17;
	prng_state ^= prng_state << 5;
	return prng_state;
}

static const char *const levels[] = { "a", "b", "c", "", "$x", "ab", "日" };
#define NLEVELS (sizeof levels / sizeof levels[0])

static void random_topic(char *out, size_t cap, bool filter)
{
	int n = 1 + (int)(prng() % 4);

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		const char *l = levels[prng() % NLEVELS];
		uint32_t r = prng() % 10;

		if (filter && r < 3)
			l = "+";
		else if (filter && r == 3 && i == n - 1)
			l = "#";
		if (i > 0)
			strncat(out, "/", cap - strlen(out) - 1);
		strncat(out, l, cap - strlen(out) - 1);
	}
	if (out[0] == '\0')         /* "" is no name nor filter */
		snprintf(out, cap, "%s", filter ? "+" : "a");
	if (filter && prng() % 8 == 0) {
		char tmp[64];

		snprintf(tmp, sizeof tmp, "$share/g%u/%s", prng() % 2, out);
		snprintf(out, cap, "%s", tmp);
	}
}

Test(subtree, property_vs_brute_force, .timeout = 60)
{
	enum { NSUBS = 400, NOWNERS = 12, ROUNDS = 3000 };
	static struct prop_sub subs[NSUBS];
	static char owners[NOWNERS];
	struct subtree *t = subtree_new();
	struct hits h = hits_new(), want = hits_new();
	size_t live = 0;

	prng_state = 0x9e3779b9u;
	for (int round = 0; round < ROUNDS; round++) {
		uint32_t op = prng() % 10;
		int i = (int)(prng() % NSUBS);
		char topic[64];

		if (op < 5) {            /* add or replace slot i */
			struct prop_sub *s = &subs[i];
			int r, dup = 0;

			if (s->live) {
				cr_assert_eq(del(t, s->filter, &owners[s->owner]), 0);
				s->live = false;
				live--;
			}
			random_topic(s->filter, sizeof s->filter, true);
			s->owner = (int)(prng() % NOWNERS);
			s->opts = (uint8_t)prng();
			/* Another live slot may hold the same pair: that is a replace. */
			for (int j = 0; j < NSUBS; j++)
				if (subs[j].live && subs[j].owner == s->owner &&
				    strcmp(subs[j].filter, s->filter) == 0) {
					subs[j].live = false;
					live--;
					dup = 1;
				}
			r = add(t, s->filter, &owners[s->owner], s->opts, (uint32_t)i);
			cr_assert_eq(r, dup, "add %s: %d", s->filter, r);
			s->live = true;
			live++;
		} else if (op < 7) {     /* remove slot i */
			if (subs[i].live) {
				cr_assert_eq(del(t, subs[i].filter, &owners[subs[i].owner]), 0);
				subs[i].live = false;
				live--;
			}
		} else if (op == 7 && prng() % 20 == 0) {    /* drop a whole owner, rarely */
			int o = (int)(prng() % NOWNERS);
			size_t n = 0;

			for (int j = 0; j < NSUBS; j++)
				if (subs[j].live && subs[j].owner == o) {
					subs[j].live = false;
					n++;
				}
			cr_assert_eq(subtree_remove_owner(t, &owners[o]), n);
			live -= n;
		}
		cr_assert_eq(subtree_count(t), live);

		random_topic(topic, sizeof topic, false);
		want.n = 0;
		for (int j = 0; j < NSUBS; j++) {
			const char *inner;
			size_t ilen;
			bool m;

			if (!subs[j].live)
				continue;
			m = topic_match(subs[j].filter, topic);
			if (topic_filter_shared(subs[j].filter, strlen(subs[j].filter), NULL, NULL, &inner,
			                        &ilen) == 1)
				cr_assert_eq(m, ref_match(inner, topic, true), "%s vs %s", subs[j].filter,
				             topic);
			else
				cr_assert_eq(m, ref_match(subs[j].filter, topic, true), "%s vs %s",
				             subs[j].filter, topic);
			if (m)
				collect(&want, &owners[subs[j].owner], subs[j].filter, subs[j].opts,
				        (uint32_t)j);
		}
		qsort(want.v, want.n, sizeof *want.v, hit_cmp);
		match_into(t, topic, &h);
		cr_assert_eq(h.n, want.n, "round %d topic %s: tree %zu, brute force %zu", round, topic,
		             h.n, want.n);
		for (size_t k = 0; k < h.n; k++) {
			cr_assert_eq(hit_cmp(&h.v[k], &want.v[k]), 0, "round %d topic %s: %s vs %s", round,
			             topic, h.v[k].filter, want.v[k].filter);
			cr_assert_eq(h.v[k].opts, want.v[k].opts);
			cr_assert_eq(h.v[k].subid, want.v[k].subid);
		}
	}
	free(h.v);
	free(want.v);
	subtree_free(t);
}

/* ---- property: covers() is exactly "every topic narrow matches, wide
 * matches", over every filter of up to 3 levels from a small alphabet and
 * every topic of up to 4 levels (enough for a counterexample to exist:
 * one level more than any filter, and a level no filter names). ---- */

static size_t enumerate(const char *const *alpha, size_t na, int maxlev, char (*out)[32], size_t cap)
{
	size_t n = 0, first = 0, last;

	for (size_t i = 0; i < na; i++)
		snprintf(out[n++], 32, "%s", alpha[i]);
	for (int lev = 2; lev <= maxlev; lev++) {
		last = n;
		for (size_t p = first; p < last; p++)
			for (size_t i = 0; i < na; i++) {
				cr_assert_lt(n, cap);
				snprintf(out[n++], 32, "%s/%s", out[p], alpha[i]);
			}
		first = last;
	}
	return n;
}

Test(topic_covers, exhaustive_small_universe, .timeout = 60)
{
	static const char *const falpha[] = { "a", "$x", "", "+", "#" };
	static const char *const talpha[] = { "a", "$x", "", "z" };
	static char filters[200][32], topics[400][32];
	size_t nf = enumerate(falpha, 5, 3, filters, 200);
	size_t nt = enumerate(talpha, 4, 4, topics, 400);
	static bool m[200][400];
	size_t checked = 0, covered = 0;

	for (size_t i = 0; i < nf; i++)
		for (size_t k = 0; k < nt; k++)
			m[i][k] = topic_match(filters[i], topics[k]);
	for (size_t w = 0; w < nf; w++) {
		if (filter_ok(filters[w]) != 0)
			continue;
		for (size_t n = 0; n < nf; n++) {
			bool want = true, got;

			if (filter_ok(filters[n]) != 0)
				continue;
			for (size_t k = 0; k < nt && want; k++)
				if (m[n][k] && !m[w][k])
					want = false;
			got = topic_filter_covers(filters[w], filters[n]);
			cr_assert_eq(got, want, "covers(\"%s\", \"%s\") = %d", filters[w], filters[n], got);
			checked++;
			covered += got;
		}
	}
	/* The universe is not degenerate. */
	cr_assert_gt(checked, 5000);
	cr_assert_gt(covered, 300);
	cr_assert_lt(covered, checked / 2);
}
