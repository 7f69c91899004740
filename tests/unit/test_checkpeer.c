/* chanctl check-peer: real certificates made by openssl/certtool in a temp
 * dir, the entry point called in-process with stdout/stderr captured. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chand/ctlcmd.h"
#include "chand/dnfilter.h"

static char tmpdir[64];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

static void setup(void)
{
	strcpy(tmpdir, "/tmp/chand-checkpeer-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];

	if (tmpdir[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
}

TestSuite(check_peer, .init = setup, .fini = teardown, .timeout = 60);

/* Self-signed EC certificate with the given openssl -subj, into DIR/NAME.pem. */
static void mkcert(const char *name, const char *subj, const char *serial)
{
	sh("cd '%s' && openssl req -x509 -utf8 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	   "-nodes -days 2 -subj '%s' %s%s -keyout %s.key -out %s.pem 2>/dev/null",
	   tmpdir, subj, serial ? "-set_serial " : "", serial ? serial : "", name, name);
}

struct run {
	int rc;
	char out[2048];
	char err[2048];
};

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* Runs dnf_cli_check_peer with argv (NULL-terminated), capturing output. */
static void run_argv(struct run *r, char **argv)
{
	char po[128], pe[128];
	int argc = 0, fo, fe, so, se;

	while (argv[argc] != NULL)
		argc++;
	snprintf(po, sizeof po, "%s/out", tmpdir);
	snprintf(pe, sizeof pe, "%s/err", tmpdir);
	fo = open(po, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fe = open(pe, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fo >= 0 && fe >= 0);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fo, 1);
	dup2(fe, 2);
	r->rc = dnf_cli_check_peer(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, r->out, sizeof r->out);
	slurp(fe, r->err, sizeof r->err);
	close(fo);
	close(fe);
}

static void run(struct run *r, const char *filter, const char *certname)
{
	char path[256];
	char *argv[] = { "check-peer", "--sslpeer", (char *)filter, "--cert", path, NULL };

	snprintf(path, sizeof path, "%s/%s", tmpdir, certname);
	run_argv(r, argv);
}

Test(check_peer, design_multi_ou_example)
{
	struct run r;

	mkcert("qm2", "/O=Acme/OU=Sales/OU=EMEA/CN=QM2", NULL);

	run(&r, "OU=Sales, OU=EMEA", "qm2.pem");
	cr_expect_eq(r.rc, 0);
	cr_expect_str_eq(r.out, "match\n");
	cr_expect_str_eq(r.err, "");

	run(&r, "OU=Sales", "qm2.pem");
	cr_expect_eq(r.rc, 0);
	cr_expect_str_eq(r.out, "match\n");

	run(&r, "OU=EMEA, OU=Sales", "qm2.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=QM2,OU=EMEA,OU=Sales,O=Acme': "
	                        "OU=EMEA does not match OU=Sales (OU 1)\n");

	run(&r, "OU=EMEA", "qm2.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=QM2,OU=EMEA,OU=Sales,O=Acme': "
	                        "OU=EMEA does not match OU=Sales (OU 1)\n");

	run(&r, "CN=QM2, OU=Sales, O=Acme", "qm2.pem");
	cr_expect_eq(r.rc, 0);

	run(&r, "CN=QM2, C=GB", "qm2.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=QM2,OU=EMEA,OU=Sales,O=Acme': "
	                        "certificate has no C\n");
}

