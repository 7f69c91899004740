/* Keystore: `chanctl keystore ...` run in-process (ks_cli_main) with its
 * stdout/stderr captured, and ks_material_load as the agent uses it.
 * The test PKI (tests/pki/mkpki.sh) is made once per run by a Criterion
 * PRE_ALL hook in the runner process and shared read-only by the tests;
 * each test works in its own temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>

#include "chand/ctlcmd.h"
#include "chand/keystore.h"
#include "chand/keystore_file.h"
#include "chand/util.h"

#define PW "passw0rd"
#define PW_B64 "cGFzc3cwcmQ"

#define SHORT_PATH 1024
static char pki_made[SHORT_PATH]; /* runner process: the directory it made */
static char pki[SHORT_PATH];      /* test process: the shared PKI */
static char dir[SHORT_PATH];      /* test process: this test's temp dir */
static char ksp[PATH_MAX];        /* dir/key.db */

struct run {
	int rc;
	char *out;
	char *err;
};
static struct run r;
static const char *cfg_ks; /* keystore path "from the config" for ks_cli_main */

static const char *srcdir(void);
static int rm_rf(const char *path);
static const char *P(const char *name);
static const char *D(const char *name);
static char *slurp(const char *path);
static void run_v(bool json, const char *first, va_list ap);
static void ks(const char *first, ...);
static void ksj(const char *first, ...);
static void mk_ks(void);
static void write_file(const char *path, const char *text, mode_t mode);
static void setup(void);
static void teardown(void);

static const char *srcdir(void)
{
	const char *s = getenv("TEST_SRCDIR");

	return s && *s ? s : TEST_SRCDIR;
}

static int rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];

	if (path[0] == '\0')
		return 0;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	return system(cmd);
}

/* Made once, in the runner, before any test process starts: the tests
 * inherit CHAND_TEST_PKI from it. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char cmd[2 * PATH_MAX + 64];

	(void)set;
	snprintf(pki_made, sizeof pki_made, "/tmp/chand-ks-pki.XXXXXX");
	if (mkdtemp(pki_made) == NULL) {
		pki_made[0] = '\0';
		return;
	}
	snprintf(cmd, sizeof cmd, "sh '%s/tests/pki/mkpki.sh' '%s'", srcdir(), pki_made);
	if (system(cmd) != 0) {
		rm_rf(pki_made);
		pki_made[0] = '\0';
		return;
	}
	setenv("CHAND_TEST_PKI", pki_made, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	rm_rf(pki_made);
}

static void setup(void)
{
	const char *p = getenv("CHAND_TEST_PKI");

	snprintf(dir, sizeof dir, "/tmp/chand-ks-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	if (p != NULL && *p) {
		str_copy(pki, p, sizeof pki);
	} else {
		/* No runner hook (e.g. a single test run by hand): make our own. */
		char cmd[2 * PATH_MAX + 64];

		snprintf(pki, sizeof pki, "%.1000s/pki", dir);
		snprintf(cmd, sizeof cmd, "sh '%s/tests/pki/mkpki.sh' '%s'", srcdir(), pki);
		cr_assert_eq(system(cmd), 0, "mkpki.sh failed");
	}
	snprintf(ksp, sizeof ksp, "%s/key.db", dir);
	memset(&r, 0, sizeof r);
}

static void teardown(void)
{
	free(r.out);
	free(r.err);
	memset(&r, 0, sizeof r);
	rm_rf(dir);
}

TestSuite(keystore, .init = setup, .fini = teardown, .timeout = 60);

/* Paths in the PKI and in the test dir, from a small rotating pool so
 * several can appear in one call. */
static const char *P(const char *name)
{
	static char pool[16][PATH_MAX];
	static unsigned next;
	char *b = pool[next++ % 16];

	snprintf(b, PATH_MAX, "%s/%s", pki, name);
	return b;
}

