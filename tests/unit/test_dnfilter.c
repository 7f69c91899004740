/* SSLPEER filter: parser errors with positions, matching rules, format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chand/dnfilter.h"

/* Builds a subject from "O=Acme/OU=Sales/OU=EMEA/CN=QM2" (test notation:
 * '/' separates AVAs in encoding order, names are canonical or aliases). */
static void mksubj(struct dnf_subject *s, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;

	cr_assert_not_null(copy);
	dnf_subject_init(s);
	for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(tok, '=');
		int a;
		cr_assert_not_null(eq, "bad test subject %s", spec);
		/* openssl -subj spells E this way (doc examples use -subj). */
		if (strncmp(tok, "emailAddress=", 13) == 0)
			a = DNF_E;
		else
			a = dnf_attr_lookup(tok, (size_t)(eq - tok));
		cr_assert_geq(a, 0, "bad test attribute in %s", spec);
		cr_assert_eq(dnf_subject_add(s, (enum dnf_attr)a, eq + 1, strlen(eq + 1)), 0);
	}
	free(copy);
}

static const uint8_t serial_acme[] = { 0x00, 0x4c, 0xd0, 0x49, 0xd5, 0x02, 0x5f, 0x38 };

#define ACME "O=Acme/OU=Sales/OU=EMEA/CN=QM2/C=GB/L=London/ST=Greater London"

/* Parses (must succeed) and matches; returns the result, why in buf. */
static bool try_match(const char *filter, const char *subject, char *why, size_t whylen)
{
	struct dnf_filter *f = NULL;
	struct dnf_subject s;
	char err[256];
	size_t pos = 0;
	bool r;

	cr_assert_eq(dnf_parse(filter, &f, &pos, err, sizeof err), 0,
	             "filter [%s] refused: %s", filter, err);
	mksubj(&s, subject);
	cr_assert_eq(dnf_subject_set_serial(&s, serial_acme, sizeof serial_acme), 0);
	r = dnf_match(f, &s, why, whylen);
	dnf_subject_free(&s);
	dnf_free(f);
	return r;
}

static void expect_match(const char *filter, const char *subject)
{
	char why[512];

	cr_expect(try_match(filter, subject, why, sizeof why),
	          "[%s] should match [%s]; got: %s", filter, subject, why);
}

static void expect_nomatch(const char *filter, const char *subject, const char *reason)
{
	char why[512];

	if (try_match(filter, subject, why, sizeof why)) {
		cr_expect_fail("[%s] should not match [%s]", filter, subject);
		return;
	}
	if (reason != NULL)
		cr_expect_str_eq(why, reason, "[%s] vs [%s]", filter, subject);
}

static void expect_error(const char *filter, size_t pos, const char *msg)
{
	struct dnf_filter *f = NULL;
	char err[256] = "";
	size_t got = 0;

	cr_expect_eq(dnf_parse(filter, &f, &got, err, sizeof err), -1, "[%s] accepted", filter);
	cr_expect_null(f);
	cr_expect_eq(got, pos, "[%s]: position %zu, expected %zu (%s)", filter, got, pos, err);
	cr_expect_str_eq(err, msg, "[%s]", filter);
}

/* ---- parsing: errors and positions ---- */

Test(dnf_parse, unknown_attribute, .timeout = 10)
{
	expect_error("CN=QM2, FOO=x", 9, "unknown attribute 'FOO' at position 9");
	expect_error("FOO=x", 1, "unknown attribute 'FOO' at position 1");
	expect_error("CN=QM2;OU=a;TITLE=x", 13, "unknown attribute 'TITLE' at position 13");
	expect_error("1CN=x", 1, "unknown attribute '1CN' at position 1");
	expect_error("2.5.4.3=x", 1, "unknown attribute '2.5.4.3' at position 1");
	expect_error("EMAILS=x", 1, "unknown attribute 'EMAILS' at position 1");
}

