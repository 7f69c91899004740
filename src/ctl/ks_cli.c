/* `chanctl keystore ...`: option parsing, password sources, and the
 * commands that change the keystore (create, import, trust, crl add,
 * remove, stash). list and show are in ks_cli_show.c. The keystore
 * itself is the keystore module's (chand/keystore_file.h): this file
 * parses, asks and prints. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <jansson.h>

#include "chand/ctlcmd.h"
#include "chand/util.h"
#include "ks_cli.h"

enum {
	O_K = 1u << 0, O_PW = 1u << 1, O_STASH = 1u << 2, O_LABEL = 1u << 3, O_CERT = 1u << 4,
	O_KEY = 1u << 5, O_KEYPW = 1u << 6, O_CHAIN = 1u << 7, O_P12 = 1u << 8,
	O_P12PW = 1u << 9, O_CRL = 1u << 10, O_JSON = 1u << 11
};

struct ks_optdef {
	const char *name;
	const char *alias;
	unsigned bit;
	bool has_arg;
};

static const struct ks_optdef ks_opts[] = {
	{ "-k", "--keystore", O_K, true },
	{ "--password-file", NULL, O_PW, true },
	{ "--stash", NULL, O_STASH, false },
	{ "--label", NULL, O_LABEL, true },
	{ "--cert", NULL, O_CERT, true },
	{ "--key", NULL, O_KEY, true },
	{ "--key-password-file", NULL, O_KEYPW, true },
	{ "--chain", NULL, O_CHAIN, true },
	{ "--p12", NULL, O_P12, true },
	{ "--p12-password-file", NULL, O_P12PW, true },
	{ "--crl", NULL, O_CRL, true },
	{ "--json", NULL, O_JSON, false },
};

struct ks_cmddef {
	const char *name;
	int (*fn)(struct ks_cli *c);
	unsigned opts;
	int npos;           /* positional arguments required (0 or 1) */
	int open;           /* 0 no, 1 read-only, 2 read-write */
	const char *usage;
};

static int ks_cmd_create(struct ks_cli *c);
static int ks_cmd_import(struct ks_cli *c);
static int ks_cmd_import_p12(struct ks_cli *c);
static int ks_cmd_trust(struct ks_cli *c);
static int ks_cmd_crl_add(struct ks_cli *c);
static int ks_cmd_remove(struct ks_cli *c);
static int ks_cmd_stash(struct ks_cli *c);
#define KS_CLI_HELP (-100)   /* --help was given and answered */
static int ks_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ks_cli_parse(struct ks_cli *c, const struct ks_cmddef *def, int argc, char **argv,
                        int start);
static int ks_cli_open(struct ks_cli *c, bool writable);
static int ks_cli_keypw(struct ks_cli *c, const char *file, char *pw, const char **out);
static int ks_cli_insert_all(struct ks_cli *c, struct ks_entry *ents, size_t n);
static int ks_cli_report(struct ks_cli *c, const char *verb, struct ks_entry *ents, size_t n);
static int ks_cli_personal(struct ks_cli *c, const char *label, gnutls_x509_crt_t leaf,
                           gnutls_x509_privkey_t key, gnutls_x509_crt_t *chain, unsigned nchain,
                           struct ks_entry *e);
static void ks_cli_check_chain(struct ks_cli *c, const char *label, gnutls_x509_crt_t *chain,
                               unsigned nchain);
static void ks_json_warning(void *arg, const char *line);

