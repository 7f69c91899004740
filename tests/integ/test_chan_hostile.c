/* Hostile networks (issue 10, items 2 and 3).
 *
 * stalled_big_batch: a batch larger than the receiver keeps in memory
 * (45 messages of 1 MiB, CHAN_ARENA_STREAM is 32 MiB) stops dead after
 * 36 MiB in a proxy.  While it is frozen, a `put` on the receiving agent
 * and another channel's transfer into it must complete at once: the
 * receiver spills what does not fit to disk and never holds the
 * database's write lock while it waits for the network (before, it kept
 * its transaction open until END_BATCH, and the others gave up after
 * SQLite's 10 s busy timeout).  Thawed, the batch arrives exactly once.
 *
 * dead_peer_mid_batch: a link that silently drops everything while the
 * sender waits for CONFIRM (HBINT left at its default, 300 s, so the
 * protocol's own timers would wait 610 s) must end the channel within
 * limits.dead_peer_timeout (5 s here) plus a margin, with the reason in
 * status.  It needs a real black hole, so root: the two agents run in two
 * network namespaces joined by a veth pair, and a blackhole route in each
 * namespace drops the traffic (the host's own interfaces and routes are
 * never touched).  Without root or `ip netns`, the test is skipped with
 * the reason. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chan_helpers.h"
#include "tcpproxy.h"

static struct chan_qm qm1, qm2;
static struct tcpproxy *proxy;

/* dead_peer_mid_batch's network: namespaces, veth, wrapper script */
static struct {
	bool made;
	char ns[2][32];
	char veth[2][16];
	char dir[256];            /* the wrappers' directory */
	char wrap[2][320];
	char *real_bin;           /* CHAND_BIN before the test changed it */
} net;

static void net_down(void);
static char small_fs[256];         /* spill_disk_full's tmpfs mount point */

static void teardown(void)
{
	tcpproxy_stop(proxy);
	proxy = NULL;
	chan_pair_finish(&qm1, &qm2);
	net_down();
	if (small_fs[0] != '\0') {
		(void)th_sh(NULL, NULL, NULL, 20, "umount '%s'", small_fs);
		th_rmtree(small_fs);
		small_fs[0] = '\0';
	}
}

TestSuite(chan_hostile, .fini = teardown, .timeout = 120);

#define MIB (1024L * 1024)
#define BIG_N 45                   /* messages of the big batch, 1 MiB each */
#define FREEZE_AT (36 * MIB)       /* past CHAN_ARENA_STREAM (32 MiB) */
#define QUICK_MS 5000              /* "at once": well under SQLite's 10 s busy timeout */

/* n lines "prefix-nnnnn" padded with 'x' to pad bytes. */
static char *lines(const char *prefix, int from, int n, int pad)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	for (int i = from; i < from + n; i++) {
		int w = fprintf(f, "%s-%05d", prefix, i);
		for (; w < pad; w++)
			fputc('x', f);
		fputc('\n', f);
	}
	fclose(f);
	return text;
}

/* Gets everything from q's queue (bodies, one per line) and checks it is
 * prefix-from .. prefix-(from+n-1) exactly once each, each body of len
 * bytes (0: any). */
static void check_exactly_once(struct chan_qm *q, const char *queue, const char *prefix,
                               int from, int n, size_t len)
{
	char *all = chan_get_all(q, queue, false), *save = NULL;
	char *seen = calloc((size_t)n, 1);
	int got = 0, dups = 0, foreign = 0, short_ = 0;
	size_t pl = strlen(prefix);

	cr_assert_not_null(seen);
	for (char *l = strtok_r(all, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		int k = -1;
		got++;
		if (strncmp(l, prefix, pl) == 0 && l[pl] == '-')
			k = atoi(l + pl + 1) - from;
		if (k < 0 || k >= n) {
			foreign++;
			continue;
		}
		if (len > 0 && strlen(l) != len)
			short_++;
		if (seen[k])
			dups++;
		seen[k] = 1;
	}
	int missing = 0;
	for (int i = 0; i < n; i++)
		missing += !seen[i];
	free(all);
	free(seen);
	cr_expect_eq(dups, 0, "%s: %d duplicates", queue, dups);
	cr_expect_eq(missing, 0, "%s: %d of %d missing", queue, missing, n);
	cr_expect_eq(foreign, 0, "%s: %d foreign messages", queue, foreign);
	cr_expect_eq(short_, 0, "%s: %d bodies of the wrong length", queue, short_);
	cr_expect_eq(got, n, "%s: %d messages, expected %d", queue, got, n);
}

/* The agent has an unlinked file open in its data directory (the spill
 * file: O_TMPFILE or mkstemp + unlink). */
static bool has_spill_file(struct chan_qm *q)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)q->a.pid);
	if ((d = opendir(path)) == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		char p[320], target[600];
		ssize_t n;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if ((n = readlink(p, target, sizeof(target) - 1)) <= 0)
			continue;
		target[n] = '\0';
		found = strncmp(target, q->dir, strlen(q->dir)) == 0 &&
		        strstr(target, "(deleted)") != NULL;
	}
	closedir(d);
	return found;
}

