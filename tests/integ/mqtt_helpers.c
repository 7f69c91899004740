/* Telemetry channel helpers (see mqtt_helpers.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "mqtt_helpers.h"

/* ---- the seed PKIs ---- */

static char seed_dir[512];
static bool seed_owned;   /* made by this process: remove at exit */

static bool seed_ready(const char *dir)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/seed002/certs/transmission/transmission-chain.crt", dir);
	return access(p, R_OK) == 0;
}

static const char *srcdir(void)
{
	const char *s = getenv("TEST_SRCDIR");
	return s != NULL ? s : TEST_SRCDIR;
}

/* Makes the seed PKIs in a new temp dir; NULL on failure (output on
 * stderr). */
static char *seed_make(void)
{
	char *dir = th_tempdir("seed"), *out = NULL, *err = NULL;

	if (dir == NULL)
		return NULL;
	int rc = th_sh(NULL, &out, &err, 120, "sh '%s/tests/pki/mkseed.sh' '%s' %s", srcdir(), dir,
	               MQTT_ADDR);
	if (rc != 0) {
		fprintf(stderr, "mkseed.sh failed (%d): %s%s\n", rc, out ? out : "", err ? err : "");
		th_rmtree(dir);
		free(dir);
		dir = NULL;
	}
	free(out);
	free(err);
	return dir;
}

static void seed_cleanup(void)
{
	if (seed_owned)
		th_rmtree(seed_dir);
}

/* Once per test binary run, in the runner process (about 4 s of RSA key
 * generation; every test only reads the files). Criterion names hooks by
 * their line: these must not share a line number with chan_helpers.c's
 * (83 and 97 today), or the test binary does not link. */
static void seed_pre_all(void)
{
	if (getenv("MQTT_SEED_DIR") != NULL && seed_ready(getenv("MQTT_SEED_DIR")))
		return;
	char *dir = seed_make();
	if (dir == NULL)
		return;
	snprintf(seed_dir, sizeof(seed_dir), "%s", dir);
	seed_owned = true;
	setenv("MQTT_SEED_DIR", dir, 1);
	free(dir);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	seed_pre_all();
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	seed_cleanup();
	seed_owned = false;
}

const char *mqtt_seed_dir(void)
{
	if (seed_dir[0] != '\0' && seed_ready(seed_dir))
		return seed_dir;
	const char *e = getenv("MQTT_SEED_DIR");
	if (e != NULL && seed_ready(e)) {
		snprintf(seed_dir, sizeof(seed_dir), "%s", e);
		return seed_dir;
	}
	char *dir = seed_make();
	cr_assert_not_null(dir, "cannot make the seed PKIs (tests/pki/mkseed.sh)");
	snprintf(seed_dir, sizeof(seed_dir), "%s", dir);
	free(dir);
	seed_owned = true;
	atexit(seed_cleanup);
	return seed_dir;
}

const char *mqtt_seed(const char *file)
{
	static char bufs[16][700];
	static int next;
	char *b = bufs[next];

	next = (next + 1) % 16;
	snprintf(b, sizeof(bufs[0]), "%s/%s", mqtt_seed_dir(), file);
	return b;
}

const char *mqtt_py(void)
{
	static char buf[1200];
	const char *py = getenv("MQTT_PYTHON");

	snprintf(buf, sizeof(buf), "'%s' '%s/tests/integ/mqtt_client.py'",
	         py != NULL ? py : "/usr/bin/python3", srcdir());
	return buf;
}

/* ---- background clients ---- */

/* The process groups still running, so that teardown kills what a test
 * left (by pid: the struct mqtt_bg may live in a frame that is gone). */
static pid_t bg_pids[32];

static void bg_track(struct mqtt_bg *bg, bool on)
{
	for (size_t i = 0; i < sizeof(bg_pids) / sizeof(bg_pids[0]); i++) {
		if (on && bg_pids[i] == 0) {
			bg_pids[i] = bg->pid;
			return;
		}
		if (!on && bg_pids[i] == bg->pid && bg->pid > 0)
			bg_pids[i] = 0;
	}
}

