/* One connection's protocol machinery: buffered frame reading with
 * deadlines and wake-ups, sending, failures, and publishing status. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_int.h"
#include "chand/log.h"

void chan_sfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

int64_t chan_t_reply_ms(uint32_t hbint)
{
	int64_t h = hbint > 30 ? hbint : 30;

	return (2 * h + 10) * 1000;
}

int64_t chan_t_dead_ms(uint32_t hbint)
{
	return hbint == 0 ? -1 : (2 * (int64_t)hbint + 10) * 1000;
}

void chan_sess_init(struct chan_sess *s, struct chan_conn *conn)
{
	memset(s, 0, sizeof(*s));
	s->conn = conn;
	frame_writer_init(&s->w);
	frame_buf_init(&s->out);
	s->max_payload = FRAME_CTRL_PAYLOAD_MAX;
}

void chan_sess_free(struct chan_sess *s)
{
	if (s->tc != NULL)
		tls_close(s->tc);
	s->tc = NULL;
	frame_buf_free(&s->out);
	free(s->rbuf);
	s->rbuf = NULL;
}

int chan_fail(struct chan_sess *s, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;

	if (s->end != END_NONE)
		return -1;
	s->end = END_ERROR;
	va_start(ap, fmt);
	code_vset(&s->code, code, s->text, sizeof(s->text), fmt, ap);
	va_end(ap);
	return -1;
}

int chan_flush(struct chan_sess *s)
{
	struct tls_error err = { 0 };
	int64_t t = chan_t_reply_ms(s->hbint);
	unsigned ku;

	if (s->out.len == 0)
		return 0;
	/* KeyUpdates (ours, or answers to the peer's) go out only inside
	 * tls_send_all: publish the count when it moved. */
	ku = tls_conn_key_updates(s->tc);
	if (tls_send_all(s->tc, s->out.p, s->out.len, (int)t, &err) != 0) {
		frame_buf_reset(&s->out);
		if (err.code == CHD_CH_STOP)
		{
			char why[96];
			chan_conn_get_why(s->conn, why, sizeof(why), "stopped");
			return chan_fail(s, CHD_CH_STOP, "channel ended: %s", why);
		}
		return chan_fail(s, err.code, "%s", err.text);
	}
	s->bytes_sent += s->out.len;
	s->last_send_mono = time_mono_ms();
	frame_buf_reset(&s->out);
	if (tls_conn_key_updates(s->tc) != ku) {
		pthread_mutex_lock(&chan_sup.mtx);
		if (s->rt != NULL)
			s->rt->st.key_updates = tls_conn_key_updates(s->tc);
		pthread_mutex_unlock(&chan_sup.mtx);
	}
	return 0;
}

void chan_send_error(struct chan_sess *s, enum chd_code_id code, const char *text)
{
	struct frame_buf b;
	struct tls_error err;

	if (s->tc == NULL || s->error_sent || s->peer_error)
		return;
	s->error_sent = true;
	/* whatever was encoded but not sent is dropped; the frame counter
	 * must then match what the peer received */
	if (s->out.len > 0) {
		/* frames still in out were never sent: rewind the counter */
		struct frame_header h;
		size_t off = 0;
		while (off + FRAME_HEADER_LEN <= s->out.len &&
		       frame_header_decode(s->out.p + off, s->out.len - off, &h, FRAME_PAYLOAD_MAX,
		                           NULL) == FRAME_OK) {
			s->w.counter--;
			off += FRAME_HEADER_LEN + h.length;
		}
		frame_buf_reset(&s->out);
	}
	chan_conn_drain_all(s->conn);
	frame_buf_init(&b);
	if (frame_encode_error(&b, &s->w, code_str(code), text) == FRAME_OK)
		(void)tls_send_all(s->tc, b.p, b.len, 2000, &err);
	frame_buf_free(&b);
}

struct store *chan_store(struct chan_sess *s)
{
	char err[256];

