/* chanctl check-peer: tells an operator whether a certificate passes an
 * SSLPEER filter, without an agent.  Exit codes are part of the interface
 * (scripts test them): 0 match, 1 no match, 2 any error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/ctlcmd.h"
#include "chand/dnfilter.h"
#include "chand/util.h"

#define CP_MATCH 0
#define CP_NOMATCH 1
#define CP_ERROR 2

/* Big enough for any certificate with a long chain pasted in front. */
#define CP_CERT_MAX (1024 * 1024)

static void cp_usage(FILE *f)
{
	fprintf(f, "usage: chanctl check-peer --sslpeer FILTER --cert FILE\n"
	           "  prints 'match' (exit 0), 'no match: REASON' (exit 1) or an error (exit 2);\n"
	           "  FILE is a PEM or DER certificate (the first one of a PEM bundle)\n");
}

/* "--opt VALUE" or "--opt=VALUE"; returns the value and advances *i. */
static const char *cp_optarg(int argc, char **argv, int *i, const char *opt, bool *bad)
{
	size_t ol = strlen(opt);
	const char *a = argv[*i];

	if (strncmp(a, opt, ol) != 0)
		return NULL;
	if (a[ol] == '=')
		return a + ol + 1;
	if (a[ol] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "error: %s needs a value\n", opt);
		*bad = true;
		return NULL;
	}
	(*i)++;
	return argv[*i];
}

static int cp_load_cert(const char *path, gnutls_x509_crt_t *crt)
{
	char err[512];
	size_t len = 0;
	char *data = file_read_all(path, CP_CERT_MAX, &len, err, sizeof err);
	gnutls_datum_t d;
	int rc;

	if (data == NULL) {
		fprintf(stderr, "error: %s\n", err);
		return -1;
	}
	if (len == 0) {
		fprintf(stderr, "error: %s is empty\n", path);
		free(data);
		return -1;
	}
	rc = gnutls_x509_crt_init(crt);
	if (rc < 0) {
		fprintf(stderr, "error: %s\n", gnutls_strerror(rc));
		free(data);
		return -1;
	}
	d.data = (unsigned char *)data;
	d.size = (unsigned int)len;
	/* PEM if it carries a certificate armour anywhere (text may precede
	 * it, as in openssl x509 -text output), DER otherwise. */
	if (memmem(data, len, "-----BEGIN", 10) != NULL)
		rc = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
	else
		rc = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_DER);
	free(data);
	if (rc < 0) {
		fprintf(stderr, "error: %s is not a PEM or DER X.509 certificate: %s\n", path,
		        gnutls_strerror(rc));
		gnutls_x509_crt_deinit(*crt);
		*crt = NULL;
		return -1;
	}
	return 0;
}

int dnf_cli_check_peer(int argc, char **argv)
{
	const char *filter = NULL, *cert = NULL;
	struct dnf_filter *f = NULL;
	struct dnf_subject subj;
	gnutls_x509_crt_t crt = NULL;
	char err[512], why[512], dn[1024];
	size_t errpos = 0;
	bool bad = false;
	int ret;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cp_usage(stdout);
			return CP_MATCH;
		}
		if ((v = cp_optarg(argc, argv, &i, "--sslpeer", &bad)) != NULL) {
			filter = v;
			continue;
		}
		if (bad)
			return CP_ERROR;
		if ((v = cp_optarg(argc, argv, &i, "--cert", &bad)) != NULL) {
			cert = v;
			continue;
		}
		if (bad)
			return CP_ERROR;
		fprintf(stderr, "error: check-peer: unexpected argument '%s' "
		                "(usage: chanctl check-peer --sslpeer FILTER --cert FILE)\n", argv[i]);
		return CP_ERROR;
	}
	if (filter == NULL || cert == NULL) {
		fprintf(stderr, "error: check-peer needs --sslpeer FILTER and --cert FILE\n");
		return CP_ERROR;
	}
	/* The filter first: a bad filter is the operator's error whatever the
	 * certificate, and its position is what they need to see. */
	if (dnf_parse(filter, &f, &errpos, err, sizeof err) != 0) {
		/* err ends with " at position N"; the position leads instead. */
		char *at = strstr(err, " at position ");
		if (at != NULL)
			*at = '\0';
		fprintf(stderr, "error: SSLPEER position %zu: %s\n", errpos, err);
		return CP_ERROR;
	}
	if (cp_load_cert(cert, &crt) != 0) {
		dnf_free(f);
		return CP_ERROR;
	}
	if (dnf_subject_from_crt(crt, &subj, err, sizeof err) != 0) {
		fprintf(stderr, "error: %s: %s\n", cert, err);
		gnutls_x509_crt_deinit(crt);
		dnf_free(f);
		return CP_ERROR;
	}
	if (dnf_match(f, &subj, why, sizeof why)) {
		printf("match\n");
		ret = CP_MATCH;
	} else {
		dnf_crt_dn(crt, dn, sizeof dn);
		printf("no match: peer DN '%s': %s\n", dn, why);
		ret = CP_NOMATCH;
	}
	fflush(stdout);
	dnf_subject_free(&subj);
	gnutls_x509_crt_deinit(crt);
	dnf_free(f);
	return ret;
}
