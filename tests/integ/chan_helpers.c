/* Two-agent helpers for the channel suites (see chan_helpers.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "chan_helpers.h"

/* ---- time ---- */

long long chan_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void chan_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the chanctl that drives the agents ---- */

/* The subject of these suites is the agent.  Under ASan, scripts/test.sh
 * names the plain build's chanctl (built and tested in its own run) in
 * CHAND_TEST_DRIVER_CHANCTL: a sanitized chanctl costs ~80 ms of CPU per
 * command, and these suites run thousands.  The agents stay sanitized. */
__attribute__((constructor)) static void driver_chanctl(void)
{
	const char *d = getenv("CHAND_TEST_DRIVER_CHANCTL");

	if (d != NULL && access(d, X_OK) == 0)
		setenv("CHANCTL_BIN", d, 1);
}

/* ---- PKI ---- */

static char pki_dir[512];
static bool pki_owned;   /* made by this process: remove at exit */

static bool pki_ready(const char *dir)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/pw.txt", dir);
	return access(p, R_OK) == 0;
}

static const char *srcdir(void)
{
	const char *s = getenv("TEST_SRCDIR");
	return s != NULL ? s : TEST_SRCDIR;
}

/* Makes a PKI in a new temp dir; NULL on failure (output on stderr). */
static char *pki_make(void)
{
	char *dir = th_tempdir("pki"), *out = NULL, *err = NULL;

	if (dir == NULL)
		return NULL;
	int rc = th_sh(NULL, &out, &err, 120, "sh '%s/tests/pki/mkpki.sh' '%s'", srcdir(), dir);
	if (rc != 0) {
		fprintf(stderr, "mkpki.sh failed (%d): %s%s\n", rc, out ? out : "", err ? err : "");
		th_rmtree(dir);
		free(dir);
		dir = NULL;
	}
	free(out);
	free(err);
	return dir;
}

static void pki_cleanup(void)
{
	if (pki_owned)
		th_rmtree(pki_dir);
}

/* Once per test binary run, in the runner process: the PKI takes ~3 s to
 * make and every test only reads it. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (getenv("CHAN_PKI_DIR") != NULL && pki_ready(getenv("CHAN_PKI_DIR")))
		return;
	char *dir = pki_make();
	if (dir == NULL)
		return;
	snprintf(pki_dir, sizeof(pki_dir), "%s", dir);
	pki_owned = true;
	setenv("CHAN_PKI_DIR", dir, 1);
	free(dir);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	pki_cleanup();
	pki_owned = false;
}

const char *chan_pki_dir(void)
{
	if (pki_dir[0] != '\0' && pki_ready(pki_dir))
		return pki_dir;
	const char *e = getenv("CHAN_PKI_DIR");
	if (e != NULL && pki_ready(e)) {
		snprintf(pki_dir, sizeof(pki_dir), "%s", e);
		return pki_dir;
	}
	char *dir = pki_make();
	cr_assert_not_null(dir, "cannot make the test PKI");
	snprintf(pki_dir, sizeof(pki_dir), "%s", dir);
	free(dir);
	pki_owned = true;
	atexit(pki_cleanup);
	return pki_dir;
}

const char *chan_pki(const char *file)
{
	static char bufs[16][600];
	static int next;
	char *b = bufs[next];

	next = (next + 1) % 16;
	snprintf(b, sizeof(bufs[0]), "%s/%s", chan_pki_dir(), file);
	return b;
}

/* ---- commands ---- */

char *chan_sh_ok(int timeout_s, const char *fmt, ...)
{
	va_list ap;
	char *cmd, *out = NULL, *err = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	int rc = th_sh(NULL, &out, &err, timeout_s, "%s", cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s\nstdout: %s\nstderr: %s", rc, cmd,
	             out ? out : "", err ? err : "");
	free(cmd);
	free(err);
	return out;
}

static int ks_v(char **out, char **err, const char *fmt, va_list ap)
{
	char *args;

	if (vasprintf(&args, fmt, ap) < 0)
		return -1;
	int rc = th_sh(NULL, out, err, 60, "'%s' keystore %s", th_chanctl_bin(), args);
	free(args);
	return rc;
}

int chan_ks(char **out, char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = ks_v(out, err, fmt, ap);
	va_end(ap);
	return rc;
}

