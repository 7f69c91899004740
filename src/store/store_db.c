/* Opening the store: files, pragmas, schema migrations, the nonpersistent
 * database; statement cache, error reporting and write transactions. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chand/codes.h"
#include "chand/log.h"
#include "store_int.h"

/* Schema migrations: entry i takes the main database from version i to
 * i+1 and runs in the same transaction as the user_version update, so a
 * crash mid-migration leaves the old version intact.  Version 2 is one
 * more entry; never edit an entry once released. */
static const char *const store_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE queues ("
	" qid INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" type INTEGER NOT NULL,"
	" usage INTEGER NOT NULL DEFAULT 0,"
	" maxdepth INTEGER NOT NULL,"
	" maxmsgl INTEGER NOT NULL,"
	" put_enabled INTEGER NOT NULL,"
	" get_enabled INTEGER NOT NULL,"
	" rname TEXT NOT NULL DEFAULT '',"
	" rqmname TEXT NOT NULL DEFAULT '',"
	" xmitq TEXT NOT NULL DEFAULT '',"
	" descr TEXT NOT NULL DEFAULT '',"
	" created_ms INTEGER NOT NULL,"
	" altered_ms INTEGER NOT NULL,"
	" curdepth INTEGER NOT NULL DEFAULT 0);"
	/* The rowid (pos) is (9 - prio) << 55 | seq: rows sit in the file in
	 * delivery order, so a batch of gets deletes neighbouring rows even
	 * when priorities are mixed (see doc/STORAGE.md for the measurements),
	 * and the index on qid alone, implicitly followed by the rowid, is the
	 * delivery order. */
	"CREATE TABLE messages ("
	" pos INTEGER PRIMARY KEY,"
	" seq INTEGER NOT NULL,"
	" qid INTEGER NOT NULL,"
	" prio INTEGER NOT NULL,"
	" msgid BLOB NOT NULL,"
	" correlid BLOB,"
	" put_time INTEGER NOT NULL,"
	" expiry INTEGER NOT NULL,"
	" format TEXT, reply_q TEXT, reply_qm TEXT, props TEXT,"
	" xmit_qm TEXT, xmit_q TEXT,"
	" body BLOB NOT NULL);"
	"CREATE INDEX messages_order ON messages(qid);"
	/* a message is named by its seq (confirm, in-doubt batches) */
	"CREATE UNIQUE INDEX messages_seq ON messages(seq);"
	"CREATE TABLE chandefs ("
	" name TEXT PRIMARY KEY,"
	" attrs TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" altered_ms INTEGER NOT NULL);"
	"CREATE TABLE chansync ("
	" name TEXT PRIMARY KEY,"
	" seq INTEGER NOT NULL,"
	" batch_id INTEGER NOT NULL,"
	" indoubt INTEGER NOT NULL,"
	" indoubt_batch INTEGER NOT NULL,"
	" indoubt_seq INTEGER NOT NULL,"
	" indoubt_count INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL);",
	/* 1 -> 2: MQTT sessions and retained messages (store_mqtt.c; the why
	 * is in doc/STORAGE.md, "MQTT tables").  IF NOT EXISTS: a file put
	 * back to version 1 by hand after it had version 2 migrates again.
	 *
	 * A session's rows hang off its sid, not its client id (up to 64 KiB
	 * of text, which would be repeated in every row and index entry);
	 * statements resolve client_id -> sid through the unique index. */
	"CREATE TABLE IF NOT EXISTS mqtt_sessions ("
	" sid INTEGER PRIMARY KEY,"
	" client_id TEXT NOT NULL UNIQUE,"
	" channel TEXT NOT NULL,"
	" protocol INTEGER NOT NULL,"
	" expiry_s INTEGER NOT NULL,"
	" disconnected_ms INTEGER NOT NULL,"
	" next_pid INTEGER NOT NULL,"
	" identity TEXT);"
	"CREATE TABLE IF NOT EXISTS mqtt_subs ("
	" sid INTEGER NOT NULL,"
	" filter TEXT NOT NULL,"
	" qos INTEGER NOT NULL,"
	" opts INTEGER NOT NULL,"
	" sub_id INTEGER NOT NULL,"
	" PRIMARY KEY (sid, filter)) WITHOUT ROWID;"
	/* seq is the rowid with AUTOINCREMENT: never reused, even after the
	 * highest row is deleted and the file reopened (sqlite_sequence keeps
	 * the high-water mark in the same transaction), so a session's seqs
	 * only grow and the broker can page with "seq > last seen".  The
	 * index (sid, seq) is the delivery order of one session's queue. */
	"CREATE TABLE IF NOT EXISTS mqtt_out ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" sid INTEGER NOT NULL,"
	" topic TEXT NOT NULL,"
	" payload BLOB NOT NULL,"
	" props BLOB,"
	" qos INTEGER NOT NULL,"
	" retain INTEGER NOT NULL,"
	" expiry_ms INTEGER NOT NULL,"
	" put_ms INTEGER NOT NULL,"
	" pid INTEGER NOT NULL,"
	" state INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS mqtt_out_sid ON mqtt_out(sid, seq);"
	"CREATE TABLE IF NOT EXISTS mqtt_in2 ("
	" sid INTEGER NOT NULL,"
	" pid INTEGER NOT NULL,"
	" PRIMARY KEY (sid, pid)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS mqtt_retained ("
	" rid INTEGER PRIMARY KEY,"
	" topic TEXT NOT NULL UNIQUE,"
	" payload BLOB NOT NULL,"
	" props BLOB,"
	" qos INTEGER NOT NULL,"
	" expiry_ms INTEGER NOT NULL,"
	" put_ms INTEGER NOT NULL);"
	/* routes (doc/TELEMETRY.md, routes): opaque JSON owned by the mqtt module */
	"CREATE TABLE IF NOT EXISTS routes ("
	" name TEXT PRIMARY KEY,"
	" attrs TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" altered_ms INTEGER NOT NULL);",
};

