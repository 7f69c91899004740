/* The channel bookkeeping beside the sync records (store_ext.h): the
 * in-doubt members that make a crash between END_BATCH and the delete
 * safe, and the reset / STOPPED flags. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand/store.h"
#include "chand/store_ext.h"

static char dir[256];
static char path[320];
static struct store *st;

static void setup(void)
{
	struct store_opts o = { .qmgr = "QM1" };
	struct queue_def q;
	char err[256];

	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/chand-chst-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/QM1.db", dir);
	cr_assert_eq(store_open(&st, path, &o, err, sizeof(err)), STORE_OK, "%s", err);
	cr_assert_eq(store_ext_init(st), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(store_ext_init(st), STORE_OK, "second init: %s", store_errmsg(st));
	queue_def_init(&q, QTYPE_LOCAL);
	strcpy(q.name, "XQ");
	cr_assert_eq(store_queue_define(st, &q, false), STORE_OK, "%s", store_errmsg(st));
}

static void teardown(void)
{
	char cmd[300];

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", dir);
}

static void put(int n, bool persistent)
{
	for (int i = 0; i < n; i++) {
		struct chd_msg m;
		size_t done = 0;
		memset(&m, 0, sizeof(m));
		m.persistent = persistent;
		m.body = (uint8_t *)"x";
		m.body_len = 1;
		cr_assert_eq(store_put(st, "XQ", NULL, &m, 1, &done), STORE_OK, "%s", store_errmsg(st));
	}
}

TestSuite(chanstore, .init = setup, .fini = teardown, .timeout = 20);

Test(chanstore, members_round_trip_persistent_only)
{
	struct msg_list l = { 0 }, present = { 0 };
	struct store_member *m = NULL;
	size_t n = 0;
	bool reset = true;

	put(3, true);
	put(2, false);
	cr_assert_eq(store_lock(st, "XQ", 10, 7, &l), STORE_OK);
	cr_assert_eq(l.n, 5);
	cr_assert_eq(store_ext_set_members(st, "C1", &l), STORE_OK, "%s", store_errmsg(st));
	cr_assert_eq(store_ext_get(st, "C1", &reset, &m, &n), STORE_OK);
	cr_assert_not(reset);
	cr_assert_eq(n, 3, "nonpersistent messages must not be recorded");
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t j = 0; j < l.n; j++)
			if (l.v[j].seq == m[i].seq && l.v[j].persistent &&
			    memcmp(l.v[j].msgid, m[i].msgid, MSG_ID_LEN) == 0)
				found = true;
		cr_assert(found, "member %zu is not one of the batch", i);
	}
	/* after a crash the locks are gone: the members still tell which */
	store_release_owner(7);
	cr_assert_eq(store_ext_present(st, m, n, &present), STORE_OK);
	cr_assert_eq(present.n, 3);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_confirm(st, &present), STORE_OK);
	cr_assert_eq(store_ext_clear_members(st, "C1"), STORE_OK);
	cr_assert_eq(store_commit(st), STORE_OK);
	struct queue_def q;
	cr_assert_eq(store_queue_get(st, "XQ", &q), STORE_OK);
	cr_assert_eq(q.curdepth, 2, "only the two nonpersistent messages are left");
	free(m);
	cr_assert_eq(store_ext_get(st, "C1", &reset, &m, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(m);
	msg_list_free(&l);
	msg_list_free(&present);
}

Test(chanstore, present_checks_msgid)
{
	struct msg_list l = { 0 }, present = { 0 };
	struct store_member *m = NULL;
	size_t n = 0;
	bool reset;

	put(2, true);
	cr_assert_eq(store_lock(st, "XQ", 2, 9, &l), STORE_OK);
	cr_assert_eq(store_ext_set_members(st, "C2", &l), STORE_OK);
	cr_assert_eq(store_ext_get(st, "C2", &reset, &m, &n), STORE_OK);
	cr_assert_eq(n, 2);
	/* a member whose message was taken away, and one whose seq now holds
	 * another message, are both left alone */
	struct msg_list one = { .v = &l.v[0], .n = 1, .cap = 1 };
	cr_assert_eq(store_confirm(st, &one), STORE_OK);
	m[1].msgid[0] ^= 0xff;
	cr_assert_eq(store_ext_present(st, m, n, &present), STORE_OK);
	cr_assert_eq(present.n, 0);
	free(m);
	msg_list_free(&l);
	msg_list_free(&present);
}

Test(chanstore, flags_and_delete)
{
	bool reset = false, stopped = true;
	struct store_member *m = NULL;
	size_t n = 5;

	cr_assert_eq(store_ext_get_stopped(st, "NONE", &stopped), STORE_OK);
	cr_assert_not(stopped);
	cr_assert_eq(store_ext_set_reset(st, "C3", true), STORE_OK);
	cr_assert_eq(store_ext_set_stopped(st, "C3", true), STORE_OK);
	cr_assert_eq(store_ext_get(st, "C3", &reset, &m, &n), STORE_OK);
	cr_assert(reset);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_ext_get_stopped(st, "C3", &stopped), STORE_OK);
	cr_assert(stopped);
	/* setting one flag keeps the other */
	cr_assert_eq(store_ext_set_reset(st, "C3", false), STORE_OK);
	cr_assert_eq(store_ext_get_stopped(st, "C3", &stopped), STORE_OK);
	cr_assert(stopped);
	cr_assert_eq(store_ext_delete(st, "C3"), STORE_OK);
	cr_assert_eq(store_ext_get_stopped(st, "C3", &stopped), STORE_OK);
	cr_assert_not(stopped);
}

Test(chanstore, members_join_the_open_transaction)
{
	struct msg_list l = { 0 };
	struct store_member *m = NULL;
	size_t n = 0;
	bool reset;

	put(1, true);
	cr_assert_eq(store_lock(st, "XQ", 1, 11, &l), STORE_OK);
	cr_assert_eq(store_begin(st), STORE_OK);
	cr_assert_eq(store_ext_set_members(st, "C4", &l), STORE_OK);
	store_rollback(st);
	cr_assert_eq(store_ext_get(st, "C4", &reset, &m, &n), STORE_OK);
	cr_assert_eq(n, 0, "a rolled back transaction must not leave members behind");
	msg_list_free(&l);
}