void chan_ks_ok(const char *fmt, ...)
{
	va_list ap;
	char *args, *out = NULL, *err = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&args, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	int rc = chan_ks(&out, &err, "%s", args);
	cr_assert_eq(rc, 0, "chanctl keystore %s: exit %d\nstdout: %s\nstderr: %s", args, rc,
	             out ? out : "", err ? err : "");
	free(args);
	free(out);
	free(err);
}

/* ---- agents ---- */

static void lower(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

void chan_qm_import_chain(struct chan_qm *q, const char *label, const char *cert,
                          const char *key, const char *chain)
{
	char chainopt[700] = "";

	if (chain != NULL)
		snprintf(chainopt, sizeof(chainopt), " --chain '%s'", chan_pki(chain));
	chan_ks_ok("import -k '%s' --label '%s' --cert '%s' --key '%s'%s", q->ks, label,
	           chan_pki(cert), chan_pki(key), chainopt);
}

void chan_qm_import(struct chan_qm *q, const char *label, const char *cert, const char *key)
{
	chan_qm_import_chain(q, label, cert, key, "inter.pem");
}

/* Keystores made by chan_qm_prepare are kept in the PKI directory (one per
 * test binary run, or per scripts/test.sh run, which shares one PKI among
 * all suites) and copied for the next agent that needs the same:
 * every `chanctl keystore` command derives the password (PBKDF2, 600,000
 * rounds) and almost every agent of a suite has one of a few keystores.
 * The keystore suites make theirs with chan_ks_ok directly. */
static bool copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	bool ok = true;
	int in = open(from, O_RDONLY | O_CLOEXEC);

	if (in < 0)
		return false;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return false;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			ok = false;
	if (n < 0)
		ok = false;
	close(in);
	return close(out) == 0 && ok;
}

static void ks_cache_path(char *dst, size_t len, const char *tag, const char *file)
{
	snprintf(dst, len, "%s/kscache/%s/%s", chan_pki_dir(), tag, file);
}

static bool ks_cache_get(struct chan_qm *q, const char *tag)
{
	char db[1200], sth[1200];

	ks_cache_path(db, sizeof(db), tag, "key.db");
	ks_cache_path(sth, sizeof(sth), tag, "key.sth");
	if (access(sth, R_OK) != 0)
		return false;
	return copy_file(db, q->ks) && copy_file(sth, q->stash);
}

/* Made in a directory of its own, then renamed into place: tests running
 * in parallel never see half a keystore; the loser of a race drops its. */
static void ks_cache_put(struct chan_qm *q, const char *tag)
{
	char dir[600], tmp[700], final[1100], db[800], sth[800];

	snprintf(dir, sizeof(dir), "%s/kscache", chan_pki_dir());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return;
	snprintf(tmp, sizeof(tmp), "%s/.new-XXXXXX", dir);
	if (mkdtemp(tmp) == NULL)
		return;
	snprintf(db, sizeof(db), "%s/key.db", tmp);
	snprintf(sth, sizeof(sth), "%s/key.sth", tmp);
	snprintf(final, sizeof(final), "%s/%s", dir, tag);
	if (!copy_file(q->ks, db) || !copy_file(q->stash, sth) || rename(tmp, final) != 0)
		th_rmtree(tmp);
}

