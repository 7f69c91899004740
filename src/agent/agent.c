/* The agent's life: data directory lock, database, listeners, admin
 * socket, modules, then the main loop until SIGTERM/SIGINT.
 *
 * Signals arrive through a signalfd read by the main loop (blocked in
 * every thread), so handlers never run in the middle of anything. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/log.h"

/* How long shutdown waits for admin clients to finish their command. */
#define AGENT_ADMIN_STOP_MS 5000

static _Atomic uint64_t owner_seq;

uint64_t agent_owner_id(void)
{
	return atomic_fetch_add(&owner_seq, 1) + 1;
}

bool agent_stopping(struct agent *a)
{
	return atomic_load(&a->stopping);
}

int agent_store_open(struct agent *a, struct store **out, char *err, size_t errlen)
{
	return store_open(out, a->db_path, &a->store_opts, err, errlen);
}

/* Takes the data directory's lock. POSIX record locks end with the
 * process, so a crashed agent never leaves a stale lock behind. */
static int lock_data_dir(const struct chand_config *cfg, int *out)
{
	char *path = cfg_lock_path(cfg);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	if (path == NULL)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error(code_str(CHD_AGENT_LOCKED), "cannot open lock file %s: %s", path,
		          strerror(errno));
		free(path);
		return -1;
	}
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		long pid = -1;
		if (errno == EACCES || errno == EAGAIN) {
			if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
				pid = (long)q.l_pid;
			log_error(code_str(CHD_AGENT_LOCKED),
			          "data directory %s is in use by another chand (pid %ld)",
			          cfg->data_dir, pid);
		} else {
			log_error(code_str(CHD_AGENT_LOCKED), "cannot lock %s: %s", path, strerror(errno));
		}
		close(fd);
		free(path);
		return -1;
	}
	/* The pid in the file is for operators only; the lock is the truth. */
	if (ftruncate(fd, 0) == 0) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
		if (pwrite(fd, buf, (size_t)n, 0) != n)
			log_debug("cannot write pid to %s", path);
	}
	free(path);
	*out = fd;
	return 0;
}

/* chanctl stop qmgr (like endmqm): the same clean stop as SIGTERM, asked
 * through the admin socket; chanctl then waits for the socket to go. */
static int cmd_stop_qmgr(struct admin_conn *c, json_t *req)
{
	(void)req;
	log_info(code_str(CHD_AGENT_SIGNAL), "stop qmgr requested through the admin socket "
	         "(conn=%llu): stopping", (unsigned long long)admin_conn_id(c));
	if (admin_reply_ok(c, NULL) != 0)
		return -1;
	if (kill(getpid(), SIGTERM) != 0)
		log_error(code_str(CHD_SYS_RESOURCE), "cannot signal myself to stop: %s",
		          strerror(errno));
	return 0;
}

static const struct admin_cmd agent_admin_cmds[] = {
	{ "stop qmgr", cmd_stop_qmgr },
	{ NULL, NULL },
};

