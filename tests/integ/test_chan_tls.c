/* TLS and identity between two real agents: every refusal happens at the
 * right end with its stable code in status and log; what must work works
 * (one-way TLS, multi-OU SSLPEER, intermediate chains, ECDSA, keys in every
 * format, PKCS#12); refresh security; and real external TLS clients
 * (openssl s_client, gnutls-cli) are refused when they offer what chand
 * must not accept. QM1 is the initiator (SDR), QM2 the responder (RCVR)
 * unless a test says otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chan_helpers.h"

static struct chan_qm qm1, qm2;
static char *work;   /* a scratch directory for the test */

static void teardown(void)
{
	chan_pair_finish(&qm1, &qm2);
	if (work != NULL) {
		th_rmtree(work);
		free(work);
		work = NULL;
	}
}

/* One timeout per suite: Criterion 2.4 leaks a little in its parallel
 * runner when a test overrides it (seen under ASan). */
TestSuite(chan_tls, .fini = teardown, .timeout = 150);

static void dump_both(const char *name)
{
	chan_dump(&qm1, name);
	chan_dump(&qm2, name);
}

/* A channel NAME from QM1 (SDR) to QM2 (RCVR) with its own XMITQ X.NAME
 * and a remote queue R.NAME holding one message for QM2's queue Q. */
static void define_ch(const char *name, const char *sdr_attrs, const char *rcv_attrs)
{
	char xq[64], rq[64];

	snprintf(xq, sizeof(xq), "X.%s", name);
	snprintf(rq, sizeof(rq), "R.%s", name);
	chan_define_route(&qm1, &qm2, xq, rq, "Q", 0);
	chan_define(&qm1, &qm2, name, CHAN_SDR_RCVR, xq, 0, sdr_attrs, rcv_attrs);
	/* STOPPED, so that the put below does not start it: the test does. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel %s", name));
	char m[80];
	snprintf(m, sizeof(m), "-m hello-from-%s", name);
	chan_put(&qm1, rq, m, NULL);
}

static long xmitq_depth(const char *name)
{
	char xq[64];

	snprintf(xq, sizeof(xq), "X.%s", name);
	return chan_depth(&qm1, xq);
}

/* Starts NAME at QM1 and expects it to be refused: code in `at`'s status
 * (last_error_code) and log; the other end not running; the message not
 * delivered. Returns `at`'s status (json_decref it). */
static json_t *expect_refusal(const char *name, struct chan_qm *at, const char *code)
{
	struct chan_qm *other = at == &qm1 ? &qm2 : &qm1;

	free(chan_ctl_ok(&qm1, NULL, "start channel %s", name));
	json_t *st = chan_wait_error(at, name, code, 20000);
	if (st == NULL) {
		dump_both(name);
		cr_assert_fail("%s: %s did not report %s", name, at->name, code);
	}
	cr_assert(chan_wait_log(at, code, 5000), "%s: %s log lacks %s", name, at->name, code);
	json_t *o = chan_status(other, name);
	if (o != NULL)
		cr_assert_str_neq(chan_js(o, "state"), "RUNNING", "%s: %s runs anyway", name,
		                  other->name);
	json_decref(o);
	o = chan_status(&qm1, name);
	cr_assert_not_null(o);
	cr_assert_str_neq(chan_js(o, "state"), "RUNNING");
	cr_assert_str_neq(chan_js(o, "last_error_code"), "", "%s: the initiator gives no reason",
	                  name);
	json_decref(o);
	cr_assert_eq(xmitq_depth(name), 1, "%s: message left the XMITQ", name);
	return st;
}

/* Starts NAME and expects its message to arrive. */
static void expect_works(const char *name)
{
	long before = chan_depth(&qm2, "Q");
	char xq[64];

	snprintf(xq, sizeof(xq), "X.%s", name);
	free(chan_ctl_ok(&qm1, NULL, "start channel %s", name));
	if (!chan_wait_depth(&qm1, xq, 0, 20000)) {
		dump_both(name);
		cr_assert_fail("%s: message not sent", name);
	}
	cr_assert(chan_wait_depth(&qm2, "Q", before + 1, 10000), "%s: message not received", name);
	cr_assert(chan_wait_state(&qm1, name, "RUNNING", 5000), "%s: not running", name);
}

/* ---- no certificate ---- */

Test(chan_tls, no_cert_with_sslcauth_required_is_chd4001)
{
	struct chan_qm_opts nocert = { .no_personal = true };

	chan_qm_start(&qm1, "QM1", &nocert);
	chan_qm_start(&qm2, "QM2", NULL);
	define_ch("NOCERT", CHAN_TLS, CHAN_TLS " --sslcauth required");
	json_t *st = expect_refusal("NOCERT", &qm2, "CHD4001");
	json_decref(st);
	/* The initiator says it sent no certificate. */
	st = chan_status(&qm1, "NOCERT");
	cr_assert_str_eq(chan_js(st, "local_label"), "");
	json_decref(st);
}

Test(chan_tls, optional_without_sslpeer_accepts_one_way_tls)
{
	struct chan_qm_opts nocert = { .no_personal = true };

	chan_qm_start(&qm1, "QM1", &nocert);
	chan_qm_start(&qm2, "QM2", NULL);
	define_ch("ONEWAY", CHAN_TLS, CHAN_TLS " --sslcauth optional");
	expect_works("ONEWAY");
	json_t *st = chan_status(&qm2, "ONEWAY");
	cr_assert_str_eq(chan_js(st, "peer_dn"), "", "peer_dn %s", chan_js(st, "peer_dn"));
	cr_assert_str_eq(chan_js(st, "local_label"), "qm2");
	json_decref(st);
	st = chan_status(&qm1, "ONEWAY");
	cr_assert_str_eq(chan_js(st, "local_label"), "");
	cr_assert(strstr(chan_js(st, "peer_dn"), "CN=QM2") != NULL);
	json_decref(st);
}

Test(chan_tls, sslpeer_without_cert_is_chd4001)
{
	struct chan_qm_opts nocert = { .no_personal = true };

	chan_qm_start(&qm1, "QM1", &nocert);
	chan_qm_start(&qm2, "QM2", NULL);
	define_ch("PEERNOCERT", CHAN_TLS, CHAN_TLS " --sslcauth optional --sslpeer 'CN=QM1'");
	json_decref(expect_refusal("PEERNOCERT", &qm2, "CHD4001"));
}

/* ---- the peer's certificate ---- */

Test(chan_tls, untrusted_issuer_is_chd4002_at_either_end)
{
	chan_pair_start(&qm1, &qm2);
	/* QM1 presents a certificate from another root (right DN). */
	chan_qm_import_chain(&qm1, "other", "other.pem", "other.key", NULL);
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	define_ch("UNTRUSTED", CHAN_TLS " --certlabl other", CHAN_TLS " --sslcauth required");
	json_t *st = expect_refusal("UNTRUSTED", &qm2, "CHD4002");
	json_decref(st);

	/* The responder presents it: the initiator refuses. */
	chan_qm_import_chain(&qm2, "other", "other.pem", "other.key", NULL);
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	define_ch("UNTRUSTED2", CHAN_TLS, CHAN_TLS " --certlabl other");
	json_decref(expect_refusal("UNTRUSTED2", &qm1, "CHD4002"));
}

Test(chan_tls, expired_and_not_yet_valid_are_chd4003)
{
	chan_pair_start(&qm1, &qm2);
	chan_qm_import(&qm1, "expired", "expired.pem", "expired.key");
	chan_qm_import(&qm1, "future", "future.pem", "future.key");
	chan_qm_import(&qm2, "expired", "expired.pem", "expired.key");
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	define_ch("EXPIRED", CHAN_TLS " --certlabl expired", CHAN_TLS " --sslcauth required");
	define_ch("FUTURE", CHAN_TLS " --certlabl future", CHAN_TLS " --sslcauth required");
	define_ch("RESPEXP", CHAN_TLS, CHAN_TLS " --certlabl expired");
	json_decref(expect_refusal("EXPIRED", &qm2, "CHD4003"));
	json_decref(expect_refusal("FUTURE", &qm2, "CHD4003"));
	json_decref(expect_refusal("RESPEXP", &qm1, "CHD4003"));
}

Test(chan_tls, revoked_is_chd4004)
{
	chan_pair_start(&qm1, &qm2);
	chan_qm_import(&qm1, "revoked", "revoked.pem", "revoked.key");
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	define_ch("REVOKED", CHAN_TLS " --certlabl revoked", CHAN_TLS " --sslcauth required");
	/* Before the CRL is loaded the certificate is good. */
	expect_works("REVOKED");
	free(chan_ctl_ok(&qm1, NULL, "stop channel REVOKED"));
	cr_assert(chan_wait_state(&qm1, "REVOKED", "STOPPED|INACTIVE", 15000));

	chan_ks_ok("crl add -k '%s' --label inter-crl --crl '%s'", qm2.ks, chan_pki("inter.crl"));
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	chan_put(&qm1, "R.REVOKED", "-m after-crl", NULL);
	json_decref(expect_refusal("REVOKED", &qm2, "CHD4004"));
	/* Other certificates of the same CA still pass. */
	define_ch("NOTREVOKED", CHAN_TLS, CHAN_TLS " --sslcauth required");
	expect_works("NOTREVOKED");
}

/* ---- SSLPEER ---- */

Test(chan_tls, sslpeer_mismatch_is_chd4005_naming_the_peer)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("PEERRESP", CHAN_TLS, CHAN_TLS " --sslpeer 'CN=QMX, O=Acme'");
	json_t *st = expect_refusal("PEERRESP", &qm2, "CHD4005");
	cr_assert(strstr(chan_js(st, "last_error"), "CN=QM1") != NULL,
	          "responder's reason does not name the peer DN: %s", chan_js(st, "last_error"));
	json_decref(st);

	define_ch("PEERINI", CHAN_TLS " --sslpeer 'CN=QM2, OU=Sales'", CHAN_TLS);
	st = expect_refusal("PEERINI", &qm1, "CHD4005");
	cr_assert(strstr(chan_js(st, "last_error"), "CN=QM2") != NULL,
	          "initiator's reason does not name the peer DN: %s", chan_js(st, "last_error"));
	json_decref(st);
	cr_assert(chan_log_has(&qm1, "OU=Payments"), "the log does not give the peer's DN");
}

