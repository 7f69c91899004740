/* Telemetry channels with real MQTT clients (doc/TELEMETRY.md): Debian's
 * mosquitto_pub / mosquitto_sub, Eclipse Paho in Python
 * (tests/integ/mqtt_client.py) and in C (paho_c_pub / paho_c_sub) connect
 * over TLS 1.2 and 1.3 to a real agent whose certificates are made exactly
 * as the seeds 001 and 002 make them (tests/pki/mkseed.sh).
 *
 * Every client runs with a timeout; background subscribers are killed by
 * the teardown. The same client command lines were checked against a
 * Debian mosquitto broker given the same certificates. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "mqtt_helpers.h"

static struct mqtt_broker br;

static void teardown(void)
{
	mqtt_broker_finish(&br);
}

/* One timeout per suite (see test_chan_tls.c): it bounds every test. */
TestSuite(mqtt, .fini = teardown, .timeout = 150);

#define CHAN "MQTT.TLS"

/* The seed 001 client's certificate with its key decrypted: the mosquitto
 * clients read a key password only from a terminal (they prompt), so they
 * get client-plain.key, made by mkseed.sh with `openssl rsa -passin`. The
 * Paho clients below use the encrypted client.key with its password. */
#define S1_CLIENT "--cert '%s' --key '%s'"
#define S1_CLIENT_ARGS mqtt_seed("seed001/client.pem"), mqtt_seed("seed001/client-plain.key")

static void start1(const char *attrs)
{
	mqtt_broker_start(&br, "MQ1", MQTT_SEED001);
	mqtt_channel_start(&br, CHAN, attrs);
}

/* A mosquitto_sub in the background with -d (so its SUBACK shows) and -v
 * (lines "TOPIC PAYLOAD"); waits for the SUBACK.  Its output goes to a
 * file, where stdio would hold it back in a block buffer: stdbuf -oL. */
static void mosq_sub(struct mqtt_bg *bg, const char *args)
{
	mqtt_bg_start(&br, bg, "exec stdbuf -oL -eL mosquitto_sub %s -d -v %s", mqtt_mosq(&br),
	              args);
	if (!mqtt_bg_wait(bg, "received SUBACK", 15000)) {
		mqtt_bg_dump(bg, "mosquitto_sub");
		mqtt_dump(&br);
		cr_assert_fail("mosquitto_sub %s: no SUBACK", args);
	}
}

static void expect_line(struct mqtt_bg *bg, const char *line)
{
	if (!mqtt_bg_wait(bg, line, 15000)) {
		mqtt_bg_dump(bg, "subscriber");
		mqtt_dump(&br);
		cr_assert_fail("the subscriber did not receive '%s'", line);
	}
}

static void pub_ok(const char *args)
{
	char *out = NULL, *err = NULL;
	int rc = mqtt_run(&out, &err, 20, "mosquitto_pub %s %s", mqtt_mosq(&br), args);

	if (rc != 0)
		mqtt_dump(&br);
	cr_assert_eq(rc, 0, "mosquitto_pub %s: exit %d\n%s%s", args, rc, out ? out : "",
	             err ? err : "");
	free(out);
	free(err);
}

/* ---- server authentication: --cafile only, TLS 1.2 and 1.3, QoS 0-2 ---- */

static void server_auth(const char *tlsver)
{
	struct mqtt_bg sub;
	char args[200], line[100];

	/* mosquitto's --tls-version is a minimum: the channel's SSLCIPH holds
	 * the session to TLS 1.2 when that is the version under test */
	start1(strcmp(tlsver, "tlsv1.2") == 0 ? "--sslcauth optional --sslciph ANY_TLS12"
	                                      : "--sslcauth optional --sslciph ANY_TLS13");
	snprintf(args, sizeof(args), "--tls-version %s -i SUB-%s -q 2 -t 'srv/#'", tlsver, tlsver);
	mosq_sub(&sub, args);
	for (int q = 0; q <= 2; q++) {
		snprintf(args, sizeof(args), "--tls-version %s -q %d -t srv/q%d -m m-%s-q%d", tlsver,
		         q, q, tlsver, q);
		pub_ok(args);
		snprintf(line, sizeof(line), "srv/q%d m-%s-q%d", q, tlsver, q);
		expect_line(&sub, line);
	}
	/* Each once: nothing duplicated at QoS 2 (nor at 0 and 1 here). */
	char *o = mqtt_bg_output(&sub);
	for (int q = 0; q <= 2; q++) {
		snprintf(line, sizeof(line), "srv/q%d m-%s-q%d", q, tlsver, q);
		cr_expect_eq(mqtt_count_lines(o, line), 1, "'%s' received %d times", line,
		             mqtt_count_lines(o, line));
	}
	free(o);

	json_t *st = mqtt_status(&br, CHAN, true);
	cr_assert_not_null(st, "no status record for %s", CHAN);
	cr_expect_str_eq(chan_js(st, "type"), "mqtt");
	cr_expect_geq(chan_ji(st, "connections"), 1, "connections %lld", chan_ji(st, "connections"));
	cr_expect_geq(chan_ji(st, "msgs_received"), 3);
	cr_expect_geq(chan_ji(st, "msgs_sent"), 3);
	snprintf(args, sizeof(args), "SUB-%s", tlsver);
	json_t *c = mqtt_find_client(st, args);
	cr_assert_not_null(c, "subscriber %s not in status --clients", args);
	/* "tlsv1.2" -> the status names TLS 1.2 somehow ("TLSv1.2", "TLS1.2"). */
	cr_expect_not_null(strstr(chan_js(c, "tls_version"), tlsver + 4),
	                   "tls_version '%s' for --tls-version %s", chan_js(c, "tls_version"),
	                   tlsver);
	json_decref(st);
	mqtt_bg_stop(&sub);
}

