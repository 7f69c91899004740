/* MQTT identity: mosquitto password files ($7$ and $6$ hashes made by
 * mosquitto_passwd, see tests/data/mosquitto/README), the secure loader's
 * refusals, and mosquitto ACL files (seed 001's file verbatim, patterns,
 * deny entries, subscriptions). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chand/mqtt_auth.h"

#define DATA TEST_SRCDIR "/tests/data/mosquitto/"

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open fixture %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool pw_ok(const struct mqtt_passwd *pw, const char *user, const char *pass)
{
	return mqtt_passwd_check(pw, user, (const uint8_t *)pass, strlen(pass));
}

static struct mqtt_passwd *pw_fixture(void)
{
	size_t len;
	char *text = slurp(DATA "passwd", &len);
	struct mqtt_passwd *pw = NULL;
	char err[256] = "";

	cr_assert_eq(mqtt_passwd_parse(text, len, "passwd", &pw, err, sizeof(err)), 0, "%s", err);
	free(text);
	return pw;
}

/* Parses text that must fail; checks the error starts with prefix and
 * contains want. */
static void pw_bad(const char *text, const char *prefix, const char *want)
{
	struct mqtt_passwd *pw = (struct mqtt_passwd *)1;
	char err[256] = "";

	cr_assert_eq(mqtt_passwd_parse(text, strlen(text), "t.pw", &pw, err, sizeof(err)), -1,
	             "accepted: %s", text);
	cr_assert_null(pw);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "error '%s' should start '%s'", err,
	          prefix);
	cr_assert_not_null(strstr(err, want), "error '%s' should say '%s'", err, want);
}

static struct mqtt_acl *acl_text(const char *text)
{
	struct mqtt_acl *acl = NULL;
	char err[256] = "";

	cr_assert_eq(mqtt_acl_parse(text, strlen(text), "t.acl", &acl, err, sizeof(err)), 0, "%s",
	             err);
	return acl;
}

static struct mqtt_acl *acl_fixture(const char *file)
{
	char path[512];
	size_t len;
	char *text;
	struct mqtt_acl *acl = NULL;
	char err[256] = "";

	snprintf(path, sizeof(path), DATA "%s", file);
	text = slurp(path, &len);
	cr_assert_eq(mqtt_acl_parse(text, len, file, &acl, err, sizeof(err)), 0, "%s", err);
	free(text);
	return acl;
}

static void acl_bad(const char *text, const char *want)
{
	struct mqtt_acl *acl = (struct mqtt_acl *)1;
	char err[256] = "";

	cr_assert_eq(mqtt_acl_parse(text, strlen(text), "t.acl", &acl, err, sizeof(err)), -1,
	             "accepted: %s", text);
	cr_assert_null(acl);
	cr_assert(strcmp(err, want) == 0, "error '%s', expected '%s'", err, want);
}

#define R MQTT_ACL_READ
#define W MQTT_ACL_WRITE
#define S MQTT_ACL_SUBSCRIBE

static void can(const struct mqtt_acl *acl, const char *user, const char *cid, const char *topic,
                enum mqtt_acl_access a, bool want)
{
	bool got = mqtt_acl_check(acl, user, cid, topic, a);
	cr_assert_eq(got, want, "user %s client %s %s '%s': got %s, want %s", user ? user : "(anon)",
	             cid ? cid : "(none)", a == R ? "read" : a == W ? "write" : "subscribe", topic,
	             got ? "allowed" : "refused", want ? "allowed" : "refused");
}

/* A temporary directory for file tests, removed by the caller's rm. */
static char tmpdir[64];

static void mk_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/test_mqtt_auth.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0, "cannot create %s", path);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0); /* explicit: umask does not apply */
	close(fd);
}

/* ---- password file: hashes ---- */

