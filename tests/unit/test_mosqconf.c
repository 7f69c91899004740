/* chanctl import mosquitto-conf: the mapping from mosquitto.conf to
 * chanctl commands (src/ctl/mosqconf.c, doc/MOSQUITTO.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../../src/ctl/mosqconf.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

/* The output of a conversion: every line joined with '\n'. */
static char *render(const struct mqc_result *r)
{
	size_t cap = 1, len = 0;
	char *out = calloc(1, 1);

	cr_assert_not_null(out);
	for (size_t i = 0; i < r->ncmds; i++) {
		char *l = mqc_cmd_line(&r->cmds[i], "");

		cr_assert_not_null(l);
		cap = len + strlen(l) + 2;
		out = realloc(out, cap);
		cr_assert_not_null(out);
		len += (size_t)sprintf(out + len, "%s\n", l);
		free(l);
	}
	return out;
}

static void conv(const char *text, const struct mqc_opts *o, const struct mqc_env *env,
                 struct mqc_result *r)
{
	int rc = mqc_convert(text, strlen(text), o, env, r);

	cr_assert_eq(rc, 0, "conversion failed: %s", r->err);
}

/* The first command line starting with prefix (NULL if none). */
static char *line_with(const struct mqc_result *r, const char *prefix)
{
	for (size_t i = 0; i < r->ncmds; i++) {
		char *l = mqc_cmd_line(&r->cmds[i], "");

		if (l != NULL && strncmp(l, prefix, strlen(prefix)) == 0)
			return l;
		free(l);
	}
	return NULL;
}

static void expect_line(const struct mqc_result *r, const char *exact)
{
	char *out = render(r);
	bool found = false;

	for (char *p = out; *p && !found;) {
		size_t n = strcspn(p, "\n");

		found = n == strlen(exact) && strncmp(p, exact, n) == 0;
		p += n + (p[n] == '\n');
	}
	cr_expect(found, "line [%s] not in output:\n%s", exact, out);
	free(out);
}

static void expect_no_text(const struct mqc_result *r, const char *text)
{
	char *out = render(r);

	cr_expect_null(strstr(out, text), "[%s] should not be in output:\n%s", text, out);
	free(out);
}

static bool has_note(const struct mqc_result *r, int line, const char *text)
{
	for (size_t i = 0; i < r->nnotes; i++)
		if ((line < 0 || r->notes[i].line == line) && strstr(r->notes[i].text, text) != NULL)
			return true;
	return false;
}

static void expect_note(const struct mqc_result *r, int line, const char *text)
{
	if (has_note(r, line, text))
		return;
	for (size_t i = 0; i < r->nnotes; i++)
		fprintf(stderr, "  note %d: %s\n", r->notes[i].line, r->notes[i].text);
	cr_expect(false, "no note at line %d containing [%s]", line, text);
}

static void expect_error(const char *text, const char *err)
{
	struct mqc_result r;
	struct mqc_opts o = { .name = "m.conf" };

	cr_assert_eq(mqc_convert(text, strlen(text), &o, NULL, &r), 1, "accepted: %s", text);
	cr_expect_str_eq(r.err, err);
	cr_expect_eq(r.ncmds, 0);
	mqc_result_free(&r);
}