Test(dnf_parse, positions_count_characters_not_bytes, .timeout = 10)
{
	/* é is two bytes but one character. */
	expect_error("O=Société, FOO=1", 12, "unknown attribute 'FOO' at position 12");
	expect_error("CN=日本;X=1", 7, "unknown attribute 'X' at position 7");
}

Test(dnf_parse, space_before_equals, .timeout = 10)
{
	expect_error("CN =QM2", 3, "space before '=' at position 3");
	expect_error("CN=QM2, O  =Acme", 10, "space before '=' at position 10");
}

Test(dnf_parse, missing_equals, .timeout = 10)
{
	expect_error("CN QM2", 3, "missing '=' after 'CN' at position 3");
	expect_error("CN", 3, "missing '=' after 'CN' at position 3");
	expect_error("CN:QM2", 3, "missing '=' after 'CN' at position 3");
	/* The classic mistake: an unquoted comma inside a value. */
	expect_error("O=Acme, Inc.", 9, "unknown attribute 'Inc.' (a ',' or ';' inside a value "
	                                "must be quoted or escaped) at position 9");
	expect_error("O=Acme; CN", 11, "missing '=' after 'CN' at position 11");
	expect_error("=QM2", 1, "missing attribute name before '=' at position 1");
	expect_error("CN=x, @=y", 7, "unexpected '@' (expected an attribute name) at position 7");
}

Test(dnf_parse, quotes, .timeout = 10)
{
	expect_error("CN=\"QM2", 4, "unterminated quote at position 4");
	expect_error("CN=QM2, O=  \"Acme, Inc", 13, "unterminated quote at position 13");
	expect_error("CN=a\"b", 5, "quote inside an unquoted value (quote the whole value, "
	                           "or write \\\") at position 5");
	expect_error("CN=\"a\" x", 8, "unexpected character after the closing quote "
	                             "(expected ',' or ';') at position 8");
}

Test(dnf_parse, empty_values_and_elements, .timeout = 10)
{
	expect_error("CN=", 4, "empty value for CN at position 4");
	expect_error("CN=\"\"", 4, "empty value for CN at position 4");
	expect_error("CN=  , O=x", 6, "empty value for CN at position 6");
	expect_error("ou=;O=x", 4, "empty value for OU at position 4");
	expect_error("CN=QM2,,O=x", 8, "empty element (expected ATTRIBUTE=value) at position 8");
	expect_error("CN=QM2,", 8, "empty element (expected ATTRIBUTE=value) at position 8");
	expect_error("CN=QM2 ; ", 10, "empty element (expected ATTRIBUTE=value) at position 10");
	expect_error(", CN=QM2", 1, "empty element (expected ATTRIBUTE=value) at position 1");
	expect_error("", 1, "empty filter at position 1");
	expect_error("   ", 4, "empty filter at position 4");
}

Test(dnf_parse, escapes, .timeout = 10)
{
	expect_error("CN=a\\", 5, "backslash at the end of the filter at position 5");
	expect_error("CN=a\\q", 5, "unknown escape '\\q' at position 5");
	expect_error("CN=\\00", 4, "escaped NUL byte at position 4");
	expect_error("CN=\\C3", 4, "value of CN is not valid UTF-8 at position 4");
	expect_error("CN=\"x\\", 6, "backslash at the end of the filter at position 6");
}

Test(dnf_parse, invalid_utf8_value, .timeout = 10)
{
	expect_error("CN=\xff\xfe", 4, "value of CN is not valid UTF-8 at position 4");
	expect_error("CN=a\xc3", 4, "value of CN is not valid UTF-8 at position 4");
}

Test(dnf_parse, serialnumber_must_be_hex, .timeout = 10)
{
	expect_error("SERIALNUMBER=xyz", 14, "SERIALNUMBER value must be hexadecimal digits "
	                                     "(optionally separated by ':') at position 14");
	expect_error("SERIALNUMBER=:", 14, "SERIALNUMBER value must be hexadecimal digits "
	                                   "(optionally separated by ':') at position 14");
}

