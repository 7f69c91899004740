/* Opening a channel connection: the initiator's TLS client handshake and
 * the responder's peek-then-handshake, each bounded by one deadline.
 *
 * The responder learns the channel from SNI in a post-client-hello
 * callback, before it answers the hello, and only then picks the
 * channel's certificate (CERTLABL), CipherSpec and SSLCAUTH.  A CipherSpec
 * mismatch does not fail the handshake: the responder completes it with
 * the initiator's spec (all specs are strong) and leaves a pending
 * refusal, which the channel layer sends as an ERROR frame, so both ends
 * can log both names.  Every other refusal fails the handshake with an
 * alert we send ourselves. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/util.h"
#include "tls_int.h"

#define TLS_CONTENT_HANDSHAKE 0x16
/* The spec the responder uses until SNI names the channel: the union of
 * all specs, so any initiator's hello gets as far as the callback. */
#define TLS_HELLO_SPEC "ANY_TLS12_OR_HIGHER"

static struct tls_conn *sess_new(int fd, struct tls_ctx *ctx, int cancel_fd, bool server,
                                 struct tls_error *err)
{
	struct tls_conn *c;
	int fl, one = 1;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		tls_err_set(err, CHD_TLS_HANDSHAKE, "out of memory");
		return NULL;
	}
	c->fd = fd;
	c->cancel_fd = cancel_fd;
	c->server = server;
	c->fail_alert = -1;
	c->ctx = ctx;
	tls_ctx_ref(ctx);
	/* GNUTLS_NONBLOCK only tells GnuTLS what to expect: the socket itself
	 * must not block, or a silent peer would hang us past any deadline. */
	/* Handshake flights and the channel's small request/answer frames
	 * would otherwise wait on Nagle + delayed ACK (tens of ms each).
	 * Fails harmlessly on a non-TCP socket (tests use socketpairs). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		tls_err_set(err, CHD_CH_CLOSED, "cannot make the socket non-blocking: %s",
		            strerror(errno));
		tls_conn_free(c);
		return NULL;
	}
	return c;
}

static int sess_gnutls_init(struct tls_conn *c, unsigned flags, struct tls_error *err)
{
	int r = gnutls_init(&c->s, flags | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);

	if (r < 0) {
		c->s = NULL;
		tls_err_set(err, CHD_TLS_HANDSHAKE, "gnutls_init: %s", gnutls_strerror_name(r));
		return -1;
	}
	gnutls_session_set_ptr(c->s, c);
	gnutls_session_set_verify_function(c->s, tls_verify_cb);
	tls_io_transport(c);
	/* Our deadline rules; GnuTLS's own would fire at another moment. */
	gnutls_handshake_set_timeout(c->s, GNUTLS_INDEFINITE_TIMEOUT);
	return 0;
}

static bool sess_cipher_error(int r)
{
	switch (r) {
	case GNUTLS_E_NO_CIPHER_SUITES:
	case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_INSUFFICIENT_SECURITY:
	case GNUTLS_E_NO_COMMON_KEY_SHARE:
	case GNUTLS_E_NO_PRIORITIES_WERE_SET:
	case GNUTLS_E_UNWANTED_ALGORITHM:
	case GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM:
		return true;
	default:
		return false;
	}
}

