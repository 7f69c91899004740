/* bench_mqtt_client: MQTT-over-TLS load client for bench/bench_mqtt.sh.
 *
 *   bench_mqtt_client pubsub -p PORT --cafile CA [-n N] [-s SIZE] [-q QOS] [-w WINDOW]
 *   bench_mqtt_client idle   -p PORT --cafile CA [-c CONNS] [--sources K] [--threads T]
 *                            [--hold SECONDS]
 *
 * Speaks MQTT 3.1.1 with the project's pure codec (include/chand/mqtt_codec.h)
 * over GnuTLS with non-blocking sockets, so it measures the broker and not
 * a client library; the same binary runs against chand and Mosquitto.
 *
 * pubsub: one subscriber (its own thread) subscribes to a topic at QOS,
 * then one publisher sends N messages of SIZE bytes at QOS, keeping at most
 * WINDOW unacknowledged (QoS 1: until PUBACK, QoS 2: until PUBCOMP; QoS 0
 * is written as fast as TLS takes it).  --persistent makes both sessions
 * persistent (clean session 0; a broker must then keep each QoS 1/2
 * publication for the subscriber's session) and discards them at the end.
 * --ahead M keeps the publisher at most M messages ahead of what the
 * subscriber has received (end-to-end pacing, for QoS 0 without loss).
 * Each payload starts with its
 * sequence number, so the subscriber counts what was lost or duplicated.
 * The clock runs from the first publish to the last new message the
 * subscriber receives.  Output: one "RESULT key=value ..." line.
 *
 * idle: opens CONNS TLS connections (CONNECT, keepalive 600) as fast as it
 * can from THREADS epoll threads, each connection bound to one of K source
 * addresses 127.0.0.2.. (the broker may cap per source the connections
 * that have not finished CONNECT; each thread keeps at most --pending
 * unfinished per source), prints "READY ..." with the connect rate, then
 * holds them (answering nothing, keepalive makes that legal) until SIGTERM
 * / SIGINT or --hold seconds, and prints "END ..." with how many the
 * server closed meanwhile. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "chand/mqtt_codec.h"

#define SEQ_LEN 8
#define SEND_CHUNK 16384

static struct {
	const char *host, *cafile, *topic;
	int port;
	long n, size, window, ahead, conns, sources, threads, pending, hold, timeout, idle_end;
	int qos;
	bool persistent;      /* pubsub: both sessions persistent (clean session 0) */
} opt = {
	.host = "127.0.0.1", .topic = "bench/mqtt", .n = 10000, .size = 1024, .window = 100,
	.conns = 1000, .sources = 16, .threads = 2, .pending = 32, .hold = 0, .timeout = 300,
	.idle_end = 3,
};

static gnutls_certificate_credentials_t xcred;
static volatile sig_atomic_t stop_flag;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench_mqtt_client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- one MQTT-over-TLS connection, non-blocking ---- */

enum cstate { C_TCP, C_TLS, C_MQTT, C_UP, C_DEAD };

struct conn {
	int fd;
	enum cstate st;
	gnutls_session_t s;
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct mqtt_wbuf out;
	size_t off;           /* bytes of out already sent */
	size_t again_len;     /* >0: a record_send of that many bytes returned AGAIN */
	int src;              /* source index (idle mode) */
	char err[256];
};

static int conn_start(struct conn *c, const struct sockaddr_in *src)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	int one = 1;

	memset(c, 0, sizeof *c);
	mqtt_wbuf_init(&c->out);
	if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1)
		die("--host %s: not an IPv4 address", opt.host);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (c->fd < 0)
		return snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno)), -1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src) {
#ifdef IP_BIND_ADDRESS_NO_PORT
		/* Let connect() choose the port per destination, not bind(). */
		(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
		if (bind(c->fd, (const struct sockaddr *)src, sizeof *src) != 0)
			return snprintf(c->err, sizeof c->err, "bind: %s", strerror(errno)), -1;
	}
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS)
		return snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno)), -1;
	c->st = C_TCP;
	return 0;
}

static int conn_tls_init(struct conn *c)
{
	int rc;

	if ((rc = gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0 ||
	    (rc = gnutls_set_default_priority(c->s)) < 0 ||
	    (rc = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, xcred)) < 0)
		return snprintf(c->err, sizeof c->err, "gnutls: %s", gnutls_strerror(rc)), -1;
	/* The server certificate is checked against the address (IP SAN). */
	gnutls_session_set_verify_cert(c->s, opt.host, 0);
	gnutls_transport_set_int(c->s, c->fd);
	c->st = C_TLS;
	return 0;
}

