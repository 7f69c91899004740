/* MQTT tables of the store: sessions and their cascade, subscriptions,
 * queued publications (seq order, paging, expiry, seqs that never go
 * back across a reopen), inbound QoS 2 ids, retained messages,
 * transactions, the migration from schema version 1, large payloads and
 * arbitrary UTF-8 client ids, query plans and disk full. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chand/store.h"
#include "chand/store_mqtt.h"
#include "store_int.h"

static char tdir[256];
static char tpath[320];
static struct store *st;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static struct store *open_store(void)
{
	struct store_opts o = { .qmgr = "QM1" };
	struct store *s = NULL;
	char err[512];
	int rc = store_open(&s, tpath, &o, err, sizeof(err));

	cr_assert_eq(rc, STORE_OK, "store_open: %s", err);
	return s;
}

static void setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/chand-test-mqstore-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	snprintf(tpath, sizeof(tpath), "%s/QM1.db", tdir);
	st = open_store();
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store_mqtt, .init = setup, .fini = teardown, .timeout = 120);

static void reopen(void)
{
	store_close(st);
	st = open_store();
}

static void put_session(const char *cid, const char *identity)
{
	struct store_mqtt_session s = {
		.client_id = (char *)cid, .channel = "MQTT.TLS", .protocol = 5, .expiry_s = 3600,
		.disconnected_ms = 0, .next_pid = 1, .identity = (char *)identity,
	};

	cr_assert_eq(store_mqtt_session_put(st, &s), STORE_OK, "%s", store_errmsg(st));
}

static void put_sub(const char *cid, const char *filter, uint8_t qos)
{
	struct store_mqtt_sub sub = { .filter = (char *)filter, .qos = qos, .opts = 0x6,
		                      .sub_id = 42 };

	cr_assert_eq(store_mqtt_sub_put(st, cid, &sub), STORE_OK, "%s", store_errmsg(st));
}

/* Queues a publication whose payload is its text; returns its seq. */
static int64_t add_out(const char *cid, const char *topic, const char *text, int64_t expiry)
{
	struct store_mqtt_msg m = {
		.topic = (char *)topic, .payload = (uint8_t *)text, .payload_len = strlen(text),
		.qos = 1, .expiry_ms = expiry, .put_ms = 1000,
	};

	cr_assert_eq(store_mqtt_out_add(st, cid, &m), STORE_OK, "%s", store_errmsg(st));
	cr_assert_gt(m.seq, 0);
	return m.seq;
}

static size_t load_all(const char *cid, int64_t now, struct store_mqtt_msg **v)
{
	size_t n;

	cr_assert_eq(store_mqtt_out_load(st, cid, 0, SIZE_MAX, now, v, &n), STORE_OK, "%s",
	             store_errmsg(st));
	return n;
}

static const struct store_mqtt_session_full *find_session(const struct store_mqtt_session_full *v,
                                                          size_t n, const char *cid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].s.client_id, cid) == 0)
			return &v[i];
	return NULL;
}

static int64_t sql_int(const char *sql)
{
	sqlite3_stmt *s;
	int64_t v;

	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL), SQLITE_OK, "%s",
	             sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sql);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* ---------------------------------------------------------------- sessions */