Test(chan_hostile, stalled_big_batch)
{
	chan_pair_start(&qm1, &qm2);
	proxy = tcpproxy_start(qm2.a.port);
	cr_assert_not_null(proxy);

	/* BIG goes through the proxy; OTHER straight to QM2 */
	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	chan_define_route(&qm1, &qm2, "XQ2", "RQ2", "Q2", 0);
	free(chan_ctl_ok(&qm2, NULL, "define qlocal LOCAL"));
	chan_define(&qm1, &qm2, "OTHER", CHAN_SDR_RCVR, "XQ2", 0, CHAN_TLS, CHAN_TLS);
	chan_put(&qm1, "RQ2", NULL, "warm-00000\n");
	cr_assert(chan_wait_depth(&qm2, "Q2", 1, 20000), "OTHER does not run");
	free(chan_get_all(&qm2, "Q2", false));

	/* the whole batch waits on XQ before BIG exists, so it leaves as one
	 * batch of 45 (BATCHSZ 50) */
	char *big = lines("big", 0, BIG_N, (int)MIB);
	chan_put(&qm1, "RQ", NULL, big);
	free(big);
	cr_assert_eq(chan_depth(&qm1, "XQ"), BIG_N);
	tcpproxy_freeze_after(proxy, FREEZE_AT);
	chan_define(&qm1, &qm2, "BIG", CHAN_SDR_RCVR, "XQ", tcpproxy_port(proxy),
	            "--batchsz 50 " CHAN_TLS, "--batchsz 50 " CHAN_TLS);

	long long t0 = chan_now_ms();
	while (!tcpproxy_froze(proxy) && chan_now_ms() - t0 < 30000)
		chan_sleep_ms(50);
	cr_assert(tcpproxy_froze(proxy), "the big batch never passed %ld bytes", FREEZE_AT);
	/* let the receiver take in all that passed */
	chan_sleep_ms(1500);
	cr_expect(has_spill_file(&qm2), "QM2 has no spill file open in %s while %ld MiB of "
	          "a batch are in", qm2.dir, FREEZE_AT / MIB);

	/* a put on the receiving agent: at once, not after a busy timeout */
	char *out = NULL, *err = NULL;
	long long t = chan_now_ms();
	int rc = chan_ctl(&qm2, NULL, &out, &err, "put LOCAL -m while-frozen");
	long long put_ms = chan_now_ms() - t;
	cr_expect_eq(rc, 0, "put on QM2 failed while BIG was stalled mid-batch: %s", err ? err : "");
	cr_expect_lt(put_ms, QUICK_MS, "put on QM2 took %lld ms while BIG was stalled", put_ms);
	free(out);
	free(err);

	/* another channel's batch into the same agent */
	t = chan_now_ms();
	chan_put(&qm1, "RQ2", NULL, "other-00001\nother-00002\nother-00003\n");
	bool other = chan_wait_depth(&qm2, "Q2", 3, QUICK_MS);
	long long other_ms = chan_now_ms() - t;
	if (!other)
		chan_dump(&qm2, "OTHER");
	cr_expect(other, "OTHER's batch did not arrive within %d ms while BIG was stalled",
	          QUICK_MS);
	fprintf(stderr, "stalled_big_batch: while frozen, put %lld ms, OTHER's batch %lld ms\n",
	        put_ms, other_ms);
	cr_expect_eq(chan_depth(&qm2, "Q"), 0, "part of the stalled batch was committed");

	/* thawed: the batch arrives, exactly once */
	tcpproxy_freeze(proxy, false, false);
	bool arrived = chan_wait_depth(&qm2, "Q", BIG_N, 60000);
	if (!arrived) {
		chan_dump(&qm1, "BIG");
		chan_dump(&qm2, "BIG");
	}
	cr_assert(arrived, "the big batch did not arrive after the thaw");
	cr_assert(chan_wait_depth(&qm1, "XQ", 0, 20000), "QM1 kept the big batch");
	json_t *st = chan_status(&qm2, "BIG");
	cr_expect_eq(chan_ji(st, "batches"), 1, "the 45 messages came in %lld batches, not one "
	             "(the test needs one batch above 32 MiB)", chan_ji(st, "batches"));
	json_decref(st);
	check_exactly_once(&qm2, "Q", "big", 0, BIG_N, (size_t)MIB);
	check_exactly_once(&qm2, "Q2", "other", 1, 3, 0);
}

