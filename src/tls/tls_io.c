/* Record I/O with deadlines for TLS and plain-TCP connections alike.
 *
 * Every socket is non-blocking and every wait is our own poll() on the
 * socket and the caller's cancel fd: GnuTLS's own timeouts only run while
 * GnuTLS code runs, so a silent peer would never trip them.  After AGAIN
 * GnuTLS needs the same buffer again (lib/record.c), so a send is only
 * advanced by what GnuTLS reports as sent. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/util.h"
#include "tls_int.h"

#define TLS_BYE_TIMEOUT_MS 1000
#define TLS_LINGER_MS 250

void tls_err_set(struct tls_error *err, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
}

/* Only the first refusal counts: it is the cause, later ones are effects. */
void tls_conn_fail(struct tls_conn *c, enum chd_code_id code, int alert, const char *fmt, ...)
{
	va_list ap;

	if (c->has_fail)
		return;
	c->has_fail = true;
	c->fail.code = code;
	c->fail_alert = alert;
	va_start(ap, fmt);
	vsnprintf(c->fail.text, sizeof c->fail.text, fmt, ap);
	va_end(ap);
}

int64_t tls_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return time_mono_ms() + timeout_ms;
}

/* Waits until the socket is ready for events. Returns 0 when ready, -2 when
 * the deadline passed (err untouched: the caller names what timed out), -1
 * with err on cancel or a poll failure. */
int tls_wait(const struct tls_conn *c, short events, int64_t deadline, struct tls_error *err)
{
	for (;;) {
		struct pollfd pf[2];
		nfds_t nfd = 1;
		int tmo = -1, n;

		if (deadline >= 0) {
			int64_t now = time_mono_ms();
			if (now >= deadline)
				return -2;
			tmo = deadline - now > 60000 ? 60000 : (int)(deadline - now);
		}
		pf[0].fd = c->fd;
		pf[0].events = events;
		pf[0].revents = 0;
		if (c->cancel_fd >= 0) {
			pf[1].fd = c->cancel_fd;
			pf[1].events = POLLIN;
			pf[1].revents = 0;
			nfd = 2;
		}
		n = poll(pf, nfd, tmo);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tls_err_set(err, CHD_CH_CLOSED, "poll: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			continue;
		if (nfd == 2 && pf[1].revents != 0) {
			tls_err_set(err, CHD_CH_STOP, "cancelled (channel stopping)");
			return -1;
		}
		if (pf[0].revents & POLLNVAL) {
			tls_err_set(err, CHD_CH_CLOSED, "socket is not open");
			return -1;
		}
		/* errors and hangups are reported by the read or write itself */
		if (pf[0].revents != 0)
			return 0;
	}
}

/* The code of a connection the kernel ended because the peer's host
 * stopped answering.  Not CH_HEARTBEAT: to the callers that code means a
 * deadline of theirs passed, and they read again. */
#define TLS_DEAD_PEER_CODE CHD_CH_CLOSED

/* errno e of a failed read or write: if the kernel gave up on the peer's
 * host (TCP_USER_TIMEOUT, keepalive or retransmissions: ETIMEDOUT, or the
 * ICMP error that came meanwhile), says so in plain words with the bound
 * (limits.dead_peer_timeout sets TCP_USER_TIMEOUT) and returns true. */
static bool io_dead_peer(const struct tls_conn *c, int e, struct tls_error *err)
{
	unsigned int ums = 0;
	socklen_t l = sizeof(ums);
	char last[96] = "";

	if (e != ETIMEDOUT && e != EHOSTUNREACH && e != ENETUNREACH)
		return false;
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ums, &l) != 0)
		ums = 0;
	if (e != ETIMEDOUT)
		snprintf(last, sizeof(last), " (last error: %s)", strerror(e));
	if (ums > 0)
		tls_err_set(err, TLS_DEAD_PEER_CODE, "no answer from the peer's host for %u s "
		            "(dead_peer_timeout): the link or the host is down%s", ums / 1000, last);
	else
		tls_err_set(err, TLS_DEAD_PEER_CODE, "no answer from the peer's host (TCP "
		            "retransmission or keepalive timeout): the link or the host is down%s",
		            last);
	return true;
}

