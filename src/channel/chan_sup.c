/* The channel supervisor: the table of defined channels and their status,
 * the connection threads, the watcher thread, start/stop of the module,
 * and what happens when a run ends (state, retry, logs).
 *
 * Why one watcher: a stopped or inactive sender costs no thread.  The
 * watcher sleeps on the store's change notifier (any put anywhere) and
 * on the nearest retry time; on a change it starts the inactive senders
 * whose transmission queue holds messages and wakes the running senders
 * that wait for work.  Scans are at least CHAN_WATCH_MIN_MS apart, so a
 * busy producer costs at most a hundred scans a second. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "chan_int.h"
#include "chand/log.h"

struct chan_sup chan_sup = {
	.mtx = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.proto_max = FRAME_VERSION_MAX,
};

/* ---- retry schedule ---- */

/* Channels that failed together (their partner's outage) must not come
 * back in lockstep: each retry delay is SHORTTMR or LONGTMR +-
 * CHAN_RETRY_JITTER_PCT %, drawn anew for every retry (doc/CHANNELS.md
 * 5).  Not for secrecy, so a xorshift generator suffices. */
#define CHAN_RETRY_JITTER_PCT 20

static int64_t retry_jitter(int64_t delay)   /* mtx held */
{
	static uint64_t x;
	int64_t span = delay * CHAN_RETRY_JITTER_PCT / 100;

	if (x == 0)
		x = ((uint64_t)time_now_ms() * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)getpid() << 32) ^
		    (uint64_t)(uintptr_t)&x ^ 1u;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	if (span <= 0)
		return delay;
	return delay - span + (int64_t)(x % (uint64_t)(2 * span + 1));
}

/* chan_retry_next with the jitter applied to the delay (mtx held). */
static bool retry_next(const struct chan_rt *rt, int64_t *delay, long *left)
{
	if (!chan_retry_next(&rt->def, rt->failures, delay, left))
		return false;
	*delay = retry_jitter(*delay);
	return true;
}

/* ---- channel table (mtx held) ---- */

struct chan_rt *chan_rt_find(const char *name)
{
	for (size_t i = 0; i < chan_sup.n; i++)
		if (chan_sup.v[i]->defined && strcmp(chan_sup.v[i]->def.name, name) == 0)
			return chan_sup.v[i];
	return NULL;
}

struct chan_rt *chan_rt_get_or_add(const struct chan_def *d)
{
	struct chan_rt *rt = NULL;

	for (size_t i = 0; i < chan_sup.n; i++)
		if (strcmp(chan_sup.v[i]->def.name, d->name) == 0)
			rt = chan_sup.v[i];
	if (rt == NULL) {
		if (chan_sup.n == chan_sup.cap) {
			size_t cap = chan_sup.cap ? chan_sup.cap * 2 : 64;
			struct chan_rt **v = realloc(chan_sup.v, cap * sizeof(*v));
			if (v == NULL)
				return NULL;
			chan_sup.v = v;
			chan_sup.cap = cap;
		}
		if ((rt = calloc(1, sizeof(*rt))) == NULL)
			return NULL;
		chan_sup.v[chan_sup.n++] = rt;
		rt->st.retries_left = -1;
		rt->st.xmitq_depth = -1;
		rt->st.oldest_msg_age_ms = -1;
	}
	if (!rt->defined) {
		/* a new definition (or one re-created after delete): fresh status */
		memset(&rt->st, 0, sizeof(rt->st));
		rt->st.retries_left = -1;
		rt->st.xmitq_depth = -1;
		rt->st.oldest_msg_age_ms = -1;
		rt->stopped = false;
		rt->failures = 0;
		rt->retry_at_mono = 0;
		rt->ran = false;
	}
	rt->def = *d;
	rt->defined = true;
	return rt;
}

/* ---- connections ---- */

static struct chan_conn *conn_alloc(void)
{
	struct chan_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "eventfd: %s", strerror(errno));
		free(c);
		return NULL;
	}
	return c;
}

static void conn_link(struct chan_conn *c)
{
	c->next = chan_sup.conns;
	chan_sup.conns = c;
}

struct chan_conn *chan_conn_new(void)
{
	struct chan_conn *c = conn_alloc();

	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&chan_sup.mtx);
	conn_link(c);
	pthread_mutex_unlock(&chan_sup.mtx);
	return c;
}

