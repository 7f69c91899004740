/* Verification of the peer's certificate, at both ends, in one session
 * verify function (gnutls_session_set_verify_function).
 *
 * Why our own function rather than gnutls_session_set_verify_cert(): the
 * responder must accept a missing certificate under SSLCAUTH(OPTIONAL)
 * without SSLPEER (the automatic verifier fails it), SSLPEER must be
 * checked in the same callback (only one session verifier runs), and every
 * refusal must carry its own catalogue code, text and alert: GnuTLS turns
 * any verifier failure into one generic error and sends no alert.
 *
 * Order of checks: certificate present (responder: SSLCAUTH/SSLPEER),
 * chain to a trusted entry with dates, CRLs, key purpose (and the host
 * name on the initiator when --verify-hostname is set), then SSLPEER. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chand/dnfilter.h"
#include "chand/util.h"
#include "tls_int.h"

static const char *vfy_peer_role(const struct tls_conn *c)
{
	return c->server ? "initiator" : "responder";
}

static void vfy_time(time_t t, char *buf, size_t len)
{
	if (t == (time_t)-1) {
		str_copy(buf, "?", len);
		return;
	}
	time_format_ms((int64_t)t * 1000, buf, len);
}

/* Which certificate of the peer's list is outside its dates, for the text
 * of TLS_EXPIRED (GnuTLS only says that one is). */
static void vfy_dates_text(struct tls_conn *c, const gnutls_datum_t *certs, unsigned n,
                           const char *leaf_dn)
{
	time_t now = time(NULL);
	unsigned i;

	for (i = 0; i < n; i++) {
		gnutls_x509_crt_t crt;
		char dn[512], when[40], who[64];
		time_t act, exp;

		if (i == 0)
			snprintf(who, sizeof who, "%s certificate", vfy_peer_role(c));
		else
			snprintf(who, sizeof who, "CA certificate in the %s's chain", vfy_peer_role(c));

		if (gnutls_x509_crt_init(&crt) < 0)
			break;
		if (gnutls_x509_crt_import(crt, &certs[i], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crt);
			break;
		}
		act = gnutls_x509_crt_get_activation_time(crt);
		exp = gnutls_x509_crt_get_expiration_time(crt);
		if (exp != (time_t)-1 && exp < now) {
			dnf_crt_dn(crt, dn, sizeof dn);
			vfy_time(exp, when, sizeof when);
			gnutls_x509_crt_deinit(crt);
			tls_conn_fail(c, CHD_TLS_EXPIRED, GNUTLS_A_CERTIFICATE_EXPIRED,
			              "%s '%s' expired on %s", who, dn, when);
			return;
		}
		if (act != (time_t)-1 && act > now) {
			dnf_crt_dn(crt, dn, sizeof dn);
			vfy_time(act, when, sizeof when);
			gnutls_x509_crt_deinit(crt);
			tls_conn_fail(c, CHD_TLS_EXPIRED, GNUTLS_A_CERTIFICATE_EXPIRED,
			              "%s '%s' is not valid before %s", who, dn, when);
			return;
		}
		gnutls_x509_crt_deinit(crt);
	}
	tls_conn_fail(c, CHD_TLS_EXPIRED, GNUTLS_A_CERTIFICATE_EXPIRED,
	              "a CA certificate in the chain of %s certificate '%s' is expired or not yet "
	              "valid", vfy_peer_role(c), leaf_dn);
}

static void vfy_status_text(unsigned status, char *buf, size_t len)
{
	gnutls_datum_t out = { NULL, 0 };

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0 ||
	    out.data == NULL) {
		snprintf(buf, len, "status 0x%x", status);
		return;
	}
	str_copy(buf, (const char *)out.data, len);
	gnutls_free(out.data);
}

/* Chain, dates, CRLs, key purpose, host name. 0 if good; otherwise the
 * refusal is recorded in c. */
