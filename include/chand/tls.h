/* The security layer of a channel connection: GnuTLS sessions (or plain
 * TCP when SSLCIPH is empty) over a connected socket, with the rules of
 * doc/TLS.md.  The initiator is always the TLS client, the
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

/* NEVER: telemetry channels only (no certificate is requested). */
enum sslcauth { SSLCAUTH_REQUIRED = 0, SSLCAUTH_OPTIONAL = 1, SSLCAUTH_NEVER = 2 };

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

/* ks_material_load + tls_ctx_from_material. All-or-nothing: on failure
 * returns -1 with err (TLS_KEYSTORE; the text names the file and the
 * keystore's own code, e.g. "CHD3003 wrong keystore password"), *out is
 * NULL and the caller keeps using its previous context. */
int tls_ctx_load(struct tls_ctx **out, const char *ks_path, const char *stash_path,
                 struct tls_error *err);
/* Builds a context from material already in memory (the keystore's, or
 * PEM files read by a test). Everything is copied: the caller still owns
 * and frees m. m may be NULL (no trust, no labels). All-or-nothing: on
 * failure returns -1 with err (TLS_KEYSTORE naming the bad entry: a key
 * that does not match its certificate, a CRL no trusted CA signed). */
int tls_ctx_from_material(struct tls_ctx **out, const struct ks_material *m,
                          struct tls_error *err);
size_t tls_ctx_label_count(const struct tls_ctx *ctx);
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
	/* Initiator, TLS 1.3: a KeyUpdate asking the peer to update too after
	 * this many application bytes (sent and received); 0 = never. See
	 * tls_send_all. The responder ignores it (it answers the initiator's). */
	uint64_t keyupdate_bytes;
};

/* Responder: the caller's lookup of a channel's settings by the name that
 * arrived in SNI (or, for plain TCP, in the first frame). Returns 0 if the
 * channel exists here, -1 otherwise. tls_server_open calls it from inside
 * the handshake, on the calling thread, at most twice (a TLS 1.3
 * HelloRetryRequest repeats the hello). */
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

/* Initiator. Takes ownership of fd (closed by tls_close) and makes it
 * non-blocking (and TCP_NODELAY on TCP sockets; both opens do). Empty
 * p->sslciph: a plain-TCP conn (no handshake), nothing is sent.
 * Otherwise SNI carries the channel and our CipherSpec id; our
 * certificate is sent only if p->label is in ctx (tls_info.local_label
 * is "" when none was sent). The responder's chain is always verified
 * (trust, dates, CRLs, serverAuth purpose, --verify-hostname, SSLPEER).
 * TLS 1.3: a responder that refuses OUR certificate does so after our
 * handshake returned; the first tls_recv then fails with
 * TLS_PEER_REFUSED naming the alert. On failure returns -1 with err
 * filled; fd is closed. */
int tls_client_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    const struct tls_params *p, int timeout_ms, int cancel_fd,
                    struct tls_error *err);
/* Responder. Takes ownership of fd and makes it non-blocking. Peeks at
 * the first byte: a TLS ClientHello runs the handshake with the channel
 * from SNI (lookup is called from inside the handshake); anything else is
 * treated as plain TCP and the channel name is learned later by the
 * caller, which must then check that the channel's SSLCIPH is empty
 * (tls_conn_channel() returns ""). Refusals come back as -1 with the
 * precise code: TLS_SNI, TLS_LABEL, TLS_NO_CERT, TLS_UNTRUSTED,
 * TLS_EXPIRED, TLS_REVOKED, TLS_BAD_CERT, TLS_SSLPEER, TLS_CIPHER,
 * TLS_TIMEOUT, TLS_HANDSHAKE; the initiator is sent a matching alert.
 * On success also check tls_conn_refusal(). */
int tls_server_open(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                    tls_lookup_fn lookup, void *arg, int timeout_ms, int cancel_fd,
                    struct tls_error *err);

/* Responder, plain-TCP conn: once the first frame names the channel,
 * check that the channel really is plain. 0 if its SSLCIPH is empty;
 * else -1 with TLS_CIPHER "CipherSpec mismatch: initiator none (plain
 * TCP), responder X (channel C)", which the caller sends to the initiator
 * (ERROR frame) before closing, as for tls_conn_refusal(). */
int tls_plain_check(const struct tls_params *p, struct tls_error *err);

/* Errors of the calls below: CH_HEARTBEAT (timeout), CH_STOP (cancel_fd
 * became readable), CH_CLOSED (broken link, no close_notify),
 * TLS_PEER_REFUSED (fatal alert before any data: the peer refused us),
 * TLS_HANDSHAKE (renegotiation attempt, refused). */
/* Sends all of buf. 0, or -1 with err (timeout, closed, cancelled).
 * Initiator with p->keyupdate_bytes set, TLS 1.3: once that many
 * application bytes went either way since the last KeyUpdate, one is sent
 * between two records (GNUTLS_KU_PEER: the responder answers with its own
 * before its next record), provided the answer to the previous one came
 * and TLS_KEYUPDATE_MIN_INTERVAL_MS passed: GnuTLS fails a connection that
 * receives more than 8 KeyUpdates a second, and one that is asked again
 * before it answered. A failed KeyUpdate fails the send. */
