/* MQTT sessions, queued publications, inbound QoS 2 ids and retained
 * messages (include/chand/store_mqtt.h; tables in store_db.c, migration
 * 1 -> 2; doc/STORAGE.md, "MQTT tables").
 *
 * Statements come from the handle's cache (store_sql[] in store_db.c):
 * the broker's writer thread runs tens of thousands of them a second
 * inside group transactions.  Strings are bound with their byte length,
 * so any client id a client sends is stored exactly as sent. */
#include <stdlib.h>
#include <string.h>

#include "chand/store_mqtt.h"
#include "store_int.h"

#define MQ_STR_MAX 65535 /* MQTT's UTF-8 strings carry a 16-bit length */

/* ---- arguments ---- */

static int check_str(struct store *st, const char *s, const char *what, size_t *len)
{
	if (s == NULL)
		return store_fail(st, STORE_BAD_ARG, "%s is missing", what);
	*len = strlen(s);
	if (*len == 0 || *len > MQ_STR_MAX)
		return store_fail(st, STORE_BAD_ARG, "%s must be 1 to %d bytes long (it has %zu)",
		                  what, MQ_STR_MAX, *len);
	return STORE_OK;
}

static int check_cid(struct store *st, const char *cid, size_t *len)
{
	return check_str(st, cid, "MQTT client id", len);
}

static int check_msg(struct store *st, const struct store_mqtt_msg *m, size_t *tlen)
{
	int rc;

	if (m == NULL)
		return store_fail(st, STORE_BAD_ARG, "no publication given");
	if ((rc = check_str(st, m->topic, "topic", tlen)) != STORE_OK)
		return rc;
	if (m->qos > 2)
		return store_fail(st, STORE_BAD_ARG, "QoS %u is out of range (0-2)", m->qos);
	if (m->state > STORE_MQTT_RELSENT)
		return store_fail(st, STORE_BAD_ARG, "delivery state %u is out of range (0-2)",
		                  m->state);
	if ((m->payload_len > 0 && m->payload == NULL) || (m->props_len > 0 && m->props == NULL))
		return store_fail(st, STORE_BAD_ARG, "publication has a length but no bytes");
	return STORE_OK;
}

/* ---- statement helpers ---- */

static int bind_str(sqlite3_stmt *s, int i, const char *t, size_t len)
{
	return sqlite3_bind_text(s, i, t, (int)len, SQLITE_STATIC);
}

/* A zero-length blob binds as an empty blob (NOT NULL columns), or as
 * NULL if null_if_empty. */
static int bind_bytes(sqlite3_stmt *s, int i, const uint8_t *b, size_t len, bool null_if_empty)
{
	if (len == 0)
		return null_if_empty ? sqlite3_bind_null(s, i) : sqlite3_bind_zeroblob(s, i, 0);
	return sqlite3_bind_blob64(s, i, b, len, SQLITE_STATIC);
}

/* Steps a bound write statement in the current transaction and resets it;
 * *changes = rows changed. */
static int step_write(struct store *st, sqlite3_stmt *s, const char *what, int *changes)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_sqlfail(st, rc, what);
	if (changes != NULL)
		*changes = sqlite3_changes(st->db);
	return STORE_OK;
}

/* One bound write statement in its own transaction or the caller's. */
static int write_one(struct store *st, sqlite3_stmt *s, const char *what, int *changes)
{
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		sqlite3_reset(s);
		return rc;
	}
	rc = step_write(st, s, what, changes);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

static int bind_fail(struct store *st, sqlite3_stmt *s, int rc, const char *what)
{
	sqlite3_reset(s);
	return store_sqlfail(st, rc, what);
}

/* A read of several statements sees one snapshot: a deferred transaction
 * unless the handle has one open. */
