/* The security layer of a channel connection: GnuTLS sessions (or plain
 * TCP when SSLCIPH is empty) over a connected socket, with the rules of
 * DESIGN.md section 2.  The initiator is always the TLS client, the
 * responder always the TLS server.  Blocking API with timeouts, meant to
 * be driven by one thread per connection; a cancel fd (e.g. an eventfd or
 * pipe owned by the caller) aborts a blocked call when readable. */
#ifndef CHAND_TLS_H
#define CHAND_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chand/codes.h"
#include "chand/keystore.h"
#include "chand/util.h"

enum sslcauth { SSLCAUTH_REQUIRED = 0, SSLCAUTH_OPTIONAL = 1 };

/* A refusal or failure: stable catalogue code plus one line of text
 * (naming the peer DN for SSLPEER mismatches, both specs for CipherSpec
 * mismatches, the GnuTLS error name otherwise). */
struct tls_error {
	enum chd_code_id code;
	char text[512];
};

/* The loaded security material: trust list, CRLs and the credentials of
 * every personal label. Reference counted so `refresh security` can swap
 * in a new one while running connections keep the old. */
struct tls_ctx;

int tls_ctx_load(struct tls_ctx **out, const char *ks_path, const char *stash_path,
                 struct tls_error *err);
/* An empty context (no keystore configured): only plain-TCP channels work. */
struct tls_ctx *tls_ctx_empty(void);
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx);
bool tls_ctx_has_label(const struct tls_ctx *ctx, const char *label);

/* Per-channel TLS settings. */
struct tls_params {
	char channel[CHAND_NAME_MAX + 1];
	char sslciph[64];            /* "" = plain TCP */
	char label[KS_LABEL_MAX + 1]; /* effective label: CERTLABL or the qmgr default */
	enum sslcauth sslcauth;      /* responder only */
	char sslpeer[1025];          /* "" = none */
	char verify_hostname[256];   /* initiator: check CONNAME host against SAN/CN; "" = off */
};

/* Responder: the caller's lookup of a channel's settings by the name that
 * arrived in SNI (or, for plain TCP, in the first frame). Returns 0 if the
 * channel exists here, -1 otherwise. */
typedef int (*tls_lookup_fn)(void *arg, const char *channel, struct tls_params *out);

struct tls_info {
	bool encrypted;
	char version[16];            /* "TLS1.3" */
	char cipher[96];             /* IANA name of the negotiated suite */
	char local_label[KS_LABEL_MAX + 1]; /* "" if no certificate was sent */
	char peer_dn[512];           /* RFC 4514, "" if the peer sent none */
	char peer_issuer_dn[512];
	int64_t peer_not_after_ms;   /* 0 if no peer certificate */
};

struct tls_conn;

/* Initiator. Takes ownership of fd (closed by tls_close). On failure
 * returns -1 with err filled; fd is closed. */
int tls_client_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    const struct tls_params *p, int timeout_ms, int cancel_fd,
                    struct tls_error *err);
/* Responder. Peeks at the first byte: a TLS ClientHello runs the handshake
 * with the channel from SNI; anything else is treated as plain TCP and the
 * channel name is learned later by the caller, which must then check that
 * the channel's SSLCIPH is empty (tls_conn_channel() returns ""). */
int tls_server_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    tls_lookup_fn lookup, void *arg, int timeout_ms, int cancel_fd,
                    struct tls_error *err);

/* Sends all of buf. 0, or -1 with err (timeout, closed, cancelled). */
int tls_send_all(struct tls_conn *c, const void *buf, size_t len, int timeout_ms,
                 struct tls_error *err);
/* Reads at most len bytes: >0 bytes read, 0 clean close by the peer, -1 error
 * (err->code CH_CLOSED, CH_HEARTBEAT for timeout, ...). timeout_ms < 0:
 * wait forever (still cancellable). */
ssize_t tls_recv(struct tls_conn *c, void *buf, size_t len, int timeout_ms,
                 struct tls_error *err);
/* Reads exactly len bytes (same returns; 0 only if closed before any byte). */
ssize_t tls_recv_all(struct tls_conn *c, void *buf, size_t len, int timeout_ms,
                     struct tls_error *err);
void tls_conn_info(const struct tls_conn *c, struct tls_info *out);
/* Channel name from SNI ("" for plain TCP). */
const char *tls_conn_channel(const struct tls_conn *c);
/* Sends close_notify (bounded), closes the socket, frees. */
void tls_close(struct tls_conn *c);

/* SNI encoding of a channel name into a valid DNS name and back. Channel
 * names are case-sensitive and may hold '/', '%', '_': they are hex
 * encoded in labels of at most 62 characters under ".chl.chand". */
void tls_sni_encode(const char *channel, char *out, size_t outlen);
int tls_sni_decode(const char *sni, char *channel, size_t chlen);

#endif
