/* The TLS layer end to end in one process: a responder thread and an
 * initiator over a socketpair, contexts built from the PEM files of
 * tests/pki/mkpki.sh (made once per run in a temp dir, see the hooks at
 * the bottom).  Every refusal is checked at both ends: the responder's
 * precise code and text, and what the initiator sees (an alert during the
 * handshake under TLS 1.2, or on its first read under TLS 1.3). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <gnutls/gnutls.h>

#include "chand/ctlcmd.h"
#include "chand/tls.h"
#include "chand/util.h"
#include "tls_pem.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

#define QM1_DN "CN=QM1,OU=Payments,O=Acme,C=GB"
#define QM2_DN "CN=QM2,OU=Payments,O=Acme,C=GB"
#define INTER_DN "CN=Chand Test Intermediate CA,O=Acme,C=GB"

/* One .timeout for every test: Criterion 2.4.1's runner leaks (and LSan
 * fails the run) when tests of one binary mix timeout values under -j2. */
static char *pki_dir_owned;

/* TEST_VERBOSE=1 shows the texts operators would read. */
static void show(const char *who, const struct tls_error *e)
{
	if (getenv("TEST_VERBOSE") != NULL)
		fprintf(stderr, "  %-9s %s %s\n", who, code_str(e->code), e->text);
}

static const char *pki(void)
{
	const char *d = getenv("CHAND_TEST_PKI");

	if (d != NULL && d[0] != '\0')
		return d;
	if (pki_dir_owned == NULL) {
		const char *src = getenv("TEST_SRCDIR");
		pki_dir_owned = tp_pki_make(src != NULL && src[0] != '\0' ? src : TEST_SRCDIR);
		cr_assert_not_null(pki_dir_owned, "mkpki.sh failed");
	}
	return pki_dir_owned;
}

/* ---- contexts ---- */

struct ent {
	const char *label, *cert, *key, *chain;
};

/* A context with personal entries ents (NULL label ends), trusted PEM
 * files (comma-free list, NULL ends) and an optional CRL. */
static struct tls_ctx *mkctx(const struct ent *ents, const char *const *trust, const char *crl)
{
	struct ks_material *m = tp_material_new();
	struct tls_ctx *ctx = NULL;
	struct tls_error err;

	cr_assert_not_null(m);
	for (; ents != NULL && ents->label != NULL; ents++)
		cr_assert_eq(tp_add_personal(m, pki(), ents->label, ents->cert, ents->key, ents->chain),
		             0, "personal %s", ents->cert);
	for (; trust != NULL && *trust != NULL; trust++)
		cr_assert_eq(tp_add_trusted(m, pki(), *trust), 0, "trust %s", *trust);
	if (crl != NULL)
		cr_assert_eq(tp_add_crl(m, pki(), crl), 0);
	cr_assert_eq(tls_ctx_from_material(&ctx, m, &err), 0, "ctx: %s", err.text);
	tp_material_free(m);
	return ctx;
}

static const char *const TRUST_ROOT[] = { "root.pem", NULL };
static const char *const TRUST_BUNDLE[] = { "ca-bundle.pem", NULL };

static struct tls_ctx *ctx_qm1(void)
{
	static const struct ent e[] = { { "qm1", "qm1.pem", "qm1.key", "inter.pem" }, { NULL } };
	return mkctx(e, TRUST_ROOT, NULL);
}

static struct tls_ctx *ctx_qm2(void)
{
	static const struct ent e[] = { { "qm2", "qm2.pem", "qm2.key", "inter.pem" }, { NULL } };
	return mkctx(e, TRUST_ROOT, NULL);
}

static struct tls_ctx *ctx_one(const char *label, const char *cert, const char *key,
                               const char *chain)
{
	struct ent e[2] = { { label, cert, key, chain }, { NULL, NULL, NULL, NULL } };
	return mkctx(e, TRUST_ROOT, NULL);
}

static void params(struct tls_params *p, const char *channel, const char *spec, const char *label)
{
	memset(p, 0, sizeof *p);
	str_copy(p->channel, channel, sizeof p->channel);
	str_copy(p->sslciph, spec, sizeof p->sslciph);
	str_copy(p->label, label, sizeof p->label);
	p->sslcauth = SSLCAUTH_REQUIRED;
}

/* ---- the responder thread ---- */

enum srv_action { SA_NONE, SA_ECHO, SA_BULK, SA_SEND_REFUSAL, SA_WAIT_CLOSE };

struct srv {
	int fd;
	struct tls_ctx *ctx;
	struct tls_params chans[4];
	int nchans;
	int timeout_ms;
	int cancel_fd;
	enum srv_action action;
	size_t bulk;
	/* results */
	int rc;
	int64_t elapsed_ms;
	struct tls_error err;
	struct tls_info info;
	char channel[CHAND_NAME_MAX + 1];
	bool has_refusal;
	struct tls_error refusal;
	int action_rc;
	struct tls_error action_err;
	pthread_t th;
};

static int srv_lookup(void *arg, const char *channel, struct tls_params *out)
{
	struct srv *s = arg;

	for (int i = 0; i < s->nchans; i++)
		if (strcmp(s->chans[i].channel, channel) == 0) {
			*out = s->chans[i];
			return 0;
		}
	return -1;
}

