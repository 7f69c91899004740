/* Channel operations between two real agents: retry states, triggering,
 * DISCINT, heartbeats against a frozen peer, stop modes, ping, and
 * malformed frames from a raw client speaking the wire protocol
 * (doc/PROTOCOL.md) over a plain-TCP channel. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chand/frame.h"
#include "chand/tls.h"
#include "chan_helpers.h"
#include "tcpproxy.h"

static struct chan_qm qm1, qm2;
static struct tcpproxy *proxy;

static void teardown(void)
{
	chan_pair_finish(&qm1, &qm2);
	if (proxy != NULL) {
		tcpproxy_stop(proxy);
		proxy = NULL;
	}
}

/* One timeout per suite: Criterion 2.4 leaks a little in its parallel
 * runner when a test overrides it (seen under ASan). */
TestSuite(chan_ops, .fini = teardown, .timeout = 150);

static void dump_both(const char *name)
{
	chan_dump(&qm1, name);
	chan_dump(&qm2, name);
}

/* Puts n messages in puts of 250: chanctl sends at most 256 a request, each
 * committed on its own, and a sender that claims between two commits must
 * still find whole batches of 10 (BATCHSZ of the stop tests): with 256 a
 * request it claimed 25 batches and one of 6. */
static void put_n(const char *queue, const char *prefix, int n)
{
	for (int at = 0; at < n; at += 250) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		cr_assert_not_null(f);
		for (int i = at; i < n && i < at + 250; i++)
			fprintf(f, "%s-%05d\n", prefix, i);
		fclose(f);
		chan_put(&qm1, queue, NULL, text);
		free(text);
	}
}

/* ---- retry ---- */

static const json_t *key_like(const json_t *o, const char *part)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		if (strstr(k, part) != NULL)
			return v;
	}
	return NULL;
}

Test(chan_ops, retrying_then_stopped_until_started)
{
	chan_pair_start(&qm1, &qm2);
	int dead = th_free_port();
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "RETRY", CHAN_SDR_RCVR, "XQ", dead,
	            CHAN_TLS " --shortrty 2 --shorttmr 1 --longrty 2 --longtmr 3", CHAN_TLS);
	chan_put(&qm1, "RQ", "-m waiting", NULL);
	long long t0 = chan_now_ms();
	free(chan_ctl_ok(&qm1, NULL, "start channel RETRY"));

	json_t *st = chan_wait_error(&qm1, "RETRY", "CHD5003", 10000);
	cr_assert_not_null(st, "no CHD5003 for a refused connection");
	json_decref(st);
	cr_assert(chan_wait_state(&qm1, "RETRY", "RETRYING", 5000));
	st = chan_status(&qm1, "RETRY");
	const json_t *left = key_like(st, "retries");
	const json_t *next = key_like(st, "next_retry");
	char *dump = json_dumps(st, JSON_COMPACT);
	cr_assert(left != NULL && (json_is_integer(left) || json_is_string(left)),
	          "status shows no retries left: %s", dump);
	cr_assert(next != NULL && !json_is_null(next), "status shows no next retry time: %s", dump);
	free(dump);
	json_decref(st);
	char *txt = chan_ctl_ok(&qm1, NULL, "status RETRY");
	cr_assert(strcasestr(txt, "retr") != NULL, "text status says nothing of retries:\n%s", txt);
	free(txt);

	/* 2 short retries every 1 s, then 2 long ones every 3 s: STOPPED
	 * after about 8 s, not much sooner. */
	cr_assert(chan_wait_state(&qm1, "RETRY", "STOPPED", 25000), "retries never ran out");
	long long took = chan_now_ms() - t0;
	cr_assert_geq(took, 6000, "STOPPED after %lld ms: the retries were not all made", took);
	cr_assert(chan_wait_log(&qm1, "CHD5011", 1000), "no CHD5011 (retrying) in the log");
	/* the state is published before the run's last log line is written */
	cr_assert(chan_wait_log(&qm1, "CHD5012", 2000), "no CHD5012 (stopped) in the log");

	/* STOPPED stays, even with messages waiting. */
	chan_put(&qm1, "RQ", "-m more", NULL);
	chan_sleep_ms(4000);
	st = chan_status(&qm1, "RETRY");
	cr_assert_str_eq(chan_js(st, "state"), "STOPPED");
	json_decref(st);

	char conname[64];
	snprintf(conname, sizeof(conname), "127.0.0.1:%d", qm2.a.port);
	free(chan_ctl_ok(&qm1, NULL, "alter channel RETRY --conname %s", conname));
	free(chan_ctl_ok(&qm1, NULL, "start channel RETRY"));
	cr_assert(chan_wait_state(&qm1, "RETRY", "RUNNING", 15000));
	cr_assert(chan_wait_depth(&qm2, "Q", 2, 10000));
}

/* ---- start channel, status listings, define warnings (chanctl) ---- */

/* start says the request was accepted, then the state the channel
 * reached with its reason; exit 0 either way. */
