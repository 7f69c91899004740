/* See tls_pem.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "chand/util.h"
#include "tls_pem.h"

char *tp_pki_make(const char *srcdir)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[512], cmd[2048];
	int rc;

	snprintf(tmpl, sizeof tmpl, "%s/chand-pki-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(tmpl) == NULL)
		return NULL;
	snprintf(cmd, sizeof cmd, "sh '%s/tests/pki/mkpki.sh' '%s'", srcdir, tmpl);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
		tp_rmtree(tmpl);
		return NULL;
	}
	return strdup(tmpl);
}

void tp_rmtree(const char *dir)
{
	char cmd[1024];

	if (dir == NULL || strncmp(dir, "/", 1) != 0 || strstr(dir, "chand-pki-") == NULL)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static int tp_read(const char *dir, const char *file, gnutls_datum_t *d)
{
	char path[1024], err[256];
	size_t len = 0;
	char *data;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	data = file_read_all(path, 1 << 20, &len, err, sizeof err);
	if (data == NULL) {
		fprintf(stderr, "%s: %s\n", path, err);
		return -1;
	}
	d->data = (unsigned char *)data;
	d->size = (unsigned)len;
	return 0;
}

static int tp_certs(const char *dir, const char *file, gnutls_x509_crt_t **out, unsigned *n)
{
	gnutls_datum_t d;
	int r;

	if (tp_read(dir, file, &d) != 0)
		return -1;
	r = gnutls_x509_crt_list_import2(out, n, &d, GNUTLS_X509_FMT_PEM, 0);
	free(d.data);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", file, gnutls_strerror(r));
		return -1;
	}
	return 0;
}

struct ks_material *tp_material_new(void)
{
	return calloc(1, sizeof(struct ks_material));
}

int tp_add_personal(struct ks_material *m, const char *dir, const char *label,
                    const char *certfile, const char *keyfile, const char *chainfile)
{
	struct ks_personal *np, *p;
	gnutls_x509_crt_t *certs = NULL, *chain = NULL;
	unsigned n = 0, nchain = 0, i;
	gnutls_datum_t d;
	int r;

	np = realloc(m->personal, (m->npersonal + 1) * sizeof *np);
	if (np == NULL)
		return -1;
	m->personal = np;
	p = &np[m->npersonal];
	memset(p, 0, sizeof *p);
	if (tp_certs(dir, certfile, &certs, &n) != 0)
		return -1;
	if (chainfile != NULL && tp_certs(dir, chainfile, &chain, &nchain) != 0)
		return -1;
	p->certs = calloc(n + nchain, sizeof *p->certs);
	if (p->certs == NULL)
		return -1;
	for (i = 0; i < n; i++)
		p->certs[p->ncerts++] = certs[i];
	for (i = 0; i < nchain; i++)
		p->certs[p->ncerts++] = chain[i];
	gnutls_free(certs);
	gnutls_free(chain);
	if (tp_read(dir, keyfile, &d) != 0)
		return -1;
	if (gnutls_x509_privkey_init(&p->key) < 0)
		return -1;
	r = gnutls_x509_privkey_import2(p->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	secure_zero(d.data, d.size);
	free(d.data);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", keyfile, gnutls_strerror(r));
		return -1;
	}
	str_copy(p->label, label, sizeof p->label);
	m->npersonal++;
	return 0;
}

int tp_add_trusted(struct ks_material *m, const char *dir, const char *file)
{
	gnutls_x509_crt_t *certs = NULL, *nt;
	unsigned n = 0, i;

	if (tp_certs(dir, file, &certs, &n) != 0)
		return -1;
	nt = realloc(m->trusted, (m->ntrusted + n) * sizeof *nt);
	if (nt == NULL)
		return -1;
	m->trusted = nt;
	for (i = 0; i < n; i++)
		m->trusted[m->ntrusted++] = certs[i];
	gnutls_free(certs);
	return 0;
}

int tp_add_crl(struct ks_material *m, const char *dir, const char *file)
{
	gnutls_x509_crl_t *nc;
	gnutls_datum_t d;
	int r;

	nc = realloc(m->crls, (m->ncrls + 1) * sizeof *nc);
	if (nc == NULL)
		return -1;
	m->crls = nc;
	if (tp_read(dir, file, &d) != 0)
		return -1;
	if (gnutls_x509_crl_init(&nc[m->ncrls]) < 0) {
		free(d.data);
		return -1;
	}
	r = gnutls_x509_crl_import(nc[m->ncrls], &d, GNUTLS_X509_FMT_PEM);
	free(d.data);
	if (r < 0) {
		gnutls_x509_crl_deinit(nc[m->ncrls]);
		fprintf(stderr, "%s: %s\n", file, gnutls_strerror(r));
		return -1;
	}
	m->ncrls++;
	return 0;
}

void tp_material_free(struct ks_material *m)
{
	size_t i;
	unsigned j;

	if (m == NULL)
		return;
	for (i = 0; i < m->npersonal; i++) {
		for (j = 0; j < m->personal[i].ncerts; j++)
			gnutls_x509_crt_deinit(m->personal[i].certs[j]);
		free(m->personal[i].certs);
		if (m->personal[i].key != NULL)
			gnutls_x509_privkey_deinit(m->personal[i].key);
	}
	free(m->personal);
	for (i = 0; i < m->ntrusted; i++)
		gnutls_x509_crt_deinit(m->trusted[i]);
	free(m->trusted);
	for (i = 0; i < m->ncrls; i++)
		gnutls_x509_crl_deinit(m->crls[i]);
	free(m->crls);
	free(m);
}
