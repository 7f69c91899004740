/* chanctl channel commands: define/alter/delete/display channel,
 * start/stop/ping/reset/resolve channel, status, refresh security
 * (DESIGN.md section 5; doc/CHANNELS.md). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "status_prom.h"
#include "chand/util.h"

static int do_define(struct ctl *c, const struct ctl_args *a);
static int do_alter(struct ctl *c, const struct ctl_args *a);
static int do_delete(struct ctl *c, const struct ctl_args *a);
static int do_display(struct ctl *c, const struct ctl_args *a);
static int do_start(struct ctl *c, const struct ctl_args *a);
static int do_stop(struct ctl *c, const struct ctl_args *a);
static int do_ping(struct ctl *c, const struct ctl_args *a);
static int do_reset(struct ctl *c, const struct ctl_args *a);
static int do_resolve(struct ctl *c, const struct ctl_args *a);
static int do_status(struct ctl *c, const struct ctl_args *a);
static int do_refresh(struct ctl *c, const struct ctl_args *a);

#define CHL_ATTR_OPTS \
	{ "--type", NULL, "sdr|rcvr|svr|rqstr" }, { "--conname", NULL, "HOST:PORT" }, \
	{ "--xmitq", NULL, "Q" }, { "--sslciph", NULL, "SPEC" }, { "--certlabl", NULL, "LABEL" }, \
	{ "--sslcauth", NULL, "required|optional" }, { "--sslpeer", NULL, "FILTER" }, \
	{ "--batchsz", NULL, "N" }, { "--batchint", NULL, "MS" }, { "--hbint", NULL, "S" }, \
	{ "--discint", NULL, "S" }, { "--maxmsgl", NULL, "N" }, { "--shortrty", NULL, "N" }, \
	{ "--shorttmr", NULL, "S" }, { "--longrty", NULL, "N" }, { "--longtmr", NULL, "S" }, \
	{ "--seqwrap", NULL, "N" }, { "--descr", NULL, "TEXT" }

static const struct ctl_opt define_opts[] = {
	CHL_ATTR_OPTS, { "--replace", NULL, NULL }, { NULL, NULL, NULL } };
static const struct ctl_opt alter_opts[] = { CHL_ATTR_OPTS, { NULL, NULL, NULL } };
static const struct ctl_opt stop_opts[] = { { "--mode", NULL, "quiesce|force" },
	{ NULL, NULL, NULL } };
static const struct ctl_opt reset_opts[] = { { "--seqnum", NULL, "N" }, { NULL, NULL, NULL } };
static const struct ctl_opt resolve_opts[] = { { "--action", NULL, "commit|backout" },
	{ NULL, NULL, NULL } };
static const struct ctl_opt status_opts[] = { { "--watch", NULL, "SECS" },
	{ "--iterations", NULL, "N" }, { "--format", NULL, "table|json|prometheus" },
	{ NULL, NULL, NULL } };

#define CHL_SYN "[--conname HOST:PORT] [--xmitq Q] [--sslciph SPEC] [--certlabl LABEL] " \
	"[--sslcauth required|optional] [--sslpeer FILTER] [--batchsz N] [--batchint MS] " \
	"[--hbint S] [--discint S] [--maxmsgl N] [--shortrty N] [--shorttmr S] [--longrty N] " \
	"[--longtmr S] [--seqwrap N] [--descr TEXT]"

static const struct ctl_cmd channel_cmds[] = {
	{ "define channel", "NAME --type sdr|rcvr|svr|rqstr " CHL_SYN " [--replace]", define_opts,
	  1, 1, do_define, 0 },
	{ "alter channel", "NAME " CHL_SYN, alter_opts, 1, 1, do_alter, 0 },
	{ "delete channel", "NAME", NULL, 1, 1, do_delete, 0 },
	{ "display channel", "[NAME|PATTERN]", NULL, 0, 1, do_display, 0 },
	{ "start channel", "NAME", NULL, 1, 1, do_start, 0 },
	{ "stop channel", "NAME [--mode quiesce|force]", stop_opts, 1, 1, do_stop, 0 },
	{ "ping channel", "NAME", NULL, 1, 1, do_ping, 0 },
	{ "reset channel", "NAME [--seqnum N]", reset_opts, 1, 1, do_reset, 0 },
	{ "resolve channel", "NAME --action commit|backout", resolve_opts, 1, 1, do_resolve, 0 },
	{ "status", "[NAME|PATTERN] [--format table|json|prometheus] [--watch SECS [--iterations N]]",
	  status_opts, 0, 1, do_status, 0 },
	{ "refresh security", "", NULL, 0, 0, do_refresh, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_channel_family = { "channel", channel_cmds };

static const char *const type_words[] = { "sdr", "rcvr", "svr", "rqstr", NULL };
static const char *const cauth_words[] = { "required", "optional", NULL };

struct num_opt {
	const char *opt, *key;
	long min, max;
};

/* Ranges as the agent checks them (include/chand/chandef.h); checked here
 * too so a typo is a usage error before anything is sent. */
