/* The channel module as the agent sees it (struct agent_module) and its
 * admin commands: define/alter/delete/display channel, start/stop/ping/
 * reset/resolve channel, status, refresh security.  The work is done by
 * the channel module (include/chand/channel.h); this file only moves
 * request fields in and replies out. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "chand/channel.h"
#include "chand/log.h"
#include "chand/mqtt.h"
#include "chand/tls.h"

static struct chan_host chan_host;

static int host_store_open(void *arg, struct store **out, char *err, size_t errlen)
{
	return agent_store_open(arg, out, err, errlen);
}

static struct tls_ctx *host_tls_get(void *arg)
{
	return agent_tls_get(arg);
}

/* ---- replies ---- */

static int reply_result(struct admin_conn *c, const struct chan_result *r)
{
	return admin_reply_err(c, r->code, "%s", r->text);
}

static int get_name(struct admin_conn *c, json_t *req, const char **name)
{
	char why[160];

	if (admin_get_str(c, req, "name", true, name) != 0)
		return -1;
	if (!name_valid(*name, why, sizeof(why))) {
		admin_reply_err(c, CHD_Q_BAD_NAME, "invalid channel name: %s", why);
		return 1;
	}
	return 0;
}

/* ---- commands ---- */

/* A message channel of that name is defined here. */
static bool msg_channel_exists(struct admin_conn *c, const char *name)
{
	struct chan_result r = { 0 };
	json_t *arr = NULL;
	bool yes;

	if (chan_op_display(admin_store(c), name, &arr, &r) != 0)
		return false;
	yes = json_array_size(arr) > 0;
	json_decref(arr);
	return yes;
}

/* ---- warnings at define and alter ---- */

static void add_warning(json_t *arr, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_warning(json_t *arr, enum chd_code_id code, const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	json_array_append_new(arr, json_pack("{s:s,s:s}", "code", code_str(code), "text", text));
}

/* The reply to a define or alter that succeeded, with what the operator
 * should know about the definition now stored: a CERTLABL that is not in
 * the keystore (the channel could not present its certificate) and a
 * channel without SSLCIPH (plain TCP). They travel as "warnings":
 * [{"code","text"}] (doc/ADMIN-PROTOCOL.md); chanctl prints them on
 * stderr. check_all false (alter): only when the request touched SSLCIPH
 * or CERTLABL, so that altering BATCHSZ does not repeat them. */
static int reply_defined(struct admin_conn *c, json_t *req, const char *name, bool mqtt,
                         bool check_all)
{
	struct chan_result r = { 0 };
	json_t *arr = NULL, *def, *w;
	const char *ciph, *label;

	if (!check_all && json_object_get(req, "sslciph") == NULL &&
	    json_object_get(req, "certlabl") == NULL)
		return admin_reply_ok(c, NULL);
	if (mqtt)
		arr = mqtt_op_display(name);
	else if (chan_op_display(admin_store(c), name, &arr, &r) != 0)
		arr = NULL;
	def = json_array_get(arr, 0);
	if (def == NULL) {
		json_decref(arr);
		return admin_reply_ok(c, NULL);
	}
	w = json_array();
	ciph = json_string_value(json_object_get(def, "sslciph"));
	label = json_string_value(json_object_get(def, "certlabl"));
	if (label != NULL && label[0] != '\0') {
		struct tls_ctx *ctx = agent_tls_get(admin_agent(c));
		bool found = ctx != NULL && tls_ctx_has_label(ctx, label);

		if (ctx != NULL)
			tls_ctx_unref(ctx);
		if (!found)
			add_warning(w, CHD_TLS_LABEL, "channel %s: CERTLABL '%s' is not a label in the "
			            "keystore; import it (chanctl keystore import --label %s ...) and run "
			            "refresh security before the channel starts", name, label, label);
	}
	if (ciph == NULL || ciph[0] == '\0')
		add_warning(w, CHD_TLS_PLAINTEXT, "channel %s has no SSLCIPH: plain TCP, messages and "
		            "credentials travel unencrypted", name);
	json_decref(arr);
	if (json_array_size(w) == 0) {
		json_decref(w);
		return admin_reply_ok(c, NULL);
	}
	return admin_reply_ok(c, json_pack("{s:o}", "warnings", w));
}

/* Telemetry channels are the mqtt module's: these commands hand them over. */
static int mqtt_reply(struct admin_conn *c, int rc, const struct mqtt_result *mr)
{
	if (rc != 0)
		return admin_reply_err(c, mr->code, "%s", mr->text);
	return admin_reply_ok(c, NULL);
}

/* A message-channel attribute the mqtt module does not know (it refuses
 * its own list of them, and would ignore this one): refused the same way.
 * True if refused, with the reply's result in *rc. */
static bool mqtt_attr_refused(struct admin_conn *c, const json_t *req, const char *name, int *rc)
{
	if (json_object_get(req, "keyupdate_bytes") == NULL)
		return false;
	*rc = admin_reply_err(c, CHD_CONFIG_ERROR, "channel %s: keyupdate_bytes does not apply to "
	                      "a telemetry channel (type mqtt)", name);
	return true;
}

static int cmd_define(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name, *type;
	bool replace = false;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_bool(c, req, "replace", false, &replace, NULL) != 0)
		return -1;
	type = json_string_value(json_object_get(req, "type"));
	if (type != NULL && strcmp(type, "mqtt") == 0) {
		struct mqtt_result mr = { 0 };
		if (msg_channel_exists(c, name))
			return admin_reply_err(c, CHD_Q_EXISTS, "channel %s is already defined as a "
			                       "message channel; delete it first", name);
		if (mqtt_attr_refused(c, req, name, &rc))
			return rc;
		if (mqtt_op_define(admin_store(c), name, req, replace, &mr) != 0)
			return admin_reply_err(c, mr.code, "%s", mr.text);
		return reply_defined(c, req, name, true, true);
	}
	if (mqtt_svc_has(name))
		return admin_reply_err(c, CHD_Q_EXISTS, "channel %s is a telemetry channel (type mqtt); "
		                       "delete it first to define another type", name);
	if (chan_op_define(admin_store(c), name, req, replace, &r) != 0)
		return reply_result(c, &r);
	return reply_defined(c, req, name, false, true);
}

