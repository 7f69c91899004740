/* chanctl channel commands: define/alter/delete/display channel,
 * start/stop/ping/reset/resolve channel, status, refresh security
 * (doc/CHANNELS.md). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
	{ "--type", NULL, "sdr|rcvr|svr|rqstr|mqtt" }, { "--conname", NULL, "HOST:PORT" }, \
	{ "--xmitq", NULL, "Q" }, { "--sslciph", NULL, "SPEC" }, { "--certlabl", NULL, "LABEL" }, \
	{ "--sslcauth", NULL, "never|optional|required" }, { "--sslpeer", NULL, "FILTER" }, \
	{ "--batchsz", NULL, "N" }, { "--batchint", NULL, "MS" }, { "--hbint", NULL, "S" }, \
	{ "--discint", NULL, "S" }, { "--maxmsgl", NULL, "N" }, { "--shortrty", NULL, "N" }, \
	{ "--shorttmr", NULL, "S" }, { "--longrty", NULL, "N" }, { "--longtmr", NULL, "S" }, \
	{ "--seqwrap", NULL, "N" }, { "--descr", NULL, "TEXT" }, \
	{ "--verify-host", NULL, "yes|no|NAME" }, { "--keyupdate-bytes", NULL, "N" }, MQTT_ATTR_OPTS

/* Telemetry channels (--type mqtt, doc/TELEMETRY.md). */
#define MQTT_ATTR_OPTS \
	{ "--port", NULL, "P" }, { "--address", NULL, "A" }, { "--protocol", NULL, "LIST" }, \
	{ "--identity", NULL, "clientid|username|cert-cn|cert-dn" }, { "--mcauser", NULL, "USER" }, \
	{ "--password-file", NULL, "F" }, { "--acl-file", NULL, "F" }, \
	{ "--allow-anonymous", NULL, "yes|no" }, { "--max-clients", NULL, "N" }, \
	{ "--max-packet", NULL, "BYTES" }, { "--keepalive-max", NULL, "S" }, \
	{ "--session-expiry-max", NULL, "S" }

static const struct ctl_opt define_opts[] = {
	CHL_ATTR_OPTS, { "--replace", NULL, NULL }, { NULL, NULL, NULL } };
static const struct ctl_opt alter_opts[] = { CHL_ATTR_OPTS, { NULL, NULL, NULL } };
static const struct ctl_opt stop_opts[] = { { "--mode", NULL, "quiesce|force" },
	{ "--client", NULL, "ID" }, { NULL, NULL, NULL } };
static const struct ctl_opt reset_opts[] = { { "--seqnum", NULL, "N" }, { NULL, NULL, NULL } };
static const struct ctl_opt resolve_opts[] = { { "--action", NULL, "commit|backout" },
	{ NULL, NULL, NULL } };
static const struct ctl_opt status_opts[] = { { "--watch", NULL, "SECS" },
	{ "--iterations", NULL, "N" }, { "--format", NULL, "table|json|prometheus" },
	{ "--clients", NULL, "[CLIENTID-PATTERN]" }, { "--all", NULL, NULL }, { NULL, NULL, NULL } };
static const struct ctl_opt start_opts[] = { { "--wait", NULL, "SECS" },
	{ "--no-wait", NULL, NULL }, { NULL, NULL, NULL } };

#define CHL_SYN "[--conname HOST:PORT] [--xmitq Q] [--sslciph SPEC] [--certlabl LABEL] " \
	"[--sslcauth required|optional] [--sslpeer FILTER] [--batchsz N] [--batchint MS] " \
	"[--hbint S] [--discint S] [--maxmsgl N] [--shortrty N] [--shorttmr S] [--longrty N] " \
	"[--longtmr S] [--seqwrap N] [--descr TEXT] [--verify-host yes|no|NAME] " \
	"[--keyupdate-bytes N]"
#define MQTT_SYN "[--address A] [--protocol v311,v5] [--sslciph SPEC] [--certlabl LABEL] " \
	"[--sslcauth never|optional|required] [--sslpeer FILTER] " \
	"[--identity clientid|username|cert-cn|cert-dn] [--mcauser USER] [--password-file F] " \
	"[--acl-file F] [--allow-anonymous yes|no] [--max-clients N] [--max-packet BYTES] " \
	"[--keepalive-max S] [--session-expiry-max S] [--descr TEXT]"

