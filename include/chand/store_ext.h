/* Channel bookkeeping the store keeps beside the sync records (struct
 * chan_sync in store.h): which messages form a sender's in-doubt batch,
 * whether `reset channel` is waiting to be told to the receiver, and
 * whether the channel is STOPPED (which outlives an agent restart).
 *
 * Why the membership must be durable: after a crash at any moment between
 * END_BATCH and the deletion of the batch, the restarted sender must
 * delete exactly the messages the receiver committed, or none.  The
 * in-memory locks of store_lock are gone by then, and messages of a
 * higher priority may have arrived in front of them, so the store seqs
 * (with their msgids, in case a seq is ever reused) are recorded in the
 * same transaction as the sync record's in-doubt flag.
 *
 * Table main.chan_ext (created by store_ext_init, not part of the
 * versioned schema of store_db.c: CREATE TABLE IF NOT EXISTS). */
#ifndef CHAND_STORE_EXT_H
#define CHAND_STORE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand/message.h"
#include "chand/store.h"

struct store_member {
	int64_t seq;                   /* the store's message seq */
	uint8_t msgid[MSG_ID_LEN];
};

/* One of a sender's in-doubt batches.  Protocol version 2 keeps several
 * in flight; their ids are consecutive. */
struct store_indoubt {
	uint64_t batch_id;
	uint32_t last_seq;             /* seq of its last persistent message */
	uint32_t count;                /* messages in it, persistent or not */
	size_t first, n;               /* its members: members[first .. first + n) */
};

/* Tunes a handle for a channel thread's hot path: a larger page cache
 * (grown only as pages are read). */
int store_ext_tune(struct store *st);

/* Creates the table if missing. STORE_OK or an error. */
int store_ext_init(struct store *st);

/* Reads a channel's extras: reset_pending and the in-doubt members
 * (*members malloc'd, NULL if none; members may be NULL if not wanted).
 * A channel without a row: false, 0. */
int store_ext_get(struct store *st, const char *channel, bool *reset_pending,
                  struct store_member **members, size_t *n);
/* The same, with the in-doubt batch list (*batches malloc'd, in order;
 * first/n index *members).  *nb is 0 for a row recorded with one batch
 * and no list (older chand): all members then belong to the sync
 * record's in-doubt batch. */
int store_ext_get_indoubt(struct store *st, const char *channel, bool *reset_pending,
                          struct store_indoubt **batches, size_t *nb,
                          struct store_member **members, size_t *n);
/* Records the in-doubt batches b[0..nb) (ids consecutive, in order) with
 * the persistent messages of msgs[k] as the members of b[k] (first and n
 * of b are computed here).  Replaces what was recorded.  Joins the open
 * transaction, if any. */
int store_ext_set_indoubt(struct store *st, const char *channel, const struct store_indoubt *b,
                          const struct msg_list *const *msgs, size_t nb);
/* The STOPPED flag. */
int store_ext_get_stopped(struct store *st, const char *channel, bool *stopped);
int store_ext_set_stopped(struct store *st, const char *channel, bool stopped);
/* Records the persistent messages of msgs as the in-doubt members
 * (nonpersistent ones are left out: they do not survive a restart).
 * Joins the open transaction, if any. */
int store_ext_set_members(struct store *st, const char *channel, const struct msg_list *msgs);
int store_ext_clear_members(struct store *st, const char *channel);
int store_ext_set_reset(struct store *st, const char *channel, bool pending);
/* Removes the channel's row (delete channel). */
int store_ext_delete(struct store *st, const char *channel);

/* The members that are still stored with the same msgid, as entries of
 * out (seq and persistent set, no body) ready for store_confirm(). */
int store_ext_present(struct store *st, const struct store_member *m, size_t n,
                      struct msg_list *out);

#endif