_Static_assert(sizeof(store_migrations) / sizeof(store_migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must be the number of migrations");

#define Q_COLS "q.qid, q.name, q.type, q.usage, q.maxdepth, q.maxmsgl, q.put_enabled," \
	" q.get_enabled, q.rname, q.rqmname, q.xmitq, q.descr, q.created_ms, q.altered_ms," \
	" q.curdepth"
#define M_COLS "(seq, qid, prio, msgid, correlid, put_time, expiry, format, reply_q," \
	" reply_qm, props, xmit_qm, xmit_q, body, pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8," \
	" ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
#define ROW_COLS "prio, msgid, correlid, put_time, expiry, format, reply_q, reply_qm," \
	" props, xmit_qm, xmit_q, body, seq"

static const char *const store_sql[SQ__COUNT] = {
	[SQ_Q_GET] = "SELECT " Q_COLS " FROM main.queues q WHERE q.name = ?1",
	[SQ_Q_INSERT] = "INSERT INTO main.queues (name, type, usage, maxdepth, maxmsgl,"
		" put_enabled, get_enabled, rname, rqmname, xmitq, descr, created_ms, altered_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
	[SQ_Q_UPDATE] = "UPDATE main.queues SET type = ?2, usage = ?3, maxdepth = ?4,"
		" maxmsgl = ?5, put_enabled = ?6, get_enabled = ?7, rname = ?8, rqmname = ?9,"
		" xmitq = ?10, descr = ?11, altered_ms = ?12 WHERE qid = ?1",
	[SQ_Q_DELETE] = "DELETE FROM main.queues WHERE qid = ?1",
	[SQ_Q_LIST] = "SELECT " Q_COLS " FROM main.queues q ORDER BY q.name",
	[SQ_Q_XMITQ_USER] = "SELECT name FROM main.queues WHERE type = 2 AND"
		" (xmitq = ?1 OR (xmitq = '' AND rqmname = ?1)) ORDER BY name LIMIT 1",
	[SQ_Q_DEPTH_ADD] = "UPDATE main.queues SET curdepth = curdepth + ?2 WHERE qid = ?1",
	[SQ_Q_DEPTH_ZERO] = "UPDATE main.queues SET curdepth = 0 WHERE qid = ?1",
	[SQ_M_INSERT] = "INSERT INTO main.messages " M_COLS,
	/* pos from the index; the row's columns (1..) are read, a table seek
	 * each, only for the messages a claim takes */
	[SQ_M_ORDER] = "SELECT pos, " ROW_COLS " FROM main.messages WHERE qid = ?1 ORDER BY pos",
	[SQ_M_ORDER_AFTER] = "SELECT pos, " ROW_COLS " FROM main.messages WHERE qid = ?1 AND pos > ?2"
	                     " ORDER BY pos",
	[SQ_DATA_VERSION] = "PRAGMA main.data_version",
	[SQ_M_EXISTS] = "SELECT 1 FROM main.messages WHERE pos = ?1",
	/* by seq, not pos: callers may know a message by its seq alone */
	[SQ_M_DEL] = "DELETE FROM main.messages WHERE seq = ?1",
	/* RETURNING costs about 2 us a row: only used when the lock table
	 * does not know the queue */
	[SQ_M_DEL_RET] = "DELETE FROM main.messages WHERE seq = ?1 RETURNING qid",
	[SQ_M_HEAD_PRIO] = "SELECT pos FROM main.messages WHERE qid = ?1 AND pos >= ?2"
		" AND pos < ?3 ORDER BY pos LIMIT 1",
	[SQ_M_PUTTIME] = "SELECT put_time FROM main.messages WHERE pos = ?1",
	[SQ_M_PURGE] = "DELETE FROM main.messages WHERE qid = ?1",
	[SQ_CD_INSERT] = "INSERT INTO main.chandefs (name, attrs, created_ms, altered_ms)"
		" VALUES (?1, ?2, ?3, ?3)",
	[SQ_CD_REPLACE] = "INSERT INTO main.chandefs (name, attrs, created_ms, altered_ms)"
		" VALUES (?1, ?2, ?3, ?3) ON CONFLICT (name) DO UPDATE SET"
		" attrs = excluded.attrs, altered_ms = excluded.altered_ms",
	[SQ_CD_GET] = "SELECT attrs FROM main.chandefs WHERE name = ?1",
	[SQ_CD_DELETE] = "DELETE FROM main.chandefs WHERE name = ?1",
	[SQ_CD_LIST] = "SELECT name FROM main.chandefs ORDER BY name",
	[SQ_CS_GET] = "SELECT seq, batch_id, indoubt, indoubt_batch, indoubt_seq,"
		" indoubt_count, updated_ms FROM main.chansync WHERE name = ?1",
	[SQ_CS_SET] = "INSERT OR REPLACE INTO main.chansync (name, seq, batch_id, indoubt,"
		" indoubt_batch, indoubt_seq, indoubt_count, updated_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[SQ_CS_DELETE] = "DELETE FROM main.chansync WHERE name = ?1",
	/* MQTT (store_mqtt.c).  ?1 is always the client id, resolved to the
	 * session's sid by MQ_SID_OF (one seek in the unique index). */
#define MQ_SID_OF "(SELECT sid FROM main.mqtt_sessions WHERE client_id = ?1)"
#define MQ_OUT_COLS "seq, topic, payload, props, qos, retain, expiry_ms, put_ms, pid, state"
	[SQ_MQ_SID] = "SELECT sid FROM main.mqtt_sessions WHERE client_id = ?1",
	[SQ_MQ_S_PUT] = "INSERT INTO main.mqtt_sessions (client_id, channel, protocol, expiry_s,"
		" disconnected_ms, next_pid, identity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (client_id) DO UPDATE SET channel = excluded.channel,"
		" protocol = excluded.protocol, expiry_s = excluded.expiry_s,"
		" disconnected_ms = excluded.disconnected_ms, next_pid = excluded.next_pid,"
		" identity = excluded.identity",
	[SQ_MQ_S_TOUCH] = "UPDATE main.mqtt_sessions SET disconnected_ms = ?2, next_pid = ?3"
		" WHERE client_id = ?1",
	[SQ_MQ_S_GET] = "SELECT sid, client_id, channel, protocol, expiry_s, disconnected_ms,"
		" next_pid, identity FROM main.mqtt_sessions WHERE client_id = ?1",
	[SQ_MQ_S_LIST] = "SELECT sid, client_id, channel, protocol, expiry_s, disconnected_ms,"
		" next_pid, identity FROM main.mqtt_sessions ORDER BY sid",
	[SQ_MQ_S_DEL] = "DELETE FROM main.mqtt_sessions WHERE sid = ?1",
	[SQ_MQ_SUB_PUT] = "INSERT INTO main.mqtt_subs (sid, filter, qos, opts, sub_id)"
		" SELECT sid, ?2, ?3, ?4, ?5 FROM main.mqtt_sessions WHERE client_id = ?1"
		" ON CONFLICT (sid, filter) DO UPDATE SET qos = excluded.qos,"
		" opts = excluded.opts, sub_id = excluded.sub_id",
	[SQ_MQ_SUB_DEL] = "DELETE FROM main.mqtt_subs WHERE sid = " MQ_SID_OF " AND filter = ?2",
	[SQ_MQ_SUB_DEL_ALL] = "DELETE FROM main.mqtt_subs WHERE sid = ?1",
	[SQ_MQ_SUB_LIST] = "SELECT sid, filter, qos, opts, sub_id FROM main.mqtt_subs"
		" ORDER BY sid, filter",
	[SQ_MQ_OUT_ADD] = "INSERT INTO main.mqtt_out (sid, topic, payload, props, qos, retain,"
		" expiry_ms, put_ms, pid, state) SELECT sid, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10"
		" FROM main.mqtt_sessions WHERE client_id = ?1",
	[SQ_MQ_OUT_SET] = "UPDATE main.mqtt_out SET pid = ?3, state = ?4 WHERE seq = ?2"
		" AND sid = " MQ_SID_OF,
	[SQ_MQ_OUT_DEL] = "DELETE FROM main.mqtt_out WHERE seq = ?2 AND sid = " MQ_SID_OF,
	[SQ_MQ_OUT_DEL_SEQ] = "DELETE FROM main.mqtt_out WHERE seq = ?1",
	[SQ_MQ_OUT_DEL_ALL] = "DELETE FROM main.mqtt_out WHERE sid = ?1",
	/* INDEXED BY: the rowid range (seq > ?2) must never win over the
	 * (sid, seq) range, whatever the statistics say */
	[SQ_MQ_OUT_LOAD] = "SELECT " MQ_OUT_COLS " FROM main.mqtt_out INDEXED BY mqtt_out_sid"
		" WHERE sid = " MQ_SID_OF " AND seq > ?2 ORDER BY seq",
	[SQ_MQ_OUT_COUNT] = "SELECT count(*) FROM main.mqtt_out WHERE sid = " MQ_SID_OF,
	[SQ_MQ_OUT_COUNT_ALL] = "SELECT sid, count(*) FROM main.mqtt_out GROUP BY sid ORDER BY sid",
	[SQ_MQ_OUT_MAX] = "SELECT coalesce(max(seq), 0) FROM main.mqtt_out",
	[SQ_MQ_IN2_PUT] = "INSERT INTO main.mqtt_in2 (sid, pid) SELECT sid, ?2"
		" FROM main.mqtt_sessions WHERE client_id = ?1 ON CONFLICT DO NOTHING",
	[SQ_MQ_IN2_DEL] = "DELETE FROM main.mqtt_in2 WHERE sid = " MQ_SID_OF " AND pid = ?2",
	[SQ_MQ_IN2_DEL_ALL] = "DELETE FROM main.mqtt_in2 WHERE sid = ?1",
	[SQ_MQ_IN2_LIST] = "SELECT pid FROM main.mqtt_in2 WHERE sid = " MQ_SID_OF " ORDER BY pid",
	[SQ_MQ_R_PUT] = "INSERT INTO main.mqtt_retained (topic, payload, props, qos, expiry_ms,"
		" put_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (topic) DO UPDATE SET"
		" payload = excluded.payload, props = excluded.props, qos = excluded.qos,"
		" expiry_ms = excluded.expiry_ms, put_ms = excluded.put_ms",
	[SQ_MQ_R_DEL] = "DELETE FROM main.mqtt_retained WHERE topic = ?1",
	[SQ_MQ_R_LIST] = "SELECT rid, topic, payload, props, qos, expiry_ms, put_ms"
		" FROM main.mqtt_retained ORDER BY topic",
#undef MQ_SID_OF
#undef MQ_OUT_COLS
};

/* ---- registry of database files open in this process ---- */

static pthread_mutex_t reg_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct store_shared *reg_head;

/* When a file's last handle closes, its entry stays if it still holds
 * nonpersistent messages: they live as long as the process, like the
 * file they replace outlived its handles.  born (the file's birth time,
 * 0 if unknown) tells a new file that reuses the inode from the old one. */
static struct store_shared *reg_acquire(dev_t dev, ino_t ino, int64_t born, bool *first)
{
	struct store_shared *sh;

	pthread_mutex_lock(&reg_mtx);
	for (sh = reg_head; sh != NULL; sh = sh->next)
		if (sh->dev == dev && sh->ino == ino)
			break;
	if (sh != NULL && sh->refs == 0 && sh->born != born)
		store_np_wipe(sh);
	if (sh == NULL && (sh = calloc(1, sizeof(*sh))) != NULL) {
		sh->dev = dev;
		sh->ino = ino;
		if (pthread_mutex_init(&sh->wmtx, NULL) != 0) {
			free(sh);
			sh = NULL;
		} else if (pthread_mutex_init(&sh->smtx, NULL) != 0) {
			pthread_mutex_destroy(&sh->wmtx);
			free(sh);
			sh = NULL;
		} else if (pthread_cond_init(&sh->scond, NULL) != 0) {
			pthread_mutex_destroy(&sh->smtx);
			pthread_mutex_destroy(&sh->wmtx);
			free(sh);
			sh = NULL;
		} else if (store_np_init(sh) != 0) {
			pthread_cond_destroy(&sh->scond);
			pthread_mutex_destroy(&sh->smtx);
			pthread_mutex_destroy(&sh->wmtx);
			free(sh);
			sh = NULL;
		} else {
			sh->next = reg_head;
			reg_head = sh;
		}
	}
	if (sh != NULL) {
		sh->born = born;
		*first = sh->refs == 0;
		sh->refs++;
	}
	pthread_mutex_unlock(&reg_mtx);
	return sh;
}

static void reg_release(struct store_shared *sh)
{
	struct store_shared **pp;

	if (sh == NULL)
		return;
	pthread_mutex_lock(&reg_mtx);
	if (--sh->refs == 0 && store_np_empty(sh)) {
		for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next)
			if (*pp == sh) {
				*pp = sh->next;
				break;
			}
		pthread_cond_destroy(&sh->scond);
		pthread_mutex_destroy(&sh->smtx);
		pthread_mutex_destroy(&sh->wmtx);
		store_np_free(sh);
		free(sh);
	}
	pthread_mutex_unlock(&reg_mtx);
}

static int64_t file_born(const char *path)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, 0, STATX_BTIME, &sx) != 0 || !(sx.stx_mask & STATX_BTIME))
		return 0;
	return (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
}

