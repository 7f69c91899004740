/* Non-blocking TLS server sessions for event loops (telemetry channels):
 * the channel is known before the handshake (found by the listening
 * port, not by SNI), so its certificate, CipherSpec and client
 * certificate policy are set up front.  Every call returns at once; the
 * caller waits for the direction tls_nb_want() names.  Verification
 * (trust, dates, CRLs, SSLCAUTH, SSLPEER) is the same callback message
 * channels use (verify.c). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/dnfilter.h"
#include "chand/util.h"
#include "tls_int.h"

int tls_nb_server_new(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                      const struct tls_params *p, struct tls_error *err)
{
	const struct cipherspec *cs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	struct tls_conn *c;
	int r;

	*out = NULL;
	if (ctx == NULL) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "a TLS client connected but no keystore is loaded");
		return -1;
	}
	if ((cs = cs_lookup(p->sslciph)) == NULL) {
		tls_err_set(err, CHD_TLS_CIPHER, "SSLCIPH '%s' of channel %s is not a known CipherSpec",
		            p->sslciph, p->channel);
		return -1;
	}
	if ((cred = tls_ctx_cred(ctx, p->label)) == NULL) {
		tls_err_set(err, CHD_TLS_LABEL, "certificate label '%s' of channel %s is not in the "
		            "keystore", p->label, p->channel);
		return -1;
	}
	if (tls_prio_get(cs, true, &prio, err) != 0)
		return -1;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		tls_err_set(err, CHD_SYS_RESOURCE, "out of memory");
		return -1;
	}
	c->fd = fd;
	c->cancel_fd = -1;
	c->server = true;
	c->encrypted = true;
	c->fail_alert = -1;
	c->ctx = ctx;
	tls_ctx_ref(ctx);
	c->p = *p;
	c->have_params = true;
	c->own_spec = cs;
	str_copy(c->channel, p->channel, sizeof c->channel);
	str_copy(c->local_label, p->label, sizeof c->local_label);
	r = gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
	if (r < 0) {
		c->s = NULL;
		tls_err_set(err, CHD_TLS_HANDSHAKE, "gnutls_init: %s", gnutls_strerror_name(r));
		goto fail;
	}
	gnutls_session_set_ptr(c->s, c);
	gnutls_session_set_verify_function(c->s, tls_verify_cb);
	gnutls_transport_set_int(c->s, fd);
	gnutls_handshake_set_timeout(c->s, GNUTLS_INDEFINITE_TIMEOUT);
	if ((r = gnutls_priority_set(c->s, prio)) < 0 ||
	    (r = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cred)) < 0) {
		tls_err_set(err, CHD_TLS_HANDSHAKE, "cannot set up the TLS session: %s",
		            gnutls_strerror_name(r));
		goto fail;
	}
	/* NEVER: no CertificateRequest at all (mosquitto's require_certificate
	 * false). Otherwise ask, without a CA list (see session.c). */
	if (p->sslcauth != SSLCAUTH_NEVER) {
		gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUEST);
		gnutls_certificate_send_x509_rdn_sequence(c->s, 1);
	}
	*out = c;
	return 0;
fail:
	c->fd = -1;   /* the caller still owns fd */
	tls_conn_free(c);
	return -1;
}

int tls_nb_handshake(struct tls_conn *c, struct tls_error *err)
{
	for (;;) {
		int r = gnutls_handshake(c->s);

		if (r == 0) {
			c->established = true;
			tls_fill_info(c);
			return TLS_NB_DONE;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return TLS_NB_AGAIN;
		if (!gnutls_error_is_fatal(r) && !c->has_fail)
			continue;   /* a warning alert */
		tls_handshake_failed(c, r, err);
		c->broken = true;
		return TLS_NB_ERROR;
	}
}

int tls_nb_want_write(const struct tls_conn *c)
{
	return gnutls_record_get_direction(c->s) == 1;
}

ssize_t tls_nb_recv(struct tls_conn *c, void *buf, size_t len, struct tls_error *err)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(c->s, buf, len);

		if (n >= 0)
			return n;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return TLS_NB_AGAIN;
		if (n == GNUTLS_E_REHANDSHAKE) {
			/* no renegotiation (doc/TLS.md) */
			tls_err_set(err, CHD_TLS_HANDSHAKE, "the client asked for a renegotiation; refused");
			c->broken = true;
			return -1;
		}
		if (!gnutls_error_is_fatal((int)n))
			continue;   /* e.g. a TLS 1.3 KeyUpdate or a warning alert */
		if (n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR)
			tls_err_set(err, CHD_CH_CLOSED, "connection closed without close_notify");
		else
			tls_err_set(err, CHD_CH_CLOSED, "TLS record error: %s",
			            gnutls_strerror_name((int)n));
		c->broken = true;
		return -1;
	}
}

ssize_t tls_nb_send(struct tls_conn *c, const void *buf, size_t len, struct tls_error *err)
{
	for (;;) {
		ssize_t n = gnutls_record_send(c->s, buf, len);

		if (n >= 0)
			return n;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return TLS_NB_AGAIN;
		tls_err_set(err, CHD_CH_CLOSED, "cannot send: %s", gnutls_strerror_name((int)n));
		c->broken = true;
		return -1;
	}
}

size_t tls_nb_pending(const struct tls_conn *c)
{
	return gnutls_record_check_pending(c->s);
}

