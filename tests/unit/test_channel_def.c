/* Channel definitions: defaults, attribute parsing, define-time checks,
 * the stored JSON form, CONNAME parsing and the retry schedule. */
#include <criterion/criterion.h>
#include <string.h>

#include "chand/chandef.h"

static struct chan_def def_of(const char *name, enum chan_type t, const char *json)
{
	struct chan_def d;
	json_error_t je;
	json_t *o = json_loads(json, 0, &je);
	char err[512] = "";

	cr_assert_not_null(o, "bad test JSON: %s", je.text);
	chan_def_init(&d, name, t);
	cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), 0, "%s", err);
	json_decref(o);
	return d;
}

static int validate(const struct chan_def *d, char *err, size_t len)
{
	err[0] = '\0';
	return chan_def_validate(d, err, len);
}

Test(chandef, defaults_are_mq_like)
{
	struct chan_def d;

	chan_def_init(&d, "QM1.QM2", CHT_SDR);
	cr_assert_eq(d.batchsz, 50);
	cr_assert_eq(d.batchint, 0);
	cr_assert_eq(d.hbint, 300);
	cr_assert_eq(d.discint, 6000);
	cr_assert_eq(d.maxmsgl, 4194304);
	cr_assert_eq(d.shortrty, 10);
	cr_assert_eq(d.shorttmr, 60);
	cr_assert_eq(d.longrty, 999999999);
	cr_assert_eq(d.longtmr, 1200);
	cr_assert_eq(d.seqwrap, 999999999);
	cr_assert_eq(d.sslcauth, SSLCAUTH_REQUIRED);
	cr_assert_str_empty(d.sslciph);
	cr_assert_eq(d.keyupdate_bytes, 0);
}

Test(chandef, type_names)
{
	cr_assert_eq(chan_type_parse("SDR"), CHT_SDR);
	cr_assert_eq(chan_type_parse("rcvr"), CHT_RCVR);
	cr_assert_eq(chan_type_parse("Svr"), CHT_SVR);
	cr_assert_eq(chan_type_parse("rqstr"), CHT_RQSTR);
	cr_assert_eq(chan_type_parse("clntconn"), -1);
	cr_assert_eq(chan_type_parse(NULL), -1);
	cr_assert_str_eq(chan_type_name(CHT_RQSTR), "rqstr");
}

Test(chandef, roles)
{
	struct chan_def sdr = def_of("A", CHT_SDR, "{\"conname\":\"h:1\",\"xmitq\":\"X\"}");
	struct chan_def svr = def_of("A", CHT_SVR, "{\"xmitq\":\"X\"}");
	struct chan_def svrc = def_of("A", CHT_SVR, "{\"xmitq\":\"X\",\"conname\":\"h\"}");
	struct chan_def rq = def_of("A", CHT_RQSTR, "{\"conname\":\"h\"}");
	struct chan_def rc = def_of("A", CHT_RCVR, "{}");

	cr_assert(chan_def_initiates(&sdr) && chan_def_sends(&sdr) && chan_def_triggers(&sdr));
	cr_assert(!chan_def_initiates(&svr) && chan_def_sends(&svr) && !chan_def_triggers(&svr));
	cr_assert(chan_def_initiates(&svrc) && chan_def_sends(&svrc) && chan_def_triggers(&svrc));
	cr_assert(chan_def_initiates(&rq) && !chan_def_sends(&rq) && !chan_def_triggers(&rq));
	cr_assert(!chan_def_initiates(&rc) && !chan_def_sends(&rc) && !chan_def_triggers(&rc));
}

Test(chandef, required_attributes_per_type)
{
	char err[512];
	struct chan_def d;

	d = def_of("C", CHT_SDR, "{\"xmitq\":\"XQ\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "CONNAME") != NULL, "%s", err);
	d = def_of("C", CHT_SDR, "{\"conname\":\"host:1414\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "XMITQ") != NULL, "%s", err);
	d = def_of("C", CHT_SDR, "{\"conname\":\"host:1414\",\"xmitq\":\"XQ\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);

	d = def_of("C", CHT_SVR, "{}");
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "XMITQ") != NULL, "%s", err);
	d = def_of("C", CHT_SVR, "{\"xmitq\":\"XQ\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);

	d = def_of("C", CHT_RQSTR, "{}");
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "CONNAME") != NULL, "%s", err);
	d = def_of("C", CHT_RCVR, "{}");
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
}

Test(chandef, bad_names)
{
	char err[512];
	struct chan_def d = def_of("C", CHT_SDR, "{\"conname\":\"h\",\"xmitq\":\"bad name\"}");

	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "XMITQ") != NULL, "%s", err);
	chan_def_init(&d, "", CHT_RCVR);
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	chan_def_init(&d, "BAD NAME", CHT_RCVR);
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
}