Test(dnf_parse, length_limit, .timeout = 10)
{
	char big[DNF_MAX_LEN + 2];
	struct dnf_filter *f = NULL;
	size_t pos = 0;

	/* Exactly 1024 bytes is fine. */
	memset(big, 'a', sizeof big);
	memcpy(big, "CN=", 3);
	big[DNF_MAX_LEN] = '\0';
	cr_assert_eq(dnf_parse(big, &f, &pos, NULL, 0), 0);
	dnf_free(f);
	big[DNF_MAX_LEN] = 'a';
	big[DNF_MAX_LEN + 1] = '\0';
	expect_error(big, 1025, "filter longer than 1024 bytes at position 1025");
}

Test(dnf_parse, null_err_buffers_allowed, .timeout = 10)
{
	struct dnf_filter *f = NULL;

	cr_expect_eq(dnf_parse("FOO=1", &f, NULL, NULL, 0), -1);
	cr_expect_eq(dnf_parse("CN=x", &f, NULL, NULL, 0), 0);
	cr_expect_eq(dnf_count(f), 1);
	dnf_free(f);
	dnf_free(NULL);
}

Test(dnf_parse, separators_and_spaces, .timeout = 10)
{
	struct dnf_filter *f = NULL;
	char buf[256];

	cr_assert_eq(dnf_parse("  CN=QM2 ;OU=Sales,\tO=Acme ,  C=GB  ", &f, NULL, NULL, 0), 0);
	cr_expect_eq(dnf_count(f), 4);
	dnf_format(f, buf, sizeof buf);
	cr_expect_str_eq(buf, "CN=QM2, OU=Sales, O=Acme, C=GB");
	dnf_free(f);
}

/* ---- attribute names and aliases ---- */