/* ---- errors ---- */

int store_fail(struct store *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return rc;
}

int store_sqlfail(struct store *st, int sqlrc, const char *what)
{
	const char *file = sqlite3_db_filename(st->db, "main");

	st->sqlerr = true;
	st->sqlrc = STORE_ERR;
	if ((sqlrc & 0xff) == SQLITE_FULL) {
		st->sqlrc = STORE_DISK_FULL;
		snprintf(st->err, sizeof(st->err), "disk full while %s: %s", what,
		         sqlite3_errmsg(st->db));
		log_error(code_str(CHD_DISK_FULL), "db=%s op=\"%s\" %s", file ? file : "?", what,
		          sqlite3_errmsg(st->db));
		return STORE_DISK_FULL;
	}
	snprintf(st->err, sizeof(st->err), "database error while %s: %s (%s)", what,
	         sqlite3_errmsg(st->db), sqlite3_errstr(sqlrc));
	log_error(code_str(CHD_DB_ERROR), "db=%s op=\"%s\" %s", file ? file : "?", what,
	          st->err);
	return STORE_ERR;
}

const char *store_errmsg(const struct store *st)
{
	if (st == NULL)
		return "no store handle";
	return st->err[0] ? st->err : "no error";
}

int store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

sqlite3 *store_sqlite(struct store *st)
{
	return st->db;
}