Test(store_mqtt, session_put_get_touch_replace_list)
{
	struct store_mqtt_session g, bad = { .client_id = "x", .protocol = 6 };
	struct store_mqtt_session_full *v;
	size_t n;

	put_session("dev-b", "CN=dev-b");
	put_session("dev-a", NULL);
	put_session("dev-c", NULL);
	cr_assert_eq(store_mqtt_session_get(st, "dev-b", &g), STORE_OK);
	cr_assert_str_eq(g.client_id, "dev-b");
	cr_assert_str_eq(g.channel, "MQTT.TLS");
	cr_assert_eq(g.protocol, 5);
	cr_assert_eq(g.expiry_s, 3600);
	cr_assert_eq(g.disconnected_ms, 0);
	cr_assert_eq(g.next_pid, 1);
	cr_assert_str_eq(g.identity, "CN=dev-b");
	store_mqtt_session_clear(&g);

	cr_assert_eq(store_mqtt_session_touch(st, "dev-b", 123456789, 65535), STORE_OK);
	cr_assert_eq(store_mqtt_session_get(st, "dev-b", &g), STORE_OK);
	cr_assert_eq(g.disconnected_ms, 123456789);
	cr_assert_eq(g.next_pid, 65535);
	cr_assert_str_eq(g.identity, "CN=dev-b", "touch leaves the rest alone");
	store_mqtt_session_clear(&g);

	/* replace keeps subscriptions and queue, changes the fields */
	put_sub("dev-b", "a/#", 2);
	put_sub("dev-b", "+/x", 0);
	add_out("dev-b", "a/1", "one", 0);
	add_out("dev-b", "a/2", "two", 0);
	{
		struct store_mqtt_session s = { .client_id = "dev-b", .channel = "OTHER",
			                        .protocol = 4, .expiry_s = -1, .next_pid = 7 };
		cr_assert_eq(store_mqtt_session_put(st, &s), STORE_OK, "%s", store_errmsg(st));
	}
	cr_assert_eq(store_mqtt_out_count(st, "dev-b"), 2);

	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0].s.client_id, "dev-a", "sorted by client id");
	cr_assert_str_eq(v[1].s.client_id, "dev-b");
	cr_assert_str_eq(v[2].s.client_id, "dev-c");
	cr_assert_eq(v[0].nsubs, 0);
	cr_assert_eq(v[0].queued, 0);
	cr_assert_null(v[0].s.identity);
	cr_assert_str_eq(v[1].s.channel, "OTHER");
	cr_assert_eq(v[1].s.protocol, 4);
	cr_assert_eq(v[1].s.expiry_s, -1);
	cr_assert_eq(v[1].s.next_pid, 7);
	cr_assert_null(v[1].s.identity, "replace sets identity too");
	cr_assert_eq(v[1].queued, 2);
	cr_assert_eq(v[1].nsubs, 2);
	cr_assert_str_eq(v[1].subs[0].filter, "+/x", "subscriptions sorted by filter");
	cr_assert_eq(v[1].subs[0].qos, 0);
	cr_assert_str_eq(v[1].subs[1].filter, "a/#");
	cr_assert_eq(v[1].subs[1].qos, 2);
	cr_assert_eq(v[1].subs[1].opts, 0x6);
	cr_assert_eq(v[1].subs[1].sub_id, 42);
	store_mqtt_sessions_free(v, n);

	/* errors */
	cr_assert_eq(store_mqtt_session_touch(st, "nobody", 1, 1), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_session_get(st, "nobody", &g), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_session_put(st, &bad), STORE_BAD_ARG);
	cr_assert(strstr(store_errmsg(st), "protocol") != NULL, "%s", store_errmsg(st));
	bad.protocol = 4;
	bad.client_id = "";
	cr_assert_eq(store_mqtt_session_put(st, &bad), STORE_BAD_ARG);
	bad.client_id = NULL;
	cr_assert_eq(store_mqtt_session_put(st, &bad), STORE_BAD_ARG);
	cr_assert_eq(store_mqtt_session_delete(st, "nobody"), STORE_NOT_FOUND);
}

Test(store_mqtt, empty_list)
{
	struct store_mqtt_session_full *v = (void *)1;
	struct store_mqtt_msg *m = (void *)1;
	size_t n = 9;

	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(v);
	cr_assert_eq(store_mqtt_retain_list(st, &m, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(m);
	cr_assert_eq(store_mqtt_out_load(st, "nobody", 0, 10, 0, &m, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_mqtt_out_count(st, "nobody"), 0);
}

Test(store_mqtt, session_delete_cascades_and_spares_others)
{
	struct store_mqtt_session_full *v;
	struct store_mqtt_msg *m;
	uint16_t *pids;
	size_t n;

	put_session("gone", NULL);
	put_session("kept", NULL);
	put_sub("gone", "t/#", 1);
	put_sub("kept", "t/#", 1);
	for (int i = 0; i < 5; i++) {
		add_out("gone", "t/1", "x", 0);
		add_out("kept", "t/1", "y", 0);
	}
	cr_assert_eq(store_mqtt_in2_put(st, "gone", 10), STORE_OK);
	cr_assert_eq(store_mqtt_in2_put(st, "kept", 10), STORE_OK);

	cr_assert_eq(store_mqtt_session_delete(st, "gone"), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(store_mqtt_session_delete(st, "gone"), STORE_NOT_FOUND);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_out"), 5, "only kept's rows remain");
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_subs"), 1);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_in2"), 1);

	/* a new session of the same name starts empty */
	put_session("gone", NULL);
	cr_assert_eq(store_mqtt_out_count(st, "gone"), 0);
	cr_assert_eq(load_all("gone", 0, &m), 0);
	store_mqtt_msgs_free(m, 0);
	cr_assert_eq(store_mqtt_in2_list(st, "gone", &pids, &n), STORE_OK);
	cr_assert_eq(n, 0);
	free(pids);
	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 2);
	cr_assert_eq(find_session(v, n, "gone")->nsubs, 0);
	cr_assert_eq(find_session(v, n, "gone")->queued, 0);
	cr_assert_eq(find_session(v, n, "kept")->nsubs, 1);
	cr_assert_eq(find_session(v, n, "kept")->queued, 5);
	store_mqtt_sessions_free(v, n);

	n = load_all("kept", 0, &m);
	cr_assert_eq(n, 5);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(m[i].payload[0], 'y');
	store_mqtt_msgs_free(m, n);
}

/* ---------------------------------------------------------------- subscriptions */

Test(store_mqtt, subscriptions_replace_and_delete)
{
	struct store_mqtt_session_full *v;
	struct store_mqtt_sub sub = { .filter = "a/b", .qos = 3 };
	size_t n;

	put_session("c1", NULL);
	put_sub("c1", "a/b", 0);
	put_sub("c1", "a/b", 2); /* replaces */
	put_sub("c1", "a/c", 1);
	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].nsubs, 2);
	cr_assert_str_eq(v[0].subs[0].filter, "a/b");
	cr_assert_eq(v[0].subs[0].qos, 2);
	store_mqtt_sessions_free(v, n);

	cr_assert_eq(store_mqtt_sub_delete(st, "c1", "a/b"), STORE_OK);
	cr_assert_eq(store_mqtt_sub_delete(st, "c1", "a/b"), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_sub_delete(st, "nobody", "a/c"), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(v[0].nsubs, 1);
	cr_assert_str_eq(v[0].subs[0].filter, "a/c");
	store_mqtt_sessions_free(v, n);

	cr_assert_eq(store_mqtt_sub_put(st, "c1", &sub), STORE_BAD_ARG, "QoS 3");
	sub.qos = 1;
	cr_assert_eq(store_mqtt_sub_put(st, "nobody", &sub), STORE_NOT_FOUND);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_subs"), 1, "nothing orphaned");
}

