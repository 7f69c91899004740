/* The keystore file (src/keystore): its entries, the SQLite file,
 * passwords, certificate facts and the checks behind the keystore
 * commands' warnings.  For the keystore module and chanctl's keystore
 * front end (src/ctl/ks_cli*.c); the agent only loads material
 * (chand/keystore.h). Every function that can fail returns 0 on success
 * or -1 with a one-line reason in err, unless it says otherwise. */
#ifndef CHAND_KEYSTORE_FILE_H
#define CHAND_KEYSTORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/codes.h"
#include "chand/keystore.h"

#define KS_PASSWORD_MIN 8
#define KS_EXPIRY_WARN_DAYS 30
#define KS_FPR_LEN 96 /* 32 bytes as "AB:" + NUL */

enum ks_kind { KS_KIND_PERSONAL, KS_KIND_TRUSTED, KS_KIND_CRL };

/* One row of the keystore: der is the certificate (or CRL) in DER, key the
 * encrypted PKCS#8 DER (personal only), chain the issuer certificates in
 * order. All buffers are malloc'd and owned by the entry. */
struct ks_entry {
	char label[KS_LABEL_MAX + 1];
	enum ks_kind kind;
	gnutls_datum_t der;
	gnutls_datum_t key;
	gnutls_datum_t *chain;
	unsigned nchain;
	int64_t created;
};

struct ks_db;

/* ks_db.c: the SQLite file. Every function returns 0 on success or -1 with
 * a one-line reason in err (and a catalogue code in *code where given). */
int ks_db_create(const char *path, const char *password, char *err, size_t errlen);
int ks_db_open(const char *path, const char *stash, bool writable, struct ks_db **out,
               enum chd_code_id *code, char *err, size_t errlen);
int ks_db_check_password(struct ks_db *db, const char *password,
                         enum chd_code_id *code, char *err, size_t errlen);
void ks_db_close(struct ks_db *db);
int ks_db_begin(struct ks_db *db, char *err, size_t errlen);
int ks_db_commit(struct ks_db *db, char *err, size_t errlen);
void ks_db_rollback(struct ks_db *db);
/* 1 if the label exists, 0 if not, -1 on error. */
int ks_db_exists(struct ks_db *db, const char *label, char *err, size_t errlen);
int ks_db_insert(struct ks_db *db, const struct ks_entry *e, char *err, size_t errlen);
/* 0 removed, 1 no such label, -1 error. */
int ks_db_remove(struct ks_db *db, const char *label, char *err, size_t errlen);
/* 0 found, 1 no such label, -1 error. */
int ks_db_get(struct ks_db *db, const char *label, struct ks_entry *e, char *err, size_t errlen);
/* Every entry, ordered by label. */
int ks_db_list(struct ks_db *db, struct ks_entry **out, size_t *n, char *err, size_t errlen);
void ks_entry_clear(struct ks_entry *e);
void ks_entries_free(struct ks_entry *e, size_t n);
const char *ks_kind_name(enum ks_kind k);

/* ks_secret.c: passwords. Buffers are KS_PASSWORD_MAX + 1 bytes. */
int ks_pw_from_file(const char *path, char *pw, char *err, size_t errlen);
int ks_pw_from_stash(const char *path, char *pw, enum chd_code_id *code, char *err, size_t errlen);
int ks_pw_prompt(const char *prompt, char *pw, char *err, size_t errlen);
int ks_stash_write(const char *path, const char *pw, char *err, size_t errlen);
/* PBKDF2-SHA256 verifier of a password under salt and iterations. */
int ks_pw_derive(const char *pw, const uint8_t *salt, size_t saltlen, unsigned iter,
                 uint8_t out[32]);
bool ks_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);
bool ks_label_valid(const char *label, char *why, size_t whylen);

/* ks_x509.c: files and certificate facts. */
int ks_file_read(const char *path, gnutls_datum_t *out, char *err, size_t errlen);
void ks_datum_wipe(gnutls_datum_t *d);
bool ks_has_pem(const gnutls_datum_t *d, const char *tag);
int ks_certs_import(const gnutls_datum_t *data, const char *name, gnutls_x509_crt_t **certs,
                    unsigned *n, char *err, size_t errlen);
int ks_certs_load(const char *path, gnutls_x509_crt_t **certs, unsigned *n, char *err,
                  size_t errlen);
void ks_certs_free(gnutls_x509_crt_t *certs, unsigned n);
int ks_key_import(const gnutls_datum_t *data, const char *name, const char *pw,
                  gnutls_x509_privkey_t *key, enum chd_code_id *code, char *err, size_t errlen);
