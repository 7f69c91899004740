/* Operations: chanctl run/dump (MQSC) against real agents, explain, the
 * bash completion (sourced in bash), the systemd unit and snippets, and
 * every console example of doc/OPERATIONS.md. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <grp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(ops, .timeout = 240);

#define JSTR(o, k) json_string_value(json_object_get((o), (k)))
#define JINT(o, k) json_integer_value(json_object_get((o), (k)))

static char *srcpath(const char *rel)
{
	const char *top = getenv("TEST_SRCDIR");
	char *p;

	cr_assert_gt(asprintf(&p, "%s/%s", top ? top : TEST_SRCDIR, rel), 0);
	return p;
}

/* chanctl on agent a; asserts the exit code; returns stdout. */
static char *ctl(struct th_agent *a, const char *in, int want, char **err, const char *args)
{
	char *out = NULL, *e = NULL;
	int rc = th_ctl(a, in, &out, &e, "%s", args);

	cr_assert_eq(rc, want, "chanctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", args, rc, want,
	             out ? out : "", e ? e : "");
	if (err != NULL)
		*err = e;
	else
		free(e);
	return out ? out : strdup("");
}

static json_t *display_one(struct th_agent *a, const char *what, const char *name)
{
	char args[300];
	json_error_t je;

	snprintf(args, sizeof(args), "--json display %s '%s'", what, name);
	char *out = ctl(a, NULL, 0, NULL, args);
	json_t *all = json_loads(out, 0, &je);
	cr_assert(json_is_array(all) && json_array_size(all) == 1, "%s", out);
	free(out);
	json_t *o = json_incref(json_array_get(all, 0));
	json_decref(all);
	return o;
}

static void start(struct th_agent *a, const char *qm)
{
	cr_assert_eq(th_agent_start(a, qm, NULL, NULL), 0);
}

static void stop(struct th_agent *a)
{
	th_agent_stop(a);
	th_rmtree(a->dir);
}

static char *write_temp(const char *dir, const char *name, const char *text)
{
	char *p;
	FILE *f;

	cr_assert_gt(asprintf(&p, "%s/%s", dir, name), 0);
	f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	return p;
}

/* "N commands read, N succeeded, 0 failed" with N the same twice. */
static void expect_all_succeeded(const char *out, const char *what)
{
	const char *s = strstr(out, " commands read, ");
	cr_assert_not_null(s, "%s: no summary in\n%s", what, out);
	while (s > out && s[-1] >= '0' && s[-1] <= '9')
		s--;
	unsigned read = 0, ok = 0, bad = 1;
	cr_assert_eq(sscanf(s, "%u commands read, %u succeeded, %u failed", &read, &ok, &bad), 3,
	             "%s", s);
	cr_expect_gt(read, 0);
	cr_expect_eq(ok, read, "%s: %s", what, s);
	cr_expect_eq(bad, 0, "%s: %s", what, s);
}

/* ---- the corpus: run, dump, run the dump elsewhere, dump again ---- */

/* Every definition as --json display shows it, without what differs
 * between two agents holding the same definitions (times, depths). */
static json_t *definitions(struct th_agent *a)
{
	static const char *const state[] = { "created", "altered", "oldest_put_time", "curdepth" };
	json_t *all = json_object();

	for (int w = 0; w < 2; w++) {
		char *out = ctl(a, NULL, 0, NULL, w ? "--json display channel" : "--json display queue");
		json_t *v = json_loads(out, 0, NULL), *o;
		size_t i;
		cr_assert(json_is_array(v), "%s", out);
		json_array_foreach(v, i, o)
			for (size_t k = 0; k < sizeof(state) / sizeof(state[0]); k++)
				json_object_del(o, state[k]);
		json_object_set_new(all, w ? "channels" : "queues", v);
		free(out);
	}
	return all;
}

