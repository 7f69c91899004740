/* The Prometheus exposition of status records (src/admin/metrics_fmt.c),
 * checked with a strict parser (prom_check.c) and, when installed,
 * promtool. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand/metrics.h"
#include "prom_check.h"

static json_t *rec(const char *json)
{
	json_error_t e;
	json_t *v = json_loads(json, 0, &e);

	cr_assert_not_null(v, "%s: %s", json, e.text);
	return v;
}

static const char status_json[] =
	"[{\"name\":\"QM1.TO.QM2\",\"type\":\"sdr\",\"state\":\"RUNNING\",\"substate\":\"\","
	"\"conname\":\"127.0.0.1(1414)\",\"rqmname\":\"QM2\",\"xmitq\":\"QM2\",\"xmitq_depth\":7,"
	"\"msgs\":12345678901,\"bytes_sent\":99,\"bytes_received\":3,\"batches\":4,"
	"\"indoubt\":false,\"short_retries_left\":null,\"long_retries_left\":null,\"oldest_msg_age\":42,"
	"\"peer_not_after\":\"2027-01-02T03:04:05.000Z\",\"encrypted\":true},"
	"{\"name\":\"QM2.TO.QM1\",\"type\":\"rcvr\",\"state\":\"RETRYING\",\"substate\":\"\","
	"\"conname\":\"a\\\\b\\\"c\\nd\",\"rqmname\":null,\"xmitq\":null,\"xmitq_depth\":null,"
	"\"msgs\":0,\"bytes_sent\":0,\"bytes_received\":0,\"batches\":0,\"indoubt\":true,"
	"\"short_retries_left\":3,\"long_retries_left\":999999999,\"oldest_msg_age\":null,\"peer_not_after\":null,\"encrypted\":false}]";

static const char queues_json[] =
	"[{\"name\":\"DLQ\",\"type\":\"qlocal\",\"curdepth\":2},"
	"{\"name\":\"Q.R\",\"type\":\"qremote\",\"curdepth\":null},"
	"{\"name\":\"QM2\",\"type\":\"qlocal\",\"curdepth\":7}]";

static char *format_sample(void)
{
	json_t *st = rec(status_json), *qs = rec(queues_json);
	struct metrics_agent ag = { .qmgr = "QM1", .version = "0.1.0", .start_ms = 1700000000123 };
	char *text = metrics_format(st, qs, &ag);

	json_decref(st);
	json_decref(qs);
	cr_assert_not_null(text);
	return text;
}

static void expect_value(const char *text, const char *series, double want)
{
	double v = -12345;

	cr_expect(prom_value(text, series, &v), "no series %s in\n%s", series, text);
	cr_expect_float_eq(v, want, 1e-6, "%s = %f, want %f", series, v, want);
}

#define L1 "name=\"QM1.TO.QM2\",type=\"sdr\",qmgr=\"QM1\",rqmname=\"QM2\",conname=\"127.0.0.1(1414)\""
#define L2 "name=\"QM2.TO.QM1\",type=\"rcvr\",qmgr=\"QM1\",rqmname=\"\",conname=\"a\\\\b\\\"c\\nd\""

Test(prom, format_passes_the_strict_parser)
{
	char *text = format_sample(), why[512] = "";

	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
	free(text);
}

Test(prom, values_and_labels)
{
	char *text = format_sample();

	expect_value(text, "chand_up{qmgr=\"QM1\"}", 1);
	expect_value(text, "chand_info{qmgr=\"QM1\",version=\"0.1.0\"}", 1);
	expect_value(text, "chand_start_time_seconds{qmgr=\"QM1\"}", 1700000000.123);
	expect_value(text, "chand_queue_depth{qmgr=\"QM1\",queue=\"DLQ\"}", 2);
	expect_value(text, "chand_queue_depth{qmgr=\"QM1\",queue=\"QM2\"}", 7);
	cr_expect_null(strstr(text, "queue=\"Q.R\""), "a remote queue has no depth");
	cr_expect(strstr(text, "chand_channel_messages_total{" L1 "} 12345678901\n") != NULL,
	          "large counters printed exactly:\n%s", text);
	expect_value(text, "chand_channel_bytes_sent_total{" L1 "}", 99);
	expect_value(text, "chand_channel_bytes_received_total{" L1 "}", 3);
	expect_value(text, "chand_channel_batches_total{" L1 "}", 4);
	expect_value(text, "chand_channel_xmitq_depth{" L1 "}", 7);
	expect_value(text, "chand_channel_oldest_message_age_seconds{" L1 "}", 42);
	expect_value(text, "chand_channel_peer_cert_expiry_timestamp_seconds{" L1 "}", 1798859045);
	expect_value(text, "chand_channel_up{" L1 "}", 1);
	expect_value(text, "chand_channel_indoubt{" L1 "}", 0);
	expect_value(text, "chand_channel_up{" L2 "}", 0);
	expect_value(text, "chand_channel_indoubt{" L2 "}", 1);
	expect_value(text, "chand_channel_short_retries_left{" L2 "}", 3);
	expect_value(text, "chand_channel_long_retries_left{" L2 "}", 999999999);
	/* Unknown values are left out, not exported as 0. */
	cr_expect_null(strstr(text, "chand_channel_xmitq_depth{" L2));
	cr_expect_null(strstr(text, "chand_channel_short_retries_left{" L1));
	cr_expect_null(strstr(text, "chand_channel_peer_cert_expiry_timestamp_seconds{" L2));
	cr_expect(strstr(text, "# TYPE chand_channel_messages_total counter\n") != NULL);
	cr_expect(strstr(text, "# TYPE chand_channel_state gauge\n") != NULL);
	free(text);
}