int store_stmt_get(struct store *st, enum store_stmt id, sqlite3_stmt **out)
{
	int rc;

	if (st->stmt[id] == NULL) {
		rc = sqlite3_prepare_v3(st->db, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                        &st->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			st->stmt[id] = NULL;
			*out = NULL;
			return store_sqlfail(st, rc, "preparing a statement");
		}
	}
	*out = st->stmt[id];
	return STORE_OK;
}

/* ---- write transactions ---- */

static int wlock(struct store *st)
{
	struct timespec dl;
	int rc;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STORE_BUSY_MS / 1000;
	rc = pthread_mutex_timedlock(&st->sh->wmtx, &dl);
	if (rc != 0)
		return store_fail(st, STORE_ERR, "database busy: another writer kept it for %d s (%s)",
		                  STORE_BUSY_MS / 1000, strerror(rc));
	return STORE_OK;
}

static void wunlock(struct store *st)
{
	pthread_mutex_unlock(&st->sh->wmtx);
}

static void rollback_raw(struct store *st)
{
	int rc;

	store_np_settle(st, false);
	/* SQLite rolls back by itself after some errors (SQLITE_FULL, IOERR) */
	if (sqlite3_get_autocommit(st->db))
		return;
	rc = sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		log_error(code_str(CHD_DB_ERROR), "op=rollback %s", sqlite3_errmsg(st->db));
}

/* BEGIN with the write mutex held; releases it if that fails. */
static int begin_locked(struct store *st)
{
	int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		wunlock(st);
		return store_sqlfail(st, rc, "starting a transaction");
	}
	return STORE_OK;
}

static int begin_raw(struct store *st)
{
	int rc = wlock(st);

	return rc != STORE_OK ? rc : begin_locked(st);
}