/* ---------------------------------------------------------------- queued publications */

Test(store_mqtt, out_round_trip_set_delete)
{
	uint8_t props[] = { 0x01, 0x01, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v' };
	uint8_t payload[] = { 0x00, 0xff, 0x00, 'a' };
	struct store_mqtt_msg m = {
		.topic = "sensors/ü/temp", .payload = payload, .payload_len = sizeof(payload),
		.props = props, .props_len = sizeof(props), .qos = 2, .retain = true,
		.expiry_ms = 0, .put_ms = 1700000000123, .pid = 0, .state = STORE_MQTT_QUEUED,
	};
	struct store_mqtt_msg *v;
	int64_t other;
	size_t n;

	put_session("c1", NULL);
	put_session("c2", NULL);
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_OK, "%s", store_errmsg(st));
	other = add_out("c2", "t", "c2's", 0);
	cr_assert_gt(other, m.seq);

	cr_assert_eq(store_mqtt_out_set(st, "c1", m.seq, 17, STORE_MQTT_SENT), STORE_OK);
	n = load_all("c1", 0, &v);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].seq, m.seq);
	cr_assert_str_eq(v[0].topic, "sensors/ü/temp");
	cr_assert_eq(v[0].payload_len, sizeof(payload));
	cr_assert_arr_eq(v[0].payload, payload, sizeof(payload));
	cr_assert_eq(v[0].props_len, sizeof(props));
	cr_assert_arr_eq(v[0].props, props, sizeof(props));
	cr_assert_eq(v[0].qos, 2);
	cr_assert(v[0].retain);
	cr_assert_eq(v[0].expiry_ms, 0);
	cr_assert_eq(v[0].put_ms, 1700000000123);
	cr_assert_eq(v[0].pid, 17);
	cr_assert_eq(v[0].state, STORE_MQTT_SENT);
	store_mqtt_msgs_free(v, n);
	cr_assert_eq(store_mqtt_out_set(st, "c1", m.seq, 17, STORE_MQTT_RELSENT), STORE_OK);

	/* a session cannot touch another's rows */
	cr_assert_eq(store_mqtt_out_set(st, "c1", other, 1, 1), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_out_delete(st, "c1", other), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_out_count(st, "c2"), 1);

	/* empty payload, no props */
	m.payload = NULL;
	m.payload_len = 0;
	m.props = NULL;
	m.props_len = 0;
	m.retain = false;
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_OK, "%s", store_errmsg(st));
	n = load_all("c1", 0, &v);
	cr_assert_eq(n, 2);
	cr_assert_eq(v[0].state, STORE_MQTT_RELSENT);
	cr_assert_eq(v[1].payload_len, 0);
	cr_assert_null(v[1].payload);
	cr_assert_eq(v[1].props_len, 0);
	cr_assert_null(v[1].props);
	cr_assert_not(v[1].retain);
	store_mqtt_msgs_free(v, n);

	cr_assert_eq(store_mqtt_out_delete(st, "c1", m.seq), STORE_OK);
	cr_assert_eq(store_mqtt_out_delete(st, "c1", m.seq), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 1);

	/* bad arguments and unknown sessions */
	m.qos = 3;
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_BAD_ARG);
	m.qos = 1;
	m.state = 3;
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_BAD_ARG);
	m.state = 0;
	m.payload_len = 5;
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_BAD_ARG, "length without bytes");
	m.payload_len = 0;
	m.topic = "";
	cr_assert_eq(store_mqtt_out_add(st, "c1", &m), STORE_BAD_ARG);
	m.topic = "t";
	cr_assert_eq(store_mqtt_out_add(st, "nobody", &m), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_out_set(st, "c1", 1, 1, 3), STORE_BAD_ARG);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_out"), 2);
}

