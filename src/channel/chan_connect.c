/* The initiator's side of a connection: CONNAME, TCP connect with a
 * deadline, TLS client handshake, INIT/INIT_ACK (doc/PROTOCOL.md 5). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_int.h"
#include "chand/cipherspec.h"
#include "chand/log.h"

void chan_params_of(const struct chan_def *d, struct tls_params *p)
{
	memset(p, 0, sizeof(*p));
	str_copy(p->channel, d->name, sizeof(p->channel));
	str_copy(p->sslciph, d->sslciph, sizeof(p->sslciph));
	str_copy(p->label, d->certlabl[0] ? d->certlabl
	                   : chan_sup.host.default_label ? chan_sup.host.default_label : "",
	         sizeof(p->label));
	p->sslcauth = d->sslcauth;
	str_copy(p->sslpeer, d->sslpeer, sizeof(p->sslpeer));
	p->keyupdate_bytes = (uint64_t)d->keyupdate_bytes;
}

void chan_sock_opts(int fd)
{
	int one = 1, t = chan_sup.host.dead_peer_timeout_s;

	/* small control frames (CONFIRM, HB) must not wait for Nagle */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* with HBINT 0 the only way to notice a dead peer (PROTOCOL.md 8) */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (t <= 0)
		return;
	/* limits.dead_peer_timeout: a peer whose host stops answering (a link
	 * that silently drops everything, a host that is gone) ends the
	 * channel within t s, whatever HBINT is.  Its kernel answering is
	 * what counts, not its application: a receiver busy committing still
	 * ACKs, so it is never taken for dead (doc/CHANNELS.md 9).
	 * - Data or a window probe unacknowledged for t s: TCP_USER_TIMEOUT.
	 * - Nothing in flight (waiting for CONFIRM, or for the next frame):
	 *   keepalive probes from t/2 s of silence, every t/10 s; with
	 *   TCP_USER_TIMEOUT set, Linux ends the connection at the first
	 *   probe time when nothing came back for t s, so at t s (KEEPCNT
	 *   only counts for kernels without TCP_USER_TIMEOUT).
	 * The read or write then fails with ETIMEDOUT (tls_io.c says why). */
	unsigned int ums = (unsigned int)t * 1000u;
	int idle = t / 2 > 0 ? t / 2 : 1, intvl = t / 10 > 0 ? t / 10 : 1;
	int cnt = (t - idle) / intvl + 1;
	if (cnt > 127)
		cnt = 127;            /* the kernel's maximum */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ums, sizeof(ums));
}

/* Connects to one address. Returns the socket, -1 with a reason, or -2
 * when woken (stop). */
