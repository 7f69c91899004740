/* Exactly once across failures: kill -9 of either agent at random points
 * of a transfer, connections cut mid-batch by a proxy, sequence number
 * mismatches fixed with reset, and in-doubt batches settled by hand with
 * resolve. Every test ends by counting what arrived: each message exactly
 * once (bodies and message ids), nothing left behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <criterion/criterion.h>

#include "chan_helpers.h"
#include "tcpproxy.h"

static struct chan_qm qm1, qm2;
static struct tcpproxy *proxy;

static void teardown(void)
{
	tcpproxy_stop(proxy);
	proxy = NULL;
	chan_pair_finish(&qm1, &qm2);
}

/* One timeout per suite: Criterion 2.4 leaks a little in its parallel
 * runner when a test overrides it (seen under ASan). */
TestSuite(chan_crash, .fini = teardown, .timeout = 180);

static void dump_both(const char *name)
{
	chan_dump(&qm1, name);
	chan_dump(&qm2, name);
}

/* Puts n persistent messages "PREFIX-nnnnn" (optionally padded to pad
 * bytes) to queue on QM1. */
static void put_n(const char *queue, const char *prefix, int from, int n, int pad)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	for (int i = from; i < from + n; i++) {
		int w = fprintf(f, "%s-%05d", prefix, i);
		for (; w < pad; w++)
			fputc('x', f);
		fputc('\n', f);
	}
	fclose(f);
	chan_put(&qm1, queue, NULL, text);
	free(text);
}

/* Gets everything from QM2's queue and checks it holds prefix-from ..
 * prefix-(from+n-1) exactly once each, with distinct message ids. */
static void check_exactly_once(const char *queue, const char *prefix, int from, int n)
{
	json_t *msgs = chan_get_msgs(&qm2, queue);
	size_t got = json_array_size(msgs);
	char *seen = calloc((size_t)n, 1);
	int dups = 0, foreign = 0;
	json_t *ids = json_object();

	for (size_t i = 0; i < got; i++) {
		json_t *o = json_array_get(msgs, i);
		const char *b = chan_js(o, "body");
		int k = -1;
		size_t pl = strlen(prefix);
		if (strncmp(b, prefix, pl) == 0 && b[pl] == '-')
			k = atoi(b + pl + 1) - from;
		if (k < 0 || k >= n) {
			foreign++;
			continue;
		}
		if (seen[k])
			dups++;
		seen[k] = 1;
		const char *id = chan_js(o, "msgid");
		cr_assert_null(json_object_get(ids, id), "msgid %s delivered twice (%s)", id, b);
		json_object_set_new(ids, id, json_true());
	}
	int missing = 0, first_missing = -1;
	for (int k = 0; k < n; k++) {
		if (!seen[k]) {
			missing++;
			if (first_missing < 0)
				first_missing = from + k;
		}
	}
	free(seen);
	json_decref(ids);
	json_decref(msgs);
	cr_assert(dups == 0 && missing == 0 && foreign == 0,
	          "%s: got %zu messages for %d: %d duplicates, %d missing (first %s-%05d), "
	          "%d unexpected", queue, got, n, dups, missing, prefix, first_missing, foreign);
}

/* After an agent restart: a sender whose XMITQ holds messages must run
 * again by itself (trigger, or the retry of a broken connection). If it
 * does not, say so (the test fails at the end) and start it by hand so
 * the exactly-once check still runs. */
static bool auto_restart_ok = true;

static void ensure_running(struct chan_qm *ini, const char *name, const char *xmitq)
{
	if (chan_depth(&qm1, xmitq) == 0)
		return;
	if (chan_wait_state(ini, name, "RUNNING", 15000) || chan_depth(&qm1, xmitq) == 0)
		return;
	auto_restart_ok = false;
	cr_log_warn("%s did not restart by itself on %s; starting it by hand", name, ini->name);
	chan_ctl(ini, NULL, NULL, NULL, "start channel %s", name);
	if (!chan_wait_state(ini, name, "RUNNING", 20000) && chan_depth(&qm1, xmitq) > 0) {
		dump_both(name);
		cr_assert_fail("%s does not run again after the restart", name);
	}
}

#define CRASH_CHUNK 4000
#define CRASH_ROUNDS 5

/* Each round: make sure a few thousand messages wait on the XMITQ, wait
 * until they are moving (the receiver's depth grows), let a random moment
 * pass, kill -9 the victim, restart it at once or after a pause. */
