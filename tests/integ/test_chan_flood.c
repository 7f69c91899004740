/* Hostile connections at a channel listener (issue 10, item 1): floods of
 * TCP connections that send nothing, or half a ClientHello, held open and
 * reopened as the agent drops them, must not lock out the channels; one
 * source address cannot hold more than its share; the refusals are logged
 * with the peer address, rate-limited.
 *
 * The flood comes from 127.0.0.10-29 (all of 127.0.0.0/8 is loopback on
 * Linux: the client socket is bound to its source before connect), so the
 * per-source cap (32 connections that have not finished their handshake)
 * does not itself refuse it; the cap has a test of its own from
 * 127.0.0.200. Pass/fail rests on two bounds only: `ping channel` answers
 * within 1 s, and a force-restarted sender is RUNNING again within its
 * retry interval (SHORTTMR). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chan_helpers.h"

static struct chan_qm qm1, qm2;

static void teardown(void)
{
	chan_pair_finish(&qm1, &qm2);
}

TestSuite(chan_flood, .fini = teardown, .timeout = 150);

#define N_IDLE 200
#define N_HALF 200
#define PER_SRC 20                 /* connections per source address */
#define PING_BOUND_MS 1000         /* the bound for ping */
#define SHORTTMR_S 3               /* the sender's retry interval */

/* A TLS record header announcing a 512-byte ClientHello, then 40 bytes of
 * it: the agent must wait for the rest without holding a handshake slot. */
static unsigned char half_hello[45] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                        0x03, 0x03 };

/* A TCP connection to 127.0.0.1:port from 127.0.0.<src>; -1 on failure
 * (errno kept). Non-blocking once connected. */
