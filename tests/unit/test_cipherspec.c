/* CipherSpec table: lookups, ids, compatibility, and proof against GnuTLS
 * itself that every priority string gives exactly the suites the table
 * lists, and that two ends negotiate iff cs_compatible says so. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/cipherspec.h"

/* One timeout for the whole suite: Criterion 2.4's runner leaks a timer
 * entry (seen under LeakSanitizer) when tests of one binary have
 * different timeouts. */
TestSuite(cipherspec, .timeout = 60);

/* The stable ids: changing one breaks agents of different versions. */
static const struct {
	const char *name;
	unsigned id;
} expected_ids[] = {
	{ "TLS_AES_128_GCM_SHA256", 1 },
	{ "TLS_AES_256_GCM_SHA384", 2 },
	{ "TLS_CHACHA20_POLY1305_SHA256", 3 },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 4 },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 5 },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 6 },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 7 },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 8 },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 9 },
	{ "ANY_TLS12", 10 },
	{ "ANY_TLS13", 11 },
	{ "ANY_TLS12_OR_HIGHER", 12 },
	{ "ANY_TLS13_OR_HIGHER", 13 },
};

static const struct cipherspec *L(const char *name)
{
	const struct cipherspec *cs = cs_lookup(name);

	cr_assert_not_null(cs, "%s not found", name);
	return cs;
}

Test(cipherspec, table_ids_are_stable_and_unique)
{
	size_t n;
	const struct cipherspec *t = cs_list(&n);

	cr_assert_eq(n, sizeof expected_ids / sizeof expected_ids[0]);
	for (size_t i = 0; i < n; i++) {
		cr_expect_str_eq(t[i].name, expected_ids[i].name);
		cr_expect_eq(t[i].id, expected_ids[i].id, "%s", t[i].name);
		cr_expect_eq(cs_by_id(t[i].id), &t[i]);
		cr_expect_eq(cs_lookup(t[i].name), &t[i]);
		cr_expect_neq(t[i].suites, 0u);
		cr_expect_not_null(t[i].desc);
		for (size_t j = 0; j < i; j++)
			cr_expect_neq(t[i].id, t[j].id);
	}
	cr_expect_null(cs_by_id(0));
	cr_expect_null(cs_by_id(14));
}

