/* `chanctl import mosquitto-conf`: a mosquitto.conf turned into the
 * chanctl commands that reproduce its listeners on chand
 * (doc/MOSQUITTO.md).
 *
 * Pure: text in, commands and notes out.  The few questions about the
 * file system that the mapping needs (does this path exist, which files
 * are in a capath directory, is this key encrypted) are asked through
 * struct mqc_env, which the caller fills (cmd_import.c with real look-ups,
 * the unit tests with fakes); with no env they are simply not asked. */
#ifndef CHAND_MOSQCONF_H
#define CHAND_MOSQCONF_H

#include <stdbool.h>
#include <stddef.h>

#define MQC_MAX_ARGS 48

enum mqc_kind {
	MQC_COMMENT,     /* "# text" in the output: an explanation for the reader */
	MQC_KEYSTORE,    /* argv[0] is "keystore": works on the keystore file */
	MQC_AGENT,       /* define / start / refresh security: through the admin socket */
};

struct mqc_cmd {
	enum mqc_kind kind;
	int line;                       /* mosquitto.conf line it comes from (0: none) */
	int argc;
	char *argv[MQC_MAX_ARGS + 1];   /* the words after "chanctl", NULL terminated */
	char *text;                     /* MQC_COMMENT only */
};

/* Something the reader must know: a key not carried over ("KEY is not
 * carried over: REASON"), a plain-TCP listener, a missing file... */
struct mqc_note {
	int line;                       /* 0: about the whole file */
	char *text;
};

struct mqc_result {
	struct mqc_cmd *cmds;
	size_t ncmds;
	struct mqc_note *notes;
	size_t nnotes;
	size_t nchannels;               /* channels defined */
	char err[512];                  /* the syntax error: "FILE:LINE: reason" */
};

struct mqc_env {
	void *arg;
	/* True if path names an existing file or directory. */
	bool (*exists)(void *arg, const char *path);
	/* The certificate files of a capath directory, sorted, as paths:
	 * *out (malloc'd array of malloc'd strings, freed by the module) and
	 * their count, or -1 with a one-line reason in err. */
	int (*list_dir)(void *arg, const char *dir, char ***out, size_t *n, char *err,
	                size_t errlen);
	/* 1 if the key file is encrypted, 0 if not, -1 if it cannot be told. */
	int (*key_encrypted)(void *arg, const char *path);
};

struct mqc_opts {
	const char *name;               /* the file's name in messages (NULL: "mosquitto.conf") */
	const char *keystore;           /* -k FILE added to keystore commands, or NULL */
	const char *keystore_password_file; /* --password-file for keystore commands, or NULL */
	const char *key_password_file;  /* --key-password-file for every keystore import, or NULL */
};

/* Converts the len bytes of text (need not be NUL-terminated).  Returns 0
 * with *out filled (mqc_result_free it), 1 on a syntax error (out->err
 * says FILE:LINE and why; nothing else is filled), or -1 when out of
 * memory. env may be NULL. */
int mqc_convert(const char *text, size_t len, const struct mqc_opts *opts,
                const struct mqc_env *env, struct mqc_result *out);
void mqc_result_free(struct mqc_result *r);

/* The output line of a command: "chanctl " + prefix (may be "" or e.g.
 * "-c /etc/chand/chand.conf ") + the shell-quoted words, or "# text" for a
 * comment.  malloc'd; NULL when out of memory. */
char *mqc_cmd_line(const struct mqc_cmd *c, const char *prefix);
/* One word quoted for sh: unchanged when it only holds safe characters,
 * else in single quotes. malloc'd; NULL when out of memory. */
char *mqc_shell_quote(const char *word);

#endif
