/* In-test TCP proxy: one accept thread, one thread per proxied connection.
 * Cutting is done with shutdown(2), which wakes a thread blocked in read or
 * write on that socket, so a cut never waits for a stuck peer. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcpproxy.h"

#define TP_MAX_CONNS 256

struct tp_conn {
	struct tcpproxy *p;
	int cfd, sfd;            /* client side, target side */
	long limit;              /* 0: none */
	long passed;
	pthread_t th;
	bool used, done;
};

struct tcpproxy {
	int lfd, port, target;
	int wake[2];
	pthread_t th;
	pthread_mutex_t mu;
	long cut_bytes;
	int cut_n;
	long plan[16];
	int plan_n, plan_next;
	bool refuse, stopping;
	bool freeze_c2s, freeze_s2c;
	long freeze_after;       /* 0: not armed */
	bool froze;              /* freeze_after fired */
	int accepted, cuts;
	struct tp_conn conns[TP_MAX_CONNS];
};

static int tp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static bool tp_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

static void tp_shut(struct tp_conn *c)
{
	shutdown(c->cfd, SHUT_RDWR);
	shutdown(c->sfd, SHUT_RDWR);
}

static void *tp_conn_main(void *arg)
{
	struct tp_conn *c = arg;
	struct tcpproxy *p = c->p;
	char buf[65536];
	bool cut = false;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool fc = p->freeze_c2s, fs = p->freeze_s2c;
		pthread_mutex_unlock(&p->mu);
		/* A frozen direction is not read, but its peer closing (or a
		 * cut's shutdown) still ends the connection; the freeze flags
		 * are looked at again every 100 ms. */
		struct pollfd pf[2] = { { .fd = c->cfd, .events = fc ? POLLRDHUP : POLLIN },
		                        { .fd = c->sfd, .events = fs ? POLLRDHUP : POLLIN } };
		int pr = poll(pf, 2, 100);
		if (pr == 0)
			continue;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		bool stop = false;
		for (int i = 0; i < 2 && !stop; i++) {
			if (pf[i].revents == 0)
				continue;
			if (i == 0 ? fc : fs) {
				if (pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
					stop = true;
				continue;
			}
			size_t want = sizeof(buf);
			pthread_mutex_lock(&p->mu);
			if (c->limit > 0 && (size_t)(c->limit - c->passed) < want)
				want = (size_t)(c->limit - c->passed);
			if (p->freeze_after > 0 && c->passed < p->freeze_after &&
			    (size_t)(p->freeze_after - c->passed) < want)
				want = (size_t)(p->freeze_after - c->passed);
			pthread_mutex_unlock(&p->mu);
			ssize_t r = want > 0 ? read(pf[i].fd, buf, want) : 0;
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || !tp_write_all(i == 0 ? c->sfd : c->cfd, buf, (size_t)r)) {
				stop = true;
				break;
			}
			pthread_mutex_lock(&p->mu);
			c->passed += r;
			if (c->limit > 0 && c->passed >= c->limit) {
				cut = true;
				stop = true;
			}
			bool froze = p->freeze_after > 0 && c->passed >= p->freeze_after;
			if (froze) {
				p->freeze_c2s = p->freeze_s2c = true;
				p->freeze_after = 0;
				p->froze = true;
			}
			pthread_mutex_unlock(&p->mu);
			if (froze)
				break;    /* not one byte more: poll again with the flags */
		}
		if (stop)
			break;
	}
	pthread_mutex_lock(&p->mu);
	if (cut)
		p->cuts++;
	tp_shut(c);
	c->done = true;
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Joins finished connection threads so their slots can be reused. */
static void tp_reap(struct tcpproxy *p)
{
	for (int i = 0; i < TP_MAX_CONNS; i++) {
		struct tp_conn *c = &p->conns[i];
		pthread_mutex_lock(&p->mu);
		bool done = c->used && c->done;
		pthread_mutex_unlock(&p->mu);
		if (!done)
			continue;
		pthread_join(c->th, NULL);
		close(c->cfd);
		close(c->sfd);
		pthread_mutex_lock(&p->mu);
		c->used = false;
		pthread_mutex_unlock(&p->mu);
	}
}

