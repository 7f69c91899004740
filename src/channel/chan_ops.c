/* The operations behind the channel admin commands: define, alter,
 * delete, display, start, stop, ping, reset, resolve, status.  They run
 * on the admin connection's thread with its store handle. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan_int.h"
#include "chand/log.h"

#define STOP_QUIESCE_WAIT_MS 30000
#define STOP_FORCE_WAIT_MS 10000

static int res(struct chan_result *r, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int res(struct chan_result *r, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code_vset(&r->code, code, r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	return -1;
}

static int check_name(const char *name, struct chan_result *r)
{
	char why[200];

	if (name == NULL || !name_valid(name, why, sizeof(why)))
		return res(r, CHD_Q_BAD_NAME, "invalid channel name: %s", name ? why : "missing");
	return 0;
}

/* A copy of a channel's definition; false if it is not defined. */
static bool def_get(const char *name, struct chan_def *d, bool *running)
{
	struct chan_rt *rt;

	pthread_mutex_lock(&chan_sup.mtx);
	rt = chan_rt_find(name);
	if (rt != NULL) {
		*d = rt->def;
		if (running != NULL)
			*running = rt->conn != NULL || rt->launching;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return rt != NULL;
}

static int not_defined(struct chan_result *r, const char *name)
{
	return res(r, CHD_CH_UNKNOWN, "channel %s is not defined", name);
}

static int store_def(struct store *st, const struct chan_def *d, bool replace,
                     struct chan_result *r)
{
	json_t *o = chan_def_to_json(d);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc;

	json_decref(o);
	if (text == NULL)
		return res(r, CHD_DB_ERROR, "out of memory");
	rc = store_chandef_put(st, d->name, text, replace);
	free(text);
	if (rc == STORE_EXISTS)
		return res(r, CHD_Q_EXISTS, "channel %s already exists (use --replace)", d->name);
	if (rc != STORE_OK)
		return res(r, rc == STORE_DISK_FULL ? CHD_DISK_FULL : CHD_DB_ERROR, "%s",
		           store_errmsg(st));
	pthread_mutex_lock(&chan_sup.mtx);
	struct chan_rt *rt = chan_rt_get_or_add(d);
	pthread_mutex_unlock(&chan_sup.mtx);
	if (rt == NULL)
		return res(r, CHD_DB_ERROR, "out of memory");
	chan_kick_watcher();
	return 0;
}

int chan_op_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                   struct chan_result *r)
{
	struct chan_def d, old;
	char why[640];
	bool exists, running = false;
	int t;

	if (check_name(name, r) != 0)
		return -1;
	t = chan_type_parse(json_string_value(json_object_get(attrs, "type")));
	if (t < 0)
		return res(r, CHD_ADM_BAD_REQUEST, "define channel needs --type sdr|rcvr|svr|rqstr");
	exists = def_get(name, &old, &running);
	if (exists && !replace)
		return res(r, CHD_Q_EXISTS, "channel %s already exists (use --replace)", name);
	/* like IBM MQ's REPLACE: the attributes not given take their defaults */
	chan_def_init(&d, name, (enum chan_type)t);
	if (chan_def_apply_json(&d, attrs, why, sizeof(why)) != 0)
		return res(r, CHD_ADM_BAD_REQUEST, "channel %s: %s", name, why);
	if (chan_def_validate(&d, why, sizeof(why)) != 0)
		return res(r, CHD_ADM_BAD_REQUEST, "%s", why);
	if (exists && running && old.type != d.type)
		return res(r, CHD_Q_IN_USE, "channel %s is running: stop it before changing its type",
		           name);
	if (store_def(st, &d, replace, r) != 0)
		return -1;
	log_info(code_str(CHD_CH_DEFINED), "channel=%s type=%s %s", name, chan_type_name(d.type),
	         exists ? "channel replaced" : "channel defined");
	return 0;
}