	if (s->st == NULL) {
		if (chan_sup.host.store_open(chan_sup.host.arg, &s->st, err, sizeof(err)) != STORE_OK) {
			s->st = NULL;
			chan_fail(s, CHD_DB_ERROR, "cannot open the database: %s", err);
			return NULL;
		}
		(void)store_ext_tune(s->st);
		/* a persistent message a sender reads reaches the receiver's
		 * commit only through an END_BATCH, which goes after this end's
		 * in-doubt commit -- durable, and later in the WAL than the put:
		 * no read of a channel needs to wait for a sync */
		store_gate_off(s->st);
	}
	return s->st;
}

void chan_store_idle(struct chan_sess *s)
{
	if (s->st != NULL && time_mono_ms() - s->work_mono >= CHAN_STORE_IDLE_MS) {
		store_close(s->st);
		s->st = NULL;
	}
}

bool chan_frame_buffered(struct chan_sess *s)
{
	struct frame_header h;
	size_t avail = s->rend - s->rstart;

	if (avail < FRAME_HEADER_LEN)
		return false;
	if (frame_header_decode(s->rbuf + s->rstart, avail, &h, s->max_payload, NULL) != FRAME_OK)
		return true; /* let chan_read_frame report it */
	return avail >= FRAME_HEADER_LEN + (size_t)h.length;
}

int chan_await(struct chan_sess *s, int64_t timeout_ms, enum chan_wake wake, const char *what,
               struct frame *f)
{
	int64_t deadline = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline < 0 ? -1 : deadline - time_mono_ms();
		int rd = chan_read_frame(s, deadline < 0 ? -1 : left > 0 ? left : 0, f);
		enum chan_stop st;

		if (rd == RD_FRAME)
			return RD_FRAME;
		if (rd == RD_TIMEOUT) {
			if (what == NULL)
				return RD_TIMEOUT;
			chan_fail(s, CHD_CH_HEARTBEAT, "no %s within %lld s", what,
			          (long long)(timeout_ms + 999) / 1000);
			return RD_ERR;
		}
		if (rd != RD_WOKEN)
			return RD_ERR;
		st = chan_stop_req(s);
		if (st == STOP_FORCE) {
			chan_fail_forced(s);
			if (wake == WAKE_STOP_ENDS)
				chan_send_error(s, CHD_CH_STOP, s->text);
			return RD_ERR;
		}
		if (wake == WAKE_RETURNS)
			return RD_WOKEN;
		if (st != STOP_NONE && wake == WAKE_STOP_ENDS) {
			chan_fail(s, CHD_CH_STOP, "channel ended: %s",
			          st == STOP_SHUTDOWN ? "queue manager ending" : "stopped by operator");
			chan_send_error(s, CHD_CH_STOP, s->text);
			return RD_ERR;
		}
	}
}

/* 1: MSG frames up to an END_BATCH are buffered; 0: not yet; -1: some
 * other frame (or a bad one) comes first. */
static int batch_scan(struct chan_sess *s)
{
	size_t off = s->rstart;
	struct frame_header h;

	while (s->rend - off >= FRAME_HEADER_LEN) {
		if (frame_header_decode(s->rbuf + off, s->rend - off, &h, s->max_payload, NULL) !=
		    FRAME_OK)
			return -1;
		if (s->rend - off < FRAME_HEADER_LEN + (size_t)h.length)
			return 0;
		if (h.type == FRAME_END_BATCH)
			return 1;
		if (h.type != FRAME_MSG)
			return -1;
		off += FRAME_HEADER_LEN + (size_t)h.length;
	}
	return 0;
}

/* Reads into the free end of the buffer only (frames already decoded
 * point into it), until a whole batch is there or wait_ms have passed;
 * wait_ms 0 takes what the socket holds without waiting.  A timeout, a
 * wake-up, EOF or an error all answer false: the next read reports them. */
bool chan_batch_wait(struct chan_sess *s, int64_t wait_ms)
{
	int64_t deadline = time_mono_ms() + wait_ms;
	bool polled = false;

	for (;;) {
		int r = batch_scan(s);
		if (r != 0)
			return r > 0;
		int64_t left = deadline - time_mono_ms();
		if (s->rbuf == NULL || s->rend >= s->rcap || (polled && left <= 0))
			return false;
		polled = true;
		struct tls_error err = { 0 };
		ssize_t n = tls_recv(s->tc, s->rbuf + s->rend, s->rcap - s->rend,
		                     left > 0 ? (int)left : 0, &err);
		if (n <= 0)
			return false;
		s->rend += (size_t)n;
	}
}