static char *slurp(const char *rel)
{
	char path[1024];
	FILE *f;
	char *buf = calloc(1, 65536);
	size_t n;

	snprintf(path, sizeof path, "%s/%s", TEST_SRCDIR, rel);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_not_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ---- seed 001's listener block ---- */

Test(mosqconf, seed001_exact)
{
	char *conf = slurp("tests/data/mosqconf/seed001.conf");
	char *want = slurp("tests/data/mosqconf/seed001.out");
	struct mqc_result r;
	char *out;

	conv(conf, NULL, NULL, &r);
	out = render(&r);
	cr_expect_str_eq(out, want);
	/* The lines that matter, spelled out here too. */
	expect_line(&r, "chanctl keystore trust --label mosq-ca --cert "
	            "'C:\\Users\\myuser\\Documents\\certs\\ca.pem'");
	expect_line(&r, "chanctl keystore import --label mosq-server --cert "
	            "'C:\\Users\\myuser\\Documents\\certs\\server.pem' --key "
	            "'C:\\Users\\myuser\\Documents\\certs\\server.key'");
	expect_line(&r, "chanctl refresh security");
	expect_line(&r, "chanctl define channel MQTT.8883 --type mqtt --port 8883 --sslciph "
	            "ANY_TLS12_OR_HIGHER --certlabl mosq-server --sslcauth never --identity username "
	            "--password-file 'C:\\Users\\myuser\\Documents\\mosquitto\\user-passwd.txt' "
	            "--allow-anonymous no");
	expect_line(&r, "chanctl start channel MQTT.8883");
	cr_expect_eq(r.nchannels, 1);
	cr_expect_eq(r.nnotes, 0, "seed 001 carries over whole");
	/* Keystore before refresh before define before start. */
	cr_expect_lt(strstr(out, "keystore import"), strstr(out, "refresh security"));
	cr_expect_lt(strstr(out, "refresh security"), strstr(out, "define channel"));
	cr_expect_lt(strstr(out, "define channel"), strstr(out, "start channel"));
	free(out);
	free(conf);
	free(want);
	mqc_result_free(&r);
}

static bool fake_missing(void *arg, const char *path)
{
	(void)arg;
	(void)path;
	return false;
}

static int fake_encrypted(void *arg, const char *path)
{
	(void)arg;
	return strstr(path, ".key") != NULL ? 1 : 0;
}

Test(mosqconf, seed001_windows_paths_and_encrypted_key)
{
	char *conf = slurp("tests/data/mosqconf/seed001.conf");
	struct mqc_env env = { NULL, fake_missing, NULL, fake_encrypted };
	struct mqc_result r;

	conv(conf, NULL, &env, &r);
	expect_note(&r, 8, "cafile C:\\Users\\myuser\\Documents\\certs\\ca.pem does not exist here "
	            "(a Windows path)");
	expect_note(&r, 6, "certfile C:\\Users");
	expect_note(&r, 7, "keyfile C:\\Users");
	expect_note(&r, 9, "password_file C:\\Users");
	expect_note(&r, 7, "is encrypted: give --key-password-file FILE");
	expect_line(&r, "# C:\\Users\\myuser\\Documents\\certs\\server.key is encrypted: add "
	            "--key-password-file FILE (a file holding its pass phrase)");
	/* Paths are kept as given. */
	expect_line(&r, "chanctl keystore trust --label mosq-ca --cert "
	            "'C:\\Users\\myuser\\Documents\\certs\\ca.pem'");
	free(conf);
	mqc_result_free(&r);
}

Test(mosqconf, keystore_options_passed_on)
{
	char *conf = slurp("tests/data/mosqconf/seed001.conf");
	struct mqc_opts o = { .name = "x.conf", .keystore = "/var/lib/chand/key.db",
	                      .keystore_password_file = "/root/ks.pw",
	                      .key_password_file = "/root/server key.pw" };
	struct mqc_result r;

	conv(conf, &o, NULL, &r);
	expect_line(&r, "chanctl keystore trust -k /var/lib/chand/key.db --password-file "
	            "/root/ks.pw --label mosq-ca --cert 'C:\\Users\\myuser\\Documents\\certs\\ca.pem'");
	expect_line(&r, "chanctl keystore import -k /var/lib/chand/key.db --password-file "
	            "/root/ks.pw --label mosq-server --cert "
	            "'C:\\Users\\myuser\\Documents\\certs\\server.pem' --key "
	            "'C:\\Users\\myuser\\Documents\\certs\\server.key' --key-password-file "
	            "'/root/server key.pw'");
	expect_no_text(&r, "if C:");
	free(conf);
	mqc_result_free(&r);
}

/* ---- each key ---- */

#define TLS_LISTENER "listener 8883\ncertfile /p/server.pem\nkeyfile /p/server.key\n"

Test(mosqconf, require_certificate_true_is_required)
{
	struct mqc_result r;
	char *l;

	conv(TLS_LISTENER "cafile /p/ca.pem\nrequire_certificate true\nallow_anonymous true\n",
	     NULL, NULL, &r);
	l = line_with(&r, "chanctl define");
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, "--sslcauth required"), "%s", l);
	cr_expect_not_null(strstr(l, "--allow-anonymous yes"), "%s", l);
	expect_line(&r, "chanctl keystore trust --label mosq-ca --cert /p/ca.pem");
	expect_no_text(&r, "sslcauth never");
	free(l);
	mqc_result_free(&r);
}