static void log_started(const struct agent *a)
{
	const struct chand_config *cfg = a->cfg;
	char ls[512] = "";
	size_t off = 0;

	for (size_t i = 0; i < cfg->nlisteners && off < sizeof(ls); i++) {
		bool v6 = strchr(cfg->listeners[i].address, ':') != NULL;
		int n = snprintf(ls + off, sizeof(ls) - off, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "",
		                 cfg->listeners[i].address, v6 ? "]" : "", cfg->listeners[i].port);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	log_info(code_str(CHD_AGENT_START), "version=%s qmgr=%s db=%s listeners=%s admin=%s pid=%ld "
	         "queue manager started", CHAND_VERSION, cfg->qmgr, a->db_path, ls[0] ? ls : "none",
	         cfg->admin_socket, (long)getpid());
}

static int reopen_log(const struct chand_config *cfg, bool to_stderr)
{
	struct log_config lc = {
		.ident = cfg->qmgr, .level = log_get_level(), .to_stderr = to_stderr,
		.to_syslog = cfg->log_syslog, .file = cfg->log_file,
	};
	char err[256];

	if (log_open(&lc, err, sizeof(err)) != 0) {
		log_error(code_str(CHD_LOG_FAILED), "SIGHUP: %s", err);
		return -1;
	}
	return 0;
}

static void check_dlq(struct store *st, const struct chand_config *cfg)
{
	struct queue_def q;

	if (cfg->dlq[0] == '\0')
		return;
	if (store_queue_get(st, cfg->dlq, &q) != STORE_OK)
		log_warn(code_str(CHD_Q_UNKNOWN), "dead_letter_queue %s is not defined; channels "
		         "will stop rather than lose undeliverable messages until it is", cfg->dlq);
	else if (q.type != QTYPE_LOCAL)
		log_warn(code_str(CHD_Q_UNKNOWN), "dead_letter_queue %s is not a local queue", cfg->dlq);
}

struct stop_call {
	struct agent *a;
	const struct agent_module *m;
};

static void *stop_thread(void *arg)
{
	struct stop_call *sc = arg;
	sc->m->stop(sc->a);
	return NULL;
}

/* Calls a module's stop() but waits at most AGENT_STOP_BOUND_MS: a module
 * stuck on a dead peer must not keep the agent from exiting (its threads
 * end with the process; every commit they made is already durable). */
static bool stop_module(struct agent *a, const struct agent_module *m)
{
	/* On the heap: a stuck call may outlive this frame. */
	struct stop_call *sc = malloc(sizeof(*sc));
	struct timespec ts;
	pthread_t t;

	if (sc != NULL) {
		sc->a = a;
		sc->m = m;
	}
	if (sc == NULL || pthread_create(&t, NULL, stop_thread, sc) != 0) {
		free(sc);
		m->stop(a);
		return true;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += AGENT_STOP_BOUND_MS / 1000;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
		log_warn(code_str(CHD_STOP_SLOW), "module=%s did not stop within %d ms; exiting anyway", m->name,
		         AGENT_STOP_BOUND_MS);
		pthread_detach(t);
		return false;
	}
	free(sc);
	return true;
}

/* Runs until a stop signal. Returns 0, or 1 if shutdown was forced. */
static int main_loop(struct agent *a, int sfd, int afd, const struct agent_listeners *ls,
                     bool to_stderr)
{
	size_t nfds = 2 + ls->n;
	struct pollfd *pfd = calloc(nfds, sizeof(*pfd));
	int64_t paused_until = 0;

	if (pfd == NULL)
		return 1;
	for (;;) {
		bool paused = paused_until > time_mono_ms();
		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = paused ? -1 : afd, .events = POLLIN };
		for (size_t i = 0; i < ls->n; i++)
			pfd[2 + i] = (struct pollfd){ .fd = paused ? -1 : ls->fds[i], .events = POLLIN };
		if (poll(pfd, nfds, paused ? 200 : -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error(code_str(CHD_SYS_RESOURCE), "poll: %s", strerror(errno));
			free(pfd);
			return 1;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			ssize_t r = read(sfd, &si, sizeof(si));
			if (r == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_info(code_str(CHD_LOG_REOPENED), "SIGHUP: reopening the log file");
					reopen_log(a->cfg, to_stderr);
				} else {
					log_info(code_str(CHD_AGENT_SIGNAL), "signal %s: stopping", strsignal((int)si.ssi_signo));
					free(pfd);
					return 0;
				}
			}
		}
		/* Out of descriptors: stop accepting for a second rather than
		 * spin on a listener that stays readable. */
		if (!paused && (pfd[1].revents & POLLIN) && admin_accept(a, afd) < 0)
			paused_until = time_mono_ms() + 1000;
		for (size_t i = 0; i < ls->n; i++)
			if (!paused && (pfd[2 + i].revents & POLLIN) && listeners_accept(a, ls->fds[i]) < 0)
				paused_until = time_mono_ms() + 1000;
	}
}

