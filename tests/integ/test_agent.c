/* The agent process: start, --check-config, --version, the data
 * directory lock, the admin socket (stale, taken, credentials, malformed
 * frames), signals, daemon mode and chanctl's usage errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#include "chand/admin.h"

static struct th_agent ag;
static pid_t daemon_pid;   /* a detached agent: no PR_SET_PDEATHSIG for it */

static void fini(void)
{
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	th_agent_kill9(&ag);
	th_rmtree(ag.dir);
}

TestSuite(agent, .fini = fini, .timeout = 60);

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

/* A connected raw admin socket, or -1. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= (int)sizeof(sa.sun_path)) {
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one reply frame (5 s at most); NULL if the agent closed. */
static json_t *raw_reply(int fd)
{
	struct admin_io io;
	json_t *j = NULL;
	char err[200];

	admin_io_init(&io, fd);
	if (admin_io_read(&io, &j, 5000, err, sizeof(err)) != ADMIN_IO_OK)
		j = NULL;
	admin_io_free(&io);
	return j;
}

Test(agent, version_and_check_config)
{
	char *out = NULL, *err = NULL, *dir = th_tempdir("cfg");
	int rc;

	rc = th_sh(NULL, &out, &err, 10, "'%s' --version", th_chand_bin());
	cr_expect_eq(rc, 0);
	cr_expect(strncmp(out, "chand 0.1.0 (admin protocol 1,", 30) == 0, "%s", out);
	free(out);
	free(err);

	/* A good file. */
	char conf[512];
	snprintf(conf, sizeof(conf), "%s/good.conf", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s\";\n", dir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 0, "%s", err);
	cr_expect_str_eq(out, "configuration OK\n");
	free(out);
	free(err);

	/* Every error with its line, exit 1. */
	snprintf(conf, sizeof(conf), "%s/bad.conf", dir);
	f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QM1\";\ndata_dir = \"%s/nope\";\nlimits = { max_channels = \"x\"; };\n"
	        "colour = 3;\n", dir);
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' --check-config", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	char want[2048];
	snprintf(want, sizeof(want), "%1$s:3: 'limits.max_channels' must be an integer\n"
	         "%1$s:4: unknown key 'colour'\n%1$s:2: data_dir %2$s/nope: does not exist\n", conf, dir);
	cr_expect_str_eq(err, want);
	cr_expect_str_eq(out, "");
	free(out);
	free(err);

	/* Starting with it fails the same way, naming CHD1003. */
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "configuration error (CHD1003)") != NULL, "%s", err);
	free(out);
	free(err);
	th_rmtree(dir);
	free(dir);
}

Test(agent, starts_serves_and_stops_cleanly)
{
	char *log, *out = NULL;

	cr_assert_eq(th_agent_start(&ag, "QMSTART", NULL, NULL), 0);
	cr_expect_eq(th_ctl(&ag, NULL, &out, NULL, "display queue"), 0);
	free(out);
	log = th_read_file(ag.log);
	cr_expect(strstr(log, "CHD1001 version=0.1.0 qmgr=QMSTART") != NULL, "%s", log);
	cr_expect(strstr(log, "listeners=127.0.0.1:") != NULL, "%s", log);
	free(log);
	cr_expect_eq(th_agent_stop(&ag), 0);
	cr_expect_not(exists(ag.sock), "the admin socket must be removed on SIGTERM");
	log = th_read_file(ag.log);
	cr_expect(strstr(log, "CHD1002 qmgr=QMSTART queue manager stopped") != NULL, "%s", log);
	free(log);
}

Test(agent, second_agent_on_same_data_dir_refused)
{
	char *out = NULL, *err = NULL, want[512];
	int rc;

	cr_assert_eq(th_agent_start(&ag, "QMLOCK", NULL, NULL), 0);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' -f", th_chand_bin(), ag.conf);
	cr_expect_eq(rc, 1);
	snprintf(want, sizeof(want), "CHD1004 data directory %s is in use by another chand (pid %ld)",
	         ag.dir, (long)ag.pid);
	cr_expect(strstr(err, want) != NULL, "want '%s' in:\n%s", want, err);
	free(out);
	free(err);
	/* The first one is untouched. */
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "display queue"), 0);
	cr_expect(exists(ag.sock));
}