Test(mosqconf, require_certificate_without_ca_noted)
{
	struct mqc_result r;

	conv(TLS_LISTENER "require_certificate true\n", NULL, NULL, &r);
	expect_note(&r, 4, "require_certificate true without cafile or capath");
	mqc_result_free(&r);
}

Test(mosqconf, use_identity_as_username_is_cert_cn)
{
	struct mqc_result r;
	char *l;

	conv("per_listener_settings true\n" TLS_LISTENER "cafile /p/ca.pem\n"
	     "require_certificate true\nuse_identity_as_username true\npassword_file /p/pw\n"
	     "acl_file /p/acl\n", NULL, NULL, &r);
	l = line_with(&r, "chanctl define");
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, "--identity cert-cn"), "%s", l);
	/* mosquitto does not use the password file with it; the ACL stays. */
	cr_expect_null(strstr(l, "--password-file"), "%s", l);
	cr_expect_not_null(strstr(l, "--acl-file /p/acl"), "%s", l);
	expect_note(&r, 8, "password_file is not carried over for listener 8883");
	free(l);
	mqc_result_free(&r);
}

Test(mosqconf, use_subject_as_username_is_cert_dn)
{
	struct mqc_result r;
	char *l;

	conv(TLS_LISTENER "cafile /p/ca.pem\nrequire_certificate true\n"
	     "use_subject_as_username true\n", NULL, NULL, &r);
	l = line_with(&r, "chanctl define");
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, "--identity cert-dn"), "%s", l);
	free(l);
	mqc_result_free(&r);
}

Test(mosqconf, identity_without_required_certificate_noted)
{
	struct mqc_result r;

	conv(TLS_LISTENER "use_identity_as_username true\n", NULL, NULL, &r);
	expect_note(&r, 4, "use_identity_as_username without require_certificate true");
	mqc_result_free(&r);
}

static const char *sslciph_of(const char *conf, struct mqc_result *r, char *buf, size_t len)
{
	char *l, *p;

	conv(conf, NULL, NULL, r);
	l = line_with(r, "chanctl define");
	cr_assert_not_null(l);
	p = strstr(l, "--sslciph ");
	cr_assert_not_null(p, "%s", l);
	p += 10;
	snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
	free(l);
	return buf;
}

Test(mosqconf, tls_version_is_a_minimum)
{
	struct mqc_result r;
	char b[64];

	cr_expect_str_eq(sslciph_of(TLS_LISTENER, &r, b, sizeof b), "ANY_TLS12_OR_HIGHER");
	mqc_result_free(&r);
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "tls_version tlsv1.2\n", &r, b, sizeof b),
	                 "ANY_TLS12_OR_HIGHER");
	mqc_result_free(&r);
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "tls_version tlsv1.3\n", &r, b, sizeof b),
	                 "ANY_TLS13_OR_HIGHER");
	mqc_result_free(&r);
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "tls_version tlsv1.1\n", &r, b, sizeof b),
	                 "ANY_TLS12_OR_HIGHER");
	expect_note(&r, 4, "tls_version tlsv1.1 is raised to TLS 1.2");
	mqc_result_free(&r);
}

Test(mosqconf, ciphers_mapped_when_exact)
{
	struct mqc_result r;
	char b[64];

	cr_expect_str_eq(sslciph_of(TLS_LISTENER "tls_version tlsv1.3\n"
	                            "ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n", &r, b, sizeof b),
	                 "TLS_AES_256_GCM_SHA384");
	cr_expect_not(has_note(&r, -1, "ciphers"), "carried over exactly: no note");
	mqc_result_free(&r);
	/* ciphers is TLS 1.2 only: with tls_version tlsv1.3 it does nothing. */
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "tls_version tlsv1.3\n"
	                            "ciphers ECDHE-RSA-AES128-GCM-SHA256\n", &r, b, sizeof b),
	                 "ANY_TLS13_OR_HIGHER");
	expect_note(&r, 5, "ciphers is not carried over: it only applies to TLS 1.2");
	mqc_result_free(&r);
}

