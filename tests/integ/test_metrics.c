/* Operations: the Prometheus exposition (chanctl status --format
 * prometheus and the agent's metrics listener), status --watch,
 * certificate expiry warnings (CHD3008) and never running as root
 * (CHD1008, user = ...). Real chand and chanctl processes on 127.0.0.1. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "integ/chan_helpers.h"
#include "prom_check.h"

static struct th_agent ag;
static struct chan_qm qm;
static char *tmpdir;

static void fini(void)
{
	th_agent_kill9(&ag);
	if (ag.dir[0] != '\0')
		th_rmtree(ag.dir);
	chan_qm_finish(&qm);
	if (tmpdir != NULL) {
		th_rmtree(tmpdir);
		free(tmpdir);
		tmpdir = NULL;
	}
	unsetenv("CHAND_TEST_EXPIRY_INTERVAL_MS");
}

TestSuite(metrics, .fini = fini, .timeout = 90);

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends req (len bytes) to 127.0.0.1:port and returns everything the
 * server sent until it closed (malloc'd), or NULL after timeout_ms. */
static char *http_raw(int port, const char *req, size_t len, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int64_t end = now_ms() + timeout_ms;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
	             strerror(errno));
	if (len > 0)
		cr_assert_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		ssize_t r = recv(fd, buf + n, cap - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

static char *http(int port, const char *req)
{
	char *r = http_raw(port, req, strlen(req), 10000);

	cr_assert_not_null(r, "no complete answer to %s", req);
	return r;
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	cr_assert_not_null(b, "%s", resp);
	return b + 4;
}

static void expect_prom_ok(const char *text)
{
	char why[512] = "";

	cr_expect(prom_check(text, why, sizeof(why)), "%s\n%s", why, text);
}

/* promtool's verdict on text (the caller skips the test when promtool is
 * not installed: a check that cannot run must not count as passed). */
static bool have_promtool(void)
{
	return th_sh(NULL, NULL, NULL, 10, "command -v promtool >/dev/null") == 0;
}

static void promtool_check(const char *what, const char *text)
{
	char path[] = "/tmp/chand-prom-XXXXXX";
	int fd;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char *out = NULL;
	int rc = th_sh(NULL, &out, NULL, 30, "promtool check metrics < '%s' 2>&1", path);
	unlink(path);
	cr_expect_eq(rc, 0, "promtool check metrics (%s): %s\n%s", what, out ? out : "", text);
	free(out);
}

static double value(const char *text, const char *series)
{
	double v = -1;

	cr_expect(prom_value(text, series, &v), "no %s in\n%s", series, text);
	return v;
}

/* An agent with a metrics listener, two local queues (3 messages on one)
 * and a sender channel that is not running. */
static int start_with_metrics(void)
{
	char conf[256];
	int port = th_free_port();

	snprintf(conf, sizeof(conf), "metrics = { address = \"127.0.0.1\"; port = %d; };", port);
	cr_assert_eq(th_agent_start(&ag, "QMMET", NULL, conf), 0);
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal APP.IN"), 0);
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal QM2 --usage xmitq"), 0);
	cr_assert_eq(th_ctl(&ag, "a\nb\nc\n", NULL, NULL, "put APP.IN"), 0);
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "define channel QMMET.TO.QM2 --type sdr "
	                    "--conname '127.0.0.1(1)' --xmitq QM2"), 0);
	return port;
}

