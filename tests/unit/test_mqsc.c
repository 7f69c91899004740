/* MQSC parser, translation to chanctl argv and dump (src/ctl/mqsc.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mqsc.h"

static struct mqsc_script sc;

static void parse(const char *text)
{
	mqsc_script_free(&sc);
	cr_assert_eq(mqsc_parse(text, strlen(text), &sc), 0);
}

static void cleanup(void)
{
	mqsc_script_free(&sc);
}

static const struct mqsc_param *param(size_t cmd, const char *key)
{
	cr_assert_lt(cmd, sc.n);
	for (size_t i = 0; i < sc.cmds[cmd].np; i++)
		if (strcmp(sc.cmds[cmd].p[i].key, key) == 0)
			return &sc.cmds[cmd].p[i];
	cr_assert_fail("command %zu has no %s", cmd, key);
	return NULL;
}

/* The translation of command i joined with '|', or the error. */
static char *xlate(size_t i)
{
	struct mqsc_argv av;
	char err[512], *s;
	size_t n = 1;

	cr_assert_lt(i, sc.n);
	if (mqsc_translate(&sc.cmds[i], &av, err, sizeof(err)) != 0)
		return strdup(err);
	cr_assert_null(av.v[av.n]);
	for (int k = 0; k < av.n; k++)
		n += strlen(av.v[k]) + 1;
	s = calloc(1, n);
	for (int k = 0; k < av.n; k++) {
		if (k)
			strcat(s, "|");
		strcat(s, av.v[k]);
	}
	mqsc_argv_free(&av);
	return s;
}

static void expect_xlate(size_t i, const char *want)
{
	char *got = xlate(i);
	cr_expect_str_eq(got, want);
	free(got);
}

TestSuite(mqsc, .fini = cleanup, .timeout = 10);

Test(mqsc, keywords_any_case_unquoted_values_folded)
{
	parse("define qlocal(app.in) maxdepth(500) descr(hello)\n");
	cr_assert_eq(sc.n, 1);
	cr_assert_eq(sc.cmds[0].np, 4);
	cr_expect_str_eq(sc.cmds[0].p[0].key, "DEFINE");
	cr_expect_null(sc.cmds[0].p[0].value);
	cr_expect_str_eq(param(0, "QLOCAL")->value, "APP.IN");
	cr_expect_str_eq(param(0, "MAXDEPTH")->value, "500");
	cr_expect_str_eq(param(0, "DESCR")->value, "HELLO");
	cr_expect(!param(0, "DESCR")->quoted);
	cr_expect_null(sc.cmds[0].error);
}

Test(mqsc, quoted_values_keep_case_and_double_quotes)
{
	parse("DEFINE QLOCAL('app.in') DESCR('It''s Bob''s queue') RNAME('''')\n");
	cr_expect_str_eq(param(0, "QLOCAL")->value, "app.in");
	cr_expect(param(0, "QLOCAL")->quoted);
	cr_expect_str_eq(param(0, "DESCR")->value, "It's Bob's queue");
	cr_expect_str_eq(param(0, "RNAME")->value, "'");
}

Test(mqsc, empty_and_blank_values)
{
	parse("ALTER CHANNEL(R) XMITQ() DESCR('') CERTLABL(' ') CONNAME(  x  )\n");
	cr_expect_str_eq(param(0, "XMITQ")->value, "");
	cr_expect_str_eq(param(0, "DESCR")->value, "");
	cr_expect_str_eq(param(0, "CERTLABL")->value, " ");
	cr_expect_str_eq(param(0, "CONNAME")->value, "X");
	/* A blank field is MQ's empty one. */
	expect_xlate(0, "alter|channel|R|--xmitq||--descr||--certlabl||--conname|X");
}

Test(mqsc, plus_continuation_skips_leading_blanks)
{
	parse("DEFINE QLOCAL(A) +\n      MAXDEPTH(10) +\n\t  DESCR('ab+\n     cd')\n");
	cr_assert_eq(sc.n, 1);
	cr_expect_str_eq(param(0, "MAXDEPTH")->value, "10");
	cr_expect_str_eq(param(0, "DESCR")->value, "abcd");
	cr_expect_eq(param(0, "MAXDEPTH")->line, 2);
	cr_expect_eq(param(0, "MAXDEPTH")->col, 7);
	cr_expect_eq(param(0, "DESCR")->line, 3);
	cr_expect_str_eq(sc.cmds[0].text, "DEFINE QLOCAL(A) MAXDEPTH(10) DESCR('abcd')");
}

Test(mqsc, minus_continuation_keeps_leading_blanks)
{
	parse("DEFINE QLOCAL(A) DESCR('ab -\n  cd') -\nMAXDEPTH(3)\n");
	cr_assert_eq(sc.n, 1);
	cr_expect_str_eq(param(0, "DESCR")->value, "ab   cd");
	cr_expect_str_eq(param(0, "MAXDEPTH")->value, "3");
	cr_expect_eq(param(0, "MAXDEPTH")->line, 3);
	cr_expect_eq(sc.cmds[0].line, 1);
}

