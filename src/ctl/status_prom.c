/* `chanctl status --format prometheus`: the status records the command
 * already fetched, plus the local queues (display queue) and the agent's
 * identity (agent info), through the formatter the agent's own metrics
 * listener uses (include/chand/metrics.h).  Written for node_exporter's
 * textfile collector: the whole text is built before anything is
 * printed, so a failure never leaves half a file behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status_prom.h"
#include "chand/metrics.h"

static int prom_collect(void *arg, json_t *rec)
{
	json_array_append(arg, rec);
	return 0;
}

/* The agent's "agent info" reply, or NULL if this agent has no such
 * command (an older chand): the start time is then left out. */
static json_t *prom_agent_info(struct ctl *c)
{
	char err[256];
	json_t *f = NULL;

	if (ctl_send(c, admin_request_new("agent info")) != 0)
		return NULL;
	if (ctl_recv(c, &f, err, sizeof(err)) != 0)
		return NULL;
	if (!json_is_true(json_object_get(f, "ok"))) {
		json_decref(f);
		return NULL;
	}
	return f;
}

int ctl_status_prom(struct ctl *c, const json_t *status)
{
	json_t *req = admin_request_new("display queue"), *queues = json_array(), *info;
	struct metrics_agent ag = { 0 };
	char *text;
	int rc;

	json_object_set_new(req, "pattern", json_string("*"));
	rc = ctl_call(c, req, prom_collect, queues, NULL);
	if (rc != CTL_EXIT_OK) {
		json_decref(queues);
		return rc;
	}
	info = prom_agent_info(c);
	if (info != NULL) {
		const json_t *st = json_object_get(info, "start_time_ms");
		const json_t *q = json_object_get(info, "qmgr"), *v = json_object_get(info, "version");
		ag.qmgr = json_is_string(q) ? json_string_value(q) : NULL;
		ag.version = json_is_string(v) ? json_string_value(v) : NULL;
		ag.start_ms = json_is_integer(st) ? (int64_t)json_integer_value(st) : 0;
	}
	text = metrics_format(status, queues, &ag);
	json_decref(queues);
	json_decref(info);
	if (text == NULL)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	fputs(text, stdout);
	free(text);
	return CTL_EXIT_OK;
}