Test(mqtt, server_auth_tls12_qos012)
{
	server_auth("tlsv1.2");
}

Test(mqtt, server_auth_tls13_qos012)
{
	server_auth("tlsv1.3");
}

/* chanctl put --topic publishes to MQTT subscribers. */
Test(mqtt, chanctl_put_topic)
{
	struct mqtt_bg sub;

	start1("--sslcauth optional");
	mosq_sub(&sub, "-q 1 -t put/x");
	free(chan_ctl_ok(&br.qm, NULL, "put --topic put/x --qos 1 -m from-chanctl"));
	expect_line(&sub, "put/x from-chanctl");
	free(chan_ctl_ok(&br.qm, NULL, "put --topic put/x --qos 0 --retain -m kept"));
	expect_line(&sub, "put/x kept");
	char *out = mqtt_run_ok(20, "mosquitto_sub %s -t put/x -C 1 -W 10 -v", mqtt_mosq(&br));
	cr_expect_eq(mqtt_count_lines(out, "put/x kept"), 1, "retained: %s", out);
	free(out);
}

/* ---- mutual TLS, seed 001 ---- */

Test(mqtt, mutual_tls_required)
{
	struct mqtt_bg sub;
	char a[1600];

	start1("--sslcauth required");
	snprintf(a, sizeof(a), S1_CLIENT " -q 1 -t mtls/x", S1_CLIENT_ARGS);
	mosq_sub(&sub, a);
	snprintf(a, sizeof(a), S1_CLIENT " -q 1 -t mtls/x -m with-cert", S1_CLIENT_ARGS);
	pub_ok(a);
	expect_line(&sub, "mtls/x with-cert");
	/* Paho Python with the seed's aes256-encrypted key and its password. */
	char *out = mqtt_run_ok(30, "%s pub %s --cert '%s' --key '%s' --keypass-file '%s' "
	                        "--id PY-MTLS --qos 2 --topic mtls/x --message paho-encrypted-key",
	                        mqtt_py(), mqtt_pyconn(&br), mqtt_seed("seed001/client.pem"),
	                        mqtt_seed("seed001/client.key"), mqtt_seed("pw.txt"));
	cr_expect_not_null(strstr(out, "PUBLISHED"), "%s", out);
	free(out);
	expect_line(&sub, "mtls/x paho-encrypted-key");
}

/* Runs mosquitto_pub with extra arguments, expecting a refusal: non-zero
 * exit and code in the agent's log; then the agent still serves a client
 * with the right certificate. */
static void expect_refused(const char *extra, const char *code)
{
	char *out = NULL, *err = NULL, a[1600];
	size_t mark = mqtt_log_mark(&br);
	int rc = mqtt_run(&out, &err, 20, "mosquitto_pub %s %s -q 1 -t refused/x -m no",
	                  mqtt_mosq(&br), extra);

	cr_expect_neq(rc, 0, "mosquitto_pub %s was accepted: %s%s", extra, out ? out : "",
	              err ? err : "");
	free(out);
	free(err);
	if (!mqtt_wait_log_since(&br, mark, code, 10000)) {
		mqtt_dump(&br);
		cr_expect_fail("no %s in the agent's log after the refusal", code);
	}
	snprintf(a, sizeof(a), S1_CLIENT " -q 1 -t after/x -m still-serving", S1_CLIENT_ARGS);
	pub_ok(a);
}

Test(mqtt, required_refuses_no_certificate)
{
	start1("--sslcauth required");
	expect_refused("", "CHD4001");
	/* Paho Python without a certificate: refused too. */
	char *out = NULL;
	/* refused in its handshake, Paho never calls back: its own timeout ends it */
	int rc = mqtt_run(&out, NULL, 30, "%s pub %s --id PY-NOCERT --qos 1 --topic x --message no "
	                  "--timeout 6", mqtt_py(), mqtt_pyconn(&br));
	cr_expect_eq(rc, 2, "mqtt_client.py without a certificate: exit %d: %s", rc, out);
	free(out);
}