static void crash_rounds(struct chan_qm *victim)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int total = 0, mid_transfer = 0;

	chan_pair_start(&qm1, &qm2);
	cr_log_info("kill -9 of %s, seed %u", victim->name, seed);
	srand(seed);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "Q", 100000);
	chan_define(&qm1, &qm2, "CRASH", CHAN_SDR_RCVR, "QM2", 0,
	            CHAN_TLS " --batchsz 20 --shortrty 60 --shorttmr 1", CHAN_TLS);

	for (int round = 0; round < CRASH_ROUNDS; round++) {
		long before = chan_depth(&qm2, "Q");
		if (chan_depth(&qm1, "QM2") < CRASH_CHUNK / 2) {
			/* The put starts (triggers) the sender if it is idle. */
			put_n("RQ", "c", total, CRASH_CHUNK, 200);
			total += CRASH_CHUNK;
		}
		long long end = chan_now_ms() + 15000;
		while (chan_depth(&qm2, "Q") <= before && chan_now_ms() < end)
			chan_sleep_ms(5);
		chan_sleep_ms(rand() % 120);
		/* Messages must be moving when the kill lands, however fast the
		 * machine drained the chunk (with several batches in flight a
		 * few hundred left go in milliseconds): a fresh chunk goes in
		 * just before (the put feeds the running sender), so the kill
		 * is mid-transfer by construction. */
		put_n("RQ", "c", total, CRASH_CHUNK, 200);
		total += CRASH_CHUNK;
		long left = chan_depth(&qm1, "QM2");
		th_agent_kill9(&victim->a);
		mid_transfer += left > 0;
		cr_log_info("round %d: killed %s with %ld messages on the XMITQ", round, victim->name,
		            left);
		chan_sleep_ms(rand() % 2 ? 0 : rand() % 1500);
		chan_qm_restart(victim);
		ensure_running(&qm1, "CRASH", "QM2");
	}
	cr_assert_geq(mid_transfer, 3, "only %d kills happened while messages were moving",
	              mid_transfer);
	if (!chan_wait_depth(&qm1, "QM2", 0, 60000) || !chan_wait_depth(&qm2, "Q", total, 20000)) {
		dump_both("CRASH");
		check_exactly_once("Q", "c", 0, total);
		cr_assert_fail("the transfer did not complete");
	}
	check_exactly_once("Q", "c", 0, total);
	cr_assert_eq(chan_depth(&qm2, "DLQ"), 0);
	cr_expect(auto_restart_ok, "the sender had to be started by hand after a restart");
}

Test(chan_crash, kill9_sender_agent_at_random_points)
{
	crash_rounds(&qm1);
}

Test(chan_crash, kill9_receiver_agent_at_random_points)
{
	crash_rounds(&qm2);
}

/* ---- connections cut mid-stream ---- */

Test(chan_crash, connection_cut_mid_batch_by_proxy)
{
	/* Bytes after which successive connections are cut: inside the TLS
	 * handshake, inside negotiation or resync, and inside batches. */
	static const long cuts[] = { 700, 3000, 6500, 40000, 90000, 150000 };
	const int n = 600;

	chan_pair_start(&qm1, &qm2);
	proxy = tcpproxy_start(qm2.a.port);
	cr_assert_not_null(proxy);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "Q", 10000);
	chan_define(&qm1, &qm2, "CUT", CHAN_SDR_RCVR, "QM2", tcpproxy_port(proxy),
	            CHAN_TLS " --batchsz 50 --shortrty 60 --shorttmr 1", CHAN_TLS);
	/* STOPPED while loading: the first connection is the planned one. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel CUT"));
	put_n("RQ", "cut", 0, n, 1024);
	const int ncuts = (int)(sizeof(cuts) / sizeof(cuts[0]));
	tcpproxy_cut_plan(proxy, cuts, ncuts);
	free(chan_ctl_ok(&qm1, NULL, "start channel CUT"));
	long long end = chan_now_ms() + 60000;
	while (tcpproxy_cuts(proxy) < ncuts && chan_now_ms() < end)
		chan_sleep_ms(20);
	if (tcpproxy_cuts(proxy) < ncuts) {
		dump_both("CUT");
		cr_assert_fail("only %d of %d cuts happened (%d connections)", tcpproxy_cuts(proxy),
		               ncuts, tcpproxy_accepted(proxy));
	}
	if (!chan_wait_depth(&qm1, "QM2", 0, 60000) || !chan_wait_depth(&qm2, "Q", n, 10000)) {
		dump_both("CUT");
		cr_assert_fail("the transfer did not complete after the cuts");
	}
	check_exactly_once("Q", "cut", 0, n);
	cr_assert_geq(tcpproxy_accepted(proxy), 7);
	/* Each cut was seen as a broken connection. */
	cr_assert(chan_log_has(&qm1, "CHD5017") || chan_log_has(&qm1, "CHD5011"),
	          "the sender's log does not mention the broken connections");
}