Test(chan_ops, start_reports_the_state_reached)
{
	char *out = NULL, *err = NULL;
	int dead = th_free_port();

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "DOWN", CHAN_SDR_RCVR, "XQ", dead,
	            CHAN_TLS " --shortrty 10 --shorttmr 60 --longrty 999999999 --longtmr 1200",
	            CHAN_TLS);
	int rc = chan_ctl(&qm1, NULL, &out, &err, "start channel DOWN");
	cr_assert_eq(rc, 0, "start of a channel whose peer is down: exit %d\n%s%s", rc, out, err);
	const char *head = "channel DOWN: start requested.\nchannel DOWN: RETRYING (CHD5003 ";
	cr_expect(strncmp(out, head, strlen(head)) == 0, "start printed:\n%s", out);
	cr_expect(strstr(out, "Connection refused") != NULL, "no reason:\n%s", out);
	/* SHORTTMR 60 s, give or take the agent's jitter (20 %). */
	const char *nr = strstr(out, "; next retry in ");
	int secs = -1;
	cr_expect(nr != NULL && sscanf(nr, "; next retry in %d s)\n", &secs) == 1 && secs >= 45 &&
	          secs <= 73, "no next retry:\n%s", out);
	free(out);
	free(err);

	/* The retries left, short and long apart: the defaults' first failure
	 * leaves all 10 short and 999999999 long ones, not 1000000009. */
	json_t *st = chan_status(&qm1, "DOWN");
	char *dump = json_dumps(st, JSON_COMPACT);
	cr_expect_eq(chan_ji(st, "short_retries_left"), 10, "%s", dump);
	cr_expect_eq(chan_ji(st, "long_retries_left"), 999999999, "%s", dump);
	cr_expect_null(json_object_get(st, "retries_left"), "%s", dump);
	free(dump);
	json_decref(st);
	char *txt = chan_ctl_ok(&qm1, NULL, "status DOWN");
	cr_expect(strstr(txt, "\nshort_retries_left 10\n") != NULL &&
	          strstr(txt, "\nlong_retries_left 999999999\n") != NULL, "%s", txt);
	cr_expect_null(strstr(txt, "1000000009"), "%s", txt);
	free(txt);

	/* --no-wait: the request only. */
	txt = chan_ctl_ok(&qm1, NULL, "start channel DOWN --no-wait");
	cr_expect_str_eq(txt, "channel DOWN: start requested.\n");
	free(txt);
	cr_assert(chan_wait_state(&qm1, "DOWN", "RETRYING", 10000));

	/* --json: the reply with the status reached. */
	txt = chan_ctl_ok(&qm1, NULL, "--json start channel DOWN");
	json_t *j = json_loads(txt, 0, NULL);
	cr_assert_not_null(j, "%s", txt);
	cr_expect(json_is_true(json_object_get(j, "ok")), "%s", txt);
	cr_expect_str_eq(chan_js(json_object_get(j, "status"), "state"), "RETRYING", "%s", txt);
	json_decref(j);
	free(txt);

	/* Pointed at the running peer: RUNNING, with the partner and TLS. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel DOWN"));
	free(chan_ctl_ok(&qm1, NULL, "alter channel DOWN --conname 127.0.0.1:%d", qm2.a.port));
	txt = chan_ctl_ok(&qm1, NULL, "start channel DOWN");
	cr_expect(strstr(txt, "channel DOWN: start requested.\nchannel DOWN: RUNNING (queue manager "
	                 "QM2, TLS1.3 ") != NULL, "%s", txt);
	free(txt);
	/* A receiver: ready for its partner. */
	free(chan_ctl_ok(&qm2, NULL, "stop channel DOWN"));
	txt = chan_ctl_ok(&qm2, NULL, "start channel DOWN");
	cr_expect(strstr(txt, "channel DOWN: INACTIVE (ready: it runs when its partner connects)\n")
	          != NULL || strstr(txt, "channel DOWN: RUNNING") != NULL, "%s", txt);
	free(txt);
	/* Usage: one or the other. */
	cr_expect_eq(chan_ctl(&qm1, NULL, NULL, NULL, "start channel DOWN --wait 5 --no-wait"), 2);
}

/* status without a name lists the channels that have a status, like
 * DISPLAY CHSTATUS(*); --all adds the inactive ones; a name shows one. */