Test(mqtt, required_refuses_other_ca)
{
	char a[1600];

	start1("--sslcauth required");
	/* Seed 002's engine certificate: a CA this keystore does not trust. */
	snprintf(a, sizeof(a), "--cert '%s' --key '%s'",
	         mqtt_seed("seed002/certs/engine/engine-chain.crt"),
	         mqtt_seed("seed002/certs/engine/engine-plain.key"));
	expect_refused(a, "CHD4002");
}

/* OPTIONAL: without a certificate accepted, with a good one accepted, with
 * one from an unknown CA refused (a certificate sent is always verified). */
Test(mqtt, optional_client_auth)
{
	char a[1600];

	start1("--sslcauth optional");
	pub_ok("-q 1 -t opt/x -m no-cert");
	snprintf(a, sizeof(a), S1_CLIENT " -q 1 -t opt/x -m cert", S1_CLIENT_ARGS);
	pub_ok(a);
	snprintf(a, sizeof(a), "--cert '%s' --key '%s'",
	         mqtt_seed("seed002/certs/engine/engine.crt"),
	         mqtt_seed("seed002/certs/engine/engine-plain.key"));
	expect_refused(a, "CHD4002");
}

/* ---- seed 002: root -> intermediate CAs -> leaves, clients send chains ---- */

Test(mqtt, seed002_client_sends_chain)
{
	struct mqtt_bg sub;
	char a[1600];

	mqtt_broker_start(&br, "MQ2", MQTT_SEED002);
	mqtt_channel_start(&br, CHAN, "--sslcauth required");
	/* MQTT Engine subscribes, MQTT Transmission publishes; each sends its
	 * leaf and its CA; the keystore trusts only the root. */
	snprintf(a, sizeof(a), "--cert '%s' --key '%s' -i engine -q 1 -t 'spBv1.0/#'",
	         mqtt_seed("seed002/certs/engine/engine-chain.crt"),
	         mqtt_seed("seed002/certs/engine/engine-plain.key"));
	mosq_sub(&sub, a);
	snprintf(a, sizeof(a), "--cert '%s' --key '%s' -i transmission -q 1 -t spBv1.0/G/NBIRTH/E "
	         "-m birth", mqtt_seed("seed002/certs/transmission/transmission-chain.crt"),
	         mqtt_seed("seed002/certs/transmission/transmission-plain.key"));
	pub_ok(a);
	expect_line(&sub, "spBv1.0/G/NBIRTH/E birth");

	/* The leaf alone does not reach the root: refused as untrusted. */
	char *out = NULL, *err = NULL;
	size_t mark = mqtt_log_mark(&br);
	int rc = mqtt_run(&out, &err, 20, "mosquitto_pub %s --cert '%s' --key '%s' -q 1 -t t -m no",
	                  mqtt_mosq(&br),
	                  mqtt_seed("seed002/certs/transmission/transmission.crt"),
	                  mqtt_seed("seed002/certs/transmission/transmission-plain.key"));
	cr_expect_neq(rc, 0, "leaf without its CA accepted: %s%s", out, err);
	cr_expect(mqtt_wait_log_since(&br, mark, "CHD4002", 10000), "no CHD4002 in the log");
	free(out);
	free(err);

	/* Paho Python with the des3-encrypted key and its password. */
	out = mqtt_run_ok(30, "%s pub %s --cert '%s' --key '%s' --keypass-file '%s' --id py-trans "
	                  "--qos 2 --topic spBv1.0/G/NDATA/E --message data", mqtt_py(),
	                  mqtt_pyconn(&br),
	                  mqtt_seed("seed002/certs/transmission/transmission-chain.crt"),
	                  mqtt_seed("seed002/certs/transmission/transmission.key"),
	                  mqtt_seed("pw.txt"));
	free(out);
	expect_line(&sub, "spBv1.0/G/NDATA/E data");
}

/* ---- persistent sessions across kill -9 ---- */

static int count_prefix(const char *text, const char *prefix)
{
	int n = 0;
	size_t pl = strlen(prefix);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, prefix, pl) == 0)
			n++;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return n;
}

Test(mqtt, persistent_session_v5_qos2_kill9)
{
	char *out;

	start1("--sslcauth optional");
	const char *who = "--id PERSIST5 --version 5 --clean no --expiry 3600";
	out = mqtt_run_ok(30, "%s sub %s %s --topic per/5 --qos 2 --count 0", mqtt_py(),
	                  mqtt_pyconn(&br), who);
	cr_assert_not_null(strstr(out, "SUBACK 2"), "%s", out);
	free(out);
	/* Ten QoS 2 publications while the subscriber is away. */
	free(mqtt_run_ok(30, "printf 'm%%d\\n' 0 1 2 3 4 5 6 7 8 9 | mosquitto_pub %s -V 5 -q 2 "
	                 "-t per/5 -l", mqtt_mosq(&br)));
	json_t *st = mqtt_status(&br, CHAN, true);
	json_t *c = st ? mqtt_find_client(st, "PERSIST5") : NULL;
	if (c != NULL && chan_ji(c, "pending") >= 0)
		cr_expect_eq(chan_ji(c, "pending"), 10, "pending %lld", chan_ji(c, "pending"));
	json_decref(st);

	mqtt_broker_kill9_restart(&br);

	out = mqtt_run_ok(40, "%s sub %s %s --no-subscribe --count 10 --linger 2 --timeout 30",
	                  mqtt_py(), mqtt_pyconn(&br), who);
	cr_expect_not_null(strstr(out, "CONNACK rc=0 sp=1"), "session not present: %s", out);
	cr_expect_eq(count_prefix(out, "MSG "), 10, "%s", out);
	for (int i = 0; i < 10; i++) {
		char p[32];
		snprintf(p, sizeof(p), "MSG per/5 m%d qos=2 ", i);
		cr_expect_eq(count_prefix(out, p), 1, "m%d received %d times:\n%s", i,
		             count_prefix(out, p), out);
	}
	free(out);
	/* Delivered means delivered: nothing comes again. */
	out = mqtt_run_ok(30, "%s sub %s %s --no-subscribe --count -1 --timeout 3", mqtt_py(),
	                  mqtt_pyconn(&br), who);
	cr_expect_eq(count_prefix(out, "MSG "), 0, "redelivered: %s", out);
	free(out);
}