/* ---- sequence numbers ---- */

Test(chan_crash, sequence_mismatch_stops_then_reset_fixes)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "SEQ", CHAN_SDR_RCVR, "QM2", 0, CHAN_TLS, CHAN_TLS);
	put_n("RQ", "s", 0, 12, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel SEQ"));
	cr_assert(chan_wait_depth(&qm2, "Q", 12, 20000));
	json_t *st = chan_status(&qm1, "SEQ");
	cr_assert_eq(chan_ji(st, "committed_seq"), 12, "committed_seq %lld",
	             chan_ji(st, "committed_seq"));
	json_decref(st);
	free(chan_ctl_ok(&qm1, NULL, "stop channel SEQ"));
	cr_assert(chan_wait_state(&qm1, "SEQ", "STOPPED|INACTIVE", 15000));
	cr_assert(chan_wait_state(&qm2, "SEQ", "STOPPED|INACTIVE", 15000));

	/* Only the receiving end is reset: the two ends now disagree. */
	free(chan_ctl_ok(&qm2, NULL, "reset channel SEQ --seqnum 500"));
	put_n("RQ", "s", 12, 3, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel SEQ"));
	json_t *e1 = chan_wait_error(&qm1, "SEQ", "CHD5007", 20000);
	if (e1 == NULL) {
		dump_both("SEQ");
		cr_assert_fail("no CHD5007 at the sender");
	}
	const char *why = chan_js(e1, "last_error");
	/* --seqnum 500 makes 500 the next number: 499 is the last committed. */
	cr_assert(strstr(why, "12") && strstr(why, "499"), "reason lacks both numbers: %s", why);
	json_decref(e1);
	cr_assert(chan_wait_state(&qm1, "SEQ", "STOPPED", 10000), "a mismatch must stop the channel");
	cr_assert(chan_wait_log(&qm2, "CHD5007", 5000), "the receiver's log lacks CHD5007");
	cr_assert_eq(chan_depth(&qm1, "QM2"), 3, "messages moved despite the mismatch");

	/* Both ends stopped. Resetting the sender (its number is sent and
	 * adopted) and starting both ends fixes it. */
	cr_assert(chan_wait_state(&qm2, "SEQ", "STOPPED", 10000), "the receiving end did not stop");
	free(chan_ctl_ok(&qm1, NULL, "reset channel SEQ --seqnum 500"));
	free(chan_ctl_ok(&qm2, NULL, "start channel SEQ"));
	free(chan_ctl_ok(&qm1, NULL, "start channel SEQ"));
	if (!chan_wait_depth(&qm1, "QM2", 0, 20000)) {
		dump_both("SEQ");
		cr_assert_fail("reset did not fix the channel");
	}
	cr_assert(chan_wait_depth(&qm2, "Q", 15, 10000));
	st = chan_status(&qm1, "SEQ");
	cr_assert_eq(chan_ji(st, "committed_seq"), 502, "committed_seq after reset %lld",
	             chan_ji(st, "committed_seq"));
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	json_decref(st);
	check_exactly_once("Q", "s", 0, 15);
}

/* ---- in-doubt batches resolved by hand ---- */

static bool indoubt_of(const json_t *st)
{
	json_t *v = json_object_get(st, "indoubt");
	if (json_is_true(v))
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_string(v))
		return strcasecmp(json_string_value(v), "yes") == 0 ||
		       strcasecmp(json_string_value(v), "true") == 0;
	return false;
}

static void wait_indoubt(const char *name, bool want)
{
	long long end = chan_now_ms() + 15000;

	for (;;) {
		json_t *st = chan_status(&qm1, name);
		bool d = st != NULL && indoubt_of(st);
		json_decref(st);
		if (d == want)
			return;
		if (chan_now_ms() > end) {
			dump_both(name);
			cr_assert_fail("%s: indoubt never became %s", name, want ? "true" : "false");
		}
		chan_sleep_ms(50);
	}
}

