/* chand.conf loading: defaults, relative paths, and the exact
 * "FILE:LINE: reason" of every class of error. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chand/config.h"
#include "chand/log.h"

static char dir[256];
static char path[512];

static void setup(void)
{
	char *real;

	snprintf(dir, sizeof(dir), "%s/chand-cfg-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	/* cfg_load reports realpath'd directories: compare against that. */
	real = realpath(dir, NULL);
	cr_assert_not_null(real);
	snprintf(dir, sizeof(dir), "%s", real);
	free(real);
	snprintf(path, sizeof(path), "%s/chand.conf", dir);
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads text; returns the errors joined with '\n' (malloc'd, "" if none). */
static char *load(const char *text, unsigned flags, struct chand_config *cfg, int *rc)
{
	struct cfg_errors errs;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	write_conf(text);
	*rc = cfg_load(cfg, path, flags, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(m, "%s%s", i ? "\n" : "", errs.v[i]);
	fclose(m);
	cfg_errors_free(&errs);
	return out;
}

/* The expected text with every "@F" replaced by the config path. */
static char *subst_file(const char *fmt)
{
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	for (const char *p = fmt; *p; p++) {
		if (p[0] == '@' && p[1] == 'F') {
			fputs(path, m);
			p++;
		} else {
			fputc(*p, m);
		}
	}
	fclose(m);
	return out;
}

static void expect_error(const char *text, unsigned flags, const char *want_fmt)
{
	struct chand_config cfg;
	int rc;
	char *got = load(text, flags, &cfg, &rc), *want;

	cr_assert_eq(rc, -1, "expected failure for:\n%s", text);
	want = subst_file(want_fmt);
	cr_expect_str_eq(got, want);
	free(want);
	free(got);
	cfg_free(&cfg);
}

#define MIN "qmgr = \"QM1\";\ndata_dir = \"%s\";\n"

TestSuite(config, .init = setup, .fini = teardown, .timeout = 10);

Test(config, minimal_file_gets_every_default)
{
	struct chand_config cfg;
	char text[512], want[600];
	int rc;
	char *errs;

	snprintf(text, sizeof(text), MIN, dir);
	errs = load(text, CFG_AGENT, &cfg, &rc);
	cr_assert_eq(rc, 0, "%s", errs);
	free(errs);
	cr_expect_str_eq(cfg.qmgr, "QM1");
	cr_expect_str_eq(cfg.data_dir, dir);
	cr_assert_eq(cfg.nlisteners, 1);
	cr_expect_str_eq(cfg.listeners[0].address, "0.0.0.0");
	cr_expect_eq(cfg.listeners[0].port, 1414);
	snprintf(want, sizeof(want), "%s/key.db", dir);
	cr_expect_str_eq(cfg.ks_path, want);
	snprintf(want, sizeof(want), "%s/key.sth", dir);
	cr_expect_str_eq(cfg.ks_stash, want);
	cr_expect_str_eq(cfg.ks_label, "qm1");
	snprintf(want, sizeof(want), "%s/chand.sock", dir);
	cr_expect_str_eq(cfg.admin_socket, want);
	cr_expect_eq(cfg.admin_mode, 0660);
	cr_expect_null(cfg.admin_group);
	cr_expect_eq(cfg.log_level, CHLOG_INFO);
	cr_expect(cfg.log_syslog);
	cr_expect_null(cfg.log_file);
	cr_expect_eq(cfg.max_channels, 1000);
	cr_expect_eq(cfg.max_msg_length, 4194304);
	cr_expect_eq(cfg.dead_peer_timeout, 60);
	cr_expect_str_eq(cfg.dlq, "");
	cr_expect_eq(cfg.tls_expiry_warning_days, 30);
	cr_expect_eq(cfg.tls_handshake_timeout, 30);
	cfg_free(&cfg);

	/* In the foreground syslog defaults to off. */
	errs = load(text, CFG_AGENT | CFG_FOREGROUND, &cfg, &rc);
	cr_assert_eq(rc, 0, "%s", errs);
	free(errs);
	cr_expect_not(cfg.log_syslog);
	cfg_free(&cfg);
}

Test(config, every_key_and_relative_paths)
{
	struct chand_config cfg;
	char want[600];
	int rc;
	char *errs;

	cr_assert_eq(mkdir(strcat(strcpy(want, dir), "/data"), 0700), 0);
	errs = load("qmgr = \"QM.A/1%\";\n"
	            "data_dir = \"data\";\n"
	            "listeners = ( { address = \"127.0.0.1\"; port = 1415; },\n"
	            "              { address = \"::1\"; port = 1416; } );\n"
	            "keystore = { path = \"ks/key.db\"; stash = \"/etc/x.sth\"; label = \"mylabel\"; };\n"
	            "admin = { socket = \"run/a.sock\"; mode = \"0600\"; };\n"
	            "log = { level = \"debug\"; syslog = false; file = \"chand.log\"; };\n"
	            "limits = { max_channels = 5; max_msg_length = 1024L; dead_peer_timeout = 0; };\n"
	            "dead_letter_queue = \"DEAD.LETTER\";\n"
	            "tls = { expiry_warning_days = 7; handshake_timeout = 12; };\n",
	            CFG_AGENT, &cfg, &rc);
	cr_assert_eq(rc, 0, "%s", errs);
	free(errs);
	cr_expect_str_eq(cfg.qmgr, "QM.A/1%");
	snprintf(want, sizeof(want), "%s/data", dir);
	cr_expect_str_eq(cfg.data_dir, want);
	cr_assert_eq(cfg.nlisteners, 2);
	cr_expect_str_eq(cfg.listeners[1].address, "::1");
	cr_expect_eq(cfg.listeners[1].port, 1416);
	cr_expect_eq(cfg.listeners[1].line, 4);
	snprintf(want, sizeof(want), "%s/ks/key.db", dir);
	cr_expect_str_eq(cfg.ks_path, want);
	cr_expect_str_eq(cfg.ks_stash, "/etc/x.sth");
	cr_expect_str_eq(cfg.ks_label, "mylabel");
	snprintf(want, sizeof(want), "%s/run/a.sock", dir);
	cr_expect_str_eq(cfg.admin_socket, want);
	cr_expect_eq(cfg.admin_mode, 0600);
	cr_expect_eq(cfg.log_level, CHLOG_DEBUG);
	cr_expect_not(cfg.log_syslog);
	snprintf(want, sizeof(want), "%s/chand.log", dir);
	cr_expect_str_eq(cfg.log_file, want);
	cr_expect_eq(cfg.max_channels, 5);
	cr_expect_eq(cfg.max_msg_length, 1024);
	cr_expect_eq(cfg.dead_peer_timeout, 0);
	cr_expect_str_eq(cfg.dlq, "DEAD.LETTER");
	cr_expect_eq(cfg.tls_expiry_warning_days, 7);
	cr_expect_eq(cfg.tls_handshake_timeout, 12);
	char *db = cfg_db_path(&cfg), *lock = cfg_lock_path(&cfg);
	snprintf(want, sizeof(want), "%s/data/QM.A/1%%.db", dir);
	cr_expect_str_eq(db, want);
	snprintf(want, sizeof(want), "%s/data/QM.A/1%%.lock", dir);
	cr_expect_str_eq(lock, want);
	free(db);
	free(lock);
	cfg_free(&cfg);
}

Test(config, empty_listener_list_means_none)
{
	struct chand_config cfg;
	int rc;
	char *errs = load("qmgr = \"QM1\"; data_dir = \"/tmp\"; listeners = ();", 0, &cfg, &rc);

	cr_assert_eq(rc, 0, "%s", errs);
	cr_expect_eq(cfg.nlisteners, 0);
	free(errs);
	cfg_free(&cfg);
}

Test(config, syntax_error_names_file_and_line)
{
	expect_error("qmgr = \"QM1\";\ndata_dir = \"/tmp\";\nlimits = { max_channels = ; };\n", 0,
	             "@F:3: syntax error");
}

Test(config, unknown_keys_at_every_level)
{
	expect_error("qmgr = \"QM1\";\ndata_dir = \"/tmp\";\nlimts = { };\n"
	             "limits = { max_chanels = 3; };\n"
	             "listeners = ( { address = \"127.0.0.1\"; prt = 1; } );\n", 0,
	             "@F:3: unknown key 'limts'\n"
	             "@F:4: unknown key 'limits.max_chanels'\n"
	             "@F:5: unknown key 'listeners[0].prt'");
}

Test(config, wrong_types)
{
	expect_error("qmgr = \"QM1\";\ndata_dir = \"/tmp\";\n"
	             "limits = { max_channels = \"10\"; };\n"
	             "log = 5;\n"
	             "admin = { mode = 0660; };\n"
	             "log2 = 1;\n"
	             "listeners = { address = \"x\"; };\n"
	             "dead_letter_queue = true;\n", 0,
	             "@F:3: 'limits.max_channels' must be an integer\n"
	             "@F:4: 'log' must be a group { ... }\n"
	             "@F:5: 'admin.mode' must be a string\n"
	             "@F:6: unknown key 'log2'\n"
	             "@F:7: 'listeners' must be a list ( { ... }, ... )\n"
	             "@F:8: 'dead_letter_queue' must be a string");
}

Test(config, invalid_values)
{
	expect_error("qmgr = \"bad name\";\ndata_dir = \"/tmp\";\n"
	             "listeners = ( { address = \"127.0.0.1\"; port = 70000; },\n"
	             "  { address = \"example.com\"; port = 1; } );\n"
	             "admin = { mode = \"abc\"; };\n"
	             "log = { level = \"loud\"; };\n"
	             "limits = { max_channels = 0; max_msg_length = 99999999999L; dead_peer_timeout = -1; };\n"
	             "dead_letter_queue = \"DEAD LETTER\";\n"
	             "keystore = { label = \"\"; };\n", 0,
	             "@F:1: 'qmgr': name 'bad name' has ' ' at position 4 (allowed: A-Z a-z 0-9 . _ / %)\n"
	             "@F:3: 'listeners[0].port' must be between 1 and 65535 (got 70000)\n"
	             "@F:4: 'listeners[1].address' must be a numeric IPv4 or IPv6 address (got \"example.com\")\n"
	             "@F:9: 'keystore.label' must be 1 to 64 characters\n"
	             "@F:5: 'admin.mode' must be an octal mode like \"0660\" (got \"abc\")\n"
	             "@F:6: 'log.level' must be one of error, warn, info, debug (got \"loud\")\n"
	             "@F:7: 'limits.max_channels' must be between 1 and 100000 (got 0)\n"
	             "@F:7: 'limits.max_msg_length' must be between 1 and 33554432 (got 99999999999)\n"
	             "@F:7: 'limits.dead_peer_timeout' must be between 0 and 3600 (got -1)\n"
	             "@F:8: 'dead_letter_queue': name 'DEAD LETTER' has ' ' at position 5 (allowed: A-Z a-z 0-9 . _ / %)");
}

Test(config, missing_required_keys)
{
	expect_error("listeners = ();\n", 0,
	             "@F: missing required key 'qmgr'\n@F: missing required key 'data_dir'");
}

Test(config, unreadable_file)
{
	struct chand_config cfg;
	struct cfg_errors errs;
	char p[600];

	snprintf(p, sizeof(p), "%s/nope.conf", dir);
	cr_assert_eq(cfg_load(&cfg, p, 0, &errs), -1);
	cr_assert_eq(errs.n, 1);
	char want[700];
	snprintf(want, sizeof(want), "cannot read %s: No such file or directory", p);
	cr_expect_str_eq(errs.v[0], want);
	cfg_errors_free(&errs);
	cfg_free(&cfg);
}

Test(config, agent_checks_data_dir_and_group)
{
	char text[1024];

	snprintf(text, sizeof(text), "qmgr = \"QM1\";\ndata_dir = \"%s/missing\";\n"
	         "admin = { group = \"no-such-group-chand\"; };\n", dir);
	char fmt[1024];
	snprintf(fmt, sizeof(fmt), "@F:2: data_dir %s/missing: does not exist\n"
	         "@F:3: 'admin.group': no such group 'no-such-group-chand'", dir);
	/* Without CFG_AGENT (chanctl) neither is checked. */
	struct chand_config cfg;
	int rc;
	char *errs = load(text, 0, &cfg, &rc);
	cr_expect_eq(rc, 0, "%s", errs);
	free(errs);
	cfg_free(&cfg);
	/* The agent reports both; the order follows the file's keys. */
	snprintf(fmt, sizeof(fmt), "@F:3: 'admin.group': no such group 'no-such-group-chand'\n"
	         "@F:2: data_dir %s/missing: does not exist", dir);
	expect_error(text, CFG_AGENT, fmt);

	/* A file where a directory belongs. */
	snprintf(text, sizeof(text), "qmgr = \"QM1\";\ndata_dir = \"%s\";\n", path);
	snprintf(fmt, sizeof(fmt), "@F:2: data_dir %s is not a directory", path);
	expect_error(text, CFG_AGENT, fmt);
}

Test(config, data_dir_not_writable)
{
	char text[1024], fmt[1024], ro[600];

	if (geteuid() == 0) {
		/* A skipped test does not reach .fini: clean up here. */
		teardown();
		cr_skip_test("root can write any directory; run as a user to check this");
	}
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	cr_assert_eq(mkdir(ro, 0500), 0);
	snprintf(text, sizeof(text), "qmgr = \"QM1\";\ndata_dir = \"%s\";\n", ro);
	snprintf(fmt, sizeof(fmt), "@F:2: data_dir %s is not writable: Permission denied", ro);
	expect_error(text, CFG_AGENT, fmt);
	chmod(ro, 0700);
}

Test(config, existing_group_is_resolved)
{
	struct chand_config cfg;
	int rc;
	char text[512];

	snprintf(text, sizeof(text), MIN "admin = { group = \"root\"; };\n", dir);
	char *errs = load(text, CFG_AGENT, &cfg, &rc);
	cr_assert_eq(rc, 0, "%s", errs);
	cr_expect_str_eq(cfg.admin_group, "root");
	cr_expect_eq(cfg.admin_gid, 0);
	free(errs);
	cfg_free(&cfg);
}

Test(config, socket_path_too_long)
{
	char text[1024], fmt[1024], longp[300];

	memset(longp, 'a', 200);
	longp[200] = '\0';
	snprintf(text, sizeof(text), MIN "admin = { socket = \"/tmp/%s\"; };\n", dir, longp);
	snprintf(fmt, sizeof(fmt), "@F:3: admin socket path /tmp/%s is too long (205 bytes, "
	         "at most 107)", longp);
	expect_error(text, 0, fmt);
}

Test(config, shipped_example_is_valid)
{
	struct chand_config cfg;
	struct cfg_errors errs;
	char p[600];

	/* Not CFG_AGENT: its data_dir does not exist here. */
	snprintf(p, sizeof(p), "%s/etc/chand.conf", TEST_SRCDIR);
	int rc = cfg_load(&cfg, p, 0, &errs);
	cr_assert_eq(rc, 0, "%s", errs.n ? errs.v[0] : "");
	cr_expect_str_eq(cfg.qmgr, "QM1");
	cr_expect_eq(cfg.nlisteners, 1);
	cr_expect_eq(cfg.listeners[0].port, 1414);
	cr_expect_eq(cfg.admin_mode, 0660);
	cr_expect_null(cfg.admin_group);
	cr_expect_str_eq(cfg.ks_label, "qm1");
	cr_expect_eq(cfg.max_msg_length, 4194304);
	cfg_errors_free(&errs);
	cfg_free(&cfg);
}
