/* Certificate, key and CRL files, and the facts list/show print about them. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/crypto.h>

#include "chand/util.h"
#include "ks_int.h"

static char *ks_gnutls_strdup(gnutls_datum_t *d, int rc);
static const char *ks_curve_name(gnutls_ecc_curve_t c);

void ks_datum_wipe(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		secure_zero(d->data, d->size);
		free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

int ks_file_read(const char *path, gnutls_datum_t *out, char *err, size_t errlen)
{
	size_t len;
	char *buf = file_read_all(path, KS_FILE_MAX, &len, err, errlen);

	out->data = NULL;
	out->size = 0;
	if (buf == NULL)
		return -1;
	if (len == 0) {
		snprintf(err, errlen, "%s is empty", path);
		free(buf);
		return -1;
	}
	out->data = (unsigned char *)buf;
	out->size = (unsigned)len;
	return 0;
}

bool ks_has_pem(const gnutls_datum_t *d, const char *tag)
{
	char marker[64];
	int n = snprintf(marker, sizeof marker, "-----BEGIN %s", tag);

	return n > 0 && (size_t)n < sizeof marker &&
	       memmem(d->data, d->size, marker, (size_t)n) != NULL;
}

int ks_certs_import(const gnutls_datum_t *data, const char *name, gnutls_x509_crt_t **certs,
                    unsigned *n, char *err, size_t errlen)
{
	gnutls_x509_crt_t *v;
	int rc;

	*certs = NULL;
	*n = 0;
	if (ks_has_pem(data, "")) {
		gnutls_x509_crt_t *list = NULL;
		unsigned cnt = 0;

		rc = gnutls_x509_crt_list_import2(&list, &cnt, data, GNUTLS_X509_FMT_PEM, 0);
		if (rc < 0 || cnt == 0) {
			snprintf(err, errlen, "%s holds no readable PEM certificate (%s)", name,
			         rc < 0 ? gnutls_strerror(rc) : "none found");
			return -1;
		}
		v = malloc(cnt * sizeof *v);
		if (v == NULL) {
			while (cnt > 0)
				gnutls_x509_crt_deinit(list[--cnt]);
			gnutls_free(list);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(v, list, cnt * sizeof *v);
		gnutls_free(list);
		*certs = v;
		*n = cnt;
		return 0;
	}
	v = malloc(sizeof *v);
	if (v == NULL || gnutls_x509_crt_init(&v[0]) < 0) {
		free(v);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = gnutls_x509_crt_import(v[0], data, GNUTLS_X509_FMT_DER);
	if (rc < 0) {
		gnutls_x509_crt_deinit(v[0]);
		free(v);
		snprintf(err, errlen, "%s is not a PEM or DER certificate (%s)", name, gnutls_strerror(rc));
		return -1;
	}
	*certs = v;
	*n = 1;
	return 0;
}

int ks_certs_load(const char *path, gnutls_x509_crt_t **certs, unsigned *n, char *err,
                  size_t errlen)
{
	gnutls_datum_t d;
	int rc;

	*certs = NULL;
	*n = 0;
	if (ks_file_read(path, &d, err, errlen) != 0)
		return -1;
	rc = ks_certs_import(&d, path, certs, n, err, errlen);
	free(d.data);
	return rc;
}

void ks_certs_free(gnutls_x509_crt_t *certs, unsigned n)
{
	unsigned i;

	if (certs == NULL)
		return;
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(certs[i]);
	free(certs);
}

int ks_key_import(const gnutls_datum_t *data, const char *name, const char *pw,
                  gnutls_x509_privkey_t *key, enum chd_code_id *code, char *err, size_t errlen)
{
	bool pem = ks_has_pem(data, "");
	int rc;

	*key = NULL;
	*code = CHD_KS_BAD_FILE;
	if (pem && !ks_has_pem(data, "PRIVATE KEY") && !ks_has_pem(data, "RSA PRIVATE KEY") &&
	    !ks_has_pem(data, "EC PRIVATE KEY") && !ks_has_pem(data, "ENCRYPTED PRIVATE KEY") &&
	    !ks_has_pem(data, "DSA PRIVATE KEY")) {
		snprintf(err, errlen, "%s holds no private key", name);
		return -1;
	}
	if (gnutls_x509_privkey_init(key) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* import2 recognises plain and encrypted PKCS#8 and the traditional
	 * OpenSSL PEM encryption (genrsa -aes256 / -des3). A missing and a
	 * wrong password give the same error, so whether one was supplied
	 * tells the operator which it is. */
	rc = gnutls_x509_privkey_import2(*key, data, pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
	                                 pw, 0);
	if (rc < 0) {
		gnutls_x509_privkey_deinit(*key);
		*key = NULL;
		if (rc == GNUTLS_E_DECRYPTION_FAILED) {
			*code = CHD_KS_KEY_PASSWORD;
			if (pw != NULL)
				snprintf(err, errlen, "wrong password for private key %s "
				         "(from --key-password-file)", name);
			else
				snprintf(err, errlen, "private key %s is encrypted: give its password "
				         "with --key-password-file", name);
		} else {
			snprintf(err, errlen, "cannot read private key %s: %s", name, gnutls_strerror(rc));
		}
		return -1;
	}
	return 0;
}