static const char *D(const char *name)
{
	static char pool[16][PATH_MAX];
	static unsigned next;
	char *b = pool[next++ % 16];

	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

static char *slurp(const char *path)
{
	size_t len;
	char err[256];
	char *s = file_read_all(path, 1 << 20, &len, err, sizeof err);

	cr_assert_not_null(s, "%s", err);
	return s;
}

/* Runs ks_cli_main with stdout and stderr sent to files, then reads them. */
static void run_v(bool json, const char *first, va_list ap)
{
	char *argv[64];
	int argc = 0, o1, o2, f1, f2;

	argv[argc++] = (char *)(uintptr_t)first;
	while (argc < 63 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	argv[argc] = NULL;
	free(r.out);
	free(r.err);
	fflush(stdout);
	fflush(stderr);
	o1 = dup(1);
	o2 = dup(2);
	f1 = open(D("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	f2 = open(D("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(o1 >= 0 && o2 >= 0 && f1 >= 0 && f2 >= 0);
	dup2(f1, 1);
	dup2(f2, 2);
	r.rc = ks_cli_main(argc, argv, cfg_ks, json);
	fflush(stdout);
	fflush(stderr);
	dup2(o1, 1);
	dup2(o2, 2);
	close(o1);
	close(o2);
	close(f1);
	close(f2);
	r.out = slurp(D("stdout"));
	r.err = slurp(D("stderr"));
	/* Whatever a command prints, it never prints a secret. */
	cr_assert_null(strstr(r.out, PW), "password on stdout: %s", r.out);
	cr_assert_null(strstr(r.err, PW), "password on stderr: %s", r.err);
	cr_assert_null(strstr(r.out, PW_B64));
	cr_assert_null(strstr(r.out, "PRIVATE KEY"));
	cr_assert_null(strstr(r.err, "PRIVATE KEY"));
}

static void ks(const char *first, ...)
{
	va_list ap;

	va_start(ap, first);
	run_v(false, first, ap);
	va_end(ap);
}

static void ksj(const char *first, ...)
{
	va_list ap;

	va_start(ap, first);
	run_v(true, first, ap);
	va_end(ap);
}

#define OK() cr_assert_eq(r.rc, 0, "rc=%d stdout=%s stderr=%s", r.rc, r.out, r.err)
#define FAILS_WITH(text) do { \
		cr_assert_neq(r.rc, 0, "unexpected success: %s", r.out); \
		cr_assert_not_null(strstr(r.err, (text)), "stderr lacks \"%s\": %s", (text), r.err); \
		cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, \
		             "error is not one line: %s", r.err); \
	} while (0)
#define HAS(s, text) cr_assert_not_null(strstr((s), (text)), "missing \"%s\" in: %s", (text), (s))

static void mk_ks(void)
{
	ks("keystore", "create", "-k", ksp, "--password-file", P("pw.txt"), "--stash", NULL);
	OK();
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* ---- create, password, permissions ---- */

Test(keystore, create_makes_0600_files_and_opens)
{
	mk_ks();
	HAS(r.out, "created keystore");
	cr_assert_eq(mode_of(ksp), 0600);
	cr_assert_eq(mode_of(D("key.sth")), 0600);
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
	HAS(r.out, "LABEL");
	ks("keystore", "list", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	OK();
}

Test(keystore, create_under_loose_umask_is_still_0600)
{
	mode_t old = umask(0);

	ks("keystore", "create", "-k", ksp, "--password-file", P("pw.txt"), "--stash", NULL);
	umask(old);
	OK();
	cr_assert_eq(mode_of(ksp), 0600);
	cr_assert_eq(mode_of(D("key.sth")), 0600);
}

Test(keystore, wrong_password_is_refused_first)
{
	mk_ks();
	write_file(D("bad.txt"), "not-the-password\n", 0600);
	ks("keystore", "list", "-k", ksp, "--password-file", D("bad.txt"), NULL);
	FAILS_WITH("CHD3003");
	HAS(r.err, "wrong password");
	/* Even a command that would fail later reports the password first. */
	ks("keystore", "show", "-k", ksp, "--password-file", D("bad.txt"), "nosuchlabel", NULL);
	FAILS_WITH("CHD3003");
}

Test(keystore, create_refuses_to_overwrite)
{
	mk_ks();
	ks("keystore", "create", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	FAILS_WITH("already exists");
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
}

Test(keystore, create_refuses_short_password)
{
	write_file(D("short.txt"), "abc\n", 0600);
	ks("keystore", "create", "-k", ksp, "--password-file", D("short.txt"), NULL);
	FAILS_WITH("at least 8");
	cr_assert_neq(access(ksp, F_OK), 0, "a keystore was created");
}

Test(keystore, keystore_readable_by_others_is_refused)
{
	mk_ks();
	cr_assert_eq(chmod(ksp, 0644), 0);
	ks("keystore", "list", "-k", ksp, NULL);
	FAILS_WITH("CHD3002");
	HAS(r.err, ksp);
	HAS(r.err, "0644");
}

/* A symbolic link in place of the keystore or its stash is refused: the
 * file is opened with O_NOFOLLOW and checked on that descriptor. */
Test(keystore, symlinked_keystore_or_stash_is_refused)
{
	mk_ks();
	cr_assert_eq(rename(ksp, D("real.db")), 0);
	cr_assert_eq(symlink(D("real.db"), ksp), 0);
	ks("keystore", "list", "-k", ksp, NULL);
	FAILS_WITH("symbolic link");
	cr_assert_eq(unlink(ksp), 0);
	cr_assert_eq(rename(D("real.db"), ksp), 0);
	cr_assert_eq(rename(D("key.sth"), D("real.sth")), 0);
	cr_assert_eq(symlink(D("real.sth"), D("key.sth")), 0);
	ks("keystore", "list", "-k", ksp, NULL);
	FAILS_WITH("symbolic link");
}

/* Password files given to a command are secrets too: refused when others
 * can read them or when they are a symbolic link, with the reason. */
Test(keystore, password_files_readable_by_others_or_symlinked_are_refused)
{
	write_file(D("open.pw"), "Ks-passw0rd-42\n", 0644);
	ks("keystore", "create", "-k", ksp, "--password-file", D("open.pw"), NULL);
	FAILS_WITH("0644");
	HAS(r.err, D("open.pw"));
	HAS(r.err, "chmod 600");
	cr_assert_neq(access(ksp, F_OK), 0, "a keystore was created");

	write_file(D("real.pw"), "Ks-passw0rd-42\n", 0600);
	cr_assert_eq(symlink(D("real.pw"), D("link.pw")), 0);
	ks("keystore", "create", "-k", ksp, "--password-file", D("link.pw"), NULL);
	FAILS_WITH("symbolic link");

	ks("keystore", "create", "-k", ksp, "--password-file", D("real.pw"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--password-file", D("real.pw"), "--label", "x",
	   "--cert", P("qm1.pem"), "--key", P("qm2-aes.key"), "--key-password-file", D("open.pw"),
	   NULL);
	FAILS_WITH("0644");
	HAS(r.err, D("open.pw"));
}

Test(keystore, stash_readable_by_others_is_refused)
{
	mk_ks();
	cr_assert_eq(chmod(D("key.sth"), 0640), 0);
	ks("keystore", "list", "-k", ksp, NULL);
	FAILS_WITH("CHD3002");
	HAS(r.err, D("key.sth"));
	HAS(r.err, "0640");
	/* An exposed stash is refused even when the password comes from a file. */
	ks("keystore", "list", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	FAILS_WITH("CHD3002");
}

Test(keystore, missing_keystore_and_not_a_keystore)
{
	ks("keystore", "list", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	FAILS_WITH("CHD3001");
	HAS(r.err, "does not exist");
	write_file(ksp, "hello, I am not SQLite\n", 0600);
	ks("keystore", "list", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	FAILS_WITH("CHD3001");
	HAS(r.err, "not a chand keystore");
}

Test(keystore, stash_command_writes_a_stash)
{
	ks("keystore", "create", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	OK();
	cr_assert_neq(access(D("key.sth"), F_OK), 0);
	ks("keystore", "stash", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	OK();
	cr_assert_eq(mode_of(D("key.sth")), 0600);
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
}

Test(keystore, no_password_source_without_terminal)
{
	pid_t pid;
	int status;

	ks("keystore", "create", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	OK();
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* A new session has no controlling terminal: /dev/tty fails. */
		setsid();
		ks("keystore", "list", "-k", ksp, NULL);
		_exit(r.rc != 0 && strstr(r.err, "no keystore password") != NULL ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

Test(keystore, stash_path_rule)
{
	char *s = ks_stash_path("/a/b/key.db");

	cr_assert_str_eq(s, "/a/b/key.sth");
	free(s);
	s = ks_stash_path("/a.d/key");
	cr_assert_str_eq(s, "/a.d/key.sth");
	free(s);
	s = ks_stash_path("keys.kdb");
	cr_assert_str_eq(s, "keys.sth");
	free(s);
	s = ks_stash_path("/x/.hidden");
	cr_assert_str_eq(s, "/x/.hidden.sth");
	free(s);
}

Test(keystore, usage_errors)
{
	ks("keystore", "list", "--bogus", "-k", ksp, NULL);
	cr_assert_eq(r.rc, 2);
	HAS(r.err, "unknown option --bogus");
	ks("keystore", "list", NULL);
	cr_assert_eq(r.rc, 2);
	HAS(r.err, "no keystore");
	ks("keystore", "frobnicate", NULL);
	cr_assert_eq(r.rc, 2);
	ks("keystore", "show", "-k", ksp, NULL);
	cr_assert_eq(r.rc, 2);
	HAS(r.err, "missing LABEL");
	/* -k falls back to the configured path. */
	mk_ks();
	cfg_ks = ksp;
	ks("keystore", "list", "--password-file", P("pw.txt"), NULL);
	cfg_ks = NULL;
	OK();
	HAS(r.out, "LABEL");
}

/* ---- import: certificate and key formats ---- */

/* Loads the keystore as the agent does and checks that label's key belongs
 * to its certificate: proof that the key survived re-encryption. */
static void check_key_roundtrip_n(const char *path, const char *label, int ncerts)
{
	struct ks_material *m = NULL;
	enum chd_code_id code;
	char err[512];
	const struct ks_personal *p;
	unsigned char a[64], b[64];
	size_t na = sizeof a, nb = sizeof b;

	cr_assert_eq(ks_material_load(path, NULL, &m, &code, err, sizeof err), 0, "%s", err);
	p = ks_material_find(m, label);
	cr_assert_not_null(p, "no personal entry %s", label);
	if (ncerts >= 0)
		cr_assert_eq(p->ncerts, (unsigned)ncerts);
	cr_assert_not_null(p->key);
	cr_assert_geq(gnutls_x509_crt_get_key_id(p->certs[0], GNUTLS_KEYID_USE_SHA256, a, &na), 0);
	cr_assert_geq(gnutls_x509_privkey_get_key_id(p->key, GNUTLS_KEYID_USE_SHA256, b, &nb), 0);
	cr_assert(na == nb && memcmp(a, b, na) == 0, "key of %s does not match", label);
	ks_material_free(m);
}

static void check_key_roundtrip(const char *label, int ncerts)
{
	check_key_roundtrip_n(ksp, label, ncerts);
}

static void check_key_roundtrip_at(const char *path, const char *label)
{
	check_key_roundtrip_n(path, label, -1);
}

Test(keystore, import_pem_cert_plain_pkcs8_key)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), NULL);
	OK();
	HAS(r.out, "imported personal certificate \"qm2\"");
	HAS(r.out, "CN=QM2,OU=Payments,O=Acme,C=GB");
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_der_cert)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1-der.crt"),
	   "--key", P("qm1.key"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "qm1", NULL);
	OK();
	HAS(r.out, "CN=QM1,OU=Payments,O=Acme,C=GB");
	check_key_roundtrip("qm1", 1);
}

Test(keystore, import_traditional_plain_key)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-trad.key"), NULL);
	OK();
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_encrypted_pkcs8_key)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-pkcs8.key"), "--key-password-file", P("pw.txt"), NULL);
	OK();
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_genrsa_aes256_key)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-aes.key"), "--key-password-file", P("pw.txt"), NULL);
	OK();
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_genrsa_des3_key)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-des3.key"), "--key-password-file", P("pw.txt"), NULL);
	OK();
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_ec_key_shows_curve)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm1ec", "--cert", P("qm1-ec.pem"),
	   "--key", P("qm1-ec.key"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "qm1ec", NULL);
	OK();
	HAS(r.out, "EC P-256");
	check_key_roundtrip("qm1ec", 1);
}

Test(keystore, import_combined_pem_without_key_option)
{
	char *cert = slurp(P("qm2.pem")), *key = slurp(P("qm2.key"));
	char *both = NULL;

	cr_assert_geq(asprintf(&both, "%s%s", cert, key), 0);
	write_file(D("both.pem"), both, 0600);
	free(cert);
	free(key);
	free(both);
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", D("both.pem"), NULL);
	OK();
	check_key_roundtrip("qm2", 1);
}

Test(keystore, import_without_any_key_is_refused)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"), NULL);
	FAILS_WITH("CHD3007");
	HAS(r.err, "give --key");
}

Test(keystore, import_chain_from_cert_file_and_chain_option)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1-chain.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	HAS(r.out, "chain of 1");
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), "--chain", P("inter.pem"), "--chain", P("root.pem"), NULL);
	OK();
	HAS(r.out, "chain of 2");
	ks("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	HAS(r.out, "chain[1]:       CN=Chand Test Intermediate CA,O=Acme,C=GB");
	HAS(r.out, "chain[2]:       CN=Chand Test Root CA,O=Acme,C=GB");
	check_key_roundtrip("qm1", 2);
	check_key_roundtrip("qm2", 3);
}

Test(keystore, chain_given_out_of_order_is_sorted)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), "--chain", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	HAS(r.out, "chain[1]:       CN=Chand Test Intermediate CA");
	HAS(r.out, "chain[2]:       CN=Chand Test Root CA");
}