Test(cipherspec, lookup_case_and_aliases)
{
	cr_expect_eq(cs_lookup("any_tls13"), L("ANY_TLS13"));
	cr_expect_eq(cs_lookup("Tls_Aes_128_Gcm_Sha256"), L("TLS_AES_128_GCM_SHA256"));
	cr_expect_eq(cs_lookup("ECDHE_RSA_AES_128_GCM_SHA256"),
	             L("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
	cr_expect_eq(cs_lookup("ecdhe_ecdsa_chacha20_poly1305_sha256"),
	             L("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
	cr_expect_null(cs_lookup(""));
	cr_expect_null(cs_lookup(NULL));
	cr_expect_null(cs_lookup("TLS_RSA_WITH_AES_128_CBC_SHA"));
	cr_expect_null(cs_lookup("TLS_RSA_WITH_AES_128_GCM_SHA256"));
	cr_expect_null(cs_lookup("ANY_TLS11"));
	cr_expect_null(cs_lookup("ANY_TLS13 "));
}

Test(cipherspec, check_for_define_time)
{
	char err[1024];

	cr_expect_eq(cs_check("", err, sizeof err), 0);
	cr_expect_eq(cs_check("any_tls12_or_higher", err, sizeof err), 0);
	cr_expect_eq(cs_check("RC4_SHA", err, sizeof err), -1);
	cr_expect(strncmp(err, "unknown CipherSpec 'RC4_SHA' (valid: TLS_AES_128_GCM_SHA256 ", 60)
	          == 0, "%s", err);
	cr_expect(strstr(err, "ANY_TLS13_OR_HIGHER, or empty for plain TCP)") != NULL, "%s", err);
	/* A short buffer truncates, never overflows. */
	cr_expect_eq(cs_check("RC4_SHA", err, 16), -1);
	cr_expect_eq(strlen(err), 15);
}

Test(cipherspec, compatibility_matrix)
{
	size_t n;
	const struct cipherspec *t = cs_list(&n);

	cr_expect(cs_compatible(L("ANY_TLS13"), L("TLS_AES_128_GCM_SHA256")));
	cr_expect(cs_compatible(L("ANY_TLS13"), L("ANY_TLS13_OR_HIGHER")));
	cr_expect(cs_compatible(L("ANY_TLS12"), L("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")));
	cr_expect(cs_compatible(L("ANY_TLS12"), L("ANY_TLS12_OR_HIGHER")));
	cr_expect(cs_compatible(L("ANY_TLS13_OR_HIGHER"), L("ANY_TLS12_OR_HIGHER")));
	cr_expect_not(cs_compatible(L("ANY_TLS12"), L("TLS_AES_128_GCM_SHA256")));
	cr_expect_not(cs_compatible(L("ANY_TLS12"), L("ANY_TLS13")));
	cr_expect_not(cs_compatible(L("ANY_TLS13_OR_HIGHER"), L("ANY_TLS12")));
	cr_expect_not(cs_compatible(L("TLS_AES_128_GCM_SHA256"), L("TLS_AES_256_GCM_SHA384")));
	cr_expect_not(cs_compatible(L("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
	                            L("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")));
	cr_expect_not(cs_compatible(NULL, L("ANY_TLS12")));
	for (size_t i = 0; i < n; i++) {
		cr_expect(cs_compatible(&t[i], &t[i]), "%s", t[i].name);
		cr_expect(cs_compatible(&t[i], L("ANY_TLS12_OR_HIGHER")), "%s", t[i].name);
		for (size_t j = 0; j < n; j++)
			cr_expect_eq(cs_compatible(&t[i], &t[j]), cs_compatible(&t[j], &t[i]));
	}
}

Test(cipherspec, allows)
{
	const struct cipherspec *any12 = L("ANY_TLS12"), *up = L("ANY_TLS12_OR_HIGHER");

	cr_expect(cs_allows(any12, "TLS1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
	cr_expect(cs_allows(any12, "TLS1.2", "TLS_ECDHE_RSA_AES_128_GCM_SHA256"));
	cr_expect(cs_allows(any12, "tls1.2", "tls_ecdhe_ecdsa_chacha20_poly1305"));
	cr_expect_not(cs_allows(any12, "TLS1.3", "TLS_AES_128_GCM_SHA256"));
	cr_expect_not(cs_allows(any12, "TLS1.3", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
	cr_expect(cs_allows(up, "TLS1.3", "TLS_CHACHA20_POLY1305_SHA256"));
	cr_expect_not(cs_allows(up, "TLS1.2", "TLS_CHACHA20_POLY1305_SHA256"));
	cr_expect_not(cs_allows(up, "TLS1.1", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
	cr_expect_not(cs_allows(up, "TLS1.2", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
	cr_expect_not(cs_allows(L("TLS_AES_128_GCM_SHA256"), "TLS1.3", "TLS_AES_256_GCM_SHA384"));
	cr_expect(cs_allows(L("TLS_AES_256_GCM_SHA384"), "TLS1.3", "TLS_AES_256_GCM_SHA384"));
	cr_expect_not(cs_allows(NULL, "TLS1.3", "TLS_AES_256_GCM_SHA384"));
	cr_expect_str_eq(cs_versions_name(up->versions), "TLS1.2+TLS1.3");
	cr_expect_str_eq(cs_versions_name(any12->versions), "TLS1.2");
	cr_expect_str_eq(cs_versions_name(L("ANY_TLS13_OR_HIGHER")->versions), "TLS1.3");
	cr_expect_eq(cs_suite_by_code(0xc0, 0x2f), cs_suite_lookup("TLS_ECDHE_RSA_AES_128_GCM_SHA256"));
	cr_expect_null(cs_suite_by_code(0x00, 0x2f));
}

/* ---- against GnuTLS ---- */

static unsigned version_bit(unsigned v)
{
	if (v == GNUTLS_TLS1_2)
		return CS_TLS12;
	if (v == GNUTLS_TLS1_3)
		return CS_TLS13;
	return 0x100; /* anything else is a failure */
}

/* Checks one priority string: accepted, exactly the suites and versions of
 * the table, and nothing weak. */
static void check_priority(const struct cipherspec *cs, bool server)
{
	const char *prio = cs_priority(cs, server), *errp = NULL;
	gnutls_priority_t p;
	const unsigned *list;
	uint32_t got = 0;
	unsigned versions = 0;
	size_t nsuites;
	const struct cs_suite *suites = cs_suites(&nsuites);
	int rc, n;

	rc = gnutls_priority_init2(&p, prio, &errp, 0);
	cr_assert_eq(rc, 0, "%s: priority refused at offset %td (%s): %s", cs->name,
	             errp ? errp - prio : -1, errp ? errp : "", gnutls_strerror(rc));
	cr_expect_eq(strstr(prio, "%SERVER_PRECEDENCE") != NULL, server, "%s", prio);
	for (unsigned idx = 0;; idx++) {
		unsigned sidx;
		unsigned char id[2];
		gnutls_kx_algorithm_t kx;
		gnutls_cipher_algorithm_t cipher;
		gnutls_mac_algorithm_t mac;
		gnutls_protocol_t minv;
		const char *name;
		const struct cs_suite *s;

		rc = gnutls_priority_get_cipher_suite_index(p, idx, &sidx);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc == GNUTLS_E_UNKNOWN_CIPHER_SUITE)
			continue;
		cr_assert_eq(rc, 0, "%s", gnutls_strerror(rc));
		name = gnutls_cipher_suite_info(sidx, id, &kx, &cipher, &mac, &minv);
		cr_assert_not_null(name);
		s = cs_suite_by_code(id[0], id[1]);
		cr_assert_not_null(s, "%s: GnuTLS enables %s (0x%02x%02x), not in the table",
		                   cs->name, name, id[0], id[1]);
		cr_expect_str_eq(s->gnutls, name);
		cr_expect(cs->suites & (1u << (s - suites)), "%s: GnuTLS enables %s, the table does "
		          "not list it", cs->name, name);
		got |= 1u << (s - suites);
		/* Nothing weak, whatever the table says. */
		cr_expect_eq(mac, GNUTLS_MAC_AEAD, "%s: %s is not AEAD", cs->name, name);
		cr_expect(cipher == GNUTLS_CIPHER_AES_128_GCM || cipher == GNUTLS_CIPHER_AES_256_GCM ||
		          cipher == GNUTLS_CIPHER_CHACHA20_POLY1305, "%s: %s", cs->name, name);
		cr_expect(minv == GNUTLS_TLS1_2 || minv == GNUTLS_TLS1_3, "%s: %s", cs->name, name);
		cr_expect(kx == GNUTLS_KX_ECDHE_RSA || kx == GNUTLS_KX_ECDHE_ECDSA ||
		          (kx == GNUTLS_KX_UNKNOWN && minv == GNUTLS_TLS1_3), "%s: %s", cs->name, name);
		cr_expect_eq(s->version, version_bit(minv), "%s", name);
		cr_expect(strstr(name, "CBC") == NULL && strstr(name, "SHA1") == NULL &&
		          strstr(name, "RC4") == NULL && strstr(name, "3DES") == NULL &&
		          strstr(name, "NULL") == NULL && strstr(name, "ANON") == NULL, "%s", name);
	}
	cr_expect_eq(got, cs->suites, "%s: GnuTLS gives suites 0x%x, table says 0x%x", cs->name,
	             got, cs->suites);
	n = gnutls_priority_protocol_list(p, &list);
	cr_assert_gt(n, 0);
	for (int i = 0; i < n; i++)
		versions |= version_bit(list[i]);
	cr_expect_eq(versions, cs->versions, "%s: versions 0x%x", cs->name, versions);
	n = gnutls_priority_sign_list(p, &list);
	for (int i = 0; i < n; i++)
		cr_expect_neq(gnutls_sign_get_hash_algorithm(list[i]), GNUTLS_DIG_SHA1, "%s: %s",
		              cs->name, gnutls_sign_get_name(list[i]));
	gnutls_priority_deinit(p);
}

Test(cipherspec, priorities_match_gnutls)
{
	size_t n;
	const struct cipherspec *t = cs_list(&n);

	for (size_t i = 0; i < n; i++) {
		check_priority(&t[i], false);
		check_priority(&t[i], true);
	}
}

/* ---- real handshakes between every pair of specs ---- */

static gnutls_certificate_credentials_t srv_cred, cli_cred;

static void add_cert(gnutls_pk_algorithm_t pk, unsigned bits)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[] = { 1 };
	time_t now = time(NULL);

	cr_assert_eq(gnutls_x509_privkey_init(&key), 0);
	cr_assert_eq(gnutls_x509_privkey_generate(key, pk, bits, 0), 0);
	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	cr_assert_eq(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), 0);
	cr_assert_eq(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
	cr_assert_eq(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
	cr_assert_eq(gnutls_x509_crt_set_dn(crt, "CN=cipherspec test", NULL), 0);
	cr_assert_eq(gnutls_x509_crt_set_key(crt, key), 0);
	cr_assert_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
	cr_assert_eq(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
	cr_assert_eq(gnutls_certificate_set_x509_key(srv_cred, &crt, 1, key), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void creds_setup(void)
{
	cr_assert_eq(gnutls_certificate_allocate_credentials(&srv_cred), 0);
	cr_assert_eq(gnutls_certificate_allocate_credentials(&cli_cred), 0);
	/* Both key types, so the ECDSA and the RSA suites can each be chosen. */
	add_cert(GNUTLS_PK_RSA, 2048);
	add_cert(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
}

static void creds_teardown(void)
{
	gnutls_certificate_free_credentials(srv_cred);
	gnutls_certificate_free_credentials(cli_cred);
}

static gnutls_session_t mksession(unsigned flags, const struct cipherspec *cs, int fd,
                                  gnutls_priority_t *prio)
{
	gnutls_session_t s;

	cr_assert_eq(gnutls_init(&s, flags | GNUTLS_NONBLOCK), 0);
	cr_assert_eq(gnutls_priority_init2(prio, cs_priority(cs, flags & GNUTLS_SERVER), NULL, 0),
	             0);
	cr_assert_eq(gnutls_priority_set(s, *prio), 0);
	cr_assert_eq(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	                                    (flags & GNUTLS_SERVER) ? srv_cred : cli_cred), 0);
	gnutls_transport_set_int(s, fd);
	return s;
}

/* In-memory handshake; true if both ends completed, with what they chose. */
static bool handshake(const struct cipherspec *c, const struct cipherspec *s, char *ver,
                      char *suite)
{
	int sv[2], crc = GNUTLS_E_AGAIN, src = GNUTLS_E_AGAIN;
	gnutls_session_t cs, ss;
	gnutls_priority_t cp, sp;
	bool ok;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	cs = mksession(GNUTLS_CLIENT, c, sv[0], &cp);
	ss = mksession(GNUTLS_SERVER, s, sv[1], &sp);
	for (int i = 0; i < 100000; i++) {
		if (crc != 0 && !gnutls_error_is_fatal(crc))
			crc = gnutls_handshake(cs);
		if (src != 0 && !gnutls_error_is_fatal(src))
			src = gnutls_handshake(ss);
		if ((crc == 0 && src == 0) || gnutls_error_is_fatal(crc) || gnutls_error_is_fatal(src))
			break;
	}
	ok = crc == 0 && src == 0;
	if (ok) {
		strcpy(ver, gnutls_protocol_get_name(gnutls_protocol_get_version(cs)));
		strcpy(suite, gnutls_ciphersuite_get(cs));
		cr_expect_str_eq(gnutls_ciphersuite_get(ss), suite);
	} else {
		cr_expect(gnutls_error_is_fatal(crc) || gnutls_error_is_fatal(src),
		          "%s vs %s: handshake neither finished nor failed", c->name, s->name);
	}
	gnutls_deinit(cs);
	gnutls_deinit(ss);
	gnutls_priority_deinit(cp);
	gnutls_priority_deinit(sp);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

Test(cipherspec, handshake_iff_compatible, .init = creds_setup, .fini = creds_teardown)
{
	size_t n;
	const struct cipherspec *t = cs_list(&n);
	char ver[32], suite[128];

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			const struct cipherspec *c = &t[i], *s = &t[j];
			bool ok = handshake(c, s, ver, suite);

			cr_expect_eq(ok, cs_compatible(c, s), "client %s, server %s: handshake %s",
			             c->name, s->name, ok ? "succeeded" : "failed");
			if (!ok)
				continue;
			cr_expect(cs_allows(c, ver, suite), "client %s got %s %s", c->name, ver, suite);
			cr_expect(cs_allows(s, ver, suite), "server %s got %s %s", s->name, ver, suite);
			/* _OR_HIGHER (and any pair sharing a TLS 1.3 suite) gets TLS 1.3. */
			if (c->suites & s->suites & L("ANY_TLS13")->suites)
				cr_expect_str_eq(ver, "TLS1.3", "%s vs %s", c->name, s->name);
		}
	}
}

Test(cipherspec, or_higher_follows_the_highest_shared, .init = creds_setup,
     .fini = creds_teardown)
{
	char ver[32], suite[128];

	cr_assert(handshake(L("ANY_TLS12_OR_HIGHER"), L("ANY_TLS12_OR_HIGHER"), ver, suite));
	cr_expect_str_eq(ver, "TLS1.3");
	cr_assert(handshake(L("ANY_TLS12_OR_HIGHER"), L("ANY_TLS12"), ver, suite));
	cr_expect_str_eq(ver, "TLS1.2");
	cr_assert(handshake(L("ANY_TLS12"), L("ANY_TLS12_OR_HIGHER"), ver, suite));
	cr_expect_str_eq(ver, "TLS1.2");
	cr_assert(handshake(L("ANY_TLS13_OR_HIGHER"), L("ANY_TLS12_OR_HIGHER"), ver, suite));
	cr_expect_str_eq(ver, "TLS1.3");
	/* Server precedence: the responder's order (AES-256 first) wins. */
	cr_assert(handshake(L("ANY_TLS13"), L("ANY_TLS13"), ver, suite));
	cr_expect(cs_allows(L("TLS_AES_256_GCM_SHA384"), ver, suite), "%s", suite);
	cr_assert(handshake(L("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"), L("ANY_TLS12"), ver,
	                    suite));
	cr_expect(cs_allows(L("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"), ver, suite), "%s",
	          suite);
	cr_expect_not(handshake(L("ANY_TLS13"), L("ANY_TLS12"), ver, suite));
}

/* The bash completion offers exactly the CipherSpec names of this table
 * for SSLCIPH (contrib/bash-completion/chanctl, its SPEC case). */
Test(cipherspec, bash_completion_offers_every_name)
{
	char path[1024], *text = NULL, *line;
	size_t cap = 0, count = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/contrib/bash-completion/chanctl", TEST_SRCDIR);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	line = NULL;
	while (getline(&line, &cap, f) > 0)
		if (strstr(line, "SPEC)") != NULL) {
			text = strdup(line);
			break;
		}
	free(line);
	fclose(f);
	cr_assert_not_null(text, "no SPEC case in %s", path);
	const struct cipherspec *v = cs_list(&count);
	for (size_t i = 0; i < count; i++) {
		char quoted[96];
		snprintf(quoted, sizeof(quoted), "\"%s\"", v[i].name);
		cr_expect(strstr(text, quoted) != NULL, "completion lacks %s", v[i].name);
	}
	/* and nothing else: as many quoted names as the table has */
	size_t n = 0;
	for (char *p = strstr(text, "\"ANY_"); p != NULL; p = strstr(p + 1, "\"ANY_"))
		n++;
	for (char *p = strstr(text, "\"TLS_"); p != NULL; p = strstr(p + 1, "\"TLS_"))
		n++;
	cr_expect_eq(n, count, "completion has %zu names, the table %zu", n, count);
	free(text);
}