Test(mqtt, persistent_session_v311_qos1_kill9)
{
	char *out;

	start1("--sslcauth optional");
	const char *m = mqtt_mosq(&br);
	/* -c: clean session off; -E: exit once subscribed. */
	free(mqtt_run_ok(20, "mosquitto_sub %s -c -i PERSIST311 -q 1 -t per/3 -E", m));
	free(mqtt_run_ok(30, "printf 'n%%d\\n' 0 1 2 3 4 5 6 7 8 9 | mosquitto_pub %s -q 1 "
	                 "-t per/3 -l", m));
	mqtt_broker_kill9_restart(&br);
	/* -W: stop after 5 s (exit 27), so duplicates would show; not -C,
	 * after which mosquitto_sub leaves messages unacknowledged. */
	out = NULL;
	int rc = mqtt_run(&out, NULL, 30, "mosquitto_sub %s -c -i PERSIST311 -q 1 -t per/3 -W 5", m);
	cr_expect(rc == 0 || rc == 27, "mosquitto_sub: exit %d", rc);
	for (int i = 0; i < 10; i++) {
		char l[16];
		snprintf(l, sizeof(l), "n%d", i);
		cr_expect_eq(mqtt_count_lines(out, l), 1, "%s received %d times:\n%s", l,
		             mqtt_count_lines(out, l), out);
	}
	free(out);
}

/* A persistent session that went away with publications in flight (sent,
 * not acknowledged) keeps them in memory; what is published while it is
 * away goes to the store. Back again, it gets both: the first ones again
 * with DUP, then the others. (Once, the second kind stayed in the store
 * until the agent restarted.) */
Test(mqtt, persistent_session_away_with_unacked_gets_what_came_meanwhile)
{
	struct mqtt_bg sub;
	const char *who = "--id AWAY311 --version 311 --clean no";
	const char *m;
	long long end;
	json_int_t inflight = -1;

	start1("--sslcauth optional");
	m = mqtt_mosq(&br);
	/* exec: the signals below are for the client, not a shell */
	mqtt_bg_start(&br, &sub, "exec %s sub %s %s --topic away/1 --qos 1 --timeout 60", mqtt_py(),
	              mqtt_pyconn(&br), who);
	cr_assert(mqtt_bg_wait(&sub, "SUBACK", 20000), "no SUBACK: %s", sub.err);
	/* It stops reading: the five stay in flight. */
	cr_assert_eq(kill(sub.pid, SIGSTOP), 0);
	free(mqtt_run_ok(30, "printf 'a%%d\\n' 0 1 2 3 4 | mosquitto_pub %s -q 1 -t away/1 -l", m));
	for (end = chan_now_ms() + 10000; chan_now_ms() < end; chan_sleep_ms(100)) {
		json_t *st = mqtt_status(&br, CHAN, true);
		json_t *c = st ? mqtt_find_client(st, "AWAY311") : NULL;
		inflight = c != NULL ? chan_ji(c, "inflight_out") : -1;
		json_decref(st);
		if (inflight == 5)
			break;
	}
	cr_assert_eq(inflight, 5, "in flight to the stopped subscriber: %lld", (long long)inflight);
	kill(sub.pid, SIGKILL);
	mqtt_bg_stop(&sub);
	cr_assert(mqtt_wait_client(&br, CHAN, "AWAY311", false, 20000), "still connected");
	free(mqtt_run_ok(30, "printf 'b%%d\\n' 0 1 2 3 4 | mosquitto_pub %s -q 1 -t away/1 -l", m));

	char *out = mqtt_run_ok(40, "%s sub %s %s --no-subscribe --count 10 --linger 1 --timeout 20",
	                        mqtt_py(), mqtt_pyconn(&br), who);
	for (int i = 0; i < 10; i++) {
		char p[32];
		snprintf(p, sizeof(p), "MSG away/1 %c%d qos=1 ", i < 5 ? 'a' : 'b', i % 5);
		cr_expect_eq(count_prefix(out, p), 1, "%c%d received %d times:\n%s", i < 5 ? 'a' : 'b',
		             i % 5, count_prefix(out, p), out);
	}
	free(out);
}