void mqtt_bg_start(struct mqtt_broker *b, struct mqtt_bg *bg, const char *fmt, ...)
{
	static int seq;
	va_list ap;
	char *cmd;

	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	memset(bg, 0, sizeof(*bg));
	bg->status = -1;
	seq++;
	snprintf(bg->out, sizeof(bg->out), "%s/bg%d.out", b->work, seq);
	snprintf(bg->err, sizeof(bg->err), "%s/bg%d.err", b->work, seq);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int in = open("/dev/null", O_RDONLY);
		int o = open(bg->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(bg->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	free(cmd);
	bg->pid = pid;
	bg_track(bg, true);
}

char *mqtt_bg_output(struct mqtt_bg *bg)
{
	char *s = th_read_file(bg->out);
	return s ? s : strdup("");
}

bool mqtt_bg_wait(struct mqtt_bg *bg, const char *needle, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		char *s = mqtt_bg_output(bg);
		bool hit = strstr(s, needle) != NULL;
		free(s);
		if (hit)
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(50);
	}
}

static void bg_reaped(struct mqtt_bg *bg, int st)
{
	bg->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	/* Its children (the shell's) go with the group. */
	kill(-bg->pid, SIGKILL);
	bg_track(bg, false);
	bg->pid = 0;
}

int mqtt_bg_wait_exit(struct mqtt_bg *bg, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	int st;

	if (bg->pid <= 0)
		return bg->status;
	for (;;) {
		if (waitpid(bg->pid, &st, WNOHANG) == bg->pid) {
			bg_reaped(bg, st);
			return bg->status;
		}
		if (chan_now_ms() > end)
			return -1;
		chan_sleep_ms(20);
	}
}

void mqtt_bg_stop(struct mqtt_bg *bg)
{
	int st;

	if (bg->pid <= 0)
		return;
	kill(-bg->pid, SIGKILL);
	kill(bg->pid, SIGKILL);
	if (waitpid(bg->pid, &st, 0) == bg->pid)
		bg_reaped(bg, st);
	bg_track(bg, false);
	bg->pid = 0;
}

void mqtt_bg_dump(struct mqtt_bg *bg, const char *what)
{
	char *o = th_read_file(bg->out), *e = th_read_file(bg->err);

	fprintf(stderr, "==== %s: stdout:\n%s\n==== %s: stderr:\n%s\n", what, o ? o : "", what,
	        e ? e : "");
	free(o);
	free(e);
}

bool mqtt_pub_until(struct mqtt_bg *bg, const char *needle, int timeout_ms, const char *fmt, ...)
{
	long long end = chan_now_ms() + timeout_ms;
	va_list ap;
	char *cmd;

	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	bool hit = false;
	while (!hit && chan_now_ms() < end) {
		th_sh(NULL, NULL, NULL, 10, "%s", cmd);
		hit = mqtt_bg_wait(bg, needle, 500);
	}
	free(cmd);
	return hit;
}

int mqtt_count_lines(const char *text, const char *line)
{
	size_t n = strlen(line);
	int count = 0;

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == n && memcmp(p, line, n) == 0)
			count++;
		p = nl ? nl + 1 : NULL;
	}
	return count;
}

/* ---- commands ---- */

static int run_v(char **out, char **err, int timeout_s, const char *fmt, va_list ap)
{
	char *cmd;

	if (vasprintf(&cmd, fmt, ap) < 0)
		return -1;
	int rc = th_sh(NULL, out, err, timeout_s, "%s", cmd);
	free(cmd);
	return rc;
}

int mqtt_run(char **out, char **err, int timeout_s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = run_v(out, err, timeout_s, fmt, ap);
	va_end(ap);
	return rc;
}

char *mqtt_run_ok(int timeout_s, const char *fmt, ...)
{
	va_list ap;
	char *cmd, *out = NULL, *err = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	int rc = mqtt_run(&out, &err, timeout_s, "%s", cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s\nstdout: %s\nstderr: %s", rc, cmd,
	             out ? out : "", err ? err : "");
	free(cmd);
	free(err);
	return out ? out : strdup("");
}

static char *rot_buf(void)
{
	static char bufs[8][1400];
	static int next;

	next = (next + 1) % 8;
	return bufs[next];
}

const char *mqtt_mosq(struct mqtt_broker *b)
{
	char *s = rot_buf();

	snprintf(s, 1400, "-h %s -p %d --cafile '%s'", MQTT_ADDR, b->port, b->cafile);
	return s;
}

const char *mqtt_pyconn(struct mqtt_broker *b)
{
	char *s = rot_buf();

	snprintf(s, 1400, "--host %s --port %d --cafile '%s'", MQTT_ADDR, b->port, b->cafile);
	return s;
}

