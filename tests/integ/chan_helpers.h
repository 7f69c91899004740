/* Helpers for the two-agent channel suites: the test PKI, keystores made
 * with the real `chanctl keystore` commands, agents with a keystore and a
 * dead-letter queue, channel definitions at both ends, and bounded polls
 * of `chanctl --json status` / `--json display queue`.
 *
 * Functions named *_ok fail the current Criterion test (with the command's
 * output) when the command fails; the others return what happened. */
#ifndef CHAND_TESTS_CHAN_HELPERS_H
#define CHAND_TESTS_CHAN_HELPERS_H

#include <stdbool.h>
#include <jansson.h>

#include "helpers.h"

/* The keystore password every test keystore uses (kept in a 0600 file). */
#define CHAN_KS_PASSWORD "Ks-passw0rd-42"
/* Default SSLCIPH of the suites' TLS channels. */
#define CHAN_TLS "--sslciph ANY_TLS13_OR_HIGHER"

/* ---- the test PKI (tests/pki/mkpki.sh) ---- */

/* Directory of the PKI: made once per test binary run (by a PRE_ALL
 * report hook, passed down in $CHAN_PKI_DIR), else on first use. */
const char *chan_pki_dir(void);
/* Path of a PKI file ("qm1.pem"); one of 16 rotating static buffers. */
const char *chan_pki(const char *file);

/* ---- commands ---- */

/* Runs a shell command (timeout s) and fails the test if it exits non-zero;
 * returns its stdout (malloc'd). */
