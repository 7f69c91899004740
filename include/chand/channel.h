/* The message channel module (doc/CHANNELS.md): the supervisor of
 * running channels, the status they report and the operations behind the
 * channel admin commands.
 *
 * The agent owns the process (listeners, admin socket, keystore); the
 * channel module gets what it needs from it through struct chan_host, so
 * it depends on no agent code (modules depend downward only).  The admin
 * commands themselves live in src/agent/admin_channel.c. */
#ifndef CHAND_CHANNEL_H
#define CHAND_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>

#include "chand/chandef.h"
#include "chand/codes.h"
#include "chand/store.h"
#include "chand/tls.h"

/* ---- states (the names `status` prints) ---- */
enum chan_state {
	CHS_INACTIVE = 0,     /* defined, not running (never ran, or ended normally) */
	CHS_INITIALIZING,     /* its thread is starting */
	CHS_BINDING,          /* connecting, TLS handshake, negotiation, resync */
	CHS_STARTING,         /* waiting for a free slot (limits.max_channels) */
	CHS_RUNNING,          /* transferring or idle with the connection open */
	CHS_RETRYING,         /* failed; waiting for the next attempt */
	CHS_STOPPING,         /* stop channel in progress */
	CHS_STOPPED,          /* stopped by the operator or after an error; stays so until start */
	CHS_REQUESTING,       /* a requester asking its server to start */
};
const char *chan_state_name(enum chan_state s);

/* ---- status of one channel (one record of `status`) ---- */
struct chan_status {
	char name[CHAND_NAME_MAX + 1];
	enum chan_type type;
	enum chan_state state;
	char substate[24];                 /* "" or what a running channel is doing */
	char conname[CHAN_CONNAME_MAX + 1];
	char rqmname[CHAND_NAME_MAX + 1];  /* the peer's queue manager, once known */
	char xmitq[CHAND_NAME_MAX + 1];    /* "" for receiving channels */
	long xmitq_depth;                  /* -1: not applicable / unknown */
	int64_t oldest_msg_age_ms;         /* -1: not applicable; 0: empty */
	uint64_t msgs, bytes_sent, bytes_received, batches;
	uint32_t current_seq, committed_seq;
	bool indoubt;
	int64_t start_time_ms, last_msg_time_ms;   /* 0: none */
	long retries_left;                 /* -1: not retrying; short and long together */
	long longrty;                      /* the definition's LONGRTY: which of
	                                      retries_left are long ones (status) */
	int64_t next_retry_ms;             /* 0: none */
	bool connected;                    /* TLS fields below describe the current connection */
	bool encrypted;
	char tls_version[16];
	char cipher[96];
	char local_label[KS_LABEL_MAX + 1];
	char peer_dn[512];
	char peer_issuer_dn[512];
	int64_t peer_not_after_ms;
	unsigned key_updates;
	char last_error_code[8];           /* "" or "CHDnnnn" */
	char last_error[640];
};

/* The `status` JSON object: exactly the keys of doc/CHANNELS.md section 4 plus
 * short_retries_left and long_retries_left (retries_left split by the
 * SHORTRTY/LONGRTY schedule: the short ones come first), next_retry_time,
 * oldest_msg_age (seconds), key_updates and encrypted. Times are ISO-8601
 * strings or null. */
json_t *chan_status_to_json(const struct chan_status *s);

/* ---- the host (the agent) ---- */
struct chan_host {
	void *arg;
	const char *qmgr;
	const char *default_label;         /* keystore.label */
	const char *dlq;                   /* dead_letter_queue, "" = none */
	long max_channels;
	int handshake_timeout_ms;
	/* limits.dead_peer_timeout (s, 0 = TCP defaults): TCP keepalive and
	 * TCP_USER_TIMEOUT on every channel socket (chan_sock_opts) */
	int dead_peer_timeout_s;
	/* where a receiver spills a batch too large for memory (an unlinked
	 * file): data_dir; NULL = $TMPDIR, else /tmp */
	const char *spill_dir;
	/* Opens a store handle for the calling thread. */
	int (*store_open)(void *arg, struct store **out, char *err, size_t errlen);
	/* The current TLS context, referenced (tls_ctx_unref it). */
	struct tls_ctx *(*tls_get)(void *arg);
	/* A process-wide unique non-zero id (store_lock owners). */
	uint64_t (*owner_id)(void);
};

/* ---- the supervisor (chan_sup.c) ---- */

/* Loads the definitions, starts the watcher thread (which starts senders
 * that have messages). The host must outlive chan_sup_stop. 0 or -1. */
int chan_sup_start(const struct chan_host *host);
/* Stops every channel like `stop channel --mode quiesce`, forcing those
 * that do not end in time, all within bound_ms; then the watcher. */
void chan_sup_stop(int bound_ms);
/* A connection accepted by a listener (the module owns fd). */
void chan_sup_inbound(int fd, const struct sockaddr_storage *peer, socklen_t len);

/* ---- operations behind the admin commands ---- */

/* Results of the operations: 0, or -1 with a code and one line of text. */
struct chan_result {
	enum chd_code_id code;
	char text[640];
};

/* define (replace=false/true) / alter: st is the caller's store handle.
 * attrs: the request object (see chan_def_apply_json). */
int chan_op_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                   struct chan_result *r);
int chan_op_alter(struct store *st, const char *name, const json_t *attrs,
                  struct chan_result *r);
/* Refused while the channel runs or holds an in-doubt batch. */
int chan_op_delete(struct store *st, const char *name, struct chan_result *r);
/* Definitions matching pattern, sorted by name: a JSON array (new ref). */
int chan_op_display(struct store *st, const char *pattern, json_t **out, struct chan_result *r);
int chan_op_start(struct store *st, const char *name, struct chan_result *r);
/* force=false: quiesce. Waits (bounded) until the channel has ended. */
int chan_op_stop(struct store *st, const char *name, bool force, struct chan_result *r);
/* Connects (full TLS), PING/PING_ACK; *out gets rtt_ms and the TLS details. */
int chan_op_ping(struct store *st, const char *name, json_t **out, struct chan_result *r);
/* seqnum: the sequence number of the next message (1..SEQWRAP). */
int chan_op_reset(struct store *st, const char *name, long seqnum, struct chan_result *r);
/* commit: the in-doubt batch is deleted; else it is released to be resent. */
int chan_op_resolve(struct store *st, const char *name, bool commit, struct chan_result *r);
/* Status records of the channels matching pattern, sorted by name. */
int chan_op_status(struct store *st, const char *pattern, json_t **out, struct chan_result *r);
/* refresh security: ends the running channels whose peer certificate ctx
 * (just loaded) no longer accepts; returns how many. */
struct tls_ctx;
int chan_op_recheck_peers(struct tls_ctx *ctx);

#endif