/* mtx held */
static void conn_unlink(struct chan_conn *c)
{
	for (struct chan_conn **pp = &chan_sup.conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->counted) {
		chan_sup.ncounted--;
		c->counted = false;
	}
	if (c->rt != NULL && c->rt->conn == c)
		c->rt->conn = NULL;
	pthread_cond_broadcast(&chan_sup.cond);
}

void chan_conn_free(struct chan_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&chan_sup.mtx);
	conn_unlink(c);
	tls_peer_chain_free(c->peer_chain);
	c->peer_chain = NULL;
	pthread_mutex_unlock(&chan_sup.mtx);
	close(c->wake_fd);
	free(c);
}

void chan_conn_wake(struct chan_conn *c)
{
	uint64_t one = 1;

	if (write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("channel wake: %s", strerror(errno));
}

void chan_conn_drain_all(struct chan_conn *c)
{
	uint64_t v;

	while (read(c->wake_fd, &v, sizeof(v)) > 0)
		;
}

/* A force stop stays armed: every later blocking call must see it. */
void chan_conn_drain(struct chan_conn *c)
{
	bool force;

	chan_conn_drain_all(c);
	pthread_mutex_lock(&chan_sup.mtx);
	force = c->stop == STOP_FORCE;
	pthread_mutex_unlock(&chan_sup.mtx);
	if (force)
		chan_conn_wake(c);
}

/* ---- threads ---- */

int chan_thread_spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;
	size_t stack = CHAN_STACK_SIZE;

#if defined(__SANITIZE_ADDRESS__)
	stack *= 4; /* sanitizer frames are several times larger */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	stack *= 4;
#endif
#endif
	if ((rc = pthread_attr_init(&a)) != 0)
		return rc;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, stack);
	pthread_mutex_lock(&chan_sup.mtx);
	chan_sup.nthreads++;
	pthread_mutex_unlock(&chan_sup.mtx);
	rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		pthread_mutex_lock(&chan_sup.mtx);
		chan_sup.nthreads--;
		pthread_cond_broadcast(&chan_sup.cond);
		pthread_mutex_unlock(&chan_sup.mtx);
	}
	return rc;
}

void chan_thread_done(void)
{
	pthread_mutex_lock(&chan_sup.mtx);
	chan_sup.nthreads--;
	pthread_cond_broadcast(&chan_sup.cond);
	pthread_mutex_unlock(&chan_sup.mtx);
}

void chan_kick_watcher(void)
{
	atomic_store(&chan_sup.kick, 1);
	store_wake_all();
}

/* ---- initiators ---- */

static void *initiator_main(void *arg)
{
	struct chan_conn *conn = arg;
	struct chan_sess s;

	chan_sess_init(&s, conn);
	pthread_mutex_lock(&chan_sup.mtx);
	s.rt = conn->rt;
	s.def = s.rt->def;
	pthread_mutex_unlock(&chan_sup.mtx);
	s.initiator = true;
	s.sending = chan_def_sends(&s.def);
	s.owner = chan_sup.host.owner_id();
	if (chan_open_initiator(&s, false) == 0) {
		if (s.sending)
			chan_run_sender(&s);
		else
			chan_run_receiver(&s);
	}
	chan_finish(&s);
	chan_thread_done();
	return NULL;
}

