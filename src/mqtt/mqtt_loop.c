/* The event loop of the telemetry service: one thread, epoll, every
 * listener and client socket non-blocking, GnuTLS driven by readiness.
 *
 * Protection against idle and hostile sockets (the same rules as the
 * message channel listener): a connection costs an fd and a small struct
 * until it sends its first byte (MQ_FIRST_BYTE_MS) and must finish TLS
 * and CONNECT within MQ_CONNECT_TIMEOUT_MS; a source address may hold at
 * most MQ_PER_SOURCE_MAX connections that have not yet CONNECTed; and a
 * TLS handshake only costs CPU once a ClientHello is there.  Refusals are
 * logged per source at most once a minute, with a count.
 *
 * Output is written at the end of each round, so the packets a round
 * produces for a client leave in as few TLS records as possible; a client
 * that reads slowly keeps its messages queued in its session (bounded),
 * never in an unbounded buffer, and never stalls the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#include "chand/log.h"
#include "chand/srclimit.h"
#include "chand/netlisten.h"
#include "mqtt_int.h"

#define RD_CHUNK 16384
#define WR_CHUNK 16384
#define READS_PER_EVENT 8
#define ACCEPTS_PER_EVENT 64
#define LOG_EVERY_MS 60000

static struct mq_conn *dirty_head;
static struct mq_conn **pending;      /* connections with input left to handle */
static size_t npending, cappending;