Test(ops, corpus_round_trips_through_run_and_dump)
{
	char *dir = srcpath("tests/mqsc");
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), files = 0;

	cr_assert_gt(n, 0, "%s", dir);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t l = strlen(name);
		if (l < 6 || strcmp(name + l - 5, ".mqsc") != 0) {
			free(ents[i]);
			continue;
		}
		struct th_agent a, b;
		char args[600];
		files++;
		start(&a, "QMA");
		snprintf(args, sizeof(args), "run '%s/%s'", dir, name);
		char *out = ctl(&a, NULL, 0, NULL, args);
		expect_all_succeeded(out, name);
		free(out);
		char *d1 = ctl(&a, NULL, 0, NULL, "dump");
		cr_expect(strncmp(d1, "* chanctl dump: ", 16) == 0, "%s", d1);
		cr_expect_gt(th_count(d1, "REPLACE\n"), 2, "%s: %s", name, d1);

		/* The dump, from stdin, into a fresh agent, then dumped again. */
		start(&b, "QMB");
		out = ctl(&b, d1, 0, NULL, "run");
		expect_all_succeeded(out, "the dump");
		free(out);
		char *d2 = ctl(&b, NULL, 0, NULL, "dump");
		cr_expect_str_eq(d2, d1, "%s: the dump of the restored agent differs", name);
		/* The same definitions, attribute by attribute, not just the same text. */
		json_t *ja = definitions(&a), *jb = definitions(&b);
		char *sa = json_dumps(ja, JSON_SORT_KEYS), *sb = json_dumps(jb, JSON_SORT_KEYS);
		cr_expect_gt(json_array_size(json_object_get(ja, "channels")), 1, "%s", name);
		cr_expect(json_equal(ja, jb), "%s: definitions differ after restore:\n%s\n%s", name, sa,
		          sb);
		free(sa);
		free(sb);
		json_decref(ja);
		json_decref(jb);
		free(d1);
		free(d2);
		stop(&a);
		stop(&b);
		free(ents[i]);
	}
	free(ents);
	free(dir);
	cr_expect_geq(files, 3);
}

/* What the corpus says arrives intact on the restored agent. */
Test(ops, restored_definitions_match_the_script)
{
	struct th_agent a, b;
	char *file = srcpath("tests/mqsc/two-site-qm1.mqsc"), args[600];

	start(&a, "QM1");
	snprintf(args, sizeof(args), "run '%s'", file);
	free(ctl(&a, NULL, 0, NULL, args));
	char *d = ctl(&a, NULL, 0, NULL, "dump");
	start(&b, "QM1");
	free(ctl(&b, d, 0, NULL, "run -"));
	free(d);

	json_t *ch = display_one(&b, "channel", "QM1.TO.QM2");
	cr_expect_str_eq(JSTR(ch, "type"), "sdr");
	cr_expect_str_eq(JSTR(ch, "conname"),
	                 "qm2.site-b.example.com(1414),qm2-dr.site-b.example.com(1414)");
	cr_expect_str_eq(JSTR(ch, "sslpeer"), "CN=QM2, OU=Payments, O=\"Acme Bank, Ltd.\", C=GB");
	cr_expect_str_eq(JSTR(ch, "sslciph"), "TLS_AES_256_GCM_SHA384");
	cr_expect_str_eq(JSTR(ch, "certlabl"), "qm1");
	cr_expect_eq(JINT(ch, "batchsz"), 200);      /* the later ALTER */
	cr_expect_eq(JINT(ch, "batchint"), 50);
	cr_expect_eq(JINT(ch, "longtmr"), 600);
	json_decref(ch);
	ch = display_one(&b, "channel", "QM2.BATCH");
	cr_expect_str_eq(JSTR(ch, "type"), "rqstr");
	cr_expect_str_eq(JSTR(ch, "sslcauth"), "optional");
	cr_expect_str_eq(JSTR(ch, "sslpeer"), "CN=QM2*, O=\"Acme Bank, Ltd.\"");
	json_decref(ch);
	json_t *q = display_one(&b, "queue", "payments.audit");
	cr_expect_str_eq(JSTR(q, "descr"), "Audit copies; it's read by the \"compliance\" team");
	cr_expect_eq(JINT(q, "maxdepth"), 1000000);
	json_decref(q);
	q = display_one(&b, "queue", "PAYMENTS.IN");
	cr_expect_eq(JINT(q, "maxdepth"), 250000);
	json_decref(q);
	q = display_one(&b, "queue", "STATUS.TO.QM2");
	cr_expect_str_eq(JSTR(q, "xmitq"), "QM2");
	json_decref(q);
	char *err = NULL;
	free(ctl(&b, NULL, 1, &err, "display queue TEMP.MIGRATION"));
	cr_expect(strstr(err, "CHD2001") != NULL, "%s", err);
	free(err);
	stop(&a);
	stop(&b);
	free(file);
}

/* ---- refusals ---- */