Test(prom, one_state_series_per_state_one_of_them_set)
{
	static const char *const states[] = { "INACTIVE", "INITIALIZING", "BINDING", "STARTING",
		"RUNNING", "RETRYING", "STOPPING", "STOPPED", "REQUESTING" };
	char *text = format_sample(), series[512];

	for (size_t i = 0; i < 9; i++) {
		snprintf(series, sizeof(series), "chand_channel_state{" L1 ",state=\"%s\"}", states[i]);
		expect_value(text, series, strcmp(states[i], "RUNNING") == 0);
		snprintf(series, sizeof(series), "chand_channel_state{" L2 ",state=\"%s\"}", states[i]);
		expect_value(text, series, strcmp(states[i], "RETRYING") == 0);
	}
	cr_expect_eq(strstr(text, "chand_channel_state{" L1 ",state=\"RUNNING\"} 1\n") != NULL, 1);
	free(text);
}

Test(prom, an_unknown_state_still_shows)
{
	json_t *st = rec("[{\"name\":\"C\",\"type\":\"sdr\",\"state\":\"NEW\\\"STATE\",\"conname\":\"\"}]");
	struct metrics_agent ag = { .qmgr = "QM1" };
	char *text = metrics_format(st, NULL, &ag), why[512] = "";

	cr_assert_not_null(text);
	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
	cr_expect(strstr(text, ",state=\"NEW\\\"STATE\"} 1\n") != NULL, "%s", text);
	cr_expect_null(strstr(text, "chand_start_time_seconds"));
	cr_expect_null(strstr(text, "chand_queue_depth"));
	free(text);
	json_decref(st);
}

Test(prom, no_channels_no_channel_families)
{
	json_t *st = json_array();
	struct metrics_agent ag = { .qmgr = "QM1", .start_ms = 1000 };
	char *text = metrics_format(st, NULL, &ag), why[256] = "";

	cr_assert_not_null(text);
	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
	cr_expect_null(strstr(text, "chand_channel_"));
	cr_expect_str_eq(text, "# HELP chand_up 1 when the agent answered.\n# TYPE chand_up gauge\n"
	                 "chand_up{qmgr=\"QM1\"} 1\n"
	                 "# HELP chand_start_time_seconds When the agent started (Unix time).\n"
	                 "# TYPE chand_start_time_seconds gauge\n"
	                 "chand_start_time_seconds{qmgr=\"QM1\"} 1.000\n");
	free(text);
	json_decref(st);
}

/* A telemetry channel (type mqtt, doc/TELEMETRY.md) beside a message
 * channel: its own families, up and state, none of the message channel
 * families; its clients (status --clients) are not exported. */
#define LM "name=\"MQTT.IN\",type=\"mqtt\",qmgr=\"QM1\",rqmname=\"\",conname=\"\""