void chan_qm_prepare(struct chan_qm *q, const char *qmgr, const struct chan_qm_opts *o)
{
	static const struct chan_qm_opts none;
	char label[64], certf[96], keyf[96];

	if (o == NULL)
		o = &none;
	memset(q, 0, sizeof(*q));
	snprintf(q->name, sizeof(q->name), "%s", qmgr);
	char *d = th_tempdir(qmgr);
	cr_assert_not_null(d);
	snprintf(q->dir, sizeof(q->dir), "%s", d);
	free(d);
	snprintf(q->ks, sizeof(q->ks), "%s/key.db", q->dir);
	snprintf(q->stash, sizeof(q->stash), "%s/key.sth", q->dir);
	snprintf(q->pwfile, sizeof(q->pwfile), "%s/ks.pw", q->dir);
	if (o->no_keystore)
		return;

	int fd = open(q->pwfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, CHAN_KS_PASSWORD "\n", sizeof(CHAN_KS_PASSWORD)),
	             (ssize_t)sizeof(CHAN_KS_PASSWORD));
	close(fd);

	if (o->label != NULL)
		snprintf(label, sizeof(label), "%s", o->label);
	else
		lower(label, qmgr, sizeof(label));
	snprintf(certf, sizeof(certf), "%s.pem", label);
	snprintf(keyf, sizeof(keyf), "%s.key", label);

	char tag[400];
	snprintf(tag, sizeof(tag), "%s.%s.%s.%d%d", label, o->cert ? o->cert : certf,
	         o->key ? o->key : keyf, o->trust_root_only, o->no_personal);
	if (ks_cache_get(q, tag))
		return;
	chan_ks_ok("create -k '%s' --password-file '%s' --stash", q->ks, q->pwfile);
	chan_ks_ok("trust -k '%s' --label root --cert '%s'", q->ks, chan_pki("root.pem"));
	if (!o->trust_root_only)
		chan_ks_ok("trust -k '%s' --label inter --cert '%s'", q->ks, chan_pki("inter.pem"));
	if (!o->no_personal)
		chan_qm_import(q, label, o->cert ? o->cert : certf, o->key ? o->key : keyf);
	ks_cache_put(q, tag);
}

void chan_qm_launch(struct chan_qm *q, const struct chan_qm_opts *o)
{
	static const struct chan_qm_opts none;
	char label[64], *conf;

	if (o == NULL)
		o = &none;
	if (o->label != NULL)
		snprintf(label, sizeof(label), "%s", o->label);
	else
		lower(label, q->name, sizeof(label));
	char ksconf[1200] = "";
	if (!o->no_keystore)
		snprintf(ksconf, sizeof(ksconf),
		         "keystore = { path = \"%s\"; stash = \"%s\"; label = \"%s\"; };\n", q->ks,
		         q->stash, label);
	cr_assert_geq(asprintf(&conf, "%s%s%s\n", ksconf,
	                       o->no_dlq ? "" : "dead_letter_queue = \"DLQ\";\n",
	                       o->extra_conf ? o->extra_conf : ""), 0);
	int rc = th_agent_start(&q->a, q->name, q->dir, conf);
	free(conf);
	cr_assert_eq(rc, 0, "agent %s did not start (log above)", q->name);
	q->running = true;
}

void chan_qm_start(struct chan_qm *q, const char *qmgr, const struct chan_qm_opts *o)
{
	chan_qm_prepare(q, qmgr, o);
	chan_qm_launch(q, o);
	if (o == NULL || !o->no_dlq)
		free(chan_ctl_ok(q, NULL, "define qlocal DLQ --maxdepth 100000"));
}

void chan_qm_restart(struct chan_qm *q)
{
	cr_assert_eq(th_agent_restart(&q->a), 0, "agent %s did not restart", q->name);
	q->running = true;
}

/* Set when an agent ended badly: a sanitizer report in its log, or a
 * non-zero exit after SIGTERM (doc/ADMIN.md: it shuts down cleanly). */
static bool agent_trouble;

static void report_trouble(struct chan_qm *q, int status)
{
	static const char *const marks[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
		"runtime error:", NULL };
	char *log = chan_log(q);
	const char *hit = NULL;

	for (int i = 0; marks[i] != NULL && hit == NULL; i++)
		hit = strstr(log, marks[i]);
	if (hit != NULL || status != 0) {
		const char *from = hit != NULL ? hit : log + (strlen(log) > 4000 ? strlen(log) - 4000 : 0);
		fprintf(stderr, "==== agent %s ended badly (exit status %d):\n%.12000s\n", q->name,
		        status, from);
		agent_trouble = true;
	}
	free(log);
}

void chan_qm_finish(struct chan_qm *q)
{
	if (q->a.pid > 0) {
		/* Continue it first, in case a test stopped it with SIGSTOP. */
		kill(q->a.pid, SIGCONT);
		int status = th_agent_stop(&q->a);
		if (q->dir[0] != '\0')
			report_trouble(q, status);
	}
	q->running = false;
	if (q->dir[0] != '\0')
		th_rmtree(q->dir);
	q->dir[0] = '\0';
}