Test(keystore, key_mismatch_is_refused)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "bad", "--cert", P("qm1.pem"),
	   "--key", P("qm2.key"), NULL);
	FAILS_WITH("CHD3005");
	HAS(r.err, "does not belong");
	ks("keystore", "show", "-k", ksp, "bad", NULL);
	FAILS_WITH("CHD3004");
}

Test(keystore, missing_key_password_is_named)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-aes.key"), NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "is encrypted");
	HAS(r.err, "--key-password-file");
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-pkcs8.key"), NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "is encrypted");
}

Test(keystore, wrong_key_password_is_named)
{
	mk_ks();
	write_file(D("wrong.txt"), "wrong-one\n", 0600);
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-des3.key"), "--key-password-file", D("wrong.txt"), NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "wrong password for private key");
	/* The keystore password was right: it is the key's that is wrong. */
	cr_assert_null(strstr(r.err, "CHD3003"));
}

Test(keystore, duplicate_and_bad_labels)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), NULL);
	FAILS_WITH("already exists");
	ks("keystore", "import", "-k", ksp, "--label", "has space", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), NULL);
	FAILS_WITH("label");
	ks("keystore", "import", "-k", ksp, "--label",
	   "a123456789b123456789c123456789d123456789e123456789f123456789g12345",
	   "--cert", P("qm2.pem"), "--key", P("qm2.key"), NULL);
	FAILS_WITH("1-64 characters");
}

/* ---- PKCS#12 ---- */

Test(keystore, import_p12_uses_friendly_name)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2.p12"), "--p12-password-file",
	   P("pw.txt"), NULL);
	OK();
	HAS(r.out, "\"qm2\"");
	ks("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	HAS(r.out, "subject:        CN=QM2,OU=Payments,O=Acme,C=GB");
	HAS(r.out, "chain[1]:       CN=Chand Test Intermediate CA,O=Acme,C=GB");
	check_key_roundtrip("qm2", 2);
}

Test(keystore, import_p12_label_option_and_legacy)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2-legacy.p12"), "--p12-password-file",
	   P("pw.txt"), "--label", "old", NULL);
	OK();
	HAS(r.out, "\"old\"");
	check_key_roundtrip("old", 2);
	ks("keystore", "show", "-k", ksp, "qm2", NULL);
	FAILS_WITH("CHD3004");
}

Test(keystore, import_p12_password_missing_or_wrong)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2.p12"), NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "--p12-password-file");
	write_file(D("wrong.txt"), "wrong-one\n", 0600);
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2.p12"), "--p12-password-file",
	   D("wrong.txt"), NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "wrong password for PKCS#12");
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2.pem"), "--p12-password-file",
	   P("pw.txt"), NULL);
	FAILS_WITH("CHD3007");
}

/* ---- trust, chain completeness ---- */

Test(keystore, trust_bundle_makes_numbered_labels)
{
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "acme", NULL);
	OK();
	HAS(r.out, "kind:           trusted");
	HAS(r.out, "subject:        CN=Chand Test Root CA,O=Acme,C=GB");
	ks("keystore", "show", "-k", ksp, "acme.1", NULL);
	OK();
	HAS(r.out, "subject:        CN=Chand Test Intermediate CA,O=Acme,C=GB");
	ks("keystore", "show", "-k", ksp, "acme.2", NULL);
	FAILS_WITH("CHD3004");
}

Test(keystore, trust_refuses_non_ca)
{
	char *a = slurp(P("root.pem")), *b = slurp(P("qm1.pem")), *both = NULL;

	cr_assert_geq(asprintf(&both, "%s%s", a, b), 0);
	write_file(D("mixed.pem"), both, 0644);
	free(a);
	free(b);
	free(both);
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "leaf", "--cert", P("qm1.pem"), NULL);
	FAILS_WITH("not a CA certificate");
	HAS(r.err, "CA:FALSE");
	/* All or nothing: the root in front of the leaf is not added either. */
	ks("keystore", "trust", "-k", ksp, "--label", "mixed", "--cert", D("mixed.pem"), NULL);
	FAILS_WITH("not a CA certificate");
	ks("keystore", "show", "-k", ksp, "mixed", NULL);
	FAILS_WITH("CHD3004");
}

