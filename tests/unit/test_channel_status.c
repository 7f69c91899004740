/* The `status` record: exactly the keys of doc/CHANNELS.md section 4 plus the
 * documented extras, state names, and how absent values are shown. */
#include <criterion/criterion.h>
#include <string.h>

#include "chand/channel.h"

static const char *const design_keys[] = {
	"name", "type", "state", "substate", "conname", "rqmname", "xmitq", "xmitq_depth", "msgs",
	"bytes_sent", "bytes_received", "batches", "current_seq", "committed_seq", "indoubt",
	"start_time", "last_msg_time", "tls_version", "cipher", "local_label", "peer_dn",
	"peer_issuer_dn", "peer_not_after", "last_error_code", "last_error",
};
static const char *const extra_keys[] = {
	"short_retries_left", "long_retries_left", "next_retry_time", "oldest_msg_age",
	"key_updates", "encrypted",
};

static struct chan_status blank(void)
{
	struct chan_status s;

	memset(&s, 0, sizeof(s));
	strcpy(s.name, "QM1.QM2");
	s.type = CHT_SDR;
	s.xmitq_depth = -1;
	s.oldest_msg_age_ms = -1;
	s.retries_left = -1;
	return s;
}

Test(status, exact_keys)
{
	struct chan_status s = blank();
	json_t *o = chan_status_to_json(&s);
	const char *k;
	json_t *v;

	cr_assert_not_null(o);
	for (size_t i = 0; i < sizeof(design_keys) / sizeof(design_keys[0]); i++)
		cr_assert_not_null(json_object_get(o, design_keys[i]), "missing %s", design_keys[i]);
	for (size_t i = 0; i < sizeof(extra_keys) / sizeof(extra_keys[0]); i++)
		cr_assert_not_null(json_object_get(o, extra_keys[i]), "missing %s", extra_keys[i]);
	cr_assert_eq(json_object_size(o),
	             sizeof(design_keys) / sizeof(design_keys[0]) +
	             sizeof(extra_keys) / sizeof(extra_keys[0]));
	/* snake_case only */
	json_object_foreach(o, k, v)
		for (const char *p = k; *p; p++)
			cr_assert((*p >= 'a' && *p <= 'z') || *p == '_', "key %s is not snake_case", k);
	json_decref(o);
}

Test(status, never_ran_channel)
{
	struct chan_status s = blank();
	json_t *o = chan_status_to_json(&s);

	cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "INACTIVE");
	cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "sdr");
	cr_assert(json_is_null(json_object_get(o, "xmitq_depth")));
	cr_assert(json_is_null(json_object_get(o, "start_time")));
	cr_assert(json_is_null(json_object_get(o, "last_error_code")));
	cr_assert(json_is_null(json_object_get(o, "tls_version")));
	cr_assert(json_is_null(json_object_get(o, "short_retries_left")));
	cr_assert(json_is_null(json_object_get(o, "long_retries_left")));
	cr_assert_null(json_object_get(o, "retries_left"));
	cr_assert(json_is_false(json_object_get(o, "indoubt")));
	cr_assert(json_is_false(json_object_get(o, "encrypted")));
	cr_assert_eq(json_integer_value(json_object_get(o, "msgs")), 0);
	json_decref(o);
}