/* ---- group sync ----
 *
 * The main database runs with synchronous=NORMAL: a COMMIT appends its
 * frames to the WAL and returns without syncing it.  commit_raw then makes
 * the commit durable here, after releasing the write mutex, so the next
 * writer appends while this one waits for the disk, and one fdatasync of
 * the WAL covers every commit appended before it: a thread that finds a
 * sync running waits for it and, if that did not cover its commit, the
 * next one (made by the first waiter for everyone).  A caller is told a
 * commit succeeded only once it is durable, as with synchronous=FULL.
 * Checkpoints sync the WAL before copying it (SQLite does that with NORMAL
 * too), and the WAL header is synced when the WAL is restarted.
 *
 * What a reader sees may be committed but not yet durable; readers whose
 * results leave the process (store_lock, store_browse and the telemetry
 * session loads) call store_durable_gate() first, unless their handle has
 * it off (store_gate_off: something durable always follows their read
 * before anyone sees it).  See doc/STORAGE.md. */

/* The WAL of this handle's connection: every connection opens the same
 * file, and a sync of it covers what any of them wrote. */
static int wal_sync(struct store *st)
{
	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);

	if (rc != SQLITE_OK)
		return rc;
	if (f == NULL || f->pMethods == NULL)
		return SQLITE_MISUSE; /* no WAL open on this connection */
	return f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

/* Returns once commit gen is durable.  A failed sync stops the agent: the
 * kernel may have dropped the pages it could not write, so neither a retry
 * nor carrying on can tell what is on disk (the restart recovers from what
 * the WAL holds). */
static void durable_wait(struct store *st, uint64_t gen)
{
	struct store_shared *sh = st->sh;

	pthread_mutex_lock(&sh->smtx);
	while (sh->durable_gen < gen) {
		if (sh->syncing) {
			pthread_cond_wait(&sh->scond, &sh->smtx);
			continue;
		}
		uint64_t target = sh->commit_gen;
		sh->syncing = true;
		pthread_mutex_unlock(&sh->smtx);
		int rc = wal_sync(st);
		pthread_mutex_lock(&sh->smtx);
		sh->syncing = false;
		if (rc != SQLITE_OK) {
			pthread_mutex_unlock(&sh->smtx);
			log_error(code_str(CHD_DB_ERROR), "op=sync cannot write the database's WAL to "
			          "disk: %s", sqlite3_errstr(rc));
			fatalx("stopping: a database sync failed (the next start recovers what is on "
			       "disk)");
		}
		sh->syncs++;
		if (target > sh->durable_gen)
			sh->durable_gen = target;
		pthread_cond_broadcast(&sh->scond);
	}
	pthread_mutex_unlock(&sh->smtx);
}

void store_durable_gate(struct store *st)
{
	uint64_t gen;

	pthread_mutex_lock(&st->sh->smtx);
	gen = st->sh->commit_gen;
	pthread_mutex_unlock(&st->sh->smtx);
	durable_wait(st, gen);
}

void store_gate_off(struct store *st)
{
	st->gate_off = true;
}

void store_sync_stats(struct store *st, uint64_t *commits, uint64_t *syncs)
{
	pthread_mutex_lock(&st->sh->smtx);
	*commits = st->sh->commit_gen;
	*syncs = st->sh->syncs;
	pthread_mutex_unlock(&st->sh->smtx);
}

/* Called by SQLite after each commit that wrote frames to a WAL (under the
 * write mutex); it replaces the automatic checkpoint, which uses the same
 * hook.  A checkpoint is due once the frames not yet copied to the
 * database reach ckpt_frames: counting every frame in the WAL instead made
 * each commit checkpoint again whenever the WAL could not restart. */
static int wal_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
	struct store *st = arg;
	struct store_shared *sh = st->sh;
	int copied;

	if (strcmp(schema, "main") != 0)
		return SQLITE_OK;
	(void)db;
	st->wrote = true;
	if (frames < sh->wal_frames) /* the WAL restarted: nothing in it is copied */
		atomic_store(&sh->ckpt_copied, 0);
	sh->wal_frames = frames;
	copied = atomic_load(&sh->ckpt_copied);
	/* not here: this runs inside COMMIT, under the write mutex, and a
	 * checkpoint (read the WAL, write and fsync the database) held every
	 * other writer of the file for 15-40 ms (commit_raw runs it after) */
	if (frames - (copied <= frames ? copied : 0) >= st->ckpt_frames)
		st->ckpt_due = true;
	return SQLITE_OK;
}

/* Copies what is left of the WAL with the write mutex held, and waits up to
 * STORE_CKPT_READER_MS for the readers that still use the WAL to finish,
 * so that the next commit starts the WAL again from its beginning.  A
 * passive checkpoint alone did not do that once several channels wrote:
 * the next writer had always begun before it ended, reading the WAL, so
 * the WAL could not restart even when all of it had been copied, and grew
 * by every commit (measured: 84 and 99 MiB during ten channels' 50 MB);
 * each fdatasync of a growing file also commits the file system's journal,
 * and every commit past the threshold checkpointed again.  Returns the
 * frames copied, or -1. */
static int checkpoint_restart(struct store *st)
{
	int rc, log = 0, copied = 0;

	if (wlock(st) != STORE_OK)
		return -1; /* the writers held the mutex for 10 s: try at the next one */
	rc = sqlite3_busy_timeout(st->db, STORE_CKPT_READER_MS);
	if (rc == SQLITE_OK)
		rc = sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_RESTART, &log,
		                               &copied);
	int brc = sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	wunlock(st);
	if (brc != SQLITE_OK)
		log_error(code_str(CHD_DB_ERROR), "op=checkpoint setting the busy timeout back: %s",
		          sqlite3_errstr(brc));
	/* busy: a reader kept its snapshot past the wait (what was copied
	 * stays copied); the next checkpoint tries again */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
		log_warn(code_str(CHD_DB_ERROR), "op=checkpoint %s", sqlite3_errmsg(st->db));
		return -1;
	}
	return copied;
}