/* Room for need bytes from rstart. */
static int rbuf_make_room(struct chan_sess *s, size_t need)
{
	size_t avail = s->rend - s->rstart;

	if (s->rbuf == NULL) {
		s->rcap = need > CHAN_RBUF_SIZE ? need : CHAN_RBUF_SIZE;
		if ((s->rbuf = malloc(s->rcap)) == NULL)
			return chan_fail(s, CHD_CH_CLOSED, "out of memory for the read buffer");
		s->rstart = s->rend = 0;
		return 0;
	}
	if (s->rcap - s->rstart >= need && s->rend < s->rcap)
		return 0;
	if (s->rstart > 0) {
		memmove(s->rbuf, s->rbuf + s->rstart, avail);
		s->rstart = 0;
		s->rend = avail;
	}
	if (s->rcap < need || s->rend == s->rcap) {
		size_t cap = s->rcap;
		uint8_t *p;
		while (cap < need || cap == s->rend)
			cap *= 2;
		if ((p = realloc(s->rbuf, cap)) == NULL)
			return chan_fail(s, CHD_CH_CLOSED, "out of memory for a frame of %zu bytes", need);
		s->rbuf = p;
		s->rcap = cap;
	}
	return 0;
}

int chan_read_frame(struct chan_sess *s, int64_t timeout_ms, struct frame *f)
{
	int64_t deadline = timeout_ms >= 0 ? time_mono_ms() + timeout_ms : -1;
	struct frame_err ferr;
	bool polled = false;

	if (s->end != END_NONE)
		return RD_ERR;
	for (;;) {
		size_t avail = s->rend - s->rstart, need = FRAME_HEADER_LEN;
		struct frame_header h;
		struct tls_error err = { 0 };
		int64_t tmo = -1;
		ssize_t n;

		if (avail >= FRAME_HEADER_LEN) {
			int rc = frame_header_decode(s->rbuf + s->rstart, avail, &h, s->max_payload, &ferr);
			if (rc != FRAME_OK) {
				chan_fail(s, CHD_CH_PROTOCOL, "bad frame from the peer: %s", ferr.why);
				chan_send_error(s, CHD_CH_PROTOCOL, s->text);
				return RD_ERR;
			}
			need = FRAME_HEADER_LEN + (size_t)h.length;
			if (avail >= need) {
				if (h.counter != s->rcounter) {
					chan_fail(s, CHD_CH_PROTOCOL, "frame counter %u from the peer, expected %u",
					          h.counter, s->rcounter);
					chan_send_error(s, CHD_CH_PROTOCOL, s->text);
					return RD_ERR;
				}
				if (s->rversion != 0 && h.type != FRAME_INIT && h.type != FRAME_INIT_ACK &&
				    h.type != FRAME_ERROR && h.version != s->rversion) {
					chan_fail(s, CHD_CH_PROTOCOL, "%s frame of version %u, negotiated %u",
					          frame_type_name(h.type), h.version, s->rversion);
					chan_send_error(s, CHD_CH_PROTOCOL, s->text);
					return RD_ERR;
				}
				if (frame_decode(&h, s->rbuf + s->rstart + FRAME_HEADER_LEN, h.length, f,
				                 &ferr) != FRAME_OK) {
					chan_fail(s, CHD_CH_PROTOCOL, "bad %s frame from the peer: %s",
					          frame_type_name(h.type), ferr.why);
					chan_send_error(s, CHD_CH_PROTOCOL, s->text);
					return RD_ERR;
				}
				s->rstart += need;
				s->rcounter++;
				s->bytes_received += need;
				s->last_recv_mono = time_mono_ms();
				if (s->rstart == s->rend)
					s->rstart = s->rend = 0;
				if (h.type == FRAME_ERROR) {
					s->peer_error = true;
					chan_fail(s, chan_code_id(f->u.error.code), "peer %s: %s",
					          s->peer_qmgr[0] ? s->peer_qmgr : "agent", f->u.error.text);
					if (s->end == END_ERROR && s->code == chan_code_id(f->u.error.code))
						str_copy(s->peer_code, f->u.error.code, sizeof(s->peer_code));
					return RD_ERR;
				}
				return RD_FRAME;
			}
		}
		if (rbuf_make_room(s, need) != 0)
			return RD_ERR;
		if (deadline >= 0) {
			tmo = deadline - time_mono_ms();
			/* timeout 0 still takes what the socket holds: one read
			 * that does not wait (the sender collects CONFIRMs so) */
			if (tmo <= 0 && (timeout_ms != 0 || polled))
				return RD_TIMEOUT;
			if (tmo < 0)
				tmo = 0;
			polled = true;
		}
		n = tls_recv(s->tc, s->rbuf + s->rend, s->rcap - s->rend, (int)(tmo > INT32_MAX ? INT32_MAX : tmo),
		             &err);
		if (n > 0) {
			s->rend += (size_t)n;
			continue;
		}
		if (n == 0) {
			chan_fail(s, CHD_CH_CLOSED, "the peer closed the connection");
			return RD_ERR;
		}
		if (err.code == CHD_CH_HEARTBEAT) {
			if (deadline >= 0 && time_mono_ms() >= deadline)
				return RD_TIMEOUT;
			continue;
		}
		if (err.code == CHD_CH_STOP) {
			chan_conn_drain(s->conn);
			return RD_WOKEN;
		}
		chan_fail(s, err.code, "%s", err.text);
		return RD_ERR;
	}
}