static int tcp_connect(struct chan_sess *s, const struct chan_addr *a, int timeout_ms,
                       char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	char port[8];
	int rc, fd = -1;
	int64_t deadline = time_mono_ms() + timeout_ms;

	snprintf(port, sizeof(port), "%d", a->port);
	rc = getaddrinfo(a->host, port, &hints, &res);
	if (rc != 0) {
		chan_sfmt(why, whylen, "cannot resolve '%s': %s", a->host, gai_strerror(rc));
		return -1;
	}
	chan_sfmt(why, whylen, "no address for '%s'", a->host);
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			chan_sfmt(why, whylen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			for (;;) {
				struct pollfd pf[2] = { { fd, POLLOUT, 0 }, { s->conn->wake_fd, POLLIN, 0 } };
				int64_t left = deadline - time_mono_ms();
				int n;
				if (left <= 0) {
					chan_sfmt(why, whylen, "connecting to %s:%d timed out after %d ms", a->host,
					         a->port, timeout_ms);
					break;
				}
				n = poll(pf, 2, (int)left);
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0) {
					chan_sfmt(why, whylen, "poll: %s", strerror(errno));
					break;
				}
				if (pf[1].revents) {
					close(fd);
					freeaddrinfo(res);
					return -2;
				}
				if (pf[0].revents) {
					int e = 0;
					socklen_t el = sizeof(e);
					if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0) {
						freeaddrinfo(res);
						return fd;
					}
					chan_sfmt(why, whylen, "connecting to %s:%d: %s", a->host, a->port,
					         strerror(e ? e : errno));
					break;
				}
			}
		} else {
			chan_sfmt(why, whylen, "connecting to %s:%d: %s", a->host, a->port, strerror(errno));
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The INIT this end sends. */
static void fill_init(const struct chan_sess *s, struct frame_init *in, bool ping)
{
	memset(in, 0, sizeof(*in));
	in->min_version = FRAME_VERSION_MIN;
	in->max_version = (uint8_t)chan_sup.proto_max;
	in->chtype = (uint8_t)s->def.type;
	in->ping = ping;
	str_copy(in->channel, s->def.name, sizeof(in->channel));
	str_copy(in->qmgr, chan_sup.host.qmgr, sizeof(in->qmgr));
	in->batchsz = (uint32_t)s->def.batchsz;
	in->maxmsgl = (uint32_t)s->def.maxmsgl;
	in->hbint = (uint32_t)s->def.hbint;
	in->seqwrap = (uint32_t)s->def.seqwrap;
	str_copy(in->sslciph, s->def.sslciph, sizeof(in->sslciph));
}

/* Stop requested during the start: ERROR CHD5002 and close (PROTOCOL 10). */
static int stopped_while_starting(struct chan_sess *s)
{
	enum chan_stop st = chan_stop_req(s);

	if (st == STOP_NONE)
		return 0;
	chan_fail(s, CHD_CH_STOP, "channel ended: %s",
	          st == STOP_SHUTDOWN ? "queue manager ending" : "stopped by operator");
	s->end = st == STOP_SHUTDOWN ? END_SHUTDOWN : END_STOPPED;
	chan_send_error(s, CHD_CH_STOP, s->text);
	return -1;
}

int chan_open_initiator(struct chan_sess *s, bool ping)
{
	struct chan_addr addrs[CHAN_CONNAME_ADDRS];
	char why[512] = "", why1[300];
	struct tls_params p;
	struct tls_error err = { 0 };
	struct tls_ctx *ctx;
	struct frame_init in;
	struct frame f;
	int n, fd = -1, timeout = chan_sup.host.handshake_timeout_ms;
	bool no_label = false;
	enum chd_code_id code;

	n = chan_conname_parse(s->def.conname, addrs, CHAN_CONNAME_ADDRS, why1, sizeof(why1));
	if (n < 1)
		return chan_fail(s, CHD_CH_CONNECT, "channel %s: CONNAME '%s': %s", s->def.name,
		                 s->def.conname, why1);
	if (!ping) {
		chan_status_state(s->rt, s->def.type == CHT_RQSTR ? CHS_REQUESTING : CHS_BINDING,
		                  "NET_CONNECTING");
		pthread_mutex_lock(&chan_sup.mtx);
		s->rt->st.connected = false;
		s->rt->st.encrypted = s->def.sslciph[0] != '\0';
		pthread_mutex_unlock(&chan_sup.mtx);
	}
	/* the addresses of a list are tried in order on each attempt */
	int used = -1;
	for (int i = 0; i < n && fd < 0; i++) {
		used = i;
		fd = tcp_connect(s, &addrs[i], timeout, why1, sizeof(why1));
		if (fd == -2)
			return stopped_while_starting(s) ? -1 : chan_fail(s, CHD_CH_STOP, "cancelled");
		if (fd < 0) {
			size_t l = strlen(why);
			chan_sfmt(why + l, sizeof(why) - l, "%s%s", l ? "; " : "", why1);
		} else {
			chan_sfmt(s->peer_addr, sizeof(s->peer_addr), "%s:%d", addrs[i].host, addrs[i].port);
		}
	}
	if (fd < 0)
		return chan_fail(s, CHD_CH_CONNECT, "cannot connect: %s", why);
	chan_sock_opts(fd);

	chan_params_of(&s->def, &p);
	/* --verify-host: yes = the host of the CONNAME address connected to */
	if (strcmp(s->def.verify_host, "yes") == 0 && used >= 0)
		str_copy(p.verify_hostname, addrs[used].host, sizeof(p.verify_hostname));
	else if (s->def.verify_host[0] != '\0' && strcmp(s->def.verify_host, "yes") != 0)
		str_copy(p.verify_hostname, s->def.verify_host, sizeof(p.verify_hostname));
	ctx = chan_sup.host.tls_get(chan_sup.host.arg);
	if (p.sslciph[0] != '\0')
		no_label = ctx == NULL || !tls_ctx_has_label(ctx, p.label);
	if (!ping)
		chan_status_substate(s, p.sslciph[0] ? "SSL_HANDSHAKING" : "NEGOTIATING");
	if (tls_client_open(&s->tc, fd, ctx, &p, timeout, s->conn->wake_fd, &err) != 0) {
		if (ctx != NULL)
			tls_ctx_unref(ctx);
		s->tc = NULL;
		if (err.code == CHD_CH_STOP && stopped_while_starting(s))
			return -1;
		if (no_label)
			return chan_fail(s, err.code, "%s; no certificate sent: label '%s' not in keystore",
			                 err.text, p.label);
		return chan_fail(s, err.code, "%s", err.text);
	}
	if (ctx != NULL)
		tls_ctx_unref(ctx);
	s->encrypted = p.sslciph[0] != '\0';
	if (!s->encrypted)
		log_warn(code_str(CHD_TLS_PLAINTEXT), "channel=%s peer=%s channel not encrypted: "
		         "SSLCIPH is empty, messages travel in clear over plain TCP", s->def.name,
		         s->peer_addr);
	else if (no_label)
		log_warn(code_str(CHD_TLS_LABEL), "channel=%s peer=%s no certificate sent: label '%s' "
		         "not in keystore", s->def.name, s->peer_addr, p.label);

	fill_init(s, &in, ping);
	if (!ping)
		chan_status_substate(s, "NEGOTIATING");
	if (frame_encode_init(&s->out, &s->w, &in, NULL) != FRAME_OK)
		return chan_fail(s, CHD_CH_PROTOCOL, "cannot encode INIT for channel %s", s->def.name);
	if (chan_flush(s) != 0)
		return -1;
	for (;;) {
		int rd = chan_read_frame(s, CHAN_T_NEGO_MS, &f);
		if (rd == RD_FRAME)
			break;
		if (rd == RD_WOKEN) {
			if (stopped_while_starting(s))
				return -1;
			continue;
		}
		if (rd == RD_TIMEOUT)
			return chan_fail(s, CHD_CH_HEARTBEAT, "no INIT_ACK from the responder within %d s",
			                 CHAN_T_NEGO_MS / 1000);
		if (no_label && s->end == END_ERROR && !s->peer_error) {
			size_t l = strlen(s->text);
			chan_sfmt(s->text + l, sizeof(s->text) - l,
			         "; no certificate sent: label '%s' not in keystore", p.label);
		}
		return -1;
	}
	if (f.h.type != FRAME_INIT_ACK)
		return chan_unexpected(s, &f, "I_WAIT_INIT_ACK");
	str_copy(s->peer_qmgr, f.u.init_ack.qmgr, sizeof(s->peer_qmgr));
	if (!frame_check_init_ack(&in, &f.u.init_ack, &code, why, sizeof(why))) {
		chan_fail(s, code, "%s", why);
		chan_send_error(s, code, why);
		return -1;
	}
	/* the same CipherSpec rule as the responder's (PROTOCOL.md 5.2) */
	{
		const char *theirs = f.u.init_ack.sslciph;
		const struct cipherspec *a = cs_lookup(s->def.sslciph), *b = cs_lookup(theirs);
		bool bad = (s->def.sslciph[0] == '\0') != (theirs[0] == '\0') ||
		           (a != NULL && b != NULL && !cs_compatible(a, b));
		if (bad) {
			chan_fail(s, CHD_TLS_CIPHER, "CipherSpec mismatch: initiator '%s', responder '%s' "
			          "(channel %s)", s->def.sslciph[0] ? s->def.sslciph : "none (plain TCP)",
			          theirs[0] ? theirs : "none (plain TCP)", s->def.name);
			chan_send_error(s, CHD_TLS_CIPHER, s->text);
			return -1;
		}
	}
	s->batchsz = f.u.init_ack.batchsz;
	s->maxmsgl = f.u.init_ack.maxmsgl;
	s->hbint = f.u.init_ack.hbint;
	s->seqwrap = f.u.init_ack.seqwrap;
	s->w.version = f.u.init_ack.version;
	s->rversion = f.u.init_ack.version;
	s->max_payload = frame_max_payload(s->maxmsgl);
	if (!ping) {
		chan_status_tls(s);
		if (no_label) {
			char t[200];
			chan_sfmt(t, sizeof(t), "no certificate sent: label '%s' not in keystore", p.label);
			chan_status_error(s->rt, CHD_TLS_LABEL, t);
		}
	}
	return 0;
}