/* Turns a failed handshake into err and tells the peer why. */
void tls_handshake_failed(struct tls_conn *c, int r, struct tls_error *err)
{
	const char *peer = c->server ? "initiator" : "responder";
	int alert = -1;
	bool send = true;

	if (c->has_fail) {
		*err = c->fail;
		alert = c->fail_alert;
	} else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		int a = (int)gnutls_alert_get(c->s);
		const char *an = gnutls_alert_get_name((gnutls_alert_description_t)a);
		tls_err_set(err, CHD_TLS_PEER_REFUSED,
		            "the %s refused the TLS handshake with alert '%s' (%d): %s", peer,
		            an != NULL ? an : "?", a, tls_alert_hint(a, c));
		send = false;
	} else if (r == GNUTLS_E_CERTIFICATE_REQUIRED || r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		if (c->server) {
			tls_err_set(err, CHD_TLS_NO_CERT, "initiator sent no certificate; channel %s "
			            "requires one", c->channel);
			alert = gnutls_protocol_get_version(c->s) == GNUTLS_TLS1_3
			        ? GNUTLS_A_CERTIFICATE_REQUIRED : GNUTLS_A_HANDSHAKE_FAILURE;
		} else {
			tls_err_set(err, CHD_TLS_BAD_CERT, "responder sent no certificate");
		}
	} else if (sess_cipher_error(r)) {
		if (c->server)
			tls_err_set(err, CHD_TLS_CIPHER,
			            "the initiator offered no protocol version or cipher suite allowed "
			            "by SSLCIPH(%s)%s%s: %s", c->own_spec != NULL ? c->own_spec->name
			            : TLS_HELLO_SPEC, c->channel[0] != '\0' ? " of channel " : "",
			            c->channel, gnutls_strerror_name(r));
		else
			tls_err_set(err, CHD_TLS_CIPHER,
			            "no protocol version or cipher suite in common with the responder "
			            "under SSLCIPH(%s): %s", c->own_spec->name, gnutls_strerror_name(r));
	} else if (r == GNUTLS_E_TIMEDOUT) {
		tls_err_set(err, CHD_TLS_TIMEOUT, "TLS handshake timed out (GnuTLS)");
	} else if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ||
	           r == GNUTLS_E_PUSH_ERROR) {
		tls_err_set(err, CHD_TLS_HANDSHAKE,
		            "the %s closed the connection during the TLS handshake (%s)", peer,
		            gnutls_strerror_name(r));
		send = false;
	} else if (r == GNUTLS_E_CERTIFICATE_ERROR || r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		tls_err_set(err, CHD_TLS_BAD_CERT, "%s certificate refused: %s", peer,
		            gnutls_strerror_name(r));
		alert = GNUTLS_A_BAD_CERTIFICATE;
	} else {
		tls_err_set(err, CHD_TLS_HANDSHAKE, "TLS handshake with the %s failed: %s (%s)", peer,
		            gnutls_strerror(r), gnutls_strerror_name(r));
	}
	if (send)
		tls_send_alert(c, alert, r);
}

/* Drives the handshake to completion or to the deadline. */
static int sess_handshake(struct tls_conn *c, int64_t deadline, int timeout_ms,
                          struct tls_error *err)
{
	for (;;) {
		int r = gnutls_handshake(c->s);
		int w;

		if (r == 0)
			return 0;
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
			if (!gnutls_error_is_fatal(r) && !c->has_fail)
				continue; /* a warning alert: go on */
			tls_handshake_failed(c, r, err);
			return -1;
		}
		w = tls_wait(c, gnutls_record_get_direction(c->s) == 1 ? POLLOUT : POLLIN, deadline,
		             err);
		if (w == -2) {
			tls_err_set(err, CHD_TLS_TIMEOUT,
			            "TLS handshake with the %s did not finish within %d ms",
			            c->server ? "initiator" : "responder", timeout_ms);
			return -1;
		}
		if (w < 0)
			return -1;
	}
}

int tls_client_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    const struct tls_params *p, int timeout_ms, int cancel_fd,
                    struct tls_error *err)
{
	int64_t deadline = tls_deadline(timeout_ms);
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	char sni[TLS_SNI_MAX + 1];
	struct tls_conn *c;
	int r;

	*out = NULL;
	c = sess_new(fd, ctx, cancel_fd, false, err);
	if (c == NULL) {
		close(fd);
		return -1;
	}
	c->p = *p;
	c->have_params = true;
	str_copy(c->channel, p->channel, sizeof c->channel);
	if (p->sslciph[0] == '\0') {
		c->established = true;
		tls_fill_info(c);
		*out = c;
		return 0;
	}
	c->encrypted = true;
	c->own_spec = cs_lookup(p->sslciph);
	if (c->own_spec == NULL) {
		tls_err_set(err, CHD_TLS_CIPHER, "SSLCIPH '%s' of channel %s is not a known CipherSpec",
		            p->sslciph, p->channel);
		goto fail;
	}
	if (ctx == NULL) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "no keystore is loaded; channel %s needs one for "
		            "SSLCIPH(%s)", p->channel, p->sslciph);
		goto fail;
	}
	if (tls_sni_encode_spec(p->channel, (int)c->own_spec->id, sni, sizeof sni) != 0) {
		tls_err_set(err, CHD_TLS_SNI, "channel name '%s' cannot be sent as SNI", p->channel);
		goto fail;
	}
	if (tls_prio_get(c->own_spec, false, &prio, err) != 0)
		goto fail;
	if (sess_gnutls_init(c, GNUTLS_CLIENT, err) != 0)
		goto fail;
	/* Send our certificate only if our label exists; otherwise connect
	 * without one and let the responder decide (IBM MQ behaviour). */
	cred = tls_ctx_cred(ctx, p->label);
	if (cred != NULL)
		str_copy(c->local_label, p->label, sizeof c->local_label);
	else
		cred = tls_ctx_anon_cred(ctx);
	if ((r = gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, sni, strlen(sni))) < 0 ||
	    (r = gnutls_priority_set(c->s, prio)) < 0 ||
	    (r = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cred)) < 0) {
		tls_err_set(err, CHD_TLS_HANDSHAKE, "cannot set up the TLS session: %s",
		            gnutls_strerror_name(r));
		goto fail;
	}
	if (sess_handshake(c, deadline, timeout_ms, err) != 0)
		goto fail;
	c->established = true;
	tls_fill_info(c);
	*out = c;
	return 0;