/* A passive checkpoint first, outside the write mutex: it copies the bulk
 * of the WAL while the other connections keep writing (SQLite lets a
 * checkpoint and a writer run together; inside COMMIT, as SQLite does it,
 * each checkpoint of 15-40 ms held every writer of the file).  Then
 * checkpoint_restart copies what they appended meanwhile and lets the WAL
 * restart: with nothing left to copy it only waits for the readers.  Two
 * handles due at once need nothing of ours: a checkpoint that finds
 * another running returns SQLITE_BUSY at once. */
static void checkpoint(struct store *st)
{
	int rc, log = 0, copied = 0;

	st->ckpt_due = false;
	rc = sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
	if (rc == SQLITE_BUSY)
		return; /* another handle is checkpointing */
	if (rc != SQLITE_OK) {
		log_warn(code_str(CHD_DB_ERROR), "op=checkpoint %s", sqlite3_errmsg(st->db));
		return;
	}
	copied = checkpoint_restart(st);
	if (copied >= 0)
		atomic_store(&st->sh->ckpt_copied, copied);
}

/* COMMIT; on failure roll back.  The write mutex is released either way;
 * a commit that wrote is durable when this returns STORE_OK. */
static int commit_raw(struct store *st)
{
	uint64_t gen = 0;
	int rc;

	st->wrote = false;
	rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int ret = store_sqlfail(st, rc, "committing");
		rollback_raw(st);
		wunlock(st);
		return ret;
	}
	/* still under the write mutex: nonpersistent messages are appended
	 * in seq order, and commit generations follow the WAL's order */
	store_np_settle(st, true);
	if (st->wrote) {
		pthread_mutex_lock(&st->sh->smtx);
		gen = ++st->sh->commit_gen;
		pthread_mutex_unlock(&st->sh->smtx);
	}
	wunlock(st);
	if (gen != 0)
		durable_wait(st, gen);
	if (st->ckpt_due)
		checkpoint(st);
	return STORE_OK;
}

int store_wbegin(struct store *st, bool *own)
{
	int rc;

	st->sqlerr = false;
	*own = false;
	if (st->txn == TXN_FAILED)
		return st->sqlrc; /* st->err still holds the reason */
	if (st->txn == TXN_OPEN)
		return STORE_OK;
	if ((rc = begin_raw(st)) != STORE_OK)
		return rc;
	*own = true;
	return STORE_OK;
}

static void pend_settle(struct store *st, bool committed)
{
	for (size_t i = 0; i < st->npend; i++)
		if (committed)
			store_lk_drop_gone(st->pend[i].seq);
		else if (st->pend[i].always)
			store_lk_drop(st->pend[i].seq);
	st->npend = 0;
}

int store_wend(struct store *st, bool own, bool commit)
{
	if (!own) {
		if (st->sqlerr && st->txn == TXN_OPEN) {
			/* the caller's transaction is no longer trustworthy */
			rollback_raw(st);
			wunlock(st);
			st->txn = TXN_FAILED;
			st->put_prios = 0;
			pend_settle(st, false);
		}
		return STORE_OK;
	}
	if (commit && !st->sqlerr)
		return commit_raw(st);
	rollback_raw(st);
	wunlock(st);
	return STORE_OK;
}

int store_pend_add(struct store *st, int64_t seq, bool always)
{
	if (st->npend == st->cappend) {
		size_t cap = st->cappend ? st->cappend * 2 : 64;
		struct store_pend *p = realloc(st->pend, cap * sizeof(*p));
		if (p == NULL)
			return store_fail(st, STORE_ERR, "out of memory");
		st->pend = p;
		st->cappend = cap;
	}
	st->pend[st->npend].seq = seq;
	st->pend[st->npend].always = always;
	st->npend++;
	return STORE_OK;
}

static int begin_txn(struct store *st, bool try)
{
	int rc;

	if (st->txn != TXN_NONE)
		return store_fail(st, STORE_BAD_ARG, "a transaction is already open on this handle");
	st->sqlerr = false;
	if (!try)
		rc = begin_raw(st);
	else if (pthread_mutex_trylock(&st->sh->wmtx) != 0)
		return store_fail(st, STORE_IN_USE, "another handle is writing to the database");
	else
		rc = begin_locked(st);
	if (rc != STORE_OK)
		return rc;
	st->txn = TXN_OPEN;
	st->put_prios = 0;
	st->npend = 0;
	return STORE_OK;
}

int store_begin(struct store *st)
{
	return begin_txn(st, false);
}

int store_begin_try(struct store *st)
{
	return begin_txn(st, true);
}

int store_commit(struct store *st)
{
	int rc;
	unsigned put = st->put_prios;

	if (st->txn == TXN_FAILED) {
		st->txn = TXN_NONE;
		return st->sqlrc; /* already rolled back; st->err says why */
	}
	if (st->txn != TXN_OPEN)
		return store_fail(st, STORE_BAD_ARG, "no transaction is open on this handle");
	st->txn = TXN_NONE;
	st->put_prios = 0;
	rc = commit_raw(st);
	/* after a failed commit the confirmed messages are back, still locked
	 * by their owner */
	pend_settle(st, rc == STORE_OK);
	if (rc == STORE_OK && put != 0) {
		store_lk_put_seen(put);
		store_notify();
	}
	return rc;
}

void store_rollback(struct store *st)
{
	if (st == NULL)
		return;
	if (st->txn == TXN_OPEN) {
		rollback_raw(st);
		wunlock(st);
	}
	st->txn = TXN_NONE;
	st->put_prios = 0;
	pend_settle(st, false);
}

/* ---- open ---- */

static int exec_sql(struct store *st, const char *sql, const char *what)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : store_sqlfail(st, rc, what);
}