/* io_dead_peer after a GnuTLS pull or push error.  errno after
 * gnutls_record_recv/send is not always the socket's, so when it does not
 * say, the socket does: the kernel closed the connection and nothing came
 * from the peer for the whole dead_peer_timeout -- the keepalive or user
 * timeout ended it. */
static bool io_gnutls_dead_peer(const struct tls_conn *c, int e, struct tls_error *err)
{
	struct tcp_info ti;
	unsigned int ums = 0;
	socklen_t l = sizeof(ums), tl = sizeof(ti);

	if (io_dead_peer(c, e, err))
		return true;
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ums, &l) != 0 || ums == 0)
		return false;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0 || ti.tcpi_state != TCP_CLOSE ||
	    ti.tcpi_last_data_recv < ums)
		return false;
	return io_dead_peer(c, ETIMEDOUT, err);
}

static short io_direction(const struct tls_conn *c)
{
	return gnutls_record_get_direction(c->s) == 1 ? POLLOUT : POLLIN;
}

/* ---- TLS 1.3 KeyUpdate ----
 * GnuTLS sends its answer to the peer's update_requested by itself before
 * our next record and tells us nothing of either: this hook counts the
 * KeyUpdates we send (ours and answers) and sees the peer's answer to
 * ours. It runs inside gnutls_record_send/recv on the calling thread. */
static int io_ku_hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
                      const gnutls_datum_t *msg)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);

	(void)when;
	(void)msg;
	if (c == NULL || htype != GNUTLS_HANDSHAKE_KEY_UPDATE)
		return 0;
	if (incoming)
		c->ku_asked = false; /* any KeyUpdate of the peer clears GnuTLS's flag too */
	else
		c->key_updates++;
	return 0;
}

/* Installed at the first record I/O: no KeyUpdate can come before. */
static void io_ku_arm(struct tls_conn *c)
{
	if (c->ku_hooked || !c->encrypted || c->s == NULL)
		return;
	gnutls_handshake_set_hook_function(c->s, GNUTLS_HANDSHAKE_KEY_UPDATE, GNUTLS_HOOK_POST,
	                                   io_ku_hook);
	c->ku_hooked = true;
}

/* Only the initiator asks: two requests that cross fail both ends
 * (GNUTLS_E_ILLEGAL_PARAMETER). One at a time, and not within
 * TLS_KEYUPDATE_MIN_INTERVAL_MS of the last: then the peer receives at
 * most two in any such interval, well below GnuTLS's 8 a second. */
static bool io_ku_due(const struct tls_conn *c)
{
	if (c->server || c->p.keyupdate_bytes == 0 || c->ku_asked ||
	    c->ku_bytes < c->p.keyupdate_bytes)
		return false;
	if (c->ku_last_ms != 0 && time_mono_ms() - c->ku_last_ms < TLS_KEYUPDATE_MIN_INTERVAL_MS)
		return false;
	return gnutls_protocol_get_version(c->s) == GNUTLS_TLS1_3;
}

/* gnutls_session_key_update(GNUTLS_KU_PEER) until sent. Encrypted TLS 1.3
 * conns only. 0, or -1 with err. */
static int io_key_update(struct tls_conn *c, int64_t deadline, int timeout_ms,
                         struct tls_error *err)
{
	io_ku_arm(c);
	for (;;) {
		/* GNUTLS_KU_PEER: the peer updates its sending keys too; it
		 * absorbs our KeyUpdate inside its next record_recv. */
		int r = gnutls_session_key_update(c->s, GNUTLS_KU_PEER);
		int w;

		if (r == 0) {
			c->ku_asked = true;
			c->ku_bytes = 0;
			c->ku_last_ms = time_mono_ms();
			return 0;
		}
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
			c->broken = true;
			tls_err_set(err, CHD_CH_CLOSED, "TLS key update failed: %s (%s)",
			            gnutls_strerror(r), gnutls_strerror_name(r));
			return -1;
		}
		w = tls_wait(c, io_direction(c), deadline, err);
		if (w == -2) {
			tls_err_set(err, CHD_CH_HEARTBEAT,
			            "peer not reading: key update not sent within %d ms", timeout_ms);
			return -1;
		}
		if (w < 0)
			return -1;
	}
}