/* The disk of the receiver's data_dir fills up while it spills: the batch
 * fails cleanly (ERROR to the sender with the reason, nothing committed),
 * and the sender keeps it. QM2 lives on a small tmpfs (root only). */
Test(chan_hostile, spill_disk_full)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to mount a small tmpfs for the receiver's data_dir");
	char *d = th_tempdir("hxfs");
	cr_assert_not_null(d);
	snprintf(small_fs, sizeof(small_fs), "%s", d);
	free(d);
	if (th_sh(NULL, NULL, NULL, 20, "mount -t tmpfs -o size=160m,mode=0700 tmpfs '%s'",
	          small_fs) != 0) {
		th_rmtree(small_fs);
		small_fs[0] = '\0';
		cr_skip_test("cannot mount a tmpfs (mount -t tmpfs failed)");
	}
	chan_qm_start(&qm1, "QM1", NULL);
	const char *tmp = getenv("TMPDIR");
	char *old_tmp = tmp ? strdup(tmp) : NULL;
	setenv("TMPDIR", small_fs, 1);
	chan_qm_start(&qm2, "QM2", NULL);
	if (old_tmp != NULL)
		setenv("TMPDIR", old_tmp, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmp);
	cr_assert(strncmp(qm2.dir, small_fs, strlen(small_fs)) == 0);

	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	char *big = lines("full", 0, 38, (int)MIB);    /* 38 MiB: about 6 spill */
	chan_put(&qm1, "RQ", NULL, big);
	free(big);
	/* QM2's database takes 48 MiB once and frees them: its WAL and free
	 * pages then hold the batch's early puts and its commit without
	 * growing, so the disk fills up in the spill file, deterministically */
	free(chan_ctl_ok(&qm2, NULL, "define qlocal PAD"));
	big = lines("pad", 0, 48, (int)MIB);
	chan_put(&qm2, "PAD", NULL, big);
	free(big);
	cr_assert_eq(chan_ctl(&qm2, NULL, NULL, NULL, "get PAD --all"), 0);
	/* leave 1 MiB free on QM2's file system */
	struct statvfs vf;
	cr_assert_eq(statvfs(small_fs, &vf), 0);
	long long freeb = (long long)vf.f_bavail * (long long)vf.f_frsize - MIB;
	cr_assert_gt(freeb, 0, "the tmpfs is already full");
	cr_assert_eq(th_sh(NULL, NULL, NULL, 20, "head -c %lld /dev/zero > '%s/filler'", freeb,
	                   small_fs), 0);
	/* the receiving end first: the sender starts at once (XQ has messages) */
	free(chan_ctl_ok(&qm2, NULL, "define channel FULL --type rcvr --batchsz 50 " CHAN_TLS));
	free(chan_ctl_ok(&qm1, NULL, "define channel FULL --type sdr --conname 127.0.0.1:%d "
	                 "--xmitq XQ --batchsz 50 --shortrty 3 --shorttmr 30 --longrty 0 "
	                 CHAN_TLS, qm2.a.port));

	json_t *st = chan_wait_error(&qm1, "FULL", "CHD1009", 30000);
	if (st == NULL) {
		chan_dump(&qm1, "FULL");
		chan_dump(&qm2, "FULL");
	}
	cr_assert_not_null(st, "the sender did not get the receiver's disk-full error");
	fprintf(stderr, "spill_disk_full: sender %s: %s %s\n", chan_js(st, "state"),
	        chan_js(st, "last_error_code"), chan_js(st, "last_error"));
	cr_expect(strstr(chan_js(st, "last_error"), "spill file") != NULL &&
	          strstr(chan_js(st, "last_error"), "No space left") != NULL,
	          "last error: %s", chan_js(st, "last_error"));
	json_decref(st);
	cr_expect(chan_log_has(&qm2, "not committed"), "QM2 did not log the spill failure");
	cr_expect_eq(chan_depth(&qm2, "Q"), 0, "part of a failed batch was committed");
	cr_expect_eq(chan_depth(&qm1, "XQ"), 38, "the sender did not keep the batch");
}

