/* The agent's view of the keystore: every entry decrypted into memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/util.h"
#include "ks_int.h"

static int ks_mat_crt(const gnutls_datum_t *der, gnutls_x509_crt_t *out);
static int ks_mat_add(struct ks_material *m, const struct ks_entry *e, const char *pw,
                      const char *path, char *err, size_t errlen);

static int ks_mat_crt(const gnutls_datum_t *der, gnutls_x509_crt_t *out)
{
	if (gnutls_x509_crt_init(out) < 0) {
		*out = NULL;
		return -1;
	}
	if (gnutls_x509_crt_import(*out, der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int ks_mat_add(struct ks_material *m, const struct ks_entry *e, const char *pw,
                      const char *path, char *err, size_t errlen)
{
	void *nv;
	unsigned i;
	int rc;

	switch (e->kind) {
	case KS_KIND_PERSONAL: {
		struct ks_personal *p;

		nv = realloc(m->personal, (m->npersonal + 1) * sizeof *m->personal);
		if (nv == NULL)
			goto nomem;
		m->personal = nv;
		p = &m->personal[m->npersonal];
		memset(p, 0, sizeof *p);
		str_copy(p->label, e->label, sizeof p->label);
		m->npersonal++; /* counted now so ks_material_free cleans up on error */
		p->certs = calloc(1 + e->nchain, sizeof *p->certs);
		if (p->certs == NULL)
			goto nomem;
		for (i = 0; i < 1 + e->nchain; i++) {
			if (ks_mat_crt(i == 0 ? &e->der : &e->chain[i - 1], &p->certs[i]) != 0) {
				snprintf(err, errlen, "keystore %s: entry %s holds a damaged certificate",
				         path, e->label);
				return -1;
			}
			p->ncerts = i + 1;
		}
		if (e->key.data == NULL) {
			snprintf(err, errlen, "keystore %s: personal entry %s has no private key",
			         path, e->label);
			return -1;
		}
		if (gnutls_x509_privkey_init(&p->key) < 0) {
			p->key = NULL;
			goto nomem;
		}
		rc = gnutls_x509_privkey_import_pkcs8(p->key, &e->key, GNUTLS_X509_FMT_DER, pw, 0);
		if (rc < 0) {
			snprintf(err, errlen, "keystore %s: cannot decrypt the key of %s: %s", path,
			         e->label, gnutls_strerror(rc));
			return -1;
		}
		return 0;
	}
	case KS_KIND_TRUSTED:
		nv = realloc(m->trusted, (m->ntrusted + 1) * sizeof *m->trusted);
		if (nv == NULL)
			goto nomem;
		m->trusted = nv;
		if (ks_mat_crt(&e->der, &m->trusted[m->ntrusted]) != 0) {
			snprintf(err, errlen, "keystore %s: entry %s holds a damaged certificate", path,
			         e->label);
			return -1;
		}
		m->ntrusted++;
		return 0;
	case KS_KIND_CRL:
		nv = realloc(m->crls, (m->ncrls + 1) * sizeof *m->crls);
		if (nv == NULL)
			goto nomem;
		m->crls = nv;
		if (gnutls_x509_crl_init(&m->crls[m->ncrls]) < 0)
			goto nomem;
		if (gnutls_x509_crl_import(m->crls[m->ncrls], &e->der, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crl_deinit(m->crls[m->ncrls]);
			snprintf(err, errlen, "keystore %s: entry %s holds a damaged CRL", path, e->label);
			return -1;
		}
		m->ncrls++;
		return 0;
	}
	snprintf(err, errlen, "keystore %s: entry %s has an unknown kind", path, e->label);
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int ks_material_load(const char *ks_path, const char *stash_path,
                     struct ks_material **out, enum chd_code_id *code,
                     char *err, size_t errlen)
{
	char pw[KS_PASSWORD_MAX + 1];
	char *stash = NULL;
	struct ks_db *db = NULL;
	struct ks_entry *ents = NULL;
	struct ks_material *m = NULL;
	size_t n = 0, i;
	int rc = -1;

	*out = NULL;
	*code = CHD_KS_OPEN;
	if (ks_path == NULL || *ks_path == '\0') {
		snprintf(err, errlen, "no keystore path configured");
		return -1;
	}
	stash = stash_path ? strdup(stash_path) : ks_stash_path(ks_path);
	if (stash == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ks_db_open(ks_path, stash, false, &db, code, err, errlen) != 0)
		goto out;
	if (ks_pw_from_stash(stash, pw, code, err, errlen) != 0)
		goto out;
	if (ks_db_check_password(db, pw, code, err, errlen) != 0)
		goto out;
	*code = CHD_KS_OPEN;
	if (ks_db_list(db, &ents, &n, err, errlen) != 0)
		goto out;
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (ks_mat_add(m, &ents[i], pw, ks_path, err, errlen) != 0)
			goto out;
	*out = m;
	m = NULL;
	rc = 0;
out:
	secure_zero(pw, sizeof pw);
	ks_material_free(m);
	ks_entries_free(ents, n);
	ks_db_close(db);
	free(stash);
	return rc;
}

void ks_material_free(struct ks_material *m)
{
	size_t i;
	unsigned j;

	if (m == NULL)
		return;
	for (i = 0; i < m->npersonal; i++) {
		struct ks_personal *p = &m->personal[i];

		if (p->certs != NULL)
			for (j = 0; j < p->ncerts; j++)
				gnutls_x509_crt_deinit(p->certs[j]);
		free(p->certs);
		if (p->key != NULL)
			gnutls_x509_privkey_deinit(p->key);
	}
	free(m->personal);
	for (i = 0; i < m->ntrusted; i++)
		gnutls_x509_crt_deinit(m->trusted[i]);
	free(m->trusted);
	for (i = 0; i < m->ncrls; i++)
		gnutls_x509_crl_deinit(m->crls[i]);
	free(m->crls);
	free(m);
}

const struct ks_personal *ks_material_find(const struct ks_material *m, const char *label)
{
	size_t i;

	if (m == NULL || label == NULL)
		return NULL;
	for (i = 0; i < m->npersonal; i++)
		if (strcmp(m->personal[i].label, label) == 0)
			return &m->personal[i];
	return NULL;
}