void chan_pair_start(struct chan_qm *qm1, struct chan_qm *qm2)
{
	chan_qm_start(qm1, "QM1", NULL);
	chan_qm_start(qm2, "QM2", NULL);
}

void chan_pair_finish(struct chan_qm *qm1, struct chan_qm *qm2)
{
	chan_qm_finish(qm1);
	chan_qm_finish(qm2);
	/* An assertion here would not fail the test (Criterion ignores
	 * them in .fini); a crash of the teardown does. */
	if (agent_trouble)
		abort();
}

static int ctl_v(struct chan_qm *q, const char *in, char **out, char **err, const char *fmt,
                 va_list ap)
{
	char *args;

	if (vasprintf(&args, fmt, ap) < 0)
		return -1;
	int rc = th_ctl(&q->a, in, out, err, "%s", args);
	free(args);
	return rc;
}

int chan_ctl(struct chan_qm *q, const char *stdin_data, char **out, char **err, const char *fmt,
             ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = ctl_v(q, stdin_data, out, err, fmt, ap);
	va_end(ap);
	return rc;
}

char *chan_ctl_ok(struct chan_qm *q, const char *stdin_data, const char *fmt, ...)
{
	va_list ap;
	char *args, *out = NULL, *err = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&args, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	int rc = chan_ctl(q, stdin_data, &out, &err, "%s", args);
	cr_assert_eq(rc, 0, "%s: chanctl %s: exit %d\nstdout: %s\nstderr: %s", q->name, args, rc,
	             out ? out : "", err ? err : "");
	free(args);
	free(err);
	return out ? out : strdup("");
}

void chan_ctl_script_ok(struct chan_qm *q, const char *lines, int timeout_s)
{
	char *script = NULL, *out = NULL, *err = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&script, &len);
	const char *p = lines;

	cr_assert_not_null(f);
	fprintf(f, "set -e\n");
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0)
			fprintf(f, "'%s' -s '%s' %.*s </dev/null\n", th_chanctl_bin(), q->a.sock,
			        (int)n, p);
		p += n + (nl ? 1 : 0);
	}
	fclose(f);
	int rc = th_sh(script, &out, &err, timeout_s, "sh -e");
	cr_assert_eq(rc, 0, "%s: chanctl script failed (exit %d)\nstdout: %.2000s\nstderr: %.2000s",
	             q->name, rc, out ? out : "", err ? err : "");
	free(script);
	free(out);
	free(err);
}

char *chan_log(struct chan_qm *q)
{
	char *s = th_read_file(q->a.log);
	return s ? s : strdup("");
}

bool chan_log_has(struct chan_qm *q, const char *needle)
{
	char *s = chan_log(q);
	bool has = strstr(s, needle) != NULL;
	free(s);
	return has;
}

bool chan_wait_log(struct chan_qm *q, const char *needle, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		if (chan_log_has(q, needle))
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(100);
	}
}

/* ---- queues and channels ---- */

void chan_define_route(struct chan_qm *snd, struct chan_qm *rcv, const char *xmitq,
                       const char *rq, const char *q, long maxdepth)
{
	char md[48] = "";

	if (maxdepth > 0)
		snprintf(md, sizeof(md), " --maxdepth %ld", maxdepth);
	free(chan_ctl_ok(snd, NULL, "define qlocal %s --usage xmitq%s --replace", xmitq, md));
	if (rq != NULL)
		free(chan_ctl_ok(snd, NULL, "define qremote %s --rname %s --rqmname %s --xmitq %s "
		                 "--replace", rq, q, rcv->name, xmitq));
	if (q != NULL)
		free(chan_ctl_ok(rcv, NULL, "define qlocal %s%s --replace", q, md));
}

struct chan_qm *chan_initiator(struct chan_qm *snd, struct chan_qm *rcv, enum chan_kind kind)
{
	return kind == CHAN_RQSTR_SVR ? rcv : snd;
}

/* Retry timers short enough for tests, unless the caller set them. */
static void retry_defaults(char *buf, size_t len, const char *attrs)
{
	static const char *const opt[][2] = {
		{ "--shortrty", "10" }, { "--shorttmr", "1" }, { "--longrty", "5" },
		{ "--longtmr", "2" },
	};
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		if (attrs != NULL && strstr(attrs, opt[i][0]) != NULL)
			continue;
		int n = snprintf(buf + o, len - o, " %s %s", opt[i][0], opt[i][1]);
		if (n < 0 || (size_t)n >= len - o)
			break;
		o += (size_t)n;
	}
}

