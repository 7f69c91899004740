/* Queue definitions: define/replace, get, delete, list, and the resolution
 * of a put's destination (local queue, remote definition, other queue
 * manager). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

bool store_fixed_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

void queue_def_init(struct queue_def *q, enum queue_type type)
{
	memset(q, 0, sizeof(*q));
	q->type = type;
	q->usage = QUSAGE_NORMAL;
	q->maxdepth = QUEUE_DEFAULT_MAXDEPTH;
	q->maxmsgl = QUEUE_DEFAULT_MAXMSGL;
	q->put_enabled = true;
	q->get_enabled = true;
}

static void col_str(sqlite3_stmt *s, int col, char *dst, size_t len)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	str_copy(dst, t ? t : "", len);
}

static void qrow_fill(struct store *st, sqlite3_stmt *s, struct store_qrow *r)
{
	struct queue_def *q = &r->def;

	memset(r, 0, sizeof(*r));
	r->qid = sqlite3_column_int64(s, 0);
	col_str(s, 1, q->name, sizeof(q->name));
	q->type = sqlite3_column_int(s, 2) == QTYPE_REMOTE ? QTYPE_REMOTE : QTYPE_LOCAL;
	q->usage = sqlite3_column_int(s, 3) == QUSAGE_XMITQ ? QUSAGE_XMITQ : QUSAGE_NORMAL;
	q->maxdepth = (long)sqlite3_column_int64(s, 4);
	q->maxmsgl = (long)sqlite3_column_int64(s, 5);
	q->put_enabled = sqlite3_column_int(s, 6) != 0;
	q->get_enabled = sqlite3_column_int(s, 7) != 0;
	col_str(s, 8, q->rname, sizeof(q->rname));
	col_str(s, 9, q->rqmname, sizeof(q->rqmname));
	col_str(s, 10, q->xmitq, sizeof(q->xmitq));
	col_str(s, 11, q->descr, sizeof(q->descr));
	q->created_ms = sqlite3_column_int64(s, 12);
	q->altered_ms = sqlite3_column_int64(s, 13);
	q->curdepth = (long)sqlite3_column_int64(s, 14);
	if (q->type == QTYPE_LOCAL)
		q->curdepth += store_np_depth(st, r->qid);
}

int store_qrow_get(struct store *st, const char *name, struct store_qrow *out)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_Q_GET, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlfail(st, rc, "reading a queue definition");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		qrow_fill(st, s, out);
		sqlite3_reset(s);
		return STORE_OK;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_UNKNOWN_Q, "queue '%s' is not defined", name);
	return store_sqlfail(st, rc, "reading a queue definition");
}

/* Oldest message by arrival: the smallest seq is at the head of one of the
 * ten priority bands, so 10 index seeks find it whatever the depth,
 * without a (qid, seq) index that every put would pay for; then the same
 * in memory for the nonpersistent ones. */
int store_queue_oldest(struct store *st, int64_t qid, int64_t *put_ms)
{
	int64_t best = 0, np_seq, np_put;
	sqlite3_stmt *s;
	int rc;

	*put_ms = 0;
	if ((rc = store_np_oldest(st, qid, &np_seq, &np_put)) != STORE_OK)
		return rc;
	{
		if ((rc = store_stmt_get(st, SQ_M_HEAD_PRIO, &s)) != STORE_OK)
			return rc;
		for (int p = 0; p <= MSG_PRIORITY_MAX; p++) {
			if ((rc = sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK ||
			    (rc = sqlite3_bind_int64(s, 2, store_pos(p, 0))) != SQLITE_OK ||
			    (rc = sqlite3_bind_int64(s, 3, store_pos(p, 0) + STORE_SEQ_MAX + 1)) != SQLITE_OK)
				return store_sqlfail(st, rc, "finding the oldest message");
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW) {
				int64_t pos = sqlite3_column_int64(s, 0);
				if (best == 0 || (pos & STORE_SEQ_MAX) < (best & STORE_SEQ_MAX))
					best = pos;
			}
			sqlite3_reset(s);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				return store_sqlfail(st, rc, "finding the oldest message");
		}
	}
	if (np_seq != 0 && (best == 0 || np_seq < (best & STORE_SEQ_MAX))) {
		*put_ms = np_put;
		return STORE_OK;
	}
	if (best == 0)
		return STORE_OK;
	if ((rc = store_stmt_get(st, SQ_M_PUTTIME, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, best)) != SQLITE_OK)
		return store_sqlfail(st, rc, "finding the oldest message");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*put_ms = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) /* DONE: just got, fine */
		return store_sqlfail(st, rc, "finding the oldest message");
	return STORE_OK;
}

static int check_name(struct store *st, const char *what, const char *name)
{
	char why[160];

	if (name == NULL || !name_valid(name, why, sizeof(why)))
		return store_fail(st, STORE_BAD_NAME, "%s: %s", what, name ? why : "name is missing");
	return STORE_OK;
}