void mq_wake(void)
{
	uint64_t one = 1;

	if (mq.wake_fd < 0)
		return;
	if (write(mq.wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_warn(code_str(CHD_SYS_RESOURCE), "telemetry wake-up failed: %s", strerror(errno));
}

static void ep_mod(struct mq_conn *c, bool want_out)
{
	struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = &c->ev };

	if (c->epollout == want_out)
		return;
	c->epollout = want_out;
	(void)epoll_ctl(mq.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void add_pending(struct mq_conn *c)
{
	for (size_t i = 0; i < npending; i++)
		if (pending[i] == c)
			return;
	if (npending == cappending) {
		size_t cap = cappending ? cappending * 2 : 64;
		struct mq_conn **n = realloc(pending, cap * sizeof *n);
		if (n == NULL)
			fatalx("out of memory");
		pending = n;
		cappending = cap;
	}
	c->refs++;
	pending[npending++] = c;
}

void mq_conn_send(struct mq_conn *c)
{
	if (c->dirty || c->dead)
		return;
	c->dirty = true;
	c->refs++;
	c->next_dirty = dirty_head;
	dirty_head = c;
}

void mq_conn_unpause(struct mq_conn *c)
{
	if (c->paused > 0 && --c->paused == 0 && !c->dead) {
		add_pending(c);
		if (c->sess != NULL)
			mq_sess_pump(c->sess);
	}
}

static void conn_free(struct mq_conn *c)
{
	if (c->tc != NULL)
		tls_nb_free(c->tc, false);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rb);
	free(c->in1);
	mqtt_wbuf_free(&c->w);
	mq_msg_unref(c->will);
	for (size_t i = 0; i <= MQ_ALIAS_MAX; i++)
		free(c->aliases[i]);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (mq.conns == c)
		mq.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
}

void mq_conn_unref(struct mq_conn *c)
{
	if (c != NULL && --c->refs == 0)
		conn_free(c);
}

/* Writes what is buffered. 0, or -1 if the connection broke (closed). */
static int conn_flush(struct mq_conn *c)
{
	struct tls_error err;

	while (c->woff < c->w.len) {
		size_t chunk = c->again ? c->again : c->w.len - c->woff;
		ssize_t n;

		if (chunk > WR_CHUNK && c->tc != NULL && c->again == 0)
			chunk = WR_CHUNK;
		if (c->tc != NULL) {
			n = tls_nb_send(c->tc, c->w.p + c->woff, chunk, &err);
			if (n == TLS_NB_AGAIN) {
				c->again = chunk;
				ep_mod(c, true);
				return 0;
			}
		} else {
			n = send(c->fd, c->w.p + c->woff, chunk, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				ep_mod(c, true);
				return 0;
			}
			if (n < 0)
				snprintf(err.text, sizeof err.text, "send: %s", strerror(errno));
		}
		if (n < 0) {
			c->woff = c->w.len = 0;
			mq_conn_close(c, CHD_MQ_DISCONNECTED, true, "connection broken: %s", err.text);
			return -1;
		}
		c->again = 0;
		c->woff += (size_t)n;
		c->ch->bytes_out += (uint64_t)n;
	}
	c->woff = c->w.len = 0;
	ep_mod(c, false);
	/* all written: the session's waiting messages may go on (whatever the
	 * buffer held when this call began: it may have drained over several) */
	if (c->sess != NULL && c->state == MC_ACTIVE && c->sess->q_head != NULL)
		mq_sess_pump(c->sess);
	return 0;
}

static void flush_dirty(void)
{
	while (dirty_head != NULL) {
		struct mq_conn *c = dirty_head;
		dirty_head = c->next_dirty;
		c->dirty = false;
		if (!c->dead && c->state != MC_CLOSING)
			conn_flush(c);
		mq_conn_unref(c);
	}
}

/* ---- closing ---- */

static void finish_close(struct mq_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	(void)epoll_ctl(mq.ep, EPOLL_CTL_DEL, c->fd, NULL);
	mq_conn_unref(c);
}

static void detach_session(struct mq_conn *c, bool publish_will)
{
	struct mq_sess *s = c->sess;
	int64_t now = time_now_ms();

	c->sess = NULL;
	if (s == NULL)
		return;
	s->conn = NULL;
	s->disconnected_ms = now;
	if (c->will != NULL && publish_will) {
		struct mq_msg *w = c->will;
		int64_t delay = c->will_delay;
		c->will = NULL;
		if (c->will_expiry_s > 0)
			w->expiry_ms = now + c->will_expiry_s * 1000;
		w->origin = 0;
		if (s->expiry_s >= 0 && delay > s->expiry_s)
			delay = s->expiry_s;
		if (delay == 0 || !s->persistent) {
			mq_publish_now(w);
			mq_msg_unref(w);
		} else {
			/* v5 will delay: published unless the session comes back */
			mq_msg_unref(s->will);
			s->will = w;
			s->will_at_mono = time_mono_ms() + delay * 1000;
		}
	}
	if (!s->persistent) {
		mq_sess_drop(s, NULL);
	} else {
		struct mq_op *op = mq_job_op(mq_lazy(), OP_SESS_TOUCH, s->client_id);
		op->when_ms = now;
		op->pid = s->next_pid;
		/* packets waiting for their id to be stored are resent on resume */
		for (struct mq_out *o = s->fl_head; o != NULL; o = o->next)
			o->dup = true;
	}
}

static void vclose(struct mq_conn *c, enum chd_code_id code, bool publish_will, const char *fmt,
                   va_list ap)
{
	char why[256];
	bool normal = code == CHD_MQ_DISCONNECTED;

	if (c->dead || c->state == MC_CLOSING)
		return;
	vsnprintf(why, sizeof why, fmt, ap);
	if (c->state == MC_ACTIVE) {
		const char *cid = c->sess != NULL ? c->sess->client_id : "?";
		if (normal)
			log_info(code_str(code), "channel=%s client=%s peer=%s disconnected: %s",
			         c->ch->def.name, cid, c->peer, why);
		else
			log_warn(code_str(code), "channel=%s client=%s peer=%s disconnected: %s",
			         c->ch->def.name, cid, c->peer, why);
	} else if (!normal) {
		log_warn(code_str(code), "channel=%s peer=%s connection closed: %s", c->ch->def.name,
		         c->peer, why);
	}
	str_copy(c->why, why, sizeof c->why);
	detach_session(c, publish_will && c->state == MC_ACTIVE);
	if (c->counted_source) {
		srclimit_leave(&c->peer_ss);
		c->counted_source = false;
	}
	if (c->counted_chan) {
		c->ch->nconns--;
		c->counted_chan = false;
	}
	/* what is queued (a CONNACK refusal, a DISCONNECT) gets one try */
	c->state = MC_CLOSING;
	if (c->woff < c->w.len)
		conn_flush(c);
	if (c->tc != NULL) {
		tls_nb_free(c->tc, true);
		c->tc = NULL;
	}
	/* no more writes; read and drop until the client closes too, so our
	 * last packet is not lost to a reset */
	if (shutdown(c->fd, SHUT_WR) != 0) {
		finish_close(c);
		return;
	}
	c->deadline = time_mono_ms() + MQ_LINGER_MS;
	ep_mod(c, false);
}

void mq_conn_close(struct mq_conn *c, enum chd_code_id code, bool publish_will, const char *fmt,
                   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vclose(c, code, publish_will, fmt, ap);
	va_end(ap);
}

void mq_conn_abort(struct mq_conn *c, enum chd_code_id code, uint8_t reason, const char *fmt, ...)
{
	va_list ap;

	if (c->dead || c->state == MC_CLOSING)
		return;
	if (c->version == MQTT_V5 && c->state == MC_ACTIVE &&
	    mqtt_encode_disconnect(&c->w, MQTT_V5, reason, NULL) != 0)
		fatalx("out of memory");
	va_start(ap, fmt);
	vclose(c, code, true, fmt, ap);
	va_end(ap);
}

/* ---- input ---- */

/* Handles the complete packets buffered. */
static void conn_parse(struct mq_conn *c)
{
	size_t off = 0;

	while (!c->dead && c->state != MC_CLOSING && c->paused == 0) {
		uint8_t tf;
		uint32_t rem;
		size_t hl, need;
		int r = mqtt_fixed_header(c->rb + off, c->rlen - off, &tf, &rem, &hl);

		if (r == MQTT_NEED_MORE)
			break;
		if (r != MQTT_OK) {
			mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_MALFORMED,
			              "malformed remaining length in a packet header");
			return;
		}
		need = hl + rem;
		if (need > (size_t)c->ch->def.max_packet) {
			mq_conn_abort(c, CHD_MQ_PROTOCOL, MQTT_RC_PACKET_TOO_LARGE,
			              "%s of %zu bytes is larger than the channel's MAX_PACKET %ld",
			              mqtt_ptype_name(tf >> 4), need, c->ch->def.max_packet);
			return;
		}
		if (c->rlen - off < need) {
			if (need > c->rcap) {
				uint8_t *n = realloc(c->rb, need);
				if (n == NULL)
					fatalx("out of memory");
				c->rb = n;
				c->rcap = need;
			}
			break;
		}
		c->deadline = 0;
		c->last_rx = time_mono_ms();
		if (mq_handle_packet(c, c->rb + off, need) != 0)
			return;
		off += need;
	}
	if (off > 0 && !c->dead) {
		memmove(c->rb, c->rb + off, c->rlen - off);
		c->rlen -= off;
	}
}

/* Refusals of clients that did speak (TLS failures): logged, but at most
 * LOG_BURST lines per channel every LOG_BURST_MS, then one line with the
 * count, so a misconfigured fleet cannot flood the log. */
#define LOG_BURST 20
#define LOG_BURST_MS 10000

static bool chan_log_allow(struct mq_chan *ch)
{
	int64_t now = time_mono_ms();

	if (now - ch->log_window >= LOG_BURST_MS) {
		if (ch->log_suppressed > 0)
			log_warn(code_str(CHD_MQ_TLS), "channel=%s %u more TLS refusals in the last %d s "
			         "were not logged", ch->def.name, ch->log_suppressed, LOG_BURST_MS / 1000);
		ch->log_window = now;
		ch->log_count = 0;
		ch->log_suppressed = 0;
	}
	if (ch->log_count < LOG_BURST) {
		ch->log_count++;
		return true;
	}
	ch->log_suppressed++;
	return false;
}

static void conn_tls(struct mq_conn *c)
{
	struct tls_error err;
	int r = tls_nb_handshake(c->tc, &err);

	if (r == TLS_NB_AGAIN) {
		ep_mod(c, tls_nb_want_write(c->tc) != 0);
		return;
	}
	if (r != TLS_NB_DONE) {
		mq_chan_error(c->ch, err.code, err.text);
		if (chan_log_allow(c->ch))
			log_warn(code_str(err.code), "channel=%s peer=%s MQTT client TLS refused: %s",
			         c->ch->def.name, c->peer, err.text);
		c->ch->refused++;
		mq_conn_close(c, CHD_MQ_DISCONNECTED, false, "TLS handshake failed");
		return;
	}
	tls_conn_info(c->tc, &c->tls);
	c->state = MC_CONNECT;
	ep_mod(c, false);
}

static void conn_read(struct mq_conn *c)
{
	struct tls_error err;

	if (c->state == MC_CLOSING) {
		char sink[4096];
		ssize_t n = recv(c->fd, sink, sizeof sink, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			finish_close(c);
		return;
	}
	if (c->state == MC_TLS) {
		if (!c->got_byte) {
			/* nothing of TLS runs before the first byte: a port probe or
			 * an idle socket costs no handshake and no warning */
			unsigned char b;
			ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				log_debug("channel=%s peer=%s closed before sending anything",
				          c->ch->def.name, c->peer);
				mq_conn_close(c, CHD_MQ_DISCONNECTED, false, "closed before sending anything");
				finish_close(c);
				return;
			}
			if (n < 0)
				return;
			c->got_byte = true;
		}
		conn_tls(c);
		if (c->state != MC_CONNECT)
			return;
	}
	for (int i = 0; i < READS_PER_EVENT && !c->dead && c->state != MC_CLOSING; i++) {
		ssize_t n;

		if (c->paused > 0)
			return;   /* resumed by mq_conn_unpause; epoll reports again (level) */
		if (c->rcap - c->rlen < RD_CHUNK) {
			size_t cap = c->rlen + RD_CHUNK;
			uint8_t *nb = realloc(c->rb, cap);
			if (nb == NULL)
				fatalx("out of memory");
			c->rb = nb;
			c->rcap = cap;
		}
		if (c->tc != NULL) {
			n = tls_nb_recv(c->tc, c->rb + c->rlen, c->rcap - c->rlen, &err);
			if (n == TLS_NB_AGAIN)
				break;
		} else {
			n = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				break;
			if (n < 0)
				snprintf(err.text, sizeof err.text, "recv: %s", strerror(errno));
		}
		if (n == 0) {
			mq_conn_close(c, CHD_MQ_DISCONNECTED, true, "connection closed by the client "
			              "without DISCONNECT");
			return;
		}
		if (n < 0) {
			mq_conn_close(c, CHD_MQ_DISCONNECTED, true, "connection broken: %s", err.text);
			return;
		}
		c->rlen += (size_t)n;
		c->ch->bytes_in += (uint64_t)n;
		c->got_byte = true;
		conn_parse(c);
	}
	if (!c->dead && c->state != MC_CLOSING && c->tc != NULL && tls_nb_pending(c->tc) > 0)
		add_pending(c);
}

/* ---- accepting ---- */

static void refuse_log(struct mq_chan *ch, const struct sockaddr_storage *ss, const char *why)
{
	enum chd_code_id code = strstr(why, "within") != NULL ? CHD_MQ_TIMEOUT : CHD_MQ_LIMIT;
	char src[64];
	unsigned suppressed = 0;

	ch->refused++;
	if (!srclimit_log_allow(ss, LOG_EVERY_MS, &suppressed))
		return;
	srclimit_source_str(ss, src, sizeof src);
	log_warn(code_str(code), "channel=%s peer=%s connection %s: %s%s", ch->def.name, src,
	         code == CHD_MQ_TIMEOUT ? "closed" : "refused", why,
	         suppressed ? " (and more like it from this address, not logged)" : "");
}

static void peer_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
		snprintf(buf, len, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, port);
	} else {
		str_copy(buf, "?", len);
	}
}