static void conn_free(struct conn *c)
{
	if (c->s)
		gnutls_deinit(c->s);
	if (c->fd >= 0)
		close(c->fd);
	c->s = NULL;
	c->fd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
	mqtt_wbuf_free(&c->out);
	c->st = C_DEAD;
}

/* Sends what is queued: 1 all sent, 0 would block, -1 error. */
static int conn_flush(struct conn *c)
{
	while (c->off < c->out.len) {
		ssize_t n;

		if (c->again_len) {
			n = gnutls_record_send(c->s, NULL, 0);
		} else {
			size_t len = c->out.len - c->off;

			c->again_len = len > SEND_CHUNK ? SEND_CHUNK : len;
			n = gnutls_record_send(c->s, c->out.p + c->off, c->again_len);
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 0;
		c->again_len = 0;
		if (n < 0) {
			snprintf(c->err, sizeof c->err, "send: %s", gnutls_strerror((int)n));
			return -1;
		}
		c->off += (size_t)n;
	}
	c->out.len = c->off = 0;
	return 1;
}

/* Reads what TLS has: 1 got bytes or nothing yet, 0 peer closed, -1 error. */
static int conn_fill(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->rcap - c->rlen < SEND_CHUNK) {
			size_t cap = c->rcap ? c->rcap * 2 : 2 * SEND_CHUNK;
			uint8_t *p = realloc(c->rbuf, cap);

			if (!p)
				die("out of memory");
			c->rbuf = p;
			c->rcap = cap;
		}
		n = gnutls_record_recv(c->s, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 1;
		if (n == 0)
			return snprintf(c->err, sizeof c->err, "server closed the connection"), 0;
		snprintf(c->err, sizeof c->err, "recv: %s", gnutls_strerror((int)n));
		return -1;
	}
}

/* Next whole packet in rbuf at *pos: 1 decoded, 0 need more, -1 bad. */
static int conn_next(struct conn *c, size_t *pos, struct mqtt_packet *pkt)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	struct mqtt_error err;
	int rc = mqtt_fixed_header(c->rbuf + *pos, c->rlen - *pos, &tf, &rem, &hl);

	if (rc == MQTT_NEED_MORE)
		return 0;
	if (rc != MQTT_OK)
		return snprintf(c->err, sizeof c->err, "malformed fixed header"), -1;
	if (c->rlen - *pos < hl + rem)
		return 0;
	if (mqtt_decode_ex(c->rbuf + *pos, hl + rem, MQTT_V311, MQTT_DEC_CLIENT, pkt, &err) != 0)
		return snprintf(c->err, sizeof c->err, "bad packet from server: %s", err.text), -1;
	*pos += hl + rem;
	return 1;
}

/* Drops the packets consumed (they have been handled: views are dead). */
static void conn_consume(struct conn *c, size_t pos)
{
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
}

static void queue_connect(struct conn *c, const char *client_id, uint16_t keepalive, bool clean)
{
	struct mqtt_connect cn = {
		.version = MQTT_V311, .clean = clean, .keepalive = keepalive,
		.client_id = { (const uint8_t *)client_id, strlen(client_id) },
	};

	if (mqtt_encode_connect(&c->out, &cn) != 0)
		die("encode CONNECT: %s", strerror(errno));
}

static void queue_ack(struct conn *c, enum mqtt_ptype type, uint16_t pid)
{
	if (mqtt_encode_ack(&c->out, MQTT_V311, type, pid, 0, NULL) != 0)
		die("encode %s: %s", mqtt_ptype_name(type), strerror(errno));
}

/* Blocking set-up for pubsub: TCP, TLS, CONNECT/CONNACK. */
static void wait_fd(struct conn *c, short ev, double deadline)
{
	struct pollfd p = { .fd = c->fd, .events = ev };
	double left = deadline - now_s();

	if (left <= 0)
		die("timed out setting up a connection");
	(void)poll(&p, 1, (int)(left * 1000) + 1);
}

