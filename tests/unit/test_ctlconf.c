/* chanctl's reading of chand.conf (src/ctl/ctl_conf.c): the admin socket
 * and keystore paths it finds must be the ones chand's own loader
 * derives from the same file, and its errors are one "FILE:LINE: reason"
 * line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/config.h"

static char dir[256];
static char path[512];

static void setup(void)
{
	char *real;

	snprintf(dir, sizeof(dir), "%s/chand-ctlconf-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
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

/* Both readers on the same text agree on the socket and the keystore. */
static void same_as_chand(const char *text)
{
	struct chand_config cfg;
	struct cfg_errors errs;
	struct ctl_conf cc;
	char err[512] = "";

	write_conf(text);
	cr_assert_eq(cfg_load(&cfg, path, 0, &errs), 0, "chand refuses: %s",
	             errs.n ? errs.v[0] : "?");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), 0, "chanctl refuses: %s", err);
	cr_expect_str_eq(cc.admin_socket, cfg.admin_socket, "for:\n%s", text);
	cr_expect_str_eq(cc.ks_path, cfg.ks_path, "for:\n%s", text);
	ctl_conf_free(&cc);
	cfg_free(&cfg);
	cfg_errors_free(&errs);
}

TestSuite(ctlconf, .init = setup, .fini = teardown, .timeout = 10);

Test(ctlconf, defaults_follow_data_dir)
{
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \"data\";\n");
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \"./data\";\n");
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \".\";\n");
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \"/var/lib/chand/QM1\";\n");
}

Test(ctlconf, explicit_paths)
{
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \"/var/lib/x\";\n"
	              "admin = { socket = \"run/admin.sock\"; mode = \"0600\"; };\n"
	              "keystore = { path = \"tls/key.db\"; label = \"qm1\"; };\n");
	same_as_chand("qmgr = \"QM1\";\ndata_dir = \"d\";\n"
	              "admin = { socket = \"/run/chand/qm1.sock\"; };\n"
	              "keystore = { path = \"/etc/chand/qm1.db\"; };\n");
}

Test(ctlconf, resolved_against_the_file)
{
	struct ctl_conf cc;
	char err[512], want[600];

	write_conf("qmgr = \"QM1\";\ndata_dir = \"data\";\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), 0, "%s", err);
	snprintf(want, sizeof(want), "%s/data/chand.sock", dir);
	cr_expect_str_eq(cc.admin_socket, want);
	snprintf(want, sizeof(want), "%s/key.db", dir);
	cr_expect_str_eq(cc.ks_path, want);
	ctl_conf_free(&cc);
}

/* chanctl wants two paths; keys only chand checks do not stop it. */
Test(ctlconf, ignores_what_it_does_not_use)
{
	struct ctl_conf cc;
	char err[512] = "";

	write_conf("data_dir = \"d\";\nlisteners = ( { port = 99999; } );\nnosuchkey = 1;\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_not_null(strstr(cc.admin_socket, "/d/chand.sock"));
	ctl_conf_free(&cc);

	/* No socket and no data_dir: read, but nothing to connect to. */
	write_conf("qmgr = \"QM1\";\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_null(cc.admin_socket);
	cr_expect_not_null(cc.ks_path);
	ctl_conf_free(&cc);
}

Test(ctlconf, errors_are_one_line_with_file_and_line)
{
	struct ctl_conf cc;
	char err[512], want[700];

	write_conf("qmgr = \"QM1\";\ndata_dir = \"d\"\nadmin = { socket = 3; };\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: 'admin.socket' must be a string", path);
	cr_expect_str_eq(err, want);
	cr_expect_null(strchr(err, '\n'));

	write_conf("qmgr = \"QM1\";\n\ndata_dir = ;\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: ", path);
	cr_expect_eq(strncmp(err, want, strlen(want)), 0, "got: %s", err);
	cr_expect_null(strchr(err, '\n'));

	write_conf("data_dir = \"\";\n");
	cr_assert_eq(ctl_conf_read(&cc, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: 'data_dir' must not be empty", path);
	cr_expect_str_eq(err, want);

	snprintf(want, sizeof(want), "%s/missing.conf", dir);
	cr_assert_eq(ctl_conf_read(&cc, want, err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "cannot read"), "got: %s", err);
	cr_expect_not_null(strstr(err, "No such file"), "got: %s", err);
}