Test(passwd, mosquitto_passwd_fixture_7)
{
	struct mqtt_passwd *pw = pw_fixture();

	cr_assert_eq(mqtt_passwd_count(pw), 6);
	cr_assert(pw_ok(pw, "MyEACM", "eacm-secret"));
	cr_assert(!pw_ok(pw, "MyEACM", "eacm-secreT"));
	cr_assert(!pw_ok(pw, "MyEACM", "eacm-secre"));
	cr_assert(!pw_ok(pw, "MyEACM", ""));
	cr_assert(!pw_ok(pw, "MyEACM", "eacm-secret!"));
	/* (No "eacm-secret\0" case for $7$: HMAC pads short keys with zero
	 * bytes, so PBKDF2 cannot tell; $6$ can, see below.) */
	/* a password with a blank and a ':' */
	cr_assert(pw_ok(pw, "SparkplugViewer", "view er:pw"));
	cr_assert(!pw_ok(pw, "SparkplugViewer", "view er"));
	/* one user's password is not another's */
	cr_assert(!pw_ok(pw, "SparkplugViewer", "eacm-secret"));
	/* $7$ with 1000 iterations and a 64-byte salt */
	cr_assert(pw_ok(pw, "Iter1000", "thousand"));
	cr_assert(!pw_ok(pw, "Iter1000", "thousand "));
	/* empty password, made by mosquitto_passwd */
	cr_assert(mqtt_passwd_check(pw, "empty", NULL, 0));
	cr_assert(pw_ok(pw, "empty", ""));
	cr_assert(!pw_ok(pw, "empty", "x"));
	mqtt_passwd_free(pw);
}

Test(passwd, mosquitto_passwd_fixture_6)
{
	struct mqtt_passwd *pw = pw_fixture();

	/* made by mosquitto_passwd -H sha512 */
	cr_assert(pw_ok(pw, "HMI", "hmi-pass"));
	cr_assert(!pw_ok(pw, "HMI", "hmi-pasS"));
	cr_assert(!pw_ok(pw, "HMI", "hmi"));
	/* every byte counts, even one after what looks like the end */
	cr_assert(!mqtt_passwd_check(pw, "HMI", (const uint8_t *)"hmi-pass\0", 9));
	/* made by our own hashlib script: SHA512(password || salt) */
	cr_assert(pw_ok(pw, "legacy", "old-pass"));
	cr_assert(!pw_ok(pw, "legacy", "old-pas"));
	cr_assert(!pw_ok(pw, "legacy", "saltsaltsaltold-pass"));
	mqtt_passwd_free(pw);
}

Test(passwd, unknown_user)
{
	struct mqtt_passwd *pw = pw_fixture();

	cr_assert(!pw_ok(pw, "nobody", "eacm-secret"));
	cr_assert(!pw_ok(pw, "myeacm", "eacm-secret")); /* case matters */
	cr_assert(!pw_ok(pw, "", ""));
	cr_assert(!mqtt_passwd_check(pw, NULL, (const uint8_t *)"x", 1));
	cr_assert(mqtt_passwd_has_user(pw, "MyEACM"));
	cr_assert(mqtt_passwd_has_user(pw, "legacy"));
	cr_assert(!mqtt_passwd_has_user(pw, "nobody"));
	cr_assert(!mqtt_passwd_has_user(pw, NULL));
	cr_assert(!mqtt_passwd_has_user(NULL, "MyEACM"));
	cr_assert(!pw_ok(NULL, "MyEACM", "eacm-secret"));
	cr_assert_eq(mqtt_passwd_count(NULL), 0);
	mqtt_passwd_free(NULL);
	mqtt_passwd_free(pw);
}