static int vfy_chain(struct tls_conn *c, const gnutls_datum_t *certs, unsigned n,
                     const char *dn, const char *issuer)
{
	gnutls_typed_vdata_st data[2];
	unsigned nd = 0, status = 0;
	char why[300];
	int r;

	memset(data, 0, sizeof data);
	data[nd].type = GNUTLS_DT_KEY_PURPOSE_OID;
	data[nd].data = (unsigned char *)(c->server ? GNUTLS_KP_TLS_WWW_CLIENT
	                                            : GNUTLS_KP_TLS_WWW_SERVER);
	nd++;
	if (!c->server && c->p.verify_hostname[0] != '\0') {
		data[nd].type = GNUTLS_DT_DNS_HOSTNAME;
		data[nd].data = (unsigned char *)c->p.verify_hostname;
		nd++;
	}
	r = gnutls_certificate_verify_peers(c->s, data, nd, &status);
	if (r < 0) {
		tls_conn_fail(c, CHD_TLS_BAD_CERT, GNUTLS_A_BAD_CERTIFICATE,
		              "cannot verify %s certificate '%s': %s", vfy_peer_role(c), dn,
		              gnutls_strerror_name(r));
		return -1;
	}
	if (status == 0)
		return 0;
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
		tls_conn_fail(c, CHD_TLS_UNTRUSTED, GNUTLS_A_UNKNOWN_CA,
		              "%s certificate '%s' (issuer '%s') does not chain to a trusted "
		              "certificate in the keystore", vfy_peer_role(c), dn, issuer);
	} else if (status & GNUTLS_CERT_REVOKED) {
		tls_conn_fail(c, CHD_TLS_REVOKED, GNUTLS_A_CERTIFICATE_REVOKED,
		              "%s certificate '%s' (issuer '%s') is revoked by a loaded CRL",
		              vfy_peer_role(c), dn, issuer);
	} else if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED)) {
		vfy_dates_text(c, certs, n, dn);
	} else if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
		tls_conn_fail(c, CHD_TLS_HOSTNAME, GNUTLS_A_BAD_CERTIFICATE,
		              "responder certificate '%s' is not valid for host '%s': neither its "
		              "SAN (DNS and IP entries) nor, without a SAN, its CN names it "
		              "(--verify-host)", dn, c->p.verify_hostname);
	} else if (status & GNUTLS_CERT_PURPOSE_MISMATCH) {
		tls_conn_fail(c, CHD_TLS_BAD_CERT, GNUTLS_A_UNSUPPORTED_CERTIFICATE,
		              "%s certificate '%s' is not valid for TLS %s authentication "
		              "(extended key usage)", vfy_peer_role(c), dn,
		              c->server ? "client" : "server");
	} else {
		vfy_status_text(status, why, sizeof why);
		tls_conn_fail(c, CHD_TLS_BAD_CERT, GNUTLS_A_BAD_CERTIFICATE,
		              "%s certificate '%s' refused: %s", vfy_peer_role(c), dn, why);
	}
	return -1;
}

static int vfy_sslpeer(struct tls_conn *c, gnutls_x509_crt_t crt, const char *dn)
{
	struct dnf_filter *f = NULL;
	struct dnf_subject subj;
	char why[300];
	size_t pos = 0;
	bool ok;

	if (dnf_parse(c->p.sslpeer, &f, &pos, why, sizeof why) != 0) {
		tls_conn_fail(c, CHD_TLS_SSLPEER, GNUTLS_A_ACCESS_DENIED,
		              "SSLPEER of channel %s is invalid (%s); refusing %s '%s'", c->channel,
		              why, vfy_peer_role(c), dn);
		return -1;
	}
	if (dnf_subject_from_crt(crt, &subj, why, sizeof why) != 0) {
		dnf_free(f);
		tls_conn_fail(c, CHD_TLS_SSLPEER, GNUTLS_A_ACCESS_DENIED,
		              "peer DN '%s' cannot be checked against SSLPEER '%s': %s", dn,
		              c->p.sslpeer, why);
		return -1;
	}
	why[0] = '\0';
	ok = dnf_match(f, &subj, why, sizeof why);
	dnf_subject_free(&subj);
	dnf_free(f);
	if (!ok) {
		tls_conn_fail(c, CHD_TLS_SSLPEER, GNUTLS_A_ACCESS_DENIED,
		              "peer DN '%s' does not match SSLPEER '%s': %s", dn, c->p.sslpeer,
		              why[0] != '\0' ? why : "no match");
		return -1;
	}
	return 0;
}

int tls_verify_cb(gnutls_session_t s)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	char dn[512], issuer[512];
	unsigned n = 0;
	int r;

	if (c == NULL)
		return -1;
	certs = gnutls_certificate_get_peers(s, &n);
	if (certs == NULL || n == 0) {
		bool tls13 = gnutls_protocol_get_version(s) == GNUTLS_TLS1_3;
		int alert = tls13 ? GNUTLS_A_CERTIFICATE_REQUIRED : GNUTLS_A_HANDSHAKE_FAILURE;

		if (!c->server) {
			tls_conn_fail(c, CHD_TLS_BAD_CERT, GNUTLS_A_BAD_CERTIFICATE,
			              "responder sent no certificate");
			return -1;
		}
		if (c->p.sslpeer[0] != '\0') {
			tls_conn_fail(c, CHD_TLS_NO_CERT, alert,
			              "initiator sent no certificate; channel %s has SSLPEER '%s'",
			              c->channel, c->p.sslpeer);
			return -1;
		}
		if (c->p.sslcauth == SSLCAUTH_REQUIRED) {
			tls_conn_fail(c, CHD_TLS_NO_CERT, alert,
			              "initiator sent no certificate; channel %s has SSLCAUTH(REQUIRED)",
			              c->channel);
			return -1;
		}
		return 0;
	}

	r = gnutls_x509_crt_init(&crt);
	if (r >= 0) {
		r = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER);
		if (r < 0)
			gnutls_x509_crt_deinit(crt);
	}
	if (r < 0) {
		tls_conn_fail(c, CHD_TLS_BAD_CERT, GNUTLS_A_BAD_CERTIFICATE,
		              "%s certificate cannot be parsed: %s", vfy_peer_role(c),
		              gnutls_strerror_name(r));
		return -1;
	}
	dnf_crt_dn(crt, dn, sizeof dn);
	dnf_crt_issuer_dn(crt, issuer, sizeof issuer);

	r = vfy_chain(c, certs, n, dn, issuer);
	if (r == 0 && c->p.sslpeer[0] != '\0')
		r = vfy_sslpeer(c, crt, dn);
	gnutls_x509_crt_deinit(crt);
	return r == 0 ? 0 : -1;
}

