/* Two agents, real channels: every channel type pair over mutual TLS,
 * exactly-once delivery in priority order, batching, nonpersistent
 * messages, status and display output, plain TCP, many channels, and
 * dead-letter handling at the receiver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "chan_helpers.h"

static struct chan_qm qm1, qm2;

static void teardown(void)
{
	chan_pair_finish(&qm1, &qm2);
}

/* One timeout per suite: Criterion 2.4 leaks a little in its parallel
 * runner when a test overrides it (seen under ASan). */
TestSuite(chan_basic, .fini = teardown, .timeout = 150);

/* Mutual TLS: both ends name the CipherSpec, the responder requires a
 * certificate and each end checks the other's DN. */
#define SDR_TLS CHAN_TLS " --sslpeer 'CN=QM2,OU=Payments,O=Acme,C=GB'"
#define RCV_TLS CHAN_TLS " --sslcauth required --sslpeer 'CN=QM1, OU=Payments, O=Acme, C=GB'"

struct body_list {
	char *text;
	size_t len;
	FILE *f;
};

static void bl_open(struct body_list *b)
{
	b->text = NULL;
	b->len = 0;
	b->f = open_memstream(&b->text, &b->len);
	cr_assert_not_null(b->f);
}

static char *bl_close(struct body_list *b)
{
	fclose(b->f);
	return b->text;
}

static void dump_both(const char *name)
{
	chan_dump(&qm1, name);
	chan_dump(&qm2, name);
}

/* ---- 1000 messages, mixed priorities, SDR -> RCVR ---- */

#define N_PRIO_MSGS 1000
#define PRIO_BLOCK 20

static int block_priority(int b)
{
	return (b * 7) % 10;
}

static int cmp_expected(const void *a, const void *b)
{
	int ia = *(const int *)a, ib = *(const int *)b;
	int pa = block_priority(ia / PRIO_BLOCK), pb = block_priority(ib / PRIO_BLOCK);

	if (pa != pb)
		return pb - pa;          /* higher priority first */
	return ia - ib;              /* then arrival */
}

static void put_prio_blocks(int from_block, int to_block)
{
	for (int blk = from_block; blk < to_block; blk++) {
		struct body_list bl;
		bl_open(&bl);
		for (int i = blk * PRIO_BLOCK; i < (blk + 1) * PRIO_BLOCK; i++)
			fprintf(bl.f, "msg-%04d\n", i);
		char *lines = bl_close(&bl);
		char opts[32];
		snprintf(opts, sizeof(opts), "--priority %d", block_priority(blk));
		chan_put(&qm1, "RQ.PAY", opts, lines);
		free(lines);
	}
}