Test(chan_tls, sslpeer_multi_ou_by_position)
{
	chan_pair_start(&qm1, &qm2);
	/* ou.pem: /O=Acme/OU=Sales/OU=EMEA/CN=QM2, presented by QM1. */
	chan_qm_import(&qm1, "ou", "ou.pem", "ou.key");
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	define_ch("OUOK", CHAN_TLS " --certlabl ou",
	          CHAN_TLS " --sslcauth required --sslpeer 'OU=Sales, OU=EMEA, O=Acme'");
	define_ch("OUFIRST", CHAN_TLS " --certlabl ou", CHAN_TLS " --sslpeer 'ou=sales'");
	define_ch("OUWILD", CHAN_TLS " --certlabl ou", CHAN_TLS " --sslpeer 'CN=QM*;OU=Sal*'");
	define_ch("OUREV", CHAN_TLS " --certlabl ou", CHAN_TLS " --sslpeer 'OU=EMEA, OU=Sales'");
	define_ch("OUSECOND", CHAN_TLS " --certlabl ou", CHAN_TLS " --sslpeer 'OU=EMEA'");
	expect_works("OUOK");
	expect_works("OUFIRST");
	expect_works("OUWILD");
	json_t *st = chan_status(&qm2, "OUOK");
	cr_assert(strstr(chan_js(st, "peer_dn"), "OU=EMEA") != NULL, "peer_dn %s",
	          chan_js(st, "peer_dn"));
	json_decref(st);
	json_decref(expect_refusal("OUREV", &qm2, "CHD4005"));
	json_decref(expect_refusal("OUSECOND", &qm2, "CHD4005"));
	/* Bad filters are refused at define time. */
	char *out = NULL, *err = NULL;
	int rc = chan_ctl(&qm2, NULL, &out, &err, "define channel BADPEER --type rcvr "
	                  CHAN_TLS " --sslpeer 'CN=QM1, XX=1'");
	cr_assert_neq(rc, 0, "a bad SSLPEER was accepted");
	cr_assert(err != NULL && strstr(err, "XX") != NULL, "no reason: %s", err ? err : "");
	free(out);
	free(err);
}