const char *mqtt_write_file(struct mqtt_broker *b, const char *name, const char *text)
{
	char *p = rot_buf();

	snprintf(p, 1400, "%s/%s", b->work, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return p;
}

/* ---- the agent ---- */

bool mqtt_wait_port(int port, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(50);
	}
}

void mqtt_broker_start(struct mqtt_broker *b, const char *qmgr, enum mqtt_seed_kind seed)
{
	mqtt_broker_start_conf(b, qmgr, seed, NULL);
}

void mqtt_broker_start_conf(struct mqtt_broker *b, const char *qmgr, enum mqtt_seed_kind seed,
                            const char *extra_conf)
{
	const struct chan_qm_opts o = { .label = MQTT_LABEL, .no_keystore = true, .no_dlq = true };
	const char *pw = mqtt_seed("pw.txt");

	memset(b, 0, sizeof(*b));
	b->seed = seed;
	char *w = th_tempdir("mqttc");
	cr_assert_not_null(w);
	snprintf(b->work, sizeof(b->work), "%s", w);
	free(w);

	/* chan_qm_prepare only makes the directory and names the files: the
	 * keystore is the seed's, made here with the same commands an
	 * operator would run. */
	chan_qm_prepare(&b->qm, qmgr, &o);
	int fd = open(b->qm.pwfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, CHAN_KS_PASSWORD "\n", sizeof(CHAN_KS_PASSWORD)),
	             (ssize_t)sizeof(CHAN_KS_PASSWORD));
	close(fd);
	chan_ks_ok("create -k '%s' --password-file '%s' --stash", b->qm.ks, b->qm.pwfile);
	if (seed == MQTT_SEED001) {
		snprintf(b->cafile, sizeof(b->cafile), "%s", mqtt_seed("seed001/ca.pem"));
		chan_ks_ok("trust -k '%s' --label ca --cert '%s'", b->qm.ks, b->cafile);
		chan_ks_ok("import -k '%s' --label %s --cert '%s' --key '%s' --key-password-file '%s'",
		           b->qm.ks, MQTT_LABEL, mqtt_seed("seed001/server.pem"),
		           mqtt_seed("seed001/server.key"), pw);
	} else {
		snprintf(b->cafile, sizeof(b->cafile), "%s", mqtt_seed("seed002/ca/ca.crt"));
		chan_ks_ok("trust -k '%s' --label root --cert '%s'", b->qm.ks, b->cafile);
		chan_ks_ok("import -k '%s' --label %s --cert '%s' --key '%s' --key-password-file '%s' "
		           "--chain '%s'", b->qm.ks, MQTT_LABEL,
		           mqtt_seed("seed002/certs/server/server.crt"),
		           mqtt_seed("seed002/certs/server/server.key"), pw,
		           mqtt_seed("seed002/ca/server/server-ca.crt"));
	}
	/* With the keystore in the configuration (label broker). */
	const struct chan_qm_opts l = { .label = MQTT_LABEL, .no_dlq = true,
		.extra_conf = extra_conf };
	chan_qm_launch(&b->qm, &l);
}

int mqtt_channel_start(struct mqtt_broker *b, const char *name, const char *attrs)
{
	char *out = NULL, *err = NULL;
	int rc = -1, port = -1;

	/* A port another test took between th_free_port and define is
	 * refused at define or start: try another. */
	for (int tries = 0; tries < 5 && rc != 0; tries++) {
		port = th_free_port();
		cr_assert_gt(port, 0);
		free(out);
		free(err);
		out = err = NULL;
		/* ANY_TLS12_OR_HIGHER unless the test names its own SSLCIPH */
		bool own = attrs != NULL && strstr(attrs, "--sslciph") != NULL;
		rc = chan_ctl(&b->qm, NULL, &out, &err,
		              "define channel %s --type mqtt --port %d --address %s "
		              "%s --certlabl %s %s --replace",
		              name, port, MQTT_ADDR, own ? "" : "--sslciph ANY_TLS12_OR_HIGHER",
		              MQTT_LABEL, attrs ? attrs : "");
		if (rc != 0)
			break;
		free(out);
		free(err);
		out = err = NULL;
		rc = chan_ctl(&b->qm, NULL, &out, &err, "start channel %s", name);
	}
	cr_assert_eq(rc, 0, "define/start channel %s %s: exit %d\nstdout: %s\nstderr: %s", name,
	             attrs ? attrs : "", rc, out ? out : "", err ? err : "");
	free(out);
	free(err);
	snprintf(b->chan, sizeof(b->chan), "%s", name);
	b->port = port;
	if (!mqtt_wait_port(port, 10000)) {
		mqtt_dump(b);
		cr_assert_fail("channel %s does not accept connections on port %d", name, port);
	}
	return port;
}

