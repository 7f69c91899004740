/* The sending end of a channel (doc/PROTOCOL.md 6, 7, 8, 10; the
 * exactly-once argument is in doc/CHANNELS.md).
 *
 * Durability order for a batch with persistent messages:
 *   1. in-doubt record (sync record flag + the batch's store seqs and
 *      msgids) committed,                            -- before END_BATCH
 *   2. MSG... END_BATCH sent, CONFIRM received,
 *   3. one transaction: delete the batch, record it as committed, clear
 *      the in-doubt record.
 * Pipelining: while waiting for CONFIRM of batch n the next messages are
 * locked (not sent: one batch in flight).  When batch n+1 is complete by
 * then, its in-doubt record is written in the transaction of step 3 of
 * batch n, so a busy channel pays one fsync per batch at this end. */
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
	bool durable;             /* its in-doubt record is committed */
	bool sent;                /* END_BATCH is on its way: wait for CONFIRM */
	int64_t started;          /* mono ms of its first message */
};

struct sender {
	struct chan_sess *s;
	uint64_t c_batch;         /* last committed (both ends agree after resync) */
	uint32_t c_seq;
	bool indoubt;             /* a durable in-doubt record exists */
	struct batch cur, next;
	int64_t last_msg;         /* mono ms of the last batch sent (DISCINT) */
	/* confirmed nonpersistent-only batches not deleted yet: their deletes
	 * are grouped (CHAN_NP_DELETE_GROUP messages per transaction); they
	 * stay locked, so they are never sent again */
	struct msg_list pend;
	bool maybe_work;          /* woken: look at the queue even without a handle */
	char dlq[CHAND_NAME_MAX + 1];
};

static int flush_pending(struct sender *x);

static void batch_clear(struct batch *b)
{
	msg_list_free(&b->m);
	memset(&b->m, 0, sizeof(b->m));
	b->id = 0;
	b->last_seq = 0;
	b->has_p = false;
	b->durable = false;
	b->sent = false;
	b->started = 0;
}

static void batch_free(struct batch *b)
{
	batch_clear(b);
	free(b->seqs);
	b->seqs = NULL;
	b->seqcap = 0;
}