enum chd_code_id chan_code_id(const char *code)
{
	size_t n;
	const struct chd_code *t = code_table(&n), *k = code_lookup(code);

	return k != NULL ? (enum chd_code_id)(k - t) : CHD_TLS_PEER_REFUSED;
}

const char *chan_sess_code(const struct chan_sess *s)
{
	return s->peer_code[0] ? s->peer_code : code_str(s->code);
}

int chan_unexpected(struct chan_sess *s, const struct frame *f, const char *state)
{
	chan_fail(s, CHD_CH_PROTOCOL, "unexpected %s in state %s", frame_type_name(f->h.type), state);
	chan_send_error(s, CHD_CH_PROTOCOL, s->text);
	return -1;
}

enum chan_stop chan_stop_req(struct chan_sess *s)
{
	enum chan_stop r;

	pthread_mutex_lock(&chan_sup.mtx);
	r = s->conn->stop;
	pthread_mutex_unlock(&chan_sup.mtx);
	return r;
}

void chan_set_idle(struct chan_sess *s, bool idle, bool sender)
{
	pthread_mutex_lock(&chan_sup.mtx);
	s->conn->idle = idle;
	s->conn->idle_sender = idle && sender;
	pthread_mutex_unlock(&chan_sup.mtx);
	if (!idle)
		chan_conn_drain(s->conn);
}

/* ---- status ---- */

