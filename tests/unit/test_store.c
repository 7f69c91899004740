/* Queue store: ordering, locking, limits, definitions, remote resolution,
 * transactions, schema, and crash behaviour (kill -9 of a writer or a
 * getter at random moments, disk full). */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chand/store.h"
#include "store_int.h"

static char tdir[256];
static char tpath[320];
static struct store *st;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static struct store *open_store(bool reset)
{
	struct store_opts o = { .qmgr = "QM1", .max_msg_length = 0, .reset_np = reset };
	struct store *s = NULL;
	char err[512];
	int rc = store_open(&s, tpath, &o, err, sizeof(err));

	cr_assert_eq(rc, STORE_OK, "store_open: %s", err);
	return s;
}

static void setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/chand-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	snprintf(tpath, sizeof(tpath), "%s/QM1.db", tdir);
	st = open_store(true);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* One timeout for all: BoxFort (inside Criterion) leaks its timeout records
 * when tests of one binary have different timeouts, which LeakSanitizer
 * then reports. */
TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

static void define_local(struct store *s, const char *name, long maxdepth, enum queue_usage u)
{
	struct queue_def q;

	queue_def_init(&q, QTYPE_LOCAL);
	str_copy(q.name, name, sizeof(q.name));
	q.maxdepth = maxdepth;
	q.usage = u;
	cr_assert_eq(store_queue_define(s, &q, false), STORE_OK, "define %s: %s", name,
	             store_errmsg(s));
}

static void define_remote(struct store *s, const char *name, const char *rname,
                          const char *rqm, const char *xq)
{
	struct queue_def q;

	queue_def_init(&q, QTYPE_REMOTE);
	str_copy(q.name, name, sizeof(q.name));
	str_copy(q.rname, rname, sizeof(q.rname));
	str_copy(q.rqmname, rqm, sizeof(q.rqmname));
	str_copy(q.xmitq, xq ? xq : "", sizeof(q.xmitq));
	cr_assert_eq(store_queue_define(s, &q, false), STORE_OK, "define %s: %s", name,
	             store_errmsg(s));
}

static void mk_msg(struct chd_msg *m, const char *text, int prio, bool persistent)
{
	memset(m, 0, sizeof(*m));
	m->priority = prio;
	m->persistent = persistent;
	m->body_len = strlen(text);
	m->body = malloc(m->body_len + 1);
	cr_assert_not_null(m->body);
	memcpy(m->body, text, m->body_len);
}

static int put_text(struct store *s, const char *q, const char *qmgr, const char *text,
                    int prio, bool persistent, struct chd_msg *keep)
{
	struct chd_msg m;
	size_t done = 99;
	int rc;

	mk_msg(&m, text, prio, persistent);
	rc = store_put(s, q, qmgr, &m, 1, &done);
	cr_assert_eq(done, rc == STORE_OK ? 1u : 0u);
	if (keep != NULL)
		*keep = m;
	else
		msg_clear(&m);
	return rc;
}

static bool body_is(const struct chd_msg *m, const char *text)
{
	return m->body_len == strlen(text) && memcmp(m->body, text, m->body_len) == 0;
}

static long depth(struct store *s, const char *q)
{
	struct queue_def d;

	cr_assert_eq(store_queue_get(s, q, &d), STORE_OK, "%s", store_errmsg(s));
	return d.curdepth;
}

/* ---------------------------------------------------------------- schema */