Test(agent, socket_of_another_agent_refused_stale_one_replaced)
{
	char *out = NULL, *err = NULL, conf[512];
	char *dir2 = th_tempdir("sock2");
	int rc;

	cr_assert_eq(th_agent_start(&ag, "QMSOCK", NULL, NULL), 0);
	/* Another data_dir, the same socket. */
	snprintf(conf, sizeof(conf), "%s/chand.conf", dir2);
	FILE *f = fopen(conf, "w");
	fprintf(f, "qmgr = \"QMSOCK2\";\ndata_dir = \"%s\";\nlisteners = ();\n"
	        "admin = { socket = \"%s\"; };\nlog = { syslog = false; };\n%s", dir2, ag.sock,
	        geteuid() == 0 ? "allow_root = true;\n" : "");
	fclose(f);
	rc = th_sh(NULL, &out, &err, 10, "'%s' -c '%s' -f", th_chand_bin(), conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "another agent answers at ") != NULL, "%s", err);
	free(out);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "display queue"), 0);

	/* kill -9 leaves the socket file behind; a restart replaces it. */
	th_agent_kill9(&ag);
	cr_expect(exists(ag.sock));
	cr_assert_eq(th_agent_restart(&ag), 0);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "display queue"), 0);
	th_rmtree(dir2);
	free(dir2);
}

Test(agent, no_agent_at_socket)
{
	char *err = NULL;
	int rc = th_sh(NULL, NULL, &err, 10, "'%s' -s /nonexistent/chand.sock display queue",
	               th_chanctl_bin());

	cr_expect_eq(rc, 1);
	cr_expect_str_eq(err, "chanctl: no agent at /nonexistent/chand.sock (CHD6004)\n");
	free(err);
}

Test(agent, sighup_reopens_the_log_file)
{
	char path[400], moved[420], *log;

	/* The helper's config logs to stderr only: rewrite it with a file. */
	cr_assert_eq(th_agent_start(&ag, "QMHUP", NULL, NULL), 0);
	th_agent_stop(&ag);
	snprintf(path, sizeof(path), "%s/agent.log", ag.dir);
	FILE *f = fopen(ag.conf, "w");
	fprintf(f, "qmgr = \"QMHUP\";\ndata_dir = \"%s\";\nlisteners = ();\n"
	        "admin = { socket = \"%s\"; mode = \"0600\"; };\n"
	        "log = { level = \"info\"; syslog = false; file = \"agent.log\"; };\n%s", ag.dir,
	        ag.sock, geteuid() == 0 ? "allow_root = true;\n" : "");
	fclose(f);
	cr_assert_eq(th_agent_restart(&ag), 0);
	snprintf(moved, sizeof(moved), "%s.1", path);
	cr_assert_eq(rename(path, moved), 0);
	kill(ag.pid, SIGHUP);
	usleep(300000);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal AFTER.HUP"), 0);
	log = th_read_file(path);
	cr_assert_not_null(log, "SIGHUP must reopen %s", path);
	cr_expect(strstr(log, "queue=AFTER.HUP") != NULL, "%s", log);
	free(log);
	log = th_read_file(moved);
	cr_expect(strstr(log, "CHD1001") != NULL);
	cr_expect(strstr(log, "AFTER.HUP") == NULL);
	free(log);
	cr_expect_eq(th_agent_stop(&ag), 0);
}

