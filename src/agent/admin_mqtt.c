/* The telemetry service as the agent sees it (struct agent_module) and its
 * own admin command, "publish" (chanctl put --topic).  Channel commands
 * for telemetry channels arrive through admin_channel.c, which hands
 * names of type mqtt to the mqtt module (include/chand/mqtt.h). */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "chand/log.h"
#include "chand/mqtt.h"

static struct mqtt_host mqtt_host;

static int host_store_open(void *arg, struct store **out, char *err, size_t errlen)
{
	return agent_store_open(arg, out, err, errlen);
}

static struct tls_ctx *host_tls_get(void *arg)
{
	return agent_tls_get(arg);
}

/* {"cmd":"publish","topic":T,"qos":N,"retain":B,"blobs":[len,...]}: each
 * blob is one publication. */
static int cmd_publish(struct admin_conn *c, json_t *req)
{
	struct mqtt_result r = { 0 };
	const char *topic;
	long long qos = 0;
	bool retain = false;
	size_t att_len = 0, n, off = 0;
	const uint8_t *att = admin_req_blob(c, &att_len);
	const json_t *blobs = json_object_get(req, "blobs");
	const uint8_t **bodies;
	size_t *lens;
	json_t *v;
	size_t i;
	int rc;

	if (admin_get_str(c, req, "topic", true, &topic) != 0 ||
	    admin_get_int(c, req, "qos", false, &qos, NULL) != 0 ||
	    admin_get_bool(c, req, "retain", false, &retain, NULL) != 0)
		return -1;
	if (qos < 0 || qos > 2)
		return admin_reply_err(c, CHD_ADM_BAD_REQUEST, "qos must be 0, 1 or 2");
	n = json_array_size(blobs);
	if (n == 0)
		return admin_reply_err(c, CHD_ADM_BAD_REQUEST, "no message to publish");
	bodies = calloc(n, sizeof *bodies);
	lens = calloc(n, sizeof *lens);
	if (bodies == NULL || lens == NULL) {
		free(bodies);
		free(lens);
		return admin_reply_err(c, CHD_SYS_RESOURCE, "out of memory");
	}
	json_array_foreach(blobs, i, v) {
		size_t len = (size_t)json_integer_value(v);
		bodies[i] = att != NULL ? att + off : (const uint8_t *)"";
		lens[i] = len;
		off += len;
	}
	rc = mqtt_op_publish(topic, (uint8_t)qos, retain, bodies, lens, n, &r);
	free(bodies);
	free(lens);
	if (rc != 0)
		return admin_reply_err_fields(c, r.code, json_pack("{s:I}", "published",
		                              (json_int_t)r.published), "%s", r.text);
	return admin_reply_ok(c, json_pack("{s:I,s:s}", "published", (json_int_t)n, "topic", topic));
}

static int get_route_name(struct admin_conn *c, json_t *req, const char **name)
{
	char why[160];

	if (admin_get_str(c, req, "name", true, name) != 0)
		return -1;
	if (!name_valid(*name, why, sizeof why)) {
		admin_reply_err(c, CHD_Q_BAD_NAME, "invalid route name: %s", why);
		return 1;
	}
	return 0;
}

static int cmd_route_define(struct admin_conn *c, json_t *req)
{
	struct mqtt_result r = { 0 };
	const char *name;
	bool replace = false;
	int rc;

	if ((rc = get_route_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_bool(c, req, "replace", false, &replace, NULL) != 0)
		return -1;
	if (mqtt_op_route_define(admin_store(c), name, req, replace, &r) != 0)
		return admin_reply_err(c, r.code, "%s", r.text);
	return admin_reply_ok(c, NULL);
}

static int cmd_route_delete(struct admin_conn *c, json_t *req)
{
	struct mqtt_result r = { 0 };
	const char *name;
	int rc;

	if ((rc = get_route_name(c, req, &name)) != 0)
		return rc < 0 ? -1 : 0;
	if (mqtt_op_route_delete(admin_store(c), name, &r) != 0)
		return admin_reply_err(c, r.code, "%s", r.text);
	return admin_reply_ok(c, NULL);
}

static int cmd_route_display(struct admin_conn *c, json_t *req)
{
	const char *pattern = NULL;
	json_t *arr, *v;
	size_t i;

	if (admin_get_str(c, req, "pattern", false, &pattern) != 0)
		return -1;
	if (pattern == NULL || pattern[0] == '\0')
		pattern = "*";
	arr = mqtt_op_route_display(pattern);
	if (json_array_size(arr) == 0 && strchr(pattern, '*') == NULL) {
		json_decref(arr);
		return admin_reply_err(c, CHD_Q_UNKNOWN, "route %s is not defined", pattern);
	}
	json_array_foreach(arr, i, v) {
		if (admin_send_record(c, json_incref(v)) != 0) {
			json_decref(arr);
			return -1;
		}
	}
	i = json_array_size(arr);
	json_decref(arr);
	return admin_reply_ok(c, json_pack("{s:I}", "count", (json_int_t)i));
}

static const struct admin_cmd admin_mqtt_cmds[] = {
	{ "define route", cmd_route_define },
	{ "delete route", cmd_route_delete },
	{ "display route", cmd_route_display },
	{ NULL, NULL },
};

static const struct admin_cmd admin_mqtt_blob_cmds[] = {
	{ "publish", cmd_publish },
	{ NULL, NULL },
};

static int mod_start(struct agent *a)
{
	const struct chand_config *cfg = a->cfg;

	memset(&mqtt_host, 0, sizeof mqtt_host);
	mqtt_host.arg = a;
	mqtt_host.qmgr = cfg->qmgr;
	mqtt_host.default_label = cfg->ks_label;
	mqtt_host.handshake_timeout_ms = cfg->tls_handshake_timeout > 0
	                                 ? cfg->tls_handshake_timeout * 1000 : 30000;
	mqtt_host.store_open = host_store_open;
	mqtt_host.tls_get = host_tls_get;
	mqtt_host.owner_id = agent_owner_id;
	return mqtt_svc_start(&mqtt_host);
}

static void mod_stop(struct agent *a)
{
	(void)a;
	mqtt_svc_stop();
}

const struct agent_module mqtt_module = {
	.name = "telemetry",
	.admin_cmds = admin_mqtt_cmds,
	.admin_blob_cmds = admin_mqtt_blob_cmds,
	.start = mod_start,
	.inbound = NULL,
	.stop = mod_stop,
};