void chan_status_state(struct chan_rt *rt, enum chan_state st, const char *substate)
{
	enum chan_state old;
	char name[CHAND_NAME_MAX + 1];

	if (rt == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	str_copy(name, rt->def.name, sizeof(name));
	old = rt->st.state;
	rt->st.state = st;
	str_copy(rt->st.substate, substate ? substate : "", sizeof(rt->st.substate));
	pthread_mutex_unlock(&chan_sup.mtx);
	if (old != st)
		log_debug("channel=%s state %s -> %s", name, chan_state_name(old),
		          chan_state_name(st));
}

void chan_status_substate(struct chan_sess *s, const char *substate)
{
	if (s->rt == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	str_copy(s->rt->st.substate, substate, sizeof(s->rt->st.substate));
	pthread_mutex_unlock(&chan_sup.mtx);
}

void chan_status_error(struct chan_rt *rt, enum chd_code_id code, const char *text)
{
	if (rt == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	str_copy(rt->st.last_error_code, code_str(code), sizeof(rt->st.last_error_code));
	str_copy(rt->st.last_error, text, sizeof(rt->st.last_error));
	pthread_mutex_unlock(&chan_sup.mtx);
}

void chan_status_tls(struct chan_sess *s)
{
	struct tls_info ti;

	if (s->rt == NULL || s->tc == NULL)
		return;
	tls_conn_info(s->tc, &ti);
	struct tls_peer_chain *pc = tls_peer_chain_copy(s->tc);
	pthread_mutex_lock(&chan_sup.mtx);
	tls_peer_chain_free(s->conn->peer_chain);
	s->conn->peer_chain = pc;
	s->rt->st.connected = true;
	s->rt->st.encrypted = ti.encrypted;
	str_copy(s->rt->st.tls_version, ti.version, sizeof(s->rt->st.tls_version));
	str_copy(s->rt->st.cipher, ti.cipher, sizeof(s->rt->st.cipher));
	str_copy(s->rt->st.local_label, ti.local_label, sizeof(s->rt->st.local_label));
	str_copy(s->rt->st.peer_dn, ti.peer_dn, sizeof(s->rt->st.peer_dn));
	str_copy(s->rt->st.peer_issuer_dn, ti.peer_issuer_dn, sizeof(s->rt->st.peer_issuer_dn));
	s->rt->st.peer_not_after_ms = ti.peer_not_after_ms;
	str_copy(s->rt->st.rqmname, s->peer_qmgr, sizeof(s->rt->st.rqmname));
	pthread_mutex_unlock(&chan_sup.mtx);
}

void chan_enter_running(struct chan_sess *s, uint32_t seq)
{
	pthread_mutex_lock(&chan_sup.mtx);
	if (s->rt != NULL) {
		struct chan_status *st = &s->rt->st;
		s->rt->failures = 0;
		s->rt->ran = true;
		st->state = CHS_RUNNING;
		str_copy(st->substate, "IDLE", sizeof(st->substate));
		st->start_time_ms = time_now_ms();
		st->msgs = st->batches = 0;
		st->bytes_sent = s->bytes_sent;
		st->bytes_received = s->bytes_received;
		st->key_updates = s->tc != NULL ? tls_conn_key_updates(s->tc) : 0;
		st->committed_seq = st->current_seq = seq;
		st->indoubt = false;
		st->retries_left = -1;
		st->next_retry_ms = 0;
		/* A missing local label is kept: the channel runs, but without
		 * our certificate, and the operator should still see why. */
		if (strcmp(st->last_error_code, code_str(CHD_TLS_LABEL)) != 0) {
			st->last_error_code[0] = '\0';
			st->last_error[0] = '\0';
		}
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	log_info(code_str(CHD_CH_START), "channel=%s type=%s peer=%s rqmname=%s batchsz=%u "
	         "maxmsgl=%u hbint=%u seq=%u encrypted=%s protocol=%u channel started", s->def.name,
	         chan_type_name(s->def.type), s->peer_addr, s->peer_qmgr, s->batchsz, s->maxmsgl,
	         s->hbint, seq, s->encrypted ? "yes" : "no", s->w.version);
}

static pthread_mutex_t why_mtx = PTHREAD_MUTEX_INITIALIZER;

void chan_conn_set_why(struct chan_conn *c, const char *why)
{
	pthread_mutex_lock(&why_mtx);
	str_copy(c->stop_why, why, sizeof(c->stop_why));
	pthread_mutex_unlock(&why_mtx);
}

void chan_conn_get_why(struct chan_conn *c, char *buf, size_t len, const char *dflt)
{
	pthread_mutex_lock(&why_mtx);
	str_copy(buf, c->stop_why[0] ? c->stop_why : dflt, len);
	pthread_mutex_unlock(&why_mtx);
}

int chan_fail_forced(struct chan_sess *s)
{
	char why[96];

	chan_conn_get_why(s->conn, why, sizeof(why), "stopped by operator, force");
	return chan_fail(s, CHD_CH_STOP, "channel ended: %s", why);
}