Test(store, schema_version_and_reopen)
{
	sqlite3_stmt *s;
	char err[512];

	cr_assert_eq(store_schema_version(), 2);
	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(st), "PRAGMA main.user_version", -1, &s, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), store_schema_version());
	sqlite3_finalize(s);
	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(st), "PRAGMA main.journal_mode", -1, &s, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	cr_assert_eq(put_text(st, "Q1", NULL, "kept", 4, true, NULL), STORE_OK);
	store_close(st);
	st = open_store(false);
	cr_assert_eq(depth(st, "Q1"), 1);
	store_close(st);

	/* a schema from the future is refused with a reason */
	{
		sqlite3 *db;
		cr_assert_eq(sqlite3_open(tpath, &db), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	st = NULL;
	cr_assert_eq(store_open(&st, tpath, NULL, err, sizeof(err)), STORE_ERR);
	cr_assert_null(st);
	cr_assert(strstr(err, "newer") != NULL, "%s", err);

	/* so is a database that is not ours */
	{
		sqlite3 *db;
		char other[400];
		snprintf(other, sizeof(other), "%s/other.db", tdir);
		cr_assert_eq(sqlite3_open(other, &db), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		cr_assert_eq(store_open(&st, other, NULL, err, sizeof(err)), STORE_ERR);
		cr_assert(strstr(err, "not a chand queue database") != NULL, "%s", err);
	}
	/* put it back so teardown has a handle */
	{
		sqlite3 *db;
		cr_assert_eq(sqlite3_open(tpath, &db), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	st = open_store(false);
	cr_assert_eq(depth(st, "Q1"), 1);
}

Test(store, sequence_resumes_above_the_highest_on_disk)
{
	int64_t top = 0;
	struct chd_msg m;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	/* the highest seq sits in a low-priority band: found all the same */
	for (int p = 9; p >= 0; p--) {
		cr_assert_eq(put_text(st, "Q1", NULL, "s", p, p % 2 == 0, &m), STORE_OK);
		top = m.seq;
		msg_clear(&m);
	}
	store_close(st);
	store_seq_reset(); /* what a restarted agent starts from */
	st = open_store(false);
	cr_assert_eq(put_text(st, "Q1", NULL, "after", 5, true, &m), STORE_OK);
	cr_assert_gt(m.seq, top, "seq %lld reused (highest on disk %lld)", (long long)m.seq,
	             (long long)top);
	msg_clear(&m);
	/* nonpersistent messages are wiped at reset, so only persistent count */
	store_close(st);
	store_seq_reset();
	st = open_store(true);
	cr_assert_eq(put_text(st, "Q1", NULL, "after2", 5, true, &m), STORE_OK);
	cr_assert_gt(m.seq, top + 1);
	msg_clear(&m);
}

Test(store, reads_use_indexes)
{
	char err[512];

	cr_assert_eq(store_plan_check(st, err, sizeof(err)), 0, "%s", err);
}

/* -------------------------------------------------------------- ordering */

Test(store, order_priority_then_arrival_across_persistence)
{
	static const struct { const char *t; int prio; bool p; } in[] = {
		{ "a", 5, true }, { "b", 5, false }, { "c", 9, false },
		{ "d", 0, true }, { "e", 9, true }, { "f", 5, true }, { "g", 0, false },
	};
	static const char *const want[] = { "c", "e", "a", "b", "f", "d", "g" };
	struct msg_list l = { 0 };
	int64_t last = 0;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	for (size_t i = 0; i < 7; i++) {
		struct chd_msg m;
		cr_assert_eq(put_text(st, "Q1", NULL, in[i].t, in[i].prio, in[i].p, &m), STORE_OK);
		cr_assert_gt(m.seq, last, "seq orders arrival");
		cr_assert(!msg_id_is_zero(m.msgid));
		cr_assert_neq(m.put_time_ms, 0);
		last = m.seq;
		msg_clear(&m);
	}
	cr_assert_eq(depth(st, "Q1"), 7);
	cr_assert_eq(store_browse(st, "Q1", 100, &l), STORE_OK);
	cr_assert_eq(l.n, 7);
	for (size_t i = 0; i < 7; i++)
		cr_assert(body_is(&l.v[i], want[i]), "browse %zu: got %.*s want %s", i,
		          (int)l.v[i].body_len, l.v[i].body, want[i]);
	msg_list_free(&l);

	/* getting takes them in the same order, a few at a time */
	for (size_t i = 0; i < 7;) {
		cr_assert_eq(store_lock(st, "Q1", 3, 1, &l), STORE_OK, "%s", store_errmsg(st));
		for (size_t k = 0; k < l.n; k++, i++) {
			cr_assert(body_is(&l.v[k], want[i]), "get %zu", i);
			cr_assert_eq(l.v[k].persistent, in[strchr("abcdefg", want[i][0]) - "abcdefg"].p);
		}
		cr_assert_eq(store_confirm(st, &l), STORE_OK);
		msg_list_free(&l);
	}
	cr_assert_eq(store_lock(st, "Q1", 3, 1, &l), STORE_NO_MSG);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(depth(st, "Q1"), 0);
}

Test(store, descriptor_round_trip)
{
	struct chd_msg m, *g;
	struct msg_list l = { 0 };
	size_t done;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	mk_msg(&m, "", 3, true); /* empty body is a message too */
	memset(m.msgid, 0xab, sizeof(m.msgid));
	memset(m.correlid, 0x11, sizeof(m.correlid));
	m.put_time_ms = 123456;
	m.expiry_ms = time_now_ms() + 3600000;
	str_copy(m.format, "MQSTR", sizeof(m.format));
	str_copy(m.reply_q, "REPLY.Q", sizeof(m.reply_q));
	str_copy(m.reply_qm, "QM9", sizeof(m.reply_qm));
	m.props = strdup("a=1\nb=two\n");
	cr_assert_eq(store_put(st, "Q1", NULL, &m, 1, &done), STORE_OK);
	cr_assert_eq(store_lock(st, "Q1", 1, 7, &l), STORE_OK);
	g = &l.v[0];
	cr_assert_eq(memcmp(g->msgid, m.msgid, MSG_ID_LEN), 0);
	cr_assert_eq(memcmp(g->correlid, m.correlid, MSG_ID_LEN), 0);
	cr_assert_eq(g->priority, 3);
	cr_assert(g->persistent);
	cr_assert_eq(g->put_time_ms, 123456);
	cr_assert_eq(g->expiry_ms, m.expiry_ms);
	cr_assert_str_eq(g->format, "MQSTR");
	cr_assert_str_eq(g->reply_q, "REPLY.Q");
	cr_assert_str_eq(g->reply_qm, "QM9");
	cr_assert_str_eq(g->props, "a=1\nb=two\n");
	cr_assert_eq(g->body_len, 0);
	cr_assert_not_null(g->body);
	cr_assert_eq(g->seq, m.seq);
	cr_assert_eq(store_confirm(st, &l), STORE_OK);
	msg_list_free(&l);
	msg_clear(&m);
}

Test(store, browse_does_not_remove)
{
	struct msg_list l = { 0 };

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put_text(st, "Q1", NULL, i ? "x" : "first", 4, i != 1, NULL), STORE_OK);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(store_browse(st, "Q1", 2, &l), STORE_OK);
		cr_assert_eq(l.n, 2);
		cr_assert(body_is(&l.v[0], "first"));
		msg_list_free(&l);
	}
	cr_assert_eq(depth(st, "Q1"), 3);
	/* locked messages are still on the queue, so browse shows them */
	cr_assert_eq(store_lock(st, "Q1", 1, 5, &l), STORE_OK);
	{
		struct msg_list b = { 0 };
		cr_assert_eq(store_browse(st, "Q1", 10, &b), STORE_OK);
		cr_assert_eq(b.n, 3);
		msg_list_free(&b);
	}
	store_release(&l);
	msg_list_free(&l);
	define_local(st, "EMPTY", 100, QUSAGE_NORMAL);
	cr_assert_eq(store_browse(st, "EMPTY", 10, &l), STORE_NO_MSG);
	cr_assert_eq(l.n, 0);
}

/* --------------------------------------------------------------- locking */

Test(store, lock_skips_other_owner_release_returns_confirm_removes)
{
	struct msg_list a = { 0 }, b = { 0 }, c = { 0 };
	char t[8];

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	for (int i = 0; i < 5; i++) {
		snprintf(t, sizeof(t), "m%d", i);
		cr_assert_eq(put_text(st, "Q1", NULL, t, 4, i % 2 == 0, NULL), STORE_OK);
	}
	cr_assert_eq(store_lock(st, "Q1", 2, 1, &a), STORE_OK);
	cr_assert_eq(a.n, 2);
	cr_assert(body_is(&a.v[0], "m0") && body_is(&a.v[1], "m1"));
	/* another owner, even through the same handle, skips them */
	cr_assert_eq(store_lock(st, "Q1", 2, 2, &b), STORE_OK);
	cr_assert_eq(b.n, 2);
	cr_assert(body_is(&b.v[0], "m2") && body_is(&b.v[1], "m3"));
	cr_assert_eq(store_lock(st, "Q1", 5, 3, &c), STORE_OK);
	cr_assert_eq(c.n, 1);
	cr_assert(body_is(&c.v[0], "m4"));
	msg_list_free(&c);
	cr_assert_eq(store_lock(st, "Q1", 5, 3, &c), STORE_NO_MSG);
	cr_assert_eq(depth(st, "Q1"), 5, "locked messages still count");

	/* released messages come back at their place in the order */
	store_release(&a);
	msg_list_free(&a);
	cr_assert_eq(store_lock(st, "Q1", 5, 3, &c), STORE_OK);
	cr_assert_eq(c.n, 2);
	cr_assert(body_is(&c.v[0], "m0") && body_is(&c.v[1], "m1"));

	/* confirm removes exactly those */
	cr_assert_eq(store_confirm(st, &b), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 3);
	store_release_owner(3);
	msg_list_free(&c);
	cr_assert_eq(store_browse(st, "Q1", 10, &c), STORE_OK);
	cr_assert_eq(c.n, 3);
	cr_assert(body_is(&c.v[0], "m0") && body_is(&c.v[1], "m1") && body_is(&c.v[2], "m4"));
	msg_list_free(&c);
	/* confirming again is harmless: nothing more goes */
	cr_assert_eq(store_confirm(st, &b), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 3);
	msg_list_free(&b);
	cr_assert_eq(store_lock(st, "Q1", 10, 9, &c), STORE_OK);
	cr_assert_eq(c.n, 3, "release_owner freed them");
	store_release(&c);
	msg_list_free(&c);
}

/* A restarted channel knows its in-doubt messages by seq alone (no lock,
 * no priority): confirm must still remove exactly those. */
Test(store, confirm_by_seq_alone_after_restart)
{
	struct chd_msg a, b;
	struct msg_list l = { 0 };
	struct chd_msg *x;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	cr_assert_eq(put_text(st, "Q1", NULL, "seven", 7, true, &a), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "np", 2, false, &b), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "stays", 7, true, NULL), STORE_OK);
	store_close(st);
	st = open_store(false);
	x = msg_list_add(&l);
	x->seq = a.seq;
	x->persistent = true;
	x = msg_list_add(&l);
	x->seq = b.seq;
	x->persistent = false;
	cr_assert_eq(store_confirm(st, &l), STORE_OK);
	msg_list_free(&l);
	cr_assert_eq(depth(st, "Q1"), 1);
	cr_assert_eq(store_browse(st, "Q1", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert(body_is(&l.v[0], "stays"));
	msg_list_free(&l);
	msg_clear(&a);
	msg_clear(&b);
}

Test(store, expired_messages_are_removed_and_skipped)
{
	struct chd_msg m;
	struct msg_list l = { 0 };
	size_t done;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	mk_msg(&m, "old", 9, true);
	m.expiry_ms = time_now_ms() - 1000;
	cr_assert_eq(store_put(st, "Q1", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);
	mk_msg(&m, "oldnp", 9, false);
	m.expiry_ms = time_now_ms() - 1;
	cr_assert_eq(store_put(st, "Q1", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);
	mk_msg(&m, "fresh", 1, true);
	m.expiry_ms = time_now_ms() + 3600000;
	cr_assert_eq(store_put(st, "Q1", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);
	cr_assert_eq(depth(st, "Q1"), 3);
	cr_assert_eq(store_browse(st, "Q1", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert(body_is(&l.v[0], "fresh"));
	msg_list_free(&l);
	cr_assert_eq(depth(st, "Q1"), 1, "browse removed the expired ones");

	mk_msg(&m, "old2", 9, true);
	m.expiry_ms = time_now_ms() - 5;
	cr_assert_eq(store_put(st, "Q1", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);
	cr_assert_eq(store_lock(st, "Q1", 1, 1, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert(body_is(&l.v[0], "fresh"));
	cr_assert_eq(store_confirm(st, &l), STORE_OK);
	msg_list_free(&l);
	cr_assert_eq(depth(st, "Q1"), 0, "lock removed the expired one");
}

/* ---------------------------------------------------------------- limits */

Test(store, maxdepth_partial_commit)
{
	struct chd_msg m[5];
	size_t done = 0;

	define_local(st, "Q1", 3, QUSAGE_NORMAL);
	for (int i = 0; i < 5; i++)
		mk_msg(&m[i], "x", 0, i % 2 == 0);
	cr_assert_eq(store_put(st, "Q1", NULL, m, 5, &done), STORE_FULL);
	cr_assert_eq(done, 3);
	cr_assert(strstr(store_errmsg(st), "MAXDEPTH") != NULL, "%s", store_errmsg(st));
	cr_assert_eq(depth(st, "Q1"), 3, "the first three are committed");
	cr_assert_eq(put_text(st, "Q1", NULL, "y", 0, false, NULL), STORE_FULL);
	for (int i = 0; i < 5; i++)
		msg_clear(&m[i]);
	store_close(st);
	st = open_store(false);
	cr_assert_eq(depth(st, "Q1"), 3);
}

Test(store, maxmsgl_priority_and_inhibit)
{
	struct queue_def q;
	struct msg_list l = { 0 };
	char err[512];

	queue_def_init(&q, QTYPE_LOCAL);
	str_copy(q.name, "SMALL", sizeof(q.name));
	q.maxmsgl = 10;
	cr_assert_eq(store_queue_define(st, &q, false), STORE_OK);
	cr_assert_eq(put_text(st, "SMALL", NULL, "0123456789", 0, true, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "SMALL", NULL, "0123456789A", 0, true, NULL), STORE_TOO_LONG);
	cr_assert_eq(put_text(st, "SMALL", NULL, "x", 10, true, NULL), STORE_BAD_ARG);
	cr_assert_eq(put_text(st, "SMALL", NULL, "x", -1, true, NULL), STORE_BAD_ARG);
	cr_assert_eq(put_text(st, "NOPE", NULL, "x", 1, true, NULL), STORE_UNKNOWN_Q);
	cr_assert_eq(put_text(st, "bad name!", NULL, "x", 1, true, NULL), STORE_BAD_NAME);

	q.put_enabled = false;
	q.get_enabled = false;
	cr_assert_eq(store_queue_define(st, &q, true), STORE_OK);
	cr_assert_eq(put_text(st, "SMALL", NULL, "x", 0, true, NULL), STORE_PUT_INHIBITED);
	cr_assert_eq(store_lock(st, "SMALL", 1, 1, &l), STORE_GET_INHIBITED);
	cr_assert_eq(store_browse(st, "SMALL", 1, &l), STORE_GET_INHIBITED);
	cr_assert_eq(depth(st, "SMALL"), 1);

	/* the agent-wide cap applies on top of MAXMSGL */
	store_close(st);
	{
		struct store_opts o = { .qmgr = "QM1", .max_msg_length = 4 };
		cr_assert_eq(store_open(&st, tpath, &o, err, sizeof(err)), STORE_OK, "%s", err);
	}
	define_local(st, "BIG", 10, QUSAGE_NORMAL);
	cr_assert_eq(put_text(st, "BIG", NULL, "1234", 0, true, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "BIG", NULL, "12345", 0, true, NULL), STORE_TOO_LONG);
	cr_assert(strstr(store_errmsg(st), "max_msg_length") != NULL);
}

/* ----------------------------------------------------------- definitions */

Test(store, queue_define_replace_delete_purge_list)
{
	struct queue_def q, got, *v;
	size_t n;
	long purged;

	queue_def_init(&q, QTYPE_LOCAL);
	cr_assert_eq(q.maxdepth, 5000);
	cr_assert_eq(q.maxmsgl, 4194304);
	cr_assert(q.put_enabled && q.get_enabled);
	cr_assert_eq(q.usage, QUSAGE_NORMAL);

	str_copy(q.name, "APP.IN", sizeof(q.name));
	str_copy(q.descr, "orders in", sizeof(q.descr));
	cr_assert_eq(store_queue_define(st, &q, false), STORE_OK);
	cr_assert_eq(store_queue_define(st, &q, false), STORE_EXISTS);
	str_copy(q.name, "bad name", sizeof(q.name));
	cr_assert_eq(store_queue_define(st, &q, false), STORE_BAD_NAME);
	str_copy(q.name, "APP.IN", sizeof(q.name));
	q.maxdepth = -1;
	cr_assert_eq(store_queue_define(st, &q, true), STORE_BAD_ARG);
	q.maxdepth = 5000;

	/* oldest_put_ms is the put time of the first to arrive, whatever its priority */
	{
		struct chd_msg m[2];
		size_t done;
		mk_msg(&m[0], "old", 0, true);
		m[0].put_time_ms = 1000;
		mk_msg(&m[1], "new", 9, false);
		m[1].put_time_ms = 2000;
		cr_assert_eq(store_put(st, "APP.IN", NULL, m, 2, &done), STORE_OK);
		msg_clear(&m[0]);
		msg_clear(&m[1]);
	}
	cr_assert_eq(store_queue_get(st, "APP.IN", &got), STORE_OK);
	cr_assert_eq(got.curdepth, 2);
	cr_assert_eq(got.oldest_put_ms, 1000);
	cr_assert_str_eq(got.descr, "orders in");
	cr_assert_neq(got.created_ms, 0);

	/* replace keeps messages and the creation time */
	q.maxdepth = 10;
	cr_assert_eq(store_queue_define(st, &q, true), STORE_OK);
	cr_assert_eq(store_queue_get(st, "APP.IN", &q), STORE_OK);
	cr_assert_eq(q.maxdepth, 10);
	cr_assert_eq(q.curdepth, 2);
	cr_assert_eq(q.created_ms, got.created_ms);

	/* a local queue with messages cannot become a remote definition */
	{
		struct queue_def r;
		queue_def_init(&r, QTYPE_REMOTE);
		str_copy(r.name, "APP.IN", sizeof(r.name));
		str_copy(r.rname, "X", sizeof(r.rname));
		str_copy(r.rqmname, "QM2", sizeof(r.rqmname));
		cr_assert_eq(store_queue_define(st, &r, true), STORE_NOT_EMPTY);
	}

	define_local(st, "APP.OUT", 10, QUSAGE_NORMAL);
	define_local(st, "OTHER", 10, QUSAGE_NORMAL);
	define_remote(st, "APP.REMOTE", "IN", "QM2", "XQ");
	cr_assert_eq(store_queue_list(st, "APP.*", &v, &n), STORE_OK);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0].name, "APP.IN");
	cr_assert_str_eq(v[1].name, "APP.OUT");
	cr_assert_str_eq(v[2].name, "APP.REMOTE");
	cr_assert_eq(v[0].curdepth, 2);
	cr_assert_eq(v[0].oldest_put_ms, 1000);
	cr_assert_eq(v[2].type, QTYPE_REMOTE);
	cr_assert_str_eq(v[2].rqmname, "QM2");
	free(v);
	cr_assert_eq(store_queue_list(st, "*OUT", &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	free(v);
	cr_assert_eq(store_queue_list(st, NULL, &v, &n), STORE_OK);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(v[3].name, "OTHER");
	free(v);
	cr_assert_eq(store_queue_list(st, "NONE*", &v, &n), STORE_OK);
	cr_assert_eq(n, 0);
	free(v);

	cr_assert_eq(store_queue_delete(st, "APP.IN", false), STORE_NOT_EMPTY);
	cr_assert_eq(store_purge(st, "APP.IN", &purged), STORE_OK);
	cr_assert_eq(purged, 2);
	cr_assert_eq(depth(st, "APP.IN"), 0);
	cr_assert_eq(store_queue_get(st, "APP.IN", &got), STORE_OK);
	cr_assert_eq(got.oldest_put_ms, 0);
	cr_assert_eq(put_text(st, "APP.IN", NULL, "again", 1, false, NULL), STORE_OK);
	cr_assert_eq(store_queue_delete(st, "APP.IN", true), STORE_OK);
	cr_assert_eq(store_queue_get(st, "APP.IN", &got), STORE_UNKNOWN_Q);
	cr_assert_eq(store_queue_delete(st, "APP.IN", true), STORE_UNKNOWN_Q);
	cr_assert_eq(store_queue_delete(st, "APP.REMOTE", false), STORE_OK);
	/* a queue defined again under an old name starts empty */
	define_local(st, "APP.IN", 10, QUSAGE_NORMAL);
	cr_assert_eq(depth(st, "APP.IN"), 0);
	/* an empty local queue may become a remote definition */
	{
		struct queue_def r;
		queue_def_init(&r, QTYPE_REMOTE);
		str_copy(r.name, "APP.OUT", sizeof(r.name));
		str_copy(r.rname, "X", sizeof(r.rname));
		str_copy(r.rqmname, "QM2", sizeof(r.rqmname));
		cr_assert_eq(store_queue_define(st, &r, true), STORE_OK);
		cr_assert_eq(store_queue_get(st, "APP.OUT", &got), STORE_OK);
		cr_assert_eq(got.type, QTYPE_REMOTE);
	}
}

/* ------------------------------------------------------ remote resolution */

Test(store, remote_resolution)
{
	char lq[CHAND_NAME_MAX + 1], xqm[CHAND_NAME_MAX + 1], xq[CHAND_NAME_MAX + 1];
	struct msg_list l = { 0 };
	struct chd_msg m;
	size_t done;

	define_local(st, "QM2", 100, QUSAGE_XMITQ);
	define_local(st, "LOCAL.Q", 100, QUSAGE_NORMAL);
	define_local(st, "XQ.OTHER", 100, QUSAGE_XMITQ);
	define_remote(st, "PAY.REMOTE", "PAY.IN", "QM2", NULL);
	define_remote(st, "VIA.OTHER", "X.IN", "QM7", "XQ.OTHER");
	define_remote(st, "BAD.XQ", "X", "QM2", "LOCAL.Q");
	define_remote(st, "NO.XQ", "X", "QM9", NULL);
	define_remote(st, "HERE", "LOCAL.Q", "QM1", NULL);

	cr_assert_eq(store_resolve(st, "PAY.REMOTE", NULL, lq, xqm, xq), STORE_OK);
	cr_assert_str_eq(lq, "QM2");
	cr_assert_str_eq(xqm, "QM2");
	cr_assert_str_eq(xq, "PAY.IN");
	cr_assert_eq(store_resolve(st, "LOCAL.Q", "QM1", lq, xqm, xq), STORE_OK);
	cr_assert_str_eq(lq, "LOCAL.Q");
	cr_assert_str_eq(xqm, "");
	cr_assert_eq(store_resolve(st, "HERE", NULL, lq, xqm, xq), STORE_OK);
	cr_assert_str_eq(lq, "LOCAL.Q");
	cr_assert_eq(store_resolve(st, "ANY.Q", "QM2", lq, xqm, xq), STORE_OK);
	cr_assert_str_eq(lq, "QM2");
	cr_assert_str_eq(xq, "ANY.Q");

	cr_assert_eq(put_text(st, "PAY.REMOTE", NULL, "pay", 5, true, &m), STORE_OK);
	cr_assert_str_eq(m.xmit_qm, "QM2");
	cr_assert_str_eq(m.xmit_q, "PAY.IN");
	msg_clear(&m);
	cr_assert_eq(put_text(st, "VIA.OTHER", NULL, "other", 5, true, NULL), STORE_OK);
	cr_assert_eq(depth(st, "XQ.OTHER"), 1);
	cr_assert_eq(put_text(st, "ANY.Q", "QM2", "direct", 5, false, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "LOCAL.Q", "QM1", "local", 5, true, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "HERE", NULL, "here", 5, true, NULL), STORE_OK);
	cr_assert_eq(depth(st, "LOCAL.Q"), 2);
	cr_assert_eq(put_text(st, "BAD.XQ", NULL, "x", 5, true, NULL), STORE_BAD_XMITQ);
	cr_assert(strstr(store_errmsg(st), "USAGE(NORMAL)") != NULL, "%s", store_errmsg(st));
	cr_assert_eq(put_text(st, "NO.XQ", NULL, "x", 5, true, NULL), STORE_BAD_XMITQ);
	cr_assert_eq(put_text(st, "ANY.Q", "QM5", "x", 5, true, NULL), STORE_BAD_XMITQ);
	cr_assert_eq(put_text(st, "ANY.Q", "LOCAL.Q", "x", 5, true, NULL), STORE_BAD_XMITQ);

	/* a direct put to a transmission queue needs a transmission header */
	cr_assert_eq(put_text(st, "QM2", NULL, "x", 5, true, NULL), STORE_WRONG_TYPE);
	cr_assert(strstr(store_errmsg(st), "remote queue") != NULL, "%s", store_errmsg(st));
	mk_msg(&m, "fwd", 5, true);
	str_copy(m.xmit_qm, "QM3", sizeof(m.xmit_qm));
	str_copy(m.xmit_q, "FAR.Q", sizeof(m.xmit_q));
	cr_assert_eq(store_put(st, "QM2", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);
	/* ...and a normal queue drops one */
	mk_msg(&m, "hdr", 5, true);
	str_copy(m.xmit_qm, "QM3", sizeof(m.xmit_qm));
	str_copy(m.xmit_q, "FAR.Q", sizeof(m.xmit_q));
	cr_assert_eq(store_put(st, "LOCAL.Q", NULL, &m, 1, &done), STORE_OK);
	msg_clear(&m);

	cr_assert_eq(store_browse(st, "QM2", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert(body_is(&l.v[0], "pay"));
	cr_assert_str_eq(l.v[0].xmit_qm, "QM2");
	cr_assert_str_eq(l.v[0].xmit_q, "PAY.IN");
	cr_assert(body_is(&l.v[1], "direct"));
	cr_assert(!l.v[1].persistent);
	cr_assert_str_eq(l.v[1].xmit_q, "ANY.Q");
	cr_assert(body_is(&l.v[2], "fwd"));
	cr_assert_str_eq(l.v[2].xmit_qm, "QM3");
	msg_list_free(&l);
	cr_assert_eq(store_browse(st, "LOCAL.Q", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.v[2].xmit_qm, "");
	msg_list_free(&l);

	/* a remote queue cannot be read, and its XMITQ cannot go */
	cr_assert_eq(store_lock(st, "PAY.REMOTE", 1, 1, &l), STORE_WRONG_TYPE);
	cr_assert_eq(store_browse(st, "PAY.REMOTE", 1, &l), STORE_WRONG_TYPE);
	{
		long purged = -1;
		cr_assert_eq(store_purge(st, "PAY.REMOTE", &purged), STORE_WRONG_TYPE);
		cr_assert(strstr(store_errmsg(st), "remote queue definition") != NULL, "%s",
		          store_errmsg(st));
	}
	cr_assert_eq(store_queue_delete(st, "QM2", true), STORE_IN_USE);
	cr_assert(strstr(store_errmsg(st), "PAY.REMOTE") != NULL || strstr(store_errmsg(st), "BAD.XQ") != NULL);
	cr_assert_eq(store_queue_delete(st, "XQ.OTHER", true), STORE_IN_USE);
	cr_assert_eq(store_queue_delete(st, "VIA.OTHER", false), STORE_OK);
	cr_assert_eq(store_queue_delete(st, "XQ.OTHER", true), STORE_OK);
}

/* ------------------------------------------------------- nonpersistence */

Test(store, nonpersistent_wiped_on_reset_persistent_kept)
{
	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	cr_assert_eq(put_text(st, "Q1", NULL, "p", 1, true, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "np", 9, false, NULL), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 2);
	store_close(st);
	st = open_store(false);
	cr_assert_eq(depth(st, "Q1"), 2, "a handle without reset keeps them");
	/* a second handle asking for reset while one is open wipes in place */
	{
		struct store *s2 = open_store(true);
		cr_assert_eq(depth(s2, "Q1"), 1);
		store_close(s2);
	}
	cr_assert_eq(put_text(st, "Q1", NULL, "np2", 9, false, NULL), STORE_OK);
	store_close(st);
	st = open_store(true);
	cr_assert_eq(depth(st, "Q1"), 1);
	{
		struct msg_list l = { 0 };
		cr_assert_eq(store_browse(st, "Q1", 10, &l), STORE_OK);
		cr_assert_eq(l.n, 1);
		cr_assert(body_is(&l.v[0], "p"));
		msg_list_free(&l);
	}
}

/* ---------------------------------------------------------- channel data */

Test(store, chandef_crud_and_list)
{
	char *a, **names;
	size_t n;

	cr_assert_eq(store_chandef_put(st, "QM1.TO.QM2", "{\"type\":\"sdr\"}", false), STORE_OK);
	cr_assert_eq(store_chandef_put(st, "QM1.TO.QM2", "{}", false), STORE_EXISTS);
	cr_assert_eq(store_chandef_put(st, "QM1.TO.QM3", "{\"type\":\"sdr\"}", false), STORE_OK);
	cr_assert_eq(store_chandef_put(st, "A.RCVR", "{\"type\":\"rcvr\"}", false), STORE_OK);
	cr_assert_eq(store_chandef_put(st, "bad name", "{}", false), STORE_BAD_NAME);
	cr_assert_eq(store_chandef_get(st, "QM1.TO.QM2", &a), STORE_OK);
	cr_assert_str_eq(a, "{\"type\":\"sdr\"}");
	free(a);
	cr_assert_eq(store_chandef_put(st, "QM1.TO.QM2", "{\"type\":\"svr\"}", true), STORE_OK);
	cr_assert_eq(store_chandef_get(st, "QM1.TO.QM2", &a), STORE_OK);
	cr_assert_str_eq(a, "{\"type\":\"svr\"}");
	free(a);
	cr_assert_eq(store_chandef_list(st, "QM1.*", &names, &n), STORE_OK);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(names[0], "QM1.TO.QM2");
	cr_assert_str_eq(names[1], "QM1.TO.QM3");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	cr_assert_eq(store_chandef_list(st, NULL, &names, &n), STORE_OK);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(names[0], "A.RCVR");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	cr_assert_eq(store_chandef_delete(st, "QM1.TO.QM3"), STORE_OK);
	cr_assert_eq(store_chandef_delete(st, "QM1.TO.QM3"), STORE_NOT_FOUND);
	cr_assert_eq(store_chandef_get(st, "QM1.TO.QM3", &a), STORE_NOT_FOUND);
	cr_assert_null(a);
}

Test(store, sync_records_follow_the_transaction)
{
	struct chan_sync s, g;
	struct msg_list l = { 0 };

	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_NOT_FOUND);
	cr_assert_str_eq(g.name, "CH1");
	cr_assert_eq(g.seq, 0);
	memset(&s, 0, sizeof(s));
	str_copy(s.name, "CH1", sizeof(s.name));
	s.seq = UINT64_MAX - 5;
	s.batch_id = 42;
	s.indoubt = true;
	s.indoubt_batch = 43;
	s.indoubt_seq = 1ULL << 63;
	s.indoubt_count = 50;
	cr_assert_eq(store_sync_set(st, &s), STORE_OK);
	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_OK);
	cr_assert_eq(g.seq, UINT64_MAX - 5);
	cr_assert_eq(g.indoubt_seq, 1ULL << 63);
	cr_assert(g.indoubt);
	cr_assert_eq(g.indoubt_count, 50);
	cr_assert_neq(g.updated_ms, 0);

	/* receiver: batch of messages + sync record, rolled back together */
	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_begin(st), STORE_BAD_ARG);
	cr_assert_eq(put_text(st, "Q1", NULL, "in batch", 1, true, NULL), STORE_OK);
	s.seq = 7;
	s.indoubt = false;
	cr_assert_eq(store_sync_set(st, &s), STORE_OK);
	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_OK);
	cr_assert_eq(g.seq, 7, "the transaction sees its own write");
	store_rollback(st);
	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_OK);
	cr_assert_eq(g.seq, UINT64_MAX - 5);
	cr_assert_eq(depth(st, "Q1"), 0);

	/* ...and committed together */
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "in batch", 1, true, NULL), STORE_OK);
	cr_assert_eq(store_sync_set(st, &s), STORE_OK);
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(store_commit(st), STORE_BAD_ARG);
	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_OK);
	cr_assert_eq(g.seq, 7);
	cr_assert_eq(depth(st, "Q1"), 1);

	/* sender: confirm + sync record rolled back: the messages are back,
	 * still locked by their owner until released */
	cr_assert_eq(store_lock(st, "Q1", 10, 1, &l), STORE_OK);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_confirm(st, &l), STORE_OK);
	s.seq = 8;
	cr_assert_eq(store_sync_set(st, &s), STORE_OK);
	store_rollback(st);
	cr_assert_eq(depth(st, "Q1"), 1);
	{
		struct msg_list o = { 0 };
		cr_assert_eq(store_lock(st, "Q1", 10, 2, &o), STORE_NO_MSG);
	}
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_confirm(st, &l), STORE_OK);
	cr_assert_eq(store_sync_set(st, &s), STORE_OK);
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 0);
	cr_assert_eq(store_sync_get(st, "CH1", &g), STORE_OK);
	cr_assert_eq(g.seq, 8);
	msg_list_free(&l);
	cr_assert_eq(store_sync_delete(st, "CH1"), STORE_OK);
	cr_assert_eq(store_sync_delete(st, "CH1"), STORE_NOT_FOUND);
}

Test(store, put_inside_transaction_commits_nothing_on_failure)
{
	struct chd_msg m[3];
	size_t done = 9;
	uint64_t gen;

	define_local(st, "Q1", 2, QUSAGE_NORMAL);
	define_local(st, "DLQ", 100, QUSAGE_NORMAL);
	for (int i = 0; i < 3; i++)
		mk_msg(&m[i], "x", 0, true);
	gen = store_change_gen();
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_put(st, "Q1", NULL, m, 3, &done), STORE_FULL);
	cr_assert_eq(done, 2);
	/* the caller decides: here it puts the failed one to the DLQ */
	cr_assert_eq(store_put(st, "DLQ", NULL, &m[2], 1, &done), STORE_OK);
	cr_assert_eq(store_change_gen(), gen, "nothing is visible before commit");
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_neq(store_change_gen(), gen);
	cr_assert_eq(depth(st, "Q1"), 2);
	cr_assert_eq(depth(st, "DLQ"), 1);

	for (int i = 0; i < 3; i++) {
		msg_clear(&m[i]);
		mk_msg(&m[i], "y", 0, i != 1);
	}
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_put(st, "DLQ", NULL, m, 3, &done), STORE_OK);
	store_rollback(st);
	cr_assert_eq(depth(st, "DLQ"), 1);
	for (int i = 0; i < 3; i++)
		msg_clear(&m[i]);
}

/* Nonpersistent messages live in memory (store_np.c) but follow the same
 * transactions as the table: invisible to others until commit, undone by
 * a rollback, a confirm undone by a rollback leaves them locked, a purge
 * takes them too. */
Test(store, nonpersistent_follow_the_transaction)
{
	struct store *s2 = open_store(false);
	struct msg_list l = { 0 }, c = { 0 };
	struct queue_def d;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "np-rolled-back", 5, false, NULL), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 1, "the writer sees its own put");
	store_rollback(st);
	cr_assert_eq(depth(st, "Q1"), 0);
	cr_assert_eq(store_browse(st, "Q1", 10, &l), STORE_NO_MSG);

	cr_assert_eq(put_text(st, "Q1", NULL, "p-low", 1, true, NULL), STORE_OK);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "np-high", 8, false, NULL), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "np-low", 1, false, NULL), STORE_OK);
	cr_assert_eq(store_browse(s2, "Q1", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 1, "another handle does not see uncommitted puts");
	msg_list_free(&l);
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(depth(s2, "Q1"), 3);
	cr_assert_eq(store_queue_get(s2, "Q1", &d), STORE_OK);
	cr_assert_neq(d.oldest_put_ms, 0);

	/* merged order: priority, then arrival, whatever the persistence */
	cr_assert_eq(store_lock(s2, "Q1", 2, 7, &c), STORE_OK);
	cr_assert_eq(c.n, 2);
	cr_assert(body_is(&c.v[0], "np-high"));
	cr_assert(body_is(&c.v[1], "p-low"));
	cr_assert_eq(store_begin(s2), STORE_OK);
	cr_assert_eq(store_confirm(s2, &c), STORE_OK);
	cr_assert_eq(depth(s2, "Q1"), 1, "the confirmer sees its deletes");
	cr_assert_eq(store_browse(s2, "Q1", 10, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert(body_is(&l.v[0], "np-low"));
	msg_list_free(&l);
	store_rollback(s2);
	cr_assert_eq(depth(st, "Q1"), 3, "a rolled back confirm deletes nothing");
	{
		struct msg_list o = { 0 };
		cr_assert_eq(store_lock(st, "Q1", 10, 8, &o), STORE_OK);
		cr_assert_eq(o.n, 1, "still locked by their owner after the rollback");
		cr_assert(body_is(&o.v[0], "np-low"));
		store_release(&o);
		msg_list_free(&o);
	}
	cr_assert_eq(store_confirm(s2, &c), STORE_OK);
	msg_list_free(&c);
	cr_assert_eq(depth(st, "Q1"), 1);

	/* purge in a transaction, rolled back then committed */
	cr_assert_eq(put_text(st, "Q1", NULL, "np-2", 0, false, NULL), STORE_OK);
	{
		long n = 0;
		cr_assert_eq(store_begin(st), STORE_OK);
		cr_assert_eq(store_purge(st, "Q1", &n), STORE_OK);
		cr_assert_eq(n, 2);
		store_rollback(st);
		cr_assert_eq(depth(st, "Q1"), 2);
		cr_assert_eq(store_purge(st, "Q1", &n), STORE_OK);
		cr_assert_eq(n, 2);
	}
	cr_assert_eq(depth(s2, "Q1"), 0);
	cr_assert_eq(store_browse(s2, "Q1", 10, &l), STORE_NO_MSG);
	store_close(s2);
}

/* --------------------------------------------------------------- notifier */

struct later_put {
	char path[320];
	int delay_ms;
};

static void *later_put_thread(void *arg)
{
	struct later_put *lp = arg;
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	struct chd_msg m;
	char err[256];
	size_t done;

	usleep((useconds_t)lp->delay_ms * 1000);
	if (store_open(&s, lp->path, &o, err, sizeof(err)) != STORE_OK)
		return (void *)1;
	memset(&m, 0, sizeof(m));
	m.body = malloc(1);
	m.body[0] = 'w';
	m.body_len = 1;
	m.persistent = true;
	if (store_put(s, "Q1", NULL, &m, 1, &done) != STORE_OK)
		return (void *)2;
	msg_clear(&m);
	store_close(s);
	return NULL;
}

Test(store, wait_wakes_on_put_and_times_out)
{
	struct later_put lp;
	pthread_t t;
	uint64_t gen;
	int64_t t0;
	void *res;

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	gen = store_change_gen();
	t0 = time_mono_ms();
	store_wait(&gen, 150);
	cr_assert_geq(time_mono_ms() - t0, 140, "times out");

	str_copy(lp.path, tpath, sizeof(lp.path));
	lp.delay_ms = 100;
	cr_assert_eq(pthread_create(&t, NULL, later_put_thread, &lp), 0);
	t0 = time_mono_ms();
	store_wait(&gen, 10000);
	cr_assert_lt(time_mono_ms() - t0, 5000, "woken by the put");
	pthread_join(t, &res);
	cr_assert_null(res);
	cr_assert_eq(depth(st, "Q1"), 1);
	/* a put that happened since gen was read returns at once */
	gen = store_change_gen();
	cr_assert_eq(put_text(st, "Q1", NULL, "z", 0, false, NULL), STORE_OK);
	t0 = time_mono_ms();
	store_wait(&gen, 10000);
	cr_assert_lt(time_mono_ms() - t0, 1000);
	store_wake_all();
}

/* ------------------------------------------------------------ concurrency */

#define CC_GETTERS 4
#define CC_PRELOAD 1500
#define CC_PRODUCED 1000

struct cc_getter {
	int id;
	int64_t *seqs;
	size_t n, cap;
	int err;
	volatile int *producing;
};

static void *cc_getter_thread(void *arg)
{
	struct cc_getter *g = arg;
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	char err[256];
	int idle = 0;

	if (store_open(&s, tpath, &o, err, sizeof(err)) != STORE_OK) {
		g->err = 1;
		return NULL;
	}
	for (;;) {
		struct msg_list l = { 0 };
		int rc = store_lock(s, "Q1", (size_t)(1 + g->id * 3), (uint64_t)(100 + g->id), &l);

		if (rc == STORE_NO_MSG) {
			if (!*g->producing && ++idle > 3)
				break;
			usleep(2000);
			continue;
		}
		idle = 0;
		if (rc != STORE_OK || store_confirm(s, &l) != STORE_OK) {
			g->err = 2;
			msg_list_free(&l);
			break;
		}
		for (size_t i = 0; i < l.n; i++) {
			if (g->n == g->cap) {
				g->cap = g->cap ? g->cap * 2 : 256;
				g->seqs = realloc(g->seqs, g->cap * sizeof(*g->seqs));
			}
			g->seqs[g->n++] = l.v[i].seq;
		}
		msg_list_free(&l);
	}
	store_close(s);
	return NULL;
}

static void *cc_producer_thread(void *arg)
{
	volatile int *producing = arg;
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	char err[256];

	if (store_open(&s, tpath, &o, err, sizeof(err)) == STORE_OK) {
		for (int i = 0; i < CC_PRODUCED / 10; i++) {
			struct chd_msg m[10];
			size_t done;
			for (int k = 0; k < 10; k++) {
				memset(&m[k], 0, sizeof(m[k]));
				m[k].body = malloc(8);
				m[k].body_len = 8;
				memset(m[k].body, 'p', 8);
				m[k].priority = (i + k) % 10;
				m[k].persistent = k % 3 != 0;
			}
			if (store_put(s, "Q1", NULL, m, 10, &done) != STORE_OK)
				*producing = -1;
			for (int k = 0; k < 10; k++)
				msg_clear(&m[k]);
		}
		store_close(s);
	}
	if (*producing != -1)
		*producing = 0;
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

Test(store, concurrent_getters_never_share_a_message)
{
	struct cc_getter g[CC_GETTERS];
	pthread_t t[CC_GETTERS], pt;
	volatile int producing = 1;
	int64_t *all;
	size_t total = 0;

	define_local(st, "Q1", 100000, QUSAGE_NORMAL);
	for (int i = 0; i < CC_PRELOAD / 50; i++) {
		struct chd_msg m[50];
		size_t done;
		for (int k = 0; k < 50; k++)
			mk_msg(&m[k], "pre", k % 10, k % 2 == 0);
		cr_assert_eq(store_put(st, "Q1", NULL, m, 50, &done), STORE_OK);
		for (int k = 0; k < 50; k++)
			msg_clear(&m[k]);
	}
	memset(g, 0, sizeof(g));
	for (int i = 0; i < CC_GETTERS; i++) {
		g[i].id = i;
		g[i].producing = &producing;
		cr_assert_eq(pthread_create(&t[i], NULL, cc_getter_thread, &g[i]), 0);
	}
	cr_assert_eq(pthread_create(&pt, NULL, cc_producer_thread, (void *)&producing), 0);
	pthread_join(pt, NULL);
	for (int i = 0; i < CC_GETTERS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(producing, 0, "producer failed");
	for (int i = 0; i < CC_GETTERS; i++) {
		cr_assert_eq(g[i].err, 0, "getter %d failed", i);
		total += g[i].n;
	}
	all = malloc(total * sizeof(*all));
	total = 0;
	for (int i = 0; i < CC_GETTERS; i++) {
		memcpy(all + total, g[i].seqs, g[i].n * sizeof(*all));
		total += g[i].n;
		free(g[i].seqs);
	}
	qsort(all, total, sizeof(*all), cmp_i64);
	for (size_t i = 1; i < total; i++)
		cr_assert_neq(all[i], all[i - 1], "message %lld delivered twice", (long long)all[i]);
	free(all);
	cr_assert_eq(total, CC_PRELOAD + CC_PRODUCED);
	cr_assert_eq(depth(st, "Q1"), 0);
}

/* ------------------------------------------------------------- group sync */

Test(store, a_commit_that_writes_is_synced_once_one_that_writes_nothing_is_not)
{
	uint64_t c0, s0, c1, s1;

	define_local(st, "Q1", 1000, QUSAGE_NORMAL);
	store_sync_stats(st, &c0, &s0);
	cr_assert_eq(put_text(st, "Q1", NULL, "durable", 0, true, NULL), STORE_OK);
	store_sync_stats(st, &c1, &s1);
	cr_assert_eq(c1 - c0, 1, "a persistent put is one commit that wrote");
	cr_assert_eq(s1 - s0, 1, "and one sync (no other writer)");
	/* nonpersistent messages never touch the file: no sync */
	cr_assert_eq(put_text(st, "Q1", NULL, "memory", 0, false, NULL), STORE_OK);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_commit(st), STORE_OK);
	store_sync_stats(st, &c0, &s0);
	cr_assert_eq(c0, c1);
	cr_assert_eq(s0, s1);
	/* everything committed is durable: the gate returns without a sync */
	store_durable_gate(st);
	store_sync_stats(st, &c1, &s1);
	cr_assert_eq(s1, s0);
}

/* store_begin_try: a caller that would hold the write lock across a wait
 * of its own (a receiver's early puts) does not queue behind, nor hold up,
 * another writer. */
Test(store, begin_try_gives_way_to_a_writer_and_begins_when_free)
{
	struct store *s2 = open_store(false);

	define_local(st, "Q1", 1000, QUSAGE_NORMAL);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(put_text(st, "Q1", NULL, "first", 0, true, NULL), STORE_OK);
	cr_assert_eq(store_begin_try(s2), STORE_IN_USE, "another handle writes: at once, no wait");
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(store_begin_try(s2), STORE_OK, "%s", store_errmsg(s2));
	cr_assert_eq(put_text(s2, "Q1", NULL, "second", 0, true, NULL), STORE_OK);
	cr_assert_eq(store_begin_try(st), STORE_IN_USE);
	cr_assert_eq(store_commit(s2), STORE_OK);
	cr_assert_eq(depth(st, "Q1"), 2);
	store_close(s2);
}

/* A NUL-terminated body of n copies of c (malloc'd). */
static char *text_body(size_t n, char c)
{
	char *b = malloc(n + 1);

	cr_assert_not_null(b);
	memset(b, c, n);
	b[n] = '\0';
	return b;
}

/* The checkpoint runs after the commit, outside the write mutex: the WAL
 * still reaches the database file once it passes 16 MiB. */
Test(store, commits_past_16_MiB_of_wal_are_checkpointed_into_the_database)
{
	enum { BODY = 64 * 1024, PUTS = 400 };
	char *body = text_body(BODY, 'c');
	struct stat sb;

	define_local(st, "Q1", 100000, QUSAGE_NORMAL);
	for (int i = 0; i < PUTS; i++)
		cr_assert_eq(put_text(st, "Q1", NULL, body, 0, true, NULL), STORE_OK);
	free(body);
	cr_assert_eq(stat(tpath, &sb), 0);
	cr_assert_gt(sb.st_size, 16 << 20, "25 MiB put, database file %lld bytes: no checkpoint",
	             (long long)sb.st_size);
	cr_assert_eq(depth(st, "Q1"), PUTS);
}

#define WR_THREADS 4
#define WR_PUTS 100

static void *wr_putter(void *arg)
{
	struct store_opts o = { .qmgr = "QM1" };
	const char *body = arg;
	struct store *s;
	char err[256];
	intptr_t bad = 0;

	if (store_open(&s, tpath, &o, err, sizeof(err)) != STORE_OK)
		return (void *)1;
	for (int i = 0; i < WR_PUTS && bad == 0; i++)
		if (put_text(s, "Q1", NULL, body, 0, true, NULL) != STORE_OK)
			bad = 2;
	store_close(s);
	return (void *)bad;
}

/* Writers that overlap the checkpoint do not keep the WAL from starting
 * again at its beginning: 25 MiB put by four writers at once (about 50 MiB
 * of WAL frames with the pages each commit rewrites) leave a WAL file of
 * about 18 MiB, the threshold and what was appended while it was copied.
 * The file keeps its largest size; a WAL that never restarted held all the
 * frames (measured: 57 MiB before the restarting checkpoint). */
Test(store, a_wal_written_by_several_writers_at_once_restarts_after_its_checkpoint)
{
	enum { BODY = 64 * 1024 };
	pthread_t t[WR_THREADS];
	char *body = text_body(BODY, 'w'), wal[4200];
	struct stat sb;

	define_local(st, "Q1", 100000, QUSAGE_NORMAL);
	for (int i = 0; i < WR_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, wr_putter, body), 0);
	for (int i = 0; i < WR_THREADS; i++) {
		void *res;
		pthread_join(t[i], &res);
		cr_assert_null(res, "putter %d failed (%ld)", i, (long)(intptr_t)res);
	}
	free(body);
	cr_assert_eq(depth(st, "Q1"), WR_THREADS * WR_PUTS);
	snprintf(wal, sizeof(wal), "%s-wal", tpath);
	cr_assert_eq(stat(wal, &sb), 0);
	cr_assert_lt(sb.st_size, 32 << 20, "%d MiB put, WAL file %lld bytes: it never restarted",
	             WR_THREADS * WR_PUTS * BODY >> 20, (long long)sb.st_size);
}

#define GS_THREADS 6
#define GS_PUTS 150

static void *gs_putter(void *arg)
{
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	char err[256];
	intptr_t bad = 0;

	(void)arg;
	if (store_open(&s, tpath, &o, err, sizeof(err)) != STORE_OK)
		return (void *)1;
	for (int i = 0; i < GS_PUTS && bad == 0; i++) {
		struct chd_msg m;
		size_t done;
		mk_msg(&m, "group", 0, true);
		if (store_put(s, "Q1", NULL, &m, 1, &done) != STORE_OK || done != 1)
			bad = 2;
		msg_clear(&m);
	}
	store_close(s);
	return (void *)bad;
}

/* Every commit of every handle is counted once, no commit is lost, and
 * no more syncs are made than commits (fewer when writers overlap). */
Test(store, commits_of_several_handles_all_land_with_at_most_one_sync_each)
{
	pthread_t t[GS_THREADS];
	uint64_t c0, s0, c1, s1;

	define_local(st, "Q1", 100000, QUSAGE_NORMAL);
	store_sync_stats(st, &c0, &s0);
	for (int i = 0; i < GS_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, gs_putter, NULL), 0);
	for (int i = 0; i < GS_THREADS; i++) {
		void *res;
		pthread_join(t[i], &res);
		cr_assert_null(res, "putter %d failed (%ld)", i, (long)(intptr_t)res);
	}
	store_sync_stats(st, &c1, &s1);
	cr_assert_eq(c1 - c0, GS_THREADS * GS_PUTS);
	cr_assert(s1 - s0 >= 1 && s1 - s0 <= c1 - c0, "%llu syncs for %llu commits",
	          (unsigned long long)(s1 - s0), (unsigned long long)(c1 - c0));
	cr_assert_eq(depth(st, "Q1"), GS_THREADS * GS_PUTS);
}

/* ---------------------------------------------------- crash: kill -9 tests */

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

/* Reads what the child wrote during ms milliseconds, then kills it with
 * SIGKILL and reads the rest.  Returns a malloc'd NUL-terminated buffer. */
static char *run_and_kill(pid_t pid, int fd, int ms, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int64_t end = time_mono_ms() + ms;
	bool killed = false;

	cr_assert_not_null(buf);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - time_mono_ms();
		ssize_t r;

		if (!killed && left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
		}
		if (poll(&p, 1, killed ? 1000 : (int)(left > 0 ? left : 0)) <= 0) {
			if (killed)
				break;
			continue;
		}
		if (n + 4096 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		r = read(fd, buf + n, 4096);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (!killed) { /* the child ended by itself */
				kill(pid, SIGKILL);
				killed = true;
			}
			break;
		}
		n += (size_t)r;
	}
	{
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* All seqs on queue q, via browse (which does not remove). */
static size_t all_seqs(struct store *s, const char *q, int64_t **out)
{
	struct msg_list l = { 0 };
	int rc = store_browse(s, q, SIZE_MAX, &l);
	int64_t *v;

	cr_assert(rc == STORE_OK || rc == STORE_NO_MSG, "%s", store_errmsg(s));
	v = malloc((l.n + 1) * sizeof(*v));
	for (size_t i = 0; i < l.n; i++)
		v[i] = l.v[i].seq;
	qsort(v, l.n, sizeof(*v), cmp_i64);
	*out = v;
	rc = (int)l.n;
	msg_list_free(&l);
	return (size_t)rc;
}

static bool has_seq(const int64_t *v, size_t n, int64_t seq)
{
	return bsearch(&seq, v, n, sizeof(*v), cmp_i64) != NULL;
}

static void child_put_loop(int fd)
{
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	char err[256];

	if (store_open(&s, tpath, &o, err, sizeof(err)) != STORE_OK)
		_exit(3);
	for (unsigned i = 0;; i++) {
		struct chd_msg m[4];
		size_t n = 1 + i % 4, done;
		char line[128];
		int len = 0;

		for (size_t k = 0; k < n; k++) {
			memset(&m[k], 0, sizeof(m[k]));
			m[k].body = malloc(512);
			memset(m[k].body, 'd', 512);
			m[k].body_len = 512;
			m[k].persistent = true;
			m[k].priority = (int)(k * 3);
		}
		if (store_put(s, "DUR", NULL, m, n, &done) != STORE_OK)
			_exit(4);
		for (size_t k = 0; k < n; k++) {
			len += snprintf(line + len, sizeof(line) - (size_t)len, "%lld\n",
			                (long long)m[k].seq);
			msg_clear(&m[k]);
		}
		/* one write: lines arrive whole */
		if (write(fd, line, (size_t)len) != len)
			_exit(5);
	}
}

Test(store, durability_of_acknowledged_puts_across_kill9)
{
	int64_t *acked = NULL;
	size_t nacked = 0, capacked = 0;

	rnd_state = (unsigned)time(NULL) ^ (unsigned)getpid();
	define_local(st, "DUR", 10000000, QUSAGE_NORMAL);
	store_close(st);
	st = NULL;
	for (int round = 0; round < 6; round++) {
		int pfd[2];
		pid_t pid;
		size_t len;
		char *buf, *p, *nl;
		int64_t *have;
		size_t nhave;

		cr_assert_eq(pipe(pfd), 0);
		pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			close(pfd[0]);
			child_put_loop(pfd[1]);
		}
		close(pfd[1]);
		buf = run_and_kill(pid, pfd[0], 30 + (int)rnd(250), &len);
		close(pfd[0]);
		for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			if (nacked == capacked) {
				capacked = capacked ? capacked * 2 : 1024;
				acked = realloc(acked, capacked * sizeof(*acked));
			}
			acked[nacked++] = strtoll(p, NULL, 10);
		}
		free(buf);

		st = open_store(false);
		nhave = all_seqs(st, "DUR", &have);
		for (size_t i = 0; i < nacked; i++)
			cr_assert(has_seq(have, nhave, acked[i]), "round %d: acknowledged message %lld"
			          " lost", round, (long long)acked[i]);
		/* the depth counter was committed with the rows */
		cr_assert_eq((size_t)depth(st, "DUR"), nhave);
		free(have);
		store_close(st);
		st = NULL;
	}
	cr_assert_gt(nacked, 0, "the child never got a put through");
	cr_log_info("durability: %zu acknowledged messages over 6 kills", nacked);
	free(acked);
	st = open_store(false);
}

