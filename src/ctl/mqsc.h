/* MQSC scripts for `chanctl run` and `chanctl dump` (doc/OPERATIONS.md).
 *
 * Three pure steps, no I/O:
 *  - mqsc_parse: script text in, commands out.  MQSC rules: keywords in
 *    any case, values in parentheses, unquoted values folded to upper case,
 *    quoted ones kept with '' for a quote, '+' (continue at the first
 *    non-blank of the next line) and '-' (continue at its start) as the
 *    last non-blank of a line, '*' comment lines, ';' ends a command,
 *    blanks and commas separate keywords.
 *  - mqsc_translate: one command into the argv of the chanctl command that
 *    does the same thing, so every MQSC command runs through the one CLI
 *    implementation.  Anything that cannot be honoured exactly is refused
 *    by name, never dropped.
 *  - mqsc_dump_queue / mqsc_dump_channel / mqsc_dump_route: a definition
 *    as `--json display` prints it, back into a DEFINE ... REPLACE command. */
#ifndef CHAND_CTL_MQSC_H
#define CHAND_CTL_MQSC_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct mqsc_param {
	char *key;          /* keyword in upper case: "DEFINE", "MAXDEPTH" */
	char *value;        /* the text in parentheses (NULL: none given) */
	bool quoted;        /* some of the value was quoted (kept as written) */
	int line, col;      /* where the keyword starts (1-based) */
};

struct mqsc_cmd {
	int line;           /* first line of the command */
	char *text;         /* as written, continuations joined, for the echo */
	struct mqsc_param *p;   /* p[0] the verb, p[1] the object and its name */
	size_t np;
	char *error;        /* syntax error (NULL if none), at error_line */
	int error_line;
};

struct mqsc_script {
	struct mqsc_cmd *cmds;
	size_t n;
};

/* Parses len bytes of text.  A command with a syntax error is kept with
 * its error set, so the caller can report every error and go on with the
 * next command as runmqsc does.  Returns 0, or -1 if memory ran out. */
int mqsc_parse(const char *text, size_t len, struct mqsc_script *out);
void mqsc_script_free(struct mqsc_script *s);

struct mqsc_argv {
	char **v;           /* NULL terminated */
	int n;
	char *note;         /* what was accepted but ignored, one "line N: ..." per
	                       line (SSLKEYR); NULL if nothing */
};

/* The chanctl argv of cmd ({"define", "qlocal", "Q1", "--maxdepth", "10"}).
 * Returns 0, or -1 with err set to one line such as
 *   "line 12: DEFINE CHANNEL(TO.QM2): attribute NPMSPEED is not supported". */
int mqsc_translate(const struct mqsc_cmd *cmd, struct mqsc_argv *out, char *err, size_t errlen);
void mqsc_argv_free(struct mqsc_argv *a);

/* A value as an MQSC quoted string ('it''s'); malloc'd, NULL if s holds a
 * character MQSC cannot carry (a control character). */
char *mqsc_quote(const char *s);

/* One object of `chanctl --json display queue|channel` as MQSC text: a
 * DEFINE ... REPLACE command giving every attribute, one per line with '+'
 * continuations, ending in a newline.  Returns malloc'd text, or NULL with
 * err set when the object has an attribute MQSC cannot carry (an unknown
 * key, a control character), so a dump is exact or fails. */
char *mqsc_dump_queue(const json_t *q, char *err, size_t errlen);
char *mqsc_dump_channel(const json_t *ch, char *err, size_t errlen);
/* One route of `chanctl --json display route` (chand's own object, DEFINE
 * ROUTE: doc/TELEMETRY.md); its counters are state and left out. */
char *mqsc_dump_route(const json_t *r, char *err, size_t errlen);

#endif