/* One try at close_notify (a full socket buffer just skips it), then
 * frees; the socket stays open and is the caller's to close. */
void tls_nb_free(struct tls_conn *c, bool bye)
{
	if (c == NULL)
		return;
	if (bye && c->established && !c->broken && c->s != NULL)
		(void)gnutls_bye(c->s, GNUTLS_SHUT_WR);
	c->fd = -1;
	c->linger = false;
	tls_conn_free(c);
}

int tls_conn_peer_cn(const struct tls_conn *c, char *buf, size_t len)
{
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	unsigned n = 0;
	size_t sz = len;
	int r = -1;

	buf[0] = '\0';
	if (c->s == NULL || (certs = gnutls_certificate_get_peers(c->s, &n)) == NULL || n == 0)
		return -1;
	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &sz) >= 0)
		r = 0;
	gnutls_x509_crt_deinit(crt);
	if (r != 0)
		buf[0] = '\0';
	return r;
}

/* refresh security: the peer's chain as it sent it in the handshake,
 * kept by the connection's owner, verified again against the trust list
 * and CRLs of a reloaded context -- without touching the session, which
 * another thread is using. */
struct tls_peer_chain {
	bool peer_is_client;
	unsigned n;
	gnutls_datum_t certs[16];
};

struct tls_peer_chain *tls_peer_chain_copy(const struct tls_conn *c)
{
	const gnutls_datum_t *certs;
	struct tls_peer_chain *pc;
	unsigned n = 0;

	if (c == NULL || !c->encrypted || c->s == NULL)
		return NULL;
	certs = gnutls_certificate_get_peers(c->s, &n);
	if (certs == NULL || n == 0)
		return NULL;
	if ((pc = calloc(1, sizeof *pc)) == NULL)
		return NULL;
	pc->peer_is_client = c->server;
	for (unsigned i = 0; i < n && i < sizeof pc->certs / sizeof pc->certs[0]; i++) {
		if ((pc->certs[i].data = malloc(certs[i].size)) == NULL)
			break;
		memcpy(pc->certs[i].data, certs[i].data, certs[i].size);
		pc->certs[i].size = certs[i].size;
		pc->n++;
	}
	if (pc->n == 0) {
		free(pc);
		return NULL;
	}
	return pc;
}

void tls_peer_chain_free(struct tls_peer_chain *pc)
{
	if (pc == NULL)
		return;
	for (unsigned i = 0; i < pc->n; i++)
		free(pc->certs[i].data);
	free(pc);
}

int tls_peer_chain_recheck(const struct tls_peer_chain *pc, struct tls_ctx *ctx,
                           struct tls_error *err)
{
	gnutls_certificate_credentials_t cred = ctx != NULL ? tls_ctx_anon_cred(ctx) : NULL;
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t crts[16];
	gnutls_typed_vdata_st data;
	unsigned got = 0, status = 0;
	char dn[512];
	int r;

	if (pc == NULL)
		return 0;   /* admitted without a certificate: nothing to re-check */
	if (cred == NULL) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "no keystore is loaded to re-check the peer with");
		return -1;
	}
	gnutls_certificate_get_trust_list(cred, &tl);
	for (; got < pc->n; got++) {
		if (gnutls_x509_crt_init(&crts[got]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[got], &pc->certs[got], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[got]);
			break;
		}
	}
	if (got == 0) {
		tls_err_set(err, CHD_TLS_BAD_CERT, "the peer's certificate cannot be parsed");
		return -1;
	}
	memset(&data, 0, sizeof data);
	data.type = GNUTLS_DT_KEY_PURPOSE_OID;
	data.data = (unsigned char *)(pc->peer_is_client ? GNUTLS_KP_TLS_WWW_CLIENT
	                                                 : GNUTLS_KP_TLS_WWW_SERVER);
	r = gnutls_x509_trust_list_verify_crt2(tl, crts, got, &data, 1, 0, &status, NULL);
	dnf_crt_dn(crts[0], dn, sizeof dn);
	for (unsigned i = 0; i < got; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (r < 0) {
		tls_err_set(err, CHD_TLS_BAD_CERT, "cannot verify '%s' again: %s", dn,
		            gnutls_strerror_name(r));
		return -1;
	}
	if (status == 0)
		return 0;
	if (status & GNUTLS_CERT_REVOKED)
		tls_err_set(err, CHD_TLS_REVOKED, "certificate '%s' is now revoked by a loaded CRL", dn);
	else if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		tls_err_set(err, CHD_TLS_UNTRUSTED, "certificate '%s' no longer chains to a trusted "
		            "certificate in the keystore", dn);
	else if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		tls_err_set(err, CHD_TLS_EXPIRED, "certificate '%s' (or its chain) is outside its "
		            "validity dates", dn);
	else
		tls_err_set(err, CHD_TLS_BAD_CERT, "certificate '%s' is no longer acceptable (status "
		            "0x%x)", dn, status);
	return -1;
}

int tls_conn_recheck(const struct tls_conn *c, struct tls_ctx *ctx, struct tls_error *err)
{
	struct tls_peer_chain *pc = tls_peer_chain_copy(c);
	int r = tls_peer_chain_recheck(pc, ctx, err);

	tls_peer_chain_free(pc);
	return r;
}