Test(mosqconf, ciphers_not_expressible)
{
	struct mqc_result r;
	char b[64];

	/* One TLS 1.2 suite plus every TLS 1.3 suite: no single SSLCIPH. */
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "ciphers ECDHE-RSA-AES256-GCM-SHA384\n", &r, b,
	                            sizeof b), "ANY_TLS12_OR_HIGHER");
	expect_note(&r, 4, "ciphers is not carried over exactly");
	expect_note(&r, 4, "would refuse TLS 1.3 clients");
	mqc_result_free(&r);
	/* OpenSSL expressions are not understood. */
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "ciphers HIGH:!aNULL\n", &r, b, sizeof b),
	                 "ANY_TLS12_OR_HIGHER");
	expect_note(&r, 4, "ciphers is not carried over: \"HIGH\" is not a TLS 1.2 suite");
	mqc_result_free(&r);
	cr_expect_str_eq(sslciph_of(TLS_LISTENER "ciphers_tls1.3 TLS_AES_128_CCM_SHA256\n", &r, b,
	                            sizeof b), "ANY_TLS12_OR_HIGHER");
	expect_note(&r, 4, "ciphers_tls1.3 is not carried over: \"TLS_AES_128_CCM_SHA256\"");
	mqc_result_free(&r);
}

Test(mosqconf, crlfile_added)
{
	struct mqc_result r;

	conv(TLS_LISTENER "cafile /p/ca.pem\ncrlfile /p/revoked.crl.pem\nrequire_certificate true\n",
	     NULL, NULL, &r);
	expect_line(&r, "chanctl keystore crl add --label mosq-revoked.crl --crl /p/revoked.crl.pem");
	mqc_result_free(&r);
}

static int fake_list(void *arg, const char *dir, char ***out, size_t *n, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	cr_assert_str_eq(dir, "/etc/ssl/mosq");
	*out = malloc(2 * sizeof **out);
	(*out)[0] = strdup("/etc/ssl/mosq/root.pem");
	(*out)[1] = strdup("/etc/ssl/mosq/inter mediate.crt");
	*n = 2;
	return 0;
}

Test(mosqconf, capath_each_file_trusted)
{
	struct mqc_env env = { NULL, NULL, fake_list, NULL };
	struct mqc_result r;

	conv(TLS_LISTENER "capath /etc/ssl/mosq\nrequire_certificate true\n", NULL, &env, &r);
	expect_line(&r, "chanctl keystore trust --label mosq-root --cert /etc/ssl/mosq/root.pem");
	expect_line(&r, "chanctl keystore trust --label mosq-inter-mediate --cert "
	            "'/etc/ssl/mosq/inter mediate.crt'");
	mqc_result_free(&r);
	/* Without the look-up: said so, never silently. */
	conv(TLS_LISTENER "capath /etc/ssl/mosq\n", NULL, NULL, &r);
	expect_note(&r, 4, "capath /etc/ssl/mosq: the directory was not read");
	expect_line(&r, "# capath /etc/ssl/mosq: trust each CA certificate in it with chanctl "
	            "keystore trust --label L --cert FILE");
	mqc_result_free(&r);
}

Test(mosqconf, limits_carried)
{
	struct mqc_result r;
	char *l;

	conv("max_packet_size 65536\nmax_keepalive 120\n" TLS_LISTENER "max_connections 500\n",
	     NULL, NULL, &r);
	l = line_with(&r, "chanctl define");
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, "--max-clients 500 --max-packet 65536 --keepalive-max 120"),
	                   "%s", l);
	free(l);
	mqc_result_free(&r);
}