Test(agent, malformed_frames_close_only_that_client)
{
	int fd;
	json_t *r;
	char *log;

	cr_assert_eq(th_agent_start(&ag, "QMBAD", NULL, NULL), 0);
	/* A length above the limit: refused before anything is allocated. */
	fd = raw_connect(ag.sock);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\xff\xff\xff\xff\0\0\0\0", 8), 8);
	cr_expect_null(r = raw_reply(fd), "the agent must close the connection");
	json_decref(r);
	close(fd);

	/* A sane length, garbage JSON. */
	fd = raw_connect(ag.sock);
	cr_assert_eq(write(fd, "\0\0\0\x08\0\0\0\0{garbage", 16), 16);
	cr_expect_null(r = raw_reply(fd));
	json_decref(r);
	close(fd);

	/* Well-formed JSON without the envelope: an error reply, then closed. */
	fd = raw_connect(ag.sock);
	cr_assert_eq(write(fd, "\0\0\0\x02\0\0\0\0{}", 10), 10);
	r = raw_reply(fd);
	cr_assert_not_null(r);
	cr_expect_str_eq(json_string_value(json_object_get(r, "code")), "CHD6002");
	json_decref(r);
	cr_expect_null(r = raw_reply(fd));
	close(fd);

	/* Another protocol version: named in the reply. */
	fd = raw_connect(ag.sock);
	const char *req = "{\"v\":99,\"cmd\":\"display queue\"}";
	uint8_t hdr[ADMIN_HDR_LEN];
	admin_hdr_encode((uint32_t)strlen(req), 0, hdr);
	cr_assert_eq(write(fd, hdr, ADMIN_HDR_LEN), ADMIN_HDR_LEN);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	r = raw_reply(fd);
	cr_assert_not_null(r);
	cr_expect_str_eq(json_string_value(json_object_get(r, "code")), "CHD6003");
	cr_expect_str_eq(json_string_value(json_object_get(r, "error")),
	                 "incompatible chanctl (protocol 99) and chand (protocol 1)");
	json_decref(r);
	close(fd);

	/* A client that connects and stalls mid-frame does not block others. */
	int stuck = raw_connect(ag.sock);
	cr_assert_eq(write(stuck, "\0\0\x10\0\0\0\0\0{", 9), 9);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal STILL.SERVING"), 0);
	close(stuck);

	log = th_read_file(ag.log);
	cr_expect(th_count(log, "CHD6002") >= 3, "%s", log);
	cr_expect(strstr(log, "bad frame length 4294967295") != NULL, "%s", log);
	free(log);
	cr_expect(th_agent_alive(&ag));
}

/* In a child as uid/gid 65534: one display request; exits 0 if the
 * reply's code is want_code (or ok when want_code is NULL). */
static int as_nobody(const char *sock, const char *want_code)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		int fd = raw_connect(sock);
		if (fd < 0)
			_exit(11);
		json_t *req = admin_request_new("display queue");
		size_t len;
		uint8_t *f = admin_frame_encode(req, &len);
		if (write(fd, f, len) != (ssize_t)len)
			_exit(12);
		json_t *r = raw_reply(fd);
		if (r == NULL)
			_exit(13);
		if (want_code == NULL)
			_exit(json_is_true(json_object_get(r, "ok")) ? 0 : 14);
		const char *code = json_string_value(json_object_get(r, "code"));
		_exit(code != NULL && strcmp(code, want_code) == 0 ? 0 : 15);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(agent, other_users_are_refused)
{
	char *log;

	if (geteuid() != 0)
		cr_skip_test("needs root to become another user (uid 65534)");
	/* The socket itself lets everyone connect: the credential check
	 * on accept is what refuses. */
	cr_assert_eq(th_agent_start_admin(&ag, "QMCRED", NULL, "mode = \"0666\";", NULL), 0);
	chmod(ag.dir, 0755);
	cr_expect_eq(as_nobody(ag.sock, "CHD6001"), 0);
	log = th_read_file(ag.log);
	cr_expect(strstr(log, "CHD6001 uid=65534 pid=") != NULL, "%s", log);
	free(log);
	/* The owner still gets in. */
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "display queue"), 0);
}

