/* The receiving end of a channel (doc/PROTOCOL.md 6, 7, 8, 10).
 *
 * A batch's messages, the dead-letter copies of what cannot be delivered
 * and the sync record (batch id, last seq) go in ONE store transaction,
 * committed before CONFIRM.  The messages are kept in memory (one arena,
 * reused) as they arrive and put as soon as the input runs dry, so the
 * work overlaps the sender recording the batch in doubt before its
 * END_BATCH.  The transaction holds the database's single write lock, so
 * if END_BATCH is not there within CHAN_TXN_HOLD_MS it is rolled back
 * and everything is put again at END_BATCH: a peer that stalls in the
 * middle of a batch never stalls the other writers of this queue
 * manager.  Only a batch larger than CHAN_ARENA_STREAM keeps its
 * transaction open until END_BATCH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_int.h"
#include "chand/log.h"

struct rmsg {
	struct chd_msg m;
	size_t body_off, props_off;
	bool has_props;
};

struct receiver {
	struct chan_sess *s;
	uint64_t r_batch;
	uint32_t r_seq;
	/* the open batch */
	struct rmsg *v;
	size_t n, cap;
	size_t put;               /* messages of the batch already put (streaming) */
	uint8_t *arena;
	size_t alen, acap;
	bool txn;                 /* a store transaction is open */
	int64_t txn_since;        /* mono ms it was opened (early puts) */
	bool huge;                /* the batch outgrew the arena: no going back */
	size_t dlq_count;
	char dlq[CHAND_NAME_MAX + 1];
};

static int arena_add(struct receiver *x, const void *p, size_t n, bool nul, size_t *off)
{
	size_t need = x->alen + n + (nul ? 1 : 0);

	if (need > x->acap) {
		size_t cap = x->acap ? x->acap : 256 * 1024;
		uint8_t *a;
		while (cap < need)
			cap *= 2;
		if ((a = realloc(x->arena, cap)) == NULL)
			return chan_fail(x->s, CHD_CH_CLOSED, "out of memory for a batch of %zu bytes", need);
		x->arena = a;
		x->acap = cap;
	}
	*off = x->alen;
	if (n)
		memcpy(x->arena + x->alen, p, n);
	x->alen += n;
	if (nul)
		x->arena[x->alen++] = '\0';
	return 0;
}

static int db_fail(struct receiver *x, const char *what)
{
	struct chan_sess *s = x->s;

	if (x->txn)
		store_rollback(s->st);
	x->txn = false;
	chan_fail(s, CHD_DB_ERROR, "channel %s: %s: %s", s->def.name, what, store_errmsg(s->st));
	chan_send_error(s, CHD_DB_ERROR, s->text);
	return -1;
}

static enum chd_code_id reason_of(int rc)
{
	switch (rc) {
	case STORE_UNKNOWN_Q: return CHD_Q_UNKNOWN;
	case STORE_FULL: return CHD_Q_FULL;
	case STORE_TOO_LONG: return CHD_Q_MSG_TOO_LONG;
	case STORE_PUT_INHIBITED: return CHD_Q_PUT_INHIBITED;
	case STORE_BAD_XMITQ: return CHD_Q_BAD_XMITQ;
	case STORE_BAD_NAME: return CHD_Q_BAD_NAME;
	default: return CHD_Q_UNKNOWN;
	}
}

/* Puts messages [x->put, upto) of the batch into the open transaction:
 * runs of one destination in one store_put, the undeliverable ones to the
 * DLQ.  0, or -1 (the caller's transaction is rolled back). */