Test(mqsc, comments_blank_lines_and_crlf)
{
	parse("* a comment with (unbalanced ' quote\r\n\r\n   \r\n  * indented comment\r\n"
	      "DEFINE QLOCAL(A)\r\n*\r\nDELETE QLOCAL(A)   \r\n");
	cr_assert_eq(sc.n, 2);
	cr_expect_eq(sc.cmds[0].line, 5);
	cr_expect_eq(sc.cmds[1].line, 7);
	cr_expect_str_eq(sc.cmds[1].text, "DELETE QLOCAL(A)");
	cr_expect_null(sc.cmds[0].error);
	cr_expect_null(sc.cmds[1].error);
}

Test(mqsc, semicolons_end_commands_but_not_inside_quotes_or_parentheses)
{
	parse("DEFINE QLOCAL(A); DEFINE QLOCAL(B) DESCR('x;y');\n"
	      "ALTER CHANNEL(C) CHLTYPE(SDR) SSLPEER('CN=a;O=b');\n;;\n");
	cr_assert_eq(sc.n, 3);
	cr_expect_str_eq(param(0, "QLOCAL")->value, "A");
	cr_expect_str_eq(param(1, "QLOCAL")->value, "B");
	cr_expect_str_eq(param(1, "DESCR")->value, "x;y");
	cr_expect_eq(sc.cmds[1].line, 1);
	cr_expect_str_eq(param(2, "SSLPEER")->value, "CN=a;O=b");
}

Test(mqsc, commas_separate_and_nested_parentheses)
{
	parse("DEFINE CHANNEL(X),CHLTYPE(SDR),CONNAME(host1(1414),host2(1415)) XMITQ (Q)\n");
	cr_assert_null(sc.cmds[0].error);
	cr_expect_str_eq(param(0, "CONNAME")->value, "HOST1(1414),HOST2(1415)");
	cr_expect_str_eq(param(0, "XMITQ")->value, "Q");
	expect_xlate(0, "define|channel|X|--type|sdr|--conname|HOST1(1414),HOST2(1415)|--xmitq|Q");
}

Test(mqsc, unterminated_quote_is_an_error_with_its_line)
{
	parse("DEFINE QLOCAL(A)\nDEFINE QLOCAL(B) DESCR('abc\nDEFINE QLOCAL(C)\n");
	cr_assert_eq(sc.n, 3);
	cr_expect_null(sc.cmds[0].error);
	cr_assert_not_null(sc.cmds[1].error);
	cr_expect(strstr(sc.cmds[1].error, "unterminated quoted string") != NULL, "%s",
	          sc.cmds[1].error);
	cr_expect_eq(sc.cmds[1].error_line, 2);
	/* The next command is parsed as usual. */
	cr_expect_null(sc.cmds[2].error);
	cr_expect_str_eq(param(2, "QLOCAL")->value, "C");
	char *e = xlate(1);
	cr_expect_str_eq(e, "line 2: DEFINE QLOCAL(B): unterminated quoted string in the value of "
	                 "DESCR (opened on line 2)");
	free(e);
}

Test(mqsc, quote_continued_over_lines_then_missing_paren)
{
	parse("DEFINE QLOCAL(B) +\n  DESCR('abc +\n  def' +\n  MAXDEPTH(4)\n");
	cr_assert_eq(sc.n, 1);
	cr_assert_not_null(sc.cmds[0].error);
	cr_expect(strstr(sc.cmds[0].error, "missing ')' after the value of DESCR (opened on line 2)")
	          != NULL, "%s", sc.cmds[0].error);
	cr_expect_eq(sc.cmds[0].error_line, 4);
}

Test(mqsc, syntax_errors)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "DEFINE QLOCAL(A))\n", "unexpected ')'" },
		{ "(A) DEFINE\n", "'(' without a keyword" },
		{ "DEFINE QLOCAL(A) 'x'\n", "a quoted string must be the value of a keyword" },
		{ "DEFINE QLOCAL(A) MAX=DEPTH(3)\n", "unexpected character '='" },
		{ "DEFINE QLOCAL(A) +\n", "the script ends after a continuation character" },
		{ "DEFINE QLOCAL(A) MAXDEPTH(3\n", "missing ')'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse(cases[i].text);
		cr_assert_eq(sc.n, 1, "%s", cases[i].text);
		cr_assert_not_null(sc.cmds[0].error, "%s", cases[i].text);
		cr_expect(strstr(sc.cmds[0].error, cases[i].err) != NULL, "%s: got %s", cases[i].text,
		          sc.cmds[0].error);
		cr_expect_eq(sc.cmds[0].error_line, 1, "%s", cases[i].text);
	}
}

Test(mqsc, error_lines_count_every_physical_line)
{
	parse("* header\n\nDEFINE QLOCAL(A) +\n  MAXDEPTH(1)\n\n\nDEFINE QLOCAL(B) DESCR('x\n");
	cr_assert_eq(sc.n, 2);
	cr_expect_eq(sc.cmds[0].line, 3);
	cr_expect_eq(sc.cmds[1].line, 7);
	cr_expect_eq(sc.cmds[1].error_line, 7);
}

