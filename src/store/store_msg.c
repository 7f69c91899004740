/* Messages: put, browse, lock/confirm, and the expiry sweep done on the way.
 *
 * Persistent messages go to main.messages, nonpersistent ones to memory
 * (store_np.c); both take seq from one process-wide counter and are
 * ordered by pos = (9 - priority) << 55 | seq, so reads merge the table
 * (through its (qid) index, whose rowid suffix is pos) with the in-memory
 * bands in (priority DESC, seq ASC) order.  Deletes go by seq (unique
 * index). */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct mref {
	int64_t seq, pos;
	bool np;
	struct chd_msg *copy; /* nonpersistent: copied when claimed */
};

struct mrefs {
	struct mref *v;
	size_t n, cap;
};

static int mrefs_add(struct store *st, struct mrefs *l, int64_t pos, bool np)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct mref *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return store_fail(st, STORE_ERR, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].pos = pos;
	l->v[l->n].seq = pos & STORE_SEQ_MAX;
	l->v[l->n].np = np;
	l->v[l->n].copy = NULL;
	l->n++;
	return STORE_OK;
}

static int check_queue(struct store *st, const char *queue)
{
	char why[160];

	if (queue == NULL || !name_valid(queue, why, sizeof(why)))
		return store_fail(st, STORE_BAD_NAME, "queue: %s", queue ? why : "name is missing");
	return STORE_OK;
}

/* ---- put ---- */

static int bind_text_opt(sqlite3_stmt *s, int i, const char *t)
{
	return t != NULL && t[0] != '\0' ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC)
	                                 : sqlite3_bind_null(s, i);
}

static int insert_msg(struct store *st, int64_t qid, const struct chd_msg *m)
{
	sqlite3_stmt *s;
	int rc;

	if (!m->persistent)
		return store_np_put(st, qid, m);
	if ((rc = store_stmt_get(st, SQ_M_INSERT, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, m->seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, qid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 3, m->priority)) != SQLITE_OK ||
	    (rc = sqlite3_bind_blob(s, 4, m->msgid, MSG_ID_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = msg_id_is_zero(m->correlid) ? sqlite3_bind_null(s, 5)
	          : sqlite3_bind_blob(s, 5, m->correlid, MSG_ID_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 6, m->put_time_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 7, m->expiry_ms)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 8, m->format)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 9, m->reply_q)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 10, m->reply_qm)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 11, m->props)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 12, m->xmit_qm)) != SQLITE_OK ||
	    (rc = bind_text_opt(s, 13, m->xmit_q)) != SQLITE_OK ||
	    (rc = m->body_len == 0 ? sqlite3_bind_zeroblob(s, 14, 0)
	          : sqlite3_bind_blob64(s, 14, m->body, m->body_len, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 15, store_pos(m->priority, m->seq))) != SQLITE_OK) {
		sqlite3_reset(s);
		return store_sqlfail(st, rc, "putting a message");
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "putting a message");
}

/* Persistent depth; the nonpersistent one is kept in memory. */
static int depth_add(struct store *st, int64_t qid, int64_t delta)
{
	sqlite3_stmt *s;
	int rc;

	if (delta == 0)
		return STORE_OK;
	if ((rc = store_stmt_get(st, SQ_Q_DEPTH_ADD, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, delta)) != SQLITE_OK) {
		sqlite3_reset(s);
		return store_sqlfail(st, rc, "updating a queue depth");
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "updating a queue depth");
}