Test(passwd, comments_blanks_crlf)
{
	size_t len;
	char *fx = slurp(DATA "passwd", &len);
	char *text = malloc(2 * len + 256);
	char *o = text;
	struct mqtt_passwd *pw = NULL;
	char err[256] = "";

	o += sprintf(o, "# made by mosquitto_passwd\r\n\r\n   \r\n");
	for (const char *p = fx; *p; p++) {
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	o += sprintf(o, "  # indented comment\n\t\n");
	cr_assert_eq(mqtt_passwd_parse(text, (size_t)(o - text), "crlf", &pw, err, sizeof(err)), 0,
	             "%s", err);
	cr_assert_eq(mqtt_passwd_count(pw), 6);
	cr_assert(pw_ok(pw, "MyEACM", "eacm-secret"));
	cr_assert(pw_ok(pw, "legacy", "old-pass"));
	cr_assert(!pw_ok(pw, "legacy", "old-pass\r"));
	mqtt_passwd_free(pw);
	free(text);
	free(fx);
}

Test(passwd, blanks_around_fields)
{
	/* mosquitto trims blanks around the user name and the hash */
	const char *t = "  HMI : $6$55SUCNTXV6rdoN4Y$OolzXs868FNN7fP4EujA4mKWFJE7N66mtE1Ub8DOjayrL4fPB2L"
	                "wNaNAxb2evdnPWcgH8I9QcO7zZoNCCtTXEw==  \n";
	struct mqtt_passwd *pw = NULL;
	char err[256] = "";

	cr_assert_eq(mqtt_passwd_parse(t, strlen(t), "b", &pw, err, sizeof(err)), 0, "%s", err);
	cr_assert(pw_ok(pw, "HMI", "hmi-pass"));
	cr_assert(!mqtt_passwd_has_user(pw, "  HMI "));
	mqtt_passwd_free(pw);
}

Test(passwd, empty_file)
{
	struct mqtt_passwd *pw = NULL;
	char err[256] = "";

	cr_assert_eq(mqtt_passwd_parse("", 0, "empty", &pw, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(pw);
	cr_assert_eq(mqtt_passwd_count(pw), 0);
	cr_assert(!pw_ok(pw, "MyEACM", "eacm-secret"));
	mqtt_passwd_free(pw);
	cr_assert_eq(mqtt_passwd_parse("# nothing\n\n", 11, "c", &pw, err, sizeof(err)), 0);
	cr_assert_eq(mqtt_passwd_count(pw), 0);
	mqtt_passwd_free(pw);
}

#define H7 "$7$101$b0lsrqgbHLb+vT+x$8Ij1YTZsgc9979JeOcCeMyGbO1V8IrW4a+0ZlIyC0B0zeE/ZO6IUo/N2vlts" \
	"LPnpjzc6k+S+TsZERlhjyQ9g1w=="
#define H6 "$6$55SUCNTXV6rdoN4Y$OolzXs868FNN7fP4EujA4mKWFJE7N66mtE1Ub8DOjayrL4fPB2LwNaNAxb2evdn" \
	"PWcgH8I9QcO7zZoNCCtTXEw=="

Test(passwd, malformed_lines)
{
	pw_bad("a:" H7 "\nnocolon\n", "t.pw:2: ", "expected USER:HASH");
	pw_bad("# c\n:" H6 "\n", "t.pw:2: ", "empty user name");
	pw_bad("u:\n", "t.pw:1: ", "no password hash");
	pw_bad("u:plaintext\n", "t.pw:1: ", "not hashed");
	pw_bad("u:$5$abc$def\n", "t.pw:1: ", "unsupported password hash type '$5$'");
	pw_bad("u:$7$0$b0lsrqgbHLb+vT+x$8Ij1\n", "t.pw:1: ", "iteration count");
	pw_bad("u:$7$abc$b0lsrqgbHLb+vT+x$8Ij1\n", "t.pw:1: ", "iteration count");
	pw_bad("u:$7$99999999999$b0lsrqgbHLb+vT+x$8Ij1\n", "t.pw:1: ", "iteration count");
	pw_bad("u:$7$101$b0lsrqgbHLb+vT+x\n", "t.pw:1: ", "malformed $7$");
	pw_bad("u:$6$55SUCNTXV6rdoN4Y\n", "t.pw:1: ", "malformed $6$");
	pw_bad("u:" H6 "$x\n", "t.pw:1: ", "malformed $6$");
	pw_bad("u:" H7 "$x\n", "t.pw:1: ", "too many");
	pw_bad("u:$6$!!!!$OolzXs868FNN7fP4\n", "t.pw:1: ", "bad password salt");
	pw_bad("u:$6$c2FsdA==$OolzXs868FNN7fP4\n", "t.pw:1: ", "bad password salt"); /* 4 bytes */
	pw_bad("u:$6$55SUCNTXV6rdoN4Y$OolzXs868FNN7fP4\n", "t.pw:1: ", "bad password hash");
	pw_bad("a:" H7 "\nb:" H6 "\r\na:" H6 "\n", "t.pw:3: ", "duplicate user (also on line 1)");
	pw_bad("u\xff:" H6 "\n", "t.pw:1: ", "UTF-8");
	{
		static const char nul[] = "a:" H7 "\nb\0:" H6 "\n";
		struct mqtt_passwd *pw = NULL;
		char err[256] = "";
		cr_assert_eq(mqtt_passwd_parse(nul, sizeof(nul) - 1, "n", &pw, err, sizeof(err)), -1);
		cr_assert_str_eq(err, "n:2: NUL byte in line");
	}
	/* errors never quote the hash */
	{
		struct mqtt_passwd *pw = NULL;
		char err[256] = "";
		const char *t = "u:$6$55SUCNTXV6rdoN4Y$OolzXs868FNN7fP4EujA\n";
		cr_assert_eq(mqtt_passwd_parse(t, strlen(t), "q", &pw, err, sizeof(err)), -1);
		cr_assert_null(strstr(err, "OolzXs"), "%s", err);
		cr_assert_null(strstr(err, "55SUCN"), "%s", err);
	}
}

/* ---- the secure loader ---- */

Test(passwd_load, modes_symlinks_and_kinds, .timeout = 30)
{
	size_t len;
	char *fx = slurp(DATA "passwd", &len);
	char path[128], link[128], err[512];
	struct mqtt_passwd *pw;

	mk_tmpdir();
	snprintf(path, sizeof(path), "%s/passwd", tmpdir);

	write_file(path, fx, len, 0600);
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), 0, "%s", err);
	cr_assert(pw_ok(pw, "MyEACM", "eacm-secret"));
	mqtt_passwd_free(pw);

	write_file(path, fx, len, 0640);
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), 0, "%s", err);
	mqtt_passwd_free(pw);

	/* readable by others: refused, naming the file and the fix (this
	 * holds even for root, which can read anything: it is the mode that
	 * is checked) */
	write_file(path, fx, len, 0644);
	pw = (struct mqtt_passwd *)1;
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), -1);
	cr_assert_null(pw);
	cr_assert_not_null(strstr(err, path), "%s", err);
	cr_assert_not_null(strstr(err, "mode 0644"), "%s", err);
	cr_assert_not_null(strstr(err, "chmod 0600"), "%s", err);
	cr_assert_null(strchr(err, '\n'));

	write_file(path, fx, len, 0602); /* writable by others */
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "chmod 0600"), "%s", err);
	write_file(path, fx, len, 0601);
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), -1);

	/* a symbolic link to a good file is refused */
	write_file(path, fx, len, 0600);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_eq(mqtt_passwd_load(link, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "symbolic link"), "%s", err);
	cr_assert_not_null(strstr(err, link), "%s", err);

	/* a directory, a FIFO (must not block), a missing file */
	cr_assert_eq(mqtt_passwd_load(tmpdir, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
	snprintf(link, sizeof(link), "%s/fifo", tmpdir);
	cr_assert_eq(mkfifo(link, 0600), 0);
	cr_assert_eq(mqtt_passwd_load(link, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
	snprintf(link, sizeof(link), "%s/missing", tmpdir);
	cr_assert_eq(mqtt_passwd_load(link, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "cannot open"), "%s", err);

	/* too large (sparse, so cheap) */
	snprintf(link, sizeof(link), "%s/big", tmpdir);
	write_file(link, "", 0, 0600);
	cr_assert_eq(truncate(link, (off_t)MQTT_AUTH_FILE_MAX + 1), 0);
	cr_assert_eq(mqtt_passwd_load(link, &pw, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "too large"), "%s", err);

	/* content errors name the path and line */
	write_file(path, "a:" H7 "\nbad line\n", strlen("a:" H7 "\nbad line\n"), 0600);
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), -1);
	{
		char want[160];
		snprintf(want, sizeof(want), "%s:2: ", path);
		cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
	}

	/* empty file: loads, nobody can log in */
	write_file(path, "", 0, 0600);
	cr_assert_eq(mqtt_passwd_load(path, &pw, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mqtt_passwd_count(pw), 0);
	mqtt_passwd_free(pw);

	rm_tmpdir();
	free(fx);
}

Test(acl_load, modes_and_symlinks, .timeout = 30)
{
	size_t len;
	char *fx = slurp(DATA "seed001.acl", &len);
	char path[128], link[128], err[512];
	struct mqtt_acl *acl;

	mk_tmpdir();
	snprintf(path, sizeof(path), "%s/acl", tmpdir);
	write_file(path, fx, len, 0644); /* not secret: world-readable is fine */
	cr_assert_eq(mqtt_acl_load(path, &acl, err, sizeof(err)), 0, "%s", err);
	can(acl, "MyEACM", "c", "STATE/x", R, true);
	mqtt_acl_free(acl);

	write_file(path, fx, len, 0646); /* but not writable by others */
	acl = (struct mqtt_acl *)1;
	cr_assert_eq(mqtt_acl_load(path, &acl, err, sizeof(err)), -1);
	cr_assert_null(acl);
	cr_assert_not_null(strstr(err, "others may write"), "%s", err);
	cr_assert_not_null(strstr(err, path), "%s", err);

	write_file(path, fx, len, 0600);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_eq(mqtt_acl_load(link, &acl, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "symbolic link"), "%s", err);

	write_file(path, "user a\ntopic rw x\n", 18, 0600);
	cr_assert_eq(mqtt_acl_load(path, &acl, err, sizeof(err)), -1);
	{
		char want[200];
		snprintf(want, sizeof(want),
		         "%s:2: bad access 'rw' (expected read, write, readwrite or deny)", path);
		cr_assert_str_eq(err, want);
	}
	rm_tmpdir();
	free(fx);
}

/* ---- ACL: seed 001, as written ---- */

Test(acl, seed001)
{
	struct mqtt_acl *acl = acl_fixture("seed001.acl");

	cr_assert_eq(mqtt_acl_count(acl), 6);
	/* MyEACM: read STATE/+, readwrite spBv1.0/# */
	can(acl, "MyEACM", "eacm1", "STATE/x", R, true);
	can(acl, "MyEACM", "eacm1", "STATE/x", W, false);
	can(acl, "MyEACM", "eacm1", "STATE/x/y", R, false);
	can(acl, "MyEACM", "eacm1", "STATE", R, false);
	can(acl, "MyEACM", "eacm1", "spBv1.0/a/b", R, true);
	can(acl, "MyEACM", "eacm1", "spBv1.0/a/b", W, true);
	can(acl, "MyEACM", "eacm1", "spBv1.0", W, true); /* "#" includes the parent */
	can(acl, "MyEACM", "eacm1", "spBv1.1/a", R, false);
	can(acl, "MyEACM", "eacm1", "other", R, false);
	/* SparkplugViewer: read only */
	can(acl, "SparkplugViewer", "v", "spBv1.0/G1/NDATA/E1", R, true);
	can(acl, "SparkplugViewer", "v", "spBv1.0/G1/NCMD/E1", W, false);
	can(acl, "SparkplugViewer", "v", "STATE/host", R, true);
	can(acl, "SparkplugViewer", "v", "STATE/host", W, false);
	/* HMI: readwrite both */
	can(acl, "HMI", "hmi", "STATE/host", W, true);
	can(acl, "HMI", "hmi", "spBv1.0/G1/NCMD/E1", W, true);
	/* an unknown user and an anonymous client get nothing */
	can(acl, "Mallory", "m", "spBv1.0/a/b", R, false);
	can(acl, "Mallory", "m", "STATE/x", R, false);
	can(acl, "myeacm", "m", "STATE/x", R, false);
	can(acl, NULL, "anon", "STATE/x", R, false);
	can(acl, NULL, "anon", "spBv1.0/a", W, false);
	/* subscriptions: covered by a read grant */
	can(acl, "MyEACM", "eacm1", "spBv1.0/#", S, true);
	can(acl, "MyEACM", "eacm1", "spBv1.0/+/NDATA/#", S, true);
	can(acl, "MyEACM", "eacm1", "STATE/+", S, true);
	can(acl, "MyEACM", "eacm1", "STATE/host", S, true);
	can(acl, "MyEACM", "eacm1", "#", S, false);
	can(acl, "MyEACM", "eacm1", "STATE/#", S, false);
	can(acl, "MyEACM", "eacm1", "+/x", S, false);
	can(acl, "MyEACM", "eacm1", "$share/g1/spBv1.0/#", S, true);
	can(acl, "MyEACM", "eacm1", "$share/g1/#", S, false);
	can(acl, "SparkplugViewer", "v", "spBv1.0/#", S, true);
	can(acl, "Mallory", "m", "spBv1.0/#", S, false);
	can(acl, NULL, "anon", "STATE/+", S, false);
	mqtt_acl_free(acl);
}

/* ---- ACL: anonymous lines, patterns, deny ---- */

Test(acl, anonymous_and_patterns)
{
	struct mqtt_acl *acl = acl_fixture("patterns.acl");

	/* anonymous: lines before the first "user" */
	can(acl, NULL, "sensor1", "public/weather", R, true);
	can(acl, NULL, "sensor1", "public/weather", W, false);
	can(acl, NULL, "sensor1", "public/secret/key", R, false); /* deny wins */
	can(acl, NULL, "sensor1", "public/secret", R, false);
	/* patterns apply to every client, anonymous ones too, with %c */
	can(acl, NULL, "sensor1", "devices/sensor1/status", W, true);
	can(acl, NULL, "sensor1", "devices/sensor1/status", R, false);
	can(acl, NULL, "sensor1", "devices/sensor2/status", W, false);
	can(acl, NULL, "sensor1", "devices/sensor1/cmd/reboot", R, true);
	can(acl, NULL, "sensor1", "devices/sensor1/cmd/reboot", W, false);
	/* %u patterns do not apply to a client without a user name */
	can(acl, NULL, "sensor1", "users/sensor1/x", R, false);
	/* a user's own lines are not the anonymous ones */
	can(acl, "alice", "c1", "public/weather", R, false);

	/* alice: no access word = readwrite; deny wins over a wider grant */
	can(acl, "alice", "c1", "plant/line1/temp", R, true);
	can(acl, "alice", "c1", "plant/line1/temp", W, true);
	can(acl, "alice", "c1", "plant/line1/safety/valve", W, false);
	can(acl, "alice", "c1", "plant/line1/safety/valve", R, false);
	can(acl, "alice", "c1", "plant/line2/alarms", R, true);
	can(acl, "alice", "c1", "plant/line2/alarms", W, false);
	/* %u and %c for alice */
	can(acl, "alice", "c1", "users/alice/notes", W, true);
	can(acl, "alice", "c1", "users/alice/notes", R, true);
	can(acl, "alice", "c1", "users/alice/locked", R, false); /* deny pattern */
	can(acl, "alice", "c1", "users/bob/notes", R, false);
	can(acl, "alice", "c1", "devices/c1/status", W, true);
	can(acl, "alice", "c1", "devices/alice/status", W, false);

	/* bob: write only */
	can(acl, "bob", "b", "plant/line2/pump/setpoint", W, true);
	can(acl, "bob", "b", "plant/line2/pump/setpoint", R, false);
	can(acl, "bob", "b", "plant/line2/+/setpoint", S, false);

	/* admin: "#" but $SYS is denied except... deny wins */
	can(acl, "admin", "a", "anything/at/all", W, true);
	can(acl, "admin", "a", "#", S, true);
	can(acl, "admin", "a", "$SYS/broker/uptime", R, false);
	can(acl, "admin", "a", "$SYS/broker/load", R, false);
	can(acl, "admin", "a", "$SYS/#", S, false);

	/* subscriptions and deny: a partly denied filter is granted (READ is
	 * checked again per delivery); a fully denied one is refused */
	can(acl, NULL, "s", "public/#", S, true);
	can(acl, NULL, "s", "public/secret/#", S, false);
	can(acl, NULL, "s", "public/secret/a", S, false);
	can(acl, "alice", "c1", "plant/line1/#", S, true);
	can(acl, "alice", "c1", "plant/line1/safety/+", S, false);
	can(acl, "alice", "c1", "users/alice/#", S, true);
	can(acl, "alice", "c1", "users/+/#", S, false);
	can(acl, "alice", "c1", "devices/c1/cmd/#", S, true);
	can(acl, "alice", "c1", "devices/+/cmd/#", S, false);
	mqtt_acl_free(acl);
}

Test(acl, dangerous_names)
{
	struct mqtt_acl *acl = acl_text("user ab\ntopic read public/#\n"
	                                "user a/b\ntopic read public/#\n"
	                                "pattern deny private/%u\n"
	                                "pattern readwrite devices/%c/#\n"
	                                "pattern write %c/status\n");

	can(acl, "ab", "c", "public/x", R, true);
	can(acl, "ab", "c", "devices/c/x", R, true);
	/* '/' in a client id would reach another client's tree */
	can(acl, "ab", "c/x", "devices/c/x/y", R, false);
	can(acl, "ab", "c/x", "public/x", R, true); /* grants from own lines stay */
	/* a deny pattern we cannot substitute refuses everything */
	can(acl, "a/b", "c", "public/x", R, false);
	can(acl, "a+b", "c", "devices/c/x", R, false);
	can(acl, "a#", "c", "devices/c/x", R, false);
	/* '+' / '#' client ids never grant through %c */
	can(acl, "ab", "+", "devices/x/y", R, false);
	can(acl, "ab", "#", "devices/x/y", R, false);
	/* a '$' name as the first level would reach $-topics */
	can(acl, "ab", "$SYS", "$SYS/status", W, false);
	can(acl, "ab", "dev1", "dev1/status", W, true);
	/* empty client id: %c patterns do not apply */
	can(acl, "ab", "", "devices//x", R, false);
	can(acl, "ab", NULL, "devices/x/y", R, false);
	mqtt_acl_free(acl);

	/* %c / %u only as a whole level, as mosquitto */
	acl = acl_text("pattern write dev_%c/x\npattern write a/%cx\n");
	can(acl, "u", "1", "dev_1/x", W, false);
	can(acl, "u", "1", "dev_%c/x", W, true);
	can(acl, "u", "1", "a/1x", W, false);
	mqtt_acl_free(acl);
}

Test(acl, syntax)
{
	struct mqtt_acl *acl;

	/* CRLF, indented comments, blanks and tabs, a topic with blanks */
	acl = acl_text("# header\r\n\r\n  # indented\r\ntopic\tread\tpublic/#\r\n"
	               "user  two words \r\ntopic read a b/c\r\ntopic  write  x\r\n");
	cr_assert_eq(mqtt_acl_count(acl), 3);
	can(acl, NULL, "c", "public/x", R, true);
	can(acl, "two words", "c", "a b/c", R, true);
	can(acl, "two words", "c", "x", W, true);
	can(acl, "two words", "c", "x", R, false);
	mqtt_acl_free(acl);

	/* one user in several blocks: merged (as mosquitto) */
	acl = acl_text("user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n");
	can(acl, "u", "c", "a", R, true);
	can(acl, "u", "c", "c", R, true);
	can(acl, "u", "c", "b", R, false);
	can(acl, "v", "c", "b", R, true);
	mqtt_acl_free(acl);

	/* empty file: everything refused */
	acl = acl_text("");
	cr_assert_eq(mqtt_acl_count(acl), 0);
	can(acl, NULL, "c", "a", R, false);
	can(acl, "u", "c", "a", W, false);
	can(acl, "u", "c", "#", S, false);
	mqtt_acl_free(acl);

	acl_bad("topic read\n", "t.acl:1: missing topic after 'read'");
	acl_bad("# c\ntopic\n", "t.acl:2: missing topic after 'topic'");
	acl_bad("pattern  \n", "t.acl:1: missing topic after 'pattern'");
	acl_bad("user\n", "t.acl:1: missing user name after 'user'");
	acl_bad("user a\ntopics read a\n",
	        "t.acl:2: unknown keyword 'topics' (expected user, topic or pattern)");
	acl_bad("Topic read a\n", "t.acl:1: unknown keyword 'Topic' (expected user, topic or pattern)");
	acl_bad("\n\ntopic rw a/b\n",
	        "t.acl:3: bad access 'rw' (expected read, write, readwrite or deny)");
	acl_bad("topic read a/#/b\n",
	        "t.acl:1: invalid topic filter at position 14: '#' must be the last level");
	acl_bad("  pattern write a/b+\n",
	        "t.acl:1: invalid topic filter at position 20: '+' must occupy a whole level");
	acl_bad("key\x01word x\n",
	        "t.acl:1: unknown keyword 'key?word' (expected user, topic or pattern)");
	{
		static const char nul[] = "topic read a\ntopic read b\0c\n";
		struct mqtt_acl *a = NULL;
		char err[128] = "";
		cr_assert_eq(mqtt_acl_parse(nul, sizeof(nul) - 1, "n", &a, err, sizeof(err)), -1);
		cr_assert_str_eq(err, "n:2: NUL byte in line");
	}
}

Test(acl, bad_check_arguments)
{
	struct mqtt_acl *acl = acl_text("topic readwrite #\n");

	can(acl, NULL, "c", "a/b", R, true);
	can(acl, NULL, "c", "a/+", R, false);     /* not a topic name */
	can(acl, NULL, "c", "a/#", W, false);
	can(acl, NULL, "c", "", R, false);
	can(acl, NULL, "c", "a/#/b", S, false);   /* not a filter */
	cr_assert(!mqtt_acl_check(acl, NULL, "c", "a", (enum mqtt_acl_access)(R | W)));
	cr_assert(!mqtt_acl_check(acl, NULL, "c", NULL, R));
	cr_assert(!mqtt_acl_check(NULL, NULL, "c", "a", R));
	cr_assert_eq(mqtt_acl_count(NULL), 0);
	mqtt_acl_free(NULL);
	mqtt_acl_free(acl);
}

/* ---- robustness: deterministic mutations of the fixtures ---- */

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Flips, deletes and inserts bytes of the fixtures; the parsers must never
 * crash (the sanitizer builds catch overruns) and, when they accept, the
 * result must be usable.  Errors must be one line with a FILE:LINE prefix. */
Test(robustness, mutated_fixtures, .timeout = 120)
{
	static const char *const files[] = { "passwd", "seed001.acl", "patterns.acl" };
	static const char alphabet[] = "$:#/+%cu \t\r\n\0=7ab";
	uint32_t seed = 20240613u;

	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[512];
		size_t len;
		char *orig;

		snprintf(path, sizeof(path), DATA "%s", files[f]);
		orig = slurp(path, &len);
		for (int round = 0; round < 1500; round++) {
			char *m = malloc(len + 8);
			size_t n = len;
			char err[256];
			cr_assert_not_null(m);
			memcpy(m, orig, len);
			for (int k = 1 + (int)(lcg(&seed) % 4); k > 0 && n > 0; k--) {
				size_t at = lcg(&seed) % n;
				char c = alphabet[lcg(&seed) % (sizeof(alphabet) - 1)];
				switch (lcg(&seed) % 3) {
				case 0:
					m[at] = c;
					break;
				case 1:
					memmove(m + at, m + at + 1, n - at - 1);
					n--;
					break;
				default:
					memmove(m + at + 1, m + at, n - at);
					m[at] = c;
					n++;
					break;
				}
			}
			if (f == 0) {
				struct mqtt_passwd *pw = NULL;
				err[0] = '\0';
				if (mqtt_passwd_parse(m, n, "m", &pw, err, sizeof(err)) == 0) {
					/* cheap users only: a mutated iteration count may be large */
					(void)pw_ok(pw, "HMI", "hmi-pass");
					(void)pw_ok(pw, "legacy", "x");
					cr_assert_leq(mqtt_passwd_count(pw), 6);
					mqtt_passwd_free(pw);
				} else {
					cr_assert_null(pw);
					cr_assert(strncmp(err, "m:", 2) == 0, "%s", err);
					cr_assert_null(strchr(err, '\n'), "%s", err);
				}
			} else {
				struct mqtt_acl *acl = NULL;
				err[0] = '\0';
				if (mqtt_acl_parse(m, n, "m", &acl, err, sizeof(err)) == 0) {
					(void)mqtt_acl_check(acl, "MyEACM", "c", "spBv1.0/a", R);
					(void)mqtt_acl_check(acl, "alice", "c1", "users/alice/x", W);
					(void)mqtt_acl_check(acl, NULL, "c1", "devices/c1/#", S);
					mqtt_acl_free(acl);
				} else {
					cr_assert_null(acl);
					cr_assert(strncmp(err, "m:", 2) == 0, "%s", err);
					cr_assert_null(strchr(err, '\n'), "%s", err);
				}
			}
			free(m);
		}
		free(orig);
	}
}
