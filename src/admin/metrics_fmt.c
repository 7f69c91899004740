/* The Prometheus text exposition of `status` records (include/chand/
 * metrics.h).  Pure: builds a string from JSON, no I/O, so chanctl and
 * the agent's listener print exactly the same families. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chand/metrics.h"

/* The states `status` reports, in the order of enum chan_state: every
 * channel gets one chand_channel_state series for each (the StateSet
 * idiom: a query needs no knowledge of numeric codes). */
static const char *const prom_states[] = {
	"INACTIVE", "INITIALIZING", "BINDING", "STARTING", "RUNNING", "RETRYING", "STOPPING",
	"STOPPED", "REQUESTING",
};
#define PROM_NSTATES (sizeof(prom_states) / sizeof(prom_states[0]))

struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

size_t metrics_escape_label(const char *v, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *v; v++) {
		const char *rep = NULL;
		char one[2] = { *v, '\0' };
		if (*v == '\\')
			rep = "\\\\";
		else if (*v == '"')
			rep = "\\\"";
		else if (*v == '\n')
			rep = "\\n";
		else
			rep = one;
		for (; *rep; rep++, n++)
			if (n + 1 < outlen)
				out[n] = *rep;
	}
	if (outlen > 0)
		out[n < outlen ? n : outlen - 1] = '\0';
	return n;
}

/* A label value appended to b, escaped. */
static void mb_label(struct mbuf *b, const char *name, const char *v, bool comma)
{
	size_t need = metrics_escape_label(v, NULL, 0);
	char *e = malloc(need + 1);

	if (e == NULL) {
		b->oom = true;
		return;
	}
	metrics_escape_label(v, e, need + 1);
	mb_printf(b, "%s%s=\"%s\"", comma ? "," : "", name, e);
	free(e);
}

bool metrics_parse_time(const char *s, int64_t *ms)
{
	struct tm tm;
	int ms_part = 0, used = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
		return false;
	s += used;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				ms_part = ms_part * 10 + (*s - '0');
		for (; digits < 3; digits++)
			ms_part *= 10;
	}
	if (strcmp(s, "Z") != 0)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*ms = (int64_t)t * 1000 + ms_part;
	return true;
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : "";
}

/* The labels that identify a channel's series, without braces. */
static char *chan_labels(const json_t *o, const char *qmgr)
{
	struct mbuf b = { 0 };

	mb_label(&b, "name", jstr(o, "name"), false);
	mb_label(&b, "type", jstr(o, "type"), true);
	mb_label(&b, "qmgr", qmgr, true);
	mb_label(&b, "rqmname", jstr(o, "rqmname"), true);
	mb_label(&b, "conname", jstr(o, "conname"), true);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p != NULL ? b.p : strdup("");
}

enum fam_kind { F_INT, F_TIME, F_BOOL, F_UP };

/* Which channels a family describes: message channels (sdr, rcvr, svr,
 * rqstr), telemetry channels (type mqtt), or both. */
#define FOR_MSG 1u
#define FOR_MQTT 2u

struct chan_family {
	const char *name, *type, *help, *key;
	enum fam_kind kind;
	unsigned applies;
};