Test(chan_ops, status_lists_active_channels_all_adds_inactive)
{
	char *out;
	int dead = th_free_port(), mport = th_free_port();

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "ACT", CHAN_SDR_RCVR, "XQ", dead, CHAN_TLS " --shorttmr 60",
	            CHAN_TLS);
	chan_define(&qm1, &qm2, "IDLE", CHAN_SDR_RCVR, "XQ", dead, CHAN_TLS, CHAN_TLS);
	free(chan_ctl_ok(&qm1, NULL, "define channel MQ.IDLE --type mqtt --port %d", mport));
	free(chan_ctl_ok(&qm1, NULL, "start channel ACT"));

	out = chan_ctl_ok(&qm1, NULL, "status");
	cr_expect(strstr(out, "\nACT ") != NULL && strstr(out, "RETRYING") != NULL, "%s", out);
	cr_expect_null(strstr(out, "IDLE"), "an inactive channel listed:\n%s", out);
	cr_expect(strstr(out, "(2 inactive channels not shown: chanctl status --all lists them)\n")
	          != NULL, "%s", out);
	free(out);
	out = chan_ctl_ok(&qm1, NULL, "status --all");
	cr_expect(strstr(out, "\nACT ") != NULL && strstr(out, "\nIDLE ") != NULL &&
	          strstr(out, "\nMQ.IDLE ") != NULL && strstr(out, "not shown") == NULL, "%s", out);
	free(out);
	/* A pattern is a listing too; one name is shown whatever its state. */
	out = chan_ctl_ok(&qm1, NULL, "status 'I*'");
	cr_expect_null(strstr(out, "\nIDLE "), "%s", out);
	free(out);
	out = chan_ctl_ok(&qm1, NULL, "status IDLE");
	cr_expect(strstr(out, "state            INACTIVE\n") != NULL, "%s", out);
	free(out);

	/* --json and --watch the same way; prometheus keeps every series. */
	json_t *all = chan_status_all(&qm1, "");
	cr_assert_not_null(all);
	cr_expect_eq(json_array_size(all), 1);
	cr_expect_str_eq(chan_js(json_array_get(all, 0), "name"), "ACT");
	json_decref(all);
	all = chan_status_all(&qm1, "--all");
	cr_expect_eq(json_array_size(all), 3);
	json_decref(all);
	out = chan_ctl_ok(&qm1, NULL, "status --watch 1 --iterations 1");
	cr_expect(strstr(out, "\nACT ") != NULL && strstr(out, "\nIDLE ") == NULL, "%s", out);
	cr_expect(strstr(out, "RETRIES_S/L") != NULL && strstr(out, " 10/5 ") != NULL, "%s", out);
	free(out);
	out = chan_ctl_ok(&qm1, NULL, "status --format prometheus");
	cr_expect(strstr(out, "name=\"IDLE\"") != NULL && strstr(out, "name=\"MQ.IDLE\"") != NULL,
	          "%s", out);
	free(out);

	/* A telemetry channel started: listed, and start says where it listens. */
	out = chan_ctl_ok(&qm1, NULL, "start channel MQ.IDLE");
	char want[160];
	snprintf(want, sizeof(want), "channel MQ.IDLE: start requested.\nchannel MQ.IDLE: RUNNING "
	         "(listening on *:%d, NOT ENCRYPTED)\n", mport);
	cr_expect_str_eq(out, want);
	free(out);
	out = chan_ctl_ok(&qm1, NULL, "status");
	cr_expect(strstr(out, "\nMQ.IDLE ") != NULL && strstr(out, "(1 inactive channel not shown")
	          != NULL, "%s", out);
	free(out);
}

/* define and alter succeed, with a warning on stderr for a CERTLABL the
 * keystore does not have and for a channel without SSLCIPH; the same
 * through an MQSC script. */
Test(chan_ops, define_warnings)
{
	char *out = NULL, *err = NULL;
	int rc;

	chan_qm_start(&qm1, "QM1", NULL);
	rc = chan_ctl(&qm1, NULL, &out, &err, "define channel W.LABEL --type rcvr " CHAN_TLS
	              " --certlabl nosuch");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect_str_eq(out, "channel W.LABEL defined.\n");
	cr_expect_str_eq(err, "warning: channel W.LABEL: CERTLABL 'nosuch' is not a label in the "
	                 "keystore; import it (chanctl keystore import --label nosuch ...) and run "
	                 "refresh security before the channel starts (CHD4007)\n");
	free(out);
	free(err);

	rc = chan_ctl(&qm1, NULL, &out, &err, "define channel W.PLAIN --type rcvr");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect_str_eq(out, "channel W.PLAIN defined.\n");
	cr_expect_str_eq(err, "warning: channel W.PLAIN has no SSLCIPH: plain TCP, messages and "
	                 "credentials travel unencrypted (CHD4012)\n");
	free(out);
	free(err);

	/* Neither: no warning. The label qm1 is in QM1's keystore. */
	rc = chan_ctl(&qm1, NULL, &out, &err, "define channel W.OK --type rcvr " CHAN_TLS
	              " --certlabl qm1");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect_str_eq(err, "");
	free(out);
	free(err);

	/* Both defined. */
	out = chan_ctl_ok(&qm1, NULL, "display channel 'W.*'");
	cr_expect(strstr(out, "W.LABEL") && strstr(out, "W.PLAIN") && strstr(out, "W.OK"), "%s",
	          out);
	free(out);

	/* alter: when it touches SSLCIPH or CERTLABL. */
	rc = chan_ctl(&qm1, NULL, &out, &err, "alter channel W.OK --sslciph ''");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect(strstr(err, "warning: channel W.OK has no SSLCIPH") != NULL, "%s", err);
	free(out);
	free(err);
	rc = chan_ctl(&qm1, NULL, &out, &err, "alter channel W.OK --batchsz 10");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect_str_eq(err, "");
	free(out);
	free(err);

	/* --json: in the reply. */
	out = chan_ctl_ok(&qm1, NULL, "--json define channel W.LABEL --type rcvr " CHAN_TLS
	                  " --certlabl other --replace");
	json_t *j = json_loads(out, 0, NULL), *w = json_object_get(j, "warnings");
	cr_assert(json_is_array(w) && json_array_size(w) == 1, "%s", out);
	cr_expect_str_eq(chan_js(json_array_get(w, 0), "code"), "CHD4007");
	json_decref(j);
	free(out);

	/* A telemetry channel too. */
	rc = chan_ctl(&qm1, NULL, &out, &err, "define channel W.MQTT --type mqtt --port %d",
	              th_free_port());
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect(strstr(err, "warning: channel W.MQTT has no SSLCIPH: plain TCP") != NULL, "%s",
	          err);
	free(out);
	free(err);

	/* MQSC: the warning under the command's output, and the script succeeds. */
	rc = chan_ctl(&qm1, "DEFINE CHANNEL(W.MQSC) CHLTYPE(RCVR)\n", &out, &err, "run");
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect(strstr(out, "channel W.MQSC defined.\n") != NULL, "%s", out);
	cr_expect(strstr(err, "warning: channel W.MQSC has no SSLCIPH") != NULL, "%s", err);
	free(out);
	free(err);
}