fail:
	tls_conn_free(c);
	return -1;
}

/* SNI arrives from the network: keep it printable in texts. */
static void sess_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* Runs between the ClientHello and our answer: SNI -> channel -> its
 * certificate, CipherSpec and (for the verify callback) SSLCAUTH/SSLPEER.
 * Switching the priority here may also switch the protocol version. */
static int sess_post_hello(gnutls_session_t s)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);
	const struct cipherspec *use;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	struct tls_error perr;
	char sni[TLS_SNI_MAX + 2];
	size_t len = sizeof sni - 1;
	unsigned type = 0;
	int r, spec_id = -1;

	if (c == NULL)
		return GNUTLS_E_USER_ERROR;
	memset(sni, 0, sizeof sni);
	r = gnutls_server_name_get(s, sni, &len, &type, 0);
	if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		tls_conn_fail(c, CHD_TLS_SNI, GNUTLS_A_UNRECOGNIZED_NAME,
		              "the initiator sent no channel name (no SNI in its TLS hello)");
		return GNUTLS_E_USER_ERROR;
	}
	if (r < 0 || type != GNUTLS_NAME_DNS) {
		tls_conn_fail(c, CHD_TLS_SNI, GNUTLS_A_UNRECOGNIZED_NAME,
		              "the initiator's SNI is not a channel name (%s)",
		              r < 0 ? gnutls_strerror_name(r) : "not a DNS name");
		return GNUTLS_E_USER_ERROR;
	}
	sni[sizeof sni - 1] = '\0';
	if (tls_sni_decode_spec(sni, c->channel, sizeof c->channel, &spec_id) != 0) {
		sess_printable(sni);
		tls_conn_fail(c, CHD_TLS_SNI, GNUTLS_A_UNRECOGNIZED_NAME,
		              "the initiator's SNI '%.140s' is not a chand channel name", sni);
		return GNUTLS_E_USER_ERROR;
	}
	memset(&c->p, 0, sizeof c->p);
	if (c->lookup == NULL || c->lookup(c->lookup_arg, c->channel, &c->p) != 0) {
		tls_conn_fail(c, CHD_TLS_SNI, GNUTLS_A_UNRECOGNIZED_NAME,
		              "channel %s (from SNI) is not defined on this queue manager", c->channel);
		return GNUTLS_E_USER_ERROR;
	}
	c->have_params = true;
	str_copy(c->p.channel, c->channel, sizeof c->p.channel);
	c->peer_spec = spec_id >= 0 ? cs_by_id((unsigned)spec_id) : NULL;
	c->own_spec = NULL;
	if (c->p.sslciph[0] != '\0') {
		c->own_spec = cs_lookup(c->p.sslciph);
		if (c->own_spec == NULL) {
			tls_conn_fail(c, CHD_TLS_CIPHER, GNUTLS_A_HANDSHAKE_FAILURE,
			              "SSLCIPH '%s' of channel %s is not a known CipherSpec",
			              c->p.sslciph, c->channel);
			return GNUTLS_E_USER_ERROR;
		}
	}
	cred = tls_ctx_cred(c->ctx, c->p.label);
	if (cred == NULL) {
		if (c->p.label[0] == '\0')
			tls_conn_fail(c, CHD_TLS_LABEL, GNUTLS_A_INTERNAL_ERROR,
			              "channel %s has no certificate label (CERTLABL or keystore.label)",
			              c->channel);
		else
			tls_conn_fail(c, CHD_TLS_LABEL, GNUTLS_A_INTERNAL_ERROR,
			              "certificate label '%s' of channel %s is not in the keystore",
			              c->p.label, c->channel);
		return GNUTLS_E_USER_ERROR;
	}
	str_copy(c->local_label, c->p.label, sizeof c->local_label);

	use = c->own_spec;
	if (c->own_spec == NULL || (c->peer_spec != NULL &&
	                            !cs_compatible(c->peer_spec, c->own_spec))) {
		const char *ini = c->peer_spec != NULL ? c->peer_spec->name : "unknown";
		const char *rsp = c->own_spec != NULL ? c->own_spec->name : "none (plain TCP)";

		if (c->peer_spec == NULL) {
			tls_conn_fail(c, CHD_TLS_CIPHER, GNUTLS_A_HANDSHAKE_FAILURE,
			              "CipherSpec mismatch: initiator uses TLS, responder %s "
			              "(channel %s)", rsp, c->channel);
			return GNUTLS_E_USER_ERROR;
		}
		c->has_refusal = true;
		tls_err_set(&c->refusal, CHD_TLS_CIPHER,
		            "CipherSpec mismatch: initiator %s, responder %s (channel %s)", ini, rsp,
		            c->channel);
		use = c->peer_spec;
	}
	if (tls_prio_get(use, true, &prio, &perr) != 0) {
		tls_conn_fail(c, perr.code, GNUTLS_A_INTERNAL_ERROR, "%s", perr.text);
		return GNUTLS_E_USER_ERROR;
	}
	if ((r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred)) < 0 ||
	    (r = gnutls_priority_set(s, prio)) < 0) {
		tls_conn_fail(c, CHD_TLS_HANDSHAKE, GNUTLS_A_INTERNAL_ERROR,
		              "cannot switch to channel %s's settings: %s", c->channel,
		              gnutls_strerror_name(r));
		return GNUTLS_E_USER_ERROR;
	}
	return 0;
}