/* ---- Paho C ---- */

Test(mqtt, paho_c_tls_encrypted_key)
{
	struct mqtt_bg sub;
	char url[64], tls[2400];

	start1("--sslcauth required");
	snprintf(url, sizeof(url), "ssl://%s:%d", MQTT_ADDR, br.port);
	/* Paho C takes the seed's encrypted key with --keypass. */
	snprintf(tls, sizeof(tls), "-c %s --cafile '%s' --cert '%s' --key '%s' --keypass passw0rd",
	         url, br.cafile, mqtt_seed("seed001/client.pem"), mqtt_seed("seed001/client.key"));
	mqtt_bg_start(&br, &sub, "exec stdbuf -oL -eL paho_c_sub %s -i pahoc-sub -q 2 -t 'pc/#'", tls);
	/* paho_c_sub does not show its SUBACK: publish until it receives. */
	bool got = mqtt_pub_until(&sub, "hello-paho-c", 20000,
	                          "paho_c_pub %s -i pahoc-pub -q 1 -t pc/x -m hello-paho-c", tls);
	if (!got) {
		mqtt_bg_dump(&sub, "paho_c_sub");
		mqtt_dump(&br);
	}
	cr_assert(got, "paho_c_sub did not receive paho_c_pub's message");
	char *out = mqtt_run_ok(20, "paho_c_pub %s -V 5 -i pahoc-pub5 -q 2 -t pc/five -m v5-qos2",
	                        tls);
	free(out);
	cr_expect(mqtt_bg_wait(&sub, "v5-qos2", 15000), "MQTT 5 QoS 2 publish not received");
	mqtt_bg_stop(&sub);
}

/* ---- retained messages ---- */

Test(mqtt, retained_survives_kill9_and_empty_deletes)
{
	char *out = NULL;
	int rc;

	start1("--sslcauth optional");
	pub_ok("-r -q 1 -t ret/1 -m kept-value");
	out = mqtt_run_ok(20, "mosquitto_sub %s -t ret/1 -C 1 -W 10 -v", mqtt_mosq(&br));
	cr_expect_eq(mqtt_count_lines(out, "ret/1 kept-value"), 1, "%s", out);
	free(out);
	/* Persisted (QoS 1): still there after kill -9. */
	mqtt_broker_kill9_restart(&br);
	out = mqtt_run_ok(20, "mosquitto_sub %s -t 'ret/+' -C 1 -W 10 -v", mqtt_mosq(&br));
	cr_expect_eq(mqtt_count_lines(out, "ret/1 kept-value"), 1, "after restart: %s", out);
	free(out);
	/* An empty retained publication deletes it. */
	pub_ok("-r -q 1 -n -t ret/1");
	out = NULL;
	rc = mqtt_run(&out, NULL, 20, "mosquitto_sub %s -t ret/1 -C 1 -W 3 -v", mqtt_mosq(&br));
	cr_expect_eq(rc, 27, "mosquitto_sub did not time out (exit %d): %s", rc, out);
	cr_expect_eq(out == NULL ? 0 : strlen(out), 0, "retained message still there: %s", out);
	free(out);
}

/* ---- wills ---- */

Test(mqtt, will_on_abrupt_end_only)
{
	struct mqtt_bg sub;

	start1("--sslcauth optional");
	mosq_sub(&sub, "-q 1 -t 'will/#'");
	/* A clean DISCONNECT: no will. */
	pub_ok("-i clean-one --will-topic will/clean --will-payload not-sent -q 1 -t x -m y");
	/* The Python client ends with os._exit after CONNACK: no DISCONNECT. */
	char *out = mqtt_run_ok(30, "%s will %s --id dying-one --will-topic will/abrupt "
	                        "--will-message gone --will-qos 1", mqtt_py(), mqtt_pyconn(&br));
	cr_expect_not_null(strstr(out, "CONNACK rc=0"), "%s", out);
	free(out);
	expect_line(&sub, "will/abrupt gone");
	char *o = mqtt_bg_output(&sub);
	cr_expect_eq(mqtt_count_lines(o, "will/clean not-sent"), 0,
	             "will published after a clean DISCONNECT:\n%s", o);
	cr_expect_eq(mqtt_count_lines(o, "will/abrupt gone"), 1, "%s", o);
	free(o);
	mqtt_bg_stop(&sub);
}

/* ---- topic filters ---- */