/* ---- triggering and DISCINT ---- */

Test(chan_ops, put_starts_an_inactive_sender)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "TRIG", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS, CHAN_TLS);
	json_t *st = chan_status(&qm1, "TRIG");
	cr_assert_not_null(st, "no status for a defined, never started channel");
	cr_assert_str_eq(chan_js(st, "state"), "INACTIVE");
	json_decref(st);
	chan_put(&qm1, "RQ", "-m wake-up", NULL);
	if (!chan_wait_depth(&qm2, "Q", 1, 20000)) {
		dump_both("TRIG");
		cr_assert_fail("a put did not start the inactive sender");
	}
	cr_assert(chan_wait_state(&qm1, "TRIG", "RUNNING", 5000));
}

Test(chan_ops, discint_ends_idle_channel_and_put_restarts_it)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "DISC", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS " --discint 2", CHAN_TLS);
	chan_put(&qm1, "RQ", "-m first", NULL);
	free(chan_ctl_ok(&qm1, NULL, "start channel DISC"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));
	long long t0 = chan_now_ms();
	cr_assert(chan_wait_state(&qm1, "DISC", "INACTIVE", 15000), "DISCINT did not end the channel");
	cr_assert_geq(chan_now_ms() - t0, 1000, "ended before DISCINT");
	cr_assert(chan_wait_state(&qm2, "DISC", "INACTIVE", 5000), "the receiver did not end");
	cr_assert(chan_log_has(&qm1, "CHD5002"));

	chan_put(&qm1, "RQ", "-m second", NULL);
	if (!chan_wait_depth(&qm2, "Q", 2, 20000)) {
		dump_both("DISC");
		cr_assert_fail("a put did not restart the sender after DISCINT");
	}
	cr_assert(chan_wait_state(&qm1, "DISC", "RUNNING|INACTIVE", 5000));
}

/* ---- heartbeats ---- */

Test(chan_ops, heartbeat_detects_frozen_receiver)
{
	const int hb = 2;
	/* doc/PROTOCOL.md section 8: HB after H s idle, then T_reply =
	 * 2 x max(H, 30) + 10 s for its HB_ACK. */
	const int bound_ms = (hb + 2 * 30 + 10) * 1000 + 10000;

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "HB", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS " --hbint 2 --shortrty 30",
	            CHAN_TLS " --hbint 2");
	chan_put(&qm1, "RQ", "-m before", NULL);
	free(chan_ctl_ok(&qm1, NULL, "start channel HB"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));

	cr_assert_eq(kill(qm2.a.pid, SIGSTOP), 0);
	long long t0 = chan_now_ms();
	json_t *st = chan_wait_error(&qm1, "HB", "CHD5010", bound_ms);
	long long took = chan_now_ms() - t0;
	kill(qm2.a.pid, SIGCONT);
	if (st == NULL) {
		dump_both("HB");
		cr_assert_fail("the frozen peer was not declared dead within %d ms", bound_ms);
	}
	json_decref(st);
	cr_log_info("frozen peer detected after %lld ms", took);
	cr_assert_geq(took, hb * 1000, "declared dead before one heartbeat interval");
	cr_assert(chan_wait_state(&qm1, "HB", "RETRYING|RUNNING|STARTING|BINDING", 5000));

	/* The peer is back: the channel recovers by itself. */
	chan_put(&qm1, "RQ", "-m after", NULL);
	if (!chan_wait_depth(&qm2, "Q", 2, 30000)) {
		dump_both("HB");
		cr_assert_fail("the channel did not recover after the peer thawed");
	}
}

Test(chan_ops, receiver_detects_frozen_sender)
{
	const int hb = 2;
	/* doc/PROTOCOL.md section 8: T_dead = 2 x H + 10 s at the receiving end. */
	const int bound_ms = (2 * hb + 10) * 1000 + 8000;

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "HBR", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS " --hbint 2",
	            CHAN_TLS " --hbint 2");
	chan_put(&qm1, "RQ", "-m before", NULL);
	free(chan_ctl_ok(&qm1, NULL, "start channel HBR"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));
	cr_assert(chan_wait_state(&qm2, "HBR", "RUNNING", 5000));

	cr_assert_eq(kill(qm1.a.pid, SIGSTOP), 0);
	long long t0 = chan_now_ms();
	json_t *st = chan_wait_error(&qm2, "HBR", "CHD5010", bound_ms);
	long long took = chan_now_ms() - t0;
	kill(qm1.a.pid, SIGCONT);
	if (st == NULL) {
		dump_both("HBR");
		cr_assert_fail("the frozen sender was not declared dead within %d ms", bound_ms);
	}
	json_decref(st);
	cr_log_info("frozen sender detected after %lld ms", took);
	cr_assert_geq(took, 2 * hb * 1000, "declared dead before 2 x HBINT");
	cr_assert(chan_wait_state(&qm2, "HBR", "INACTIVE|STOPPED", 5000));
	/* Thawed, the sender finds its connection gone and comes back. */
	chan_put(&qm1, "RQ", "-m after", NULL);
	if (!chan_wait_depth(&qm2, "Q", 2, 40000)) {
		dump_both("HBR");
		cr_assert_fail("the channel did not recover after the sender thawed");
	}
}