static const struct ctl_cmd channel_cmds[] = {
	{ "define channel", "NAME --type sdr|rcvr|svr|rqstr " CHL_SYN " [--replace]\n"
	  "NAME --type mqtt --port P " MQTT_SYN " [--replace]", define_opts, 1, 1, do_define, 0 },
	{ "alter channel", "NAME " CHL_SYN "\nNAME [--port P] " MQTT_SYN, alter_opts, 1, 1,
	  do_alter, 0 },
	{ "delete channel", "NAME", NULL, 1, 1, do_delete, 0 },
	{ "display channel", "[NAME|PATTERN]", NULL, 0, 1, do_display, 0 },
	{ "start channel", "NAME [--wait SECS | --no-wait]", start_opts, 1, 1, do_start, 0 },
	{ "stop channel", "NAME [--mode quiesce|force]\nNAME --client ID   (telemetry channels: "
	  "disconnects one client)", stop_opts, 1, 1, do_stop, 0 },
	{ "ping channel", "NAME", NULL, 1, 1, do_ping, 0 },
	{ "reset channel", "NAME [--seqnum N]", reset_opts, 1, 1, do_reset, 0 },
	{ "resolve channel", "NAME --action commit|backout", resolve_opts, 1, 1, do_resolve, 0 },
	{ "status", "[NAME|PATTERN] [--all] [--clients [CLIENTID-PATTERN]] "
	  "[--format table|json|prometheus] [--watch SECS [--iterations N]]",
	  status_opts, 0, 1, do_status, 0 },
	{ "refresh security", "", NULL, 0, 0, do_refresh, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_channel_family = { "channel", channel_cmds };

static const char *const type_words[] = { "sdr", "rcvr", "svr", "rqstr", "mqtt", NULL };
#define TYPE_MQTT 4
/* "never" only for telemetry channels (the agent checks it too). */
static const char *const cauth_words[] = { "required", "optional", "never", NULL };
#define CAUTH_NEVER 2
static const char *const identity_words[] = { "clientid", "username", "cert-cn", "cert-dn",
	NULL };
static const char *const yesno_words[] = { "yes", "no", NULL };

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
	/* 0, or 1 MiB to 2^40 (put_attrs checks the gap) */
	{ "--keyupdate-bytes", "keyupdate_bytes", 0, 1099511627776L },
	/* Telemetry channels, with MQTT's own limits: a packet's Remaining
	 * Length is at most 268435455, keepalive and session expiry are 16
	 * and 32 bit fields. */
	{ "--port", "port", 1, 65535 },
	{ "--max-clients", "max_clients", 1, 1000000 },
	{ "--max-packet", "max_packet", 16, 268435455 },
	{ "--keepalive-max", "keepalive_max", 0, 65535 },
	{ "--session-expiry-max", "session_expiry_max", 0, 4294967295L },
};

static const char *const str_opts[][2] = {
	{ "--conname", "conname" }, { "--xmitq", "xmitq" }, { "--sslciph", "sslciph" },
	{ "--certlabl", "certlabl" }, { "--sslpeer", "sslpeer" }, { "--descr", "descr" },
	{ "--address", "address" }, { "--mcauser", "mcauser" }, { "--verify-host", "verify_host" },
};

/* Options only telemetry channels have: refused here on another type
 * when the type is known (define, or alter with --type). */
static const char *const mqtt_only[] = { "--port", "--address", "--protocol", "--identity",
	"--mcauser", "--password-file", "--acl-file", "--allow-anonymous", "--max-clients",
	"--max-packet", "--keepalive-max", "--session-expiry-max", NULL };

/* --protocol: a comma-separated list of v31, v311 and v5, each at most
 * once; sent in lower case, in the order given. */
static void put_protocol(const char *v, json_t *req)
{
	static const char *const words[] = { "v31", "v311", "v5", NULL };
	char out[32] = "", buf[256], *save = NULL;
	bool seen[3] = { false, false, false };

	if (strlen(v) >= sizeof(buf))
		ctl_usage_err("--protocol wants a list of v31, v311, v5 (got '%.40s...')", v);
	str_copy(buf, v, sizeof(buf));
	for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		int k = -1;
		while (*w == ' ')
			w++;
		for (size_t e = strlen(w); e > 0 && w[e - 1] == ' '; e--)
			w[e - 1] = '\0';
		for (int i = 0; words[i] != NULL; i++)
			if (strcasecmp(words[i], w) == 0)
				k = i;
		if (k < 0)
			ctl_usage_err("--protocol wants a comma-separated list of v31 (MQTT 3.1), v311 "
			              "(3.1.1) and v5 (5.0) (got '%s')", w);
		if (seen[k])
			ctl_usage_err("--protocol names %s twice", words[k]);
		seen[k] = true;
		if (out[0] != '\0')
			strcat(out, ",");
		strcat(out, words[k]);
	}
	if (out[0] == '\0')
		ctl_usage_err("--protocol wants at least one of v31, v311, v5");
	json_object_set_new(req, "protocol", json_string(out));
}