Test(mqtt, wildcards_and_dollar_topics)
{
	struct mqtt_bg plus, hash, dollar;

	start1("--sslcauth optional");
	mosq_sub(&plus, "-q 1 -t 'wc/+/temp' -t '+/x'");
	mosq_sub(&hash, "-q 1 -t 'wc/#' -t '#'");
	mosq_sub(&dollar, "-q 1 -t '$app/#'");
	static const char *const topics[] = { "wc/a/temp", "wc/a/b/temp", "wc/temp", "wc",
		"$app/x", "norm/x" };
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		char a[128];
		snprintf(a, sizeof(a), "-q 1 -t '%s' -m v%zu", topics[i], i);
		pub_ok(a);
	}
	/* The last one reaches both: everything before it was routed. */
	expect_line(&plus, "norm/x v5");
	expect_line(&hash, "norm/x v5");
	chan_sleep_ms(300);
	char *p = mqtt_bg_output(&plus), *h = mqtt_bg_output(&hash);
	cr_expect_eq(mqtt_count_lines(p, "wc/a/temp v0"), 1, "+ one level:\n%s", p);
	cr_expect_eq(mqtt_count_lines(p, "wc/a/b/temp v1"), 0, "+ matched two levels:\n%s", p);
	cr_expect_eq(mqtt_count_lines(p, "wc/temp v2"), 0, "+ matched no level:\n%s", p);
	cr_expect_eq(mqtt_count_lines(p, "$app/x v4"), 0, "+ matched a $ topic:\n%s", p);
	/* Overlapping filters wc/# and #: at least one copy (MQTT 3.1.1
	 * 3.3.5: a server MAY send one per matching subscription). */
	cr_expect_geq(mqtt_count_lines(h, "wc/a/temp v0"), 1, "%s", h);
	cr_expect_geq(mqtt_count_lines(h, "wc/a/b/temp v1"), 1, "%s", h);
	cr_expect_geq(mqtt_count_lines(h, "wc/temp v2"), 1, "%s", h);
	cr_expect_geq(mqtt_count_lines(h, "wc v3"), 1, "wc/# includes the parent wc:\n%s", h);
	cr_expect_eq(mqtt_count_lines(h, "$app/x v4"), 0, "# matched a $ topic:\n%s", h);
	free(p);
	free(h);
	/* A $ topic is not forbidden to clients by the spec (a server SHOULD
	 * keep them to itself): if chand delivers it, only to the explicit
	 * filter, checked above. */
	char *d = mqtt_bg_output(&dollar);
	if (mqtt_count_lines(d, "$app/x v4") == 0)
		cr_log_info("chand does not deliver client publications on $ topics");
	free(d);
}

/* ---- identity and access: seed 001's password and ACL files ---- */

static const char seed001_acl[] =
	"user MyEACM\n"
	"topic read STATE/+\n"
	"topic readwrite spBv1.0/#\n"
	"\n"
	"user SparkplugViewer\n"
	"topic read STATE/+\n"
	"topic read spBv1.0/#\n"
	"\n"
	"user HMI\n"
	"topic readwrite STATE/+\n"
	"topic readwrite spBv1.0/#\n";

static void start_acl(void)
{
	char attrs[1600];

	mqtt_broker_start(&br, "MQ1", MQTT_SEED001);
	const char *acl = mqtt_write_file(&br, "acl.txt", seed001_acl);
	char pw[800];
	snprintf(pw, sizeof(pw), "%s/passwd", br.work);
	free(mqtt_run_ok(20, "mosquitto_passwd -c -b '%s' MyEACM eacm-pw && "
	                 "mosquitto_passwd -b '%s' SparkplugViewer viewer-pw && "
	                 "mosquitto_passwd -b '%s' HMI hmi-pw && chmod 0600 '%s'", pw, pw, pw, pw));
	snprintf(attrs, sizeof(attrs), "--sslcauth optional --identity username "
	         "--password-file '%s' --acl-file '%s' --allow-anonymous no", pw, acl);
	mqtt_channel_start(&br, CHAN, attrs);
}

Test(mqtt, acl_publish_as_seed001_writes_it)
{
	struct mqtt_bg hmi;

	start_acl();
	mosq_sub(&hmi, "-u HMI -P hmi-pw -q 1 -t 'STATE/+' -t 'spBv1.0/#'");
	pub_ok("-u MyEACM -P eacm-pw -q 1 -t spBv1.0/x -m eacm-spb");
	/* MyEACM may only read STATE/+: acknowledged (3.1.1) and dropped. */
	pub_ok("-u MyEACM -P eacm-pw -q 1 -t STATE/x -m eacm-state-denied");
	pub_ok("-u HMI -P hmi-pw -q 1 -t STATE/x -m hmi-state");
	expect_line(&hmi, "spBv1.0/x eacm-spb");
	expect_line(&hmi, "STATE/x hmi-state");
	char *o = mqtt_bg_output(&hmi);
	cr_expect_eq(mqtt_count_lines(o, "STATE/x eacm-state-denied"), 0,
	             "a denied publication was delivered:\n%s", o);
	free(o);
	mqtt_bg_stop(&hmi);
}

