/* Channel definitions (doc/CHANNELS.md):
 * the attributes of `define channel`, their defaults and ranges, their
 * JSON form (stored with store_chandef_put and shown by `display
 * channel`), CONNAME parsing and the retry schedule.
 *
 * Pure functions: no I/O, no global state.  SSLCIPH is checked against
 * the CipherSpec table and SSLPEER with the DN-filter parser, both pure. */
#ifndef CHAND_CHANDEF_H
#define CHAND_CHANDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "chand/dnfilter.h"
#include "chand/frame.h"
#include "chand/keystore.h"
#include "chand/tls.h"
#include "chand/util.h"

/* Channel types: the values travel in INIT (enum frame_chtype). */
enum chan_type {
	CHT_SDR = FRAME_CH_SDR,
	CHT_RCVR = FRAME_CH_RCVR,
	CHT_SVR = FRAME_CH_SVR,
	CHT_RQSTR = FRAME_CH_RQSTR,
};

#define CHAN_CONNAME_MAX 264      /* a list of up to CHAN_CONNAME_ADDRS addresses */
#define CHAN_CONNAME_ADDRS 8
#define CHAN_HOST_MAX 253         /* DNS name, or an IPv4/IPv6 literal */
#define CHAN_DEFAULT_PORT 1414
#define CHAN_DESCR_MAX 64
#define CHAN_SSLCIPH_MAX FRAME_CIPHER_MAX

/* Defaults (IBM MQ's) and ranges of the numeric attributes. */
#define CHAN_DEF_BATCHSZ 50
#define CHAN_DEF_BATCHINT 0
#define CHAN_DEF_HBINT 300
#define CHAN_DEF_DISCINT 6000
#define CHAN_DEF_MAXMSGL 4194304
#define CHAN_DEF_SHORTRTY 10
#define CHAN_DEF_SHORTTMR 60
#define CHAN_DEF_LONGRTY 999999999
#define CHAN_DEF_LONGTMR 1200
#define CHAN_DEF_SEQWRAP 999999999
#define CHAN_BATCHINT_MAX 999999999L   /* ms */
#define CHAN_DISCINT_MAX 999999L       /* s */
#define CHAN_RETRY_MAX 999999999L      /* SHORTRTY, SHORTTMR, LONGRTY, LONGTMR */
/* KEYUPDATE (chand's own): 0 = never, else a TLS 1.3 KeyUpdate after this
 * many application bytes.  Below 1 MiB the updates would only be held
 * back by the rate limit of the TLS layer (doc/TLS.md); 2^40 bytes is far
 * below the AES-GCM limit of about 2^24.5 full records per key. */
#define CHAN_KEYUPDATE_MIN 1048576L
#define CHAN_KEYUPDATE_MAX 1099511627776L

struct chan_def {
	char name[CHAND_NAME_MAX + 1];
	enum chan_type type;
	char conname[CHAN_CONNAME_MAX + 1];  /* as given: "host:1414" or "host(1414),..." */
	char xmitq[CHAND_NAME_MAX + 1];
	char sslciph[CHAN_SSLCIPH_MAX + 1];  /* "" = plain TCP */
	char certlabl[KS_LABEL_MAX + 1];     /* "" = the queue manager's keystore.label */
	enum sslcauth sslcauth;
	char sslpeer[DNF_MAX_LEN + 1];       /* "" = no filter */
	long batchsz;                        /* 1..FRAME_BATCHSZ_MAX */
	long batchint;                       /* ms, 0..CHAN_BATCHINT_MAX */
	long hbint;                          /* s, 0..FRAME_HBINT_MAX; 0 = no heartbeats */
	long discint;                        /* s, 0..CHAN_DISCINT_MAX; 0 = never */
	long maxmsgl;                        /* 1..FRAME_MAXMSGL_MAX */
	long shortrty, shorttmr, longrty, longtmr;
	long seqwrap;                        /* FRAME_SEQWRAP_MIN..FRAME_SEQWRAP_MAX */
	char descr[CHAN_DESCR_MAX + 1];
	/* Initiators: check the responder certificate's SAN (CN without SAN)
	 * against "" (no check), the host of CONNAME ("yes") or this name. */
	char verify_host[CHAN_HOST_MAX + 1];
	/* 0, or CHAN_KEYUPDATE_MIN..CHAN_KEYUPDATE_MAX: the initiating end
	 * of a TLS 1.3 connection asks for a KeyUpdate after this many
	 * application bytes (both ways). */
	long keyupdate_bytes;
};

