/* The responder's side of a connection: a thread per accepted socket runs
 * the TLS server handshake (the channel's settings are found by the name
 * in SNI), waits for INIT, runs the checks of doc/PROTOCOL.md 5.1 in
 * their order, answers INIT_ACK, and then becomes the channel's instance
 * (or serves a ping session). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chan_int.h"
#include "chand/cipherspec.h"
#include "chand/log.h"
#include "chand/srclimit.h"

/* An accepted socket that sends nothing is closed after this, whatever
 * tls.handshake_timeout says: an initiator sends its hello (or INIT)
 * at once, a port scanner or a flood never does. */
#define CHAN_FIRST_BYTE_MS 5000
/* ... and its whole ClientHello (at most 16 KiB: 2 s even at 64 kbit/s)
 * within this of the accept, again capped by tls.handshake_timeout. */
#define CHAN_HELLO_MS 10000
/* Connections one source address (an IPv6 /64) may hold before they have
 * been admitted (INIT_ACK sent): room for a host that starts many
 * channels and pings at once, not for a flood. */
#define CHAN_SRC_PENDING_MAX 32
/* The refusals of one source are logged at most once per this. */
#define CHAN_SRC_LOG_MS 60000
/* First byte of a TLS handshake record; a ClientHello is one record of at
 * most 2^14 bytes (RFC 8446 5.1). */
#define TLS_REC_HANDSHAKE 0x16
#define TLS_REC_HDR 5
#define TLS_REC_MAX 16384

struct inb {
	int fd;
	char addr[80];
	struct sockaddr_storage peer;
	bool src_counted;                       /* holds a srclimit count */
	int64_t accepted_mono;
	char sni_channel[CHAND_NAME_MAX + 1];   /* what the handshake asked for */
};

/* The connection was admitted (or is ending): it no longer counts
 * against its source's cap. */
static void inb_admitted(struct inb *ib)
{
	if (ib->src_counted) {
		srclimit_leave(&ib->peer);
		ib->src_counted = false;
	}
}

/* A refusal of an unauthenticated connection, logged at most once per
 * CHAN_SRC_LOG_MS per source with the count of those not logged. */