/* ---- stop modes ---- */

/* Through a proxy that holds the receiver's CONFIRMs from the start: the
 * sender sends what its window allows (protocol version 2: up to 8
 * batches), the receiver commits them, and the sender waits.  The
 * transfer is then surely mid-way when the test acts, however fast the
 * machine would move the messages. */
static void start_held_transfer(const char *name, int n)
{
	chan_pair_start(&qm1, &qm2);
	proxy = tcpproxy_start(qm2.a.port);
	cr_assert_not_null(proxy);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 100000);
	chan_define(&qm1, &qm2, name, CHAN_SDR_RCVR, "XQ", tcpproxy_port(proxy),
	            CHAN_TLS " --batchsz 10", CHAN_TLS);
	/* Running and idle first (the handshake needs both directions), then
	 * the CONFIRMs are held and the messages come in puts of whole
	 * batches (put_n), so every batch is a full BATCHSZ. */
	free(chan_ctl_ok(&qm1, NULL, "start channel %s", name));
	cr_assert(chan_wait_state(&qm1, name, "RUNNING", 20000));
	tcpproxy_freeze(proxy, false, true);
	put_n("RQ", "big", n);
	long long end = chan_now_ms() + 20000;
	while (chan_depth(&qm2, "Q") <= 0 && chan_now_ms() < end)
		chan_sleep_ms(10);
	cr_assert_gt(chan_depth(&qm2, "Q"), 0, "the transfer did not begin");
}

static void finish_and_count(const char *name, int n)
{
	free(chan_ctl_ok(&qm1, NULL, "start channel %s", name));
	if (!chan_wait_depth(&qm1, "XQ", 0, 60000) || !chan_wait_depth(&qm2, "Q", n, 10000)) {
		dump_both(name);
		cr_assert_fail("the transfer did not complete after restart");
	}
	json_t *msgs = chan_get_msgs(&qm2, "Q");
	cr_assert_eq(json_array_size(msgs), (size_t)n);
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "big-%05d", i);
		cr_assert_str_eq(chan_js(json_array_get(msgs, (size_t)i), "body"), want);
	}
	json_decref(msgs);
}

Test(chan_ops, stop_quiesce_finishes_the_batch)
{
	const int n = 3000;

	start_held_transfer("QUIESCE", n);
	/* The stop waits for the channel to end, which it cannot while its
	 * CONFIRMs are held: ask in the background, and once the agent has
	 * the request let them through; the batches in flight are then seen
	 * through and no new one starts. */
	cr_assert_eq(th_sh(NULL, NULL, NULL, 10, "'%s' -s '%s' stop channel QUIESCE --mode quiesce "
	                   ">/dev/null 2>&1 &", th_chanctl_bin(), qm1.a.sock), 0);
	cr_assert(chan_wait_log(&qm1, "CHD5024", 15000), "the stop request did not arrive");
	tcpproxy_freeze(proxy, false, false);
	cr_assert(chan_wait_state(&qm1, "QUIESCE", "STOPPED", 15000));
	json_t *st = chan_status(&qm1, "QUIESCE");
	json_t *d = json_object_get(st, "indoubt");
	cr_assert(!json_is_true(d) && !(json_is_integer(d) && json_integer_value(d)) &&
	          !(json_is_string(d) && strcasecmp(json_string_value(d), "yes") == 0),
	          "quiesce left a batch in doubt");
	json_decref(st);
	/* Nothing in flight: every message is on exactly one side. */
	long a = chan_depth(&qm1, "XQ"), b = chan_depth(&qm2, "Q");
	cr_assert_eq(a + b, n, "XQ %ld + Q %ld != %d", a, b, n);
	cr_assert_gt(a, 0, "quiesce did not stop the transfer (all sent)");
	cr_assert_eq(b % 10, 0, "a partial batch was committed: %ld", b);
	chan_sleep_ms(1500);
	cr_assert_eq(chan_depth(&qm1, "XQ"), a, "messages moved after STOPPED");
	finish_and_count("QUIESCE", n);
}

Test(chan_ops, stop_force_then_restart_exactly_once)
{
	const int n = 3000;

	start_held_transfer("FORCE", n);
	free(chan_ctl_ok(&qm1, NULL, "stop channel FORCE --mode force"));
	cr_assert(chan_wait_state(&qm1, "FORCE", "STOPPED", 10000));
	cr_assert_gt(chan_depth(&qm1, "XQ"), 0);
	tcpproxy_freeze(proxy, false, false);
	cr_assert(chan_wait_state(&qm2, "FORCE", "INACTIVE|STOPPED", 20000));
	finish_and_count("FORCE", n);
}

/* ---- ping ---- */

