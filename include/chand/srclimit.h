/* Per-source limits for listeners that accept unauthenticated peers
 * (channel listener, telemetry listener): a process-wide count of the
 * connections each source address holds before it has authenticated,
 * and a per-source rate limit for the log lines that refuse them, so a
 * flood from one address neither takes every slot nor floods the log.
 *
 * A "source" is the IPv4 address, or the /64 prefix of an IPv6 address
 * (one host usually owns a whole /64); IPv4-mapped IPv6 addresses count
 * as their IPv4 address.  Other families (AF_UNIX) are never limited.
 * All functions are thread-safe. */
#ifndef CHAND_SRCLIMIT_H
#define CHAND_SRCLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A log rate limiter: at most one line per interval, counting the rest.
 * Not locked: its owner serialises the calls (srclimit does). */
struct ratelimit {
	int64_t last_ms;       /* when the last line was allowed */
	unsigned suppressed;   /* lines refused since then */
	bool used;             /* a line was allowed at least once */
};

/* True if a line may be logged now; then *suppressed (if non-NULL) is the
 * number of lines refused since the previous allowed one (and the count
 * restarts).  False while within interval_ms of the last allowed line. */
bool ratelimit_allow(struct ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                     unsigned *suppressed);

/* Counts one more unauthenticated connection from peer: 0, or -1 when
 * peer already holds max of them (not counted then; max <= 0: no cap). */
int srclimit_enter(const struct sockaddr_storage *peer, int max);
/* Ends what srclimit_enter counted (once per successful enter). */
void srclimit_leave(const struct sockaddr_storage *peer);
/* How many peer holds now. */
int srclimit_count(const struct sockaddr_storage *peer);
/* The per-source log limiter: true if a refusal of peer may be logged
 * now (ratelimit_allow on the source's own limiter; the clock is
 * time_mono_ms()). */
bool srclimit_log_allow(const struct sockaddr_storage *peer, int64_t interval_ms,
                        unsigned *suppressed);
/* The source as text ("192.0.2.7", "2001:db8:1:2::/64"); "?" otherwise. */
void srclimit_source_str(const struct sockaddr_storage *peer, char *buf, size_t len);

#endif
