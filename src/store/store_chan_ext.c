/* Channel extras beside the sync records: in-doubt batch membership and a
 * pending reset (include/chand/store_ext.h).  Statements are prepared per
 * call: these run once per batch, next to an fsync that costs far more. */
#include <stdlib.h>
#include <string.h>

#include "chand/store_ext.h"
#include "store_int.h"

#define MEMBER_LEN (8 + MSG_ID_LEN)

static const char ext_schema[] =
	"CREATE TABLE IF NOT EXISTS main.chan_ext ("
	" name TEXT PRIMARY KEY,"
	" reset_pending INTEGER NOT NULL DEFAULT 0,"
	" stopped INTEGER NOT NULL DEFAULT 0,"
	" members BLOB)";

/* Added by protocol version 2 (several batches in flight): the in-doubt
 * batches in order, BATCH_LEN bytes each (batch id, last seq, message
 * count, member count); the members blob holds their members in the same
 * order.  A row without it (written by an older chand, or with one
 * batch) has all its members in the sync record's in-doubt batch. */
static const char ext_batches_col[] = "ALTER TABLE main.chan_ext ADD COLUMN batches BLOB";

#define BATCH_LEN (8 + 4 + 4 + 4)

static int ext_prepare(struct store *st, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);

	if (rc != SQLITE_OK) {
		*s = NULL;
		return store_sqlfail(st, rc, "preparing a channel bookkeeping statement");
	}
	return STORE_OK;
}

int store_ext_tune(struct store *st)
{
	int rc = sqlite3_exec(st->db, "PRAGMA main.cache_size = -8192;", NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sqlfail(st, rc, "tuning a channel's handle");
}

int store_ext_init(struct store *st)
{
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	rc = sqlite3_exec(st->db, ext_schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = store_sqlfail(st, rc, "creating the channel bookkeeping table");
	} else {
		sqlite3_stmt *probe = NULL;
		/* the column is there when a statement naming it compiles */
		if (sqlite3_prepare_v2(st->db, "SELECT batches FROM main.chan_ext LIMIT 0", -1, &probe,
		                       NULL) == SQLITE_OK) {
			rc = STORE_OK;
		} else {
			rc = sqlite3_exec(st->db, ext_batches_col, NULL, NULL, NULL);
			rc = rc == SQLITE_OK ? STORE_OK
			                     : store_sqlfail(st, rc, "adding the in-doubt batch list");
		}
		sqlite3_finalize(probe);
	}
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

/* Runs one write statement (bound by the caller) in its own or the
 * caller's transaction. */
static int ext_write(struct store *st, sqlite3_stmt *s, const char *what)
{
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		sqlite3_finalize(s);
		return rc;
	}
	rc = sqlite3_step(s);
	rc = rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, what);
	sqlite3_finalize(s);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

static void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int members_decode(struct store *st, const uint8_t *b, size_t len,
                          struct store_member **members, size_t *n)
{
	size_t cnt = len / MEMBER_LEN;
	struct store_member *m;

	if (b == NULL || cnt == 0)
		return STORE_OK;
	if ((m = calloc(cnt, sizeof(*m))) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		m[i].seq = (int64_t)be64_get(b + i * MEMBER_LEN);
		memcpy(m[i].msgid, b + i * MEMBER_LEN + 8, MSG_ID_LEN);
	}
	*members = m;
	*n = cnt;
	return STORE_OK;
}

/* The batch list must account for every member, in order: a list that
 * does not is refused rather than guessed at. */
static int batches_decode(struct store *st, const uint8_t *b, size_t len, size_t nmem,
                          struct store_indoubt **out, size_t *nb)
{
	size_t cnt = len / BATCH_LEN, at = 0;
	struct store_indoubt *v;

	if (b == NULL || cnt == 0)
		return STORE_OK;
	if (len % BATCH_LEN != 0 || (v = calloc(cnt, sizeof(*v))) == NULL)
		return store_fail(st, STORE_ERR, "in-doubt batch list: %s",
		                  len % BATCH_LEN ? "damaged record" : "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		const uint8_t *p = b + i * BATCH_LEN;
		v[i].batch_id = be64_get(p);
		v[i].last_seq = be32_get(p + 8);
		v[i].count = be32_get(p + 12);
		v[i].first = at;
		v[i].n = be32_get(p + 16);
		at += v[i].n;
		if (at > nmem || (i > 0 && v[i].batch_id != v[i - 1].batch_id + 1)) {
			free(v);
			return store_fail(st, STORE_ERR, "in-doubt batch list: damaged record");
		}
	}
	if (at != nmem) {
		free(v);
		return store_fail(st, STORE_ERR, "in-doubt batch list: damaged record");
	}
	*out = v;
	*nb = cnt;
	return STORE_OK;
}

int store_ext_get_indoubt(struct store *st, const char *channel, bool *reset_pending,
                          struct store_indoubt **batches, size_t *nb,
                          struct store_member **members, size_t *n)
{
	sqlite3_stmt *s;
	int rc;

	*reset_pending = false;
	*members = NULL;
	*n = 0;
	if (batches != NULL) {
		*batches = NULL;
		*nb = 0;
	}
	if ((rc = ext_prepare(st, "SELECT reset_pending, members, batches FROM main.chan_ext"
	                          " WHERE name = ?1", &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "reading channel bookkeeping");
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*reset_pending = sqlite3_column_int(s, 0) != 0;
		rc = members_decode(st, sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1),
		                    members, n);
		if (rc == STORE_OK && batches != NULL)
			rc = batches_decode(st, sqlite3_column_blob(s, 2),
			                    (size_t)sqlite3_column_bytes(s, 2), *n, batches, nb);
		sqlite3_finalize(s);
		if (rc != STORE_OK) {
			free(*members);
			*members = NULL;
			*n = 0;
		}
		return rc;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "reading channel bookkeeping");
}

int store_ext_get(struct store *st, const char *channel, bool *reset_pending,
                  struct store_member **members, size_t *n)
{
	return store_ext_get_indoubt(st, channel, reset_pending, NULL, NULL, members, n);
}

static int set_blob(struct store *st, const char *channel, const uint8_t *blob, size_t len,
                    const uint8_t *bl, size_t bllen)
{
	sqlite3_stmt *s;
	int rc;

	rc = ext_prepare(st, "INSERT INTO main.chan_ext (name, members, batches) VALUES (?1, ?2, ?3)"
	                     " ON CONFLICT (name) DO UPDATE SET members = excluded.members,"
	                     " batches = excluded.batches", &s);
	if (rc != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = blob != NULL ? sqlite3_bind_blob64(s, 2, blob, len, SQLITE_STATIC)
	                       : sqlite3_bind_null(s, 2)) != SQLITE_OK ||
	    (rc = bl != NULL ? sqlite3_bind_blob64(s, 3, bl, bllen, SQLITE_STATIC)
	                     : sqlite3_bind_null(s, 3)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "recording an in-doubt batch");
	}
	return ext_write(st, s, "recording an in-doubt batch");
}