/* Runs a one-value query (pragma) and returns its integer or text. */
static int query_one(struct store *st, const char *sql, int64_t *ival, char *sval, size_t slen)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return store_sqlfail(st, rc, sql);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (ival != NULL)
			*ival = sqlite3_column_int64(s, 0);
		if (sval != NULL) {
			const char *t = (const char *)sqlite3_column_text(s, 0);
			str_copy(sval, t ? t : "", slen);
		}
		rc = sqlite3_step(s);
	} else if (rc == SQLITE_DONE) {
		if (ival != NULL)
			*ival = 0;
		if (sval != NULL && slen)
			sval[0] = '\0';
	}
	if (rc != SQLITE_DONE) {
		int ret = store_sqlfail(st, rc, sql);
		sqlite3_finalize(s);
		return ret;
	}
	sqlite3_finalize(s);
	return STORE_OK;
}

static int set_wal(struct store *st, const char *schema)
{
	char sql[64], mode[16];
	int rc;

	snprintf(sql, sizeof(sql), "PRAGMA %s.journal_mode = WAL", schema);
	if ((rc = query_one(st, sql, NULL, mode, sizeof(mode))) != STORE_OK)
		return rc;
	if (strcmp(mode, "wal") != 0)
		return store_fail(st, STORE_ERR, "cannot put the %s database in WAL mode"
		                  " (journal mode stays '%s')", schema, mode);
	return STORE_OK;
}

static int migrate_main(struct store *st, const char *path)
{
	int64_t ver, ntables;
	const int target = (int)(sizeof(store_migrations) / sizeof(store_migrations[0]));
	char sql[64];
	int rc;

	if ((rc = query_one(st, "PRAGMA main.user_version", &ver, NULL, 0)) != STORE_OK)
		return rc;
	if (ver > target)
		return store_fail(st, STORE_ERR, "%s has schema version %lld, newer than this"
		                  " chand (%d): use the chand that wrote it", path,
		                  (long long)ver, target);
	if (ver == target)
		return STORE_OK;
	if (ver == 0) {
		rc = query_one(st, "SELECT count(*) FROM main.sqlite_schema", &ntables, NULL, 0);
		if (rc != STORE_OK)
			return rc;
		if (ntables != 0)
			return store_fail(st, STORE_ERR, "%s is not a chand queue database"
			                  " (it has tables but no chand schema version)", path);
	}
	for (int v = (int)ver; v < target; v++)
		if ((rc = exec_sql(st, store_migrations[v], "migrating the schema")) != STORE_OK)
			return rc;
	snprintf(sql, sizeof(sql), "PRAGMA main.user_version = %d", target);
	if ((rc = exec_sql(st, sql, "setting the schema version")) != STORE_OK)
		return rc;
	if (ver > 0)
		log_info(code_str(CHD_DB_MIGRATED), "db=%s from=%lld to=%d", path,
		         (long long)ver, target);
	else
		log_debug("store: created schema version %d in %s", target, path);
	return STORE_OK;
}

static int observe_max_seq(struct store *st)
{
	int64_t m;
	int rc;

	/* both use the unique index on seq: one seek each */
	if ((rc = query_one(st, "SELECT max(seq) FROM main.messages", &m, NULL, 0)) != STORE_OK)
		return rc;
	store_seq_observe(m);
	return STORE_OK;
}

/* "<qm>.db" -> "<qm>.np.db"; any other name gets ".np.db" appended.  The
 * file held nonpersistent messages before they moved to memory: it is
 * removed at the agent's start if an older chand left one behind. */
static int np_path_of(const char *path, char *out, size_t len)
{
	size_t n = strlen(path);

	if (n > 3 && strcmp(path + n - 3, ".db") == 0)
		n -= 3;
	if (n + sizeof(".np.db") > len)
		return -1;
	memcpy(out, path, n);
	memcpy(out + n, ".np.db", sizeof(".np.db"));
	return 0;
}

/* Creates the file 0600 if missing (SQLite would use 0644 and give the
 * same mode to -wal and -shm): queue data may be confidential. */