static const struct chan_family chan_families[] = {
	{ "chand_channel_messages_total", "counter",
	  "Messages the channel moved since the agent started.", "msgs", F_INT, FOR_MSG },
	{ "chand_channel_bytes_sent_total", "counter",
	  "Bytes the channel sent since the agent started.", "bytes_sent", F_INT, FOR_MSG },
	{ "chand_channel_bytes_received_total", "counter",
	  "Bytes the channel received since the agent started.", "bytes_received", F_INT, FOR_MSG },
	{ "chand_channel_batches_total", "counter",
	  "Batches the channel committed since the agent started.", "batches", F_INT, FOR_MSG },
	{ "chand_channel_up", "gauge", "1 if the channel is RUNNING, else 0.", "state", F_UP,
	  FOR_MSG | FOR_MQTT },
	{ "chand_channel_indoubt", "gauge", "1 if the channel holds an in-doubt batch.",
	  "indoubt", F_BOOL, FOR_MSG },
	{ "chand_channel_xmitq_depth", "gauge",
	  "Messages waiting on the channel's transmission queue.", "xmitq_depth", F_INT, FOR_MSG },
	{ "chand_channel_oldest_message_age_seconds", "gauge",
	  "Age of the oldest message on the transmission queue.", "oldest_msg_age", F_INT,
	  FOR_MSG },
	{ "chand_channel_short_retries_left", "gauge",
	  "Short-timer connection attempts left while RETRYING.", "short_retries_left", F_INT,
	  FOR_MSG },
	{ "chand_channel_long_retries_left", "gauge",
	  "Long-timer connection attempts left while RETRYING.", "long_retries_left", F_INT,
	  FOR_MSG },
	{ "chand_channel_peer_cert_expiry_timestamp_seconds", "gauge",
	  "When the connected peer's certificate expires (Unix time).", "peer_not_after",
	  F_TIME, FOR_MSG },
	/* Telemetry channels: the totals over their clients (a series per
	 * client would grow without bound). */
	{ "chand_mqtt_connections", "gauge",
	  "MQTT clients connected to the telemetry channel.", "connections", F_INT, FOR_MQTT },
	{ "chand_mqtt_max_clients", "gauge",
	  "Most MQTT clients the telemetry channel accepts at once.", "max_clients", F_INT,
	  FOR_MQTT },
	{ "chand_mqtt_messages_received_total", "counter",
	  "Publications the telemetry channel received from its clients since the agent started.",
	  "msgs_received", F_INT, FOR_MQTT },
	{ "chand_mqtt_messages_sent_total", "counter",
	  "Publications the telemetry channel sent to its clients since the agent started.",
	  "msgs_sent", F_INT, FOR_MQTT },
	{ "chand_mqtt_bytes_received_total", "counter",
	  "Bytes the telemetry channel received since the agent started.", "bytes_received", F_INT,
	  FOR_MQTT },
	{ "chand_mqtt_bytes_sent_total", "counter",
	  "Bytes the telemetry channel sent since the agent started.", "bytes_sent", F_INT,
	  FOR_MQTT },
};

/* FOR_MQTT for a telemetry channel's record, else FOR_MSG. */
static unsigned record_kind(const json_t *o)
{
	return strcmp(jstr(o, "type"), "mqtt") == 0 ? FOR_MQTT : FOR_MSG;
}

/* The value of family f for record o; false if it has none. */
static bool fam_value(const struct chan_family *f, const json_t *o, double *out, bool *isint)
{
	const json_t *v = json_object_get(o, f->key);
	int64_t ms;

	*isint = true;
	switch (f->kind) {
	case F_INT:
		if (!json_is_integer(v))
			return false;
		*out = (double)json_integer_value(v);
		return true;
	case F_BOOL:
		if (!json_is_boolean(v))
			return false;
		*out = json_is_true(v) ? 1 : 0;
		return true;
	case F_UP:
		if (!json_is_string(v))
			return false;
		*out = strcmp(json_string_value(v), "RUNNING") == 0 ? 1 : 0;
		return true;
	case F_TIME:
		if (!json_is_string(v) || !metrics_parse_time(json_string_value(v), &ms))
			return false;
		*out = (double)ms / 1000.0;
		*isint = ms % 1000 == 0;
		return true;
	}
	return false;
}

static void put_value(struct mbuf *b, const json_t *o, const struct chan_family *f, double v,
                      bool isint)
{
	/* Counters and depths beyond 2^53 lose nothing here: print the
	 * integer itself. */
	const json_t *j = json_object_get(o, f->key);

	if (f->kind == F_INT && json_is_integer(j))
		mb_printf(b, " %lld\n", (long long)json_integer_value(j));
	else if (isint)
		mb_printf(b, " %.0f\n", v);
	else
		mb_printf(b, " %.3f\n", v);
}

