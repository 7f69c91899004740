/* The agent's TLS context: loaded from the keystore at start when the
 * file exists; otherwise empty (plain-TCP channels only).  A keystore
 * that fails to load does not stop the agent: queues keep working and
 * each TLS channel reports the cause until `refresh security` fixes it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "chand/log.h"
#include "chand/tls.h"

void agent_tls_init(struct agent *a)
{
	const struct chand_config *cfg = a->cfg;
	struct tls_ctx *ctx = NULL;
	struct tls_error err = { 0 };

	if (access(cfg->ks_path, F_OK) != 0) {
		log_info(code_str(CHD_KS_ABSENT), "keystore=%s not found (%s): only channels without SSLCIPH can run",
		         cfg->ks_path, strerror(errno));
	} else if (tls_ctx_load(&ctx, cfg->ks_path, cfg->ks_stash, &err) != 0) {
		log_error(code_str(err.code), "keystore=%s cannot be loaded: %s", cfg->ks_path,
		          err.text);
		ctx = NULL;
	} else {
		log_info(code_str(CHD_KS_LOADED), "keystore=%s loaded label=%s%s", cfg->ks_path, cfg->ks_label,
		         tls_ctx_has_label(ctx, cfg->ks_label) ? "" : " (no certificate under this label)");
	}
	if (ctx == NULL)
		ctx = tls_ctx_empty();
	pthread_mutex_lock(&a->tls_mtx);
	a->tls = ctx;
	pthread_mutex_unlock(&a->tls_mtx);
}

void agent_tls_fini(struct agent *a)
{
	pthread_mutex_lock(&a->tls_mtx);
	if (a->tls != NULL)
		tls_ctx_unref(a->tls);
	a->tls = NULL;
	pthread_mutex_unlock(&a->tls_mtx);
}

struct tls_ctx *agent_tls_get(struct agent *a)
{
	struct tls_ctx *ctx;

	pthread_mutex_lock(&a->tls_mtx);
	ctx = a->tls;
	if (ctx != NULL)
		tls_ctx_ref(ctx);
	pthread_mutex_unlock(&a->tls_mtx);
	return ctx;
}

void agent_tls_swap(struct agent *a, struct tls_ctx *ctx)
{
	struct tls_ctx *old;

	pthread_mutex_lock(&a->tls_mtx);
	old = a->tls;
	a->tls = ctx;
	pthread_mutex_unlock(&a->tls_mtx);
	if (old != NULL)
		tls_ctx_unref(old);
}