/* ---- dead_peer_mid_batch ---- */

#define DP_TIMEOUT_S 5
#define DP_MARGIN_S 10
#define DP_A "10.231.9.1"          /* QM1's end of the veth (a /30, namespaces only) */
#define DP_B "10.231.9.2"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd = NULL, *err = NULL;
	va_list ap;

	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	int rc = th_sh(NULL, NULL, &err, 20, "%s", cmd);
	if (rc != 0)
		fprintf(stderr, "dead_peer: `%s` exit %d: %s\n", cmd, rc, err ? err : "");
	free(cmd);
	free(err);
	return rc;
}

static void net_down(void)
{
	if (!net.made)
		return;
	for (int i = 0; i < 2; i++)
		(void)sh("! ip netns list | grep -qw '%s' || ip netns del '%s'", net.ns[i], net.ns[i]);
	(void)sh("! ip link show '%s' >/dev/null 2>&1 || ip link del '%s'", net.veth[0],
	         net.veth[0]);
	if (net.dir[0] != '\0')
		th_rmtree(net.dir);
	net.dir[0] = '\0';
	if (net.real_bin != NULL) {
		setenv("CHAND_BIN", net.real_bin, 1);
		free(net.real_bin);
		net.real_bin = NULL;
	}
	net.made = false;
}

/* Two namespaces joined by a veth pair, a wrapper per namespace that runs
 * chand inside it; false (and nothing left) if anything fails. */
static bool net_up(void)
{
	int pid = (int)getpid();

	net.made = true;
	for (int i = 0; i < 2; i++) {
		snprintf(net.ns[i], sizeof(net.ns[i]), "chdhx%d%c", pid, 'a' + i);
		snprintf(net.veth[i], sizeof(net.veth[i]), "hx%d%c", pid, 'a' + i);
	}
	if (sh("ip netns add '%s' && ip netns add '%s'", net.ns[0], net.ns[1]) != 0 ||
	    sh("ip link add '%s' type veth peer name '%s'", net.veth[0], net.veth[1]) != 0)
		return false;
	for (int i = 0; i < 2; i++)
		if (sh("ip link set '%s' netns '%s' && ip -n '%s' addr add %s/30 dev '%s' && "
		       "ip -n '%s' link set lo up && ip -n '%s' link set '%s' up", net.veth[i],
		       net.ns[i], net.ns[i], i == 0 ? DP_A : DP_B, net.veth[i], net.ns[i],
		       net.ns[i], net.veth[i]) != 0)
			return false;
	if (sh("ip netns exec '%s' true", net.ns[0]) != 0)
		return false;
	char *d = th_tempdir("hxnet");
	if (d == NULL)
		return false;
	snprintf(net.dir, sizeof(net.dir), "%s", d);
	free(d);
	chmod(net.dir, 0755);
	net.real_bin = strdup(th_chand_bin());
	for (int i = 0; i < 2; i++) {
		snprintf(net.wrap[i], sizeof(net.wrap[i]), "%s/chand-%c", net.dir, 'a' + i);
		FILE *f = fopen(net.wrap[i], "w");
		if (f == NULL)
			return false;
		/* ip netns exec execs the command: the agent keeps the pid */
		fprintf(f, "#!/bin/sh\nexec ip netns exec '%s' '%s' \"$@\"\n", net.ns[i],
		        net.real_bin);
		fclose(f);
		chmod(net.wrap[i], 0755);
	}
	return true;
}

/* Starts q (prepared) with chand inside namespace i. */
static void launch_in(struct chan_qm *q, int i, const struct chan_qm_opts *o)
{
	setenv("CHAND_BIN", net.wrap[i], 1);
	chan_qm_launch(q, o);
	free(chan_ctl_ok(q, NULL, "define qlocal DLQ --maxdepth 100000"));
}

/* Blackhole routes to the other end in both namespaces: every packet of
 * the channel vanishes, in both directions, without an error (del:
 * remove them). */
static void blackhole(bool on)
{
	const char *op = on ? "add" : "del";
	cr_assert_eq(sh("ip -n '%s' route %s blackhole %s/32 && ip -n '%s' route %s blackhole %s/32",
	                net.ns[0], op, DP_B, net.ns[1], op, DP_A), 0);
}

