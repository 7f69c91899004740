/* One GnuTLS priority cache per CipherSpec and role, parsed once on first
 * use and shared by every session of the process (priority caches are
 * read-only after gnutls_priority_init2 and safe to share between
 * threads).  They do not depend on the keystore, so they outlive
 * `refresh security` and are never freed. */
#include <pthread.h>
#include <string.h>

#include "tls_int.h"

#define PRIO_MAX_ID 256

static pthread_mutex_t prio_lock = PTHREAD_MUTEX_INITIALIZER;
static gnutls_priority_t prio_cache[PRIO_MAX_ID][2];

int tls_prio_get(const struct cipherspec *cs, bool server, gnutls_priority_t *out,
                 struct tls_error *err)
{
	gnutls_priority_t *slot;
	const char *str, *errpos = NULL;
	int r = 0;

	*out = NULL;
	if (cs == NULL || cs->id >= PRIO_MAX_ID) {
		tls_err_set(err, CHD_TLS_CIPHER, "no usable CipherSpec");
		return -1;
	}
	slot = &prio_cache[cs->id][server ? 1 : 0];
	pthread_mutex_lock(&prio_lock);
	if (*slot == NULL) {
		str = cs_priority(cs, server);
		r = gnutls_priority_init2(slot, str, &errpos, 0);
		if (r < 0) {
			*slot = NULL;
			tls_err_set(err, CHD_TLS_CIPHER,
			            "GnuTLS refuses the priority of CipherSpec %s at '%.40s': %s",
			            cs->name, errpos != NULL ? errpos : "?", gnutls_strerror_name(r));
		}
	}
	*out = *slot;
	pthread_mutex_unlock(&prio_lock);
	return r < 0 ? -1 : 0;
}
