/* The keystore: a SQLite file (mode 0600) of labelled entries.
 *   personal: a certificate, its private key (PKCS#8 PBES2 AES-256 under the
 *             keystore password) and its chain;
 *   trusted:  CA certificates (roots and intermediates);
 *   crl:      certificate revocation lists.
 * The password comes from a stash file (0600) beside the keystore, a
 * --password-file, or a terminal prompt; never argv or the environment. */
#ifndef CHAND_KEYSTORE_H
#define CHAND_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <gnutls/x509.h>

#include "chand/codes.h"

#define KS_LABEL_MAX 64
#define KS_PASSWORD_MAX 256

/* What the agent's TLS layer loads: everything decrypted, in memory. */
struct ks_personal {
	char label[KS_LABEL_MAX + 1];
	gnutls_x509_crt_t *certs;    /* leaf first, then its chain */
	unsigned ncerts;
	gnutls_x509_privkey_t key;
};

struct ks_material {
	struct ks_personal *personal;
	size_t npersonal;
	gnutls_x509_crt_t *trusted;
	size_t ntrusted;
	gnutls_x509_crl_t *crls;
	size_t ncrls;
};

/* "key.db" -> "key.sth" (extension replaced, or ".sth" appended). malloc'd. */
char *ks_stash_path(const char *ks_path);

/* Loads a keystore for the agent. The password is read from stash_path
 * (refused if readable by others). On failure returns -1 with a one-line
 * reason in err and the catalogue code in *code (KS_OPEN, KS_PERMS,
 * KS_PASSWORD, ...). Secrets read are zeroed after use. */
int ks_material_load(const char *ks_path, const char *stash_path,
                     struct ks_material **out, enum chd_code_id *code,
                     char *err, size_t errlen);
void ks_material_free(struct ks_material *m);
/* The personal entry with that label, or NULL. */
const struct ks_personal *ks_material_find(const struct ks_material *m, const char *label);

/* The keystore file itself (entries, passwords, checks) is
 * chand/keystore_file.h; `chanctl keystore` is in src/ctl (chand/ctlcmd.h). */

#endif
