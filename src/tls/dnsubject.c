/* The certificate side of SSLPEER: a struct dnf_subject built from the
 * parsed RDNs of a GnuTLS certificate.  Kept apart from dnfilter.c so the
 * filter itself stays pure.  We walk the RDN sequence rather than parse a
 * DN string: strings depend on escaping and on which order GnuTLS prints
 * (get_dn3(.., 0) is RFC 4514 order, the reverse of the encoding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/dnfilter.h"

/* ASN.1 universal tags of the string types a DN may use. */
#define DS_TAG_UTF8 12
#define DS_TAG_PRINTABLE 19
#define DS_TAG_TELETEX 20
#define DS_TAG_IA5 22
#define DS_TAG_UNIVERSAL 28
#define DS_TAG_BMP 30

/* Longest AVA value we convert; X.520 upper bounds are far below this. */
#define DS_VALUE_MAX 4096

static size_t ds_put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Converts an AVA value to UTF-8 in a malloc'd buffer. BMPString and
 * UniversalString are UCS-2/UCS-4 big-endian; TeletexString is taken as
 * Latin-1, which is what it holds in practice. NULL if malformed. */
static char *ds_value_utf8(const gnutls_x509_ava_st *ava, size_t *outlen)
{
	const unsigned char *p = ava->value.data;
	size_t n = ava->value.size, o = 0;
	char *out;

	if (n > DS_VALUE_MAX)
		return NULL;
	out = malloc(n * 4 + 1);
	if (out == NULL)
		return NULL;
	switch (ava->value_tag) {
	case DS_TAG_BMP:
		if (n % 2 != 0)
			goto bad;
		for (size_t i = 0; i < n; i += 2) {
			unsigned long cp = ((unsigned long)p[i] << 8) | p[i + 1];
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
				goto bad;
			o += ds_put_utf8(out + o, cp);
		}
		break;
	case DS_TAG_UNIVERSAL:
		if (n % 4 != 0)
			goto bad;
		for (size_t i = 0; i < n; i += 4) {
			unsigned long cp = ((unsigned long)p[i] << 24) | ((unsigned long)p[i + 1] << 16) |
			                   ((unsigned long)p[i + 2] << 8) | p[i + 3];
			if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
				goto bad;
			o += ds_put_utf8(out + o, cp);
		}
		break;
	case DS_TAG_TELETEX:
		for (size_t i = 0; i < n; i++) {
			if (p[i] == 0)
				goto bad;
			o += ds_put_utf8(out + o, p[i]);
		}
		break;
	default:
		/* UTF8String, PrintableString, IA5String and anything else that
		 * holds bytes: dnf_subject_add refuses what is not UTF-8. */
		memcpy(out, p, n);
		o = n;
		break;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
bad:
	free(out);
	return NULL;
}

int dnf_subject_from_crt(gnutls_x509_crt_t crt, struct dnf_subject *s, char *err,
                         size_t errlen)
{
	gnutls_x509_dn_t dn;
	unsigned char serial[128];
	size_t serial_len = sizeof serial;
	int rc;

	dnf_subject_init(s);
	rc = gnutls_x509_crt_get_subject(crt, &dn);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the certificate subject: %s", gnutls_strerror(rc));
		return -1;
	}
	for (int irdn = 0;; irdn++) {
		for (int iava = 0;; iava++) {
			gnutls_x509_ava_st ava;
			char oid[128];
			char *val;
			size_t vlen = 0;
			int attr;

			rc = gnutls_x509_dn_get_rdn_ava(dn, irdn, iava, &ava);
			if (rc == GNUTLS_E_ASN1_ELEMENT_NOT_FOUND) {
				if (iava == 0)
					goto rdns_done;
				break;
			}
			if (rc < 0) {
				snprintf(err, errlen, "cannot read RDN %d of the subject: %s", irdn + 1,
				         gnutls_strerror(rc));
				goto fail;
			}
			if (ava.oid.size == 0 || ava.oid.size >= sizeof oid)
				continue;
			memcpy(oid, ava.oid.data, ava.oid.size);
			oid[ava.oid.size] = '\0';
			attr = dnf_attr_from_oid(oid);
			if (attr < 0)
				continue;
			val = ds_value_utf8(&ava, &vlen);
			if (val == NULL || dnf_subject_add(s, (enum dnf_attr)attr, val, vlen) != 0) {
				snprintf(err, errlen, "subject %s value is not a valid string",
				         dnf_attr_name((enum dnf_attr)attr));
				free(val);
				goto fail;
			}
			free(val);
		}
	}
rdns_done:
	rc = gnutls_x509_crt_get_serial(crt, serial, &serial_len);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the certificate serial number: %s",
		         gnutls_strerror(rc));
		goto fail;
	}
	if (dnf_subject_set_serial(s, serial, serial_len) != 0) {
		snprintf(err, errlen, "certificate serial number is longer than 64 bytes");
		goto fail;
	}
	return 0;
fail:
	dnf_subject_free(s);
	return -1;
}

static int ds_dn(gnutls_x509_crt_t crt, bool issuer, char *buf, size_t len)
{
	gnutls_datum_t d = { NULL, 0 };
	int rc;

	/* Flag 0 = RFC 4514 order (CN first), the order operators read. */
	rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) : gnutls_x509_crt_get_dn3(crt, &d, 0);
	if (rc < 0) {
		/* An empty subject is legal (SAN-only certificates). */
		if (rc == GNUTLS_E_ASN1_ELEMENT_NOT_FOUND) {
			if (len > 0)
				buf[0] = '\0';
			return 0;
		}
		snprintf(buf, len, "?");
		return -1;
	}
	snprintf(buf, len, "%.*s", (int)d.size, (const char *)d.data);
	gnutls_free(d.data);
	return 0;
}

int dnf_crt_dn(gnutls_x509_crt_t crt, char *buf, size_t len)
{
	return ds_dn(crt, false, buf, len);
}

int dnf_crt_issuer_dn(gnutls_x509_crt_t crt, char *buf, size_t len)
{
	return ds_dn(crt, true, buf, len);
}