Test(keystore, chain_completeness_in_show)
{
	json_t *j;
	json_error_t je;

	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2.key"), NULL);
	OK();
	HAS(r.out, "CHD3009");
	ks("keystore", "trust", "-k", ksp, "--label", "root", "--cert", P("root.pem"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	HAS(r.out, "chain complete: no");
	HAS(r.out, "WARNING: CHD3009");
	ksj("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	j = json_loads(r.out, 0, &je);
	cr_assert_not_null(j, "bad JSON: %s", je.text);
	cr_assert(json_is_false(json_object_get(j, "chain_complete")));
	json_decref(j);

	/* With the intermediate in its chain the path reaches the root. */
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1-chain.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	cr_assert_null(strstr(r.out, "CHD3009"), "%s", r.out);
	ks("keystore", "show", "-k", ksp, "qm1", NULL);
	OK();
	HAS(r.out, "chain complete: yes");
	ksj("keystore", "show", "-k", ksp, "qm1", NULL);
	OK();
	j = json_loads(r.out, 0, &je);
	cr_assert_not_null(j, "bad JSON: %s", je.text);
	cr_assert(json_is_true(json_object_get(j, "chain_complete")));
	cr_assert_str_eq(json_string_value(json_object_get(j, "key_type")), "RSA 2048");
	cr_assert_eq(json_array_size(json_object_get(j, "san")), 2);
	json_decref(j);

	/* A certificate from another CA never completes. */
	ks("keystore", "import", "-k", ksp, "--label", "other", "--cert", P("other.pem"),
	   "--key", P("other.key"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "other", NULL);
	OK();
	HAS(r.out, "chain complete: no");
}

/* ---- show, list, remove, expiry ---- */

Test(keystore, show_prints_every_field)
{
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "qm1", NULL);
	OK();
	HAS(r.out, "label:          qm1\n");
	HAS(r.out, "kind:           personal\n");
	HAS(r.out, "subject:        CN=QM1,OU=Payments,O=Acme,C=GB\n");
	HAS(r.out, "issuer:         CN=Chand Test Intermediate CA,O=Acme,C=GB\n");
	HAS(r.out, "serial:         65\n");  /* 101 */
	HAS(r.out, "not before:     20");
	HAS(r.out, "not after:      20");
	HAS(r.out, "sha256:         ");
	HAS(r.out, "key type:       RSA 2048\n");
	HAS(r.out, "san:            DNS:localhost, IP:127.0.0.1\n");
	HAS(r.out, "chain complete: yes\n");
	cr_assert_null(strstr(r.out, "WARNING"), "%s", r.out);
}

Test(keystore, fingerprint_matches_gnutls)
{
	gnutls_datum_t d;
	gnutls_x509_crt_t crt;
	unsigned char fp[32];
	size_t n = sizeof fp;
	char want[3 * 32], *p = want;
	unsigned i;

	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	cr_assert_eq(gnutls_load_file(P("qm1.pem"), &d), 0);
	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	cr_assert_eq(gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &n), 0);
	for (i = 0; i < 32; i++)
		p += sprintf(p, "%02X%s", fp[i], i < 31 ? ":" : "");
	gnutls_x509_crt_deinit(crt);
	gnutls_free(d.data);
	ks("keystore", "show", "-k", ksp, "qm1", NULL);
	OK();
	HAS(r.out, want);
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
	HAS(r.out, want);
}

Test(keystore, expiry_warnings)
{
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "soon", "--cert", P("expiring.pem"),
	   "--key", P("expiring.key"), NULL);
	OK();
	HAS(r.out, "WARNING: CHD3008 \"soon\" expires in 10 days");
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	cr_assert_null(strstr(r.out, "WARNING"), "%s", r.out);
	ks("keystore", "import", "-k", ksp, "--label", "old", "--cert", P("expired.pem"),
	   "--key", P("expired.key"), NULL);
	OK();
	HAS(r.out, "WARNING: CHD3008 \"old\" expired on 2021-01-01T00:00:00Z");
	ks("keystore", "import", "-k", ksp, "--label", "later", "--cert", P("future.pem"),
	   "--key", P("future.key"), NULL);
	OK();
	HAS(r.out, "\"later\" is not valid before 2090-01-01T00:00:00Z");
	ks("keystore", "show", "-k", ksp, "soon", NULL);
	OK();
	HAS(r.out, "WARNING: CHD3008 \"soon\" expires in 10 days");
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
	HAS(r.out, "WARNING: CHD3008 \"soon\" expires in 10 days");
	HAS(r.out, "WARNING: CHD3008 \"old\" expired on");
	cr_assert_null(strstr(r.out, "\"qm1\" expire"), "%s", r.out);
}

Test(keystore, list_text_and_json)
{
	json_t *j, *e;
	json_error_t je;
	size_t i;
	bool seen_crl = false, seen_qm1 = false;

	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	ks("keystore", "crl", "add", "-k", ksp, "--label", "inter-crl", "--crl", P("inter.crl"),
	   NULL);
	OK();
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
	HAS(r.out, "LABEL");
	HAS(r.out, "SHA-256");
	HAS(r.out, "acme.1");
	HAS(r.out, "qm1 ");
	HAS(r.out, "personal");
	HAS(r.out, "trusted");
	HAS(r.out, "inter-crl");
	ksj("keystore", "list", "-k", ksp, NULL);
	OK();
	j = json_loads(r.out, 0, &je);
	cr_assert_not_null(j, "bad JSON: %s", je.text);
	cr_assert(json_is_array(j));
	cr_assert_eq(json_array_size(j), 4);
	json_array_foreach(j, i, e) {
		const char *label = json_string_value(json_object_get(e, "label"));

		cr_assert_not_null(label);
		cr_assert_not_null(json_string_value(json_object_get(e, "kind")));
		cr_assert_not_null(json_string_value(json_object_get(e, "issuer")));
		cr_assert_not_null(json_string_value(json_object_get(e, "not_after")));
		cr_assert_eq(strlen(json_string_value(json_object_get(e, "sha256"))), 95);
		if (strcmp(label, "qm1") == 0) {
			seen_qm1 = true;
			cr_assert_str_eq(json_string_value(json_object_get(e, "subject")),
			                 "CN=QM1,OU=Payments,O=Acme,C=GB");
			cr_assert_str_eq(json_string_value(json_object_get(e, "kind")), "personal");
		}
		if (strcmp(label, "inter-crl") == 0) {
			seen_crl = true;
			cr_assert_str_eq(json_string_value(json_object_get(e, "kind")), "crl");
		}
	}
	cr_assert(seen_crl && seen_qm1);
	json_decref(j);
}

Test(keystore, remove_entries)
{
	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1-chain.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	ks("keystore", "remove", "-k", ksp, "qm1", NULL);
	OK();
	HAS(r.out, "removed \"qm1\"");
	ks("keystore", "show", "-k", ksp, "qm1", NULL);
	FAILS_WITH("CHD3004");
	ks("keystore", "remove", "-k", ksp, "qm1", NULL);
	FAILS_WITH("CHD3004");
	/* The label is free again, chain rows included. */
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	HAS(r.out, "chain of 0");
}

/* ---- CRLs ---- */

Test(keystore, crl_add_pem_and_der)
{
	gnutls_datum_t pem, der = { NULL, 0 };
	gnutls_x509_crl_t crl;
	FILE *f;

	cr_assert_eq(gnutls_load_file(P("inter.crl"), &pem), 0);
	cr_assert_eq(gnutls_x509_crl_init(&crl), 0);
	cr_assert_eq(gnutls_x509_crl_import(crl, &pem, GNUTLS_X509_FMT_PEM), 0);
	cr_assert_eq(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &der), 0);
	f = fopen(D("inter.der"), "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(der.data, 1, der.size, f), der.size);
	fclose(f);
	gnutls_free(der.data);
	gnutls_free(pem.data);
	gnutls_x509_crl_deinit(crl);

	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "crl", "add", "-k", ksp, "--label", "inter-crl", "--crl", P("inter.crl"), NULL);
	OK();
	ks("keystore", "crl", "add", "-k", ksp, "--label", "inter-der", "--crl", D("inter.der"), NULL);
	OK();
	ks("keystore", "crl", "add", "-k", ksp, "--label", "root-crl", "--crl", P("root.crl"), NULL);
	OK();
	ks("keystore", "show", "-k", ksp, "inter-der", NULL);
	OK();
	HAS(r.out, "kind:           crl");
	HAS(r.out, "issuer:         CN=Chand Test Intermediate CA,O=Acme,C=GB");
	HAS(r.out, "revoked:        1 certificate");
	HAS(r.out, "signed by a trusted CA: yes");
	ks("keystore", "show", "-k", ksp, "root-crl", NULL);
	OK();
	HAS(r.out, "revoked:        0 certificate");
	ks("keystore", "crl", "add", "-k", ksp, "--label", "bad", "--crl", P("qm1.pem"), NULL);
	FAILS_WITH("CHD3007");
	ks("keystore", "remove", "-k", ksp, "inter-der", NULL);
	OK();
	ks("keystore", "crl", "frob", "-k", ksp, NULL);
	cr_assert_eq(r.rc, 2);
}