/* Checks one message against the target queue; STORE_OK or why not. */
static int put_check(struct store *st, const struct store_qrow *q, const struct chd_msg *m,
                     long depth, bool header_from_resolve)
{
	const struct queue_def *d = &q->def;

	if (!d->put_enabled)
		return store_fail(st, STORE_PUT_INHIBITED, "queue '%s' is PUT(DISABLED)", d->name);
	if (m->priority < 0 || m->priority > MSG_PRIORITY_MAX)
		return store_fail(st, STORE_BAD_ARG, "priority %d is out of range (0-%d)",
		                  m->priority, MSG_PRIORITY_MAX);
	if (m->body_len > 0 && m->body == NULL)
		return store_fail(st, STORE_BAD_ARG, "message has a length but no body");
	if (!store_fixed_ok(m->format, sizeof(m->format)) ||
	    !store_fixed_ok(m->reply_q, sizeof(m->reply_q)) ||
	    !store_fixed_ok(m->reply_qm, sizeof(m->reply_qm)) ||
	    !store_fixed_ok(m->xmit_qm, sizeof(m->xmit_qm)) ||
	    !store_fixed_ok(m->xmit_q, sizeof(m->xmit_q)))
		return store_fail(st, STORE_BAD_ARG, "message descriptor has an unterminated field");
	if (m->body_len > (size_t)d->maxmsgl)
		return store_fail(st, STORE_TOO_LONG, "message of %zu bytes is longer than MAXMSGL"
		                  " %ld of queue '%s'", m->body_len, d->maxmsgl, d->name);
	if (st->max_msg_length > 0 && m->body_len > (size_t)st->max_msg_length)
		return store_fail(st, STORE_TOO_LONG, "message of %zu bytes is longer than the queue"
		                  " manager's max_msg_length %ld", m->body_len, st->max_msg_length);
	if (depth >= d->maxdepth)
		return store_fail(st, STORE_FULL, "queue '%s' is full (MAXDEPTH %ld)", d->name,
		                  d->maxdepth);
	if (d->usage == QUSAGE_XMITQ && !header_from_resolve &&
	    (m->xmit_qm[0] == '\0' || m->xmit_q[0] == '\0'))
		return store_fail(st, STORE_WRONG_TYPE, "'%s' is a transmission queue: put to a remote"
		                  " queue definition or name the queue manager instead", d->name);
	return STORE_OK;
}

int store_put(struct store *st, const char *queue, const char *qmgr,
              struct chd_msg *msgs, size_t n, size_t *done)
{
	char lq[CHAND_NAME_MAX + 1], xqm[CHAND_NAME_MAX + 1], xq[CHAND_NAME_MAX + 1];
	struct store_qrow q;
	size_t ndone = 0, dummy;
	int64_t p_put = 0;
	unsigned prios = 0; /* priorities put (claim hints) */
	bool own;
	int rc, erc;

	if (done == NULL)
		done = &dummy;
	*done = 0;
	if (msgs == NULL && n > 0)
		return store_fail(st, STORE_BAD_ARG, "no messages given");
	if ((rc = check_queue(st, queue)) != STORE_OK)
		return rc;
	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	/* resolved inside the transaction: the definitions cannot change
	 * between the checks and the inserts */
	if ((rc = store_resolve(st, queue, qmgr, lq, xqm, xq)) != STORE_OK ||
	    (rc = store_qrow_get(st, lq, &q)) != STORE_OK)
		goto end;
	for (; ndone < n; ndone++) {
		struct chd_msg *m = &msgs[ndone];

		if ((rc = put_check(st, &q, m, q.def.curdepth, xqm[0] != '\0')) != STORE_OK)
			break;
		if (xqm[0] != '\0') {
			str_copy(m->xmit_qm, xqm, sizeof(m->xmit_qm));
			str_copy(m->xmit_q, xq, sizeof(m->xmit_q));
		} else if (q.def.usage == QUSAGE_NORMAL) {
			/* the header only means something on a transmission queue */
			m->xmit_qm[0] = m->xmit_q[0] = '\0';
		}
		if (msg_id_is_zero(m->msgid))
			msg_new_id(m->msgid);
		if (m->put_time_ms == 0)
			m->put_time_ms = time_now_ms();
		/* allocated under the write mutex, so seq order is commit order */
		m->seq = store_seq_next();
		if (m->seq > STORE_SEQ_MAX) {
			rc = store_fail(st, STORE_ERR, "message sequence numbers are exhausted");
			break;
		}
		if ((rc = insert_msg(st, q.qid, m)) != STORE_OK)
			break;
		prios |= 1u << (m->priority <= MSG_PRIORITY_MAX ? m->priority : MSG_PRIORITY_MAX);
		q.def.curdepth++;
		if (m->persistent)
			p_put++;
	}
	if (!st->sqlerr && ndone > 0) {
		int drc;
		if ((drc = depth_add(st, q.qid, p_put)) != STORE_OK)
			rc = drc;
	}
end:
	if (st->sqlerr) {
		/* the whole call is undone: report nothing put */
		store_wend(st, own, false);
		return rc;
	}
	erc = store_wend(st, own, ndone > 0);
	if (erc != STORE_OK)
		return erc;
	*done = ndone;
	if (ndone > 0) {
		if (own) {
			store_lk_put_seen(prios);
			store_notify();
		} else {
			st->put_prios |= prios;
		}
	}
	return rc;
}

