/* chanctl route commands (doc/TELEMETRY.md): define/delete/display route.
 * A route carries the MQTT publications matching a topic filter to a
 * queue, or to another queue manager through the message channels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "chand/util.h"

static int do_define(struct ctl *c, const struct ctl_args *a);
static int do_delete(struct ctl *c, const struct ctl_args *a);
static int do_display(struct ctl *c, const struct ctl_args *a);

static const struct ctl_opt define_opts[] = {
	{ "--topic", NULL, "FILTER" }, { "--queue", NULL, "Q" }, { "--qmgr", NULL, "QM" },
	{ "--remote-prefix", NULL, "P" }, { "--local-prefix", NULL, "P" },
	{ "--qos-min", NULL, "0|1|2" }, { "--descr", NULL, "TEXT" }, { "--replace", NULL, NULL },
	{ NULL, NULL, NULL } };

static const struct ctl_cmd route_cmds[] = {
	{ "define route", "NAME --topic FILTER (--queue Q | --qmgr QM [--remote-prefix P] "
	  "[--local-prefix P]) [--qos-min 0|1|2] [--descr TEXT] [--replace]", define_opts, 1, 1,
	  do_define, 0 },
	{ "delete route", "NAME", NULL, 1, 1, do_delete, 0 },
	{ "display route", "[NAME|PATTERN]", NULL, 0, 1, do_display, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_route_family = { "route", route_cmds };

static int do_define(struct ctl *c, const struct ctl_args *a)
{
	static const char *const str_opts[][2] = {
		{ "--topic", "topic" }, { "--queue", "queue" }, { "--qmgr", "qmgr" },
		{ "--remote-prefix", "remote_prefix" }, { "--local-prefix", "local_prefix" },
		{ "--descr", "descr" },
	};
	const char *name = a->pos[0];
	json_t *req = admin_request_new("define route");
	char done[160];
	long v;

	ctl_check_name("route name", name);
	json_object_set_new(req, "name", json_string(name));
	for (size_t i = 0; i < sizeof str_opts / sizeof str_opts[0]; i++) {
		const char *s = ctl_opt(a, str_opts[i][0]);
		if (s != NULL)
			json_object_set_new(req, str_opts[i][1], json_string(s));
	}
	if (ctl_opt(a, "--topic") == NULL) {
		json_decref(req);
		ctl_usage_err("define route needs --topic FILTER");
	}
	if ((ctl_opt(a, "--queue") != NULL) == (ctl_opt(a, "--qmgr") != NULL)) {
		json_decref(req);
		ctl_usage_err("define route needs exactly one of --queue Q and --qmgr QM");
	}
	if (ctl_opt(a, "--queue") != NULL)
		ctl_check_name("--queue", ctl_opt(a, "--queue"));
	if (ctl_opt(a, "--qmgr") != NULL)
		ctl_check_name("--qmgr", ctl_opt(a, "--qmgr"));
	if (ctl_opt_long(a, "--qos-min", 0, 2, &v))
		json_object_set_new(req, "qos_min", json_integer(v));
	json_object_set_new(req, "replace", json_boolean(ctl_flag(a, "--replace")));
	snprintf(done, sizeof done, "route %s defined.", name);
	return ctl_simple(c, req, done);
}

static int do_delete(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	json_t *req = admin_request_new("delete route");
	char done[160];

	ctl_check_name("route name", name);
	json_object_set_new(req, "name", json_string(name));
	snprintf(done, sizeof done, "route %s deleted.", name);
	return ctl_simple(c, req, done);
}

static int on_route(void *arg, json_t *rec)
{
	json_array_append(arg, rec);
	return 0;
}

static const char *str_or_dash(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

static int do_display(struct ctl *c, const struct ctl_args *a)
{
	static const char *const heads[] = { "NAME", "TOPIC", "TARGET", "QOSMIN", "MATCHED",
		"FORWARDED", "DROPPED", "LOOPS", "LAST DROP" };
	json_t *req = admin_request_new("display route"), *all = json_array(), *f = NULL, *o;
	struct ctl_table t;
	size_t i;
	int rc;

	if (a->npos > 0)
		json_object_set_new(req, "pattern", json_string(a->pos[0]));
	rc = ctl_call(c, req, on_route, all, &f);
	json_decref(f);
	if (rc != CTL_EXIT_OK) {
		json_decref(all);
		return rc;
	}
	if (c->json) {
		ctl_json_print(all, stdout);
		json_decref(all);
		return CTL_EXIT_OK;
	}
	ctl_table_init(&t, heads, sizeof heads / sizeof heads[0]);
	json_array_foreach(all, i, o) {
		char target[160], qos[8], m[24], fw[24], dr[24], lp[24], pre[600];
		const char *q = str_or_dash(o, "queue");

		if (strcmp(q, "-") != 0) {
			snprintf(target, sizeof target, "queue %s", q);
		} else {
			const char *rp = str_or_dash(o, "remote_prefix"), *lpf = str_or_dash(o, "local_prefix");
			pre[0] = '\0';
			if (strcmp(rp, "-") != 0 || strcmp(lpf, "-") != 0)
				snprintf(pre, sizeof pre, " (%s -> %s)", strcmp(lpf, "-") ? lpf : "",
				         strcmp(rp, "-") ? rp : "");
			snprintf(target, sizeof target, "qmgr %s%.100s", str_or_dash(o, "qmgr"), pre);
		}
		snprintf(qos, sizeof qos, "%lld", (long long)json_integer_value(json_object_get(o, "qos_min")));
		snprintf(m, sizeof m, "%lld", (long long)json_integer_value(json_object_get(o, "matched")));
		snprintf(fw, sizeof fw, "%lld", (long long)json_integer_value(json_object_get(o, "forwarded")));
		snprintf(dr, sizeof dr, "%lld", (long long)json_integer_value(json_object_get(o, "dropped")));
		snprintf(lp, sizeof lp, "%lld",
		         (long long)json_integer_value(json_object_get(o, "loops_prevented")));
		const char *row[] = { str_or_dash(o, "name"), str_or_dash(o, "topic"), target, qos, m, fw,
		                      dr, lp, str_or_dash(o, "last_drop_reason") };
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	json_decref(all);
	return CTL_EXIT_OK;
}
