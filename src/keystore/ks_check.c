/* What the keystore commands report after a change, decided here and
 * printed by the front end (src/ctl/ks_cli*.c): the trusted set, entry
 * warnings (expiry, chain, stale CRL), whether a CA certificate can
 * sign, and building a personal entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chand/util.h"
#include "ks_int.h"

int ks_db_trusted(struct ks_db *db, gnutls_x509_crt_t **out, unsigned *n)
{
	struct ks_entry *ents = NULL;
	size_t cnt = 0, i;
	char err[512];

	*out = NULL;
	*n = 0;
	if (ks_db_list(db, &ents, &cnt, err, sizeof err) != 0)
		return -1;
	*out = calloc(cnt ? cnt : 1, sizeof **out);
	if (*out == NULL) {
		ks_entries_free(ents, cnt);
		return -1;
	}
	for (i = 0; i < cnt; i++) {
		gnutls_x509_crt_t crt;

		if (ents[i].kind != KS_KIND_TRUSTED || gnutls_x509_crt_init(&crt) < 0)
			continue;
		if (gnutls_x509_crt_import(crt, &ents[i].der, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crt);
			continue;
		}
		(*out)[(*n)++] = crt;
	}
	ks_entries_free(ents, cnt);
	return 0;
}

int ks_db_count(struct ks_db *db, enum ks_kind kind, size_t *n, char *err, size_t errlen)
{
	struct ks_entry *ents = NULL;
	size_t cnt = 0;

	*n = 0;
	if (ks_db_list(db, &ents, &cnt, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < cnt; i++)
		if (ents[i].kind == kind)
			(*n)++;
	ks_entries_free(ents, cnt);
	return 0;
}

bool ks_crt_can_sign(gnutls_x509_crt_t crt, bool intermediate, char *why, size_t whylen)
{
	unsigned usage = 0, crit = 0;
	char *subject;
	int rc;

	/* A version 1 certificate has no extensions, hence no CA:TRUE: GnuTLS
	 * (and OpenSSL) accept one as a trusted root but never in the middle
	 * of a chain. `openssl x509 -req` without -extfile makes exactly that.
	 * A self-signed one in a chain is the root sent along: root rules. */
	if (intermediate && gnutls_x509_crt_get_version(crt) < 3 &&
	    !gnutls_x509_crt_check_issuer(crt, crt)) {
		subject = ks_crt_subject(crt);
		snprintf(why, whylen, "%s is a version 1 certificate (no extensions, so not a CA "
		         "for an intermediate)", subject ? subject : "certificate");
		free(subject);
		return false;
	}
	if (!ks_crt_is_ca(crt, why, whylen))
		return false;
	/* A CA with a keyUsage extension must list keyCertSign: verifiers
	 * (GnuTLS, OpenSSL) refuse what it signed otherwise. No extension at
	 * all means no restriction. */
	rc = gnutls_x509_crt_get_key_usage(crt, &usage, &crit);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
	    (rc >= 0 && (usage & GNUTLS_KEY_KEY_CERT_SIGN)))
		return true;
	subject = ks_crt_subject(crt);
	if (rc < 0)
		snprintf(why, whylen, "%s: cannot read keyUsage (%s)", subject ? subject : "certificate",
		         gnutls_strerror(rc));
	else
		snprintf(why, whylen, "%s is a CA certificate whose keyUsage lacks keyCertSign",
		         subject ? subject : "certificate");
	free(subject);
	return false;
}

static void ks_warn_crt(gnutls_x509_crt_t crt, const char *label, bool chain, time_t now,
                        void (*emit)(void *, const char *), void *arg)
{
	time_t na = gnutls_x509_crt_get_expiration_time(crt);
	time_t nb = gnutls_x509_crt_get_activation_time(crt);
	char line[1024], when[32], what[700];
	char *subject = NULL;

	if (chain) {
		subject = ks_crt_subject(crt);
		snprintf(what, sizeof what, "chain certificate %s of \"%s\"", subject ? subject : "?",
		         label);
	} else {
		snprintf(what, sizeof what, "\"%s\"", label);
	}
	if (na != (time_t)-1 && na < now) {
		ks_time_fmt(na, when, sizeof when);
		snprintf(line, sizeof line, "%s %s expired on %s", code_str(CHD_KS_EXPIRING), what, when);
		emit(arg, line);
	} else if (na != (time_t)-1 && na - now <= (time_t)KS_EXPIRY_WARN_DAYS * 86400) {
		long days = (long)((na - now + 86399) / 86400);

		ks_time_fmt(na, when, sizeof when);
		snprintf(line, sizeof line, "%s %s expires in %ld day%s, on %s",
		         code_str(CHD_KS_EXPIRING), what, days, days == 1 ? "" : "s", when);
		emit(arg, line);
	}
	if (nb != (time_t)-1 && nb > now) {
		ks_time_fmt(nb, when, sizeof when);
		snprintf(line, sizeof line, "%s is not valid before %s", what, when);
		emit(arg, line);
	}
	free(subject);
}

