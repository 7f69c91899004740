/* chanctl queue commands: define/alter qlocal|qremote, delete queue,
 * display queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "chand/store.h"
#include "chand/util.h"

static int do_define_local(struct ctl *c, const struct ctl_args *a);
static int do_define_remote(struct ctl *c, const struct ctl_args *a);
static int do_alter_local(struct ctl *c, const struct ctl_args *a);
static int do_alter_remote(struct ctl *c, const struct ctl_args *a);
static int do_delete(struct ctl *c, const struct ctl_args *a);
static int do_display(struct ctl *c, const struct ctl_args *a);

#define LOCAL_ATTR_OPTS \
	{ "--maxdepth", NULL, "N" }, { "--maxmsgl", NULL, "N" }, \
	{ "--usage", NULL, "normal|xmitq" }, { "--put", NULL, "enabled|disabled" }, \
	{ "--get", NULL, "enabled|disabled" }, { "--descr", NULL, "TEXT" }
#define REMOTE_ATTR_OPTS \
	{ "--rname", NULL, "Q" }, { "--rqmname", NULL, "QM" }, { "--xmitq", NULL, "Q" }, \
	{ "--put", NULL, "enabled|disabled" }, { "--descr", NULL, "TEXT" }

static const struct ctl_opt define_local_opts[] = {
	LOCAL_ATTR_OPTS, { "--replace", NULL, NULL }, { NULL, NULL, NULL } };
static const struct ctl_opt alter_local_opts[] = { LOCAL_ATTR_OPTS, { NULL, NULL, NULL } };
static const struct ctl_opt define_remote_opts[] = {
	REMOTE_ATTR_OPTS, { "--replace", NULL, NULL }, { NULL, NULL, NULL } };
static const struct ctl_opt alter_remote_opts[] = { REMOTE_ATTR_OPTS, { NULL, NULL, NULL } };
static const struct ctl_opt delete_opts[] = { { "--purge", NULL, NULL }, { NULL, NULL, NULL } };

#define LOCAL_SYN "[--maxdepth N] [--maxmsgl N] [--usage normal|xmitq] [--put enabled|disabled] " \
	"[--get enabled|disabled] [--descr TEXT]"
#define REMOTE_SYN "[--xmitq Q] [--put enabled|disabled] [--descr TEXT]"

static const struct ctl_cmd queue_cmds[] = {
	{ "define qlocal", "NAME " LOCAL_SYN " [--replace]", define_local_opts, 1, 1,
	  do_define_local, 0 },
	{ "define qremote", "NAME --rname Q --rqmname QM " REMOTE_SYN " [--replace]",
	  define_remote_opts, 1, 1, do_define_remote, 0 },
	{ "alter qlocal", "NAME " LOCAL_SYN, alter_local_opts, 1, 1, do_alter_local, 0 },
	{ "alter qremote", "NAME [--rname Q] [--rqmname QM] " REMOTE_SYN, alter_remote_opts, 1, 1,
	  do_alter_remote, 0 },
	{ "delete queue", "NAME [--purge]", delete_opts, 1, 1, do_delete, 0 },
	{ "display queue", "[NAME|PATTERN]", NULL, 0, 1, do_display, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_queue_family = { "queue", queue_cmds };

static const char *const enabled_words[] = { "enabled", "disabled", NULL };
static const char *const usage_words[] = { "normal", "xmitq", NULL };

/* Copies the attribute options given on the command line into req. */
static int put_attrs(const struct ctl_args *a, json_t *req, bool local)
{
	long v;
	int w, n = 0;
	const char *s;

	if (local) {
		if (ctl_opt_long(a, "--maxdepth", 1, 999999999, &v) && ++n)
			json_object_set_new(req, "maxdepth", json_integer(v));
		if (ctl_opt_long(a, "--maxmsgl", 1, 104857600, &v) && ++n)
			json_object_set_new(req, "maxmsgl", json_integer(v));
		if ((w = ctl_opt_word(a, "--usage", usage_words)) >= 0 && ++n)
			json_object_set_new(req, "usage", json_string(usage_words[w]));
		if ((w = ctl_opt_word(a, "--get", enabled_words)) >= 0 && ++n)
			json_object_set_new(req, "get", json_string(enabled_words[w]));
	} else {
		if ((s = ctl_opt(a, "--rname")) != NULL && ++n) {
			ctl_check_name("--rname", s);
			json_object_set_new(req, "rname", json_string(s));
		}
		if ((s = ctl_opt(a, "--rqmname")) != NULL && ++n) {
			ctl_check_name("--rqmname", s);
			json_object_set_new(req, "rqmname", json_string(s));
		}
		if ((s = ctl_opt(a, "--xmitq")) != NULL && ++n) {
			if (s[0] != '\0')
				ctl_check_name("--xmitq", s);
			json_object_set_new(req, "xmitq", json_string(s));
		}
	}
	if ((w = ctl_opt_word(a, "--put", enabled_words)) >= 0 && ++n)
		json_object_set_new(req, "put", json_string(enabled_words[w]));
	if ((s = ctl_opt(a, "--descr")) != NULL && ++n) {
		if (strlen(s) > QUEUE_DESCR_MAX)
			ctl_usage_err("--descr is %zu bytes long (at most %d)", strlen(s), QUEUE_DESCR_MAX);
		json_object_set_new(req, "descr", json_string(s));
	}
	return n;
}