Test(prom, telemetry_channel_families)
{
	json_t *st = rec("[{\"name\":\"QM1.TO.QM2\",\"type\":\"sdr\",\"state\":\"RUNNING\","
	                 "\"conname\":\"127.0.0.1(1414)\",\"rqmname\":\"QM2\",\"msgs\":5,"
	                 "\"bytes_sent\":99,\"bytes_received\":3},"
	                 "{\"name\":\"MQTT.IN\",\"type\":\"mqtt\",\"state\":\"RUNNING\","
	                 "\"address\":\"\",\"port\":8883,\"connections\":12,\"max_clients\":1000,"
	                 "\"msgs_received\":9007199254740993,\"msgs_sent\":45,"
	                 "\"bytes_received\":9000,\"bytes_sent\":4000,\"sslciph\":\"ANY_TLS13\","
	                 "\"local_label\":\"qm1\",\"start_time\":\"2026-11-22T13:45:00.123Z\","
	                 "\"last_error_code\":null,\"last_error\":null,"
	                 "\"clients\":[{\"client_id\":\"sensor-1\",\"msgs_received\":7}]},"
	                 "{\"name\":\"MQTT.OFF\",\"type\":\"mqtt\",\"state\":\"STOPPED\","
	                 "\"port\":1883,\"connections\":0,\"msgs_received\":null}]");
	struct metrics_agent ag = { .qmgr = "QM1" };
	char *text = metrics_format(st, NULL, &ag), why[512] = "";
	const char *l_off = "name=\"MQTT.OFF\",type=\"mqtt\",qmgr=\"QM1\",rqmname=\"\","
	                    "conname=\"\"";
	char series[512];

	cr_assert_not_null(text);
	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
	expect_value(text, "chand_mqtt_connections{" LM "}", 12);
	expect_value(text, "chand_mqtt_max_clients{" LM "}", 1000);
	cr_expect(strstr(text, "chand_mqtt_messages_received_total{" LM "} 9007199254740993\n")
	          != NULL, "large counters printed exactly:\n%s", text);
	expect_value(text, "chand_mqtt_messages_sent_total{" LM "}", 45);
	expect_value(text, "chand_mqtt_bytes_received_total{" LM "}", 9000);
	expect_value(text, "chand_mqtt_bytes_sent_total{" LM "}", 4000);
	expect_value(text, "chand_channel_up{" LM "}", 1);
	expect_value(text, "chand_channel_state{" LM ",state=\"RUNNING\"}", 1);
	cr_expect(strstr(text, "# TYPE chand_mqtt_connections gauge\n") != NULL, "%s", text);
	cr_expect(strstr(text, "# TYPE chand_mqtt_messages_received_total counter\n") != NULL);
	cr_expect(strstr(text, "# TYPE chand_mqtt_bytes_sent_total counter\n") != NULL);
	/* The stopped one: down, no clients, its unknown counter left out. */
	snprintf(series, sizeof(series), "chand_channel_up{%s}", l_off);
	expect_value(text, series, 0);
	snprintf(series, sizeof(series), "chand_channel_state{%s,state=\"STOPPED\"}", l_off);
	expect_value(text, series, 1);
	snprintf(series, sizeof(series), "chand_mqtt_connections{%s}", l_off);
	expect_value(text, series, 0);
	snprintf(series, sizeof(series), "chand_mqtt_messages_received_total{%s}", l_off);
	cr_expect_null(strstr(text, series), "%s", text);
	/* Each kind of channel in its own families only. */
	cr_expect_null(strstr(text, "chand_channel_bytes_sent_total{" LM), "%s", text);
	cr_expect_null(strstr(text, "chand_channel_bytes_received_total{" LM), "%s", text);
	cr_expect_null(strstr(text, "chand_mqtt_bytes_sent_total{name=\"QM1.TO.QM2\""), "%s", text);
	expect_value(text, "chand_channel_bytes_sent_total{name=\"QM1.TO.QM2\",type=\"sdr\","
	             "qmgr=\"QM1\",rqmname=\"QM2\",conname=\"127.0.0.1(1414)\"}", 99);
	/* No series per client. */
	cr_expect_null(strstr(text, "sensor-1"), "%s", text);
	free(text);
	json_decref(st);
}