static int put_range(struct receiver *x, size_t upto)
{
	struct chan_sess *s = x->s;
	struct chd_msg *tmp;
	size_t i = x->put;

	if (upto <= i)
		return 0;
	if (chan_store(s) == NULL)
		return -1;
	if (!x->txn) {
		if (store_begin(s->st) != STORE_OK)
			return db_fail(x, "starting a batch");
		x->txn = true;
	}
	for (size_t k = i; k < upto; k++) {
		struct rmsg *r = &x->v[k];
		r->m.body = x->arena + r->body_off;
		r->m.props = r->has_props ? (char *)x->arena + r->props_off : NULL;
	}
	/* store_put wants an array of struct chd_msg */
	if ((tmp = malloc((upto - i) * sizeof(*tmp))) == NULL)
		return db_fail(x, "out of memory");
	for (size_t k = i; k < upto; k++)
		tmp[k - i] = x->v[k].m;
	size_t base = i;
	while (i < upto) {
		size_t j = i + 1, done = 0;
		const struct chd_msg *a = &tmp[i - base];
		int rc;

		while (j < upto && strcmp(tmp[j - base].xmit_q, a->xmit_q) == 0 &&
		       strcmp(tmp[j - base].xmit_qm, a->xmit_qm) == 0)
			j++;
		rc = store_put(s->st, a->xmit_q, a->xmit_qm, &tmp[i - base], j - i, &done);
		if (rc == STORE_OK) {
			i = j;
			continue;
		}
		if (rc == STORE_ERR || rc == STORE_DISK_FULL) {
			free(tmp);
			x->txn = false; /* store_put rolled the transaction back */
			store_rollback(s->st);
			chan_fail(s, rc == STORE_DISK_FULL ? CHD_DISK_FULL : CHD_DB_ERROR,
			          "channel %s: putting batch %llu: %s", s->def.name,
			          (unsigned long long)(x->r_batch + 1), store_errmsg(s->st));
			chan_send_error(s, s->code, s->text);
			return -1;
		}
		/* message i+done cannot be delivered: dead-letter queue */
		struct chd_msg *bad = &tmp[i - base + done];
		enum chd_code_id reason = reason_of(rc);
		char what[400], why[300] = "";
		snprintf(what, sizeof(what), "%s", store_errmsg(s->st));
		if (x->dlq[0] == '\0' ||
		    chan_dlq_put(s->st, x->dlq, bad, reason, what, s->def.name, why, sizeof(why)) !=
		        STORE_OK) {
			char q[2 * CHAND_NAME_MAX + 8];
			snprintf(q, sizeof(q), "%s%s%s", bad->xmit_q, bad->xmit_qm[0] ? "@" : "",
			         bad->xmit_qm);
			free(tmp);
			store_rollback(s->st);
			x->txn = false;
			if (x->dlq[0] == '\0')
				chan_fail(s, CHD_CH_NO_DLQ, "channel %s: message for %s not delivered (%s: %s) "
				          "and no dead_letter_queue is configured: batch backed out, channel "
				          "stopped", s->def.name, q, code_str(reason), what);
			else
				chan_fail(s, CHD_CH_NO_DLQ, "channel %s: message for %s not delivered (%s: %s) "
				          "and dead-letter queue %s refused it (%s): batch backed out, channel "
				          "stopped", s->def.name, q, code_str(reason), what, x->dlq, why);
			chan_send_error(s, CHD_CH_NO_DLQ, s->text);
			return -1;
		}
		log_warn(code_str(CHD_CH_DLQ), "channel=%s dlq=%s reason=%s queue=%s qmgr=%s %s",
		         s->def.name, x->dlq, code_str(reason), bad->xmit_q, bad->xmit_qm, what);
		x->dlq_count++;
		i += done + 1;
	}
	free(tmp);
	x->put = upto;
	return 0;
}

static void batch_reset(struct receiver *x)
{
	x->n = 0;
	x->put = 0;
	x->alen = 0;
	x->dlq_count = 0;
	x->huge = false;
}

