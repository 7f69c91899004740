/* SSLPEER distinguished-name filters (doc/SSLPEER.md), IBM MQ
 * compatible: "CN=QM2, OU=Payments, O=Acme, C=GB".
 *
 * The filter parser and matcher are pure (no I/O, no GnuTLS): the
 * certificate side is a struct dnf_subject, built from a GnuTLS
 * certificate by dnf_subject_from_crt() (dnsubject.c) or by hand in tests.
 * Operator-facing rules: doc/SSLPEER.md. */
#ifndef CHAND_DNFILTER_H
#define CHAND_DNFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/x509.h>

/* Longest filter accepted, in bytes (as IBM MQ's SSLPEER). */
#define DNF_MAX_LEN 1024

/* The attributes a filter may name.  Aliases (ST/SP/S, E/MAIL,
 * UID/USERID) map to one id; dnf_attr_name() gives the canonical name. */
enum dnf_attr {
	DNF_CN = 0,          /* commonName 2.5.4.3 */
	DNF_T,               /* title 2.5.4.12 */
	DNF_OU,              /* organizationalUnitName 2.5.4.11 (positional) */
	DNF_O,               /* organizationName 2.5.4.10 */
	DNF_L,               /* localityName 2.5.4.7 */
	DNF_ST,              /* stateOrProvinceName 2.5.4.8 (ST, SP, S) */
	DNF_C,               /* countryName 2.5.4.6 */
	DNF_STREET,          /* streetAddress 2.5.4.9 */
	DNF_PC,              /* postalCode 2.5.4.17 */
	DNF_DC,              /* domainComponent 0.9.2342.19200300.100.1.25 (positional) */
	DNF_E,               /* emailAddress 1.2.840.113549.1.9.1 (E, MAIL) */
	DNF_SERIALNUMBER,    /* the certificate's serial number, not a subject AVA */
	DNF_UID,             /* userId 0.9.2342.19200300.100.1.1 (UID, USERID) */
	DNF_UNSTRUCTUREDNAME,    /* 1.2.840.113549.1.9.2 */
	DNF_UNSTRUCTUREDADDRESS, /* 1.2.840.113549.1.9.8 */
	DNF_DNQ,             /* dnQualifier 2.5.4.46 */
	DNF__COUNT
};

/* Canonical upper-case name ("CN", "ST", "E", "SERIALNUMBER"...). */
const char *dnf_attr_name(enum dnf_attr a);
/* Name or alias of len bytes, any case -> id; -1 if unknown. */
int dnf_attr_lookup(const char *name, size_t len);
/* Subject attribute OID (dotted) -> id; -1 if the filter cannot name it.
 * Never returns DNF_SERIALNUMBER (the subject's 2.5.4.5 is not the
 * certificate serial number SSLPEER's SERIALNUMBER means). */
int dnf_attr_from_oid(const char *oid);

/* ---- the certificate side ---- */

struct dnf_ava {
	enum dnf_attr attr;
	char *value;         /* UTF-8, NUL-terminated, as encoded in the certificate */
};

/* The subject of a certificate: its AVAs in the order of the subject's
 * RDN sequence as encoded (for openssl -subj "/O=Acme/OU=Sales/OU=EMEA/CN=QM2"
 * that is O, OU=Sales, OU=EMEA, CN) and the serial number as lower-case
 * hex without separators or leading zeros ("0" for zero, "" if unknown). */
struct dnf_subject {
	struct dnf_ava *avas;
	size_t n, cap;
	char serial[2 * 64 + 1];
};

void dnf_subject_init(struct dnf_subject *s);
/* Appends an AVA (value of len bytes, copied). 0, or -1 on allocation
 * failure, embedded NUL or a value that is not UTF-8. */
int dnf_subject_add(struct dnf_subject *s, enum dnf_attr attr, const char *value, size_t len);
/* Sets the serial from its big-endian bytes (as gnutls_x509_crt_get_serial
 * returns them, possibly with a leading 00). 0, or -1 if longer than 64 bytes. */
int dnf_subject_set_serial(struct dnf_subject *s, const uint8_t *bytes, size_t n);
void dnf_subject_free(struct dnf_subject *s);

/* ---- the filter ---- */

struct dnf_filter;

/* Parses an SSLPEER filter. Returns 0 and a filter in *out, or -1 with
 * *errpos the 1-based character (UTF-8 code point) position of the error
 * in text and a one-line reason in err that always ends with " at position
 * N", e.g. "unknown attribute 'FOO' at position 12" (check-peer strips that
 * suffix and prints "SSLPEER position N: REASON"). Either of errpos/err may be
 * NULL. An empty or all-blank text is an error ("empty filter"): callers
 * treat an empty SSLPEER as "no filter" before calling this. */
int dnf_parse(const char *text, struct dnf_filter **out, size_t *errpos, char *err,
              size_t errlen);
void dnf_free(struct dnf_filter *f);

/* True if the subject passes the filter. On false, why (if non-NULL) gets
 * the first failing element, e.g. "OU=EMEA does not match OU=Sales (OU 1)"
 * or "certificate has no L". */
bool dnf_match(const struct dnf_filter *f, const struct dnf_subject *s, char *why,
               size_t whylen);

/* Canonical text of a parsed filter: canonical attribute names, ", "
 * between elements, values quoted when they hold separators, quotes,
 * backslashes or blanks at their ends. Re-parsing it gives the same
 * filter. Returns the length it needed (like snprintf). */
size_t dnf_format(const struct dnf_filter *f, char *buf, size_t len);
/* Number of elements of the filter. */
size_t dnf_count(const struct dnf_filter *f);

/* ---- GnuTLS glue (dnsubject.c) ---- */

/* Fills s (initialised by this call) from the certificate's subject and
 * serial. 0, or -1 with a reason in err (s is then empty). AVAs whose OID
 * a filter cannot name are skipped. */
int dnf_subject_from_crt(gnutls_x509_crt_t crt, struct dnf_subject *s, char *err,
                         size_t errlen);
/* RFC 4514 subject / issuer DN ("CN=QM2,OU=EMEA,OU=Sales,O=Acme") into
 * buf. 0, or -1 (buf then holds "?"). */
int dnf_crt_dn(gnutls_x509_crt_t crt, char *buf, size_t len);
int dnf_crt_issuer_dn(gnutls_x509_crt_t crt, char *buf, size_t len);

/* `chanctl check-peer` is in src/ctl (chand/ctlcmd.h). */

#endif
