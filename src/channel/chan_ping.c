/* Ping sessions (doc/PROTOCOL.md 9): INIT with the PING flag, then PING /
 * PING_ACK, STOP(PING_END) / STOP_ACK.  They prove that the definitions,
 * certificates and CipherSpecs of both ends fit, without touching sync
 * records or a running instance. */
#include <string.h>
#include <time.h>

#include "chan_int.h"
#include "chand/log.h"

#define PING_DATA 64

int chan_ping_exchange(struct chan_sess *s, int64_t *rtt_us)
{
	uint8_t data[PING_DATA];
	struct frame f;
	struct timespec t0, t1;
	int rd;

	msg_new_id(data);
	msg_new_id(data + 24);
	memset(data + 48, 0x5a, PING_DATA - 48);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (frame_encode_ping(&s->out, &s->w, data, sizeof(data), NULL) != FRAME_OK ||
	    chan_flush(s) != 0)
		return -1;
	rd = chan_await(s, CHAN_T_NEGO_MS, WAKE_STOP_ENDS, "PING_ACK", &f);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rd != RD_FRAME)
		return -1;
	if (f.h.type != FRAME_PING_ACK)
		return chan_unexpected(s, &f, "P_WAIT_PING_ACK");
	if (f.u.ping.len != sizeof(data) || memcmp(f.u.ping.data, data, sizeof(data)) != 0) {
		chan_fail(s, CHD_CH_PROTOCOL, "PING_ACK does not echo the PING data");
		chan_send_error(s, CHD_CH_PROTOCOL, s->text);
		return -1;
	}
	*rtt_us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (frame_encode_stop(&s->out, &s->w, FRAME_STOP_PING_END, NULL) != FRAME_OK ||
	    chan_flush(s) != 0)
		return -1;
	if (chan_await(s, CHAN_T_NEGO_MS, WAKE_STOP_ENDS, "STOP_ACK", &f) != RD_FRAME)
		return -1;
	if (f.h.type != FRAME_STOP_ACK)
		return chan_unexpected(s, &f, "P_WAIT_STOP_ACK");
	return 0;
}

int chan_ping_respond(struct chan_sess *s)
{
	struct frame f;
	int pings = 0;

	for (;;) {
		int rd = chan_read_frame(s, CHAN_T_NEGO_MS, &f);
		if (rd == RD_TIMEOUT)
			return chan_fail(s, CHD_CH_HEARTBEAT, "ping session: nothing within %d s",
			                 CHAN_T_NEGO_MS / 1000);
		if (rd == RD_WOKEN)
			return chan_fail(s, CHD_CH_STOP, "ping session ended: queue manager ending");
		if (rd != RD_FRAME)
			return -1;
		if (f.h.type == FRAME_PING) {
			if (++pings > CHAN_MAX_PINGS) {
				chan_fail(s, CHD_CH_PROTOCOL, "more than %d PINGs in one session",
				          CHAN_MAX_PINGS);
				chan_send_error(s, CHD_CH_PROTOCOL, s->text);
				return -1;
			}
			if (frame_encode_ping_ack(&s->out, &s->w, f.u.ping.data, f.u.ping.len, NULL) !=
			        FRAME_OK || chan_flush(s) != 0)
				return -1;
			continue;
		}
		if (f.h.type == FRAME_STOP) {
			if (frame_encode_stop_ack(&s->out, &s->w) != FRAME_OK || chan_flush(s) != 0)
				return -1;
			log_info(code_str(CHD_CH_PING), "channel=%s peer=%s ping answered", s->def.name, s->peer_addr);
			return 0;
		}
		return chan_unexpected(s, &f, "E_IDLE");
	}
}