Test(store_mqtt, seq_order_and_never_back_across_reopen)
{
	int64_t s[4], last;
	struct store_mqtt_msg *v;
	size_t n;

	put_session("c1", NULL);
	put_session("c2", NULL);
	for (int i = 0; i < 4; i++) {
		s[i] = add_out("c1", "t", "x", 0);
		add_out("c2", "t", "y", 0);
		if (i > 0)
			cr_assert_gt(s[i], s[i - 1]);
	}
	/* delete the highest rows of the whole table, then reopen */
	cr_assert_eq(store_mqtt_session_delete(st, "c2"), STORE_OK);
	cr_assert_eq(store_mqtt_out_delete(st, "c1", s[3]), STORE_OK);
	cr_assert_eq(store_mqtt_out_delete(st, "c1", s[2]), STORE_OK);
	reopen();
	last = add_out("c1", "t", "after", 0);
	cr_assert_gt(last, s[3] + 1, "a seq is never reused (%lld after %lld and c2's)",
	             (long long)last, (long long)s[3]);
	/* even with the queue emptied entirely */
	cr_assert_eq(store_mqtt_session_delete(st, "c1"), STORE_OK);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_out"), 0);
	reopen();
	put_session("c1", NULL);
	cr_assert_gt(add_out("c1", "t", "again", 0), last);

	n = load_all("c1", 0, &v);
	cr_assert_eq(n, 1);
	cr_assert_eq(memcmp(v[0].payload, "again", 5), 0);
	store_mqtt_msgs_free(v, n);
}

Test(store_mqtt, load_pages_with_after_seq)
{
	int64_t seqs[25], after = 0;
	struct store_mqtt_msg *v;
	size_t n, got = 0;
	char text[16];

	put_session("c1", NULL);
	put_session("c2", NULL);
	for (int i = 0; i < 25; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		seqs[i] = add_out("c1", "t", text, 0);
		add_out("c2", "t", "noise", 0);
	}
	for (int page = 0; page < 4; page++) {
		cr_assert_eq(store_mqtt_out_load(st, "c1", after, 10, 0, &v, &n), STORE_OK);
		cr_assert_eq(n, page < 2 ? 10 : page == 2 ? 5 : 0, "page %d: %zu", page, n);
		for (size_t i = 0; i < n; i++) {
			snprintf(text, sizeof(text), "m%zu", got);
			cr_assert_eq(v[i].seq, seqs[got], "in seq order");
			cr_assert_eq(v[i].payload_len, strlen(text));
			cr_assert_eq(memcmp(v[i].payload, text, strlen(text)), 0);
			got++;
		}
		if (n > 0)
			after = v[n - 1].seq;
		store_mqtt_msgs_free(v, n);
	}
	cr_assert_eq(got, 25);
	/* from the middle of a page */
	cr_assert_eq(store_mqtt_out_load(st, "c1", seqs[20], 100, 0, &v, &n), STORE_OK);
	cr_assert_eq(n, 4);
	cr_assert_eq(v[0].seq, seqs[21]);
	store_mqtt_msgs_free(v, n);
	cr_assert_eq(store_mqtt_out_load(st, "c1", 0, 0, 0, &v, &n), STORE_OK);
	cr_assert_eq(n, 0, "max 0");
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 25);
}

Test(store_mqtt, expired_rows_are_skipped_and_deleted)
{
	const int64_t now = 1000000;
	struct store_mqtt_msg *v;
	size_t n;
	int64_t live1, live2;

	put_session("c1", NULL);
	add_out("c1", "t", "old1", now - 1);
	add_out("c1", "t", "old2", now - 500);
	live1 = add_out("c1", "t", "forever", 0);
	add_out("c1", "t", "old3", 1);
	live2 = add_out("c1", "t", "later", now + 1);
	add_out("c1", "t", "exact", now); /* not < now: still live */

	/* max counts live rows only: the expired ones in front are passed */
	cr_assert_eq(store_mqtt_out_load(st, "c1", 0, 1, now, &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].seq, live1);
	store_mqtt_msgs_free(v, n);
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 4, "the two met on the way are gone");

	n = load_all("c1", now, &v);
	cr_assert_eq(n, 3);
	cr_assert_eq(v[0].seq, live1);
	cr_assert_eq(v[1].seq, live2);
	cr_assert_eq(v[1].expiry_ms, now + 1);
	cr_assert_eq(memcmp(v[2].payload, "exact", 5), 0);
	store_mqtt_msgs_free(v, n);
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 3);

	/* later on, the deletion is durable */
	reopen();
	n = load_all("c1", now + 2, &v);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].seq, live1);
	store_mqtt_msgs_free(v, n);
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 1);
}

