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
#include "chand/netlisten.h"

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
		const struct cfg_listener *l = &cfg->listeners[i];
		int fd = netlisten_open(l->address, l->port, 128, err, errlen);
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