#define TLS_KEYUPDATE_MIN_INTERVAL_MS 500
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
/* TLS 1.3 KeyUpdate now, asking the peer to update its keys too (the idea
 * of IBM MQ's SSLRKEYC; tls_send_all does it by itself with
 * p->keyupdate_bytes). The caller must not ask again before the peer sent
 * something (its answer), and must not call it on both ends: a KeyUpdate
 * request that crosses the peer's fails both ends. A no-op returning 0 on
 * TLS 1.2 and plain TCP. 0, or -1 with err. */
int tls_key_update(struct tls_conn *c, int timeout_ms, struct tls_error *err);
/* KeyUpdate messages this end has sent so far, whether its own or an
 * answer to the peer's (each one renewed the keys this end sends with);
 * 0 on TLS 1.2 and plain TCP. For status key_updates. */
unsigned tls_conn_key_updates(const struct tls_conn *c);
void tls_conn_info(const struct tls_conn *c, struct tls_info *out);
/* Responder: the channel name from SNI ("" for plain TCP).
 * Initiator: the channel it was opened for. */
const char *tls_conn_channel(const struct tls_conn *c);
/* Responder: a refusal decided during the handshake that the handshake
 * itself does not carry, or NULL. Today: CipherSpec mismatch (TLS_CIPHER,
 * "CipherSpec mismatch: initiator X, responder Y (channel C)"). The
 * handshake is completed with the initiator's spec so that the caller can
 * send this text to the initiator (ERROR frame) and then close: both ends
 * then name both specs. The caller must not run the channel. */
const struct tls_error *tls_conn_refusal(const struct tls_conn *c);
/* Sends close_notify (bounded), closes the socket, frees. */
void tls_close(struct tls_conn *c);

/* ---- non-blocking responder sessions for event loops (tls_nb.c) ----
 * Telemetry channels: the channel's settings are known before the
 * handshake (by listening port), p->sslciph is not empty, p->sslcauth may
 * be SSLCAUTH_NEVER (no certificate requested). fd must already be
 * non-blocking and stays the caller's (tls_nb_free does not close it). */
#define TLS_NB_DONE 0
#define TLS_NB_AGAIN (-2)
#define TLS_NB_ERROR (-1)
int tls_nb_server_new(struct tls_conn **out, int fd, struct tls_ctx *ctx,
                      const struct tls_params *p, struct tls_error *err);
/* TLS_NB_DONE, TLS_NB_AGAIN (wait for tls_nb_want_write() ? POLLOUT :
 * POLLIN) or TLS_NB_ERROR with err (the alert has been sent). */
int tls_nb_handshake(struct tls_conn *c, struct tls_error *err);
int tls_nb_want_write(const struct tls_conn *c);
/* >0 bytes, 0 close_notify, TLS_NB_AGAIN, or -1 with err. */
ssize_t tls_nb_recv(struct tls_conn *c, void *buf, size_t len, struct tls_error *err);
/* >0 bytes taken, TLS_NB_AGAIN (call again later with the same length of
 * the same data), or -1 with err. */
ssize_t tls_nb_send(struct tls_conn *c, const void *buf, size_t len, struct tls_error *err);
/* Decrypted bytes GnuTLS holds that epoll will not report. */
size_t tls_nb_pending(const struct tls_conn *c);
/* refresh security: the certificate the peer sent, verified again against
 * ctx's trusted CAs and CRLs. 0 (also when none was sent), or -1 with err
 * (TLS_REVOKED, TLS_UNTRUSTED, TLS_EXPIRED, TLS_BAD_CERT) naming its DN. */
int tls_conn_recheck(const struct tls_conn *c, struct tls_ctx *ctx, struct tls_error *err);
/* The same in two steps for a session another thread is using: a copy of
 * the chain the peer sent (NULL: none), re-checked later. */
struct tls_peer_chain;
struct tls_peer_chain *tls_peer_chain_copy(const struct tls_conn *c);
int tls_peer_chain_recheck(const struct tls_peer_chain *pc, struct tls_ctx *ctx,
                           struct tls_error *err);
void tls_peer_chain_free(struct tls_peer_chain *pc);
/* The common name of the peer's certificate: 0, or -1 if none. */
int tls_conn_peer_cn(const struct tls_conn *c, char *buf, size_t len);
/* bye: try one close_notify. Frees the session, not the socket. */
void tls_nb_free(struct tls_conn *c, bool bye);

/* SNI encoding of a channel name (and the initiator's CipherSpec id) into
 * a valid DNS name and back. Channel names are case-sensitive and may hold
 * '/', '%', '_', '.': their bytes are hex encoded (lower case) in labels of
 * at most 62 characters, then an optional "s<id>" label, under
 * ".chl.chand":  "TO.QM2", id 3 -> "544f2e514d32.s3.chl.chand".
 * Decoding accepts either hex case and checks the name with name_valid(). */
#define TLS_SNI_MAX 128        /* longest SNI we produce or accept */
#define TLS_SNI_SPEC_MAX 65535 /* largest CipherSpec id in an SNI */
/* spec_id -1: no spec label. Returns 0, or -1 (out = "") for an invalid
 * channel name, a bad id or a too small buffer (TLS_SNI_MAX + 1 fits all). */
int tls_sni_encode_spec(const char *channel, int spec_id, char *out, size_t outlen);
/* Returns 0 with the channel (and the spec id, -1 if the SNI carries none),
 * or -1 if sni is not a chand channel name. spec_id may be NULL. */
int tls_sni_decode_spec(const char *sni, char *channel, size_t chlen, int *spec_id);
/* The same without a spec label / ignoring it. */
void tls_sni_encode(const char *channel, char *out, size_t outlen);
int tls_sni_decode(const char *sni, char *channel, size_t chlen);

#endif