static int connect_from(int src, int port)
{
	struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* True if the agent closed (or reset) the connection. Non-blocking. */
static bool closed_by_peer(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char buf[256];

	if (poll(&p, 1, 0) <= 0)
		return false;
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- the flood: a thread keeps N_IDLE + N_HALF connections open ---- */

struct flood {
	int port;
	int fds[N_IDLE + N_HALF];
	pthread_t th;
	atomic_bool quit;
	atomic_int opened;          /* connections open now */
	atomic_int dropped_idle;    /* idle ones the agent closed (then reopened) */
	atomic_int dropped_half;
	atomic_int failed;          /* connects that failed */
	int last_errno;
};

static int flood_src(int i)
{
	return 10 + i / PER_SRC;   /* idle: 127.0.0.10-19, half: 127.0.0.20-29 */
}

static int flood_open(struct flood *fl, int i)
{
	int fd = connect_from(flood_src(i), fl->port);

	if (fd < 0) {
		fl->last_errno = errno;
		atomic_fetch_add(&fl->failed, 1);
		return -1;
	}
	if (i >= N_IDLE && write(fd, half_hello, sizeof(half_hello)) != (ssize_t)sizeof(half_hello)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *flood_main(void *arg)
{
	struct flood *fl = arg;

	while (!atomic_load(&fl->quit)) {
		int open = 0;
		for (int i = 0; i < N_IDLE + N_HALF && !atomic_load(&fl->quit); i++) {
			if (fl->fds[i] >= 0 && closed_by_peer(fl->fds[i])) {
				close(fl->fds[i]);
				fl->fds[i] = -1;
				atomic_fetch_add(i < N_IDLE ? &fl->dropped_idle : &fl->dropped_half, 1);
			}
			if (fl->fds[i] < 0)
				fl->fds[i] = flood_open(fl, i);
			open += fl->fds[i] >= 0;
		}
		atomic_store(&fl->opened, open);
		chan_sleep_ms(50);
	}
	return NULL;
}

static void flood_start(struct flood *fl, int port)
{
	memset(fl, 0, sizeof(*fl));
	fl->port = port;
	for (size_t i = 11; i < sizeof(half_hello); i++)
		half_hello[i] = (unsigned char)(i * 37);
	for (int i = 0; i < N_IDLE + N_HALF; i++)
		fl->fds[i] = -1;
	cr_assert_eq(pthread_create(&fl->th, NULL, flood_main, fl), 0);
	long long t0 = chan_now_ms();
	while (atomic_load(&fl->opened) < N_IDLE + N_HALF && chan_now_ms() - t0 < 30000)
		chan_sleep_ms(20);
	cr_assert_eq(atomic_load(&fl->opened), N_IDLE + N_HALF,
	             "the flood opened only %d connections (%d connects failed, last: %s)",
	             atomic_load(&fl->opened), atomic_load(&fl->failed), strerror(fl->last_errno));
}

static void flood_stop(struct flood *fl)
{
	atomic_store(&fl->quit, true);
	pthread_join(fl->th, NULL);
	for (int i = 0; i < N_IDLE + N_HALF; i++)
		if (fl->fds[i] >= 0)
			close(fl->fds[i]);
}

/* ---- helpers ---- */

/* `ping channel name` at qm1: its wall time in ms (the test fails if the
 * ping fails). */
static long long ping_ms(const char *name)
{
	long long t0 = chan_now_ms();
	char *err = NULL;
	int rc = chan_ctl(&qm1, NULL, NULL, &err, "ping channel %s", name);
	long long took = chan_now_ms() - t0;

	cr_assert_eq(rc, 0, "ping channel %s failed after %lld ms: %s", name, took,
	             err != NULL ? err : "");
	free(err);
	return took;
}

/* Lines of q's log that contain a (and b, unless NULL). */
static int log_lines_with(struct chan_qm *q, const char *a, const char *b)
{
	char *log = chan_log(q);
	int n = 0;

	for (char *line = log, *end; line != NULL && *line != '\0'; line = end) {
		end = strchr(line, '\n');
		if (end != NULL)
			*end++ = '\0';
		if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL))
			n++;
	}
	free(log);
	return n;
}

static void define_flood_channel(const char *name)
{
	char attrs[160];

	chan_define_route(&qm1, &qm2, "XQ", "RQ", "Q", 0);
	snprintf(attrs, sizeof(attrs), CHAN_TLS " --shortrty 10 --shorttmr %d", SHORTTMR_S);
	chan_define(&qm1, &qm2, name, CHAN_SDR_RCVR, "XQ", 0, attrs, CHAN_TLS);
}

/* ---- tests ---- */

Test(chan_flood, idle_and_half_hello_floods_do_not_lock_out_channels)
{
	struct flood fl;

	chan_pair_start(&qm1, &qm2);
	define_flood_channel("FLOOD");
	chan_put(&qm1, "RQ", "-m before", NULL);
	cr_assert(chan_wait_depth(&qm2, "Q", 1, 20000), "no delivery before the flood");
	cr_assert(chan_wait_state(&qm1, "FLOOD", "RUNNING", 10000));

	flood_start(&fl, qm2.a.port);
	/* Pings through one full cycle of the first-byte deadline (5 s), so
	 * the agent drops idle connections and the flood reopens them. */
	long long worst = 0, sum = 0, t_end = chan_now_ms() + 7000;
	int pings = 0;
	while (chan_now_ms() < t_end || pings < 5) {
		long long ms = ping_ms("FLOOD");
		cr_expect_lt(ms, PING_BOUND_MS, "ping %d under the flood took %lld ms", pings + 1, ms);
		worst = ms > worst ? ms : worst;
		sum += ms;
		pings++;
		chan_sleep_ms(250);
	}
	fprintf(stderr, "chan_flood: %d pings under %d idle + %d half-hello connections: "
	        "mean %lld ms, worst %lld ms\n", pings, N_IDLE, N_HALF, sum / pings, worst);

	/* A force-restarted sender is RUNNING again within its retry interval. */
	free(chan_ctl_ok(&qm1, NULL, "stop channel FLOOD --mode force"));
	cr_assert(chan_wait_state(&qm1, "FLOOD", "STOPPED", 10000));
	long long t0 = chan_now_ms();
	free(chan_ctl_ok(&qm1, NULL, "start channel FLOOD"));
	bool up = chan_wait_state(&qm1, "FLOOD", "RUNNING", SHORTTMR_S * 1000);
	long long took = chan_now_ms() - t0;
	fprintf(stderr, "chan_flood: force-restarted sender RUNNING after %lld ms (SHORTTMR %d s)\n",
	        took, SHORTTMR_S);
	if (!up)
		chan_dump(&qm1, "FLOOD");
	cr_assert(up, "the restarted sender was not RUNNING within SHORTTMR (%d s)", SHORTTMR_S);
	chan_put(&qm1, "RQ", "-m during", NULL);
	cr_assert(chan_wait_depth(&qm2, "Q", 2, 10000), "no delivery under the flood");

	/* The idle connections were dropped by the first-byte deadline (and
	 * reopened), well before the handshake timeout (30 s). */
	long long tw = chan_now_ms();
	while (atomic_load(&fl.dropped_idle) < N_IDLE && chan_now_ms() - tw < 20000)
		chan_sleep_ms(100);
	int dropped_idle = atomic_load(&fl.dropped_idle);
	int dropped_half = atomic_load(&fl.dropped_half);
	flood_stop(&fl);
	fprintf(stderr, "chan_flood: the agent dropped %d idle and %d half-hello connections\n",
	        dropped_idle, dropped_half);
	cr_expect_geq(dropped_idle, N_IDLE, "idle connections are not dropped early");

	/* Their refusals are logged with the peer address, at most one line
	 * per source address per minute (10 idle sources). */
	int lines = log_lines_with(&qm2, "CHD4009", "sent nothing within");
	cr_expect_geq(lines, 1, "no CHD4009 line for the idle connections");
	cr_expect_leq(lines, N_IDLE / PER_SRC, "%d lines for %d dropped idle connections from %d "
	              "addresses: not rate-limited", lines, dropped_idle, N_IDLE / PER_SRC);
	cr_expect(log_lines_with(&qm2, "sent nothing within", "peer=127.0.0.1") >= 1,
	          "the refusal does not name the peer address");
	cr_assert(th_agent_alive(&qm2.a));
}

Test(chan_flood, per_source_cap_refuses_the_excess_with_a_log_line)
{
	enum { N = 40, CAP = 32, SRC = 200 };
	int fds[N];

	chan_pair_start(&qm1, &qm2);
	define_flood_channel("CAP");
	free(chan_ctl_ok(&qm1, NULL, "stop channel CAP"));

	long long t0 = chan_now_ms();
	for (int i = 0; i < N; i++) {
		fds[i] = connect_from(SRC, qm2.a.port);
		cr_assert_geq(fds[i], 0, "connect %d from 127.0.0.%d: %s", i, SRC, strerror(errno));
	}
	/* The excess is closed at once; the others only at the first-byte
	 * deadline (5 s). */
	int closed = 0;
	bool seen[N] = { false };
	while (closed < N - CAP && chan_now_ms() - t0 < 20000) {
		for (int i = 0; i < N; i++)
			if (!seen[i] && closed_by_peer(fds[i])) {
				seen[i] = true;
				closed++;
			}
		chan_sleep_ms(20);
	}
	long long took = chan_now_ms() - t0;
	cr_assert_geq(closed, N - CAP, "only %d of %d connections over the cap were refused",
	              closed, N - CAP);
	if (took < 4000)   /* before any first-byte deadline could pass */
		cr_expect_eq(closed, N - CAP, "%d connections closed, %d expected", closed, N - CAP);
	cr_assert(chan_wait_log(&qm2, "CHD1020", 5000), "no CHD1020 line for the refusals");
	cr_expect_eq(log_lines_with(&qm2, "CHD1020", "127.0.0.200"), 1,
	             "the refusals of one address are not logged once, with its address");

	/* Other addresses (the initiator's) are not affected. */
	long long ms = ping_ms("CAP");
	cr_expect_lt(ms, PING_BOUND_MS, "ping took %lld ms", ms);

	/* Once the address's connections end, it may connect again. */
	for (int i = 0; i < N; i++)
		close(fds[i]);
	bool accepted = false;
	for (long long tw = chan_now_ms(); !accepted && chan_now_ms() - tw < 10000;) {
		int fd = connect_from(SRC, qm2.a.port);
		cr_assert_geq(fd, 0);
		chan_sleep_ms(500);
		accepted = !closed_by_peer(fd);
		close(fd);
	}
	cr_assert(accepted, "127.0.0.%d is still refused after closing its connections", SRC);
	cr_assert(th_agent_alive(&qm2.a));
}
