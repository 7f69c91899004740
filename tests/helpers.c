#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

const char *th_chand_bin(void)
{
	const char *p = getenv("CHAND_BIN");
	return p ? p : TEST_BUILDDIR "/chand";
}

const char *th_chanctl_bin(void)
{
	const char *p = getenv("CHANCTL_BIN");
	return p ? p : TEST_BUILDDIR "/chanctl";
}

char *th_tempdir(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/chand-%s-XXXXXX", tmp ? tmp : "/tmp", tag ? tag : "t") < 0)
		return NULL;
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

void th_rmtree(const char *path)
{
	if (path != NULL && getenv("TEST_KEEP") == NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int th_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

char *th_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL)
		return NULL;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

int th_count(const char *hay, const char *needle)
{
	int n = 0;
	size_t nl = strlen(needle);

	if (hay == NULL || nl == 0)
		return 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += nl)
		n++;
	return n;
}

static int vsh(const char *stdin_data, char **out, char **err, int timeout_s,
               const char *fmt, va_list ap)
{
	char *cmd;
	int pin[2], pout[2], perr[2];
	pid_t pid;

	/* A child that exits early must not kill the test through its stdin. */
	signal(SIGPIPE, SIG_IGN);
	if (vasprintf(&cmd, fmt, ap) < 0)
		return -1;
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		free(cmd);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);

	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0, inoff = 0, inlen = stdin_data ? strlen(stdin_data) : 0;
	FILE *om = open_memstream(&obuf, &olen), *em = open_memstream(&ebuf, &elen);
	int infd = pin[1];
	bool oopen = true, eopen = true, timed_out = false;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (inlen == 0) {
		close(infd);
		infd = -1;
	}
	while (oopen || eopen) {
		struct pollfd pf[3] = {
			{ .fd = oopen ? pout[0] : -1, .events = POLLIN },
			{ .fd = eopen ? perr[0] : -1, .events = POLLIN },
			{ .fd = infd, .events = POLLOUT },
		};
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = timeout_s * 1000L - ((now.tv_sec - t0.tv_sec) * 1000L +
		                                 (now.tv_nsec - t0.tv_nsec) / 1000000L);
		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pf, 3, (int)left) < 0 && errno != EINTR)
			break;
		char buf[65536];
		if (pf[0].revents) {
			ssize_t r = read(pout[0], buf, sizeof(buf));
			if (r > 0) fwrite(buf, 1, (size_t)r, om); else oopen = false;
		}
		if (pf[1].revents) {
			ssize_t r = read(perr[0], buf, sizeof(buf));
			if (r > 0) fwrite(buf, 1, (size_t)r, em); else eopen = false;
		}
		if (infd >= 0 && pf[2].revents) {
			ssize_t w = write(infd, stdin_data + inoff, inlen - inoff);
			if (w > 0)
				inoff += (size_t)w;
			if (w < 0 && errno != EAGAIN) {
				close(infd);
				infd = -1;
			} else if (inoff == inlen) {
				close(infd);
				infd = -1;
			}
		}
	}
	if (infd >= 0)
		close(infd);
	close(pout[0]);
	close(perr[0]);
	fclose(om);
	fclose(em);
	int st = 0;
	waitpid(pid, &st, 0);
	if (out) *out = obuf; else free(obuf);
	if (err) *err = ebuf; else free(ebuf);
	if (timed_out)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

int th_sh(const char *stdin_data, char **out, char **err, int timeout_s, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsh(stdin_data, out, err, timeout_s, fmt, ap);
	va_end(ap);
	return rc;
}

int th_ctl(struct th_agent *a, const char *stdin_data, char **out, char **err, const char *fmt, ...)
{
	va_list ap;
	char *args, *full;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0) {
		va_end(ap);
		return -1;
	}
	va_end(ap);
	if (asprintf(&full, "'%s' -s '%s' %s", th_chanctl_bin(), a->sock, args) < 0) {
		free(args);
		return -1;
	}
	rc = th_sh(stdin_data, out, err, 30, "%s", full);
	free(args);
	free(full);
	return rc;
}

static bool sock_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0 || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= (int)sizeof(sa.sun_path)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int spawn(struct th_agent *a)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(th_chand_bin(), "chand", "-c", a->conf, "-f", (char *)NULL);
		_exit(127);
	}
	a->pid = pid;
	for (int i = 0; i < 1000; i++) {
		if (sock_answers(a->sock))
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			a->pid = 0;
			break;
		}
		usleep(10000);
	}
	char *log = th_read_file(a->log);
	fprintf(stderr, "agent %s did not start; log:\n%s\n", a->qmgr, log ? log : "(none)");
	free(log);
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
	}
	return -1;
}

int th_agent_start(struct th_agent *a, const char *qmgr, const char *dir, const char *extra_conf)
{
	return th_agent_start_admin(a, qmgr, dir, NULL, extra_conf);
}

int th_agent_start_admin(struct th_agent *a, const char *qmgr, const char *dir,
                         const char *admin_conf, const char *extra_conf)
{
	FILE *f;

	memset(a, 0, sizeof(*a));
	snprintf(a->qmgr, sizeof(a->qmgr), "%s", qmgr);
	if (dir == NULL) {
		char *t = th_tempdir(qmgr);
		if (t == NULL)
			return -1;
		snprintf(a->dir, sizeof(a->dir), "%s", t);
		free(t);
	} else {
		snprintf(a->dir, sizeof(a->dir), "%s", dir);
	}
	a->port = th_free_port();
	snprintf(a->conf, sizeof(a->conf), "%s/chand.conf", a->dir);
	snprintf(a->sock, sizeof(a->sock), "%s/chand.sock", a->dir);
	snprintf(a->log, sizeof(a->log), "%s/chand.log", a->dir);
	f = fopen(a->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "qmgr = \"%s\";\ndata_dir = \"%s\";\n"
	        "listeners = ( { address = \"127.0.0.1\"; port = %d; } );\n"
	        "admin = { socket = \"%s\"; %s };\n"
	        "log = { level = \"debug\"; syslog = false; file = \"\"; };\n%s%s\n",
	        qmgr, a->dir, a->port, a->sock, admin_conf ? admin_conf : "mode = \"0600\";",
	        geteuid() == 0 ? "allow_root = true;\n" : "", extra_conf ? extra_conf : "");
	fclose(f);
	return spawn(a);
}

int th_agent_restart(struct th_agent *a)
{
	return spawn(a);
}

int th_agent_stop(struct th_agent *a)
{
	int st = 0;

	if (a->pid <= 0)
		return -1;
	kill(a->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(a->pid, SIGKILL);
	waitpid(a->pid, &st, 0);
	a->pid = 0;
	return -1;
}

void th_agent_kill9(struct th_agent *a)
{
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
	}
}

bool th_agent_alive(struct th_agent *a)
{
	return a->pid > 0 && waitpid(a->pid, NULL, WNOHANG) == 0;
}