int ks_crl_load(const char *path, gnutls_x509_crl_t *crl, char *err, size_t errlen)
{
	gnutls_datum_t d;
	int rc;

	*crl = NULL;
	if (ks_file_read(path, &d, err, errlen) != 0)
		return -1;
	if (gnutls_x509_crl_init(crl) < 0) {
		free(d.data);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = gnutls_x509_crl_import(*crl, &d, ks_has_pem(&d, "") ? GNUTLS_X509_FMT_PEM
	                                                          : GNUTLS_X509_FMT_DER);
	free(d.data);
	if (rc < 0) {
		gnutls_x509_crl_deinit(*crl);
		*crl = NULL;
		snprintf(err, errlen, "%s is not a PEM or DER CRL (%s)", path, gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

bool ks_key_matches(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	unsigned char a[64], b[64];
	size_t na = sizeof a, nb = sizeof b;

	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &na) < 0 ||
	    gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &nb) < 0)
		return false;
	return na == nb && memcmp(a, b, na) == 0;
}

/* Puts chain in issuing order starting from leaf (issuer of the leaf first);
 * certificates that do not fit the path stay at the end in their order. */
void ks_chain_order(gnutls_x509_crt_t leaf, gnutls_x509_crt_t *chain, unsigned n)
{
	gnutls_x509_crt_t cur = leaf;
	unsigned pos, j;

	for (pos = 0; pos < n; pos++) {
		for (j = pos; j < n; j++)
			if (gnutls_x509_crt_check_issuer(cur, chain[j]))
				break;
		if (j == n)
			return;
		if (j != pos) {
			gnutls_x509_crt_t t = chain[j];

			memmove(&chain[pos + 1], &chain[pos], (j - pos) * sizeof *chain);
			chain[pos] = t;
		}
		cur = chain[pos];
		if (gnutls_x509_crt_check_issuer(cur, cur))
			return;
	}
}

int ks_crt_der(gnutls_x509_crt_t crt, gnutls_datum_t *out)
{
	gnutls_datum_t d = { NULL, 0 };

	out->data = NULL;
	out->size = 0;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &d) < 0)
		return -1;
	out->data = malloc(d.size);
	if (out->data == NULL) {
		gnutls_free(d.data);
		return -1;
	}
	memcpy(out->data, d.data, d.size);
	out->size = d.size;
	gnutls_free(d.data);
	return 0;
}

static char *ks_gnutls_strdup(gnutls_datum_t *d, int rc)
{
	char *s;

	if (rc < 0 || d->data == NULL)
		return strdup("");
	s = strndup((const char *)d->data, d->size);
	gnutls_free(d->data);
	return s;
}

char *ks_crt_subject(gnutls_x509_crt_t crt)
{
	gnutls_datum_t d = { NULL, 0 };

	return ks_gnutls_strdup(&d, gnutls_x509_crt_get_dn3(crt, &d, 0));
}

char *ks_crt_issuer(gnutls_x509_crt_t crt)
{
	gnutls_datum_t d = { NULL, 0 };

	return ks_gnutls_strdup(&d, gnutls_x509_crt_get_issuer_dn3(crt, &d, 0));
}

char *ks_crl_issuer(gnutls_x509_crl_t crl)
{
	gnutls_datum_t d = { NULL, 0 };

	return ks_gnutls_strdup(&d, gnutls_x509_crl_get_issuer_dn3(crl, &d, 0));
}

void ks_fingerprint(const gnutls_datum_t *der, char out[KS_FPR_LEN])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char h[32];
	size_t i;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der->data, der->size, h) < 0) {
		str_copy(out, "?", KS_FPR_LEN);
		return;
	}
	for (i = 0; i < sizeof h; i++) {
		out[3 * i] = hex[h[i] >> 4];
		out[3 * i + 1] = hex[h[i] & 15];
		out[3 * i + 2] = ':';
	}
	out[3 * sizeof h - 1] = '\0';
}

void ks_time_fmt(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		str_copy(buf, "unknown", len);
}

static const char *ks_curve_name(gnutls_ecc_curve_t c)
{
	switch (c) {
	case GNUTLS_ECC_CURVE_SECP256R1: return "P-256";
	case GNUTLS_ECC_CURVE_SECP384R1: return "P-384";
	case GNUTLS_ECC_CURVE_SECP521R1: return "P-521";
	default: return gnutls_ecc_curve_get_name(c) ? gnutls_ecc_curve_get_name(c) : "unknown";
	}
}