int ks_crl_load(const char *path, gnutls_x509_crl_t *crl, char *err, size_t errlen);
bool ks_key_matches(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key);
void ks_chain_order(gnutls_x509_crt_t leaf, gnutls_x509_crt_t *chain, unsigned n);
int ks_crt_der(gnutls_x509_crt_t crt, gnutls_datum_t *out);
char *ks_crt_subject(gnutls_x509_crt_t crt);
char *ks_crt_issuer(gnutls_x509_crt_t crt);
char *ks_crl_issuer(gnutls_x509_crl_t crl);
void ks_fingerprint(const gnutls_datum_t *der, char out[KS_FPR_LEN]);
void ks_time_fmt(time_t t, char *buf, size_t len);
void ks_crt_keydesc(gnutls_x509_crt_t crt, char *buf, size_t len);
char *ks_crt_sans(gnutls_x509_crt_t crt);
void ks_crt_serial(gnutls_x509_crt_t crt, char *buf, size_t len);
bool ks_crt_is_ca(gnutls_x509_crt_t crt, char *why, size_t whylen);
/* Verifies leaf+chain against the trusted certificates, ignoring dates
 * (the expiry warnings report those). Returns true if complete; otherwise
 * false with the reason in why. */
bool ks_chain_complete(const gnutls_x509_crt_t *certs, unsigned n,
                       const gnutls_x509_crt_t *trusted, unsigned ntrusted,
                       char *why, size_t whylen);

/* PKCS#12: the key entries found (one per private key), each with its
 * certificate, friendly name and chain (the file's other certificates). */
struct ks_p12_item {
	char *name;
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t cert;
};
struct ks_p12 {
	struct ks_p12_item *items;
	unsigned nitems;
	gnutls_x509_crt_t *certs; /* certificates not paired with a key */
	unsigned ncerts;
};
int ks_p12_load(const char *path, const char *pw, struct ks_p12 *out, enum chd_code_id *code,
                char *err, size_t errlen);
void ks_p12_free(struct ks_p12 *p);

/* ks_check.c: what the front end reports after a change (library logic:
 * it decides, the caller prints). */

/* The trusted certificates of the keystore (caller ks_certs_free), for
 * chain checks. Entries that do not parse are skipped. */
int ks_db_trusted(struct ks_db *db, gnutls_x509_crt_t **out, unsigned *n);
/* How many entries of that kind the keystore holds (in *n). */
int ks_db_count(struct ks_db *db, enum ks_kind kind, size_t *n, char *err, size_t errlen);
/* Whether a personal entry's leaf and chain verify up to one of the
 * trusted certificates (dates ignored); why says what is missing. */
bool ks_entry_chain_complete(const struct ks_entry *e, const gnutls_x509_crt_t *trusted,
                             unsigned ntrusted, char *why, size_t whylen);
/* Warnings about one entry (expiry, not yet valid, incomplete chain,
 * stale CRL), each passed to emit as one line. */
void ks_entry_warnings(const struct ks_entry *e, const gnutls_x509_crt_t *trusted,
                       unsigned ntrusted, void (*emit)(void *arg, const char *line), void *arg);
/* True if crt can issue certificates: basicConstraints CA:TRUE and, when
 * it has a keyUsage extension, keyCertSign in it. A version 1 certificate
 * (no extensions at all) passes as a root, but not as an intermediate
 * (a chain certificate that is not self-signed): verifiers refuse those.
 * Otherwise false with the reason in why ("CN=X is not a CA certificate
 * (basicConstraints CA:FALSE)"). */
bool ks_crt_can_sign(gnutls_x509_crt_t crt, bool intermediate, char *why, size_t whylen);
/* The one-line advice for a CA or intermediate certificate that cannot
 * sign: how to re-sign it with the CA extensions. */
#define KS_RESIGN_HINT "re-sign it as a CA: openssl x509 -req -in CSR -CA ISSUER.pem " \
	"-CAkey ISSUER.key -CAcreateserial -extfile /etc/ssl/openssl.cnf -extensions v3_ca " \
	"-out CERT.pem"
/* Builds a personal entry: the key encrypted as PKCS#8 PBES2 AES-256
 * under the keystore password pw, the certificates as DER. */
int ks_entry_personal(const char *label, gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key,
                      const char *pw, gnutls_x509_crt_t *chain, unsigned nchain,
                      struct ks_entry *e, char *err, size_t errlen);

#endif
