/* Internals shared by the files of the TLS layer (ctx.c, prio.c,
 * session.c, verify.c, tls_io.c, tls_prio.c).  Not a public header. */
#ifndef CHAND_TLS_INT_H
#define CHAND_TLS_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/cipherspec.h"
#include "chand/tls.h"

struct tls_conn {
	int fd;
	int cancel_fd;                 /* -1: none */
	bool server;
	bool encrypted;
	bool established;              /* handshake done, records may flow */
	bool broken;                   /* fatal record error: no close_notify */
	bool got_data;                 /* application data received */
	bool linger;                   /* drain input before close (no RST) */
	unsigned key_updates;          /* KeyUpdate messages we sent (ours and answers) */
	/* TLS 1.3 KeyUpdate policy (tls_io.c; p.keyupdate_bytes, initiator) */
	bool ku_hooked;                /* our handshake hook sees KeyUpdates */
	bool ku_asked;                 /* our update_requested awaits the peer's answer */
	uint64_t ku_bytes;             /* application bytes both ways since our last one */
	int64_t ku_last_ms;            /* monotonic time of our last one, 0 = none */
	gnutls_session_t s;
	struct tls_ctx *ctx;           /* a reference, dropped in tls_close */

	struct tls_params p;           /* client: given; server: from lookup */
	bool have_params;
	tls_lookup_fn lookup;
	void *lookup_arg;
	const struct cipherspec *own_spec;  /* this end's SSLCIPH */
	const struct cipherspec *peer_spec; /* server: initiator's, from SNI */
	char channel[CHAND_NAME_MAX + 1];
	char local_label[KS_LABEL_MAX + 1]; /* label whose certificate we use */

	/* The precise reason a callback (post-client-hello, verify) refused
	 * the handshake, and the alert it calls for: GnuTLS itself only
	 * reports a generic error and sends no alert. */
	bool has_fail;
	struct tls_error fail;
	int fail_alert;                /* gnutls_alert_description_t or -1 */

	/* Handshake completed but the channel must be refused by the caller
	 * (CipherSpec mismatch), so both ends can name both specs. */
	bool has_refusal;
	struct tls_error refusal;

	struct tls_info info;

	/* Read-ahead of the socket for GnuTLS (tls_io.c, io_pull): GnuTLS
	 * asks for a record's header, then its body, each with its own
	 * recv(); this serves them from one recv() of up to TLS_RA_CAP. */
	uint8_t *ra;
	size_t ra_off, ra_len;
};

#define TLS_RA_CAP (64 * 1024)

/* ctx.c: credentials of a label (NULL if none) and the keyless ones
 * (trust and CRLs only) an initiator without a label uses. */
gnutls_certificate_credentials_t tls_ctx_cred(const struct tls_ctx *ctx, const char *label);
gnutls_certificate_credentials_t tls_ctx_anon_cred(const struct tls_ctx *ctx);

/* tls_prio.c: the cached priority of a CipherSpec for one role, built once. */
int tls_prio_get(const struct cipherspec *cs, bool server, gnutls_priority_t *out,
                 struct tls_error *err);

/* session.c: turns a failed handshake (GnuTLS error r, or the reason a
 * callback recorded) into err and sends the peer the matching alert. */
void tls_handshake_failed(struct tls_conn *c, int r, struct tls_error *err);

/* verify.c */
int tls_verify_cb(gnutls_session_t s);
void tls_fill_info(struct tls_conn *c);
const char *tls_alert_hint(int alert, const struct tls_conn *c);

/* tls_io.c: makes GnuTLS read c's socket through the read-ahead (blocking
 * sessions only: nothing may poll the socket while the read-ahead holds
 * data, and io_recv waits only after GnuTLS said AGAIN, which it says only
 * when both are empty). */
void tls_io_transport(struct tls_conn *c);
/* tls_io.c: waiting with a deadline (ms on the monotonic clock, -1 = none)
 * on the socket and the cancel fd. */
int tls_wait(const struct tls_conn *c, short events, int64_t deadline, struct tls_error *err);
void tls_send_alert(struct tls_conn *c, int alert, int gnutls_err);
/* Closes the socket and frees without close_notify (failed opens). */
void tls_conn_free(struct tls_conn *c);
int64_t tls_deadline(int timeout_ms);

void tls_err_set(struct tls_error *err, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tls_conn_fail(struct tls_conn *c, enum chd_code_id code, int alert, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