static void inb_log_refusal(const struct sockaddr_storage *peer, enum chd_code_id code,
                            const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void inb_log_refusal(const struct sockaddr_storage *peer, enum chd_code_id code,
                            const char *fmt, ...)
{
	char text[320], more[128] = "";
	unsigned suppressed = 0;
	va_list ap;

	if (!srclimit_log_allow(peer, CHAN_SRC_LOG_MS, &suppressed))
		return;
	va_start(ap, fmt);
	code_vset(NULL, code, text, sizeof(text), fmt, ap);
	va_end(ap);
	if (suppressed > 0) {
		char src[64];
		srclimit_source_str(peer, src, sizeof(src));
		snprintf(more, sizeof(more), " (%u more refusals of %s not logged in the last %d s)",
		         suppressed, src, CHAN_SRC_LOG_MS / 1000);
	}
	log_warn(code_str(code), "%s%s", text, more);
}

static int inb_lookup(void *arg, const char *channel, struct tls_params *out)
{
	struct inb *ib = arg;
	struct chan_rt *rt;
	int rc = -1;

	str_copy(ib->sni_channel, channel, sizeof(ib->sni_channel));
	pthread_mutex_lock(&chan_sup.mtx);
	rt = chan_rt_find(channel);
	if (rt != NULL) {
		chan_params_of(&rt->def, out);
		rc = 0;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return rc;
}

/* A refusal: logged, recorded in the channel's status (unless an
 * instance of it runs), sent as ERROR, and the session ends. */
static void refuse(struct chan_sess *s, const char *channel, enum chd_code_id code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct chan_sess *s, const char *channel, enum chd_code_id code,
                   const char *fmt, ...)
{
	va_list ap;
	char text[640];
	struct chan_rt *rt;

	va_start(ap, fmt);
	code_vset(NULL, code, text, sizeof(text), fmt, ap);
	va_end(ap);
	chan_fail(s, code, "%s", text);
	/* Over plain TCP the peer proved nothing about itself: it hears
	 * that it was refused, not which channels exist or how they are set
	 * (the log and the status keep the detail).  A version mismatch
	 * says nothing of the configuration and helps an upgrade. */
	if (!s->encrypted && code != CHD_CH_VERSION)
		chan_send_error(s, CHD_CH_REFUSED_PLAIN, "refused by the responder; over plain TCP "
		                "it gives the reason only in its own log");
	else
		chan_send_error(s, code, text);
	log_warn(code_str(code), "channel=%s peer=%s refused%s: %s", channel[0] ? channel : "?",
	         s->peer_addr, s->encrypted ? "" : " (plain TCP: the peer was told only CHD5030)",
	         text);
	pthread_mutex_lock(&chan_sup.mtx);
	rt = channel[0] ? chan_rt_find(channel) : NULL;
	if (rt != NULL && rt->conn == NULL) {
		str_copy(rt->st.last_error_code, code_str(code), sizeof(rt->st.last_error_code));
		str_copy(rt->st.last_error, text, sizeof(rt->st.last_error));
	}
	pthread_mutex_unlock(&chan_sup.mtx);
}

/* Claims the channel's instance for this connection: an old instance is
 * ended first (its connection broke without either side noticing).
 * 0, or -1 after a refusal. */
static int claim(struct chan_sess *s, const char *name)
{
	int64_t deadline = time_mono_ms() + CHAN_T_NEGO_MS;
	struct chan_rt *rt;

	pthread_mutex_lock(&chan_sup.mtx);
	for (;;) {
		rt = chan_rt_find(name);
		if (rt == NULL)
			break;
		if (rt->conn == NULL && !rt->launching)
			break;
		if (rt->conn != NULL && rt->conn->stop == STOP_NONE) {
			rt->conn->stop = STOP_FORCE;
			chan_conn_set_why(rt->conn, "replaced");
			chan_conn_wake(rt->conn);
			log_info(code_str(CHD_CH_REPLACED), "channel=%s peer=%s a new connection replaces the running instance",
			         name, s->peer_addr);
		}
		int64_t left = deadline - time_mono_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&chan_sup.mtx);
			refuse(s, name, CHD_CH_PROTOCOL, "channel %s is still running at %s", name,
			       chan_sup.host.qmgr);
			return -1;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&chan_sup.cond, &chan_sup.mtx, &ts);
	}
	if (rt == NULL || rt->stopped) {
		pthread_mutex_unlock(&chan_sup.mtx);
		if (rt == NULL)
			refuse(s, name, CHD_CH_UNKNOWN, "channel %s is not defined at %s", name,
			       chan_sup.host.qmgr);
		else
			refuse(s, name, CHD_CH_STOPPED, "channel %s is STOPPED at %s (start channel %s "
			       "there)", name, chan_sup.host.qmgr, name);
		return -1;
	}
	rt->conn = s->conn;
	s->conn->rt = rt;
	s->rt = rt;
	s->def = rt->def;
	rt->retry_at_mono = 0;
	rt->failures = 0;
	rt->st.retries_left = -1;
	rt->st.next_retry_ms = 0;
	rt->st.state = CHS_BINDING;
	str_copy(rt->st.substate, "RESYNCHING", sizeof(rt->st.substate));
	pthread_mutex_unlock(&chan_sup.mtx);
	return 0;
}

static int count_in(struct chan_sess *s, const char *name)
{
	long max = chan_sup.host.max_channels;
	bool ok;

	pthread_mutex_lock(&chan_sup.mtx);
	ok = max <= 0 || chan_sup.ncounted < max;
	if (ok) {
		chan_sup.ncounted++;
		s->conn->counted = true;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (!ok)
		refuse(s, name, CHD_CH_MAXCHANNELS, "channel %s refused: %s runs limits.max_channels "
		       "(%ld) channels already", name, chan_sup.host.qmgr, max);
	return ok ? 0 : -1;
}

/* Handshakes are the one CPU-heavy step an unauthenticated peer can make
 * us take (RSA-2048: ~2-4 ms of CPU each).  A storm of initiators would
 * otherwise run them all at once and starve the admin socket and the
 * running channels on a small machine, so at most HS_PER_CPU per CPU run
 * at a time; the rest wait, within their own handshake deadline. */
#define HS_PER_CPU 4
#define HS_MIN 8

static sem_t hs_sem;
static pthread_once_t hs_once = PTHREAD_ONCE_INIT;

static void hs_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	long slots = (n > 0 ? n : 1) * HS_PER_CPU;

	if (sem_init(&hs_sem, 0, (unsigned)(slots < HS_MIN ? HS_MIN : slots)) != 0)
		fatalx("sem_init: %s", strerror(errno));
}