Test(metrics, listener_serves_the_exposition)
{
	int port = start_with_metrics();
	char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");

	cr_expect(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
	cr_expect(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
	cr_expect(strstr(r, "\r\nConnection: close\r\n") != NULL);
	const char *body = body_of(r);
	char cl[64];
	snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(body));
	cr_expect(strstr(r, cl) != NULL, "%s", r);
	expect_prom_ok(body);
	cr_expect_eq(value(body, "chand_up{qmgr=\"QMMET\"}"), 1);
	cr_expect_eq(value(body, "chand_queue_depth{qmgr=\"QMMET\",queue=\"APP.IN\"}"), 3);
	cr_expect_eq(value(body, "chand_queue_depth{qmgr=\"QMMET\",queue=\"QM2\"}"), 0);
	double st = value(body, "chand_start_time_seconds{qmgr=\"QMMET\"}");
	cr_expect(st > (double)time(NULL) - 120 && st <= (double)time(NULL) + 1, "%f", st);
	const char *lab = "{name=\"QMMET.TO.QM2\",type=\"sdr\",qmgr=\"QMMET\",rqmname=\"\","
	                  "conname=\"127.0.0.1(1)\"";
	char s[512];
	snprintf(s, sizeof(s), "chand_channel_state%s,state=\"INACTIVE\"}", lab);
	cr_expect_eq(value(body, s), 1);
	snprintf(s, sizeof(s), "chand_channel_up%s}", lab);
	cr_expect_eq(value(body, s), 0);
	snprintf(s, sizeof(s), "chand_channel_messages_total%s}", lab);
	cr_expect_eq(value(body, s), 0);
	free(r);

	/* HEAD: the headers only. */
	r = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
	cr_expect_str_eq(body_of(r), "");
	free(r);
}

/* Both exports (listener and chanctl) through promtool, when installed;
 * reported as skipped otherwise. */
Test(metrics, promtool_accepts_both_exports)
{
	if (!have_promtool())
		cr_skip_test("promtool not installed: the exposition is checked by prom_check only");
	int port = start_with_metrics();
	char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	promtool_check("metrics listener", body_of(r));
	free(r);
	char *out = NULL, *err = NULL;
	cr_assert_eq(th_ctl(&ag, NULL, &out, &err, "status --format prometheus"), 0, "%s", err);
	promtool_check("chanctl status --format prometheus", out);
	free(out);
	free(err);
}

Test(metrics, listener_refuses_other_requests)
{
	int port = start_with_metrics();
	char *r;

	r = http(port, "GET / HTTP/1.1\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", r);
	free(r);
	r = http(port, "GET /metricsx HTTP/1.0\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 404 ", 13) == 0, "%s", r);
	free(r);
	r = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0, "%s", r);
	cr_expect(strstr(r, "\r\nAllow: GET, HEAD\r\n") != NULL, "%s", r);
	free(r);
	/* Malformed request lines: 400.  libmicrohttpd closes without an
	 * answer when the line has no space at all; never any metrics. */
	r = http(port, "hello\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 400 ", 13) == 0 || r[0] == '\0', "%s", r);
	free(r);
	r = http(port, "hello world\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 400 ", 13) == 0, "%s", r);
	free(r);
	r = http(port, "GET /metrics FOO/1.1\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 400 ", 13) == 0, "%s", r);
	free(r);

	/* A request head larger than the bound. */
	size_t big = 20000;
	char *req = malloc(big + 1);
	memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
	memset(req + 26, 'a', big - 26);
	req[big] = '\0';
	r = http_raw(port, req, big, 10000);
	cr_assert_not_null(r);
	cr_expect(strncmp(r, "HTTP/1.1 431 ", 13) == 0, "%.80s", r);
	free(r);
	free(req);

	/* A client that sends nothing is dropped within the bound (5 s), and
	 * the next one is served after it. */
	int64_t t0 = now_ms();
	char *idle = http_raw(port, "", 0, 9000);
	cr_expect_not_null(idle, "an idle client was never closed");
	cr_expect(now_ms() - t0 >= 4000, "closed too soon: %lld ms", (long long)(now_ms() - t0));
	free(idle);
	r = http(port, "GET /metrics?x=1 HTTP/1.1\r\n\r\n");
	cr_expect(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
	free(r);

	/* The agent still stops cleanly. */
	cr_expect_eq(th_agent_stop(&ag), 0);
}

/* ---- HTTPS (metrics.tls_label) ---- */