Test(check_peer, filter_error_with_position)
{
	struct run r;

	mkcert("qm2", "/O=Acme/CN=QM2", NULL);
	run(&r, "CN=QM2, FOO=x", "qm2.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect_str_eq(r.err, "error: SSLPEER position 9: unknown attribute 'FOO'\n");

	run(&r, "CN =QM2", "qm2.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect_str_eq(r.err, "error: SSLPEER position 3: space before '='\n");

	/* The filter is checked before the certificate is read. */
	run(&r, "CN=\"QM2", "missing.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect_str_eq(r.err, "error: SSLPEER position 4: unterminated quote\n");
}

Test(check_peer, der_certificate)
{
	struct run r;

	mkcert("qm2", "/C=GB/O=Acme/OU=Payments/CN=QM2", NULL);
	sh("cd '%s' && openssl x509 -in qm2.pem -outform DER -out qm2.der", tmpdir);
	run(&r, "CN=QM2, OU=Payments, O=Acme, C=GB", "qm2.der");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "match\n");
}

Test(check_peer, certtool_certificate_and_text_before_pem)
{
	struct run r;

	sh("cd '%s' && certtool --generate-privkey --key-type=ecdsa --outfile ct.key 2>/dev/null "
	   "&& printf 'organization = \"Acme, Inc.\"\\nunit = \"Sales\"\\ncn = \"QM7\"\\n"
	   "serial = 0x01ff\\nexpiration_days = 2\\n' > ct.tmpl "
	   "&& certtool --generate-self-signed --load-privkey ct.key --template ct.tmpl "
	   "--outfile ct.pem 2>/dev/null && certtool -i --infile ct.pem > ct.txt 2>/dev/null",
	   tmpdir);
	run(&r, "O=\"Acme, Inc.\", CN=qm7, SERIALNUMBER=01:FF", "ct.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	/* certtool -i prints text, then the PEM: still readable. */
	run(&r, "O=Acme\\, Inc., OU=Sales, SERIALNUMBER=1ff", "ct.txt");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "SERIALNUMBER=02FF", "ct.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=QM7,OU=Sales,O=Acme\\, Inc.': "
	                        "SERIALNUMBER=2FF does not match the certificate serial number 1FF\n");
}

Test(check_peer, utf8_subject_and_serial)
{
	struct run r;

	mkcert("jp", "/O=Société/CN=日本", "0x4CD049D5025F38");
	run(&r, "O=société, CN=日本", "jp.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "CN=日*, SERIALNUMBER=4C:D0:49:D5:02:5F:38", "jp.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "O=SOCIÉTÉ", "jp.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=日本,O=Société': O=SOCIÉTÉ does not "
	                        "match O=Société\n");
}

Test(check_peer, multi_dc_and_uid)
{
	struct run r;

	mkcert("dc", "/DC=com/DC=acme/UID=qm9/CN=QM9", NULL);
	run(&r, "DC=com, DC=acme, USERID=QM9", "dc.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "DC=acme", "dc.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect(strstr(r.out, "DC=acme does not match DC=com (DC 1)") != NULL, "%s", r.out);
}

Test(check_peer, bad_certificate_files)
{
	struct run r;

	run(&r, "CN=x", "nothere.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect(strncmp(r.err, "error: cannot open ", 19) == 0, "%s", r.err);
	cr_expect_str_eq(r.out, "");

	sh("printf 'hello' > '%s/junk.pem'", tmpdir);
	run(&r, "CN=x", "junk.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "is not a PEM or DER X.509 certificate") != NULL, "%s", r.err);

	sh("printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n' "
	   "> '%s/broken.pem'", tmpdir);
	run(&r, "CN=x", "broken.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "is not a PEM or DER X.509 certificate") != NULL, "%s", r.err);

	sh(": > '%s/empty.pem'", tmpdir);
	run(&r, "CN=x", "empty.pem");
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "is empty") != NULL, "%s", r.err);

	run(&r, "CN=x", "");
	cr_expect_eq(r.rc, 2);
	/* Every error is one line. */
	cr_expect_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "%s", r.err);
}

Test(check_peer, usage_errors)
{
	struct run r;
	char *noargs[] = { "check-peer", NULL };
	char *nocert[] = { "check-peer", "--sslpeer", "CN=x", NULL };
	char *novalue[] = { "check-peer", "--cert", "x.pem", "--sslpeer", NULL };
	char *extra[] = { "check-peer", "--sslpeer", "CN=x", "--cert", "x.pem", "more", NULL };
	char *help[] = { "check-peer", "--help", NULL };

	run_argv(&r, noargs);
	cr_expect_eq(r.rc, 2);
	cr_expect_str_eq(r.err, "error: check-peer needs --sslpeer FILTER and --cert FILE\n");
	run_argv(&r, nocert);
	cr_expect_eq(r.rc, 2);
	run_argv(&r, novalue);
	cr_expect_eq(r.rc, 2);
	cr_expect_str_eq(r.err, "error: --sslpeer needs a value\n");
	run_argv(&r, extra);
	cr_expect_eq(r.rc, 2);
	cr_expect(strstr(r.err, "unexpected argument 'more'") != NULL, "%s", r.err);
	run_argv(&r, help);
	cr_expect_eq(r.rc, 0);
	cr_expect(strncmp(r.out, "usage: chanctl check-peer", 25) == 0, "%s", r.out);
}

Test(check_peer, equals_form_of_options)
{
	struct run r;
	char cert[256];
	char *argv[] = { "check-peer", "--sslpeer=CN=QM2,O=Acme", cert, NULL };

	mkcert("qm2", "/O=Acme/CN=QM2", NULL);
	snprintf(cert, sizeof cert, "--cert=%s/qm2.pem", tmpdir);
	run_argv(&r, argv);
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	cr_expect_str_eq(r.out, "match\n");
}

Test(check_peer, bmpstring_and_multivalued_rdn)
{
	struct run r;

	/* string_mask = pkix makes openssl encode non-ASCII values as BMPString. */
	sh("cd '%s' && printf '[req]\\ndistinguished_name = dn\\nstring_mask = pkix\\n"
	   "prompt = no\\nutf8 = yes\\n[dn]\\nO = Société\\nCN = QM2\\n' > bmp.cnf && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
	   "-config bmp.cnf -keyout bmp.key -out bmp.pem 2>/dev/null && "
	   "openssl asn1parse -in bmp.pem | grep -q BMPSTRING", tmpdir);
	run(&r, "O=Société, CN=QM2", "bmp.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "O=Societe", "bmp.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect(strstr(r.out, "O=Societe does not match O=Société") != NULL, "%s", r.out);

	sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	   "-days 2 -multivalue-rdn -subj '/O=Acme/CN=QM2+UID=qm2user' -keyout mv.key "
	   "-out mv.pem 2>/dev/null", tmpdir);
	run(&r, "UID=qm2user, CN=QM2, O=Acme", "mv.pem");
	cr_expect_eq(r.rc, 0, "%s%s", r.out, r.err);
	run(&r, "UID=other", "mv.pem");
	cr_expect_eq(r.rc, 1);
	cr_expect_str_eq(r.out, "no match: peer DN 'CN=QM2+UID=qm2user,O=Acme': UID=other does "
	                        "not match UID=qm2user\n");
}

/* ---- every example of doc/SSLPEER.md, on real certificates ---- */

#define DOC_MAX_ROWS 64

struct doc_row {
	char col[3][1200];
	int ncol;
};

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

Test(check_peer, doc_examples_on_real_certificates)
{
	static struct doc_row rows[DOC_MAX_ROWS];
	static char subjects[DOC_MAX_ROWS][1200];
	int n = doc_rows("<!-- sslpeer-examples -->", rows), nsub = 0;
	struct run r;

	cr_assert_geq(n, 20);
	for (int i = 0; i < n; i++) {
		char name[32], file[48];
		int k;

		/* One certificate per distinct subject. */
		for (k = 0; k < nsub && strcmp(subjects[k], rows[i].col[1]) != 0; k++)
			;
		snprintf(name, sizeof name, "doc%d", k);
		if (k == nsub) {
			strcpy(subjects[nsub++], rows[i].col[1]);
			mkcert(name, rows[i].col[1], "0x4CD049D5025F38");
		}
		snprintf(file, sizeof file, "%s.pem", name);
		run(&r, rows[i].col[0], file);
		if (strcmp(rows[i].col[2], "match") == 0) {
			cr_expect_eq(r.rc, 0, "[%s] on [%s]: %s%s", rows[i].col[0], rows[i].col[1],
			             r.out, r.err);
			cr_expect_str_eq(r.out, "match\n");
		} else {
			/* "no match: peer DN '...': " + the doc's reason. */
			const char *reason = rows[i].col[2] + strlen("no match: ");
			char *tail = strstr(r.out, "': ");

			cr_expect_eq(r.rc, 1, "[%s] on [%s]: %s%s", rows[i].col[0], rows[i].col[1],
			             r.out, r.err);
			cr_expect(strncmp(r.out, "no match: peer DN '", 19) == 0, "%s", r.out);
			cr_assert_not_null(tail, "%s", r.out);
			tail[strlen(tail) - 1] = '\0';
			cr_expect_str_eq(tail + 3, reason, "[%s] on [%s]", rows[i].col[0],
			                 rows[i].col[1]);
		}
	}
}

Test(check_peer, doc_errors)
{
	static struct doc_row rows[DOC_MAX_ROWS];
	int n = doc_rows("<!-- sslpeer-errors -->", rows);
	struct run r;

	cr_assert_geq(n, 10);
	mkcert("any", "/CN=QM2", NULL);
	for (int i = 0; i < n; i++) {
		char want[1300];

		run(&r, rows[i].col[0], "any.pem");
		snprintf(want, sizeof want, "%s\n", rows[i].col[1]);
		cr_expect_eq(r.rc, 2, "[%s]", rows[i].col[0]);
		cr_expect_str_eq(r.err, want, "[%s]", rows[i].col[0]);
		cr_expect_str_eq(r.out, "");
	}
}
