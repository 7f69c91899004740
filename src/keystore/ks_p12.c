/* PKCS#12 import. gnutls_pkcs12_simple_parse picks one key and which one is
 * undefined when a file holds several, so walk the bags ourselves, pair
 * each key with its certificate by localKeyID (or by public key), and name
 * the pair after its friendlyName. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/pkcs12.h>

#include "chand/util.h"
#include "ks_int.h"

struct ks_p12_elem {
	char *name;
	gnutls_datum_t kid; /* localKeyID, malloc'd copy */
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t cert;
	bool used;
};

struct ks_p12_work {
	struct ks_p12_elem *keys, *certs;
	unsigned nkeys, ncerts;
};

static int ks_p12_push(struct ks_p12_elem **v, unsigned *n, gnutls_pkcs12_bag_t bag, unsigned j,
                       struct ks_p12_elem **added);
static int ks_p12_bag(struct ks_p12_work *w, gnutls_pkcs12_bag_t bag, const char *path,
                      const char *pw, bool given, enum chd_code_id *code, char *err,
                      size_t errlen);
static void ks_p12_badpw(const char *path, bool given, enum chd_code_id *code, char *err,
                         size_t errlen);

static void ks_p12_badpw(const char *path, bool given, enum chd_code_id *code, char *err,
                         size_t errlen)
{
	*code = CHD_KS_KEY_PASSWORD;
	if (given)
		snprintf(err, errlen, "wrong password for PKCS#12 file %s", path);
	else
		snprintf(err, errlen, "PKCS#12 file %s is protected by a password: give it "
		         "with --p12-password-file", path);
}
static int ks_p12_pair(struct ks_p12_work *w, const char *path, struct ks_p12 *out,
                       char *err, size_t errlen);
static void ks_p12_work_free(struct ks_p12_work *w);

static int ks_p12_push(struct ks_p12_elem **v, unsigned *n, gnutls_pkcs12_bag_t bag, unsigned j,
                       struct ks_p12_elem **added)
{
	struct ks_p12_elem *nv = realloc(*v, (*n + 1) * sizeof *nv), *e;
	char *name = NULL;
	gnutls_datum_t kid = { NULL, 0 };

	if (nv == NULL)
		return -1;
	*v = nv;
	e = &nv[*n];
	memset(e, 0, sizeof *e);
	/* Both point into the bag: copy them before it is freed. */
	if (gnutls_pkcs12_bag_get_friendly_name(bag, j, &name) >= 0 && name != NULL &&
	    (e->name = strdup(name)) == NULL)
		return -1;
	if (gnutls_pkcs12_bag_get_key_id(bag, j, &kid) >= 0 && kid.data != NULL && kid.size > 0) {
		e->kid.data = malloc(kid.size);
		if (e->kid.data == NULL) {
			free(e->name);
			return -1;
		}
		memcpy(e->kid.data, kid.data, kid.size);
		e->kid.size = kid.size;
	}
	(*n)++;
	*added = e;
	return 0;
}