static void *tp_accept_main(void *arg)
{
	struct tcpproxy *p = arg;

	for (;;) {
		struct pollfd pf[2] = { { .fd = p->lfd, .events = POLLIN },
		                        { .fd = p->wake[0], .events = POLLIN } };
		if (poll(pf, 2, 200) < 0 && errno != EINTR)
			break;
		tp_reap(p);
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		pthread_mutex_lock(&p->mu);
		bool refuse = p->refuse || p->stopping;
		p->accepted++;
		pthread_mutex_unlock(&p->mu);
		int sfd = refuse ? -1 : tp_connect(p->target);
		if (sfd < 0) {
			close(cfd);
			continue;
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct tp_conn *c = NULL;
		pthread_mutex_lock(&p->mu);
		for (int i = 0; i < TP_MAX_CONNS && c == NULL; i++)
			if (!p->conns[i].used)
				c = &p->conns[i];
		if (c != NULL) {
			*c = (struct tp_conn){ .p = p, .cfd = cfd, .sfd = sfd, .used = true };
			if (p->plan_next < p->plan_n) {
				c->limit = p->plan[p->plan_next++];
			} else if (p->cut_n > 0 && p->cut_bytes > 0) {
				c->limit = p->cut_bytes;
				p->cut_n--;
			}
		}
		pthread_mutex_unlock(&p->mu);
		if (c == NULL || pthread_create(&c->th, NULL, tp_conn_main, c) != 0) {
			close(cfd);
			close(sfd);
			if (c != NULL) {
				pthread_mutex_lock(&p->mu);
				c->used = false;
				pthread_mutex_unlock(&p->mu);
			}
		}
	}
	return NULL;
}

struct tcpproxy *tcpproxy_start(int target_port)
{
	struct tcpproxy *p = calloc(1, sizeof(*p));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	if (p == NULL)
		return NULL;
	p->target = target_port;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &len) != 0 ||
	    pipe(p->wake) != 0) {
		if (p->lfd >= 0)
			close(p->lfd);
		free(p);
		return NULL;
	}
	p->port = ntohs(sa.sin_port);
	pthread_mutex_init(&p->mu, NULL);
	if (pthread_create(&p->th, NULL, tp_accept_main, p) != 0) {
		close(p->lfd);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return NULL;
	}
	return p;
}

int tcpproxy_port(const struct tcpproxy *p)
{
	return p->port;
}

void tcpproxy_cut_after(struct tcpproxy *p, long bytes, int nconns)
{
	pthread_mutex_lock(&p->mu);
	p->cut_bytes = bytes;
	p->cut_n = bytes > 0 ? nconns : 0;
	pthread_mutex_unlock(&p->mu);
}

void tcpproxy_cut_plan(struct tcpproxy *p, const long *limits, int n)
{
	pthread_mutex_lock(&p->mu);
	if (n > 16)
		n = 16;
	for (int i = 0; i < n; i++)
		p->plan[i] = limits[i];
	p->plan_n = n;
	p->plan_next = 0;
	pthread_mutex_unlock(&p->mu);
}

void tcpproxy_cut_all(struct tcpproxy *p)
{
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < TP_MAX_CONNS; i++)
		if (p->conns[i].used && !p->conns[i].done)
			tp_shut(&p->conns[i]);
	pthread_mutex_unlock(&p->mu);
}

void tcpproxy_freeze(struct tcpproxy *p, bool c2s, bool s2c)
{
	pthread_mutex_lock(&p->mu);
	p->freeze_c2s = c2s;
	p->freeze_s2c = s2c;
	pthread_mutex_unlock(&p->mu);
	/* Connection threads look at the flags before each poll (at most
	 * 100 ms apart): once this returns, no byte crosses a frozen
	 * direction. */
	struct timespec ts = { 0, 300 * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void tcpproxy_freeze_after(struct tcpproxy *p, long bytes)
{
	pthread_mutex_lock(&p->mu);
	p->freeze_after = bytes > 0 ? bytes : 0;
	p->froze = false;
	pthread_mutex_unlock(&p->mu);
}

bool tcpproxy_froze(const struct tcpproxy *p)
{
	struct tcpproxy *q = (struct tcpproxy *)p;
	pthread_mutex_lock(&q->mu);
	bool f = q->froze;
	pthread_mutex_unlock(&q->mu);
	return f;
}

void tcpproxy_refuse(struct tcpproxy *p, bool refuse)
{
	pthread_mutex_lock(&p->mu);
	p->refuse = refuse;
	pthread_mutex_unlock(&p->mu);
}

int tcpproxy_accepted(const struct tcpproxy *p)
{
	struct tcpproxy *q = (struct tcpproxy *)p;
	pthread_mutex_lock(&q->mu);
	int n = q->accepted;
	pthread_mutex_unlock(&q->mu);
	return n;
}

int tcpproxy_cuts(const struct tcpproxy *p)
{
	struct tcpproxy *q = (struct tcpproxy *)p;
	pthread_mutex_lock(&q->mu);
	int n = q->cuts;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void tcpproxy_stop(struct tcpproxy *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_mutex_unlock(&p->mu);
	if (write(p->wake[1], "x", 1) < 0) {
		/* The accept thread also polls with a timeout; nothing to do. */
	}
	pthread_join(p->th, NULL);
	tcpproxy_cut_all(p);
	for (int i = 0; i < TP_MAX_CONNS; i++) {
		if (!p->conns[i].used)
			continue;
		pthread_join(p->conns[i].th, NULL);
		close(p->conns[i].cfd);
		close(p->conns[i].sfd);
	}
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