Test(prom, duplicate_channel_records_exported_once)
{
	json_t *st = rec("[{\"name\":\"C\",\"type\":\"sdr\",\"state\":\"RUNNING\",\"msgs\":1},"
	                 "{\"name\":\"C\",\"type\":\"sdr\",\"state\":\"RUNNING\",\"msgs\":2}]");
	struct metrics_agent ag = { .qmgr = "QM1" };
	char *text = metrics_format(st, NULL, &ag), why[256] = "";

	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
	free(text);
	json_decref(st);
}

Test(prom, escape_label)
{
	char out[64];

	cr_expect_eq(metrics_escape_label("a\\b\"c\nd", out, sizeof(out)), 10);
	cr_expect_str_eq(out, "a\\\\b\\\"c\\nd");
	cr_expect_eq(metrics_escape_label("abcdef", out, 4), 6);
	cr_expect_str_eq(out, "abc");
	cr_expect_eq(metrics_escape_label("", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "");
}

Test(prom, parse_time)
{
	int64_t ms = 0;

	cr_expect(metrics_parse_time("1970-01-01T00:00:01.5Z", &ms));
	cr_expect_eq(ms, 1500);
	cr_expect(metrics_parse_time("2027-01-02T03:04:05.000Z", &ms));
	cr_expect_eq(ms, 1798859045000LL);
	cr_expect(metrics_parse_time("2027-01-02T03:04:05Z", &ms));
	cr_expect_not(metrics_parse_time("2027-01-02 03:04:05", &ms));
	cr_expect_not(metrics_parse_time("2027-01-02T03:04:05+01:00", &ms));
	cr_expect_not(metrics_parse_time("", &ms));
}

/* The checker itself must catch what it claims to. */
Test(prom, checker_refuses_bad_text)
{
	static const char *const bad[] = {
		"x 1",                                                         /* no newline */
		"x 1\n",                                                       /* no TYPE */
		"# TYPE x gauge\nx 1\nx 2\n",                                  /* duplicate */
		"# TYPE x gauge\nx{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 1\n", /* same set */
		"# TYPE 1x gauge\n1x 1\n",                                     /* bad name */
		"# TYPE x gauge\nx{a-b=\"1\"} 1\n",                            /* bad label name */
		"# TYPE x gauge\nx{a=\"\\q\"} 1\n",                            /* bad escape */
		"# TYPE x gauge\nx{a=\"1\"\"} 1\n",                            /* stray quote */
		"# TYPE x gauge\nx{a=1} 1\n",                                  /* unquoted */
		"# TYPE x gauge\nx one\n",                                     /* bad value */
		"# TYPE x gauge\nx 1 1700000000\n",                            /* timestamp */
		"# TYPE x counter\nx 1\n",                                     /* counter name */
		"# TYPE x gauge\n# TYPE x gauge\nx 1\n",                       /* two TYPEs */
		"# TYPE x gauge\nx 1\n# HELP x late\n",                        /* HELP after */
		"# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"1\"} 1\n",    /* not together */
		"# TYPE x gauge\n\nx 1\n",                                     /* empty line */
		"# a comment\n",                                               /* other comment */
		"# TYPE x widget\nx 1\n",                                      /* bad type */
		"# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",                      /* label twice */
	};
	char why[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_expect_not(prom_check(bad[i], why, sizeof(why)), "accepted: %s", bad[i]);
		cr_expect_neq(why[0], '\0', "no reason for %s", bad[i]);
	}
	cr_expect(prom_check("# HELP x a \\\\ b\n# TYPE x gauge\nx{a=\"\\\"\\n\\\\\"} -1.5e3\n"
	                     "# TYPE y_total counter\ny_total +Inf\n", why, sizeof(why)), "%s", why);
}

Test(prom, promtool_accepts_it_when_installed)
{
	char path[] = "/tmp/chand-prom-XXXXXX", cmd[256];
	char *text = format_sample();
	int fd;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		free(text);
		cr_skip_test("promtool not installed");
	}
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	int rc = system(cmd);
	unlink(path);
	cr_expect_eq(rc, 0, "promtool check metrics refused:\n%s", text);
	free(text);
}