/* ---- plain TCP: refusals tell an unauthenticated peer nothing ---- */

Test(chan_tls, plain_tcp_refusals_say_nothing_of_the_configuration)
{
	chan_pair_start(&qm1, &qm2);
	/* a channel QM2 does not define, and one it defines with TLS only */
	define_ch("PLAINX", "", "");
	free(chan_ctl_ok(&qm2, NULL, "delete channel PLAINX"));
	define_ch("TLSONLY", "", "--sslciph ANY_TLS13_OR_HIGHER");
	const char *names[] = { "PLAINX", "TLSONLY" };
	for (int i = 0; i < 2; i++) {
		free(chan_ctl_ok(&qm1, NULL, "start channel %s", names[i]));
		json_t *st = chan_wait_error(&qm1, names[i], "CHD5030", 20000);
		if (st == NULL) {
			dump_both(names[i]);
			cr_assert_fail("%s: the initiator was not refused with CHD5030", names[i]);
		}
		const char *why = chan_js(st, "last_error");
		cr_assert(strstr(why, "QM2") == NULL && strstr(why, "TLS") == NULL &&
		          strstr(why, "defined") == NULL && strstr(why, names[i]) == NULL,
		          "%s: the refusal over plain TCP tells the peer: %s", names[i], why);
		json_decref(st);
		cr_assert_eq(xmitq_depth(names[i]), 1);
	}
	/* the responder keeps the reasons */
	cr_assert(chan_wait_log(&qm2, "PLAINX is not defined", 5000));
	json_t *st = chan_wait_error(&qm2, "TLSONLY", "CHD4006", 5000);
	cr_assert_not_null(st, "the responder's status lacks the reason");
	cr_assert(strstr(chan_js(st, "last_error"), "ANY_TLS13_OR_HIGHER") != NULL, "%s",
	          chan_js(st, "last_error"));
	json_decref(st);
}

/* ---- CipherSpecs ---- */

Test(chan_tls, cipherspec_mismatch_is_chd4006_at_both_ends)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("CIPHMIS", "--sslciph TLS_AES_128_GCM_SHA256",
	          "--sslciph TLS_AES_256_GCM_SHA384");
	json_t *st = expect_refusal("CIPHMIS", &qm2, "CHD4006");
	const char *why = chan_js(st, "last_error");
	cr_assert(strstr(why, "TLS_AES_128_GCM_SHA256") && strstr(why, "TLS_AES_256_GCM_SHA384"),
	          "responder's reason does not name both specs: %s", why);
	json_decref(st);
	st = chan_wait_error(&qm1, "CIPHMIS", "CHD4006", 10000);
	cr_assert_not_null(st, "the initiator does not report CHD4006");
	why = chan_js(st, "last_error");
	cr_assert(strstr(why, "TLS_AES_128_GCM_SHA256") && strstr(why, "TLS_AES_256_GCM_SHA384"),
	          "initiator's reason does not name both specs: %s", why);
	json_decref(st);

	/* Protocol-level mismatch: TLS 1.2 only against TLS 1.3 only. */
	define_ch("VERMIS", "--sslciph ANY_TLS12", "--sslciph ANY_TLS13");
	json_decref(expect_refusal("VERMIS", &qm2, "CHD4006"));

	/* Compatible specs work, and the agreed suite satisfies both. */
	define_ch("CIPHOK", "--sslciph ANY_TLS12_OR_HIGHER", "--sslciph TLS_CHACHA20_POLY1305_SHA256");
	expect_works("CIPHOK");
	st = chan_status(&qm1, "CIPHOK");
	cr_assert_str_eq(chan_js(st, "cipher"), "TLS_CHACHA20_POLY1305_SHA256");
	json_decref(st);
	define_ch("TLS12", "--sslciph TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	          "--sslciph ANY_TLS12_OR_HIGHER");
	expect_works("TLS12");
	st = chan_status(&qm2, "TLS12");
	cr_assert(strstr(chan_js(st, "tls_version"), "1.2") != NULL, "tls_version %s",
	          chan_js(st, "tls_version"));
	cr_assert_str_eq(chan_js(st, "cipher"), "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
	json_decref(st);

	/* Nothing below TLS 1.2, nothing weak, not even at define time. */
	char *err = NULL;
	cr_assert_neq(chan_ctl(&qm1, NULL, NULL, &err, "define channel WEAK --type rcvr "
	                       "--sslciph TLS_RSA_WITH_3DES_EDE_CBC_SHA"), 0, "3DES accepted");
	free(err);
	cr_assert_neq(chan_ctl(&qm1, NULL, NULL, NULL, "define channel WEAK --type rcvr "
	                       "--sslciph TLS_RSA_WITH_RC4_128_SHA"), 0, "RC4 accepted");
}

/* ---- labels and keystore ---- */

Test(chan_tls, label_not_found_on_responder_is_chd4007)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("NOLABEL", CHAN_TLS, CHAN_TLS " --certlabl nosuchlabel");
	json_t *st = expect_refusal("NOLABEL", &qm2, "CHD4007");
	cr_assert(strstr(chan_js(st, "last_error"), "nosuchlabel") != NULL, "reason: %s",
	          chan_js(st, "last_error"));
	json_decref(st);
}

