/* The running agent (chand) and its extension point for modules.
 *
 * chand's main loop owns the listeners, the admin socket and signals.
 * Everything else -- message channels and telemetry (MQTT) channels --
 * plugs in as a struct agent_module listed in src/agent/modules.c: the
 * agent calls start() once the database, listeners and admin socket are
 * ready, hands every accepted TCP connection to the first module with an
 * inbound() callback, and calls stop() on shutdown.  A module's admin
 * commands are registered from its admin_cmds table before the admin
 * server starts.
 *
 * Threads: start/inbound/stop run on the main thread and must not block
 * for long (inbound typically starts a thread per connection).  Each
 * thread that touches the database opens its own handle with
 * agent_store_open(). */
#ifndef CHAND_AGENT_H
#define CHAND_AGENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chand/admin.h"
#include "chand/config.h"
#include "chand/store.h"

struct tls_ctx;

struct agent {
	const struct chand_config *cfg;
	char *db_path;                 /* <data_dir>/<qmgr>.db */
	struct store_opts store_opts;  /* for agent_store_open (reset_np false) */
	int64_t start_ms;              /* wall clock at start */

	/* The security material channels use. Read it with agent_tls_get()
	 * (a reference) and replace it with agent_tls_swap() (refresh
	 * security): running connections keep the context they took. */
	pthread_mutex_t tls_mtx;
	struct tls_ctx *tls;

	atomic_bool stopping;          /* set once shutdown begins */

	void *chan;                    /* owned by the channel module */
};

struct agent_module {
	const char *name;
	/* Admin commands of the module (NULL-name terminated), or NULL. */
	const struct admin_cmd *admin_cmds;
	/* Commands whose requests carry an attachment (admin_register_blob). */
	const struct admin_cmd *admin_blob_cmds;
	/* After the database, listeners and admin socket are up. Non-zero
	 * aborts the start (the module logged why). May be NULL. */
	int (*start)(struct agent *a);
	/* An accepted TCP connection on a listener (non-blocking off,
	 * CLOEXEC on). The module owns fd from here. May be NULL. */
	void (*inbound)(struct agent *a, int fd, const struct sockaddr_storage *peer,
	                socklen_t len);
	/* Shutdown: stop the module's work (running batches finish or back
	 * out). Called on a helper thread: the agent waits at most
	 * AGENT_STOP_BOUND_MS, then logs it and exits (status 1) without
	 * freeing anything. May be NULL. */
	void (*stop)(struct agent *a);
};

#define AGENT_STOP_BOUND_MS 10000

/* The modules of this build, NULL terminated (src/agent/modules.c). */
extern const struct agent_module *const agent_modules[];

/* Opens a new database handle for the calling thread. */
int agent_store_open(struct agent *a, struct store **out, char *err, size_t errlen);
/* The current TLS context with a reference taken (tls_ctx_unref it), or
 * NULL if the build has none loaded. */
struct tls_ctx *agent_tls_get(struct agent *a);
/* Installs ctx (the agent takes over the caller's reference) and drops
 * the agent's reference to the previous one. */
void agent_tls_swap(struct agent *a, struct tls_ctx *ctx);
bool agent_stopping(struct agent *a);
/* A process-wide unique non-zero id, e.g. the owner of messages taken
 * with store_lock (admin connections and channels draw from it). */
uint64_t agent_owner_id(void);

#endif
