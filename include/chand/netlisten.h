/* Listening TCP sockets: address parsing and binding in one place, for the
 * channel listeners (listener.c), the metrics listener (metrics.c) and the
 * telemetry listeners (mqtt).  No logging: failures come back as one line
 * in err, "cannot listen on ADDR:PORT: reason". */
#ifndef CHAND_NETLISTEN_H
#define CHAND_NETLISTEN_H

#include <stddef.h>

/* Room for "[IPv6]:65535" and the NUL. */
#define NETLISTEN_NAME_MAX 56

/* Binds address (numeric IPv4 or IPv6; no names, so nothing depends on
 * the resolver) and port (1-65535) with SO_REUSEADDR, IPv6 sockets
 * IPv6-only (so "::" and "0.0.0.0" can both be listed), and listens with
 * backlog.  Returns the socket, non-blocking and close-on-exec, or -1
 * with the reason in err. */
int netlisten_open(const char *address, int port, int backlog, char *err, size_t errlen);

/* "127.0.0.1:9414" or "[::1]:9414" into out (truncated to outlen);
 * returns out. */
char *netlisten_name(const char *address, int port, char *out, size_t outlen);

#endif
