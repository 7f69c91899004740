/* Channel states and the `status` record.  Pure. */
#include <string.h>

#include "chand/channel.h"

static const char *const state_names[] = {
	[CHS_INACTIVE] = "INACTIVE",
	[CHS_INITIALIZING] = "INITIALIZING",
	[CHS_BINDING] = "BINDING",
	[CHS_STARTING] = "STARTING",
	[CHS_RUNNING] = "RUNNING",
	[CHS_RETRYING] = "RETRYING",
	[CHS_STOPPING] = "STOPPING",
	[CHS_STOPPED] = "STOPPED",
	[CHS_REQUESTING] = "REQUESTING",
};

const char *chan_state_name(enum chan_state s)
{
	if ((int)s >= 0 && (size_t)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "UNKNOWN";
}

static json_t *time_json(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	time_format_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

/* "" -> null: a field that does not apply or is not known yet. */
static json_t *str_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

json_t *chan_status_to_json(const struct chan_status *s)
{
	json_t *o = json_object();
	bool tls = s->connected && s->encrypted;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "type", json_string(chan_type_name(s->type)));
	json_object_set_new(o, "state", json_string(chan_state_name(s->state)));
	json_object_set_new(o, "substate", json_string(s->substate));
	json_object_set_new(o, "conname", json_string(s->conname));
	json_object_set_new(o, "rqmname", str_or_null(s->rqmname));
	json_object_set_new(o, "xmitq", str_or_null(s->xmitq));
	json_object_set_new(o, "xmitq_depth",
	                    s->xmitq_depth >= 0 ? json_integer(s->xmitq_depth) : json_null());
	json_object_set_new(o, "msgs", json_integer((json_int_t)s->msgs));
	json_object_set_new(o, "bytes_sent", json_integer((json_int_t)s->bytes_sent));
	json_object_set_new(o, "bytes_received", json_integer((json_int_t)s->bytes_received));
	json_object_set_new(o, "batches", json_integer((json_int_t)s->batches));
	json_object_set_new(o, "current_seq", json_integer(s->current_seq));
	json_object_set_new(o, "committed_seq", json_integer(s->committed_seq));
	json_object_set_new(o, "indoubt", json_boolean(s->indoubt));
	json_object_set_new(o, "start_time", time_json(s->start_time_ms));
	json_object_set_new(o, "last_msg_time", time_json(s->last_msg_time_ms));
	json_object_set_new(o, "tls_version", tls ? json_string(s->tls_version) : json_null());
	json_object_set_new(o, "cipher", tls ? json_string(s->cipher) : json_null());
	json_object_set_new(o, "local_label", tls ? json_string(s->local_label) : json_null());
	json_object_set_new(o, "peer_dn", tls ? json_string(s->peer_dn) : json_null());
	json_object_set_new(o, "peer_issuer_dn", tls ? json_string(s->peer_issuer_dn) : json_null());
	json_object_set_new(o, "peer_not_after", tls ? time_json(s->peer_not_after_ms) : json_null());
	json_object_set_new(o, "last_error_code", str_or_null(s->last_error_code));
	json_object_set_new(o, "last_error", str_or_null(s->last_error));
	if (s->retries_left >= 0) {
		/* The long retries are the last LONGRTY of the schedule: what is
		 * left beyond them is short ones. One number would read
		 * 1000000009 with the defaults (10 short, 999999999 long). */
		long lng = s->longrty >= 0 && s->longrty < s->retries_left ? s->longrty
		                                                           : s->retries_left;
		json_object_set_new(o, "short_retries_left", json_integer(s->retries_left - lng));
		json_object_set_new(o, "long_retries_left", json_integer(lng));
	} else {
		json_object_set_new(o, "short_retries_left", json_null());
		json_object_set_new(o, "long_retries_left", json_null());
	}
	json_object_set_new(o, "next_retry_time", time_json(s->next_retry_ms));
	json_object_set_new(o, "oldest_msg_age", s->oldest_msg_age_ms >= 0
	                    ? json_integer(s->oldest_msg_age_ms / 1000) : json_null());
	json_object_set_new(o, "key_updates", json_integer(s->key_updates));
	json_object_set_new(o, "encrypted", json_boolean(s->encrypted));
	return o;
}