Test(chan_basic, sdr_rcvr_mutual_tls_1000_msgs_priority_order)
{
	const int nblocks = N_PRIO_MSGS / PRIO_BLOCK, early = nblocks * 9 / 10;
	char *msgid_of[N_PRIO_MSGS] = { 0 };

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "QM2", "RQ.PAY", "PAY", 10000);
	chan_define(&qm1, &qm2, "QM1.TO.QM2", CHAN_SDR_RCVR, "QM2", 0, SDR_TLS, RCV_TLS);
	/* STOPPED, so that puts to its XMITQ do not trigger it. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel QM1.TO.QM2"));
	cr_assert(chan_wait_state(&qm1, "QM1.TO.QM2", "STOPPED", 5000));

	/* 900 before the channel runs, 100 while it runs. */
	put_prio_blocks(0, early);
	cr_assert_eq(chan_depth(&qm1, "QM2"), early * PRIO_BLOCK);
	/* Remember the message ids: they must arrive unchanged. */
	char *browse = chan_ctl_ok(&qm1, NULL, "--json get QM2 --all --browse");
	char *save = NULL;
	int nbrowsed = 0;
	for (char *line = strtok_r(browse, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		cr_assert_not_null(o, "browse line is not JSON: %s", line);
		int idx;
		cr_assert_eq(sscanf(chan_js(o, "body"), "msg-%d", &idx), 1, "body %s", line);
		cr_assert(idx >= 0 && idx < N_PRIO_MSGS);
		cr_assert_null(msgid_of[idx], "body msg-%04d browsed twice", idx);
		msgid_of[idx] = strdup(chan_js(o, "msgid"));
		cr_assert_eq(strlen(msgid_of[idx]), 48, "msgid %s", msgid_of[idx]);
		nbrowsed++;
		json_decref(o);
	}
	free(browse);
	cr_assert_eq(nbrowsed, early * PRIO_BLOCK);

	free(chan_ctl_ok(&qm1, NULL, "start channel QM1.TO.QM2"));
	if (!chan_wait_state(&qm1, "QM1.TO.QM2", "RUNNING", 20000)) {
		dump_both("QM1.TO.QM2");
		cr_assert_fail("channel did not reach RUNNING");
	}
	put_prio_blocks(early, nblocks);
	if (!chan_wait_depth(&qm2, "PAY", N_PRIO_MSGS, 60000)) {
		dump_both("QM1.TO.QM2");
		cr_assert_fail("not all messages arrived");
	}
	cr_assert(chan_wait_depth(&qm1, "QM2", 0, 10000), "the XMITQ did not drain");

	/* Exactly once, in priority order then arrival order. */
	int expected[N_PRIO_MSGS];
	for (int i = 0; i < N_PRIO_MSGS; i++)
		expected[i] = i;
	qsort(expected, N_PRIO_MSGS, sizeof(int), cmp_expected);
	json_t *msgs = chan_get_msgs(&qm2, "PAY");
	cr_assert_eq(json_array_size(msgs), N_PRIO_MSGS, "got %zu messages",
	             json_array_size(msgs));
	for (int k = 0; k < N_PRIO_MSGS; k++) {
		json_t *o = json_array_get(msgs, (size_t)k);
		char want[32];
		int i = expected[k];
		snprintf(want, sizeof(want), "msg-%04d", i);
		cr_assert_str_eq(chan_js(o, "body"), want, "position %d", k);
		cr_assert_eq(chan_ji(o, "priority"), block_priority(i / PRIO_BLOCK), "%s", want);
		cr_assert(json_is_true(json_object_get(o, "persistent")), "%s not persistent", want);
		if (msgid_of[i] != NULL)
			cr_assert_str_eq(chan_js(o, "msgid"), msgid_of[i], "msgid of %s changed", want);
	}
	json_decref(msgs);
	cr_assert_eq(chan_depth(&qm2, "PAY"), 0);
	cr_assert_eq(chan_depth(&qm2, "DLQ"), 0);
	for (int i = 0; i < N_PRIO_MSGS; i++)
		free(msgid_of[i]);

	json_t *st = chan_status(&qm1, "QM1.TO.QM2");
	cr_assert_not_null(st);
	cr_assert_eq(chan_ji(st, "msgs"), N_PRIO_MSGS, "msgs %lld", chan_ji(st, "msgs"));
	json_decref(st);
	st = chan_status(&qm2, "QM1.TO.QM2");
	cr_assert_not_null(st);
	cr_assert_eq(chan_ji(st, "msgs"), N_PRIO_MSGS, "receiver msgs %lld", chan_ji(st, "msgs"));
	json_decref(st);
}

/* ---- the other pairings ---- */

static void transfer_kind(enum chan_kind kind, const char *snd_attrs, const char *rcv_attrs)
{
	const int n = 60;
	struct chan_qm *ini;

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.PAIR", kind, "XQ", 0, snd_attrs, rcv_attrs);
	ini = chan_initiator(&qm1, &qm2, kind);

	struct body_list bl;
	bl_open(&bl);
	for (int i = 0; i < n; i++)
		fprintf(bl.f, "pair-%03d\n", i);
	char *lines = bl_close(&bl);
	chan_put(&qm1, "RQ", NULL, lines);
	free(lines);

	free(chan_ctl_ok(ini, NULL, "start channel CH.PAIR"));
	if (!chan_wait_depth(&qm2, "Q", n, 30000)) {
		dump_both("CH.PAIR");
		cr_assert_fail("messages did not arrive");
	}
	cr_assert(chan_wait_state(&qm1, "CH.PAIR", "RUNNING", 5000));
	cr_assert(chan_wait_state(&qm2, "CH.PAIR", "RUNNING", 5000));
	cr_assert(chan_wait_depth(&qm1, "XQ", 0, 5000));

	json_t *msgs = chan_get_msgs(&qm2, "Q");
	cr_assert_eq(json_array_size(msgs), (size_t)n);
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "pair-%03d", i);
		cr_assert_str_eq(chan_js(json_array_get(msgs, (size_t)i), "body"), want);
	}
	json_decref(msgs);

	/* The sending end's status counts what it sent, the initiator says
	 * whom it reached. */
	json_t *st = chan_status(&qm1, "CH.PAIR");
	cr_assert_not_null(st);
	cr_assert_eq(chan_ji(st, "msgs"), n);
	json_decref(st);
	st = chan_status(ini, "CH.PAIR");
	cr_assert_not_null(st);
	cr_assert_str_eq(chan_js(st, "rqmname"), ini == &qm1 ? "QM2" : "QM1");
	json_decref(st);

	/* Still running: a second wave goes straight through. */
	chan_put(&qm1, "RQ", NULL, "wave-2\n");
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 15000));
}