/* ---- names ---- */
const char *chan_type_name(enum chan_type t);      /* "sdr", "rcvr", "svr", "rqstr" */
int chan_type_parse(const char *s);                /* any case; -1 if unknown */
const char *chan_sslcauth_name(enum sslcauth a);   /* "required" / "optional" */

/* True if this end opens the connection (SDR, RQSTR, SVR with CONNAME). */
bool chan_def_initiates(const struct chan_def *d);
/* True if this end sends messages (SDR, SVR). */
bool chan_def_sends(const struct chan_def *d);
/* True if the channel starts by itself when messages arrive on its XMITQ
 * (SDR, and SVR with CONNAME). */
bool chan_def_triggers(const struct chan_def *d);

/* ---- definitions ---- */

/* The defaults of a new channel of type t named name (not validated). */
void chan_def_init(struct chan_def *d, const char *name, enum chan_type t);

/* Sets the attributes present in obj (lower-case attribute names as in
 * the display JSON: "type", "conname", "batchsz", ...). Unknown members
 * are ignored (request envelopes carry others); a member of the wrong
 * JSON type or out of range is refused. Returns 0, or -1 with a one-line
 * reason naming the attribute. Cross-attribute rules are checked by
 * chan_def_validate. */
int chan_def_apply_json(struct chan_def *d, const json_t *obj, char *err, size_t errlen);

/* The complete check done at define/alter time: name, type, required
 * attributes per type (SDR: CONNAME and XMITQ; SVR: XMITQ; RQSTR:
 * CONNAME), CONNAME syntax, XMITQ name, SSLCIPH known (cs_check), SSLPEER
 * parses (the error names its position), numeric ranges. Returns 0, or -1
 * with a one-line reason. */
int chan_def_validate(const struct chan_def *d, char *err, size_t errlen);

/* The JSON object of a definition: every attribute under its lower-case
 * name, the form stored in the database and printed by `display channel`. */
json_t *chan_def_to_json(const struct chan_def *d);
/* Parses the stored JSON text. Returns 0, 1 if the definition is a
 * telemetry channel's (type mqtt: the mqtt module's), or -1 with a reason. */
int chan_def_from_text(struct chan_def *d, const char *name, const char *text, char *err,
                       size_t errlen);

/* ---- CONNAME ---- */

struct chan_addr {
	char host[CHAN_HOST_MAX + 1];        /* without IPv6 brackets */
	int port;
};

/* Parses a CONNAME: a comma-separated list of up to CHAN_CONNAME_ADDRS
 * addresses, each "HOST:PORT", "HOST(PORT)" (IBM MQ style), "[V6]:PORT",
 * "V6(PORT)" or "HOST" (port 1414). Blanks around elements are ignored.
 * Returns the number of addresses (>= 1), or -1 with a reason. */
int chan_conname_parse(const char *conname, struct chan_addr *out, size_t max, char *err,
                       size_t errlen);

/* ---- retry schedule ---- */

/* After the n-th consecutive failure (n >= 1) of a channel that initiates:
 * the first SHORTRTY retries come SHORTTMR seconds apart, the next
 * LONGRTY retries LONGTMR seconds apart, then the channel is STOPPED.
 * Returns true with the delay before the next attempt (ms) and the
 * retries left after that attempt, or false when retries are exhausted. */
bool chan_retry_next(const struct chan_def *d, long failures, int64_t *delay_ms,
                     long *retries_left);

#endif