Test(chan_tls, keystore_readable_by_others_is_refused)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("KSOK", CHAN_TLS, CHAN_TLS);
	expect_works("KSOK");

	/* refresh security refuses it and keeps the old material. */
	cr_assert_eq(chmod(qm2.ks, 0644), 0);
	char *out = NULL, *err = NULL;
	int rc = chan_ctl(&qm2, NULL, &out, &err, "refresh security");
	cr_assert_neq(rc, 0, "refresh security accepted a 0644 keystore");
	cr_assert(err && (strstr(err, "CHD3002") || strstr(err, "CHD4008")), "reason: %s",
	          err ? err : "");
	free(out);
	free(err);
	json_t *st = chan_status(&qm2, "KSOK");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING", "refresh dropped the running channel");
	json_decref(st);
	define_ch("KSNEW", CHAN_TLS, CHAN_TLS);
	expect_works("KSNEW");

	/* On start: the agent refuses to start, or starts and reports it. */
	th_agent_stop(&qm2.a);
	qm2.running = false;
	char *prev = chan_log(&qm2);
	size_t before = strlen(prev);
	free(prev);
	if (th_agent_restart(&qm2.a) == 0) {
		qm2.running = true;
		cr_log_info("the agent started with a 0644 keystore; checking it reports it");
		define_ch("KSBAD", CHAN_TLS, CHAN_TLS);
		free(chan_ctl_ok(&qm1, NULL, "start channel KSBAD"));
		cr_assert(chan_wait_log(&qm2, "CHD4008", 15000) || chan_log_has(&qm2, "CHD3002"),
		          "the agent started with a 0644 keystore and did not say so");
		json_t *s1 = chan_status(&qm1, "KSBAD");
		cr_assert_str_neq(chan_js(s1, "state"), "RUNNING");
		json_decref(s1);
	} else {
		cr_log_info("the agent refused to start with a 0644 keystore");
		char *log = chan_log(&qm2);
		cr_assert(strstr(log + before, "CHD3002") || strstr(log + before, "CHD4008"),
		          "the agent refused to start without naming the cause:\n%s", log + before);
		free(log);
	}
}

/* ---- handshake timeout and junk at the listener ---- */

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
	             strerror(errno));
	return fd;
}

/* True once the peer has closed fd (EOF or reset), within timeout_ms. */
static bool peer_closed(int fd, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		long long left = end - chan_now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
			return true;
	}
}

Test(chan_tls, silent_and_half_hello_clients_time_out)
{
	chan_pair_start(&qm1, &qm2);
	int silent = tcp_connect(qm2.a.port);
	int half = tcp_connect(qm2.a.port);
	/* A TLS record header announcing 512 bytes of ClientHello, then 40. */
	unsigned char hello[45] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
	for (size_t i = 11; i < sizeof(hello); i++)
		hello[i] = (unsigned char)(i * 37);
	cr_assert_eq(write(half, hello, sizeof(hello)), (ssize_t)sizeof(hello));

	/* Meanwhile the agent answers chanctl and runs channels. */
	long long t0 = chan_now_ms();
	free(chan_ctl_ok(&qm2, NULL, "status"));
	cr_assert_lt(chan_now_ms() - t0, 3000, "chanctl stalled behind stuck handshakes");
	define_ch("BUSY", CHAN_TLS, CHAN_TLS);
	expect_works("BUSY");

	/* Both stuck connections are closed by the handshake timeout. */
	cr_assert(peer_closed(silent, 100000), "the silent client was never dropped");
	cr_assert(peer_closed(half, 20000), "the half-hello client was never dropped");
	cr_assert(chan_wait_log(&qm2, "CHD4009", 5000), "no CHD4009 in the log");
	close(silent);
	close(half);
	cr_assert(th_agent_alive(&qm2.a));
	json_t *st = chan_status(&qm2, "BUSY");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	json_decref(st);
}