static const struct ks_cmddef ks_cmds[] = {
	{ "create", ks_cmd_create, O_K | O_PW | O_STASH | O_JSON, 0, 0,
	  "create [-k FILE] [--password-file F] [--stash]" },
	{ "import", ks_cmd_import,
	  O_K | O_PW | O_LABEL | O_CERT | O_KEY | O_KEYPW | O_CHAIN | O_P12 | O_P12PW | O_JSON, 0, 2,
	  "import [-k FILE] --label L --cert PEM [--key PEM] [--key-password-file F] [--chain PEM]...\n"
	  "       import [-k FILE] --p12 FILE [--p12-password-file F] [--label L]" },
	{ "trust", ks_cmd_trust, O_K | O_PW | O_LABEL | O_CERT | O_JSON, 0, 2,
	  "trust [-k FILE] --label L --cert PEM" },
	{ "crl add", ks_cmd_crl_add, O_K | O_PW | O_LABEL | O_CRL | O_JSON, 0, 2,
	  "crl add [-k FILE] --label L --crl FILE" },
	{ "list", ks_cmd_list, O_K | O_PW | O_JSON, 0, 1, "list [-k FILE]" },
	{ "show", ks_cmd_show, O_K | O_PW | O_JSON, 1, 1, "show [-k FILE] LABEL" },
	{ "remove", ks_cmd_remove, O_K | O_PW | O_JSON, 1, 2, "remove [-k FILE] LABEL" },
	{ "stash", ks_cmd_stash, O_K | O_PW | O_JSON, 0, 1, "stash [-k FILE] [--password-file F]" },
};

int ks_cli_fail(const struct ks_cli *c, const char *code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "chanctl keystore %s: ", c->cmd);
	if (code != NULL)
		fprintf(stderr, "%s ", code);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

void ks_cli_warn(const struct ks_cli *c, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "chanctl keystore %s: warning: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int ks_cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	fprintf(stderr, "chanctl keystore%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (i = 0; i < sizeof ks_cmds / sizeof ks_cmds[0]; i++)
		if (cmd == NULL || strcmp(cmd, ks_cmds[i].name) == 0)
			fprintf(stderr, "usage: chanctl keystore %s\n", ks_cmds[i].usage);
	return 2;
}

static int ks_cli_parse(struct ks_cli *c, const struct ks_cmddef *def, int argc, char **argv,
                        int start)
{
	int i, npos = 0;

	for (i = start; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		const struct ks_optdef *o = NULL;
		size_t j, nlen;

		/* every subcommand answers --help (on stdout, exit 0) */
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("usage: chanctl keystore %s\n", def->usage);
			return KS_CLI_HELP;
		}

		if (a[0] != '-' || a[1] == '\0') {
			if (npos >= def->npos)
				return ks_cli_usage(def->name, "unexpected argument \"%s\"", a);
			c->arg = a;
			npos++;
			continue;
		}
		eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
		nlen = eq ? (size_t)(eq - a) : strlen(a);
		for (j = 0; j < sizeof ks_opts / sizeof ks_opts[0] && o == NULL; j++)
			if ((strlen(ks_opts[j].name) == nlen && strncmp(a, ks_opts[j].name, nlen) == 0) ||
			    (ks_opts[j].alias && strlen(ks_opts[j].alias) == nlen &&
			     strncmp(a, ks_opts[j].alias, nlen) == 0))
				o = &ks_opts[j];
		if (o == NULL || !(def->opts & o->bit))
			return ks_cli_usage(def->name, "unknown option %.*s", (int)nlen, a);
		if (o->has_arg) {
			if (eq != NULL)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return ks_cli_usage(def->name, "option %s needs a value", o->name);
			if (*val == '\0')
				return ks_cli_usage(def->name, "option %s needs a value", o->name);
		} else if (eq != NULL) {
			return ks_cli_usage(def->name, "option %s takes no value", o->name);
		}
		switch (o->bit) {
		case O_K: c->ks = val; break;
		case O_PW: c->pwfile = val; break;
		case O_STASH: c->stash = true; break;
		case O_LABEL: c->label = val; break;
		case O_CERT: c->cert = val; break;
		case O_KEY: c->key = val; break;
		case O_KEYPW: c->keypw = val; break;
		case O_CHAIN:
			if (c->nchain >= KS_CLI_MAX_CHAIN)
				return ks_cli_usage(def->name, "at most %d --chain files", KS_CLI_MAX_CHAIN);
			c->chain[c->nchain++] = val;
			break;
		case O_P12: c->p12 = val; break;
		case O_P12PW: c->p12pw = val; break;
		case O_CRL: c->crl = val; break;
		case O_JSON: c->json = true; break;
		default: break;
		}
	}
	if (npos < def->npos)
		return ks_cli_usage(def->name, "missing LABEL");
	return 0;
}