/* GET /metrics over TLS with gnutls-cli, checking the agent's chain
 * against the test root and its address (the leaf has IP 127.0.0.1):
 * everything the server sent (malloc'd). */
static char *https_get(int port)
{
	char *out = NULL, *err = NULL;

	/* The sleep keeps gnutls-cli's stdin open until the agent has
	 * answered and closed (gnutls-cli quits at the end of its input). */
	th_sh(NULL, &out, &err, 30, "(printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; "
	      "sleep 2) | gnutls-cli --logfile=/dev/null --x509cafile '%s' -p %d 127.0.0.1",
	      chan_pki("root.pem"), port);
	cr_assert_not_null(out, "gnutls-cli: %s", err ? err : "");
	free(err);
	return out;
}

Test(metrics, https_with_keystore_label)
{
	if (th_sh(NULL, NULL, NULL, 10, "command -v gnutls-cli >/dev/null") != 0)
		cr_skip_test("gnutls-cli (gnutls-bin) not installed");
	int port = th_free_port();
	char conf[256];
	snprintf(conf, sizeof(conf), "metrics = { address = \"127.0.0.1\"; port = %d; "
	         "tls_label = \"qm1\"; };", port);
	const struct chan_qm_opts o = { .label = "qm1", .extra_conf = conf };
	chan_qm_start(&qm, "QMTLS", &o);
	free(chan_ctl_ok(&qm, NULL, "define qlocal APP.IN"));

	char *r = https_get(port);
	cr_expect(strstr(r, "HTTP/1.1 200 OK\r\n") != NULL, "%s", r);
	cr_expect(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL,
	          "%s", r);
	const char *b = strstr(r, "\r\n\r\n");
	cr_assert_not_null(b, "%s", r);
	expect_prom_ok(b + 4);
	cr_expect_eq(value(b + 4, "chand_up{qmgr=\"QMTLS\"}"), 1);
	cr_expect_eq(value(b + 4, "chand_queue_depth{qmgr=\"QMTLS\",queue=\"APP.IN\"}"), 0);
	free(r);
	cr_expect(chan_log_has(&qm, "serving GET /metrics over HTTPS label=qm1"));

	/* Plain HTTP on the TLS port: no metrics, whatever comes back. */
	r = http_raw(port, "GET /metrics HTTP/1.1\r\n\r\n", 26, 10000);
	if (r != NULL) {
		cr_expect_null(strstr(r, "chand_up"), "%s", r);
		cr_expect_neq(strncmp(r, "HTTP/1.1 200", 12), 0, "%s", r);
	}
	free(r);
	/* ... and HTTPS still works after it. */
	r = https_get(port);
	cr_expect(strstr(r, "chand_up{qmgr=\"QMTLS\"} 1\n") != NULL, "%s", r);
	free(r);

	/* The key never reaches the log. */
	char *log = chan_log(&qm);
	cr_expect_null(strstr(log, "PRIVATE KEY"), "%s", log);
	free(log);
}

/* A label the keystore does not have (or no keystore at all): chand
 * stops at start with one line naming the label. */
