/* The Prometheus text exposition (format 0.0.4) of an agent's status:
 * shared by `chanctl status --format prometheus` and the agent's
 * metrics listener, so both print the same families from the same
 * records.  Pure: no I/O.
 *
 * Families: chand_up, chand_info{qmgr,version}, chand_start_time_seconds,
 * chand_queue_depth{qmgr,queue} (local queues), and per channel (labels
 * name, type, qmgr, rqmname, conname) chand_channel_messages_total,
 * _bytes_sent_total, _bytes_received_total, _batches_total (counters
 * since the agent started), _state{state} (one series per state, 1 for
 * the current one), _up, _indoubt, _xmitq_depth,
 * _oldest_message_age_seconds, _retries_left and
 * _peer_cert_expiry_timestamp_seconds (the last three only when known).
 * Telemetry channels (type "mqtt") have chand_channel_up and _state with
 * the same labels, and instead of the other channel families
 * chand_mqtt_connections, chand_mqtt_max_clients (gauges),
 * chand_mqtt_messages_received_total, _messages_sent_total,
 * _bytes_received_total and _bytes_sent_total (counters). */
#ifndef CHAND_METRICS_H
#define CHAND_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct metrics_agent {
	const char *qmgr;        /* the local queue manager */
	const char *version;     /* NULL: no chand_info */
	int64_t start_ms;        /* 0: unknown (no chand_start_time_seconds) */
};

/* status: the array of `status` records (chan_status_to_json), queues:
 * the array of `display queue` records (NULL: no queue families). Records
 * missing a field are exported without that series. Returns the text
 * (malloc'd), or NULL if out of memory. */
char *metrics_format(const json_t *status, const json_t *queues, const struct metrics_agent *ag);

/* Appends v escaped as a label value (backslash, double quote, newline)
 * to out (at most outlen bytes with the NUL); returns the length it
 * needed, like snprintf. */
size_t metrics_escape_label(const char *v, char *out, size_t outlen);

/* "2026-11-22T13:45:00.123Z" -> milliseconds since the epoch; false if
 * s is not in that form. */
bool metrics_parse_time(const char *s, int64_t *ms);

#endif
