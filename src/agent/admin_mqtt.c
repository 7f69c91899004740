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
		return admin_reply_err(c, r.code, "%s", r.text);
	return admin_reply_ok(c, json_pack("{s:I,s:s}", "published", (json_int_t)n, "topic", topic));
}

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
	return mqtt_svc_start(&mqtt_host);
}

static void mod_stop(struct agent *a)
{
	(void)a;
	mqtt_svc_stop();
}

const struct agent_module mqtt_module = {
	.name = "telemetry",
	.admin_cmds = NULL,
	.admin_blob_cmds = admin_mqtt_blob_cmds,
	.start = mod_start,
	.inbound = NULL,
	.stop = mod_stop,
};