char *chan_sh_ok(int timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `chanctl keystore ARGS` (no agent): exit code, output in out/err. */
int chan_ks(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void chan_ks_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- agents ---- */

struct chan_qm {
	struct th_agent a;
	char name[49];
	char dir[256];
	char ks[320];         /* keystore file: <dir>/key.db */
	char stash[320];      /* <dir>/key.sth */
	char pwfile[320];     /* <dir>/ks.pw, 0600 */
	bool running;
};

struct chan_qm_opts {
	const char *label;        /* keystore.label; default the qmgr name in lower case */
	const char *cert, *key;   /* PKI files of the personal entry under label;
	                             default "<label>.pem" / "<label>.key" */
	bool no_personal;         /* no personal certificate at all */
	bool no_keystore;         /* no keystore in the config */
	bool no_dlq;              /* no dead_letter_queue in the config */
	bool trust_root_only;     /* trust root.pem only (peers must send inter) */
	const char *extra_conf;   /* more config lines */
};

/* Makes the agent's directory and keystore (create --stash, trust root and
 * inter, import the personal certificate with its chain), nothing started. */
void chan_qm_prepare(struct chan_qm *q, const char *qmgr, const struct chan_qm_opts *o);
/* Writes the config and starts the agent (after chan_qm_prepare). */
void chan_qm_launch(struct chan_qm *q, const struct chan_qm_opts *o);
/* prepare + launch; with a DLQ named "DLQ" defined unless o->no_dlq. */
void chan_qm_start(struct chan_qm *q, const char *qmgr, const struct chan_qm_opts *o);
/* Imports one more personal entry (PKI files) into the agent's keystore,
 * with inter.pem as its chain. */
void chan_qm_import(struct chan_qm *q, const char *label, const char *cert, const char *key);
/* The same with any chain file (PKI file name, NULL: none). */
void chan_qm_import_chain(struct chan_qm *q, const char *label, const char *cert,
                          const char *key, const char *chain);
void chan_qm_restart(struct chan_qm *q);
/* Stops the agent (if running) and removes its directory. An agent that
 * ends badly (sanitizer report in its log, non-zero exit after SIGTERM)
 * is reported on stderr, and chan_pair_finish() then aborts the test
 * process so the suite fails even from a .fini. */
void chan_qm_finish(struct chan_qm *q);

/* Two agents QM1 and QM2 with the default certificates. */
void chan_pair_start(struct chan_qm *qm1, struct chan_qm *qm2);
void chan_pair_finish(struct chan_qm *qm1, struct chan_qm *qm2);

/* chanctl against an agent: exit code (stdin_data may be NULL). */
int chan_ctl(struct chan_qm *q, const char *stdin_data, char **out, char **err,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same, failing the test unless it exits 0; returns stdout (malloc'd). */
char *chan_ctl_ok(struct chan_qm *q, const char *stdin_data, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Runs many chanctl commands in one shell (one per line of lines, each the
 * arguments after `chanctl -s SOCK`), stopping at the first failure, which
 * fails the test. Much faster than one chan_ctl_ok per command. */
void chan_ctl_script_ok(struct chan_qm *q, const char *lines, int timeout_s);
/* The agent's log so far (malloc'd) and whether it contains needle. */
char *chan_log(struct chan_qm *q);
bool chan_log_has(struct chan_qm *q, const char *needle);
/* Waits (bounded) until the log contains needle. */
bool chan_wait_log(struct chan_qm *q, const char *needle, int timeout_ms);

/* ---- queues and channels ---- */

enum chan_kind {
	CHAN_SDR_RCVR,    /* SDR on the sending agent, initiator */
	CHAN_RQSTR_SVR,   /* RQSTR on the receiving agent (initiator), SVR on the sending one */
	CHAN_SVR_RQSTR,   /* SVR with CONNAME on the sending agent (initiator), RQSTR on the other */
};

/* On snd: qlocal xmitq (USAGE XMITQ) and qremote rq -> rcv's q; on rcv:
 * qlocal q. maxdepth 0: default. */
void chan_define_route(struct chan_qm *snd, struct chan_qm *rcv, const char *xmitq,
                       const char *rq, const char *q, long maxdepth);
/* Defines channel name at both ends: the sending end (SDR or SVR) serves
 * xmitq; the initiator gets CONNAME 127.0.0.1:<the other's port> (port 0)
 * or 127.0.0.1:port. snd_attrs / rcv_attrs are more chanctl options for
 * each end (may be NULL); short retry timers are added unless given. */
void chan_define(struct chan_qm *snd, struct chan_qm *rcv, const char *name, enum chan_kind kind,
                 const char *xmitq, int port, const char *snd_attrs, const char *rcv_attrs);
/* The end of the channel that starts it (the initiator). */
struct chan_qm *chan_initiator(struct chan_qm *snd, struct chan_qm *rcv, enum chan_kind kind);

/* Puts one message per line of lines (each put run carries the options,
 * e.g. "--priority 5 --nonpersistent"). */
void chan_put(struct chan_qm *q, const char *queue, const char *opts, const char *lines);
/* get QUEUE --all (--json if json): stdout (malloc'd; "" if the queue was
 * empty). */
char *chan_get_all(struct chan_qm *q, const char *queue, bool json);

/* get QUEUE --all --json, one object per message, as a JSON array. */
json_t *chan_get_msgs(struct chan_qm *q, const char *queue);

/* CURDEPTH of a queue, -1 if it cannot be read. */
long chan_depth(struct chan_qm *q, const char *queue);
/* Waits until CURDEPTH == depth; false on timeout. */
bool chan_wait_depth(struct chan_qm *q, const char *queue, long depth, int timeout_ms);

/* The status object of channel name (json_decref it), or NULL. */
json_t *chan_status(struct chan_qm *q, const char *name);
/* The whole `--json status PATTERN` array, or NULL. */
json_t *chan_status_all(struct chan_qm *q, const char *pattern);
/* A string field ("" if absent or null), an integer field (-1 if absent;
 * numeric strings are accepted). */
const char *chan_js(const json_t *o, const char *key);
long long chan_ji(const json_t *o, const char *key);
/* Waits until the channel's state is one of states ("RUNNING|RETRYING").
 * Returns true, or false on timeout (the last status is printed). */
bool chan_wait_state(struct chan_qm *q, const char *name, const char *states, int timeout_ms);
/* Waits until last_error_code == code; returns the status (json_decref it)
 * or NULL on timeout. */
/* Status of channel name once its numeric field key is >= min (the sender
 * counts a batch when CONFIRM arrives, which may be after the receiver's
 * queue shows the messages); the last status seen after timeout_ms. */
json_t *chan_wait_ji(struct chan_qm *q, const char *name, const char *key, long long min,
                     int timeout_ms);
json_t *chan_wait_error(struct chan_qm *q, const char *name, const char *code, int timeout_ms);
/* Prints both agents' status and log tails to stderr (after a failure). */
void chan_dump(struct chan_qm *q, const char *name);

/* Milliseconds on the monotonic clock. */
long long chan_now_ms(void);
void chan_sleep_ms(int ms);

#endif