static const struct num_opt num_opts[] = {
	{ "--batchsz", "batchsz", 1, 9999 },
	{ "--batchint", "batchint", 0, 999999999 },
	{ "--hbint", "hbint", 0, 999999 },
	{ "--discint", "discint", 0, 999999 },
	{ "--maxmsgl", "maxmsgl", 1, 104857600 },
	{ "--shortrty", "shortrty", 0, 999999999 },
	{ "--shorttmr", "shorttmr", 0, 999999999 },
	{ "--longrty", "longrty", 0, 999999999 },
	{ "--longtmr", "longtmr", 0, 999999999 },
	{ "--seqwrap", "seqwrap", 100, 999999999 },
};

static const char *const str_opts[][2] = {
	{ "--conname", "conname" }, { "--xmitq", "xmitq" }, { "--sslciph", "sslciph" },
	{ "--certlabl", "certlabl" }, { "--sslpeer", "sslpeer" }, { "--descr", "descr" },
};

static int put_attrs(const struct ctl_args *a, json_t *req)
{
	int n = 0, w;
	long v;

	if ((w = ctl_opt_word(a, "--type", type_words)) >= 0 && ++n)
		json_object_set_new(req, "type", json_string(type_words[w]));
	if ((w = ctl_opt_word(a, "--sslcauth", cauth_words)) >= 0 && ++n)
		json_object_set_new(req, "sslcauth", json_string(cauth_words[w]));
	for (size_t i = 0; i < sizeof(str_opts) / sizeof(str_opts[0]); i++) {
		const char *s = ctl_opt(a, str_opts[i][0]);
		if (s != NULL && ++n)
			json_object_set_new(req, str_opts[i][1], json_string(s));
	}
	for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++)
		if (ctl_opt_long(a, num_opts[i].opt, num_opts[i].min, num_opts[i].max, &v) && ++n)
			json_object_set_new(req, num_opts[i].key, json_integer(v));
	return n;
}

static json_t *named_request(const char *cmd, const char *name)
{
	json_t *req = admin_request_new(cmd);

	ctl_check_name("channel name", name);
	json_object_set_new(req, "name", json_string(name));
	return req;
}

static int do_define(struct ctl *c, const struct ctl_args *a)
{
	json_t *req = named_request("define channel", a->pos[0]);
	char done[160];

	if (ctl_opt(a, "--type") == NULL) {
		json_decref(req);
		ctl_usage_err("define channel needs --type sdr|rcvr|svr|rqstr");
	}
	put_attrs(a, req);
	json_object_set_new(req, "replace", json_boolean(ctl_flag(a, "--replace")));
	snprintf(done, sizeof(done), "channel %s defined.", a->pos[0]);
	return ctl_simple(c, req, done);
}