static int ks_p12_bag(struct ks_p12_work *w, gnutls_pkcs12_bag_t bag, const char *path,
                      const char *pw, bool given, enum chd_code_id *code, char *err,
                      size_t errlen)
{
	int count, j, rc;

	if (gnutls_pkcs12_bag_get_type(bag, 0) == GNUTLS_BAG_ENCRYPTED) {
		rc = gnutls_pkcs12_bag_decrypt(bag, pw);
		if (rc < 0) {
			if (rc == GNUTLS_E_DECRYPTION_FAILED) {
				ks_p12_badpw(path, given, code, err, errlen);
			} else {
				snprintf(err, errlen, "cannot decrypt a bag of PKCS#12 file %s: %s",
				         path, gnutls_strerror(rc));
			}
			return -1;
		}
	}
	count = gnutls_pkcs12_bag_get_count(bag);
	if (count < 0) {
		snprintf(err, errlen, "damaged PKCS#12 file %s: %s", path, gnutls_strerror(count));
		return -1;
	}
	for (j = 0; j < count; j++) {
		int type = gnutls_pkcs12_bag_get_type(bag, (unsigned)j);
		gnutls_datum_t data;
		struct ks_p12_elem *e;

		if (type != GNUTLS_BAG_PKCS8_ENCRYPTED_KEY && type != GNUTLS_BAG_PKCS8_KEY &&
		    type != GNUTLS_BAG_CERTIFICATE)
			continue;
		rc = gnutls_pkcs12_bag_get_data(bag, (unsigned)j, &data);
		if (rc < 0) {
			snprintf(err, errlen, "damaged PKCS#12 file %s: %s", path, gnutls_strerror(rc));
			return -1;
		}
		if (type == GNUTLS_BAG_CERTIFICATE) {
			if (ks_p12_push(&w->certs, &w->ncerts, bag, (unsigned)j, &e) != 0)
				goto nomem;
			if (gnutls_x509_crt_init(&e->cert) < 0) {
				e->cert = NULL;
				goto nomem;
			}
			rc = gnutls_x509_crt_import(e->cert, &data, GNUTLS_X509_FMT_DER);
		} else {
			if (ks_p12_push(&w->keys, &w->nkeys, bag, (unsigned)j, &e) != 0)
				goto nomem;
			if (gnutls_x509_privkey_init(&e->key) < 0) {
				e->key = NULL;
				goto nomem;
			}
			rc = gnutls_x509_privkey_import_pkcs8(e->key, &data, GNUTLS_X509_FMT_DER,
			                                      type == GNUTLS_BAG_PKCS8_KEY ? NULL : pw,
			                                      type == GNUTLS_BAG_PKCS8_KEY
			                                      ? GNUTLS_PKCS_PLAIN : 0);
			if (rc == GNUTLS_E_DECRYPTION_FAILED) {
				ks_p12_badpw(path, given, code, err, errlen);
				return -1;
			}
		}
		if (rc < 0) {
			snprintf(err, errlen, "cannot read a %s in PKCS#12 file %s: %s",
			         type == GNUTLS_BAG_CERTIFICATE ? "certificate" : "key", path,
			         gnutls_strerror(rc));
			return -1;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int ks_p12_pair(struct ks_p12_work *w, const char *path, struct ks_p12 *out,
                       char *err, size_t errlen)
{
	unsigned i, j, n = 0;

	out->items = calloc(w->nkeys, sizeof *out->items);
	out->certs = calloc(w->ncerts ? w->ncerts : 1, sizeof *out->certs);
	if (out->items == NULL || out->certs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < w->nkeys; i++) {
		struct ks_p12_elem *k = &w->keys[i], *c = NULL;

		for (j = 0; j < w->ncerts && c == NULL; j++)
			if (!w->certs[j].used && k->kid.size > 0 && w->certs[j].kid.size == k->kid.size &&
			    memcmp(w->certs[j].kid.data, k->kid.data, k->kid.size) == 0)
				c = &w->certs[j];
		for (j = 0; j < w->ncerts && c == NULL; j++)
			if (!w->certs[j].used && ks_key_matches(w->certs[j].cert, k->key))
				c = &w->certs[j];
		if (c == NULL) {
			snprintf(err, errlen, "PKCS#12 file %s: no certificate for private key %s", path,
			         k->name ? k->name : "(unnamed)");
			return -1;
		}
		if (!ks_key_matches(c->cert, k->key)) {
			snprintf(err, errlen, "PKCS#12 file %s: the key %s does not match its certificate",
			         path, k->name ? k->name : "(unnamed)");
			return -1;
		}
		c->used = true;
		out->items[n].key = k->key;
		k->key = NULL;
		out->items[n].cert = c->cert;
		c->cert = NULL;
		out->items[n].name = k->name ? k->name : c->name;
		if (k->name != NULL)
			k->name = NULL;
		else
			c->name = NULL;
		out->nitems = ++n;
	}
	for (j = 0; j < w->ncerts; j++)
		if (!w->certs[j].used) {
			out->certs[out->ncerts++] = w->certs[j].cert;
			w->certs[j].cert = NULL;
		}
	return 0;
}

static void ks_p12_work_free(struct ks_p12_work *w)
{
	unsigned i;

	for (i = 0; i < w->nkeys; i++) {
		free(w->keys[i].name);
		free(w->keys[i].kid.data);
		if (w->keys[i].key != NULL)
			gnutls_x509_privkey_deinit(w->keys[i].key);
	}
	for (i = 0; i < w->ncerts; i++) {
		free(w->certs[i].name);
		free(w->certs[i].kid.data);
		if (w->certs[i].cert != NULL)
			gnutls_x509_crt_deinit(w->certs[i].cert);
	}
	free(w->keys);
	free(w->certs);
}

int ks_p12_load(const char *path, const char *pw, struct ks_p12 *out, enum chd_code_id *code,
                char *err, size_t errlen)
{
	struct ks_p12_work w = { NULL, NULL, 0, 0 };
	gnutls_pkcs12_t p12 = NULL;
	gnutls_datum_t data;
	const char *p = pw ? pw : "";
	int rc = -1, r;
	unsigned i;

	memset(out, 0, sizeof *out);
	*code = CHD_KS_BAD_FILE;
	if (ks_file_read(path, &data, err, errlen) != 0)
		return -1;
	if (gnutls_pkcs12_init(&p12) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = gnutls_pkcs12_import(p12, &data, ks_has_pem(&data, "") ? GNUTLS_X509_FMT_PEM
	                                                          : GNUTLS_X509_FMT_DER, 0);
	if (r < 0) {
		snprintf(err, errlen, "%s is not a PKCS#12 file (%s)", path, gnutls_strerror(r));
		goto out;
	}
	/* Without a password file try the empty password, which some tools
	 * use; a MAC failure then means "a password is needed". */
	r = gnutls_pkcs12_verify_mac(p12, p);
	if (r == GNUTLS_E_MAC_VERIFY_FAILED) {
		ks_p12_badpw(path, pw != NULL, code, err, errlen);
		goto out;
	}
	/* A file made without a MAC (openssl -nomac) has nothing to verify; a
	 * wrong password then shows when the bags are decrypted. */
	if (r < 0 && r != GNUTLS_E_ASN1_ELEMENT_NOT_FOUND) {
		snprintf(err, errlen, "cannot check the integrity of PKCS#12 file %s: %s", path,
		         gnutls_strerror(r));
		goto out;
	}
	for (i = 0;; i++) {
		gnutls_pkcs12_bag_t bag;

		if (gnutls_pkcs12_bag_init(&bag) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		r = gnutls_pkcs12_get_bag(p12, (int)i, bag);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
			gnutls_pkcs12_bag_deinit(bag);
			break;
		}
		if (r < 0) {
			gnutls_pkcs12_bag_deinit(bag);
			snprintf(err, errlen, "damaged PKCS#12 file %s: %s", path, gnutls_strerror(r));
			goto out;
		}
		r = ks_p12_bag(&w, bag, path, p, pw != NULL, code, err, errlen);
		gnutls_pkcs12_bag_deinit(bag);
		if (r != 0)
			goto out;
	}
	if (w.nkeys == 0) {
		snprintf(err, errlen, "PKCS#12 file %s holds no private key", path);
		goto out;
	}
	if (ks_p12_pair(&w, path, out, err, errlen) != 0) {
		ks_p12_free(out);
		goto out;
	}
	rc = 0;
out:
	ks_p12_work_free(&w);
	if (p12 != NULL)
		gnutls_pkcs12_deinit(p12);
	ks_datum_wipe(&data);
	return rc;
}

void ks_p12_free(struct ks_p12 *p)
{
	unsigned i;

	if (p->items != NULL)
		for (i = 0; i < p->nitems; i++) {
			free(p->items[i].name);
			if (p->items[i].key != NULL)
				gnutls_x509_privkey_deinit(p->items[i].key);
			if (p->items[i].cert != NULL)
				gnutls_x509_crt_deinit(p->items[i].cert);
		}
	if (p->certs != NULL)
		for (i = 0; i < p->ncerts; i++)
			gnutls_x509_crt_deinit(p->certs[i]);
	free(p->items);
	free(p->certs);
	memset(p, 0, sizeof *p);
}
