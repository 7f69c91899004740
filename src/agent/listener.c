/* TCP listeners: bound at start, accepted in the main loop, handed to
 * the first module that takes inbound connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_int.h"
#include "chand/log.h"

static int listen_one(const struct cfg_listener *l, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (strchr(l->address, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)l->port);
		if (inet_pton(AF_INET6, l->address, &s6->sin6_addr) != 1)
			goto bad;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)l->port);
		if (inet_pton(AF_INET, l->address, &s4->sin_addr) != 1)
			goto bad;
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "::" and "0.0.0.0" may both be listed: keep the families apart. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "cannot listen on %s port %d: %s", l->address, l->port,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
bad:
	snprintf(err, errlen, "bad listener address %s", l->address);
	return -1;
}

int listeners_open(const struct chand_config *cfg, struct agent_listeners *ls, char *err,
                   size_t errlen)
{
	ls->n = 0;
	ls->fds = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(int));
	if (ls->fds == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		int fd = listen_one(&cfg->listeners[i], err, errlen);
		if (fd < 0) {
			listeners_close(ls);
			return -1;
		}
		ls->fds[ls->n++] = fd;
	}
	return 0;
}

/* At most this many accepts per call: during a storm of connections the
 * main loop goes back to poll() often, so the admin socket and signals
 * are served between batches of newcomers (poll reports the listener
 * again if more are waiting). */
#define LISTEN_ACCEPT_BATCH 16

int listeners_accept(struct agent *a, int lfd)
{
	for (int n = 0; n < LISTEN_ACCEPT_BATCH; n++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		const struct agent_module *m = NULL;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn(code_str(CHD_ACCEPT_FAILED), "accept: %s; pausing", strerror(errno));
				return -1;
			}
			return 0;
		}
		for (size_t i = 0; agent_modules[i] != NULL; i++)
			if (agent_modules[i]->inbound != NULL) {
				m = agent_modules[i];
				break;
			}
		if (m == NULL || atomic_load(&a->stopping)) {
			char host[INET6_ADDRSTRLEN] = "?";
			if (peer.ss_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host, sizeof(host));
			else if (peer.ss_family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host, sizeof(host));
			log_debug("inbound connection from %s closed: %s", host,
			          m == NULL ? "no module takes inbound connections" : "stopping");
			close(fd);
			continue;
		}
		m->inbound(a, fd, &peer, plen);
	}
	return 0;
}

void listeners_close(struct agent_listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		close(ls->fds[i]);
	free(ls->fds);
	ls->fds = NULL;
	ls->n = 0;
}
