/* The CipherSpec table.  Every priority string starts from one base that
 * allows only TLS 1.2/1.3, ECDHE key exchange and AEAD ciphers (plain
 * "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" would still allow CBC-SHA1
 * and static RSA) and then narrows versions, key exchange and ciphers.
 * GnuTLS has no keyword that switches renegotiation off; %SAFE_RENEGOTIATION
 * is the strictest setting (RFC 5746 only), and the session code refuses
 * GNUTLS_E_REHANDSHAKE and never starts one. SHA-1 signatures are off too.
 * tests/unit/test_cipherspec.c proves each string yields exactly the suites
 * listed here. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chand/cipherspec.h"

/* Bit order of struct cipherspec.suites. Never reorder: specs refer to it. */
enum {
	S13_AES128 = 0, S13_AES256, S13_CHACHA,
	S12_EC_AES128, S12_EC_AES256, S12_RSA_AES128, S12_RSA_AES256, S12_EC_CHACHA, S12_RSA_CHACHA,
	S__COUNT
};

static const struct cs_suite cs_suite_tab[S__COUNT] = {
	[S13_AES128] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", { 0x13, 0x01 }, CS_TLS13 },
	[S13_AES256] = { "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", { 0x13, 0x02 }, CS_TLS13 },
	[S13_CHACHA] = { "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
	                 { 0x13, 0x03 }, CS_TLS13 },
	[S12_EC_AES128] = { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	                    "TLS_ECDHE_ECDSA_AES_128_GCM_SHA256", { 0xc0, 0x2b }, CS_TLS12 },
	[S12_EC_AES256] = { "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	                    "TLS_ECDHE_ECDSA_AES_256_GCM_SHA384", { 0xc0, 0x2c }, CS_TLS12 },
	[S12_RSA_AES128] = { "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	                     "TLS_ECDHE_RSA_AES_128_GCM_SHA256", { 0xc0, 0x2f }, CS_TLS12 },
	[S12_RSA_AES256] = { "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	                     "TLS_ECDHE_RSA_AES_256_GCM_SHA384", { 0xc0, 0x30 }, CS_TLS12 },
	[S12_EC_CHACHA] = { "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	                    "TLS_ECDHE_ECDSA_CHACHA20_POLY1305", { 0xcc, 0xa9 }, CS_TLS12 },
	[S12_RSA_CHACHA] = { "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	                     "TLS_ECDHE_RSA_CHACHA20_POLY1305", { 0xcc, 0xa8 }, CS_TLS12 },
};

#define B(s) (1u << (s))
#define ALL13 (B(S13_AES128) | B(S13_AES256) | B(S13_CHACHA))
#define ALL12 (B(S12_EC_AES128) | B(S12_EC_AES256) | B(S12_RSA_AES128) | B(S12_RSA_AES256) | \
               B(S12_EC_CHACHA) | B(S12_RSA_CHACHA))

/* Pieces of the priority strings. */
#define P_HEAD "NORMAL:-VERS-ALL:"
#define P_V13 "+VERS-TLS1.3"
#define P_V12 "+VERS-TLS1.2"
#define P_V1312 "+VERS-TLS1.3:+VERS-TLS1.2"
#define P_MAC ":-MAC-ALL:+AEAD:-KX-ALL:"
/* TLS 1.3 suites carry no key exchange; ECDHE is kept so the shared
 * parts of every string stay the same. */
#define P_KX_BOTH "+ECDHE-RSA:+ECDHE-ECDSA"
#define P_KX_RSA "+ECDHE-RSA"
#define P_KX_EC "+ECDHE-ECDSA"
#define P_C ":-CIPHER-ALL:"
#define P_ALLC "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305"
#define P_TAIL ":-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:%SAFE_RENEGOTIATION"
#define P_SRV ":%SERVER_PRECEDENCE"

#define PRIO(v, kx, c) P_HEAD v P_MAC kx P_C c P_TAIL
#define SPEC(id, name, desc, vers, suites, v, kx, c) \
	{ id, name, desc, vers, suites, PRIO(v, kx, c), PRIO(v, kx, c) P_SRV }

/* Ids are carried between agents (SNI): never renumber or reuse one. */
static const struct cipherspec cs_tab[] = {
	SPEC(1, "TLS_AES_128_GCM_SHA256", "TLS 1.3, AES-128-GCM", CS_TLS13, B(S13_AES128),
	     P_V13, P_KX_BOTH, "+AES-128-GCM"),
	SPEC(2, "TLS_AES_256_GCM_SHA384", "TLS 1.3, AES-256-GCM", CS_TLS13, B(S13_AES256),
	     P_V13, P_KX_BOTH, "+AES-256-GCM"),
	SPEC(3, "TLS_CHACHA20_POLY1305_SHA256", "TLS 1.3, ChaCha20-Poly1305", CS_TLS13,
	     B(S13_CHACHA), P_V13, P_KX_BOTH, "+CHACHA20-POLY1305"),
	SPEC(4, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS 1.2, ECDHE-ECDSA, AES-128-GCM",
	     CS_TLS12, B(S12_EC_AES128), P_V12, P_KX_EC, "+AES-128-GCM"),
	SPEC(5, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS 1.2, ECDHE-ECDSA, AES-256-GCM",
	     CS_TLS12, B(S12_EC_AES256), P_V12, P_KX_EC, "+AES-256-GCM"),
	SPEC(6, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS 1.2, ECDHE-RSA, AES-128-GCM",
	     CS_TLS12, B(S12_RSA_AES128), P_V12, P_KX_RSA, "+AES-128-GCM"),
	SPEC(7, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS 1.2, ECDHE-RSA, AES-256-GCM",
	     CS_TLS12, B(S12_RSA_AES256), P_V12, P_KX_RSA, "+AES-256-GCM"),
	SPEC(8, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	     "TLS 1.2, ECDHE-ECDSA, ChaCha20-Poly1305", CS_TLS12, B(S12_EC_CHACHA), P_V12, P_KX_EC,
	     "+CHACHA20-POLY1305"),
	SPEC(9, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	     "TLS 1.2, ECDHE-RSA, ChaCha20-Poly1305", CS_TLS12, B(S12_RSA_CHACHA), P_V12, P_KX_RSA,
	     "+CHACHA20-POLY1305"),
	SPEC(10, "ANY_TLS12", "any TLS 1.2 suite above, TLS 1.2 only", CS_TLS12, ALL12, P_V12,
	     P_KX_BOTH, P_ALLC),
	SPEC(11, "ANY_TLS13", "any TLS 1.3 suite, TLS 1.3 only", CS_TLS13, ALL13, P_V13,
	     P_KX_BOTH, P_ALLC),
	SPEC(12, "ANY_TLS12_OR_HIGHER", "any suite above, TLS 1.3 if both ends allow it",
	     CS_TLS12 | CS_TLS13, ALL12 | ALL13, P_V1312, P_KX_BOTH, P_ALLC),
	SPEC(13, "ANY_TLS13_OR_HIGHER", "any TLS 1.3 suite, TLS 1.3 or later", CS_TLS13, ALL13,
	     P_V13, P_KX_BOTH, P_ALLC),
};

#define CS_N (sizeof cs_tab / sizeof cs_tab[0])

/* IBM MQ spells the TLS 1.2 CipherSpecs without "TLS_" and "WITH_". */
static const struct {
	const char *alias;
	unsigned id;
} cs_alias_tab[] = {
	{ "ECDHE_ECDSA_AES_128_GCM_SHA256", 4 },
	{ "ECDHE_ECDSA_AES_256_GCM_SHA384", 5 },
	{ "ECDHE_RSA_AES_128_GCM_SHA256", 6 },
	{ "ECDHE_RSA_AES_256_GCM_SHA384", 7 },
	{ "ECDHE_ECDSA_CHACHA20_POLY1305_SHA256", 8 },
	{ "ECDHE_RSA_CHACHA20_POLY1305_SHA256", 9 },
};

const struct cipherspec *cs_lookup(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return NULL;
	for (size_t i = 0; i < CS_N; i++)
		if (strcasecmp(name, cs_tab[i].name) == 0)
			return &cs_tab[i];
	for (size_t i = 0; i < sizeof cs_alias_tab / sizeof cs_alias_tab[0]; i++)
		if (strcasecmp(name, cs_alias_tab[i].alias) == 0)
			return cs_by_id(cs_alias_tab[i].id);
	return NULL;
}

const struct cipherspec *cs_by_id(unsigned id)
{
	for (size_t i = 0; i < CS_N; i++)
		if (cs_tab[i].id == id)
			return &cs_tab[i];
	return NULL;
}

int cs_check(const char *name, char *err, size_t errlen)
{
	size_t o;

	if (name == NULL || name[0] == '\0' || cs_lookup(name) != NULL)
		return 0;
	o = (size_t)snprintf(err, errlen, "unknown CipherSpec '%.64s' (valid:", name);
	for (size_t i = 0; i < CS_N && o < errlen; i++)
		o += (size_t)snprintf(err + o, errlen - o, " %s", cs_tab[i].name);
	if (o < errlen)
		snprintf(err + o, errlen - o, ", or empty for plain TCP)");
	return -1;
}

const char *cs_priority(const struct cipherspec *cs, bool server)
{
	return server ? cs->prio_server : cs->prio_client;
}

bool cs_compatible(const struct cipherspec *a, const struct cipherspec *b)
{
	return a != NULL && b != NULL && (a->suites & b->suites) != 0;
}

static unsigned cs_version_parse(const char *v)
{
	if (v == NULL)
		return 0;
	if (strcasecmp(v, "TLS1.2") == 0)
		return CS_TLS12;
	if (strcasecmp(v, "TLS1.3") == 0)
		return CS_TLS13;
	return 0;
}

const struct cs_suite *cs_suite_lookup(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < S__COUNT; i++)
		if (strcasecmp(name, cs_suite_tab[i].iana) == 0 ||
		    strcasecmp(name, cs_suite_tab[i].gnutls) == 0)
			return &cs_suite_tab[i];
	return NULL;
}

const struct cs_suite *cs_suite_by_code(uint8_t hi, uint8_t lo)
{
	for (size_t i = 0; i < S__COUNT; i++)
		if (cs_suite_tab[i].code[0] == hi && cs_suite_tab[i].code[1] == lo)
			return &cs_suite_tab[i];
	return NULL;
}

bool cs_allows(const struct cipherspec *cs, const char *tls_version, const char *suite)
{
	const struct cs_suite *s = cs_suite_lookup(suite);
	unsigned v = cs_version_parse(tls_version);

	if (cs == NULL || s == NULL || v == 0 || s->version != v)
		return false;
	return (cs->suites & (1u << (s - cs_suite_tab))) != 0;
}

const struct cipherspec *cs_list(size_t *count)
{
	*count = CS_N;
	return cs_tab;
}

const struct cs_suite *cs_suites(size_t *count)
{
	*count = S__COUNT;
	return cs_suite_tab;
}

const char *cs_versions_name(unsigned versions)
{
	switch (versions & (CS_TLS12 | CS_TLS13)) {
	case CS_TLS12:
		return "TLS1.2";
	case CS_TLS13:
		return "TLS1.3";
	case CS_TLS12 | CS_TLS13:
		return "TLS1.2+TLS1.3";
	default:
		return "none";
	}
}