int store_ext_set_indoubt(struct store *st, const char *channel, const struct store_indoubt *b,
                          const struct msg_list *const *msgs, size_t nb)
{
	uint8_t stackbuf[64 * MEMBER_LEN], *mb = stackbuf, *bl = NULL;
	size_t total = 0, n = 0;
	int rc;

	for (size_t k = 0; k < nb; k++)
		total += msgs[k] != NULL ? msgs[k]->n : 0;
	if (total > 64 && (mb = malloc(total * MEMBER_LEN)) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	if (nb > 0 && (bl = malloc(nb * BATCH_LEN)) == NULL) {
		if (mb != stackbuf)
			free(mb);
		return store_fail(st, STORE_ERR, "out of memory");
	}
	for (size_t k = 0; k < nb; k++) {
		size_t before = n;
		for (size_t i = 0; msgs[k] != NULL && i < msgs[k]->n; i++) {
			const struct chd_msg *m = &msgs[k]->v[i];
			if (!m->persistent || m->seq <= 0)
				continue;
			be64_put(mb + n * MEMBER_LEN, (uint64_t)m->seq);
			memcpy(mb + n * MEMBER_LEN + 8, m->msgid, MSG_ID_LEN);
			n++;
		}
		be64_put(bl + k * BATCH_LEN, b[k].batch_id);
		be32_put(bl + k * BATCH_LEN + 8, b[k].last_seq);
		be32_put(bl + k * BATCH_LEN + 12, b[k].count);
		be32_put(bl + k * BATCH_LEN + 16, (uint32_t)(n - before));
	}
	rc = set_blob(st, channel, n ? mb : NULL, n * MEMBER_LEN, bl, nb * BATCH_LEN);
	if (mb != stackbuf)
		free(mb);
	free(bl);
	return rc;
}

int store_ext_set_members(struct store *st, const char *channel, const struct msg_list *msgs)
{
	uint8_t stackbuf[64 * MEMBER_LEN], *b = stackbuf;
	size_t n = 0;
	int rc;

	if (msgs != NULL && msgs->n > 64 && (b = malloc(msgs->n * MEMBER_LEN)) == NULL)
		return store_fail(st, STORE_ERR, "out of memory");
	for (size_t i = 0; msgs != NULL && i < msgs->n; i++) {
		if (!msgs->v[i].persistent || msgs->v[i].seq <= 0)
			continue;
		be64_put(b + n * MEMBER_LEN, (uint64_t)msgs->v[i].seq);
		memcpy(b + n * MEMBER_LEN + 8, msgs->v[i].msgid, MSG_ID_LEN);
		n++;
	}
	rc = set_blob(st, channel, n ? b : NULL, n * MEMBER_LEN, NULL, 0);
	if (b != stackbuf)
		free(b);
	return rc;
}

int store_ext_clear_members(struct store *st, const char *channel)
{
	return set_blob(st, channel, NULL, 0, NULL, 0);
}

int store_ext_set_reset(struct store *st, const char *channel, bool pending)
{
	sqlite3_stmt *s;
	int rc;

	rc = ext_prepare(st, "INSERT INTO main.chan_ext (name, reset_pending) VALUES (?1, ?2)"
	                     " ON CONFLICT (name) DO UPDATE SET reset_pending = excluded.reset_pending",
	                 &s);
	if (rc != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 2, pending ? 1 : 0)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "recording a channel reset");
	}
	return ext_write(st, s, "recording a channel reset");
}