static void child_get_loop(int fd)
{
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s;
	char err[256];

	if (store_open(&s, tpath, &o, err, sizeof(err)) != STORE_OK)
		_exit(3);
	for (unsigned i = 0;; i++) {
		struct msg_list l = { 0 };
		char line[512];
		int len;
		int rc = store_lock(s, "GETQ", 1 + i % 6, 77, &l);

		if (rc == STORE_NO_MSG)
			_exit(0);
		if (rc != STORE_OK)
			_exit(4);
		len = snprintf(line, sizeof(line), "A");
		for (size_t k = 0; k < l.n; k++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %lld",
			                (long long)l.v[k].seq);
		line[len++] = '\n';
		if (write(fd, line, (size_t)len) != len)
			_exit(5);
		if (store_confirm(s, &l) != STORE_OK)
			_exit(6);
		if (write(fd, "C\n", 2) != 2)
			_exit(5);
		msg_list_free(&l);
	}
}

Test(store, get_is_exactly_once_across_kill9)
{
	enum { N = 1500 };
	int64_t *orig;
	unsigned char *consumed; /* per original message: 1 once taken */
	size_t norig;

	rnd_state = (unsigned)time(NULL) ^ (unsigned)getpid() ^ 0x5a5a;
	define_local(st, "GETQ", 100000, QUSAGE_NORMAL);
	for (int i = 0; i < N / 50; i++) {
		struct chd_msg m[50];
		size_t done;
		for (int k = 0; k < 50; k++)
			mk_msg(&m[k], "item", (i + k) % 10, true);
		cr_assert_eq(store_put(st, "GETQ", NULL, m, 50, &done), STORE_OK);
		for (int k = 0; k < 50; k++)
			msg_clear(&m[k]);
	}
	norig = all_seqs(st, "GETQ", &orig);
	cr_assert_eq(norig, N);
	consumed = calloc(N, 1);
	store_close(st);
	st = NULL;

	for (int round = 0; round < 8; round++) {
		int pfd[2];
		pid_t pid;
		size_t len, npend = 0;
		char *buf, *p, *nl;
		int64_t pend[16], *have;
		size_t nhave, left = 0;

		cr_assert_eq(pipe(pfd), 0);
		pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			close(pfd[0]);
			child_get_loop(pfd[1]);
		}
		close(pfd[1]);
		buf = run_and_kill(pid, pfd[0], 30 + (int)rnd(200), &len);
		close(pfd[0]);
		for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			if (*p == 'A') {
				char *q = p + 1;
				cr_assert_eq(npend, 0, "A without C before it");
				while (q < nl) {
					int64_t seq = strtoll(q, &q, 10);
					const int64_t *hit = bsearch(&seq, orig, norig, sizeof(*orig), cmp_i64);
					cr_assert_not_null(hit, "unknown seq %lld", (long long)seq);
					cr_assert_eq(consumed[hit - orig], 0, "round %d: message %lld handed"
					             " out again after it was confirmed", round, (long long)seq);
					pend[npend++] = seq;
				}
			} else {
				cr_assert_eq(*p, 'C');
				for (size_t k = 0; k < npend; k++) {
					const int64_t *hit = bsearch(&pend[k], orig, norig, sizeof(*orig), cmp_i64);
					consumed[hit - orig] = 1;
				}
				npend = 0;
			}
		}
		free(buf);

		st = open_store(false);
		nhave = all_seqs(st, "GETQ", &have);
		/* the batch in flight at the kill: confirmed or not, never both */
		for (size_t k = 0; k < npend; k++) {
			const int64_t *hit = bsearch(&pend[k], orig, norig, sizeof(*orig), cmp_i64);
			if (!has_seq(have, nhave, pend[k]))
				consumed[hit - orig] = 1;
		}
		for (size_t i = 0; i < norig; i++) {
			bool present = has_seq(have, nhave, orig[i]);
			cr_assert(present != (consumed[i] != 0), "round %d: message %lld is %s", round,
			          (long long)orig[i], present ? "confirmed and still present"
			                                      : "missing but never confirmed");
			left += present;
		}
		cr_assert_eq(left, nhave);
		cr_assert_eq((size_t)depth(st, "GETQ"), nhave);
		cr_log_info("get round %d: %zu left, in flight at the kill: %zu", round, nhave, npend);
		free(have);
		store_close(st);
		st = NULL;
		if (nhave == 0)
			break;
	}
	free(orig);
	free(consumed);
	st = open_store(false);
}