static int read_begin(struct store *st, bool *own)
{
	int rc;

	*own = false;
	if (!sqlite3_get_autocommit(st->db))
		return STORE_OK;
	if ((rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		return store_sqlfail(st, rc, "starting a read");
	*own = true;
	return STORE_OK;
}

static void read_end(struct store *st, bool own)
{
	if (own && !sqlite3_get_autocommit(st->db) &&
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* malloc'd copy of a column (NULL for an empty one); false if out of memory. */
static bool col_bytes(sqlite3_stmt *s, int i, uint8_t **out, size_t *len)
{
	const void *b = sqlite3_column_blob(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	*out = NULL;
	*len = 0;
	if (b == NULL || n == 0)
		return true;
	if ((*out = malloc(n)) == NULL)
		return false;
	memcpy(*out, b, n);
	*len = n;
	return true;
}

/* malloc'd copy of a text column; NULL stays NULL (*ok tells the two apart). */
static char *col_str(sqlite3_stmt *s, int i, bool *ok)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	size_t n;
	char *r;

	if (t == NULL) {
		/* NULL column, or out of memory converting it */
		*ok = sqlite3_column_type(s, i) == SQLITE_NULL;
		return NULL;
	}
	n = (size_t)sqlite3_column_bytes(s, i);
	if ((r = malloc(n + 1)) == NULL) {
		*ok = false;
		return NULL;
	}
	memcpy(r, t, n);
	r[n] = '\0';
	*ok = true;
	return r;
}

/* The session's row id; STORE_NOT_FOUND if there is none. */
static int sid_of(struct store *st, const char *cid, size_t len, int64_t *sid)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_MQ_SID, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, cid, len)) != SQLITE_OK)
		return bind_fail(st, s, rc, "reading an MQTT session");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*sid = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_NOT_FOUND, "no MQTT session for client id '%.64s'", cid);
	return store_sqlfail(st, rc, "reading an MQTT session");
}

static int no_session(struct store *st, const char *cid)
{
	return store_fail(st, STORE_NOT_FOUND, "no MQTT session for client id '%.64s'", cid);
}

/* ---- sessions ---- */

int store_mqtt_session_put(struct store *st, const struct store_mqtt_session *ses)
{
	const char *what = "writing an MQTT session";
	sqlite3_stmt *s;
	size_t clen;
	int rc;

	if (ses == NULL)
		return store_fail(st, STORE_BAD_ARG, "no MQTT session given");
	if ((rc = check_cid(st, ses->client_id, &clen)) != STORE_OK)
		return rc;
	if (!store_fixed_ok(ses->channel, sizeof(ses->channel)))
		return store_fail(st, STORE_BAD_ARG, "MQTT session: channel name is unterminated");
	if (ses->protocol < 3 || ses->protocol > 5)
		return store_fail(st, STORE_BAD_ARG, "MQTT session: protocol level %d is not 3, 4"
		                  " or 5", ses->protocol);
	if (ses->expiry_s < -1)
		return store_fail(st, STORE_BAD_ARG, "MQTT session: expiry interval %lld is"
		                  " negative", (long long)ses->expiry_s);
	if ((rc = store_stmt_get(st, SQ_MQ_S_PUT, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, ses->client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 2, ses->channel, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 3, ses->protocol)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 4, ses->expiry_s)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 5, ses->disconnected_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 6, ses->next_pid)) != SQLITE_OK ||
	    (rc = ses->identity != NULL
	          ? sqlite3_bind_text(s, 7, ses->identity, -1, SQLITE_STATIC)
	          : sqlite3_bind_null(s, 7)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	return write_one(st, s, what, NULL);
}

/* Deletes every row of table stmt id for sid. */
static int delete_all(struct store *st, enum store_stmt id, int64_t sid, const char *what)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, id, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, 1, sid)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	return step_write(st, s, what, NULL);
}

