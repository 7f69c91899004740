/* A small TCP proxy on 127.0.0.1 that runs inside a test process, for
 * breaking channel connections at chosen points: it forwards between a
 * client and a target port and can cut (close both sides of) a connection
 * after a given number of bytes, or all connections at once. */
#ifndef CHAND_TESTS_TCPPROXY_H
#define CHAND_TESTS_TCPPROXY_H

#include <stdbool.h>

struct tcpproxy;

/* Listens on a free 127.0.0.1 port and forwards every accepted
 * connection to 127.0.0.1:target_port. NULL on failure. */
struct tcpproxy *tcpproxy_start(int target_port);
/* The port it listens on. */
int tcpproxy_port(const struct tcpproxy *p);
/* The next nconns connections accepted are cut once bytes bytes have
 * passed through them (both directions counted together). bytes 0
 * disarms. */
void tcpproxy_cut_after(struct tcpproxy *p, long bytes, int nconns);
/* The next n connections accepted get limits[0..n-1] in order (at most
 * 16; 0: not cut), as if tcpproxy_cut_after(limits[i], 1) were called
 * just before each is accepted. Armed in advance, so a peer that
 * reconnects at once cannot slip through between two cuts. */
void tcpproxy_cut_plan(struct tcpproxy *p, const long *limits, int n);
/* Closes every connection open now (both sides). */
void tcpproxy_cut_all(struct tcpproxy *p);
/* Stops forwarding (leaves the bytes unread) client->server (c2s) and/or
 * server->client (s2c) on every connection, now and later, until called
 * again with false. The connection stays open: a peer waits for data that
 * never comes. Takes effect before it returns (it waits 300 ms). */
void tcpproxy_freeze(struct tcpproxy *p, bool c2s, bool s2c);
/* Arms a one-shot freeze: once any connection has passed bytes bytes
 * (both directions counted together, as for cuts), both directions of
 * every connection freeze as with tcpproxy_freeze(p, true, true), exactly
 * at that byte; tcpproxy_freeze(p, false, false) thaws them. bytes 0
 * disarms. */
void tcpproxy_freeze_after(struct tcpproxy *p, long bytes);
/* True once an armed freeze_after has fired. */
bool tcpproxy_froze(const struct tcpproxy *p);
/* Refuses (accepts and closes at once) new connections while true. */
void tcpproxy_refuse(struct tcpproxy *p, bool refuse);
/* Connections accepted so far, and how many of them were cut by a byte
 * limit. */
int tcpproxy_accepted(const struct tcpproxy *p);
int tcpproxy_cuts(const struct tcpproxy *p);
/* Stops listening, closes every connection and frees p. */
void tcpproxy_stop(struct tcpproxy *p);

#endif