static void chan_accept(struct mq_chan *ch)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT && ch->lfd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct epoll_event ev;
		struct mq_conn *c;
		int one = 1;
		int fd = accept4(ch->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn(code_str(CHD_ACCEPT_FAILED), "channel=%s accept: %s", ch->def.name,
				         strerror(errno));
			return;
		}
		if (atomic_load(&mq.stopping)) {
			close(fd);
			continue;
		}
		if ((long)ch->nconns >= ch->def.max_clients) {
			refuse_log(ch, &ss, "the channel has MAX_CLIENTS clients");
			close(fd);
			continue;
		}
		if (srclimit_enter(&ss, MQ_PER_SOURCE_MAX) != 0) {
			refuse_log(ch, &ss, "too many connections from this address still in TLS or "
			           "CONNECT");
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof *c)) == NULL) {
			srclimit_leave(&ss);
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->ev.kind = MQ_EV_CONN;
		c->ev.p = c;
		c->id = ++mq.next_conn_id;
		c->refs = 1;
		c->fd = fd;
		c->ch = ch;
		c->peer_ss = ss;
		c->counted_source = true;
		c->counted_chan = true;
		c->version = MQTT_V311;
		peer_text(&ss, c->peer, sizeof c->peer);
		mqtt_wbuf_init(&c->w);
		c->deadline = time_mono_ms() + MQ_FIRST_BYTE_MS;
		c->accepted_mono = time_mono_ms();
		ch->nconns++;
		ch->conns_total++;
		c->next = mq.conns;
		if (mq.conns != NULL)
			mq.conns->prev = c;
		mq.conns = c;
		c->state = MC_CONNECT;
		if (ch->def.sslciph[0] != '\0') {
			struct tls_params p;
			struct tls_error err;
			struct tls_ctx *ctx = mq.host.tls_get(mq.host.arg);

			memset(&p, 0, sizeof p);
			str_copy(p.channel, ch->def.name, sizeof p.channel);
			str_copy(p.sslciph, ch->def.sslciph, sizeof p.sslciph);
			str_copy(p.label, ch->def.certlabl[0] ? ch->def.certlabl : mq.host.default_label,
			         sizeof p.label);
			p.sslcauth = (enum sslcauth)ch->def.sslcauth;
			str_copy(p.sslpeer, ch->def.sslpeer, sizeof p.sslpeer);
			int r = tls_nb_server_new(&c->tc, fd, ctx, &p, &err);
			if (ctx != NULL)
				tls_ctx_unref(ctx);
			if (r != 0) {
				mq_chan_error(ch, err.code, err.text);
				log_warn(code_str(err.code), "channel=%s peer=%s refused: %s", ch->def.name,
				         c->peer, err.text);
				c->tc = NULL;
				ev.events = EPOLLIN;
				ev.data.ptr = &c->ev;
				(void)epoll_ctl(mq.ep, EPOLL_CTL_ADD, fd, &ev);
				mq_conn_close(c, CHD_MQ_TLS, false, "no TLS session");
				continue;
			}
			c->state = MC_TLS;
		}
		ev.events = EPOLLIN;
		ev.data.ptr = &c->ev;
		if (epoll_ctl(mq.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			log_warn(code_str(CHD_SYS_RESOURCE), "epoll_ctl: %s", strerror(errno));
			c->dead = true;
			srclimit_leave(&ss);
			c->counted_source = false;
			ch->nconns--;
			mq_conn_unref(c);
		}
	}
}