/* ---------------------------------------------------------------- inbound QoS 2 */

Test(store_mqtt, inbound_qos2_ids)
{
	uint16_t *pids;
	size_t n;

	put_session("c1", NULL);
	put_session("c2", NULL);
	cr_assert_eq(store_mqtt_in2_put(st, "c1", 65535), STORE_OK);
	cr_assert_eq(store_mqtt_in2_put(st, "c1", 7), STORE_OK);
	cr_assert_eq(store_mqtt_in2_put(st, "c1", 300), STORE_OK);
	cr_assert_eq(store_mqtt_in2_put(st, "c1", 7), STORE_OK, "a resent PUBLISH");
	cr_assert_eq(store_mqtt_in2_put(st, "c2", 7), STORE_OK);
	cr_assert_eq(store_mqtt_in2_put(st, "nobody", 7), STORE_NOT_FOUND);

	cr_assert_eq(store_mqtt_in2_list(st, "c1", &pids, &n), STORE_OK);
	cr_assert_eq(n, 3);
	cr_assert_eq(pids[0], 7);
	cr_assert_eq(pids[1], 300);
	cr_assert_eq(pids[2], 65535);
	free(pids);

	cr_assert_eq(store_mqtt_in2_delete(st, "c1", 7), STORE_OK);
	cr_assert_eq(store_mqtt_in2_delete(st, "c1", 7), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_in2_delete(st, "c1", 8), STORE_NOT_FOUND);
	reopen();
	cr_assert_eq(store_mqtt_in2_list(st, "c1", &pids, &n), STORE_OK);
	cr_assert_eq(n, 2);
	cr_assert_eq(pids[0], 300);
	free(pids);
	cr_assert_eq(store_mqtt_in2_list(st, "c2", &pids, &n), STORE_OK);
	cr_assert_eq(n, 1, "c2's id is its own");
	cr_assert_eq(pids[0], 7);
	free(pids);
	cr_assert_eq(store_mqtt_in2_list(st, "nobody", &pids, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(pids);
}

/* ---------------------------------------------------------------- retained */

Test(store_mqtt, retained_replace_delete_list)
{
	uint8_t props[] = { 0x03, 0x00, 0x04, 't', 'e', 'x', 't' };
	struct store_mqtt_msg r = { .topic = "b/status", .payload = (uint8_t *)"on",
		                    .payload_len = 2, .qos = 1, .put_ms = 5 };
	struct store_mqtt_msg *v;
	size_t n;

	cr_assert_eq(store_mqtt_retain_put(st, &r), STORE_OK, "%s", store_errmsg(st));
	r.topic = "a/status";
	r.props = props;
	r.props_len = sizeof(props);
	r.expiry_ms = 99;
	cr_assert_eq(store_mqtt_retain_put(st, &r), STORE_OK);
	/* replace b/status */
	r.topic = "b/status";
	r.payload = (uint8_t *)"off!";
	r.payload_len = 4;
	r.props = NULL;
	r.props_len = 0;
	r.qos = 0;
	r.expiry_ms = 0;
	r.put_ms = 6;
	cr_assert_eq(store_mqtt_retain_put(st, &r), STORE_OK);

	cr_assert_eq(store_mqtt_retain_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 2, "one per topic");
	cr_assert_str_eq(v[0].topic, "a/status");
	cr_assert_eq(v[0].props_len, sizeof(props));
	cr_assert_arr_eq(v[0].props, props, sizeof(props));
	cr_assert_eq(v[0].expiry_ms, 99);
	cr_assert_eq(v[0].qos, 1);
	cr_assert(v[0].retain);
	cr_assert_str_eq(v[1].topic, "b/status");
	cr_assert_eq(v[1].payload_len, 4);
	cr_assert_eq(memcmp(v[1].payload, "off!", 4), 0);
	cr_assert_null(v[1].props);
	cr_assert_eq(v[1].qos, 0);
	cr_assert_eq(v[1].put_ms, 6);
	store_mqtt_msgs_free(v, n);

	cr_assert_eq(store_mqtt_retain_delete(st, "a/status"), STORE_OK);
	cr_assert_eq(store_mqtt_retain_delete(st, "a/status"), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_retain_delete(st, ""), STORE_BAD_ARG);
	reopen();
	cr_assert_eq(store_mqtt_retain_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].topic, "b/status");
	store_mqtt_msgs_free(v, n);
}

/* ---------------------------------------------------------------- transactions */

static void txn_ops(void)
{
	struct store_mqtt_msg r = { .topic = "ret", .payload = (uint8_t *)"r", .payload_len = 1 };

	put_session("t1", NULL);
	put_sub("t1", "x/#", 1);
	for (int i = 0; i < 50; i++)
		add_out("t1", "x/1", "p", 0);
	cr_assert_eq(store_mqtt_in2_put(st, "t1", 5), STORE_OK);
	cr_assert_eq(store_mqtt_retain_put(st, &r), STORE_OK);
	cr_assert_eq(store_mqtt_session_touch(st, "t1", 77, 9), STORE_OK);
	/* a miss inside the transaction does not spoil it */
	cr_assert_eq(store_mqtt_out_delete(st, "t1", 999999), STORE_NOT_FOUND);
	cr_assert_eq(store_mqtt_sub_delete(st, "nobody", "x"), STORE_NOT_FOUND);
}

Test(store_mqtt, rollback_leaves_nothing_commit_keeps_all)
{
	struct store_mqtt_session_full *v;
	struct store_mqtt_msg *m;
	size_t n;

	cr_assert_eq(store_begin(st), STORE_OK);
	txn_ops();
	cr_assert_eq(store_mqtt_out_count(st, "t1"), 50, "visible inside the transaction");
	store_rollback(st);
	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_out"), 0);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_subs"), 0);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_in2"), 0);
	cr_assert_eq(store_mqtt_retain_list(st, &m, &n), STORE_OK);
	cr_assert_eq(n, 0);

	cr_assert_eq(store_begin(st), STORE_OK);
	txn_ops();
	cr_assert_eq(store_commit(st), STORE_OK, "%s", store_errmsg(st));
	reopen();
	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].queued, 50);
	cr_assert_eq(v[0].nsubs, 1);
	cr_assert_eq(v[0].s.disconnected_ms, 77);
	cr_assert_eq(v[0].s.next_pid, 9);
	store_mqtt_sessions_free(v, n);
	cr_assert_eq(sql_int("SELECT count(*) FROM mqtt_in2"), 1);
	cr_assert_eq(store_mqtt_retain_list(st, &m, &n), STORE_OK);
	cr_assert_eq(n, 1);
	store_mqtt_msgs_free(m, n);
}

