/* Listening TCP sockets (netlisten.h): the one place where a configured
 * address and port become a bound socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/netlisten.h"

char *netlisten_name(const char *address, int port, char *out, size_t outlen)
{
	bool v6 = strchr(address, ':') != NULL;

	snprintf(out, outlen, "%s%s%s:%d", v6 ? "[" : "", address, v6 ? "]" : "", port);
	return out;
}

int netlisten_open(const char *address, int port, int backlog, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[NETLISTEN_NAME_MAX];
	int fd, one = 1;

	netlisten_name(address, port, name, sizeof(name));
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "cannot listen on %s: port out of range", name);
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (strchr(address, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, address, &s6->sin6_addr) != 1)
			goto bad;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, address, &s4->sin_addr) != 1)
			goto bad;
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s", name, strerror(errno));
		return -1;
	}
	/* A restarted agent must get its port back while old connections
	 * linger in TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
bad:
	snprintf(err, errlen, "cannot listen on %s: not a numeric IPv4 or IPv6 address", name);
	return -1;
}
