/* The CipherSpec table (SSLCIPH, doc/SSLPEER.md): each name maps to
 * a GnuTLS priority string and to the exact (protocol version, cipher
 * suite) pairs it allows.  Pure data and lookups, no GnuTLS calls; the
 * unit tests check every priority string against GnuTLS so the table
 * cannot drift from what is negotiated.  An empty SSLCIPH (plain TCP) is
 * not in the table: callers handle "" before looking up. */
#ifndef CHAND_CIPHERSPEC_H
#define CHAND_CIPHERSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol versions, as bits of struct cipherspec.versions. */
#define CS_TLS12 0x1u
#define CS_TLS13 0x2u

/* One cipher suite chand can negotiate. */
struct cs_suite {
	const char *iana;        /* "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" */
	const char *gnutls;      /* GnuTLS's name: "TLS_ECDHE_RSA_AES_128_GCM_SHA256" */
	uint8_t code[2];         /* IANA code point, e.g. {0xc0, 0x2f} */
	unsigned version;        /* CS_TLS12 or CS_TLS13 */
};

struct cipherspec {
	unsigned id;             /* small, stable, never reused (1..); 0 = none */
	const char *name;        /* canonical SSLCIPH name */
	const char *desc;        /* one line for chanctl help/display */
	unsigned versions;       /* CS_TLS12 | CS_TLS13 */
	uint32_t suites;         /* bit i = cs_suites()[i] is allowed */
	const char *prio_client; /* GnuTLS priority for the initiator */
	const char *prio_server; /* the same with %SERVER_PRECEDENCE */
};

/* By name, case-insensitive; IBM MQ's names for the TLS 1.2 suites
 * (ECDHE_RSA_AES_128_GCM_SHA256 ...) are accepted as aliases. NULL if
 * unknown, and for "" (plain TCP, which callers handle). */
const struct cipherspec *cs_lookup(const char *name);
/* By the stable id; NULL if unknown. */
const struct cipherspec *cs_by_id(unsigned id);
/* For define time and --check-config: 0 if name is "" or a known
 * CipherSpec, else -1 and a one-line reason listing the valid names. */
int cs_check(const char *name, char *err, size_t errlen);

/* The priority string for gnutls_priority_init2(). */
const char *cs_priority(const struct cipherspec *cs, bool server);

/* True if the two specs share at least one (version, suite) pair, i.e. a
 * handshake between them can succeed. */
bool cs_compatible(const struct cipherspec *a, const struct cipherspec *b);
/* True if spec allows the suite (IANA or GnuTLS name, any case) under the
 * protocol version ("TLS1.2"/"TLS1.3", as gnutls_protocol_get_name says). */
bool cs_allows(const struct cipherspec *cs, const char *tls_version, const char *suite);

/* All CipherSpecs in id order, for help and display. */
const struct cipherspec *cs_list(size_t *count);
/* All suites (the bit order of struct cipherspec.suites). */
const struct cs_suite *cs_suites(size_t *count);
/* Suite by IANA or GnuTLS name (any case) or by code point; NULL if none. */
const struct cs_suite *cs_suite_lookup(const char *name);
const struct cs_suite *cs_suite_by_code(uint8_t hi, uint8_t lo);
/* "TLS1.2", "TLS1.3" or "TLS1.2+TLS1.3" for a versions mask. */
const char *cs_versions_name(unsigned versions);

#endif
