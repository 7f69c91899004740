/* Queue objects through chanctl and a real agent: define, alter,
 * display (table, --json, patterns), delete, and their refusals. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static struct th_agent ag;

static void init(void)
{
	cr_assert_eq(th_agent_start(&ag, "QMQ", NULL, NULL), 0);
}

static void fini(void)
{
	th_agent_kill9(&ag);
	th_rmtree(ag.dir);
}

TestSuite(queues, .init = init, .fini = fini, .timeout = 60);

/* Runs chanctl; expects exit code want; returns stdout (caller frees),
 * stderr in *err if err is non-NULL. */
static char *ctl(int want, char **err, const char *args)
{
	char *out = NULL, *e = NULL;
	int rc = th_ctl(&ag, NULL, &out, &e, "%s", args);

	cr_assert_eq(rc, want, "chanctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", args, rc, want,
	             out ? out : "", e ? e : "");
	if (err != NULL)
		*err = e;
	else
		free(e);
	return out;
}

static json_t *display_json(const char *pattern)
{
	char args[200];
	json_error_t je;

	snprintf(args, sizeof(args), "--json display queue '%s'", pattern);
	char *out = ctl(0, NULL, args);
	json_t *j = json_loads(out, 0, &je);
	cr_assert(json_is_array(j), "not a JSON array: %s", out);
	free(out);
	return j;
}

static json_t *one(const char *name)
{
	json_t *a = display_json(name);
	cr_assert_eq(json_array_size(a), 1);
	json_t *q = json_incref(json_array_get(a, 0));
	json_decref(a);
	return q;
}

#define JSTR(o, k) json_string_value(json_object_get((o), (k)))
#define JINT(o, k) json_integer_value(json_object_get((o), (k)))

Test(queues, define_display_alter_delete)
{
	free(ctl(0, NULL, "define qlocal APP.IN --maxdepth 10 --maxmsgl 2048 --descr 'orders in'"));
	free(ctl(0, NULL, "define qlocal QM2 --usage xmitq"));
	free(ctl(0, NULL, "define qremote APP.OUT --rname APP.IN --rqmname QM2"));

	json_t *q = one("APP.IN");
	cr_expect_str_eq(JSTR(q, "name"), "APP.IN");
	cr_expect_str_eq(JSTR(q, "type"), "qlocal");
	cr_expect_str_eq(JSTR(q, "usage"), "normal");
	cr_expect_eq(JINT(q, "curdepth"), 0);
	cr_expect_eq(JINT(q, "maxdepth"), 10);
	cr_expect_eq(JINT(q, "maxmsgl"), 2048);
	cr_expect_str_eq(JSTR(q, "put"), "enabled");
	cr_expect_str_eq(JSTR(q, "get"), "enabled");
	cr_expect_str_eq(JSTR(q, "descr"), "orders in");
	cr_expect(json_is_null(json_object_get(q, "rname")));
	json_decref(q);

	q = one("APP.OUT");
	cr_expect_str_eq(JSTR(q, "type"), "qremote");
	cr_expect_str_eq(JSTR(q, "rname"), "APP.IN");
	cr_expect_str_eq(JSTR(q, "rqmname"), "QM2");
	cr_expect_str_eq(JSTR(q, "xmitq"), "QM2");   /* default: named like RQMNAME */
	cr_expect(json_is_null(json_object_get(q, "curdepth")));
	json_decref(q);

	q = one("QM2");
	cr_expect_str_eq(JSTR(q, "usage"), "xmitq");
	json_decref(q);

	/* Only the given attributes change. */
	free(ctl(0, NULL, "alter qlocal APP.IN --maxdepth 20 --put disabled"));
	q = one("APP.IN");
	cr_expect_eq(JINT(q, "maxdepth"), 20);
	cr_expect_eq(JINT(q, "maxmsgl"), 2048);
	cr_expect_str_eq(JSTR(q, "put"), "disabled");
	cr_expect_str_eq(JSTR(q, "descr"), "orders in");
	json_decref(q);
	free(ctl(0, NULL, "alter qremote APP.OUT --rname OTHER"));
	q = one("APP.OUT");
	cr_expect_str_eq(JSTR(q, "rname"), "OTHER");
	cr_expect_str_eq(JSTR(q, "rqmname"), "QM2");
	json_decref(q);

	/* The table. */
	char *out = ctl(0, NULL, "display queue");
	const char *head = "NAME     TYPE     USAGE   CURDEPTH  MAXDEPTH  MAXMSGL  PUT       GET"
	                   "      RNAME  RQMNAME  XMITQ\n";
	cr_expect(strncmp(out, head, strlen(head)) == 0, "%s", out);
	cr_expect(strstr(out, "\nAPP.IN   qlocal   normal  0         20        2048     disabled  "
	                      "enabled  -      -        -\n") != NULL, "%s", out);
	cr_expect(strstr(out, "\nAPP.OUT  qremote  -       -         -         -        enabled   "
	                      "-        OTHER  QM2      QM2\n") != NULL, "%s", out);
	free(out);

	free(ctl(0, NULL, "delete queue APP.OUT"));
	free(ctl(0, NULL, "delete queue APP.IN"));
	json_t *all = display_json("*");
	cr_expect_eq(json_array_size(all), 1);
	json_decref(all);
}