int chan_op_alter(struct store *st, const char *name, const json_t *attrs,
                  struct chan_result *r)
{
	struct chan_def d;
	char why[640];
	const json_t *t;

	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &d, NULL))
		return not_defined(r, name);
	t = json_object_get(attrs, "type");
	if (t != NULL && chan_type_parse(json_string_value(t)) != (int)d.type)
		return res(r, CHD_ADM_BAD_REQUEST, "channel %s: TYPE cannot be altered (it is %s); "
		           "use define channel --replace", name, chan_type_name(d.type));
	if (chan_def_apply_json(&d, attrs, why, sizeof(why)) != 0)
		return res(r, CHD_ADM_BAD_REQUEST, "channel %s: %s", name, why);
	if (chan_def_validate(&d, why, sizeof(why)) != 0)
		return res(r, CHD_ADM_BAD_REQUEST, "%s", why);
	if (store_def(st, &d, true, r) != 0)
		return -1;
	log_info(code_str(CHD_CH_ALTERED), "channel=%s channel altered (a running instance keeps its settings until "
	         "it restarts)", name);
	return 0;
}

int chan_op_delete(struct store *st, const char *name, struct chan_result *r)
{
	struct chan_def d;
	struct chan_sync cs;
	bool running = false;
	int rc;

	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &d, &running))
		return not_defined(r, name);
	if (running)
		return res(r, CHD_Q_IN_USE, "channel %s is running: stop channel %s first", name, name);
	rc = store_sync_get(st, name, &cs);
	if (rc == STORE_OK && cs.indoubt)
		return res(r, CHD_CH_INDOUBT, "channel %s has an in-doubt batch (batch %llu, %u "
		           "messages): resolve channel %s --action commit|backout first", name,
		           (unsigned long long)cs.indoubt_batch, cs.indoubt_count, name);
	if (store_begin(st) != STORE_OK)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	rc = store_chandef_delete(st, name);
	if ((rc == STORE_OK || rc == STORE_NOT_FOUND) &&
	    ((rc = store_sync_delete(st, name)) == STORE_OK || rc == STORE_NOT_FOUND))
		rc = store_ext_delete(st, name);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
		store_rollback(st);
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	}
	pthread_mutex_lock(&chan_sup.mtx);
	struct chan_rt *rt = chan_rt_find(name);
	if (rt != NULL && (rt->conn != NULL || rt->launching)) {
		pthread_mutex_unlock(&chan_sup.mtx);
		store_rollback(st);
		return res(r, CHD_Q_IN_USE, "channel %s started meanwhile: stop it first", name);
	}
	if (store_commit(st) != STORE_OK) {
		pthread_mutex_unlock(&chan_sup.mtx);
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	}
	if (rt != NULL) {
		rt->defined = false;
		rt->retry_at_mono = 0;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	log_info(code_str(CHD_CH_DELETED), "channel=%s channel deleted", name);
	return 0;
}

static int cmp_def(const void *a, const void *b)
{
	return strcmp(((const struct chan_def *)a)->name, ((const struct chan_def *)b)->name);
}

int chan_op_display(struct store *st, const char *pattern, json_t **out, struct chan_result *r)
{
	struct chan_def *v;
	size_t n = 0;
	json_t *arr;

	(void)st;
	pthread_mutex_lock(&chan_sup.mtx);
	v = calloc(chan_sup.n ? chan_sup.n : 1, sizeof(*v));
	if (v != NULL)
		for (size_t i = 0; i < chan_sup.n; i++)
			if (chan_sup.v[i]->defined && name_match(pattern, chan_sup.v[i]->def.name))
				v[n++] = chan_sup.v[i]->def;
	pthread_mutex_unlock(&chan_sup.mtx);
	if (v == NULL)
		return res(r, CHD_DB_ERROR, "out of memory");
	qsort(v, n, sizeof(*v), cmp_def);
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, chan_def_to_json(&v[i]));
	free(v);
	*out = arr;
	return 0;
}

