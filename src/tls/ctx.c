/* The security material of the agent turned into GnuTLS credentials.
 *
 * One gnutls_certificate_credentials_t per personal label (its key, leaf and
 * chain, plus the trust list and CRLs), and one without a key for an
 * initiator whose label is missing.  GnuTLS copies everything it is given,
 * so a context does not keep the ks_material it was built from.
 *
 * Contexts are reference counted: `refresh security` builds a new one and
 * swaps it in; connections that started with the old one keep it until
 * they close.  Building is all-or-nothing, so a broken keystore leaves the
 * caller with its previous context. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chand/util.h"
#include "tls_int.h"

struct tls_ctx_label {
	char label[KS_LABEL_MAX + 1];
	gnutls_certificate_credentials_t cred;
};

struct tls_ctx {
	atomic_uint refs;
	gnutls_certificate_credentials_t anon;
	struct tls_ctx_label *labels;
	size_t nlabels;
};

static void ctx_free(struct tls_ctx *ctx)
{
	size_t i;

	if (ctx == NULL)
		return;
	for (i = 0; i < ctx->nlabels; i++)
		gnutls_certificate_free_credentials(ctx->labels[i].cred);
	free(ctx->labels);
	if (ctx->anon != NULL)
		gnutls_certificate_free_credentials(ctx->anon);
	free(ctx);
}

static void ctx_crl_issuer(gnutls_x509_crl_t crl, char *buf, size_t len)
{
	gnutls_datum_t dn = { NULL, 0 };

	if (gnutls_x509_crl_get_issuer_dn3(crl, &dn, 0) < 0 || dn.data == NULL) {
		str_copy(buf, "?", len);
		return;
	}
	str_copy(buf, (const char *)dn.data, len);
	gnutls_free(dn.data);
}

/* Credentials holding the trust list and CRLs of m (no key yet). CRLs are
 * verified against the trusted CAs on the way in: a CRL whose issuer is not
 * trusted (or whose signature is bad) would otherwise be used unchecked. */
static int ctx_new_cred(const struct ks_material *m, gnutls_certificate_credentials_t *out,
                        struct tls_error *err)
{
	gnutls_certificate_credentials_t cred;
	size_t i;
	int r;

	*out = NULL;
	r = gnutls_certificate_allocate_credentials(&cred);
	if (r < 0) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "cannot allocate TLS credentials: %s",
		            gnutls_strerror_name(r));
		return -1;
	}
	gnutls_certificate_set_flags(cred, GNUTLS_CERTIFICATE_VERIFY_CRLS);
	if (m != NULL && m->ntrusted > 0) {
		r = gnutls_certificate_set_x509_trust(cred, m->trusted, (int)m->ntrusted);
		if (r < 0) {
			tls_err_set(err, CHD_TLS_KEYSTORE, "cannot load the trusted certificates: %s",
			            gnutls_strerror_name(r));
			goto fail;
		}
	}
	for (i = 0; m != NULL && i < m->ncrls; i++) {
		r = gnutls_certificate_set_x509_crl(cred, &m->crls[i], 1);
		if (r != 1) {
			char issuer[256];
			ctx_crl_issuer(m->crls[i], issuer, sizeof issuer);
			tls_err_set(err, CHD_TLS_KEYSTORE,
			            "CRL issued by '%s' cannot be verified by a trusted CA certificate "
			            "(%s); trust its issuer or remove the CRL",
			            issuer, r < 0 ? gnutls_strerror_name(r) : "bad signature or issuer not trusted");
			goto fail;
		}
	}
	*out = cred;
	return 0;
fail:
	gnutls_certificate_free_credentials(cred);
	return -1;
}

int tls_ctx_from_material(struct tls_ctx **out, const struct ks_material *m,
                          struct tls_error *err)
{
	struct tls_ctx *ctx;
	size_t i;
	int r;

	*out = NULL;
	ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL) {
		tls_err_set(err, CHD_TLS_KEYSTORE, "out of memory");
		return -1;
	}
	atomic_init(&ctx->refs, 1);
	if (ctx_new_cred(m, &ctx->anon, err) != 0)
		goto fail;
	if (m != NULL && m->npersonal > 0) {
		ctx->labels = calloc(m->npersonal, sizeof *ctx->labels);
		if (ctx->labels == NULL) {
			tls_err_set(err, CHD_TLS_KEYSTORE, "out of memory");
			goto fail;
		}
	}
	for (i = 0; m != NULL && i < m->npersonal; i++) {
		const struct ks_personal *kp = &m->personal[i];
		struct tls_ctx_label *l = &ctx->labels[ctx->nlabels];

		if (kp->ncerts == 0 || kp->certs == NULL || kp->key == NULL) {
			tls_err_set(err, CHD_TLS_KEYSTORE,
			            "personal entry '%s' has no certificate or no private key", kp->label);
			goto fail;
		}
		if (ctx_new_cred(m, &l->cred, err) != 0)
			goto fail;
		str_copy(l->label, kp->label, sizeof l->label);
		ctx->nlabels++;
		r = gnutls_certificate_set_x509_key(l->cred, kp->certs, kp->ncerts, kp->key);
		if (r < 0) {
			tls_err_set(err, CHD_TLS_KEYSTORE,
			            "personal entry '%s' cannot be used: %s (%s)", kp->label,
			            gnutls_strerror(r), gnutls_strerror_name(r));
			goto fail;
		}
	}
	*out = ctx;
	return 0;
fail:
	ctx_free(ctx);
	return -1;
}

struct tls_ctx *tls_ctx_empty(void)
{
	struct tls_ctx *ctx = NULL;
	struct tls_error err;

	if (tls_ctx_from_material(&ctx, NULL, &err) != 0)
		return NULL;
	return ctx;
}

void tls_ctx_ref(struct tls_ctx *ctx)
{
	if (ctx != NULL)
		atomic_fetch_add(&ctx->refs, 1);
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
	if (ctx != NULL && atomic_fetch_sub(&ctx->refs, 1) == 1)
		ctx_free(ctx);
}

gnutls_certificate_credentials_t tls_ctx_cred(const struct tls_ctx *ctx, const char *label)
{
	size_t i;

	if (ctx == NULL || label == NULL || label[0] == '\0')
		return NULL;
	for (i = 0; i < ctx->nlabels; i++)
		if (strcmp(ctx->labels[i].label, label) == 0)
			return ctx->labels[i].cred;
	return NULL;
}

gnutls_certificate_credentials_t tls_ctx_anon_cred(const struct tls_ctx *ctx)
{
	return ctx != NULL ? ctx->anon : NULL;
}

bool tls_ctx_has_label(const struct tls_ctx *ctx, const char *label)
{
	return tls_ctx_cred(ctx, label) != NULL;
}

size_t tls_ctx_label_count(const struct tls_ctx *ctx)
{
	return ctx != NULL ? ctx->nlabels : 0;
}