Test(chandef, numeric_ranges)
{
	static const char *const bad[] = {
		"{\"batchsz\":0}", "{\"batchsz\":10000}", "{\"hbint\":-1}", "{\"hbint\":1000000}",
		"{\"seqwrap\":99}", "{\"seqwrap\":1000000000}", "{\"maxmsgl\":0}",
		"{\"maxmsgl\":104857601}", "{\"shortrty\":-1}", "{\"batchint\":1000000000}",
		"{\"discint\":1000000}", "{\"batchsz\":\"50\"}", "{\"conname\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct chan_def d;
		char err[256] = "";
		json_t *o = json_loads(bad[i], 0, NULL);
		chan_def_init(&d, "C", CHT_RCVR);
		cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), -1, "accepted %s", bad[i]);
		cr_assert(err[0] != '\0');
		json_decref(o);
	}
	struct chan_def d = def_of("C", CHT_RCVR, "{\"batchsz\":9999,\"hbint\":0,\"seqwrap\":100,"
	                                          "\"maxmsgl\":104857600,\"discint\":0}");
	char err[256];
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(d.batchsz, 9999);
	cr_assert_eq(d.seqwrap, 100);
	/* a value set in the struct directly is checked by validate too */
	d.batchsz = 0;
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "batchsz") != NULL, "%s", err);
}

Test(chandef, sslciph_known_or_empty_and_canonical)
{
	char err[512];
	struct chan_def d = def_of("C", CHT_RCVR, "{\"sslciph\":\"tls_aes_128_gcm_sha256\"}");

	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(d.sslciph, "TLS_AES_128_GCM_SHA256");
	d = def_of("C", CHT_RCVR, "{\"sslciph\":\"RC4_MD5_US\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "SSLCIPH") != NULL, "%s", err);
	d = def_of("C", CHT_RCVR, "{\"sslciph\":\"\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
}

Test(chandef, sslpeer_error_names_position)
{
	char err[512];
	struct chan_def d = def_of("C", CHT_RCVR, "{\"sslpeer\":\"CN=QM2, FOO=bar\"}");

	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "SSLPEER") != NULL, "%s", err);
	cr_assert(strstr(err, "position 9") != NULL, "%s", err);
	d = def_of("C", CHT_RCVR, "{\"sslpeer\":\"CN=QM2, OU=Payments, O=Acme, C=GB\"}");
	cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
}

Test(chandef, sslcauth_words)
{
	struct chan_def d = def_of("C", CHT_RCVR, "{\"sslcauth\":\"OPTIONAL\"}");
	char err[128];
	json_t *o = json_loads("{\"sslcauth\":\"maybe\"}", 0, NULL);

	cr_assert_eq(d.sslcauth, SSLCAUTH_OPTIONAL);
	cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), -1);
	json_decref(o);
}

Test(chandef, text_attributes_refuse_control_characters)
{
	struct chan_def d;
	char err[128];
	json_t *o = json_loads("{\"descr\":\"a\\nb\"}", 0, NULL);

	chan_def_init(&d, "C", CHT_RCVR);
	cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), -1);
	json_decref(o);
	o = json_loads("{\"descr\":\"01234567890123456789012345678901234567890123456789012345678901234\"}",
	               0, NULL);
	cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), -1, "65-byte DESCR accepted");
	json_decref(o);
}