static int do_alter(struct ctl *c, const struct ctl_args *a)
{
	json_t *req = named_request("alter channel", a->pos[0]);
	char done[160];

	if (put_attrs(a, req) == 0) {
		json_decref(req);
		ctl_usage_err("nothing to alter: give at least one attribute (chanctl alter channel "
		              "--help)");
	}
	snprintf(done, sizeof(done), "channel %s altered.", a->pos[0]);
	return ctl_simple(c, req, done);
}

static int do_delete(struct ctl *c, const struct ctl_args *a)
{
	char done[160];

	snprintf(done, sizeof(done), "channel %s deleted.", a->pos[0]);
	return ctl_simple(c, named_request("delete channel", a->pos[0]), done);
}

static int do_start(struct ctl *c, const struct ctl_args *a)
{
	char done[160];

	snprintf(done, sizeof(done), "channel %s started.", a->pos[0]);
	return ctl_simple(c, named_request("start channel", a->pos[0]), done);
}

static int do_stop(struct ctl *c, const struct ctl_args *a)
{
	static const char *const modes[] = { "quiesce", "force", NULL };
	json_t *req = named_request("stop channel", a->pos[0]);
	int m = ctl_opt_word(a, "--mode", modes);
	char done[160];

	json_object_set_new(req, "mode", json_string(modes[m < 0 ? 0 : m]));
	snprintf(done, sizeof(done), "channel %s stopped.", a->pos[0]);
	return ctl_simple(c, req, done);
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int do_ping(struct ctl *c, const struct ctl_args *a)
{
	json_t *f;
	int rc = ctl_call(c, named_request("ping channel", a->pos[0]), NULL, NULL, &f);

	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json) {
		ctl_json_print(f, stdout);
	} else {
		const char *ver = jstr(f, "tls_version"), *ciph = jstr(f, "cipher");
		const char *dn = jstr(f, "peer_dn"), *qm = jstr(f, "rqmname");
		printf("channel %s: ping OK, round trip %.3f ms, queue manager %s, ", a->pos[0],
		       json_number_value(json_object_get(f, "rtt_ms")), qm ? qm : "?");
		if (json_is_true(json_object_get(f, "encrypted")))
			printf("%s %s, peer %s\n", ver ? ver : "?", ciph ? ciph : "?",
			       dn && dn[0] ? dn : "(no certificate)");
		else
			printf("NOT ENCRYPTED (plain TCP)\n");
	}
	json_decref(f);
	return CTL_EXIT_OK;
}

static int do_reset(struct ctl *c, const struct ctl_args *a)
{
	json_t *req = named_request("reset channel", a->pos[0]);
	long n = 1;
	char done[200];

	ctl_opt_long(a, "--seqnum", 1, 999999999, &n);
	json_object_set_new(req, "seqnum", json_integer(n));
	snprintf(done, sizeof(done), "channel %s reset: the next message has sequence number %ld.",
	         a->pos[0], n);
	return ctl_simple(c, req, done);
}

static int do_resolve(struct ctl *c, const struct ctl_args *a)
{
	static const char *const actions[] = { "commit", "backout", NULL };
	json_t *req, *f;
	int w = ctl_opt_word(a, "--action", actions), rc;

	if (w < 0)
		ctl_usage_err("resolve channel needs --action commit|backout");
	req = named_request("resolve channel", a->pos[0]);
	json_object_set_new(req, "action", json_string(actions[w]));
	rc = ctl_call(c, req, NULL, NULL, &f);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json)
		ctl_json_print(f, stdout);
	else if (w == 0)
		printf("channel %s resolved: in-doubt batch committed (%lld messages deleted).\n",
		       a->pos[0], (long long)json_integer_value(json_object_get(f, "deleted")));
	else
		printf("channel %s resolved: in-doubt batch backed out (its messages will be sent "
		       "again).\n", a->pos[0]);
	json_decref(f);
	return CTL_EXIT_OK;
}