Test(mqsc, translate_queues)
{
	parse("DEFINE QLOCAL(QM2) USAGE(xmitq) MAXDEPTH(5000) MAXMSGL(1048576) PUT(ENABLED) "
	      "GET(disabled) DESCR('to QM2') REPLACE\n"
	      "DEF QL(A) NOREPLACE\n"
	      "DEFINE QREMOTE(R.A) RNAME(APP.IN) RQMNAME(QM2) XMITQ(QM2)\n"
	      "ALT QR(R.A) PUT(DISABLED)\n"
	      "DELETE QLOCAL(A) PURGE\n"
	      "DEL QUEUE(R.A)\n"
	      "DISPLAY QLOCAL(*) ALL\n"
	      "DIS Q(A*) CURDEPTH\n"
	      "DISPLAY QSTATUS(A) TYPE(QUEUE) CURDEPTH\n"
	      "ALTER QLOCAL(A) USAGE('normal')\n");
	expect_xlate(0, "define|qlocal|QM2|--usage|xmitq|--maxdepth|5000|--maxmsgl|1048576|--put|"
	             "enabled|--get|disabled|--descr|to QM2|--replace");
	expect_xlate(1, "define|qlocal|A");
	expect_xlate(2, "define|qremote|R.A|--rname|APP.IN|--rqmname|QM2|--xmitq|QM2");
	expect_xlate(3, "alter|qremote|R.A|--put|disabled");
	expect_xlate(4, "delete|queue|A|--purge");
	expect_xlate(5, "delete|queue|R.A");
	expect_xlate(6, "display|queue|*");
	expect_xlate(7, "display|queue|A*");
	expect_xlate(8, "display|queue|A");
	expect_xlate(9, "alter|qlocal|A|--usage|normal");
}

Test(mqsc, translate_channels)
{
	parse("DEFINE CHANNEL(QM1.TO.QM2) CHLTYPE(SDR) TRPTYPE(TCP) CONNAME('qm2.example.com(1414)') "
	      "XMITQ(QM2) SSLCIPH(TLS_AES_256_GCM_SHA384) CERTLABL('qm1') SSLCAUTH(REQUIRED) "
	      "SSLPEER('CN=QM2, O=\"Acme, Inc.\"') BATCHSZ(100) BATCHINT(10) HBINT(60) DISCINT(0) "
	      "MAXMSGL(65536) SHORTRTY(3) SHORTTMR(5) LONGRTY(10) LONGTMR(300) SEQWRAP(999999) "
	      "DESCR('link') REPLACE\n"
	      "ALTER CHANNEL(QM1.TO.QM2) CHLTYPE(SDR) SSLCIPH(' ')\n"
	      "DELETE CHANNEL(QM1.TO.QM2)\n"
	      "DIS CHL(*)\n"
	      "DISPLAY CHSTATUS(QM1*) ALL\n"
	      "START CHANNEL(C)\n"
	      "STOP CHANNEL(C) MODE(FORCE) STATUS(STOPPED)\n"
	      "PING CHANNEL(C)\n"
	      "RESET CHANNEL(C) SEQNUM(7)\n"
	      "RESOLVE CHANNEL(C) ACTION(BACKOUT)\n"
	      "REFRESH SECURITY TYPE(SSL)\n");
	expect_xlate(0, "define|channel|QM1.TO.QM2|--type|sdr|--conname|qm2.example.com(1414)|"
	             "--xmitq|QM2|--sslciph|TLS_AES_256_GCM_SHA384|--certlabl|qm1|--sslcauth|required|"
	             "--sslpeer|CN=QM2, O=\"Acme, Inc.\"|--batchsz|100|--batchint|10|--hbint|60|"
	             "--discint|0|--maxmsgl|65536|--shortrty|3|--shorttmr|5|--longrty|10|--longtmr|"
	             "300|--seqwrap|999999|--descr|link|--replace");
	expect_xlate(1, "alter|channel|QM1.TO.QM2|--type|sdr|--sslciph|");
	expect_xlate(2, "delete|channel|QM1.TO.QM2");
	expect_xlate(3, "display|channel|*");
	expect_xlate(4, "status|QM1*");
	expect_xlate(5, "start|channel|C|--no-wait");
	expect_xlate(6, "stop|channel|C|--mode|force");
	expect_xlate(7, "ping|channel|C");
	expect_xlate(8, "reset|channel|C|--seqnum|7");
	expect_xlate(9, "resolve|channel|C|--action|backout");
	expect_xlate(10, "refresh|security");
}

/* The note of command i's translation ("" if none). */
static char *note_of(size_t i)
{
	struct mqsc_argv av;
	char err[512], *n;

	cr_assert_lt(i, sc.n);
	cr_assert_eq(mqsc_translate(&sc.cmds[i], &av, err, sizeof(err)), 0, "%s", err);
	n = strdup(av.note != NULL ? av.note : "");
	mqsc_argv_free(&av);
	return n;
}