static int check_def(struct store *st, const struct queue_def *q)
{
	int rc;

	if (!store_fixed_ok(q->name, sizeof(q->name)) || !store_fixed_ok(q->rname, sizeof(q->rname)) ||
	    !store_fixed_ok(q->rqmname, sizeof(q->rqmname)) ||
	    !store_fixed_ok(q->xmitq, sizeof(q->xmitq)) || !store_fixed_ok(q->descr, sizeof(q->descr)))
		return store_fail(st, STORE_BAD_ARG, "queue definition has an unterminated field");
	if ((rc = check_name(st, "queue", q->name)) != STORE_OK)
		return rc;
	if (q->type == QTYPE_LOCAL) {
		if (q->usage != QUSAGE_NORMAL && q->usage != QUSAGE_XMITQ)
			return store_fail(st, STORE_BAD_ARG, "queue '%s': USAGE must be NORMAL or XMITQ",
			                  q->name);
		if (q->maxdepth < 0 || q->maxdepth > STORE_MAXDEPTH_MAX)
			return store_fail(st, STORE_BAD_ARG, "queue '%s': MAXDEPTH %ld is out of range"
			                  " (0-%ld)", q->name, q->maxdepth, STORE_MAXDEPTH_MAX);
		if (q->maxmsgl < 0 || q->maxmsgl > STORE_MAXMSGL_MAX)
			return store_fail(st, STORE_BAD_ARG, "queue '%s': MAXMSGL %ld is out of range"
			                  " (0-%ld)", q->name, q->maxmsgl, STORE_MAXMSGL_MAX);
		return STORE_OK;
	}
	if (q->type != QTYPE_REMOTE)
		return store_fail(st, STORE_BAD_ARG, "queue '%s': unknown queue type %d", q->name,
		                  (int)q->type);
	if ((rc = check_name(st, "RNAME", q->rname)) != STORE_OK ||
	    (rc = check_name(st, "RQMNAME", q->rqmname)) != STORE_OK)
		return rc;
	if (q->xmitq[0] != '\0' && (rc = check_name(st, "XMITQ", q->xmitq)) != STORE_OK)
		return rc;
	return STORE_OK;
}

static int bind_def(struct store *st, sqlite3_stmt *s, const struct queue_def *q,
                    int64_t qid, bool insert)
{
	bool local = q->type == QTYPE_LOCAL;
	int rc, o = 1; /* ?1 is the name (INSERT) or the qid (UPDATE) */

	if ((rc = insert ? sqlite3_bind_text(s, 1, q->name, -1, SQLITE_STATIC)
	                 : sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 1 + o, (int)q->type)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 2 + o, local ? (int)q->usage : 0)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 3 + o, local ? q->maxdepth : QUEUE_DEFAULT_MAXDEPTH)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 4 + o, local ? q->maxmsgl : QUEUE_DEFAULT_MAXMSGL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 5 + o, q->put_enabled)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 6 + o, q->get_enabled)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 7 + o, local ? "" : q->rname, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 8 + o, local ? "" : q->rqmname, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 9 + o, local ? "" : q->xmitq, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 10 + o, q->descr, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 11 + o, time_now_ms())) != SQLITE_OK)
		return store_sqlfail(st, rc, "writing a queue definition");
	return STORE_OK;
}

static int step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, what);
}

int store_queue_define(struct store *st, const struct queue_def *q, bool replace)
{
	struct store_qrow old;
	sqlite3_stmt *s;
	bool own, exists;
	int rc;

	if (q == NULL)
		return store_fail(st, STORE_BAD_ARG, "no queue definition given");
	if ((rc = check_def(st, q)) != STORE_OK)
		return rc;
	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	rc = store_qrow_get(st, q->name, &old);
	exists = rc == STORE_OK;
	if (rc != STORE_OK && rc != STORE_UNKNOWN_Q)
		goto out;
	if (exists && !replace) {
		rc = store_fail(st, STORE_EXISTS, "queue '%s' already exists (use replace)", q->name);
		goto out;
	}
	if (exists && old.def.type == QTYPE_LOCAL && q->type == QTYPE_REMOTE && old.def.curdepth > 0) {
		rc = store_fail(st, STORE_NOT_EMPTY, "queue '%s' holds %ld messages: it cannot become"
		                " a remote queue definition", q->name, old.def.curdepth);
		goto out;
	}
	if ((rc = store_stmt_get(st, exists ? SQ_Q_UPDATE : SQ_Q_INSERT, &s)) != STORE_OK ||
	    (rc = bind_def(st, s, q, exists ? old.qid : 0, !exists)) != STORE_OK)
		goto out;
	rc = step_done(st, s, "writing a queue definition");
out:
	{
		int erc = store_wend(st, own, rc == STORE_OK);
		return rc == STORE_OK ? erc : rc;
	}
}