static void indoubt_setup(void)
{
	chan_pair_start(&qm1, &qm2);
	proxy = tcpproxy_start(qm2.a.port);
	cr_assert_not_null(proxy);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "Q", 0);
	/* Long heartbeats: the test, not the heartbeat, ends the channel. */
	chan_define(&qm1, &qm2, "DOUBT", CHAN_SDR_RCVR, "QM2", tcpproxy_port(proxy),
	            CHAN_TLS " --batchsz 5 --hbint 120", CHAN_TLS " --hbint 120");
	put_n("RQ", "d", 0, 5, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel DOUBT"));
	cr_assert(chan_wait_depth(&qm2, "Q", 5, 20000));
	cr_assert(chan_wait_depth(&qm1, "QM2", 0, 10000));
}

Test(chan_crash, indoubt_resolved_commit_by_hand)
{
	indoubt_setup();
	/* The receiver commits but its CONFIRM never reaches the sender. */
	tcpproxy_freeze(proxy, false, true);
	put_n("RQ", "d", 5, 5, 0);
	cr_assert(chan_wait_depth(&qm2, "Q", 10, 15000), "the receiver did not commit the batch");
	wait_indoubt("DOUBT", true);
	free(chan_ctl_ok(&qm1, NULL, "stop channel DOUBT --mode force"));
	cr_assert(chan_wait_state(&qm1, "DOUBT", "STOPPED", 15000));
	json_t *st = chan_status(&qm1, "DOUBT");
	cr_assert(indoubt_of(st), "the in-doubt batch was forgotten by stop --mode force");
	json_decref(st);
	cr_assert_eq(chan_depth(&qm1, "QM2"), 5, "the in-doubt batch left the XMITQ");
	/* The channel is STOPPED and the operator knows QM2 has the batch. */
	free(chan_ctl_ok(&qm1, NULL, "resolve channel DOUBT --action commit"));
	cr_assert_eq(chan_depth(&qm1, "QM2"), 0, "resolve commit kept the batch");
	st = chan_status(&qm1, "DOUBT");
	cr_assert(!indoubt_of(st));
	json_decref(st);

	tcpproxy_freeze(proxy, false, false);
	put_n("RQ", "d", 10, 5, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel DOUBT"));
	if (!chan_wait_depth(&qm1, "QM2", 0, 20000) || !chan_wait_depth(&qm2, "Q", 15, 10000)) {
		dump_both("DOUBT");
		cr_assert_fail("the channel did not resume after resolve commit");
	}
	check_exactly_once("Q", "d", 0, 15);
}

Test(chan_crash, indoubt_resolved_backout_by_hand_with_receiver_killed)
{
	indoubt_setup();
	/* The batch never reaches the receiver, the sender waits in doubt. */
	tcpproxy_freeze(proxy, true, false);
	put_n("RQ", "d", 5, 5, 0);
	wait_indoubt("DOUBT", true);
	free(chan_ctl_ok(&qm1, NULL, "stop channel DOUBT --mode force"));
	cr_assert(chan_wait_state(&qm1, "DOUBT", "STOPPED", 15000));
	th_agent_kill9(&qm2.a);
	long d = chan_depth(&qm1, "QM2");
	if (d != 5)
		dump_both("DOUBT");
	cr_assert_eq(d, 5, "XMITQ depth %ld after stop --mode force with a batch in doubt", d);
	/* resolve needs an action. */
	cr_assert_neq(chan_ctl(&qm1, NULL, NULL, NULL, "resolve channel DOUBT"), 0);
	free(chan_ctl_ok(&qm1, NULL, "resolve channel DOUBT --action backout"));
	cr_assert_eq(chan_depth(&qm1, "QM2"), 5, "backout must keep the batch for resending");
	json_t *st = chan_status(&qm1, "DOUBT");
	cr_assert(!indoubt_of(st));
	json_decref(st);

	tcpproxy_freeze(proxy, false, false);
	chan_qm_restart(&qm2);
	cr_assert_eq(chan_depth(&qm2, "Q"), 5, "the receiver had committed the batch after all");
	free(chan_ctl_ok(&qm1, NULL, "start channel DOUBT"));
	if (!chan_wait_depth(&qm1, "QM2", 0, 20000) || !chan_wait_depth(&qm2, "Q", 10, 10000)) {
		dump_both("DOUBT");
		cr_assert_fail("the channel did not resume after resolve backout");
	}
	check_exactly_once("Q", "d", 0, 10);
}

/* ---- several batches in flight (protocol versions 2 and 3) ---- */

/* QM2 again, offering protocol versions up to max only, as an agent of
 * that version would. */
static void qm2_speaks_at_most(const char *max)
{
	th_agent_stop(&qm2.a);
	setenv("CHAND_PROTOCOL_MAX", max, 1);
	chan_qm_restart(&qm2);
	unsetenv("CHAND_PROTOCOL_MAX");
}

/* Channel name from QM1 to QM2 through the proxy, batches of 5, quick
 * retries. */
static void proxied_channel(const char *name)
{
	proxy = tcpproxy_start(qm2.a.port);
	cr_assert_not_null(proxy);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, name, CHAN_SDR_RCVR, "QM2", tcpproxy_port(proxy),
	            CHAN_TLS " --batchsz 5 --hbint 120 --shortrty 60 --shorttmr 1",
	            CHAN_TLS " --hbint 120");
}

