/* bench_bridge_client: MQTT-over-TLS load client for bench/bench_bridge.sh.
 *
 *   bench_bridge_client --pub HOST:PORT --sub HOST:PORT --cafile CA
 *                       [-n N] [-s SIZE] [-w WINDOW] [--topic T] [--persistent]
 *                       [--timeout S] [--idle-end S] [--qos 0|1]
 *
 * Publishes at one broker and subscribes at another: the subscriber
 * connects first (MQTT 3.1.1, QoS 1 subscription to the topic; clean
 * session, or with --persistent a persistent session, so the receiving
 * broker must keep each publication for it), then the publisher sends N
 * messages of SIZE bytes at QoS 1, keeping at most WINDOW without PUBACK.
 * With --qos 0 the publications and the subscription are at QoS 0 and the
 * publisher writes as fast as TLS takes them (no window).
 * Each payload starts with its sequence number (8 bytes, big-endian), so
 * the subscriber counts what was received, duplicated and lost (never
 * arrived: after the publisher has all its PUBACKs, the subscriber waits
 * until nothing new has come for --idle-end seconds).  Publisher and
 * subscriber run in their own threads with non-blocking GnuTLS sockets.
 *
 * The clock runs from the first publish to the last new message received.
 * Output: one "RESULT key=value ..." line on stdout; exit status 1 when
 * something was lost, duplicated or failed.  Both TLS connections verify
 * the broker's certificate against CA and HOST (an IP SAN). */
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "chand/mqtt_codec.h"

#define SEQ_LEN 8
#define CHUNK 16384           /* bytes per gnutls_record_send */
#define PING_EVERY 60.0       /* seconds; keepalive is 300 */

struct endpoint {
	char host[64];
	int port;
};

static struct {
	struct endpoint pub, sub;
	const char *cafile, *topic;
	long n, size, window, timeout, idle_end;
	int qos;
	bool persistent;
} opt = {
	.topic = "bench/bridge", .n = 100000, .size = 1024, .window = 100, .timeout = 300,
	.idle_end = 10, .qos = 1,
};

static gnutls_certificate_credentials_t xcred;
static volatile sig_atomic_t stop_flag;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench_bridge_client: ", stderr);
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

/* ---- one MQTT-over-TLS connection ---- */

struct conn {
	const char *who;      /* "publisher" / "subscriber", for messages */
	int fd;
	gnutls_session_t s;
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct mqtt_wbuf out;
	size_t off;           /* bytes of out already sent */
	size_t again_len;     /* >0: a record_send of that many bytes returned AGAIN */
	double last_send;
};

/* Sends what is queued: 1 all sent, 0 would block; dies on errors. */
static int conn_flush(struct conn *c)
{
	while (c->off < c->out.len) {
		ssize_t n;

		if (c->again_len) {
			n = gnutls_record_send(c->s, NULL, 0);
		} else {
			size_t len = c->out.len - c->off;

			c->again_len = len > CHUNK ? CHUNK : len;
			n = gnutls_record_send(c->s, c->out.p + c->off, c->again_len);
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 0;
		c->again_len = 0;
		if (n < 0)
			die("%s: send: %s", c->who, gnutls_strerror((int)n));
		c->off += (size_t)n;
		c->last_send = now_s();
	}
	c->out.len = c->off = 0;
	return 1;
}

/* Reads what TLS has now (non-blocking); dies if the broker closed. */
static void conn_fill(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->rcap - c->rlen < CHUNK) {
			size_t cap = c->rcap ? c->rcap * 2 : 4 * CHUNK;
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
			return;
		if (n == 0)
			die("%s: the broker closed the connection", c->who);
		die("%s: recv: %s", c->who, gnutls_strerror((int)n));
	}
}

/* Next whole packet at *pos in rbuf: true with pkt (views into rbuf,
 * valid until conn_consume), false when more bytes are needed. */