int store_mqtt_session_delete(struct store *st, const char *client_id)
{
	const char *what = "deleting an MQTT session";
	int64_t sid = 0;
	size_t clen;
	bool own;
	int rc, erc;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	/* the session row goes last: a crash cannot leave rows without one
	 * (the whole thing is one transaction anyway) */
	if ((rc = sid_of(st, client_id, clen, &sid)) == STORE_OK &&
	    (rc = delete_all(st, SQ_MQ_OUT_DEL_ALL, sid, what)) == STORE_OK &&
	    (rc = delete_all(st, SQ_MQ_SUB_DEL_ALL, sid, what)) == STORE_OK &&
	    (rc = delete_all(st, SQ_MQ_IN2_DEL_ALL, sid, what)) == STORE_OK)
		rc = delete_all(st, SQ_MQ_S_DEL, sid, what);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_mqtt_session_touch(struct store *st, const char *client_id, int64_t disconnected_ms,
                             uint16_t next_pid)
{
	const char *what = "updating an MQTT session";
	sqlite3_stmt *s;
	size_t clen;
	int rc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_S_TOUCH, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, disconnected_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 3, next_pid)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK : no_session(st, client_id);
}

void store_mqtt_session_clear(struct store_mqtt_session *s)
{
	if (s == NULL)
		return;
	free(s->client_id);
	free(s->identity);
	s->client_id = s->identity = NULL;
}

/* Columns sid, client_id, channel, protocol, expiry_s, disconnected_ms,
 * next_pid, identity (SQ_MQ_S_GET, SQ_MQ_S_LIST). */
static bool session_row(sqlite3_stmt *s, struct store_mqtt_session *out, int64_t *sid)
{
	const char *ch = (const char *)sqlite3_column_text(s, 2);
	bool ok1, ok2;

	memset(out, 0, sizeof(*out));
	*sid = sqlite3_column_int64(s, 0);
	str_copy(out->channel, ch ? ch : "", sizeof(out->channel));
	out->protocol = sqlite3_column_int(s, 3);
	out->expiry_s = sqlite3_column_int64(s, 4);
	out->disconnected_ms = sqlite3_column_int64(s, 5);
	out->next_pid = (uint16_t)sqlite3_column_int(s, 6);
	out->client_id = col_str(s, 1, &ok1);
	out->identity = col_str(s, 7, &ok2);
	if (!ok1 || !ok2 || out->client_id == NULL) {
		store_mqtt_session_clear(out);
		return false;
	}
	return true;
}

int store_mqtt_session_get(struct store *st, const char *client_id,
                           struct store_mqtt_session *out)
{
	const char *what = "reading an MQTT session";
	sqlite3_stmt *s;
	int64_t sid;
	size_t clen;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_S_GET, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		bool ok = session_row(s, out, &sid);
		sqlite3_reset(s);
		return ok ? STORE_OK : store_fail(st, STORE_ERR, "out of memory");
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return no_session(st, client_id);
	return store_sqlfail(st, rc, what);
}

void store_mqtt_sessions_free(struct store_mqtt_session_full *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		store_mqtt_session_clear(&v[i].s);
		for (size_t j = 0; j < v[i].nsubs; j++)
			free(v[i].subs[j].filter);
		free(v[i].subs);
	}
	free(v);
}

static int by_client_id(const void *a, const void *b)
{
	const struct store_mqtt_session_full *x = a, *y = b;

	/* strcmp compares as unsigned char: SQLite's BINARY order */
	return strcmp(x->s.client_id, y->s.client_id);
}

/* Sessions in sid order into *v; sids[i] is v[i]'s. */
static int list_sessions(struct store *st, struct store_mqtt_session_full **v, int64_t **sids,
                         size_t *n)
{
	size_t cap = 0;
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_MQ_S_LIST, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct store_mqtt_session_full *nv = realloc(*v, nc * sizeof(*nv));
			int64_t *ns = nv != NULL ? realloc(*sids, nc * sizeof(*ns)) : NULL;
			if (nv != NULL)
				*v = nv;
			if (ns == NULL) {
				sqlite3_reset(s);
				return store_fail(st, STORE_ERR, "out of memory");
			}
			*sids = ns;
			cap = nc;
		}
		memset(&(*v)[*n], 0, sizeof((*v)[*n]));
		if (!session_row(s, &(*v)[*n].s, &(*sids)[*n])) {
			sqlite3_reset(s);
			return store_fail(st, STORE_ERR, "out of memory");
		}
		(*n)++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "listing MQTT sessions");
}