Test(chandef, json_round_trip)
{
	struct chan_def a = def_of("QM1.TO.QM2", CHT_SDR,
	                           "{\"conname\":\"10.0.0.2(1415),backup:1414\",\"xmitq\":\"QM2\","
	                           "\"sslciph\":\"ANY_TLS13\",\"certlabl\":\"qm1\",\"sslcauth\":\"optional\","
	                           "\"sslpeer\":\"CN=QM2\",\"batchsz\":7,\"batchint\":20,\"hbint\":30,"
	                           "\"discint\":60,\"maxmsgl\":1000,\"shortrty\":1,\"shorttmr\":2,"
	                           "\"longrty\":3,\"longtmr\":4,\"seqwrap\":5000,\"descr\":\"to QM2\","
	                           "\"verify_host\":\"yes\",\"keyupdate_bytes\":1099511627776}");
	struct chan_def b;
	char err[512];
	json_t *o = chan_def_to_json(&a);
	char *text = json_dumps(o, JSON_COMPACT);
	static const char *const keys[] = { "name", "type", "conname", "xmitq", "sslciph", "certlabl",
		"sslcauth", "sslpeer", "batchsz", "batchint", "hbint", "discint", "maxmsgl", "shortrty",
		"shorttmr", "longrty", "longtmr", "seqwrap", "descr", "verify_host", "keyupdate_bytes" };

	cr_assert_eq(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_assert_not_null(json_object_get(o, keys[i]), "missing %s", keys[i]);
	cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "sdr");
	cr_assert_eq(chan_def_from_text(&b, "QM1.TO.QM2", text, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "round trip changed the definition: %s", text);
	cr_assert_eq(chan_def_validate(&b, err, sizeof(err)), 0, "%s", err);
	free(text);
	json_decref(o);
	cr_assert_eq(chan_def_from_text(&b, "X", "not json", err, sizeof(err)), -1);
	cr_assert_eq(chan_def_from_text(&b, "X", "{\"type\":\"xyz\"}", err, sizeof(err)), -1);
}

Test(conname, forms)
{
	struct chan_addr a[CHAN_CONNAME_ADDRS];
	char err[256];

	cr_assert_eq(chan_conname_parse("qm2.example.com:1415", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_str_eq(a[0].host, "qm2.example.com");
	cr_assert_eq(a[0].port, 1415);
	cr_assert_eq(chan_conname_parse("127.0.0.1(1414)", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_str_eq(a[0].host, "127.0.0.1");
	cr_assert_eq(a[0].port, 1414);
	cr_assert_eq(chan_conname_parse("host", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_eq(a[0].port, CHAN_DEFAULT_PORT);
	cr_assert_eq(chan_conname_parse("[::1]:2000", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_str_eq(a[0].host, "::1");
	cr_assert_eq(a[0].port, 2000);
	cr_assert_eq(chan_conname_parse("fe80::1(1500)", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_str_eq(a[0].host, "fe80::1");
	cr_assert_eq(a[0].port, 1500);
	cr_assert_eq(chan_conname_parse("::1", a, 8, err, sizeof(err)), 1, "%s", err);
	cr_assert_eq(a[0].port, CHAN_DEFAULT_PORT);
	cr_assert_eq(chan_conname_parse(" a(1) , b:2,c ", a, 8, err, sizeof(err)), 3, "%s", err);
	cr_assert_str_eq(a[1].host, "b");
	cr_assert_eq(a[1].port, 2);
	cr_assert_str_eq(a[2].host, "c");
}

Test(conname, refused)
{
	static const char *const bad[] = {
		"", "host:", "host:0", "host:65536", "host:14x4", "host(1414", "(1414)", "ho st:1",
		"host:1,", "[::1", "[::1]x", "a,b,c,d,e,f,g,h,i", "host(99999)", "h;rm:1",
	};
	struct chan_addr a[CHAN_CONNAME_ADDRS];
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(chan_conname_parse(bad[i], a, CHAN_CONNAME_ADDRS, err, sizeof(err)), -1,
		             "accepted '%s'", bad[i]);
		cr_assert(err[0] != '\0', "no reason for '%s'", bad[i]);
	}
}

Test(retry, short_then_long_then_stopped)
{
	struct chan_def d;
	int64_t delay;
	long left;

	chan_def_init(&d, "C", CHT_SDR);
	d.shortrty = 2;
	d.shorttmr = 5;
	d.longrty = 3;
	d.longtmr = 60;
	cr_assert(chan_retry_next(&d, 1, &delay, &left));
	cr_assert_eq(delay, 5000);
	cr_assert_eq(left, 5);
	cr_assert(chan_retry_next(&d, 2, &delay, &left));
	cr_assert_eq(delay, 5000);
	cr_assert_eq(left, 4);
	cr_assert(chan_retry_next(&d, 3, &delay, &left));
	cr_assert_eq(delay, 60000);
	cr_assert_eq(left, 3);
	cr_assert(chan_retry_next(&d, 5, &delay, &left));
	cr_assert_eq(delay, 60000);
	cr_assert_eq(left, 1);
	cr_assert_not(chan_retry_next(&d, 6, &delay, &left));
	cr_assert_eq(left, 0);
}

Test(retry, no_retries_means_stopped)
{
	struct chan_def d;
	int64_t delay;
	long left;

	chan_def_init(&d, "C", CHT_SDR);
	d.shortrty = 0;
	d.longrty = 0;
	cr_assert_not(chan_retry_next(&d, 1, &delay, &left));
	d.longrty = 1;
	d.longtmr = 7;
	cr_assert(chan_retry_next(&d, 1, &delay, &left));
	cr_assert_eq(delay, 7000);
	cr_assert_eq(left, 1);
}

Test(retry, defaults_do_not_overflow)
{
	struct chan_def d;
	int64_t delay;
	long left;

	chan_def_init(&d, "C", CHT_SDR);
	cr_assert(chan_retry_next(&d, 10, &delay, &left));
	cr_assert_eq(delay, 60000);
	cr_assert(chan_retry_next(&d, 11, &delay, &left));
	cr_assert_eq(delay, 1200000);
	cr_assert_eq(left, 999999999L + 10 - 11 + 1);
	cr_assert(chan_retry_next(&d, 999999999L + 10, &delay, &left));
	cr_assert_eq(left, 1);
	cr_assert_not(chan_retry_next(&d, 999999999L + 11, &delay, &left));
}

/* --verify-host: yes, no (stored as none) or a host name; initiators with
 * TLS only. */
Test(chandef, verify_host_values_and_ends)
{
	struct chan_def d;
	char err[512];

	d = def_of("V1", CHT_SDR, "{\"conname\":\"h:1414\",\"xmitq\":\"QM2\","
	           "\"sslciph\":\"ANY_TLS13\",\"verify_host\":\"YES\"}");
	cr_assert_str_eq(d.verify_host, "yes");
	cr_assert_eq(chan_def_validate(&d, err, sizeof(err)), 0, "%s", err);
	d = def_of("V2", CHT_SDR, "{\"conname\":\"h:1414\",\"xmitq\":\"QM2\","
	           "\"sslciph\":\"ANY_TLS13\",\"verify_host\":\"no\"}");
	cr_assert_str_eq(d.verify_host, "");
	d = def_of("V3", CHT_SDR, "{\"conname\":\"h:1414\",\"xmitq\":\"QM2\","
	           "\"sslciph\":\"ANY_TLS13\",\"verify_host\":\"qm2.example.com\"}");
	cr_assert_eq(chan_def_validate(&d, err, sizeof(err)), 0, "%s", err);
	d = def_of("V4", CHT_SDR, "{\"conname\":\"h:1414\",\"xmitq\":\"QM2\","
	           "\"sslciph\":\"ANY_TLS13\",\"verify_host\":\"bad host!\"}");
	cr_assert_eq(chan_def_validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "VERIFY_HOST") != NULL, "%s", err);
	d = def_of("V5", CHT_RCVR, "{\"sslciph\":\"ANY_TLS13\",\"verify_host\":\"yes\"}");
	cr_assert_eq(chan_def_validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "connects") != NULL, "%s", err);
	d = def_of("V6", CHT_SDR, "{\"conname\":\"h:1414\",\"xmitq\":\"QM2\","
	           "\"verify_host\":\"yes\"}");
	cr_assert_eq(chan_def_validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "SSLCIPH") != NULL, "%s", err);
}

/* --keyupdate-bytes: 0 (never) or 1 MiB to 2^40, from JSON and at
 * define time alike; the reason names the attribute and both bounds. */
Test(chandef, keyupdate_bytes_bounds)
{
	static const struct { const char *v; bool ok; } cases[] = {
		{ "0", true }, { "1048576", true }, { "1099511627776", true },
		{ "1", false }, { "1048575", false }, { "1099511627777", false }, { "-1", false },
		{ "\"1048576\"", false },
	};
	struct chan_def d;
	char json[128], err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o;

		snprintf(json, sizeof(json), "{\"keyupdate_bytes\":%s}", cases[i].v);
		o = json_loads(json, 0, NULL);
		cr_assert_not_null(o);
		chan_def_init(&d, "KU", CHT_RCVR);
		err[0] = '\0';
		cr_assert_eq(chan_def_apply_json(&d, o, err, sizeof(err)), cases[i].ok ? 0 : -1,
		             "keyupdate_bytes %s: %s", cases[i].v, err);
		json_decref(o);
		if (cases[i].ok) {
			cr_assert_eq(d.keyupdate_bytes, strtol(cases[i].v, NULL, 10));
			cr_assert_eq(validate(&d, err, sizeof(err)), 0, "%s", err);
		} else {
			cr_assert(strstr(err, "keyupdate_bytes") != NULL, "%s", err);
			cr_assert_eq(d.keyupdate_bytes, 0, "a refused value was kept");
		}
	}
	cr_assert(strstr(err, "integer") != NULL, "%s", err);
	/* a value set behind the parser's back is refused at define time */
	chan_def_init(&d, "KU", CHT_RCVR);
	d.keyupdate_bytes = 4096;
	cr_assert_eq(validate(&d, err, sizeof(err)), -1);
	cr_assert(strstr(err, "0 (never) or from 1048576 to 1099511627776 (got 4096)") != NULL,
	          "%s", err);
	cr_assert(strstr(err, "channel KU") != NULL, "%s", err);
}