void ks_crt_keydesc(gnutls_x509_crt_t crt, char *buf, size_t len)
{
	unsigned bits = 0;
	int alg = gnutls_x509_crt_get_pk_algorithm(crt, &bits);

	switch (alg) {
	case GNUTLS_PK_RSA:
	case GNUTLS_PK_RSA_PSS:
		snprintf(buf, len, "%s %u", alg == GNUTLS_PK_RSA ? "RSA" : "RSA-PSS", bits);
		return;
	case GNUTLS_PK_ECDSA: {
		gnutls_ecc_curve_t curve;
		gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };

		if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) < 0) {
			snprintf(buf, len, "EC %u", bits);
			return;
		}
		gnutls_free(x.data);
		gnutls_free(y.data);
		snprintf(buf, len, "EC %s", ks_curve_name(curve));
		return;
	}
	case GNUTLS_PK_EDDSA_ED25519:
		snprintf(buf, len, "Ed25519");
		return;
	case GNUTLS_PK_EDDSA_ED448:
		snprintf(buf, len, "Ed448");
		return;
	default:
		if (alg < 0)
			snprintf(buf, len, "unknown");
		else
			snprintf(buf, len, "%s %u", gnutls_pk_get_name((gnutls_pk_algorithm_t)alg), bits);
	}
}

/* "DNS:localhost, IP:127.0.0.1", malloc'd; "" when the certificate has none. */
char *ks_crt_sans(gnutls_x509_crt_t crt)
{
	char *out = strdup("");
	unsigned i;

	for (i = 0; out != NULL; i++) {
		unsigned char buf[1024];
		char item[1100], ip[INET6_ADDRSTRLEN];
		size_t sz = sizeof buf - 1;
		unsigned crit = 0;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz, &crit);
		char *n;

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			snprintf(item, sizeof item, "(long name)");
		} else if (type < 0) {
			break;
		} else {
			buf[sz] = '\0';
			switch (type) {
			case GNUTLS_SAN_DNSNAME:
				snprintf(item, sizeof item, "DNS:%s", (char *)buf);
				break;
			case GNUTLS_SAN_RFC822NAME:
				snprintf(item, sizeof item, "email:%s", (char *)buf);
				break;
			case GNUTLS_SAN_URI:
				snprintf(item, sizeof item, "URI:%s", (char *)buf);
				break;
			case GNUTLS_SAN_IPADDRESS:
				if (inet_ntop(sz == 16 ? AF_INET6 : AF_INET, buf, ip, sizeof ip) == NULL ||
				    (sz != 4 && sz != 16))
					snprintf(item, sizeof item, "IP:?");
				else
					snprintf(item, sizeof item, "IP:%s", ip);
				break;
			default:
				snprintf(item, sizeof item, "other:%d", type);
			}
		}
		if (asprintf(&n, "%s%s%s", out, *out ? ", " : "", item) < 0)
			n = NULL;
		free(out);
		out = n;
	}
	return out;
}

void ks_crt_serial(gnutls_x509_crt_t crt, char *buf, size_t len)
{
	unsigned char s[64];
	size_t n = sizeof s;

	if (gnutls_x509_crt_get_serial(crt, s, &n) < 0 || 2 * n + 1 > len) {
		str_copy(buf, "?", len);
		return;
	}
	hex_encode(s, n, buf);
}

bool ks_crt_is_ca(gnutls_x509_crt_t crt, char *why, size_t whylen)
{
	unsigned crit = 0, ca = 0;
	int pathlen = -1;
	int rc = gnutls_x509_crt_get_basic_constraints(crt, &crit, &ca, &pathlen);
	char *subject;

	if (rc > 0 && ca)
		return true;
	/* Version 1 certificates have no extensions at all; old roots are v1
	 * and still CAs. A v3 certificate without basicConstraints is not. */
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE && gnutls_x509_crt_get_version(crt) < 3)
		return true;
	subject = ks_crt_subject(crt);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		snprintf(why, whylen, "%s is not a CA certificate (version 3 without basicConstraints)",
		         subject ? subject : "certificate");
	else if (rc < 0)
		snprintf(why, whylen, "%s: cannot read basicConstraints (%s)",
		         subject ? subject : "certificate", gnutls_strerror(rc));
	else
		snprintf(why, whylen, "%s is not a CA certificate (basicConstraints CA:FALSE)",
		         subject ? subject : "certificate");
	free(subject);
	return false;
}

bool ks_chain_complete(const gnutls_x509_crt_t *certs, unsigned n,
                       const gnutls_x509_crt_t *trusted, unsigned ntrusted,
                       char *why, size_t whylen)
{
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned status = 0;
	int rc;

	if (ntrusted == 0) {
		snprintf(why, whylen, "the keystore trusts no CA certificate");
		return false;
	}
	if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	/* The list borrows the certificates: deinit(tl, 0) leaves them alone. */
	rc = gnutls_x509_trust_list_add_cas(tl, trusted, ntrusted, 0);
	if (rc >= 0)
		rc = gnutls_x509_trust_list_verify_crt2(tl, (gnutls_x509_crt_t *)(uintptr_t)certs, n,
		                                        NULL, 0,
		                                        GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
		                                        GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
		                                        &status, NULL);
	gnutls_x509_trust_list_deinit(tl, 0);
	if (rc < 0) {
		snprintf(why, whylen, "verification failed: %s", gnutls_strerror(rc));
		return false;
	}
	if (status == 0)
		return true;
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
		snprintf(why, whylen, "%.*s", (int)out.size, (const char *)out.data);
		gnutls_free(out.data);
	} else {
		snprintf(why, whylen, "verification status 0x%x", status);
	}
	return false;
}