/* The agent runs in another directory: a relative path is made absolute
 * against ours. An empty value (alter: no file any more) is sent as it is. */
static void put_path(const struct ctl_args *a, const char *opt, const char *key, json_t *req)
{
	const char *v = ctl_opt(a, opt);
	char cwd[4096], *abs;
	size_t len;

	if (v[0] == '\0' || v[0] == '/') {
		json_object_set_new(req, key, json_string(v));
		return;
	}
	while (v[0] == '.' && v[1] == '/')
		v += 2;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		ctl_fail(CHD_Q_BAD_NAME, "%s %s: cannot tell the current directory (%s); give an "
		         "absolute path", opt, v, strerror(errno));
	len = strlen(cwd) + strlen(v) + 2;
	if ((abs = malloc(len)) == NULL)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	snprintf(abs, len, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, v);
	json_object_set_new(req, key, json_string(abs));
	free(abs);
}

/* The attributes given, as request members; returns how many. Options of
 * telemetry channels are refused on another --type (alter without --type:
 * the agent refuses them). */
static int put_attrs(const struct ctl_args *a, json_t *req)
{
	int n = 0, w, t;
	long v;

	if ((t = ctl_opt_word(a, "--type", type_words)) >= 0 && ++n)
		json_object_set_new(req, "type", json_string(type_words[t]));
	if (t >= 0 && t != TYPE_MQTT) {
		for (int i = 0; mqtt_only[i] != NULL; i++)
			if (ctl_opt(a, mqtt_only[i]) != NULL)
				ctl_usage_err("%s is an attribute of telemetry channels (--type mqtt), not of "
				              "%s channels", mqtt_only[i], type_words[t]);
	}
	if ((w = ctl_opt_word(a, "--sslcauth", cauth_words)) >= 0 && ++n) {
		if (w == CAUTH_NEVER && t >= 0 && t != TYPE_MQTT)
			ctl_usage_err("--sslcauth never is for telemetry channels (--type mqtt) only, not "
			              "for %s channels", type_words[t]);
		json_object_set_new(req, "sslcauth", json_string(cauth_words[w]));
	}
	for (size_t i = 0; i < sizeof(str_opts) / sizeof(str_opts[0]); i++) {
		const char *s = ctl_opt(a, str_opts[i][0]);
		if (s != NULL && ++n)
			json_object_set_new(req, str_opts[i][1], json_string(s));
	}
	if (t == TYPE_MQTT && ctl_opt(a, "--keyupdate-bytes") != NULL)
		ctl_usage_err("--keyupdate-bytes is an attribute of message channels (sdr, rcvr, svr, "
		              "rqstr), not of telemetry channels");
	for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++)
		if (ctl_opt_long(a, num_opts[i].opt, num_opts[i].min, num_opts[i].max, &v) && ++n)
			json_object_set_new(req, num_opts[i].key, json_integer(v));
	if (ctl_opt_long(a, "--keyupdate-bytes", 0, 1099511627776L, &v) && v > 0 && v < 1048576)
		ctl_usage_err("--keyupdate-bytes wants 0 (never) or a number from 1048576 (1 MiB) to "
		              "1099511627776 (got %ld)", v);
	if (ctl_opt(a, "--protocol") != NULL && ++n)
		put_protocol(ctl_opt(a, "--protocol"), req);
	if ((w = ctl_opt_word(a, "--identity", identity_words)) >= 0 && ++n)
		json_object_set_new(req, "identity", json_string(identity_words[w]));
	if ((w = ctl_opt_word(a, "--allow-anonymous", yesno_words)) >= 0 && ++n)
		json_object_set_new(req, "allow_anonymous", json_boolean(w == 0));
	if (ctl_opt(a, "--password-file") != NULL && ++n)
		put_path(a, "--password-file", "password_file", req);
	if (ctl_opt(a, "--acl-file") != NULL && ++n)
		put_path(a, "--acl-file", "acl_file", req);
	return n;
}