/* ---- the agent's view ---- */

Test(keystore, material_load_returns_everything)
{
	struct ks_material *m = NULL;
	enum chd_code_id code;
	char err[512];
	size_t i;

	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "acme", "--cert", P("ca-bundle.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1-chain.pem"),
	   "--key", P("qm1.key"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm1ec", "--cert", P("qm1-ec.pem"),
	   "--key", P("qm1-ec.key"), "--chain", P("inter.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--p12", P("qm2.p12"), "--p12-password-file",
	   P("pw.txt"), NULL);
	OK();
	ks("keystore", "crl", "add", "-k", ksp, "--label", "inter-crl", "--crl", P("inter.crl"), NULL);
	OK();
	cr_assert_eq(ks_material_load(ksp, D("key.sth"), &m, &code, err, sizeof err), 0, "%s", err);
	cr_assert_eq(m->npersonal, 3);
	cr_assert_eq(m->ntrusted, 2);
	cr_assert_eq(m->ncrls, 1);
	for (i = 0; i < m->npersonal; i++) {
		cr_assert_not_null(m->personal[i].key);
		cr_assert_eq(m->personal[i].ncerts, 2, "%s", m->personal[i].label);
	}
	cr_assert_not_null(ks_material_find(m, "qm1"));
	cr_assert_not_null(ks_material_find(m, "qm1ec"));
	cr_assert_not_null(ks_material_find(m, "qm2"));
	cr_assert_null(ks_material_find(m, "acme"));
	cr_assert_null(ks_material_find(m, "nope"));
	ks_material_free(m);
	ks_material_free(NULL);
}

Test(keystore, material_load_errors_have_codes)
{
	struct ks_material *m = NULL;
	enum chd_code_id code;
	char err[512];

	cr_assert_eq(ks_material_load(ksp, NULL, &m, &code, err, sizeof err), -1);
	cr_assert_eq(code, CHD_KS_OPEN);
	cr_assert_null(m);

	mk_ks();
	cr_assert_eq(chmod(D("key.sth"), 0604), 0);
	cr_assert_eq(ks_material_load(ksp, NULL, &m, &code, err, sizeof err), -1);
	cr_assert_eq(code, CHD_KS_PERMS);
	cr_assert_not_null(strstr(err, "key.sth"), "%s", err);
	cr_assert_eq(chmod(D("key.sth"), 0600), 0);

	cr_assert_eq(chmod(ksp, 0660), 0);
	cr_assert_eq(ks_material_load(ksp, NULL, &m, &code, err, sizeof err), -1);
	cr_assert_eq(code, CHD_KS_PERMS);
	cr_assert_eq(chmod(ksp, 0600), 0);

	/* A stash holding another keystore's password. */
	{
		char other[PATH_MAX];

		snprintf(other, sizeof other, "%s/other.db", dir);
		write_file(D("other-pw.txt"), "another-password\n", 0600);
		ks("keystore", "create", "-k", other, "--password-file", D("other-pw.txt"), "--stash",
		   NULL);
		OK();
		cr_assert_eq(ks_material_load(ksp, D("other.sth"), &m, &code, err, sizeof err), -1);
		cr_assert_eq(code, CHD_KS_PASSWORD);
		cr_assert_not_null(strstr(err, "wrong password"), "%s", err);
	}
	/* No stash at all. */
	cr_assert_eq(unlink(D("key.sth")), 0);
	cr_assert_eq(ks_material_load(ksp, NULL, &m, &code, err, sizeof err), -1);
	cr_assert_eq(code, CHD_KS_OPEN);
	cr_assert_null(m);
}

Test(keystore, no_secret_in_keystore_file_or_output)
{
	char *db;
	size_t len, i;
	char err[256];
	static const char *const plain[] = { "BEGIN", "passw0rd" };

	mk_ks();
	ks("keystore", "import", "-k", ksp, "--label", "qm2", "--cert", P("qm2.pem"),
	   "--key", P("qm2-aes.key"), "--key-password-file", P("pw.txt"), NULL);
	OK();
	ksj("keystore", "show", "-k", ksp, "qm2", NULL);
	OK();
	ks("keystore", "list", "-k", ksp, NULL);
	OK();
	/* The file holds the key only encrypted: no PEM, no password, and not
	 * the plain PKCS#8 DER of qm2.key. */
	db = file_read_all(ksp, 1 << 22, &len, err, sizeof err);
	cr_assert_not_null(db, "%s", err);
	for (i = 0; i < sizeof plain / sizeof plain[0]; i++)
		cr_assert_null(memmem(db, len, plain[i], strlen(plain[i])), "%s in keystore", plain[i]);
	{
		gnutls_datum_t k;
		gnutls_x509_privkey_t key;
		gnutls_datum_t der = { NULL, 0 };

		cr_assert_eq(gnutls_load_file(P("qm2.key"), &k), 0);
		cr_assert_eq(gnutls_x509_privkey_init(&key), 0);
		cr_assert_eq(gnutls_x509_privkey_import(key, &k, GNUTLS_X509_FMT_PEM), 0);
		cr_assert_eq(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL,
		                                                 GNUTLS_PKCS_PLAIN, &der), 0);
		/* Any 32-byte window of the plain key would do; take the middle. */
		cr_assert_null(memmem(db, len, der.data + der.size / 2, 32), "plain key in keystore");
		gnutls_free(der.data);
		gnutls_x509_privkey_deinit(key);
		gnutls_free(k.data);
	}
	free(db);
}

/* ---- doc/KEYSTORE.md, replayed: the walkthroughs run the page's openssl
 * and certtool recipes (pass phrases from files instead of prompts) and
 * then its chanctl commands with the same arguments, in the test dir. ---- */

TestSuite(keystore_doc, .init = setup, .fini = teardown, .timeout = 90);

/* Runs a shell line in the test dir; output goes to dir/sh.log. */
static void sh(const char *fmt, ...)
{
	char line[4096], cmd[6144];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } >sh.log 2>&1", dir, line);
	if (system(cmd) != 0) {
		char *log = slurp(D("sh.log"));

		cr_assert_fail("command failed: %s\n%s", line, log);
	}
}