/* Index of sid in the ascending sids[], or n. */
static size_t find_sid(const int64_t *sids, size_t n, int64_t sid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sids[mid] < sid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && sids[lo] == sid ? lo : n;
}

static int list_subs(struct store *st, struct store_mqtt_session_full *v, const int64_t *sids,
                     size_t n)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_MQ_SUB_LIST, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t i = find_sid(sids, n, sqlite3_column_int64(s, 0));
		struct store_mqtt_sub *sub, *ns;
		bool ok;

		if (i == n)
			continue; /* cannot happen: deleted with its session */
		/* grown one at a time: a session has few subscriptions */
		if ((ns = realloc(v[i].subs, (v[i].nsubs + 1) * sizeof(*ns))) == NULL)
			goto oom;
		v[i].subs = ns;
		sub = &ns[v[i].nsubs];
		memset(sub, 0, sizeof(*sub));
		if ((sub->filter = col_str(s, 1, &ok)) == NULL)
			goto oom;
		sub->qos = (uint8_t)sqlite3_column_int(s, 2);
		sub->opts = (uint8_t)sqlite3_column_int(s, 3);
		sub->sub_id = (uint32_t)sqlite3_column_int64(s, 4);
		v[i].nsubs++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "listing MQTT subscriptions");
oom:
	sqlite3_reset(s);
	return store_fail(st, STORE_ERR, "out of memory");
}

static int list_counts(struct store *st, struct store_mqtt_session_full *v, const int64_t *sids,
                       size_t n)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_stmt_get(st, SQ_MQ_OUT_COUNT_ALL, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t i = find_sid(sids, n, sqlite3_column_int64(s, 0));
		if (i < n)
			v[i].queued = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "counting MQTT queues");
}

int store_mqtt_session_list(struct store *st, struct store_mqtt_session_full **out, size_t *n)
{
	struct store_mqtt_session_full *v = NULL;
	int64_t *sids = NULL;
	size_t cnt = 0;
	bool own;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = read_begin(st, &own)) != STORE_OK)
		return rc;
	/* sessions, then all subscriptions and queue counts in sid order:
	 * three statements for any number of sessions */
	if ((rc = list_sessions(st, &v, &sids, &cnt)) == STORE_OK &&
	    (rc = list_subs(st, v, sids, cnt)) == STORE_OK)
		rc = list_counts(st, v, sids, cnt);
	read_end(st, own);
	free(sids);
	if (rc != STORE_OK) {
		store_mqtt_sessions_free(v, cnt);
		return rc;
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), by_client_id);
	*out = v;
	*n = cnt;
	return STORE_OK;
}

/* ---- subscriptions ---- */