/* Waits for the first byte and peeks at it: a TLS record of type
 * handshake (0x16) starts a ClientHello; our plain channel protocol never
 * starts with that byte. */
static int sess_peek(struct tls_conn *c, int64_t deadline, int timeout_ms, unsigned char *b,
                     struct tls_error *err)
{
	for (;;) {
		ssize_t n = recv(c->fd, b, 1, MSG_PEEK);
		int w;

		if (n == 1)
			return 0;
		if (n == 0) {
			tls_err_set(err, CHD_CH_CLOSED, "connection closed by the initiator before any data");
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			tls_err_set(err, CHD_CH_CLOSED, "connection broken before any data: %s",
			            strerror(errno));
			return -1;
		}
		w = tls_wait(c, POLLIN, deadline, err);
		if (w == -2) {
			tls_err_set(err, CHD_TLS_TIMEOUT, "the initiator sent nothing within %d ms",
			            timeout_ms);
			return -1;
		}
		if (w < 0)
			return -1;
	}
}

int tls_server_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    tls_lookup_fn lookup, void *arg, int timeout_ms, int cancel_fd,
                    struct tls_error *err)
{
	int64_t deadline = tls_deadline(timeout_ms);
	const struct cipherspec *hello = cs_lookup(TLS_HELLO_SPEC);
	gnutls_priority_t prio;
	struct tls_conn *c;
	unsigned char b = 0;
	int r;

	*out = NULL;
	c = sess_new(fd, ctx, cancel_fd, true, err);
	if (c == NULL) {
		close(fd);
		return -1;
	}
	c->lookup = lookup;
	c->lookup_arg = arg;
	if (sess_peek(c, deadline, timeout_ms, &b, err) != 0)
		goto fail;
	if (b != TLS_CONTENT_HANDSHAKE) {
		c->established = true;
		tls_fill_info(c);
		*out = c;
		return 0;
	}
	c->encrypted = true;
	if (ctx == NULL) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "a TLS initiator connected but no keystore is loaded");
		goto fail;
	}
	if (tls_prio_get(hello, true, &prio, err) != 0)
		goto fail;
	if (sess_gnutls_init(c, GNUTLS_SERVER, err) != 0)
		goto fail;
	if ((r = gnutls_priority_set(c->s, prio)) < 0) {
		tls_err_set(err, CHD_TLS_HANDSHAKE, "cannot set up the TLS session: %s",
		            gnutls_strerror_name(r));
		goto fail;
	}
	/* Always ask for a certificate; the verify callback applies
	 * SSLCAUTH/SSLPEER. No list of acceptable CAs: GnuTLS clients would
	 * then withhold a certificate from another CA, and the responder could
	 * only say "no certificate" instead of "untrusted issuer". */
	gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUEST);
	gnutls_certificate_send_x509_rdn_sequence(c->s, 1);
	gnutls_handshake_set_post_client_hello_function(c->s, sess_post_hello);
	if (sess_handshake(c, deadline, timeout_ms, err) != 0)
		goto fail;
	c->established = true;
	tls_fill_info(c);
	*out = c;
	return 0;
fail:
	tls_conn_free(c);
	return -1;
}

int tls_plain_check(const struct tls_params *p, struct tls_error *err)
{
	if (p->sslciph[0] == '\0')
		return 0;
	tls_err_set(err, CHD_TLS_CIPHER,
	            "CipherSpec mismatch: initiator none (plain TCP), responder %s (channel %s)",
	            p->sslciph, p->channel);
	return -1;
}