Test(mqsc, translate_telemetry_channels)
{
	parse("DEFINE CHANNEL(MQTT.IN) CHLTYPE(MQTT) TRPTYPE(TCP) PORT(8883) LOCLADDR('0.0.0.0') +\n"
	      "  PROTOCOL(MQTTV311, mqttv3,MQTTV5) SSLCIPH(ANY_TLS13) SSLCAUTH(NEVER) SSLPEER('CN=*') +\n"
	      "  CERTLABL('qm1') USECLTID(YES) MCAUSER('app') DESCR('sensors') +\n"
	      "  SSLKEYR('/var/mqm/qmgrs/QM1/ssl/key') REPLACE\n"
	      "ALTER CHANNEL(MQTT.IN) CHLTYPE(MQTT) USECLTID(NO) PORT(1883)\n"
	      "DEF CHL(M2) CHLTYPE(MQTT) PORT(1883) IDENTITY(cert-dn) PASSWORDFILE('/etc/chand/pw') +\n"
	      "  ACLFILE('acl') ALLOWANONYMOUS(no) MAXCLIENTS(100) MAXPACKET(65536) +\n"
	      "  KEEPALIVEMAX(300) SESSIONEXPIRYMAX(4294967295) PROTOCOL('v311')\n"
	      "START CHANNEL(MQTT.IN) CHLTYPE(MQTT)\n"
	      "STOP CHANNEL(MQTT.IN) CHLTYPE(MQTT) CLIENTID('sensor-1')\n"
	      "DELETE CHANNEL(MQTT.IN) CHLTYPE(MQTT)\n"
	      "DISPLAY CHSTATUS(MQTT.IN) CHLTYPE(MQTT) CLIENTID(*)\n"
	      "DIS CHS(MQTT*) CLIENTID('-sensor*')\n"
	      "DISPLAY CHSTATUS(*) CHLTYPE STATUS\n"
	      "DISPLAY CHANNEL(MQTT.IN) PORT LOCLADDR PROTOCOL USECLTID MCAUSER\n");
	expect_xlate(0, "define|channel|MQTT.IN|--type|mqtt|--port|8883|--address|0.0.0.0|--protocol|"
	             "v311,v31,v5|--sslciph|ANY_TLS13|--sslcauth|never|--sslpeer|CN=*|--certlabl|qm1|"
	             "--identity|clientid|--mcauser|app|--descr|sensors|--replace");
	char *n = note_of(0);
	cr_expect_str_eq(n, "line 4: SSLKEYR is ignored: chand uses the agent's keystore "
	                 "(keystore.path in its configuration) for every channel");
	free(n);
	n = note_of(1);
	cr_expect_str_eq(n, "");
	free(n);
	expect_xlate(1, "alter|channel|MQTT.IN|--type|mqtt|--identity|username|--port|1883");
	expect_xlate(2, "define|channel|M2|--type|mqtt|--port|1883|--identity|cert-dn|"
	             "--password-file|/etc/chand/pw|--acl-file|acl|--allow-anonymous|no|"
	             "--max-clients|100|--max-packet|65536|--keepalive-max|300|"
	             "--session-expiry-max|4294967295|--protocol|v311");
	expect_xlate(3, "start|channel|MQTT.IN|--no-wait");
	expect_xlate(4, "stop|channel|MQTT.IN|--client|sensor-1");
	expect_xlate(5, "delete|channel|MQTT.IN");
	expect_xlate(6, "status|MQTT.IN|--clients=*");
	/* One word: a client id starting with '-' is no option. */
	expect_xlate(7, "status|MQTT*|--clients=-sensor*");
	expect_xlate(8, "status|*");
	expect_xlate(9, "display|channel|MQTT.IN");
}

Test(mqsc, telemetry_channel_errors)
{
	parse("DEFINE CHANNEL(M) CHLTYPE(MQTT) PORT(1883) BACKLOG(4096)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) PORT(1883) PROTOCOL(MQTTV311,HTTP)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) USECLTID(YES) IDENTITY(USERNAME)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) USECLTID(MAYBE)\n"
	      "DISPLAY CHSTATUS(M) CHLTYPE(MQTT)\n"
	      "DISPLAY CHSTATUS(M) CHLTYPE(SDR) CLIENTID(*)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) PROTOCOL(MQTTV311,V311)\n"
	      "START CHANNEL(M) CHLTYPE(SDR)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) IDENTITY(CERT)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) MAXCLIENTS(-1)\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) SSLKEYR\n"
	      "DEFINE CHANNEL(M) CHLTYPE(MQTT) PROTOCOL(MQTTV311,)\n");
	static const char *const want[] = {
		"line 1: DEFINE CHANNEL(M): attribute BACKLOG is not supported",
		"line 2: DEFINE CHANNEL(M): value HTTP of PROTOCOL is not supported (supported: MQTTV3, "
		"MQTTV311, MQTTV5)",
		"line 3: DEFINE CHANNEL(M): USECLTID and IDENTITY exclude each other",
		"line 4: DEFINE CHANNEL(M): value MAYBE of USECLTID is not supported (supported: YES, NO)",
		"line 5: DISPLAY CHSTATUS(M): CHLTYPE(...) would filter the listing, which is supported "
		"only with CLIENTID(...) (the clients of telemetry channels)",
		"line 6: DISPLAY CHSTATUS(M): value SDR of CHLTYPE is not supported (supported: MQTT)",
		"line 7: DEFINE CHANNEL(M): PROTOCOL names MQTTV311 twice",
		"line 8: START CHANNEL(M): value SDR of CHLTYPE is not supported (supported: MQTT)",
		"line 9: DEFINE CHANNEL(M): value CERT of IDENTITY is not supported (supported: CLIENTID, "
		"USERNAME, CERT-CN, CERT-DN)",
		"line 10: DEFINE CHANNEL(M): MAXCLIENTS(-1) is not a number",
		"line 11: DEFINE CHANNEL(M): attribute SSLKEYR needs a value in parentheses",
		"line 12: DEFINE CHANNEL(M): value '' of PROTOCOL is not supported (supported: MQTTV3, "
		"MQTTV311, MQTTV5)",
	};
	cr_assert_eq(sc.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sc.n; i++) {
		char *got = xlate(i);
		cr_expect_str_eq(got, want[i]);
		free(got);
	}
}