Test(queues, patterns)
{
	free(ctl(0, NULL, "define qlocal A.IN"));
	free(ctl(0, NULL, "define qlocal B.IN"));
	free(ctl(0, NULL, "define qlocal A.OUT"));
	json_t *a = display_json("A.*");
	cr_expect_eq(json_array_size(a), 2);
	cr_expect_str_eq(JSTR(json_array_get(a, 0), "name"), "A.IN");
	cr_expect_str_eq(JSTR(json_array_get(a, 1), "name"), "A.OUT");
	json_decref(a);
	a = display_json("*.IN");
	cr_expect_eq(json_array_size(a), 2);
	json_decref(a);
	a = display_json("*OU*");
	cr_expect_eq(json_array_size(a), 1);
	json_decref(a);
	/* A pattern matching nothing is an empty list; a name, an error. */
	a = display_json("Z*");
	cr_expect_eq(json_array_size(a), 0);
	json_decref(a);
	char *err;
	free(ctl(1, &err, "display queue NOPE"));
	cr_expect_str_eq(err, "chanctl: queue 'NOPE' is not defined (CHD2001)\n");
	free(err);
	free(ctl(1, &err, "display queue 'A*B*'"));
	cr_expect(strstr(err, "'*' only at the start or end (CHD2006)") != NULL, "%s", err);
	free(err);
}

Test(queues, refusals)
{
	char *err;

	free(ctl(0, NULL, "define qlocal Q1"));
	free(ctl(1, &err, "define qlocal Q1"));
	cr_expect_str_eq(err, "chanctl: queue 'Q1' already exists (use --replace to redefine it) "
	                      "(CHD2005)\n");
	free(err);
	free(ctl(0, NULL, "define qlocal Q1 --replace --maxdepth 7"));

	free(ctl(1, &err, "alter qremote Q1 --rname X"));
	cr_expect_str_eq(err, "chanctl: queue 'Q1' is a qlocal, not a qremote (CHD2001)\n");
	free(err);
	free(ctl(1, &err, "alter qlocal NOPE --maxdepth 3"));
	cr_expect(strstr(err, "NOPE") && strstr(err, "(CHD2001)"), "%s", err);
	free(err);
	free(ctl(1, &err, "delete queue NOPE"));
	cr_expect(strstr(err, "(CHD2001)") != NULL, "%s", err);
	free(err);

	/* Invalid names are refused before reaching the agent. */
	free(ctl(1, &err, "define qlocal 'BAD NAME'"));
	cr_expect_str_eq(err, "chanctl: invalid queue name: name 'BAD NAME' has ' ' at position 4 "
	                      "(allowed: A-Z a-z 0-9 . _ / %) (CHD2006)\n");
	free(err);
	free(ctl(1, &err, "define qlocal AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDDEEEEEEEEE"));
	cr_expect(strstr(err, "is 49 characters long (at most 48) (CHD2006)") != NULL, "%s", err);
	free(err);
	free(ctl(1, &err, "define qremote R --rname 'x:y' --rqmname QM2"));
	cr_expect(strstr(err, "invalid --rname") && strstr(err, "(CHD2006)"), "%s", err);
	free(err);

	/* Usage: what is missing or malformed, exit 2. */
	free(ctl(2, &err, "define qremote R --rname X"));
	cr_expect_str_eq(err, "chanctl: define qremote needs --rname Q and --rqmname QM\n");
	free(err);
	free(ctl(2, &err, "alter qlocal Q1"));
	cr_expect(strstr(err, "nothing to alter") != NULL, "%s", err);
	free(err);
	free(ctl(2, &err, "define qlocal Q2 --usage fast"));
	cr_expect_str_eq(err, "chanctl: --usage wants one of: normal, xmitq (got 'fast')\n");
	free(err);

	/* A transmission queue in use by a remote definition stays. */
	free(ctl(0, NULL, "define qlocal XQ --usage xmitq"));
	free(ctl(0, NULL, "define qremote R --rname T --rqmname QMX --xmitq XQ"));
	free(ctl(1, &err, "delete queue XQ"));
	cr_expect_str_eq(err, "chanctl: queue 'XQ' is the transmission queue of remote queue 'R' "
	                      "(CHD2011)\n");
	free(err);
}

Test(queues, delete_non_empty_needs_purge)
{
	char *err, *out;

	free(ctl(0, NULL, "define qlocal FULL"));
	cr_assert_eq(th_ctl(&ag, "one\ntwo\nthree\n", NULL, NULL, "put FULL"), 0);
	free(ctl(1, &err, "delete queue FULL"));
	cr_expect_str_eq(err, "chanctl: queue 'FULL' holds 3 messages (use --purge to delete it "
	                      "with them) (CHD2004)\n");
	free(err);
	json_t *q = one("FULL");
	cr_expect_eq(JINT(q, "curdepth"), 3);
	json_decref(q);
	out = ctl(0, NULL, "delete queue FULL --purge");
	cr_expect_str_eq(out, "queue FULL deleted (3 messages purged).\n");
	free(out);
	free(ctl(1, NULL, "display queue FULL"));
}

Test(queues, replace_keeps_messages)
{
	free(ctl(0, NULL, "define qlocal KEEP"));
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "put KEEP -m kept"), 0);
	free(ctl(0, NULL, "define qlocal KEEP --replace --maxdepth 50"));
	json_t *q = one("KEEP");
	cr_expect_eq(JINT(q, "curdepth"), 1);
	cr_expect_eq(JINT(q, "maxdepth"), 50);
	json_decref(q);
	char *out = ctl(0, NULL, "get KEEP");
	cr_expect_str_eq(out, "kept\n");
	free(out);
}