/* ---- reading ---- */

static void col_blob_copy(sqlite3_stmt *s, int col, uint8_t *dst, size_t len)
{
	const void *b = sqlite3_column_blob(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);

	memset(dst, 0, len);
	if (b != NULL)
		memcpy(dst, b, n < len ? n : len);
}

static void col_text_copy(sqlite3_stmt *s, int col, char *dst, size_t len)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	str_copy(dst, t ? t : "", len);
}

/* The ROW_COLS of the row s is on, from column b, into m: 0, or -1 (out
 * of memory; m cleared). */
static int row_read(sqlite3_stmt *s, int b, struct chd_msg *m)
{
	const char *props = (const char *)sqlite3_column_text(s, b + 8);
	const void *body = sqlite3_column_blob(s, b + 11);
	size_t blen = (size_t)sqlite3_column_bytes(s, b + 11);

	memset(m, 0, sizeof(*m));
	m->seq = sqlite3_column_int64(s, b + 12);
	m->persistent = true;
	m->priority = sqlite3_column_int(s, b);
	col_blob_copy(s, b + 1, m->msgid, sizeof(m->msgid));
	col_blob_copy(s, b + 2, m->correlid, sizeof(m->correlid));
	m->put_time_ms = sqlite3_column_int64(s, b + 3);
	m->expiry_ms = sqlite3_column_int64(s, b + 4);
	col_text_copy(s, b + 5, m->format, sizeof(m->format));
	col_text_copy(s, b + 6, m->reply_q, sizeof(m->reply_q));
	col_text_copy(s, b + 7, m->reply_qm, sizeof(m->reply_qm));
	col_text_copy(s, b + 9, m->xmit_qm, sizeof(m->xmit_qm));
	col_text_copy(s, b + 10, m->xmit_q, sizeof(m->xmit_q));
	if ((props != NULL && (m->props = strdup(props)) == NULL) ||
	    (m->body = malloc(blen ? blen : 1)) == NULL) {
		msg_clear(m);
		return -1;
	}
	if (blen)
		memcpy(m->body, body, blen);
	m->body_len = blen;
	return 0;
}

/* *found: the persistent message at pos is still there (rows never change
 * once put, so a copy read earlier stands if its row does). */
static int row_exists(struct store *st, int64_t pos, bool *found)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_M_EXISTS, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, pos)) != SQLITE_OK)
		return store_sqlfail(st, rc, "reading a message");
	rc = sqlite3_step(s);
	*found = rc == SQLITE_ROW;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK
	                                             : store_sqlfail(st, rc, "reading a message");
}

static bool expired(const struct chd_msg *m, int64_t now)
{
	return m->expiry_ms != 0 && m->expiry_ms < now;
}

struct qdelta {
	int64_t qid;
	int64_t n[2]; /* persistent, nonpersistent */
};

