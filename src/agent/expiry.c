/* Certificate expiry warnings (CHD3008): the personal certificates in use
 * (keystore.label and every channel's CERTLABL, with their chains) and
 * every trusted certificate that expires within tls.expiry_warning_days
 * is logged with its label, subject and days left: at start, after each
 * `refresh security` and once a day.
 *
 * A small thread does it so that a slow keystore never delays the start.
 * It notices a refresh by the agent's TLS context changing: it holds a
 * reference to the one it last checked, so that pointer cannot be reused
 * by a new context.  CHAND_TEST_EXPIRY_INTERVAL_MS (read at start; a
 * test hook, not for production) replaces the day. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/channel.h"
#include "chand/keystore.h"
#include "chand/log.h"
#include "chand/tls.h"

#define EXPIRY_DAY_MS (24LL * 3600 * 1000)
/* How often the thread looks for a refreshed TLS context. */
#define EXPIRY_POLL_MS 500

static struct {
	struct ticker t;
	struct agent *a;
	int64_t interval_ms;
} ex;

static void expiry_one(gnutls_x509_crt_t crt, const char *label, const char *kind,
                       int64_t now_s, int warn_days)
{
	time_t na = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_datum_t dn = { NULL, 0 };
	char when[40];
	long long left_s;
	long days;

	if (na == (time_t)-1)
		return;
	left_s = (long long)na - now_s;
	if (left_s > (long long)warn_days * 86400)
		return;
	days = left_s >= 0 ? (long)(left_s / 86400) : -(long)((-left_s + 86399) / 86400);
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) != GNUTLS_E_SUCCESS)
		dn.data = NULL;
	time_format_ms((int64_t)na * 1000, when, sizeof(when));
	if (left_s < 0)
		log_warn(code_str(CHD_KS_EXPIRING), "label=%s kind=%s subject=\"%s\" not_after=%s "
		         "days_left=%ld certificate has expired", label, kind,
		         dn.data ? (const char *)dn.data : "?", when, days);
	else
		log_warn(code_str(CHD_KS_EXPIRING), "label=%s kind=%s subject=\"%s\" not_after=%s "
		         "days_left=%ld certificate expires soon", label, kind,
		         dn.data ? (const char *)dn.data : "?", when, days);
	gnutls_free(dn.data);
}

/* Labels of personal certificates in use: the default and every
 * channel's CERTLABL (malloc'd array of borrowed-from-arr strings). */
static const char **labels_in_use(struct agent *a, json_t **arr, size_t *n)
{
	struct chan_result r = { 0 };
	struct store *st = NULL;
	char err[256];
	const char **v;
	size_t i, cap;
	json_t *o;

	*arr = NULL;
	*n = 0;
	if (agent_store_open(a, &st, err, sizeof(err)) == STORE_OK) {
		if (chan_op_display(st, "*", arr, &r) != 0)
			*arr = NULL;
		store_close(st);
	}
	cap = 1 + (*arr ? json_array_size(*arr) : 0);
	v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return NULL;
	v[(*n)++] = a->cfg->ks_label;
	json_array_foreach(*arr, i, o) {
		const json_t *l = json_object_get(o, "certlabl");
		bool seen = false;
		if (!json_is_string(l) || json_string_length(l) == 0)
			continue;
		for (size_t j = 0; j < *n && !seen; j++)
			seen = strcmp(v[j], json_string_value(l)) == 0;
		if (!seen)
			v[(*n)++] = json_string_value(l);
	}
	return v;
}

static void expiry_check(struct agent *a)
{
	const struct chand_config *cfg = a->cfg;
	struct ks_material *m = NULL;
	enum chd_code_id code;
	char err[512];
	json_t *defs;
	size_t nl;
	int64_t now_s = time_now_ms() / 1000;

	if (access(cfg->ks_path, F_OK) != 0)
		return;
	if (ks_material_load(cfg->ks_path, cfg->ks_stash, &m, &code, err, sizeof(err)) != 0) {
		/* The TLS layer already logged why the keystore is unusable. */
		log_debug("expiry check: keystore %s: %s", cfg->ks_path, err);
		return;
	}
	const char **labels = labels_in_use(a, &defs, &nl);
	for (size_t i = 0; labels != NULL && i < nl; i++) {
		const struct ks_personal *p = ks_material_find(m, labels[i]);
		if (p == NULL)
			continue;
		for (unsigned c = 0; c < p->ncerts; c++) {
			char what[KS_LABEL_MAX + 32];
			snprintf(what, sizeof(what), c == 0 ? "%s" : "%s[chain %u]", p->label, c);
			expiry_one(p->certs[c], what, c == 0 ? "personal" : "chain", now_s,
			           cfg->tls_expiry_warning_days);
		}
	}
	free(labels);
	json_decref(defs);
	/* Trusted entries carry no label in the material: name them by
	 * position; the subject says which one. */
	for (size_t i = 0; i < m->ntrusted; i++) {
		char what[32];
		snprintf(what, sizeof(what), "trusted#%zu", i + 1);
		expiry_one(m->trusted[i], what, "trusted", now_s, cfg->tls_expiry_warning_days);
	}
	ks_material_free(m);
}

static void *expiry_thread(void *arg)
{
	struct agent *a = arg;
	struct tls_ctx *seen = agent_tls_get(a);
	int64_t next = time_mono_ms() + ex.interval_ms;

	expiry_check(a);
	while (ticker_sleep(&ex.t, EXPIRY_POLL_MS)) {
		struct tls_ctx *now = agent_tls_get(a);
		bool refreshed = now != seen;
		if (seen != NULL)
			tls_ctx_unref(seen);
		seen = now;
		if (refreshed || time_mono_ms() >= next) {
			expiry_check(a);
			next = time_mono_ms() + ex.interval_ms;
		}
	}
	if (seen != NULL)
		tls_ctx_unref(seen);
	return NULL;
}

int expiry_start(struct agent *a)
{
	const char *t = getenv("CHAND_TEST_EXPIRY_INTERVAL_MS");
	long v;

	ex.a = a;
	ex.interval_ms = EXPIRY_DAY_MS;
	if (t != NULL && parse_long(t, 100, 86400000L, &v)) {
		ex.interval_ms = v;
		log_info(code_str(CHD_TEST_HOOK), "expiry check every %ld ms (CHAND_TEST_EXPIRY_INTERVAL_MS test hook)", v);
	}
	return ticker_start(&ex.t, expiry_thread, a, "certificate expiry");
}

void expiry_stop(void)
{
	ticker_stop(&ex.t);
}