static bool conn_next(struct conn *c, size_t *pos, struct mqtt_packet *pkt)
{
	uint8_t tf;
	uint32_t rem;
	size_t hl;
	struct mqtt_error err;
	int rc = mqtt_fixed_header(c->rbuf + *pos, c->rlen - *pos, &tf, &rem, &hl);

	if (rc == MQTT_NEED_MORE)
		return false;
	if (rc != MQTT_OK)
		die("%s: malformed fixed header from the broker", c->who);
	if (c->rlen - *pos < hl + rem)
		return false;
	if (mqtt_decode_ex(c->rbuf + *pos, hl + rem, MQTT_V311, MQTT_DEC_CLIENT, pkt, &err) != 0)
		die("%s: bad packet from the broker: %s", c->who, err.text);
	*pos += hl + rem;
	return true;
}

static void conn_consume(struct conn *c, size_t pos)
{
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
}

/* Waits for the socket (POLLIN, plus POLLOUT while output is queued) at
 * most ms, unless TLS already holds decrypted bytes. */
static void conn_wait(struct conn *c, int ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (c->out.len)
		p.events |= POLLOUT;
	if (gnutls_record_check_pending(c->s) == 0)
		(void)poll(&p, 1, ms);
}

static void queue_ack(struct conn *c, enum mqtt_ptype type, uint16_t pid)
{
	if (mqtt_encode_ack(&c->out, MQTT_V311, type, pid, 0, NULL) != 0)
		die("encode %s: %s", mqtt_ptype_name(type), strerror(errno));
}

/* Keeps an idle connection alive (keepalive 300 s). */
static void conn_ping(struct conn *c)
{
	if (c->out.len == 0 && now_s() - c->last_send > PING_EVERY && mqtt_encode_pingreq(&c->out) != 0)
		die("encode PINGREQ: %s", strerror(errno));
}

/* TCP, TLS handshake, CONNECT/CONNACK, blocking with a 30 s limit; then
 * the socket becomes non-blocking.  Returns whether a session was present. */
static bool conn_open(struct conn *c, const char *who, const struct endpoint *ep,
                      const char *client_id, bool clean)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ep->port) };
	struct timeval tv = { .tv_sec = 30 };
	struct mqtt_connect cn = {
		.version = MQTT_V311, .clean = clean, .keepalive = 300,
		.client_id = { (const uint8_t *)client_id, strlen(client_id) },
	};
	struct mqtt_packet pkt;
	size_t pos = 0;
	int one = 1, rc;
	double deadline = now_s() + 30;

	memset(c, 0, sizeof *c);
	c->who = who;
	mqtt_wbuf_init(&c->out);
	if (inet_pton(AF_INET, ep->host, &dst.sin_addr) != 1)
		die("%s: %s is not an IPv4 address", who, ep->host);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0)
		die("%s: connect to %s:%d: %s", who, ep->host, ep->port, strerror(errno));
	if ((rc = gnutls_init(&c->s, GNUTLS_CLIENT)) < 0 ||
	    (rc = gnutls_set_default_priority(c->s)) < 0 ||
	    (rc = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, xcred)) < 0)
		die("gnutls: %s", gnutls_strerror(rc));
	/* The broker's certificate must name the address (IP SAN). */
	gnutls_session_set_verify_cert(c->s, ep->host, 0);
	gnutls_transport_set_int(c->s, c->fd);
	gnutls_handshake_set_timeout(c->s, 30000);
	do
		rc = gnutls_handshake(c->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		die("%s: TLS handshake with %s:%d: %s", who, ep->host, ep->port, gnutls_strerror(rc));
	if (mqtt_encode_connect(&c->out, &cn) != 0)
		die("encode CONNECT: %s", strerror(errno));
	while (conn_flush(c) == 0)
		;
	for (;;) {
		ssize_t n;

		if (c->rcap - c->rlen < CHUNK) {
			c->rbuf = realloc(c->rbuf, c->rcap + 4 * CHUNK);
			if (!c->rbuf)
				die("out of memory");
			c->rcap += 4 * CHUNK;
		}
		n = gnutls_record_recv(c->s, c->rbuf + c->rlen, c->rcap - c->rlen);
		/* AGAIN also follows a TLS 1.3 session ticket, not only the
		 * socket's receive timeout. */
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (now_s() > deadline)
				die("%s: no CONNACK from %s:%d in 30 s", who, ep->host, ep->port);
			continue;
		}
		if (n <= 0)
			die("%s: waiting for CONNACK: %s", who, n ? gnutls_strerror((int)n) : "closed");
		c->rlen += (size_t)n;
		if (conn_next(c, &pos, &pkt))
			break;
	}
	if (pkt.type != MQTT_CONNACK || pkt.u.connack.reason != 0)
		die("%s: CONNECT refused (%s, code %d)", who, mqtt_ptype_name(pkt.type),
		    pkt.u.connack.reason);
	{
		bool present = pkt.u.connack.session_present;

		conn_consume(c, pos);
		if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
			die("fcntl: %s", strerror(errno));
		return present;
	}
}