int store_mqtt_sub_put(struct store *st, const char *client_id, const struct store_mqtt_sub *sub)
{
	const char *what = "writing an MQTT subscription";
	sqlite3_stmt *s;
	size_t clen, flen;
	int rc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if (sub == NULL)
		return store_fail(st, STORE_BAD_ARG, "no subscription given");
	if ((rc = check_str(st, sub->filter, "topic filter", &flen)) != STORE_OK)
		return rc;
	if (sub->qos > 2)
		return store_fail(st, STORE_BAD_ARG, "QoS %u is out of range (0-2)", sub->qos);
	if ((rc = store_stmt_get(st, SQ_MQ_SUB_PUT, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = bind_str(s, 2, sub->filter, flen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 3, sub->qos)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 4, sub->opts)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 5, sub->sub_id)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK : no_session(st, client_id);
}

int store_mqtt_sub_delete(struct store *st, const char *client_id, const char *filter)
{
	const char *what = "deleting an MQTT subscription";
	sqlite3_stmt *s;
	size_t clen, flen;
	int rc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK ||
	    (rc = check_str(st, filter, "topic filter", &flen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_SUB_DEL, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = bind_str(s, 2, filter, flen)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "client id '%.64s' has no subscription"
	                            " '%.64s'", client_id, filter);
}

/* ---- queued publications ---- */

int store_mqtt_out_add(struct store *st, const char *client_id, struct store_mqtt_msg *m)
{
	const char *what = "queueing an MQTT publication";
	sqlite3_stmt *s;
	size_t clen, tlen;
	bool own;
	int rc, erc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK ||
	    (rc = check_msg(st, m, &tlen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_OUT_ADD, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = bind_str(s, 2, m->topic, tlen)) != SQLITE_OK ||
	    (rc = bind_bytes(s, 3, m->payload, m->payload_len, false)) != SQLITE_OK ||
	    (rc = bind_bytes(s, 4, m->props, m->props_len, true)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 5, m->qos)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 6, m->retain ? 1 : 0)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 7, m->expiry_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 8, m->put_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 9, m->pid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 10, m->state)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	/* not write_one: the rowid must be read before the transaction ends */
	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		sqlite3_reset(s);
		return rc;
	}
	rc = step_write(st, s, what, &changes);
	if (rc == STORE_OK && changes == 0)
		rc = no_session(st, client_id);
	if (rc == STORE_OK)
		m->seq = sqlite3_last_insert_rowid(st->db);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_mqtt_out_set(struct store *st, const char *client_id, int64_t seq, uint16_t pid,
                       uint8_t state)
{
	const char *what = "updating an MQTT publication";
	sqlite3_stmt *s;
	size_t clen;
	int rc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if (state > STORE_MQTT_RELSENT)
		return store_fail(st, STORE_BAD_ARG, "delivery state %u is out of range (0-2)", state);
	if ((rc = store_stmt_get(st, SQ_MQ_OUT_SET, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 3, pid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 4, state)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "client id '%.64s' has no queued"
	                            " publication %lld", client_id, (long long)seq);
}

/* A write keyed by (client id, one integer) that must change a row:
 * out_delete and in2_delete.  missing: the STORE_NOT_FOUND text. */
static int cid_int_write(struct store *st, enum store_stmt id, const char *client_id,
                         int64_t v, const char *what, const char *missing)
{
	sqlite3_stmt *s;
	size_t clen;
	int rc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, id, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, v)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "client id '%.64s' has no %s %lld",
	                            client_id, missing, (long long)v);
}

int store_mqtt_out_delete(struct store *st, const char *client_id, int64_t seq)
{
	return cid_int_write(st, SQ_MQ_OUT_DEL, client_id, seq, "deleting an MQTT publication",
	                     "queued publication");
}

void store_mqtt_msgs_free(struct store_mqtt_msg *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].topic);
		free(v[i].payload);
		free(v[i].props);
	}
	free(v);
}

struct mvec {
	struct store_mqtt_msg *v;
	size_t n, cap;
};