int chan_op_start(struct store *st, const char *name, struct chan_result *r)
{
	struct chan_rt *rt;
	int rc = 0;

	if (check_name(name, r) != 0)
		return -1;
	pthread_mutex_lock(&chan_sup.mtx);
	rt = chan_rt_find(name);
	if (rt == NULL) {
		pthread_mutex_unlock(&chan_sup.mtx);
		return not_defined(r, name);
	}
	bool was_stopped = rt->stopped;
	pthread_mutex_unlock(&chan_sup.mtx);
	if (was_stopped && store_ext_set_stopped(st, name, false) != STORE_OK)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	pthread_mutex_lock(&chan_sup.mtx);
	if ((rt = chan_rt_find(name)) == NULL) {
		pthread_mutex_unlock(&chan_sup.mtx);
		return not_defined(r, name);
	}
	rt->stopped = false;
	rt->failures = 0;
	rt->retry_at_mono = 0;
	rt->st.retries_left = -1;
	rt->st.next_retry_ms = 0;
	if (chan_def_initiates(&rt->def)) {
		rc = chan_launch(rt, r);
	} else if (rt->conn == NULL && !rt->launching) {
		/* a responder: ready to be started by its initiator */
		rt->st.state = CHS_INACTIVE;
		rt->st.substate[0] = '\0';
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (rc == 0)
		log_info(code_str(CHD_CH_START_REQ), "channel=%s start channel", name);
	return rc;
}

/* Waits (mtx held) until rt no longer runs conn, or the deadline. */
static bool wait_gone(struct chan_rt *rt, struct chan_conn *conn, int64_t deadline)
{
	while (rt->conn == conn && conn != NULL) {
		struct timespec ts;
		int64_t left = deadline - time_mono_ms();
		if (left <= 0)
			return false;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (left > 200)
			left = 200;
		ts.tv_nsec += left * 1000000L;
		while (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&chan_sup.cond, &chan_sup.mtx, &ts);
	}
	return true;
}

int chan_op_stop(struct store *st, const char *name, bool force, struct chan_result *r)
{
	struct chan_rt *rt;
	struct chan_conn *conn;

	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &(struct chan_def){ 0 }, NULL))
		return not_defined(r, name);
	/* recorded first: STOPPED outlives an agent restart */
	if (store_ext_set_stopped(st, name, true) != STORE_OK)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	pthread_mutex_lock(&chan_sup.mtx);
	rt = chan_rt_find(name);
	if (rt == NULL) {
		pthread_mutex_unlock(&chan_sup.mtx);
		return not_defined(r, name);
	}
	rt->stopped = true;
	rt->retry_at_mono = 0;
	rt->st.retries_left = -1;
	rt->st.next_retry_ms = 0;
	/* a thread being created takes its connection a moment later */
	for (int i = 0; i < 50 && rt->launching; i++) {
		pthread_mutex_unlock(&chan_sup.mtx);
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&chan_sup.mtx);
	}
	conn = rt->conn;
	if (conn == NULL) {
		rt->st.state = CHS_STOPPED;
		rt->st.substate[0] = '\0';
		pthread_mutex_unlock(&chan_sup.mtx);
		log_info(code_str(CHD_CH_STOPPED), "channel=%s channel stopped (it was not running)",
		         name);
		return 0;
	}
	if (force || conn->stop != STOP_FORCE) {
		conn->stop = force ? STOP_FORCE : STOP_QUIESCE;
		chan_conn_set_why(conn, force ? "stopped by operator, force" : "stopped by operator");
	}
	rt->st.state = CHS_STOPPING;
	if (force || conn->idle || conn->rt == NULL)
		chan_conn_wake(conn);
	log_info(code_str(CHD_CH_STOP_REQ), "channel=%s stop channel mode=%s", name, force ? "force" : "quiesce");
	if (!wait_gone(rt, conn, time_mono_ms() + (force ? STOP_FORCE_WAIT_MS
	                                                 : STOP_QUIESCE_WAIT_MS))) {
		if (!force) {
			/* the current batch did not finish in time */
			conn->stop = STOP_FORCE;
			chan_conn_set_why(conn, "stopped by operator, quiesce timed out");
			chan_conn_wake(conn);
			if (wait_gone(rt, conn, time_mono_ms() + STOP_FORCE_WAIT_MS))
				goto done;
		}
		pthread_mutex_unlock(&chan_sup.mtx);
		return res(r, CHD_CH_STOPPED, "channel %s is still ending; it will be STOPPED", name);
	}
done:
	rt->st.state = CHS_STOPPED;
	pthread_mutex_unlock(&chan_sup.mtx);
	return 0;
}