static void conn_close(struct conn *c)
{
	if (mqtt_encode_disconnect(&c->out, MQTT_V311, 0, NULL) == 0)
		(void)conn_flush(c);
	gnutls_deinit(c->s);
	close(c->fd);
	free(c->rbuf);
	mqtt_wbuf_free(&c->out);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

/* ---- shared state of the two threads ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool subscribed, pub_done, sub_done;
	double t0, t_last;    /* first publish, last new message received */
	long got, dup, bad;
} st = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void st_set(bool *flag)
{
	pthread_mutex_lock(&st.mu);
	*flag = true;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static uint8_t *seen;         /* one byte per sequence number */
static long first_lost = -1, last_lost = -1;

static void *subscriber(void *arg)
{
	struct conn *c = arg;
	struct mqtt_sub_entry e = { .filter = { (const uint8_t *)opt.topic, strlen(opt.topic) },
		                    .qos = (uint8_t)opt.qos };
	double quiet_from = 0, deadline = now_s() + (double)opt.timeout + 30;

	if (mqtt_encode_subscribe(&c->out, MQTT_V311, 1, &e, 1, NULL) != 0)
		die("encode SUBSCRIBE: %s", strerror(errno));
	for (;;) {
		struct mqtt_packet pkt;
		size_t pos = 0;
		double t;
		bool done, all;

		(void)conn_flush(c);
		conn_wait(c, 100);
		conn_fill(c);
		t = now_s();
		while (conn_next(c, &pos, &pkt)) {
			const struct mqtt_publish *m = &pkt.u.publish;
			uint64_t seq = 0;

			switch (pkt.type) {
			case MQTT_SUBACK:
				if (pkt.u.suback.codes.len != 1 || pkt.u.suback.codes.p[0] != opt.qos)
					die("subscriber: SUBACK granted 0x%02x, not QoS %d",
					    pkt.u.suback.codes.len ? pkt.u.suback.codes.p[0] : 0xff, opt.qos);
				st_set(&st.subscribed);
				break;
			case MQTT_PUBLISH:
				if (m->qos == 1)
					queue_ack(c, MQTT_PUBACK, m->pid);
				else if (m->qos == 2)
					queue_ack(c, MQTT_PUBREC, m->pid);
				for (size_t i = 0; i < SEQ_LEN && i < m->payload.len; i++)
					seq = seq << 8 | m->payload.p[i];
				pthread_mutex_lock(&st.mu);
				if (m->payload.len != (size_t)opt.size || seq >= (uint64_t)opt.n) {
					st.bad++;
				} else if (seen[seq]) {
					st.dup++;
				} else {
					seen[seq] = 1;
					st.got++;
					st.t_last = t;
				}
				pthread_mutex_unlock(&st.mu);
				break;
			case MQTT_PUBREL:
				queue_ack(c, MQTT_PUBCOMP, pkt.u.ack.pid);
				break;
			case MQTT_PINGRESP:
				break;
			default:
				die("subscriber: unexpected %s", mqtt_ptype_name(pkt.type));
			}
		}
		conn_consume(c, pos);
		conn_ping(c);
		pthread_mutex_lock(&st.mu);
		done = st.pub_done;
		all = st.got >= opt.n;
		if (done && !quiet_from)
			quiet_from = t;
		/* Quiet: nothing new since the publisher finished, or since the
		 * last new message if that came later. */
		if (done && t - (st.t_last > quiet_from ? st.t_last : quiet_from) > (double)opt.idle_end)
			all = true;
		pthread_mutex_unlock(&st.mu);
		if (all || stop_flag)
			break;
		if (t > deadline) {
			fprintf(stderr, "bench_bridge_client: subscriber: timed out after %ld s\n",
			        opt.timeout);
			break;
		}
	}
	/* The last PUBACKs, so that the broker does not redeliver. */
	for (int i = 0; i < 50 && conn_flush(c) == 0; i++)
		(void)poll(&(struct pollfd){ .fd = c->fd, .events = POLLOUT }, 1, 100);
	st_set(&st.sub_done);
	return NULL;
}

/* Publishes N messages at QoS 1 with at most WINDOW unacknowledged;
 * returns how many were acknowledged (at QoS 0: written to TLS). */
static long publish_all(struct conn *c)
{
	uint8_t *payload = malloc((size_t)opt.size), *inuse = calloc(65536, 1);
	long sent = 0, acked = 0, inflight = 0;
	uint16_t next_pid = 0;
	double deadline;

	if (!payload || !inuse)
		die("out of memory");
	memset(payload, 'x', (size_t)opt.size);
	pthread_mutex_lock(&st.mu);
	st.t0 = now_s();
	deadline = st.t0 + (double)opt.timeout;
	pthread_mutex_unlock(&st.mu);
	while (acked < opt.n || c->out.len) {
		struct mqtt_packet pkt;
		size_t pos = 0;

		while (sent < opt.n && inflight < opt.window && c->out.len < 4 * CHUNK) {
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
			} else {
				acked++;
			}
			if (mqtt_encode_publish(&c->out, MQTT_V311, &m) != 0)
				die("encode PUBLISH: %s", strerror(errno));
			sent++;
		}
		(void)conn_flush(c);
		/* Block only when the window is full or all is sent. */
		conn_wait(c, c->out.len || sent >= opt.n || inflight >= opt.window ? 100 : 0);
		conn_fill(c);
		while (conn_next(c, &pos, &pkt)) {
			if (pkt.type == MQTT_PUBACK && inuse[pkt.u.ack.pid]) {
				inuse[pkt.u.ack.pid] = 0;
				inflight--;
				acked++;
			} else if (pkt.type != MQTT_PINGRESP) {
				die("publisher: unexpected %s (packet id %u)", mqtt_ptype_name(pkt.type),
				    pkt.u.ack.pid);
			}
		}
		conn_consume(c, pos);
		conn_ping(c);
		if (stop_flag)
			break;
		if (now_s() > deadline) {
			fprintf(stderr, "bench_bridge_client: publisher: timed out after %ld s with %ld of "
			        "%ld acknowledged\n", opt.timeout, acked, opt.n);
			break;
		}
	}
	free(payload);
	free(inuse);
	return acked;
}