Test(ops, unsupported_attribute_is_named_and_not_executed)
{
	struct th_agent a;
	char *err = NULL;

	start(&a, "QM1");
	char *out = ctl(&a, "DEFINE QLOCAL(BEFORE) REPLACE\n"
	                "DEFINE CHANNEL(TO.QM2) CHLTYPE(SDR) +\n"
	                "   CONNAME('qm2(1414)') XMITQ(BEFORE) +\n"
	                "   NPMSPEED(FAST) REPLACE\n"
	                "DEFINE QLOCAL(AFTER) REPLACE\n", 1, &err, "run");
	cr_expect_str_eq(err, "line 4: DEFINE CHANNEL(TO.QM2): attribute NPMSPEED is not supported\n");
	cr_expect(strstr(out, "     2 : DEFINE CHANNEL(TO.QM2) CHLTYPE(SDR) CONNAME") != NULL, "%s",
	          out);
	cr_expect(strstr(out, "3 commands read, 2 succeeded, 1 failed\n") != NULL, "%s", out);
	free(out);
	free(err);
	/* Not executed; the commands around it were. */
	free(ctl(&a, NULL, 1, NULL, "display channel TO.QM2"));
	free(ctl(&a, NULL, 0, NULL, "display queue AFTER"));
	free(ctl(&a, NULL, 0, NULL, "display queue BEFORE"));
	stop(&a);
}

Test(ops, syntax_errors_and_failing_commands_are_counted)
{
	struct th_agent a;
	char *err = NULL;

	start(&a, "QM1");
	char *out = ctl(&a, "* two errors, then a good command\n"
	                "DEFINE QLOCAL(A) DESCR('never closed\n"
	                "DELETE QLOCAL(NOT.THERE)\n"
	                "DEFINE QLOCAL(B)\n", 1, &err, "run -");
	cr_expect(strstr(err, "line 2: DEFINE QLOCAL(A): unterminated quoted string in the value of "
	                  "DESCR (opened on line 2)\n") != NULL, "%s", err);
	/* A command chand refuses fails with chanctl's own message. */
	cr_expect(strstr(err, "chanctl: queue 'NOT.THERE' is not defined (CHD2001)") != NULL, "%s",
	          err);
	cr_expect(strstr(out, "3 commands read, 1 succeeded, 2 failed\n") != NULL, "%s", out);
	free(out);
	free(err);
	free(ctl(&a, NULL, 0, NULL, "display queue B"));
	free(ctl(&a, NULL, 1, NULL, "display queue A"));
	stop(&a);
}

Test(ops, run_stops_when_the_agent_is_gone)
{
	char *out = NULL, *err = NULL;
	int rc = th_sh("DEFINE QLOCAL(A)\nDEFINE QLOCAL(B)\nDEFINE QLOCAL(C)\n", &out, &err, 30,
	               "'%s' -s /nonexistent/chand.sock run", th_chanctl_bin());

	cr_expect_eq(rc, 1);
	cr_expect_str_eq(err, "chanctl: no agent at /nonexistent/chand.sock (CHD6004)\n"
	                 "chanctl: the agent cannot be reached; the remaining 2 commands were not "
	                 "run (CHD6004)\n");
	cr_expect(strstr(out, "3 commands read, 0 succeeded, 1 failed, 2 not run\n") != NULL, "%s",
	          out);
	cr_expect_eq(th_count(out, " : DEFINE QLOCAL("), 1, "%s", out);
	free(out);
	free(err);
}