Test(chan_basic, rqstr_svr)
{
	/* RQSTR on QM2 is the initiator (TLS client); SVR on QM1 sends. */
	transfer_kind(CHAN_RQSTR_SVR, CHAN_TLS " --sslcauth required --sslpeer 'CN=QM2'",
	              CHAN_TLS " --sslpeer 'CN=QM1'");
}

Test(chan_basic, svr_with_conname_rqstr)
{
	/* SVR with CONNAME on QM1 starts it; RQSTR on QM2 responds. */
	transfer_kind(CHAN_SVR_RQSTR, CHAN_TLS " --sslpeer 'CN=QM2'",
	              CHAN_TLS " --sslcauth required --sslpeer 'CN=QM1'");
}

/* ---- batches ---- */

Test(chan_basic, batch_ends_at_batchsz)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.BSZ", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS " --batchsz 10",
	            CHAN_TLS " --batchsz 10");
	free(chan_ctl_ok(&qm1, NULL, "stop channel CH.BSZ"));
	struct body_list bl;
	bl_open(&bl);
	for (int i = 0; i < 100; i++)
		fprintf(bl.f, "b-%03d\n", i);
	char *lines = bl_close(&bl);
	chan_put(&qm1, "RQ", NULL, lines);
	free(lines);
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.BSZ"));
	if (!chan_wait_depth(&qm2, "Q", 100, 30000)) {
		dump_both("CH.BSZ");
		cr_assert_fail("messages did not arrive");
	}
	json_t *st = chan_wait_ji(&qm1, "CH.BSZ", "committed_seq", 100, 10000);
	cr_assert_not_null(st);
	/* All 100 were waiting: ten full batches, no more, no fewer. */
	cr_assert_eq(chan_ji(st, "batches"), 10, "batches %lld", chan_ji(st, "batches"));
	cr_assert_eq(chan_ji(st, "msgs"), 100);
	cr_assert_eq(chan_ji(st, "committed_seq"), 100, "committed_seq %lld",
	             chan_ji(st, "committed_seq"));
	json_decref(st);
	st = chan_wait_ji(&qm2, "CH.BSZ", "batches", 10, 10000);
	cr_assert_not_null(st);
	cr_assert_eq(chan_ji(st, "batches"), 10, "receiver batches %lld", chan_ji(st, "batches"));
	json_decref(st);

	/* The lower BATCHSZ of the two ends is used. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel CH.BSZ"));
	cr_assert(chan_wait_state(&qm1, "CH.BSZ", "STOPPED|INACTIVE", 15000));
	free(chan_ctl_ok(&qm1, NULL, "alter channel CH.BSZ --batchsz 50"));
	free(chan_ctl_ok(&qm2, NULL, "alter channel CH.BSZ --batchsz 25"));
	free(chan_get_all(&qm2, "Q", false));
	bl_open(&bl);
	for (int i = 0; i < 100; i++)
		fprintf(bl.f, "c-%03d\n", i);
	lines = bl_close(&bl);
	chan_put(&qm1, "RQ", NULL, lines);
	free(lines);
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.BSZ"));
	cr_assert(chan_wait_depth(&qm2, "Q", 100, 30000));
	st = chan_wait_ji(&qm1, "CH.BSZ", "committed_seq", 200, 10000);
	cr_assert_not_null(st);
	cr_assert_eq(chan_ji(st, "batches"), 4, "batches with BATCHSZ 50/25: %lld",
	             chan_ji(st, "batches"));
	json_decref(st);
}

Test(chan_basic, batch_ends_at_batchint)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.BINT", CHAN_SDR_RCVR, "XQ", 0,
	            CHAN_TLS " --batchsz 50 --batchint 3000", CHAN_TLS);
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.BINT"));
	cr_assert(chan_wait_state(&qm1, "CH.BINT", "RUNNING", 20000));
	json_t *st = chan_status(&qm1, "CH.BINT");
	long long b0 = chan_ji(st, "batches");
	json_decref(st);

	/* Three messages 200 ms apart: the batch stays open for BATCHINT,
	 * so nothing is committed at the receiver yet. */
	long long t0 = chan_now_ms();
	for (int i = 0; i < 3; i++) {
		char m[32];
		snprintf(m, sizeof(m), "-m bint-%d", i);
		chan_put(&qm1, "RQ", m, NULL);
		chan_sleep_ms(200);
	}
	long long elapsed = chan_now_ms() - t0;
	if (elapsed < 2000)
		cr_assert_eq(chan_depth(&qm2, "Q"), 0,
		             "batch committed after %lld ms, before BATCHINT 3000 ms", elapsed);
	cr_assert(chan_wait_depth(&qm2, "Q", 3, 15000), "the batch never ended");
	st = chan_wait_ji(&qm1, "CH.BINT", "batches", b0 + 1, 10000);
	cr_assert_eq(chan_ji(st, "batches") - b0, 1, "3 messages in %lld batches",
	             chan_ji(st, "batches") - b0);
	json_decref(st);

	/* BATCHINT 0: each message that finds the queue empty ends its batch. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel CH.BINT"));
	cr_assert(chan_wait_state(&qm1, "CH.BINT", "STOPPED|INACTIVE", 15000));
	free(chan_ctl_ok(&qm1, NULL, "alter channel CH.BINT --batchint 0"));
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.BINT"));
	cr_assert(chan_wait_state(&qm1, "CH.BINT", "RUNNING", 20000));
	st = chan_status(&qm1, "CH.BINT");
	b0 = chan_ji(st, "batches");
	json_decref(st);
	for (int i = 0; i < 3; i++) {
		char m[32];
		snprintf(m, sizeof(m), "-m quick-%d", i);
		chan_put(&qm1, "RQ", m, NULL);
		cr_assert(chan_wait_depth(&qm2, "Q", 4 + i, 10000), "message %d not sent at once", i);
	}
	st = chan_wait_ji(&qm1, "CH.BINT", "batches", b0 + 3, 10000);
	cr_assert_eq(chan_ji(st, "batches") - b0, 3, "batches %lld", chan_ji(st, "batches") - b0);
	json_decref(st);
}

/* ---- nonpersistent ---- */

