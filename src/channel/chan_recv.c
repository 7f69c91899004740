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
 * manager.  The messages beyond CHAN_ARENA_STREAM bytes of a group are
 * spilled to an unlinked file in data_dir (offsets kept in memory) and put
 * from there at END_BATCH, one at a time: memory stays bounded and the
 * transaction is never open while this end waits on the network. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_int.h"
#include "chand/log.h"

struct rmsg {
	struct chd_msg m;
	size_t body_off, props_off;   /* in the arena, or in the spill file */
	size_t props_len;             /* spilled: with its NUL */
	bool has_props;
	bool spilled;
};

struct conf {
	struct frame_batch b;     /* END_BATCH values, CONFIRMed after the commit */
	bool has_p;
};

struct receiver {
	struct chan_sess *s;
	uint64_t r_batch;         /* last committed */
	uint32_t r_seq;
	uint64_t rx_batch;        /* last received whole (END_BATCH checked) */
	uint32_t rx_seq;
	/* the open group: batches received whole, not committed yet (protocol
	 * version 2 commits batches that arrived together in one
	 * transaction), then the open batch */
	struct conf conf[CHAN_GROUP_MAX];
	size_t nconf;
	size_t bstart;            /* first message of the open batch */
	struct rmsg *v;
	size_t n, cap;
	size_t put;               /* messages of the batch already put (streaming) */
	uint8_t *arena;
	size_t alen, acap;
	bool txn;                 /* a store transaction is open */
	int64_t txn_since;        /* mono ms it was opened (early puts) */
	bool huge;                /* the group outgrew the arena: it spills */
	int spill_fd;             /* unlinked file for what does not fit (-1: none yet) */
	off_t spill_len;          /* bytes of the group in it */
	uint8_t *sbuf;            /* one spilled message read back */
	size_t scap;
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

/* The directory of the spill file: the agent's data_dir, else $TMPDIR,
 * else /tmp. */
static const char *spill_dir(void)
{
	const char *d = chan_sup.host.spill_dir;

	if (d == NULL || d[0] == '\0')
		d = getenv("TMPDIR");
	return d != NULL && d[0] != '\0' ? d : "/tmp";
}

/* A spill failure: nothing of the group is committed, the sender is told
 * (ERROR) and keeps the batch in doubt, to send it again. */
static int spill_fail(struct receiver *x, int e, const char *what)
{
	struct chan_sess *s = x->s;
	bool full = e == ENOSPC || e == EDQUOT;

	chan_fail(s, full ? CHD_DISK_FULL : CHD_DB_ERROR, "channel %s: batch %llu is larger than "
	          "%u MiB and %s the spill file in %s failed: %s: batch not committed, the sender "
	          "sends it again", s->def.name, (unsigned long long)(x->rx_batch + 1),
	          CHAN_ARENA_STREAM >> 20, what, spill_dir(), strerror(e));
	chan_send_error(s, s->code, s->text);
	return -1;
}

/* Appends n bytes to the spill file (opened on first use). */
static int spill_write(struct receiver *x, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (x->spill_fd < 0) {
		const char *dir = spill_dir();
		int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0 && errno != ENOSPC && errno != EDQUOT && errno != EACCES) {
			/* no O_TMPFILE on that file system: a named file, unlinked at once */
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/.chand-spill-XXXXXX", dir);
			if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
				(void)unlink(path);
		}
		if (fd < 0)
			return spill_fail(x, errno, "creating");
		x->spill_fd = fd;
		log_debug("channel=%s batch %llu beyond %u MiB: the rest goes to a spill file in %s",
		          x->s->def.name, (unsigned long long)(x->rx_batch + 1),
		          CHAN_ARENA_STREAM >> 20, dir);
	}
	while (n > 0) {
		ssize_t w = pwrite(x->spill_fd, b, n, x->spill_len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return spill_fail(x, w < 0 ? errno : ENOSPC, "writing to");
		b += w;
		n -= (size_t)w;
		x->spill_len += w;
	}
	return 0;
}

/* Reads spilled message r back into sbuf and points r->m at it. */
static int spill_load(struct receiver *x, struct rmsg *r)
{
	size_t need = r->m.body_len + r->props_len, got = 0;

	if (need > x->scap || x->sbuf == NULL) {
		uint8_t *b = realloc(x->sbuf, need ? need : 1);
		if (b == NULL)
			return spill_fail(x, ENOMEM, "reading back");
		x->sbuf = b;
		x->scap = need ? need : 1;
	}
	while (got < need) {
		ssize_t n = pread(x->spill_fd, x->sbuf + got, need - got, (off_t)(r->body_off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return spill_fail(x, n < 0 ? errno : EIO, "reading back");
		got += (size_t)n;
	}
	r->m.body = x->sbuf;
	r->m.props = r->has_props ? (char *)x->sbuf + r->m.body_len : NULL;
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

/* Puts the cnt messages of tmp into the open transaction: runs of one
 * destination in one store_put, the undeliverable ones to the DLQ.  0,
 * or -1 (the transaction is rolled back). */
static int put_msgs(struct receiver *x, struct chd_msg *tmp, size_t cnt)
{
	struct chan_sess *s = x->s;
	size_t i = 0;

	while (i < cnt) {
		size_t j = i + 1, done = 0;
		const struct chd_msg *a = &tmp[i];
		int rc;

		while (j < cnt && strcmp(tmp[j].xmit_q, a->xmit_q) == 0 &&
		       strcmp(tmp[j].xmit_qm, a->xmit_qm) == 0)
			j++;
		rc = store_put(s->st, a->xmit_q, a->xmit_qm, &tmp[i], j - i, &done);
		if (rc == STORE_OK) {
			i = j;
			continue;
		}
		if (rc == STORE_ERR || rc == STORE_DISK_FULL) {
			x->txn = false; /* store_put rolled the transaction back */
			store_rollback(s->st);
			chan_fail(s, rc == STORE_DISK_FULL ? CHD_DISK_FULL : CHD_DB_ERROR,
			          "channel %s: putting batch %llu: %s", s->def.name,
			          (unsigned long long)(x->r_batch + 1), store_errmsg(s->st));
			chan_send_error(s, s->code, s->text);
			return -1;
		}
		/* message i+done cannot be delivered: dead-letter queue */
		struct chd_msg *bad = &tmp[i + done];
		enum chd_code_id reason = reason_of(rc);
		char what[400], why[300] = "";
		snprintf(what, sizeof(what), "%s", store_errmsg(s->st));
		if (x->dlq[0] == '\0' ||
		    chan_dlq_put(s->st, x->dlq, bad, reason, what, s->def.name, why, sizeof(why)) !=
		        STORE_OK) {
			char q[2 * CHAND_NAME_MAX + 8];
			snprintf(q, sizeof(q), "%s%s%s", bad->xmit_q, bad->xmit_qm[0] ? "@" : "",
			         bad->xmit_qm);
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
	return 0;
}

/* Puts messages [x->put, upto) of the group into the open transaction
 * (begun here if needed): the arena's in runs, the spilled ones read back
 * one at a time (local disk only: memory stays at one message).  early:
 * before END_BATCH, to overlap the sender's fsync; then only if nobody
 * else is writing to the database at this moment, since the write lock
 * stays held until END_BATCH arrives and the other channels' commits
 * would queue behind the network (with ten channels on one database, the
 * receivers spent most of their time waiting for that lock).  0 (also
 * when an early put found the lock taken: nothing put yet), or -1 (the
 * caller's transaction is rolled back). */
static int put_range(struct receiver *x, size_t upto, bool early)
{
	struct chan_sess *s = x->s;

	if (upto <= x->put)
		return 0;
	if (chan_store(s) == NULL)
		return -1;
	if (!x->txn) {
		int rc = early ? store_begin_try(s->st) : store_begin(s->st);
		if (rc == STORE_IN_USE && early)
			return 0;
		if (rc != STORE_OK)
			return db_fail(x, "starting a batch");
		x->txn = true;
	}
	while (x->put < upto) {
		size_t i = x->put, e = i;
		struct chd_msg *tmp;

		if (x->v[i].spilled) {
			if (spill_load(x, &x->v[i]) != 0 || put_msgs(x, &x->v[i].m, 1) != 0)
				return -1;
			x->put = i + 1;
			continue;
		}
		while (e < upto && !x->v[e].spilled)
			e++;
		/* store_put wants an array of struct chd_msg */
		if ((tmp = malloc((e - i) * sizeof(*tmp))) == NULL)
			return db_fail(x, "out of memory");
		for (size_t k = i; k < e; k++) {
			struct rmsg *r = &x->v[k];
			r->m.body = x->arena + r->body_off;
			r->m.props = r->has_props ? (char *)x->arena + r->props_off : NULL;
			tmp[k - i] = r->m;
		}
		int rc = put_msgs(x, tmp, e - i);
		free(tmp);
		if (rc != 0)
			return -1;
		x->put = e;
	}
	return 0;
}

static void batch_reset(struct receiver *x)
{
	x->nconf = 0;
	x->bstart = 0;
	x->n = 0;
	x->put = 0;
	x->alen = 0;
	x->dlq_count = 0;
	x->huge = false;
	if (x->spill_len > 0) {
		/* give the disk space back now; the file is reused */
		if (ftruncate(x->spill_fd, 0) != 0)
			log_debug("channel=%s truncating the spill file: %s", x->s->def.name,
			          strerror(errno));
		x->spill_len = 0;
	}
	if (x->scap > CHAN_RBUF_SIZE) {
		free(x->sbuf);
		x->sbuf = NULL;
		x->scap = 0;
	}
}

/* Takes one MSG of the open batch. */
static int add_msg(struct receiver *x, const struct frame_msg *fm, uint32_t *seq_exp)
{
	struct chan_sess *s = x->s;
	struct rmsg *r;

	if (fm->batch_id != x->rx_batch + 1) {
		chan_fail(s, CHD_CH_PROTOCOL, "MSG of batch %llu, expected batch %llu",
		          (unsigned long long)fm->batch_id, (unsigned long long)(x->rx_batch + 1));
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	if (x->n - x->bstart >= s->batchsz) {
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
	r->has_props = fm->props != NULL && fm->props_len > 0;
	size_t size = fm->body_len + (r->has_props ? fm->props_len + 1 : 0);
	/* Beyond CHAN_ARENA_STREAM bytes the group spills to disk (one message
	 * larger than that alone still comes in memory: it is in the read
	 * buffer anyway).  Early puts are rolled back: from now on the
	 * transaction waits for END_BATCH, and it must not hold the write
	 * lock while this end waits on the network. */
	if (!x->huge && x->alen > 0 && x->alen + size > CHAN_ARENA_STREAM) {
		x->huge = true;
		if (x->txn) {
			store_rollback(s->st);
			x->txn = false;
			x->put = 0;
			x->dlq_count = 0;
		}
	}
	if (x->huge) {
		static const uint8_t nul;
		r->spilled = true;
		r->body_off = (size_t)x->spill_len;
		if (spill_write(x, fm->body, fm->body_len) != 0)
			return -1;
		if (r->has_props) {
			r->props_len = fm->props_len + 1;
			if (spill_write(x, fm->props, fm->props_len) != 0 || spill_write(x, &nul, 1) != 0)
				return -1;
		}
	} else {
		if (arena_add(x, fm->body, fm->body_len, false, &r->body_off) != 0)
			return -1;
		if (r->has_props && arena_add(x, fm->props, fm->props_len, true, &r->props_off) != 0)
			return -1;
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
	return 0;
}

/* Commits the group (one transaction, one fsync) and CONFIRMs each of
 * its batches. */
static int commit_group(struct receiver *x)
{
	struct chan_sess *s = x->s;
	const struct conf *lastp = NULL;
	size_t nmsgs = x->n;

	chan_status_substate(s, "COMMITTING");
	s->work_mono = time_mono_ms();
	if (put_range(x, x->n, false) != 0)
		return -1;
	for (size_t i = 0; i < x->nconf; i++)
		if (x->conf[i].has_p)
			lastp = &x->conf[i];
	if (lastp != NULL) {
		struct chan_sync cs;
		memset(&cs, 0, sizeof(cs));
		str_copy(cs.name, s->def.name, sizeof(cs.name));
		cs.batch_id = lastp->b.batch_id;
		cs.seq = lastp->b.last_seq;
		cs.updated_ms = time_now_ms();
		if (store_sync_set(s->st, &cs) != STORE_OK)
			return db_fail(x, "recording the batch");
	}
	for (size_t i = 0; i < x->nconf; i++)
		if (frame_encode_confirm(&s->out, &s->w, &x->conf[i].b, NULL) != FRAME_OK)
			return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode CONFIRM");
	if (lastp == NULL) {
		/* Nonpersistent only: CONFIRM goes first, so this commit (no
		 * fsync, but SQLite work) overlaps the sender's next batch.
		 * Their durability is not at stake: a restart of this agent
		 * discards them anyway.  A commit failing now loses them, like
		 * IBM MQ's fast nonpersistent messages (doc/CHANNELS.md). */
		if (chan_flush(s) != 0)
			return -1; /* not confirmed: roll back, they are sent again */
		x->txn = false;
		if (store_commit(s->st) != STORE_OK) {
			chan_fail(s, CHD_DB_ERROR, "channel %s: %zu nonpersistent messages of batch %llu "
			          "lost: commit failed after CONFIRM: %s", s->def.name, x->n,
			          (unsigned long long)x->conf[x->nconf - 1].b.batch_id,
			          store_errmsg(s->st));
			chan_send_error(s, CHD_DB_ERROR, s->text);
			return -1;
		}
	} else {
		x->txn = false;
		if (store_commit(s->st) != STORE_OK) {
			chan_fail(s, CHD_DB_ERROR, "channel %s: committing batch %llu: %s", s->def.name,
			          (unsigned long long)x->conf[x->nconf - 1].b.batch_id,
			          store_errmsg(s->st));
			chan_send_error(s, CHD_DB_ERROR, s->text);
			return -1;
		}
		x->r_batch = lastp->b.batch_id;
		x->r_seq = lastp->b.last_seq;
		if (chan_flush(s) != 0)
			return -1;
	}

	int64_t now = time_now_ms();
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		struct chan_status *st = &s->rt->st;
		st->msgs += nmsgs;
		st->batches += x->nconf;
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
}

/* Batches, from the first MSG to END_BATCH, then (version 2) the next
 * ones as long as each is already here whole; then commit and CONFIRM. */
static int batch(struct receiver *x, const struct frame *first)
{
	struct chan_sess *s = x->s;
	struct frame f = *first;
	uint32_t seq_exp = x->rx_seq;
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
			size_t count = x->n - x->bstart;
			if (f.u.batch.batch_id != x->rx_batch + 1 || f.u.batch.count != count ||
			    f.u.batch.last_seq != seq_exp) {
				chan_fail(s, CHD_CH_PROTOCOL, "END_BATCH (batch %llu, %u messages, seq %u) does "
				          "not match what arrived (batch %llu, %zu messages, seq %u)",
				          (unsigned long long)f.u.batch.batch_id, f.u.batch.count,
				          f.u.batch.last_seq, (unsigned long long)(x->rx_batch + 1), count,
				          seq_exp);
				chan_send_error(s, CHD_CH_PROTOCOL, s->text);
				goto fail;
			}
			x->conf[x->nconf].b = f.u.batch;
			x->conf[x->nconf++].has_p = has_p;
			if (has_p) {
				x->rx_batch = f.u.batch.batch_id;
				x->rx_seq = f.u.batch.last_seq;
			}
			/* the next batch joins this commit if it is all here, or if
			 * it has begun and its END_BATCH comes within
			 * CHAN_GROUP_WAIT_MS: that END follows the sender's fsync,
			 * about as long as the commit it saves (the write lock is
			 * held that long at most) */
			if (s->w.version < 2 || x->nconf >= CHAN_GROUP_MAX || x->huge ||
			    x->alen >= CHAN_ARENA_STREAM / 2)
				break;
			if (!chan_batch_wait(s, 0) &&
			    (s->rend == s->rstart || !chan_batch_wait(s, CHAN_GROUP_WAIT_MS)))
				break;
			x->bstart = x->n;
			has_p = false;
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
			if (put_range(x, x->n, true) != 0)
				goto fail;
			if (x->txn)
				x->txn_since = time_mono_ms();
		}
		int64_t deadline = time_mono_ms() + t_reply;
		for (;;) {
			int64_t now = time_mono_ms(), w = deadline - now;
			bool hold = x->txn; /* early puts only: a spilling group has none */
			if (hold && x->txn_since + CHAN_TXN_HOLD_MS - now < w)
				w = x->txn_since + CHAN_TXN_HOLD_MS - now;
			rd = chan_await(s, w > 0 ? w : 0, WAKE_FORCE_ENDS, NULL, &f);
			if (rd == RD_TIMEOUT && hold && time_mono_ms() < deadline) {
				/* give the lock back; everything is put again at END_BATCH */
				store_rollback(s->st);
				x->txn = false;
				x->put = 0;
				x->dlq_count = 0;
				continue;
			}
			break;
		}
		if (rd == RD_TIMEOUT) {
			chan_fail(s, CHD_CH_HEARTBEAT, "peer not responding: batch %llu open and no frame "
			          "for %lld s", (unsigned long long)(x->rx_batch + 1),
			          (long long)t_reply / 1000);
			goto fail;
		}
		if (rd != RD_FRAME)
			goto fail;
	}
	if (commit_group(x) == 0)
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
	int rc;

	chan_status_substate(s, "RESYNCHING");
	if (chan_await(s, chan_t_reply_ms(s->hbint), WAKE_STOP_ENDS, "RESYNC", &f) != RD_FRAME)
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
	x->r_batch = x->rx_batch = ack.batch_id;
	x->r_seq = x->rx_seq = ack.seq;
	return 0;
}

int chan_run_receiver(struct chan_sess *s)
{
	struct receiver x;
	struct frame f;
	int rc = -1;

	memset(&x, 0, sizeof(x));
	x.s = s;
	x.spill_fd = -1;
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
		rd = chan_await(s, w < 0 && dead_at >= 0 ? 0 : w, WAKE_RETURNS, NULL, &f);
		chan_set_idle(s, false, false);
		chan_store_idle(s);
		if (rd == RD_WOKEN)
			continue; /* a stop: looked at above */
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
	free(x.sbuf);
	if (x.spill_fd >= 0)
		close(x.spill_fd);
	return rc;
}