static struct store_mqtt_msg *mvec_add(struct mvec *mv)
{
	if (mv->n == mv->cap) {
		size_t cap = mv->cap ? mv->cap * 2 : 16;
		struct store_mqtt_msg *v = realloc(mv->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		mv->v = v;
		mv->cap = cap;
	}
	memset(&mv->v[mv->n], 0, sizeof(mv->v[0]));
	return &mv->v[mv->n++];
}

struct seqvec {
	int64_t *v;
	size_t n, cap;
};

static bool seqvec_add(struct seqvec *sv, int64_t seq)
{
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		int64_t *v = realloc(sv->v, cap * sizeof(*v));
		if (v == NULL)
			return false;
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = seq;
	return true;
}

/* Copies the blob columns of a row (topic at ti, payload, props after it). */
static bool msg_blobs(sqlite3_stmt *s, int ti, struct store_mqtt_msg *m)
{
	bool ok;

	m->topic = col_str(s, ti, &ok);
	return m->topic != NULL && col_bytes(s, ti + 1, &m->payload, &m->payload_len) &&
	       col_bytes(s, ti + 2, &m->props, &m->props_len);
}

/* Deletes the expired rows a load met. */
static int drop_expired(struct store *st, const struct seqvec *sv)
{
	const char *what = "removing expired MQTT publications";
	sqlite3_stmt *s;
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_OUT_DEL_SEQ, &s)) == STORE_OK) {
		for (size_t i = 0; i < sv->n && rc == STORE_OK; i++) {
			if ((rc = sqlite3_bind_int64(s, 1, sv->v[i])) != SQLITE_OK)
				rc = bind_fail(st, s, rc, what);
			else
				rc = step_write(st, s, what, NULL);
		}
	}
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_mqtt_out_load(struct store *st, const char *client_id, int64_t after_seq, size_t max,
                        int64_t now_ms, struct store_mqtt_msg **out, size_t *n)
{
	const char *what = "loading MQTT publications";
	struct mvec mv = { 0 };
	struct seqvec ex = { 0 };
	sqlite3_stmt *s;
	size_t clen;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if (max == 0)
		return STORE_OK;
	if ((rc = store_stmt_get(st, SQ_MQ_OUT_LOAD, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, after_seq)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	/* no LIMIT: expired rows do not count towards max, so the walk goes
	 * on until max live ones (the index is already in seq order) */
	while (mv.n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0), exp = sqlite3_column_int64(s, 6);
		struct store_mqtt_msg *m;

		if (exp != 0 && exp < now_ms) {
			if (!seqvec_add(&ex, seq))
				goto oom;
			continue;
		}
		if ((m = mvec_add(&mv)) == NULL)
			goto oom;
		m->seq = seq;
		if (!msg_blobs(s, 1, m))
			goto oom;
		m->qos = (uint8_t)sqlite3_column_int(s, 4);
		m->retain = sqlite3_column_int(s, 5) != 0;
		m->expiry_ms = exp;
		m->put_ms = sqlite3_column_int64(s, 7);
		m->pid = (uint16_t)sqlite3_column_int(s, 8);
		m->state = (uint8_t)sqlite3_column_int(s, 9);
	}
	sqlite3_reset(s);
	if (mv.n < max && rc != SQLITE_DONE) {
		rc = store_sqlfail(st, rc, what);
		goto fail;
	}
	/* after the reset: the read is over before the deletes */
	if (ex.n > 0 && (rc = drop_expired(st, &ex)) != STORE_OK)
		goto fail;
	free(ex.v);
	/* rows of a commit that is not durable yet do not leave the process */
	if (mv.n > 0 && !st->gate_off)
		store_durable_gate(st);
	*out = mv.v;
	*n = mv.n;
	return STORE_OK;
oom:
	sqlite3_reset(s);
	rc = store_fail(st, STORE_ERR, "out of memory");
fail:
	free(ex.v);
	store_mqtt_msgs_free(mv.v, mv.n);
	return rc;
}

/* The one value of a prepared (and bound) statement, or -1 (reason set). */
static int64_t step_value(struct store *st, sqlite3_stmt *s, const char *what)
{
	int64_t v = -1;
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		store_sqlfail(st, rc, what);
		return -1;
	}
	return v;
}

int64_t store_mqtt_out_count(struct store *st, const char *client_id)
{
	sqlite3_stmt *s;
	size_t clen;
	int rc;

	if (check_cid(st, client_id, &clen) != STORE_OK)
		return -1;
	if (store_stmt_get(st, SQ_MQ_OUT_COUNT, &s) != STORE_OK)
		return -1;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK) {
		bind_fail(st, s, rc, "counting MQTT publications");
		return -1;
	}
	return step_value(st, s, "counting MQTT publications");
}

int64_t store_mqtt_out_max(struct store *st)
{
	sqlite3_stmt *s;

	if (store_stmt_get(st, SQ_MQ_OUT_MAX, &s) != STORE_OK)
		return -1;
	return step_value(st, s, "reading the last MQTT publication");
}

/* ---- inbound QoS 2 ids ---- */