Test(chan_basic, nonpersistent_messages)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.NP", CHAN_SDR_RCVR, "XQ", 0, CHAN_TLS, CHAN_TLS);
	free(chan_ctl_ok(&qm1, NULL, "stop channel CH.NP"));
	struct body_list bl;
	bl_open(&bl);
	for (int i = 0; i < 300; i++)
		fprintf(bl.f, "np-%03d\n", i);
	char *lines = bl_close(&bl);
	chan_put(&qm1, "RQ", "--nonpersistent", lines);
	chan_put(&qm1, "RQ", NULL, "persistent-one\n");
	free(lines);
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.NP"));
	if (!chan_wait_depth(&qm2, "Q", 301, 30000)) {
		dump_both("CH.NP");
		cr_assert_fail("messages did not arrive");
	}
	json_t *msgs = chan_get_msgs(&qm2, "Q");
	cr_assert_eq(json_array_size(msgs), 301);
	int np = 0, p = 0;
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *o = json_array_get(msgs, i);
		if (json_is_false(json_object_get(o, "persistent"))) {
			char want[16];
			snprintf(want, sizeof(want), "np-%03d", np);
			cr_assert_str_eq(chan_js(o, "body"), want);
			np++;
		} else {
			cr_assert_str_eq(chan_js(o, "body"), "persistent-one");
			p++;
		}
	}
	cr_assert_eq(np, 300);
	cr_assert_eq(p, 1);
	json_decref(msgs);
	/* Nonpersistent messages use no sequence numbers. */
	json_t *st = chan_status(&qm1, "CH.NP");
	cr_assert_eq(chan_ji(st, "msgs"), 301);
	cr_assert_eq(chan_ji(st, "committed_seq"), 1, "committed_seq %lld",
	             chan_ji(st, "committed_seq"));
	json_decref(st);
}

/* ---- status and display ---- */

static void expect_key(const json_t *st, const char *key)
{
	cr_assert_not_null(json_object_get(st, key), "status has no \"%s\"", key);
}