int chan_op_ping(struct store *st, const char *name, json_t **out, struct chan_result *r)
{
	struct chan_def d;
	struct chan_conn *conn;
	struct chan_sess s;
	struct tls_info ti;
	int64_t rtt = 0;
	long max = chan_sup.host.max_channels;
	bool ok;
	int rc;

	(void)st;
	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &d, NULL))
		return not_defined(r, name);
	if (d.conname[0] == '\0')
		return res(r, CHD_ADM_BAD_REQUEST, "channel %s has no CONNAME: a %s channel is pinged "
		           "from the other end", name, chan_type_name(d.type));
	if ((conn = chan_conn_new()) == NULL)
		return res(r, CHD_CH_CLOSED, "out of resources");
	pthread_mutex_lock(&chan_sup.mtx);
	ok = max <= 0 || chan_sup.ncounted < max;
	if (ok) {
		chan_sup.ncounted++;
		conn->counted = true;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (!ok) {
		chan_conn_free(conn);
		return res(r, CHD_CH_MAXCHANNELS, "limits.max_channels (%ld) channels are running", max);
	}
	chan_sess_init(&s, conn);
	s.def = d;
	s.initiator = true;
	rc = chan_open_initiator(&s, true);
	if (rc == 0)
		rc = chan_ping_exchange(&s, &rtt);
	if (rc == 0) {
		tls_conn_info(s.tc, &ti);
		*out = json_pack("{s:s,s:f,s:s,s:b,s:s?,s:s?,s:s?,s:s?}", "channel", name,
		                 "rtt_ms", (double)rtt / 1000.0, "rqmname", s.peer_qmgr,
		                 "encrypted", ti.encrypted,
		                 "tls_version", ti.encrypted ? ti.version : NULL,
		                 "cipher", ti.encrypted ? ti.cipher : NULL,
		                 "peer_dn", ti.encrypted ? ti.peer_dn : NULL,
		                 "local_label", ti.encrypted ? ti.local_label : NULL);
		log_info(code_str(CHD_CH_PING), "channel=%s peer=%s rtt_us=%lld ping succeeded", name, s.peer_addr,
		         (long long)rtt);
	} else {
		r->code = s.code;
		str_copy(r->text, s.text, sizeof(r->text));
		if (s.end == END_ERROR && s.tc != NULL)
			chan_send_error(&s, s.code, s.text);
		log_warn(chan_sess_code(&s), "channel=%s peer=%s ping failed: %s", name, s.peer_addr,
		         s.text);
	}
	chan_sess_free(&s);
	chan_conn_free(conn);
	return rc == 0 ? 0 : -1;
}

int chan_op_reset(struct store *st, const char *name, long seqnum, struct chan_result *r)
{
	struct chan_def d;
	struct chan_sync cs;
	bool running = false;
	int rc;

	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &d, &running))
		return not_defined(r, name);
	if (running)
		return res(r, CHD_Q_IN_USE, "channel %s is running: stop it before reset", name);
	if (seqnum < 1 || seqnum > d.seqwrap)
		return res(r, CHD_ADM_BAD_REQUEST, "--seqnum must be from 1 to SEQWRAP %ld", d.seqwrap);
	rc = store_sync_get(st, name, &cs);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	if (rc == STORE_NOT_FOUND) {
		memset(&cs, 0, sizeof(cs));
		str_copy(cs.name, name, sizeof(cs.name));
	}
	if (cs.indoubt)
		return res(r, CHD_CH_INDOUBT, "channel %s has an in-doubt batch (batch %llu): resolve "
		           "channel %s --action commit|backout first", name,
		           (unsigned long long)cs.indoubt_batch, name);
	/* the number given is the one the next message will carry */
	cs.seq = (uint64_t)(seqnum - 1);
	cs.updated_ms = time_now_ms();
	if (store_begin(st) != STORE_OK || store_sync_set(st, &cs) != STORE_OK ||
	    (chan_def_sends(&d) && store_ext_set_reset(st, name, true) != STORE_OK) ||
	    store_commit(st) != STORE_OK) {
		store_rollback(st);
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	}
	pthread_mutex_lock(&chan_sup.mtx);
	struct chan_rt *rt = chan_rt_find(name);
	if (rt != NULL) {
		rt->st.committed_seq = rt->st.current_seq = (uint32_t)cs.seq;
		if (strcmp(rt->st.last_error_code, code_str(CHD_CH_SEQ)) == 0) {
			rt->st.last_error_code[0] = '\0';
			rt->st.last_error[0] = '\0';
		}
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	log_info(code_str(CHD_CH_RESET), "channel=%s reset channel: next message sequence number %ld%s", name, seqnum,
	         chan_def_sends(&d) ? " (told to the receiver at the next start)" : "");
	return 0;
}

