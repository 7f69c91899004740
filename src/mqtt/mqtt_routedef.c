/* Route definitions (doc/TELEMETRY.md): attributes, checks and JSON form.
 * Pure: no I/O, no global state. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chand/mqtt.h"
#include "chand/pubsub.h"

static int rd_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int rd_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void mqtt_route_init(struct mqtt_route_def *r, const char *name)
{
	memset(r, 0, sizeof *r);
	str_copy(r->name, name, sizeof r->name);
}

struct rattr {
	const char *key;
	size_t off, size;
};

static const struct rattr rattrs[] = {
	{ "topic", offsetof(struct mqtt_route_def, topic), MQTT_ROUTE_FILTER_MAX + 1 },
	{ "queue", offsetof(struct mqtt_route_def, queue), CHAND_NAME_MAX + 1 },
	{ "qmgr", offsetof(struct mqtt_route_def, qmgr), CHAND_NAME_MAX + 1 },
	{ "remote_prefix", offsetof(struct mqtt_route_def, remote_prefix), MQTT_ROUTE_PREFIX_MAX + 1 },
	{ "local_prefix", offsetof(struct mqtt_route_def, local_prefix), MQTT_ROUTE_PREFIX_MAX + 1 },
	{ "descr", offsetof(struct mqtt_route_def, descr), 65 },
};

int mqtt_route_apply_json(struct mqtt_route_def *r, const json_t *o, char *err, size_t errlen)
{
	const json_t *v;

	for (size_t i = 0; i < sizeof rattrs / sizeof rattrs[0]; i++) {
		const char *s;
		if ((v = json_object_get(o, rattrs[i].key)) == NULL)
			continue;
		if (!json_is_string(v))
			return rd_err(err, errlen, "%s must be a string", rattrs[i].key);
		s = json_string_value(v);
		if (strlen(s) >= rattrs[i].size)
			return rd_err(err, errlen, "%s is too long (at most %zu bytes)", rattrs[i].key,
			              rattrs[i].size - 1);
		str_copy((char *)r + rattrs[i].off, s, rattrs[i].size);
	}
	if ((v = json_object_get(o, "qos_min")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2)
			return rd_err(err, errlen, "qos_min must be 0, 1 or 2");
		r->qos_min = (int)json_integer_value(v);
	}
	return 0;
}

int mqtt_route_validate(const struct mqtt_route_def *r, char *err, size_t errlen)
{
	char why[200];
	const char *w = NULL;
	size_t pos = 0;

	if (!name_valid(r->name, why, sizeof why))
		return rd_err(err, errlen, "invalid route name: %s", why);
	if (r->topic[0] == '\0')
		return rd_err(err, errlen, "a route needs --topic FILTER");
	if (topic_filter_check(r->topic, strlen(r->topic), &pos, &w) != 0)
		return rd_err(err, errlen, "invalid topic filter '%s' at position %zu: %s", r->topic,
		              pos + 1, w != NULL ? w : "invalid");
	if (strncmp(r->topic, "$share/", 7) == 0)
		return rd_err(err, errlen, "a route cannot use a shared subscription filter");
	if ((r->queue[0] != '\0') == (r->qmgr[0] != '\0'))
		return rd_err(err, errlen, "a route needs exactly one of --queue Q and --qmgr QM");
	if (r->queue[0] != '\0' && !name_valid(r->queue, why, sizeof why))
		return rd_err(err, errlen, "invalid queue name: %s", why);
	if (r->qmgr[0] != '\0' && !name_valid(r->qmgr, why, sizeof why))
		return rd_err(err, errlen, "invalid queue manager name: %s", why);
	if (r->queue[0] != '\0' && (r->remote_prefix[0] != '\0' || r->local_prefix[0] != '\0'))
		return rd_err(err, errlen, "--remote-prefix and --local-prefix apply to --qmgr routes");
	if (r->remote_prefix[0] != '\0' &&
	    (strchr(r->remote_prefix, '+') != NULL || strchr(r->remote_prefix, '#') != NULL))
		return rd_err(err, errlen, "--remote-prefix holds a wildcard");
	if (r->local_prefix[0] != '\0' &&
	    (strchr(r->local_prefix, '+') != NULL || strchr(r->local_prefix, '#') != NULL))
		return rd_err(err, errlen, "--local-prefix holds a wildcard");
	return 0;
}

json_t *mqtt_route_to_json(const struct mqtt_route_def *r)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "topic", json_string(r->topic));
	json_object_set_new(o, "queue", json_string(r->queue));
	json_object_set_new(o, "qmgr", json_string(r->qmgr));
	json_object_set_new(o, "remote_prefix", json_string(r->remote_prefix));
	json_object_set_new(o, "local_prefix", json_string(r->local_prefix));
	json_object_set_new(o, "qos_min", json_integer(r->qos_min));
	json_object_set_new(o, "descr", json_string(r->descr));
	return o;
}

int mqtt_route_from_text(struct mqtt_route_def *r, const char *name, const char *text, char *err,
                         size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	char why[300];
	int rc;

	if (o == NULL)
		return rd_err(err, errlen, "route %s: stored definition is not JSON: %s", name, je.text);
	mqtt_route_init(r, name);
	rc = mqtt_route_apply_json(r, o, why, sizeof why);
	json_decref(o);
	if (rc != 0)
		return rd_err(err, errlen, "route %s: stored definition is invalid: %s", name, why);
	return 0;
}

bool mqtt_route_topic(const struct mqtt_route_def *r, const char *topic, char *out, size_t len)
{
	size_t lp = strlen(r->local_prefix);
	const char *rest = topic;
	int n;

	if (lp > 0 && strncmp(topic, r->local_prefix, lp) == 0)
		rest = topic + lp;
	n = snprintf(out, len, "%s%s", r->remote_prefix, rest);
	return n > 0 && (size_t)n < len;
}