Test(mqsc, unsupported_things_are_named)
{
	parse("DEFINE QLOCAL(A)\n"
	      "DEFINE CHANNEL(TO.QM2) CHLTYPE(SDR) +\n   CONNAME('h(1)') NPMSPEED(FAST)\n"
	      "DEFINE QALIAS(X) TARGET(A)\n"
	      "ALTER QMGR DEADQ(DLQ)\n"
	      "DEFINE CHANNEL(C) CHLTYPE(SVRCONN)\n"
	      "DEFINE CHANNEL(C) CHLTYPE(SDR) TRPTYPE(LU62)\n"
	      "DEFINE CHANNEL(C) CONNAME('x')\n"
	      "DEFINE QLOCAL(A) MAXDEPTH(1) MAXDEPTH(2)\n"
	      "DEFINE QLOCAL(A) REPLACE NOREPLACE\n"
	      "DEFINE QLOCAL(A) MAXDEPTH(lots)\n"
	      "DEFINE QLOCAL(A) REPLACE(YES)\n"
	      "DEFINE QLOCAL(A) MAXDEPTH\n"
	      "DISPLAY CHANNEL(*) CHLTYPE(SDR)\n"
	      "DEFINE QLOCAL\n"
	      "STOP CHANNEL(C) MODE(TERMINATE)\n"
	      "DEFINE QLOCAL('-x')\n"
	      "DEFINE(A)\n"
	      "DISPLAY QUEUE(*) WHERE(CURDEPTH GT 0)\n");
	static const char *const want[] = {
		NULL,
		"line 3: DEFINE CHANNEL(TO.QM2): attribute NPMSPEED is not supported",
		"line 4: DEFINE QALIAS(X): command DEFINE QALIAS is not supported",
		"line 5: ALTER QMGR: command ALTER QMGR is not supported",
		"line 6: DEFINE CHANNEL(C): value SVRCONN of CHLTYPE is not supported (supported: SDR, "
		"RCVR, SVR, RQSTR, MQTT)",
		"line 7: DEFINE CHANNEL(C): value LU62 of TRPTYPE is not supported (supported: TCP)",
		"line 8: DEFINE CHANNEL(C): attribute CHLTYPE is required",
		"line 9: DEFINE QLOCAL(A): attribute MAXDEPTH is given twice",
		"line 10: DEFINE QLOCAL(A): REPLACE and NOREPLACE exclude each other",
		"line 11: DEFINE QLOCAL(A): MAXDEPTH(LOTS) is not a number",
		"line 12: DEFINE QLOCAL(A): attribute REPLACE takes no value",
		"line 13: DEFINE QLOCAL(A): attribute MAXDEPTH needs a value in parentheses",
		"line 14: DISPLAY CHANNEL(*): CHLTYPE(...) would filter the listing, which is not "
		"supported; the listing shows every object whose name matches",
		"line 15: DEFINE QLOCAL: QLOCAL needs a name in parentheses: QLOCAL(name)",
		"line 16: STOP CHANNEL(C): value TERMINATE of MODE is not supported (supported: QUIESCE, "
		"FORCE)",
		"line 17: DEFINE QLOCAL(-x): '-x' is not a valid name",
		"line 18: DEFINE: DEFINE is a command and takes no value",
		"line 19: DISPLAY QUEUE(*): attribute WHERE is not supported",
	};
	cr_assert_eq(sc.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sc.n; i++) {
		char *got = xlate(i);
		if (want[i] == NULL)
			cr_expect_str_eq(got, "define|qlocal|A");
		else
			cr_expect_str_eq(got, want[i]);
		free(got);
	}
}

Test(mqsc, quote_helper)
{
	char *q = mqsc_quote("it's 'x'");
	cr_expect_str_eq(q, "'it''s ''x'''");
	free(q);
	q = mqsc_quote("");
	cr_expect_str_eq(q, "''");
	free(q);
	cr_expect_null(mqsc_quote("a\nb"));
}

