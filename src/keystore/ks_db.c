/* The keystore file: SQLite schema, password verifier and entry rows.
 * Only this file (and the queue store) speaks SQL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <gnutls/crypto.h>

#include "chand/util.h"
#include "ks_int.h"

/* PBKDF2 iterations of the password verifier: the same work factor GnuTLS
 * uses for the PKCS#8 keys, so the verifier is no cheaper to attack than
 * the keys it guards (about 80 ms on a laptop core). */
#define KS_KDF_ITER 600000u
#define KS_KDF_SALT 16

struct ks_db {
	sqlite3 *db;
	char *path;
};

static const char ks_schema[] =
	"CREATE TABLE kdf ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  algo TEXT NOT NULL,"
	"  iter INTEGER NOT NULL,"
	"  salt BLOB NOT NULL,"
	"  hash BLOB NOT NULL);"
	"CREATE TABLE entry ("
	"  label TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('personal', 'trusted', 'crl')),"
	"  der BLOB NOT NULL,"
	"  key BLOB,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE chain ("
	"  label TEXT NOT NULL,"
	"  pos INTEGER NOT NULL,"
	"  der BLOB NOT NULL,"
	"  PRIMARY KEY (label, pos));"
	"PRAGMA user_version = 1;";

static int ks_db_exec(sqlite3 *db, const char *sql, const char *path, char *err, size_t errlen);
static int ks_db_create_file(const char *path, const char *password, char *err, size_t errlen);
static int ks_db_schema_check(struct ks_db *k, char *err, size_t errlen);
static int ks_blob_dup(sqlite3_stmt *st, int col, gnutls_datum_t *out);
static int ks_db_load_chain(struct ks_db *k, struct ks_entry *e, char *err, size_t errlen);
static int ks_row_to_entry(sqlite3_stmt *st, struct ks_entry *e);
static int ks_kind_parse(const char *s, enum ks_kind *k);

const char *ks_kind_name(enum ks_kind k)
{
	switch (k) {
	case KS_KIND_PERSONAL: return "personal";
	case KS_KIND_TRUSTED: return "trusted";
	case KS_KIND_CRL: return "crl";
	}
	return "?";
}

static int ks_kind_parse(const char *s, enum ks_kind *k)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "personal") == 0)
		*k = KS_KIND_PERSONAL;
	else if (strcmp(s, "trusted") == 0)
		*k = KS_KIND_TRUSTED;
	else if (strcmp(s, "crl") == 0)
		*k = KS_KIND_CRL;
	else
		return -1;
	return 0;
}

static int ks_db_exec(sqlite3 *db, const char *sql, const char *path, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "keystore %s: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The file is made under umask 077 and fchmod'ed, so it is 0600 from its
 * first byte; SQLite gives its journal the database file's mode. */
int ks_db_create(const char *path, const char *password, char *err, size_t errlen)
{
	mode_t old = umask(077);
	int rc = ks_db_create_file(path, password, err, errlen);

	umask(old);
	return rc;
}

static int ks_db_create_file(const char *path, const char *password, char *err, size_t errlen)
{
	uint8_t salt[KS_KDF_SALT], hash[32];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int fd, rc = -1;

	/* O_EXCL: never overwrite, even if another process races us. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			snprintf(err, errlen, "keystore %s already exists; refusing to overwrite it", path);
		else
			snprintf(err, errlen, "cannot create keystore %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) != 0) {
		snprintf(err, errlen, "cannot chmod keystore %s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	close(fd);

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open keystore %s: %s", path,
		         db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	if (gnutls_rnd(GNUTLS_RND_RANDOM, salt, sizeof salt) != 0 ||
	    ks_pw_derive(password, salt, sizeof salt, KS_KDF_ITER, hash) != 0) {
		snprintf(err, errlen, "keystore %s: cannot derive the password verifier", path);
		goto fail;
	}
	if (ks_db_exec(db, "BEGIN", path, err, errlen) != 0 ||
	    ks_db_exec(db, ks_schema, path, err, errlen) != 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO kdf (id, algo, iter, salt, hash) "
	                       "VALUES (1, 'pbkdf2-sha256', ?, ?, ?)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, KS_KDF_ITER) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, salt, sizeof salt, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, hash, sizeof hash, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		snprintf(err, errlen, "keystore %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (ks_db_exec(db, "COMMIT", path, err, errlen) != 0)
		goto fail;
	rc = 0;
fail:
	secure_zero(hash, sizeof hash);
	sqlite3_finalize(st);
	if (db != NULL && sqlite3_close(db) != SQLITE_OK && rc == 0) {
		snprintf(err, errlen, "keystore %s: close failed", path);
		rc = -1;
	}
	if (rc != 0)
		unlink(path);
	return rc;
}

int ks_db_open(const char *path, const char *stash, bool writable, struct ks_db **out,
               enum chd_code_id *code, char *err, size_t errlen)
{
	struct ks_db *k;
	struct stat st;
	char why[512];

	*out = NULL;
	*code = CHD_KS_OPEN;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "keystore %s does not exist (create it with "
			         "chanctl keystore create)", path);
		else
			snprintf(err, errlen, "cannot read keystore %s: %s", path, strerror(errno));
		return -1;
	}
	if (file_check_secret(path, why, sizeof why) != 0) {
		*code = S_ISREG(st.st_mode) ? CHD_KS_PERMS : CHD_KS_OPEN;
		snprintf(err, errlen, "keystore %s", why);
		return -1;
	}
	if (stash != NULL && stat(stash, &st) == 0 &&
	    file_check_secret(stash, why, sizeof why) != 0) {
		*code = CHD_KS_PERMS;
		snprintf(err, errlen, "stash %s", why);
		return -1;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL || (k->path = strdup(path)) == NULL) {
		free(k);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* no symbolic link here either, should one be swapped in after the check */
	if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_NOFOLLOW |
	                    (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY), NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open keystore %s: %s", path,
		         k->db ? sqlite3_errmsg(k->db) : "out of memory");
		ks_db_close(k);
		return -1;
	}
	sqlite3_busy_timeout(k->db, 5000);
	if (ks_db_schema_check(k, err, errlen) != 0) {
		ks_db_close(k);
		return -1;
	}
	*out = k;
	return 0;
}