/* ---- listeners ---- */

int mq_listen(struct mq_chan *ch, char *err, size_t errlen)
{
	struct epoll_event ev;
	const char *addr = ch->def.address[0] ? ch->def.address : "0.0.0.0";
	int fd;

	fd = netlisten_open(addr, (int)ch->def.port, 1024, err, errlen);
	if (fd < 0)
		return -1;
	ch->ev.kind = MQ_EV_LISTEN;
	ch->ev.p = ch;
	ev.events = EPOLLIN;
	ev.data.ptr = &ch->ev;
	if (epoll_ctl(mq.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	ch->lfd = fd;
	return 0;
}

void mq_unlisten(struct mq_chan *ch)
{
	if (ch->lfd >= 0) {
		(void)epoll_ctl(mq.ep, EPOLL_CTL_DEL, ch->lfd, NULL);
		close(ch->lfd);
		ch->lfd = -1;
	}
	for (struct mq_conn *c = mq.conns; c != NULL; c = c->next)
		if (c->ch == ch && !c->dead && c->state != MC_CLOSING)
			mq_conn_abort(c, CHD_MQ_DISCONNECTED, MQTT_RC_ADMIN_ACTION,
			              "channel %s stopped", ch->def.name);
}

/* ---- timers ---- */

static void conn_timers(int64_t now)
{
	for (struct mq_conn *c = mq.conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->dead)
			continue;
		c->refs++;
		switch (c->state) {
		case MC_TLS:
		case MC_CONNECT:
			if (!c->got_byte && now >= c->accepted_mono + MQ_FIRST_BYTE_MS) {
				refuse_log(c->ch, &c->peer_ss, "sent nothing within the first-byte deadline");
				mq_conn_close(c, CHD_MQ_DISCONNECTED, false, "sent nothing within %d ms",
				              MQ_FIRST_BYTE_MS);
			} else if (now >= c->accepted_mono + MQ_CONNECT_TIMEOUT_MS) {
				refuse_log(c->ch, &c->peer_ss, c->state == MC_TLS
				           ? "TLS handshake not finished within the CONNECT deadline"
				           : "no CONNECT within the CONNECT deadline");
				mq_conn_close(c, CHD_MQ_DISCONNECTED, false, "no %s within %d ms",
				              c->state == MC_TLS ? "TLS handshake" : "CONNECT",
				              MQ_CONNECT_TIMEOUT_MS);
			}
			break;
		case MC_ACTIVE:
			/* [MQTT-3.1.2-24]: one and a half keepalives of silence */
			if (c->keepalive > 0 && now - c->last_rx > (int64_t)c->keepalive * 1500)
				mq_conn_close(c, CHD_MQ_TIMEOUT, true, "nothing received within 1.5 x "
				              "keepalive (%u s)", c->keepalive);
			break;
		case MC_CLOSING:
			if (now >= c->deadline)
				finish_close(c);
			break;
		}
		next = c->next;
		mq_conn_unref(c);
	}
}

/* ---- the loop ---- */

/* A round can hold many TLS handshakes (milliseconds of CPU each): an
 * admin thread waiting for mq.mtx gets it between two events, so status
 * answers during a connection storm. */
static void mq_yield_to_admin(void)
{
	if (atomic_load(&mq.admin_wait) == 0)
		return;
	pthread_mutex_unlock(&mq.mtx);
	for (int i = 0; i < 10000 && atomic_load(&mq.admin_wait) > 0; i++)
		sched_yield();
	pthread_mutex_lock(&mq.mtx);
}

static void *loop_main(void *arg)
{
	struct epoll_event evs[256];
	int64_t last_timers = 0, last_sess = 0;

	(void)arg;
	pthread_mutex_lock(&mq.mtx);
	while (!atomic_load(&mq.stopping)) {
		int timeout = npending > 0 || dirty_head != NULL ? 0 : 200;
		int hold = mq_early_timeout();
		int n;

		if (hold >= 0 && hold < timeout)
			timeout = hold;

		pthread_mutex_unlock(&mq.mtx);
		n = epoll_wait(mq.ep, evs, 256, timeout);
		pthread_mutex_lock(&mq.mtx);
		for (int i = 0; i < n; i++) {
			struct mq_ev *e = evs[i].data.ptr;
			mq_yield_to_admin();
			if (e->kind == MQ_EV_WAKE) {
				uint64_t v;
				while (read(mq.wake_fd, &v, sizeof v) > 0)
					;
			} else if (e->kind == MQ_EV_LISTEN) {
				chan_accept(e->p);
			} else {
				struct mq_conn *c = e->p;
				if (c->dead)
					continue;
				c->refs++;
				if ((evs[i].events & EPOLLOUT) && c->state != MC_TLS && c->state != MC_CLOSING)
					conn_flush(c);
				if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLOUT)))
					conn_read(c);
				mq_conn_unref(c);
			}
		}
		mq_run_done();
		mq_inq_poll();
		mq_early_release(false);
		/* input GnuTLS holds, or that waited for a commit */
		while (npending > 0) {
			size_t k = npending;
			struct mq_conn **v = malloc(k * sizeof *v);
			if (v == NULL)
				fatalx("out of memory");
			memcpy(v, pending, k * sizeof *v);
			npending = 0;
			for (size_t i = 0; i < k; i++) {
				if (!v[i]->dead && v[i]->paused == 0) {
					conn_parse(v[i]);
					if (!v[i]->dead)
						conn_read(v[i]);
				}
				mq_conn_unref(v[i]);
			}
			free(v);
			if (npending > 0)
				break;   /* next round, after epoll: others get their turn */
		}
		int64_t now = time_mono_ms();
		if (now - last_timers >= 200) {
			conn_timers(now);
			last_timers = now;
		}
		if (now - last_sess >= 1000) {
			mq_sess_timers(now, time_now_ms());
			last_sess = now;
		}
		mq_lazy_flush();
		flush_dirty();
	}
	/* shutdown: sessions live on in the store; wills are not published */
	for (struct mq_conn *c = mq.conns, *next; c != NULL; c = next) {
		next = c->next;
		if (!c->dead) {
			c->refs++;
			if (c->state == MC_ACTIVE && c->version == MQTT_V5)
				(void)mqtt_encode_disconnect(&c->w, MQTT_V5, MQTT_RC_SERVER_SHUTTING_DOWN, NULL);
			mq_conn_close(c, CHD_MQ_DISCONNECTED, false, "queue manager stopping");
			finish_close(c);
			next = c->next;
			mq_conn_unref(c);
		}
	}
	/* held routed publications: their rows and removal are written now */
	mq_early_release(true);
	mq_lazy_flush();
	flush_dirty();
	pthread_mutex_unlock(&mq.mtx);
	return NULL;
}