Test(metrics, tls_label_missing_stops_chand)
{
	char conf[2048], *out = NULL, *err = NULL;
	int port = th_free_port();

	const struct chan_qm_opts o = { .label = "qm1" };
	chan_qm_prepare(&qm, "QMNOLBL", &o);
	snprintf(conf, sizeof(conf), "%s/chand.conf", qm.dir);
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "qmgr = \"QMNOLBL\";\ndata_dir = \"%s\";\nlisteners = ();\n"
	        "admin = { socket = \"%s/admin.sock\"; };\nlog = { syslog = false; };\n%s"
	        "keystore = { path = \"%s\"; stash = \"%s\"; };\n"
	        "metrics = { address = \"127.0.0.1\"; port = %d; tls_label = \"nosuch\"; };\n",
	        qm.dir, qm.dir, geteuid() == 0 ? "allow_root = true;\n" : "", qm.ks, qm.stash, port);
	fclose(f);
	int rc = th_sh(NULL, &out, &err, 30, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1, "%s", err);
	char want[2600];
	snprintf(want, sizeof(want), "CHD3004 metrics.tls_label nosuch: no personal certificate with "
	         "that label in keystore %s\n", qm.ks);
	cr_expect(strstr(err, want) != NULL, "%s", err);
	free(out);
	free(err);

	/* No keystore file at all. */
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "qmgr = \"QMNOLBL\";\ndata_dir = \"%s\";\nlisteners = ();\n"
	        "admin = { socket = \"%s/admin.sock\"; };\nlog = { syslog = false; };\n%s"
	        "metrics = { address = \"127.0.0.1\"; port = %d; tls_label = \"metrics\"; };\n",
	        qm.dir, qm.dir, geteuid() == 0 ? "allow_root = true;\n" : "", port);
	fclose(f);
	cr_assert_eq(unlink(qm.ks), 0);
	rc = th_sh(NULL, &out, &err, 30, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1, "%s", err);
	cr_expect(strstr(err, "metrics.tls_label metrics: keystore ") != NULL, "%s", err);
	free(out);
	free(err);

	/* An empty label is a configuration error. */
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "qmgr = \"QMNOLBL\";\ndata_dir = \"%s\";\nmetrics = { tls_label = \"\"; };\n",
	        qm.dir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	snprintf(want, sizeof(want), "%s:3: 'metrics.tls_label' must be 1 to 64 characters\n", conf);
	cr_expect_str_eq(err, want);
	free(out);
	free(err);
}

Test(metrics, non_loopback_address_needs_allow_remote)
{
	char conf[512], *out = NULL, *err = NULL;
	FILE *f;

	tmpdir = th_tempdir("mremote");
	snprintf(conf, sizeof(conf), "%s/chand.conf", tmpdir);
	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\nmetrics = { address = \"0.0.0.0\"; };\n",
	        tmpdir);
	fclose(f);
	int rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	char want[1024];
	snprintf(want, sizeof(want), "%s:3: 'metrics.address' 0.0.0.0 is not a loopback address: "
	         "the metrics name every channel and peer; set metrics.allow_remote = true to serve "
	         "them to the network\n", conf);
	cr_expect_str_eq(err, want);
	free(out);
	free(err);

	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\n"
	        "metrics = { address = \"::1\"; port = 9999; };\n", tmpdir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 0, "%s", err);
	free(out);
	free(err);

	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\n"
	        "metrics = { address = \"0.0.0.0\"; allow_remote = true; port = 0; };\n", tmpdir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "'metrics.port' must be between 1 and 65535 (got 0)") != NULL, "%s",
	          err);
	free(out);
	free(err);
}

Test(metrics, chanctl_status_format_prometheus)
{
	int port = start_with_metrics();
	char *out = NULL, *err = NULL;

	cr_assert_eq(th_ctl(&ag, NULL, &out, &err, "status --format prometheus"), 0, "%s", err);
	expect_prom_ok(out);
	cr_expect_eq(value(out, "chand_queue_depth{qmgr=\"QMMET\",queue=\"APP.IN\"}"), 3);
	cr_expect(strstr(out, "chand_info{qmgr=\"QMMET\",version=\"") != NULL, "%s", out);

	/* Both exports carry the same series (the start time to the ms). */
	char *r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	cr_expect_str_eq(out, body_of(r), "chanctl and the listener differ");
	free(r);
	free(out);
	free(err);

	/* A pattern narrows the channels, not the queues. */
	cr_assert_eq(th_ctl(&ag, NULL, &out, &err, "status 'NONE*' --format prometheus"), 0);
	cr_expect_null(strstr(out, "chand_channel_"), "%s", out);
	cr_expect(strstr(out, "queue=\"APP.IN\"") != NULL);
	free(out);
	free(err);

	/* The textfile collector recipe: write aside, then rename. */
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' -s '%s' status --format prometheus > '%s/chand.prom.$$' && "
	         "mv '%s/chand.prom.$$' '%s/chand.prom'", th_chanctl_bin(), ag.sock, ag.dir, ag.dir,
	         ag.dir);
	cr_assert_eq(th_sh(NULL, NULL, NULL, 30, "%s", cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/chand.prom", ag.dir);
	char *text = th_read_file(cmd);
	cr_assert_not_null(text);
	expect_prom_ok(text);
	free(text);

	/* Usage errors. */
	cr_expect_eq(th_ctl(&ag, NULL, NULL, &err, "status --format prometheus --watch 1"), 2);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, &err, "--json status --format prometheus"), 2);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, &err, "status --format xml"), 2);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, &err, "status --iterations 2"), 2);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, &err, "status NOPE --format prometheus"), 1);
	cr_expect(strstr(err, "CHD5004") != NULL, "%s", err);
	free(err);
}