static int io_send_plain(struct tls_conn *c, const uint8_t *p, size_t len, int64_t deadline,
                         int timeout_ms, struct tls_error *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, p + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int w = tls_wait(c, POLLOUT, deadline, err);
			if (w == -2) {
				tls_err_set(err, CHD_CH_HEARTBEAT,
				            "peer not reading: could not send within %d ms", timeout_ms);
				return -1;
			}
			if (w < 0)
				return -1;
			continue;
		}
		c->broken = true;
		if (n < 0 && io_dead_peer(c, errno, err))
			return -1;
		tls_err_set(err, CHD_CH_CLOSED, "send failed: %s",
		            n < 0 ? strerror(errno) : "no progress");
		return -1;
	}
	return 0;
}

int tls_send_all(struct tls_conn *c, const void *buf, size_t len, int timeout_ms,
                 struct tls_error *err)
{
	const uint8_t *p = buf;
	int64_t deadline = tls_deadline(timeout_ms);
	size_t off = 0;

	if (c->broken) {
		tls_err_set(err, CHD_CH_CLOSED, "connection already broken");
		return -1;
	}
	if (!c->encrypted)
		return io_send_plain(c, p, len, deadline, timeout_ms, err);
	io_ku_arm(c);
	while (off < len) {
		ssize_t r;
		int e;

		/* Between two records: r > 0 below means GnuTLS sent a whole
		 * record and holds nothing of ours. */
		if (io_ku_due(c) && io_key_update(c, deadline, timeout_ms, err) != 0)
			return -1;
		r = gnutls_record_send(c->s, p + off, len - off);
		e = errno;            /* the socket's, for GNUTLS_E_PUSH_ERROR */
		if (r > 0) {
			off += (size_t)r;
			c->ku_bytes += (uint64_t)r;
			continue;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			int w = tls_wait(c, io_direction(c), deadline, err);
			if (w == -2) {
				tls_err_set(err, CHD_CH_HEARTBEAT,
				            "peer not reading: could not send within %d ms", timeout_ms);
				return -1;
			}
			if (w < 0)
				return -1;
			continue;
		}
		c->broken = true;
		if (r == GNUTLS_E_PUSH_ERROR && io_gnutls_dead_peer(c, e, err))
			return -1;
		tls_err_set(err, CHD_CH_CLOSED, "TLS send failed: %s (%s)", gnutls_strerror((int)r),
		            gnutls_strerror_name((int)r));
		return -1;
	}
	return 0;
}

/* ---- GnuTLS's reads: one recv() for several records ----
 * A 64 KiB message is four records, and GnuTLS reads each with two
 * recv() calls (header, then body): eight system calls, each of which may
 * also send an ACK.  On the virtual machines measured a system call costs
 * microseconds; the 64 KiB case spent a third of the receiving thread in
 * recv() (doc/PERFORMANCE.md).  The read-ahead takes what the socket
 * holds, up to TLS_RA_CAP, and hands GnuTLS its pieces from memory. */
static ssize_t io_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_conn *c = p;
	size_t k;

	if (len == 0)
		return 0;       /* never read ahead for nothing: 0 means EOF to GnuTLS */
	if (c->ra_len == 0) {
		ssize_t n;
		if (c->ra == NULL && len < TLS_RA_CAP) {
			/* a mapping of its own: an idle channel touches one page */
			void *m = mmap(NULL, TLS_RA_CAP, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			c->ra = m == MAP_FAILED ? NULL : m;
		}
		if (c->ra == NULL || len >= TLS_RA_CAP)
			return recv(c->fd, buf, len, 0);
		n = recv(c->fd, c->ra, TLS_RA_CAP, 0);
		if (n <= 0)
			return n;       /* errno is the socket's: GnuTLS reads it */
		c->ra_off = 0;
		c->ra_len = (size_t)n;
	}
	k = len < c->ra_len ? len : c->ra_len;
	memcpy(buf, c->ra + c->ra_off, k);
	c->ra_off += k;
	c->ra_len -= k;
	return (ssize_t)k;
}

/* GnuTLS asks this only in blocking mode (we run it non-blocking), but
 * wants it set with a pull function of one's own. */