static json_t *named_request(const char *cmd, const char *name)
{
	json_t *req = admin_request_new(cmd);

	ctl_check_name("channel name", name);
	json_object_set_new(req, "name", json_string(name));
	return req;
}

static const char *jstr(const json_t *o, const char *k);

/* ctl_simple for define and alter: the agent's warnings about the stored
 * definition (a CERTLABL not in its keystore, no SSLCIPH) follow the
 * confirmation on stderr, one line each; the command succeeded all the
 * same. With --json they are in the reply's "warnings". */
static int defined_reply(struct ctl *c, json_t *req, const char *done)
{
	json_t *f, *w;
	size_t i;
	int rc = ctl_call(c, req, NULL, NULL, &f);

	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json) {
		ctl_json_print(f, stdout);
		json_decref(f);
		return CTL_EXIT_OK;
	}
	printf("%s\n", done);
	fflush(stdout);
	json_array_foreach(json_object_get(f, "warnings"), i, w) {
		const char *code = jstr(w, "code"), *text = jstr(w, "text");
		if (text == NULL)
			continue;
		if (code != NULL)
			fprintf(stderr, "warning: %s (%s)\n", text, code);
		else
			fprintf(stderr, "warning: %s\n", text);
	}
	json_decref(f);
	return CTL_EXIT_OK;
}

static int do_define(struct ctl *c, const struct ctl_args *a)
{
	json_t *req = named_request("define channel", a->pos[0]);
	char done[160];

	if (ctl_opt(a, "--type") == NULL) {
		json_decref(req);
		ctl_usage_err("define channel needs --type sdr|rcvr|svr|rqstr|mqtt");
	}
	if (ctl_opt_word(a, "--type", type_words) == TYPE_MQTT && ctl_opt(a, "--port") == NULL) {
		json_decref(req);
		ctl_usage_err("define channel --type mqtt needs --port P (the port MQTT clients "
		              "connect to)");
	}
	put_attrs(a, req);
	json_object_set_new(req, "replace", json_boolean(ctl_flag(a, "--replace")));
	snprintf(done, sizeof(done), "channel %s defined.", a->pos[0]);
	return defined_reply(c, req, done);
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
	return defined_reply(c, req, done);
}

static int do_delete(struct ctl *c, const struct ctl_args *a)
{
	char done[160];

	snprintf(done, sizeof(done), "channel %s deleted.", a->pos[0]);
	return ctl_simple(c, named_request("delete channel", a->pos[0]), done);
}