Test(ops, check_parses_without_executing)
{
	struct th_agent a;
	char *file = srcpath("tests/mqsc/two-site-qm1.mqsc"), args[600], *out, *err = NULL;

	start(&a, "QM1");
	snprintf(args, sizeof(args), "run --check '%s'", file);
	out = ctl(&a, NULL, 0, NULL, args);
	cr_expect(strstr(out, "         chanctl define channel QM1.TO.QM2 --type sdr --conname "
	                  "'qm2.site-b.example.com(1414),qm2-dr.site-b.example.com(1414)'") != NULL,
	          "%s", out);
	cr_expect(strstr(out, "--sslpeer 'CN=QM2, OU=Payments, O=\"Acme Bank, Ltd.\", C=GB'") != NULL,
	          "%s", out);
	cr_expect(strstr(out, "17 commands read, 17 valid, 0 not valid (nothing was executed)\n") !=
	          NULL, "%s", out);
	free(out);
	free(ctl(&a, NULL, 1, NULL, "display queue QM2"));     /* nothing was defined */

	/* No agent is contacted: a socket path that does not exist is fine. */
	cr_expect_eq(th_sh(NULL, &out, NULL, 30, "'%s' -s /dev/null run --check '%s'",
	                   th_chanctl_bin(), file), 0);
	free(out);
	out = ctl(&a, "DEFINE QLOCAL(A) BOGUS(1)\nDEFINE QLOCAL(B)\n", 1, &err, "run --check");
	cr_expect(strstr(err, "line 1: DEFINE QLOCAL(A): attribute BOGUS is not supported") != NULL,
	          "%s", err);
	cr_expect(strstr(out, "2 commands read, 1 valid, 1 not valid") != NULL, "%s", out);
	free(out);
	free(err);
	free(ctl(&a, NULL, 1, NULL, "display queue B"));
	stop(&a);
	free(file);
}

Test(ops, run_json_reports_each_command)
{
	struct th_agent a;

	start(&a, "QM1");
	char *out = ctl(&a, "DEFINE QLOCAL(J1) MAXDEPTH(7)\nDEFINE QLOCAL(J2) FOO(1)\n"
	                "DISPLAY QUEUE(J1)\n", 1, NULL, "--json run");
	char *save = NULL, *line;
	json_t *o[4] = { NULL };
	int n = 0;
	for (line = strtok_r(out, "\n", &save); line && n < 4; line = strtok_r(NULL, "\n", &save))
		cr_assert_not_null(o[n++] = json_loads(line, 0, NULL), "not JSON: %s", line);
	cr_assert_eq(n, 4, "%s", out);
	cr_expect(json_is_true(json_object_get(o[0], "ok")));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(o[0], "chanctl"), 0)),
	                 "define");
	cr_expect(json_is_false(json_object_get(o[1], "ok")));
	cr_expect_str_eq(JSTR(o[1], "error"), "line 2: DEFINE QLOCAL(J2): attribute FOO is not "
	                 "supported");
	json_t *shown = json_array_get(json_object_get(o[2], "output"), 0);
	cr_expect_eq(JINT(shown, "maxdepth"), 7);
	cr_expect_eq(JINT(o[3], "read"), 3);
	cr_expect_eq(JINT(o[3], "succeeded"), 2);
	cr_expect_eq(JINT(o[3], "failed"), 1);
	for (int i = 0; i < n; i++)
		json_decref(o[i]);
	free(out);
	stop(&a);
}

/* ---- explain ---- */

Test(ops, explain_needs_no_agent)
{
	const char *bin = th_chanctl_bin();
	char *out = NULL, *err = NULL, *out2 = NULL;

	/* A config that does not exist: explain must not look for it. */
	cr_assert_eq(th_sh(NULL, &out, &err, 30, "'%s' -c /nonexistent.conf explain CHD4001", bin), 0,
	             "%s", err);
	static const char head[] = "CHD4001: no certificate sent by peer\n    The initiator";
	cr_expect(strncmp(out, head, sizeof(head) - 1) == 0, "%s", out);
	cr_assert_eq(th_sh(NULL, &out2, NULL, 30, "'%s' explain 4001", bin), 0);
	cr_expect_str_eq(out2, out);
	free(out);
	free(out2);
	free(err);

	cr_expect_eq(th_sh(NULL, &out, &err, 30, "'%s' explain CHD9999", bin), 1);
	cr_expect_str_eq(out, "");
	cr_expect_str_eq(err, "chanctl: unknown code 'CHD9999' (chanctl explain --all lists every "
	                 "code)\n");
	free(out);
	free(err);

	/* --all (or no code) lists the whole catalogue, one code a line. */
	char *path = srcpath("include/chand/codes.h"), *codes = th_read_file(path);
	cr_assert_not_null(codes);
	int ncodes = th_count(codes, "\tX(");
	cr_assert_gt(ncodes, 40);
	cr_assert_eq(th_sh(NULL, &out, NULL, 30, "'%s' explain --all", bin), 0);
	cr_assert_eq(th_sh(NULL, &out2, NULL, 30, "'%s' explain", bin), 0);
	cr_expect_str_eq(out2, out);
	cr_expect_eq(th_count(out, "\nCHD") + 1, ncodes, "%s", out);
	cr_expect(strstr(out, "CHD5007  sequence number mismatch\n") != NULL, "%s", out);
	free(out);
	free(out2);
	cr_assert_eq(th_sh(NULL, &out, NULL, 30, "'%s' --json explain --all", bin), 0);
	json_t *all = json_loads(out, 0, NULL);
	cr_assert(json_is_array(all), "%s", out);
	cr_expect_eq((int)json_array_size(all), ncodes);
	json_t *one = json_array_get(all, 0);
	cr_expect_str_eq(JSTR(one, "code"), "CHD1001");
	cr_expect_not_null(JSTR(one, "explanation"));
	json_decref(all);
	free(out);
	free(codes);
	free(path);
}