int store_mqtt_in2_put(struct store *st, const char *client_id, uint16_t pid)
{
	const char *what = "recording an MQTT QoS 2 packet id";
	sqlite3_stmt *s;
	size_t clen;
	int64_t sid;
	bool own;
	int rc, erc, changes = 0;

	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_IN2_PUT, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 2, pid)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		sqlite3_reset(s);
		return rc;
	}
	rc = step_write(st, s, what, &changes);
	/* nothing inserted: already there (a resent PUBLISH), or no session */
	if (rc == STORE_OK && changes == 0)
		rc = sid_of(st, client_id, clen, &sid);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_mqtt_in2_delete(struct store *st, const char *client_id, uint16_t pid)
{
	return cid_int_write(st, SQ_MQ_IN2_DEL, client_id, pid, "releasing an MQTT QoS 2 packet id",
	                     "QoS 2 packet id");
}

int store_mqtt_in2_list(struct store *st, const char *client_id, uint16_t **pids, size_t *n)
{
	uint16_t *v = NULL;
	size_t cnt = 0, cap = 0, clen;
	sqlite3_stmt *s;
	int rc;

	*pids = NULL;
	*n = 0;
	if ((rc = check_cid(st, client_id, &clen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_IN2_LIST, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, client_id, clen)) != SQLITE_OK)
		return bind_fail(st, s, rc, "listing MQTT QoS 2 packet ids");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint16_t *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				sqlite3_reset(s);
				free(v);
				return store_fail(st, STORE_ERR, "out of memory");
			}
			v = nv;
			cap = nc;
		}
		v[cnt++] = (uint16_t)sqlite3_column_int(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_sqlfail(st, rc, "listing MQTT QoS 2 packet ids");
	}
	*pids = v;
	*n = cnt;
	return STORE_OK;
}

/* ---- retained messages ---- */

int store_mqtt_retain_put(struct store *st, const struct store_mqtt_msg *m)
{
	const char *what = "writing a retained MQTT message";
	sqlite3_stmt *s;
	size_t tlen;
	int rc;

	if ((rc = check_msg(st, m, &tlen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_R_PUT, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, m->topic, tlen)) != SQLITE_OK ||
	    (rc = bind_bytes(s, 2, m->payload, m->payload_len, false)) != SQLITE_OK ||
	    (rc = bind_bytes(s, 3, m->props, m->props_len, true)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 4, m->qos)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 5, m->expiry_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 6, m->put_ms)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	return write_one(st, s, what, NULL);
}

int store_mqtt_retain_delete(struct store *st, const char *topic)
{
	const char *what = "deleting a retained MQTT message";
	sqlite3_stmt *s;
	size_t tlen;
	int rc, changes = 0;

	if ((rc = check_str(st, topic, "topic", &tlen)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_MQ_R_DEL, &s)) != STORE_OK)
		return rc;
	if ((rc = bind_str(s, 1, topic, tlen)) != SQLITE_OK)
		return bind_fail(st, s, rc, what);
	if ((rc = write_one(st, s, what, &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "no retained message on '%.64s'", topic);
}

int store_mqtt_retain_list(struct store *st, struct store_mqtt_msg **out, size_t *n)
{
	struct mvec mv = { 0 };
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_stmt_get(st, SQ_MQ_R_LIST, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_mqtt_msg *m = mvec_add(&mv);

		if (m == NULL || !msg_blobs(s, 1, m)) {
			sqlite3_reset(s);
			store_mqtt_msgs_free(mv.v, mv.n);
			return store_fail(st, STORE_ERR, "out of memory");
		}
		m->seq = sqlite3_column_int64(s, 0);
		m->qos = (uint8_t)sqlite3_column_int(s, 4);
		m->retain = true;
		m->expiry_ms = sqlite3_column_int64(s, 5);
		m->put_ms = sqlite3_column_int64(s, 6);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_mqtt_msgs_free(mv.v, mv.n);
		return store_sqlfail(st, rc, "listing retained MQTT messages");
	}
	*out = mv.v;
	*n = mv.n;
	return STORE_OK;
}