int chan_launch(struct chan_rt *rt, struct chan_result *r)
{
	struct chan_conn *c;

	if (rt->conn != NULL || rt->launching)
		return 0;
	if (atomic_load(&chan_sup.stopping)) {
		r->code = CHD_CH_STOP;
		snprintf(r->text, sizeof(r->text), "the queue manager is ending");
		return -1;
	}
	if (chan_sup.host.max_channels > 0 && chan_sup.ncounted >= chan_sup.host.max_channels) {
		r->code = CHD_CH_MAXCHANNELS;
		snprintf(r->text, sizeof(r->text), "channel %s cannot start: limits.max_channels (%ld) "
		         "channels are running", rt->def.name, chan_sup.host.max_channels);
		return -1;
	}
	if ((c = conn_alloc()) == NULL) {
		r->code = CHD_CH_CLOSED;
		snprintf(r->text, sizeof(r->text), "out of resources (eventfd)");
		return -1;
	}
	c->rt = rt;
	c->counted = true;
	chan_sup.ncounted++;
	conn_link(c);
	rt->conn = c;
	rt->retry_at_mono = 0;
	rt->st.next_retry_ms = 0;
	rt->st.state = rt->def.type == CHT_RQSTR ? CHS_REQUESTING : CHS_INITIALIZING;
	rt->st.substate[0] = '\0';
	rt->launching = true;
	/* the thread takes mtx first thing: release it around the create */
	pthread_mutex_unlock(&chan_sup.mtx);
	int rc = chan_thread_spawn(initiator_main, c);
	pthread_mutex_lock(&chan_sup.mtx);
	rt->launching = false;
	if (rc != 0) {
		conn_unlink(c);
		close(c->wake_fd);
		free(c);
		rt->st.state = CHS_INACTIVE;
		r->code = CHD_CH_CLOSED;
		snprintf(r->text, sizeof(r->text), "cannot create a thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- end of a run ---- */

static bool end_stops(const struct chan_sess *s)
{
	return s->code == CHD_CH_SEQ || s->code == CHD_CH_NO_DLQ || s->code == CHD_Q_MSG_TOO_LONG;
}

void chan_finish(struct chan_sess *s)
{
	struct chan_rt *rt = s->rt;
	struct chan_conn *conn = s->conn;
	const char *name = rt != NULL ? s->def.name : "?";
	const char *code = chan_sess_code(s);
	bool replaced, mine;
	enum chan_stop stop;

	if (s->sending && s->owner != 0)
		store_release_owner(s->owner);
	if (s->end == END_NONE)
		chan_fail(s, CHD_CH_CLOSED, "connection ended");
	if (s->end == END_ERROR && s->tc != NULL)
		chan_send_error(s, s->code, s->text);
	if (s->tc != NULL) {
		tls_close(s->tc);
		s->tc = NULL;
	}

	pthread_mutex_lock(&chan_sup.mtx);
	stop = conn->stop;
	{
		char why[96];
		chan_conn_get_why(conn, why, sizeof(why), "");
		replaced = stop == STOP_FORCE && strcmp(why, "replaced") == 0;
	}
	mine = rt != NULL && rt->conn == conn && rt->defined;
	if (mine) {
		struct chan_status *st = &rt->st;
		st->connected = false;
		st->substate[0] = '\0';
		st->retries_left = -1;
		st->next_retry_ms = 0;
		if (s->end == END_ERROR && !(s->code == CHD_CH_STOP && stop != STOP_NONE)) {
			str_copy(st->last_error_code, code, sizeof(st->last_error_code));
			str_copy(st->last_error, s->text, sizeof(st->last_error));
		}
		if (replaced) {
			st->state = CHS_INACTIVE;
		} else if (s->end == END_STOPPED || stop == STOP_QUIESCE || stop == STOP_FORCE) {
			st->state = CHS_STOPPED;
			rt->stopped = true;
		} else if (s->end == END_SHUTDOWN || stop == STOP_SHUTDOWN ||
		           atomic_load(&chan_sup.stopping)) {
			st->state = CHS_INACTIVE;
		} else if (s->end == END_DISCINT) {
			st->state = CHS_INACTIVE;
			rt->failures = 0;
		} else if (s->end == END_ERROR && end_stops(s)) {
			st->state = CHS_STOPPED;
			rt->stopped = true;
		} else if (s->initiator && (s->end == END_ERROR || s->end == END_PEER_STOP)) {
			int64_t delay;
			long left;
			if (s->end == END_PEER_STOP) {
				str_copy(st->last_error_code, code_str(CHD_CH_STOP), sizeof(st->last_error_code));
				chan_sfmt(st->last_error, sizeof(st->last_error), "channel ended by %s: %s",
				          s->peer_qmgr[0] ? s->peer_qmgr : "the peer",
				          s->peer_stop_reason == FRAME_STOP_SHUTDOWN ? "its queue manager is ending"
				                                                     : "stopped by its operator");
			}
			rt->failures++;
			if (retry_next(rt, &delay, &left)) {
				st->state = CHS_RETRYING;
				st->retries_left = left;
				rt->retry_at_mono = time_mono_ms() + delay;
				st->next_retry_ms = time_now_ms() + delay;
			} else {
				st->state = CHS_STOPPED;
				rt->stopped = true;
			}
		} else {
			st->state = CHS_INACTIVE;
		}
	}
	enum chan_state final = mine ? rt->st.state : CHS_INACTIVE;
	long left = mine ? rt->st.retries_left : -1;
	pthread_mutex_unlock(&chan_sup.mtx);
	/* STOPPED outlives a restart of the agent */
	if (mine && final == CHS_STOPPED) {
		char err[256] = "";
		if (s->st == NULL &&
		    chan_sup.host.store_open(chan_sup.host.arg, &s->st, err, sizeof(err)) != STORE_OK)
			s->st = NULL;
		if (s->st == NULL || store_ext_set_stopped(s->st, name, true) != STORE_OK)
			log_error(code_str(CHD_DB_ERROR), "channel=%s cannot record the STOPPED state: %s",
			          name, s->st != NULL ? store_errmsg(s->st) : err);
	}
	if (s->st != NULL) {
		store_close(s->st);
		s->st = NULL;
	}

	/* the log line of the end of the run */
	if (s->end == END_ERROR && !(s->code == CHD_CH_STOP && stop != STOP_NONE)) {
		if (s->peer_error)
			log_error(code, "channel=%s peer=%s peer_error=%s %s", name, s->peer_addr, code,
			          s->text);
		else
			log_error(code, "channel=%s peer=%s %s", name, s->peer_addr, s->text);
	} else if (rt != NULL) {
		const char *why = s->end == END_DISCINT ? "disconnect interval"
		                  : s->end == END_PEER_STOP
		                    ? (s->peer_stop_reason == FRAME_STOP_SHUTDOWN ? "the peer is shutting down"
		                                                                  : "stopped by the peer")
		                  : s->end == END_SHUTDOWN || stop == STOP_SHUTDOWN ? "queue manager ending"
		                  : replaced ? "replaced by a new connection"
		                  : "stopped by operator";
		log_info(code_str(CHD_CH_STOP), "channel=%s peer=%s channel ended: %s", name,
		         s->peer_addr, why);
	}
	if (mine && final == CHS_RETRYING)
		log_warn(code_str(CHD_CH_RETRYING), "channel=%s peer=%s retries_left=%ld channel retrying",
		         name, s->peer_addr[0] ? s->peer_addr : "-", left);
	else if (mine && final == CHS_STOPPED)
		log_warn(code_str(CHD_CH_STOPPED), "channel=%s peer=%s channel stopped", name,
		         s->peer_addr[0] ? s->peer_addr : "-");
	chan_sess_free(s);
	chan_conn_free(conn);
	if (final == CHS_RETRYING)
		chan_kick_watcher();
}

/* ---- watcher ---- */

struct cand {
	struct chan_rt *rt;
	char xmitq[CHAND_NAME_MAX + 1];
	bool idle;           /* a running sender waiting for work */
	long depth;
};

static void watch_scan(struct store *st, bool changed, bool first)
{
	struct cand *c = NULL;
	size_t nc = 0;
	int64_t now = time_mono_ms();
	struct chan_result r;

	size_t n0;

	pthread_mutex_lock(&chan_sup.mtx);
	/* chan_launch lets go of mtx: a define meanwhile may add entries
	 * (appended, never moved), which the next scan sees */
	n0 = chan_sup.n;
	if (n0 > 0)
		c = calloc(n0, sizeof(*c));
	for (size_t i = 0; i < n0; i++) {
		struct chan_rt *rt = chan_sup.v[i];
		if (!rt->defined)
			continue;
		if (rt->conn != NULL) {
			/* only if its queue has messages: a put anywhere must not
			 * wake every idle sender */
			if (changed && rt->conn->idle_sender && c != NULL) {
				c[nc].rt = rt;
				c[nc].idle = true;
				str_copy(c[nc].xmitq, rt->def.xmitq, sizeof(c[nc].xmitq));
				nc++;
			}
			continue;
		}
		if (rt->launching || rt->stopped)
			continue;
		if (rt->retry_at_mono != 0) {
			if (now >= rt->retry_at_mono && chan_launch(rt, &r) != 0) {
				/* e.g. max_channels: count it as a failed attempt */
				int64_t delay;
				long left;
				rt->failures++;
				str_copy(rt->st.last_error_code, code_str(r.code), sizeof(rt->st.last_error_code));
				str_copy(rt->st.last_error, r.text, sizeof(rt->st.last_error));
				if (retry_next(rt, &delay, &left)) {
					rt->retry_at_mono = now + delay;
					rt->st.next_retry_ms = time_now_ms() + delay;
					rt->st.retries_left = left;
				} else {
					rt->retry_at_mono = 0;
					rt->st.state = CHS_STOPPED;
					rt->stopped = true;
				}
			}
			continue;
		}
		if ((changed || first) && c != NULL && chan_def_triggers(&rt->def) &&
		    rt->st.state == CHS_INACTIVE) {
			c[nc].rt = rt;
			c[nc].idle = false;
			str_copy(c[nc].xmitq, rt->def.xmitq, sizeof(c[nc].xmitq));
			nc++;
		}
	}
	pthread_mutex_unlock(&chan_sup.mtx);

	for (size_t i = 0; i < nc && st != NULL; i++) {
		struct queue_def q;
		size_t j;
		/* one query per queue, however many channels serve it */
		for (j = 0; j < i && strcmp(c[j].xmitq, c[i].xmitq) != 0; j++)
			;
		if (j < i) {
			c[i].depth = c[j].depth;
		} else {
			c[i].depth = 0;
			if (store_queue_get(st, c[i].xmitq, &q) == STORE_OK)
				c[i].depth = q.curdepth;
		}
		if (c[i].depth <= 0)
			continue;
		pthread_mutex_lock(&chan_sup.mtx);
		struct chan_rt *rt = c[i].rt;
		if (c[i].idle) {
			if (rt->conn != NULL && rt->conn->idle_sender)
				chan_conn_wake(rt->conn);
			pthread_mutex_unlock(&chan_sup.mtx);
			continue;
		}
		if (rt->defined && rt->conn == NULL && !rt->launching && !rt->stopped &&
		    rt->retry_at_mono == 0 && rt->st.state == CHS_INACTIVE &&
		    strcmp(rt->def.xmitq, c[i].xmitq) == 0) {
			log_info(code_str(CHD_CH_TRIGGERED), "channel=%s xmitq=%s depth=%ld starting: messages waiting",
			         rt->def.name, c[i].xmitq, c[i].depth);
			if (chan_launch(rt, &r) != 0)
				log_warn(code_str(r.code), "channel=%s %s", rt->def.name, r.text);
		}
		pthread_mutex_unlock(&chan_sup.mtx);
	}
	free(c);
}

static void *watcher_main(void *arg)
{
	struct store *st = NULL;
	char err[256];
	uint64_t gen = store_change_gen();
	bool first = true;
	int64_t last = 0;

	(void)arg;
	if (chan_sup.host.store_open(chan_sup.host.arg, &st, err, sizeof(err)) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "channel watcher cannot open the database: %s "
		          "(senders will not start by themselves)", err);
		st = NULL;
	}
	while (!atomic_load(&chan_sup.watcher_quit)) {
		int64_t now = time_mono_ms(), tmo = 1000;
		uint64_t before = gen;
		bool changed;

		pthread_mutex_lock(&chan_sup.mtx);
		for (size_t i = 0; i < chan_sup.n; i++) {
			struct chan_rt *rt = chan_sup.v[i];
			if (rt->defined && rt->retry_at_mono != 0 && rt->conn == NULL) {
				int64_t d = rt->retry_at_mono - now;
				if (d < tmo)
					tmo = d < 1 ? 1 : d;
			}
		}
		pthread_mutex_unlock(&chan_sup.mtx);
		if (!first && !atomic_exchange(&chan_sup.kick, 0))
			store_wait(&gen, (int)tmo);
		if (atomic_load(&chan_sup.watcher_quit))
			break;
		changed = gen != before;
		now = time_mono_ms();
		if (!first && now - last < CHAN_WATCH_MIN_MS) {
			struct timespec ts = { 0, (long)(CHAN_WATCH_MIN_MS - (now - last)) * 1000000L };
			nanosleep(&ts, NULL);
			/* puts made while sleeping are seen by this scan */
			gen = store_change_gen();
			changed = true;
		}
		last = time_mono_ms();
		watch_scan(st, changed, first);
		first = false;
	}
	if (st != NULL)
		store_close(st);
	return NULL;
}

/* ---- module start / stop ---- */

static int load_definitions(struct store *st)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_chandef_list(st, NULL, &names, &n)) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot list channel definitions: %s", store_errmsg(st));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *text = NULL, err[512];
		struct chan_def d;
		if (store_chandef_get(st, names[i], &text) != STORE_OK) {
			log_error(code_str(CHD_DB_ERROR), "channel=%s cannot read its definition: %s",
			          names[i], store_errmsg(st));
		} else if ((rc = chan_def_from_text(&d, names[i], text, err, sizeof(err))) != 0) {
			if (rc < 0)
				log_error(code_str(CHD_DB_ERROR), "channel=%s %s", names[i], err);
		} else {
			bool stopped = false;
			struct chan_rt *rt;
			if (store_ext_get_stopped(st, names[i], &stopped) != STORE_OK)
				log_error(code_str(CHD_DB_ERROR), "channel=%s %s", names[i], store_errmsg(st));
			pthread_mutex_lock(&chan_sup.mtx);
			if ((rt = chan_rt_get_or_add(&d)) == NULL) {
				log_error(code_str(CHD_SYS_RESOURCE), "channel=%s out of memory", names[i]);
			} else if (stopped) {
				rt->stopped = true;
				rt->st.state = CHS_STOPPED;
			}
			pthread_mutex_unlock(&chan_sup.mtx);
		}
		free(text);
		free(names[i]);
	}
	free(names);
	return 0;
}