Test(chan_ops, ping_channel)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "PING", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS, CHAN_TLS);
	/* STOPPED, so that the put does not start it. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel PING"));
	chan_put(&qm1, "RQ", "-m stays", NULL);
	/* An inactive channel: ping proves definitions, certificates and
	 * CipherSpecs fit, and moves nothing. */
	char *out = chan_ctl_ok(&qm1, NULL, "ping channel PING");
	cr_assert(strlen(out) > 0, "ping printed nothing");
	free(out);
	out = chan_ctl_ok(&qm1, NULL, "--json ping channel PING");
	json_error_t je;
	json_t *pj = json_loads(out, JSON_DECODE_ANY, &je);
	cr_assert_not_null(pj, "ping --json is not JSON: %s", out);
	json_decref(pj);
	free(out);
	cr_assert_eq(chan_depth(&qm1, "XQ"), 1, "ping moved a message");
	json_t *st = chan_status(&qm1, "PING");
	cr_assert_str_neq(chan_js(st, "state"), "RUNNING");
	json_decref(st);

	/* A running instance is not touched by a ping. */
	free(chan_ctl_ok(&qm1, NULL, "start channel PING"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));
	st = chan_status(&qm1, "PING");
	char *started = strdup(chan_js(st, "start_time"));
	json_decref(st);
	free(chan_ctl_ok(&qm1, NULL, "ping channel PING"));
	st = chan_status(&qm1, "PING");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert_str_eq(chan_js(st, "start_time"), started);
	json_decref(st);
	free(started);

	/* Failures name their code. */
	char *err = NULL;
	chan_define_route(&qm1, &qm2, "XQ2", NULL, NULL, 0);
	chan_define(&qm1, &qm2, "PINGBAD", CHAN_SDR_RCVR, "XQ2", 0,
	            "--sslciph TLS_AES_128_GCM_SHA256", "--sslciph TLS_AES_256_GCM_SHA384");
	cr_assert_neq(chan_ctl(&qm1, NULL, NULL, &err, "ping channel PINGBAD"), 0);
	cr_assert(err && strstr(err, "CHD4006"), "ping with mismatched specs: %s", err ? err : "");
	free(err);
	err = NULL;
	free(chan_ctl_ok(&qm1, NULL, "alter channel PINGBAD --conname 127.0.0.1:%d",
	                 th_free_port()));
	cr_assert_neq(chan_ctl(&qm1, NULL, NULL, &err, "ping channel PINGBAD"), 0);
	cr_assert(err && strstr(err, "CHD5003"), "ping with nothing listening: %s", err ? err : "");
	free(err);
}

/* ---- malformed frames from a raw peer ---- */

static int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* A raw peer speaking the wire protocol, over plain TCP or over a real
 * mutual-TLS session made with the product's own TLS layer (so malformed
 * frames reach the channel exactly as a hostile but authenticated peer
 * would send them). */
static struct tls_conn *raw_tls;     /* non-NULL: the current raw peer is TLS */

static void raw_send(int fd, const void *p, size_t n)
{
	const char *b = p;

	if (raw_tls != NULL) {
		struct tls_error e;
		(void)tls_send_all(raw_tls, p, n, 10000, &e);   /* the agent may have closed */
		return;
	}

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;       /* the agent may have closed already */
		b += w;
		n -= (size_t)w;
	}
}

/* Reads exactly n bytes within timeout_ms; false on close or timeout. */
static bool raw_read(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	if (raw_tls != NULL) {
		struct tls_error e;
		return n == 0 || tls_recv_all(raw_tls, p, n, timeout_ms, &e) == (ssize_t)n;
	}
	while (n > 0) {
		long long left = end - chan_now_ms();
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return false;
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* True once the agent has closed fd (EOF or reset) within timeout_ms. */
static bool raw_closed(int fd, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	uint8_t buf[512];

	for (;;) {
		long long left = end - chan_now_ms();
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (left <= 0)
			return false;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno != EINTR))
			return true;
	}
}

/* Reads one frame into f (payload kept in buf). false on close/timeout. */
static bool raw_frame(int fd, struct frame *f, uint8_t *buf, size_t cap)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	struct frame_header h;
	struct frame_err e;

	if (!raw_read(fd, hdr, sizeof(hdr), 10000))
		return false;
	cr_assert_eq(frame_header_decode(hdr, sizeof(hdr), &h, cap, &e), FRAME_OK,
	             "the agent sent a bad header: %s", e.why);
	cr_assert(raw_read(fd, buf, h.length, 10000), "short frame from the agent");
	cr_assert_eq(frame_decode(&h, buf, h.length, f, &e), FRAME_OK,
	             "the agent sent a bad frame: %s", e.why);
	return true;
}

/* Negotiates channel RAW as an SDR named QM9 and resyncs; returns the fd
 * ready for transfer frames and the frame counter state. */
static int raw_session_as(struct frame_writer *w, const char *channel, const char *qmgr,
                          bool tls);

static int raw_session(struct frame_writer *w)
{
	return raw_session_as(w, "RAW", "QM9", false);
}

/* Opens the raw peer's connection: plain, or mutual TLS as QM1 (label qm1
 * of QM1's keystore) asking for channel in SNI. */
static int raw_open(const char *channel, bool tls)
{
	int fd = raw_connect(qm2.a.port);
	struct tls_ctx *ctx;
	struct tls_params p;
	struct tls_error e;

	if (!tls)
		return fd;
	cr_assert_eq(tls_ctx_load(&ctx, qm1.ks, qm1.stash, &e), 0, "keystore: %s", e.text);
	memset(&p, 0, sizeof(p));
	snprintf(p.channel, sizeof(p.channel), "%s", channel);
	snprintf(p.sslciph, sizeof(p.sslciph), "ANY_TLS13_OR_HIGHER");
	snprintf(p.label, sizeof(p.label), "qm1");
	cr_assert_eq(tls_client_open(&raw_tls, fd, ctx, &p, 10000, -1, &e), 0,
	             "TLS handshake: %s %s", code_str(e.code), e.text);
	tls_ctx_unref(ctx);
	return fd;
}