int agent_run(const struct chand_config *cfg, agent_ready_fn ready, void *arg)
{
	struct agent a;
	struct agent_listeners ls = { 0 };
	struct store *st = NULL;
	sigset_t mask;
	int lockfd = -1, sfd = -1, afd = -1, mfd = -1, rc = 1;
	bool opened = false;
	size_t started = 0;
	char err[512];
	bool to_stderr = ready == NULL, forced = false;

	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	a.start_ms = time_now_ms();
	pthread_mutex_init(&a.tls_mtx, NULL);
	atomic_init(&a.stopping, false);
	a.db_path = cfg_db_path(cfg);
	if (a.db_path == NULL)
		return 1;
	a.store_opts = (struct store_opts){ .qmgr = cfg->qmgr, .max_msg_length = cfg->max_msg_length };

	/* Every thread inherits this mask; only the signalfd sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "signalfd: %s", strerror(errno));
		goto out;
	}

	/* Started as root with a user to drop to: bind what may need root
	 * (ports below 1024) first, then drop before anything is written to
	 * data_dir, so every file the agent creates belongs to that user. */
	if (privs_need_drop(cfg)) {
		if (listeners_open(cfg, &ls, err, sizeof(err)) != 0) {
			log_error(code_str(CHD_LISTEN_FAILED), "%s", err);
			goto out;
		}
		mfd = metrics_listen(cfg, err, sizeof(err));
		if (mfd == -1) {
			log_error(code_str(CHD_LISTEN_FAILED), "%s", err);
			goto out;
		}
		if (privs_drop(cfg) != 0)
			goto out;
		opened = true;
	}

	if (lock_data_dir(cfg, &lockfd) != 0)
		goto out;

	/* The first handle wipes the nonpersistent database: like IBM MQ's,
	 * nonpersistent messages do not survive a restart. */
	struct store_opts first = a.store_opts;
	first.reset_np = true;
	if (store_open(&st, a.db_path, &first, err, sizeof(err)) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot open database %s: %s", a.db_path, err);
		goto out;
	}
	check_dlq(st, cfg);

	if (agent_tls_init(&a) != 0)
		goto out;

	if (!opened) {
		if (listeners_open(cfg, &ls, err, sizeof(err)) != 0) {
			log_error(code_str(CHD_LISTEN_FAILED), "%s", err);
			goto out;
		}
		mfd = metrics_listen(cfg, err, sizeof(err));
		if (mfd == -1) {
			log_error(code_str(CHD_LISTEN_FAILED), "%s", err);
			goto out;
		}
	}

	admin_register_builtin();
	admin_register(metrics_admin_cmds);
	admin_register(agent_admin_cmds);
	for (size_t i = 0; agent_modules[i] != NULL; i++)
	{
		if (agent_modules[i]->admin_cmds != NULL)
			admin_register(agent_modules[i]->admin_cmds);
		if (agent_modules[i]->admin_blob_cmds != NULL)
			admin_register_blob(agent_modules[i]->admin_blob_cmds);
	}
	afd = admin_listen(&a, err, sizeof(err));
	if (afd < 0) {
		log_error(code_str(CHD_LISTEN_FAILED), "%s", err);
		goto out;
	}

	for (; agent_modules[started] != NULL; started++) {
		const struct agent_module *m = agent_modules[started];
		if (m->start != NULL && m->start(&a) != 0) {
			log_error(code_str(CHD_MODULE_FAILED), "module=%s failed to start", m->name);
			goto out;
		}
	}

	if (mfd >= 0) {
		int fd = mfd;
		mfd = -1;               /* metrics_stop closes it from here */
		if (metrics_start(&a, fd) != 0) {
			metrics_stop();
			goto out;
		}
	}
	if (expiry_start(&a) != 0 || memtrim_start() != 0)
		goto out;

	log_started(&a);
	if (ready != NULL)
		ready(arg);
	rc = main_loop(&a, sfd, afd, &ls, to_stderr);

out:
	atomic_store(&a.stopping, true);
	metrics_stop();
	expiry_stop();
	memtrim_stop();
	if (mfd >= 0)
		close(mfd);
	listeners_close(&ls);
	if (afd >= 0)
		close(afd);
	/* Modules stop in reverse order of start; their running batches
	 * finish or back out inside stop(). */
	while (started > 0) {
		const struct agent_module *m = agent_modules[--started];
		if (m->stop != NULL && !stop_module(&a, m))
			forced = true;
	}
	if (afd >= 0)
		admin_shutdown(&a, AGENT_ADMIN_STOP_MS);
	agent_tls_fini(&a);
	if (st != NULL)
		store_close(st);
	if (lockfd >= 0) {
		/* no pid left behind for a later kill $(cat QM1.lock) to hit an
		 * unrelated process that got the number */
		if (ftruncate(lockfd, 0) != 0)
			log_debug("cannot empty the lock file: %s", strerror(errno));
		close(lockfd);
		if (rc == 0)
			log_info(code_str(CHD_AGENT_STOP), "qmgr=%s queue manager stopped", cfg->qmgr);
	}
	if (sfd >= 0)
		close(sfd);
	if (forced) {
		/* A module thread may still run on the agent's memory: leave
		 * without freeing anything under it. */
		log_close();
		_exit(1);
	}
	free(a.db_path);
	pthread_mutex_destroy(&a.tls_mtx);
	return rc;
}