/* A dump parses back into the same attribute values. */
static void round_trip(const char *json, const char *want_argv)
{
	json_error_t je;
	json_t *o = json_loads(json, 0, &je);
	char err[256], *text;

	cr_assert_not_null(o, "%s", je.text);
	/* Routes have no type. */
	const char *type = json_string_value(json_object_get(o, "type"));
	bool queue = type != NULL && (strcmp(type, "qlocal") == 0 || strcmp(type, "qremote") == 0);
	if (type == NULL)
		text = mqsc_dump_route(o, err, sizeof(err));
	else
		text = queue ? mqsc_dump_queue(o, err, sizeof(err))
		             : mqsc_dump_channel(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	parse(text);
	cr_assert_eq(sc.n, 1, "%s", text);
	cr_assert_null(sc.cmds[0].error, "%s", text);
	expect_xlate(0, want_argv);
	free(text);
	json_decref(o);
}

Test(mqsc, dump_round_trips)
{
	round_trip("{\"name\":\"app.in\",\"type\":\"qlocal\",\"usage\":\"normal\",\"curdepth\":3,"
	           "\"maxdepth\":10,\"maxmsgl\":100,\"put\":\"enabled\",\"get\":\"disabled\","
	           "\"rname\":null,\"rqmname\":null,\"xmitq\":null,\"descr\":\" it's, (odd) \","
	           "\"oldest_put_time\":null,\"created\":\"x\",\"altered\":\"y\"}",
	           "define|qlocal|app.in|--usage|normal|--maxdepth|10|--maxmsgl|100|--put|enabled|"
	           "--get|disabled|--descr| it's, (odd) |--replace");
	round_trip("{\"name\":\"R\",\"type\":\"qremote\",\"usage\":null,\"curdepth\":null,"
	           "\"maxdepth\":null,\"maxmsgl\":null,\"put\":\"disabled\",\"get\":null,"
	           "\"rname\":\"lower.q\",\"rqmname\":\"QM2\",\"xmitq\":\"QM2\",\"descr\":\"\"}",
	           "define|qremote|R|--rname|lower.q|--rqmname|QM2|--xmitq|QM2|--put|disabled|"
	           "--descr||--replace");
	round_trip("{\"name\":\"C.1\",\"type\":\"rcvr\",\"conname\":\"\",\"xmitq\":\"\","
	           "\"sslciph\":\"ANY_TLS13\",\"certlabl\":\"qm2-Label\",\"sslcauth\":\"optional\","
	           "\"sslpeer\":\"CN=\\\"QM1, Inc\\\"; OU='x' ,O=Acme\",\"batchsz\":50,"
	           "\"batchint\":0,\"hbint\":300,\"discint\":6000,\"maxmsgl\":4194304,"
	           "\"shortrty\":10,\"shorttmr\":60,\"longrty\":999999999,\"longtmr\":1200,"
	           "\"seqwrap\":999999999,\"descr\":\"+ends with plus +\"}",
	           "define|channel|C.1|--type|rcvr|--conname||--xmitq||--sslciph|ANY_TLS13|"
	           "--certlabl|qm2-Label|--sslcauth|optional|--sslpeer|CN=\"QM1, Inc\"; OU='x' ,O=Acme|"
	           "--batchsz|50|--batchint|0|--hbint|300|--discint|6000|--maxmsgl|4194304|"
	           "--shortrty|10|--shorttmr|60|--longrty|999999999|--longtmr|1200|--seqwrap|"
	           "999999999|--descr|+ends with plus +|--replace");
}

Test(mqsc, dump_round_trips_telemetry_channels)
{
	/* chand's own attributes, and a message channel's keys (which a
	 * telemetry channel cannot set) left out. */
	round_trip("{\"name\":\"MQTT.IN\",\"type\":\"mqtt\",\"port\":8883,\"address\":\"\","
	           "\"protocol\":\"v311,v5\",\"sslciph\":\"ANY_TLS13\",\"certlabl\":\"qm1\","
	           "\"sslcauth\":\"optional\",\"sslpeer\":\"O=Acme\",\"identity\":\"cert-cn\","
	           "\"mcauser\":\"\",\"password_file\":\"/etc/chand/pw\",\"acl_file\":null,"
	           "\"allow_anonymous\":false,\"max_clients\":100,\"max_packet\":268435455,"
	           "\"keepalive_max\":65535,\"session_expiry_max\":4294967295,\"descr\":\"it's\","
	           "\"conname\":null,\"xmitq\":\"\",\"batchsz\":50}",
	           "define|channel|MQTT.IN|--type|mqtt|--port|8883|--address||--protocol|v311,v5|"
	           "--sslciph|ANY_TLS13|--certlabl|qm1|--sslcauth|optional|--sslpeer|O=Acme|"
	           "--identity|cert-cn|--mcauser||--descr|it's|--password-file|/etc/chand/pw|"
	           "--allow-anonymous|no|--max-clients|100|--max-packet|268435455|"
	           "--keepalive-max|65535|--session-expiry-max|4294967295|--replace");
	round_trip("{\"name\":\"M2\",\"type\":\"mqtt\",\"port\":1883,\"sslcauth\":\"never\","
	           "\"identity\":\"clientid\",\"allow_anonymous\":true,\"protocol\":\"v31\"}",
	           "define|channel|M2|--type|mqtt|--port|1883|--protocol|v31|--sslcauth|never|"
	           "--identity|clientid|--allow-anonymous|yes|--replace");
	/* A message channel: attributes of telemetry channels left out. */
	round_trip("{\"name\":\"S\",\"type\":\"sdr\",\"conname\":\"h(1)\",\"port\":null,"
	           "\"max_clients\":null,\"identity\":null}",
	           "define|channel|S|--type|sdr|--conname|h(1)|--replace");

	char err[256], *text;
	json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:i}", "name", "M", "type", "mqtt", "port", 1883,
	                      "identity", "clientid", "max_clients", 5);
	text = mqsc_dump_channel(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect(strstr(text, "   USECLTID(YES) +\n") != NULL, "IBM MQ's spelling:\n%s", text);
	cr_expect(strncmp(text, "* IDENTITY, PASSWORDFILE", 24) == 0, "chand's own attributes are "
	          "named in a comment:\n%s", text);
	cr_expect(strstr(text, "   TRPTYPE(TCP) +\n") != NULL, "%s", text);
	free(text);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:i}", "name", "M", "type", "mqtt", "port", 1883);
	text = mqsc_dump_channel(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect(strncmp(text, "DEFINE CHANNEL('M')", 19) == 0, "no comment without chand's own "
	          "attributes:\n%s", text);
	free(text);
	json_decref(o);
}