/* ---- bash completion ---- */

static const char comp_harness[] =
	"export LC_ALL=C\n"
	"source \"$1\"; shift\n"
	"COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1))\n"
	"_chanctl\n"
	"printf '%s\\n' \"${COMPREPLY[@]}\" | sed '/^$/d' | sort | tr '\\n' ' '\n";

struct comp_case {
	const char *words;    /* after the binary; %S: socket, %C: config, %D: temp dir */
	const char *want;
};

static char *expand(const char *fmt, const struct th_agent *a, const char *dir)
{
	char *s = malloc(4096);
	size_t o = 0;

	for (const char *p = fmt; *p && o < 3000; p++) {
		if (p[0] == '%' && (p[1] == 'S' || p[1] == 'C' || p[1] == 'D')) {
			const char *v = p[1] == 'S' ? a->sock : p[1] == 'C' ? a->conf : dir;
			o += (size_t)snprintf(s + o, 4096 - o, "%s", v);
			p++;
		} else {
			s[o++] = *p;
		}
	}
	s[o] = '\0';
	return s;
}

Test(ops, bash_completion)
{
	static const struct comp_case cases[] = {
		{ "de", "define delete " },
		{ "define ''", "channel qlocal qremote route " },
		{ "define qlocal X --ma", "--maxdepth --maxmsgl " },
		{ "define qlocal X --usage ''", "normal xmitq " },
		{ "define channel X --type ''", "mqtt rcvr rqstr sdr svr " },
		{ "stop channel X --mode f", "force " },
		{ "start channel X --n", "--no-wait " },
		{ "status --a", "--all " },
		{ "define channel X --sslciph ANY_TLS1", "ANY_TLS12 ANY_TLS12_OR_HIGHER ANY_TLS13 "
		  "ANY_TLS13_OR_HIGHER " },
		{ "--js", "--json " },
		{ "explain CHD400", "CHD4001 CHD4002 CHD4003 CHD4004 CHD4005 CHD4006 CHD4007 CHD4008 "
		  "CHD4009 " },
		{ "-c %C start channel QM1", "QM1.TO.QM2 " },
		{ "-c %C alter qremote ''", "PAYMENTS.TO.QM2 " },
		{ "-s %S alter qlocal ''", "PAYMENTS.IN QM2 " },
		{ "-s %S display queue ''", "PAYMENTS.IN PAYMENTS.TO.QM2 QM2 " },
		{ "-s %S define qremote X --xmitq ''", "QM2 " },
		{ "-s %S status ''", "QM1.TO.QM2 QM2.TO.QM1 " },
		{ "-s %S --json delete channel QM2", "QM2.TO.QM1 " },
		{ "run %D/comp", "%D/comp.sh " },
		{ "-s /nonexistent/chand.sock display queue ''", "" },
	};
	struct th_agent a;
	char *dir = th_tempdir("comp"), *script = srcpath("contrib/bash-completion/chanctl");
	char *harness = write_temp(dir, "comp.sh", comp_harness);

	start(&a, "QM1");
	free(ctl(&a, NULL, 0, NULL, "define qlocal QM2 --usage xmitq"));
	free(ctl(&a, NULL, 0, NULL, "define qlocal PAYMENTS.IN"));
	free(ctl(&a, NULL, 0, NULL, "define qremote PAYMENTS.TO.QM2 --rname PAYMENTS.IN "
	                            "--rqmname QM2 --xmitq QM2"));
	free(ctl(&a, NULL, 0, NULL, "define channel QM1.TO.QM2 --type sdr --conname 'h(1414)' "
	                            "--xmitq QM2"));
	free(ctl(&a, NULL, 0, NULL, "define channel QM2.TO.QM1 --type rcvr"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *words = expand(cases[i].words, &a, dir), *want = expand(cases[i].want, &a, dir);
		char *out = NULL, *err = NULL;
		int rc = th_sh(NULL, &out, &err, 30, "bash '%s' '%s' '%s' %s", harness, script,
		               th_chanctl_bin(), words);
		cr_expect_eq(rc, 0, "%s: %s", words, err);
		cr_expect_str_eq(out, want, "completing: chanctl %s", words);
		cr_expect_str_eq(err, "", "completing: chanctl %s", words);
		free(out);
		free(err);
		free(words);
		free(want);
	}
	/* keystore subcommands come from chanctl keystore --help. */
	char *out = NULL;
	cr_assert_eq(th_sh(NULL, &out, NULL, 30, "bash '%s' '%s' '%s' keystore ''", harness, script,
	                   th_chanctl_bin()), 0);
	cr_expect(strstr(out, "create ") && strstr(out, "import ") && strstr(out, "list ") &&
	          strstr(out, "trust "), "%s", out);
	free(out);
	stop(&a);
	th_rmtree(dir);
	free(dir);
	free(script);
	free(harness);
}

/* ---- doc/OPERATIONS.md ---- */

/* The lines of the fenced block that starts after line *i; *i ends on
 * the closing fence. */
static char *block(char **lines, int n, int *i)
{
	size_t cap = 1, len = 0;
	char *s = calloc(1, 1);

	for ((*i)++; *i < n && strncmp(lines[*i], "```", 3) != 0; (*i)++) {
		size_t l = strlen(lines[*i]);
		cap += l + 1;
		s = realloc(s, cap);
		memcpy(s + len, lines[*i], l);
		len += l;
		s[len++] = '\n';
		s[len] = '\0';
	}
	return s;
}

static char **doc_lines(int *n)
{
	char *path = srcpath("doc/OPERATIONS.md"), *doc = th_read_file(path);
	char **v = NULL;

	cr_assert_not_null(doc, "%s", path);
	*n = 0;
	/* strsep keeps empty lines, which transcripts contain. */
	for (char *p = doc, *l; (l = strsep(&p, "\n")) != NULL;) {
		v = realloc(v, (size_t)(*n + 1) * sizeof(*v));
		v[(*n)++] = strdup(l);
	}
	free(doc);
	free(path);
	return v;
}

/* "chanctl ..." with the binary under test and the agent's socket. */
static char *with_binary(const char *cmd, const struct th_agent *a)
{
	char *s = malloc(strlen(cmd) * 4 + 1024);
	size_t o = 0;

	for (const char *p = cmd; *p;) {
		if (strncmp(p, "chanctl ", 8) == 0 && (p == cmd || p[-1] == ' ')) {
			o += (size_t)sprintf(s + o, "'%s' -s '%s' ", th_chanctl_bin(), a->sock);
			p += 8;
		} else {
			s[o++] = *p++;
		}
	}
	s[o] = '\0';
	return s;
}

Test(ops, doc_console_examples)
{
	struct th_agent a;
	char *dir = th_tempdir("doc"), *pending = NULL;
	int n, ran = 0;
	char **lines = doc_lines(&n);

	start(&a, "QM1");
	for (int i = 0; i < n; i++) {
		if (strncmp(lines[i], "<!-- file: ", 11) == 0) {
			free(pending);
			pending = strndup(lines[i] + 11, strcspn(lines[i] + 11, " "));
			continue;
		}
		if (strncmp(lines[i], "```", 3) != 0)
			continue;
		bool console = strcmp(lines[i], "```console") == 0;
		int first = i;
		char *text = block(lines, n, &i);
		if (pending != NULL && strchr(pending, '/') == NULL)
			free(write_temp(dir, pending, text));
		free(pending);
		pending = NULL;
		free(text);
		if (!console)
			continue;
		/* "$ command" lines, each followed by its exact output. */
		for (int j = first + 1; j < i;) {
			cr_assert(strncmp(lines[j], "$ ", 2) == 0, "doc line %d: not a command: %s", j + 1,
			          lines[j]);
			char *cmd = with_binary(lines[j] + 2, &a), *want = calloc(1, 1), *out = NULL;
			size_t len = 0;
			int k;
			for (k = j + 1; k < i && strncmp(lines[k], "$ ", 2) != 0; k++) {
				size_t l = strlen(lines[k]);
				want = realloc(want, len + l + 2);
				memcpy(want + len, lines[k], l);
				len += l;
				want[len++] = '\n';
				want[len] = '\0';
			}
			th_sh(NULL, &out, NULL, 60, "cd '%s' && { %s ; } 2>&1", dir, cmd);
			cr_expect_str_eq(out ? out : "", want, "doc line %d: %s", j + 1, lines[j]);
			ran++;
			free(out);
			free(want);
			free(cmd);
			j = k;
		}
	}
	cr_expect_geq(ran, 10, "only %d console examples found", ran);
	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(pending);
	stop(&a);
	th_rmtree(dir);
	free(dir);
}

/* The configuration the guide recommends, with its paths moved into a
 * temporary directory, passes chand --check-config. */
Test(ops, doc_config_checks)
{
	int n;
	char **lines = doc_lines(&n), *conf = NULL;
	char *dir = th_tempdir("docconf");

	for (int i = 0; i < n && conf == NULL; i++)
		if (strcmp(lines[i], "<!-- file: /etc/chand/QM1.conf -->") == 0) {
			i++;
			conf = block(lines, n, &i);
		}
	cr_assert_not_null(conf, "no /etc/chand/QM1.conf example in doc/OPERATIONS.md");
	cr_expect(strstr(conf, "socket = \"/run/chand/QM1.sock\"") != NULL, "%s", conf);
	struct group *g = getgrgid(getgid());
	cr_assert_not_null(g);
	char *moved = malloc(strlen(conf) * 2 + 4096);
	size_t o = 0;
	for (const char *p = conf; *p;) {
		if (strncmp(p, "/var/lib/chand", 14) == 0 || strncmp(p, "/run/chand", 10) == 0) {
			size_t l = p[1] == 'v' ? 14 : 10;
			o += (size_t)sprintf(moved + o, "%s%.*s", dir, (int)l, p);
			p += l;
			continue;
		} else if (strncmp(p, "group = \"chand\"", 15) == 0) {
			o += (size_t)sprintf(moved + o, "group = \"%s\"", g->gr_name);
			p += 15;
			continue;
		}
		moved[o++] = *p++;
	}
	moved[o] = '\0';
	char *p = NULL;
	cr_assert_gt(asprintf(&p, "%s/var/lib/chand/QM1", dir), 0);
	cr_assert_eq(th_sh(NULL, NULL, NULL, 10, "mkdir -p '%s' '%s/run/chand'", p, dir), 0);
	char *file = write_temp(dir, "QM1.conf", moved), *out = NULL, *err = NULL;
	int rc = th_sh(NULL, &out, &err, 30, "'%s' -c '%s' --check-config", th_chand_bin(), file);
	cr_expect_eq(rc, 0, "%s\n%s\n%s", moved, out, err);
	cr_expect_str_eq(out, "configuration OK\n");
	free(out);
	free(err);
	free(file);
	free(p);
	free(moved);
	free(conf);
	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	th_rmtree(dir);
	free(dir);
}

/* ---- systemd ---- */

static bool have(const char *tool)
{
	return th_sh(NULL, NULL, NULL, 10, "command -v %s >/dev/null", tool) == 0;
}

static char *built(const char *rel)
{
	char *p = NULL, *text;

	cr_assert_gt(asprintf(&p, "%s/%s", TEST_BUILDDIR, rel), 0);
	text = th_read_file(p);
	cr_assert_not_null(text, "%s was not built", p);
	free(p);
	return text;
}

Test(ops, systemd_unit)
{
	char *unit = built("etc/chand@.service");

	cr_expect_null(strstr(unit, "@sbindir@"));
	cr_expect_null(strstr(unit, "@sysconfdir@"));
	cr_expect_null(strstr(unit, "@localstatedir@"));
	cr_expect_null(strstr(unit, "@runstatedir@"));
	static const char *const must[] = {
		"\nType=simple\n", "/sbin/chand -c ", "/chand/%i.conf -f\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n", "\nRestart=on-failure\n", "\nUser=chand\n",
		"\nGroup=chand\n", "\nUMask=0077\n", "\nNoNewPrivileges=yes\n",
		"\nCapabilityBoundingSet=\n", "\nProtectSystem=strict\n", "\nProtectHome=yes\n",
		"\nPrivateTmp=yes\n", "\nProtectKernelTunables=yes\n", "\nProtectKernelModules=yes\n",
		"\nProtectKernelLogs=yes\n", "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
		"\nSystemCallFilter=@system-service\n", "/lib/chand/%i -", "/chand\n",
		"\nWantedBy=multi-user.target\n",
	};
	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		cr_expect_not_null(strstr(unit, must[i]), "the unit lacks \"%s\"", must[i]);

	if (!have("systemd-analyze")) {
		free(unit);
		cr_skip_test("systemd-analyze is not installed");
	}
	/* verify wants the ExecStart binary to exist: point it at the build.
	 * The man pages it names are not installed here. */
	char *dir = th_tempdir("unit"), *start = strstr(unit, "\nExecStart=");
	cr_assert_not_null(start);
	start += 11;
	char *end = strstr(start, " -c ");
	char *fixed = NULL;
	cr_assert_gt(asprintf(&fixed, "%.*s%s%s", (int)(start - unit), unit, th_chand_bin(), end), 0);
	free(write_temp(dir, "chand@.service", fixed));
	char *out = NULL, *err = NULL;
	int rc = th_sh(NULL, &out, &err, 60, "systemd-analyze verify --man=no '%s/chand@QM1.service'", dir);
	cr_expect_eq(rc, 0, "%s%s", out, err);
	cr_expect_str_eq(err, "", "systemd-analyze verify: %s", err);
	free(out);
	free(err);
	th_rmtree(dir);
	free(dir);
	free(fixed);
	free(unit);
}

Test(ops, sysusers_and_tmpfiles)
{
	char *users = built("etc/sysusers.d/chand.conf"), *tmpf = built("etc/tmpfiles.d/chand.conf");

	cr_expect_not_null(strstr(users, "\nu chand - \"chand channel agent\" "), "%s", users);
	cr_expect_not_null(strstr(tmpf, "/lib/chand 0750 chand chand -\n"), "%s", tmpf);
	cr_expect_not_null(strstr(tmpf, "/chand 0750 chand chand -\n"), "%s", tmpf);
	if (!have("systemd-sysusers")) {
		free(users);
		free(tmpf);
		cr_skip_test("systemd-sysusers is not installed");
	}
	/* An empty root: sysusers creates the user there, not on this host. */
	char *root = th_tempdir("sysroot"), *out = NULL, *err = NULL;
	cr_assert_eq(th_sh(NULL, NULL, NULL, 10, "cd '%s' && mkdir etc && touch etc/passwd "
	                   "etc/group etc/shadow etc/gshadow", root), 0);
	cr_assert_eq(th_sh(users, &out, &err, 30, "systemd-sysusers --root='%s' -", root), 0, "%s",
	             err);
	free(out);
	free(err);
	char *pw = NULL;
	cr_assert_gt(asprintf(&pw, "%s/etc/passwd", root), 0);
	char *passwd = th_read_file(pw);
	cr_assert_not_null(passwd);
	cr_expect(strncmp(passwd, "chand:x:", 8) == 0, "%s", passwd);
	cr_expect_not_null(strstr(passwd, ":chand channel agent:"), "%s", passwd);
	unsigned uid = 0;
	cr_assert_eq(sscanf(passwd, "chand:x:%u:", &uid), 1);
	/* tmpfiles sets owners: only root can; the sandboxed CI runs as root. */
	if (geteuid() == 0 && have("systemd-tmpfiles")) {
		cr_assert_eq(th_sh(tmpf, &out, &err, 30, "systemd-tmpfiles --root='%s' --create -",
		                   root), 0, "%s", err);
		free(out);
		free(err);
		for (const char *l = tmpf; (l = strstr(l, "\nd ")) != NULL; l++) {
			char path[300], *p = NULL;
			struct stat st;
			cr_assert_eq(sscanf(l + 3, "%299s", path), 1);
			cr_assert_gt(asprintf(&p, "%s%s", root, path), 0);
			cr_assert_eq(stat(p, &st), 0, "%s was not created", p);
			cr_expect_eq(st.st_mode & 07777, 0750, "%s", p);
			cr_expect_eq(st.st_uid, uid, "%s", p);
			free(p);
		}
	} else {
		cr_log_warn("systemd-tmpfiles check skipped (needs root and systemd-tmpfiles)");
	}
	free(passwd);
	free(pw);
	th_rmtree(root);
	free(root);
	free(users);
	free(tmpf);
}