static int ks_db_schema_check(struct ks_db *k, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ver = -1;

	if (sqlite3_prepare_v2(k->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ver = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (ver < 0) {
		snprintf(err, errlen, "%s is not a chand keystore: %s", k->path, sqlite3_errmsg(k->db));
		return -1;
	}
	if (ver == 0) {
		snprintf(err, errlen, "%s is not a chand keystore (no schema)", k->path);
		return -1;
	}
	if (ver > KS_SCHEMA_VERSION) {
		snprintf(err, errlen, "keystore %s has schema %d, newer than this chand knows (%d)",
		         k->path, ver, KS_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

int ks_db_check_password(struct ks_db *k, const char *password,
                         enum chd_code_id *code, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	uint8_t hash[32];
	int rc = -1;

	*code = CHD_KS_OPEN;
	if (sqlite3_prepare_v2(k->db, "SELECT algo, iter, salt, hash FROM kdf WHERE id = 1",
	                       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "keystore %s is damaged: %s", k->path, sqlite3_errmsg(k->db));
		return -1;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errlen, "keystore %s is damaged: no password verifier", k->path);
		goto out;
	}
	{
		const char *algo = (const char *)sqlite3_column_text(st, 0);
		sqlite3_int64 iter = sqlite3_column_int64(st, 1);
		const void *salt = sqlite3_column_blob(st, 2);
		int saltlen = sqlite3_column_bytes(st, 2);
		const void *want = sqlite3_column_blob(st, 3);
		int wantlen = sqlite3_column_bytes(st, 3);

		if (algo == NULL || strcmp(algo, "pbkdf2-sha256") != 0 || iter < 1 ||
		    iter > 100000000 || salt == NULL || saltlen < 8 || want == NULL ||
		    wantlen != (int)sizeof hash) {
			snprintf(err, errlen, "keystore %s is damaged: bad password verifier", k->path);
			goto out;
		}
		if (ks_pw_derive(password, salt, (size_t)saltlen, (unsigned)iter, hash) != 0) {
			snprintf(err, errlen, "keystore %s: cannot derive the password verifier", k->path);
			goto out;
		}
		if (!ks_ct_equal(hash, want, sizeof hash)) {
			*code = CHD_KS_PASSWORD;
			snprintf(err, errlen, "wrong password for keystore %s", k->path);
			goto out;
		}
	}
	rc = 0;
out:
	secure_zero(hash, sizeof hash);
	sqlite3_finalize(st);
	return rc;
}

void ks_db_close(struct ks_db *k)
{
	if (k == NULL)
		return;
	if (k->db != NULL)
		sqlite3_close(k->db);
	free(k->path);
	free(k);
}

int ks_db_begin(struct ks_db *k, char *err, size_t errlen)
{
	return ks_db_exec(k->db, "BEGIN IMMEDIATE", k->path, err, errlen);
}

int ks_db_commit(struct ks_db *k, char *err, size_t errlen)
{
	if (ks_db_exec(k->db, "COMMIT", k->path, err, errlen) != 0) {
		ks_db_rollback(k);
		return -1;
	}
	return 0;
}

void ks_db_rollback(struct ks_db *k)
{
	sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
}

int ks_db_exists(struct ks_db *k, const char *label, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(k->db, "SELECT 1 FROM entry WHERE label = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC) != SQLITE_OK) {
		snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
	return -1;
}

int ks_db_insert(struct ks_db *k, const struct ks_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	unsigned i;

	if (sqlite3_prepare_v2(k->db, "INSERT INTO entry (label, kind, der, key, created) "
	                       "VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, e->label, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, ks_kind_name(e->kind), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, e->der.data, (int)e->der.size, SQLITE_STATIC) != SQLITE_OK ||
	    (e->key.data != NULL
	     ? sqlite3_bind_blob(st, 4, e->key.data, (int)e->key.size, SQLITE_STATIC)
	     : sqlite3_bind_null(st, 4)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, e->created) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(k->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
			snprintf(err, errlen, "label %s already exists in keystore %s", e->label, k->path);
			sqlite3_finalize(st);
			return -1;
		}
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < e->nchain; i++) {
		if (sqlite3_prepare_v2(k->db, "INSERT INTO chain (label, pos, der) VALUES (?, ?, ?)",
		                       -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_bind_text(st, 1, e->label, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int(st, 2, (int)i) != SQLITE_OK ||
		    sqlite3_bind_blob(st, 3, e->chain[i].data, (int)e->chain[i].size,
		                      SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
	}
	return 0;
fail:
	snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
	sqlite3_finalize(st);
	return -1;
}

int ks_db_remove(struct ks_db *k, const char *label, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int changed;

	if (sqlite3_prepare_v2(k->db, "DELETE FROM chain WHERE label = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(k->db, "DELETE FROM entry WHERE label = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	changed = sqlite3_changes(k->db);
	sqlite3_finalize(st);
	return changed > 0 ? 0 : 1;
fail:
	snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
	sqlite3_finalize(st);
	return -1;
}

static int ks_blob_dup(sqlite3_stmt *st, int col, gnutls_datum_t *out)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);

	out->data = NULL;
	out->size = 0;
	if (p == NULL || n <= 0)
		return 0;
	out->data = malloc((size_t)n);
	if (out->data == NULL)
		return -1;
	memcpy(out->data, p, (size_t)n);
	out->size = (unsigned)n;
	return 0;
}

static int ks_row_to_entry(sqlite3_stmt *st, struct ks_entry *e)
{
	const char *label = (const char *)sqlite3_column_text(st, 0);

	memset(e, 0, sizeof *e);
	if (label == NULL || strlen(label) > KS_LABEL_MAX ||
	    ks_kind_parse((const char *)sqlite3_column_text(st, 1), &e->kind) != 0)
		return -1;
	str_copy(e->label, label, sizeof e->label);
	if (ks_blob_dup(st, 2, &e->der) != 0 || e->der.data == NULL ||
	    ks_blob_dup(st, 3, &e->key) != 0)
		return -1;
	e->created = sqlite3_column_int64(st, 4);
	return 0;
}

static int ks_db_load_chain(struct ks_db *k, struct ks_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(k->db, "SELECT der FROM chain WHERE label = ? ORDER BY pos",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, e->label, -1, SQLITE_STATIC) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		gnutls_datum_t *n = realloc(e->chain, (e->nchain + 1) * sizeof *n);

		if (n == NULL)
			goto fail;
		e->chain = n;
		if (ks_blob_dup(st, 0, &e->chain[e->nchain]) != 0 ||
		    e->chain[e->nchain].data == NULL)
			goto fail;
		e->nchain++;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return 0;
fail:
	snprintf(err, errlen, "keystore %s: cannot read the chain of %s: %s", k->path, e->label,
	         sqlite3_errmsg(k->db));
	sqlite3_finalize(st);
	return -1;
}

int ks_db_get(struct ks_db *k, const char *label, struct ks_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(e, 0, sizeof *e);
	if (sqlite3_prepare_v2(k->db, "SELECT label, kind, der, key, created FROM entry "
	                       "WHERE label = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC) != SQLITE_OK) {
		snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 1;
	}
	if (rc != SQLITE_ROW || ks_row_to_entry(st, e) != 0) {
		snprintf(err, errlen, "keystore %s: cannot read entry %s: %s", k->path, label,
		         rc == SQLITE_ROW ? "damaged row" : sqlite3_errmsg(k->db));
		sqlite3_finalize(st);
		ks_entry_clear(e);
		return -1;
	}
	sqlite3_finalize(st);
	if (ks_db_load_chain(k, e, err, errlen) != 0) {
		ks_entry_clear(e);
		return -1;
	}
	return 0;
}

int ks_db_list(struct ks_db *k, struct ks_entry **out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct ks_entry *v = NULL;
	size_t cnt = 0, i;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(k->db, "SELECT label, kind, der, key, created FROM entry "
	                       "ORDER BY label", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ks_entry *nv = realloc(v, (cnt + 1) * sizeof *nv);

		if (nv == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		v = nv;
		if (ks_row_to_entry(st, &v[cnt]) != 0) {
			ks_entry_clear(&v[cnt]);
			snprintf(err, errlen, "keystore %s: damaged entry", k->path);
			goto fail;
		}
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "keystore %s: %s", k->path, sqlite3_errmsg(k->db));
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < cnt; i++)
		if (ks_db_load_chain(k, &v[i], err, errlen) != 0)
			goto fail;
	*out = v;
	*n = cnt;
	return 0;
fail:
	sqlite3_finalize(st);
	ks_entries_free(v, cnt);
	return -1;
}

void ks_entry_clear(struct ks_entry *e)
{
	unsigned i;

	if (e == NULL)
		return;
	free(e->der.data);
	ks_datum_wipe(&e->key);
	for (i = 0; i < e->nchain; i++)
		free(e->chain[i].data);
	free(e->chain);
	memset(e, 0, sizeof *e);
}

void ks_entries_free(struct ks_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ks_entry_clear(&e[i]);
	free(e);
}
