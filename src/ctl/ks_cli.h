/* Shared by the `chanctl keystore` command files (not a contract): the
 * front end of the keystore module (chand/keystore_file.h). */
#ifndef CHAND_KS_CLI_H
#define CHAND_KS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "chand/keystore_file.h"

#define KS_CLI_MAX_CHAIN 16

struct ks_cli {
	const char *cmd;        /* "import", "crl add", ... for messages */
	const char *ks;         /* keystore path */
	const char *pwfile;
	bool stash;
	const char *label;
	const char *cert;
	const char *key;
	const char *keypw;
	const char *chain[KS_CLI_MAX_CHAIN];
	unsigned nchain;
	const char *p12;
	const char *p12pw;
	const char *crl;
	const char *arg;        /* LABEL of show / remove */
	bool json;
	struct ks_db *db;
	char pw[KS_PASSWORD_MAX + 1];
};

/* One line on stderr: "chanctl keystore CMD: [CHDnnnn ]text". Returns 1. */
int ks_cli_fail(const struct ks_cli *c, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One line on stderr: "chanctl keystore CMD: warning: text". The command
 * goes on (and succeeds). */
void ks_cli_warn(const struct ks_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ks_cli_show.c */
int ks_cmd_list(struct ks_cli *c);
int ks_cmd_show(struct ks_cli *c);
/* Prints one of ks_entry_warnings' lines ("WARNING: ..." on stdout). */
void ks_cli_print_warning(void *arg, const char *line);

#endif