int chan_sup_start(const struct chan_host *host)
{
	struct store *st;
	char err[256];
	int rc;

	chan_sup.host = *host;
	/* CHAND_PROTOCOL_MAX=1 makes this agent speak only version 1: for
	 * trying interoperation with older agents (doc/PROTOCOL.md 13) */
	chan_sup.proto_max = FRAME_VERSION_MAX;
	const char *pm = getenv("CHAND_PROTOCOL_MAX");
	if (pm != NULL && pm[0] >= '1' && pm[0] <= '0' + FRAME_VERSION_MAX && pm[1] == '\0') {
		chan_sup.proto_max = pm[0] - '0';
		log_info(code_str(CHD_CH_START), "channels: protocol versions %d-%d (CHAND_PROTOCOL_MAX)",
		         FRAME_VERSION_MIN, chan_sup.proto_max);
	}
	atomic_store(&chan_sup.stopping, false);
	atomic_store(&chan_sup.watcher_quit, false);
	if (host->store_open(host->arg, &st, err, sizeof(err)) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "channels: cannot open the database: %s", err);
		return -1;
	}
	if (store_ext_init(st) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "channels: %s", store_errmsg(st));
		store_close(st);
		return -1;
	}
	rc = load_definitions(st);
	store_close(st);
	if (rc != 0)
		return -1;
	if ((rc = pthread_create(&chan_sup.watcher, NULL, watcher_main, NULL)) != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "channels: cannot create the watcher thread: %s", strerror(rc));
		return -1;
	}
	chan_sup.watcher_on = true;
	log_info(code_str(CHD_CH_LOADED), "channels=%zu defined", chan_sup.n);
	return 0;
}