Test(dnf_attr, aliases_and_case, .timeout = 10)
{
	static const struct {
		const char *name;
		enum dnf_attr attr;
	} t[] = {
		{ "cn", DNF_CN }, { "Cn", DNF_CN }, { "T", DNF_T }, { "ou", DNF_OU }, { "O", DNF_O },
		{ "l", DNF_L }, { "ST", DNF_ST }, { "sp", DNF_ST }, { "S", DNF_ST }, { "c", DNF_C },
		{ "street", DNF_STREET }, { "PC", DNF_PC }, { "dc", DNF_DC }, { "E", DNF_E },
		{ "Mail", DNF_E }, { "SerialNumber", DNF_SERIALNUMBER }, { "UID", DNF_UID },
		{ "userid", DNF_UID }, { "UnstructuredName", DNF_UNSTRUCTUREDNAME },
		{ "UNSTRUCTUREDADDRESS", DNF_UNSTRUCTUREDADDRESS }, { "dnq", DNF_DNQ },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		cr_expect_eq(dnf_attr_lookup(t[i].name, strlen(t[i].name)), (int)t[i].attr, "%s",
		             t[i].name);
	cr_expect_eq(dnf_attr_lookup("CNN", 3), -1);
	cr_expect_eq(dnf_attr_lookup("CN", 1), (int)DNF_C);
	cr_expect_str_eq(dnf_attr_name(DNF_ST), "ST");
	cr_expect_str_eq(dnf_attr_name(DNF_E), "E");
	cr_expect_str_eq(dnf_attr_name(DNF_UID), "UID");
}

Test(dnf_attr, oids, .timeout = 10)
{
	cr_expect_eq(dnf_attr_from_oid("2.5.4.3"), DNF_CN);
	cr_expect_eq(dnf_attr_from_oid("2.5.4.11"), DNF_OU);
	cr_expect_eq(dnf_attr_from_oid("0.9.2342.19200300.100.1.25"), DNF_DC);
	cr_expect_eq(dnf_attr_from_oid("1.2.840.113549.1.9.1"), DNF_E);
	cr_expect_eq(dnf_attr_from_oid("0.9.2342.19200300.100.1.1"), DNF_UID);
	cr_expect_eq(dnf_attr_from_oid("2.5.4.46"), DNF_DNQ);
	/* The subject's serialNumber attribute is not the certificate serial. */
	cr_expect_eq(dnf_attr_from_oid("2.5.4.5"), -1);
	cr_expect_eq(dnf_attr_from_oid("1.2.3"), -1);
}

Test(dnf_match, every_alias_matches_its_attribute, .timeout = 10)
{
	const char *subj = "CN=QM2/T=Manager/O=Acme/L=Leeds/ST=Yorkshire/C=GB/STREET=1 Main St/"
	                   "PC=LS1 1AA/E=qm2@acme.example/UID=qm2/UNSTRUCTUREDNAME=host7/"
	                   "UNSTRUCTUREDADDRESS=10.0.0.7/DNQ=q1/DC=example";

	expect_match("T=manager", subj);
	expect_match("ST=Yorkshire", subj);
	expect_match("SP=yorkshire", subj);
	expect_match("S=YORKSHIRE", subj);
	expect_match("STREET=1 main st", subj);
	expect_match("PC=ls1 1aa", subj);
	expect_match("E=QM2@ACME.EXAMPLE", subj);
	expect_match("MAIL=qm2@acme.example", subj);
	expect_match("UID=QM2", subj);
	expect_match("USERID=qm2", subj);
	expect_match("UNSTRUCTUREDNAME=host7", subj);
	expect_match("UNSTRUCTUREDADDRESS=10.0.0.7", subj);
	expect_match("DNQ=Q1", subj);
	expect_match("DC=EXAMPLE", subj);
	expect_match("L=leeds", subj);
	expect_nomatch("T=clerk", subj, "T=clerk does not match T=Manager");
}

/* ---- matching ---- */

Test(dnf_match, design_example, .timeout = 10)
{
	expect_match("CN=QM2, OU=Sales, O=Acme, C=GB", ACME);
	expect_match("CN=QM2; OU=Sales; O=Acme; C=GB", ACME);
	expect_match("cn=qm2,o=ACME", ACME);
	expect_match("CN=QM2", ACME);
	expect_nomatch("CN=QM3", ACME, "CN=QM3 does not match CN=QM2");
	expect_nomatch("CN=QM2, O=Other", ACME, "O=Other does not match O=Acme");
}

Test(dnf_match, multiple_ou_by_position, .timeout = 10)
{
	expect_match("OU=Sales, OU=EMEA", ACME);
	expect_match("OU=Sales", ACME);
	expect_match("ou=SALES, CN=QM2, ou=emea", ACME);
	expect_nomatch("OU=EMEA, OU=Sales", ACME, "OU=EMEA does not match OU=Sales (OU 1)");
	expect_nomatch("OU=EMEA", ACME, "OU=EMEA does not match OU=Sales (OU 1)");
	expect_nomatch("OU=Sales, OU=APAC", ACME, "OU=APAC does not match OU=EMEA (OU 2)");
	expect_nomatch("OU=Sales, OU=EMEA, OU=UK", ACME,
	               "OU=UK is OU number 3 but the certificate has only 2 OU");
	expect_match("OU=S*, OU=*A", ACME);
	expect_nomatch("OU=Sales", "O=Acme/CN=QM2", "certificate has no OU");
}

Test(dnf_match, multiple_dc_by_position, .timeout = 10)
{
	/* -subj "/DC=com/DC=acme/CN=qm2": com is the highest level, first. */
	const char *subj = "DC=com/DC=acme/CN=qm2";

	expect_match("DC=com, DC=acme", subj);
	expect_match("DC=com", subj);
	expect_nomatch("DC=acme", subj, "DC=acme does not match DC=com (DC 1)");
	expect_nomatch("DC=acme, DC=com", subj, "DC=acme does not match DC=com (DC 1)");
	expect_match("DC=com, OU=*", "DC=com/OU=x/DC=acme");
}

Test(dnf_match, repeated_other_attribute_matches_any_value, .timeout = 10)
{
	const char *two_cn = "O=Acme/CN=alpha/CN=beta";

	expect_match("CN=beta", two_cn);
	expect_match("CN=alpha", two_cn);
	expect_match("CN=beta, CN=alpha", two_cn);
	expect_match("CN=b*, CN=a*", two_cn);
	expect_nomatch("CN=gamma", two_cn, "CN=gamma does not match any of the certificate's 2 "
	                                    "CN values");
	expect_nomatch("CN=alpha, CN=gamma", two_cn, NULL);
	expect_match("CN=QM2, CN=QM*", ACME);
}

Test(dnf_match, missing_attribute_never_matches, .timeout = 10)
{
	expect_nomatch("L=Paris", "O=Acme/CN=QM2", "certificate has no L");
	expect_nomatch("STREET=*", ACME, "certificate has no STREET");
	expect_nomatch("E=*", ACME, "certificate has no E");
	expect_nomatch("CN=*", "O=Acme", "certificate has no CN");
	/* Attributes the filter leaves out are ignored. */
	expect_match("C=GB", ACME);
}

Test(dnf_match, wildcards, .timeout = 10)
{
	expect_match("CN=QM*", ACME);
	expect_match("CN=*2", ACME);
	expect_match("CN=*M*", ACME);
	expect_match("CN=*QM2*", ACME);
	expect_match("CN=*", ACME);
	expect_match("CN=**", ACME);
	expect_match("CN=qm*", ACME);
	expect_match("L=Lon*", ACME);
	expect_match("ST=*london", ACME);
	expect_nomatch("CN=QM3*", ACME, "CN=QM3* does not match CN=QM2");
	expect_nomatch("CN=*3", ACME, NULL);
	expect_nomatch("CN=*X*", ACME, NULL);
	expect_nomatch("CN=QM2X*", ACME, NULL);
}

Test(dnf_match, middle_star_is_literal, .timeout = 10)
{
	expect_nomatch("CN=Q*2", ACME, "CN=Q*2 does not match CN=QM2");
	expect_match("CN=Q*2", "CN=Q*2");
	expect_match("CN=Q*2*", "CN=Q*2 test");
	expect_nomatch("CN=Q*2*", "CN=QM2 test", NULL);
}

Test(dnf_match, escaped_stars_are_literal, .timeout = 10)
{
	expect_nomatch("CN=\\*M2", ACME, "CN=\\*M2 does not match CN=QM2");
	expect_match("CN=\\*M2", "CN=*M2");
	expect_nomatch("CN=QM\\*", ACME, NULL);
	expect_match("CN=QM\\*", "CN=QM*");
	expect_match("CN=\\*", "CN=*");
	expect_nomatch("CN=\\*", ACME, NULL);
	/* Escaped at one end, wildcard at the other. */
	expect_match("CN=\\**", "CN=*star");
	expect_nomatch("CN=\\**", "CN=star", NULL);
	expect_match("CN=*\\*", "CN=ends with*");
	/* Quoted stars are wildcards too; escaping works inside quotes. */
	expect_match("CN=\"QM*\"", ACME);
	expect_match("CN=\"\\*M2\"", "CN=*M2");
}

Test(dnf_match, quoting_and_escaped_commas, .timeout = 10)
{
	const char *inc = "O=Acme, Inc./CN=x";

	expect_match("O=\"Acme, Inc.\"", inc);
	expect_match("O=Acme\\, Inc.", inc);
	expect_match("O=  \"Acme, Inc.\"  , CN=x", inc);
	expect_match("O=\"Acme; Inc.\"", "O=Acme; Inc.");
	expect_match("O=Acme\\; Inc.", "O=Acme; Inc.");
	expect_match("O=\"acme, *\"", inc);
	expect_match("CN=\"Say \\\"Hi\\\"\"", "CN=Say \"Hi\"");
	expect_match("CN=Say \\\"Hi\\\"", "CN=Say \"Hi\"");
	expect_match("CN=back\\\\slash", "CN=back\\slash");
	expect_match("CN=a\\=b\\+c", "CN=a=b+c");
	expect_match("CN=a=b", "CN=a=b");
}

Test(dnf_match, spaces_trimmed_unless_quoted, .timeout = 10)
{
	expect_match("CN=   QM2   ", ACME);
	expect_match("CN=QM2 , O=Acme", ACME);
	expect_nomatch("CN=\" QM2\"", ACME, "CN=\" QM2\" does not match CN=QM2");
	expect_match("CN=\" QM2 \"", "CN= QM2 ");
	expect_nomatch("CN=QM2", "CN= QM2 ", NULL);
	/* Inner spaces are part of the value; an escaped blank is kept. */
	expect_match("ST=Greater London", ACME);
	expect_nomatch("ST=GreaterLondon", ACME, NULL);
	expect_match("CN=QM2\\ ", "CN=QM2 ");
}

Test(dnf_match, utf8_values, .timeout = 10)
{
	const char *subj = "O=Société/CN=日本";

	expect_match("O=Société", subj);
	expect_match("o=SOCIéTé", subj);        /* ASCII letters fold */
	expect_nomatch("O=SOCIÉTÉ", subj, NULL); /* non-ASCII compares bytewise */
	expect_match("CN=日本", subj);
	expect_match("CN=日*", subj);
	expect_match("CN=*本", subj);
	expect_match("O=Soci*", subj);
	expect_match("O=\"Société\"", subj);
	expect_match("O=Soci\\C3\\A9t\\c3\\a9", subj);
	expect_nomatch("CN=本", subj, "CN=本 does not match CN=日本");
}

Test(dnf_match, serial_numbers, .timeout = 10)
{
	expect_match("SERIALNUMBER=4C:D0:49:D5:02:5F:38", ACME);
	expect_match("serialnumber=4cd049d5025f38", ACME);
	expect_match("SERIALNUMBER=00:4C:D0:49:D5:02:5F:38", ACME);
	expect_match("SERIALNUMBER=004CD049D5025F38", ACME);
	expect_match("SERIALNUMBER=4C:D0*", ACME);
	expect_match("SERIALNUMBER=*5f:38", ACME);
	expect_match("SERIALNUMBER=4C:D0:49:D5:02:5F:38, CN=QM2", ACME);
	expect_nomatch("SERIALNUMBER=4C:D0:49:D5:02:5F:39", ACME,
	               "SERIALNUMBER=4CD049D5025F39 does not match the certificate serial number "
	               "4CD049D5025F38");
	expect_nomatch("SERIALNUMBER=*0038", ACME, NULL);
}

Test(dnf_match, serial_zero_and_unknown, .timeout = 10)
{
	struct dnf_filter *f = NULL;
	struct dnf_subject s;
	const uint8_t zero[] = { 0x00 };
	char why[256];

	cr_assert_eq(dnf_parse("SERIALNUMBER=00", &f, NULL, NULL, 0), 0);
	mksubj(&s, "CN=x");
	cr_expect_not(dnf_match(f, &s, why, sizeof why));
	cr_expect_str_eq(why, "certificate serial number is unknown");
	dnf_subject_set_serial(&s, zero, 1);
	cr_expect_str_eq(s.serial, "0");
	cr_expect(dnf_match(f, &s, why, sizeof why), "%s", why);
	dnf_subject_free(&s);
	dnf_free(f);
}

Test(dnf_match, why_may_be_null_or_short, .timeout = 10)
{
	char why[8];

	cr_expect_not(try_match("CN=QM3", ACME, NULL, 0));
	cr_expect_not(try_match("CN=QM3", ACME, why, sizeof why));
	cr_expect_eq(strlen(why), sizeof why - 1);
}

Test(dnf_match, control_characters_not_echoed, .timeout = 10)
{
	char why[256];

	cr_expect_not(try_match("CN=x", "CN=a\nb", why, sizeof why));
	cr_expect_str_eq(why, "CN=x does not match CN=a?b");
}

Test(dnf_subject, rejects_bad_values, .timeout = 10)
{
	struct dnf_subject s;

	dnf_subject_init(&s);
	cr_expect_eq(dnf_subject_add(&s, DNF_CN, "a\0b", 3), -1);
	cr_expect_eq(dnf_subject_add(&s, DNF_CN, "\xc3", 1), -1);
	cr_expect_eq(dnf_subject_add(&s, DNF_SERIALNUMBER, "1", 1), -1);
	cr_expect_eq(dnf_subject_add(&s, DNF_CN, "ok", 2), 0);
	cr_expect_eq(s.n, 1);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(dnf_subject_add(&s, DNF_OU, "x", 1), 0);
	cr_expect_eq(s.n, 101);
	dnf_subject_free(&s);
	cr_expect_eq(s.n, 0);
}

/* ---- canonical format ---- */

static void expect_format(const char *in, const char *want)
{
	struct dnf_filter *f = NULL, *g = NULL;
	char a[2048], b[2048], err[256];

	cr_assert_eq(dnf_parse(in, &f, NULL, err, sizeof err), 0, "[%s]: %s", in, err);
	cr_expect_eq(dnf_format(f, a, sizeof a), strlen(want), "[%s]", in);
	cr_expect_str_eq(a, want, "[%s]", in);
	/* Re-parsing the canonical text gives the same filter. */
	cr_assert_eq(dnf_parse(a, &g, NULL, err, sizeof err), 0, "[%s]: %s", a, err);
	dnf_format(g, b, sizeof b);
	cr_expect_str_eq(a, b);
	dnf_free(f);
	dnf_free(g);
}

Test(dnf_format, canonical, .timeout = 10)
{
	expect_format("cn=QM2;ou=\"Sales, EMEA\" ; e=x@y; sp=*London; serialnumber=00:4c:d0",
	              "CN=QM2, OU=\"Sales, EMEA\", E=x@y, ST=*London, SERIALNUMBER=4CD0");
	expect_format("CN=\" QM2 \"", "CN=\" QM2 \"");
	expect_format("CN=\\*M2", "CN=\\*M2");
	expect_format("CN=QM\\*", "CN=QM\\*");
	expect_format("CN=Q*2", "CN=Q*2");
	expect_format("CN=**", "CN=*");
	expect_format("SERIALNUMBER=* *", "SERIALNUMBER=*");
	expect_format("SERIALNUMBER=*:*", "SERIALNUMBER=*");
	expect_format("CN=*\\**", "CN=***");
	expect_format("CN=\\**", "CN=\\**");
	expect_format("CN=Say \\\"Hi\\\"", "CN=Say \\\"Hi\\\"");
	expect_format("CN=a\\\\b", "CN=a\\\\b");
	expect_format("CN=a\\0Ab", "CN=a\\0Ab");
	expect_format("O=Soci\\C3\\A9t\\C3\\A9", "O=Société");
	expect_format("O=Acme\\, Inc.", "O=\"Acme, Inc.\"");
	expect_format("USERID=u1, MAIL=m, S=s, SP=p", "UID=u1, E=m, ST=s, ST=p");
}

Test(dnf_format, truncates_like_snprintf, .timeout = 10)
{
	struct dnf_filter *f = NULL;
	char small[6];

	cr_assert_eq(dnf_parse("CN=QM2, O=Acme", &f, NULL, NULL, 0), 0);
	cr_expect_eq(dnf_format(f, small, sizeof small), strlen("CN=QM2, O=Acme"));
	cr_expect_str_eq(small, "CN=QM");
	cr_expect_eq(dnf_format(f, NULL, 0), strlen("CN=QM2, O=Acme"));
	dnf_free(f);
}

/* ---- the examples of doc/SSLPEER.md ---- */

#define DOC_MAX_ROWS 64

struct doc_row {
	char col[3][1200];
	int ncol;
};

/* Rows of the table that follows `marker` in doc/SSLPEER.md: the code spans
 * of each "| `...` |" line, up to "<!-- end -->". Returns the row count. */
static int doc_rows(const char *marker, struct doc_row *rows)
{
	FILE *f = fopen(TEST_SRCDIR "/doc/SSLPEER.md", "r");
	char line[4096];
	bool in = false;
	int n = 0;

	cr_assert_not_null(f, "cannot open doc/SSLPEER.md");
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!in) {
			in = strcmp(line, marker) == 0;
			continue;
		}
		if (strcmp(line, "<!-- end -->") == 0)
			break;
		if (strncmp(line, "| `", 3) != 0)
			continue;
		cr_assert_lt(n, DOC_MAX_ROWS);
		rows[n].ncol = 0;
		for (char *p = line; rows[n].ncol < 3 && (p = strchr(p, '`')) != NULL;) {
			char *q = strchr(p + 1, '`');
			cr_assert_not_null(q, "unbalanced ` in: %s", line);
			snprintf(rows[n].col[rows[n].ncol++], sizeof rows[n].col[0], "%.*s",
			         (int)(q - p - 1), p + 1);
			p = q + 1;
		}
		n++;
	}
	fclose(f);
	cr_assert(in, "marker %s not found in doc/SSLPEER.md", marker);
	return n;
}