/* Takes one MSG of the open batch. */
static int add_msg(struct receiver *x, const struct frame_msg *fm, uint32_t *seq_exp)
{
	struct chan_sess *s = x->s;
	struct rmsg *r;

	if (fm->batch_id != x->r_batch + 1) {
		chan_fail(s, CHD_CH_PROTOCOL, "MSG of batch %llu, expected batch %llu",
		          (unsigned long long)fm->batch_id, (unsigned long long)(x->r_batch + 1));
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	if (x->n >= s->batchsz) {
		chan_fail(s, CHD_CH_PROTOCOL, "batch %llu has more than BATCHSZ %u messages",
		          (unsigned long long)fm->batch_id, s->batchsz);
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	if (fm->body_len > s->maxmsgl) {
		chan_fail(s, CHD_CH_PROTOCOL, "message of %zu bytes is longer than the negotiated "
		          "MAXMSGL %u", fm->body_len, s->maxmsgl);
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	if (fm->persistent) {
		uint32_t want = frame_seq_next(*seq_exp, s->seqwrap);
		if (fm->seq != want) {
			chan_fail(s, CHD_CH_SEQ, "sequence number mismatch: expected %u, received %u "
			          "(batch %llu)", want, fm->seq, (unsigned long long)fm->batch_id);
			chan_send_error(s, CHD_CH_SEQ, s->text);
			return -1;
		}
		*seq_exp = want;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		struct rmsg *v = realloc(x->v, cap * sizeof(*v));
		if (v == NULL)
			return chan_fail(s, CHD_CH_CLOSED, "out of memory");
		x->v = v;
		x->cap = cap;
	}
	r = &x->v[x->n];
	memset(r, 0, sizeof(*r));
	if (arena_add(x, fm->body, fm->body_len, false, &r->body_off) != 0)
		return -1;
	if (fm->props != NULL && fm->props_len > 0) {
		if (arena_add(x, fm->props, fm->props_len, true, &r->props_off) != 0)
			return -1;
		r->has_props = true;
	}
	memcpy(r->m.msgid, fm->msgid, MSG_ID_LEN);
	memcpy(r->m.correlid, fm->correlid, MSG_ID_LEN);
	r->m.priority = fm->priority;
	r->m.persistent = fm->persistent;
	r->m.put_time_ms = fm->put_time_ms;
	if (fm->expiry_remaining_ms > 0) {
		int64_t now = time_now_ms();
		r->m.expiry_ms = now > INT64_MAX - fm->expiry_remaining_ms
		                 ? INT64_MAX : now + fm->expiry_remaining_ms;
	}
	str_copy(r->m.format, fm->format, sizeof(r->m.format));
	str_copy(r->m.reply_q, fm->reply_q, sizeof(r->m.reply_q));
	str_copy(r->m.reply_qm, fm->reply_qm, sizeof(r->m.reply_qm));
	str_copy(r->m.xmit_qm, fm->xmit_qm, sizeof(r->m.xmit_qm));
	str_copy(r->m.xmit_q, fm->xmit_q, sizeof(r->m.xmit_q));
	r->m.body_len = fm->body_len;
	x->n++;
	/* a huge batch: put what came so far, free the arena for the rest;
	 * from now on the transaction stays open until END_BATCH */
	if (x->alen >= CHAN_ARENA_STREAM) {
		if (put_range(x, x->n) != 0)
			return -1;
		x->alen = 0;
		x->huge = true;
	}
	return 0;
}

/* A batch, from its first MSG to END_BATCH, commit and CONFIRM. */
static int batch(struct receiver *x, const struct frame *first)
{
	struct chan_sess *s = x->s;
	struct frame f = *first;
	uint32_t seq_exp = x->r_seq;
	bool has_p = false;
	int64_t t_reply = chan_t_reply_ms(s->hbint);

	batch_reset(x);
	chan_status_substate(s, "RECEIVING");
	for (;;) {
		int rd;
		if (f.h.type == FRAME_MSG) {
			has_p |= f.u.msg.persistent;
			if (add_msg(x, &f.u.msg, &seq_exp) != 0)
				goto fail;
		} else if (f.h.type == FRAME_END_BATCH) {
			break;
		} else {
			chan_unexpected(s, &f, "R_BATCH");
			goto fail;
		}
		/* Nothing more buffered: the rest of the batch (END_BATCH comes
		 * once the sender has recorded it in doubt, an fsync away) is
		 * not here yet.  Put what came meanwhile, but hold the write
		 * lock only CHAN_TXN_HOLD_MS: a peer that stalls mid-batch
		 * must not stall this queue manager's other writers. */
		if (!x->huge && x->put < x->n && !chan_frame_buffered(s)) {
			if (put_range(x, x->n) != 0)
				goto fail;
			x->txn_since = time_mono_ms();
		}
		int64_t deadline = time_mono_ms() + t_reply;
		for (;;) {
			int64_t now = time_mono_ms(), w = deadline - now;
			bool hold = x->txn && !x->huge;
			if (hold && x->txn_since + CHAN_TXN_HOLD_MS - now < w)
				w = x->txn_since + CHAN_TXN_HOLD_MS - now;
			rd = chan_read_frame(s, w > 0 ? w : 0, &f);
			if (rd == RD_TIMEOUT && hold && time_mono_ms() < deadline) {
				/* give the lock back; everything is put again at END_BATCH */
				store_rollback(s->st);
				x->txn = false;
				x->put = 0;
				x->dlq_count = 0;
				continue;
			}
			if (rd != RD_WOKEN)
				break;
			if (chan_stop_req(s) == STOP_FORCE) {
				chan_fail_forced(s);
				goto fail;
			}
		}
		if (rd == RD_TIMEOUT) {
			chan_fail(s, CHD_CH_HEARTBEAT, "peer not responding: batch %llu open and no frame "
			          "for %lld s", (unsigned long long)(x->r_batch + 1), (long long)t_reply / 1000);
			goto fail;
		}
		if (rd != RD_FRAME)
			goto fail;
	}
	if (f.u.batch.batch_id != x->r_batch + 1 || f.u.batch.count != x->n ||
	    f.u.batch.last_seq != seq_exp) {
		chan_fail(s, CHD_CH_PROTOCOL, "END_BATCH (batch %llu, %u messages, seq %u) does not "
		          "match what arrived (batch %llu, %zu messages, seq %u)",
		          (unsigned long long)f.u.batch.batch_id, f.u.batch.count, f.u.batch.last_seq,
		          (unsigned long long)(x->r_batch + 1), x->n, seq_exp);
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		goto fail;
	}
	struct frame_batch conf = f.u.batch;

	chan_status_substate(s, "COMMITTING");
	s->work_mono = time_mono_ms();
	if (put_range(x, x->n) != 0)
		goto fail;
	if (has_p) {
		struct chan_sync cs;
		memset(&cs, 0, sizeof(cs));
		str_copy(cs.name, s->def.name, sizeof(cs.name));
		cs.batch_id = conf.batch_id;
		cs.seq = conf.last_seq;
		cs.updated_ms = time_now_ms();
		if (store_sync_set(s->st, &cs) != STORE_OK) {
			db_fail(x, "recording the batch");
			goto fail;
		}
	}
	if (frame_encode_confirm(&s->out, &s->w, &conf, NULL) != FRAME_OK) {
		chan_fail(s, CHD_CH_PROTOCOL, "cannot encode CONFIRM");
		goto fail;
	}
	if (!has_p) {
		/* Nonpersistent only: CONFIRM goes first, so this commit (no
		 * fsync, but SQLite work) overlaps the sender's next batch.
		 * Their durability is not at stake: a restart of this agent
		 * discards them anyway.  A commit failing now loses them, like
		 * IBM MQ's fast nonpersistent messages (doc/CHANNELS.md). */
		if (chan_flush(s) != 0)
			goto fail; /* not confirmed: roll back, they are sent again */
		x->txn = false;
		if (store_commit(s->st) != STORE_OK) {
			chan_fail(s, CHD_DB_ERROR, "channel %s: %zu nonpersistent messages of batch %llu "
			          "lost: commit failed after CONFIRM: %s", s->def.name, x->n,
			          (unsigned long long)conf.batch_id, store_errmsg(s->st));
			chan_send_error(s, CHD_DB_ERROR, s->text);
			goto fail;
		}
	} else {
		x->txn = false;
		if (store_commit(s->st) != STORE_OK) {
			chan_fail(s, CHD_DB_ERROR, "channel %s: committing batch %llu: %s", s->def.name,
			          (unsigned long long)conf.batch_id, store_errmsg(s->st));
			chan_send_error(s, CHD_DB_ERROR, s->text);
			goto fail;
		}
		x->r_batch = conf.batch_id;
		x->r_seq = conf.last_seq;
		if (chan_flush(s) != 0)
			return -1;
	}

	int64_t now = time_now_ms();
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		struct chan_status *st = &s->rt->st;
		st->msgs += x->n;
		st->batches++;
		st->committed_seq = x->r_seq;
		st->current_seq = x->r_seq;
		st->last_msg_time_ms = now;
		st->bytes_sent = s->bytes_sent;
		st->bytes_received = s->bytes_received;
		str_copy(st->substate, "IDLE", sizeof(st->substate));
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	batch_reset(x);
	return 0;
fail:
	if (x->txn)
		store_rollback(s->st);
	x->txn = false;
	batch_reset(x);
	return -1;
}

static int resync(struct receiver *x)
{
	struct chan_sess *s = x->s;
	struct chan_sync cs;
	struct frame f;
	struct frame_resync_ack ack;
	char why[512];
	int rc, rd;

	chan_status_substate(s, "RESYNCHING");
	for (;;) {
		rd = chan_read_frame(s, chan_t_reply_ms(s->hbint), &f);
		if (rd != RD_WOKEN)
			break;
		enum chan_stop st = chan_stop_req(s);
		if (st != STOP_NONE) {
			chan_fail(s, CHD_CH_STOP, "channel ended: %s",
			          st == STOP_SHUTDOWN ? "queue manager ending" : "stopped by operator");
			chan_send_error(s, CHD_CH_STOP, s->text);
			return -1;
		}
	}
	if (rd == RD_TIMEOUT)
		return chan_fail(s, CHD_CH_HEARTBEAT, "no RESYNC within %lld s",
		                 (long long)chan_t_reply_ms(s->hbint) / 1000);
	if (rd != RD_FRAME)
		return -1;
	if (f.h.type != FRAME_RESYNC)
		return chan_unexpected(s, &f, "R_WAIT_RESYNC");
	if (chan_store(s) == NULL) {
		chan_send_error(s, s->code, s->text);
		return -1;
	}
	rc = store_sync_get(s->st, s->def.name, &cs);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
		chan_fail(s, CHD_DB_ERROR, "reading the sync record: %s", store_errmsg(s->st));
		chan_send_error(s, CHD_DB_ERROR, s->text);
		return -1;
	}
	if (rc == STORE_NOT_FOUND) {
		memset(&cs, 0, sizeof(cs));
		str_copy(cs.name, s->def.name, sizeof(cs.name));
	}
	if (!frame_resync_answer(&f.u.resync, cs.batch_id, (uint32_t)cs.seq, &ack, why, sizeof(why))) {
		chan_fail(s, CHD_CH_SEQ, "channel %s: %s", s->def.name, why);
		chan_send_error(s, CHD_CH_SEQ, s->text);
		return -1;
	}
	if (f.u.resync.reset) {
		cs.seq = f.u.resync.seq;
		cs.updated_ms = time_now_ms();
		if (store_sync_set(s->st, &cs) != STORE_OK) {
			chan_fail(s, CHD_DB_ERROR, "recording the reset sequence number: %s",
			          store_errmsg(s->st));
			chan_send_error(s, CHD_DB_ERROR, s->text);
			return -1;
		}
		log_info(code_str(CHD_CH_START), "channel=%s sequence number reset to %u by the sender",
		         s->def.name, f.u.resync.seq);
	}
	if (frame_encode_resync_ack(&s->out, &s->w, &ack, NULL) != FRAME_OK)
		return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode RESYNC_ACK");
	if (chan_flush(s) != 0)
		return -1;
	x->r_batch = ack.batch_id;
	x->r_seq = ack.seq;
	return 0;
}

int chan_run_receiver(struct chan_sess *s)
{
	struct receiver x;
	struct frame f;
	int rc = -1;

	memset(&x, 0, sizeof(x));
	x.s = s;
	if (chan_sup.host.dlq != NULL)
		str_copy(x.dlq, chan_sup.host.dlq, sizeof(x.dlq));
	if (resync(&x) != 0)
		goto out;

	chan_enter_running(s, x.r_seq);

	for (;;) {
		enum chan_stop stop = chan_stop_req(s);
		int64_t tmo;
		int rd;

		if (stop == STOP_FORCE) {
			chan_fail_forced(s);
			goto out;
		}
		if (stop != STOP_NONE && !s->stop_sent) {
			s->my_stop_reason = stop == STOP_SHUTDOWN ? FRAME_STOP_SHUTDOWN : FRAME_STOP_OPERATOR;
			if (frame_encode_stop(&s->out, &s->w, s->my_stop_reason, NULL) != FRAME_OK ||
			    chan_flush(s) != 0)
				goto out;
			s->stop_sent = true;
			chan_status_substate(s, "STOPPING");
		}
		tmo = s->stop_sent ? chan_t_reply_ms(s->hbint) : chan_t_dead_ms(s->hbint);
		/* T_dead counts from the last frame received */
		int64_t dead_at = tmo < 0 ? -1 : s->last_recv_mono + tmo, now = time_mono_ms(), w;
		w = dead_at < 0 ? -1 : dead_at - now;
		if (s->st != NULL) {
			int64_t rel = s->work_mono + CHAN_STORE_IDLE_MS - now;
			if (rel < 1)
				rel = 1;
			if (w < 0 || rel < w)
				w = rel;
		}
		chan_set_idle(s, true, false);
		rd = chan_read_frame(s, w < 0 && dead_at >= 0 ? 0 : w, &f);
		chan_set_idle(s, false, false);
		chan_store_idle(s);
		if (rd == RD_WOKEN)
			continue;
		if (rd == RD_TIMEOUT && (dead_at < 0 || time_mono_ms() < dead_at))
			continue;
		if (rd == RD_TIMEOUT) {
			if (s->stop_sent)
				chan_fail(s, CHD_CH_HEARTBEAT, "no STOP_ACK within %lld s", (long long)tmo / 1000);
			else
				chan_fail(s, CHD_CH_HEARTBEAT, "peer not responding: nothing from the sender for "
				          "%lld s (HBINT %u)", (long long)tmo / 1000, s->hbint);
			goto out;
		}
		if (rd != RD_FRAME)
			goto out;
		switch (f.h.type) {
		case FRAME_MSG:
			if (batch(&x, &f) != 0)
				goto out;
			break;
		case FRAME_HB:
			if (frame_encode_hb_ack(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
				goto out;
			pthread_mutex_lock(&chan_sup.mtx);
			if (s->rt != NULL) {
				s->rt->st.bytes_sent = s->bytes_sent;
				s->rt->st.bytes_received = s->bytes_received;
			}
			pthread_mutex_unlock(&chan_sup.mtx);
			break;
		case FRAME_STOP:
			s->peer_stop = true;
			s->peer_stop_reason = f.u.stop.reason;
			if (frame_encode_stop_ack(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
				goto out;
			if (s->stop_sent && !s->stop_acked)
				break;
			s->end = s->stop_sent ? (s->my_stop_reason == FRAME_STOP_SHUTDOWN ? END_SHUTDOWN
			                                                                  : END_STOPPED)
			         : s->peer_stop_reason == FRAME_STOP_DISCINT ? END_DISCINT : END_PEER_STOP;
			rc = 0;
			goto out;
		case FRAME_STOP_ACK:
			if (!s->stop_sent) {
				chan_unexpected(s, &f, "R_IDLE");
				goto out;
			}
			s->stop_acked = true;
			s->end = s->my_stop_reason == FRAME_STOP_SHUTDOWN ? END_SHUTDOWN : END_STOPPED;
			rc = 0;
			goto out;
		default:
			chan_unexpected(s, &f, "R_IDLE");
			goto out;
		}
	}
out:
	if (x.txn)
		store_rollback(s->st);
	free(x.v);
	free(x.arena);
	return rc;
}