/* Waits until no connection thread is left or the deadline passes. */
static bool wait_threads(int64_t deadline)
{
	pthread_mutex_lock(&chan_sup.mtx);
	while (chan_sup.nthreads > 0) {
		struct timespec ts;
		int64_t left = deadline - time_mono_ms();
		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&chan_sup.cond, &chan_sup.mtx, &ts);
	}
	bool done = chan_sup.nthreads == 0;
	pthread_mutex_unlock(&chan_sup.mtx);
	return done;
}

void chan_sup_stop(int bound_ms)
{
	int64_t start = time_mono_ms();
	int left;

	atomic_store(&chan_sup.stopping, true);
	/* quiesce: running batches finish, then STOP(SHUTDOWN) */
	pthread_mutex_lock(&chan_sup.mtx);
	for (struct chan_conn *c = chan_sup.conns; c != NULL; c = c->next) {
		if (c->stop == STOP_NONE) {
			c->stop = c->rt != NULL ? STOP_SHUTDOWN : STOP_FORCE;
			chan_conn_set_why(c, "queue manager ending");
		}
		if (c->idle || c->rt == NULL)
			chan_conn_wake(c);
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (!wait_threads(start + bound_ms * 6 / 10)) {
		pthread_mutex_lock(&chan_sup.mtx);
		for (struct chan_conn *c = chan_sup.conns; c != NULL; c = c->next) {
			c->stop = STOP_FORCE;
			chan_conn_set_why(c, "queue manager ending");
			chan_conn_wake(c);
		}
		log_warn(code_str(CHD_CH_STOP), "channels: %d connections did not end in time; forcing",
		         chan_sup.nthreads);
		pthread_mutex_unlock(&chan_sup.mtx);
		if (!wait_threads(start + bound_ms * 9 / 10))
			log_error(code_str(CHD_STOP_SLOW), "channels: %d connection threads still busy at shutdown",
			          chan_sup.nthreads);
	}
	if (chan_sup.watcher_on) {
		atomic_store(&chan_sup.watcher_quit, true);
		store_wake_all();
		pthread_join(chan_sup.watcher, NULL);
		chan_sup.watcher_on = false;
	}
	left = (int)(time_mono_ms() - start);
	log_debug("channels: stopped in %d ms", left);
}