Test(mqsc, dump_refuses_what_it_cannot_write)
{
	char err[256];
	json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "name", "C", "type", "sdr", "conname", "h",
	                      "newattr", 1);
	cr_expect_null(mqsc_dump_channel(o, err, sizeof(err)));
	cr_expect(strstr(err, "'newattr'") != NULL, "%s", err);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:s}", "name", "Q", "type", "qlocal", "descr", "a\tb");
	cr_expect_null(mqsc_dump_queue(o, err, sizeof(err)));
	cr_expect(strstr(err, "control character") != NULL, "%s", err);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:s}", "name", "M", "type", "mqtt", "protocol", "v311,v4");
	cr_expect_null(mqsc_dump_channel(o, err, sizeof(err)));
	cr_expect(strstr(err, "'v311,v4'") != NULL, "%s", err);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:s}", "name", "M", "type", "mqtt", "mqtt_newattr", "x");
	cr_expect_null(mqsc_dump_channel(o, err, sizeof(err)));
	cr_expect(strstr(err, "'mqtt_newattr'") != NULL, "%s", err);
	json_decref(o);
	o = json_pack("{s:s,s:s}", "name", "Q", "type", "qalias");
	cr_expect_null(mqsc_dump_queue(o, err, sizeof(err)));
	cr_expect(strstr(err, "qalias") != NULL, "%s", err);
	json_decref(o);
}

Test(mqsc, translate_routes)
{
	parse("DEFINE ROUTE(SPB.OUT) TOPICSTR('spBv1.0/#') QMNAME(QM2) RPREFIX('site-a/') +\n"
	      "  LPREFIX('local/') QOSMIN(1) DESCR('Sparkplug to the centre') REPLACE\n"
	      "def route('alarms.q') topicstr('alarms/+/high') queue('ALARMS') qosmin(2)\n"
	      "DELETE ROUTE(SPB.OUT)\n"
	      "DISPLAY ROUTE(*)\n"
	      "DIS ROUTE('spb*') ALL TOPICSTR QMNAME\n"
	      "DEFINE ROUTE(R) TOPICSTR(alarms/#) QMNAME(qm2) NOREPLACE\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/ ') QUEUE(Q) DESCR(' ')\n");
	expect_xlate(0, "define|route|SPB.OUT|--topic|spBv1.0/#|--qmgr|QM2|--remote-prefix|site-a/|"
	             "--local-prefix|local/|--qos-min|1|--descr|Sparkplug to the centre|--replace");
	expect_xlate(1, "define|route|alarms.q|--topic|alarms/+/high|--queue|ALARMS|--qos-min|2");
	expect_xlate(2, "delete|route|SPB.OUT");
	expect_xlate(3, "display|route|*");
	expect_xlate(4, "display|route|spb*");
	/* Unquoted, the topic is folded as MQSC folds every value, and that
	 * is said, since MQTT topics are case sensitive. */
	expect_xlate(5, "define|route|R|--topic|ALARMS/#|--qmgr|QM2");
	char *n = note_of(5);
	cr_expect_str_eq(n, "line 7: TOPICSTR(ALARMS/#) is not quoted, so it was folded to upper "
	                 "case; quote it to keep lower-case letters");
	free(n);
	n = note_of(0);
	cr_expect_str_eq(n, "");
	free(n);
	/* A topic is kept exactly; DESCR(' ') is MQ's empty field. */
	expect_xlate(6, "define|route|R|--topic|a/ |--queue|Q|--descr|");
}

Test(mqsc, route_errors)
{
	parse("DEFINE ROUTE(R) QMNAME(QM2)\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#')\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QUEUE(Q) +\n"
	      "  QMNAME(QM2)\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QUEUE(Q) +\n"
	      "  RPREFIX('x/')\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QMNAME(QM2) QOSMIN(3)\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QMNAME(QM2) DEST(Q)\n"
	      "DEFINE ROUTE(R) TOPICSTR QMNAME(QM2)\n"
	      "ALTER ROUTE(R) QOSMIN(1)\n"
	      "DELETE ROUTE\n"
	      "DISPLAY ROUTE(*) TOPICSTR('a/#')\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QMNAME(QM2) TOPICSTR('b')\n"
	      "DELETE ROUTE(R) PURGE\n"
	      "DEFINE ROUTE(R) TOPICSTR('a/#') QMNAME(QM2) REPLACE NOREPLACE\n");
	static const char *const want[] = {
		"line 1: DEFINE ROUTE(R): attribute TOPICSTR is required",
		"line 2: DEFINE ROUTE(R): one of QUEUE and QMNAME is required",
		"line 4: DEFINE ROUTE(R): QUEUE and QMNAME exclude each other",
		"line 6: DEFINE ROUTE(R): RPREFIX applies to routes to a queue manager (QMNAME), not "
		"to routes to a queue",
		"line 7: DEFINE ROUTE(R): value 3 of QOSMIN is not supported (supported: 0, 1, 2)",
		"line 8: DEFINE ROUTE(R): attribute DEST is not supported",
		"line 9: DEFINE ROUTE(R): attribute TOPICSTR needs a value in parentheses",
		"line 10: ALTER ROUTE(R): command ALTER ROUTE is not supported",
		"line 11: DELETE ROUTE: ROUTE needs a name in parentheses: ROUTE(name)",
		"line 12: DISPLAY ROUTE(*): TOPICSTR(...) would filter the listing, which is not "
		"supported; the listing shows every object whose name matches",
		"line 13: DEFINE ROUTE(R): attribute TOPICSTR is given twice",
		"line 14: DELETE ROUTE(R): attribute PURGE is not supported",
		"line 15: DEFINE ROUTE(R): REPLACE and NOREPLACE exclude each other",
	};
	cr_assert_eq(sc.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sc.n; i++) {
		char *got = xlate(i);
		cr_expect_str_eq(got, want[i]);
		free(got);
	}
}