static int do_stop(struct ctl *c, const struct ctl_args *a)
{
	static const char *const modes[] = { "quiesce", "force", NULL };
	const char *client = ctl_opt(a, "--client");
	int m = ctl_opt_word(a, "--mode", modes);
	json_t *req;
	char done[400];

	if (client != NULL) {
		/* Telemetry channels: one client is disconnected, the channel
		 * runs on (its persistent session, if any, is kept). */
		if (m >= 0)
			ctl_usage_err("--mode stops the whole channel; --client disconnects one client: "
			              "give one of them");
		if (client[0] == '\0')
			ctl_usage_err("--client wants the client identifier of an MQTT client");
		req = named_request("stop channel", a->pos[0]);
		json_object_set_new(req, "client", json_string(client));
		snprintf(done, sizeof(done), "channel %s: client %.200s disconnected.", a->pos[0],
		         client);
		return ctl_simple(c, req, done);
	}
	req = named_request("stop channel", a->pos[0]);
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

/* extra: more request members (borrowed), or NULL. */
static json_t *list_call(struct ctl *c, const char *cmd, const char *pat, json_t *extra, int *rc)
{
	json_t *req = admin_request_new(cmd), *all = json_array();

	json_object_set_new(req, "pattern", json_string(pat));
	if (extra != NULL)
		json_object_update(req, extra);
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
	if ((all = list_call(c, "display channel", pat, NULL, &rc)) == NULL)
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

/* ---- telemetry channels (type mqtt) in the status output ---- */

static bool is_mqtt(const json_t *o)
{
	const char *t = jstr(o, "type");

	return t != NULL && strcmp(t, "mqtt") == 0;
}

/* Where a telemetry channel listens, in the CONNAME column: "ADDR:PORT",
 * "[V6ADDR]:PORT", or "*:PORT" for every address. */
static const char *listener(const json_t *o, char *buf, size_t len)
{
	const char *ad = jstr(o, "address");
	const json_t *p = json_object_get(o, "port");

	if (!json_is_integer(p))
		return ad;
	if (ad == NULL || ad[0] == '\0')
		ad = "*";
	if (strchr(ad, ':') != NULL)
		snprintf(buf, len, "[%s]:%lld", ad, (long long)json_integer_value(p));
	else
		snprintf(buf, len, "%s:%lld", ad, (long long)json_integer_value(p));
	return buf;
}

/* "IN/OUT" from two counters ("-" for an unknown one); NULL if neither. */
static const char *in_out(const json_t *o, const char *kin, const char *kout, char *buf,
                          size_t len)
{
	const json_t *i = json_object_get(o, kin), *u = json_object_get(o, kout);
	char a[32] = "-", b[32] = "-";

	if (!json_is_integer(i) && !json_is_integer(u))
		return NULL;
	if (json_is_integer(i))
		snprintf(a, sizeof(a), "%lld", (long long)json_integer_value(i));
	if (json_is_integer(u))
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(u));
	snprintf(buf, len, "%s/%s", a, b);
	return buf;
}

/* The SECURITY cell of a telemetry channel: its SSLCIPH, or NOT ENCRYPTED
 * (plain TCP is allowed and flagged, as for message channels). */
static const char *mqtt_security(const json_t *o, char *buf, size_t len)
{
	const char *ciph = jstr(o, "sslciph");
	const json_t *enc = json_object_get(o, "encrypted");

	if ((enc != NULL && !json_is_true(enc)) || ciph == NULL || ciph[0] == '\0')
		return "NOT ENCRYPTED";
	snprintf(buf, len, "TLS %s", ciph);
	return buf;
}

/* A client's text in a table cell: control characters (client ids and
 * user names are the client's choice) become '?', and a value too long
 * for buf is cut with "...". */
static const char *safe_cell(const json_t *o, const char *k, char *buf, size_t len)
{
	const char *v = jstr(o, k);
	size_t n = 0;

	if (v == NULL)
		return cell(o, k, buf, len);
	for (; v[n] != '\0' && n + 1 < len; n++)
		buf[n] = (unsigned char)v[n] < 0x20 || v[n] == 0x7f ? '?' : v[n];
	buf[n] = '\0';
	if (v[n] != '\0' && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

/* The clients of one telemetry channel (status --clients). */
static void clients_table(const json_t *o, const char *client_pat)
{
	static const char *const heads[] = { "CLIENT_ID", "STATE", "IDENTITY", "PROTOCOL", "PEER",
		"MSGS_IN", "MSGS_OUT", "INFLIGHT", "PENDING", "CONNECTED_SINCE", "LAST_ERROR" };
	enum { NC = sizeof(heads) / sizeof(heads[0]) };
	const json_t *cl = json_object_get(o, "clients"), *k;
	const char *name = jstr(o, "name");
	struct ctl_table t;
	size_t i, n = json_array_size(cl);

	if (!json_is_array(cl))
		return;
	printf("\n%s: %zu client%s", name ? name : "?", n, n == 1 ? "" : "s");
	if (client_pat != NULL && client_pat[0] != '\0')
		printf(" matching '%s'", client_pat);
	printf("\n");
	if (n == 0)
		return;
	ctl_table_init(&t, heads, NC);
	json_array_foreach(cl, i, k) {
		char b[NC][160];
		const char *cells[NC];
		cells[0] = safe_cell(k, "client_id", b[0], sizeof(b[0]));
		cells[1] = jstr(k, "state");
		cells[2] = safe_cell(k, "identity", b[2], sizeof(b[2]));
		cells[3] = jstr(k, "protocol");
		cells[4] = safe_cell(k, "peer_address", b[4], sizeof(b[4]));
		cells[5] = cell(k, "msgs_received", b[5], sizeof(b[5]));
		cells[6] = cell(k, "msgs_sent", b[6], sizeof(b[6]));
		cells[7] = in_out(k, "inflight_in", "inflight_out", b[7], sizeof(b[7]));
		cells[8] = cell(k, "pending", b[8], sizeof(b[8]));
		cells[9] = jstr(k, "connected_since");
		cells[10] = safe_cell(k, "last_error", b[10], sizeof(b[10]));
		if (cells[10] != NULL && cells[10][0] == '\0')
			cells[10] = NULL;
		ctl_table_add(&t, cells);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

/* Every telemetry channel's clients, after the channels. */
static void all_clients(const json_t *all, const char *client_pat)
{
	const json_t *o;
	size_t i;

	json_array_foreach(all, i, o)
		if (is_mqtt(o))
			clients_table(o, client_pat);
}

/* The compact table of --watch: what changes, one short line per channel. */
static void status_table_compact(const json_t *all, bool colour)
{
	static const char *const heads[] = { "NAME", "TYPE", "STATE", "RQMNAME", "DEPTH", "AGE",
		"MSGS", "BATCHES", "INDOUBT", "RETRIES_S/L", "ERROR" };
	static const char *const keys[] = { "name", "type", "state", "rqmname", "xmitq_depth",
		"oldest_msg_age", "msgs", "batches", "indoubt", "short_retries_left",
		"last_error_code" };
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
		/* RETRIES_S/L: short and long retries left while RETRYING. */
		cells[9] = in_out(o, "short_retries_left", "long_retries_left", b[9], sizeof(b[9]));
		if (is_mqtt(o)) {
			/* DEPTH: the clients connected; MSGS: received/sent. */
			cells[4] = cell(o, "connections", b[4], sizeof(b[4]));
			cells[6] = in_out(o, "msgs_received", "msgs_sent", b[6], sizeof(b[6]));
		}
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
		if (is_mqtt(o)) {
			/* The listener in place of CONNAME, the clients connected in
			 * place of DEPTH, messages received/sent in MSGS. */
			cells[4] = listener(o, b[4], sizeof(b[4]));
			cells[7] = cell(o, "connections", b[7], sizeof(b[7]));
			cells[8] = in_out(o, "msgs_received", "msgs_sent", b[8], sizeof(b[8]));
			cells[12] = mqtt_security(o, b[12], sizeof(b[12]));
		}
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
		if (strcmp(k, "clients") == 0 && json_is_array(v))
			continue;       /* a table of its own (clients_table) */
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

/* Under the channels of a listing, the routes with their counters (when
 * there are any): what `display route` shows, for the operator who looks
 * at one screen. */
static void status_routes(struct ctl *c)
{
	static const char *const heads[] = { "ROUTE", "TOPIC", "TARGET", "MATCHED", "FORWARDED",
		"DROPPED", "LOOPS" };
	json_t *req = admin_request_new("display route"), *all = json_array(), *o;
	struct ctl_table t;
	size_t i;

	json_object_set_new(req, "pattern", json_string("*"));
	if (ctl_call_quiet(c, req, collect, all) != CTL_EXIT_OK || json_array_size(all) == 0) {
		json_decref(all);
		return;
	}
	printf("\n");
	ctl_table_init(&t, heads, sizeof heads / sizeof heads[0]);
	json_array_foreach(all, i, o) {
		char target[120], b[4][24];
		const char *q = json_string_value(json_object_get(o, "queue"));
		const char *keys[4] = { "matched", "forwarded", "dropped", "loops_prevented" };

		if (q != NULL && q[0] != '\0')
			snprintf(target, sizeof target, "queue %s", q);
		else
			snprintf(target, sizeof target, "qmgr %s",
			         json_string_value(json_object_get(o, "qmgr")));
		for (int k = 0; k < 4; k++)
			snprintf(b[k], sizeof b[k], "%lld",
			         (long long)json_integer_value(json_object_get(o, keys[k])));
		const char *row[] = { json_string_value(json_object_get(o, "name")),
		                      json_string_value(json_object_get(o, "topic")), target, b[0],
		                      b[1], b[2], b[3] };
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	json_decref(all);
}

/* Whether a listing leaves the record out without --all. IBM MQ's
 * DISPLAY CHSTATUS(*) shows the channels that have a status, not every
 * defined one: here a message channel INACTIVE with neither an in-doubt
 * batch nor a last error (it never ran, or ended normally), and a
 * telemetry channel STOPPED without an error (it has no INACTIVE state:
 * defined or stopped, it does not listen). */
static bool status_inactive(const json_t *o)
{
	const char *st = jstr(o, "state");

	if (st == NULL || jstr(o, "last_error_code") != NULL)
		return false;
	if (is_mqtt(o))
		return strcmp(st, "STOPPED") == 0;
	return strcmp(st, "INACTIVE") == 0 && !json_is_true(json_object_get(o, "indoubt"));
}

/* Removes those records from all; returns how many. */
static size_t drop_inactive(json_t *all)
{
	size_t n = 0;

	for (size_t i = json_array_size(all); i-- > 0;)
		if (status_inactive(json_array_get(all, i))) {
			json_array_remove(all, i);
			n++;
		}
	return n;
}

/* active_only: a listing without --all (drop_inactive). */
static int status_loop(struct ctl *c, const char *pat, json_t *extra, const char *client_pat,
                       int fmt, long watch, long iterations, bool active_only)
{
	bool tty = false;
	int rc;

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
		json_t *all = list_call(c, "status", pat, extra, &rc);
		size_t hidden = 0;
		if (all == NULL)
			return rc;
		if (active_only && fmt != 2)
			hidden = drop_inactive(all);
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
			if (hidden > 0)
				printf("(%zu inactive channel%s not shown: chanctl status --all lists %s)\n",
				       hidden, hidden == 1 ? "" : "s", hidden == 1 ? "it" : "them");
			if (extra != NULL)
				all_clients(all, client_pat);
			if (!watch && strchr(pat, '*') != NULL)
				status_routes(c);
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

static int do_status(struct ctl *c, const struct ctl_args *a)
{
	static const char *const formats[] = { "table", "json", "prometheus", NULL };
	const char *pat = a->npos > 0 ? a->pos[0] : "*", *clients = ctl_opt(a, "--clients");
	long watch = 0, iterations = 0;
	int rc, fmt = ctl_opt_word(a, "--format", formats);
	json_t *extra = NULL;

	check_pattern(pat);
	ctl_opt_long(a, "--watch", 1, 86400, &watch);
	if (ctl_opt_long(a, "--iterations", 1, 1000000, &iterations) && watch == 0)
		ctl_usage_err("--iterations needs --watch SECS");
	if (fmt == 2 && (c->json || watch))
		ctl_usage_err("--format prometheus takes neither --json nor --watch (scrape or run "
		              "it again instead)");
	if (fmt == 2 && clients != NULL)
		ctl_usage_err("--format prometheus takes no --clients (a series per client would "
		              "grow without bound; the channel totals are there)");
	if (fmt == 1)
		c->json = true;
	if (clients != NULL) {
		/* Telemetry channels: their clients too, all of them or those
		 * whose client identifier matches the pattern. */
		if ((extra = json_object()) == NULL)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		json_object_set_new(extra, "clients", json_true());
		if (clients[0] != '\0')
			json_object_set_new(extra, "client_pattern", json_string(clients));
	}
	/* A listing shows the channels that have a status; --all, or
	 * --format prometheus (whose series must not come and go), every
	 * defined one. One channel named exactly is always shown. */
	rc = status_loop(c, pat, extra, clients, fmt, watch, iterations,
	                 strchr(pat, '*') != NULL && !ctl_flag(a, "--all") && fmt != 2);
	json_decref(extra);
	return rc;
}

/* ---- start channel: the request, then the state it reached ---- */

/* How long start waits by default for the channel to leave its starting
 * states: tls.handshake_timeout's default, which bounds a connection
 * attempt (TCP connect, then the TLS handshake). */
#define START_WAIT_DEFAULT 30

/* The states a channel passes through on its way to RUNNING, RETRYING
 * or STOPPED. */
static bool starting_state(const char *st)
{
	static const char *const v[] = { "INITIALIZING", "BINDING", "STARTING", "REQUESTING",
		NULL };

	for (int i = 0; st != NULL && v[i] != NULL; i++)
		if (strcmp(st, v[i]) == 0)
			return true;
	return false;
}

/* Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ", or 0. */
static int64_t iso_ms(const char *s)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* The channel's status record (new reference), or NULL if it cannot be
 * read (deleted meanwhile, agent gone): nothing is printed then. */
static json_t *start_status(struct ctl *c, const char *name)
{
	json_t *req = admin_request_new("status"), *all = json_array(), *o;

	json_object_set_new(req, "pattern", json_string(name));
	if (ctl_call_quiet(c, req, collect, all) != CTL_EXIT_OK) {
		json_decref(all);
		return NULL;
	}
	o = json_incref(json_array_get(all, 0));
	json_decref(all);
	return o;
}

/* "channel NAME: STATE (why)": the state start reached, with what the
 * operator needs next (the error and the next retry, the partner, the
 * listener). waited: the seconds start waited, when it gave up. */
static void print_reached(const char *name, const json_t *o, long waited)
{
	const char *st = jstr(o, "state"), *ec = jstr(o, "last_error_code");
	const char *et = jstr(o, "last_error"), *qm = jstr(o, "rqmname"), *ty = jstr(o, "type");
	char buf[160], sec[160];

	printf("channel %s: %s", name, st ? st : "UNKNOWN");
	if (st == NULL) {
		printf("\n");
	} else if (waited > 0) {
		printf(" (still starting after %ld s; chanctl status %s follows it)\n", waited, name);
	} else if (strcmp(st, "RUNNING") == 0 && is_mqtt(o)) {
		const char *at = listener(o, buf, sizeof(buf));
		printf(" (listening on %s, %s)\n", at ? at : "?", mqtt_security(o, sec, sizeof(sec)));
	} else if (strcmp(st, "RUNNING") == 0) {
		printf(" (queue manager %s, %s)\n", qm ? qm : "?", security(o, buf, sizeof(buf)));
	} else if (strcmp(st, "RETRYING") == 0) {
		int64_t next = iso_ms(jstr(o, "next_retry_time")), now = time_now_ms();
		printf(" (%s%s%s", ec ? ec : "", ec ? " " : "", et ? et : "no error recorded");
		if (next > 0)
			printf("; next retry in %lld s", (long long)(next > now ? (next - now + 999) / 1000
			                                                        : 0));
		printf(")\n");
	} else if (ec != NULL) {
		printf(" (%s %s)\n", ec, et ? et : "");
	} else if (strcmp(st, "INACTIVE") == 0 && ty != NULL &&
	           (strcmp(ty, "rcvr") == 0 || strcmp(ty, "svr") == 0)) {
		printf(" (ready: it runs when its partner connects)\n");
	} else {
		printf("\n");
	}
}

static int do_start(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	json_t *f, *o = NULL;
	long wait = START_WAIT_DEFAULT, waited = 0;
	int rc;

	if (ctl_flag(a, "--no-wait")) {
		if (ctl_opt(a, "--wait") != NULL)
			ctl_usage_err("give --wait SECS or --no-wait, not both");
		wait = 0;
	}
	ctl_opt_long(a, "--wait", 0, 3600, &wait);
	rc = ctl_call(c, named_request("start channel", name), NULL, NULL, &f);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (!c->json) {
		printf("channel %s: start requested.\n", name);
		fflush(stdout);
	}
	if (wait > 0) {
		/* Polls the way status --watch does, quickly at first: a refused
		 * connection turns into RETRYING within milliseconds. */
		int64_t t0 = time_mono_ms(), deadline = t0 + wait * 1000;
		for (long n = 0; (o = start_status(c, name)) != NULL; n++) {
			if (!starting_state(jstr(o, "state")))
				break;
			if (time_mono_ms() >= deadline) {
				waited = wait;
				break;
			}
			json_decref(o);
			o = NULL;
			struct timespec ts = { 0, (n < 20 ? 50 : 250) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (c->json) {
		/* The agent's reply with the status record reached (null with
		 * --no-wait or when it cannot be read). */
		json_object_set(f, "status", o != NULL ? o : json_null());
		ctl_json_print(f, stdout);
	} else if (o != NULL) {
		print_reached(name, o, waited);
	}
	json_decref(o);
	json_decref(f);
	/* Accepted: the state line says whether the channel runs. */
	return CTL_EXIT_OK;
}