Test(agent, admin_group_members_are_allowed)
{
	struct group *g = getgrgid(65534);
	char admin[200];

	if (geteuid() != 0)
		cr_skip_test("needs root to become another user (uid 65534)");
	if (g == NULL)
		cr_skip_test("no group with gid 65534 on this system");
	snprintf(admin, sizeof(admin), "mode = \"0660\"; group = \"%s\";", g->gr_name);
	cr_assert_eq(th_agent_start_admin(&ag, "QMGRP", NULL, admin, NULL), 0);
	chmod(ag.dir, 0755);
	struct stat st;
	cr_assert_eq(stat(ag.sock, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0660);
	cr_expect_eq(st.st_gid, 65534);
	cr_expect_eq(as_nobody(ag.sock, NULL), 0);
}

struct bg_ctl {
	struct th_agent *a;
	const char *args;
	int rc;
	char *out, *err;
};

static void *bg_ctl_run(void *arg)
{
	struct bg_ctl *b = arg;
	b->rc = th_ctl(b->a, NULL, &b->out, &b->err, "%s", b->args);
	return NULL;
}

Test(agent, sigterm_ends_waiting_clients_and_exits_zero)
{
	pthread_t t;
	struct bg_ctl b = { &ag, "get W --wait 60", 0, NULL, NULL };

	cr_assert_eq(th_agent_start(&ag, "QMTERM", NULL, NULL), 0);
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal W"), 0);
	pthread_create(&t, NULL, bg_ctl_run, &b);
	usleep(500000);
	int64_t t0 = time(NULL);
	cr_expect_eq(th_agent_stop(&ag), 0);
	cr_expect_leq(time(NULL) - t0, 8, "shutdown must be bounded");
	pthread_join(t, NULL);
	cr_expect_eq(b.rc, 1);
	const char *e = b.err ? b.err : "";
	cr_expect(strstr(e, "(CHD1002)") != NULL || strstr(e, "(CHD6004)") != NULL, "%s", e);
	free(b.out);
	free(b.err);
	cr_expect_not(exists(ag.sock));
}

Test(agent, daemon_mode_detaches_and_reports_failures)
{
	char *out = NULL, *err = NULL, lock[400], *pidtxt;
	int rc;

	/* Write the config through the helper, then run without -f. */
	cr_assert_eq(th_agent_start(&ag, "QMDAEMON", NULL, NULL), 0);
	th_agent_stop(&ag);
	rc = th_sh(NULL, &out, &err, 15, "'%s' -c '%s'", th_chand_bin(), ag.conf);
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	cr_expect_eq(th_ctl(&ag, NULL, NULL, NULL, "display queue"), 0);
	snprintf(lock, sizeof(lock), "%s/QMDAEMON.lock", ag.dir);
	pidtxt = th_read_file(lock);
	cr_assert_not_null(pidtxt);
	pid_t pid = (pid_t)atol(pidtxt);
	free(pidtxt);
	cr_assert_gt(pid, 1);
	daemon_pid = pid;

	/* A second daemon fails in the foreground of its caller. */
	rc = th_sh(NULL, &out, &err, 15, "'%s' -c '%s'", th_chand_bin(), ag.conf);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(err, "CHD1004") != NULL, "%s", err);
	free(out);
	free(err);

	kill(pid, SIGTERM);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
		usleep(10000);
	cr_expect_neq(kill(pid, 0), 0, "the daemon must exit on SIGTERM");
	if (kill(pid, 0) == 0)
		kill(pid, SIGKILL);
	else
		daemon_pid = 0;
	cr_expect_not(exists(ag.sock));
}

Test(agent, chanctl_usage_errors_list_valid_words)
{
	char *err = NULL;
	const char *bin = th_chanctl_bin();

	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x frobnicate", bin), 2);
	cr_expect(strstr(err, "chanctl: unknown command 'frobnicate'; valid: ") != NULL, "%s", err);
	cr_expect(strstr(err, "define") && strstr(err, "get") && strstr(err, "put"), "%s", err);
	free(err);
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x d", bin), 2);
	cr_expect(strstr(err, "chanctl: ambiguous command 'd'; could be: define, delete, display")
	          != NULL, "%s", err);
	free(err);
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x define", bin), 2);
	cr_expect(strstr(err, "chanctl: missing argument after 'define'; valid: ") != NULL, "%s", err);
	cr_expect(strstr(err, "qlocal, qremote") != NULL, "%s", err);
	free(err);
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x define qlocal Q --maxdeth 3", bin), 2);
	cr_expect(strstr(err, "chanctl: unknown option '--maxdeth' for 'define qlocal'; valid: "
	                 "--maxdepth") != NULL, "%s", err);
	free(err);
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x define qlocal Q --maxdepth many", bin), 2);
	cr_expect(strstr(err, "--maxdepth wants a number from 1 to 999999999 (got 'many')") != NULL,
	          "%s", err);
	free(err);
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /x get", bin), 2);
	cr_expect(strstr(err, "missing argument for 'get'; usage: chanctl get QUEUE") != NULL, "%s", err);
	free(err);
	/* Unique prefixes are accepted: "disp q" is display queue (and needs
	 * the agent: none here). */
	cr_expect_eq(th_sh(NULL, NULL, &err, 10, "'%s' -s /nonexistent disp q", bin), 1);
	cr_expect(strstr(err, "no agent at /nonexistent (CHD6004)") != NULL, "%s", err);
	free(err);
}

