/* The sending end of a channel (doc/PROTOCOL.md 6, 7, 8, 10; the
 * exactly-once argument is in doc/CHANNELS.md).
 *
 * Durability order for a batch with persistent messages:
 *   1. in-doubt record (sync record + the batch's store seqs and msgids)
 *      committed,                                    -- before END_BATCH
 *   2. MSG... END_BATCH sent, CONFIRM received,
 *   3. its messages deleted and the in-doubt record shortened, in the
 *      transaction of a later step 1 (or when the channel goes idle).
 * Step 3 needs no fsync of its own: until it is durable the batch is
 * still listed in doubt, and a resync asks the receiver, whose committed
 * batch id says it was delivered.
 *
 * Protocol versions 2 and 3 keep up to 8 and CHAN_WINDOW (32) batches in
 * flight (version 1: one), so this end's commit of batch n+1 overlaps the
 * receiver's commit of batch n; batches taken together share one commit.  The MSG
 * frames of the first batch of a group go before its commit, so the
 * receiver puts them meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_int.h"
#include "chand/log.h"

struct batch {
	struct msg_list m;
	uint32_t *seqs;           /* per message: its seq, 0 for nonpersistent */
	size_t seqcap;
	uint64_t id;
	uint32_t last_seq;
	bool has_p;
	int64_t started;          /* mono ms of its first message */
	int64_t ended;            /* mono ms its END_BATCH went */
};

struct sender {
	struct chan_sess *s;
	uint64_t c_batch;         /* last batch the receiver confirmed (after resync: agreed) */
	uint32_t c_seq;
	uint64_t n_batch;         /* last persistent batch numbered (sent or being sent) */
	uint32_t n_seq;
	/* fl[0 .. nfl): in flight (END_BATCH sent), oldest first;
	 * fl[nfl]: the batch being taken (and more while a group is made) */
	struct batch fl[CHAN_WINDOW];
	size_t nfl, window;
	/* messages of confirmed batches with persistent ones: deleted in the
	 * next commit (lazy, step 3) */
	struct msg_list done;
	bool indoubt;             /* the durable record lists in-doubt batches */
	int64_t last_msg;         /* mono ms of the last batch sent (DISCINT) */
	/* confirmed nonpersistent-only batches not deleted yet: their deletes
	 * are grouped (CHAN_NP_DELETE_GROUP messages per transaction); they
	 * stay locked, so they are never sent again */
	struct msg_list pend;
	bool maybe_work;          /* woken: look at the queue even without a handle */
	char dlq[CHAND_NAME_MAX + 1];
};

static int flush_pending(struct sender *x);
static int settle(struct sender *x);

static void batch_clear(struct batch *b)
{
	msg_list_free(&b->m);
	memset(&b->m, 0, sizeof(b->m));
	b->id = 0;
	b->last_seq = 0;
	b->has_p = false;
	b->started = 0;
	b->ended = 0;
}

static void batch_free(struct batch *b)
{
	batch_clear(b);
	free(b->seqs);
	b->seqs = NULL;
	b->seqcap = 0;
}

/* Ids and sequence numbers, following the last numbered persistent
 * batch (a batch without persistent messages does not use up its id). */
static int batch_number(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	uint32_t seq = x->n_seq;

	if (b->seqcap < b->m.n) {
		uint32_t *v = realloc(b->seqs, b->m.n * sizeof(*v));
		if (v == NULL)
			return chan_fail(s, CHD_CH_CLOSED, "out of memory");
		b->seqs = v;
		b->seqcap = b->m.n;
	}
	b->id = x->n_batch + 1;
	b->has_p = false;
	for (size_t i = 0; i < b->m.n; i++) {
		if (b->m.v[i].persistent) {
			seq = frame_seq_next(seq, s->seqwrap);
			b->seqs[i] = seq;
			b->has_p = true;
		} else {
			b->seqs[i] = 0;
		}
	}
	b->last_seq = seq;
	if (b->has_p) {
		x->n_batch = b->id;
		x->n_seq = seq;
	} else {
		b->last_seq = x->n_seq;
	}
	return 0;
}

static void sync_fill(struct sender *x, struct chan_sync *cs, uint64_t batch, uint32_t seq)
{
	memset(cs, 0, sizeof(*cs));
	str_copy(cs->name, x->s->def.name, sizeof(cs->name));
	cs->batch_id = batch;
	cs->seq = seq;
	cs->updated_ms = time_now_ms();
}

static void sync_indoubt(struct chan_sync *cs, const struct batch *b)
{
	cs->indoubt = true;
	cs->indoubt_batch = b->id;
	cs->indoubt_seq = b->last_seq;
	cs->indoubt_count = (uint32_t)b->m.n;
}

/* Remembers the nonpersistent members of the in-doubt batches v[0..n)
 * with their batch ids: they share their batch's fate at the next resync
 * of this process (they do not survive a restart, so they are not
 * recorded on disk). */