Test(metrics, status_watch)
{
	char *out = NULL, *err = NULL;

	start_with_metrics();
	int64_t t0 = now_ms();
	/* --all: the channel never ran (INACTIVE), which a listing leaves out. */
	cr_assert_eq(th_ctl(&ag, NULL, &out, &err, "status --all --watch 1 --iterations 3"), 0, "%s",
	             err);
	int64_t took = now_ms() - t0;
	cr_expect(took >= 1900 && took < 15000, "%lld ms", (long long)took);
	/* Not a terminal: plain text, no escape codes, one table per round. */
	cr_expect_null(strchr(out, '\033'), "%s", out);
	cr_expect_eq(th_count(out, "every 1s\n"), 3, "%s", out);
	cr_expect_eq(th_count(out, "\nNAME "), 3, "%s", out);
	cr_expect_eq(th_count(out, "QMMET.TO.QM2 "), 3, "%s", out);
	free(out);
	free(err);

	/* --json --watch: one compact array per round. */
	cr_assert_eq(th_ctl(&ag, NULL, &out, &err, "--json status --all --watch 1 --iterations 2"), 0);
	cr_expect_eq(th_count(out, "\n"), 2, "%s", out);
	cr_expect_eq(th_count(out, "[{\"name\":\"QMMET.TO.QM2\""), 2, "%s", out);
	free(out);
	free(err);

	/* On a terminal (script(1) gives it one): redrawn in place, coloured. */
	if (th_sh(NULL, NULL, NULL, 10, "command -v script >/dev/null") == 0) {
		cr_assert_eq(th_sh(NULL, &out, &err, 30, "script -qec \"'%s' -s '%s' status --watch 1 "
		                   "--iterations 2\" /dev/null", th_chanctl_bin(), ag.sock), 0, "%s", err);
		cr_expect_eq(th_count(out, "\033[H\033[2J"), 2, "%s", out);
		cr_expect(strstr(out, "\033[1mNAME ") != NULL, "%s", out);
		cr_expect(strstr(out, "(Ctrl-C to quit)") != NULL, "%s", out);
		free(out);
		free(err);
	}

	/* Without --iterations it runs until SIGINT, then exits 0 at once. */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execl(th_chanctl_bin(), "chanctl", "-s", ag.sock, "status", "--watch", "30", NULL);
		_exit(127);
	}
	usleep(1500 * 1000);
	int st;
	cr_expect_eq(waitpid(pid, &st, WNOHANG), 0, "watch ended by itself");
	kill(pid, SIGINT);
	t0 = now_ms();
	while (waitpid(pid, &st, WNOHANG) == 0 && now_ms() - t0 < 5000)
		usleep(20000);
	if (now_ms() - t0 >= 5000) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		cr_expect_fail("watch did not exit on SIGINT");
	} else {
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	}
}

/* ---- certificate expiry warnings ---- */

static int count_expiring(const char *log)
{
	return th_count(log, "CHD3008 label=expiring kind=personal subject=\"");
}