static uint8_t pattern(size_t i, unsigned seed)
{
	return (uint8_t)((i * 31u + seed * 7u + (i >> 13)) & 0xff);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct tls_conn *c = NULL;
	int64_t t0 = time_mono_ms();
	const struct tls_error *ref;

	s->rc = tls_server_open(&c, s->fd, s->ctx, srv_lookup, s, s->timeout_ms, s->cancel_fd,
	                        &s->err);
	s->elapsed_ms = time_mono_ms() - t0;
	if (s->rc != 0)
		return NULL;
	tls_conn_info(c, &s->info);
	str_copy(s->channel, tls_conn_channel(c), sizeof s->channel);
	ref = tls_conn_refusal(c);
	if (ref != NULL) {
		s->has_refusal = true;
		s->refusal = *ref;
	}
	switch (s->action) {
	case SA_ECHO: {
		char buf[256];
		ssize_t n = tls_recv(c, buf, sizeof buf, 5000, &s->action_err);
		s->action_rc = n > 0 ? tls_send_all(c, buf, (size_t)n, 5000, &s->action_err) : -1;
		if (n <= 0)
			s->action_rc = n == 0 ? -2 : -1;
		break;
	}
	case SA_BULK: {
		uint8_t *buf = malloc(s->bulk);
		s->action_rc = -1;
		if (buf != NULL && tls_recv_all(c, buf, s->bulk, 20000, &s->action_err) ==
		                   (ssize_t)s->bulk) {
			size_t i;
			for (i = 0; i < s->bulk && buf[i] == pattern(i, 1); i++)
				;
			if (i == s->bulk) {
				for (i = 0; i < s->bulk; i++)
					buf[i] = pattern(i, 2);
				s->action_rc = tls_send_all(c, buf, s->bulk, 20000, &s->action_err);
			} else {
				s->action_rc = -3;
			}
		}
		free(buf);
		break;
	}
	case SA_SEND_REFUSAL:
		s->action_rc = ref != NULL ? tls_send_all(c, ref->text, strlen(ref->text) + 1, 5000,
		                                          &s->action_err) : -1;
		break;
	case SA_WAIT_CLOSE: {
		/* whatever comes, until the initiator closes (0) or fails */
		char b[64];
		ssize_t n;
		do
			n = tls_recv(c, b, sizeof b, 5000, &s->action_err);
		while (n > 0);
		s->action_rc = (int)n;
		break;
	}
	case SA_NONE:
		break;
	}
	tls_close(c);
	return NULL;
}

static void srv_init(struct srv *s, struct tls_ctx *ctx)
{
	memset(s, 0, sizeof *s);
	s->ctx = ctx;
	s->timeout_ms = 5000;
	s->cancel_fd = -1;
	s->action = SA_ECHO;
	s->rc = 99;
}

static struct tls_params *srv_chan(struct srv *s, const char *channel, const char *spec,
                                   const char *label)
{
	struct tls_params *p = &s->chans[s->nchans++];
	params(p, channel, spec, label);
	return p;
}

/* Starts the responder on one end of a socketpair; returns the other. */
static int srv_start(struct srv *s)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s->fd = sv[1];
	cr_assert_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
	return sv[0];
}

static void srv_join(struct srv *s)
{
	pthread_join(s->th, NULL);
	if (s->rc != 0)
		show("responder", &s->err);
	if (s->has_refusal)
		show("refusal", &s->refusal);
}

/* Client side of SA_ECHO: one message there and back. Returns 0, or -1
 * with err. */
static int echo(struct tls_conn *c, struct tls_error *err)
{
	char back[64];
	const char msg[] = "hello over the channel";

	if (tls_send_all(c, msg, sizeof msg, 5000, err) != 0)
		return -1;
	if (tls_recv_all(c, back, sizeof msg, 5000, err) != (ssize_t)sizeof msg)
		return -1;
	cr_assert_str_eq(back, msg);
	return 0;
}

/* The common shape: responder with one channel, initiator with params;
 * returns the initiator's open result. */
static int run_pair(struct srv *s, struct tls_ctx *cctx, const struct tls_params *cp,
                    struct tls_conn **cc, struct tls_error *cerr)
{
	int fd = srv_start(s);
	return tls_client_open(cc, fd, cctx, cp, 5000, -1, cerr);
}

/* ---- success paths ---- */

static void mutual_ok(const char *spec, const char *cert1, const char *key1, const char *cert2,
                      const char *key2, const char *want_version, const char *want_cipher)
{
	struct tls_ctx *c1 = ctx_one("qm1", cert1, key1, "inter.pem");
	struct tls_ctx *c2 = ctx_one("qm2", cert2, key2, "inter.pem");
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "QM1.TO.QM2", spec, "qm2");
	params(&cp, "QM1.TO.QM2", spec, "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "client: %s %s", code_str(err.code),
	             err.text);
	cr_assert_eq(echo(cc, &err), 0, "echo: %s", err.text);
	tls_conn_info(cc, &ci);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "server: %s %s", code_str(s.err.code), s.err.text);
	cr_assert_eq(s.action_rc, 0);
	cr_assert_not(s.has_refusal);
	cr_assert_str_eq(s.channel, "QM1.TO.QM2");

	cr_assert(ci.encrypted);
	cr_assert_str_eq(ci.version, want_version);
	if (want_cipher != NULL)
		cr_assert_str_eq(ci.cipher, want_cipher);
	cr_assert_str_eq(ci.local_label, "qm1");
	cr_assert_str_eq(ci.peer_dn, QM2_DN);
	cr_assert_str_eq(ci.peer_issuer_dn, INTER_DN);
	cr_assert_gt(ci.peer_not_after_ms, time_now_ms());

	cr_assert(s.info.encrypted);
	cr_assert_str_eq(s.info.version, want_version);
	cr_assert_str_eq(s.info.cipher, ci.cipher);
	cr_assert_str_eq(s.info.local_label, "qm2");
	cr_assert_str_eq(s.info.peer_dn, QM1_DN);
	cr_assert_str_eq(s.info.peer_issuer_dn, INTER_DN);
	cr_assert_gt(s.info.peer_not_after_ms, time_now_ms());
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, mutual_rsa_tls13, .timeout = 60)
{
	mutual_ok("TLS_AES_128_GCM_SHA256", "qm1.pem", "qm1.key", "qm2.pem", "qm2.key", "TLS1.3",
	          "TLS_AES_128_GCM_SHA256");
}

Test(tls, mutual_ecdsa_tls13, .timeout = 60)
{
	mutual_ok("TLS_CHACHA20_POLY1305_SHA256", "qm1-ec.pem", "qm1-ec.key", "qm2-ec.pem",
	          "qm2-ec.key", "TLS1.3", "TLS_CHACHA20_POLY1305_SHA256");
}