Test(dnf_doc, every_example_of_the_doc, .timeout = 10)
{
	static struct doc_row rows[DOC_MAX_ROWS];
	int n = doc_rows("<!-- sslpeer-examples -->", rows);
	char why[512], want[600];

	cr_assert_geq(n, 20, "only %d examples found", n);
	for (int i = 0; i < n; i++) {
		bool m;

		cr_assert_eq(rows[i].ncol, 3, "row %d", i + 1);
		m = try_match(rows[i].col[0], rows[i].col[1], why, sizeof why);
		if (m)
			snprintf(want, sizeof want, "match");
		else
			snprintf(want, sizeof want, "no match: %s", why);
		cr_expect_str_eq(want, rows[i].col[2], "doc example [%s] on [%s]", rows[i].col[0],
		                 rows[i].col[1]);
	}
}

Test(dnf_doc, every_error_of_the_doc, .timeout = 10)
{
	static struct doc_row rows[DOC_MAX_ROWS];
	int n = doc_rows("<!-- sslpeer-errors -->", rows);

	cr_assert_geq(n, 10, "only %d errors found", n);
	for (int i = 0; i < n; i++) {
		struct dnf_filter *f = NULL;
		char err[256], want[400], *at;
		size_t pos = 0;

		cr_assert_eq(rows[i].ncol, 2, "row %d", i + 1);
		cr_expect_eq(dnf_parse(rows[i].col[0], &f, &pos, err, sizeof err), -1, "[%s]",
		             rows[i].col[0]);
		dnf_free(f);
		/* As check-peer shows it: the position first. */
		at = strstr(err, " at position ");
		cr_assert_not_null(at, "%s", err);
		*at = '\0';
		snprintf(want, sizeof want, "error: SSLPEER position %zu: %s", pos, err);
		cr_expect_str_eq(want, rows[i].col[1], "[%s]", rows[i].col[0]);
	}
}

/* What chand prints for an e-mail attribute (EMAIL=, as GnuTLS names it)
 * pasted back as a filter matches: EMAIL, EMAILADDRESS, E and MAIL are one
 * attribute (doc/SSLPEER.md). */
Test(dnfilter, email_aliases_are_one_attribute)
{
	static const char *const names[] = { "EMAIL", "EMAILADDRESS", "E", "MAIL", "email" };
	struct dnf_filter *f = NULL;
	size_t pos = 0;
	char err[200];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char text[80];
		snprintf(text, sizeof(text), "%s=johnsmith@gmail.com, CN=10.3.0.11", names[i]);
		cr_assert_eq(dnf_parse(text, &f, &pos, err, sizeof(err)), 0, "%s: %s", text, err);
		dnf_free(f);
		f = NULL;
	}
}