static int touch_private(const char *path, struct stat *sb, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (sb != NULL && fstat(fd, sb) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int unlink_np(const char *np, char *err, size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char p[4096];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", np, suffix[i]);
		if (unlink(p) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot remove %s: %s", p, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int open_init(struct store *st, const char *path)
{
	char sql[64];
	int64_t page;
	int rc;

	sqlite3_extended_result_codes(st->db, 1);
	if ((rc = sqlite3_busy_timeout(st->db, STORE_BUSY_MS)) != SQLITE_OK)
		return store_sqlfail(st, rc, "setting the busy timeout");
	/* before the first write of a new file; an existing one keeps its size */
	snprintf(sql, sizeof(sql), "PRAGMA main.page_size = %d;", STORE_PAGE_SIZE);
	if ((rc = exec_sql(st, sql, "setting the page size")) != STORE_OK)
		return rc;
	if ((rc = set_wal(st, "main")) != STORE_OK)
		return rc;
	if ((rc = query_one(st, "PRAGMA main.page_size", &page, NULL, 0)) != STORE_OK)
		return rc;
	st->ckpt_frames = page > 0 ? (int)(STORE_CKPT_BYTES / page) : STORE_CKPT_BYTES / 4096;
	/* FULL while the schema is checked (SQLite syncs that commit itself);
	 * then NORMAL, with every commit made durable by the group sync above
	 * before it is reported, so a put is on disk when it returns even if
	 * the machine loses power.  See doc/STORAGE.md. */
	if ((rc = exec_sql(st, "PRAGMA main.synchronous = FULL;"
	                       "PRAGMA main.journal_size_limit = 67108864;"
	                       "PRAGMA temp_store = MEMORY;",
	                   "setting pragmas")) != STORE_OK)
		return rc;
	if ((rc = exec_sql(st, "BEGIN IMMEDIATE", "starting the schema check")) != STORE_OK)
		return rc;
	if ((rc = migrate_main(st, path)) == STORE_OK &&
	    (rc = observe_max_seq(st)) == STORE_OK)
		rc = exec_sql(st, "COMMIT", "committing the schema");
	if (rc != STORE_OK) {
		rollback_raw(st);
		return rc;
	}
	if ((rc = exec_sql(st, "PRAGMA main.synchronous = NORMAL;", "setting pragmas")) != STORE_OK)
		return rc;
	sqlite3_wal_hook(st->db, wal_hook, st);
	return STORE_OK;
}

int store_process_init(void)
{
	return sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) == SQLITE_OK ? STORE_OK
	                                                                     : STORE_ERR;
}

int store_open(struct store **out, const char *path, const struct store_opts *opts,
               char *err, size_t errlen)
{
	static const struct store_opts defaults;
	char np[4096], why[128];
	struct store *st;
	struct stat sb;
	bool first = false, wipe = false;
	int rc;

	*out = NULL;
	if (opts == NULL)
		opts = &defaults;
	if (path == NULL || path[0] == '\0' || np_path_of(path, np, sizeof(np)) != 0) {
		snprintf(err, errlen, "invalid database path");
		return STORE_BAD_ARG;
	}
	if (opts->qmgr != NULL && opts->qmgr[0] != '\0' && !name_valid(opts->qmgr, why, sizeof(why))) {
		snprintf(err, errlen, "queue manager %s", why);
		return STORE_BAD_NAME;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return STORE_ERR;
	}
	if (opts->qmgr != NULL)
		str_copy(st->qmgr, opts->qmgr, sizeof(st->qmgr));
	st->max_msg_length = opts->max_msg_length;
	if (touch_private(path, &sb, err, errlen) != 0)
		goto fail_free;
	if ((st->sh = reg_acquire(sb.st_dev, sb.st_ino, file_born(path), &first)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail_free;
	}
	if (opts->reset_np) {
		/* remove the file an older chand kept them in */
		if (first && unlink_np(np, err, errlen) != 0)
			goto fail_reg;
		wipe = true;
	}
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		         st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail_db;
	}
	/* the whole set-up runs under the write mutex: journal mode changes
	 * and migrations must not race another thread's first open */
	if (wlock(st) != STORE_OK) {
		snprintf(err, errlen, "%s", st->err);
		goto fail_db;
	}
	if (wipe)
		store_np_wipe(st->sh);
	rc = open_init(st, path);
	wunlock(st);
	if (rc != STORE_OK) {
		snprintf(err, errlen, "%s: %s", path, st->err);
		goto fail_db;
	}
	st->err[0] = '\0';
	*out = st;
	return STORE_OK;

fail_db:
	sqlite3_close_v2(st->db);
fail_reg:
	reg_release(st->sh);
fail_free:
	free(st);
	return STORE_ERR;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	store_rollback(st);
	for (int i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (sqlite3_close(st->db) != SQLITE_OK) {
		log_error(code_str(CHD_DB_ERROR), "op=close %s", sqlite3_errmsg(st->db));
		sqlite3_close_v2(st->db);
	}
	reg_release(st->sh);
	free(st->pend);
	free(st->nplog);
	free(st);
}

/* ---- query-plan check (tests) ---- */

int store_plan_check(struct store *st, char *err, size_t errlen)
{
	static const enum store_stmt hot[] = {
		SQ_Q_GET, SQ_M_ORDER, SQ_M_ORDER_AFTER, SQ_M_EXISTS, SQ_M_DEL, SQ_M_DEL_RET, SQ_M_HEAD_PRIO,
		SQ_M_PUTTIME, SQ_M_PURGE, SQ_Q_DEPTH_ADD, SQ_CS_GET, SQ_CD_GET,
		SQ_MQ_SID, SQ_MQ_S_TOUCH, SQ_MQ_S_GET, SQ_MQ_S_DEL, SQ_MQ_SUB_PUT, SQ_MQ_SUB_DEL,
		SQ_MQ_SUB_DEL_ALL, SQ_MQ_OUT_ADD, SQ_MQ_OUT_SET, SQ_MQ_OUT_DEL, SQ_MQ_OUT_DEL_SEQ,
		SQ_MQ_OUT_DEL_ALL, SQ_MQ_OUT_LOAD, SQ_MQ_OUT_COUNT, SQ_MQ_IN2_PUT, SQ_MQ_IN2_DEL,
		SQ_MQ_IN2_DEL_ALL, SQ_MQ_IN2_LIST, SQ_MQ_R_DEL,
	};
	/* lookups other files make (store_chan_ext.c, observe_max_seq) */
	static const char *const other[] = {
		"SELECT 1 FROM main.messages WHERE seq = ?1 AND msgid = ?2",
		"SELECT max(seq) FROM main.messages",
	};
	const size_t nhot = sizeof(hot) / sizeof(hot[0]);
	char sql[1024];

	for (size_t i = 0; i < nhot + sizeof(other) / sizeof(other[0]); i++) {
		const char *q = i < nhot ? store_sql[hot[i]] : other[i - nhot];
		sqlite3_stmt *s;
		int rc;

		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", q);
		if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", q, sqlite3_errmsg(st->db));
			return -1;
		}
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(s, 3);
			if (d != NULL && (strncmp(d, "SCAN", 4) == 0 || strstr(d, "TEMP B-TREE"))) {
				snprintf(err, errlen, "%s: %s", q, d);
				sqlite3_finalize(s);
				return -1;
			}
		}
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE) {
			snprintf(err, errlen, "%s: %s", q, sqlite3_errstr(rc));
			return -1;
		}
	}
	return 0;
}