Test(mqtt, acl_subscribe_denied_suback_failure)
{
	char *out = NULL;

	start_acl();
	/* Granted: within the user's read rights. */
	mqtt_run(&out, NULL, 20, "mosquitto_sub %s -d -u SparkplugViewer -P viewer-pw -q 1 "
	         "-t 'spBv1.0/#' -W 2", mqtt_mosq(&br));
	cr_expect_not_null(strstr(out, "Subscribed (mid: 1): 1"), "%s", out);
	free(out);
	/* '#' by a limited user: SUBACK 0x80 (MQTT 3.1.1); mosquitto_sub -d
	 * prints the granted list. */
	out = NULL;
	mqtt_run(&out, NULL, 20, "mosquitto_sub %s -d -u SparkplugViewer -P viewer-pw -q 1 "
	         "-t '#' -W 2", mqtt_mosq(&br));
	cr_expect_not_null(strstr(out, "Subscribed (mid: 1): 128"), "%s", out);
	free(out);
	/* MQTT 5: 0x87 not authorized, for '#' and for a topic outside the ACL. */
	out = mqtt_run_ok(30, "%s sub %s --id viewer5 --username SparkplugViewer --password "
	                  "viewer-pw --topic '#' --topic other/x --qos 1 --count 0", mqtt_py(),
	                  mqtt_pyconn(&br));
	cr_expect_not_null(strstr(out, "SUBACK 135 135"), "%s", out);
	free(out);
}

Test(mqtt, password_and_anonymous_refused)
{
	char *out = NULL, *err = NULL;

	start_acl();
	int rc = mqtt_run(&out, &err, 20, "mosquitto_pub %s -u MyEACM -P wrong -q 1 -t spBv1.0/x "
	                  "-m no", mqtt_mosq(&br));
	cr_expect_neq(rc, 0, "wrong password accepted");
	/* CONNACK 4 or 5 (bad user name or password / not authorized). */
	cr_expect_not_null(strstr(err, "Connection Refused"), "%s%s", out, err);
	free(out);
	free(err);
	out = err = NULL;
	rc = mqtt_run(&out, &err, 20, "mosquitto_pub %s -q 1 -t spBv1.0/x -m no", mqtt_mosq(&br));
	cr_expect_neq(rc, 0, "anonymous client accepted with --allow-anonymous no");
	free(out);
	free(err);
	/* MQTT 5: CONNACK 0x86 bad user name or password (mosquitto sends
	 * 0x87 not authorized: either is right). */
	out = NULL;
	rc = mqtt_run(&out, NULL, 30, "%s pub %s --id bad5 --username HMI --password nope --qos 1 "
	              "--topic STATE/x --message no", mqtt_py(), mqtt_pyconn(&br));
	cr_expect_eq(rc, 2, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "CONNACK rc=134") != NULL || strstr(out, "CONNACK rc=135") != NULL,
	          "%s", out);
	free(out);
	pub_ok("-u HMI -P hmi-pw -q 1 -t STATE/x -m right-password");
}

/* ---- status --clients and stop channel --client ---- */

Test(mqtt, status_clients_and_stop_client)
{
	struct mqtt_bg sub;

	start1("--sslcauth optional");
	mqtt_bg_start(&br, &sub, "exec %s sub %s --id WATCHER --version 311 --topic st/x --qos 1 "
	              "--timeout 60", mqtt_py(), mqtt_pyconn(&br));
	cr_assert(mqtt_bg_wait(&sub, "SUBACK", 15000), "no SUBACK");
	if (!mqtt_wait_client(&br, CHAN, "WATCHER", true, 10000)) {
		mqtt_dump(&br);
		cr_assert_fail("WATCHER not listed as connected by status --clients");
	}
	json_t *st = mqtt_status(&br, CHAN, true);
	cr_assert_not_null(st);
	cr_expect_str_eq(chan_js(st, "type"), "mqtt");
	cr_expect_geq(chan_ji(st, "connections"), 1);
	json_t *c = mqtt_find_client(st, "WATCHER");
	cr_assert_not_null(c);
	cr_expect_str_eq(chan_js(c, "state"), "connected");
	cr_expect_neq(chan_js(c, "protocol")[0], '\0', "no protocol");
	cr_expect_neq(chan_js(c, "identity")[0], '\0', "no identity");
	json_decref(st);

	free(chan_ctl_ok(&br.qm, NULL, "stop channel %s --client WATCHER", CHAN));
	/* The client sees its connection end (and, in this script, stops). */
	int rc = mqtt_bg_wait_exit(&sub, 15000);
	if (rc != 4)
		mqtt_bg_dump(&sub, "WATCHER");
	cr_expect_eq(rc, 4, "WATCHER: exit %d, wanted 4 (connection lost)", rc);
	cr_expect(mqtt_wait_client(&br, CHAN, "WATCHER", false, 10000),
	          "WATCHER still connected after stop channel --client");
	/* Only that client: the channel still serves. */
	pub_ok("-q 1 -t st/x -m after-stop");
}

/* ---- bad input ---- */