int store_ext_get_stopped(struct store *st, const char *channel, bool *stopped)
{
	sqlite3_stmt *s;
	int rc;

	*stopped = false;
	if ((rc = ext_prepare(st, "SELECT stopped FROM main.chan_ext WHERE name = ?1", &s)) !=
	    STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "reading channel bookkeeping");
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*stopped = sqlite3_column_int(s, 0) != 0;
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : store_sqlfail(st, rc, "reading channel bookkeeping");
}

int store_ext_set_stopped(struct store *st, const char *channel, bool stopped)
{
	sqlite3_stmt *s;
	int rc;

	rc = ext_prepare(st, "INSERT INTO main.chan_ext (name, stopped) VALUES (?1, ?2)"
	                     " ON CONFLICT (name) DO UPDATE SET stopped = excluded.stopped", &s);
	if (rc != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 2, stopped ? 1 : 0)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "recording a stopped channel");
	}
	return ext_write(st, s, "recording a stopped channel");
}

int store_ext_delete(struct store *st, const char *channel)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ext_prepare(st, "DELETE FROM main.chan_ext WHERE name = ?1", &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_sqlfail(st, rc, "deleting channel bookkeeping");
	}
	return ext_write(st, s, "deleting channel bookkeeping");
}

int store_ext_present(struct store *st, const struct store_member *m, size_t n,
                      struct msg_list *out)
{
	sqlite3_stmt *s;
	int rc = STORE_OK;

	if (n == 0)
		return STORE_OK;
	if ((rc = ext_prepare(st, "SELECT 1 FROM main.messages WHERE seq = ?1 AND msgid = ?2",
	                      &s)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = sqlite3_bind_int64(s, 1, m[i].seq)) != SQLITE_OK ||
		    (rc = sqlite3_bind_blob(s, 2, m[i].msgid, MSG_ID_LEN, SQLITE_STATIC)) != SQLITE_OK) {
			rc = store_sqlfail(st, rc, "reading in-doubt messages");
			break;
		}
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_ROW) {
			struct chd_msg *x = msg_list_add(out);
			if (x == NULL) {
				rc = store_fail(st, STORE_ERR, "out of memory");
				break;
			}
			x->seq = m[i].seq;
			x->persistent = true;
			memcpy(x->msgid, m[i].msgid, MSG_ID_LEN);
			rc = STORE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = STORE_OK;
		} else {
			rc = store_sqlfail(st, rc, "reading in-doubt messages");
			break;
		}
	}
	sqlite3_finalize(s);
	return rc;
}
