/* The agent's TLS context, loaded from the keystore at start.  A keystore
 * the configuration names (keystore.path) must load: missing, unreadable,
 * readable by others, or with a bad stash, the agent does not start --
 * better than running on without TLS.  With no keystore.path, the default
 * file is used when it exists; without it only plain-TCP channels run. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "chand/log.h"
#include "chand/tls.h"

int agent_tls_init(struct agent *a)
{
	const struct chand_config *cfg = a->cfg;
	struct tls_ctx *ctx = NULL;
	struct tls_error err = { 0 };

	if (access(cfg->ks_path, F_OK) != 0) {
		if (cfg->ks_configured) {
			log_error(code_str(CHD_KS_OPEN), "keystore=%s named by keystore.path in %s cannot "
			          "be used: %s (create it with chanctl keystore create, or remove "
			          "keystore.path to run without TLS)", cfg->ks_path, cfg->file,
			          strerror(errno));
			return -1;
		}
		log_info(code_str(CHD_KS_ABSENT), "keystore=%s not found (%s): only channels without SSLCIPH can run",
		         cfg->ks_path, strerror(errno));
	} else if (tls_ctx_load(&ctx, cfg->ks_path, cfg->ks_stash, &err) != 0) {
		log_error(code_str(err.code), "keystore=%s cannot be loaded: %s", cfg->ks_path,
		          err.text);
		if (cfg->ks_configured)
			return -1;
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
	return 0;
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