Test(mosqconf, plain_listener_loud)
{
	struct mqc_result r;
	char *l;

	conv("listener 1883\nallow_anonymous true\ncafile /p/ca.pem\n", NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --identity "
	            "username --allow-anonymous yes");
	expect_line(&r, "# WARNING: MQTT.1883 is plain TCP, NOT ENCRYPTED");
	expect_note(&r, 1, "channel MQTT.1883 is plain TCP, NOT ENCRYPTED");
	expect_note(&r, 3, "cafile is not carried over: the listener has no certfile and keyfile");
	l = line_with(&r, "chanctl keystore");
	cr_expect_null(l, "no keystore command for a plain listener: %s", l);
	expect_no_text(&r, "refresh security");
	free(l);
	mqc_result_free(&r);
}

Test(mosqconf, mosquitto1_default_listener)
{
	struct mqc_result r;

	conv("port 8883\ncafile /p/ca.pem\ncertfile /p/s.pem\nkeyfile /p/s.key\n"
	     "require_certificate true\nallow_anonymous false\n", NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.8883 --type mqtt --port 8883 --sslciph "
	            "ANY_TLS12_OR_HIGHER --certlabl mosq-s --sslcauth required --identity username "
	            "--allow-anonymous no");
	mqc_result_free(&r);
	conv("bind_address 10.0.0.1\n", NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --address "
	            "10.0.0.1 --identity username --allow-anonymous no");
	expect_note(&r, 0, "allow_anonymous is not set");
	mqc_result_free(&r);
}

Test(mosqconf, no_listener_is_local_only)
{
	struct mqc_result r;

	conv("persistence true\n", NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --address "
	            "127.0.0.1 --identity username --allow-anonymous yes");
	cr_expect_eq(r.nchannels, 1);
	mqc_result_free(&r);
}

Test(mosqconf, default_listener_settings_dropped_when_it_does_not_run)
{
	struct mqc_result r;

	conv("per_listener_settings true\ncafile /p/ca.pem\npassword_file /p/pw\nlistener 1883\n",
	     NULL, NULL, &r);
	expect_note(&r, 2, "cafile is not carried over: it applies to the default listener, which "
	            "does not run");
	expect_note(&r, 3, "password_file is not carried over: it applies to the default listener");
	expect_no_text(&r, "--password-file");
	cr_expect_eq(r.nchannels, 1);
	mqc_result_free(&r);
}

/* ---- per_listener_settings ---- */

#define TWO_LISTENERS                                                                     \
	"listener 1883 127.0.0.1\n"                                                           \
	"allow_anonymous true\n"                                                              \
	"listener 8883\n"                                                                     \
	"certfile /p/s.pem\nkeyfile /p/s.key\n"                                               \
	"password_file /p/pw\n"                                                               \
	"acl_file /p/acl\n"                                                                   \
	"allow_anonymous false\n"

Test(mosqconf, per_listener_settings_true)
{
	struct mqc_result r;

	conv("per_listener_settings true\n" TWO_LISTENERS, NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --address "
	            "127.0.0.1 --identity username --allow-anonymous yes");
	expect_line(&r, "chanctl define channel MQTT.8883 --type mqtt --port 8883 --sslciph "
	            "ANY_TLS12_OR_HIGHER --certlabl mosq-s --sslcauth never --identity username "
	            "--password-file /p/pw --acl-file /p/acl --allow-anonymous no");
	cr_expect_eq(r.nchannels, 2);
	mqc_result_free(&r);
}

Test(mosqconf, per_listener_settings_false_applies_everywhere)
{
	struct mqc_result r;

	/* Absent means false: the security keys are global, the last wins. */
	conv(TWO_LISTENERS, NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --address "
	            "127.0.0.1 --identity username --password-file /p/pw --acl-file /p/acl "
	            "--allow-anonymous no");
	expect_line(&r, "chanctl define channel MQTT.8883 --type mqtt --port 8883 --sslciph "
	            "ANY_TLS12_OR_HIGHER --certlabl mosq-s --sslcauth never --identity username "
	            "--password-file /p/pw --acl-file /p/acl --allow-anonymous no");
	mqc_result_free(&r);
	/* Written after the listeners, it still governs the whole file. */
	conv(TWO_LISTENERS "per_listener_settings false\n", NULL, NULL, &r);
	expect_no_text(&r, "--allow-anonymous yes");
	mqc_result_free(&r);
}