void mqtt_broker_kill9_restart(struct mqtt_broker *b)
{
	th_agent_kill9(&b->qm.a);
	chan_qm_restart(&b->qm);
	/* The test is about what survives; a channel that does not come back
	 * started by itself is started here. */
	chan_ctl(&b->qm, NULL, NULL, NULL, "start channel %s", b->chan);
	if (!mqtt_wait_port(b->port, 10000)) {
		mqtt_dump(b);
		cr_assert_fail("after restart, channel %s does not accept connections on port %d",
		               b->chan, b->port);
	}
}

void mqtt_broker_finish(struct mqtt_broker *b)
{
	for (size_t i = 0; i < sizeof(bg_pids) / sizeof(bg_pids[0]); i++)
		if (bg_pids[i] > 0) {
			int st;
			kill(-bg_pids[i], SIGKILL);
			kill(bg_pids[i], SIGKILL);
			(void)waitpid(bg_pids[i], &st, 0);
			bg_pids[i] = 0;
		}
	/* chan_pair_finish aborts if the agent ended badly (sanitizer report,
	 * unclean exit); the other half of the pair is an empty one. */
	struct chan_qm none;
	memset(&none, 0, sizeof(none));
	chan_pair_finish(&b->qm, &none);
	if (b->work[0] != '\0')
		th_rmtree(b->work);
	b->work[0] = '\0';
}

/* ---- status and log ---- */

json_t *mqtt_status(struct mqtt_broker *b, const char *name, bool clients)
{
	char *out = NULL, *err = NULL;
	json_t *v = NULL, *rec = NULL;

	if (chan_ctl(&b->qm, NULL, &out, &err, "--json status %s%s", name,
	             clients ? " --clients" : "") == 0 && out != NULL) {
		json_error_t je;
		v = json_loads(out, JSON_DECODE_ANY, &je);
	}
	if (json_is_object(v)) {
		rec = json_incref(v);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *o;
		json_array_foreach(v, i, o) {
			if (strcmp(chan_js(o, "name"), name) == 0) {
				rec = json_incref(o);
				break;
			}
		}
	}
	json_decref(v);
	free(out);
	free(err);
	return rec;
}

json_t *mqtt_find_client(json_t *record, const char *client_id)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(record, "clients"), i, c) {
		if (strcmp(chan_js(c, "client_id"), client_id) == 0)
			return c;
	}
	return NULL;
}

bool mqtt_wait_client(struct mqtt_broker *b, const char *name, const char *client_id,
                      bool present, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		json_t *st = mqtt_status(b, name, true);
		json_t *c = st ? mqtt_find_client(st, client_id) : NULL;
		/* A client with a persistent session stays listed, as
		 * "disconnected": only a connected one counts as present. */
		bool connected = c != NULL && strcmp(chan_js(c, "state"), "connected") == 0;
		json_decref(st);
		if (connected == present)
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(100);
	}
}

size_t mqtt_log_mark(struct mqtt_broker *b)
{
	char *s = chan_log(&b->qm);
	size_t n = strlen(s);

	free(s);
	return n;
}

char *mqtt_log_since(struct mqtt_broker *b, size_t mark)
{
	char *s = chan_log(&b->qm);
	size_t n = strlen(s);
	char *r = strdup(mark <= n ? s + mark : "");

	free(s);
	return r;
}

bool mqtt_wait_log_since(struct mqtt_broker *b, size_t mark, const char *needle, int timeout_ms)
{
	long long end = chan_now_ms() + timeout_ms;

	for (;;) {
		char *s = mqtt_log_since(b, mark);
		bool hit = strstr(s, needle) != NULL;
		free(s);
		if (hit)
			return true;
		if (chan_now_ms() > end)
			return false;
		chan_sleep_ms(100);
	}
}

void mqtt_dump(struct mqtt_broker *b)
{
	chan_dump(&b->qm, b->chan[0] != '\0' ? b->chan : NULL);
}