/* Deletes one persistent message by seq; *gone if it was there, *qid its
 * queue (from the lock table when it knows, else RETURNING). */
static int del_persistent(struct store *st, int64_t seq, const char *what, int64_t *qid,
                          bool *gone)
{
	sqlite3_stmt *s;
	bool known = store_lk_qid(seq, st->sh, qid);
	int rc;

	*gone = false;
	if ((rc = store_stmt_get(st, known ? SQ_M_DEL : SQ_M_DEL_RET, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, seq)) != SQLITE_OK)
		return store_sqlfail(st, rc, what);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*qid = sqlite3_column_int64(s, 0);
		*gone = true;
		rc = sqlite3_step(s);
	} else if (rc == SQLITE_DONE && known) {
		*gone = sqlite3_changes(st->db) > 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, what);
}

/* Deletes messages by seq in one transaction (the caller's if open) and
 * adjusts depths.  Their locks are dropped after the commit, never before:
 * a getter that claimed one in between could still see the row. */
static int delete_refs(struct store *st, const struct mref *r, size_t n, bool drop_always,
                       const char *what)
{
	struct qdelta *d = NULL;
	size_t nd = 0;
	bool own;
	int rc, erc;

	if (n == 0)
		return STORE_OK;
	if ((d = calloc(n, sizeof(*d))) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		free(d);
		return rc;
	}
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		int64_t qid = 0;
		bool gone = false;
		size_t k;

		/* nonpersistent: logged, applied at commit under the write mutex */
		rc = r[i].np ? store_np_del(st, r[i].seq, &qid, &gone)
		             : del_persistent(st, r[i].seq, what, &qid, &gone);
		if (rc != STORE_OK)
			break;
		if (!gone) /* purged meanwhile, or confirmed twice */
			continue;
		for (k = 0; k < nd && d[k].qid != qid; k++)
			;
		if (k == nd)
			d[nd++].qid = qid;
		d[k].n[r[i].np]++;
	}
	/* the nonpersistent depth follows the in-memory messages */
	for (size_t k = 0; k < nd && rc == STORE_OK; k++)
		rc = depth_add(st, d[k].qid, -d[k].n[0]);
	free(d);
	erc = store_wend(st, own, rc == STORE_OK);
	if (rc != STORE_OK)
		return rc;
	if (erc != STORE_OK)
		return erc;
	for (size_t i = 0; i < n; i++) {
		if (own)
			store_lk_drop_gone(r[i].seq); /* deleted, or was not there */
		else if ((rc = store_pend_add(st, r[i].seq, drop_always)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

/* Getting and browsing need a local queue with GET enabled. */
static int get_queue(struct store *st, const char *queue, struct store_qrow *q)
{
	int rc;

	if ((rc = check_queue(st, queue)) != STORE_OK ||
	    (rc = store_qrow_get(st, queue, q)) != STORE_OK)
		return rc;
	if (q->def.type != QTYPE_LOCAL)
		return store_fail(st, STORE_WRONG_TYPE, "'%s' is a remote queue definition: get from a"
		                  " local queue", queue);
	if (!q->def.get_enabled)
		return store_fail(st, STORE_GET_INHIBITED, "queue '%s' is GET(DISABLED)", queue);
	return STORE_OK;
}

static int order_bind(struct store *st, int64_t qid, sqlite3_stmt **s)
{
	int rc;

	if ((rc = store_stmt_get(st, SQ_M_ORDER, s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(*s, 1, qid)) != SQLITE_OK)
		return store_sqlfail(st, rc, "reading a queue");
	return STORE_OK;
}

/* A read transaction, unless the caller's (write) transaction is open. */
static int read_begin(struct store *st, bool *own)
{
	int rc;

	*own = false;
	if (st->txn != TXN_NONE)
		return STORE_OK;
	if ((rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		return store_sqlfail(st, rc, "starting a read transaction");
	*own = true;
	return STORE_OK;
}

static void read_end(struct store *st, bool own)
{
	if (own && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK &&
	    !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A list we grew but return empty is freed: callers need not free a list
 * after STORE_NO_MSG. */
static void empty_free(struct msg_list *l)
{
	if (l->n == 0)
		msg_list_free(l);
}

static void unclaim(struct mrefs *l, size_t from)
{
	for (size_t i = from; i < l->n; i++) {
		store_lk_drop(l->v[i].seq);
		if (l->v[i].copy != NULL) {
			msg_clear(l->v[i].copy);
			free(l->v[i].copy);
			l->v[i].copy = NULL;
		}
	}
}

static int64_t np_pos(const struct store_npm *x)
{
	const struct chd_msg *m = store_np_msg(x);

	return store_pos(m->priority, m->seq);
}

/* An expired nonpersistent message nobody holds is removed at once (under
 * the nonpersistent mutex, which the caller holds). */
static void np_expire(struct store *st, struct store_npm *x, int64_t qid)
{
	int64_t seq = store_np_msg(x)->seq;

	if (store_lk_claim(seq, UINT64_MAX, st->sh, qid)) {
		if (store_np_remove(st, x))
			store_lk_drop_gone(seq);
		else
			store_lk_drop(seq);
	}
}

/* Walks a queue in delivery order, merging the persistent rows (cursor
 * s, already bound) with the in-memory nonpersistent messages; the
 * caller holds the nonpersistent mutex.  Calls visit for each message
 * until it returns other than 1 (0: stop, <0: error).  *x is the next
 * nonpersistent message to merge. */
struct walk {
	struct store *st;
	int64_t qid, now;
	int (*visit)(struct walk *w, int64_t pos, struct store_npm *x);
	size_t want;
	uint64_t owner;
	struct mrefs *c;        /* claim_head */
	struct msg_list *out;   /* browse */
	size_t start;
	struct mrefs *exp;      /* browse: expired persistent ones */
	struct store_npm *np;   /* the first nonpersistent message to visit */
	sqlite3_stmt *cur;      /* the persistent cursor (on the row visited) */
};

/* (the nonpersistent mutex held) */
static int walk_queue(struct walk *w, sqlite3_stmt *s)
{
	struct store_npm *x = w->np;
	int64_t ppos = -1; /* next persistent pos; -1: step; INT64_MAX: none left */
	int rc;

	w->cur = s;

	for (;;) {
		if (ppos < 0) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				ppos = sqlite3_column_int64(s, 0);
			else if (rc == SQLITE_DONE)
				ppos = INT64_MAX;
			else
				return store_sqlfail(w->st, rc, "reading a queue");
		}
		if (x != NULL && np_pos(x) < ppos) {
			struct store_npm *cur = x;
			x = store_np_next(x);
			if (store_np_hidden(w->st, cur))
				continue;
			if (expired(store_np_msg(cur), w->now)) {
				np_expire(w->st, cur, w->qid);
				continue;
			}
			rc = w->visit(w, np_pos(cur), cur);
		} else if (ppos == INT64_MAX) {
			return STORE_OK;
		} else {
			rc = w->visit(w, ppos, NULL);
			ppos = -1;
		}
		if (rc != 1)
			return rc;
	}
}

static int browse_visit(struct walk *w, int64_t pos, struct store_npm *x)
{
	struct store *st = w->st;
	struct chd_msg *m;
	int rc;

	if (w->out->n - w->start >= w->want)
		return 0;
	if ((m = msg_list_add(w->out)) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	if (x != NULL) {
		if (msg_copy(m, store_np_msg(x)) != 0) {
			w->out->n--;
			return store_fail(st, STORE_ERR, "out of memory");
		}
		return 1;
	}
	/* the row the cursor is on: the same snapshot */
	if (row_read(w->cur, 1, m) != 0) {
		w->out->n--;
		return store_fail(st, STORE_ERR, "out of memory");
	}
	if (expired(m, w->now)) {
		int64_t seq = pos & STORE_SEQ_MAX;
		msg_clear(m);
		w->out->n--;
		/* a locked message is its getter's business */
		if (store_lk_claim(seq, UINT64_MAX, st->sh, w->qid) &&
		    (rc = mrefs_add(st, w->exp, pos, false)) != STORE_OK) {
			store_lk_drop(seq);
			return rc;
		}
	}
	return 1;
}

/* A persistent message read here may come from a commit that is not
 * durable yet (store_db.c, group sync): it leaves the process only once it
 * is, so that a power cut cannot take back what a peer or client has seen. */
static void persistent_gate(struct store *st, const struct msg_list *out, size_t start)
{
	if (st->gate_off)
		return;
	for (size_t i = start; i < out->n; i++)
		if (out->v[i].persistent) {
			store_durable_gate(st);
			return;
		}
}

int store_browse(struct store *st, const char *queue, size_t max, struct msg_list *out)
{
	struct store_qrow q;
	struct mrefs exp = { 0 };
	struct walk w = { .st = st, .now = time_now_ms(), .visit = browse_visit, .want = max,
	                  .out = out, .exp = &exp };
	sqlite3_stmt *s;
	size_t start;
	int rc;

	if (out == NULL)
		return store_fail(st, STORE_BAD_ARG, "no message list given");
	start = w.start = out->n;
	if ((rc = get_queue(st, queue, &q)) != STORE_OK)
		return rc;
	w.qid = q.qid;
	if ((rc = order_bind(st, q.qid, &s)) != STORE_OK)
		return rc;
	/* the cursor's read transaction covers the row reads: a consistent
	 * snapshot, every row seen by the cursor is there */
	store_np_lock(st);
	w.np = store_np_first(st, w.qid);
	rc = walk_queue(&w, s);
	store_np_unlock(st);
	sqlite3_reset(s);
	if (rc != STORE_OK) {
		while (out->n > start)
			msg_clear(&out->v[--out->n]);
		empty_free(out);
		unclaim(&exp, 0);
		free(exp.v);
		return rc;
	}
	if (exp.n > 0 && delete_refs(st, exp.v, exp.n, true, "removing expired messages") != STORE_OK)
		unclaim(&exp, 0); /* they stay, and are skipped again next time */
	free(exp.v);
	if (out->n > start) {
		persistent_gate(st, out, start);
		return STORE_OK;
	}
	empty_free(out);
	return store_fail(st, STORE_NO_MSG, "no message on queue '%s'", queue);
}

void (*store_test_claim_hook)(void *arg);
void *store_test_claim_arg;

static int claim_visit(struct walk *w, int64_t pos, struct store_npm *x)
{
	struct store *st = w->st;
	int64_t seq = pos & STORE_SEQ_MAX;
	struct chd_msg *copy;
	int rc;

	if (store_test_claim_hook != NULL) {
		void (*hook)(void *) = store_test_claim_hook;
		store_test_claim_hook = NULL;
		hook(store_test_claim_arg);
	}
	if (w->c->n >= w->want)
		return 0;
	if (!store_lk_claim(seq, w->owner, st->sh, w->qid))
		return 1;
	if ((rc = mrefs_add(st, w->c, pos, x != NULL)) != STORE_OK) {
		store_lk_drop(seq);
		return rc;
	}
	/* nonpersistent: copied now, since once the mutex is released a purge
	 * may free it; persistent: read from the cursor, kept if store_lock
	 * finds that nobody committed since the walk began */
	if ((copy = calloc(1, sizeof(*copy))) == NULL ||
	    (x != NULL ? msg_copy(copy, store_np_msg(x)) : row_read(w->cur, 1, copy)) != 0) {
		free(copy);
		w->c->n--;
		store_lk_drop(seq);
		return store_fail(st, STORE_ERR, "out of memory");
	}
	w->c->v[w->c->n - 1].copy = copy;
	return 1;
}

static int prio_of(int64_t pos)
{
	return MSG_PRIORITY_MAX - (int)(pos >> 55);
}

/* Claims up to want messages from the head of the queue that nobody holds,
 * with a copy of each (c->v[].copy).  The cursor's snapshot may be older
 * than a confirm that already dropped its locks: unless no other
 * connection committed since the walk began, store_lock checks that each
 * claimed row is still there in a new read transaction, which begins
 * after the claim and so sees such a delete.  Nonpersistent ones
 * are copied while claimed, under the mutex that a confirm's commit takes
 * before it drops its locks: they always stand.
 *
 * A claim by the same owner on the same queue resumes after the last
 * message the previous one claimed (the handle's claim hint) when nothing
 * claimable can have appeared before it since: the messages before it are
 * held by this owner or were skipped for a reason that, once gone, bumps
 * a generation (store_lk_gens).  A sender with 32 batches in flight walked
 * past up to 1,550 messages it held (a lock-table probe under the process
 * mutex and a cursor step each) to claim 50. */
static int claim_head(struct store *st, int64_t qid, size_t want, uint64_t owner,
                      int64_t now, struct mrefs *c)
{
	struct walk w = { .st = st, .qid = qid, .now = now, .visit = claim_visit, .want = want,
	                  .owner = owner, .c = c };
	struct claim_hint *h = &st->hint;
	uint64_t g[STORE_LK_GENS];
	sqlite3_stmt *s;
	bool resume;
	int rc;

	/* read before the walk: a change after this is seen by the next check */
	store_lk_gens(g);
	resume = h->set && h->qid == qid && h->owner == owner &&
	         store_lk_gen_at(g, prio_of(h->pos)) == h->gen;
	store_np_lock(st);
	if (resume && !store_np_after(st, qid, h->pos, &w.np))
		resume = false;
	if (!resume)
		w.np = store_np_first(st, qid);
	if (resume) {
		if ((rc = store_stmt_get(st, SQ_M_ORDER_AFTER, &s)) == STORE_OK &&
		    ((rc = sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK ||
		     (rc = sqlite3_bind_int64(s, 2, h->pos)) != SQLITE_OK))
			rc = store_sqlfail(st, rc, "reading a queue");
	} else {
		rc = order_bind(st, qid, &s);
	}
	if (rc != STORE_OK) {
		store_np_unlock(st);
		return rc;
	}
	rc = walk_queue(&w, s);
	store_np_unlock(st);
	sqlite3_reset(s);
	if (rc == STORE_OK) {
		if (c->n > 0) {
			int64_t pos = c->v[c->n - 1].pos;
			*h = (struct claim_hint){ .set = true, .qid = qid, .owner = owner, .pos = pos,
			                          .gen = store_lk_gen_at(g, prio_of(pos)) };
		} else if (!resume) {
			h->set = false;
		}
		return STORE_OK;
	}
	h->set = false;
	unclaim(c, 0);
	c->n = 0;
	return rc;
}

/* PRAGMA data_version: it changes when another connection commits. */
static int data_version(struct store *st, int64_t *v)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_DATA_VERSION, &s)) != STORE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? STORE_OK : store_sqlfail(st, rc, "reading the data version");
}

int store_lock(struct store *st, const char *queue, size_t max, uint64_t owner,
               struct msg_list *out)
{
	struct store_qrow q;
	struct mrefs c = { 0 }, exp = { 0 };
	size_t start;
	int64_t now = time_now_ms();
	int rc;

	if (out == NULL || owner == 0 || owner == UINT64_MAX)
		return store_fail(st, STORE_BAD_ARG, "store_lock needs a message list and an owner");
	start = out->n;
	if ((rc = get_queue(st, queue, &q)) != STORE_OK)
		return rc;
	while (out->n - start < max) {
		bool dropped = false, rtx = false, any_p = false;
		/* inside this handle's write transaction nobody else commits */
		bool fresh = st->txn != TXN_NONE;
		int64_t dv0 = 0, dv1 = 0;
		size_t i;

		c.n = exp.n = 0;
		if (!fresh && (rc = data_version(st, &dv0)) != STORE_OK)
			goto fail;
		if ((rc = claim_head(st, q.qid, max - (out->n - start), owner, now, &c)) != STORE_OK)
			goto fail;
		if (c.n == 0)
			break;
		for (i = 0; i < c.n && !any_p; i++)
			any_p = !c.v[i].np;
		/* The rows the walk read stand if no other connection committed
		 * since before it began: no confirm can have deleted one after
		 * the cursor's snapshot.  Otherwise each is looked up again, in
		 * one read transaction that starts after every claim, as it
		 * must; a row still there is unchanged (rows are never updated). */
		if (any_p && !fresh) {
			if ((rc = data_version(st, &dv1)) != STORE_OK) {
				unclaim(&c, 0);
				goto fail;
			}
			fresh = dv1 == dv0;
		}
		if (any_p && !fresh && (rc = read_begin(st, &rtx)) != STORE_OK) {
			unclaim(&c, 0);
			goto fail;
		}
		for (i = 0; i < c.n; i++) {
			struct chd_msg *m = msg_list_add(out);
			bool found = true;

			if (m == NULL) {
				rc = store_fail(st, STORE_ERR, "out of memory");
				break;
			}
			/* claim_visit copied every message it claimed */
			*m = *c.v[i].copy;
			free(c.v[i].copy);
			c.v[i].copy = NULL;
			if (c.v[i].np)
				continue;
			if (!fresh && (rc = row_exists(st, c.v[i].pos, &found)) != STORE_OK) {
				msg_clear(m);
				out->n--;
				break;
			}
			if (!found || expired(m, now)) {
				msg_clear(m);
				out->n--;
				dropped = true;
				if (found && (rc = mrefs_add(st, &exp, c.v[i].pos, false)) != STORE_OK) {
					store_lk_drop(c.v[i].seq);
					i++;
					break;
				}
				if (!found) /* confirmed by someone else since the cursor ran */
					store_lk_drop(c.v[i].seq);
			}
		}
		read_end(st, rtx);
		if (rc != STORE_OK) {
			unclaim(&c, i);
			unclaim(&exp, 0);
			goto fail;
		}
		if (exp.n > 0 &&
		    delete_refs(st, exp.v, exp.n, true, "removing expired messages") != STORE_OK) {
			/* leave them for next time rather than loop on them now */
			unclaim(&exp, 0);
			break;
		}
		if (!dropped)
			break;
	}
	free(c.v);
	free(exp.v);
	if (out->n > start) {
		persistent_gate(st, out, start);
		return STORE_OK;
	}
	empty_free(out);
	return store_fail(st, STORE_NO_MSG, "no message available on queue '%s'", queue);
fail:
	while (out->n > start) {
		store_lk_drop(out->v[out->n - 1].seq);
		msg_clear(&out->v[--out->n]);
	}
	empty_free(out);
	free(c.v);
	free(exp.v);
	return rc;
}

int store_confirm(struct store *st, const struct msg_list *msgs)
{
	struct mref *r;
	size_t n = 0;
	int rc;

	if (msgs == NULL || msgs->n == 0)
		return STORE_OK;
	if ((r = calloc(msgs->n, sizeof(*r))) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	for (size_t i = 0; i < msgs->n; i++) {
		const struct chd_msg *m = &msgs->v[i];

		/* not a message from the store: nothing to delete (only seq
		 * and persistent are needed: the channel's in-doubt records
		 * keep nothing else) */
		if (m->seq <= 0 || m->seq > STORE_SEQ_MAX)
			continue;
		r[n].seq = m->seq;
		r[n].np = !m->persistent;
		n++;
	}
	rc = delete_refs(st, r, n, false, "confirming messages");
	free(r);
	return rc;
}