static int cmd_alter(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (mqtt_svc_has(name)) {
		struct mqtt_result mr = { 0 };
		if (mqtt_attr_refused(c, req, name, &rc))
			return rc;
		if (mqtt_op_alter(admin_store(c), name, req, &mr) != 0)
			return admin_reply_err(c, mr.code, "%s", mr.text);
		return reply_defined(c, req, name, true, false);
	}
	if (chan_op_alter(admin_store(c), name, req, &r) != 0)
		return reply_result(c, &r);
	return reply_defined(c, req, name, false, false);
}

static int cmd_delete(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (mqtt_svc_has(name)) {
		struct mqtt_result mr = { 0 };
		return mqtt_reply(c, mqtt_op_delete(admin_store(c), name, &mr), &mr);
	}
	if (chan_op_delete(admin_store(c), name, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, NULL);
}

/* Streams the objects of arr as records; a plain name that matches
 * nothing is an error, a pattern is not. */
static int send_records(struct admin_conn *c, json_t *arr, const char *pattern)
{
	size_t i, n = json_array_size(arr);
	json_t *v;

	if (n == 0 && strchr(pattern, '*') == NULL) {
		json_decref(arr);
		return admin_reply_err(c, CHD_CH_UNKNOWN, "channel %s is not defined", pattern);
	}
	json_array_foreach(arr, i, v) {
		if (admin_send_record(c, json_incref(v)) != 0) {
			json_decref(arr);
			return -1;
		}
	}
	json_decref(arr);
	return admin_reply_ok(c, json_pack("{s:I}", "count", (json_int_t)n));
}

static int get_pattern(struct admin_conn *c, json_t *req, const char **pattern)
{
	if (admin_get_str(c, req, "pattern", false, pattern) != 0)
		return -1;
	if (*pattern == NULL || (*pattern)[0] == '\0')
		*pattern = "*";
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

	return strcmp(json_string_value(json_object_get(x, "name")),
	              json_string_value(json_object_get(y, "name")));
}

/* Message channels and telemetry channels in one list, sorted by name. */
static json_t *merge(json_t *arr, json_t *more)
{
	size_t n, i;
	json_t **v, *out;

	json_array_extend(arr, more);
	json_decref(more);
	n = json_array_size(arr);
	if (n < 2 || (v = calloc(n, sizeof *v)) == NULL)
		return arr;
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof *v, cmp_name);
	out = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

static int cmd_display(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *pattern;
	json_t *arr = NULL;

	if (get_pattern(c, req, &pattern) != 0)
		return -1;
	if (chan_op_display(admin_store(c), pattern, &arr, &r) != 0)
		return reply_result(c, &r);
	return send_records(c, merge(arr, mqtt_op_display(pattern)), pattern);
}

static int cmd_status(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *pattern, *cpat = NULL;
	bool clients = false;
	json_t *arr = NULL;

	if (get_pattern(c, req, &pattern) != 0)
		return -1;
	if (admin_get_bool(c, req, "clients", false, &clients, NULL) != 0 ||
	    admin_get_str(c, req, "client_pattern", false, &cpat) != 0)
		return -1;
	if (cpat != NULL && cpat[0] == '\0')
		cpat = NULL;
	if (chan_op_status(admin_store(c), pattern, &arr, &r) != 0)
		return reply_result(c, &r);
	return send_records(c, merge(arr, mqtt_op_status(pattern, clients, cpat)), pattern);
}

static int cmd_start(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (mqtt_svc_has(name)) {
		struct mqtt_result mr = { 0 };
		return mqtt_reply(c, mqtt_op_start(admin_store(c), name, &mr), &mr);
	}
	if (chan_op_start(admin_store(c), name, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, NULL);
}

static int cmd_stop(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name, *mode, *client = NULL;
	bool force = false;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_str(c, req, "mode", false, &mode) != 0 ||
	    admin_get_str(c, req, "client", false, &client) != 0)
		return -1;
	if (mqtt_svc_has(name)) {
		struct mqtt_result mr = { 0 };
		return mqtt_reply(c, mqtt_op_stop(admin_store(c), name, client, &mr), &mr);
	}
	if (client != NULL)
		return admin_reply_err(c, CHD_CH_TYPE, "--client applies to telemetry channels only; "
		                       "%s is a message channel", name);
	if (mode != NULL) {
		if (strcmp(mode, "force") == 0)
			force = true;
		else if (strcmp(mode, "quiesce") != 0)
			return admin_bad_request(c, "\"mode\" must be \"quiesce\" or \"force\"");
	}
	if (chan_op_stop(admin_store(c), name, force, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, NULL);
}

static int cmd_ping(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name;
	json_t *out = NULL;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (mqtt_svc_has(name))
		return admin_reply_err(c, CHD_CH_TYPE, "%s applies to message channels; %s is a "
		                       "telemetry channel (type mqtt)", "ping channel", name);
	if (chan_op_ping(admin_store(c), name, &out, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, out);
}

static int cmd_reset(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name;
	long long seq = 1;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_int(c, req, "seqnum", false, &seq, NULL) != 0)
		return -1;
	if (seq < 1 || seq > 999999999)
		return admin_reply_err(c, CHD_ADM_BAD_REQUEST, "seqnum must be from 1 to 999999999");
	if (mqtt_svc_has(name))
		return admin_reply_err(c, CHD_CH_TYPE, "%s applies to message channels; %s is a "
		                       "telemetry channel (type mqtt)", "reset channel", name);
	if (chan_op_reset(admin_store(c), name, (long)seq, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, json_pack("{s:I}", "seqnum", (json_int_t)seq));
}

static int cmd_resolve(struct admin_conn *c, json_t *req)
{
	struct chan_result r = { 0 };
	const char *name, *action;
	bool commit;
	int rc;

	if ((rc = get_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_str(c, req, "action", true, &action) != 0)
		return -1;
	if (strcmp(action, "commit") == 0)
		commit = true;
	else if (strcmp(action, "backout") == 0)
		commit = false;
	else
		return admin_bad_request(c, "\"action\" must be \"commit\" or \"backout\"");
	if (mqtt_svc_has(name))
		return admin_reply_err(c, CHD_CH_TYPE, "%s applies to message channels; %s is a "
		                       "telemetry channel (type mqtt)", "resolve channel", name);
	if (chan_op_resolve(admin_store(c), name, commit, &r) != 0)
		return reply_result(c, &r);
	return admin_reply_ok(c, json_pack("{s:s,s:I}", "action", action, "deleted",
	                                   (json_int_t)(commit ? atol(r.text) : 0)));
}

static int cmd_refresh_security(struct admin_conn *c, json_t *req)
{
	struct agent *a = admin_agent(c);
	const struct chand_config *cfg = a->cfg;
	struct tls_ctx *ctx = NULL;
	struct tls_error err = { 0 };
	size_t labels;

	(void)req;
	if (tls_ctx_load(&ctx, cfg->ks_path, cfg->ks_stash, &err) != 0) {
		log_error(code_str(err.code), "refresh security failed, the previous keystore stays in "
		          "use: %s", err.text);
		return admin_reply_err(c, err.code, "refresh security failed (the previous keystore "
		                       "stays in use): %s", err.text);
	}
	labels = tls_ctx_label_count(ctx);
	agent_tls_swap(a, ctx);
	chan_op_recheck_peers(ctx);
	mqtt_op_refresh(ctx);
	log_info(code_str(CHD_KS_REFRESHED), "keystore=%s labels=%zu refresh security: new TLS handshakes use the "
	         "reloaded keystore; running channels keep theirs unless their peer is no "
	         "longer accepted", cfg->ks_path, labels);
	return admin_reply_ok(c, json_pack("{s:s,s:I}", "keystore", cfg->ks_path, "labels",
	                                   (json_int_t)labels));
}

static const struct admin_cmd admin_channel_cmds[] = {
	{ "define channel", cmd_define },
	{ "alter channel", cmd_alter },
	{ "delete channel", cmd_delete },
	{ "display channel", cmd_display },
	{ "start channel", cmd_start },
	{ "stop channel", cmd_stop },
	{ "ping channel", cmd_ping },
	{ "reset channel", cmd_reset },
	{ "resolve channel", cmd_resolve },
	{ "status", cmd_status },
	{ "refresh security", cmd_refresh_security },
	{ NULL, NULL },
};

/* ---- the module ---- */

static int mod_start(struct agent *a)
{
	const struct chand_config *cfg = a->cfg;

	memset(&chan_host, 0, sizeof(chan_host));
	chan_host.arg = a;
	chan_host.qmgr = cfg->qmgr;
	chan_host.default_label = cfg->ks_label;
	chan_host.dlq = cfg->dlq;
	chan_host.max_channels = cfg->max_channels;
	chan_host.handshake_timeout_ms = cfg->tls_handshake_timeout > 0
	                                 ? cfg->tls_handshake_timeout * 1000 : 30000;
	chan_host.dead_peer_timeout_s = (int)cfg->dead_peer_timeout;
	chan_host.spill_dir = cfg->data_dir;
	chan_host.store_open = host_store_open;
	chan_host.tls_get = host_tls_get;
	chan_host.owner_id = agent_owner_id;
	return chan_sup_start(&chan_host);
}

static void mod_inbound(struct agent *a, int fd, const struct sockaddr_storage *peer,
                        socklen_t len)
{
	(void)a;
	chan_sup_inbound(fd, peer, len);
}

static void mod_stop(struct agent *a)
{
	(void)a;
	chan_sup_stop(AGENT_STOP_BOUND_MS - 1000);
}

const struct agent_module chan_module = {
	.name = "channel",
	.admin_cmds = admin_channel_cmds,
	.start = mod_start,
	.inbound = mod_inbound,
	.stop = mod_stop,
};