/* ---- several listeners ---- */

Test(mosqconf, multiple_listeners_names_and_shared_files)
{
	struct mqc_result r;
	char *out;

	conv("per_listener_settings true\n"
	     "listener 8883 10.0.0.1\ncafile /p/ca.pem\ncertfile /p/s.pem\nkeyfile /p/s.key\n"
	     "require_certificate true\nallow_anonymous false\n"
	     "listener 8883 10.0.0.2\ncafile /p/ca.pem\ncertfile /p/s.pem\nkeyfile /p/s.key\n"
	     "allow_anonymous false\n"
	     "listener 8884\ncafile /q/ca.pem\ncertfile /q/s.pem\nkeyfile /q/s.key\n"
	     "require_certificate true\nallow_anonymous false\n", NULL, NULL, &r);
	out = render(&r);
	expect_line(&r, "chanctl start channel MQTT.8883");
	expect_line(&r, "chanctl start channel MQTT.8883.2");
	expect_line(&r, "chanctl start channel MQTT.8884");
	/* The same file gives one keystore command; another file of the same
	 * name gets its own label. */
	cr_expect_eq(strstr(strstr(out, "--cert /p/ca.pem") + 1, "--cert /p/ca.pem"), NULL);
	expect_line(&r, "chanctl keystore trust --label mosq-ca-2 --cert /q/ca.pem");
	expect_line(&r, "chanctl keystore import --label mosq-s-2 --cert /q/s.pem --key /q/s.key");
	cr_expect_not_null(strstr(out, "MQTT.8884 --type mqtt --port 8884 --sslciph "
	                          "ANY_TLS12_OR_HIGHER --certlabl mosq-s-2 --sslcauth required"));
	expect_note(&r, 14, "different cafiles");
	cr_expect_eq(r.nchannels, 3);
	free(out);
	mqc_result_free(&r);
}

Test(mosqconf, websockets_and_unix_listeners_not_carried)
{
	struct mqc_result r;

	conv("listener 9001\nprotocol websockets\nlistener 0 /run/mosq.sock\nlistener 1883\n"
	     "allow_anonymous true\n", NULL, NULL, &r);
	expect_note(&r, 1, "listener 9001 is not carried over: protocol websockets");
	expect_note(&r, 2, "protocol is not carried over: its listener is not carried over");
	expect_note(&r, 3, "listener 0 /run/mosq.sock is not carried over");
	expect_no_text(&r, "MQTT.9001");
	cr_expect_eq(r.nchannels, 1);
	mqc_result_free(&r);
}

/* ---- errors name the file and line ---- */

Test(mosqconf, syntax_errors)
{
	expect_error("\nlistener\n", "m.conf:2: listener needs a value");
	expect_error("listener abc\n", "m.conf:1: listener port \"abc\" is not a number from 1 to "
	             "65535");
	expect_error("# c\nlistener 70000\n", "m.conf:2: listener port \"70000\" is not a number "
	             "from 1 to 65535");
	expect_error("listener 8883 a b\n", "m.conf:1: listener takes a port and an address, not "
	             "\"8883 a b\"");
	expect_error("port x\n", "m.conf:1: port \"x\" is not a number from 1 to 65535");
	expect_error("listener 1\nrequire_certificate yes\n",
	             "m.conf:2: require_certificate must be true or false, not \"yes\"");
	expect_error("listener 1\nallow_anonymous\n", "m.conf:2: allow_anonymous needs a value");
	expect_error("listener 1\ntls_version tlsv9\n", "m.conf:2: tls_version must be tlsv1.3, "
	             "tlsv1.2, tlsv1.1 or tlsv1, not \"tlsv9\"");
	expect_error("listener 8883\ncertfile /p/s.pem\n", "m.conf:2: certfile without keyfile: "
	             "mosquitto needs both for TLS");
	expect_error("listener 8883\nlistener 8883\n", "m.conf:2: listener 8883 is already defined "
	             "at line 1");
	expect_error("per_listener_settings maybe\n", "m.conf:1: per_listener_settings must be true "
	             "or false, not \"maybe\"");
	expect_error("listener 1\nmax_connections lots\n", "m.conf:2: max_connections must be a "
	             "number, not \"lots\"");
}