/* The negotiated suite by its IANA name, as the CipherSpec table names it:
 * "TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
 * (GnuTLS's own names drop the "WITH_"). */
static void info_cipher(gnutls_session_t s, char *buf, size_t len)
{
	const char *name = gnutls_ciphersuite_get(s);
	const struct cs_suite *cs = name != NULL ? cs_suite_lookup(name) : NULL;

	str_copy(buf, cs != NULL ? cs->iana : name != NULL ? name : "?", len);
}

void tls_fill_info(struct tls_conn *c)
{
	struct tls_info *in = &c->info;
	const gnutls_datum_t *certs;
	unsigned n = 0;

	memset(in, 0, sizeof *in);
	in->encrypted = c->encrypted;
	if (!c->encrypted || c->s == NULL)
		return;
	switch (gnutls_protocol_get_version(c->s)) {
	case GNUTLS_TLS1_3:
		str_copy(in->version, "TLS1.3", sizeof in->version);
		break;
	case GNUTLS_TLS1_2:
		str_copy(in->version, "TLS1.2", sizeof in->version);
		break;
	default:
		str_copy(in->version, "?", sizeof in->version);
		break;
	}
	info_cipher(c->s, in->cipher, sizeof in->cipher);
	/* The server always sends its certificate; the client's label decides
	 * whether it sent one (GnuTLS sends ours whenever credentials hold a
	 * key, as the responder never sends a CA list to filter on). */
	if (c->server || gnutls_certificate_get_ours(c->s) != NULL)
		str_copy(in->local_label, c->local_label, sizeof in->local_label);
	certs = gnutls_certificate_get_peers(c->s, &n);
	if (certs != NULL && n > 0) {
		gnutls_x509_crt_t crt;
		if (gnutls_x509_crt_init(&crt) >= 0) {
			if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
				time_t exp = gnutls_x509_crt_get_expiration_time(crt);
				dnf_crt_dn(crt, in->peer_dn, sizeof in->peer_dn);
				dnf_crt_issuer_dn(crt, in->peer_issuer_dn, sizeof in->peer_issuer_dn);
				in->peer_not_after_ms = exp == (time_t)-1 ? 0 : (int64_t)exp * 1000;
			}
			gnutls_x509_crt_deinit(crt);
		}
	}
}

const char *tls_alert_hint(int alert, const struct tls_conn *c)
{
	bool sent_cert = c->local_label[0] != '\0';

	switch (alert) {
	case GNUTLS_A_UNKNOWN_CA:
		return c->server ? "the initiator does not trust our certificate's issuer"
		                 : "the responder does not trust our certificate's issuer";
	case GNUTLS_A_CERTIFICATE_EXPIRED:
		return "the peer finds our certificate (or its chain) expired or not yet valid";
	case GNUTLS_A_CERTIFICATE_REVOKED:
		return "our certificate is revoked by a CRL at the peer";
	case GNUTLS_A_ACCESS_DENIED:
		return "our certificate's DN does not match the peer's SSLPEER";
	case GNUTLS_A_CERTIFICATE_REQUIRED:
		return "the responder requires a certificate and we sent none";
	case GNUTLS_A_HANDSHAKE_FAILURE:
		if (!c->server && !sent_cert)
			return "the responder may require a certificate and we sent none, or the "
			       "CipherSpecs do not match";
		return "no common CipherSpec, or the peer refused for a reason its log gives";
	case GNUTLS_A_UNRECOGNIZED_NAME:
		return "the responder does not define this channel";
	case GNUTLS_A_INTERNAL_ERROR:
		return "the responder cannot use its certificate label for this channel";
	case GNUTLS_A_PROTOCOL_VERSION:
	case GNUTLS_A_INSUFFICIENT_SECURITY:
		return "the CipherSpecs of the two ends do not match";
	case GNUTLS_A_BAD_CERTIFICATE:
	case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
		return "the peer refused our certificate";
	default:
		return "the peer's log names the cause";
	}
}
