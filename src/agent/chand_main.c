/* chand: the channel agent.  chand [-c FILE] [-f] [-d] [--check-config] [--version] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/admin.h"
#include "chand/config.h"
#include "chand/log.h"
#include "chand/store.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: chand [-c FILE] [-f] [-d] [--check-config] [--version]\n"
	        "  -c FILE          configuration file (default %s)\n"
	        "  -f               stay in the foreground and log to stderr too\n"
	        "  -d               log at debug level\n"
	        "  --check-config   check the configuration and exit\n"
	        "  --version        print the version and exit\n", CFG_DEFAULT_PATH);
}

struct daemon_ready {
	int fd;
	const struct chand_config *cfg;
};

/* Daemon mode: the parent waits on a pipe until the child serves (it
 * then exits 0) or dies (it exits 1), so `chand` in an init script
 * reports a failed start and its reason on the terminal. */
static void daemon_ready(void *arg)
{
	struct daemon_ready *dr = arg;
	struct log_config lc = {
		.ident = dr->cfg->qmgr, .level = log_get_level(), .to_stderr = false,
		.to_syslog = dr->cfg->log_syslog, .file = dr->cfg->log_file,
	};
	char err[256];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (log_open(&lc, err, sizeof(err)) != 0)
		log_warn(code_str(CHD_LOG_FAILED), "%s", err);
	if (write(dr->fd, "R", 1) != 1)
		log_warn(code_str(CHD_SYS_RESOURCE), "cannot notify the parent process: %s", strerror(errno));
	close(dr->fd);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
}

static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "chand: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "chand: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		char c;
		int st;
		close(p[1]);
		if (read(p[0], &c, 1) == 1 && c == 'R')
			_exit(0);
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) != 0)
			_exit(WEXITSTATUS(st));
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		return -1;
	if (chdir("/") != 0)
		return -1;
	*ready_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = CFG_DEFAULT_PATH;
	bool foreground = false, debug = false, check = false;
	struct chand_config cfg;
	struct cfg_errors errs;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:fdh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'f': foreground = true; break;
		case 'd': debug = true; break;
		case 'C': check = true; break;
		case 'V':
			printf("chand %s (admin protocol %d, database schema %d)\n", CHAND_VERSION,
			       ADMIN_PROTOCOL_VERSION, store_schema_version());
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chand: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	memtrim_init();
	if (store_process_init() != STORE_OK)
		fprintf(stderr, "chand: SQLite was in use before its page cache could be set up\n");
	rc = cfg_load(&cfg, file, CFG_AGENT | (foreground ? CFG_FOREGROUND : 0), &errs);
	if (rc != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		if (!check)
			fprintf(stderr, "chand: %s: configuration error (CHD1003)\n", file);
		cfg_errors_free(&errs);
		cfg_free(&cfg);
		return 1;
	}
	cfg_errors_free(&errs);
	if (check) {
		printf("configuration OK\n");
		cfg_free(&cfg);
		return 0;
	}

	struct log_config lc = {
		.ident = cfg.qmgr, .level = debug ? CHLOG_DEBUG : cfg.log_level,
		/* Until the daemon detaches, errors also go to the terminal. */
		.to_stderr = true, .to_syslog = cfg.log_syslog, .file = cfg.log_file,
	};
	char err[512];
	if (log_open(&lc, err, sizeof(err)) != 0) {
		fprintf(stderr, "chand: %s\n", err);
		cfg_free(&cfg);
		return 1;
	}

	/* Before detaching, so that the refusal reaches the terminal. */
	if (privs_check(&cfg) != 0) {
		log_close();
		cfg_free(&cfg);
		return 1;
	}

	struct daemon_ready dr = { .fd = -1, .cfg = &cfg };
	if (!foreground && daemonize(&dr.fd) != 0) {
		cfg_free(&cfg);
		return 1;
	}
	rc = agent_run(&cfg, foreground ? NULL : daemon_ready, &dr);
	log_close();
	cfg_free(&cfg);
	return rc;
}