Test(mqtt, garbage_instead_of_connect)
{
	struct mqtt_bg sub;

	start1("--sslcauth optional");
	mosq_sub(&sub, "-q 1 -t bad/x");
	size_t mark = mqtt_log_mark(&br);
	/* TLS is fine, then bytes that are no MQTT CONNECT ("GARBAGE\r\n"...):
	 * the agent closes the connection. */
	char *out = NULL;
	int rc = mqtt_run(&out, NULL, 30, "%s raw %s --send-hex 474152424147450d0a00ffffffff "
	                  "--timeout 15", mqtt_py(), mqtt_pyconn(&br));
	cr_expect_eq(rc, 0, "connection not closed (exit %d): %s", rc, out);
	cr_expect_not_null(strstr(out, "HANDSHAKE"), "%s", out);
	free(out);
	/* A PUBLISH before CONNECT (3.1.1 MQTT-3.1.0-1): closed too. */
	out = NULL;
	rc = mqtt_run(&out, NULL, 30, "%s raw %s --send-hex 30070003612f626869 --timeout 15",
	              mqtt_py(), mqtt_pyconn(&br));
	cr_expect_eq(rc, 0, "PUBLISH before CONNECT: not closed (exit %d): %s", rc, out);
	free(out);
	cr_expect(mqtt_wait_log_since(&br, mark, "CHD", 5000), "nothing logged about it");
	/* The other client still works. */
	pub_ok("-q 1 -t bad/x -m still-alive");
	expect_line(&sub, "bad/x still-alive");
	cr_expect(th_agent_alive(&br.qm.a), "the agent died");
	mqtt_bg_stop(&sub);
}

Test(mqtt, silent_tcp_connection_closed)
{
	/* Never a ClientHello: closed once the TLS handshake timeout (here
	 * 5 s) has passed. */
	mqtt_broker_start_conf(&br, "MQ1", MQTT_SEED001, "tls = { handshake_timeout = 5; };");
	mqtt_channel_start(&br, CHAN, "--sslcauth optional");
	char *out = NULL;
	long long t0 = chan_now_ms();
	int rc = mqtt_run(&out, NULL, 40, "%s raw %s --plain --timeout 20", mqtt_py(),
	                  mqtt_pyconn(&br));
	long long took = chan_now_ms() - t0;
	cr_expect_eq(rc, 0, "silent connection still open after 20 s (exit %d): %s", rc, out);
	cr_expect_geq(took, 4000, "closed after %lld ms, before the handshake timeout", took);
	free(out);
	pub_ok("-q 0 -t silent/x -m ok");
	cr_expect(th_agent_alive(&br.qm.a), "the agent died");
}

/* ---- DNs as chand prints them are SSLPEER filters (issue 10, item 11) ---- */

/* For every certificate of both seed PKIs: the subject chand prints
 * (keystore show; the same text as status and the log) given back to
 * check-peer as a filter matches that certificate. The seeds' subjects
 * hold emailAddress (printed EMAIL=), ST, OU and multi-word values. */
Test(mqtt, printed_dns_are_filters_that_match)
{
	static const char *const certs[] = {
		"seed001/ca.pem", "seed001/server.pem", "seed001/client.pem", "seed002/ca/ca.crt",
		"seed002/ca/server/server-ca.crt", "seed002/ca/engine/engine-ca.crt",
		"seed002/ca/transmission/transmission-ca.crt", "seed002/certs/engine/engine.crt",
		"seed002/certs/transmission/transmission.crt",
	};
	char *dir = th_tempdir("dnpaste"), ks[600], pw[600];

	cr_assert_not_null(dir);
	snprintf(ks, sizeof(ks), "%s/ks.db", dir);
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	free(mqtt_run_ok(20, "umask 077; echo dn-paste-pw > '%s' && '%s' keystore create -k '%s' "
	                 "--password-file '%s'", pw, th_chanctl_bin(), ks, pw));
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		char label[16], *show, *subj, *e, *out = NULL, *err = NULL;
		snprintf(label, sizeof(label), "c%zu", i);
		free(mqtt_run_ok(20, "'%s' keystore trust -k '%s' --password-file '%s' --label %s "
		                 "--cert '%s'", th_chanctl_bin(), ks, pw, label, mqtt_seed(certs[i])));
		show = mqtt_run_ok(20, "'%s' keystore show -k '%s' --password-file '%s' %s",
		                   th_chanctl_bin(), ks, pw, label);
		subj = strstr(show, "subject:");
		cr_assert_not_null(subj, "%s: no subject in keystore show:\n%s", certs[i], show);
		subj += strlen("subject:");
		while (*subj == ' ')
			subj++;
		if ((e = strchr(subj, '\n')) != NULL)
			*e = '\0';
		int rc = mqtt_run(&out, &err, 20, "'%s' check-peer --sslpeer \"$(cat <<'DN'\n%s\nDN\n)\" "
		                  "--cert '%s'", th_chanctl_bin(), subj, mqtt_seed(certs[i]));
		cr_expect_eq(rc, 0, "%s: printed DN '%s' does not match as a filter: %s%s", certs[i],
		             subj, out ? out : "", err ? err : "");
		free(out);
		free(err);
		free(show);
	}
	th_rmtree(dir);
	free(dir);
}