int chan_op_resolve(struct store *st, const char *name, bool commit, struct chan_result *r)
{
	struct chan_def d;
	struct chan_sync cs;
	struct store_member *mem = NULL;
	struct msg_list del = { 0 };
	size_t nmem = 0;
	bool running = false, reset = false;
	int rc;

	if (check_name(name, r) != 0)
		return -1;
	if (!def_get(name, &d, &running))
		return not_defined(r, name);
	if (running)
		return res(r, CHD_Q_IN_USE, "channel %s is running: an in-doubt batch is resolved by "
		           "the channel itself; stop it to resolve by hand", name);
	rc = store_sync_get(st, name, &cs);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	if (rc == STORE_NOT_FOUND || !cs.indoubt)
		return res(r, CHD_CH_INDOUBT, "channel %s is not in doubt: nothing to resolve", name);
	if (store_ext_get(st, name, &reset, &mem, &nmem) != STORE_OK)
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	if (store_begin(st) != STORE_OK) {
		free(mem);
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	}
	uint64_t b_first = cs.batch_id + 1; /* version 2: b_first .. indoubt_batch */
	if (commit) {
		rc = store_ext_present(st, mem, nmem, &del);
		pthread_mutex_lock(&chan_sup.mtx);
		struct chan_rt *rt = chan_rt_find(name);
		if (rc == STORE_OK && rt != NULL && rt->np_batch == cs.indoubt_batch)
			for (size_t i = 0; i < rt->n_np; i++) {
				struct chd_msg *m = msg_list_add(&del);
				if (m != NULL)
					m->seq = rt->np_seqs[i];
			}
		pthread_mutex_unlock(&chan_sup.mtx);
		if (rc == STORE_OK)
			rc = store_confirm(st, &del);
		if (rc == STORE_OK) {
			cs.batch_id = cs.indoubt_batch;
			cs.seq = cs.indoubt_seq;
		}
	}
	free(mem);
	if (rc == STORE_OK) {
		uint64_t b = cs.indoubt_batch;
		uint32_t n = cs.indoubt_count;
		cs.indoubt = false;
		cs.indoubt_batch = cs.indoubt_seq = 0;
		cs.indoubt_count = 0;
		cs.updated_ms = time_now_ms();
		if ((rc = store_sync_set(st, &cs)) == STORE_OK &&
		    (rc = store_ext_clear_members(st, name)) == STORE_OK)
			rc = store_commit(st);
		if (rc == STORE_OK) {
			pthread_mutex_lock(&chan_sup.mtx);
			struct chan_rt *rt = chan_rt_find(name);
			if (rt != NULL) {
				rt->st.indoubt = false;
				rt->st.committed_seq = (uint32_t)cs.seq;
				free(rt->np_seqs);
				free(rt->np_bids);
				rt->np_seqs = NULL;
				rt->np_bids = NULL;
				rt->n_np = 0;
				rt->np_batch = 0;
			}
			pthread_mutex_unlock(&chan_sup.mtx);
			log_warn(code_str(CHD_CH_INDOUBT), "channel=%s resolve channel action=%s: in-doubt "
			         "batches %llu-%llu (%u messages in the last) %s", name,
			         commit ? "commit" : "backout", (unsigned long long)b_first,
			         (unsigned long long)b, n, commit ? "deleted" : "released, to be sent again");
			snprintf(r->text, sizeof(r->text), "%zu", del.n);
		}
	}
	msg_list_free(&del);
	if (rc != STORE_OK) {
		store_rollback(st);
		return res(r, CHD_DB_ERROR, "%s", store_errmsg(st));
	}
	return 0;
}