void chan_define(struct chan_qm *snd, struct chan_qm *rcv, const char *name, enum chan_kind kind,
                 const char *xmitq, int port, const char *snd_attrs, const char *rcv_attrs)
{
	struct chan_qm *ini = chan_initiator(snd, rcv, kind);
	struct chan_qm *resp = ini == snd ? rcv : snd;
	const char *ini_attrs = ini == snd ? snd_attrs : rcv_attrs;
	char retry[160];

	if (port == 0)
		port = resp->a.port;
	retry_defaults(retry, sizeof(retry), ini_attrs);
	snd_attrs = snd_attrs ? snd_attrs : "";
	rcv_attrs = rcv_attrs ? rcv_attrs : "";
	switch (kind) {
	case CHAN_SDR_RCVR:
		free(chan_ctl_ok(snd, NULL, "define channel %s --type sdr --conname 127.0.0.1:%d "
		                 "--xmitq %s%s %s", name, port, xmitq, retry, snd_attrs));
		free(chan_ctl_ok(rcv, NULL, "define channel %s --type rcvr %s", name, rcv_attrs));
		break;
	case CHAN_RQSTR_SVR:
		free(chan_ctl_ok(snd, NULL, "define channel %s --type svr --xmitq %s %s", name, xmitq,
		                 snd_attrs));
		free(chan_ctl_ok(rcv, NULL, "define channel %s --type rqstr --conname 127.0.0.1:%d%s %s",
		                 name, port, retry, rcv_attrs));
		break;
	case CHAN_SVR_RQSTR:
		free(chan_ctl_ok(snd, NULL, "define channel %s --type svr --conname 127.0.0.1:%d "
		                 "--xmitq %s%s %s", name, port, xmitq, retry, snd_attrs));
		/* An RQSTR always has a CONNAME, even when the SVR starts it. */
		free(chan_ctl_ok(rcv, NULL, "define channel %s --type rqstr --conname 127.0.0.1:%d %s",
		                 name, snd->a.port, rcv_attrs));
		break;
	}
}

void chan_put(struct chan_qm *q, const char *queue, const char *opts, const char *lines)
{
	free(chan_ctl_ok(q, lines, "put %s %s", queue, opts ? opts : ""));
}

char *chan_get_all(struct chan_qm *q, const char *queue, bool json)
{
	char *out = NULL, *err = NULL;
	int rc = chan_ctl(q, NULL, &out, &err, "%sget %s --all", json ? "--json " : "", queue);

	/* An empty queue may be reported as "no message available". */
	if (rc != 0 && err != NULL && strstr(err, "CHD2009") != NULL && (out == NULL || !*out)) {
		free(out);
		out = strdup("");
		rc = 0;
	}
	cr_assert_eq(rc, 0, "%s: get %s --all: exit %d: %s", q->name, queue, rc, err ? err : "");
	free(err);
	return out ? out : strdup("");
}

json_t *chan_get_msgs(struct chan_qm *q, const char *queue)
{
	char *out = chan_get_all(q, queue, true), *save = NULL;
	json_t *arr = json_array();

	for (char *line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		cr_assert_not_null(o, "%s: get --json printed a line that is not JSON: %s", q->name, line);
		json_array_append_new(arr, o);
	}
	free(out);
	return arr;
}

static json_t *ctl_json(struct chan_qm *q, const char *what)
{
	char *out = NULL, *err = NULL;
	json_t *v = NULL;

	if (chan_ctl(q, NULL, &out, &err, "--json %s", what) == 0 && out != NULL) {
		json_error_t je;
		v = json_loads(out, JSON_DECODE_ANY, &je);
		if (v != NULL && !json_is_array(v)) {
			json_decref(v);
			v = NULL;
		}
	}
	free(out);
	free(err);
	return v;
}

static json_t *find_named(json_t *arr, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o) {
		if (strcmp(chan_js(o, "name"), name) == 0)
			return json_incref(o);
	}
	return NULL;
}

