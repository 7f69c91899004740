/* `chanctl keystore list` and `show`: what they print (the warnings
 * themselves come from the keystore module: ks_entry_warnings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "chand/util.h"
#include "ks_cli.h"

/* What list and show print about one entry, decoded once. */
struct ks_view {
	const struct ks_entry *e;
	gnutls_x509_crt_t crt;      /* NULL for a CRL */
	gnutls_x509_crl_t crl;      /* NULL for a certificate */
	char *subject, *issuer;
	char not_before[32], not_after[32];
	char fpr[KS_FPR_LEN];
};

static int ks_view_init(struct ks_view *v, const struct ks_entry *e);
static void ks_view_clear(struct ks_view *v);
static void ks_show_text(struct ks_cli *c, struct ks_view *v, const gnutls_x509_crt_t *trusted,
                         unsigned ntrusted);
static json_t *ks_show_json(struct ks_view *v, const gnutls_x509_crt_t *trusted,
                            unsigned ntrusted);
static json_t *ks_view_json(const struct ks_view *v);
static json_t *ks_jstr(const char *s);

static json_t *ks_jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

static int ks_view_init(struct ks_view *v, const struct ks_entry *e)
{
	memset(v, 0, sizeof *v);
	v->e = e;
	ks_fingerprint(&e->der, v->fpr);
	if (e->kind == KS_KIND_CRL) {
		if (gnutls_x509_crl_init(&v->crl) < 0)
			return -1;
		if (gnutls_x509_crl_import(v->crl, &e->der, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crl_deinit(v->crl);
			v->crl = NULL;
			return -1;
		}
		v->subject = strdup("-");
		v->issuer = ks_crl_issuer(v->crl);
		ks_time_fmt(gnutls_x509_crl_get_this_update(v->crl), v->not_before,
		            sizeof v->not_before);
		ks_time_fmt(gnutls_x509_crl_get_next_update(v->crl), v->not_after, sizeof v->not_after);
	} else {
		if (gnutls_x509_crt_init(&v->crt) < 0)
			return -1;
		if (gnutls_x509_crt_import(v->crt, &e->der, GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(v->crt);
			v->crt = NULL;
			return -1;
		}
		v->subject = ks_crt_subject(v->crt);
		v->issuer = ks_crt_issuer(v->crt);
		ks_time_fmt(gnutls_x509_crt_get_activation_time(v->crt), v->not_before,
		            sizeof v->not_before);
		ks_time_fmt(gnutls_x509_crt_get_expiration_time(v->crt), v->not_after,
		            sizeof v->not_after);
	}
	return v->subject && v->issuer ? 0 : -1;
}

static void ks_view_clear(struct ks_view *v)
{
	if (v->crt != NULL)
		gnutls_x509_crt_deinit(v->crt);
	if (v->crl != NULL)
		gnutls_x509_crl_deinit(v->crl);
	free(v->subject);
	free(v->issuer);
	memset(v, 0, sizeof *v);
}

void ks_cli_print_warning(void *arg, const char *line)
{
	(void)arg;
	printf("WARNING: %s\n", line);
}

static json_t *ks_view_json(const struct ks_view *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "label", ks_jstr(v->e->label));
	json_object_set_new(o, "kind", ks_jstr(ks_kind_name(v->e->kind)));
	json_object_set_new(o, "subject", v->crt ? ks_jstr(v->subject) : json_null());
	json_object_set_new(o, "issuer", ks_jstr(v->issuer));
	json_object_set_new(o, "not_before", ks_jstr(v->not_before));
	json_object_set_new(o, "not_after", ks_jstr(v->not_after));
	json_object_set_new(o, "sha256", ks_jstr(v->fpr));
	return o;
}

static void ks_json_push(void *arg, const char *line)
{
	json_array_append_new((json_t *)arg, ks_jstr(line));
}

int ks_cmd_list(struct ks_cli *c)
{
	static const char *const head[6] = { "LABEL", "KIND", "SUBJECT", "ISSUER", "NOT-AFTER",
	                                     "SHA-256" };
	struct ks_entry *ents = NULL;
	struct ks_view *views = NULL;
	gnutls_x509_crt_t *trusted = NULL;
	unsigned ntrusted = 0;
	size_t n = 0, i, j, w[6];
	char err[1024];
	int rc = 1;

	if (ks_db_list(c->db, &ents, &n, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	if (ks_db_trusted(c->db, &trusted, &ntrusted) != 0) {
		ks_cli_fail(c, code_str(CHD_KS_OPEN), "cannot read the trusted certificates");
		goto out;
	}
	views = calloc(n ? n : 1, sizeof *views);
	if (views == NULL) {
		ks_cli_fail(c, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (ks_view_init(&views[i], &ents[i]) != 0) {
			ks_cli_fail(c, code_str(CHD_KS_OPEN), "entry %s is damaged", ents[i].label);
			goto out;
		}
	if (c->json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++) {
			json_t *o = ks_view_json(&views[i]), *wa = json_array();

			json_object_set_new(o, "chain_length", json_integer(ents[i].nchain));
			ks_entry_warnings(&ents[i], trusted, ntrusted, ks_json_push, wa);
			json_object_set_new(o, "warnings", wa);
			json_array_append_new(arr, o);
		}
		json_dumpf(arr, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(arr);
		rc = 0;
		goto out;
	}
	for (j = 0; j < 6; j++)
		w[j] = strlen(head[j]);
	for (i = 0; i < n; i++) {
		const char *f[6] = { ents[i].label, ks_kind_name(ents[i].kind), views[i].subject,
		                     views[i].issuer, views[i].not_after, views[i].fpr };

		for (j = 0; j < 6; j++)
			if (strlen(f[j]) > w[j])
				w[j] = strlen(f[j]);
	}
	for (i = 0; i <= n; i++) {
		const char *f[6] = { head[0], head[1], head[2], head[3], head[4], head[5] };

		if (i > 0) {
			f[0] = ents[i - 1].label;
			f[1] = ks_kind_name(ents[i - 1].kind);
			f[2] = views[i - 1].subject;
			f[3] = views[i - 1].issuer;
			f[4] = views[i - 1].not_after;
			f[5] = views[i - 1].fpr;
		}
		for (j = 0; j < 5; j++)
			printf("%-*s  ", (int)w[j], f[j]);
		printf("%s\n", f[5]);
	}
	for (i = 0; i < n; i++)
		ks_entry_warnings(&ents[i], trusted, ntrusted, ks_cli_print_warning, NULL);
	rc = 0;
out:
	if (views != NULL)
		for (i = 0; i < n; i++)
			ks_view_clear(&views[i]);
	free(views);
	ks_certs_free(trusted, ntrusted);
	ks_entries_free(ents, n);
	return rc;
}

static void ks_show_text(struct ks_cli *c, struct ks_view *v, const gnutls_x509_crt_t *trusted,
                         unsigned ntrusted)
{
	const struct ks_entry *e = v->e;
	char buf[256], when[32], why[512];
	unsigned i;

	(void)c;
	printf("label:          %s\n", e->label);
	printf("kind:           %s\n", ks_kind_name(e->kind));
	if (v->crl != NULL) {
		unsigned st = 0;

		printf("issuer:         %s\n", v->issuer);
		printf("this update:    %s\n", v->not_before);
		printf("next update:    %s\n", v->not_after);
		printf("revoked:        %d certificate(s)\n", gnutls_x509_crl_get_crt_count(v->crl));
		printf("sha256:         %s\n", v->fpr);
		printf("signed by a trusted CA: %s\n",
		       ntrusted > 0 && gnutls_x509_crl_verify(v->crl, trusted, ntrusted, 0, &st) >= 0 &&
		       st == 0 ? "yes" : "no");
	} else {
		char *sans = ks_crt_sans(v->crt);

		printf("subject:        %s\n", v->subject);
		printf("issuer:         %s\n", v->issuer);
		ks_crt_serial(v->crt, buf, sizeof buf);
		printf("serial:         %s\n", buf);
		printf("not before:     %s\n", v->not_before);
		printf("not after:      %s\n", v->not_after);
		printf("sha256:         %s\n", v->fpr);
		ks_crt_keydesc(v->crt, buf, sizeof buf);
		printf("key type:       %s\n", buf);
		printf("san:            %s\n", sans && *sans ? sans : "(none)");
		free(sans);
		if (e->kind == KS_KIND_PERSONAL) {
			printf("private key:    %s\n", e->key.data ? "yes (PKCS#8 PBES2 AES-256)" : "no");
			for (i = 0; i < e->nchain; i++) {
				gnutls_x509_crt_t *cc = NULL;
				unsigned ncc = 0;
				char *s = NULL;

				if (ks_certs_import(&e->chain[i], e->label, &cc, &ncc, why, sizeof why) == 0)
					s = ks_crt_subject(cc[0]);
				printf("chain[%u]:       %s\n", i + 1, s ? s : "(damaged)");
				free(s);
				ks_certs_free(cc, ncc);
			}
			if (e->nchain == 0)
				printf("chain:          (none)\n");
			if (ks_entry_chain_complete(e, trusted, ntrusted, why, sizeof why))
				printf("chain complete: yes\n");
			else
				printf("chain complete: no (%s)\n", why);
		}
	}
	ks_time_fmt((time_t)e->created, when, sizeof when);
	printf("created:        %s\n", when);
	ks_entry_warnings(e, trusted, ntrusted, ks_cli_print_warning, NULL);
}

static json_t *ks_show_json(struct ks_view *v, const gnutls_x509_crt_t *trusted,
                            unsigned ntrusted)
{
	const struct ks_entry *e = v->e;
	json_t *o = ks_view_json(v), *wa = json_array();
	char buf[256], when[32], why[512];
	unsigned i;

	if (v->crl != NULL) {
		unsigned st = 0;

		json_object_set_new(o, "revoked_count",
		                    json_integer(gnutls_x509_crl_get_crt_count(v->crl)));
		json_object_set_new(o, "signed_by_trusted",
		                    json_boolean(ntrusted > 0 &&
		                                 gnutls_x509_crl_verify(v->crl, trusted, ntrusted, 0,
		                                                        &st) >= 0 && st == 0));
	} else {
		char *sans = ks_crt_sans(v->crt), *p, *save = NULL;
		json_t *sa = json_array();

		ks_crt_serial(v->crt, buf, sizeof buf);
		json_object_set_new(o, "serial", ks_jstr(buf));
		ks_crt_keydesc(v->crt, buf, sizeof buf);
		json_object_set_new(o, "key_type", ks_jstr(buf));
		for (p = sans ? strtok_r(sans, ",", &save) : NULL; p; p = strtok_r(NULL, ",", &save))
			json_array_append_new(sa, ks_jstr(p + (*p == ' ')));
		free(sans);
		json_object_set_new(o, "san", sa);
		if (e->kind == KS_KIND_PERSONAL) {
			json_t *ca = json_array();
			bool ok = ks_entry_chain_complete(e, trusted, ntrusted, why, sizeof why);

			json_object_set_new(o, "has_private_key", json_boolean(e->key.data != NULL));
			for (i = 0; i < e->nchain; i++) {
				gnutls_x509_crt_t *cc = NULL;
				unsigned ncc = 0;
				char *s = NULL;

				if (ks_certs_import(&e->chain[i], e->label, &cc, &ncc, why + 256, 256) == 0)
					s = ks_crt_subject(cc[0]);
				json_array_append_new(ca, ks_jstr(s));
				free(s);
				ks_certs_free(cc, ncc);
			}
			json_object_set_new(o, "chain", ca);
			json_object_set_new(o, "chain_complete", json_boolean(ok));
			json_object_set_new(o, "chain_error", ok ? json_null() : ks_jstr(why));
		}
	}
	ks_time_fmt((time_t)e->created, when, sizeof when);
	json_object_set_new(o, "created", ks_jstr(when));
	ks_entry_warnings(e, trusted, ntrusted, ks_json_push, wa);
	json_object_set_new(o, "warnings", wa);
	return o;
}

int ks_cmd_show(struct ks_cli *c)
{
	struct ks_entry e;
	struct ks_view v;
	gnutls_x509_crt_t *trusted = NULL;
	unsigned ntrusted = 0;
	char err[1024];
	int r, rc = 1;

	memset(&v, 0, sizeof v);
	r = ks_db_get(c->db, c->arg, &e, err, sizeof err);
	if (r == 1)
		return ks_cli_fail(c, code_str(CHD_KS_LABEL_MISSING), "no entry labelled %s in %s",
		                   c->arg, c->ks);
	if (r != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	if (ks_db_trusted(c->db, &trusted, &ntrusted) != 0) {
		ks_cli_fail(c, code_str(CHD_KS_OPEN), "cannot read the trusted certificates");
		goto out;
	}
	if (ks_view_init(&v, &e) != 0) {
		ks_cli_fail(c, code_str(CHD_KS_OPEN), "entry %s is damaged", e.label);
		goto out;
	}
	if (c->json) {
		json_t *o = ks_show_json(&v, trusted, ntrusted);

		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	} else {
		ks_show_text(c, &v, trusted, ntrusted);
	}
	rc = 0;
out:
	ks_view_clear(&v);
	ks_certs_free(trusted, ntrusted);
	ks_entry_clear(&e);
	return rc;
}