Test(chan_basic, status_fields_text_and_json)
{
	static const char *const keys[] = { "name", "type", "state", "substate", "conname",
		"rqmname", "xmitq", "xmitq_depth", "msgs", "bytes_sent", "bytes_received", "batches",
		"current_seq", "committed_seq", "indoubt", "start_time", "last_msg_time",
		"tls_version", "cipher", "local_label", "peer_dn", "peer_issuer_dn", "peer_not_after",
		"last_error_code", "last_error", NULL };

	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.STAT", CHAN_SDR_RCVR, "XQ", 0,
	            CHAN_TLS " --batchsz 7", CHAN_TLS " --sslcauth required");
	chan_put(&qm1, "RQ", NULL, "0123456789\n0123456789\n0123456789\n0123456789\n0123456789\n");
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.STAT"));
	if (!chan_wait_depth(&qm2, "Q", 5, 20000)) {
		dump_both("CH.STAT");
		cr_assert_fail("messages did not arrive");
	}

	json_t *st = chan_status(&qm1, "CH.STAT");
	cr_assert_not_null(st);
	for (int i = 0; keys[i]; i++)
		expect_key(st, keys[i]);
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert(strcasecmp(chan_js(st, "type"), "sdr") == 0, "type %s", chan_js(st, "type"));
	cr_assert_str_eq(chan_js(st, "xmitq"), "XQ");
	cr_assert_str_eq(chan_js(st, "rqmname"), "QM2");
	cr_assert(strstr(chan_js(st, "conname"), "127.0.0.1") != NULL);
	cr_assert(strstr(chan_js(st, "tls_version"), "1.3") != NULL, "tls_version %s",
	          chan_js(st, "tls_version"));
	cr_assert(strncmp(chan_js(st, "cipher"), "TLS_", 4) == 0, "cipher %s", chan_js(st, "cipher"));
	cr_assert_str_eq(chan_js(st, "local_label"), "qm1");
	cr_assert(strstr(chan_js(st, "peer_dn"), "CN=QM2") != NULL, "peer_dn %s",
	          chan_js(st, "peer_dn"));
	cr_assert(strstr(chan_js(st, "peer_dn"), "OU=Payments") != NULL);
	cr_assert(strstr(chan_js(st, "peer_issuer_dn"), "CN=Chand Test Intermediate CA") != NULL,
	          "peer_issuer_dn %s", chan_js(st, "peer_issuer_dn"));
	json_t *na = json_object_get(st, "peer_not_after");
	cr_assert(json_is_string(na) ? strlen(json_string_value(na)) >= 10 :
	          json_is_integer(na) && json_integer_value(na) > 0, "peer_not_after");
	cr_assert_eq(chan_ji(st, "msgs"), 5);
	cr_assert_geq(chan_ji(st, "bytes_sent"), 50, "bytes_sent %lld", chan_ji(st, "bytes_sent"));
	cr_assert_geq(chan_ji(st, "batches"), 1);
	cr_assert_eq(chan_ji(st, "committed_seq"), 5);
	cr_assert_eq(chan_ji(st, "xmitq_depth"), 0);
	cr_assert_str_eq(chan_js(st, "last_error_code"), "");
	json_decref(st);

	st = chan_status(&qm2, "CH.STAT");
	cr_assert_not_null(st);
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert(strcasecmp(chan_js(st, "type"), "rcvr") == 0, "type %s", chan_js(st, "type"));
	cr_assert_str_eq(chan_js(st, "local_label"), "qm2");
	cr_assert(strstr(chan_js(st, "peer_dn"), "CN=QM1") != NULL, "peer_dn %s",
	          chan_js(st, "peer_dn"));
	cr_assert_eq(chan_ji(st, "msgs"), 5);
	cr_assert_geq(chan_ji(st, "bytes_received"), 50);
	cr_assert_eq(chan_ji(st, "committed_seq"), 5);
	json_decref(st);

	/* Text output carries the same facts. */
	char *txt = chan_ctl_ok(&qm1, NULL, "status CH.STAT");
	cr_assert(strstr(txt, "CH.STAT") && strstr(txt, "RUNNING") && strstr(txt, "CN=QM2") &&
	          strstr(txt, "qm1") && strstr(txt, "1.3"), "text status:\n%s", txt);
	free(txt);

	/* A pattern lists only matching channels. */
	json_t *all = chan_status_all(&qm1, "CH.*");
	cr_assert_not_null(all);
	cr_assert_eq(json_array_size(all), 1);
	json_decref(all);

	/* display channel, text and JSON. */
	char *out = chan_ctl_ok(&qm1, NULL, "--json display channel CH.STAT");
	json_error_t je;
	json_t *arr = json_loads(out, 0, &je);
	cr_assert(json_is_array(arr) && json_array_size(arr) == 1, "display: %s", out);
	json_t *d = json_array_get(arr, 0);
	cr_assert_str_eq(chan_js(d, "name"), "CH.STAT");
	cr_assert(strcasecmp(chan_js(d, "type"), "sdr") == 0, "type %s", chan_js(d, "type"));
	cr_assert_str_eq(chan_js(d, "sslciph"), "ANY_TLS13_OR_HIGHER");
	cr_assert_str_eq(chan_js(d, "xmitq"), "XQ");
	cr_assert(strstr(chan_js(d, "conname"), "127.0.0.1:") != NULL);
	cr_assert_eq(chan_ji(d, "batchsz"), 7);
	expect_key(d, "hbint");
	expect_key(d, "certlabl");
	expect_key(d, "sslpeer");
	json_decref(arr);
	free(out);
	out = chan_ctl_ok(&qm2, NULL, "--json display channel CH.STAT");
	arr = json_loads(out, 0, &je);
	cr_assert(json_is_array(arr) && json_array_size(arr) == 1, "display: %s", out);
	cr_assert(strcasecmp(chan_js(json_array_get(arr, 0), "sslcauth"), "required") == 0);
	json_decref(arr);
	free(out);
	txt = chan_ctl_ok(&qm1, NULL, "display channel CH.STAT");
	cr_assert(strstr(txt, "CH.STAT") && strstr(txt, "ANY_TLS13_OR_HIGHER"), "%s", txt);
	free(txt);
}