static void doc_begin(void)
{
	cr_assert_eq(chdir(dir), 0);
	write_file(D("ks.pw"), "secret-pass\n", 0600);
	ks("keystore", "create", "-k", "key.db", "--password-file", "ks.pw", "--stash", NULL);
	OK();
	cr_assert_str_eq(r.out, "created keystore key.db\n"
	                        "stashed its password in key.sth (mode 0600)\n");
}

Test(keystore_doc, openssl_one_ca)
{
	sh("printf '%%s\\n' 'ca-pass-phrase' > ca.pw && "
	   "openssl genrsa -aes256 -passout file:ca.pw -out ca.key 2048 && "
	   "openssl req -new -x509 -days 3650 -extensions v3_ca -key ca.key -passin file:ca.pw "
	   "-out ca.pem -subj '/C=GB/O=Acme/CN=Acme CA' && "
	   "printf '%%s\\n' 'the server.key pass phrase' > server.pw && chmod 600 server.pw && "
	   "openssl genrsa -aes256 -passout file:server.pw -out server.key 2048 && "
	   "openssl req -out server.csr -key server.key -passin file:server.pw -new "
	   "-subj '/C=GB/O=Acme/OU=Payments/CN=QM1' && "
	   "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -passin file:ca.pw "
	   "-CAcreateserial -out server.pem -days 3650");
	doc_begin();
	ks("keystore", "trust", "-k", "key.db", "--label", "acme-root", "--cert", "ca.pem", NULL);
	OK();
	cr_assert_str_eq(r.out, "trusted CA certificate \"acme-root\": CN=Acme CA,O=Acme,C=GB\n");
	ks("keystore", "import", "-k", "key.db", "--label", "qm1", "--cert", "server.pem",
	   "--key", "server.key", "--key-password-file", "server.pw", NULL);
	OK();
	cr_assert_str_eq(r.out, "imported personal certificate \"qm1\": "
	                        "CN=QM1,OU=Payments,O=Acme,C=GB (with private key, chain of 0)\n");
	ks("keystore", "show", "-k", "key.db", "qm1", NULL);
	OK();
	HAS(r.out, "label:          qm1\n");
	HAS(r.out, "issuer:         CN=Acme CA,O=Acme,C=GB\n");
	HAS(r.out, "key type:       RSA 2048\n");
	HAS(r.out, "san:            (none)\n");
	HAS(r.out, "private key:    yes (PKCS#8 PBES2 AES-256)\n");
	HAS(r.out, "chain:          (none)\n");
	HAS(r.out, "chain complete: yes\n");
	ks("keystore", "stash", "-k", "key.db", "--password-file", "ks.pw", NULL);
	OK();
	cr_assert_str_eq(r.out, "stashed the password of key.db in key.sth (mode 0600)\n");
	ks("keystore", "list", "-k", "key.db", NULL);
	OK();
	HAS(r.out, "acme-root  trusted ");
	HAS(r.out, "qm1        personal  CN=QM1,OU=Payments,O=Acme,C=GB");
	ksj("keystore", "list", "-k", "key.db", NULL);
	OK();
	HAS(r.out, "[{\"label\":\"acme-root\",\"kind\":\"trusted\"");
	HAS(r.out, "\"chain_length\":0,\"warnings\":[]}");
	ks("keystore", "remove", "-k", "key.db", "qm1", NULL);
	OK();
	cr_assert_str_eq(r.out, "removed \"qm1\" from key.db\n");
	ks("keystore", "remove", "-k", "key.db", "qm1", NULL);
	FAILS_WITH("CHD3004 no entry labelled qm1 in key.db");
}

Test(keystore_doc, root_and_intermediate)
{
	sh("mkdir -p ca && printf '%%s\\n' 'root-pass-phrase' > ca/ca.pw && "
	   "openssl genrsa -des3 -passout file:ca/ca.pw -out ca/ca.key 2048 && "
	   "openssl req -new -x509 -key ca/ca.key -passin file:ca/ca.pw -days 3650 -out ca/ca.crt "
	   "-subj '/C=GB/O=Acme/OU=CA/CN=Acme Root' && "
	   "openssl genrsa -out server-ca.key 2048 && "
	   "openssl req -new -key server-ca.key -out server-ca.csr "
	   "-subj '/C=GB/O=Acme/OU=CA/CN=Acme Server CA' && "
	   "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' "
	   "> ca.ext && "
	   "openssl x509 -req -in server-ca.csr -CA ca/ca.crt -CAkey ca/ca.key -passin file:ca/ca.pw "
	   "-CAcreateserial -extfile ca.ext -out server-ca.crt -days 3650 && "
	   "printf '%%s\\n' 'qm1-pass-phrase' > qm1.pw && chmod 600 qm1.pw && "
	   "openssl genrsa -aes256 -passout file:qm1.pw -out qm1.key 2048 && "
	   "openssl req -new -key qm1.key -passin file:qm1.pw -out qm1.csr "
	   "-subj '/C=GB/O=Acme/OU=Payments/CN=QM1' && "
	   "openssl x509 -req -in qm1.csr -CA server-ca.crt -CAkey server-ca.key -CAcreateserial "
	   "-out qm1.crt -days 825 && cat ca/ca.crt server-ca.crt > ca-bundle.pem");
	doc_begin();
	ks("keystore", "trust", "-k", "key.db", "--label", "root", "--cert", "ca/ca.crt", NULL);
	OK();
	ks("keystore", "import", "-k", "key.db", "--label", "qm1", "--cert", "qm1.crt", "--key",
	   "qm1.key", "--key-password-file", "qm1.pw", "--chain", "server-ca.crt", NULL);
	OK();
	HAS(r.out, "(with private key, chain of 1)");
	cr_assert_null(strstr(r.out, "WARNING"), "%s", r.out);
	ks("keystore", "show", "-k", "key.db", "qm1", NULL);
	OK();
	HAS(r.out, "chain[1]:       CN=Acme Server CA,OU=CA,O=Acme,C=GB\n");
	HAS(r.out, "chain complete: yes\n");
	ks("keystore", "trust", "-k", "key.db", "--label", "acme", "--cert", "ca-bundle.pem", NULL);
	OK();
	cr_assert_str_eq(r.out,
	                 "trusted CA certificate \"acme\": CN=Acme Root,OU=CA,O=Acme,C=GB\n"
	                 "trusted CA certificate \"acme.1\": CN=Acme Server CA,OU=CA,O=Acme,C=GB\n");
}