long chan_depth(struct chan_qm *q, const char *queue)
{
	char what[128];

	snprintf(what, sizeof(what), "display queue %s", queue);
	json_t *arr = ctl_json(q, what);
	json_t *o = arr ? find_named(arr, queue) : NULL;
	long d = o ? (long)chan_ji(o, "curdepth") : -1;
	json_decref(o);
	json_decref(arr);
	return d;
}

bool chan_wait_depth(struct chan_qm *q, const char *queue, long depth, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	long d = -1;

	for (;;) {
		d = chan_depth(q, queue);
		if (d == depth)
			return true;
		if (chan_now_ms() > end)
			break;
		chan_sleep_ms(d >= 0 && depth - d > 1000 ? 200 : 50);
	}
	fprintf(stderr, "%s: %s has depth %ld, wanted %ld\n", q->name, queue, d, depth);
	return false;
}

json_t *chan_status_all(struct chan_qm *q, const char *pattern)
{
	char what[128];

	snprintf(what, sizeof(what), "status %s", pattern ? pattern : "");
	return ctl_json(q, what);
}

json_t *chan_status(struct chan_qm *q, const char *name)
{
	json_t *arr = chan_status_all(q, name);
	json_t *o = arr ? find_named(arr, name) : NULL;

	json_decref(arr);
	return o;
}

const char *chan_js(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

long long chan_ji(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v)) {
		char *end;
		long long n = strtoll(json_string_value(v), &end, 10);
		if (end != json_string_value(v) && *end == '\0')
			return n;
	}
	return -1;
}

static bool state_in(const char *state, const char *states)
{
	size_t n = strlen(state);
	const char *p = states;

	if (n == 0)
		return false;
	while ((p = strstr(p, state)) != NULL) {
		bool start = p == states || p[-1] == '|';
		bool end = p[n] == '\0' || p[n] == '|';
		if (start && end)
			return true;
		p += n;
	}
	return false;
}

bool chan_wait_state(struct chan_qm *q, const char *name, const char *states, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	char *last = NULL;

	for (;;) {
		json_t *st = chan_status(q, name);
		bool ok = st != NULL && state_in(chan_js(st, "state"), states);
		if (!ok && st != NULL) {
			free(last);
			last = json_dumps(st, JSON_COMPACT);
		}
		json_decref(st);
		if (ok) {
			free(last);
			return true;
		}
		if (chan_now_ms() > end)
			break;
		chan_sleep_ms(100);
	}
	fprintf(stderr, "%s: channel %s not in %s after %d ms; last status: %s\n", q->name, name,
	        states, timeout_ms, last ? last : "(none)");
	free(last);
	return false;
}

json_t *chan_wait_error(struct chan_qm *q, const char *name, const char *code, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	char *last = NULL;

	for (;;) {
		json_t *st = chan_status(q, name);
		if (st != NULL && strcmp(chan_js(st, "last_error_code"), code) == 0) {
			free(last);
			return st;
		}
		if (st != NULL) {
			free(last);
			last = json_dumps(st, JSON_COMPACT);
		}
		json_decref(st);
		if (chan_now_ms() > end)
			break;
		chan_sleep_ms(100);
	}
	fprintf(stderr, "%s: channel %s: no last_error_code %s after %d ms; last status: %s\n",
	        q->name, name, code, timeout_ms, last ? last : "(none)");
	free(last);
	return NULL;
}

void chan_dump(struct chan_qm *q, const char *name)
{
	char *out = NULL, *err = NULL;

	chan_ctl(q, NULL, &out, &err, "status %s", name ? name : "");
	fprintf(stderr, "==== %s status %s:\n%s%s", q->name, name ? name : "", out ? out : "",
	        err ? err : "");
	free(out);
	free(err);
	char *log = chan_log(q);
	size_t n = strlen(log);
	fprintf(stderr, "==== %s log (tail):\n%s\n", q->name, n > 6000 ? log + n - 6000 : log);
	free(log);
}

json_t *chan_wait_ji(struct chan_qm *q, const char *name, const char *key, long long min,
                     int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		json_t *st = chan_status(q, name);
		if ((st != NULL && chan_ji(st, key) >= min) || chan_now_ms() > end)
			return st;
		json_decref(st);
		chan_sleep_ms(50);
	}
}