/* ------------------------------------------------------------ page size */

static int64_t pragma_int(struct store *s, const char *sql)
{
	sqlite3_stmt *q;
	int64_t v;

	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(s), sql, -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

Test(store, a_new_database_has_16_KiB_pages)
{
	cr_assert_eq(pragma_int(st, "PRAGMA main.page_size"), STORE_PAGE_SIZE);
	cr_assert_eq(st->ckpt_frames, STORE_CKPT_BYTES / STORE_PAGE_SIZE);
}

/* A database an earlier chand made with 4 KiB pages (in WAL mode, so the
 * size cannot change) keeps them, and everything works on it. */
Test(store, a_database_with_4_KiB_pages_keeps_them_and_works)
{
	char old[400];
	sqlite3 *db;
	struct chd_msg got;
	struct msg_list l = { 0 };

	snprintf(old, sizeof(old), "%s/OLD.db", tdir);
	cr_assert_eq(sqlite3_open(old, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;"
	                          "CREATE TABLE t(x); DROP TABLE t;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct store_opts o = { .qmgr = "QM1", .max_msg_length = 0, .reset_np = true };
	struct store *s = NULL;
	char err[512];
	cr_assert_eq(store_open(&s, old, &o, err, sizeof(err)), STORE_OK, "store_open: %s", err);
	cr_assert_eq(pragma_int(s, "PRAGMA main.page_size"), 4096);
	cr_assert_eq(s->ckpt_frames, STORE_CKPT_BYTES / 4096);
	define_local(s, "OLDQ", 1000, QUSAGE_NORMAL);
	cr_assert_eq(put_text(s, "OLDQ", NULL, "on small pages", 0, true, NULL), STORE_OK);
	cr_assert_eq(store_lock(s, "OLDQ", 1, 7, &l), STORE_OK, "%s", store_errmsg(s));
	cr_assert_eq(l.n, 1);
	got = l.v[0];
	cr_assert(body_is(&got, "on small pages"));
	cr_assert_eq(store_confirm(s, &l), STORE_OK, "%s", store_errmsg(s));
	msg_list_free(&l);
	store_close(s);
}

/* ------------------------------------------------------------- disk full */

Test(store, disk_full_refuses_cleanly_and_keeps_everything)
{
	sqlite3_stmt *s;
	int64_t pages;
	char sql[64];
	size_t total = 0, done;
	int rc = STORE_OK;

	define_local(st, "FULLQ", 10000000, QUSAGE_NORMAL);
	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(st), "PRAGMA main.page_count", -1, &s, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	pages = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	snprintf(sql, sizeof(sql), "PRAGMA main.max_page_count = %lld", (long long)pages + 40);
	cr_assert_eq(sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL), SQLITE_OK);

	for (int i = 0; i < 10000 && rc == STORE_OK; i++) {
		struct chd_msg m[8];
		for (int k = 0; k < 8; k++) {
			memset(&m[k], 0, sizeof(m[k]));
			m[k].body = malloc(1024);
			memset(m[k].body, 'f', 1024);
			m[k].body_len = 1024;
			m[k].persistent = true;
		}
		rc = store_put(st, "FULLQ", NULL, m, 8, &done);
		if (rc == STORE_OK)
			cr_assert_eq(done, 8);
		else
			cr_assert_eq(done, 0, "a failed write reports nothing put");
		total += done;
		for (int k = 0; k < 8; k++)
			msg_clear(&m[k]);
	}
	cr_assert_eq(rc, STORE_DISK_FULL, "got %d: %s", rc, store_errmsg(st));
	cr_assert(strstr(store_errmsg(st), "disk full") != NULL, "%s", store_errmsg(st));
	cr_assert_gt(total, 0);
	cr_assert_eq((size_t)depth(st, "FULLQ"), total);
	/* also inside a transaction: it is rolled back and commit says so */
	cr_assert_eq(store_begin(st), STORE_OK);
	{
		struct chd_msg m[64];
		for (int k = 0; k < 64; k++) {
			memset(&m[k], 0, sizeof(m[k]));
			m[k].body = calloc(1, 4096);
			m[k].body_len = 4096;
			m[k].persistent = true;
		}
		cr_assert_eq(store_put(st, "FULLQ", NULL, m, 64, &done), STORE_DISK_FULL);
		for (int k = 0; k < 64; k++)
			msg_clear(&m[k]);
	}
	cr_assert_eq(store_commit(st), STORE_DISK_FULL, "%s", store_errmsg(st));
	cr_assert_eq(store_begin(st), STORE_OK, "the handle is usable again");
	store_rollback(st);

	store_close(st);
	st = open_store(false);
	{
		int64_t *have;
		size_t nhave = all_seqs(st, "FULLQ", &have);
		free(have);
		cr_assert_eq(nhave, total, "every message put before the disk filled is there");
	}
	cr_assert_eq((size_t)depth(st, "FULLQ"), total);
	cr_assert_eq(put_text(st, "FULLQ", NULL, "after", 0, true, NULL), STORE_OK);
}

/* A claim by the owner of the last one resumes after it (the claim hint,
 * store_msg.c): whatever became claimable before that point meanwhile
 * must still come first.  Persistent, nonpersistent and mixed queues. */
static void lock_one_is(uint64_t owner, size_t max, const char *const *want, size_t nwant)
{
	struct msg_list l = { 0 };

	if (nwant == 0) {
		cr_assert_eq(store_lock(st, "Q1", max, owner, &l), STORE_NO_MSG);
		return;
	}
	cr_assert_eq(store_lock(st, "Q1", max, owner, &l), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(l.n, nwant, "claimed %zu, wanted %zu (first %.*s)", l.n, nwant,
	             (int)l.v[0].body_len, (const char *)l.v[0].body);
	for (size_t i = 0; i < nwant; i++)
		cr_assert(body_is(&l.v[i], want[i]), "claim %zu is %.*s, wanted %s", i,
		          (int)l.v[i].body_len, (const char *)l.v[i].body, want[i]);
	msg_list_free(&l);
}

Test(store, a_claim_resumes_after_its_last_one_yet_sees_what_came_before_it)
{
	for (int kind = 0; kind < 3; kind++) {
		struct msg_list two = { 0 };
		char t[8];
		/* 0: persistent, 1: nonpersistent, 2: mixed */
#define PERS(i) (kind == 0 || (kind == 2 && (i) % 2 == 0))
		store_close(st);
		nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		cr_assert_not_null(mkdtemp(strcpy(tdir, "/tmp/chand-test-store-XXXXXX")));
		snprintf(tpath, sizeof(tpath), "%s/QM1.db", tdir);
		st = open_store(true);
		define_local(st, "Q1", 100, QUSAGE_NORMAL);
		for (int i = 0; i < 10; i++) {
			snprintf(t, sizeof(t), "m%d", i);
			cr_assert_eq(put_text(st, "Q1", NULL, t, 4, PERS(i), NULL), STORE_OK);
		}
		lock_one_is(1, 2, (const char *[]){ "m0", "m1" }, 2);
		cr_assert_eq(store_lock(st, "Q1", 1, 2, &two), STORE_OK);
		cr_assert(body_is(&two.v[0], "m2"));
		lock_one_is(1, 2, (const char *[]){ "m3", "m4" }, 2);
		/* a higher priority put lands before the resume point */
		cr_assert_eq(put_text(st, "Q1", NULL, "hi", 6, PERS(1), NULL), STORE_OK);
		lock_one_is(1, 1, (const char *[]){ "hi" }, 1);
		lock_one_is(1, 1, (const char *[]){ "m5" }, 1);
		/* a lock given back without a delete: m2 is claimable again */
		store_release(&two);
		msg_list_free(&two);
		lock_one_is(1, 1, (const char *[]){ "m2" }, 1);
		/* a put of the same priority lands after the resume point */
		cr_assert_eq(put_text(st, "Q1", NULL, "same", 4, PERS(0), NULL), STORE_OK);
		lock_one_is(1, 2, (const char *[]){ "m6", "m7" }, 2);
		cr_assert_eq(put_text(st, "Q1", NULL, "lo", 1, PERS(1), NULL), STORE_OK);
		/* inside a transaction, committed: the same as a put on its own */
		cr_assert_eq(store_begin(st), STORE_OK);
		cr_assert_eq(put_text(st, "Q1", NULL, "txn", 8, PERS(0), NULL), STORE_OK);
		cr_assert_eq(store_commit(st), STORE_OK);
		lock_one_is(1, 10, (const char *[]){ "txn", "m8", "m9", "same", "lo" }, 5);
		/* rolled back: nothing to see */
		cr_assert_eq(store_begin(st), STORE_OK);
		cr_assert_eq(put_text(st, "Q1", NULL, "ghost", 9, PERS(1), NULL), STORE_OK);
		store_rollback(st);
		lock_one_is(1, 1, NULL, 0);
		/* another owner through the same handle walks from the head */
		store_release_owner(1);
		lock_one_is(3, 3, (const char *[]){ "txn", "hi", "m0" }, 3);
		lock_one_is(3, 2, (const char *[]){ "m1", "m2" }, 2);
		store_release_owner(3);
#undef PERS
	}
}

/* A claim keeps the rows its walk read only if no other connection
 * committed since the walk began: here another handle confirms (deletes)
 * p0 after the walk's snapshot was taken and before the walk reaches it,
 * so the walk still sees p0, finds its lock free and claims it; it must
 * then read it again, find it gone, and hand out p1 and p2. */
static struct store *hook_b;
static struct msg_list hook_bl;

static void confirm_by_b(void *arg)
{
	(void)arg;
	cr_assert_eq(store_confirm(hook_b, &hook_bl), STORE_OK, "%s", store_errmsg(hook_b));
}

Test(store, a_claim_does_not_hand_out_a_row_confirmed_after_its_walk_began)
{
	struct msg_list a = { 0 };

	define_local(st, "Q1", 100, QUSAGE_NORMAL);
	for (int i = 0; i < 4; i++) {
		char t[8];
		snprintf(t, sizeof(t), "p%d", i);
		cr_assert_eq(put_text(st, "Q1", NULL, t, 0, true, NULL), STORE_OK);
	}
	hook_b = open_store(false);
	memset(&hook_bl, 0, sizeof(hook_bl));
	cr_assert_eq(store_lock(hook_b, "Q1", 1, 2, &hook_bl), STORE_OK);
	cr_assert(body_is(&hook_bl.v[0], "p0"));
	store_test_claim_hook = confirm_by_b;
	cr_assert_eq(store_lock(st, "Q1", 2, 1, &a), STORE_OK, "%s", store_errmsg(st));
	cr_assert_null(store_test_claim_hook, "the walk never visited a message");
	cr_assert_eq(a.n, 2);
	cr_assert(body_is(&a.v[0], "p1") && body_is(&a.v[1], "p2"), "handed out %.*s and %.*s",
	          (int)a.v[0].body_len, (const char *)a.v[0].body, (int)a.v[1].body_len,
	          (const char *)a.v[1].body);
	cr_assert_eq(depth(st, "Q1"), 3);
	store_release(&a);
	msg_list_free(&a);
	msg_list_free(&hook_bl);
	store_close(hook_b);
}