Test(chan_tls, random_bytes_to_listener_are_dropped)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("ALIVE", CHAN_TLS, CHAN_TLS);
	unsigned char junk[4096];
	int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(rfd, 0);
	for (int round = 0; round < 5; round++) {
		cr_assert_eq(read(rfd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		if (round == 0)
			junk[0] = 0x16;     /* looks like a TLS handshake record */
		if (round == 1)
			memcpy(junk, "CHND", 4);   /* looks like a plain-TCP frame */
		int fd = tcp_connect(qm2.a.port);
		/* The agent may close before it has read everything. */
		if (send(fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0)
			cr_assert(errno == EPIPE || errno == ECONNRESET);
		cr_assert(peer_closed(fd, 15000), "round %d: junk connection left open", round);
		close(fd);
	}
	close(rfd);
	cr_assert(th_agent_alive(&qm2.a));
	expect_works("ALIVE");
}

/* ---- chains, ECDSA, key formats, PKCS#12 ---- */

Test(chan_tls, intermediate_chain_sent_by_both_ends)
{
	/* Each side trusts only the root: the peer must send the intermediate. */
	struct chan_qm_opts o = { .trust_root_only = true };

	chan_qm_start(&qm1, "QM1", &o);
	chan_qm_start(&qm2, "QM2", &o);
	define_ch("CHAIN", CHAN_TLS, CHAN_TLS " --sslcauth required");
	expect_works("CHAIN");
	json_t *st = chan_status(&qm2, "CHAIN");
	cr_assert(strstr(chan_js(st, "peer_issuer_dn"), "Intermediate") != NULL);
	json_decref(st);
}

Test(chan_tls, ecdsa_certificates)
{
	chan_pair_start(&qm1, &qm2);
	chan_qm_import(&qm1, "qm1-ec", "qm1-ec.pem", "qm1-ec.key");
	chan_qm_import(&qm2, "qm2-ec", "qm2-ec.pem", "qm2-ec.key");
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	define_ch("ECDSA13", CHAN_TLS " --certlabl qm1-ec",
	          CHAN_TLS " --certlabl qm2-ec --sslcauth required --sslpeer 'CN=QM1'");
	define_ch("ECDSA12", "--sslciph TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 --certlabl qm1-ec",
	          "--sslciph ANY_TLS12_OR_HIGHER --certlabl qm2-ec --sslcauth required");
	expect_works("ECDSA13");
	expect_works("ECDSA12");
	json_t *st = chan_status(&qm1, "ECDSA12");
	cr_assert_str_eq(chan_js(st, "cipher"), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
	cr_assert_str_eq(chan_js(st, "local_label"), "qm1-ec");
	json_decref(st);
}

Test(chan_tls, keys_from_every_format_and_pkcs12)
{
	static const char *const lbl[] = { "k-trad", "k-aes", "k-des3", "k-pkcs8", "k-p12",
		"k-p12legacy", NULL };

	chan_pair_start(&qm1, &qm2);
	const char *pw = chan_pki("pw.txt");
	chan_ks_ok("import -k '%s' --label k-trad --cert '%s' --key '%s' --chain '%s'", qm2.ks,
	           chan_pki("qm2.pem"), chan_pki("qm2-trad.key"), chan_pki("inter.pem"));
	chan_ks_ok("import -k '%s' --label k-aes --cert '%s' --key '%s' --key-password-file '%s' "
	           "--chain '%s'", qm2.ks, chan_pki("qm2.pem"), chan_pki("qm2-aes.key"), pw,
	           chan_pki("inter.pem"));
	chan_ks_ok("import -k '%s' --label k-des3 --cert '%s' --key '%s' --key-password-file '%s' "
	           "--chain '%s'", qm2.ks, chan_pki("qm2.pem"), chan_pki("qm2-des3.key"), pw,
	           chan_pki("inter.pem"));
	chan_ks_ok("import -k '%s' --label k-pkcs8 --cert '%s' --key '%s' --key-password-file '%s' "
	           "--chain '%s'", qm2.ks, chan_pki("qm2.pem"), chan_pki("qm2-pkcs8.key"), pw,
	           chan_pki("inter.pem"));
	chan_ks_ok("import -k '%s' --p12 '%s' --p12-password-file '%s' --label k-p12", qm2.ks,
	           chan_pki("qm2.p12"), pw);
	chan_ks_ok("import -k '%s' --p12 '%s' --p12-password-file '%s' --label k-p12legacy",
	           qm2.ks, chan_pki("qm2-legacy.p12"), pw);
	/* A DER certificate on the initiator's side. */
	chan_ks_ok("import -k '%s' --label k-der --cert '%s' --key '%s' --chain '%s'", qm1.ks,
	           chan_pki("qm1-der.crt"), chan_pki("qm1.key"), chan_pki("inter.pem"));
	/* A wrong key password is refused with its code; nothing is added. */
	char *err = NULL;
	cr_assert_neq(chan_ks(NULL, &err, "import -k '%s' --label k-bad --cert '%s' --key '%s' "
	                      "--key-password-file '%s'", qm2.ks, chan_pki("qm2.pem"),
	                      chan_pki("qm2-aes.key"), qm2.pwfile), 0);
	cr_assert(err && strstr(err, "CHD3006"), "wrong key password: %s", err ? err : "");
	free(err);
	err = NULL;
	cr_assert_neq(chan_ks(NULL, &err, "import -k '%s' --label k-mismatch --cert '%s' --key '%s'",
	                      qm2.ks, chan_pki("qm1.pem"), chan_pki("qm2.key")), 0);
	cr_assert(err && strstr(err, "CHD3005"), "key mismatch: %s", err ? err : "");
	free(err);
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));

	char name[32], attrs[160];
	for (int i = 0; lbl[i]; i++) {
		snprintf(name, sizeof(name), "FMT.%d", i);
		snprintf(attrs, sizeof(attrs), CHAN_TLS " --sslcauth required --certlabl %s", lbl[i]);
		define_ch(name, CHAN_TLS " --certlabl k-der --sslpeer 'CN=QM2'", attrs);
	}
	for (int i = 0; lbl[i]; i++) {
		snprintf(name, sizeof(name), "FMT.%d", i);
		expect_works(name);
		json_t *st = chan_status(&qm2, name);
		cr_assert_str_eq(chan_js(st, "local_label"), lbl[i]);
		cr_assert(strstr(chan_js(st, "peer_dn"), "CN=QM1") != NULL);
		json_decref(st);
	}
}

/* ---- refresh security ---- */

Test(chan_tls, refresh_security_adds_trust_keeps_running_refuses_broken)
{
	chan_pair_start(&qm1, &qm2);
	work = th_tempdir("newca");
	cr_assert_not_null(work);
	/* A new CA and a QM1 certificate from it, made the operators' way. */
	free(chan_sh_ok(60, "cd '%s' && openssl genrsa -out newca.key 2048 2>/dev/null && "
	                "openssl req -new -x509 -days 30 -extensions v3_ca -key newca.key "
	                "-subj '/C=GB/O=Acme/CN=New CA' -out newca.pem && "
	                "openssl genrsa -out n1.key 2048 2>/dev/null && "
	                "openssl req -new -key n1.key -subj '/C=GB/O=Acme/OU=New/CN=QM1' -out n1.csr && "
	                "openssl x509 -req -in n1.csr -CA newca.pem -CAkey newca.key "
	                "-CAcreateserial -days 30 -out n1.pem 2>/dev/null", work));
	chan_ks_ok("trust -k '%s' --label newca --cert '%s/newca.pem'", qm1.ks, work);
	chan_ks_ok("import -k '%s' --label newqm1 --cert '%s/n1.pem' --key '%s/n1.key'", qm1.ks,
	           work, work);
	free(chan_ctl_ok(&qm1, NULL, "refresh security"));

	define_ch("OLDCA", CHAN_TLS " --hbint 1", CHAN_TLS " --sslcauth required");
	expect_works("OLDCA");
	json_t *st = chan_status(&qm1, "OLDCA");
	char *started = strdup(chan_js(st, "start_time"));
	json_decref(st);

	define_ch("NEWCA", CHAN_TLS " --certlabl newqm1", CHAN_TLS " --sslcauth required");
	json_decref(expect_refusal("NEWCA", &qm2, "CHD4002"));
	free(chan_ctl_ok(&qm1, NULL, "stop channel NEWCA"));

	chan_ks_ok("trust -k '%s' --label newca --cert '%s/newca.pem'", qm2.ks, work);
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	free(chan_ctl_ok(&qm1, NULL, "start channel NEWCA"));
	if (!chan_wait_state(&qm1, "NEWCA", "RUNNING", 20000)) {
		dump_both("NEWCA");
		cr_assert_fail("the newly trusted CA was not picked up");
	}
	/* The running channel was not dropped: same instance, still moving. */
	st = chan_status(&qm1, "OLDCA");
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	cr_assert_str_eq(chan_js(st, "start_time"), started, "OLDCA was restarted by refresh");
	json_decref(st);
	chan_put(&qm1, "R.OLDCA", "-m still-here", NULL);
	cr_assert(chan_wait_depth(&qm1, "X.OLDCA", 0, 10000));

	/* Broken material (a stash with the wrong password) is refused and
	 * the old material stays in use. */
	char *stash = th_read_file(qm2.stash);
	cr_assert_not_null(stash);
	FILE *f = fopen(qm2.stash, "w");
	cr_assert_not_null(f);
	fputs("not-the-password\n", f);
	fclose(f);
	char *err = NULL;
	cr_assert_neq(chan_ctl(&qm2, NULL, NULL, &err, "refresh security"), 0,
	              "refresh accepted a wrong stash");
	cr_assert(err && (strstr(err, "CHD4008") || strstr(err, "CHD3003")), "reason: %s",
	          err ? err : "");
	free(err);
	st = chan_status(&qm1, "OLDCA");
	cr_assert_str_eq(chan_js(st, "start_time"), started);
	json_decref(st);
	define_ch("AFTERBAD", CHAN_TLS, CHAN_TLS " --sslcauth required");
	expect_works("AFTERBAD");
	/* A CRL no trusted CA signed is refused too (by the keystore). */
	f = fopen(qm2.stash, "w");
	cr_assert_not_null(f);
	fputs(stash, f);
	fclose(f);
	chmod(qm2.stash, 0600);
	free(stash);
	free(started);
}

/* ---- external clients ---- */

/* SNI the responder expects for a channel: hex of the name + ".chl.chand". */
static void sni_of(const char *channel, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = channel; *p && o + 3 < len; p++)
		o += (size_t)snprintf(out + o, len - o, "%02x", (unsigned char)*p);
	snprintf(out + o, len - o, ".chl.chand");
}