static void wait_count(struct chan_qm *q, int atleast, int timeout_ms, int *got)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		char *log = chan_log(q);
		*got = log ? count_expiring(log) : 0;
		free(log);
		if (*got >= atleast || now_ms() > end)
			return;
		usleep(100 * 1000);
	}
}

Test(metrics, expiry_warning_at_start_refresh_and_timer)
{
	const struct chan_qm_opts o = { .label = "expiring", .cert = "expiring.pem",
	                                .key = "expiring.key" };
	int n = 0;

	chan_qm_start(&qm, "QMEXP", &o);
	wait_count(&qm, 1, 10000, &n);
	cr_assert_eq(n, 1, "no (or more than one) CHD3008 at start");
	char *log = chan_log(&qm);
	const char *l = strstr(log, "CHD3008 label=expiring");
	cr_assert_not_null(l);
	cr_expect(strstr(l, "CN=EXPIRING") != NULL, "%.300s", l);
	cr_expect(strstr(l, "days_left=9 ") != NULL || strstr(l, "days_left=10 ") != NULL ||
	          strstr(l, "days_left=8 ") != NULL, "%.300s", l);
	cr_expect(strstr(l, "certificate expires soon") != NULL, "%.300s", l);
	/* The CA certificates are valid for years: no warning for them, nor
	 * for any chain certificate. */
	cr_expect_eq(th_count(log, "CHD3008"), 1, "%s", log);
	free(log);

	/* refresh security checks again. */
	free(chan_ctl_ok(&qm, NULL, "refresh security"));
	wait_count(&qm, 2, 10000, &n);
	cr_expect_eq(n, 2, "no CHD3008 after refresh security");

	/* A warning threshold below the days left: silence. */
	chan_qm_finish(&qm);
	const struct chan_qm_opts quiet = { .label = "expiring", .cert = "expiring.pem",
	                                    .key = "expiring.key",
	                                    .extra_conf = "tls = { expiry_warning_days = 5; };" };
	chan_qm_start(&qm, "QMEXP", &quiet);
	free(chan_ctl_ok(&qm, NULL, "refresh security"));
	usleep(1500 * 1000);
	log = chan_log(&qm);
	cr_expect_eq(th_count(log, "CHD3008"), 0, "%s", log);
	free(log);
	chan_qm_finish(&qm);

	/* The daily check, its interval shortened by the test hook. */
	setenv("CHAND_TEST_EXPIRY_INTERVAL_MS", "300", 1);
	chan_qm_start(&qm, "QMEXP", &o);
	wait_count(&qm, 4, 10000, &n);
	cr_expect_geq(n, 4, "the periodic check did not repeat");
	log = chan_log(&qm);
	cr_expect(strstr(log, "CHAND_TEST_EXPIRY_INTERVAL_MS test hook") != NULL);
	free(log);
}

/* ---- never root ---- */

Test(metrics, root_refused_without_user_or_allow_root)
{
	char conf[512], *out = NULL, *err = NULL;
	FILE *f;

	if (geteuid() != 0)
		cr_skip_test("needs root");
	tmpdir = th_tempdir("root");
	snprintf(conf, sizeof(conf), "%s/chand.conf", tmpdir);
	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QMROOT\";\ndata_dir = \"%s\";\nlisteners = ();\n"
	        "log = { syslog = false; };\n", tmpdir);
	fclose(f);
	int rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect_eq(th_count(err, "\n"), 1, "not one line: %s", err);
	cr_expect(strstr(err, "CHD1008") != NULL, "%s", err);
	cr_expect(strstr(err, "refusing to run as root") != NULL, "%s", err);
	free(out);
	free(err);
	/* Nothing was created in data_dir. */
	char p[600];
	snprintf(p, sizeof(p), "%s/QMROOT.db", tmpdir);
	cr_expect_neq(access(p, F_OK), 0);
	/* Daemon mode reports it too. */
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s'", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "CHD1008") != NULL, "%s", err);
	free(out);
	free(err);
}