static void np_remember(struct sender *x, struct batch *const *v, size_t nv)
{
	struct chan_rt *rt = x->s->rt;
	size_t n = 0;
	int64_t *seqs = NULL;
	uint64_t *bids = NULL;

	if (rt == NULL)
		return;
	for (size_t k = 0; k < nv; k++)
		for (size_t i = 0; i < v[k]->m.n; i++)
			n += !v[k]->m.v[i].persistent;
	if (n > 0 && (seqs = malloc(n * sizeof(*seqs))) != NULL &&
	    (bids = malloc(n * sizeof(*bids))) != NULL) {
		n = 0;
		for (size_t k = 0; k < nv; k++)
			for (size_t i = 0; i < v[k]->m.n; i++)
				if (!v[k]->m.v[i].persistent) {
					bids[n] = v[k]->id;
					seqs[n++] = v[k]->m.v[i].seq;
				}
	} else {
		free(seqs);
		seqs = NULL;
		n = 0;
	}
	pthread_mutex_lock(&chan_sup.mtx);
	free(rt->np_seqs);
	free(rt->np_bids);
	rt->np_seqs = seqs;
	rt->np_bids = bids;
	rt->n_np = n;
	rt->np_batch = nv > 0 ? v[nv - 1]->id : 0;
	pthread_mutex_unlock(&chan_sup.mtx);
}

static void np_forget(struct sender *x)
{
	np_remember(x, NULL, 0);
}