Test(keystore_doc, certtool_pem_p12_and_crl)
{
	write_file(D("ca.tmpl"), "cn = \"Acme CA\"\norganization = \"Acme\"\ncountry = GB\nca\n"
	           "cert_signing_key\ncrl_signing_key\nexpiration_days = 3650\n", 0600);
	write_file(D("qm1.tmpl"), "cn = \"QM1\"\nunit = \"Payments\"\norganization = \"Acme\"\n"
	           "country = GB\ntls_www_server\ntls_www_client\nsigning_key\nencryption_key\n"
	           "dns_name = \"localhost\"\nexpiration_days = 825\n", 0600);
	write_file(D("crl.tmpl"), "crl_next_update = 30\ncrl_number = 1\n", 0600);
	write_file(D("p12.pw"), "p12-pass-phrase\n", 0600);
	sh("certtool --generate-privkey --outfile ca.key && "
	   "certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem && "
	   "certtool --generate-privkey --key-type ecdsa --outfile qm1.key && "
	   "certtool --generate-certificate --load-privkey qm1.key --load-ca-certificate ca.pem "
	   "--load-ca-privkey ca.key --template qm1.tmpl --outfile qm1.pem && "
	   "certtool --to-p12 --load-privkey qm1.key --load-certificate qm1.pem --p12-name qm1 "
	   "--outfile qm1.p12 --outder --password p12-pass-phrase && "
	   "certtool --generate-privkey --outfile revoked.key && "
	   "certtool --generate-certificate --load-privkey revoked.key --load-ca-certificate ca.pem "
	   "--load-ca-privkey ca.key --template qm1.tmpl --outfile revoked.pem && "
	   "certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.pem "
	   "--load-certificate revoked.pem --template crl.tmpl --outfile acme.crl");
	doc_begin();
	ks("keystore", "trust", "-k", "key.db", "--label", "acme-root", "--cert", "ca.pem", NULL);
	OK();
	ks("keystore", "import", "-k", "key.db", "--label", "qm1", "--cert", "qm1.pem", "--key",
	   "qm1.key", NULL);
	OK();
	ks("keystore", "show", "-k", "key.db", "qm1", NULL);
	OK();
	HAS(r.out, "key type:       EC P-256\n");
	HAS(r.out, "chain complete: yes\n");
	ks("keystore", "remove", "-k", "key.db", "qm1", NULL);
	OK();
	ks("keystore", "import", "-k", "key.db", "--p12", "qm1.p12", "--p12-password-file", "p12.pw",
	   NULL);
	OK();
	HAS(r.out, "imported personal certificate \"qm1\": CN=QM1,OU=Payments,O=Acme,C=GB");
	ks("keystore", "show", "-k", "key.db", "qm1", NULL);
	OK();
	HAS(r.out, "key type:       EC P-256\n");
	HAS(r.out, "chain complete: yes\n");
	ks("keystore", "crl", "add", "-k", "key.db", "--label", "acme-crl", "--crl", "acme.crl", NULL);
	OK();
	cr_assert_str_eq(r.out, "added CRL \"acme-crl\"\n");
	ks("keystore", "show", "-k", "key.db", "acme-crl", NULL);
	OK();
	HAS(r.out, "issuer:         CN=Acme CA,O=Acme,C=GB\n");
	HAS(r.out, "revoked:        1 certificate(s)\n");
	HAS(r.out, "signed by a trusted CA: yes\n");
	check_key_roundtrip_at("key.db", "qm1");
}

/* `create` with no password file prompts twice on the terminal, echo off.
 * The child gets a pseudo-terminal as its controlling terminal. */
static void pty_create(const char *first, const char *second, int *rc, char *transcript,
                       size_t tlen)
{
	int m, status;
	pid_t pid;
	char *name;
	size_t got = 0;
	int step = 0;

	m = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert(m >= 0);
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	name = ptsname(m);
	cr_assert_not_null(name);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "keystore", "create", "-k", ksp, "--stash", NULL };
		int s, out;

		setsid();
		s = open(name, O_RDWR);          /* becomes the controlling terminal */
		out = open(D("child.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (s < 0 || out < 0)
			_exit(99);
		dup2(out, 1);
		dup2(out, 2);
		_exit(ks_cli_main(5, argv, NULL, false));
	}
	transcript[0] = '\0';
	for (;;) {
		struct pollfd pfd = { m, POLLIN, 0 };
		ssize_t n;

		cr_assert(poll(&pfd, 1, 20000) > 0, "no prompt; got: %s", transcript);
		n = read(m, transcript + got, tlen - 1 - got);
		if (n <= 0)
			break;          /* EIO: the child closed the terminal */
		got += (size_t)n;
		transcript[got] = '\0';
		if (step == 0 && strstr(transcript, "New keystore password: ")) {
			cr_assert_eq(write(m, first, strlen(first)), (ssize_t)strlen(first));
			step = 1;
		}
		if (step == 1 && strstr(transcript, "Repeat the password: ")) {
			cr_assert_eq(write(m, second, strlen(second)), (ssize_t)strlen(second));
			step = 2;
		}
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	close(m);
	cr_assert(WIFEXITED(status));
	*rc = WEXITSTATUS(status);
}

Test(keystore_doc, create_prompts_with_echo_off)
{
	char transcript[4096];
	char *out;
	int rc;

	pty_create(PW "\n", PW "\n", &rc, transcript, sizeof transcript);
	out = slurp(D("child.out"));
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_null(strstr(transcript, PW), "password echoed: %s", transcript);
	HAS(transcript, "New keystore password: ");
	HAS(transcript, "Repeat the password: ");
	HAS(out, "created keystore");
	HAS(out, "stashed its password");
	free(out);
	cr_assert_eq(mode_of(ksp), 0600);
	ks("keystore", "list", "-k", ksp, "--password-file", P("pw.txt"), NULL);
	OK();
}

Test(keystore_doc, create_prompt_mismatch)
{
	char transcript[4096];
	char *out;
	int rc;

	pty_create(PW "\n", "something-else\n", &rc, transcript, sizeof transcript);
	out = slurp(D("child.out"));
	cr_assert_neq(rc, 0);
	HAS(out, "the passwords differ");
	free(out);
	cr_assert_neq(access(ksp, F_OK), 0, "keystore created despite the mismatch");
}

Test(keystore_doc, p12_without_mac_or_password)
{
	cr_assert_eq(chdir(dir), 0);
	sh("openssl pkcs12 -export -name nomac -in '%s' -inkey '%s' -nomac -passout file:'%s' "
	   "-out nomac.p12 && "
	   "openssl pkcs12 -export -name nopw -in '%s' -inkey '%s' -certfile '%s' -passout pass: "
	   "-out nopw.p12", P("qm1.pem"), P("qm1.key"), P("pw.txt"), P("qm2.pem"), P("qm2.key"),
	   P("inter.pem"));
	mk_ks();
	write_file(D("wrong.txt"), "wrong-one\n", 0600);
	ks("keystore", "import", "-k", ksp, "--p12", "nomac.p12", NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "--p12-password-file");
	ks("keystore", "import", "-k", ksp, "--p12", "nomac.p12", "--p12-password-file", "wrong.txt",
	   NULL);
	FAILS_WITH("CHD3006");
	HAS(r.err, "wrong password for PKCS#12");
	ks("keystore", "import", "-k", ksp, "--p12", "nomac.p12", "--p12-password-file", P("pw.txt"),
	   NULL);
	OK();
	check_key_roundtrip("nomac", 1);
	/* An empty PKCS#12 password needs no password file. */
	ks("keystore", "import", "-k", ksp, "--p12", "nopw.p12", NULL);
	OK();
	check_key_roundtrip("nopw", 2);
}

/* Every keystore subcommand answers --help: its usage on stdout, exit 0. */
Test(keystore, every_subcommand_answers_help)
{
	static const char *const cmds[][2] = { { "create", NULL }, { "import", NULL },
		{ "trust", NULL }, { "list", NULL }, { "show", NULL }, { "remove", NULL },
		{ "stash", NULL }, { "crl", "add" } };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (cmds[i][1] != NULL)
			ks("keystore", cmds[i][0], cmds[i][1], "--help", NULL);
		else
			ks("keystore", cmds[i][0], "--help", NULL);
		cr_assert_eq(r.rc, 0, "keystore %s --help: exit %d: %s", cmds[i][0], r.rc, r.err);
		HAS(r.out, "usage: chanctl keystore");
		HAS(r.out, cmds[i][0]);
	}
}