/* Which agent chanctl talks to (doc/ADMIN.md section 2): -s, -c, -m QMGR (the
 * config under the system configuration directory, like runmqsc QM1), else
 * $CHAND_CONF; naming two is a usage error. */
Test(agent, chanctl_finds_the_agent_by_chand_conf_and_m)
{
	char *out = NULL, *err = NULL;
	int rc;

	cr_assert_eq(th_agent_start(&ag, "QMENV", NULL, NULL), 0);
	rc = th_sh(NULL, &out, &err, 30, "CHAND_CONF='%s' '%s' display queue", ag.conf,
	           th_chanctl_bin());
	cr_expect_eq(rc, 0, "CHAND_CONF: exit %d: %s", rc, err ? err : "");
	free(out);
	free(err);
	/* -m names a configuration that is not there: the error says which */
	rc = th_sh(NULL, &out, &err, 30, "'%s' -m QMNOSUCH display queue", th_chanctl_bin());
	cr_expect_neq(rc, 0);
	cr_expect(err != NULL && strstr(err, "QMNOSUCH.conf") != NULL, "%s", err ? err : "");
	free(out);
	free(err);
	rc = th_sh(NULL, &out, &err, 30, "'%s' -m QMENV -s '%s' display queue", th_chanctl_bin(),
	           ag.sock);
	cr_expect_eq(rc, 2, "two ways to name the agent: exit %d", rc);
	free(out);
	free(err);
}

/* --json: an error is one JSON object on stderr (code, message); exit
 * codes as without it. */
Test(agent, json_errors_are_objects)
{
	char *out = NULL, *err = NULL;
	json_error_t je;
	int rc = th_sh(NULL, &out, &err, 30, "'%s' --json -s /nonexistent/chand.sock display queue",
	               th_chanctl_bin());

	cr_expect_eq(rc, 1);
	json_t *o = json_loads(err != NULL ? err : "", 0, &je);
	cr_assert_not_null(o, "stderr is not one JSON object: %s", err ? err : "");
	cr_expect_str_eq(json_string_value(json_object_get(o, "code")), "CHD6004");
	cr_expect_not_null(strstr(json_string_value(json_object_get(o, "message")), "nonexistent"));
	json_decref(o);
	free(out);
	free(err);
	rc = th_sh(NULL, &out, &err, 30, "'%s' --json define qlocal", th_chanctl_bin());
	cr_expect_eq(rc, 2);
	o = json_loads(err != NULL ? err : "", 0, &je);
	cr_assert_not_null(o, "usage error is not a JSON object: %s", err ? err : "");
	cr_expect_str_eq(json_string_value(json_object_get(o, "code")), "usage");
	json_decref(o);
	free(out);
	free(err);
}

/* chanctl stop qmgr (like endmqm): a clean stop through the admin socket;
 * it returns once the agent is gone, and the lock file keeps no pid. */
Test(agent, stop_qmgr_returns_when_gone_and_leaves_no_pid)
{
	char *out = NULL, *err = NULL, lock[400], *text;

	cr_assert_eq(th_agent_start(&ag, "QMEND", NULL, NULL), 0);
	int rc = th_ctl(&ag, NULL, &out, &err, "stop qmgr --wait 20");
	cr_assert_eq(rc, 0, "stop qmgr: exit %d: %s", rc, err ? err : "");
	cr_expect(out != NULL && strstr(out, "stopped") != NULL, "%s", out ? out : "");
	free(out);
	free(err);
	/* chanctl returned once the socket stopped answering: the process ends
	 * (it may still be closing its database) within a bound */
	for (int i = 0; i < 100 && th_agent_alive(&ag); i++)
		usleep(100 * 1000);
	cr_assert(!th_agent_alive(&ag), "the agent is still running after stop qmgr");
	snprintf(lock, sizeof(lock), "%s/QMEND.lock", ag.dir);
	text = th_read_file(lock);
	cr_expect(text == NULL || text[0] == '\0', "the lock file still names a pid: %s", text);
	free(text);
	char *log = th_read_file(ag.log);
	cr_expect(log != NULL && strstr(log, "CHD1002") != NULL, "no clean stop in the log");
	free(log);
}