/* The broker reads from another handle while its writer groups operations:
 * the reader sees only what is committed. */
Test(store_mqtt, reader_handle_sees_commits_only)
{
	struct store *rd = open_store();
	struct store_mqtt_session_full *v;
	struct store_mqtt_msg *m;
	size_t n;

	put_session("c1", NULL);
	cr_assert_eq(store_begin(st), STORE_OK);
	for (int i = 0; i < 10; i++)
		add_out("c1", "t", "p", 0);
	cr_assert_eq(store_mqtt_out_count(rd, "c1"), 0, "%s", store_errmsg(rd));
	cr_assert_eq(store_mqtt_out_load(rd, "c1", 0, 100, 0, &m, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_mqtt_session_list(rd, &v, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].queued, 0);
	store_mqtt_sessions_free(v, n);
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(store_mqtt_out_count(rd, "c1"), 10);
	cr_assert_eq(store_mqtt_out_load(rd, "c1", 0, 100, 0, &m, &n), STORE_OK);
	cr_assert_eq(n, 10);
	store_mqtt_msgs_free(m, n);
	store_close(rd);
}

/* ---------------------------------------------------------------- schema */

Test(store_mqtt, migration_from_version_1)
{
	struct queue_def q;
	struct chd_msg msg;
	struct msg_list got = { 0 };
	size_t done;
	sqlite3 *db;

	cr_assert_eq(store_schema_version(), 2);
	/* a version 1 database with a message in it: this build's file
	 * without the version 2 tables */
	queue_def_init(&q, QTYPE_LOCAL);
	str_copy(q.name, "Q1", sizeof(q.name));
	cr_assert_eq(store_queue_define(st, &q, false), STORE_OK);
	memset(&msg, 0, sizeof(msg));
	msg.body = (uint8_t *)strdup("v1 message");
	msg.body_len = 10;
	msg.persistent = true;
	cr_assert_eq(store_put(st, "Q1", NULL, &msg, 1, &done), STORE_OK);
	msg_clear(&msg);
	store_close(st);
	st = NULL;
	cr_assert_eq(sqlite3_open(tpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "DROP TABLE mqtt_sessions; DROP TABLE mqtt_subs;"
	                              " DROP TABLE mqtt_out; DROP TABLE mqtt_in2;"
	                              " DROP TABLE mqtt_retained;"
	                              " DELETE FROM sqlite_sequence WHERE name = 'mqtt_out';"
	                              " PRAGMA user_version = 1", NULL, NULL, NULL),
	             SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);

	st = open_store();
	cr_assert_eq(sql_int("PRAGMA main.user_version"), 2);
	cr_assert_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'mqtt%'"), 6,
	             "five tables and the queue index");
	put_session("c1", NULL);
	add_out("c1", "t", "new", 0);
	cr_assert_eq(store_lock(st, "Q1", 10, 1, &got), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(got.n, 1, "the version 1 data is still there");
	cr_assert_eq(memcmp(got.v[0].body, "v1 message", 10), 0);
	store_release(&got);
	msg_list_free(&got);

	/* a file put back to version 1 after the migration migrates again */
	store_close(st);
	st = NULL;
	cr_assert_eq(sqlite3_open(tpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	st = open_store();
	cr_assert_eq(store_mqtt_out_count(st, "c1"), 1);
}

/* out_load must walk the (sid, seq) index, never the table. */
Test(store_mqtt, hot_statements_use_indexes)
{
	struct store_mqtt_msg *v;
	sqlite3_stmt *s;
	char err[1024], sql[2048];
	bool seen_index = false;
	size_t n;
	int rc;

	cr_assert_eq(store_plan_check(st, err, sizeof(err)), 0, "%s", err);
	/* the same with many rows and statistics that favour the rowid */
	put_session("c1", NULL);
	put_session("c2", NULL);
	cr_assert_eq(store_begin(st), STORE_OK);
	for (int i = 0; i < 2000; i++)
		add_out(i % 50 ? "c1" : "c2", "t", "p", 0);
	cr_assert_eq(store_commit(st), STORE_OK);
	cr_assert_eq(sqlite3_exec(store_sqlite(st), "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(store_mqtt_out_load(st, "c2", 0, 5, 0, &v, &n), STORE_OK);
	store_mqtt_msgs_free(v, n);
	cr_assert_not_null(st->stmt[SQ_MQ_OUT_LOAD]);
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sqlite3_sql(st->stmt[SQ_MQ_OUT_LOAD]));
	cr_assert_eq(sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL), SQLITE_OK);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		cr_assert(strncmp(d, "SCAN", 4) != 0 && strstr(d, "TEMP B-TREE") == NULL, "%s", d);
		if (strstr(d, "mqtt_out_sid") != NULL)
			seen_index = true;
	}
	sqlite3_finalize(s);
	cr_assert_eq(rc, SQLITE_DONE);
	cr_assert(seen_index);
	cr_assert_eq(store_plan_check(st, err, sizeof(err)), 0, "%s", err);
}

/* ---------------------------------------------------------------- sizes and names */

Test(store_mqtt, large_payloads_and_utf8_client_ids)
{
	/* multibyte UTF-8 (2, 3 and 4 bytes), and two ids equal up to a byte
	 * inside a multibyte character */
	static const char *const ids[] = {
		"d\xc3\xa9vice-\xe5\xae\xa2\xe6\x88\xb7-\xf0\x9f\x9a\x80",
		"d\xc3\xa9vice-\xe5\xae\xa2\xe6\x88\xb8-\xf0\x9f\x9a\x80",
		"plain",
	};
	const size_t big = 1024 * 1024;
	uint8_t *payload = malloc(big);
	char *longid = malloc(STORE_MQTT_CLIENTID_MAX + 2);
	struct store_mqtt_msg m = { .topic = "big/\xe2\x82\xac", .qos = 1 };
	struct store_mqtt_session_full *v;
	struct store_mqtt_msg *got;
	size_t n;

	cr_assert_not_null(payload);
	cr_assert_not_null(longid);
	srand(7);
	for (size_t i = 0; i < big; i++)
		payload[i] = (uint8_t)rand();
	payload[0] = 0;
	payload[big / 2] = 0;
	m.payload = payload;
	m.payload_len = big;

	for (size_t i = 0; i < 3; i++)
		put_session(ids[i], ids[i]);
	memset(longid, 'L', STORE_MQTT_CLIENTID_MAX);
	memcpy(longid, "\xe2\x82\xac", 3);
	longid[STORE_MQTT_CLIENTID_MAX] = '\0';
	put_session(longid, NULL);
	longid[STORE_MQTT_CLIENTID_MAX] = 'L';
	longid[STORE_MQTT_CLIENTID_MAX + 1] = '\0';
	{
		struct store_mqtt_session s = { .client_id = longid, .protocol = 4 };
		cr_assert_eq(store_mqtt_session_put(st, &s), STORE_BAD_ARG, "65536 bytes");
	}
	longid[STORE_MQTT_CLIENTID_MAX] = '\0';

	cr_assert_eq(store_mqtt_out_add(st, ids[0], &m), STORE_OK, "%s", store_errmsg(st));
	add_out(ids[1], "small", "s", 0);
	cr_assert_eq(store_mqtt_out_add(st, longid, &m), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(store_mqtt_retain_put(st, &m), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(store_mqtt_in2_put(st, ids[1], 3), STORE_OK);
	reopen();

	cr_assert_eq(store_mqtt_session_list(st, &v, &n), STORE_OK);
	cr_assert_eq(n, 4);
	/* bytewise: 'd' < 'p' < 0xe2, and \xb7 < \xb8 */
	cr_assert_eq(strcmp(v[0].s.client_id, ids[0]), 0);
	cr_assert_eq(strcmp(v[1].s.client_id, ids[1]), 0);
	cr_assert_str_eq(v[2].s.client_id, "plain");
	cr_assert_eq(strcmp(v[3].s.client_id, longid), 0);
	cr_assert_eq(strcmp(v[0].s.identity, ids[0]), 0);
	store_mqtt_sessions_free(v, n);

	cr_assert_eq(store_mqtt_out_count(st, ids[0]), 1);
	cr_assert_eq(store_mqtt_out_count(st, ids[1]), 1);
	cr_assert_eq(store_mqtt_out_count(st, longid), 1);
	n = load_all(ids[0], 0, &got);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(got[0].topic, "big/\xe2\x82\xac");
	cr_assert_eq(got[0].payload_len, big);
	cr_assert_eq(memcmp(got[0].payload, payload, big), 0);
	store_mqtt_msgs_free(got, n);
	n = load_all(ids[1], 0, &got);
	cr_assert_eq(n, 1);
	cr_assert_eq(got[0].payload_len, 1, "the near-twin id has its own queue");
	store_mqtt_msgs_free(got, n);
	cr_assert_eq(store_mqtt_retain_list(st, &got, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(got[0].payload_len, big);
	cr_assert_eq(memcmp(got[0].payload, payload, big), 0);
	store_mqtt_msgs_free(got, n);
	{
		uint16_t *pids;
		cr_assert_eq(store_mqtt_in2_list(st, ids[0], &pids, &n), STORE_OK);
		cr_assert_eq(n, 0);
		cr_assert_eq(store_mqtt_in2_list(st, ids[1], &pids, &n), STORE_OK);
		cr_assert_eq(n, 1);
		free(pids);
	}
	cr_assert_eq(store_mqtt_session_delete(st, longid), STORE_OK);
	cr_assert_eq(store_mqtt_out_count(st, ids[0]), 1);
	free(payload);
	free(longid);
}

/* ---------------------------------------------------------------- limits */

Test(store_mqtt, disk_full_in_a_group_transaction)
{
	static uint8_t blob[64 * 1024];
	struct store_mqtt_msg m = { .topic = "t", .payload = blob, .payload_len = sizeof(blob) };
	char sql[64];
	int64_t committed = 0;
	int rc = STORE_OK;

	put_session("c1", NULL);
	snprintf(sql, sizeof(sql), "PRAGMA main.max_page_count = %lld",
	         (long long)sql_int("PRAGMA main.page_count") + 200);
	cr_assert_eq(sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 1000 && rc == STORE_OK; i++) {
		rc = store_mqtt_out_add(st, "c1", &m);
		if (rc == STORE_OK)
			committed++;
	}
	cr_assert_eq(rc, STORE_DISK_FULL, "got %d: %s", rc, store_errmsg(st));
	cr_assert(strstr(store_errmsg(st), "disk full") != NULL, "%s", store_errmsg(st));
	cr_assert_gt(committed, 0);

	cr_assert_eq(store_begin(st), STORE_OK);
	for (int i = 0; i < 100 && (rc = store_mqtt_out_add(st, "c1", &m)) == STORE_OK; i++)
		;
	cr_assert_eq(rc, STORE_DISK_FULL);
	cr_assert_eq(store_mqtt_session_touch(st, "c1", 1, 1), STORE_DISK_FULL,
	             "the failed transaction refuses more work");
	cr_assert_eq(store_commit(st), STORE_DISK_FULL, "%s", store_errmsg(st));
	reopen();
	cr_assert_eq(store_mqtt_out_count(st, "c1"), committed);
}

/* The broker's writer: many small queued publications per transaction,
 * all there afterwards.  The rate is logged for information only (timing
 * never decides a test; bench/ measures speed). */
Test(store_mqtt, group_commit_many_rows)
{
	const int total = 40000, batch = 1000;
	uint8_t payload[200];
	struct store_mqtt_msg m = { .topic = "sensors/site1/line4/temp", .payload = payload,
		                    .payload_len = sizeof(payload), .qos = 1 };
	struct timespec t0, t1;
	double secs;
	char cid[32];

	memset(payload, 'p', sizeof(payload));
	for (int c = 0; c < 100; c++) {
		snprintf(cid, sizeof(cid), "client-%03d", c);
		put_session(cid, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < total; i += batch) {
		cr_assert_eq(store_begin(st), STORE_OK);
		for (int k = 0; k < batch; k++) {
			snprintf(cid, sizeof(cid), "client-%03d", (i + k) % 100);
			cr_assert_eq(store_mqtt_out_add(st, cid, &m), STORE_OK, "%s", store_errmsg(st));
		}
		cr_assert_eq(store_commit(st), STORE_OK);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_log_info("store_mqtt: %d queued publications in %.3f s (%.0f/s)", total, secs,
	            total / secs);
	cr_assert_eq(store_mqtt_out_count(st, "client-007"), total / 100);
}