Test(tls, mutual_rsa_tls12, .timeout = 60)
{
	mutual_ok("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "qm1.pem", "qm1.key", "qm2.pem",
	          "qm2.key", "TLS1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
}

Test(tls, mutual_ecdsa_tls12, .timeout = 60)
{
	mutual_ok("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "qm1-ec.pem", "qm1-ec.key",
	          "qm2-ec.pem", "qm2-ec.key", "TLS1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
}

Test(tls, any_or_higher_picks_tls13, .timeout = 60)
{
	mutual_ok("ANY_TLS12_OR_HIGHER", "qm1.pem", "qm1.key", "qm2.pem", "qm2.key", "TLS1.3", NULL);
}

/* Leaf sent alone, intermediate among the trusted entries. */
Test(tls, chain_intermediate_trusted, .timeout = 60)
{
	static const struct ent e1[] = { { "qm1", "qm1.pem", "qm1.key", NULL }, { NULL } };
	static const struct ent e2[] = { { "qm2", "qm2.pem", "qm2.key", NULL }, { NULL } };
	struct tls_ctx *c1 = mkctx(e1, TRUST_BUNDLE, NULL), *c2 = mkctx(e2, TRUST_BUNDLE, NULL);
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* Leaf sent without its intermediate, only the root trusted: the chain
 * cannot be built, so the issuer is unknown. */
Test(tls, chain_missing_intermediate_untrusted, .timeout = 60)
{
	static const struct ent e1[] = { { "qm1", "qm1.pem", "qm1.key", NULL }, { NULL } };
	struct tls_ctx *c1 = mkctx(e1, TRUST_ROOT, NULL), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_lt(tls_recv(cc, (char[8]){ 0 }, 8, 5000, &err), 0);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, CHD_TLS_UNTRUSTED, "%s", s.err.text);
	cr_assert(strstr(s.err.text, INTER_DN) != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- SSLCAUTH and missing certificates ---- */

Test(tls, no_cert_optional_accepted, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp, *sp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	struct srv s;

	srv_init(&s, c2);
	sp = srv_chan(&s, "C", "ANY_TLS13", "qm2");
	sp->sslcauth = SSLCAUTH_OPTIONAL;
	params(&cp, "C", "ANY_TLS13", "nosuchlabel");
	cr_assert_not(tls_ctx_has_label(c1, "nosuchlabel"));
	cr_assert(tls_ctx_has_label(c1, "qm1"));
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_conn_info(cc, &ci);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_str_eq(ci.local_label, "");
	cr_assert_str_eq(ci.peer_dn, QM2_DN);
	cr_assert_str_eq(s.info.peer_dn, "");
	cr_assert_eq(s.info.peer_not_after_ms, 0);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, no_cert_optional_accepted_tls12, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp, *sp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	sp = srv_chan(&s, "C", "ANY_TLS12", "qm2");
	sp->sslcauth = SSLCAUTH_OPTIONAL;
	params(&cp, "C", "ANY_TLS12", "nosuchlabel");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_str_eq(s.info.peer_dn, "");
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, no_cert_required_tls13, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;
	char b[8];

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "nosuchlabel");
	/* TLS 1.3: the initiator's handshake completes before the responder
	 * has looked at the (missing) certificate. */
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(tls_recv(cc, b, sizeof b, 5000, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s %s", code_str(err.code), err.text);
	cr_assert(strstr(err.text, "Certificate is required") != NULL, "%s", err.text);
	cr_assert(strstr(err.text, "(116)") != NULL, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, CHD_TLS_NO_CERT, "%s", s.err.text);
	cr_assert(strstr(s.err.text, "SSLCAUTH(REQUIRED)") != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, no_cert_required_tls12, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS12", "qm2");
	params(&cp, "C", "ANY_TLS12", "nosuchlabel");
	/* TLS 1.2: the refusal arrives inside the initiator's handshake. */
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), -1);
	cr_assert_null(cc);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s %s", code_str(err.code), err.text);
	cr_assert(strstr(err.text, "Handshake failed") != NULL, "%s", err.text);
	srv_join(&s);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, CHD_TLS_NO_CERT, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, sslpeer_without_cert_refused, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp, *sp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;
	char b[8];

	srv_init(&s, c2);
	sp = srv_chan(&s, "C", "ANY_TLS13", "qm2");
	sp->sslcauth = SSLCAUTH_OPTIONAL;
	str_copy(sp->sslpeer, "CN=QM1", sizeof sp->sslpeer);
	params(&cp, "C", "ANY_TLS13", "nosuchlabel");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(tls_recv(cc, b, sizeof b, 5000, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.err.code, CHD_TLS_NO_CERT, "%s", s.err.text);
	cr_assert(strstr(s.err.text, "SSLPEER 'CN=QM1'") != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- certificate refusals at the responder ---- */

/* Initiator presents cert/key (chain inter.pem unless other) to a
 * responder trusting trust (+crl); expects code at the responder with
 * needle in its text, and TLS_PEER_REFUSED naming alert at the initiator. */
static void refused_cert(const char *cert, const char *key, const char *chain,
                         const char *const *trust, const char *crl, const char *spec,
                         enum chd_code_id code, const char *needle, const char *alert)
{
	struct ent e1[2] = { { "qm1", cert, key, chain }, { NULL, NULL, NULL, NULL } };
	static const struct ent e2[] = { { "qm2", "qm2.pem", "qm2.key", "inter.pem" }, { NULL } };
	struct tls_ctx *c1 = mkctx(e1, TRUST_ROOT, NULL), *c2 = mkctx(e2, trust, crl);
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;
	int rc;

	srv_init(&s, c2);
	srv_chan(&s, "C", spec, "qm2");
	params(&cp, "C", spec, "qm1");
	rc = run_pair(&s, c1, &cp, &cc, &err);
	if (strcmp(spec, "ANY_TLS13") == 0) {
		char b[8];
		cr_assert_eq(rc, 0, "%s", err.text);
		cr_assert_eq(tls_recv(cc, b, sizeof b, 5000, &err), -1);
		tls_close(cc);
	} else {
		cr_assert_eq(rc, -1);
	}
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s %s", code_str(err.code), err.text);
	cr_assert(strstr(err.text, alert) != NULL, "want '%s' in: %s", alert, err.text);
	srv_join(&s);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, code, "%s %s", code_str(s.err.code), s.err.text);
	cr_assert(strstr(s.err.text, needle) != NULL, "want '%s' in: %s", needle, s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, untrusted_issuer, .timeout = 60)
{
	refused_cert("other.pem", "other.key", NULL, TRUST_ROOT, NULL, "ANY_TLS13",
	             CHD_TLS_UNTRUSTED, "issuer 'CN=Other Root,O=Acme,C=GB'", "CA is unknown");
}

Test(tls, untrusted_issuer_tls12, .timeout = 60)
{
	refused_cert("other.pem", "other.key", NULL, TRUST_ROOT, NULL, "ANY_TLS12",
	             CHD_TLS_UNTRUSTED, QM2_DN, "CA is unknown");
}

Test(tls, expired, .timeout = 60)
{
	refused_cert("expired.pem", "expired.key", "inter.pem", TRUST_ROOT, NULL, "ANY_TLS13",
	             CHD_TLS_EXPIRED, "'CN=EXPIRED,OU=Payments,O=Acme,C=GB' expired on 2021-01-01",
	             "Certificate is expired");
}

Test(tls, not_yet_valid, .timeout = 60)
{
	refused_cert("future.pem", "future.key", "inter.pem", TRUST_ROOT, NULL, "ANY_TLS12",
	             CHD_TLS_EXPIRED, "not valid before 2090-01-01", "Certificate is expired");
}

Test(tls, revoked, .timeout = 60)
{
	refused_cert("revoked.pem", "revoked.key", "inter.pem", TRUST_BUNDLE, "inter.crl",
	             "ANY_TLS13", CHD_TLS_REVOKED, "CN=REVOKED", "Certificate was revoked");
}

/* The same revoked certificate passes without the CRL: proves the CRL
 * is what refuses it. */
Test(tls, revoked_passes_without_crl, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_one("qm1", "revoked.pem", "revoked.key", "inter.pem");
	struct tls_ctx *c2 = mkctx((const struct ent[]){ { "qm2", "qm2.pem", "qm2.key", "inter.pem" },
	                                                 { NULL, NULL, NULL, NULL } },
	                           TRUST_BUNDLE, NULL);
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- SSLPEER ---- */

static void sslpeer_case(const char *filter, bool server_side, bool want_ok, const char *needle)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp, *sp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;
	int rc;

	srv_init(&s, c2);
	sp = srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	if (server_side)
		str_copy(sp->sslpeer, filter, sizeof sp->sslpeer);
	else
		str_copy(cp.sslpeer, filter, sizeof cp.sslpeer);
	rc = run_pair(&s, c1, &cp, &cc, &err);
	if (want_ok) {
		cr_assert_eq(rc, 0, "%s", err.text);
		cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
		tls_close(cc);
		srv_join(&s);
		cr_assert_eq(s.rc, 0, "%s", s.err.text);
	} else if (server_side) {
		char b[8];
		cr_assert_eq(rc, 0, "%s", err.text);
		cr_assert_eq(tls_recv(cc, b, sizeof b, 5000, &err), -1);
		show("initiator", &err);
		cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
		cr_assert(strstr(err.text, "Access was denied") != NULL ||
		          strstr(err.text, "ccess denied") != NULL, "%s", err.text);
		tls_close(cc);
		srv_join(&s);
		cr_assert_eq(s.err.code, CHD_TLS_SSLPEER, "%s", s.err.text);
		cr_assert(strstr(s.err.text, needle) != NULL, "want '%s' in: %s", needle, s.err.text);
	} else {
		cr_assert_eq(rc, -1);
		show("initiator", &err);
		cr_assert_eq(err.code, CHD_TLS_SSLPEER, "%s %s", code_str(err.code), err.text);
		cr_assert(strstr(err.text, needle) != NULL, "want '%s' in: %s", needle, err.text);
		srv_join(&s);
		cr_assert_eq(s.rc, -1);
		cr_assert_eq(s.err.code, CHD_TLS_PEER_REFUSED, "%s", s.err.text);
	}
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, sslpeer_responder_match, .timeout = 60)
{
	sslpeer_case("CN=QM1, OU=Payments, O=Acme, C=GB", true, true, NULL);
}

Test(tls, sslpeer_responder_mismatch, .timeout = 60)
{
	sslpeer_case("CN=QM9, O=Acme", true, false,
	             "peer DN '" QM1_DN "' does not match SSLPEER 'CN=QM9, O=Acme'");
}

Test(tls, sslpeer_initiator_match, .timeout = 60)
{
	sslpeer_case("cn=qm2;o=ACME", false, true, NULL);
}

Test(tls, sslpeer_initiator_mismatch, .timeout = 60)
{
	sslpeer_case("CN=QM2, OU=Sales", false, false, "peer DN '" QM2_DN "'");
}

Test(tls, verify_hostname, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	str_copy(cp.verify_hostname, "127.0.0.1", sizeof cp.verify_hostname);
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	str_copy(cp.verify_hostname, "mq.example.com", sizeof cp.verify_hostname);
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_HOSTNAME, "%s", err.text);
	cr_assert(strstr(err.text, "mq.example.com") != NULL, "%s", err.text);
	srv_join(&s);
	cr_assert_eq(s.err.code, CHD_TLS_PEER_REFUSED, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* The initiator refuses an untrusted responder. */
Test(tls, initiator_refuses_untrusted_responder, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1();
	struct tls_ctx *c2 = ctx_one("qm2", "other.pem", "other.key", NULL);
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS12", "qm2");
	params(&cp, "C", "ANY_TLS12", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_UNTRUSTED, "%s", err.text);
	cr_assert(strstr(err.text, "responder certificate '" QM2_DN "'") != NULL, "%s", err.text);
	srv_join(&s);
	cr_assert_eq(s.err.code, CHD_TLS_PEER_REFUSED, "%s", s.err.text);
	cr_assert(strstr(s.err.text, "CA is unknown") != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- CipherSpecs, labels, SNI ---- */

static void cipher_mismatch(const char *ini, const char *rsp, const char *want_version)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	char text[600], want[200];
	ssize_t n;

	struct srv s;
	srv_init(&s, c2);
	s.action = SA_SEND_REFUSAL;
	srv_chan(&s, "C", rsp, "qm2");
	params(&cp, "C", ini, "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	tls_conn_info(cc, &ci);
	cr_assert_str_eq(ci.version, want_version);
	/* What the channel layer does: the responder sends its refusal. */
	memset(text, 0, sizeof text);
	n = tls_recv(cc, text, sizeof text - 1, 5000, &err);
	cr_assert_gt(n, 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert(s.has_refusal);
	cr_assert_eq(s.refusal.code, CHD_TLS_CIPHER);
	snprintf(want, sizeof want, "CipherSpec mismatch: initiator %s, responder %s", ini, rsp);
	cr_assert(strstr(s.refusal.text, want) != NULL, "%s", s.refusal.text);
	cr_assert(strstr(text, want) != NULL, "initiator got: %s", text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, cipher_mismatch_tls13_suites, .timeout = 60)
{
	cipher_mismatch("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS1.3");
}

Test(tls, cipher_mismatch_versions, .timeout = 60)
{
	cipher_mismatch("ANY_TLS12", "ANY_TLS13", "TLS1.2");
}

Test(tls, cipher_mismatch_reverse_versions, .timeout = 60)
{
	cipher_mismatch("ANY_TLS13", "ANY_TLS12", "TLS1.3");
}

/* A compatible pair is no refusal: the _OR_HIGHER form follows the other. */
Test(tls, cipher_compatible_alias, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS12_OR_HIGHER", "qm2");
	params(&cp, "C", "ECDHE_RSA_AES_128_GCM_SHA256", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_conn_info(cc, &ci);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_not(s.has_refusal);
	cr_assert_str_eq(ci.version, "TLS1.2");
	cr_assert_str_eq(ci.cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, responder_label_missing, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2.renamed");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
	cr_assert(strstr(err.text, "certificate label") != NULL, "%s", err.text);
	srv_join(&s);
	cr_assert_eq(s.err.code, CHD_TLS_LABEL, "%s", s.err.text);
	cr_assert(strstr(s.err.text, "'qm2.renamed'") != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, unknown_channel_in_sni, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "QM1.TO.QM2", "ANY_TLS13", "qm2");
	params(&cp, "qm1.to.qm2", "ANY_TLS13", "qm1"); /* names are case-sensitive */
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
	cr_assert(strstr(err.text, "does not define this channel") != NULL, "%s", err.text);
	srv_join(&s);
	cr_assert_eq(s.err.code, CHD_TLS_SNI, "%s", s.err.text);
	cr_assert(strstr(s.err.text, "channel qm1.to.qm2") != NULL, "%s", s.err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- a raw GnuTLS client: what chand's initiator never sends ---- */

static int raw_client(int fd, const char *prio, const char *sni)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	struct timeval tv = { 5, 0 };
	int r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	cr_assert_eq(gnutls_certificate_allocate_credentials(&cred), 0);
	cr_assert_eq(gnutls_init(&s, GNUTLS_CLIENT), 0);
	r = gnutls_priority_set_direct(s, prio, NULL);
	cr_assert_eq(r, 0, "priority %s: %s", prio, gnutls_strerror(r));
	if (sni != NULL)
		gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, fd);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return r;
}

static void raw_refused(const char *prio, bool with_sni, enum chd_code_id code)
{
	struct tls_ctx *c2 = ctx_qm2();
	char sni[TLS_SNI_MAX + 1];
	struct srv s;
	int fd, r;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS12_OR_HIGHER", "qm2")->sslcauth = SSLCAUTH_OPTIONAL;
	fd = srv_start(&s);
	cr_assert_eq(tls_sni_encode_spec("C", 12, sni, sizeof sni), 0);
	r = raw_client(fd, prio, with_sni ? sni : NULL);
	srv_join(&s);
	cr_assert_lt(r, 0, "the raw client's handshake succeeded");
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, code, "%s %s", code_str(s.err.code), s.err.text);
	tls_ctx_unref(c2);
}

Test(tls, refuses_tls10_tls11, .timeout = 60)
{
	raw_refused("NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.1", true, CHD_TLS_CIPHER);
}

Test(tls, refuses_cbc_sha1, .timeout = 60)
{
	raw_refused("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:"
	            "-MAC-ALL:+SHA1", true, CHD_TLS_CIPHER);
}

Test(tls, refuses_static_rsa, .timeout = 60)
{
	raw_refused("NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA", true, CHD_TLS_CIPHER);
}

Test(tls, refuses_missing_sni, .timeout = 60)
{
	raw_refused("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", false, CHD_TLS_SNI);
}

/* ---- timeouts and cancellation ---- */

Test(tls, handshake_timeout_silent_initiator, .timeout = 60)
{
	struct tls_ctx *c2 = ctx_qm2();
	struct srv s;
	int fd;

	srv_init(&s, c2);
	s.timeout_ms = 600;
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	fd = srv_start(&s);
	srv_join(&s);
	close(fd);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, CHD_TLS_TIMEOUT, "%s", s.err.text);
	cr_assert_geq(s.elapsed_ms, 550);
	cr_assert_lt(s.elapsed_ms, 2000);
	tls_ctx_unref(c2);
}

Test(tls, handshake_timeout_half_client_hello, .timeout = 60)
{
	/* A record header announcing a 512-byte ClientHello, then only its
	 * first bytes. */
	static const unsigned char half[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01,
	                                      0xfc, 0x03, 0x03, 0x11, 0x22 };
	struct tls_ctx *c2 = ctx_qm2();
	struct srv s;
	int fd;

	srv_init(&s, c2);
	s.timeout_ms = 700;
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	fd = srv_start(&s);
	cr_assert_eq(write(fd, half, sizeof half), (ssize_t)sizeof half);
	srv_join(&s);
	close(fd);
	cr_assert_eq(s.rc, -1);
	cr_assert_eq(s.err.code, CHD_TLS_TIMEOUT, "%s %s", code_str(s.err.code), s.err.text);
	cr_assert_geq(s.elapsed_ms, 650);
	cr_assert_lt(s.elapsed_ms, 2000);
	tls_ctx_unref(c2);
}

Test(tls, handshake_timeout_silent_responder, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	int sv[2];
	int64_t t0;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	params(&cp, "C", "ANY_TLS13", "qm1");
	t0 = time_mono_ms();
	cr_assert_eq(tls_client_open(&cc, sv[0], c1, &cp, 600, -1, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_TIMEOUT, "%s", err.text);
	cr_assert_geq(time_mono_ms() - t0, 550);
	cr_assert_lt(time_mono_ms() - t0, 2000);
	close(sv[1]);
	tls_ctx_unref(c1);
}

struct canceller {
	int fd;
	int delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;
	usleep((useconds_t)k->delay_ms * 1000);
	/* no cr_assert off the test's thread: the recv would not end */
	if (write(k->fd, "x", 1) != 1)
		perror("cancel write");
	return NULL;
}

static void cancel_recv(const char *spec)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct canceller k;
	pthread_t th;
	int pfd[2];
	int64_t t0;
	char b[16];
	struct srv s;

	cr_assert_eq(pipe(pfd), 0);
	srv_init(&s, c2);
	s.action = SA_WAIT_CLOSE;
	srv_chan(&s, "C", spec, "qm2");
	params(&cp, "C", spec, "qm1");
	{
		int fd = srv_start(&s);
		cr_assert_eq(tls_client_open(&cc, fd, c1, &cp, 5000, pfd[0], &err), 0, "%s", err.text);
	}
	/* a plain responder only learns of us from our first byte */
	cr_assert_eq(tls_send_all(cc, "x", 1, 5000, &err), 0, "%s", err.text);
	k.fd = pfd[1];
	k.delay_ms = 300;
	pthread_create(&th, NULL, cancel_later, &k);
	t0 = time_mono_ms();
	cr_assert_eq(tls_recv(cc, b, sizeof b, -1, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_CH_STOP, "%s %s", code_str(err.code), err.text);
	cr_assert_geq(time_mono_ms() - t0, 250);
	cr_assert_lt(time_mono_ms() - t0, 3000);
	pthread_join(th, NULL);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_eq(s.action_rc, 0, "server saw %d: %s", s.action_rc, s.action_err.text);
	close(pfd[0]);
	close(pfd[1]);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, cancel_fd_aborts_recv_tls, .timeout = 60)
{
	cancel_recv("ANY_TLS13");
}

Test(tls, cancel_fd_aborts_recv_plain, .timeout = 60)
{
	cancel_recv("");
}

Test(tls, recv_timeout_is_heartbeat, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;
	char b[4];

	srv_init(&s, c2);
	s.action = SA_WAIT_CLOSE;
	srv_chan(&s, "C", "ANY_TLS12", "qm2");
	params(&cp, "C", "ANY_TLS12", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(tls_recv(cc, b, sizeof b, 300, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_CH_HEARTBEAT, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	/* the responder saw a clean close_notify */
	cr_assert_eq(s.action_rc, 0, "%s", s.action_err.text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* ---- plain TCP and bulk data ---- */

Test(tls, plain_tcp, .timeout = 60)
{
	struct tls_ctx *empty = tls_ctx_empty();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	struct srv s;

	cr_assert_not_null(empty);
	srv_init(&s, empty);
	params(&cp, "PLAIN.CHL", "", "");
	cr_assert_eq(run_pair(&s, empty, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_conn_info(cc, &ci);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_not(ci.encrypted);
	cr_assert_not(s.info.encrypted);
	cr_assert_str_eq(s.channel, "");
	cr_assert_str_eq(s.info.version, "");
	tls_ctx_unref(empty);
}

/* A TLS initiator on a channel the responder defines as plain: the
 * handshake completes and the refusal names both ends. */
Test(tls, tls_initiator_plain_responder, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	char text[600];
	struct srv s;

	srv_init(&s, c2);
	s.action = SA_SEND_REFUSAL;
	srv_chan(&s, "C", "", "qm2");
	params(&cp, "C", "TLS_AES_256_GCM_SHA384", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	memset(text, 0, sizeof text);
	cr_assert_gt(tls_recv(cc, text, sizeof text - 1, 5000, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	cr_assert(s.has_refusal);
	cr_assert_eq(s.refusal.code, CHD_TLS_CIPHER);
	cr_assert(strstr(text, "initiator TLS_AES_256_GCM_SHA384, responder none (plain TCP)") !=
	          NULL, "%s", text);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* A plain initiator on a TLS channel: the responder sees plain TCP, and
 * tls_plain_check gives the text to send back. */
Test(tls, plain_initiator_tls_responder, .timeout = 60)
{
	struct tls_params rp;
	struct tls_error err;

	params(&rp, "C", "ANY_TLS13", "qm2");
	cr_assert_eq(tls_plain_check(&rp, &err), -1);
	cr_assert_eq(err.code, CHD_TLS_CIPHER);
	cr_assert_str_eq(err.text,
	                 "CipherSpec mismatch: initiator none (plain TCP), responder ANY_TLS13 (channel C)");
	params(&rp, "C", "", "qm2");
	cr_assert_eq(tls_plain_check(&rp, &err), 0);
}

static void bulk(const char *spec, size_t n)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	uint8_t *buf = malloc(n);
	struct srv s;
	size_t i;

	cr_assert_not_null(buf);
	srv_init(&s, c2);
	s.action = SA_BULK;
	s.bulk = n;
	srv_chan(&s, "BULK", spec, "qm2");
	params(&cp, "BULK", spec, "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	for (i = 0; i < n; i++)
		buf[i] = pattern(i, 1);
	cr_assert_eq(tls_send_all(cc, buf, n, 20000, &err), 0, "%s", err.text);
	memset(buf, 0, n);
	cr_assert_eq(tls_recv_all(cc, buf, n, 20000, &err), (ssize_t)n, "%s", err.text);
	for (i = 0; i < n; i++)
		if (buf[i] != pattern(i, 2))
			break;
	cr_assert_eq(i, n, "mismatch at byte %zu", i);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_eq(s.action_rc, 0, "%s", s.action_err.text);
	free(buf);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

/* KeyUpdate in the middle of a transfer: the data still arrives intact
 * and the responder absorbs the update in its reads. */
Test(tls, key_update_mid_transfer, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	const size_t n = 1u << 20, half = n / 2;
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	uint8_t *buf = malloc(n);
	struct srv s;
	size_t i;

	cr_assert_not_null(buf);
	srv_init(&s, c2);
	s.action = SA_BULK;
	s.bulk = n;
	srv_chan(&s, "KU", "ANY_TLS13", "qm2");
	params(&cp, "KU", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	for (i = 0; i < n; i++)
		buf[i] = pattern(i, 1);
	cr_assert_eq(tls_send_all(cc, buf, half, 20000, &err), 0, "%s", err.text);
	cr_assert_eq(tls_key_update(cc, 5000, &err), 0, "%s", err.text);
	cr_assert_eq(tls_key_update(cc, 5000, &err), 0, "%s", err.text);
	cr_assert_eq(tls_conn_key_updates(cc), 2);
	cr_assert_eq(tls_send_all(cc, buf + half, n - half, 20000, &err), 0, "%s", err.text);
	cr_assert_eq(tls_recv_all(cc, buf, n, 20000, &err), (ssize_t)n, "%s", err.text);
	for (i = 0; i < n && buf[i] == pattern(i, 2); i++)
		;
	cr_assert_eq(i, n, "mismatch at byte %zu", i);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.action_rc, 0, "%s", s.action_err.text);
	free(buf);
	tls_ctx_unref(c1);
	tls_ctx_unref(c2);
}

Test(tls, bulk_tls13, .timeout = 60)
{
	bulk("ANY_TLS13", 4u << 20);
}

Test(tls, bulk_tls12, .timeout = 60)
{
	bulk("ANY_TLS12", 4u << 20);
}

Test(tls, bulk_plain, .timeout = 60)
{
	bulk("", 4u << 20);
}

/* ---- contexts ---- */

Test(tls, ctx_key_mismatch_refused, .timeout = 60)
{
	struct ks_material *m = tp_material_new();
	struct tls_ctx *ctx = NULL;
	struct tls_error err;

	cr_assert_eq(tp_add_personal(m, pki(), "qm1", "qm1.pem", "qm2.key", NULL), 0);
	cr_assert_eq(tls_ctx_from_material(&ctx, m, &err), -1);
	cr_assert_null(ctx);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_KEYSTORE);
	cr_assert(strstr(err.text, "'qm1'") != NULL, "%s", err.text);
	tp_material_free(m);
}

/* A CRL whose issuer is not trusted is refused rather than used unchecked. */
Test(tls, ctx_crl_needs_trusted_issuer, .timeout = 60)
{
	struct ks_material *m = tp_material_new();
	struct tls_ctx *ctx = NULL;
	struct tls_error err;

	cr_assert_eq(tp_add_trusted(m, pki(), "other-root.pem"), 0);
	cr_assert_eq(tp_add_crl(m, pki(), "inter.crl"), 0);
	cr_assert_eq(tls_ctx_from_material(&ctx, m, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_KEYSTORE);
	cr_assert(strstr(err.text, INTER_DN) != NULL, "%s", err.text);
	tp_material_free(m);
}

/* `refresh security`: the context can be released while a connection
 * opened with it still runs (the connection holds its own reference). */
Test(tls, ctx_outlives_refresh, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1(), *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct srv s;

	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, c1, &cp, &cc, &err), 0, "%s", err.text);
	tls_ctx_unref(c1);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_close(cc);
	srv_join(&s);
	tls_ctx_unref(c2);
}

/* ---- renegotiation: a raw GnuTLS TLS 1.2 responder asks for it ---- */

struct raw_srv {
	int fd;
	int rc;
};

static void *raw_srv_main(void *arg)
{
	struct raw_srv *r = arg;
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	char path[1024], path2[1024];
	struct timeval tv = { 5, 0 };
	int rc;

	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	gnutls_certificate_allocate_credentials(&cred);
	snprintf(path, sizeof path, "%s/qm2-chain.pem", pki());
	snprintf(path2, sizeof path2, "%s/qm2.key", pki());
	r->rc = gnutls_certificate_set_x509_key_file(cred, path, path2, GNUTLS_X509_FMT_PEM);
	if (r->rc < 0)
		return NULL;
	gnutls_init(&s, GNUTLS_SERVER);
	gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, r->fd);
	do {
		rc = gnutls_handshake(s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	r->rc = rc;
	if (rc == 0) {
		char b[8];
		r->rc = gnutls_rehandshake(s);
		rc = (int)gnutls_record_recv(s, b, sizeof b); /* the client's answer */
		(void)rc;
	}
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(r->fd);
	return NULL;
}

Test(tls, renegotiation_refused, .timeout = 60)
{
	struct tls_ctx *c1 = ctx_qm1();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct raw_srv r;
	pthread_t th;
	int sv[2];
	char b[8];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.fd = sv[1];
	r.rc = 99;
	pthread_create(&th, NULL, raw_srv_main, &r);
	params(&cp, "C", "ANY_TLS12", "qm1");
	cr_assert_eq(tls_client_open(&cc, sv[0], c1, &cp, 5000, -1, &err), 0, "%s", err.text);
	cr_assert_eq(tls_recv(cc, b, sizeof b, 5000, &err), -1);
	show("initiator", &err);
	cr_assert_eq(err.code, CHD_TLS_HANDSHAKE, "%s %s", code_str(err.code), err.text);
	cr_assert(strstr(err.text, "renegotiation") != NULL, "%s", err.text);
	tls_close(cc);
	pthread_join(th, NULL);
	cr_assert_eq(r.rc, 0, "raw server: %s", gnutls_strerror(r.rc));
	tls_ctx_unref(c1);
}

/* ---- contexts from a real keystore file (tls_ctx_load) ---- */

static int ks(const char *a0, ...)
{
	char *argv[24];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"keystore";
	argv[argc++] = (char *)a0;
	va_start(ap, a0);
	for (char *a; argc < 23 && (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	/* keep the report readable: chanctl's chatter goes nowhere, errors stay */
	{
		int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY), rc;
		fflush(stdout);
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		rc = ks_cli_main(argc, argv, NULL, false);
		fflush(stdout);
		if (saved >= 0) {
			dup2(saved, STDOUT_FILENO);
			close(saved);
		}
		return rc;
	}
}

static char *pkipath(const char *file)
{
	static char bufs[8][1024];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", pki(), file);
	return b;
}

/* A keystore as an operator builds it with chanctl keystore, then
 * loaded by the agent's path: keystore file + stash. */
static char *make_keystore(char *ksfile, size_t len)
{
	char *dir = strdup(pkipath("ks-XXXXXX"));
	char *pw = pkipath("pw.txt");

	cr_assert_not_null(mkdtemp(dir));
	snprintf(ksfile, len, "%s/key.db", dir);
	cr_assert_eq(ks("create", "-k", ksfile, "--password-file", pw, "--stash", NULL), 0);
	cr_assert_eq(ks("import", "-k", ksfile, "--label", "qm1", "--cert", pkipath("qm1.pem"),
	                "--key", pkipath("qm1.key"), "--chain", pkipath("inter.pem"), NULL), 0);
	cr_assert_eq(ks("import", "-k", ksfile, "--label", "rev", "--cert", pkipath("revoked.pem"),
	                "--key", pkipath("revoked.key"), "--chain", pkipath("inter.pem"), NULL), 0);
	cr_assert_eq(ks("trust", "-k", ksfile, "--label", "ca", "--cert", pkipath("ca-bundle.pem"),
	                NULL), 0);
	cr_assert_eq(ks("crl", "add", "-k", ksfile, "--label", "inter-crl", "--crl",
	                pkipath("inter.crl"), NULL), 0);
	return dir;
}

Test(tls_ks, load_keystore_and_handshake, .timeout = 60)
{
	struct tls_ctx *kctx = NULL, *c2 = ctx_qm2();
	struct tls_params cp;
	struct tls_conn *cc = NULL;
	struct tls_error err;
	struct tls_info ci;
	char ksfile[1100], stash[1100];
	char *dir = make_keystore(ksfile, sizeof ksfile);
	struct srv s;

	snprintf(stash, sizeof stash, "%s/key.sth", dir);
	cr_assert_eq(tls_ctx_load(&kctx, ksfile, stash, &err), 0, "%s", err.text);
	cr_assert(tls_ctx_has_label(kctx, "qm1"));
	cr_assert(tls_ctx_has_label(kctx, "rev"));
	cr_assert_eq(tls_ctx_label_count(kctx), 2);

	/* the keystore's qm1 as initiator */
	srv_init(&s, c2);
	srv_chan(&s, "C", "ANY_TLS13", "qm2");
	params(&cp, "C", "ANY_TLS13", "qm1");
	cr_assert_eq(run_pair(&s, kctx, &cp, &cc, &err), 0, "%s", err.text);
	cr_assert_eq(echo(cc, &err), 0, "%s", err.text);
	tls_conn_info(cc, &ci);
	tls_close(cc);
	srv_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err.text);
	cr_assert_str_eq(ci.local_label, "qm1");
	cr_assert_str_eq(s.info.peer_dn, QM1_DN);

	/* the keystore as responder: its CRL refuses the revoked initiator */
	{
		struct tls_ctx *rc = ctx_one("rev", "revoked.pem", "revoked.key", "inter.pem");
		srv_init(&s, kctx);
		srv_chan(&s, "C", "ANY_TLS12", "qm1");
		params(&cp, "C", "ANY_TLS12", "rev");
		cr_assert_eq(run_pair(&s, rc, &cp, &cc, &err), -1);
		show("initiator", &err);
		cr_assert_eq(err.code, CHD_TLS_PEER_REFUSED, "%s", err.text);
		srv_join(&s);
		cr_assert_eq(s.err.code, CHD_TLS_REVOKED, "%s", s.err.text);
		tls_ctx_unref(rc);
	}
	tls_ctx_unref(kctx);
	tls_ctx_unref(c2);
	tp_rmtree(dir);
	free(dir);
}

Test(tls_ks, load_failures_keep_nothing, .timeout = 60)
{
	struct tls_ctx *kctx = (struct tls_ctx *)&kctx; /* must be reset to NULL */
	struct tls_error err;
	char ksfile[1100], stash[1100], missing[1100];
	char *dir = make_keystore(ksfile, sizeof ksfile);
	FILE *f;

	snprintf(missing, sizeof missing, "%s/nope.db", dir);
	cr_assert_eq(tls_ctx_load(&kctx, missing, NULL, &err), -1);
	show("load", &err);
	cr_assert_null(kctx);
	cr_assert_eq(err.code, CHD_TLS_KEYSTORE);
	cr_assert(strstr(err.text, missing) != NULL, "%s", err.text);

	/* the stash of another keystore: the wrong password */
	{
		char pw2[1100], ks2[1100];
		snprintf(pw2, sizeof pw2, "%s/pw2.txt", dir);
		snprintf(ks2, sizeof ks2, "%s/other.db", dir);
		f = fopen(pw2, "w");
		cr_assert_not_null(f);
		fputs("another-password\n", f);
		fclose(f);
		cr_assert_eq(chmod(pw2, 0600), 0);
		cr_assert_eq(ks("create", "-k", ks2, "--password-file", pw2, "--stash", NULL), 0);
		snprintf(stash, sizeof stash, "%s/other.sth", dir);
	}
	cr_assert_eq(tls_ctx_load(&kctx, ksfile, stash, &err), -1);
	show("load", &err);
	cr_assert_null(kctx);
	cr_assert_eq(err.code, CHD_TLS_KEYSTORE);
	cr_assert(strstr(err.text, "CHD3003") != NULL, "%s", err.text);
	tp_rmtree(dir);
	free(dir);
}

/* ---- one PKI for the whole run ---- */

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (getenv("CHAND_TEST_PKI") == NULL) {
		const char *src = getenv("TEST_SRCDIR");
		char *d = tp_pki_make(src != NULL && src[0] != '\0' ? src : TEST_SRCDIR);
		if (d != NULL) {
			setenv("CHAND_TEST_PKI", d, 1);
			setenv("CHAND_TEST_PKI_OWNED", "1", 1);
			free(d);
		}
	}
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	if (getenv("CHAND_TEST_PKI_OWNED") != NULL)
		tp_rmtree(getenv("CHAND_TEST_PKI"));
}
