/* chanctl internals: the command grammar tables, argument access, the
 * connection to the agent and output helpers.
 *
 * Each family of commands lives in its own file (cmd_queue.c,
 * cmd_msg.c, ...) as a table of struct ctl_cmd, and families.c lists the
 * families.  A command function gets the parsed arguments and returns
 * the process exit code. */
#ifndef CHAND_CTL_H
#define CHAND_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "chand/admin_proto.h"
#include "chand/codes.h"

/* Exit codes. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

#define CTL_MAX_OPTS 48
#define CTL_MAX_POS 4

struct ctl {
	const char *sock;        /* admin socket (from -s or the config) */
	const char *conf;        /* the configuration chosen (-c, -m, $CHAND_CONF), or NULL */
	bool json;
	struct admin_io io;
	bool connected;
};

struct ctl_opt {
	const char *name;        /* "--maxdepth" or "-m" */
	const char *alias;       /* another spelling or NULL */
	const char *metavar;     /* "N"; NULL for a flag; "[PATTERN]": the value is
	                            optional (--opt=V, or the next word unless it
	                            starts with '-'; without one ctl_opt gives "") */
};

enum ctl_cmd_flags {
	CTL_NO_AGENT = 1 << 0,   /* does not need the agent (no socket lookup) */
};

struct ctl_args;

struct ctl_cmd {
	const char *words;                /* "define qlocal" */
	const char *synopsis;             /* what follows the words, for usage; '\n'
	                                     separates alternative forms */
	const struct ctl_opt *opts;       /* { NULL } terminated, or NULL */
	int min_pos, max_pos;             /* positional arguments */
	int (*fn)(struct ctl *c, const struct ctl_args *a);
	unsigned flags;
};

struct ctl_args {
	const struct ctl_cmd *cmd;
	const char *pos[CTL_MAX_POS];
	int npos;
	const char *val[CTL_MAX_OPTS];
	bool set[CTL_MAX_OPTS];
};

struct ctl_family {
	const char *name;
	const struct ctl_cmd *cmds;       /* { NULL } terminated */
};

/* families.c */
extern const struct ctl_family *const ctl_families[];

/* ---- parsing (ctl_parse.c) ---- */

/* Matches argv[0..argc) against the command tables (unique prefixes
 * accepted, relayctl style) and parses its options and positional
 * arguments into out; --json anywhere sets *json. Exits 2 with a usage
 * message on any error, 0 after printing help for -h/--help. */
void ctl_parse(int argc, char **argv, struct ctl_args *out, bool *json);
void ctl_print_usage(FILE *f);

/* The option's value (NULL if not given); for flags "" when given. */
const char *ctl_opt(const struct ctl_args *a, const char *name);
bool ctl_flag(const struct ctl_args *a, const char *name);
/* A numeric option in [min,max]: false if absent; exits 2 if malformed. */
bool ctl_opt_long(const struct ctl_args *a, const char *name, long min, long max, long *out);
/* One of the words (case-insensitive): index, or -1 if absent; exits 2
 * if the value is none of them. words is NULL terminated. */
int ctl_opt_word(const struct ctl_args *a, const char *name, const char *const *words);

/* ---- errors (ctl_util.c) ---- */

void ctl_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* "chanctl: <text> (CHDnnnn)" and exit 1. */
void ctl_fail(enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Checks an object name, failing with CHD2006 if invalid. */
void ctl_check_name(const char *what, const char *name);
/* Prints an agent's error reply as "chanctl: <prefix><error> (<code>)". */
void ctl_print_reply_error(const json_t *reply, const char *prefix);
/* --json: errors as one JSON object {"code","message"} on stderr. */
void ctl_json_errors(bool on);

/* ---- the agent (ctl_util.c) ---- */

/* Connects to c->sock; fails with CHD6004 if nothing answers. */
void ctl_connect(struct ctl *c);
void ctl_close(struct ctl *c);
/* Sends a frame (obj stolen). Returns 0 or -1 if the connection broke. */
int ctl_send(struct ctl *c, json_t *obj);
/* The same with an attachment (obj's "blobs" must describe its len
 * bytes exactly). */
int ctl_send_blob(struct ctl *c, json_t *obj, const uint8_t *att, size_t len);
/* Reads a frame: 0 with *out, or -1 if the connection broke (with a
 * reason in err). A frame with an attachment is refused here. */
int ctl_recv(struct ctl *c, json_t **out, char *err, size_t errlen);
/* The same, frames with an attachment allowed: *att malloc'd (caller
 * frees; NULL when *att_len is 0). */
int ctl_recv_blob(struct ctl *c, json_t **out, uint8_t **att, size_t *att_len, char *err,
                  size_t errlen);

typedef admin_rec_fn ctl_rec_fn;
/* Sends req (stolen) and reads records until the final reply. on_rec may
 * return non-zero to stop. Returns CTL_EXIT_OK with *final (caller
 * json_decref; may pass NULL), or CTL_EXIT_FAIL after printing the error. */
int ctl_call(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg, json_t **final);
/* ctl_call for an optional extra (an agent may not know the command): a
 * refusal prints nothing, only the exit code says it. */
int ctl_call_quiet(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg);
/* ctl_call for commands whose reply has no records: prints nothing on
 * success except, with --json, the reply object. */
int ctl_simple(struct ctl *c, json_t *req, const char *done_text);

/* ---- the configuration (ctl_conf.c) ---- */

/* What chanctl takes from chand.conf: where the agent listens and which
 * keystore `keystore` commands use by default. Nothing else is read;
 * chand checks the rest of the file. */
struct ctl_conf {
	char *admin_socket;      /* admin.socket, else <data_dir>/chand.sock; NULL if neither */
	char *ks_path;           /* keystore.path, else <dir of the file>/key.db */
};

/* Reads path (libconfig syntax; relative paths against the file's
 * directory, as chand does). 0, or -1 with one line "FILE:LINE: reason"
 * (or "FILE: reason") in err. cc is initialised either way; free it
 * with ctl_conf_free. */
int ctl_conf_read(struct ctl_conf *cc, const char *path, char *err, size_t errlen);
void ctl_conf_free(struct ctl_conf *cc);
/* The configuration chanctl was pointed at (-c, -m, $CHAND_CONF: conf)
 * or the default one. An unusable named file fails (CHD_CONFIG_ERROR);
 * a missing default gives NULL, and so does a broken default when quiet.
 * Read once; the result lives until exit. */
const struct ctl_conf *ctl_config(const char *conf, bool quiet);

/* ---- output (ctl_util.c) ---- */

struct ctl_table {
	size_t ncols;
	const char *const *heads;
	char **cells;             /* rows * ncols, malloc'd strings */
	size_t nrows, cap;
};

void ctl_table_init(struct ctl_table *t, const char *const *heads, size_t ncols);
/* Adds a row of ncols strings (copied; NULL prints "-"). */
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);
/* Prints a JSON value on one line. */
void ctl_json_print(const json_t *v, FILE *f);

#endif