static int io_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct tls_conn *c = p;
	struct pollfd pf = { .fd = c->fd, .events = POLLIN };

	if (c->ra_len > 0)
		return 1;
	return poll(&pf, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

void tls_io_transport(struct tls_conn *c)
{
	/* writes keep GnuTLS's own (vectored) push on the fd */
	gnutls_transport_set_ptr2(c->s, c, (gnutls_transport_ptr_t)(intptr_t)c->fd);
	gnutls_transport_set_pull_function(c->s, io_pull);
	gnutls_transport_set_pull_timeout_function(c->s, io_pull_timeout);
}

static ssize_t io_recv_plain(struct tls_conn *c, void *buf, size_t len, int64_t deadline,
                             int timeout_ms, struct tls_error *err)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			int w = tls_wait(c, POLLIN, deadline, err);
			if (w == -2) {
				tls_err_set(err, CHD_CH_HEARTBEAT, "no data from the peer within %d ms",
				            timeout_ms);
				return -1;
			}
			if (w < 0)
				return -1;
			continue;
		}
		c->broken = true;
		if (io_dead_peer(c, errno, err))
			return -1;
		tls_err_set(err, CHD_CH_CLOSED, "connection broken: %s", strerror(errno));
		return -1;
	}
}

static ssize_t io_recv(struct tls_conn *c, void *buf, size_t len, int64_t deadline,
                       int timeout_ms, struct tls_error *err)
{
	if (c->broken) {
		tls_err_set(err, CHD_CH_CLOSED, "connection already broken");
		return -1;
	}
	if (len == 0)
		return 0;
	if (!c->encrypted)
		return io_recv_plain(c, buf, len, deadline, timeout_ms, err);
	for (;;) {
		/* Records already decrypted in GnuTLS's buffer are returned here
		 * without touching the socket; only AGAIN leads to poll(). */
		ssize_t r;
		int alert, e;

		io_ku_arm(c);
		r = gnutls_record_recv(c->s, buf, len);
		e = errno;            /* the socket's, for GNUTLS_E_PULL_ERROR */
		if (r > 0) {
			c->got_data = true;
			c->ku_bytes += (uint64_t)r;
			return r;
		}
		if (r == 0)
			return 0;
		switch (r) {
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED: {
			int w = tls_wait(c, io_direction(c), deadline, err);
			if (w == -2) {
				tls_err_set(err, CHD_CH_HEARTBEAT, "no data from the peer within %d ms",
				            timeout_ms);
				return -1;
			}
			if (w < 0)
				return -1;
			continue;
		}
		case GNUTLS_E_REHANDSHAKE:
			c->broken = true;
			(void)gnutls_alert_send(c->s, GNUTLS_AL_FATAL, GNUTLS_A_NO_RENEGOTIATION);
			tls_err_set(err, CHD_TLS_HANDSHAKE,
			            "the peer asked for TLS renegotiation, which chand refuses");
			return -1;
		case GNUTLS_E_FATAL_ALERT_RECEIVED:
			c->broken = true;
			alert = (int)gnutls_alert_get(c->s);
			if (!c->got_data) {
				/* TLS 1.3: our handshake finished before the responder
				 * checked our certificate; its verdict arrives here. */
				const char *an = gnutls_alert_get_name((gnutls_alert_description_t)alert);
				tls_err_set(err, CHD_TLS_PEER_REFUSED,
				            "the %s refused the connection with TLS alert '%s' (%d): %s",
				            c->server ? "initiator" : "responder", an != NULL ? an : "?",
				            alert, tls_alert_hint(alert, c));
			} else {
				const char *an = gnutls_alert_get_name((gnutls_alert_description_t)alert);
				tls_err_set(err, CHD_CH_CLOSED, "the peer ended the connection with TLS alert "
				            "'%s' (%d)", an != NULL ? an : "?", alert);
			}
			return -1;
		case GNUTLS_E_PREMATURE_TERMINATION:
			c->broken = true;
			tls_err_set(err, CHD_CH_CLOSED,
			            "connection broken: closed by the peer without TLS close_notify");
			return -1;
		default:
			if (!gnutls_error_is_fatal((int)r))
				continue; /* warning alerts, e.g. user_canceled */
			c->broken = true;
			if (r == GNUTLS_E_PULL_ERROR && io_gnutls_dead_peer(c, e, err))
				return -1;
			tls_err_set(err, CHD_CH_CLOSED, "TLS receive failed: %s (%s)",
			            gnutls_strerror((int)r), gnutls_strerror_name((int)r));
			return -1;
		}
	}
}