Test(mqsc, dump_round_trips_routes)
{
	/* As display route gives them: "" for what is not set, the counters. */
	round_trip("{\"name\":\"SPB.OUT\",\"topic\":\"spBv1.0/#\",\"queue\":\"\",\"qmgr\":\"QM2\","
	           "\"remote_prefix\":\"site-a/\",\"local_prefix\":\"\",\"qos_min\":1,"
	           "\"descr\":\"it's (the) edge +\",\"matched\":12,\"forwarded\":10,\"dropped\":2,"
	           "\"loops_prevented\":0,\"last_drop_reason\":\"queue full\"}",
	           "define|route|SPB.OUT|--topic|spBv1.0/#|--qmgr|QM2|--remote-prefix|site-a/|"
	           "--qos-min|1|--descr|it's (the) edge +|--replace");
	round_trip("{\"name\":\"alarms\",\"topic\":\"Alarms/+/ high \",\"queue\":\"alarms.Q\","
	           "\"qmgr\":\"\",\"remote_prefix\":\"\",\"local_prefix\":\"\",\"qos_min\":0,"
	           "\"descr\":\"\",\"matched\":0,\"forwarded\":0,\"dropped\":0,"
	           "\"loops_prevented\":0,\"last_drop_reason\":null}",
	           "define|route|alarms|--topic|Alarms/+/ high |--queue|alarms.Q|--qos-min|0|"
	           "--descr||--replace");
	/* The text itself: quoted, one attribute a line, no note on reading back. */
	char err[256], *text;
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", "R", "topic", "a/#", "queue", "",
	                      "qmgr", "QM2", "qos_min", 2);
	text = mqsc_dump_route(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect_str_eq(text, "DEFINE ROUTE('R') +\n   TOPICSTR('a/#') +\n   QMNAME('QM2') +\n"
	                 "   QOSMIN(2) +\n   REPLACE\n");
	parse(text);
	char *n = note_of(0);
	cr_expect_str_eq(n, "");
	free(n);
	free(text);
	json_decref(o);
	/* An attribute the dump does not know fails it, as for queues. */
	o = json_pack("{s:s,s:s,s:s,s:s}", "name", "R", "topic", "a", "qmgr", "QM2", "ttl", "5");
	cr_expect_null(mqsc_dump_route(o, err, sizeof(err)));
	cr_expect(strstr(err, "ROUTE R has an attribute 'ttl'") != NULL, "%s", err);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:s}", "name", "R", "topic", "a\nb", "qmgr", "QM2");
	cr_expect_null(mqsc_dump_route(o, err, sizeof(err)));
	cr_expect(strstr(err, "control character") != NULL, "%s", err);
	json_decref(o);
}

/* KEYUPDATE(N), chand's own attribute of message channels: translated to
 * --keyupdate-bytes, dumped with a comment naming it when set, left out
 * when 0 (the default) so dumps of other channels do not change. */
Test(mqsc, keyupdate_translates_and_dumps)
{
	char err[256], *text;
	json_t *o;

	parse("DEFINE CHANNEL(K) CHLTYPE(SDR) CONNAME('h(1)') XMITQ(Q) KEYUPDATE(1048576)\n"
	      "ALTER CHANNEL(K) KEYUPDATE(0)\n"
	      "DISPLAY CHANNEL(K) KEYUPDATE\n");
	expect_xlate(0, "define|channel|K|--type|sdr|--conname|h(1)|--xmitq|Q|--keyupdate-bytes|"
	             "1048576");
	expect_xlate(1, "alter|channel|K|--keyupdate-bytes|0");
	expect_xlate(2, "display|channel|K");
	round_trip("{\"name\":\"K\",\"type\":\"sdr\",\"conname\":\"h(1)\",\"xmitq\":\"Q\","
	           "\"verify_host\":\"\",\"keyupdate_bytes\":1099511627776}",
	           "define|channel|K|--type|sdr|--conname|h(1)|--xmitq|Q|--keyupdate-bytes|"
	           "1099511627776|--replace");
	round_trip("{\"name\":\"K\",\"type\":\"rcvr\",\"keyupdate_bytes\":0}",
	           "define|channel|K|--type|rcvr|--replace");
	o = json_pack("{s:s,s:s,s:I}", "name", "K", "type", "rcvr", "keyupdate_bytes",
	              (json_int_t)2097152);
	text = mqsc_dump_channel(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect(strncmp(text, "* KEYUPDATE", 11) == 0, "named as chand's own:\n%s", text);
	cr_expect(strstr(text, "   KEYUPDATE(2097152)") != NULL, "%s", text);
	free(text);
	json_decref(o);
	o = json_pack("{s:s,s:s,s:i}", "name", "K", "type", "rcvr", "keyupdate_bytes", 0);
	text = mqsc_dump_channel(o, err, sizeof(err));
	cr_assert_not_null(text, "%s", err);
	cr_expect(strstr(text, "KEYUPDATE") == NULL, "0 is left out:\n%s", text);
	free(text);
	json_decref(o);
}