int ks_cli_main(int argc, char **argv, const char *config_ks_path, bool json)
{
	const struct ks_cmddef *def = NULL;
	struct ks_cli c;
	char name[16];
	int start = 2, rc;
	size_t i;

	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		ks_cli_usage(NULL, "%s", argc < 2 ? "missing command" : "commands");
		return argc < 2 ? 2 : 0;
	}
	str_copy(name, argv[1], sizeof name);
	if (strcmp(argv[1], "crl") == 0) {
		if (argc < 3 || strcmp(argv[2], "add") != 0)
			return ks_cli_usage("crl add", "unknown crl command (crl add)");
		str_copy(name, "crl add", sizeof name);
		start = 3;
	}
	for (i = 0; i < sizeof ks_cmds / sizeof ks_cmds[0]; i++)
		if (strcmp(name, ks_cmds[i].name) == 0)
			def = &ks_cmds[i];
	if (def == NULL)
		return ks_cli_usage(NULL, "unknown command \"%s\"", argv[1]);

	memset(&c, 0, sizeof c);
	c.cmd = def->name;
	c.json = json;
	rc = ks_cli_parse(&c, def, argc, argv, start);
	if (rc == KS_CLI_HELP)
		return 0;
	if (rc != 0)
		return rc;
	if (c.ks == NULL)
		c.ks = config_ks_path;
	if (c.ks == NULL || *c.ks == '\0')
		return ks_cli_usage(def->name, "no keystore: give -k FILE (or -c CONFIG with "
		                    "keystore.path)");
	rc = 0;
	if (def->open != 0)
		rc = ks_cli_open(&c, def->open == 2);
	if (rc == 0)
		rc = def->fn(&c);
	ks_db_close(c.db);
	secure_zero(c.pw, sizeof c.pw);
	fflush(stdout);
	return rc;
}

/* Opens the keystore and checks the password before anything else is
 * done, so a wrong password is always reported as such. */
static int ks_cli_open(struct ks_cli *c, bool writable)
{
	enum chd_code_id code;
	char err[1024];
	char *stash = ks_stash_path(c->ks);
	struct stat st;
	int rc = 1;

	if (stash == NULL)
		return ks_cli_fail(c, NULL, "out of memory");
	if (ks_db_open(c->ks, stash, writable, &c->db, &code, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(code), "%s", err);
		goto out;
	}
	if (c->pwfile != NULL) {
		if (ks_pw_from_file(c->pwfile, c->pw, err, sizeof err) != 0) {
			ks_cli_fail(c, NULL, "%s", err);
			goto out;
		}
	} else if (stat(stash, &st) == 0) {
		if (ks_pw_from_stash(stash, c->pw, &code, err, sizeof err) != 0) {
			ks_cli_fail(c, code_str(code), "%s", err);
			goto out;
		}
	} else {
		char prompt[PATH_MAX + 64];

		snprintf(prompt, sizeof prompt, "Password for keystore %s: ", c->ks);
		if (ks_pw_prompt(prompt, c->pw, err, sizeof err) != 0) {
			ks_cli_fail(c, NULL, "%s", err);
			goto out;
		}
	}
	if (ks_db_check_password(c->db, c->pw, &code, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(code), "%s", err);
		goto out;
	}
	rc = 0;
out:
	free(stash);
	return rc;
}

