/* Internals of the agent module shared by its files (not for other
 * modules: they use agent.h and admin.h). */
#ifndef CHAND_AGENT_INT_H
#define CHAND_AGENT_INT_H

#include <stdbool.h>

#include "chand/agent.h"

#define CHAND_VERSION PACKAGE_VERSION

/* Called once the agent serves (daemon mode: tell the parent, detach). */
typedef void (*agent_ready_fn)(void *arg);

/* Runs the agent until SIGTERM/SIGINT. Returns the process exit code. */
int agent_run(const struct chand_config *cfg, agent_ready_fn ready, void *arg);

/* Listeners (listener.c). */
struct agent_listeners {
	int *fds;
	size_t n;
};
int listeners_open(const struct chand_config *cfg, struct agent_listeners *ls, char *err,
                   size_t errlen);
/* Accepts pending connections on fd and hands each to the modules.
 * Returns -1 when out of file descriptors. */
int listeners_accept(struct agent *a, int fd);
void listeners_close(struct agent_listeners *ls);

/* TLS context at start (agent_tls.c). */
/* -1 (logged) when the keystore the configuration names cannot be used. */
int agent_tls_init(struct agent *a);
void agent_tls_fini(struct agent *a);

/* The queue and message admin commands (admin_queue.c, admin_msg.c). */
extern const struct admin_cmd admin_queue_cmds[];
extern const struct admin_cmd admin_msg_cmds[];
/* Replies with the catalogue code and a one-line text for a store error. */
int admin_store_error(struct admin_conn *c, int rc, const char *queue);
/* The catalogue code for a store error (why: store_errmsg). */
enum chd_code_id admin_code_of_store(int rc);
/* The same with extra members in the reply (stolen, may be NULL). */
int admin_store_error_fields(struct admin_conn *c, int rc, const char *queue, json_t *fields);

#endif