static void parse_endpoint(const char *s, struct endpoint *ep, const char *what)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof ep->host || colon == s)
		die("%s: want HOST:PORT, not %s", what, s);
	memcpy(ep->host, s, (size_t)(colon - s));
	ep->host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 1 || port > 65535)
		die("%s: bad port in %s", what, s);
	ep->port = (int)port;
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

static void usage(void)
{
	fputs("usage: bench_bridge_client --pub HOST:PORT --sub HOST:PORT --cafile CA\n"
	      "         [-n N] [-s SIZE] [-w WINDOW] [--topic T] [--persistent]\n"
	      "         [--timeout S] [--idle-end S] [--qos 0|1]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pub", required_argument, NULL, 'P' }, { "sub", required_argument, NULL, 'S' },
		{ "cafile", required_argument, NULL, 'A' }, { "topic", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' }, { "timeout", required_argument, NULL, 'O' },
		{ "idle-end", required_argument, NULL, 'I' }, { "qos", required_argument, NULL, 'q' },
		{ "persistent", no_argument, NULL, 'K' }, { NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	bool have_pub = false, have_sub = false, failed;
	struct conn sub, pub;
	char sub_id[64], pub_id[64];
	const char *ver, *cipher;
	pthread_t th;
	long acked;
	double el, t_pub;
	int o, rc;

	while ((o = getopt_long(argc, argv, "t:n:s:w:", lo, NULL)) != -1) {
		switch (o) {
		case 'P': parse_endpoint(optarg, &opt.pub, "--pub"); have_pub = true; break;
		case 'S': parse_endpoint(optarg, &opt.sub, "--sub"); have_sub = true; break;
		case 'A': opt.cafile = optarg; break;
		case 't': opt.topic = optarg; break;
		case 'n': opt.n = num(optarg, "-n"); break;
		case 's': opt.size = num(optarg, "--size"); break;
		case 'w': opt.window = num(optarg, "--window"); break;
		case 'O': opt.timeout = num(optarg, "--timeout"); break;
		case 'I': opt.idle_end = num(optarg, "--idle-end"); break;
		case 'K': opt.persistent = true; break;
		case 'q': opt.qos = (int)num(optarg, "--qos"); break;
		default: usage();
		}
	}
	if (optind != argc || !have_pub || !have_sub || !opt.cafile)
		usage();
	if (opt.size < SEQ_LEN || opt.n < 1 || opt.window < 1 || opt.window > 65535 ||
	    opt.timeout < 1 || opt.idle_end < 1 || (opt.qos != 0 && opt.qos != 1))
		die("need --size >= %d, -n >= 1, -w 1..65535, --timeout and --idle-end >= 1, "
		    "--qos 0 or 1", SEQ_LEN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = gnutls_global_init()) < 0 || (rc = gnutls_certificate_allocate_credentials(&xcred)) < 0)
		die("gnutls: %s", gnutls_strerror(rc));
	if ((rc = gnutls_certificate_set_x509_trust_file(xcred, opt.cafile, GNUTLS_X509_FMT_PEM)) <= 0)
		die("--cafile %s: %s", opt.cafile, rc < 0 ? gnutls_strerror(rc) : "no certificate");
	seen = calloc((size_t)opt.n, 1);
	if (!seen)
		die("out of memory");

	snprintf(sub_id, sizeof sub_id, "bridge-sub-%ld", (long)getpid());
	snprintf(pub_id, sizeof pub_id, "bridge-pub-%ld", (long)getpid());
	conn_open(&sub, "subscriber", &opt.sub, sub_id, !opt.persistent);
	conn_open(&pub, "publisher", &opt.pub, pub_id, true);
	ver = gnutls_protocol_get_name(gnutls_protocol_get_version(pub.s));
	cipher = gnutls_cipher_get_name(gnutls_cipher_get(pub.s));
	if (pthread_create(&th, NULL, subscriber, &sub) != 0)
		die("pthread_create failed");
	pthread_mutex_lock(&st.mu);
	while (!st.subscribed && !st.sub_done)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);

	acked = publish_all(&pub);
	pthread_mutex_lock(&st.mu);
	t_pub = now_s() - st.t0;
	pthread_mutex_unlock(&st.mu);
	st_set(&st.pub_done);
	pthread_join(th, NULL);
	conn_close(&pub);
	conn_close(&sub);
	if (opt.persistent) {
		/* A clean CONNECT discards the session: none is left behind to
		 * collect the next run's messages. */
		conn_open(&sub, "subscriber", &opt.sub, sub_id, true);
		conn_close(&sub);
	}

	for (long i = 0; i < opt.n; i++)
		if (!seen[i]) {
			if (first_lost < 0)
				first_lost = i;
			last_lost = i;
		}
	el = st.t_last - st.t0;
	if (el <= 0)
		el = 1e-9;
	printf("RESULT qos=%d n=%ld size=%ld window=%ld persistent=%d acked=%ld received=%ld lost=%ld "
	       "dup=%ld bad=%ld seconds=%.3f msgs_per_s=%.0f mb_per_s=%.2f pub_seconds=%.3f "
	       "first_lost=%ld last_lost=%ld tls=%s cipher=%s\n",
	       opt.qos, opt.n, opt.size, opt.window, opt.persistent, acked, st.got, opt.n - st.got, st.dup,
	       st.bad, el, (double)st.got / el, (double)st.got * (double)opt.size / el / 1e6, t_pub,
	       first_lost, last_lost, ver ? ver : "?", cipher ? cipher : "?");
	fflush(stdout);
	failed = acked != opt.n || st.got != opt.n || st.dup || st.bad;
	free(seen);
	gnutls_certificate_free_credentials(xcred);
	gnutls_global_deinit();
	return failed ? 1 : 0;
}