/* ---- nothing dropped silently ---- */

Test(mosqconf, other_keys_reported)
{
	struct mqc_result r;

	conv("persistence true\n"
	     "persistence_location /var/lib/mosquitto/\n"
	     "log_dest file /var/log/mosquitto/mosquitto.log\n"
	     "max_queued_messages 1000\n"
	     "include_dir /etc/mosquitto/conf.d\n"
	     "frobnicate 3\n"
	     "listener 1883\n"
	     "allow_anonymous true\n"
	     "mount_point site1/\n"
	     "connection bridge-01\n"
	     "address broker.example.com:8883\n"
	     "topic # both 0\n"
	     "bridge_cafile /p/ca.pem\n", NULL, NULL, &r);
	expect_note(&r, 1, "persistence is not carried over: chand keeps every session and "
	            "message in its SQLite store");
	expect_note(&r, 2, "persistence_location is not carried over");
	expect_note(&r, 3, "log_dest is not carried over: chand logs as chand.conf says");
	expect_note(&r, 4, "max_queued_messages is not carried over");
	expect_note(&r, 5, "include_dir is not carried over: the files in that directory are not "
	            "read");
	expect_note(&r, 6, "frobnicate is not carried over: not a mosquitto.conf key chanctl knows");
	expect_note(&r, 9, "mount_point is not carried over");
	expect_note(&r, 10, "connection is not carried over: bridge bridge-01");
	expect_note(&r, 11, "address is not carried over: it belongs to bridge bridge-01");
	expect_note(&r, 12, "topic is not carried over: it belongs to bridge bridge-01");
	expect_note(&r, 13, "bridge_cafile is not carried over: it belongs to bridge bridge-01");
	/* The listener itself still comes through. */
	expect_line(&r, "chanctl start channel MQTT.1883");
	/* In line order. */
	for (size_t i = 1; i < r.nnotes; i++)
		cr_expect_leq(r.notes[i - 1].line, r.notes[i].line);
	mqc_result_free(&r);
}

Test(mosqconf, comments_blanks_and_crlf)
{
	struct mqc_result r;

	conv("# a comment\r\n\r\n   # indented comment\r\nlistener 1883\r\n"
	     "allow_anonymous true   \r\n", NULL, NULL, &r);
	expect_line(&r, "chanctl define channel MQTT.1883 --type mqtt --port 1883 --identity "
	            "username --allow-anonymous yes");
	cr_expect_eq(r.nnotes, 1, "only the plain-TCP note");
	mqc_result_free(&r);
}

/* ---- output ---- */

Test(mosqconf, shell_quoting)
{
	char *q;

	q = mqc_shell_quote("/etc/mosquitto/ca.pem");
	cr_expect_str_eq(q, "/etc/mosquitto/ca.pem");
	free(q);
	q = mqc_shell_quote("C:\\certs\\ca.pem");
	cr_expect_str_eq(q, "'C:\\certs\\ca.pem'");
	free(q);
	q = mqc_shell_quote("it's here");
	cr_expect_str_eq(q, "'it'\\''s here'");
	free(q);
	q = mqc_shell_quote("");
	cr_expect_str_eq(q, "''");
	free(q);
	q = mqc_shell_quote("$HOME;rm -rf");
	cr_expect_str_eq(q, "'$HOME;rm -rf'");
	free(q);
}

Test(mosqconf, prefix_in_lines)
{
	struct mqc_result r;
	char *l;

	conv("listener 1883\nallow_anonymous true\n", NULL, NULL, &r);
	for (size_t i = 0; i < r.ncmds; i++) {
		if (r.cmds[i].kind != MQC_AGENT)
			continue;
		l = mqc_cmd_line(&r.cmds[i], "-c /etc/chand/qm1.conf ");
		cr_expect_eq(strncmp(l, "chanctl -c /etc/chand/qm1.conf define channel", 45), 0, "%s", l);
		free(l);
		break;
	}
	mqc_result_free(&r);
}