static void publish_indoubt(struct sender *x)
{
	if (x->s->rt == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	x->s->rt->st.indoubt = x->indoubt;
	pthread_mutex_unlock(&chan_sup.mtx);
}

static int db_fail(struct sender *x, const char *what)
{
	struct chan_sess *s = x->s;

	store_rollback(s->st);
	return chan_fail(s, CHD_DB_ERROR, "channel %s: %s: %s", s->def.name, what,
	                 store_errmsg(s->st));
}

/* ---- resynchronisation (PROTOCOL.md 6) ---- */

/* Deletes, at resync, what the receiver committed of the in-doubt
 * batches ib[0..upto] (members still stored with the same msgid, and the
 * nonpersistent ones this process remembers for them). */
static int delete_committed(struct sender *x, const struct store_member *mem,
                            const struct store_indoubt *ib, size_t upto, size_t *deleted)
{
	struct chan_sess *s = x->s;
	struct msg_list del = { 0 };
	uint64_t last = ib[upto].batch_id;
	int rc;

	rc = store_ext_present(s->st, mem, ib[upto].first + ib[upto].n, &del);
	pthread_mutex_lock(&chan_sup.mtx);
	if (rc == STORE_OK && s->rt != NULL)
		for (size_t i = 0; i < s->rt->n_np; i++) {
			if (s->rt->np_bids == NULL || s->rt->np_bids[i] > last ||
			    s->rt->np_bids[i] < ib[0].batch_id)
				continue;
			struct chd_msg *m = msg_list_add(&del);
			if (m != NULL)
				m->seq = s->rt->np_seqs[i];
		}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (rc == STORE_OK)
		rc = store_confirm(s->st, &del);
	*deleted = del.n;
	msg_list_free(&del);
	return rc;
}

static int resync(struct sender *x)
{
	struct chan_sess *s = x->s;
	struct chan_sync cs;
	struct frame_resync rs;
	struct frame f;
	struct store_member *mem = NULL;
	struct store_indoubt *ib = NULL, one;
	uint32_t *seqs = NULL;
	size_t nmem = 0, nib = 0;
	bool reset = false;
	char why[512];
	int rc, ret = -1;

	chan_status_substate(s, "RESYNCHING");
	if (chan_store(s) == NULL)
		return -1;
	rc = store_sync_get(s->st, s->def.name, &cs);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return db_fail(x, "reading the sync record");
	if (rc == STORE_NOT_FOUND)
		sync_fill(x, &cs, 0, 0);
	if (store_ext_get_indoubt(s->st, s->def.name, &reset, &ib, &nib, &mem, &nmem) != STORE_OK)
		return db_fail(x, "reading the in-doubt record");
	if (cs.indoubt && nib == 0) {
		/* recorded by version 1 (or an older chand): one batch */
		one = (struct store_indoubt){ .batch_id = cs.indoubt_batch,
		                              .last_seq = (uint32_t)cs.indoubt_seq,
		                              .count = cs.indoubt_count, .first = 0, .n = nmem };
		if ((ib = malloc(sizeof(*ib))) == NULL)
			goto oom;
		*ib = one;
		nib = 1;
	}
	if (!cs.indoubt)
		nib = 0;
	if (nib > 0 && (ib[0].batch_id != cs.batch_id + 1 ||
	                ib[nib - 1].batch_id != cs.indoubt_batch)) {
		chan_fail(s, CHD_CH_SEQ, "channel %s: the in-doubt record here is damaged (batches "
		          "%llu-%llu after committed batch %llu): settle it with `chanctl resolve "
		          "channel`", s->def.name, (unsigned long long)ib[0].batch_id,
		          (unsigned long long)ib[nib - 1].batch_id, (unsigned long long)cs.batch_id);
		chan_send_error(s, CHD_CH_SEQ, s->text);
		goto done;
	}
	if (nib > 1 && s->w.version < 2)
		log_warn(code_str(CHD_CH_START), "channel=%s %zu batches are in doubt but the peer speaks "
		         "protocol version 1, which can settle only one: resync may need `chanctl "
		         "resolve channel`", s->def.name, nib);
	if (nib > 0 && (seqs = malloc(nib * sizeof(*seqs))) == NULL)
		goto oom;
	for (size_t i = 0; i < nib; i++)
		seqs[i] = ib[i].last_seq;
	memset(&rs, 0, sizeof(rs));
	rs.batch_id = cs.batch_id;
	rs.seq = (uint32_t)cs.seq;
	if (nib > 0) {
		rs.indoubt = true;
		rs.indoubt_batch = cs.indoubt_batch;
		rs.indoubt_seq = (uint32_t)cs.indoubt_seq;
		rs.indoubt_count = cs.indoubt_count;
	} else if (reset) {
		rs.reset = true;
	}
	if (frame_encode_resync(&s->out, &s->w, &rs, NULL) != FRAME_OK) {
		chan_fail(s, CHD_CH_PROTOCOL, "cannot encode RESYNC (batch %llu seq %u)",
		          (unsigned long long)rs.batch_id, rs.seq);
		goto done;
	}
	if (chan_flush(s) != 0)
		goto done;
	if (chan_await(s, chan_t_reply_ms(s->hbint), WAKE_STOP_ENDS, "RESYNC_ACK", &f) != RD_FRAME)
		goto done;
	if (f.h.type != FRAME_RESYNC_ACK) {
		chan_unexpected(s, &f, "S_WAIT_RESYNC_ACK");
		goto done;
	}
	if (!frame_resync_check_ack_v(&rs, &f.u.resync_ack, seqs, nib, why, sizeof(why))) {
		chan_fail(s, CHD_CH_SEQ, "channel %s: %s", s->def.name, why);
		chan_send_error(s, CHD_CH_SEQ, s->text);
		goto done;
	}
	/* settle the in-doubt batches, adopt the receiver's numbers */
	if (store_begin(s->st) != STORE_OK) {
		db_fail(x, "settling the in-doubt batch");
		goto done;
	}
	if (rs.indoubt && f.u.resync_ack.committed) {
		size_t upto = (size_t)(f.u.resync_ack.batch_id - ib[0].batch_id), deleted = 0;
		rc = delete_committed(x, mem, ib, upto, &deleted);
		log_info(code_str(CHD_CH_START), "channel=%s in-doubt batches %llu-%llu (seq %u) are "
		         "committed at the receiver: %zu messages deleted here%s", s->def.name,
		         (unsigned long long)ib[0].batch_id,
		         (unsigned long long)f.u.resync_ack.batch_id, f.u.resync_ack.seq, deleted,
		         upto + 1 < nib ? "; the later ones were not: backed out, sent again" : "");
		if (rc != STORE_OK) {
			db_fail(x, "deleting the committed in-doubt batch");
			goto done;
		}
	} else if (rs.indoubt) {
		log_info(code_str(CHD_CH_START), "channel=%s in-doubt batches %llu-%llu (last seq %u, "
		         "%u messages in the last) were not committed at the receiver: backed out, "
		         "sent again", s->def.name, (unsigned long long)ib[0].batch_id,
		         (unsigned long long)rs.indoubt_batch, rs.indoubt_seq, rs.indoubt_count);
	}
	sync_fill(x, &cs, f.u.resync_ack.batch_id, f.u.resync_ack.seq);
	if (store_sync_set(s->st, &cs) != STORE_OK ||
	    (rs.indoubt && store_ext_clear_members(s->st, s->def.name) != STORE_OK) ||
	    (rs.reset && store_ext_set_reset(s->st, s->def.name, false) != STORE_OK)) {
		db_fail(x, "recording the resynchronisation");
		goto done;
	}
	if (store_commit(s->st) != STORE_OK) {
		db_fail(x, "committing the resynchronisation");
		goto done;
	}
	np_forget(x);
	if (rs.reset)
		log_info(code_str(CHD_CH_START), "channel=%s sequence number reset to %u told to the "
		         "receiver", s->def.name, rs.seq);
	x->c_batch = x->n_batch = f.u.resync_ack.batch_id;
	x->c_seq = x->n_seq = f.u.resync_ack.seq;
	x->indoubt = false;
	ret = 0;
	goto done;
oom:
	chan_fail(s, CHD_CH_CLOSED, "out of memory");
done:
	free(mem);
	free(ib);
	free(seqs);
	return ret;
}

/* ---- sending-end DLQ (PROTOCOL.md 7.4, last paragraph) ---- */

/* Takes out of b the messages that must not be sent (longer than the
 * negotiated MAXMSGL, or no transmission header) and moves them to this
 * queue manager's DLQ. */
static int filter_unsendable(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	size_t j = 0;

	for (size_t i = 0; i < b->m.n; i++) {
		struct chd_msg *m = &b->m.v[i];
		enum chd_code_id reason;
		char what[200], why[300];

		if (m->body_len > s->maxmsgl) {
			reason = CHD_Q_MSG_TOO_LONG;
			snprintf(what, sizeof(what), "message of %zu bytes is longer than the channel's "
			         "negotiated MAXMSGL %u", m->body_len, s->maxmsgl);
		} else if (m->xmit_qm[0] == '\0' || m->xmit_q[0] == '\0') {
			reason = CHD_Q_BAD_XMITQ;
			snprintf(what, sizeof(what), "message on transmission queue %s has no "
			         "transmission header", s->def.xmitq);
		} else {
			if (j != i)
				b->m.v[j] = *m;
			j++;
			continue;
		}
		if (x->dlq[0] == '\0') {
			chan_fail(s, CHD_Q_MSG_TOO_LONG, "channel %s: %s and there is no dead-letter queue: "
			          "channel stopped", s->def.name, what);
			/* slots j..i-1 were moved down or cleared: forget them so
			 * freeing the list frees each message once */
			for (size_t k = j; k < i; k++)
				memset(&b->m.v[k], 0, sizeof(b->m.v[k]));
			return -1;
		}
		struct msg_list one = { .v = m, .n = 1, .cap = 1 };
		if (store_begin(s->st) != STORE_OK)
			return db_fail(x, "moving a message to the dead-letter queue");
		if (chan_dlq_put(s->st, x->dlq, m, reason, what, s->def.name, why,
		                 sizeof(why)) != STORE_OK ||
		    store_confirm(s->st, &one) != STORE_OK || store_commit(s->st) != STORE_OK) {
			store_rollback(s->st);
			chan_fail(s, CHD_Q_MSG_TOO_LONG, "channel %s: %s; dead-letter queue %s refused it: "
			          "%s", s->def.name, what, x->dlq, why[0] ? why : store_errmsg(s->st));
			return -1;
		}
		log_warn(code_str(CHD_CH_DLQ), "channel=%s dlq=%s reason=%s %s", s->def.name, x->dlq,
		         code_str(reason), what);
		msg_clear(m);
	}
	b->m.n = j;
	return 0;
}

/* Locks up to want more messages onto b. >0 taken, 0 none, -1 failure. */
static int take(struct sender *x, struct batch *b, size_t want)
{
	struct chan_sess *s = x->s;
	size_t before = b->m.n;
	int rc;

	if (want == 0)
		return 0;
	if (chan_store(s) == NULL)
		return -1;
	rc = store_lock(s->st, s->def.xmitq, want, s->owner, &b->m);
	if (rc == STORE_NO_MSG)
		return 0;
	if (rc != STORE_OK) {
		enum chd_code_id code = rc == STORE_UNKNOWN_Q ? CHD_Q_UNKNOWN
		                        : rc == STORE_GET_INHIBITED ? CHD_Q_GET_INHIBITED : CHD_DB_ERROR;
		return chan_fail(s, code, "channel %s: transmission queue %s: %s", s->def.name,
		                 s->def.xmitq, store_errmsg(s->st));
	}
	if (before == 0)
		b->started = time_mono_ms();
	if (filter_unsendable(x, b) != 0)
		return -1;
	return (int)(b->m.n - before);
}

/* ---- stopping ---- */

static enum chan_end end_of_reason(int reason)
{
	switch (reason) {
	case FRAME_STOP_DISCINT: return END_DISCINT;
	case FRAME_STOP_SHUTDOWN: return END_SHUTDOWN;
	default: return END_STOPPED;
	}
}

/* Between batches: ends the connection in order (PROTOCOL.md 10). */
static int close_orderly(struct sender *x, int my_reason)
{
	struct chan_sess *s = x->s;
	struct frame f;

	if (settle(x) != 0)
		return -1;
	/* messages locked but never sent go back to the queue */
	for (size_t i = x->nfl; i < CHAN_WINDOW; i++)
		if (x->fl[i].m.n > 0) {
			store_release(&x->fl[i].m);
			batch_clear(&x->fl[i]);
		}
	chan_status_substate(s, "STOPPING");
	if (s->peer_stop) {
		if (frame_encode_stop_ack(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
			return -1;
		s->end = s->peer_stop_reason == FRAME_STOP_DISCINT ? END_DISCINT : END_PEER_STOP;
		return 0;
	}
	if (frame_encode_stop(&s->out, &s->w, my_reason, NULL) != FRAME_OK || chan_flush(s) != 0)
		return -1;
	s->stop_sent = true;
	for (;;) {
		if (chan_await(s, chan_t_reply_ms(s->hbint), WAKE_FORCE_ENDS, "STOP_ACK", &f) !=
		    RD_FRAME)
			return -1;
		if (f.h.type == FRAME_STOP) {
			if (frame_encode_stop_ack(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
				return -1;
			continue;
		}
		if (f.h.type != FRAME_STOP_ACK)
			return chan_unexpected(s, &f, "S_WAIT_STOP_ACK");
		break;
	}
	s->end = end_of_reason(my_reason);
	return 0;
}

/* ---- a batch ---- */

/* Encoded MSG frames go out in pieces of this size: the receiver decrypts
 * and stores one piece while this end encodes the next.  Flushing only
 * at CHAN_FLUSH_BYTES let a batch of 64 KiB messages (3 MiB) be encoded
 * whole before the receiver saw a byte, so the two ends took turns
 * (64 KiB nonpersistent over one channel, load about 3: 325 MB/s before,
 * 424-454 MB/s with 256 KiB pieces; 64 KiB pieces were no better). */
#define CHAN_SEND_CHUNK (256u * 1024)

/* The MSG frames of b (END_BATCH apart: it may only go once the batch is
 * recorded in doubt). */
static int send_msgs(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct frame_err ferr;
	int64_t now = time_now_ms();

	chan_status_substate(s, "SENDING");
	for (size_t i = 0; i < b->m.n; i++) {
		struct chd_msg *m = &b->m.v[i];
		if (frame_encode_msg(&s->out, &s->w, b->id, b->seqs[i], m, now, &ferr) != FRAME_OK)
			return chan_fail(s, CHD_CH_PROTOCOL, "channel %s: cannot send message %zu of batch "
			                 "%llu: %s", s->def.name, i + 1, (unsigned long long)b->id, ferr.why);
		/* the body is no longer needed: only seq, msgid and persistence
		 * are used by the delete after CONFIRM */
		free(m->body);
		m->body = NULL;
		free(m->props);
		m->props = NULL;
		if (s->out.len >= CHAN_SEND_CHUNK && chan_flush(s) != 0)
			return -1;
	}
	return 0;
}

static int send_end(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct frame_err ferr;
	struct frame_batch eb = { .batch_id = b->id, .count = (uint32_t)b->m.n,
	                          .last_seq = b->last_seq };

	if (frame_encode_end_batch(&s->out, &s->w, &eb, &ferr) != FRAME_OK)
		return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode END_BATCH: %s", ferr.why);
	b->ended = x->last_msg = time_mono_ms();
	return 0;
}

static void publish_sent(struct sender *x)
{
	struct chan_sess *s = x->s;

	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		s->rt->st.current_seq = x->n_seq;
		s->rt->st.bytes_sent = s->bytes_sent;
		s->rt->st.bytes_received = s->bytes_received;
		str_copy(s->rt->st.substate, "END_OF_BATCH", sizeof(s->rt->st.substate));
	}
	pthread_mutex_unlock(&chan_sup.mtx);
}

/* Deletes the grouped confirmed nonpersistent messages (no fsync: they
 * live in the nonpersistent database). */
static int flush_pending(struct sender *x)
{
	struct chan_sess *s = x->s;

	if (x->pend.n == 0)
		return 0;
	if (chan_store(s) == NULL)
		return -1;
	if (store_confirm(s->st, &x->pend) != STORE_OK)
		return db_fail(x, "deleting confirmed nonpersistent messages");
	msg_list_free(&x->pend);
	return 0;
}

/* Moves b's messages to the end of l (b is left empty). */
static int list_take(struct sender *x, struct msg_list *l, struct batch *b)
{
	for (size_t i = 0; i < b->m.n; i++) {
		struct chd_msg *m = msg_list_add(l);
		if (m == NULL)
			return chan_fail(x->s, CHD_CH_CLOSED, "out of memory");
		*m = b->m.v[i];
		memset(&b->m.v[i], 0, sizeof(b->m.v[i]));
	}
	b->m.n = 0;
	return 0;
}

/* One transaction (one fsync): deletes the confirmed batches (x->done,
 * and the grouped nonpersistent deletes), records the receiver's last
 * confirmed batch as committed, and lists fl[0 .. upto) -- the batches in
 * flight and those about to go -- as in doubt.  Until it returns no
 * END_BATCH of fl[nfl .. upto) may go. */
static int record(struct sender *x, size_t upto)
{
	struct chan_sess *s = x->s;
	struct store_indoubt ib[CHAN_WINDOW];
	const struct msg_list *ml[CHAN_WINDOW];
	struct batch *bv[CHAN_WINDOW];
	struct chan_sync cs;
	size_t nb = 0;

	if (chan_store(s) == NULL)
		return -1;
	for (size_t i = 0; i < upto; i++) {
		if (!x->fl[i].has_p)
			continue;
		ib[nb] = (struct store_indoubt){ .batch_id = x->fl[i].id, .last_seq = x->fl[i].last_seq,
		                                 .count = (uint32_t)x->fl[i].m.n };
		ml[nb] = &x->fl[i].m;
		bv[nb++] = &x->fl[i];
	}
	sync_fill(x, &cs, x->c_batch, x->c_seq);
	if (nb > 0)
		sync_indoubt(&cs, bv[nb - 1]);
	if (store_begin(s->st) != STORE_OK)
		return db_fail(x, "recording the in-doubt batches");
	if (store_confirm(s->st, &x->done) != STORE_OK || store_confirm(s->st, &x->pend) != STORE_OK)
		return db_fail(x, "deleting confirmed batches");
	if (store_ext_set_indoubt(s->st, s->def.name, ib, ml, nb) != STORE_OK)
		return db_fail(x, "recording the in-doubt batches");
	if (store_sync_set(s->st, &cs) != STORE_OK)
		return db_fail(x, "recording a committed batch");
	if (store_commit(s->st) != STORE_OK)
		return db_fail(x, "committing the in-doubt batches");
	msg_list_free(&x->done);
	msg_list_free(&x->pend);
	x->indoubt = nb > 0;
	np_remember(x, bv, nb);
	publish_indoubt(x);
	return 0;
}

/* The lazy deletes, when nothing else will carry them soon (going idle,
 * stopping, too many kept). */
static int settle(struct sender *x)
{
	if (x->done.n == 0)
		return flush_pending(x);
	return record(x, x->nfl);
}

/* CONFIRM of the oldest batch in flight. */
static int on_confirm(struct sender *x, const struct frame_batch *c)
{
	struct chan_sess *s = x->s;
	struct batch *b = &x->fl[0], t;
	size_t count = b->m.n;

	if (c->batch_id != b->id || c->count != b->m.n || c->last_seq != b->last_seq) {
		chan_fail(s, CHD_CH_PROTOCOL, "CONFIRM (batch %llu, %u messages, seq %u) does not "
		          "match END_BATCH (batch %llu, %zu messages, seq %u)",
		          (unsigned long long)c->batch_id, c->count, c->last_seq,
		          (unsigned long long)b->id, b->m.n, b->last_seq);
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	s->work_mono = time_mono_ms();
	if (b->has_p) {
		x->c_batch = b->id;
		x->c_seq = b->last_seq;
		if (list_take(x, &x->done, b) != 0)
			return -1;
	} else {
		if (list_take(x, &x->pend, b) != 0)
			return -1;
		if (x->pend.n >= CHAN_NP_DELETE_GROUP && flush_pending(x) != 0)
			return -1;
	}
	/* the slot (with its seqs buffer) goes to the end */
	batch_clear(b);
	t = x->fl[0];
	memmove(&x->fl[0], &x->fl[1], (CHAN_WINDOW - 1) * sizeof(x->fl[0]));
	x->fl[CHAN_WINDOW - 1] = t;
	x->nfl--;

	int64_t now = time_now_ms();
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		struct chan_status *st = &s->rt->st;
		st->msgs += count;
		st->batches++;
		st->committed_seq = x->c_seq;
		if (x->nfl == 0)
			st->current_seq = x->c_seq;
		st->last_msg_time_ms = now;
		st->bytes_sent = s->bytes_sent;
		st->bytes_received = s->bytes_received;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return 0;
}

/* Takes the frames that came from the receiver: CONFIRMs, or a STOP.
 * wait_ms 0: only what is there; > 0: waits that long for the first
 * one; the oldest batch in flight must be confirmed within T_reply. */
static int collect(struct sender *x, int64_t wait_ms)
{
	struct chan_sess *s = x->s;
	struct frame f;

	for (;;) {
		int64_t now = time_mono_ms(), w = wait_ms;
		int64_t deadline = x->nfl > 0 ? x->fl[0].ended + chan_t_reply_ms(s->hbint) : -1;
		int rd;

		if (w != 0 && deadline >= 0 && (w < 0 || deadline - now < w))
			w = deadline - now > 0 ? deadline - now : 0;
		/* with room in the window, new messages on the queue wake it */
		bool room = w != 0 && x->nfl < x->window && !s->peer_stop;
		if (w != 0)
			chan_status_substate(s, "WAITING_CONFIRM");
		if (room)
			chan_set_idle(s, true, true);
		rd = chan_await(s, w, WAKE_RETURNS, NULL, &f);
		if (room)
			chan_set_idle(s, false, true);
		if (rd == RD_WOKEN) {
			x->maybe_work = true;
			return 0;
		}
		if (rd == RD_TIMEOUT) {
			if (deadline >= 0 && time_mono_ms() >= deadline)
				return chan_fail(s, CHD_CH_HEARTBEAT, "no CONFIRM of batch %llu within %lld s",
				                 (unsigned long long)x->fl[0].id,
				                 (long long)chan_t_reply_ms(s->hbint) / 1000);
			return 0;
		}
		if (rd != RD_FRAME)
			return -1;
		if (f.h.type == FRAME_STOP) {
			s->peer_stop = true;
			s->peer_stop_reason = f.u.stop.reason;
		} else if (f.h.type == FRAME_CONFIRM && x->nfl > 0) {
			if (on_confirm(x, &f.u.batch) != 0)
				return -1;
		} else {
			return chan_unexpected(s, &f, x->nfl > 0 ? "S_WAIT_CONFIRM" : "S_IDLE");
		}
		wait_ms = 0; /* then only what has come too */
	}
}

static size_t inflight_bytes(const struct sender *x)
{
	size_t n = 0;

	for (size_t i = 0; i < x->nfl; i++)
		for (size_t k = 0; k < x->fl[i].m.n; k++)
			n += x->fl[i].m.v[k].body_len;
	return n;
}

/* Sends fl[nfl] and, while the window has room and full batches are
 * waiting, more with it: one commit records them all in doubt.  The
 * first one's MSG frames go before that commit, so the receiver puts
 * them meanwhile (PROTOCOL.md 7.3). */
static int launch(struct sender *x)
{
	struct chan_sess *s = x->s;
	size_t g = 1, first = x->nfl;
	bool any_p;

	while (first + g < x->window && x->fl[first + g - 1].m.n >= s->batchsz &&
	       !s->peer_stop && chan_stop_req(s) == STOP_NONE) {
		int got = take(x, &x->fl[first + g], s->batchsz);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		g++;
	}
	any_p = false;
	for (size_t i = 0; i < g; i++) {
		if (batch_number(x, &x->fl[first + i]) != 0)
			return -1;
		any_p |= x->fl[first + i].has_p;
	}
	if (send_msgs(x, &x->fl[first]) != 0 || chan_flush(s) != 0)
		return -1;
	/* from here the batches count as in flight: a failure leaves them
	 * listed in doubt (if recorded) and the resync settles them */
	x->nfl += g;
	if (any_p && record(x, x->nfl) != 0)
		return -1;
	for (size_t i = 0; i < g; i++) {
		if ((i > 0 && send_msgs(x, &x->fl[first + i]) != 0) ||
		    send_end(x, &x->fl[first + i]) != 0)
			return -1;
	}
	if (chan_flush(s) != 0)
		return -1;
	publish_sent(x);
	return 0;
}

/* Grows b for up to BATCHINT ms (PROTOCOL.md 7.1). */
static int fill_batch(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct frame f;

	while (b->m.n < s->batchsz && s->def.batchint > 0 && !s->peer_stop) {
		int64_t left = b->started + s->def.batchint - time_mono_ms();
		int got, rd;

		if (left > CHAN_BATCH_OPEN_MAX_MS)
			left = CHAN_BATCH_OPEN_MAX_MS;
		if (left <= 0 || chan_stop_req(s) != STOP_NONE)
			break;
		chan_set_idle(s, true, true);
		got = take(x, b, s->batchsz - b->m.n);
		if (got != 0) {
			chan_set_idle(s, false, true);
			if (got < 0)
				return -1;
			continue;
		}
		rd = chan_await(s, left, WAKE_RETURNS, NULL, &f);
		chan_set_idle(s, false, true);
		if (rd == RD_TIMEOUT)
			break;
		if (rd == RD_WOKEN)
			continue; /* a stop, or new messages: looked at above */
		if (rd != RD_FRAME)
			return -1;
		if (f.h.type != FRAME_STOP)
			return chan_unexpected(s, &f, "S_BATCH");
		s->peer_stop = true;
		s->peer_stop_reason = f.u.stop.reason;
	}
	return 0;
}

static int heartbeat(struct sender *x)
{
	struct chan_sess *s = x->s;
	struct frame f;

	chan_status_substate(s, "HEARTBEATING");
	if (frame_encode_hb(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
		return -1;
	for (;;) {
		if (chan_await(s, chan_t_reply_ms(s->hbint), WAKE_FORCE_ENDS,
		               "HB_ACK (peer not responding)", &f) != RD_FRAME)
			return -1;
		if (f.h.type == FRAME_STOP) {
			s->peer_stop = true;
			s->peer_stop_reason = f.u.stop.reason;
			continue;
		}
		if (f.h.type != FRAME_HB_ACK)
			return chan_unexpected(s, &f, "S_WAIT_HB_ACK");
		pthread_mutex_lock(&chan_sup.mtx);
		if (s->rt != NULL) {
			s->rt->st.bytes_sent = s->bytes_sent;
			s->rt->st.bytes_received = s->bytes_received;
		}
		pthread_mutex_unlock(&chan_sup.mtx);
		return 0;
	}
}

/* Idle: waits for work, a heartbeat or DISCINT, a stop, or the peer.
 * Returns 1 with messages in fl[0], 0 to go round, -1 failure. */
static int idle(struct sender *x, int *stop_reason)
{
	struct chan_sess *s = x->s;
	struct batch *cur = &x->fl[0];
	struct frame f;
	int got, rd;
	int64_t now, tmo = -1, hb_at = 0, disc_at = 0;

	chan_set_idle(s, true, true);
	/* With the store handle given back, look only when the watcher says
	 * the queue has messages (or after a wake-up of any kind). */
	got = 0;
	if (s->st != NULL || x->maybe_work)
		got = take(x, cur, s->batchsz);
	x->maybe_work = false;
	if (got != 0) {
		chan_set_idle(s, false, true);
		return got < 0 ? -1 : 1;
	}
	/* nothing to send: the lazy deletes go now */
	if (settle(x) != 0)
		return -1;
	chan_status_substate(s, "IDLE");
	now = time_mono_ms();
	if (s->hbint > 0) {
		/* the receiver's T_dead counts from the last frame we sent */
		hb_at = s->last_send_mono + (int64_t)s->hbint * 1000;
		tmo = hb_at - now;
	}
	if (s->def.discint > 0) {
		disc_at = x->last_msg + (int64_t)s->def.discint * 1000;
		if (tmo < 0 || disc_at - now < tmo)
			tmo = disc_at - now;
	}
	if (tmo < 0 && (s->hbint > 0 || s->def.discint > 0))
		tmo = 0;
	if (s->st != NULL) {
		int64_t rel = s->work_mono + CHAN_STORE_IDLE_MS - now;
		if (rel < 1)
			rel = 1;
		if (tmo < 0 || rel < tmo)
			tmo = rel;
	}
	rd = chan_await(s, tmo, WAKE_RETURNS, NULL, &f);
	chan_set_idle(s, false, true);
	chan_store_idle(s);
	if (rd == RD_WOKEN) {
		x->maybe_work = true;
		return 0;
	}
	if (rd == RD_FRAME) {
		if (f.h.type != FRAME_STOP)
			return chan_unexpected(s, &f, "S_IDLE");
		s->peer_stop = true;
		s->peer_stop_reason = f.u.stop.reason;
		return 0;
	}
	if (rd != RD_TIMEOUT)
		return -1;
	now = time_mono_ms();
	if (disc_at != 0 && now >= disc_at) {
		*stop_reason = FRAME_STOP_DISCINT;
		return 0;
	}
	if (hb_at != 0 && now >= hb_at)
		return heartbeat(x) == 0 ? 0 : -1;
	return 0;
}

/* With batches in flight: is the batch being taken ready to go?  1 yes,
 * 0 not yet (then *wait_ms says how long it may wait), -1 failure. */
static int ready(struct sender *x, int64_t *wait_ms)
{
	struct chan_sess *s = x->s;
	struct batch *cur = &x->fl[x->nfl];
	int64_t left;

	*wait_ms = -1;
	if (x->nfl >= x->window || inflight_bytes(x) >= CHAN_WINDOW_BYTES)
		return 0;
	if (cur->m.n < s->batchsz && take(x, cur, s->batchsz - cur->m.n) < 0)
		return -1;
	if (cur->m.n == 0)
		return 0;
	if (cur->m.n >= s->batchsz || s->def.batchint == 0)
		return 1;
	left = cur->started + s->def.batchint - time_mono_ms();
	if (left <= 0)
		return 1;
	*wait_ms = left;
	return 0;
}

int chan_run_sender(struct chan_sess *s)
{
	struct sender x;
	int rc = -1;

	memset(&x, 0, sizeof(x));
	x.s = s;
	/* PROTOCOL.md 7.3: the window of the version spoken */
	x.window = s->w.version >= 3 ? CHAN_WINDOW : s->w.version == 2 ? CHAN_WINDOW_V2 : 1;
	if (chan_sup.host.dlq != NULL)
		str_copy(x.dlq, chan_sup.host.dlq, sizeof(x.dlq));
	if (resync(&x) != 0)
		goto out;

	chan_enter_running(s, x.c_seq);
	x.last_msg = time_mono_ms();
	x.maybe_work = true;

	for (;;) {
		enum chan_stop stop;

		if (x.nfl > 0 && collect(&x, 0) != 0)
			goto out;
		stop = chan_stop_req(s);
		if (stop == STOP_FORCE) {
			chan_fail_forced(s);
			goto out;
		}
		if (stop != STOP_NONE || s->peer_stop) {
			/* batches already sent are always seen through */
			if (x.nfl > 0) {
				if (collect(&x, -1) != 0)
					goto out;
				continue;
			}
			rc = close_orderly(&x, stop == STOP_SHUTDOWN ? FRAME_STOP_SHUTDOWN
			                                             : FRAME_STOP_OPERATOR);
			goto out;
		}
		if (x.nfl == 0) {
			if (x.fl[0].m.n == 0) {
				int my_reason = 0;
				int r = idle(&x, &my_reason);
				if (r < 0)
					goto out;
				if (my_reason != 0) {
					rc = close_orderly(&x, my_reason);
					goto out;
				}
				if (r == 0)
					continue;
			}
			if (fill_batch(&x, &x.fl[0]) != 0)
				goto out;
			if (x.fl[0].m.n == 0)
				continue;
		} else {
			int64_t w;
			int r = ready(&x, &w);
			if (r < 0)
				goto out;
			if (r == 0) {
				if (collect(&x, w) != 0)
					goto out;
				continue;
			}
		}
		if (launch(&x) != 0)
			goto out;
		if (x.done.n >= CHAN_WINDOW * (size_t)s->batchsz && settle(&x) != 0)
			goto out;
	}
out:
	/* what was confirmed must not be released and sent again: delete it
	 * now if the store lets us (else the next resync does) */
	if ((x.done.n > 0 || x.pend.n > 0) && s->st != NULL) {
		if (x.done.n > 0 ? record(&x, x.nfl) != 0 : flush_pending(&x) != 0)
			log_error(code_str(CHD_DB_ERROR), "channel=%s cannot delete %zu confirmed "
			          "messages now (the next resync settles them): %s", s->def.name,
			          x.done.n + x.pend.n, store_errmsg(s->st));
	}
	msg_list_free(&x.done);
	msg_list_free(&x.pend);
	for (size_t i = 0; i < CHAN_WINDOW; i++)
		batch_free(&x.fl[i]);
	return rc;
}