static int ks_cmd_create(struct ks_cli *c)
{
	char err[1024], again[KS_PASSWORD_MAX + 1];
	char *stash = NULL;
	struct stat st;
	int rc = 1;

	if (c->pwfile != NULL) {
		if (ks_pw_from_file(c->pwfile, c->pw, err, sizeof err) != 0)
			return ks_cli_fail(c, NULL, "%s", err);
	} else {
		if (ks_pw_prompt("New keystore password: ", c->pw, err, sizeof err) != 0 ||
		    ks_pw_prompt("Repeat the password: ", again, err, sizeof err) != 0) {
			secure_zero(again, sizeof again);
			return ks_cli_fail(c, NULL, "%s", err);
		}
		rc = strcmp(c->pw, again) != 0;
		secure_zero(again, sizeof again);
		if (rc)
			return ks_cli_fail(c, NULL, "the passwords differ");
	}
	if (strlen(c->pw) < KS_PASSWORD_MIN)
		return ks_cli_fail(c, NULL, "the keystore password must be at least %d characters",
		                   KS_PASSWORD_MIN);
	stash = ks_stash_path(c->ks);
	if (stash == NULL)
		return ks_cli_fail(c, NULL, "out of memory");
	if (ks_db_create(c->ks, c->pw, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
		goto out;
	}
	if (c->stash && ks_stash_write(stash, c->pw, err, sizeof err) != 0) {
		ks_cli_fail(c, NULL, "keystore %s created, but: %s", c->ks, err);
		goto out;
	}
	if (c->json) {
		json_t *o = json_object();

		json_object_set_new(o, "created", json_string(c->ks));
		json_object_set_new(o, "stash", c->stash ? json_string(stash) : json_null());
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	} else {
		printf("created keystore %s\n", c->ks);
		if (c->stash)
			printf("stashed its password in %s (mode 0600)\n", stash);
		else if (stat(stash, &st) == 0)
			printf("WARNING: %s exists and holds another keystore's password; "
			       "replace it with: chanctl keystore stash -k %s\n", stash, c->ks);
	}
	rc = 0;
out:
	free(stash);
	return rc;
}

static int ks_cmd_stash(struct ks_cli *c)
{
	char err[1024];
	char *stash = ks_stash_path(c->ks);
	int rc = 1;

	if (stash == NULL)
		return ks_cli_fail(c, NULL, "out of memory");
	if (ks_stash_write(stash, c->pw, err, sizeof err) != 0) {
		ks_cli_fail(c, NULL, "%s", err);
	} else {
		if (c->json) {
			json_t *o = json_pack("{s:s}", "stash", stash);

			json_dumpf(o, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(o);
		} else
			printf("stashed the password of %s in %s (mode 0600)\n", c->ks, stash);
		rc = 0;
	}
	free(stash);
	return rc;
}

/* Reads an optional key/PKCS#12 password file into pw; *out is pw or NULL. */
static int ks_cli_keypw(struct ks_cli *c, const char *file, char *pw, const char **out)
{
	char err[1024];

	*out = NULL;
	if (file == NULL)
		return 0;
	if (ks_pw_from_file(file, pw, err, sizeof err) != 0)
		return ks_cli_fail(c, NULL, "%s", err);
	*out = pw;
	return 0;
}

/* A personal entry under the keystore password (ks_entry_personal),
 * after warning about any chain certificate that cannot sign. */
static int ks_cli_personal(struct ks_cli *c, const char *label, gnutls_x509_crt_t leaf,
                           gnutls_x509_privkey_t key, gnutls_x509_crt_t *chain, unsigned nchain,
                           struct ks_entry *e)
{
	char err[512];

	ks_cli_check_chain(c, label, chain, nchain);
	if (ks_entry_personal(label, leaf, key, c->pw, chain, nchain, e, err, sizeof err) != 0)
		return ks_cli_fail(c, NULL, "%s", err);
	return 0;
}

/* An intermediate made without the CA extensions (openssl x509 -req
 * without -extfile) is accepted here but every peer refuses the chain at
 * the handshake: say so now, with the way out, rather than then. */
static void ks_cli_check_chain(struct ks_cli *c, const char *label, gnutls_x509_crt_t *chain,
                               unsigned nchain)
{
	char why[512];

	for (unsigned i = 0; i < nchain; i++)
		if (!ks_crt_can_sign(chain[i], true, why, sizeof why))
			ks_cli_warn(c, "chain certificate %u of \"%s\": %s: peers will refuse this chain; "
			            "%s", i + 1, label, why, KS_RESIGN_HINT);
}

static int ks_cli_insert_all(struct ks_cli *c, struct ks_entry *ents, size_t n)
{
	char err[1024];
	size_t i;
	int r;

	if (ks_db_begin(c->db, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	for (i = 0; i < n; i++) {
		r = ks_db_exists(c->db, ents[i].label, err, sizeof err);
		if (r == 1)
			snprintf(err, sizeof err, "label %s already exists in %s (remove it first)",
			         ents[i].label, c->ks);
		if (r != 0 || ks_db_insert(c->db, &ents[i], err, sizeof err) != 0) {
			ks_db_rollback(c->db);
			return ks_cli_fail(c, NULL, "%s", err);
		}
	}
	if (ks_db_commit(c->db, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	return 0;
}

static void ks_json_warning(void *arg, const char *line)
{
	json_array_append_new((json_t *)arg, json_string(line));
}

/* Prints what was added, with any warnings (expiry, incomplete chain). */
static int ks_cli_report(struct ks_cli *c, const char *verb, struct ks_entry *ents, size_t n)
{
	gnutls_x509_crt_t *trusted = NULL;
	unsigned ntrusted = 0;
	json_t *arr = c->json ? json_array() : NULL;
	size_t i;

	if (ks_db_trusted(c->db, &trusted, &ntrusted) != 0)
		ntrusted = 0;
	for (i = 0; i < n; i++) {
		gnutls_x509_crt_t *crt = NULL;
		unsigned ncrt = 0;
		char *subject = NULL;
		char err[256];

		if (ents[i].kind != KS_KIND_CRL &&
		    ks_certs_import(&ents[i].der, ents[i].label, &crt, &ncrt, err, sizeof err) == 0)
			subject = ks_crt_subject(crt[0]);
		if (arr != NULL) {
			json_t *o = json_object(), *w = json_array();

			json_object_set_new(o, "label", json_string(ents[i].label));
			json_object_set_new(o, "kind", json_string(ks_kind_name(ents[i].kind)));
			json_object_set_new(o, "subject", subject ? json_string(subject) : json_null());
			json_object_set_new(o, "chain_length", json_integer(ents[i].nchain));
			ks_entry_warnings(&ents[i], trusted, ntrusted, ks_json_warning, w);
			json_object_set_new(o, "warnings", w);
			json_array_append_new(arr, o);
		} else {
			if (ents[i].kind == KS_KIND_PERSONAL)
				printf("%s personal certificate \"%s\": %s (with private key, chain of %u)\n",
				       verb, ents[i].label, subject ? subject : "?", ents[i].nchain);
			else if (ents[i].kind == KS_KIND_TRUSTED)
				printf("%s CA certificate \"%s\": %s\n", verb, ents[i].label,
				       subject ? subject : "?");
			else
				printf("%s CRL \"%s\"\n", verb, ents[i].label);
			ks_entry_warnings(&ents[i], trusted, ntrusted, ks_cli_print_warning, NULL);
		}
		free(subject);
		ks_certs_free(crt, ncrt);
	}
	if (arr != NULL) {
		json_t *o = json_object();

		json_object_set_new(o, verb, arr);
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	}
	ks_certs_free(trusted, ntrusted);
	return 0;
}

static int ks_cmd_import(struct ks_cli *c)
{
	char err[1024], keypw[KS_PASSWORD_MAX + 1], why[256];
	const char *kpw = NULL, *keyname;
	gnutls_x509_crt_t *certs = NULL, *more;
	unsigned ncerts = 0, nmore, i;
	gnutls_datum_t keydata = { NULL, 0 }, certdata = { NULL, 0 };
	gnutls_x509_privkey_t key = NULL;
	enum chd_code_id code;
	struct ks_entry e;
	int rc = 1;

	memset(&e, 0, sizeof e);
	if (c->p12 != NULL) {
		if (c->cert || c->key || c->keypw || c->nchain)
			return ks_cli_usage(c->cmd, "--p12 excludes --cert, --key, --key-password-file "
			                    "and --chain");
		return ks_cmd_import_p12(c);
	}
	if (c->p12pw != NULL)
		return ks_cli_usage(c->cmd, "--p12-password-file needs --p12");
	if (c->label == NULL || c->cert == NULL)
		return ks_cli_usage(c->cmd, "give --label and --cert (or --p12)");
	if (!ks_label_valid(c->label, why, sizeof why))
		return ks_cli_fail(c, NULL, "%s", why);

	if (ks_file_read(c->cert, &certdata, err, sizeof err) != 0 ||
	    ks_certs_import(&certdata, c->cert, &certs, &ncerts, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "%s", err);
		goto out;
	}
	for (i = 0; i < c->nchain; i++) {
		gnutls_x509_crt_t *nv;

		if (ks_certs_load(c->chain[i], &more, &nmore, err, sizeof err) != 0) {
			ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "%s", err);
			goto out;
		}
		nv = realloc(certs, (ncerts + nmore) * sizeof *certs);
		if (nv == NULL) {
			ks_certs_free(more, nmore);
			ks_cli_fail(c, NULL, "out of memory");
			goto out;
		}
		certs = nv;
		memcpy(certs + ncerts, more, nmore * sizeof *more);
		ncerts += nmore;
		free(more);
	}
	if (ks_cli_keypw(c, c->keypw, keypw, &kpw) != 0)
		goto out;
	/* Without --key, the certificate file may hold the key too. */
	if (c->key != NULL) {
		if (ks_file_read(c->key, &keydata, err, sizeof err) != 0) {
			ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "%s", err);
			goto out;
		}
		keyname = c->key;
	} else if (ks_has_pem(&certdata, "PRIVATE KEY") || ks_has_pem(&certdata, "RSA PRIVATE KEY") ||
	           ks_has_pem(&certdata, "EC PRIVATE KEY") ||
	           ks_has_pem(&certdata, "ENCRYPTED PRIVATE KEY")) {
		keydata = certdata;
		certdata.data = NULL;
		keyname = c->cert;
	} else {
		ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "no private key for %s: give --key "
		            "(CA certificates are added with keystore trust)", c->cert);
		goto out;
	}
	if (ks_key_import(&keydata, keyname, kpw, &key, &code, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(code), "%s", err);
		goto out;
	}
	if (!ks_key_matches(certs[0], key)) {
		char *subject = ks_crt_subject(certs[0]);

		ks_cli_fail(c, code_str(CHD_KS_KEY_MISMATCH), "private key %s does not belong to "
		            "certificate %s (%s)", keyname, c->cert, subject ? subject : "?");
		free(subject);
		goto out;
	}
	ks_chain_order(certs[0], certs + 1, ncerts - 1);
	if (ks_cli_personal(c, c->label, certs[0], key, certs + 1, ncerts - 1, &e) != 0)
		goto out;
	if (ks_cli_insert_all(c, &e, 1) != 0)
		goto out;
	rc = ks_cli_report(c, "imported", &e, 1);
out:
	ks_entry_clear(&e);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	ks_certs_free(certs, ncerts);
	ks_datum_wipe(&keydata);
	ks_datum_wipe(&certdata);
	secure_zero(keypw, sizeof keypw);
	return rc;
}

static int ks_cmd_import_p12(struct ks_cli *c)
{
	char err[1024], pw[KS_PASSWORD_MAX + 1], why[256];
	const char *ppw = NULL;
	struct ks_p12 p;
	struct ks_entry *ents = NULL;
	enum chd_code_id code;
	size_t n = 0;
	unsigned i;
	int rc = 1;

	memset(&p, 0, sizeof p);
	if (ks_cli_keypw(c, c->p12pw, pw, &ppw) != 0)
		goto out;
	if (ks_p12_load(c->p12, ppw, &p, &code, err, sizeof err) != 0) {
		ks_cli_fail(c, code_str(code), "%s", err);
		goto out;
	}
	if (c->label != NULL && p.nitems > 1) {
		ks_cli_fail(c, NULL, "PKCS#12 file %s holds %u private keys; leave out --label to "
		            "import each under its friendly name", c->p12, p.nitems);
		goto out;
	}
	ents = calloc(p.nitems, sizeof *ents);
	if (ents == NULL) {
		ks_cli_fail(c, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < p.nitems; i++) {
		const char *label = c->label ? c->label : p.items[i].name;

		if (label == NULL) {
			ks_cli_fail(c, NULL, "the key in PKCS#12 file %s has no friendly name: give --label",
			            c->p12);
			goto out;
		}
		if (!ks_label_valid(label, why, sizeof why)) {
			ks_cli_fail(c, NULL, "%s%s", why, c->label ? "" : " (friendly name; give --label)");
			goto out;
		}
		/* Each key's chain: the file's other certificates, in issuing order. */
		ks_chain_order(p.items[i].cert, p.certs, p.ncerts);
		if (ks_cli_personal(c, label, p.items[i].cert, p.items[i].key, p.certs, p.ncerts,
		                    &ents[i]) != 0)
			goto out;
		n = i + 1;
	}
	if (ks_cli_insert_all(c, ents, n) != 0)
		goto out;
	rc = ks_cli_report(c, "imported", ents, n);
out:
	ks_entries_free(ents, n);
	ks_p12_free(&p);
	secure_zero(pw, sizeof pw);
	return rc;
}

static int ks_cmd_trust(struct ks_cli *c)
{
	char err[1024], why[512];
	gnutls_x509_crt_t *certs = NULL;
	struct ks_entry *ents = NULL;
	unsigned ncerts = 0, i;
	size_t n = 0;
	int rc = 1;

	if (c->label == NULL || c->cert == NULL)
		return ks_cli_usage(c->cmd, "give --label and --cert");
	if (!ks_label_valid(c->label, why, sizeof why))
		return ks_cli_fail(c, NULL, "%s", why);
	if (ks_certs_load(c->cert, &certs, &ncerts, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "%s", err);
	ents = calloc(ncerts, sizeof *ents);
	if (ents == NULL) {
		ks_cli_fail(c, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < ncerts; i++) {
		struct ks_entry *e = &ents[i];
		char label[KS_LABEL_MAX + 16];

		if (!ks_crt_is_ca(certs[i], why, sizeof why)) {
			ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "refusing to trust %s: %s%s; %s", c->cert,
			            why, ncerts > 1 ? " (nothing added)" : "", KS_RESIGN_HINT);
			goto out;
		}
		/* CA:TRUE but no keyCertSign: trusted as asked, but nothing it
		 * signed will verify. */
		if (!ks_crt_can_sign(certs[i], false, why, sizeof why))
			ks_cli_warn(c, "%s: %s: peers whose chain goes through it will be refused; %s",
			            c->cert, why, KS_RESIGN_HINT);
		/* A bundle makes L, L.1, L.2... in file order. */
		if (i == 0)
			snprintf(label, sizeof label, "%s", c->label);
		else
			snprintf(label, sizeof label, "%s.%u", c->label, i);
		if (!ks_label_valid(label, why, sizeof why)) {
			ks_cli_fail(c, NULL, "%s", why);
			goto out;
		}
		str_copy(e->label, label, sizeof e->label);
		e->kind = KS_KIND_TRUSTED;
		e->created = (int64_t)time(NULL);
		if (ks_crt_der(certs[i], &e->der) != 0) {
			ks_cli_fail(c, NULL, "out of memory");
			goto out;
		}
		n = i + 1;
	}
	if (ks_cli_insert_all(c, ents, n) != 0)
		goto out;
	rc = ks_cli_report(c, "trusted", ents, n);
out:
	ks_entries_free(ents, n);
	ks_certs_free(certs, ncerts);
	return rc;
}

static int ks_cmd_crl_add(struct ks_cli *c)
{
	char err[1024], why[256];
	gnutls_x509_crl_t crl = NULL;
	gnutls_datum_t der = { NULL, 0 };
	struct ks_entry e;
	int rc = 1;

	memset(&e, 0, sizeof e);
	if (c->label == NULL || c->crl == NULL)
		return ks_cli_usage(c->cmd, "give --label and --crl");
	if (!ks_label_valid(c->label, why, sizeof why))
		return ks_cli_fail(c, NULL, "%s", why);
	if (ks_crl_load(c->crl, &crl, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_BAD_FILE), "%s", err);
	if (gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &der) < 0 ||
	    (e.der.data = malloc(der.size)) == NULL) {
		ks_cli_fail(c, NULL, "cannot encode CRL %s", c->crl);
		goto out;
	}
	memcpy(e.der.data, der.data, der.size);
	e.der.size = der.size;
	str_copy(e.label, c->label, sizeof e.label);
	e.kind = KS_KIND_CRL;
	e.created = (int64_t)time(NULL);
	if (ks_cli_insert_all(c, &e, 1) != 0)
		goto out;
	rc = ks_cli_report(c, "added", &e, 1);
out:
	gnutls_free(der.data);
	ks_entry_clear(&e);
	gnutls_x509_crl_deinit(crl);
	return rc;
}

static int ks_cmd_remove(struct ks_cli *c)
{
	char err[1024];
	struct ks_entry old;
	bool was_trusted = false;
	size_t left = 0;
	int r;

	if (ks_db_begin(c->db, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	memset(&old, 0, sizeof old);
	r = ks_db_get(c->db, c->arg, &old, err, sizeof err);
	if (r == 0)
		was_trusted = old.kind == KS_KIND_TRUSTED;
	ks_entry_clear(&old);
	if (r == 0)
		r = ks_db_remove(c->db, c->arg, err, sizeof err);
	if (r != 0) {
		ks_db_rollback(c->db);
		if (r == 1)
			return ks_cli_fail(c, code_str(CHD_KS_LABEL_MISSING), "no entry labelled %s in %s",
			                   c->arg, c->ks);
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	}
	if (ks_db_commit(c->db, err, sizeof err) != 0)
		return ks_cli_fail(c, code_str(CHD_KS_OPEN), "%s", err);
	/* Removing the last CA leaves nothing to verify peers with: every
	 * channel or telemetry client that checks certificates will refuse
	 * its peer from the next refresh security or restart on. */
	if (was_trusted && ks_db_count(c->db, KS_KIND_TRUSTED, &left, err, sizeof err) == 0 &&
	    left == 0)
		ks_cli_warn(c, "%s now trusts no CA certificate: TLS channels and telemetry clients "
		            "that verify peers will refuse them all; add one with chanctl keystore "
		            "trust --label L --cert CA.pem", c->ks);
	if (c->json) {
		json_t *o = json_pack("{s:s}", "removed", c->arg);

		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	} else {
		printf("removed \"%s\" from %s\n", c->arg, c->ks);
	}
	return 0;
}