/* ---- plain TCP ---- */

Test(chan_basic, plain_tcp_channel_says_not_encrypted)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define(&qm1, &qm2, "CH.PLAIN", CHAN_SDR_RCVR, "XQ", 0, NULL, NULL);
	chan_put(&qm1, "RQ", NULL, "clear-1\nclear-2\n");
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.PLAIN"));
	if (!chan_wait_depth(&qm2, "Q", 2, 20000)) {
		dump_both("CH.PLAIN");
		cr_assert_fail("messages did not arrive over plain TCP");
	}
	char *txt = chan_ctl_ok(&qm1, NULL, "status CH.PLAIN");
	cr_assert(strcasestr(txt, "not encrypted") != NULL, "sender status:\n%s", txt);
	free(txt);
	txt = chan_ctl_ok(&qm2, NULL, "status CH.PLAIN");
	cr_assert(strcasestr(txt, "not encrypted") != NULL, "receiver status:\n%s", txt);
	free(txt);
	json_t *st = chan_status(&qm1, "CH.PLAIN");
	cr_assert_str_eq(chan_js(st, "cipher"), "");
	cr_assert_str_eq(chan_js(st, "peer_dn"), "");
	json_decref(st);
	cr_assert(chan_log_has(&qm1, "CHD4012"), "sender log does not flag the plain channel");
	cr_assert(chan_log_has(&qm2, "CHD4012"), "receiver log does not flag the plain channel");
}

/* ---- 200 channels on one pair ---- */

#define MANY 200

/* A suite of its own for the bound: 200 TLS channels set up, started and
 * used take minutes under ASan on a loaded 2-core machine. */
TestSuite(chan_many, .fini = teardown, .timeout = 480);

Test(chan_many, two_hundred_channels)
{
	long long t0 = chan_now_ms();
	struct body_list s1, s2, s3;

	chan_pair_start(&qm1, &qm2);
	free(chan_ctl_ok(&qm2, NULL, "define qlocal MANYQ --maxdepth 10000"));
	bl_open(&s1);
	bl_open(&s2);
	/* One MQSC script per agent (chanctl run): 800 commands in two
	 * processes, not 800 processes, so a loaded machine does not turn
	 * setting up into the thing under test. */
	for (int i = 0; i < MANY; i++) {
		fprintf(s1.f, "DEFINE QLOCAL('XQ.%03d') USAGE(XMITQ)\n", i);
		fprintf(s1.f, "DEFINE QREMOTE('RQ.%03d') RNAME('MANYQ') RQMNAME('QM2') XMITQ('XQ.%03d')\n",
		        i, i);
		fprintf(s1.f, "DEFINE CHANNEL('M.%03d') CHLTYPE(SDR) CONNAME('127.0.0.1(%d)') "
		        "XMITQ('XQ.%03d') SSLCIPH('ANY_TLS13_OR_HIGHER')\n", i, qm2.a.port, i);
		fprintf(s2.f, "DEFINE CHANNEL('M.%03d') CHLTYPE(RCVR) SSLCIPH('ANY_TLS13_OR_HIGHER')\n", i);
	}
	for (int i = 0; i < MANY; i++)
		fprintf(s1.f, "START CHANNEL('M.%03d')\n", i);
	char *l1 = bl_close(&s1), *l2 = bl_close(&s2);
	struct { struct chan_qm *q; const char *script; } runs[] = { { &qm2, l2 }, { &qm1, l1 } };
	for (int k = 0; k < 2; k++) {
		char *out = NULL, *err = NULL;
		int rc = th_sh(runs[k].script, &out, &err, 300, "'%s' -s '%s' run", th_chanctl_bin(),
		               runs[k].q->a.sock);
		cr_assert_eq(rc, 0, "%s: chanctl run failed (exit %d)\n%.2000s%.2000s",
		             runs[k].q->name, rc, out ? out : "", err ? err : "");
		free(out);
		free(err);
	}
	free(l1);
	free(l2);
	char *l3;

	/* Every channel RUNNING at both ends. */
	long long end = chan_now_ms() + 45000;
	size_t running = 0;
	for (;;) {
		json_t *all = chan_status_all(&qm1, "M.*");
		running = 0;
		for (size_t i = 0; all && i < json_array_size(all); i++)
			running += strcmp(chan_js(json_array_get(all, i), "state"), "RUNNING") == 0;
		json_decref(all);
		if (running == MANY || chan_now_ms() > end)
			break;
		chan_sleep_ms(250);
	}
	if (running != MANY)
		chan_dump(&qm1, "M.000");
	cr_assert_eq(running, MANY, "%zu of %d channels running", running, MANY);

	bl_open(&s3);
	for (int i = 0; i < MANY; i++)
		fprintf(s3.f, "put RQ.%03d -m via-M.%03d\n", i, i);
	l3 = bl_close(&s3);
	chan_ctl_script_ok(&qm1, l3, 120);
	free(l3);
	cr_assert(chan_wait_depth(&qm2, "MANYQ", MANY, 30000));

	/* Each channel carried its own message and has its own counters. */
	json_t *all = chan_status_all(&qm1, "M.*");
	cr_assert_eq(json_array_size(all), MANY);
	for (size_t i = 0; i < json_array_size(all); i++)
		cr_assert_eq(chan_ji(json_array_get(all, i), "msgs"), 1, "%s msgs %lld",
		             chan_js(json_array_get(all, i), "name"),
		             chan_ji(json_array_get(all, i), "msgs"));
	json_decref(all);
	json_t *msgs = chan_get_msgs(&qm2, "MANYQ");
	char seen[MANY] = { 0 };
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		int k = -1;
		sscanf(chan_js(json_array_get(msgs, i), "body"), "via-M.%d", &k);
		cr_assert(k >= 0 && k < MANY && !seen[k], "unexpected or duplicate body %s",
		          chan_js(json_array_get(msgs, i), "body"));
		seen[k] = 1;
	}
	json_decref(msgs);

	/* Stopping one leaves the others running. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel M.100"));
	cr_assert(chan_wait_state(&qm1, "M.100", "STOPPED", 15000));
	json_t *o = chan_status(&qm1, "M.101");
	cr_assert_str_eq(chan_js(o, "state"), "RUNNING");
	json_decref(o);
	o = chan_status(&qm1, "M.099");
	cr_assert_str_eq(chan_js(o, "state"), "RUNNING");
	json_decref(o);
	cr_log_info("200 channels: %lld ms in all", chan_now_ms() - t0);
}

/* ---- dead-letter queue ---- */