/* The handshake did not complete: openssl prints "New, TLSv1.x, Cipher is X"
 * only for an established session, gnutls-cli "Handshake was completed". */
static bool established(const char *out)
{
	const char *p = out ? strstr(out, "Cipher is ") : NULL;
	if (p != NULL && strncmp(p, "Cipher is (NONE)", 16) != 0)
		return true;
	return out != NULL && strstr(out, "Handshake was completed") != NULL;
}

/* Runs "base extra" (bounded) and expects no session. */
static void ext_refused(const char *what, const char *base, const char *extra)
{
	char *out = NULL, *err = NULL;
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "%s %s", base, extra);
	int rc = th_sh(NULL, &out, &err, 20, "timeout 10 %s </dev/null 2>&1", cmd);
	cr_assert(!established(out), "%s: the agent accepted it (exit %d):\n%s", what, rc,
	          out ? out : "");
	/* Refused by the agent (a TLS alert), not given up by the client
	 * before it even tried. */
	cr_assert(out != NULL && strcasestr(out, "alert") != NULL,
	          "%s: no TLS alert from the agent:\n%s", what, out ? out : "");
	cr_assert(th_agent_alive(&qm2.a), "%s: the agent died", what);
	free(out);
	free(err);
}

Test(chan_tls, external_clients_with_weak_settings_are_refused)
{
	char sni[128], hostport[64];

	chan_pair_start(&qm1, &qm2);
	define_ch("EXT", CHAN_TLS, "--sslciph ANY_TLS12_OR_HIGHER --sslcauth required");
	sni_of("EXT", sni, sizeof(sni));
	snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", qm2.a.port);
	const char *ca = chan_pki("ca-bundle.pem");
	char base[1024];
	snprintf(base, sizeof(base), "openssl s_client -connect %s -servername %s -CAfile %s "
	         "-cert %s -key %s", hostport, sni, ca, chan_pki("qm1-chain.pem"),
	         chan_pki("qm1.key"));

	ext_refused("s_client -tls1", base, "-tls1 -cipher DEFAULT@SECLEVEL=0");
	ext_refused("s_client -tls1_1", base, "-tls1_1 -cipher DEFAULT@SECLEVEL=0");
	ext_refused("s_client AES128-SHA", base, "-tls1_2 -cipher AES128-SHA");
	ext_refused("s_client NULL cipher", base, "-tls1_2 -cipher NULL-SHA256@SECLEVEL=0");
	ext_refused("s_client anonymous", base, "-tls1_2 -cipher aNULL@SECLEVEL=0");

	char gbase[1024];
	snprintf(gbase, sizeof(gbase), "gnutls-cli --port %d --sni-hostname %s --x509cafile %s "
	         "--x509certfile %s --x509keyfile %s", qm2.a.port, sni, ca,
	         chan_pki("qm1-chain.pem"), chan_pki("qm1.key"));
	ext_refused("gnutls-cli TLS1.1", gbase, "--priority NORMAL:-VERS-ALL:+VERS-TLS1.1 127.0.0.1");
	ext_refused("gnutls-cli TLS1.0", gbase, "--priority NORMAL:-VERS-ALL:+VERS-TLS1.0 127.0.0.1");
	ext_refused("gnutls-cli CBC only", gbase,
	            "--priority NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC 127.0.0.1");
	ext_refused("gnutls-cli 3DES", gbase,
	            "--priority NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+3DES-CBC 127.0.0.1");
	ext_refused("gnutls-cli RC4", gbase,
	            "--priority NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+ARCFOUR-128 127.0.0.1");

	/* No client certificate where one is required: TLS 1.3 refuses it
	 * after the client's Finished, so look at the agent's verdict too. */
	char *log = chan_log(&qm2);
	int n4001 = th_count(log, "CHD4001");
	free(log);
	char *out = NULL;
	/* stdin held open a moment, so s_client is still reading when the
	 * alert comes. */
	int rc = th_sh(NULL, &out, NULL, 20, "sleep 2 | timeout 10 openssl s_client -connect %s "
	               "-servername %s -CAfile %s -tls1_3 2>&1", hostport, sni, ca);
	cr_assert(out && strstr(out, "certificate required") != NULL,
	          "s_client without a certificate was not refused (exit %d):\n%s", rc, out ? out : "");
	free(out);
	out = NULL;
	th_sh(NULL, &out, NULL, 20, "timeout 10 gnutls-cli --port %d --sni-hostname %s "
	      "--x509cafile %s 127.0.0.1 </dev/null 2>&1", qm2.a.port, sni, ca);
	free(out);
	long long end = chan_now_ms() + 10000;
	int now4001 = 0;
	do {
		log = chan_log(&qm2);
		now4001 = th_count(log, "CHD4001");
		free(log);
		if (now4001 >= n4001 + 2)
			break;
		chan_sleep_ms(100);
	} while (chan_now_ms() < end);
	cr_assert_geq(now4001, n4001 + 2, "CHD4001 logged %d times for 2 clients without a cert",
	              now4001 - n4001);

	/* A proper client with the right certificate gets a TLS 1.2+ session:
	 * the refusals above were about the settings, not the tools. */
	out = NULL;
	rc = th_sh(NULL, &out, NULL, 20, "timeout 10 %s -tls1_2 </dev/null 2>&1", base);
	cr_assert(established(out) && strstr(out, "TLSv1.2") != NULL,
	          "a good TLS 1.2 client failed (exit %d):\n%s", rc, out ? out : "");
	free(out);
	cr_assert(th_agent_alive(&qm2.a));
	expect_works("EXT");
}

