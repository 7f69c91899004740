/* SNI encoding of channel names (src/tls/sni.c): pure encode/decode. */
#include <ctype.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chand/tls.h"

static void roundtrip(const char *name, int spec)
{
	char sni[TLS_SNI_MAX + 1], back[CHAND_NAME_MAX + 1];
	int id = -7;

	cr_assert_eq(tls_sni_encode_spec(name, spec, sni, sizeof sni), 0, "encode %s", name);
	cr_assert_eq(tls_sni_decode_spec(sni, back, sizeof back, &id), 0, "decode %s", sni);
	cr_assert_str_eq(back, name);
	cr_assert_eq(id, spec);
}

/* A valid DNS host name: labels of 1-63 letters/digits/hyphens, total at
 * most 253, all lower case (we never rely on case surviving). */
static void assert_dns_name(const char *sni)
{
	size_t len = strlen(sni), lab = 0;

	cr_assert(len > 0 && len <= 253, "length %zu", len);
	for (size_t i = 0; i < len; i++) {
		char ch = sni[i];
		if (ch == '.') {
			cr_assert(lab >= 1 && lab <= 63, "label length %zu in %s", lab, sni);
			lab = 0;
			continue;
		}
		cr_assert(islower((unsigned char)ch) || isdigit((unsigned char)ch), "char '%c' in %s",
		          ch, sni);
		lab++;
	}
	cr_assert(lab >= 1 && lab <= 63);
}

Test(sni, known_encoding, .timeout = 5)
{
	char sni[TLS_SNI_MAX + 1];

	cr_assert_eq(tls_sni_encode_spec("TO.QM2", 3, sni, sizeof sni), 0);
	cr_assert_str_eq(sni, "544f2e514d32.s3.chl.chand");
	tls_sni_encode("TO.QM2", sni, sizeof sni);
	cr_assert_str_eq(sni, "544f2e514d32.chl.chand");
}

Test(sni, tricky_names_roundtrip, .timeout = 5)
{
	static const char *names[] = {
		"a", "A", "QM1.TO.QM2", "qm1.to.qm2", "Qm1.To.qM2", "A/B", "50%", "%", "/", "_._",
		"CHANNEL_WITH_UNDERSCORES_/%.", "0", "00", "s1", "S1",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv",      /* 48 */
		"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%",      /* 48 */
		"//////////////////////////////////////////////abcd"     /* 50: invalid */
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char sni[TLS_SNI_MAX + 1];
		if (strlen(names[i]) > CHAND_NAME_MAX) {
			cr_assert_eq(tls_sni_encode_spec(names[i], 1, sni, sizeof sni), -1);
			cr_assert_str_eq(sni, "");
			continue;
		}
		roundtrip(names[i], -1);
		roundtrip(names[i], 0);
		roundtrip(names[i], 13);
		roundtrip(names[i], TLS_SNI_SPEC_MAX);
		cr_assert_eq(tls_sni_encode_spec(names[i], 13, sni, sizeof sni), 0);
		assert_dns_name(sni);
	}
}

Test(sni, case_is_preserved_and_distinct, .timeout = 5)
{
	char a[TLS_SNI_MAX + 1], b[TLS_SNI_MAX + 1];

	tls_sni_encode("TO.QM2", a, sizeof a);
	tls_sni_encode("to.qm2", b, sizeof b);
	cr_assert_str_neq(a, b);
}

Test(sni, longest_name_uses_two_labels, .timeout = 5)
{
	const char *name = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv";
	char sni[TLS_SNI_MAX + 1];
	const char *dot;

	cr_assert_eq(tls_sni_encode_spec(name, 65535, sni, sizeof sni), 0);
	dot = strchr(sni, '.');
	cr_assert_eq(dot - sni, 62);
	cr_assert(strlen(sni) <= TLS_SNI_MAX);
	cr_assert(strstr(sni, ".s65535.chl.chand") != NULL);
}

Test(sni, upper_case_hex_decodes, .timeout = 5)
{
	char ch[CHAND_NAME_MAX + 1];
	int id;

	cr_assert_eq(tls_sni_decode_spec("544F2E514D32.S3.CHL.CHAND", ch, sizeof ch, &id), 0);
	cr_assert_str_eq(ch, "TO.QM2");
	cr_assert_eq(id, 3);
}

Test(sni, rejects_garbage, .timeout = 5)
{
	static const char *bad[] = {
		"", "chl.chand", ".chl.chand", "localhost", "544f2e514d32", "544f2e514d32.chl.chand.",
		"544f2e514d3.chl.chand",            /* odd hex */
		"544f2e514d32..chl.chand",          /* empty label */
		"544f2e514d32.s3.s4.chl.chand",     /* two spec labels */
		"s3.544f2e514d32.chl.chand",        /* spec label not last */
		"s3.chl.chand",                     /* no name */
		"544f2e514d32.s.chl.chand", "544f2e514d32.s03.chl.chand", "544f2e514d32.s65536.chl.chand",
		"544f2e514d32.sx.chl.chand", "544f2e514d32.x3.chl.chand",
		"2f00.chl.chand",                   /* NUL byte */
		"2d.chl.chand",                     /* '-' is not a name character */
		"20.chl.chand",                     /* space */
		"c3a9.chl.chand",                   /* UTF-8 e-acute */
		"544f2e514d32.chl.chandx", "544f2e514d32.chlxchand",
		/* 49 bytes of 'A' */
		"41414141414141414141414141414141414141414141414141414141414141.41414141414141414141414141414141414141.chl.chand",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char ch[CHAND_NAME_MAX + 1] = "x";
		int id = 5;
		cr_assert_eq(tls_sni_decode_spec(bad[i], ch, sizeof ch, &id), -1, "accepted '%s'",
		             bad[i]);
		cr_assert_str_eq(ch, "");
		cr_assert_eq(id, -1);
	}
}

Test(sni, small_buffers, .timeout = 5)
{
	char sni[10], ch[3];

	cr_assert_eq(tls_sni_encode_spec("TO.QM2", 1, sni, sizeof sni), -1);
	cr_assert_str_eq(sni, "");
	cr_assert_eq(tls_sni_decode("544f2e514d32.chl.chand", ch, sizeof ch), -1);
	cr_assert_eq(tls_sni_encode_spec("TO.QM2", -2, sni, sizeof sni), -1);
}

Test(sni, any_split_of_hex_labels_decodes, .timeout = 5)
{
	char ch[CHAND_NAME_MAX + 1];

	cr_assert_eq(tls_sni_decode("54.4f2e5.14d32.chl.chand", ch, sizeof ch), 0);
	cr_assert_str_eq(ch, "TO.QM2");
}