/* The epoll fd goes; the wake-up eventfd stays open until the process
 * ends (this runs only at shutdown): an admin thread or a channel thread
 * may still be about to write to it, and a closed number could by then
 * belong to another file. */
void mq_loop_close(void)
{
	if (mq.ep >= 0)
		close(mq.ep);
	mq.ep = -1;
}

int mq_loop_start(void)
{
	struct epoll_event ev;
	int r;

	if ((mq.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (mq.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "telemetry event loop: %s", strerror(errno));
		return -1;
	}
	mq.wake_ev.kind = MQ_EV_WAKE;
	ev.events = EPOLLIN;
	ev.data.ptr = &mq.wake_ev;
	if (epoll_ctl(mq.ep, EPOLL_CTL_ADD, mq.wake_fd, &ev) != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "telemetry event loop: %s", strerror(errno));
		return -1;
	}
	if ((r = pthread_create(&mq.loop_thr, NULL, loop_main, NULL)) != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "cannot start the telemetry loop thread: %s",
		          strerror(r));
		return -1;
	}
	return 0;
}

void mq_loop_stop(void)
{
	atomic_store(&mq.stopping, true);
	mq_wake();
	pthread_join(mq.loop_thr, NULL);
	/* ep and wake_fd stay open until the writer has stopped too (it wakes
	 * the loop after its last commit): mq_loop_close() */
	free(pending);
	pending = NULL;
	npending = cappending = 0;
}