static long status_uid(pid_t pid, const char *field)
{
	char path[64], *s;
	long a = -1, b = -1, c = -1, d = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	s = th_read_file(path);
	cr_assert_not_null(s);
	const char *l = strstr(s, field);
	cr_assert_not_null(l);
	cr_assert_eq(sscanf(l + strlen(field), "%ld %ld %ld %ld", &a, &b, &c, &d), 4);
	free(s);
	/* Real, effective, saved and filesystem ids must all be the same. */
	cr_expect(a == b && b == c && c == d, "%s %ld %ld %ld %ld", field, a, b, c, d);
	return a;
}

Test(metrics, root_drops_to_user)
{
	struct passwd *pw;
	char *out = NULL, *err = NULL;

	if (geteuid() != 0)
		cr_skip_test("needs root");
	pw = getpwnam("nobody");
	if (pw == NULL)
		cr_skip_test("no user nobody");
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	tmpdir = th_tempdir("drop");

	/* data_dir not owned by the user: refused with the reason. */
	char conf[512];
	snprintf(conf, sizeof(conf), "%s/chand.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QMDROP\";\ndata_dir = \"%s\";\nuser = \"nobody\";\n", tmpdir);
	fclose(f);
	int rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "is owned by uid 0, not by user nobody") != NULL, "%s", err);
	free(out);
	free(err);

	/* Chowned: it runs as nobody and chanctl (root) is served. */
	cr_assert_eq(chown(tmpdir, uid, gid), 0);
	cr_assert_eq(th_agent_start(&ag, "QMDROP", tmpdir, "user = \"nobody\";"), 0);
	cr_expect_eq(status_uid(ag.pid, "Uid:"), (long)uid);
	cr_expect_eq(status_uid(ag.pid, "Gid:"), (long)gid);
	cr_expect_eq(th_ctl(&ag, "x\n", NULL, NULL, "define qlocal Q"), 0);
	cr_expect_eq(th_ctl(&ag, "x\n", NULL, &err, "put Q"), 0, "%s", err);
	free(err);
	struct stat st;
	char db[600];
	snprintf(db, sizeof(db), "%s/QMDROP.db", tmpdir);
	cr_assert_eq(stat(db, &st), 0);
	cr_expect_eq(st.st_uid, uid, "the database belongs to uid %ld", (long)st.st_uid);
	char *log = th_read_file(ag.log);
	cr_expect(strstr(log, "user=nobody") != NULL && strstr(log, "dropped root privileges"),
	          "%s", log);
	free(log);
	cr_expect_eq(th_agent_stop(&ag), 0);
	ag.dir[0] = '\0';    /* tmpdir: removed by fini */
}

Test(metrics, privilege_keys_checked)
{
	char conf[512], *out = NULL, *err = NULL, want[2048];
	FILE *f;

	tmpdir = th_tempdir("privkeys");
	snprintf(conf, sizeof(conf), "%s/chand.conf", tmpdir);
	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\nuser = \"no-such-user-x\";\n"
	        "allow_root = 1;\n", tmpdir);
	fclose(f);
	int rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	snprintf(want, sizeof(want), "%1$s:4: 'allow_root' must be a boolean (true or false)\n"
	         "%1$s:3: 'user': no such user 'no-such-user-x'\n", conf);
	cr_expect_str_eq(err, want);
	free(out);
	free(err);

	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\ngroup = \"nogroup\";\n", tmpdir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	snprintf(want, sizeof(want), "%s:3: 'group' needs 'user' (the user to run as)\n", conf);
	cr_expect_str_eq(err, want);
	free(out);
	free(err);

	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\nuser = \"root\";\n", tmpdir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	snprintf(want, sizeof(want), "%s:3: 'user' root is root: name an unprivileged user\n", conf);
	cr_expect_str_eq(err, want);
	free(out);
	free(err);
}