/* Takes a handshake slot: 0, or -1 when the deadline passed or the
 * session was told to stop (its wake fd became readable). */
static int hs_acquire(int wake_fd, int timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;

	pthread_once(&hs_once, hs_init);
	for (;;) {
		struct timespec ts;
		struct pollfd pf = { .fd = wake_fd, .events = POLLIN };
		int64_t left = deadline - time_mono_ms();

		if (sem_trywait(&hs_sem) == 0)
			return 0;
		if (left <= 0 || (wake_fd >= 0 && poll(&pf, 1, 0) > 0))
			return -1;
		/* Short slices so a stop is noticed quickly. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (left < 100 ? left : 100) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (sem_timedwait(&hs_sem, &ts) == 0)
			return 0;
	}
}

enum inb_wait { HELLO_OK = 0, HELLO_CLOSED = -1, HELLO_TIMEOUT = -2, HELLO_STOP = -3 };

/* Waits, without a handshake slot, until the peer has sent what the next
 * step needs: a first byte by first_deadline; when that byte starts a
 * TLS handshake record, the whole record (the ClientHello) by deadline.
 * A plain-TCP peer's first byte is enough (no handshake follows).  The
 * data stays in the socket for tls_server_open.  *got: bytes seen,
 * *need: bytes the hello needs (for the log). */
static enum inb_wait inb_wait_hello(int fd, int wake_fd, int64_t first_deadline,
                                    int64_t deadline, size_t *got, size_t *need)
{
	enum inb_wait rc;
	int lowat = 1;
	bool sleepy = false;      /* poll ignores SO_RCVLOWAT here: sleep in slices */
	bool was_ready = false;   /* the last poll said the socket was readable */
	bool eof = false;         /* the peer will send nothing more */
	size_t seen = 0;

	*got = 0;
	*need = 1;
	for (;;) {
		unsigned char hdr[TLS_REC_HDR];
		ssize_t n = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
		int avail = 0;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			rc = HELLO_CLOSED;
			break;
		}
		if (n > 0) {
			if (hdr[0] != TLS_REC_HANDSHAKE) {
				rc = HELLO_OK;
				break;
			}
			*need = TLS_REC_HDR;
			if (n == TLS_REC_HDR) {
				size_t len = (size_t)hdr[3] << 8 | hdr[4];
				/* not a hello GnuTLS would take: let it refuse it now */
				if (len == 0 || len > TLS_REC_MAX) {
					rc = HELLO_OK;
					break;
				}
				*need = TLS_REC_HDR + len;
			}
			if (ioctl(fd, FIONREAD, &avail) != 0 || avail < (int)n)
				avail = (int)n;
			*got = (size_t)avail;
			if (*got >= *need) {
				rc = HELLO_OK;
				break;
			}
		}
		if (eof) {
			rc = HELLO_CLOSED;
			break;
		}
		int64_t left = (*got == 0 ? first_deadline : deadline) - time_mono_ms();
		if (left <= 0) {
			rc = HELLO_TIMEOUT;
			break;
		}
		if (was_ready && *got == seen)
			sleepy = true;
		seen = *got;
		/* poll() says readable only once SO_RCVLOWAT bytes are queued,
		 * so a half-sent hello sleeps here instead of spinning */
		int want = (int)*need;
		if (!sleepy && want != lowat &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0)
			lowat = want;
		struct pollfd pf[2] = {
			{ .fd = wake_fd, .events = POLLIN },
			{ .fd = fd, .events = POLLIN | POLLRDHUP },
		};
		int slice = (int)(left < 1000 ? left : 1000);
		int pr = poll(pf, sleepy ? 1 : 2, sleepy && slice > 50 ? 50 : slice);
		if (pr < 0 && errno != EINTR) {
			rc = HELLO_CLOSED;
			break;
		}
		if ((pf[0].revents & POLLIN) != 0) {
			rc = HELLO_STOP;
			break;
		}
		was_ready = (pf[1].revents & POLLIN) != 0;
		eof = (pf[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
	}
	if (lowat != 1) {
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	}
	return rc;
}

static void run_inbound(struct chan_sess *s, struct inb *ib)
{
	struct tls_error err = { 0 };
	struct tls_ctx *ctx;
	struct frame f;
	struct frame_init in;
	struct frame_init_ack ack;
	struct frame_params fp;
	struct chan_def d;
	const struct tls_error *refusal;
	enum chd_code_id code;
	char why[512], name[CHAND_NAME_MAX + 1];
	const char *sni;
	bool defined;
	int rd;
	int hs_ms = chan_sup.host.handshake_timeout_ms;
	int first_ms = hs_ms < CHAN_FIRST_BYTE_MS ? hs_ms : CHAN_FIRST_BYTE_MS;
	int hello_ms = hs_ms < CHAN_HELLO_MS ? hs_ms : CHAN_HELLO_MS;
	int64_t deadline = ib->accepted_mono + hs_ms;
	size_t got, need;

	/* No slot until the hello is here: silent or half-sent hellos must
	 * not keep the slots from real initiators. */
	switch (inb_wait_hello(ib->fd, s->conn->wake_fd, ib->accepted_mono + first_ms,
	                       ib->accepted_mono + hello_ms, &got, &need)) {
	case HELLO_OK:
		break;
	case HELLO_TIMEOUT:
		if (got == 0)
			inb_log_refusal(&ib->peer, CHD_TLS_TIMEOUT, "channel=? peer=%s closed: the "
			                "initiator sent nothing within %d ms", s->peer_addr, first_ms);
		else
			inb_log_refusal(&ib->peer, CHD_TLS_TIMEOUT, "channel=? peer=%s closed: the "
			                "initiator sent %zu of the %zu bytes of its TLS hello within %d ms",
			                s->peer_addr, got, need, hello_ms);
		close(ib->fd);
		return;
	case HELLO_CLOSED:
		/* a port probe or a health check: nothing to act on */
		log_debug("channel=? peer=%s closed by the peer before its hello (%zu bytes)",
		          s->peer_addr, got);
		close(ib->fd);
		return;
	case HELLO_STOP:
		close(ib->fd);
		return;
	}
	int64_t left = deadline - time_mono_ms();
	if (hs_acquire(s->conn->wake_fd, left > 0 ? (int)left : 0) != 0) {
		inb_log_refusal(&ib->peer, CHD_TLS_TIMEOUT, "channel=? peer=%s refused: no handshake "
		                "slot free within %d ms of the connection (too many handshakes in "
		                "progress)", s->peer_addr, hs_ms);
		close(ib->fd);
		return;
	}
	ctx = chan_sup.host.tls_get(chan_sup.host.arg);
	int hs = tls_server_open(&s->tc, ib->fd, ctx, inb_lookup, ib,
	                         chan_sup.host.handshake_timeout_ms, s->conn->wake_fd, &err);
	sem_post(&hs_sem);
	if (hs != 0) {
		s->tc = NULL;
		if (ctx != NULL)
			tls_ctx_unref(ctx);
		if (err.code == CHD_CH_STOP)
			return;
		chan_fail(s, err.code, "%s", err.text);
		log_warn(code_str(err.code), "channel=%s peer=%s refused: %s",
		         ib->sni_channel[0] ? ib->sni_channel : "?", s->peer_addr, err.text);
		pthread_mutex_lock(&chan_sup.mtx);
		struct chan_rt *rt = ib->sni_channel[0] ? chan_rt_find(ib->sni_channel) : NULL;
		if (rt != NULL && rt->conn == NULL) {
			str_copy(rt->st.last_error_code, code_str(err.code), sizeof(rt->st.last_error_code));
			str_copy(rt->st.last_error, err.text, sizeof(rt->st.last_error));
		}
		pthread_mutex_unlock(&chan_sup.mtx);
		return;
	}
	if (ctx != NULL)
		tls_ctx_unref(ctx);
	sni = tls_conn_channel(s->tc);
	s->encrypted = sni[0] != '\0';

	rd = chan_read_frame(s, CHAN_T_NEGO_MS, &f);
	if (rd == RD_TIMEOUT) {
		chan_fail(s, CHD_CH_HEARTBEAT, "no INIT within %d s", CHAN_T_NEGO_MS / 1000);
		log_warn(code_str(CHD_CH_HEARTBEAT), "channel=%s peer=%s %s", sni[0] ? sni : "?",
		         s->peer_addr, s->text);
		return;
	}
	if (rd != RD_FRAME) {
		if (s->end == END_ERROR)
			log_warn(code_str(s->code), "channel=%s peer=%s %s", sni[0] ? sni : "?",
			         s->peer_addr, s->text);
		return;
	}
	if (f.h.type != FRAME_INIT) {
		chan_unexpected(s, &f, "A_WAIT_INIT");
		log_warn(code_str(s->code), "channel=%s peer=%s %s", sni[0] ? sni : "?", s->peer_addr,
		         s->text);
		return;
	}
	in = f.u.init;
	str_copy(name, in.channel, sizeof(name));
	str_copy(s->peer_qmgr, in.qmgr, sizeof(s->peer_qmgr));

	/* checks in the order of PROTOCOL.md 5.1 */
	if (in.min_version > chan_sup.proto_max || in.max_version < FRAME_VERSION_MIN) {
		refuse(s, name, CHD_CH_VERSION, "protocol version mismatch: initiator speaks %u-%u, "
		       "responder %d-%d", in.min_version, in.max_version, FRAME_VERSION_MIN,
		       chan_sup.proto_max);
		return;
	}
	pthread_mutex_lock(&chan_sup.mtx);
	struct chan_rt *rt = chan_rt_find(name);
	defined = rt != NULL;
	if (defined)
		d = rt->def;
	pthread_mutex_unlock(&chan_sup.mtx);
	if (!defined) {
		refuse(s, name, CHD_CH_UNKNOWN, "channel %s is not defined at queue manager %s", name,
		       chan_sup.host.qmgr);
		return;
	}
	if (s->encrypted && strcmp(sni, name) != 0) {
		refuse(s, name, CHD_CH_PROTOCOL, "INIT names channel '%s' but the TLS handshake was for "
		       "channel '%s'", name, sni);
		return;
	}
	if (count_in(s, name) != 0)
		return;
	memset(&fp, 0, sizeof(fp));
	fp.channel = d.name;
	fp.chtype = d.type;
	fp.qmgr = chan_sup.host.qmgr;
	fp.batchsz = (uint32_t)d.batchsz;
	fp.maxmsgl = (uint32_t)d.maxmsgl;
	fp.hbint = (uint32_t)d.hbint;
	fp.seqwrap = (uint32_t)d.seqwrap;
	fp.max_version = (uint8_t)chan_sup.proto_max;
	if (!frame_negotiate(&in, &fp, &ack, &code, why, sizeof(why))) {
		refuse(s, name, code, "%s", why);
		return;
	}
	if (s->encrypted) {
		if ((refusal = tls_conn_refusal(s->tc)) != NULL) {
			refuse(s, name, refusal->code, "%s", refusal->text);
			return;
		}
		if (in.sslciph[0] == '\0' || d.sslciph[0] == '\0') {
			refuse(s, name, CHD_TLS_CIPHER, "CipherSpec mismatch: initiator '%s', responder "
			       "'%s' (channel %s)", in.sslciph[0] ? in.sslciph : "none (plain TCP)",
			       d.sslciph[0] ? d.sslciph : "none (plain TCP)", name);
			return;
		}
	} else if (in.sslciph[0] != '\0' || d.sslciph[0] != '\0') {
		refuse(s, name, CHD_TLS_CIPHER, "CipherSpec mismatch: initiator '%s' over plain TCP, "
		       "responder '%s' (channel %s)", in.sslciph[0] ? in.sslciph : "none (plain TCP)",
		       d.sslciph[0] ? d.sslciph : "none (plain TCP)", name);
		return;
	}
	s->def = d;
	if (!in.ping && claim(s, name) != 0)
		return;
	if (!s->encrypted)
		log_warn(code_str(CHD_TLS_PLAINTEXT), "channel=%s peer=%s channel not encrypted: "
		         "SSLCIPH is empty, messages travel in clear over plain TCP", name, s->peer_addr);

	str_copy(ack.sslciph, d.sslciph, sizeof(ack.sslciph));
	if (frame_encode_init_ack(&s->out, &s->w, &ack, NULL) != FRAME_OK) {
		chan_fail(s, CHD_CH_PROTOCOL, "cannot encode INIT_ACK");
		return;
	}
	s->batchsz = ack.batchsz;
	s->maxmsgl = ack.maxmsgl;
	s->hbint = ack.hbint;
	s->seqwrap = ack.seqwrap;
	if (chan_flush(s) != 0)
		return;
	inb_admitted(ib);
	s->w.version = ack.version;
	s->rversion = ack.version;
	s->max_payload = frame_max_payload(s->maxmsgl);
	if (in.ping) {
		chan_ping_respond(s);
		return;
	}
	frame_chtype_pair(in.chtype, d.type, &s->sending);
	s->sending = !s->sending; /* the responder sends when the initiator does not */
	chan_status_tls(s);
	if (s->sending)
		chan_run_sender(s);
	else
		chan_run_receiver(s);
}

static void *inbound_main(void *arg)
{
	struct inb *ib = arg;
	struct chan_conn *conn = chan_conn_new();
	struct chan_sess s;

	if (conn == NULL) {
		close(ib->fd);
		inb_admitted(ib);
		free(ib);
		chan_thread_done();
		return NULL;
	}
	chan_sess_init(&s, conn);
	str_copy(s.peer_addr, ib->addr, sizeof(s.peer_addr));
	s.owner = chan_sup.host.owner_id();
	run_inbound(&s, ib);
	inb_admitted(ib);
	if (s.rt != NULL) {
		chan_finish(&s);  /* frees the session and the connection */
	} else {
		if (s.end == END_ERROR && s.tc != NULL)
			chan_send_error(&s, s.code, s.text);
		chan_sess_free(&s);
		if (s.st != NULL)
			store_close(s.st);
		chan_conn_free(conn);
	}
	free(ib);
	chan_thread_done();
	return NULL;
}

void chan_sup_inbound(int fd, const struct sockaddr_storage *peer, socklen_t len)
{
	struct inb *ib;
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	(void)len;
	if (atomic_load(&chan_sup.stopping)) {
		close(fd);
		return;
	}
	/* a flood of connections must not become a flood of threads: the
	 * channels that may run, plus room for handshakes and pings */
	static struct ratelimit full_rl;   /* under chan_sup.mtx */
	unsigned more = 0;
	bool full, say = false;
	pthread_mutex_lock(&chan_sup.mtx);
	int nthreads = chan_sup.nthreads;
	full = nthreads >= (chan_sup.host.max_channels > 0 ? chan_sup.host.max_channels : 1000) +
	                   CHAN_INBOUND_SPARE;
	/* one line per interval: a flood must not become a log flood */
	if (full)
		say = ratelimit_allow(&full_rl, time_mono_ms(), CHAN_SRC_LOG_MS / 6, &more);
	pthread_mutex_unlock(&chan_sup.mtx);
	if (full) {
		if (say)
			log_warn(code_str(CHD_CH_MAXCHANNELS), "inbound connection closed at once: %d "
			         "connection threads already (%u more closed since the last such line)",
			         nthreads, more);
		close(fd);
		return;
	}
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	if (srclimit_enter(peer, CHAN_SRC_PENDING_MAX) != 0) {
		char src[64];
		srclimit_source_str(peer, src, sizeof(src));
		inb_log_refusal(peer, CHD_SRC_LIMIT, "peer=%s:%d inbound connection refused: %s "
		                "already holds %d connections that have not finished their handshake",
		                host, port, src, CHAN_SRC_PENDING_MAX);
		close(fd);
		return;
	}
	if ((ib = calloc(1, sizeof(*ib))) == NULL) {
		srclimit_leave(peer);
		close(fd);
		return;
	}
	ib->fd = fd;
	ib->peer = *peer;
	ib->src_counted = true;
	ib->accepted_mono = time_mono_ms();
	snprintf(ib->addr, sizeof(ib->addr), "%s:%d", host, port);
	chan_sock_opts(fd);
	if (chan_thread_spawn(inbound_main, ib) != 0) {
		log_warn(code_str(CHD_SYS_RESOURCE), "peer=%s inbound connection closed: cannot create a thread", ib->addr);
		close(fd);
		inb_admitted(ib);
		free(ib);
	}
}