/* ---- Warnings at define time (issue 12 item 5): one line on stderr,
 * the command still succeeds. ---- */

TestSuite(keystore_warn, .init = setup, .fini = teardown, .timeout = 90);

#define ONE_LINE(s) cr_assert(strchr((s), '\n') == (s) + strlen(s) - 1, "not one line: %s", (s))

Test(keystore_warn, removing_the_last_trusted_ca)
{
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "root", "--cert", P("root.pem"), NULL);
	OK();
	ks("keystore", "trust", "-k", ksp, "--label", "inter", "--cert", P("inter.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "qm1", "--cert", P("qm1.pem"), "--key",
	   P("qm1.key"), NULL);
	OK();
	/* A personal entry or a CA with another left: no warning. */
	ks("keystore", "remove", "-k", ksp, "qm1", NULL);
	OK();
	cr_expect_str_empty(r.err);
	ks("keystore", "remove", "-k", ksp, "inter", NULL);
	OK();
	cr_expect_str_empty(r.err);
	/* The last one: removed, and said what it means. */
	ks("keystore", "remove", "-k", ksp, "root", NULL);
	OK();
	HAS(r.out, "removed \"root\"");
	HAS(r.err, "chanctl keystore remove: warning: ");
	HAS(r.err, "trusts no CA certificate");
	HAS(r.err, "chanctl keystore trust");
	ONE_LINE(r.err);
	ks("keystore", "show", "-k", ksp, "root", NULL);
	FAILS_WITH("CHD3004");
}

/* An intermediate signed without the CA extensions (openssl x509 -req
 * without -extfile, the usual slip) is imported with its leaf, with the
 * recipe to re-sign it; one signed with -extensions v3_ca is not flagged. */
Test(keystore_warn, chain_intermediate_that_is_not_a_ca)
{
	sh("openssl req -new -newkey rsa:2048 -nodes -keyout bad.key -subj '/CN=Bad Intermediate' "
	   "-out bad.csr && "
	   "openssl x509 -req -in bad.csr -CA '%s' -CAkey '%s' -set_serial 77 -days 30 "
	   "-out bad.pem && "
	   "openssl req -new -newkey rsa:2048 -nodes -keyout leaf.key -subj '/CN=LEAF' "
	   "-out leaf.csr && "
	   "openssl x509 -req -in leaf.csr -CA bad.pem -CAkey bad.key -set_serial 78 -days 30 "
	   "-out leaf.pem && "
	   "openssl x509 -req -in bad.csr -CA '%s' -CAkey '%s' -set_serial 79 -days 30 "
	   "-extfile /etc/ssl/openssl.cnf -extensions v3_ca -out good.pem && "
	   "printf 'basicConstraints = CA:FALSE\\n' > noca.ext && "
	   "openssl x509 -req -in bad.csr -CA '%s' -CAkey '%s' -set_serial 81 -days 30 "
	   "-extfile noca.ext -out noca.pem",
	   P("root.pem"), P("root.key"), P("root.pem"), P("root.key"), P("root.pem"), P("root.key"));
	cr_assert_eq(chdir(dir), 0);
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "root", "--cert", P("root.pem"), NULL);
	OK();
	ks("keystore", "import", "-k", ksp, "--label", "leaf", "--cert", "leaf.pem", "--key",
	   "leaf.key", "--chain", "bad.pem", NULL);
	OK();
	HAS(r.out, "chain of 1");
	HAS(r.err, "chanctl keystore import: warning: chain certificate 1 of \"leaf\": "
	           "CN=Bad Intermediate is a version 1 certificate");
	HAS(r.err, "-extfile /etc/ssl/openssl.cnf -extensions v3_ca");
	ONE_LINE(r.err);
	/* Re-signed as the warning says: the same chain imports quietly. */
	ks("keystore", "import", "-k", ksp, "--label", "leaf2", "--cert", "leaf.pem", "--key",
	   "leaf.key", "--chain", "good.pem", NULL);
	OK();
	cr_expect_str_empty(r.err);
	/* An explicit CA:FALSE intermediate: the same warning. */
	ks("keystore", "import", "-k", ksp, "--label", "leaf3", "--cert", "leaf.pem", "--key",
	   "leaf.key", "--chain", "noca.pem", NULL);
	OK();
	HAS(r.err, "CN=Bad Intermediate is not a CA certificate (basicConstraints CA:FALSE)");
	HAS(r.err, "-extensions v3_ca");
	ONE_LINE(r.err);
	/* trust refuses a CA:FALSE certificate outright, with the same recipe. */
	ks("keystore", "trust", "-k", ksp, "--label", "bad", "--cert", "noca.pem", NULL);
	FAILS_WITH("not a CA certificate");
	HAS(r.err, "-extensions v3_ca");
}

/* CA:TRUE but a keyUsage without keyCertSign: nothing it signs verifies. */
Test(keystore_warn, ca_without_keycertsign)
{
	write_file(D("ext.cnf"), "[ ca_nosign ]\nbasicConstraints = critical, CA:TRUE\n"
	           "keyUsage = critical, digitalSignature\n", 0644);
	sh("openssl req -new -newkey rsa:2048 -nodes -keyout ns.key -subj '/CN=No Sign CA' "
	   "-out ns.csr && "
	   "openssl x509 -req -in ns.csr -CA '%s' -CAkey '%s' -set_serial 80 -days 30 "
	   "-extfile ext.cnf -extensions ca_nosign -out ns.pem && "
	   "openssl x509 -req -in ns.csr -CA '%s' -CAkey '%s' -set_serial 82 -days 30 -out v1.pem",
	   P("root.pem"), P("root.key"), P("root.pem"), P("root.key"));
	mk_ks();
	ks("keystore", "trust", "-k", ksp, "--label", "ns", "--cert", D("ns.pem"), NULL);
	OK();
	HAS(r.out, "trusted CA certificate \"ns\"");
	HAS(r.err, "chanctl keystore trust: warning: ");
	HAS(r.err, "keyUsage lacks keyCertSign");
	HAS(r.err, "-extensions v3_ca");
	ONE_LINE(r.err);
	/* The library's verdict, directly. */
	{
		gnutls_x509_crt_t *c = NULL;
		unsigned n = 0;
		char err[256], why[512];

		cr_assert_eq(ks_certs_load(D("ns.pem"), &c, &n, err, sizeof err), 0, "%s", err);
		cr_expect(ks_crt_is_ca(c[0], why, sizeof why));
		cr_expect_not(ks_crt_can_sign(c[0], false, why, sizeof why));
		ks_certs_free(c, n);
		cr_assert_eq(ks_certs_load(P("inter.pem"), &c, &n, err, sizeof err), 0, "%s", err);
		cr_expect(ks_crt_can_sign(c[0], true, why, sizeof why), "%s", why);
		ks_certs_free(c, n);
		cr_assert_eq(ks_certs_load(P("qm1.pem"), &c, &n, err, sizeof err), 0, "%s", err);
		cr_expect_not(ks_crt_can_sign(c[0], false, why, sizeof why));
		ks_certs_free(c, n);
		/* A version 1 CA: a root, not an intermediate. */
		cr_assert_eq(ks_certs_load(D("v1.pem"), &c, &n, err, sizeof err), 0, "%s", err);
		cr_expect(ks_crt_can_sign(c[0], false, why, sizeof why), "%s", why);
		cr_expect_not(ks_crt_can_sign(c[0], true, why, sizeof why));
		ks_certs_free(c, n);
	}
}