/* A DLQ message with the original body and the dead-letter header
 * (doc/CHANNELS.md): reason code, original destination, time, channel. */
static bool dlq_record_has(json_t *msgs, const char *dest, const char *code, const char *body)
{
	char want_reason[64], want_dest[96];

	snprintf(want_reason, sizeof(want_reason), "chand.dlh.reason=%s\n", code);
	snprintf(want_dest, sizeof(want_dest), "chand.dlh.dest_q=%s\n", dest);
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *o = json_array_get(msgs, i);
		const char *props = chan_js(o, "props");
		if (strcmp(chan_js(o, "body"), body) == 0 && strstr(props, want_reason) != NULL &&
		    strstr(props, want_dest) != NULL && strstr(props, "chand.dlh.dest_qmgr=QM2") &&
		    strstr(props, "chand.dlh.time=") && strstr(props, "chand.dlh.channel=CH.DLQ"))
			return true;
	}
	return false;
}

Test(chan_basic, undeliverable_messages_go_to_dlq_with_reason)
{
	chan_pair_start(&qm1, &qm2);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "GOOD", 0);
	free(chan_ctl_ok(&qm2, NULL, "define qlocal FULLQ --maxdepth 2"));
	free(chan_ctl_ok(&qm2, NULL, "define qlocal SHORTQ --maxmsgl 10"));
	free(chan_ctl_ok(&qm2, NULL, "define qlocal NOPUTQ --put disabled"));
	chan_define(&qm1, &qm2, "CH.DLQ", CHAN_SDR_RCVR, "QM2", 0, CHAN_TLS, CHAN_TLS);

	chan_put(&qm1, "RQ", NULL, "good-1\n");
	chan_put(&qm1, "NOSUCHQ", "--qmgr QM2", "to-nowhere\n");
	chan_put(&qm1, "FULLQ", "--qmgr QM2", "full-1\nfull-2\nfull-3\n");
	chan_put(&qm1, "SHORTQ", "--qmgr QM2", "this-body-is-longer-than-ten\n");
	chan_put(&qm1, "NOPUTQ", "--qmgr QM2", "put-disabled\n");
	chan_put(&qm1, "RQ", NULL, "good-2\n");
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.DLQ"));
	if (!chan_wait_depth(&qm2, "DLQ", 4, 20000)) {
		dump_both("CH.DLQ");
		cr_assert_fail("dead letters did not arrive");
	}
	cr_assert(chan_wait_depth(&qm2, "GOOD", 2, 10000));
	cr_assert_eq(chan_depth(&qm2, "FULLQ"), 2);
	cr_assert_eq(chan_depth(&qm2, "SHORTQ"), 0);
	cr_assert(chan_wait_depth(&qm1, "QM2", 0, 10000));
	json_t *st = chan_status(&qm1, "CH.DLQ");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING", "a dead letter must not stop the channel");
	json_decref(st);

	/* plain get (browse) says why each one is there on stderr; stdout stays
	 * the bodies */
	char *out = NULL, *err = NULL;
	cr_assert_eq(chan_ctl(&qm2, NULL, &out, &err, "get DLQ --browse --all"), 0);
	cr_expect(err != NULL && strstr(err, "dead letter: CHD2001") != NULL &&
	          strstr(err, "for NOSUCHQ at QM2") != NULL, "stderr: %s", err ? err : "");
	cr_expect(out != NULL && strstr(out, "to-nowhere\n") != NULL &&
	          strstr(out, "dead letter") == NULL, "stdout: %s", out ? out : "");
	free(out);
	free(err);
	json_t *dl = chan_get_msgs(&qm2, "DLQ");
	cr_assert_eq(json_array_size(dl), 4);
	char *dump = json_dumps(dl, JSON_COMPACT);
	cr_assert(dlq_record_has(dl, "NOSUCHQ", "CHD2001", "to-nowhere"), "unknown queue: %s", dump);
	cr_assert(dlq_record_has(dl, "FULLQ", "CHD2002", "full-3"), "queue full: %s", dump);
	/* Dead letters keep their persistence. */
	for (size_t i = 0; i < json_array_size(dl); i++)
		cr_assert(json_is_true(json_object_get(json_array_get(dl, i), "persistent")));
	cr_assert(dlq_record_has(dl, "SHORTQ", "CHD2003", "this-body-is-longer-than-ten"),
	          "too long: %s", dump);
	cr_assert(dlq_record_has(dl, "NOPUTQ", "CHD2007", "put-disabled"), "put disabled: %s", dump);
	free(dump);
	json_decref(dl);
	cr_assert(chan_log_has(&qm2, "CHD5013"), "no CHD5013 in the receiver's log");
}