/* A keystore the configuration names must load: missing, the agent does
 * not start, and says why (issue 10 item 12); without keystore.path an
 * absent default keystore only limits it to plain-TCP channels. */
Test(agent, configured_keystore_missing_stops_the_start)
{
	char *dir = th_tempdir("ksmiss"), conf[600];

	cr_assert_not_null(dir);
	snprintf(conf, sizeof(conf), "keystore = { path = \"%s/absent.db\"; };", dir);
	cr_assert_neq(th_agent_start(&ag, "QMKS", dir, conf), 0,
	              "the agent started without its configured keystore");
	char *log = th_read_file(ag.log);
	cr_expect(log != NULL && strstr(log, "CHD3001") != NULL && strstr(log, "absent.db") != NULL,
	          "%s", log ? log : "(no log)");
	free(log);
	th_rmtree(dir);
	free(dir);
}

/* VmRSS of a process in KiB, or -1. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* True if the process maps a sanitizer runtime (its allocator replaces
 * glibc's: scripts/tsan.sh runs these tests against a TSan agent). */
static bool maps_sanitizer(pid_t pid)
{
	char path[64];
	char *maps;
	bool yes;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((maps = th_read_file(path)) == NULL)
		return false;
	yes = strstr(maps, "libtsan") != NULL || strstr(maps, "libasan") != NULL;
	free(maps);
	return yes;
}

/* doc/CHANNELS.md section 9: memory freed by a drained or purged queue is
 * kept for reuse, then given back once it has gone unused for 10 s. */
Test(agent, a_purged_queues_memory_is_kept_for_reuse_then_given_back, .timeout = 120)
{
	enum { LINES = 16384, LEN = 4000 };
	char *in = malloc((size_t)LINES * (LEN + 1) + 1), *p = in;
	long before, full, purged, now = 0;
	int waited_ms = 0;

	cr_assert_not_null(in);
	for (int i = 0; i < LINES; i++) {
		p += sprintf(p, "%08d", i);
		memset(p, 'x', LEN - 8);
		p += LEN - 8;
		*p++ = '\n';
	}
	*p = '\0';
	cr_assert_eq(th_agent_start(&ag, "QMMEM", NULL, NULL), 0);
	if (maps_sanitizer(ag.pid)) {
		free(in);
		cr_skip_test("the agent runs under a sanitizer, whose allocator replaces glibc's");
	}
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "define qlocal BIG --maxdepth 100000"), 0);
	before = rss_kib(ag.pid);
	cr_assert_eq(th_ctl(&ag, in, NULL, NULL, "put BIG --nonpersistent"), 0);
	free(in);
	full = rss_kib(ag.pid);
	cr_assert_gt(full - before, 48 * 1024, "64 MiB of messages: RSS %ld -> %ld KiB", before, full);
	cr_assert_eq(th_ctl(&ag, NULL, NULL, NULL, "delete queue BIG --purge"), 0);
	purged = rss_kib(ag.pid);
	cr_expect_gt(purged, full - 16 * 1024, "kept for reuse right after the purge: %ld -> %ld KiB",
	             full, purged);
	for (waited_ms = 0; waited_ms < 60000; waited_ms += 500) {
		now = rss_kib(ag.pid);
		if (now < full - 40 * 1024)
			break;
		usleep(500 * 1000);
	}
	cr_assert_lt(now, full - 40 * 1024, "not given back within 60 s: RSS %ld KiB (full %ld)", now,
	             full);
	cr_log_info("RSS %ld KiB idle, %ld full, %ld after the purge, %ld given back %d ms later",
	            before, full, purged, now, waited_ms);
}