Test(chan_hostile, dead_peer_mid_batch)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for network namespaces (a real black hole)");
	if (!net_up()) {
		net_down();
		cr_skip_test("cannot make two network namespaces joined by a veth pair "
		             "(ip netns / ip link add type veth failed: see stderr)");
	}
	static const struct chan_qm_opts o = {
		.extra_conf = "limits = { dead_peer_timeout = 5; };\n",
	};
	chan_qm_prepare(&qm1, "QM1", &o);
	launch_in(&qm1, 0, &o);
	chan_qm_prepare(&qm2, "QM2", &o);
	launch_in(&qm2, 1, &o);
	/* QM2's listener on every address of its namespace (the helper's
	 * config says 127.0.0.1, which QM1 cannot reach from its own) */
	cr_assert_eq(th_agent_stop(&qm2.a), 0);
	cr_assert_eq(sh("sed -i 's/address = \"127.0.0.1\"/address = \"0.0.0.0\"/' '%s'",
	                qm2.a.conf), 0);
	chan_qm_restart(&qm2);

	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	/* HBINT stays 300 (T_reply 610 s); a long retry interval keeps the
	 * error in status while the test reads it */
	chan_define(&qm1, &qm2, "DEAD", CHAN_SDR_RCVR, "XQ", 0,
	            CHAN_TLS " --shorttmr 60 --shortrty 3", CHAN_TLS);
	free(chan_ctl_ok(&qm1, NULL, "alter channel DEAD --conname %s:%d", DP_B, qm2.a.port));
	chan_put(&qm1, "RQ", NULL, "d-00001\nd-00002\nd-00003\n");
	cr_assert(chan_wait_depth(&qm2, "Q", 3, 20000), "DEAD does not run across the veth");
	cr_assert(chan_wait_state(&qm1, "DEAD", "RUNNING", 10000));

	/* the link goes silent, then a batch leaves: the sender waits for its
	 * CONFIRM, in doubt */
	blackhole(true);
	long long t0 = chan_now_ms();
	chan_put(&qm1, "RQ", NULL, "d-00004\nd-00005\nd-00006\n");

	json_t *st = NULL;
	bool ended = false, indoubt = false;
	long long seen_ms = -1;
	while (chan_now_ms() - t0 < (DP_TIMEOUT_S + DP_MARGIN_S) * 1000LL) {
		json_decref(st);
		st = chan_status(&qm1, "DEAD");
		if (st != NULL && json_is_true(json_object_get(st, "indoubt")))
			indoubt = true;
		if (st != NULL && strcmp(chan_js(st, "state"), "RUNNING") != 0 &&
		    strstr(chan_js(st, "last_error"), "dead_peer_timeout") != NULL) {
			ended = true;
			seen_ms = chan_now_ms() - t0;
			break;
		}
		chan_sleep_ms(200);
	}
	if (!ended)
		chan_dump(&qm1, "DEAD");
	cr_assert(ended, "QM1's sender did not end with the dead-peer reason within %d s: "
	          "state %s, last error '%s'", DP_TIMEOUT_S + DP_MARGIN_S, chan_js(st, "state"),
	          chan_js(st, "last_error"));
	fprintf(stderr, "dead_peer_mid_batch: sender %s after %lld ms (in doubt seen: %s): %s %s\n",
	        chan_js(st, "state"), seen_ms, indoubt ? "yes" : "no",
	        chan_js(st, "last_error_code"), chan_js(st, "last_error"));
	cr_expect(strstr(chan_js(st, "last_error"), "no answer from the peer's host for 5 s") !=
	          NULL, "last error: %s", chan_js(st, "last_error"));
	json_decref(st);
	/* the receiving end, idle between batches, ends the same way */
	bool logged = chan_wait_log(&qm2, "dead_peer_timeout", DP_MARGIN_S * 1000);
	if (!logged)
		chan_dump(&qm2, "DEAD");
	cr_expect(logged, "QM2's receiver did not log the dead-peer reason");

	/* the link is back: the batch settles and arrives exactly once */
	blackhole(false);
	free(chan_ctl_ok(&qm1, NULL, "start channel DEAD"));
	bool back = chan_wait_depth(&qm2, "Q", 6, 30000);
	if (!back)
		chan_dump(&qm1, "DEAD");
	cr_assert(back, "the in-doubt batch did not arrive once the link was back");
	cr_assert(chan_wait_depth(&qm1, "XQ", 0, 20000));
	check_exactly_once(&qm2, "Q", "d", 1, 6, 0);
}