Test(chan_basic, no_dlq_stops_channel_and_loses_nothing)
{
	struct chan_qm_opts nodlq = { .no_dlq = true };

	chan_qm_start(&qm1, "QM1", NULL);
	chan_qm_start(&qm2, "QM2", &nodlq);
	chan_define_route(&qm1, &qm2, "QM2", "RQ", "GOOD", 0);
	chan_define(&qm1, &qm2, "CH.NODLQ", CHAN_SDR_RCVR, "QM2", 0, CHAN_TLS " --batchsz 2",
	            CHAN_TLS);
	/* Kept STOPPED while loading, so that the first put does not start it. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel CH.NODLQ"));
	chan_put(&qm1, "RQ", NULL, "n-1\nn-2\n");
	chan_put(&qm1, "MISSINGQ", "--qmgr QM2", "n-3\n");
	chan_put(&qm1, "RQ", NULL, "n-4\nn-5\n");
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.NODLQ"));

	json_t *st = chan_wait_error(&qm1, "CH.NODLQ", "CHD5014", 20000);
	if (st == NULL) {
		dump_both("CH.NODLQ");
		cr_assert_fail("sender did not report CHD5014");
	}
	json_decref(st);
	cr_assert(chan_wait_state(&qm1, "CH.NODLQ", "STOPPED", 10000));
	cr_assert(chan_wait_log(&qm2, "CHD5014", 5000), "receiver log lacks CHD5014");

	/* Nothing lost, nothing doubled: every message is on exactly one side. */
	long good = chan_depth(&qm2, "GOOD"), left = chan_depth(&qm1, "QM2");
	cr_assert_eq(good + left, 5, "GOOD %ld + XMITQ %ld != 5", good, left);
	cr_assert_geq(left, 1, "the undeliverable message left the XMITQ");

	/* Both ends stopped; fix the cause, start both: everything arrives. */
	cr_assert(chan_wait_state(&qm2, "CH.NODLQ", "STOPPED", 5000));
	free(chan_ctl_ok(&qm2, NULL, "define qlocal MISSINGQ"));
	free(chan_ctl_ok(&qm2, NULL, "start channel CH.NODLQ"));
	free(chan_ctl_ok(&qm1, NULL, "start channel CH.NODLQ"));
	cr_assert(chan_wait_depth(&qm1, "QM2", 0, 20000));
	cr_assert(chan_wait_depth(&qm2, "GOOD", 4, 10000));
	cr_assert_eq(chan_depth(&qm2, "MISSINGQ"), 1);
	json_t *msgs = chan_get_msgs(&qm2, "GOOD");
	const char *want[] = { "n-1", "n-2", "n-4", "n-5" };
	for (int i = 0; i < 4; i++)
		cr_assert_str_eq(chan_js(json_array_get(msgs, (size_t)i), "body"), want[i]);
	json_decref(msgs);
}