static int define_or_alter(struct ctl *c, const struct ctl_args *a, bool local, bool alter)
{
	const char *name = a->pos[0];
	const char *type = local ? "qlocal" : "qremote";
	json_t *req = admin_request_new(alter ? "alter queue" : "define queue");
	char done[160];

	ctl_check_name("queue name", name);
	json_object_set_new(req, "type", json_string(type));
	json_object_set_new(req, "name", json_string(name));
	int n = put_attrs(a, req, local);
	if (alter && n == 0) {
		json_decref(req);
		ctl_usage_err("nothing to alter: give at least one attribute (chanctl alter %s --help)",
		              type);
	}
	if (!alter && !local && (ctl_opt(a, "--rname") == NULL || ctl_opt(a, "--rqmname") == NULL)) {
		json_decref(req);
		ctl_usage_err("define qremote needs --rname Q and --rqmname QM");
	}
	if (!alter)
		json_object_set_new(req, "replace", json_boolean(ctl_flag(a, "--replace")));
	snprintf(done, sizeof(done), "%s %s %s.", type, name, alter ? "altered" : "defined");
	return ctl_simple(c, req, done);
}

static int do_define_local(struct ctl *c, const struct ctl_args *a)
{
	return define_or_alter(c, a, true, false);
}

static int do_define_remote(struct ctl *c, const struct ctl_args *a)
{
	return define_or_alter(c, a, false, false);
}

static int do_alter_local(struct ctl *c, const struct ctl_args *a)
{
	return define_or_alter(c, a, true, true);
}

static int do_alter_remote(struct ctl *c, const struct ctl_args *a)
{
	return define_or_alter(c, a, false, true);
}

static int do_delete(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	json_t *req = admin_request_new("delete queue"), *f;
	int rc;

	ctl_check_name("queue name", name);
	json_object_set_new(req, "name", json_string(name));
	json_object_set_new(req, "purge", json_boolean(ctl_flag(a, "--purge")));
	rc = ctl_call(c, req, NULL, NULL, &f);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json) {
		ctl_json_print(f, stdout);
	} else {
		json_int_t n = json_integer_value(json_object_get(f, "purged"));
		if (n > 0)
			printf("queue %s deleted (%lld messages purged).\n", name, (long long)n);
		else
			printf("queue %s deleted.\n", name);
	}
	json_decref(f);
	return CTL_EXIT_OK;
}

/* A pattern is a name with '*' at its start and/or end, or "*". */
static void check_pattern(const char *p)
{
	char core[CHAND_NAME_MAX + 2];
	size_t n = strlen(p);

	if (strcmp(p, "*") == 0)
		return;
	if (n > CHAND_NAME_MAX + 2)
		ctl_fail(CHD_Q_BAD_NAME, "invalid pattern '%s': too long", p);
	const char *s = p[0] == '*' ? p + 1 : p;
	size_t m = strlen(s);
	if (m > 0 && s[m - 1] == '*')
		m--;
	if (m > CHAND_NAME_MAX)
		ctl_fail(CHD_Q_BAD_NAME, "invalid pattern '%s': too long", p);
	memcpy(core, s, m);
	core[m] = '\0';
	if (strchr(core, '*') != NULL)
		ctl_fail(CHD_Q_BAD_NAME, "invalid pattern '%s': '*' only at the start or end", p);
	ctl_check_name("queue name or pattern", core);
}

struct display_ctx {
	json_t *all;
};

static int on_queue(void *arg, json_t *rec)
{
	struct display_ctx *d = arg;

	json_array_append(d->all, rec);
	return 0;
}

static const char *jstr(const json_t *o, const char *k, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return NULL;
}

static int do_display(struct ctl *c, const struct ctl_args *a)
{
	const char *pat = a->npos > 0 ? a->pos[0] : "*";
	struct display_ctx d = { json_array() };
	json_t *req = admin_request_new("display queue");
	int rc;

	check_pattern(pat);
	json_object_set_new(req, "pattern", json_string(pat));
	rc = ctl_call(c, req, on_queue, &d, NULL);
	if (rc != CTL_EXIT_OK) {
		json_decref(d.all);
		return rc;
	}
	if (c->json) {
		char *s = json_dumps(d.all, JSON_INDENT(2));
		if (s != NULL)
			printf("%s\n", s);
		free(s);
	} else {
		static const char *const heads[] = { "NAME", "TYPE", "USAGE", "CURDEPTH", "MAXDEPTH",
			"MAXMSGL", "PUT", "GET", "RNAME", "RQMNAME", "XMITQ" };
		static const char *const keys[] = { "name", "type", "usage", "curdepth", "maxdepth",
			"maxmsgl", "put", "get", "rname", "rqmname", "xmitq" };
		struct ctl_table t;
		size_t i;
		json_t *q;

		ctl_table_init(&t, heads, 11);
		json_array_foreach(d.all, i, q) {
			char bufs[11][32];
			const char *cells[11];
			for (int k = 0; k < 11; k++)
				cells[k] = jstr(q, keys[k], bufs[k], sizeof(bufs[k]));
			ctl_table_add(&t, cells);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
	}
	json_decref(d.all);
	return CTL_EXIT_OK;
}