struct snap {
	struct chan_def def;
	struct chan_status st;
	bool ran, running;
};

static int cmp_snap(const void *a, const void *b)
{
	return strcmp(((const struct snap *)a)->def.name, ((const struct snap *)b)->def.name);
}

int chan_op_status(struct store *st, const char *pattern, json_t **out, struct chan_result *r)
{
	struct snap *v;
	size_t n = 0;
	json_t *arr;
	int64_t now = time_now_ms();

	pthread_mutex_lock(&chan_sup.mtx);
	v = calloc(chan_sup.n ? chan_sup.n : 1, sizeof(*v));
	if (v != NULL)
		for (size_t i = 0; i < chan_sup.n; i++) {
			struct chan_rt *rt = chan_sup.v[i];
			if (!rt->defined || !name_match(pattern, rt->def.name))
				continue;
			v[n].def = rt->def;
			v[n].st = rt->st;
			v[n].ran = rt->ran;
			v[n].running = rt->conn != NULL;
			n++;
		}
	pthread_mutex_unlock(&chan_sup.mtx);
	if (v == NULL)
		return res(r, CHD_DB_ERROR, "out of memory");
	qsort(v, n, sizeof(*v), cmp_snap);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct chan_status *s = &v[i].st;
		struct chan_def *d = &v[i].def;
		struct chan_sync cs;
		struct queue_def q;

		str_copy(s->name, d->name, sizeof(s->name));
		s->type = d->type;
		str_copy(s->conname, d->conname, sizeof(s->conname));
		str_copy(s->xmitq, chan_def_sends(d) ? d->xmitq : "", sizeof(s->xmitq));
		s->longrty = d->longrty;
		if (!s->connected)
			s->encrypted = d->sslciph[0] != '\0';
		/* the durable numbers of a channel that has not run since start */
		if (!v[i].running && store_sync_get(st, d->name, &cs) == STORE_OK) {
			s->committed_seq = (uint32_t)cs.seq;
			if (!v[i].ran)
				s->current_seq = (uint32_t)cs.seq;
			s->indoubt = cs.indoubt;
		}
		s->xmitq_depth = -1;
		s->oldest_msg_age_ms = -1;
		if (chan_def_sends(d) && store_queue_get(st, d->xmitq, &q) == STORE_OK) {
			s->xmitq_depth = q.curdepth;
			s->oldest_msg_age_ms = q.oldest_put_ms > 0 && now > q.oldest_put_ms
			                       ? now - q.oldest_put_ms : 0;
		}
		json_array_append_new(arr, chan_status_to_json(s));
	}
	free(v);
	*out = arr;
	return 0;
}

/* refresh security: the running instances whose peer certificate the
 * reloaded trust and CRLs no longer accept are ended (force), with the
 * reason in their status and the log. Returns how many. */
int chan_op_recheck_peers(struct tls_ctx *ctx)
{
	int ended = 0;

	if (ctx == NULL)
		return 0;
	pthread_mutex_lock(&chan_sup.mtx);
	for (size_t i = 0; i < chan_sup.n; i++) {
		struct chan_rt *rt = chan_sup.v[i];
		struct chan_conn *conn = rt->conn;
		struct tls_error err;
		char why[96];

		if (conn == NULL || conn->peer_chain == NULL || conn->stop != STOP_NONE ||
		    tls_peer_chain_recheck(conn->peer_chain, ctx, &err) == 0)
			continue;
		log_warn(code_str(err.code), "channel=%s ended by refresh security: %s", rt->def.name,
		         err.text);
		str_copy(rt->st.last_error_code, code_str(err.code), sizeof(rt->st.last_error_code));
		str_copy(rt->st.last_error, err.text, sizeof(rt->st.last_error));
		snprintf(why, sizeof why, "refresh security: %s", code_str(err.code));
		chan_conn_set_why(conn, why);
		conn->stop = STOP_FORCE;
		chan_conn_wake(conn);
		ended++;
	}
	pthread_mutex_unlock(&chan_sup.mtx);
	return ended;
}