static int do_refresh(struct ctl *c, const struct ctl_args *a)
{
	json_t *f;
	int rc;

	(void)a;
	rc = ctl_call(c, admin_request_new("refresh security"), NULL, NULL, &f);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json)
		ctl_json_print(f, stdout);
	else
		printf("security refreshed: %lld certificate labels loaded from %s; new connections "
		       "use them.\n", (long long)json_integer_value(json_object_get(f, "labels")),
		       jstr(f, "keystore") ? jstr(f, "keystore") : "the keystore");
	json_decref(f);
	return CTL_EXIT_OK;
}

/* ---- listings ---- */

static void check_pattern(const char *p)
{
	char core[CHAND_NAME_MAX + 2];
	size_t m;
	const char *s;

	if (strcmp(p, "*") == 0)
		return;
	s = p[0] == '*' ? p + 1 : p;
	m = strlen(s);
	if (m > 0 && s[m - 1] == '*')
		m--;
	if (m > CHAND_NAME_MAX)
		ctl_fail(CHD_Q_BAD_NAME, "invalid pattern '%s': too long", p);
	memcpy(core, s, m);
	core[m] = '\0';
	if (strchr(core, '*') != NULL)
		ctl_fail(CHD_Q_BAD_NAME, "invalid pattern '%s': '*' only at the start or end", p);
	ctl_check_name("channel name or pattern", core);
}

static int collect(void *arg, json_t *rec)
{
	json_array_append(arg, rec);
	return 0;
}

static json_t *list_call(struct ctl *c, const char *cmd, const char *pat, int *rc)
{
	json_t *req = admin_request_new(cmd), *all = json_array();

	json_object_set_new(req, "pattern", json_string(pat));
	*rc = ctl_call(c, req, collect, all, NULL);
	if (*rc != CTL_EXIT_OK) {
		json_decref(all);
		return NULL;
	}
	return all;
}

