/* Operations parts of the agent: privileges (privs.c), the Prometheus
 * listener (metrics.c), certificate expiry warnings (expiry.c), the
 * heap's keeping and giving back (memtrim.c) and the small thread both
 * of those run in (ticker.c). */
#ifndef CHAND_OPS_INT_H
#define CHAND_OPS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "chand/agent.h"

/* 0 if chand may run as it is now (not root, or root with a user to
 * drop to or allow_root); else logs CHD1008 and returns -1. */
int privs_check(const struct chand_config *cfg);
/* True when running as root with a user configured. */
bool privs_need_drop(const struct chand_config *cfg);
/* initgroups/setgid/setuid to the configured user, then checks root
 * cannot be regained. 0, or -1 after logging why. */
int privs_drop(const struct chand_config *cfg);

/* Binds the metrics listener of the config (before privileges are
 * dropped). Returns the fd, -2 if none is configured, or -1 with err. */
int metrics_listen(const struct chand_config *cfg, char *err, size_t errlen);
/* Serves GET /metrics on fd (taken over) from a thread. 0 or -1. */
int metrics_start(struct agent *a, int fd);
/* Stops the thread and closes the listener (no-op if not started). */
void metrics_stop(void);
/* The "agent info" admin command (qmgr, version, pid, start time). */
extern const struct admin_cmd metrics_admin_cmds[];

/* A background thread that wakes at an interval until stopped (ticker.c).
 * fn loops on ticker_sleep, which returns false once ticker_stop is called
 * (at once, without waiting the interval out). */
struct ticker {
	bool started, stop;
	pthread_t thread;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
};
int ticker_start(struct ticker *t, void *(*fn)(void *), void *arg, const char *what);
bool ticker_sleep(struct ticker *t, int ms);
void ticker_stop(struct ticker *t);

/* Logs CHD3008 for each certificate in the keystore that expires within
 * tls.expiry_warning_days: now, after each refresh security and once a
 * day (CHAND_TEST_EXPIRY_INTERVAL_MS overrides the day, for tests). */
int expiry_start(struct agent *a);
void expiry_stop(void);

/* The allocator's settings (one arena, no trim on free): first thing in
 * main, before any thread.  memtrim_start samples the heap once a second
 * and gives back what went unused for 10 s (memkeep.h). */
void memtrim_init(void);
int memtrim_start(void);
void memtrim_stop(void);

#endif