static void conn_open_blocking(struct conn *c, const char *client_id, bool clean)
{
	double deadline = now_s() + 30;
	int rc, soerr = 0;
	socklen_t sl = sizeof soerr;
	size_t pos = 0;
	struct mqtt_packet pkt;

	if (conn_start(c, NULL) != 0)
		die("%s", c->err);
	wait_fd(c, POLLOUT, deadline);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)
		die("connect to %s:%d: %s", opt.host, opt.port, strerror(soerr));
	if (conn_tls_init(c) != 0)
		die("%s", c->err);
	while ((rc = gnutls_handshake(c->s)) < 0) {
		if (gnutls_error_is_fatal(rc))
			die("TLS handshake: %s", gnutls_strerror(rc));
		wait_fd(c, gnutls_record_get_direction(c->s) ? POLLOUT : POLLIN, deadline);
	}
	queue_connect(c, client_id, 600, clean);
	while ((rc = conn_flush(c)) == 0)
		wait_fd(c, POLLOUT, deadline);
	if (rc < 0)
		die("%s", c->err);
	for (;;) {
		if (conn_fill(c) <= 0)
			die("waiting for CONNACK: %s", c->err);
		rc = conn_next(c, &pos, &pkt);
		if (rc < 0)
			die("%s", c->err);
		if (rc > 0)
			break;
		wait_fd(c, POLLIN, deadline);
	}
	if (pkt.type != MQTT_CONNACK || pkt.u.connack.reason != 0)
		die("CONNECT refused (%s, code %d)", mqtt_ptype_name(pkt.type), pkt.u.connack.reason);
	conn_consume(c, pos);
	c->st = C_UP;
}

/* ---- pubsub ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ready, pub_done, sub_done;
	double t_last;        /* time of the last new message */
	long got, dup, bad;
	long first_lost, last_lost;   /* -1: none */
	char err[300];
} ps = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .first_lost = -1,
          .last_lost = -1 };

static void ps_set(bool *flag)
{
	pthread_mutex_lock(&ps.mu);
	*flag = true;
	pthread_cond_broadcast(&ps.cv);
	pthread_mutex_unlock(&ps.mu);
}

static bool ps_get(const bool *flag)
{
	bool v;

	pthread_mutex_lock(&ps.mu);
	v = *flag;
	pthread_mutex_unlock(&ps.mu);
	return v;
}

static void *subscriber(void *arg)
{
	struct conn *c = arg;
	struct mqtt_sub_entry e = { .filter = { (const uint8_t *)opt.topic, strlen(opt.topic) },
		                    .qos = (uint8_t)opt.qos };
	uint8_t *seen = calloc((size_t)opt.n, 1);
	double quiet_since = 0, deadline = 0;
	bool subscribed = false;

	if (!seen)
		die("out of memory");
	if (mqtt_encode_subscribe(&c->out, MQTT_V311, 1, &e, 1, NULL) != 0)
		die("encode SUBSCRIBE: %s", strerror(errno));
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		struct mqtt_packet pkt;
		size_t pos = 0;
		int rc;
		double t;

		if (conn_flush(c) < 0)
			goto fail;
		if (c->out.len)
			p.events |= POLLOUT;
		if (gnutls_record_check_pending(c->s) == 0)
			(void)poll(&p, 1, 100);
		if (conn_fill(c) <= 0)
			goto fail;
		t = now_s();
		while ((rc = conn_next(c, &pos, &pkt)) > 0) {
			switch (pkt.type) {
			case MQTT_SUBACK:
				if (pkt.u.suback.codes.len != 1 || pkt.u.suback.codes.p[0] != opt.qos) {
					snprintf(c->err, sizeof c->err, "SUBACK granted 0x%02x, not QoS %d",
					         pkt.u.suback.codes.len ? pkt.u.suback.codes.p[0] : 0xff, opt.qos);
					goto fail;
				}
				subscribed = true;
				ps_set(&ps.ready);
				break;
			case MQTT_PUBLISH: {
				const struct mqtt_publish *m = &pkt.u.publish;
				uint64_t seq = 0;

				if (m->qos == 1)
					queue_ack(c, MQTT_PUBACK, m->pid);
				else if (m->qos == 2)
					queue_ack(c, MQTT_PUBREC, m->pid);
				for (size_t i = 0; i < SEQ_LEN && i < m->payload.len; i++)
					seq = seq << 8 | m->payload.p[i];
				pthread_mutex_lock(&ps.mu);
				if (m->payload.len != (size_t)opt.size || seq >= (uint64_t)opt.n) {
					ps.bad++;
				} else if (seen[seq]) {
					ps.dup++;
				} else {
					seen[seq] = 1;
					ps.got++;
					ps.t_last = t;
				}
				pthread_mutex_unlock(&ps.mu);
				break;
			}
			case MQTT_PUBREL:
				queue_ack(c, MQTT_PUBCOMP, pkt.u.ack.pid);
				break;
			case MQTT_PINGRESP:
				break;
			default:
				snprintf(c->err, sizeof c->err, "subscriber: unexpected %s",
				         mqtt_ptype_name(pkt.type));
				goto fail;
			}
		}
		if (rc < 0)
			goto fail;
		conn_consume(c, pos);
		if (!subscribed)
			continue;
		pthread_mutex_lock(&ps.mu);
		{
			bool all = ps.got >= opt.n, pub_done = ps.pub_done;
			double last = ps.t_last;

			pthread_mutex_unlock(&ps.mu);
			if (all)
				break;
			/* After the publisher is done, stop once nothing new has come
			 * for idle_end seconds (lost messages) or at the timeout. */
			if (pub_done) {
				if (!quiet_since)
					quiet_since = t;
				if (t - (last > quiet_since ? last : quiet_since) > (double)opt.idle_end)
					break;
			}
			if (!deadline)
				deadline = t + (double)opt.timeout;
			if (t > deadline || stop_flag)
				break;
		}
	}
	while (c->out.len && conn_flush(c) == 0)
		(void)poll(&(struct pollfd){ .fd = c->fd, .events = POLLOUT }, 1, 100);
	/* Where the holes are says whether a broker dropped at random
	 * (overload) or stopped delivering (a stuck queue). */
	pthread_mutex_lock(&ps.mu);
	for (long i = 0; i < opt.n; i++)
		if (!seen[i]) {
			if (ps.first_lost < 0)
				ps.first_lost = i;
			ps.last_lost = i;
		}
	pthread_mutex_unlock(&ps.mu);
	free(seen);
	ps_set(&ps.sub_done);
	return NULL;