static void channel_families(struct mbuf *b, const json_t *status, char **labels, size_t n)
{
	for (size_t fi = 0; fi < sizeof(chan_families) / sizeof(chan_families[0]); fi++) {
		const struct chan_family *f = &chan_families[fi];
		bool head = false;
		for (size_t i = 0; i < n; i++) {
			const json_t *o = json_array_get(status, i);
			double v;
			bool isint;
			if (labels[i] == NULL || !(f->applies & record_kind(o)) ||
			    !fam_value(f, o, &v, &isint))
				continue;
			if (!head) {
				mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
				head = true;
			}
			mb_printf(b, "%s{%s}", f->name, labels[i]);
			put_value(b, o, f, v, isint);
		}
	}

	/* chand_channel_state: every known state, 1 for the current one. A
	 * state this formatter does not know (a newer agent) gets its own
	 * series rather than vanish. */
	bool head = false;
	for (size_t i = 0; i < n; i++) {
		const char *st = jstr(json_array_get(status, i), "state");
		bool known = false;
		if (labels[i] == NULL || st[0] == '\0')
			continue;
		if (!head) {
			mb_printf(b, "# HELP chand_channel_state Channel state: 1 for the current state, "
			          "0 for the others.\n# TYPE chand_channel_state gauge\n");
			head = true;
		}
		for (size_t s = 0; s < PROM_NSTATES; s++) {
			bool cur = strcmp(st, prom_states[s]) == 0;
			known |= cur;
			mb_printf(b, "chand_channel_state{%s,state=\"%s\"} %d\n", labels[i], prom_states[s],
			          cur ? 1 : 0);
		}
		if (!known) {
			mb_printf(b, "chand_channel_state{%s", labels[i]);
			mb_label(b, "state", st, true);
			mb_printf(b, "} 1\n");
		}
	}
}

static void queue_families(struct mbuf *b, const json_t *queues, const char *qmgr)
{
	bool head = false;
	size_t i;
	const json_t *q;

	json_array_foreach(queues, i, q) {
		const json_t *d = json_object_get(q, "curdepth");
		/* Remote definitions hold nothing: only local queues have a depth. */
		if (strcmp(jstr(q, "type"), "qlocal") != 0 || !json_is_integer(d))
			continue;
		if (!head) {
			mb_printf(b, "# HELP chand_queue_depth Messages on the local queue.\n"
			          "# TYPE chand_queue_depth gauge\n");
			head = true;
		}
		mb_printf(b, "chand_queue_depth{");
		mb_label(b, "qmgr", qmgr, false);
		mb_label(b, "queue", jstr(q, "name"), true);
		mb_printf(b, "} %lld\n", (long long)json_integer_value(d));
	}
}

char *metrics_format(const json_t *status, const json_t *queues, const struct metrics_agent *ag)
{
	struct mbuf b = { 0 };
	const char *qmgr = ag != NULL && ag->qmgr != NULL ? ag->qmgr : "";
	size_t n = json_is_array(status) ? json_array_size(status) : 0;
	char **labels = calloc(n ? n : 1, sizeof(*labels));

	if (labels == NULL)
		return NULL;
	mb_printf(&b, "# HELP chand_up 1 when the agent answered.\n# TYPE chand_up gauge\n"
	          "chand_up{");
	mb_label(&b, "qmgr", qmgr, false);
	mb_printf(&b, "} 1\n");
	if (ag != NULL && ag->version != NULL) {
		mb_printf(&b, "# HELP chand_info The agent's queue manager and version.\n"
		          "# TYPE chand_info gauge\nchand_info{");
		mb_label(&b, "qmgr", qmgr, false);
		mb_label(&b, "version", ag->version, true);
		mb_printf(&b, "} 1\n");
	}
	if (ag != NULL && ag->start_ms > 0) {
		mb_printf(&b, "# HELP chand_start_time_seconds When the agent started (Unix time).\n"
		          "# TYPE chand_start_time_seconds gauge\nchand_start_time_seconds{");
		mb_label(&b, "qmgr", qmgr, false);
		mb_printf(&b, "} %.3f\n", (double)ag->start_ms / 1000.0);
	}
	if (json_is_array(queues))
		queue_families(&b, queues, qmgr);

	/* Two records of one channel (cannot happen from one agent) would be
	 * duplicate series: export the first only. */
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(status, i);
		bool dup = false;
		if (!json_is_object(o) || jstr(o, "name")[0] == '\0')
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = labels[j] != NULL &&
			      strcmp(jstr(json_array_get(status, j), "name"), jstr(o, "name")) == 0;
		if (!dup && (labels[i] = chan_labels(o, qmgr)) == NULL)
			b.oom = true;
	}
	channel_families(&b, status, labels, n);
	for (size_t i = 0; i < n; i++)
		free(labels[i]);
	free(labels);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
