/* Test harness for integration suites: temp dirs, real chand agents on
 * 127.0.0.1 with ephemeral ports, and real chanctl runs with timeouts.
 * Agents are started with PR_SET_PDEATHSIG so a failing (exiting) test
 * process never leaves one behind. */
#ifndef CHAND_TESTS_HELPERS_H
#define CHAND_TESTS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct th_agent {
	char qmgr[49];
	char dir[256];      /* data_dir and config live here */
	char conf[320];
	char sock[320];
	char log[320];
	int port;           /* listener port on 127.0.0.1 (0 if none) */
	pid_t pid;
};

/* mkdtemp under $TMPDIR (or /tmp); malloc'd path. Removed by th_rmtree. */
char *th_tempdir(const char *tag);
void th_rmtree(const char *path);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int th_free_port(void);

/* Writes <dir>/chand.conf for qmgr (listener on a free port, admin socket,
 * log file) plus extra_conf lines (may be NULL) and starts `chand -c conf -f`.
 * dir NULL: a fresh temp dir. Waits up to 10 s for the admin socket to answer.
 * Returns 0, or -1 (the log is printed to stderr). */
int th_agent_start(struct th_agent *a, const char *qmgr, const char *dir, const char *extra_conf);
/* The same with the members of the admin group other than socket given
 * (e.g. "mode = \"0666\"; group = \"nogroup\";"); NULL: mode 0600. */
int th_agent_start_admin(struct th_agent *a, const char *qmgr, const char *dir,
                         const char *admin_conf, const char *extra_conf);
/* Restarts with the same dir and config. */
int th_agent_restart(struct th_agent *a);
/* SIGTERM and wait (SIGKILL after 10 s); returns the exit status or -1. */
int th_agent_stop(struct th_agent *a);
void th_agent_kill9(struct th_agent *a);
bool th_agent_alive(struct th_agent *a);

/* Runs argv-style command line through /bin/sh -c with stdin_data (may be
 * NULL) and a timeout in seconds; captures stdout/stderr (malloc'd, may be
 * NULL pointers to discard). Returns the exit code, 128+signal if killed,
 * or -1 on timeout. */
int th_sh(const char *stdin_data, char **out, char **err, int timeout_s, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Runs "$CHANCTL_BIN -s <a->sock> ARGS" the same way (timeout 30 s). */
int th_ctl(struct th_agent *a, const char *stdin_data, char **out, char **err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Paths of the binaries under test (from CHAND_BIN / CHANCTL_BIN). */
const char *th_chand_bin(void);
const char *th_chanctl_bin(void);
/* Contents of a file (malloc'd) or NULL. */
char *th_read_file(const char *path);
/* Counts occurrences of needle in hay. */
int th_count(const char *hay, const char *needle);

#endif