Test(status, running_tls_channel)
{
	struct chan_status s = blank();
	json_t *o;

	s.state = CHS_RUNNING;
	strcpy(s.substate, "IDLE");
	s.connected = true;
	s.encrypted = true;
	strcpy(s.tls_version, "TLS1.3");
	strcpy(s.cipher, "TLS_AES_128_GCM_SHA256");
	strcpy(s.local_label, "qm1");
	strcpy(s.peer_dn, "CN=QM2,O=Acme");
	strcpy(s.peer_issuer_dn, "CN=CA");
	s.peer_not_after_ms = 1893456000000LL;
	s.xmitq_depth = 7;
	s.oldest_msg_age_ms = 65000;
	s.msgs = 12345678901ULL;
	s.current_seq = 999999999;
	s.committed_seq = 999999998;
	s.start_time_ms = 1700000000000LL;
	o = chan_status_to_json(&s);
	cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "RUNNING");
	cr_assert_str_eq(json_string_value(json_object_get(o, "cipher")), "TLS_AES_128_GCM_SHA256");
	cr_assert_str_eq(json_string_value(json_object_get(o, "peer_not_after")),
	                 "2030-01-01T00:00:00.000Z");
	cr_assert_str_eq(json_string_value(json_object_get(o, "start_time")),
	                 "2023-11-14T22:13:20.000Z");
	cr_assert_eq(json_integer_value(json_object_get(o, "xmitq_depth")), 7);
	cr_assert_eq(json_integer_value(json_object_get(o, "oldest_msg_age")), 65);
	cr_assert_eq(json_integer_value(json_object_get(o, "msgs")), 12345678901LL);
	cr_assert_eq(json_integer_value(json_object_get(o, "current_seq")), 999999999);
	cr_assert(json_is_true(json_object_get(o, "encrypted")));
	json_decref(o);
}

Test(status, plain_tcp_and_errors)
{
	struct chan_status s = blank();
	json_t *o;

	s.state = CHS_RETRYING;
	s.connected = false;
	s.encrypted = false;
	s.retries_left = 9;
	s.longrty = 999999999;
	s.next_retry_ms = 1700000060000LL;
	strcpy(s.last_error_code, "CHD4005");
	strcpy(s.last_error, "peer DN 'CN=X' does not match SSLPEER 'CN=QM2'");
	o = chan_status_to_json(&s);
	cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "RETRYING");
	/* still in the long retries: 9 of them left, no short ones */
	cr_assert_eq(json_integer_value(json_object_get(o, "short_retries_left")), 0);
	cr_assert_eq(json_integer_value(json_object_get(o, "long_retries_left")), 9);
	cr_assert_str_eq(json_string_value(json_object_get(o, "next_retry_time")),
	                 "2023-11-14T22:14:20.000Z");
	cr_assert_str_eq(json_string_value(json_object_get(o, "last_error_code")), "CHD4005");
	cr_assert(json_is_false(json_object_get(o, "encrypted")));
	cr_assert(json_is_null(json_object_get(o, "peer_dn")));
	json_decref(o);
}

/* The defaults (SHORTRTY 10, LONGRTY 999999999) after the first failure:
 * 10 short retries and every long one left, not one number 1000000009. */
Test(status, retries_split_short_and_long)
{
	struct chan_status s = blank();
	json_t *o;

	s.state = CHS_RETRYING;
	s.retries_left = 1000000009;
	s.longrty = 999999999;
	o = chan_status_to_json(&s);
	cr_assert_eq(json_integer_value(json_object_get(o, "short_retries_left")), 10);
	cr_assert_eq(json_integer_value(json_object_get(o, "long_retries_left")), 999999999);
	json_decref(o);
	/* LONGRTY 0: every retry left is a short one */
	s.retries_left = 3;
	s.longrty = 0;
	o = chan_status_to_json(&s);
	cr_assert_eq(json_integer_value(json_object_get(o, "short_retries_left")), 3);
	cr_assert_eq(json_integer_value(json_object_get(o, "long_retries_left")), 0);
	json_decref(o);
}

Test(status, state_names)
{
	static const char *const want[] = { "INACTIVE", "INITIALIZING", "BINDING", "STARTING",
		"RUNNING", "RETRYING", "STOPPING", "STOPPED", "REQUESTING" };
	for (int i = CHS_INACTIVE; i <= CHS_REQUESTING; i++)
		cr_assert_str_eq(chan_state_name((enum chan_state)i), want[i]);
	cr_assert_str_eq(chan_state_name((enum chan_state)99), "UNKNOWN");
}