ssize_t tls_recv(struct tls_conn *c, void *buf, size_t len, int timeout_ms,
                 struct tls_error *err)
{
	return io_recv(c, buf, len, tls_deadline(timeout_ms), timeout_ms, err);
}

ssize_t tls_recv_all(struct tls_conn *c, void *buf, size_t len, int timeout_ms,
                     struct tls_error *err)
{
	int64_t deadline = tls_deadline(timeout_ms);
	uint8_t *p = buf;
	size_t off = 0;

	while (off < len) {
		ssize_t n = io_recv(c, p + off, len - off, deadline, timeout_ms, err);
		if (n < 0)
			return -1;
		if (n == 0) {
			if (off == 0)
				return 0;
			tls_err_set(err, CHD_CH_CLOSED,
			            "connection closed by the peer after %zu of %zu bytes", off, len);
			return -1;
		}
		off += (size_t)n;
	}
	return (ssize_t)len;
}

/* Best effort: a fatal alert telling the peer why, bounded by a short wait
 * (a failed handshake sends nothing by itself, and a TLS 1.2 peer would
 * then wait for its timeout). */
void tls_send_alert(struct tls_conn *c, int alert, int gnutls_err)
{
	int64_t deadline = tls_deadline(500);
	struct tls_error ignore;

	for (;;) {
		int r;

		c->linger = true;
		r = alert >= 0 ? gnutls_alert_send(c->s, GNUTLS_AL_FATAL,
		                                       (gnutls_alert_description_t)alert)
		                   : gnutls_alert_send_appropriate(c->s, gnutls_err);
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
			return;
		if (tls_wait(c, POLLOUT, deadline, &ignore) != 0)
			return;
	}
}

/* Closing a TCP socket with unread input sends RST, and an RST can make
 * the peer drop our last records (the alert or close_notify that says
 * why) before it reads them.  So: no more writes, then read and discard
 * until the peer closes too or a short time has passed. */
static void io_linger(struct tls_conn *c, int ms)
{
	int64_t deadline = tls_deadline(ms);
	char sink[4096];

	if (shutdown(c->fd, SHUT_WR) != 0)
		return;
	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof sink, 0);
		struct pollfd pf;
		int64_t left;

		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return;
		left = deadline - time_mono_ms();
		if (left <= 0)
			return;
		pf.fd = c->fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if (poll(&pf, 1, (int)left) <= 0)
			return;
	}
}

void tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0 && c->linger)
		io_linger(c, TLS_LINGER_MS);
	if (c->fd >= 0)
		close(c->fd);
	if (c->s != NULL)
		gnutls_deinit(c->s);
	tls_ctx_unref(c->ctx);
	if (c->ra != NULL)
		munmap(c->ra, TLS_RA_CAP);
	free(c);
}

void tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	/* SHUT_WR: send close_notify and go; SHUT_RDWR would wait for the
	 * peer's and can hang on a dead link. */
	if (c->encrypted && c->established && !c->broken && c->s != NULL) {
		int64_t deadline = tls_deadline(TLS_BYE_TIMEOUT_MS);
		struct tls_error ignore;
		for (;;) {
			int r = gnutls_bye(c->s, GNUTLS_SHUT_WR);
			if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
				break;
			if (tls_wait(c, io_direction(c), deadline, &ignore) != 0)
				break;
		}
	}
	if (!c->broken)
		c->linger = true;
	tls_conn_free(c);
}

void tls_conn_info(const struct tls_conn *c, struct tls_info *out)
{
	*out = c->info;
}

const char *tls_conn_channel(const struct tls_conn *c)
{
	return c->channel;
}

const struct tls_error *tls_conn_refusal(const struct tls_conn *c)
{
	return c->has_refusal ? &c->refusal : NULL;
}

int tls_key_update(struct tls_conn *c, int timeout_ms, struct tls_error *err)
{
	int64_t deadline = tls_deadline(timeout_ms);

	if (!c->encrypted || gnutls_protocol_get_version(c->s) != GNUTLS_TLS1_3)
		return 0;
	if (c->broken) {
		tls_err_set(err, CHD_CH_CLOSED, "connection already broken");
		return -1;
	}
	return io_key_update(c, deadline, timeout_ms, err);
}

unsigned tls_conn_key_updates(const struct tls_conn *c)
{
	return c->key_updates;
}