/* ---- --verify-host (seed 001's "Verify Certificate" box) ---- */

/* The test certificates name localhost and 127.0.0.1 in their SAN (and
 * QM1/QM2 in their CN, which does not count when a SAN is there): yes
 * checks the CONNAME host, NAME an explicit name; a mismatch is CHD4015 at
 * the initiator, naming both the certificate and the host. */
Test(chan_tls, verify_host_checks_san_and_names_both)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("VHYES", CHAN_TLS " --verify-host yes", CHAN_TLS);
	expect_works("VHYES");
	define_ch("VHNAME", CHAN_TLS " --verify-host localhost", CHAN_TLS);
	expect_works("VHNAME");
	define_ch("VHBAD", CHAN_TLS " --verify-host qm2.example.com", CHAN_TLS);
	json_t *st = expect_refusal("VHBAD", &qm1, "CHD4015");
	cr_assert(strstr(chan_js(st, "last_error"), "qm2.example.com") != NULL &&
	          strstr(chan_js(st, "last_error"), "CN=QM2") != NULL,
	          "the reason names neither the host nor the certificate: %s",
	          chan_js(st, "last_error"));
	json_decref(st);
	/* the CN (QM2) is not a host name the check accepts: the SAN rules */
	define_ch("VHCN", CHAN_TLS " --verify-host QM2", CHAN_TLS);
	st = expect_refusal("VHCN", &qm1, "CHD4015");
	json_decref(st);
}

/* ---- refresh security re-checks the peers of running channels ---- */

/* The responder stops trusting the initiator's CA: refresh security ends
 * the running instance with the reason (CHD4002, the peer DN) in its
 * status and log, and the next start is refused. */
Test(chan_tls, refresh_security_ends_channels_whose_peer_is_no_longer_trusted)
{
	chan_pair_start(&qm1, &qm2);
	define_ch("RECHK", CHAN_TLS " --hbint 1", CHAN_TLS " --sslcauth required");
	expect_works("RECHK");
	chan_ks_ok("remove -k '%s' inter", qm2.ks);
	chan_ks_ok("remove -k '%s' root", qm2.ks);
	free(chan_ctl_ok(&qm2, NULL, "refresh security"));
	if (!chan_wait_log(&qm2, "ended by refresh security", 10000)) {
		dump_both("RECHK");
		cr_assert_fail("the running channel was not re-checked");
	}
	cr_assert(chan_log_has(&qm2, "CN=QM1"), "the log does not name the peer");
	cr_assert(chan_wait_state(&qm2, "RECHK", "INACTIVE|STOPPED", 15000),
	          "the receiver still runs the channel");
	json_t *st = chan_wait_error(&qm2, "RECHK", "CHD4002", 15000);
	cr_assert_not_null(st, "no CHD4002 in the receiver's status");
	json_decref(st);
}

/* ---- --keyupdate-bytes: TLS 1.3 KeyUpdates ---- */

#define KU_ROUNDS 24
#define KU_PER_ROUND 4
#define KU_MSG_LEN 65536

/* KU_PER_ROUND lines of KU_MSG_LEN bytes, each starting "TAG-r-k-". */
static char *ku_lines(const char *tag, int r)
{
	char *s = malloc((size_t)KU_PER_ROUND * (KU_MSG_LEN + 1) + 1), *p = s;

	cr_assert_not_null(s);
	for (int k = 0; k < KU_PER_ROUND; k++) {
		int n = sprintf(p, "%s-%02d-%d-", tag, r, k);
		memset(p + n, 'k', (size_t)(KU_MSG_LEN - n));
		p[KU_MSG_LEN] = '\n';
		p += KU_MSG_LEN + 1;
	}
	*p = '\0';
	return s;
}

/* Every "TAG-r-k-" of rounds messages on QM2's Q exactly once (and the
 * hello of define_ch). */