/* Closes the raw peer's connection. */
static void raw_close(int fd)
{
	if (raw_tls != NULL) {
		tls_close(raw_tls);     /* closes fd too */
		raw_tls = NULL;
		return;
	}
	close(fd);
}

static int raw_session_as(struct frame_writer *w, const char *channel, const char *qmgr,
                          bool tls)
{
	struct frame_buf b;
	struct frame_err e;
	struct frame f;
	static uint8_t buf[FRAME_CTRL_PAYLOAD_MAX];
	struct frame_init in = { .min_version = FRAME_VERSION_MIN, .max_version = FRAME_VERSION_MAX,
		.chtype = FRAME_CH_SDR, .batchsz = 50, .maxmsgl = 4194304, .hbint = 300,
		.seqwrap = 999999999 };

	snprintf(in.channel, sizeof(in.channel), "%s", channel);
	snprintf(in.qmgr, sizeof(in.qmgr), "%s", qmgr);
	if (tls)
		snprintf(in.sslciph, sizeof(in.sslciph), "ANY_TLS13_OR_HIGHER");
	int fd = raw_open(channel, tls);
	frame_buf_init(&b);
	frame_writer_init(w);
	cr_assert_eq(frame_encode_init(&b, w, &in, &e), FRAME_OK, "%s", e.why);
	raw_send(fd, b.p, b.len);
	cr_assert(raw_frame(fd, &f, buf, sizeof(buf)), "no answer to INIT");
	if (f.h.type == FRAME_ERROR)
		cr_assert_fail("INIT refused: %s %s", f.u.error.code, f.u.error.text);
	cr_assert_eq(f.h.type, FRAME_INIT_ACK);
	w->version = f.u.init_ack.version;
	frame_buf_reset(&b);
	struct frame_resync rs = { 0 };
	cr_assert_eq(frame_encode_resync(&b, w, &rs, &e), FRAME_OK, "%s", e.why);
	raw_send(fd, b.p, b.len);
	cr_assert(raw_frame(fd, &f, buf, sizeof(buf)), "no answer to RESYNC");
	if (f.h.type == FRAME_ERROR)
		cr_assert_fail("RESYNC refused: %s %s", f.u.error.code, f.u.error.text);
	cr_assert_eq(f.h.type, FRAME_RESYNC_ACK);
	frame_buf_free(&b);
	return fd;
}

static void expect_protocol_error_on(int fd, const char *channel, const char *what);

/* After a bad frame: an ERROR CHD5009 (if anything) and then a close. */
static void expect_protocol_error(int fd, const char *what)
{
	expect_protocol_error_on(fd, "RAW", what);
}

static void expect_protocol_error_on(int fd, const char *channel, const char *what)
{
	static uint8_t buf[FRAME_CTRL_PAYLOAD_MAX];
	struct frame f;
	bool got_error = false;

	while (raw_frame(fd, &f, buf, sizeof(buf))) {
		if (f.h.type == FRAME_ERROR) {
			cr_assert_str_eq(f.u.error.code, "CHD5009", "%s: ERROR %s %s", what,
			                 f.u.error.code, f.u.error.text);
			got_error = true;
		}
	}
	cr_assert(got_error, "%s: closed without ERROR CHD5009", what);
	json_t *st = chan_wait_error(&qm2, channel, "CHD5009", 10000);
	cr_assert_not_null(st, "%s: %s's status lacks CHD5009", what, channel);
	json_decref(st);
	cr_assert(chan_wait_state(&qm2, channel, "INACTIVE|STOPPED", 10000), "%s", what);
	raw_close(fd);
}

static void put_hdr(uint8_t *h, uint8_t version, uint8_t type, uint16_t flags, uint32_t len,
                    uint32_t counter)
{
	memcpy(h, FRAME_MAGIC, 4);
	h[4] = version;
	h[5] = type;
	h[6] = (uint8_t)(flags >> 8);
	h[7] = (uint8_t)flags;
	for (int i = 0; i < 4; i++) {
		h[8 + i] = (uint8_t)(len >> (24 - 8 * i));
		h[12 + i] = (uint8_t)(counter >> (24 - 8 * i));
	}
}