fail:
	pthread_mutex_lock(&ps.mu);
	snprintf(ps.err, sizeof ps.err, "subscriber: %s", c->err);
	pthread_mutex_unlock(&ps.mu);
	free(seen);
	ps_set(&ps.ready);
	ps_set(&ps.sub_done);
	return NULL;
}

static int run_pubsub(void)
{
	struct conn sub, pub;
	pthread_t th;
	uint8_t *payload, *inuse;
	long sent = 0, acked = 0, inflight = 0;
	uint16_t next_pid = 0;
	double t0, t_pub = 0, deadline;
	char id[64];
	bool failed = false;
	const char *ver = "?", *cipher = "?";

	if (opt.size < SEQ_LEN || opt.n < 1 || opt.qos < 0 || opt.qos > 2 || opt.window < 1 ||
	    opt.window > 65535)
		die("pubsub needs --size >= %d, -n >= 1, -q 0..2, -w 1..65535", SEQ_LEN);
	payload = malloc((size_t)opt.size);
	inuse = calloc(65536, 1);
	if (!payload || !inuse)
		die("out of memory");
	memset(payload, 'x', (size_t)opt.size);

	snprintf(id, sizeof id, "bench-sub-%ld", (long)getpid());
	conn_open_blocking(&sub, id, !opt.persistent);
	snprintf(id, sizeof id, "bench-pub-%ld", (long)getpid());
	conn_open_blocking(&pub, id, !opt.persistent);
	ver = gnutls_protocol_get_name(gnutls_protocol_get_version(pub.s));
	cipher = gnutls_cipher_get_name(gnutls_cipher_get(pub.s));
	if (pthread_create(&th, NULL, subscriber, &sub) != 0)
		die("pthread_create failed");
	pthread_mutex_lock(&ps.mu);
	while (!ps.ready)
		pthread_cond_wait(&ps.cv, &ps.mu);
	pthread_mutex_unlock(&ps.mu);
	if (ps.err[0])
		goto done;

	t0 = now_s();
	deadline = t0 + (double)opt.timeout;
	while (acked < opt.n || (opt.qos == 0 && sent < opt.n)) {
		struct pollfd p = { .fd = pub.fd, .events = POLLIN };
		struct mqtt_packet pkt;
		size_t pos = 0;
		int rc;

		/* Queue what the window allows, at most ~64 KiB per round. */
		long got;

		pthread_mutex_lock(&ps.mu);
		got = ps.got;
		pthread_mutex_unlock(&ps.mu);
		while (sent < opt.n && pub.out.len < 4 * SEND_CHUNK &&
		       (opt.qos == 0 || inflight < opt.window) &&
		       (opt.ahead == 0 || sent - got < opt.ahead)) {
			struct mqtt_publish_out m = {
				.topic = { (const uint8_t *)opt.topic, strlen(opt.topic) },
				.payload = { payload, (size_t)opt.size }, .qos = (uint8_t)opt.qos,
			};

			for (int i = 0; i < SEQ_LEN; i++)
				payload[i] = (uint8_t)((uint64_t)sent >> (8 * (SEQ_LEN - 1 - i)));
			if (opt.qos) {
				do
					next_pid = (uint16_t)(next_pid == 65535 ? 1 : next_pid + 1);
				while (inuse[next_pid]);
				inuse[next_pid] = 1;
				m.pid = next_pid;
				inflight++;
			}
			if (mqtt_encode_publish(&pub.out, MQTT_V311, &m) != 0)
				die("encode PUBLISH: %s", strerror(errno));
			sent++;
		}
		if (opt.qos == 0)
			acked = sent;
		if ((rc = conn_flush(&pub)) < 0)
			goto pub_fail;
		if (opt.qos == 0 && sent >= opt.n && rc == 1)
			break;
		if (pub.out.len)
			p.events |= POLLOUT;
		/* Block only when there is nothing more we may send now. */
		if (gnutls_record_check_pending(pub.s) == 0)
			(void)poll(&p, 1,
			           pub.out.len || sent >= opt.n || (opt.qos && inflight >= opt.window)
			           ? 100 : opt.ahead && sent - got >= opt.ahead ? 1 : 0);
		if (conn_fill(&pub) <= 0)
			goto pub_fail;
		while ((rc = conn_next(&pub, &pos, &pkt)) > 0) {
			uint16_t pid = pkt.u.ack.pid;

			if (pkt.type == MQTT_PUBREC && opt.qos == 2 && inuse[pid] == 1) {
				inuse[pid] = 2;
				queue_ack(&pub, MQTT_PUBREL, pid);
			} else if ((pkt.type == MQTT_PUBACK && opt.qos == 1 && inuse[pid] == 1) ||
			           (pkt.type == MQTT_PUBCOMP && opt.qos == 2 && inuse[pid] == 2)) {
				inuse[pid] = 0;
				inflight--;
				acked++;
			} else if (pkt.type != MQTT_PINGRESP) {
				snprintf(pub.err, sizeof pub.err, "publisher: unexpected %s (pid %u)",
				         mqtt_ptype_name(pkt.type), pid);
				goto pub_fail;
			}
		}
		if (rc < 0)
			goto pub_fail;
		conn_consume(&pub, pos);
		if (now_s() > deadline || stop_flag) {
			snprintf(pub.err, sizeof pub.err, "publisher: timed out with %ld of %ld acknowledged",
			         acked, opt.n);
			goto pub_fail;
		}
		if (ps_get(&ps.sub_done))
			break;
	}
	t_pub = now_s() - t0;
	ps_set(&ps.pub_done);
	pthread_join(th, NULL);
	{
		double el = ps.t_last - t0;

		if (el <= 0)
			el = 1e-9;
		printf("RESULT qos=%d n=%ld size=%ld window=%ld ahead=%ld received=%ld lost=%ld dup=%ld bad=%ld "
		       "seconds=%.3f msgs_per_s=%.0f mb_per_s=%.2f pub_seconds=%.3f tls=%s cipher=%s "
		       "persistent=%d first_lost=%ld last_lost=%ld\n",
		       opt.qos, opt.n, opt.size, opt.window, opt.ahead, ps.got, opt.n - ps.got, ps.dup, ps.bad, el,
		       (double)ps.got / el, (double)ps.got * (double)opt.size / el / 1e6, t_pub, ver,
		       cipher, opt.persistent, ps.first_lost, ps.last_lost);
	}
	failed = ps.err[0] != 0 || ps.got != opt.n || ps.dup || ps.bad;
	goto done;
pub_fail:
	fprintf(stderr, "bench_mqtt_client: %s (%s)\n", pub.err, "publisher");
	failed = true;
	stop_flag = 1;
	ps_set(&ps.pub_done);
	pthread_join(th, NULL);
done:
	if (ps.err[0]) {
		fprintf(stderr, "bench_mqtt_client: %s\n", ps.err);
		failed = true;
	}
	/* Polite end: DISCONNECT both (best effort). */
	if (mqtt_encode_disconnect(&pub.out, MQTT_V311, 0, NULL) == 0)
		(void)conn_flush(&pub);
	if (mqtt_encode_disconnect(&sub.out, MQTT_V311, 0, NULL) == 0)
		(void)conn_flush(&sub);
	conn_free(&pub);
	conn_free(&sub);
	if (opt.persistent) {
		/* Leave no session behind: a clean CONNECT discards each one
		 * (else the next runs would queue messages for them). */
		const char *who[] = { "sub", "pub" };

		for (int i = 0; i < 2; i++) {
			snprintf(id, sizeof id, "bench-%s-%ld", who[i], (long)getpid());
			conn_open_blocking(&sub, id, true);
			if (mqtt_encode_disconnect(&sub.out, MQTT_V311, 0, NULL) == 0)
				(void)conn_flush(&sub);
			conn_free(&sub);
		}
	}
	free(payload);
	free(inuse);
	return failed ? 1 : 0;
}