static void ku_expect_each_once(const char *tag, int rounds)
{
	json_t *msgs = chan_get_msgs(&qm2, "Q");
	char seen[KU_ROUNDS][KU_PER_ROUND] = { { 0 } };
	size_t hello = 0;

	cr_assert_eq(json_array_size(msgs), (size_t)rounds * KU_PER_ROUND + 1, "%s: got %zu messages",
	             tag, json_array_size(msgs));
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		const char *b = chan_js(json_array_get(msgs, i), "body");
		char want[16];
		int r = -1, k = -1;
		if (strncmp(b, "hello-from-", 11) == 0) {
			hello++;
			continue;
		}
		snprintf(want, sizeof(want), "%s-", tag);
		cr_assert(strncmp(b, want, strlen(want)) == 0, "%s: stray message %.40s", tag, b);
		cr_assert_eq(sscanf(b + strlen(want), "%d-%d-", &r, &k), 2, "%.40s", b);
		cr_assert(r >= 0 && r < rounds && k >= 0 && k < KU_PER_ROUND, "%.40s", b);
		cr_assert_eq(strlen(b), (size_t)KU_MSG_LEN, "%s-%d-%d: %zu bytes", tag, r, k, strlen(b));
		cr_assert_eq(seen[r][k], 0, "%s-%d-%d arrived twice", tag, r, k);
		seen[r][k] = 1;
	}
	cr_assert_eq(hello, 1);
	json_decref(msgs);
}

/* 6 MiB in rounds a quarter of a second apart (KeyUpdates are at least
 * TLS_KEYUPDATE_MIN_INTERVAL_MS apart): on TLS 1.3 the initiator asks for
 * one after every MiB and the responder answers each, both counted in
 * status key_updates; every message arrives once. On TLS 1.2 the
 * attribute has no effect: 0 at both ends, the channel works. */
Test(chan_tls, keyupdate_bytes_renews_tls13_keys_and_is_inert_on_tls12)
{
	json_t *st;
	long long ku1, ku2;

	chan_pair_start(&qm1, &qm2);
	define_ch("KU13", CHAN_TLS " --keyupdate-bytes 1048576", CHAN_TLS " --keyupdate-bytes 1048576");
	char *out = chan_ctl_ok(&qm1, NULL, "--json display channel KU13");
	cr_assert(strstr(out, "\"keyupdate_bytes\": 1048576") != NULL ||
	          strstr(out, "\"keyupdate_bytes\":1048576") != NULL, "display: %s", out);
	free(out);
	/* one-line refusals of values out of range, and of telemetry channels */
	static const char *const bad[][2] = {
		{ "alter channel KU13 --keyupdate-bytes 4096", "0 (never) or a number from 1048576" },
		{ "alter channel KU13 --keyupdate-bytes 1099511627777", "from 0 to 1099511627776" },
		{ "define channel KUM --type mqtt --port 1 --keyupdate-bytes 1048576",
		  "attribute of message channels" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *o = NULL, *e = NULL;
		cr_assert_neq(chan_ctl(&qm1, NULL, &o, &e, "%s", bad[i][0]), 0, "%s accepted", bad[i][0]);
		cr_assert(e != NULL && strstr(e, bad[i][1]) != NULL, "%s: %s", bad[i][0], e ? e : "");
		free(o);
		free(e);
	}
	expect_works("KU13");
	st = chan_status(&qm1, "KU13");
	cr_assert_str_eq(chan_js(st, "tls_version"), "TLS1.3");
	json_decref(st);
	for (int r = 0; r < KU_ROUNDS; r++) {
		char *lines = ku_lines("ku13", r);
		chan_put(&qm1, "R.KU13", NULL, lines);
		free(lines);
		usleep(250 * 1000);
	}
	if (!chan_wait_depth(&qm2, "Q", KU_ROUNDS * KU_PER_ROUND + 1, 60000)) {
		dump_both("KU13");
		cr_assert_fail("KU13: messages not received");
	}
	st = chan_wait_ji(&qm1, "KU13", "key_updates", 4, 10000);
	ku1 = chan_ji(st, "key_updates");
	cr_assert_geq(ku1, 4, "sender: %lld KeyUpdates for 6 MiB at 1 MiB", ku1);
	cr_assert_leq(ku1, 7, "sender: %lld KeyUpdates for 6 MiB at 1 MiB", ku1);
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	json_decref(st);
	/* the responder answers each one before its next CONFIRM */
	st = chan_wait_ji(&qm2, "KU13", "key_updates", ku1, 10000);
	ku2 = chan_ji(st, "key_updates");
	cr_assert_eq(ku2, ku1, "receiver answered %lld of %lld", ku2, ku1);
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	json_decref(st);
	ku_expect_each_once("ku13", KU_ROUNDS);
	for (int i = 0; i < 2; i++) {
		struct chan_qm *q = i ? &qm2 : &qm1;
		cr_assert(!chan_log_has(q, "key update") && !chan_log_has(q, "GNUTLS_E_"),
		          "%s: a KeyUpdate failed", q->name);
	}

	/* TLS 1.2: no KeyUpdate exists; the attribute is inert. */
	define_ch("KU12", "--sslciph TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 --keyupdate-bytes 1048576",
	          "--sslciph ANY_TLS12_OR_HIGHER --keyupdate-bytes 1048576");
	expect_works("KU12");
	for (int r = 0; r < 8; r++) {
		char *lines = ku_lines("ku12", r);
		chan_put(&qm1, "R.KU12", NULL, lines);
		free(lines);
	}
	cr_assert(chan_wait_depth(&qm2, "Q", 8 * KU_PER_ROUND + 1, 60000), "KU12: not received");
	st = chan_status(&qm1, "KU12");
	cr_assert_str_eq(chan_js(st, "tls_version"), "TLS1.2");
	cr_assert_eq(chan_ji(st, "key_updates"), 0);
	cr_assert_str_eq(chan_js(st, "state"), "RUNNING");
	json_decref(st);
	st = chan_status(&qm2, "KU12");
	cr_assert_eq(chan_ji(st, "key_updates"), 0);
	json_decref(st);
	ku_expect_each_once("ku12", 8);
}