bool ks_entry_chain_complete(const struct ks_entry *e, const gnutls_x509_crt_t *trusted,
                             unsigned ntrusted, char *why, size_t whylen)
{
	gnutls_x509_crt_t *certs = calloc(1 + e->nchain, sizeof *certs);
	unsigned i, n = 0;
	bool ok = false;
	size_t len;

	if (certs == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	for (i = 0; i < 1 + e->nchain; i++) {
		if (gnutls_x509_crt_init(&certs[n]) < 0)
			break;
		if (gnutls_x509_crt_import(certs[n], i == 0 ? &e->der : &e->chain[i - 1],
		                           GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(certs[n]);
			break;
		}
		n++;
	}
	if (n == 1 + e->nchain)
		ok = ks_chain_complete(certs, n, trusted, ntrusted, why, whylen);
	else
		snprintf(why, whylen, "damaged certificate in the entry");
	ks_certs_free(certs, n);
	len = strlen(why);
	while (len > 0 && (why[len - 1] == ' ' || why[len - 1] == '.'))
		why[--len] = '\0';
	return ok;
}

void ks_entry_warnings(const struct ks_entry *e, const gnutls_x509_crt_t *trusted,
                       unsigned ntrusted, void (*emit)(void *arg, const char *line), void *arg)
{
	time_t now = time(NULL);
	char line[1200], why[512], when[32];
	unsigned i;

	if (e->kind == KS_KIND_CRL) {
		gnutls_x509_crl_t crl;
		time_t next;

		if (gnutls_x509_crl_init(&crl) < 0)
			return;
		if (gnutls_x509_crl_import(crl, &e->der, GNUTLS_X509_FMT_DER) == 0) {
			next = gnutls_x509_crl_get_next_update(crl);
			if (next != (time_t)-1 && next < now) {
				ks_time_fmt(next, when, sizeof when);
				snprintf(line, sizeof line, "CRL \"%s\" is out of date: its next update "
				         "was due on %s", e->label, when);
				emit(arg, line);
			}
		}
		gnutls_x509_crl_deinit(crl);
		return;
	}
	for (i = 0; i < 1 + (e->kind == KS_KIND_PERSONAL ? e->nchain : 0); i++) {
		gnutls_x509_crt_t crt;

		if (gnutls_x509_crt_init(&crt) < 0)
			return;
		if (gnutls_x509_crt_import(crt, i == 0 ? &e->der : &e->chain[i - 1],
		                           GNUTLS_X509_FMT_DER) == 0)
			ks_warn_crt(crt, e->label, i > 0, now, emit, arg);
		gnutls_x509_crt_deinit(crt);
	}
	if (e->kind == KS_KIND_PERSONAL &&
	    !ks_entry_chain_complete(e, trusted, ntrusted, why, sizeof why)) {
		snprintf(line, sizeof line, "%s the chain of \"%s\" does not reach a trusted "
		         "certificate in this keystore: %s", code_str(CHD_KS_CHAIN), e->label, why);
		emit(arg, line);
	}
}

int ks_entry_personal(const char *label, gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key,
                      const char *pw, gnutls_x509_crt_t *chain, unsigned nchain,
                      struct ks_entry *e, char *err, size_t errlen)
{
	gnutls_datum_t enc = { NULL, 0 };
	unsigned i;
	int r;

	memset(e, 0, sizeof *e);
	str_copy(e->label, label, sizeof e->label);
	e->kind = KS_KIND_PERSONAL;
	e->created = (int64_t)time(NULL);
	if (ks_crt_der(leaf, &e->der) != 0)
		goto nomem;
	r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, pw,
	                                      GNUTLS_PKCS_PBES2_AES_256, &enc);
	if (r < 0) {
		ks_entry_clear(e);
		snprintf(err, errlen, "cannot encrypt the private key: %s", gnutls_strerror(r));
		return -1;
	}
	e->key.data = malloc(enc.size);
	if (e->key.data == NULL) {
		gnutls_free(enc.data);
		goto nomem;
	}
	memcpy(e->key.data, enc.data, enc.size);
	e->key.size = enc.size;
	gnutls_free(enc.data);
	if (nchain > 0) {
		e->chain = calloc(nchain, sizeof *e->chain);
		if (e->chain == NULL)
			goto nomem;
		for (i = 0; i < nchain; i++) {
			if (ks_crt_der(chain[i], &e->chain[i]) != 0)
				goto nomem;
			e->nchain = i + 1;
		}
	}
	return 0;
nomem:
	ks_entry_clear(e);
	snprintf(err, errlen, "out of memory");
	return -1;
}