/* ---- idle ---- */

struct idle_thread {
	pthread_t th;
	int idx;
	long first, count;    /* connections [first, first + count) */
	struct conn *c;
	long up, failed, closed;
	double t_done;
	char err[300];
};

static double idle_t0;
static struct idle_thread *ithreads;
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static long idle_settled;     /* threads done connecting */

static void idle_fail(struct idle_thread *t, struct conn *c, int ep)
{
	if (!t->err[0])
		snprintf(t->err, sizeof t->err, "%s", c->err);
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	conn_free(c);
}

/* Drives one connection as far as its socket allows. */
static void idle_step(struct idle_thread *t, struct conn *c, int ep, long *pend)
{
	int rc;

	if (c->st == C_TCP) {
		int soerr = 0;
		socklen_t sl = sizeof soerr;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
			snprintf(c->err, sizeof c->err, "connect: %s", strerror(soerr));
			goto failed;
		}
		if (conn_tls_init(c) != 0)
			goto failed;
	}
	if (c->st == C_TLS) {
		struct epoll_event ev = { .data.ptr = c };

		rc = gnutls_handshake(c->s);
		if (rc < 0 && gnutls_error_is_fatal(rc)) {
			snprintf(c->err, sizeof c->err, "TLS handshake: %s", gnutls_strerror(rc));
			goto failed;
		}
		if (rc < 0) {
			ev.events = gnutls_record_get_direction(c->s) ? EPOLLOUT : EPOLLIN;
			(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		{
			char id[32];

			snprintf(id, sizeof id, "i%ld-%ld", (long)getpid(), (long)(c - ithreads[0].c));
			queue_connect(c, id, 600, true);
		}
		c->st = C_MQTT;
		ev.events = EPOLLIN;
		(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (c->st == C_MQTT || c->st == C_UP) {
		struct mqtt_packet pkt;
		size_t pos = 0;

		if ((rc = conn_flush(c)) < 0)
			goto failed;
		if (rc == 0) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

			(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
		if (conn_fill(c) <= 0)
			goto failed;
		while ((rc = conn_next(c, &pos, &pkt)) > 0) {
			if (c->st == C_MQTT && pkt.type == MQTT_CONNACK) {
				if (pkt.u.connack.reason != 0) {
					snprintf(c->err, sizeof c->err, "CONNACK return code %d",
					         pkt.u.connack.reason);
					goto failed;
				}
				c->st = C_UP;
				t->up++;
				pend[c->src]--;
				/* The read buffer is not needed while idle: give it back. */
			}
		}
		if (rc < 0)
			goto failed;
		conn_consume(c, pos);
		if (c->st == C_UP && c->rlen == 0) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	}
	return;
failed:
	if (c->st == C_UP) {
		t->up--;
		t->closed++;
	} else {
		pend[c->src]--;
		t->failed++;
	}
	idle_fail(t, c, ep);
}

static void *idle_thread_main(void *arg)
{
	struct idle_thread *t = arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	long next = 0, nsrc = 0, rr = 0;
	long *pend;
	int *srcs;
	bool settled = false;
	double deadline = idle_t0 + (double)opt.timeout;

	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	/* This thread's source addresses: 127.0.0.(2 + s) for s = idx, idx + T, ... */
	srcs = calloc((size_t)opt.sources, sizeof *srcs);
	pend = calloc((size_t)opt.sources, sizeof *pend);
	if (!srcs || !pend)
		die("out of memory");
	for (long s = t->idx; s < opt.sources; s += opt.threads)
		srcs[nsrc++] = (int)s;
	if (nsrc == 0)
		die("--sources must be >= --threads");

	while (!stop_flag) {
		struct epoll_event evs[256];
		int n;

		/* Open more while some source is below its cap of unfinished ones. */
		while (!settled && next < t->count) {
			long tries = 0;
			int s;

			while (pend[srcs[rr % nsrc]] >= opt.pending && tries < nsrc) {
				rr++;
				tries++;
			}
			if (tries == nsrc)
				break;
			s = srcs[rr++ % nsrc];
			{
				struct conn *c = &t->c[next++];
				struct sockaddr_in sa = { .sin_family = AF_INET };
				struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

				sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)s);
				if (conn_start(c, opt.sources > 0 ? &sa : NULL) != 0 ||
				    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
					t->failed++;
					if (!t->err[0])
						snprintf(t->err, sizeof t->err, "%s", c->err[0] ? c->err : strerror(errno));
					conn_free(c);
					continue;
				}
				c->src = s;
				pend[s]++;
			}
		}
		if (!settled && next >= t->count && t->up + t->failed + t->closed >= t->count) {
			settled = true;
			t->t_done = now_s();
			pthread_mutex_lock(&idle_mu);
			idle_settled++;
			pthread_cond_broadcast(&idle_cv);
			pthread_mutex_unlock(&idle_mu);
		}
		if (!settled && now_s() > deadline) {
			/* Bounded: whatever has not connected by now counts as failed. */
			for (long i = 0; i < next; i++)
				if (t->c[i].st != C_UP && t->c[i].st != C_DEAD) {
					snprintf(t->c[i].err, sizeof t->c[i].err, "not connected within --timeout");
					t->failed++;
					idle_fail(t, &t->c[i], ep);
				}
			t->failed += t->count - next;
			next = t->count;
			continue;
		}
		n = epoll_wait(ep, evs, 256, 200);
		for (int i = 0; i < n; i++)
			idle_step(t, evs[i].data.ptr, ep, pend);
	}
	free(srcs);
	free(pend);
	close(ep);
	if (!settled) {
		pthread_mutex_lock(&idle_mu);
		idle_settled++;
		pthread_cond_broadcast(&idle_cv);
		pthread_mutex_unlock(&idle_mu);
	}
	return NULL;
}

static int run_idle(void)
{
	struct rlimit rl;
	long per, rest, up = 0, failed = 0, closed = 0;
	double t_done = 0, hold_end;
	const char *first_err = "";
	struct conn *all;

	if (opt.conns < 1 || opt.threads < 1 || opt.threads > 64 || opt.pending < 1 ||
	    opt.sources < opt.threads || opt.sources > 250)
		die("idle needs -c >= 1, --threads 1..64, --sources threads..250, --pending >= 1");
	/* One fd per connection plus a margin: raise the soft limit, and the
	 * hard one too if we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.conns + 64) {
		rlim_t want = (rlim_t)opt.conns + 64;

		if (rl.rlim_max < want) {
			struct rlimit r2 = { want, want };

			if (setrlimit(RLIMIT_NOFILE, &r2) != 0)
				die("need %ld file descriptors, hard limit is %ld", (long)want,
				    (long)rl.rlim_max);
		} else {
			rl.rlim_cur = want;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	all = calloc((size_t)opt.conns, sizeof *all);
	ithreads = calloc((size_t)opt.threads, sizeof *ithreads);
	if (!all || !ithreads)
		die("out of memory");
	for (long i = 0; i < opt.conns; i++)
		all[i].fd = -1;
	per = opt.conns / opt.threads;
	rest = opt.conns % opt.threads;
	idle_t0 = now_s();
	for (long i = 0, first = 0; i < opt.threads; i++) {
		struct idle_thread *t = &ithreads[i];

		t->idx = (int)i;
		t->first = first;
		t->count = per + (i < rest ? 1 : 0);
		t->c = all + first;
		first += t->count;
		if (pthread_create(&t->th, NULL, idle_thread_main, t) != 0)
			die("pthread_create failed");
	}
	pthread_mutex_lock(&idle_mu);
	while (idle_settled < opt.threads && !stop_flag) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&idle_cv, &idle_mu, &ts);
	}
	pthread_mutex_unlock(&idle_mu);
	for (long i = 0; i < opt.threads; i++) {
		/* Racy reads of counters that only grow: fine for a progress line. */
		up += ithreads[i].up;
		failed += ithreads[i].failed;
		if (ithreads[i].t_done > t_done)
			t_done = ithreads[i].t_done;
		if (!first_err[0] && ithreads[i].err[0])
			first_err = ithreads[i].err;
	}
	if (t_done <= idle_t0)
		t_done = now_s();
	printf("READY connected=%ld failed=%ld seconds=%.3f conn_per_s=%.0f%s%s\n", up, failed,
	       t_done - idle_t0, (double)up / (t_done - idle_t0), first_err[0] ? " first_error=" : "",
	       first_err);
	fflush(stdout);
	hold_end = opt.hold > 0 ? now_s() + (double)opt.hold : 0;
	while (!stop_flag && (!hold_end || now_s() < hold_end))
		usleep(100000);
	stop_flag = 1;
	up = closed = 0;
	first_err = "";
	for (long i = 0; i < opt.threads; i++) {
		pthread_join(ithreads[i].th, NULL);
		up += ithreads[i].up;
		closed += ithreads[i].closed;
		if (!first_err[0] && ithreads[i].closed && ithreads[i].err[0])
			first_err = ithreads[i].err;
	}
	printf("END still_connected=%ld closed_by_server=%ld%s%s\n", up, closed,
	       first_err[0] ? " first_error=" : "", first_err);
	fflush(stdout);
	/* Exiting closes every socket at once: no per-connection teardown. */
	return failed || closed ? 1 : 0;
}

static void usage(void)
{
	fputs("usage: bench_mqtt_client pubsub|idle -p PORT --cafile CA [--host IPv4]\n"
	      "  pubsub: [-n N] [-s SIZE] [-q 0|1|2] [-w WINDOW] [--topic T] [--timeout S]\n"
	      "          [--persistent] [--ahead M]\n"
	      "  idle:   [-c CONNS] [--sources K] [--threads T] [--pending P] [--hold S]\n"
	      "          [--timeout S]\n", stderr);
	exit(2);
}

static long num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s)
		die("%s: not a number: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'h' }, { "port", required_argument, NULL, 'p' },
		{ "cafile", required_argument, NULL, 'A' }, { "topic", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "qos", required_argument, NULL, 'q' }, { "window", required_argument, NULL, 'w' },
		{ "conns", required_argument, NULL, 'c' }, { "sources", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'T' }, { "pending", required_argument, NULL, 'P' },
		{ "hold", required_argument, NULL, 'H' }, { "timeout", required_argument, NULL, 'O' },
		{ "idle-end", required_argument, NULL, 'I' },
		{ "persistent", no_argument, NULL, 'K' }, { "ahead", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	const char *mode;
	int o, rc;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((o = getopt_long(argc, argv, "h:p:A:t:n:s:q:w:c:", lo, NULL)) != -1) {
		switch (o) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = (int)num(optarg, "--port"); break;
		case 'A': opt.cafile = optarg; break;
		case 't': opt.topic = optarg; break;
		case 'n': opt.n = num(optarg, "-n"); break;
		case 's': opt.size = num(optarg, "--size"); break;
		case 'q': opt.qos = (int)num(optarg, "--qos"); break;
		case 'w': opt.window = num(optarg, "--window"); break;
		case 'c': opt.conns = num(optarg, "--conns"); break;
		case 'S': opt.sources = num(optarg, "--sources"); break;
		case 'T': opt.threads = num(optarg, "--threads"); break;
		case 'P': opt.pending = num(optarg, "--pending"); break;
		case 'H': opt.hold = num(optarg, "--hold"); break;
		case 'O': opt.timeout = num(optarg, "--timeout"); break;
		case 'I': opt.idle_end = num(optarg, "--idle-end"); break;
		case 'K': opt.persistent = true; break;
		case 'a': opt.ahead = num(optarg, "--ahead"); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 || !opt.cafile)
		usage();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = gnutls_global_init()) < 0 || (rc = gnutls_certificate_allocate_credentials(&xcred)) < 0)
		die("gnutls: %s", gnutls_strerror(rc));
	if ((rc = gnutls_certificate_set_x509_trust_file(xcred, opt.cafile, GNUTLS_X509_FMT_PEM)) <= 0)
		die("--cafile %s: %s", opt.cafile, rc < 0 ? gnutls_strerror(rc) : "no certificate");
	if (strcmp(mode, "pubsub") == 0)
		rc = run_pubsub();
	else if (strcmp(mode, "idle") == 0)
		rc = run_idle();
	else
		usage();
	gnutls_certificate_free_credentials(xcred);
	gnutls_global_deinit();
	return rc;
}
