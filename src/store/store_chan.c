/* Channel definitions (opaque text owned by the channel module) and channel
 * sync records (the exactly-once bookkeeping of senders and receivers). */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static int check_chl(struct store *st, const char *name)
{
	char why[160];

	if (name == NULL || !name_valid(name, why, sizeof(why)))
		return store_fail(st, STORE_BAD_NAME, "channel: %s", name ? why : "name is missing");
	return STORE_OK;
}

/* One write statement in its own transaction, or the caller's. */
static int write_one(struct store *st, sqlite3_stmt *s, const char *what, int *changes)
{
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK) {
		sqlite3_reset(s);
		return rc;
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		rc = STORE_OK;
		if (changes != NULL)
			*changes = sqlite3_changes(st->db);
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = STORE_EXISTS; /* statement-level: the transaction goes on */
	} else {
		rc = store_sqlfail(st, rc, what);
	}
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_chandef_put(struct store *st, const char *name, const char *attrs, bool replace)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = check_chl(st, name)) != STORE_OK)
		return rc;
	if (attrs == NULL)
		return store_fail(st, STORE_BAD_ARG, "channel '%s': no attributes given", name);
	if ((rc = store_stmt_get(st, replace ? SQ_CD_REPLACE : SQ_CD_INSERT, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(s, 2, attrs, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 3, time_now_ms())) != SQLITE_OK) {
		sqlite3_reset(s);
		return store_sqlfail(st, rc, "writing a channel definition");
	}
	rc = write_one(st, s, "writing a channel definition", NULL);
	if (rc == STORE_EXISTS)
		return store_fail(st, STORE_EXISTS, "channel '%s' already exists (use replace)", name);
	return rc;
}

int store_chandef_get(struct store *st, const char *name, char **attrs)
{
	sqlite3_stmt *s;
	int rc;

	*attrs = NULL;
	if ((rc = check_chl(st, name)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_CD_GET, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlfail(st, rc, "reading a channel definition");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		*attrs = strdup(t ? t : "");
		sqlite3_reset(s);
		return *attrs ? STORE_OK : store_fail(st, STORE_ERR, "out of memory");
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_NOT_FOUND, "channel '%s' is not defined", name);
	return store_sqlfail(st, rc, "reading a channel definition");
}

int store_chandef_delete(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int rc, changes = 0;

	if ((rc = check_chl(st, name)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_CD_DELETE, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlfail(st, rc, "deleting a channel definition");
	if ((rc = write_one(st, s, "deleting a channel definition", &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "channel '%s' is not defined", name);
}

int store_chandef_list(struct store *st, const char *pattern, char ***names, size_t *n)
{
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	int rc;

	*names = NULL;
	*n = 0;
	if ((rc = store_stmt_get(st, SQ_CD_LIST, &s)) != STORE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		if (t == NULL || !name_match(pattern, t))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL)
				goto oom;
			v = nv;
			cap = ncap;
		}
		if ((v[cnt] = strdup(t)) == NULL)
			goto oom;
		cnt++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rc = store_sqlfail(st, rc, "listing channels");
		goto fail;
	}
	*names = v;
	*n = cnt;
	return STORE_OK;
oom:
	sqlite3_reset(s);
	rc = store_fail(st, STORE_ERR, "out of memory");
fail:
	while (cnt > 0)
		free(v[--cnt]);
	free(v);
	return rc;
}

int store_sync_get(struct store *st, const char *channel, struct chan_sync *out)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_chl(st, channel)) != STORE_OK)
		return rc;
	str_copy(out->name, channel, sizeof(out->name));
	if ((rc = store_stmt_get(st, SQ_CS_GET, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlfail(st, rc, "reading a channel sync record");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->seq = (uint64_t)sqlite3_column_int64(s, 0);
		out->batch_id = (uint64_t)sqlite3_column_int64(s, 1);
		out->indoubt = sqlite3_column_int(s, 2) != 0;
		out->indoubt_batch = (uint64_t)sqlite3_column_int64(s, 3);
		out->indoubt_seq = (uint64_t)sqlite3_column_int64(s, 4);
		out->indoubt_count = (uint32_t)sqlite3_column_int64(s, 5);
		out->updated_ms = sqlite3_column_int64(s, 6);
		sqlite3_reset(s);
		return STORE_OK;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_NOT_FOUND, "channel '%s' has no sync record", channel);
	return store_sqlfail(st, rc, "reading a channel sync record");
}

int store_sync_set(struct store *st, const struct chan_sync *cs)
{
	sqlite3_stmt *s;
	int rc;

	if (cs == NULL || !store_fixed_ok(cs->name, sizeof(cs->name)))
		return store_fail(st, STORE_BAD_ARG, "invalid channel sync record");
	if ((rc = check_chl(st, cs->name)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_CS_SET, &s)) != STORE_OK)
		return rc;
	/* uint64 values travel as their int64 bit pattern and come back intact */
	if ((rc = sqlite3_bind_text(s, 1, cs->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 2, (int64_t)cs->seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 3, (int64_t)cs->batch_id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(s, 4, cs->indoubt)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 5, (int64_t)cs->indoubt_batch)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 6, (int64_t)cs->indoubt_seq)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 7, (int64_t)cs->indoubt_count)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s, 8, time_now_ms())) != SQLITE_OK) {
		sqlite3_reset(s);
		return store_sqlfail(st, rc, "writing a channel sync record");
	}
	return write_one(st, s, "writing a channel sync record", NULL);
}

int store_sync_delete(struct store *st, const char *channel)
{
	sqlite3_stmt *s;
	int rc, changes = 0;

	if ((rc = check_chl(st, channel)) != STORE_OK)
		return rc;
	if ((rc = store_stmt_get(st, SQ_CS_DELETE, &s)) != STORE_OK)
		return rc;
	if ((rc = sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlfail(st, rc, "deleting a channel sync record");
	if ((rc = write_one(st, s, "deleting a channel sync record", &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK
	               : store_fail(st, STORE_NOT_FOUND, "channel '%s' has no sync record", channel);
}