Test(chan_ops, malformed_frames_close_only_that_channel)
{
	struct frame_writer w;
	uint8_t hdr[FRAME_HEADER_LEN];

	chan_pair_start(&qm1, &qm2);
	/* A healthy TLS channel that must not notice anything. */
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "GOOD", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS, CHAN_TLS);
	chan_put(&qm1, "RQ", "-m one", NULL);
	free(chan_ctl_ok(&qm1, NULL, "start channel GOOD"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));
	json_t *st = chan_status(&qm1, "GOOD");
	char *started = strdup(chan_js(st, "start_time"));
	json_decref(st);
	/* The plain-TCP receiver the raw client talks to. */
	free(chan_ctl_ok(&qm2, NULL, "define channel RAW --type rcvr"));

	/* 1. An unknown frame type. */
	int fd = raw_session(&w);
	put_hdr(hdr, w.version, 0x7f, 0, 0, w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	expect_protocol_error(fd, "unknown type");

	/* 2. A length far over the limit (nothing may be allocated). */
	fd = raw_session(&w);
	put_hdr(hdr, w.version, FRAME_MSG, FRAME_F_MSG_PERSISTENT, 0x7ffffff0u, w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	expect_protocol_error(fd, "huge length");

	/* 3. A wrong frame counter. */
	fd = raw_session(&w);
	put_hdr(hdr, w.version, FRAME_HB, 0, 0, w.counter + 5);
	raw_send(fd, hdr, sizeof(hdr));
	expect_protocol_error(fd, "wrong counter");

	/* 4. A MSG whose payload is garbage. */
	fd = raw_session(&w);
	uint8_t junk[200];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	put_hdr(hdr, w.version, FRAME_MSG, FRAME_F_MSG_PERSISTENT, sizeof(junk), w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	raw_send(fd, junk, sizeof(junk));
	expect_protocol_error(fd, "garbage MSG");

	/* 5. A HB inside an open batch. */
	fd = raw_session(&w);
	{
		struct frame_buf b;
		struct frame_err e;
		struct chd_msg m = { .priority = 5, .persistent = true, .body = (uint8_t *)"x",
		                     .body_len = 1 };
		msg_new_id(m.msgid);
		snprintf(m.xmit_qm, sizeof(m.xmit_qm), "QM2");
		snprintf(m.xmit_q, sizeof(m.xmit_q), "Q");
		frame_buf_init(&b);
		cr_assert_eq(frame_encode_msg(&b, &w, 1, 1, &m, 0, &e), FRAME_OK, "%s", e.why);
		cr_assert_eq(frame_encode_hb(&b, &w), FRAME_OK);
		raw_send(fd, b.p, b.len);
		frame_buf_free(&b);
	}
	expect_protocol_error(fd, "HB inside a batch");
	cr_assert_eq(chan_depth(&qm2, "Q"), 1, "the open batch was committed");

	/* 6. Not even the magic: the listener drops it. */
	fd = raw_connect(qm2.a.port);
	raw_send(fd, "CHNX\x01\x01\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00", 16);
	cr_assert(raw_closed(fd, 10000), "a stranger's connection was left open");
	close(fd);

	cr_assert(chan_log_has(&qm2, "CHD5009"));
	cr_assert(th_agent_alive(&qm2.a));
	/* The healthy channel ran on untouched. */
	st = chan_status(&qm1, "GOOD");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert_str_eq(chan_js(st, "start_time"), started, "GOOD was restarted");
	json_decref(st);
	free(started);
	chan_put(&qm1, "RQ", "-m two", NULL);
	cr_assert(chan_wait_depth(&qm2, "Q", 2, 10000));
}

/* The same over a real mutual-TLS connection: a peer that passes every
 * certificate check and then sends garbage loses only its own channel. */
Test(chan_ops, malformed_frames_over_tls_close_only_that_channel)
{
	struct frame_writer w;
	uint8_t hdr[FRAME_HEADER_LEN];

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "GOOD", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS, CHAN_TLS);
	chan_put(&qm1, "RQ", "-m one", NULL);
	free(chan_ctl_ok(&qm1, NULL, "start channel GOOD"));
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000));
	json_t *st = chan_status(&qm1, "GOOD");
	char *started = strdup(chan_js(st, "start_time"));
	json_decref(st);
	free(chan_ctl_ok(&qm2, NULL, "define channel RAWTLS --type rcvr " CHAN_TLS
	                 " --sslcauth required --sslpeer 'CN=QM1'"));

	/* 1. An unknown frame type after a good TLS negotiation. */
	int fd = raw_session_as(&w, "RAWTLS", "QM1", true);
	st = chan_status(&qm2, "RAWTLS");
	cr_assert_str_eq(chan_js(st, "peer_dn"), "CN=QM1,OU=Payments,O=Acme,C=GB");
	json_decref(st);
	put_hdr(hdr, w.version, 0x7f, 0, 0, w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	expect_protocol_error_on(fd, "RAWTLS", "unknown type over TLS");

	/* 2. An oversized length: refused before anything is allocated. */
	fd = raw_session_as(&w, "RAWTLS", "QM1", true);
	put_hdr(hdr, w.version, FRAME_MSG, FRAME_F_MSG_PERSISTENT, 0x7ffffff0u, w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	expect_protocol_error_on(fd, "RAWTLS", "huge length over TLS");

	/* 3. A MSG whose payload is garbage. */
	fd = raw_session_as(&w, "RAWTLS", "QM1", true);
	uint8_t junk[300];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 197 + 3);
	put_hdr(hdr, w.version, FRAME_MSG, FRAME_F_MSG_PERSISTENT, sizeof(junk), w.counter);
	raw_send(fd, hdr, sizeof(hdr));
	raw_send(fd, junk, sizeof(junk));
	expect_protocol_error_on(fd, "RAWTLS", "garbage MSG over TLS");

	cr_assert(th_agent_alive(&qm2.a));
	st = chan_status(&qm1, "GOOD");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert_str_eq(chan_js(st, "start_time"), started, "GOOD was restarted");
	json_decref(st);
	free(started);
	chan_put(&qm1, "RQ", "-m two", NULL);
	cr_assert(chan_wait_depth(&qm2, "Q", 2, 10000));
}