/* The channel WIN (QM2 offering versions up to proto_max, if not NULL)
 * with 5 messages already moved (so the deletes of a first batch are
 * behind). */
static void window_setup_at(const char *proto_max)
{
	chan_pair_start(&qm1, &qm2);
	if (proto_max != NULL)
		qm2_speaks_at_most(proto_max);
	proxied_channel("WIN");
	put_n("RQ", "w", 0, 5, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel WIN"));
	cr_assert(chan_wait_depth(&qm2, "Q", 5, 20000));
	cr_assert(chan_wait_depth(&qm1, "QM2", 0, 10000));
}

static void window_setup(void)
{
	window_setup_at(NULL);
}

/* Holds the channel with four batches in flight: the receiver has
 * committed two of them (their CONFIRMs held by the proxy), the other two
 * never reach it (held too).  Every one is recorded in doubt at the
 * sender, which has sent all 25 sequence numbers. */
static void hold_four_in_flight(void)
{
	tcpproxy_freeze(proxy, false, true);
	put_n("RQ", "w", 5, 10, 0);
	cr_assert(chan_wait_depth(&qm2, "Q", 15, 15000), "the receiver did not commit two batches");
	tcpproxy_freeze(proxy, true, true);
	put_n("RQ", "w", 15, 10, 0);
	json_t *st = chan_wait_ji(&qm1, "WIN", "current_seq", 25, 15000);
	cr_assert_not_null(st);
	if (chan_ji(st, "current_seq") != 25) {
		dump_both("WIN");
		cr_assert_fail("the sender did not send the last two batches (current seq %lld)",
		               chan_ji(st, "current_seq"));
	}
	cr_assert(indoubt_of(st));
	json_decref(st);
	cr_assert_eq(chan_depth(&qm1, "QM2"), 20, "the four batches in flight left the XMITQ");
	cr_assert_eq(chan_depth(&qm2, "Q"), 15);
}

/* After the break: everything arrives exactly once, and the sender found
 * that the receiver had committed two of the four in-doubt batches. */
static void finish_window(void)
{
	tcpproxy_freeze(proxy, false, false);
	if (!chan_wait_depth(&qm1, "QM2", 0, 30000) || !chan_wait_depth(&qm2, "Q", 25, 10000)) {
		dump_both("WIN");
		check_exactly_once("Q", "w", 0, 25);
		cr_assert_fail("the channel did not resume");
	}
	check_exactly_once("Q", "w", 0, 25);
	if (!chan_log_has(&qm1, "the later ones were not: backed out, sent again")) {
		dump_both("WIN");
		cr_assert_fail("the resync did not settle a partly committed window");
	}
}

Test(chan_crash, kill9_sender_with_four_batches_in_flight)
{
	window_setup();
	hold_four_in_flight();
	th_agent_kill9(&qm1.a);
	/* what the proxy holds must not arrive later from a dead connection */
	tcpproxy_cut_all(proxy);
	tcpproxy_freeze(proxy, false, false);
	chan_qm_restart(&qm1);
	ensure_running(&qm1, "WIN", "QM2");
	finish_window();
}

Test(chan_crash, kill9_receiver_between_commits_of_batches_in_flight)
{
	window_setup();
	hold_four_in_flight();
	th_agent_kill9(&qm2.a);
	tcpproxy_cut_all(proxy);
	chan_qm_restart(&qm2);
	finish_window();
}

Test(chan_crash, connection_cut_with_four_batches_in_flight)
{
	window_setup();
	hold_four_in_flight();
	tcpproxy_cut_all(proxy);
	finish_window();
}

/* An agent that speaks only protocol version 1 (one batch in flight):
 * the other negotiates down, and the transfer and an in-doubt batch are
 * settled as before. */
Test(chan_crash, negotiates_down_to_protocol_version_1)
{
	chan_pair_start(&qm1, &qm2);
	qm2_speaks_at_most("1");
	proxied_channel("OLD");
	put_n("RQ", "v", 0, 200, 0);
	free(chan_ctl_ok(&qm1, NULL, "start channel OLD"));
	cr_assert(chan_wait_depth(&qm2, "Q", 200, 30000));
	if (!chan_wait_log(&qm1, "protocol=1 channel started", 5000)) {
		dump_both("OLD");
		cr_assert_fail("the sender did not negotiate down to version 1");
	}
	cr_assert(chan_log_has(&qm2, "protocol=1 channel started"));
	/* one batch in doubt, committed at the receiver, CONFIRM lost */
	tcpproxy_freeze(proxy, false, true);
	put_n("RQ", "v", 200, 5, 0);
	cr_assert(chan_wait_depth(&qm2, "Q", 205, 15000));
	th_agent_kill9(&qm1.a);
	tcpproxy_cut_all(proxy);
	tcpproxy_freeze(proxy, false, false);
	chan_qm_restart(&qm1);
	ensure_running(&qm1, "OLD", "QM2");
	if (!chan_wait_depth(&qm1, "QM2", 0, 30000)) {
		dump_both("OLD");
		cr_assert_fail("the in-doubt batch was not settled over version 1");
	}
	check_exactly_once("Q", "v", 0, 205);
	/* and an agent of this version speaks 3 to its own kind */
	th_agent_stop(&qm2.a);
	chan_qm_restart(&qm2);
	put_n("RQ", "v", 205, 20, 0);
	/* (the check above took the first 205 off the queue) */
	if (!chan_wait_depth(&qm2, "Q", 20, 30000)) {
		dump_both("OLD");
		cr_assert_fail("nothing moved after the receiver came back speaking version 3");
	}
	check_exactly_once("Q", "v", 205, 20);
	cr_assert(chan_wait_log(&qm2, "protocol=3 channel started", 10000));
}

/* With every CONFIRM held, the sender sends its whole window and then
 * nothing: want batches of 5 (the receiver commits each, since each
 * END_BATCH arrives).  Then the CONFIRMs go through and all 205 arrive
 * once. */
static void window_is(int want, const char *proto)
{
	int sent = 5 + want * 5;

	tcpproxy_freeze(proxy, false, true);
	put_n("RQ", "w", 5, 200, 0);
	json_t *st = chan_wait_ji(&qm1, "WIN", "current_seq", sent, 15000);
	cr_assert_not_null(st);
	json_decref(st);
	if (!chan_wait_depth(&qm2, "Q", sent, 15000)) {
		dump_both("WIN");
		cr_assert_fail("the receiver did not commit the %d batches of the window", want);
	}
	/* held there: no batch beyond the window goes out */
	chan_sleep_ms(500);
	st = chan_status(&qm1, "WIN");
	cr_assert_eq(chan_ji(st, "current_seq"), sent, "sent up to seq %lld with %d batches "
	             "in flight allowed", chan_ji(st, "current_seq"), want);
	json_decref(st);
	cr_assert_eq(chan_depth(&qm2, "Q"), sent);
	cr_assert(chan_log_has(&qm1, proto), "not %s", proto);
	tcpproxy_freeze(proxy, false, false);
	if (!chan_wait_depth(&qm1, "QM2", 0, 30000) || !chan_wait_depth(&qm2, "Q", 205, 10000)) {
		dump_both("WIN");
		cr_assert_fail("the transfer did not finish after the CONFIRMs went through");
	}
	check_exactly_once("Q", "w", 0, 205);
}

Test(chan_crash, version_3_keeps_32_batches_in_flight)
{
	window_setup();
	window_is(32, "protocol=3 channel started");
}

/* A receiver that speaks at most version 2: the sender keeps 8. */
Test(chan_crash, version_2_peer_gets_eight_batches_in_flight)
{
	window_setup_at("2");
	window_is(8, "protocol=2 channel started");
}