int store_queue_get(struct store *st, const char *name, struct queue_def *out)
{
	struct store_qrow r;
	int rc;

	if ((rc = check_name(st, "queue", name)) != STORE_OK)
		return rc;
	if ((rc = store_qrow_get(st, name, &r)) != STORE_OK)
		return rc;
	if (r.def.type == QTYPE_LOCAL && r.def.curdepth > 0 &&
	    (rc = store_queue_oldest(st, r.qid, &r.def.oldest_put_ms)) != STORE_OK)
		return rc;
	*out = r.def;
	return STORE_OK;
}

/* Deletes the messages of a queue (table and memory) and zeroes its depth.
 * Runs inside the caller's write transaction. */
static int purge_in_txn(struct store *st, int64_t qid, long *n)
{
	sqlite3_stmt *s;
	long total = 0, np_n = 0;
	int rc;

	if ((rc = store_stmt_get(st, SQ_M_PURGE, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK)
		return store_sqlfail(st, rc, "purging a queue");
	if ((rc = step_done(st, s, "purging a queue")) != STORE_OK)
		return rc;
	total += (long)sqlite3_changes(st->db);
	if ((rc = store_np_purge(st, qid, &np_n)) != STORE_OK)
		return rc;
	total += np_n;
	if ((rc = store_stmt_get(st, SQ_Q_DEPTH_ZERO, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, qid)) != SQLITE_OK)
		return store_sqlfail(st, rc, "purging a queue");
	if ((rc = step_done(st, s, "purging a queue")) != STORE_OK)
		return rc;
	if (n != NULL)
		*n = total;
	return STORE_OK;
}

int store_purge(struct store *st, const char *queue, long *n)
{
	struct store_qrow r;
	bool own;
	int rc, erc;

	if (n != NULL)
		*n = 0;
	if ((rc = check_name(st, "queue", queue)) != STORE_OK)
		return rc;
	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	if ((rc = store_qrow_get(st, queue, &r)) == STORE_OK) {
		if (r.def.type != QTYPE_LOCAL)
			rc = store_fail(st, STORE_WRONG_TYPE, "'%s' is a remote queue definition: it holds"
			                " no messages", queue);
		else
			rc = purge_in_txn(st, r.qid, n);
	}
	erc = store_wend(st, own, rc == STORE_OK);
	if (rc == STORE_OK && erc != STORE_OK && n != NULL)
		*n = 0;
	return rc == STORE_OK ? erc : rc;
}

int store_queue_delete(struct store *st, const char *name, bool purge)
{
	struct store_qrow r;
	sqlite3_stmt *s;
	bool own;
	int rc, erc;

	if ((rc = check_name(st, "queue", name)) != STORE_OK)
		return rc;
	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	if ((rc = store_qrow_get(st, name, &r)) != STORE_OK)
		goto out;
	if (r.def.type == QTYPE_LOCAL) {
		if ((rc = store_stmt_get(st, SQ_Q_XMITQ_USER, &s)) != STORE_OK)
			goto out;
		if ((rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK) {
			rc = store_sqlfail(st, rc, "deleting a queue");
			goto out;
		}
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			char user[CHAND_NAME_MAX + 1];
			col_str(s, 0, user, sizeof(user));
			sqlite3_reset(s);
			rc = store_fail(st, STORE_IN_USE, "queue '%s' is the transmission queue of"
			                " remote queue '%s'", name, user);
			goto out;
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			rc = store_sqlfail(st, rc, "deleting a queue");
			goto out;
		}
		if (r.def.curdepth > 0 && !purge) {
			rc = store_fail(st, STORE_NOT_EMPTY, "queue '%s' holds %ld messages"
			                " (purge them to delete it)", name, r.def.curdepth);
			goto out;
		}
		if ((rc = purge_in_txn(st, r.qid, NULL)) != STORE_OK)
			goto out;
	}
	if ((rc = store_stmt_get(st, SQ_Q_DELETE, &s)) != STORE_OK)
		goto out;
	if ((rc = sqlite3_bind_int64(s, 1, r.qid)) != SQLITE_OK) {
		rc = store_sqlfail(st, rc, "deleting a queue");
		goto out;
	}
	rc = step_done(st, s, "deleting a queue");
out:
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_queue_list(struct store *st, const char *pattern, struct queue_def **out, size_t *n)
{
	struct store_qrow r;
	struct queue_def *v = NULL;
	int64_t *qids = NULL;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_stmt_get(st, SQ_Q_LIST, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		qrow_fill(st, s, &r);
		if (!name_match(pattern, r.def.name))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct queue_def *nv = realloc(v, ncap * sizeof(*nv));
			int64_t *nq = realloc(qids, ncap * sizeof(*nq));
			if (nv != NULL)
				v = nv;
			if (nq != NULL)
				qids = nq;
			if (nv == NULL || nq == NULL) {
				sqlite3_reset(s);
				rc = store_fail(st, STORE_ERR, "out of memory");
				goto fail;
			}
			cap = ncap;
		}
		qids[cnt] = r.qid;
		v[cnt++] = r.def;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rc = store_sqlfail(st, rc, "listing queues");
		goto fail;
	}
	for (size_t i = 0; i < cnt; i++)
		if (v[i].type == QTYPE_LOCAL && v[i].curdepth > 0 &&
		    (rc = store_queue_oldest(st, qids[i], &v[i].oldest_put_ms)) != STORE_OK)
			goto fail;
	free(qids);
	*out = v;
	*n = cnt;
	return STORE_OK;
fail:
	free(v);
	free(qids);
	return rc;
}

static int need_xmitq(struct store *st, const char *xq, const char *why, struct store_qrow *r)
{
	int rc = store_qrow_get(st, xq, r);

	if (rc == STORE_UNKNOWN_Q)
		return store_fail(st, STORE_BAD_XMITQ, "transmission queue '%s' (%s) is not defined",
		                  xq, why);
	if (rc != STORE_OK)
		return rc;
	if (r->def.type != QTYPE_LOCAL)
		return store_fail(st, STORE_BAD_XMITQ, "'%s' (%s) is a remote queue definition, not a"
		                  " transmission queue", xq, why);
	if (r->def.usage != QUSAGE_XMITQ)
		return store_fail(st, STORE_BAD_XMITQ, "queue '%s' (%s) has USAGE(NORMAL), not XMITQ",
		                  xq, why);
	return STORE_OK;
}

int store_resolve(struct store *st, const char *queue, const char *qmgr,
                  char local_q[CHAND_NAME_MAX + 1], char xmit_qm[CHAND_NAME_MAX + 1],
                  char xmit_q[CHAND_NAME_MAX + 1])
{
	struct store_qrow r, x;
	char why[2 * CHAND_NAME_MAX + 64];
	int rc;

	local_q[0] = xmit_qm[0] = xmit_q[0] = '\0';
	if ((rc = check_name(st, "queue", queue)) != STORE_OK)
		return rc;
	if (qmgr != NULL && qmgr[0] != '\0') {
		if ((rc = check_name(st, "queue manager", qmgr)) != STORE_OK)
			return rc;
		if (st->qmgr[0] == '\0' || strcmp(qmgr, st->qmgr) != 0) {
			snprintf(why, sizeof(why), "for queue manager '%s'", qmgr);
			if ((rc = need_xmitq(st, qmgr, why, &x)) != STORE_OK)
				return rc;
			str_copy(local_q, qmgr, CHAND_NAME_MAX + 1);
			str_copy(xmit_qm, qmgr, CHAND_NAME_MAX + 1);
			str_copy(xmit_q, queue, CHAND_NAME_MAX + 1);
			return STORE_OK;
		}
	}
	if ((rc = store_qrow_get(st, queue, &r)) != STORE_OK)
		return rc;
	if (r.def.type == QTYPE_LOCAL) {
		str_copy(local_q, queue, CHAND_NAME_MAX + 1);
		return STORE_OK;
	}
	/* a remote definition naming this queue manager is resolved here, one
	 * level deep (what IBM MQ does with a queue-manager alias) */
	if (st->qmgr[0] != '\0' && strcmp(r.def.rqmname, st->qmgr) == 0) {
		if ((rc = store_qrow_get(st, r.def.rname, &x)) != STORE_OK)
			return rc == STORE_UNKNOWN_Q ? store_fail(st, STORE_UNKNOWN_Q, "queue '%s' (RNAME"
			                                          " of remote queue '%s') is not defined",
			                                          r.def.rname, queue) : rc;
		if (x.def.type != QTYPE_LOCAL)
			return store_fail(st, STORE_UNKNOWN_Q, "remote queue '%s' points at remote queue"
			                  " '%s' on this queue manager", queue, r.def.rname);
		str_copy(local_q, r.def.rname, CHAND_NAME_MAX + 1);
		return STORE_OK;
	}
	snprintf(why, sizeof(why), "XMITQ of remote queue '%s'", queue);
	if ((rc = need_xmitq(st, r.def.xmitq[0] ? r.def.xmitq : r.def.rqmname, why, &x)) != STORE_OK)
		return rc;
	str_copy(local_q, x.def.name, CHAND_NAME_MAX + 1);
	str_copy(xmit_qm, r.def.rqmname, CHAND_NAME_MAX + 1);
	str_copy(xmit_q, r.def.rname, CHAND_NAME_MAX + 1);
	return STORE_OK;
}