static void print_json_array(const json_t *all)
{
	char *s = json_dumps(all, JSON_INDENT(2));

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

/* A cell: strings as they are, integers in decimal, null as "-". */
static const char *cell(const json_t *o, const char *k, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "yes" : "no";
	return NULL;
}

static int do_display(struct ctl *c, const struct ctl_args *a)
{
	static const char *const heads[] = { "NAME", "TYPE", "CONNAME", "XMITQ", "SSLCIPH",
		"CERTLABL", "SSLCAUTH", "SSLPEER", "BATCHSZ", "HBINT", "DISCINT", "MAXMSGL" };
	static const char *const keys[] = { "name", "type", "conname", "xmitq", "sslciph",
		"certlabl", "sslcauth", "sslpeer", "batchsz", "hbint", "discint", "maxmsgl" };
	enum { NC = sizeof(heads) / sizeof(heads[0]) };
	const char *pat = a->npos > 0 ? a->pos[0] : "*";
	struct ctl_table t;
	json_t *all, *o;
	size_t i;
	int rc;

	check_pattern(pat);
	if ((all = list_call(c, "display channel", pat, &rc)) == NULL)
		return rc;
	if (c->json) {
		print_json_array(all);
		json_decref(all);
		return CTL_EXIT_OK;
	}
	ctl_table_init(&t, heads, NC);
	json_array_foreach(all, i, o) {
		char bufs[NC][32];
		const char *cells[NC];
		for (int k = 0; k < NC; k++)
			cells[k] = cell(o, keys[k], bufs[k], sizeof(bufs[k]));
		ctl_table_add(&t, cells);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	json_decref(all);
	return CTL_EXIT_OK;
}

/* "TLS1.3 TLS_AES_128_GCM_SHA256", "NOT ENCRYPTED" or NULL. */
static const char *security(const json_t *o, char *buf, size_t len)
{
	const char *v = jstr(o, "tls_version"), *ci = jstr(o, "cipher");

	if (!json_is_true(json_object_get(o, "encrypted")))
		return "NOT ENCRYPTED";
	if (v == NULL)
		return "TLS";
	snprintf(buf, len, "%s %s", v, ci ? ci : "");
	return buf;
}

/* ANSI colour of a row by its channel's state (watch on a terminal):
 * green running, yellow on its way or retrying, red stopped or in doubt. */
static const char *state_colour(const json_t *o)
{
	const char *st = jstr(o, "state");

	if (json_is_true(json_object_get(o, "indoubt")) || (st != NULL && strcmp(st, "STOPPED") == 0))
		return "\033[31m";
	if (st == NULL || strcmp(st, "INACTIVE") == 0)
		return NULL;
	if (strcmp(st, "RUNNING") == 0)
		return "\033[32m";
	return "\033[33m";
}

/* Prints the table, colouring each row by state when colour is set. The
 * table is rendered first so that escape codes never count as width. */
static void table_out(struct ctl_table *t, const json_t *all, bool colour)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, row = 0;
	FILE *m;

	if (!colour || (m = open_memstream(&buf, &len)) == NULL) {
		ctl_table_print(t, stdout);
		return;
	}
	ctl_table_print(t, m);
	if (fclose(m) != 0 || buf == NULL) {
		free(buf);
		ctl_table_print(t, stdout);
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *c = row == 0 ? "\033[1m" : state_colour(json_array_get(all, row - 1));
		if (c != NULL)
			printf("%s%s\033[0m\n", c, line);
		else
			printf("%s\n", line);
		row++;
	}
	free(buf);
}

/* The compact table of --watch: what changes, one short line per channel. */
static void status_table_compact(const json_t *all, bool colour)
{
	static const char *const heads[] = { "NAME", "TYPE", "STATE", "RQMNAME", "DEPTH", "AGE",
		"MSGS", "BATCHES", "INDOUBT", "RETRIES", "ERROR" };
	static const char *const keys[] = { "name", "type", "state", "rqmname", "xmitq_depth",
		"oldest_msg_age", "msgs", "batches", "indoubt", "retries_left", "last_error_code" };
	enum { NC = sizeof(heads) / sizeof(heads[0]) };
	struct ctl_table t;
	const json_t *o;
	size_t i;

	ctl_table_init(&t, heads, NC);
	json_array_foreach(all, i, o) {
		char b[NC][64];
		const char *cells[NC];
		for (int k = 0; k < NC; k++)
			cells[k] = cell(o, keys[k], b[k], sizeof(b[k]));
		ctl_table_add(&t, cells);
	}
	table_out(&t, all, colour);
	ctl_table_free(&t);
}

static void status_table(const json_t *all, bool colour)
{
	static const char *const heads[] = { "NAME", "TYPE", "STATE", "SUBSTATE", "CONNAME",
		"RQMNAME", "XMITQ", "DEPTH", "MSGS", "BATCHES", "SEQ", "INDOUBT", "SECURITY",
		"LAST_ERROR" };
	enum { NC = sizeof(heads) / sizeof(heads[0]) };
	struct ctl_table t;
	const json_t *o;
	size_t i;

	ctl_table_init(&t, heads, NC);
	json_array_foreach(all, i, o) {
		char b[NC][160];
		const char *cells[NC];
		const char *ec = jstr(o, "last_error_code"), *et = jstr(o, "last_error");
		cells[0] = jstr(o, "name");
		cells[1] = jstr(o, "type");
		cells[2] = jstr(o, "state");
		cells[3] = jstr(o, "substate");
		cells[4] = jstr(o, "conname");
		cells[5] = jstr(o, "rqmname");
		cells[6] = jstr(o, "xmitq");
		cells[7] = cell(o, "xmitq_depth", b[7], sizeof(b[7]));
		cells[8] = cell(o, "msgs", b[8], sizeof(b[8]));
		cells[9] = cell(o, "batches", b[9], sizeof(b[9]));
		cells[10] = cell(o, "committed_seq", b[10], sizeof(b[10]));
		cells[11] = cell(o, "indoubt", b[11], sizeof(b[11]));
		cells[12] = security(o, b[12], sizeof(b[12]));
		if (ec != NULL) {
			snprintf(b[13], sizeof(b[13]), "%s %s", ec, et ? et : "");
			/* One row, one line: a stray newline would break the layout. */
			for (char *p = b[13]; *p; p++)
				if (*p == '\n' || *p == '\r')
					*p = ' ';
			cells[13] = b[13];
		} else {
			cells[13] = NULL;
		}
		ctl_table_add(&t, cells);
	}
	table_out(&t, all, colour);
	ctl_table_free(&t);
}

/* One channel: every field on its own line. */
static void status_detail(const json_t *o)
{
	const char *k;
	json_t *v;
	char buf[160];

	json_object_foreach((json_t *)o, k, v) {
		const char *s = cell(o, k, buf, sizeof(buf));
		if (strcmp(k, "encrypted") == 0 && json_is_false(v))
			s = "NO: plain TCP, NOT ENCRYPTED";
		printf("%-16s %s\n", k, s != NULL && s[0] ? s : "-");
	}
}

static volatile sig_atomic_t watch_stop;

static void watch_sigint(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Sleeps secs unless SIGINT arrives (the handler has no SA_RESTART, so
 * nanosleep returns early). */
static void watch_sleep(long secs)
{
	struct timespec ts = { .tv_sec = secs, .tv_nsec = 0 };

	while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int do_status(struct ctl *c, const struct ctl_args *a)
{
	static const char *const formats[] = { "table", "json", "prometheus", NULL };
	const char *pat = a->npos > 0 ? a->pos[0] : "*";
	long watch = 0, iterations = 0;
	int rc, fmt = ctl_opt_word(a, "--format", formats);
	bool tty = false;

	check_pattern(pat);
	ctl_opt_long(a, "--watch", 1, 86400, &watch);
	if (ctl_opt_long(a, "--iterations", 1, 1000000, &iterations) && watch == 0)
		ctl_usage_err("--iterations needs --watch SECS");
	if (fmt == 2 && (c->json || watch))
		ctl_usage_err("--format prometheus takes neither --json nor --watch (scrape or run "
		              "it again instead)");
	if (fmt == 1)
		c->json = true;
	if (watch) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = watch_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		tty = !c->json && isatty(STDOUT_FILENO);
	}
	for (long n = 1;; n++) {
		json_t *all = list_call(c, "status", pat, &rc);
		if (all == NULL)
			return rc;
		if (fmt == 2) {
			rc = ctl_status_prom(c, all);
			json_decref(all);
			return rc;
		}
		if (c->json) {
			char *s = json_dumps(all, watch ? JSON_COMPACT : JSON_INDENT(2));
			if (s != NULL)
				printf("%s\n", s);
			free(s);
		} else {
			if (watch) {
				char now[40];
				time_format_ms(time_now_ms(), now, sizeof(now));
				/* On a terminal, redraw in place like top(1). */
				if (tty)
					printf("\033[H\033[2J");
				printf("%s%s  every %lds%s\n", tty ? "\033[1m" : "", now, watch,
				       tty ? "  (Ctrl-C to quit)\033[0m" : "");
			}
			if (json_array_size(all) == 1 && strchr(pat, '*') == NULL)
				status_detail(json_array_get(all, 0));
			else if (watch)
				status_table_compact(all, tty);
			else
				status_table(all, false);
		}
		json_decref(all);
		if (!watch)
			return CTL_EXIT_OK;
		if (fflush(stdout) != 0)
			return CTL_EXIT_FAIL;
		if ((iterations > 0 && n >= iterations) || watch_stop)
			return CTL_EXIT_OK;
		watch_sleep(watch);
		if (watch_stop)
			return CTL_EXIT_OK;
		if (!c->json && !tty)
			printf("\n");
	}
}