/* Ids and sequence numbers, following (batch, seq). */
static int batch_number(struct sender *x, struct batch *b, uint64_t batch, uint32_t seq)
{
	struct chan_sess *s = x->s;

	if (b->seqcap < b->m.n) {
		uint32_t *v = realloc(b->seqs, b->m.n * sizeof(*v));
		if (v == NULL)
			return chan_fail(s, CHD_CH_CLOSED, "out of memory");
		b->seqs = v;
		b->seqcap = b->m.n;
	}
	b->id = batch + 1;
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

/* Remembers the nonpersistent members of an in-doubt batch: they share
 * its fate at the next resync of this process (they do not survive a
 * restart, so they are not recorded on disk). */
static void np_remember(struct sender *x, const struct batch *b)
{
	struct chan_rt *rt = x->s->rt;
	size_t n = 0;
	int64_t *v = NULL;

	if (rt == NULL)
		return;
	for (size_t i = 0; i < b->m.n; i++)
		n += !b->m.v[i].persistent;
	if (n > 0 && (v = malloc(n * sizeof(*v))) != NULL) {
		n = 0;
		for (size_t i = 0; i < b->m.n; i++)
			if (!b->m.v[i].persistent)
				v[n++] = b->m.v[i].seq;
	} else {
		n = 0;
	}
	pthread_mutex_lock(&chan_sup.mtx);
	free(rt->np_seqs);
	rt->np_seqs = v;
	rt->n_np = n;
	rt->np_batch = b->id;
	pthread_mutex_unlock(&chan_sup.mtx);
}

static void np_forget(struct sender *x)
{
	struct chan_rt *rt = x->s->rt;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	free(rt->np_seqs);
	rt->np_seqs = NULL;
	rt->n_np = 0;
	rt->np_batch = 0;
	pthread_mutex_unlock(&chan_sup.mtx);
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

static int resync(struct sender *x)
{
	struct chan_sess *s = x->s;
	struct chan_sync cs;
	struct frame_resync rs;
	struct frame f;
	struct store_member *mem = NULL;
	size_t nmem = 0;
	bool reset = false;
	char why[512];
	int rc, rd;

	chan_status_substate(s, "RESYNCHING");
	if (chan_store(s) == NULL)
		return -1;
	rc = store_sync_get(s->st, s->def.name, &cs);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return db_fail(x, "reading the sync record");
	if (rc == STORE_NOT_FOUND)
		sync_fill(x, &cs, 0, 0);
	if (store_ext_get(s->st, s->def.name, &reset, &mem, &nmem) != STORE_OK)
		return db_fail(x, "reading the in-doubt record");
	memset(&rs, 0, sizeof(rs));
	rs.batch_id = cs.batch_id;
	rs.seq = (uint32_t)cs.seq;
	if (cs.indoubt) {
		rs.indoubt = true;
		rs.indoubt_batch = cs.indoubt_batch;
		rs.indoubt_seq = (uint32_t)cs.indoubt_seq;
		rs.indoubt_count = cs.indoubt_count;
	} else if (reset) {
		rs.reset = true;
	}
	if (frame_encode_resync(&s->out, &s->w, &rs, NULL) != FRAME_OK) {
		free(mem);
		return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode RESYNC (batch %llu seq %u)",
		                 (unsigned long long)rs.batch_id, rs.seq);
	}
	if (chan_flush(s) != 0) {
		free(mem);
		return -1;
	}
	for (;;) {
		rd = chan_read_frame(s, chan_t_reply_ms(s->hbint), &f);
		if (rd == RD_WOKEN) {
			enum chan_stop st = chan_stop_req(s);
			if (st == STOP_NONE)
				continue;
			chan_fail(s, CHD_CH_STOP, "channel ended: %s",
			          st == STOP_SHUTDOWN ? "queue manager ending" : "stopped by operator");
			rd = RD_ERR;
		} else if (rd == RD_TIMEOUT) {
			chan_fail(s, CHD_CH_HEARTBEAT, "no RESYNC_ACK within %lld s",
			          (long long)chan_t_reply_ms(s->hbint) / 1000);
		}
		break;
	}
	if (rd != RD_FRAME) {
		free(mem);
		return -1;
	}
	if (f.h.type != FRAME_RESYNC_ACK) {
		free(mem);
		return chan_unexpected(s, &f, "S_WAIT_RESYNC_ACK");
	}
	if (!frame_resync_check_ack(&rs, &f.u.resync_ack, why, sizeof(why))) {
		free(mem);
		chan_fail(s, CHD_CH_SEQ, "channel %s: %s", s->def.name, why);
		chan_send_error(s, CHD_CH_SEQ, s->text);
		return -1;
	}
	/* settle the in-doubt batch, adopt the receiver's numbers */
	if (store_begin(s->st) != STORE_OK) {
		free(mem);
		return db_fail(x, "settling the in-doubt batch");
	}
	if (rs.indoubt && f.u.resync_ack.committed) {
		struct msg_list del = { 0 };
		rc = store_ext_present(s->st, mem, nmem, &del);
		pthread_mutex_lock(&chan_sup.mtx);
		if (rc == STORE_OK && s->rt != NULL && s->rt->np_batch == rs.indoubt_batch)
			for (size_t i = 0; i < s->rt->n_np; i++) {
				struct chd_msg *m = msg_list_add(&del);
				if (m != NULL)
					m->seq = s->rt->np_seqs[i];
			}
		pthread_mutex_unlock(&chan_sup.mtx);
		if (rc == STORE_OK)
			rc = store_confirm(s->st, &del);
		log_info(code_str(CHD_CH_START), "channel=%s in-doubt batch %llu (seq %u, %u messages) "
		         "is committed at the receiver: %zu messages deleted here", s->def.name,
		         (unsigned long long)rs.indoubt_batch, rs.indoubt_seq, rs.indoubt_count, del.n);
		msg_list_free(&del);
		if (rc != STORE_OK) {
			free(mem);
			return db_fail(x, "deleting the committed in-doubt batch");
		}
	} else if (rs.indoubt) {
		log_info(code_str(CHD_CH_START), "channel=%s in-doubt batch %llu (seq %u, %u messages) "
		         "was not committed at the receiver: backed out, sent again", s->def.name,
		         (unsigned long long)rs.indoubt_batch, rs.indoubt_seq, rs.indoubt_count);
	}
	free(mem);
	sync_fill(x, &cs, f.u.resync_ack.batch_id, f.u.resync_ack.seq);
	if (store_sync_set(s->st, &cs) != STORE_OK ||
	    (rs.indoubt && store_ext_clear_members(s->st, s->def.name) != STORE_OK) ||
	    (rs.reset && store_ext_set_reset(s->st, s->def.name, false) != STORE_OK))
		return db_fail(x, "recording the resynchronisation");
	if (store_commit(s->st) != STORE_OK)
		return db_fail(x, "committing the resynchronisation");
	np_forget(x);
	if (rs.reset)
		log_info(code_str(CHD_CH_START), "channel=%s sequence number reset to %u told to the "
		         "receiver", s->def.name, rs.seq);
	x->c_batch = f.u.resync_ack.batch_id;
	x->c_seq = f.u.resync_ack.seq;
	x->indoubt = false;
	return 0;
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

	if (flush_pending(x) != 0)
		return -1;
	/* messages locked but never sent go back to the queue */
	if (x->cur.m.n > 0) {
		store_release(&x->cur.m);
		batch_clear(&x->cur);
	}
	if (x->next.m.n > 0) {
		store_release(&x->next.m);
		batch_clear(&x->next);
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
		int rd = chan_read_frame(s, chan_t_reply_ms(s->hbint), &f);
		if (rd == RD_WOKEN) {
			if (chan_stop_req(s) == STOP_FORCE)
				return chan_fail_forced(s);
			continue;
		}
		if (rd == RD_TIMEOUT)
			return chan_fail(s, CHD_CH_HEARTBEAT, "no STOP_ACK within %lld s",
			                 (long long)chan_t_reply_ms(s->hbint) / 1000);
		if (rd != RD_FRAME)
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

/* Records b as in doubt on its own (when it was not written ahead). */
static int record_indoubt(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct chan_sync cs;

	if (!b->has_p || b->durable)
		return 0;
	if (chan_store(s) == NULL)
		return -1;
	sync_fill(x, &cs, x->c_batch, x->c_seq);
	sync_indoubt(&cs, b);
	if (store_begin(s->st) != STORE_OK ||
	    store_ext_set_members(s->st, s->def.name, &b->m) != STORE_OK ||
	    store_sync_set(s->st, &cs) != STORE_OK || store_commit(s->st) != STORE_OK)
		return db_fail(x, "recording the in-doubt batch");
	b->durable = true;
	x->indoubt = true;
	np_remember(x, b);
	publish_indoubt(x);
	return 0;
}

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
	return chan_flush(s);
}

static int send_end(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct frame_err ferr;
	struct frame_batch eb = { .batch_id = b->id, .count = (uint32_t)b->m.n,
	                          .last_seq = b->last_seq };

	if (frame_encode_end_batch(&s->out, &s->w, &eb, &ferr) != FRAME_OK)
		return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode END_BATCH: %s", ferr.why);
	if (chan_flush(s) != 0)
		return -1;
	b->sent = true;
	x->last_msg = time_mono_ms();
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		s->rt->st.current_seq = b->last_seq;
		s->rt->st.bytes_sent = s->bytes_sent;
		s->rt->st.bytes_received = s->bytes_received;
		str_copy(s->rt->st.substate, "END_OF_BATCH", sizeof(s->rt->st.substate));
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return 0;
}

/* Waits for CONFIRM of b; meanwhile locks the next messages. */
static int wait_confirm(struct sender *x, struct batch *b)
{
	struct chan_sess *s = x->s;
	struct frame f;
	int64_t deadline = time_mono_ms() + chan_t_reply_ms(s->hbint);

	if (!s->peer_stop && chan_stop_req(s) == STOP_NONE && x->next.m.n == 0 &&
	    take(x, &x->next, s->batchsz) < 0)
		return -1;
	for (;;) {
		int64_t left = deadline - time_mono_ms();
		int rd = chan_read_frame(s, left > 0 ? left : 0, &f);
		if (rd == RD_WOKEN) {
			if (chan_stop_req(s) == STOP_FORCE)
				return chan_fail_forced(s);
			continue;
		}
		if (rd == RD_TIMEOUT)
			return chan_fail(s, CHD_CH_HEARTBEAT, "no CONFIRM of batch %llu within %lld s",
			                 (unsigned long long)b->id,
			                 (long long)chan_t_reply_ms(s->hbint) / 1000);
		if (rd != RD_FRAME)
			return -1;
		if (f.h.type == FRAME_STOP) {
			s->peer_stop = true;
			s->peer_stop_reason = f.u.stop.reason;
			continue;
		}
		if (f.h.type != FRAME_CONFIRM)
			return chan_unexpected(s, &f, "S_WAIT_CONFIRM");
		if (f.u.batch.batch_id != b->id || f.u.batch.count != b->m.n ||
		    f.u.batch.last_seq != b->last_seq) {
			chan_fail(s, CHD_CH_PROTOCOL, "CONFIRM (batch %llu, %u messages, seq %u) does not "
			          "match END_BATCH (batch %llu, %zu messages, seq %u)",
			          (unsigned long long)f.u.batch.batch_id, f.u.batch.count,
			          f.u.batch.last_seq, (unsigned long long)b->id, b->m.n, b->last_seq);
			chan_send_error(s, CHD_CH_PROTOCOL, s->text);
			return -1;
		}
		return 0;
	}
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

static int pend_add(struct sender *x, struct batch *b)
{
	for (size_t i = 0; i < b->m.n; i++) {
		struct chd_msg *m = msg_list_add(&x->pend);
		if (m == NULL)
			return chan_fail(x->s, CHD_CH_CLOSED, "out of memory");
		*m = b->m.v[i];
		memset(&b->m.v[i], 0, sizeof(b->m.v[i]));
	}
	b->m.n = 0;
	return x->pend.n >= CHAN_NP_DELETE_GROUP ? flush_pending(x) : 0;
}

/* After CONFIRM: deletes b and records it committed and, if ahead is
 * given (a batch with persistent messages whose MSG frames are already
 * on their way), records ahead in doubt: one transaction. */
static int commit_batch(struct sender *x, struct batch *b, struct batch *ahead)
{
	struct chan_sess *s = x->s;
	uint64_t cb = b->has_p ? b->id : x->c_batch;
	uint32_t cq = b->has_p ? b->last_seq : x->c_seq;
	struct chan_sync cs;

	size_t count = b->m.n;

	chan_status_substate(s, "COMMITTING");
	s->work_mono = time_mono_ms();
	if (chan_store(s) == NULL)
		return -1;
	if (!b->has_p && ahead == NULL) {
		if (pend_add(x, b) != 0)
			return -1;
		goto published;
	}
	if (store_begin(s->st) != STORE_OK)
		return db_fail(x, "deleting a confirmed batch");
	if (store_confirm(s->st, &b->m) != STORE_OK || store_confirm(s->st, &x->pend) != STORE_OK)
		return db_fail(x, "deleting a confirmed batch");
	if (b->has_p || ahead != NULL) {
		sync_fill(x, &cs, cb, cq);
		if (ahead != NULL) {
			sync_indoubt(&cs, ahead);
			if (store_ext_set_members(s->st, s->def.name, &ahead->m) != STORE_OK)
				return db_fail(x, "recording the next in-doubt batch");
		} else if (store_ext_clear_members(s->st, s->def.name) != STORE_OK) {
			return db_fail(x, "clearing the in-doubt record");
		}
		if (store_sync_set(s->st, &cs) != STORE_OK)
			return db_fail(x, "recording a committed batch");
	}
	if (store_commit(s->st) != STORE_OK)
		return db_fail(x, "committing a confirmed batch");
	msg_list_free(&x->pend);
	x->c_batch = cb;
	x->c_seq = cq;
	if (ahead != NULL) {
		ahead->durable = true;
		x->indoubt = true;
		np_remember(x, ahead);
	} else if (b->has_p) {
		x->indoubt = false;
		np_forget(x);
	}

published:;
	int64_t now = time_now_ms();
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		struct chan_status *st = &s->rt->st;
		st->msgs += count;
		st->batches++;
		st->committed_seq = cq;
		if (ahead == NULL)
			st->current_seq = cq;
		st->last_msg_time_ms = now;
		st->indoubt = x->indoubt;
		st->bytes_sent = s->bytes_sent;
		st->bytes_received = s->bytes_received;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return 0;
}

/* After CONFIRM of x->cur: settles it and, when the next batch is ready,
 * overlaps its sending with that work.  Only one batch is ever in flight
 * (PROTOCOL.md 7.3): the next batch's frames go after CONFIRM, and its
 * END_BATCH only once it is recorded in doubt.
 *   next nonpersistent only: send all of it, then delete x->cur (the
 *     receiver puts while this end deletes);
 *   next with persistent messages: send its MSGs, then delete x->cur and
 *     record next in doubt in one transaction, then END_BATCH. */
static int settle_and_pipeline(struct sender *x)
{
	struct chan_sess *s = x->s;
	struct batch *b = &x->cur, *n = &x->next;
	bool pipe = n->m.n > 0 && !s->peer_stop && chan_stop_req(s) == STOP_NONE &&
	            (n->m.n >= s->batchsz || s->def.batchint == 0);

	if (!pipe)
		return commit_batch(x, b, NULL);
	if (batch_number(x, n, b->has_p ? b->id : x->c_batch, b->has_p ? b->last_seq : x->c_seq) != 0)
		return -1;
	/* b is confirmed: it is deleted even if sending n fails */
	if (send_msgs(x, n) != 0 || (!n->has_p && send_end(x, n) != 0)) {
		(void)commit_batch(x, b, NULL);
		return -1;
	}
	if (!n->has_p)
		return commit_batch(x, b, NULL);
	if (commit_batch(x, b, n) != 0)
		return -1;
	return send_end(x, n);
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
		rd = chan_read_frame(s, left, &f);
		chan_set_idle(s, false, true);
		if (rd == RD_TIMEOUT)
			break;
		if (rd == RD_WOKEN)
			continue;
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
		int rd = chan_read_frame(s, chan_t_reply_ms(s->hbint), &f);
		if (rd == RD_WOKEN) {
			if (chan_stop_req(s) == STOP_FORCE)
				return chan_fail_forced(s);
			continue;
		}
		if (rd == RD_TIMEOUT)
			return chan_fail(s, CHD_CH_HEARTBEAT, "peer not responding: no HB_ACK within %lld s",
			                 (long long)chan_t_reply_ms(s->hbint) / 1000);
		if (rd != RD_FRAME)
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
 * Returns 1 with messages in x->cur, 0 to go round, -1 failure. */
static int idle(struct sender *x, int *stop_reason)
{
	struct chan_sess *s = x->s;
	struct frame f;
	int got, rd;
	int64_t now, tmo = -1, hb_at = 0, disc_at = 0;

	chan_set_idle(s, true, true);
	/* With the store handle given back, look only when the watcher says
	 * the queue has messages (or after a wake-up of any kind). */
	got = 0;
	if (s->st != NULL || x->maybe_work)
		got = take(x, &x->cur, s->batchsz);
	x->maybe_work = false;
	if (got != 0) {
		chan_set_idle(s, false, true);
		return got < 0 ? -1 : 1;
	}
	if (flush_pending(x) != 0)
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
	rd = chan_read_frame(s, tmo, &f);
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

int chan_run_sender(struct chan_sess *s)
{
	struct sender x;
	int rc = -1;

	memset(&x, 0, sizeof(x));
	x.s = s;
	if (chan_sup.host.dlq != NULL)
		str_copy(x.dlq, chan_sup.host.dlq, sizeof(x.dlq));
	if (resync(&x) != 0)
		goto out;

	chan_enter_running(s, x.c_seq);
	x.last_msg = time_mono_ms();
	x.maybe_work = true;

	for (;;) {
		/* a batch already sent (pipelined) is always seen through */
		if (!x.cur.sent) {
			enum chan_stop stop = chan_stop_req(s);
			int my_reason = 0;

			if (stop == STOP_FORCE) {
				chan_fail_forced(s);
				goto out;
			}
			if (stop != STOP_NONE || s->peer_stop) {
				rc = close_orderly(&x, stop == STOP_SHUTDOWN ? FRAME_STOP_SHUTDOWN
				                                             : FRAME_STOP_OPERATOR);
				goto out;
			}
			if (x.cur.m.n == 0) {
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
			if (fill_batch(&x, &x.cur) != 0)
				goto out;
			if (x.cur.m.n == 0)
				continue;
			if (batch_number(&x, &x.cur, x.c_batch, x.c_seq) != 0 ||
			    record_indoubt(&x, &x.cur) != 0 || send_msgs(&x, &x.cur) != 0 ||
			    send_end(&x, &x.cur) != 0)
				goto out;
		}
		if (wait_confirm(&x, &x.cur) != 0 || settle_and_pipeline(&x) != 0)
			goto out;
		/* the next batch (sent already, or only locked) becomes current */
		batch_clear(&x.cur);
		x.cur.sent = false;
		{
			struct batch t = x.cur;
			x.cur = x.next;
			x.next = t;
		}
	}
out:
	/* confirmed ones must not be released and sent again */
	if (x.pend.n > 0 && (chan_store(s) == NULL || store_confirm(s->st, &x.pend) != STORE_OK))
		log_error(code_str(CHD_DB_ERROR), "channel=%s cannot delete %zu confirmed "
		          "nonpersistent messages (they may be sent again): %s", s->def.name, x.pend.n,
		          store_errmsg(s->st));
	msg_list_free(&x.pend);
	batch_free(&x.cur);
	batch_free(&x.next);
	return rc;
}
