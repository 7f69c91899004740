/* The telemetry service: start and stop, telemetry channel definitions and
 * their runtime (listening or not), the admin operations, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand/log.h"
#include "chand/store_ext.h"
#include "mqtt_int.h"

struct mq_state mq = {
	.mtx = PTHREAD_MUTEX_INITIALIZER,
	.pq_mtx = PTHREAD_MUTEX_INITIALIZER,
	.pq_cond = PTHREAD_COND_INITIALIZER,
	.ep = -1,
	.wake_fd = -1,
};

void mq_admin_lock(void)
{
	atomic_fetch_add(&mq.admin_wait, 1);
	pthread_mutex_lock(&mq.mtx);
	atomic_fetch_sub(&mq.admin_wait, 1);
}

size_t mq_retained_count(void);
void mq_retained_clear(void);

static int res(struct mqtt_result *r, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int res(struct mqtt_result *r, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
	return -1;
}

static json_t *time_json(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	time_format_ms(ms, buf, sizeof buf);
	return json_string(buf);
}

struct mq_chan *mq_chan_find(const char *name)
{
	for (struct mq_chan *ch = mq.chans; ch != NULL; ch = ch->next)
		if (strcmp(ch->def.name, name) == 0)
			return ch;
	return NULL;
}

void mq_chan_error(struct mq_chan *ch, enum chd_code_id code, const char *text)
{
	str_copy(ch->last_error_code, code_str(code), sizeof ch->last_error_code);
	str_copy(ch->last_error, text, sizeof ch->last_error);
}

bool mq_may_read(const struct mq_sess *s, const char *topic)
{
	struct mq_chan *ch = mq_chan_find(s->channel);

	if (ch == NULL || ch->acl == NULL)
		return true;
	return mqtt_acl_check(ch->acl, s->identity, s->client_id, topic, MQTT_ACL_READ);
}

static struct mq_chan *chan_add(const struct mqtt_def *d)
{
	struct mq_chan *ch = calloc(1, sizeof *ch);

	if (ch == NULL)
		fatalx("out of memory");
	ch->def = *d;
	ch->lfd = -1;
	ch->next = mq.chans;
	mq.chans = ch;
	return ch;
}

static void chan_free(struct mq_chan *ch)
{
	mqtt_passwd_free(ch->pw);
	mqtt_acl_free(ch->acl);
	free(ch);
}

/* Loads the channel's password and ACL files; on failure keeps the ones
 * in force and says why. */
static int load_files(struct mq_chan *ch, const struct mqtt_def *d, struct mqtt_result *r)
{
	struct mqtt_passwd *pw = NULL;
	struct mqtt_acl *acl = NULL;
	char err[400];

	if (d->password_file[0] != '\0' &&
	    mqtt_passwd_load(d->password_file, &pw, err, sizeof err) != 0)
		return res(r, CHD_MQ_FILE, "password file of channel %s: %s", d->name, err);
	if (d->acl_file[0] != '\0' && mqtt_acl_load(d->acl_file, &acl, err, sizeof err) != 0) {
		mqtt_passwd_free(pw);
		return res(r, CHD_MQ_FILE, "ACL file of channel %s: %s", d->name, err);
	}
	if (ch != NULL) {
		mqtt_passwd_free(ch->pw);
		mqtt_acl_free(ch->acl);
		ch->pw = pw;
		ch->acl = acl;
	} else {
		mqtt_passwd_free(pw);
		mqtt_acl_free(acl);
	}
	return 0;
}

static int chan_start(struct mq_chan *ch, struct mqtt_result *r)
{
	char err[300];

	if (ch->running)
		return 0;
	if (load_files(ch, &ch->def, r) != 0) {
		mq_chan_error(ch, r->code, r->text);
		return -1;
	}
	if (ch->def.sslciph[0] != '\0') {
		struct tls_ctx *ctx = mq.host.tls_get(mq.host.arg);
		const char *label = ch->def.certlabl[0] ? ch->def.certlabl : mq.host.default_label;
		bool ok = ctx != NULL && tls_ctx_has_label(ctx, label);

		if (ctx != NULL)
			tls_ctx_unref(ctx);
		if (!ok) {
			res(r, CHD_TLS_LABEL, "certificate label '%s' of channel %s is not in the keystore "
			    "(chanctl keystore import --label %s ..., then refresh security)", label,
			    ch->def.name, label);
			mq_chan_error(ch, r->code, r->text);
			return -1;
		}
	}
	if (mq_listen(ch, err, sizeof err) != 0) {
		res(r, CHD_MQ_LISTEN, "channel %s: %s", ch->def.name, err);
		mq_chan_error(ch, r->code, r->text);
		return -1;
	}
	ch->running = true;
	ch->start_ms = time_now_ms();
	ch->last_error_code[0] = ch->last_error[0] = '\0';
	log_info(code_str(CHD_MQ_CHANNEL), "channel=%s telemetry channel listening on %s port %ld%s",
	         ch->def.name, ch->def.address[0] ? ch->def.address : "0.0.0.0", ch->def.port,
	         ch->def.sslciph[0] ? "" : " (plain TCP)");
	if (ch->def.sslciph[0] == '\0')
		log_warn(code_str(CHD_TLS_PLAINTEXT), "channel=%s telemetry channel not encrypted: "
		         "SSLCIPH is empty, MQTT clients connect over plain TCP", ch->def.name);
	return 0;
}

static void chan_stop(struct mq_chan *ch)
{
	if (!ch->running)
		return;
	mq_unlisten(ch);
	ch->running = false;
	log_info(code_str(CHD_MQ_CHANNEL), "channel=%s telemetry channel stopped", ch->def.name);
}

/* ---- start / stop ---- */

static bool text_is_mqtt(const char *text)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *t = o != NULL ? json_string_value(json_object_get(o, "type")) : NULL;
	bool yes = t != NULL && strcmp(t, "mqtt") == 0;

	json_decref(o);
	return yes;
}

static void load_channels(struct store *st, char ***autostart, size_t *nauto)
{
	char **names = NULL;
	size_t n = 0;

	*autostart = NULL;
	*nauto = 0;
	if (store_chandef_list(st, NULL, &names, &n) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot list channel definitions: %s", store_errmsg(st));
		return;
	}
	*autostart = calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char *text = NULL, err[600];
		struct mqtt_def d;
		bool stopped = true;

		if (store_chandef_get(st, names[i], &text) == STORE_OK && text_is_mqtt(text)) {
			if (mqtt_def_from_text(&d, names[i], text, err, sizeof err) != 0) {
				log_error(code_str(CHD_DB_ERROR), "channel=%s %s", names[i], err);
			} else {
				chan_add(&d);
				if (store_ext_get_stopped(st, names[i], &stopped) == STORE_OK && !stopped &&
				    *autostart != NULL)
					(*autostart)[(*nauto)++] = strdup(names[i]);
			}
		}
		free(text);
		free(names[i]);
	}
	free(names);
}

static void load_sessions(struct store *st)
{
	struct store_mqtt_session_full *v = NULL;
	struct store_mqtt_msg *ret = NULL;
	size_t n = 0, nret = 0;
	int64_t now = time_now_ms();

	if (store_mqtt_session_list(st, &v, &n) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot load MQTT sessions: %s", store_errmsg(st));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct mq_sess *s = mq_sess_add(v[i].s.client_id);
		uint16_t *pids = NULL;
		size_t npids = 0;

		str_copy(s->channel, v[i].s.channel, sizeof s->channel);
		s->protocol = v[i].s.protocol;
		s->expiry_s = v[i].s.expiry_s;
		/* the session was away at least since the agent stopped */
		s->disconnected_ms = v[i].s.disconnected_ms ? v[i].s.disconnected_ms : now;
		s->next_pid = v[i].s.next_pid ? v[i].s.next_pid : 1;
		s->identity = v[i].s.identity != NULL ? strdup(v[i].s.identity) : NULL;
		s->persistent = true;
		s->stored = v[i].queued;
		s->backlog = v[i].queued > 0;
		for (size_t k = 0; k < v[i].nsubs; k++) {
			struct store_mqtt_sub *ss = &v[i].subs[k];
			struct mq_sub *sub = calloc(1, sizeof *sub);
			uint8_t opts = (uint8_t)((ss->qos & 3) | ((ss->opts & 1) ? 4 : 0) |
			                         ((ss->opts & 2) ? 8 : 0) | (((ss->opts >> 2) & 3) << 4));
			if (sub == NULL || (sub->filter = strdup(ss->filter)) == NULL)
				fatalx("out of memory");
			sub->qos = ss->qos;
			sub->opts = opts;
			sub->sub_id = ss->sub_id;
			sub->next = s->subs;
			s->subs = sub;
			if (subtree_add(mq.subs, ss->filter, strlen(ss->filter), s, opts, ss->sub_id) < 0)
				fatalx("out of memory");
		}
		if (store_mqtt_in2_list(st, s->client_id, &pids, &npids) == STORE_OK) {
			for (size_t k = 0; k < npids; k++)
				mq_in2_add(s, pids[k]);
			free(pids);
		}
	}
	store_mqtt_sessions_free(v, n);
	if (store_mqtt_retain_list(st, &ret, &nret) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot load retained messages: %s", store_errmsg(st));
		return;
	}
	for (size_t i = 0; i < nret; i++) {
		struct mq_msg *m = mq_msg_new((const uint8_t *)ret[i].topic, strlen(ret[i].topic),
		                              ret[i].payload, ret[i].payload_len, ret[i].props,
		                              ret[i].props_len, ret[i].qos, true, ret[i].expiry_ms);
		mq_retained_set(m);
		mq_msg_unref(m);
	}
	store_mqtt_msgs_free(ret, nret);
	if (n > 0 || nret > 0)
		log_info(code_str(CHD_MQ_SESSION), "loaded %zu persistent MQTT sessions and %zu "
		         "retained messages", n, nret);
}

/* Wakes the loop when anything is put in this process, so routed
 * publications arriving on MQTT_ROUTE_QUEUE are taken at once. */
static pthread_t watch_thr;
static atomic_bool watch_stop;
static bool watch_started;

static void *watch_main(void *arg)
{
	uint64_t gen = store_change_gen();

	(void)arg;
	while (!atomic_load(&watch_stop)) {
		uint64_t before = gen;
		store_wait(&gen, 500);
		if (gen != before)
			mq_wake();
	}
	return NULL;
}

int mqtt_svc_start(const struct mqtt_host *host)
{
	char err[300];
	char **autostart = NULL;
	size_t nauto = 0;

	mq.host = *host;
	atomic_store(&mq.stopping, false);
	if ((mq.subs = subtree_new()) == NULL)
		fatalx("out of memory");
	if (host->store_open(host->arg, &mq.rd, err, sizeof err) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "telemetry service cannot open the database: %s", err);
		return -1;
	}
	/* the loop must not wait for the disk: what it reads from the routed
	 * queue goes out after its job's commit (mq_publish), which is durable */
	store_gate_off(mq.rd);
	/* what the file holds is durable */
	if ((mq.rows_durable = store_mqtt_out_max(mq.rd)) < 0) {
		log_error(code_str(CHD_DB_ERROR), "telemetry service cannot read the database: %s",
		          store_errmsg(mq.rd));
		store_close(mq.rd);
		mq.rd = NULL;
		return -1;
	}
	mq.inq_owner = host->owner_id != NULL ? host->owner_id() : 0x6d717474;
	mq_admin_lock();
	load_channels(mq.rd, &autostart, &nauto);
	load_sessions(mq.rd);
	mq_routes_load(mq.rd);
	if ((mq.chans != NULL || mq.routes != NULL) && mq_inq_prepare(mq.rd) != 0) {
		pthread_mutex_unlock(&mq.mtx);
		free(autostart);
		return -1;
	}
	pthread_mutex_unlock(&mq.mtx);
	if (mq_writer_start() != 0) {
		free(autostart);
		return -1;
	}
	if (mq_loop_start() != 0) {
		mq_writer_stop();
		free(autostart);
		return -1;
	}
	mq.started = true;
	atomic_store(&watch_stop, false);
	if (pthread_create(&watch_thr, NULL, watch_main, NULL) != 0)
		log_warn(code_str(CHD_SYS_RESOURCE), "no store watcher thread: routed publications are "
		         "taken within 200 ms instead of at once");
	else
		watch_started = true;
	mq_admin_lock();
	for (size_t i = 0; i < nauto; i++) {
		struct mq_chan *ch = mq_chan_find(autostart[i]);
		struct mqtt_result r;
		if (ch != NULL && chan_start(ch, &r) != 0)
			log_error(code_str(r.code), "channel=%s cannot start: %s", autostart[i], r.text);
		free(autostart[i]);
	}
	pthread_mutex_unlock(&mq.mtx);
	free(autostart);
	return 0;
}

void mqtt_svc_stop(void)
{
	if (!mq.started)
		return;
	if (watch_started) {
		atomic_store(&watch_stop, true);
		store_wake_all();
		pthread_join(watch_thr, NULL);
		watch_started = false;
	}
	mq_loop_stop();
	mq_writer_stop();
	mq_loop_close();
	mq_admin_lock();
	mq_run_done();
	for (struct mq_chan *ch = mq.chans, *n; ch != NULL; ch = n) {
		n = ch->next;
		if (ch->lfd >= 0)
			close(ch->lfd);
		chan_free(ch);
	}
	mq.chans = NULL;
	for (size_t i = 0; i < mq.stab_size; i++)
		for (struct mq_sess *s = mq.stab[i], *n; s != NULL; s = n) {
			n = s->hnext;
			subtree_remove_owner(mq.subs, s);
			s->gone = true;
			mq_sess_unref(s);
		}
	free(mq.stab);
	mq.stab = NULL;
	mq.stab_size = mq.nsess = 0;
	mq_retained_clear();
	mq_routes_free();
	subtree_free(mq.subs);
	mq.subs = NULL;
	if (mq.rd != NULL)
		store_close(mq.rd);
	mq.rd = NULL;
	mq.started = false;
	pthread_mutex_unlock(&mq.mtx);
}

/* ---- admin operations ---- */

bool mqtt_svc_has(const char *name)
{
	bool yes;

	mq_admin_lock();
	yes = mq_chan_find(name) != NULL;
	pthread_mutex_unlock(&mq.mtx);
	return yes;
}

static int store_def(struct store *st, const struct mqtt_def *d, bool replace,
                     struct mqtt_result *r)
{
	json_t *o = mqtt_def_to_json(d);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	json_decref(o);
	if (text == NULL)
		return res(r, CHD_SYS_RESOURCE, "out of memory");
	rc = store_chandef_put(st, d->name, text, replace);
	free(text);
	if (rc == STORE_EXISTS)
		return res(r, CHD_Q_EXISTS, "channel %s is already defined (use --replace)", d->name);
	if (rc != STORE_OK)
		return res(r, CHD_DB_ERROR, "cannot store channel %s: %s", d->name, store_errmsg(st));
	return 0;
}

static int define_or_alter(struct store *st, const char *name, const json_t *attrs,
                           bool replace, bool alter, struct mqtt_result *r)
{
	struct mqtt_def d;
	struct mq_chan *ch;
	char err[400];
	int rc = -1;

	mq_admin_lock();
	ch = mq_chan_find(name);
	if (alter && ch == NULL) {
		res(r, CHD_CH_UNKNOWN, "channel %s is not defined", name);
		goto out;
	}
	if (!alter && ch != NULL && !replace) {
		res(r, CHD_Q_EXISTS, "channel %s is already defined (use --replace)", name);
		goto out;
	}
	if (alter || (ch != NULL && replace))
		d = ch->def;
	else
		mqtt_def_init(&d, name);
	if (!alter && replace && ch != NULL)
		mqtt_def_init(&d, name);
	if (mqtt_def_apply_json(&d, attrs, err, sizeof err) != 0 ||
	    mqtt_def_validate(&d, err, sizeof err) != 0) {
		res(r, CHD_CONFIG_ERROR, "channel %s: %s", name, err);
		goto out;
	}
	if (!alter && json_object_get(attrs, "port") == NULL) {
		res(r, CHD_CONFIG_ERROR, "channel %s: a telemetry channel needs --port", name);
		goto out;
	}
	/* files that do not parse are refused now, not at the first client */
	if (load_files(NULL, &d, r) != 0)
		goto out;
	if (store_def(st, &d, replace || alter, r) != 0)
		goto out;
	if (ch == NULL) {
		if (mq_inq_prepare(st) != 0) {
			res(r, CHD_DB_ERROR, "cannot define queue %s: %s", MQTT_ROUTE_QUEUE,
			    store_errmsg(st));
			goto out;
		}
		if (store_ext_set_stopped(st, name, true) != STORE_OK)
			log_warn(code_str(CHD_DB_ERROR), "channel=%s %s", name, store_errmsg(st));
		ch = chan_add(&d);
	} else {
		bool relisten = ch->running && (d.port != ch->def.port ||
		                                strcmp(d.address, ch->def.address) != 0);
		ch->def = d;
		if (ch->running)
			load_files(ch, &d, r);
		if (relisten) {
			struct mqtt_result r2;
			chan_stop(ch);
			if (chan_start(ch, &r2) != 0)
				log_error(code_str(r2.code), "channel=%s %s", name, r2.text);
		}
	}
	log_info(code_str(alter ? CHD_CH_ALTERED : CHD_CH_DEFINED), "channel=%s telemetry channel %s "
	         "(port %ld)", name, alter ? "altered" : "defined", d.port);
	rc = 0;
out:
	pthread_mutex_unlock(&mq.mtx);
	mq_wake();
	return rc;
}

int mqtt_op_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                   struct mqtt_result *r)
{
	return define_or_alter(st, name, attrs, replace, false, r);
}

int mqtt_op_alter(struct store *st, const char *name, const json_t *attrs,
                  struct mqtt_result *r)
{
	return define_or_alter(st, name, attrs, false, true, r);
}

int mqtt_op_delete(struct store *st, const char *name, struct mqtt_result *r)
{
	struct mq_chan *ch, **pp;
	int rc;

	mq_admin_lock();
	ch = mq_chan_find(name);
	if (ch == NULL) {
		pthread_mutex_unlock(&mq.mtx);
		return res(r, CHD_CH_UNKNOWN, "channel %s is not defined", name);
	}
	rc = store_chandef_delete(st, name);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
		pthread_mutex_unlock(&mq.mtx);
		return res(r, CHD_DB_ERROR, "cannot delete channel %s: %s", name, store_errmsg(st));
	}
	(void)store_ext_delete(st, name);
	chan_stop(ch);
	/* connections still lingering point at the channel: keep it until
	 * they are gone, out of the list */
	for (pp = &mq.chans; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	ch->deleted = true;
	ch->next = NULL;
	bool busy = false;
	for (struct mq_conn *c = mq.conns; c != NULL; c = c->next)
		if (c->ch == ch)
			busy = true;
	if (!busy)
		chan_free(ch);
	log_info(code_str(CHD_CH_DELETED), "channel=%s telemetry channel deleted", name);
	pthread_mutex_unlock(&mq.mtx);
	mq_wake();
	return 0;
}

json_t *mqtt_op_display(const char *pattern)
{
	json_t *arr = json_array();

	mq_admin_lock();
	for (struct mq_chan *ch = mq.chans; ch != NULL; ch = ch->next)
		if (name_match(pattern, ch->def.name))
			json_array_append_new(arr, mqtt_def_to_json(&ch->def));
	pthread_mutex_unlock(&mq.mtx);
	return arr;
}

int mqtt_op_start(struct store *st, const char *name, struct mqtt_result *r)
{
	struct mq_chan *ch;
	int rc;

	mq_admin_lock();
	ch = mq_chan_find(name);
	if (ch == NULL)
		rc = res(r, CHD_CH_UNKNOWN, "channel %s is not defined", name);
	else if ((rc = chan_start(ch, r)) == 0 &&
	         store_ext_set_stopped(st, name, false) != STORE_OK)
		log_warn(code_str(CHD_DB_ERROR), "channel=%s %s", name, store_errmsg(st));
	pthread_mutex_unlock(&mq.mtx);
	mq_wake();
	return rc;
}

int mqtt_op_stop(struct store *st, const char *name, const char *client, struct mqtt_result *r)
{
	struct mq_chan *ch;
	int rc = 0;

	mq_admin_lock();
	ch = mq_chan_find(name);
	if (ch == NULL) {
		rc = res(r, CHD_CH_UNKNOWN, "channel %s is not defined", name);
	} else if (client != NULL) {
		struct mq_sess *s = mq_sess_find(client);
		if (s == NULL || s->conn == NULL || s->conn->ch != ch) {
			rc = res(r, CHD_MQ_DISCONNECTED, "client %s is not connected to channel %s",
			         client, name);
		} else {
			log_info(code_str(CHD_MQ_DISCONNECTED), "channel=%s client=%s disconnected by an "
			         "operator (stop channel --client)", name, client);
			mq_conn_abort(s->conn, CHD_MQ_DISCONNECTED, MQTT_RC_ADMIN_ACTION,
			              "stopped by an operator");
		}
	} else {
		chan_stop(ch);
		if (store_ext_set_stopped(st, name, true) != STORE_OK)
			log_warn(code_str(CHD_DB_ERROR), "channel=%s %s", name, store_errmsg(st));
	}
	pthread_mutex_unlock(&mq.mtx);
	mq_wake();
	return rc;
}

static json_t *client_json(const struct mq_sess *s)
{
	const struct mq_conn *c = s->conn;
	json_t *o = json_object();
	size_t inflight_in = s->n_in2 + (c != NULL ? c->inflight_in : 0);

	json_object_set_new(o, "client_id", json_string(s->client_id));
	json_object_set_new(o, "identity", s->identity ? json_string(s->identity) : json_null());
	json_object_set_new(o, "protocol", json_string(s->protocol == 5 ? "5" : s->protocol == 4
	                                                ? "3.1.1" : "3.1"));
	json_object_set_new(o, "peer_address", c ? json_string(c->peer) : json_null());
	json_object_set_new(o, "state", json_string(c ? "connected" : "disconnected"));
	json_object_set_new(o, "persistent", json_boolean(s->persistent));
	json_object_set_new(o, "connected_since", time_json(c ? c->connected_ms : 0));
	json_object_set_new(o, "disconnected_since", time_json(c ? 0 : s->disconnected_ms));
	json_object_set_new(o, "keepalive", json_integer(c ? c->keepalive : 0));
	json_object_set_new(o, "msgs_received", json_integer((json_int_t)s->msgs_in));
	json_object_set_new(o, "msgs_sent", json_integer((json_int_t)s->msgs_out));
	json_object_set_new(o, "inflight_in", json_integer((json_int_t)inflight_in));
	json_object_set_new(o, "inflight_out", json_integer(s->n_flight));
	json_object_set_new(o, "pending", json_integer((json_int_t)mq_sess_pending(s)));
	json_object_set_new(o, "dropped", json_integer((json_int_t)s->dropped));
	json_object_set_new(o, "subscriptions", json_integer(0));
	size_t nsub = 0;
	for (const struct mq_sub *sub = s->subs; sub != NULL; sub = sub->next)
		nsub++;
	json_object_set_new(o, "subscriptions", json_integer((json_int_t)nsub));
	json_object_set_new(o, "last_msg_time", time_json(s->last_msg_ms));
	json_object_set_new(o, "tls_version", c && c->tls.encrypted ? json_string(c->tls.version)
	                                                            : json_null());
	json_object_set_new(o, "cipher", c && c->tls.encrypted ? json_string(c->tls.cipher)
	                                                       : json_null());
	json_object_set_new(o, "peer_dn", c && c->tls.peer_dn[0] ? json_string(c->tls.peer_dn)
	                                                         : json_null());
	json_object_set_new(o, "peer_not_after", time_json(c ? c->tls.peer_not_after_ms : 0));
	json_object_set_new(o, "last_error", json_null());
	return o;
}

json_t *mqtt_op_status(const char *pattern, bool clients, const char *client_pattern)
{
	json_t *arr = json_array();

	mq_admin_lock();
	for (struct mq_chan *ch = mq.chans; ch != NULL; ch = ch->next) {
		json_t *o;
		char protos[32];
		size_t nsess = 0;

		if (!name_match(pattern, ch->def.name))
			continue;
		o = json_object();
		mqtt_protocols_text(ch->def.protocols, protos, sizeof protos);
		json_object_set_new(o, "name", json_string(ch->def.name));
		json_object_set_new(o, "type", json_string("mqtt"));
		json_object_set_new(o, "state", json_string(ch->running ? "RUNNING" : "STOPPED"));
		json_object_set_new(o, "address", json_string(ch->def.address));   /* "": every address */
		json_object_set_new(o, "port", json_integer(ch->def.port));
		json_object_set_new(o, "protocol", json_string(protos));
		json_object_set_new(o, "connections", json_integer(ch->nconns));
		json_object_set_new(o, "max_clients", json_integer(ch->def.max_clients));
		json_object_set_new(o, "connections_total", json_integer((json_int_t)ch->conns_total));
		json_object_set_new(o, "refused", json_integer((json_int_t)ch->refused));
		json_object_set_new(o, "msgs_received", json_integer((json_int_t)ch->msgs_in));
		json_object_set_new(o, "msgs_sent", json_integer((json_int_t)ch->msgs_out));
		json_object_set_new(o, "bytes_received", json_integer((json_int_t)ch->bytes_in));
		json_object_set_new(o, "bytes_sent", json_integer((json_int_t)ch->bytes_out));
		json_object_set_new(o, "encrypted", json_boolean(ch->def.sslciph[0] != '\0'));
		json_object_set_new(o, "sslciph", json_string(ch->def.sslciph));
		json_object_set_new(o, "sslcauth", json_string(mqtt_sslcauth_name(ch->def.sslcauth)));
		json_object_set_new(o, "local_label", json_string(ch->def.sslciph[0] == '\0' ? "" :
		                    ch->def.certlabl[0] ? ch->def.certlabl : mq.host.default_label));
		json_object_set_new(o, "start_time", time_json(ch->running ? ch->start_ms : 0));
		json_object_set_new(o, "retained", json_integer((json_int_t)mq_retained_count()));
		json_object_set_new(o, "last_error_code", ch->last_error_code[0]
		                    ? json_string(ch->last_error_code) : json_null());
		json_object_set_new(o, "last_error", ch->last_error[0] ? json_string(ch->last_error)
		                                                       : json_null());
		json_t *cl = clients ? json_array() : NULL;
		for (size_t i = 0; i < mq.stab_size; i++)
			for (struct mq_sess *s = mq.stab[i]; s != NULL; s = s->hnext) {
				if (strcmp(s->channel, ch->def.name) != 0)
					continue;
				nsess++;
				if (cl != NULL && (client_pattern == NULL ||
				                   name_match(client_pattern, s->client_id)))
					json_array_append_new(cl, client_json(s));
			}
		json_object_set_new(o, "sessions", json_integer((json_int_t)nsess));
		if (cl != NULL)
			json_object_set_new(o, "clients", cl);
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&mq.mtx);
	return arr;
}

int mqtt_op_publish(const char *topic, uint8_t qos, bool retain, const uint8_t *const *bodies,
                    const size_t *lens, size_t n, struct mqtt_result *r)
{
	struct mq_waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
	size_t errpos = 0;
	const char *why = NULL;
	struct mq_job *last = NULL;

	if (topic_name_check(topic, strlen(topic), &errpos, &why) != 0)
		return res(r, CHD_MQ_PROTOCOL, "invalid topic '%s' at position %zu: %s", topic,
		           errpos + 1, why);
	if (qos > 2)
		return res(r, CHD_MQ_PROTOCOL, "QoS must be 0, 1 or 2");
	mq_admin_lock();
	if (!mq.started) {
		pthread_mutex_unlock(&mq.mtx);
		return res(r, CHD_SYS_RESOURCE, "the telemetry service is not running");
	}
	for (size_t i = 0; i < n; i++) {
		struct mq_msg *m = mq_msg_new((const uint8_t *)topic, strlen(topic), bodies[i], lens[i],
		                              NULL, 0, qos, retain, 0);
		struct mq_job *j = NULL;
		if (qos > 0) {
			j = mq_job_new(DONE_ADMIN);
			mq_msg_ref(m);
			j->m = m;
			j->waiter = &w;
			w.pending++;
		}
		mq_publish(m, j);
		if (j != NULL) {
			mq_job_submit(j);
			last = j;
		}
		mq_msg_unref(m);
	}
	pthread_mutex_unlock(&mq.mtx);
	mq_wake();
	if (last == NULL) {
		r->published = n;
		return 0;
	}
	pthread_mutex_lock(&w.mtx);
	while (w.pending > 0)
		pthread_cond_wait(&w.cond, &w.mtx);
	pthread_mutex_unlock(&w.mtx);
	r->published = qos > 0 ? w.ok : n;
	if (w.rc != 0)
		return res(r, w.rc == STORE_FULL ? CHD_Q_FULL : CHD_MQ_STORE, "%zu of %zu publications "
		           "refused: %s", n - w.ok, n, w.rc == STORE_FULL
		           ? "a queue a route puts them on is full" : "they could not be stored (see "
		           "the log)");
	return 0;
}

void mqtt_op_refresh(struct tls_ctx *ctx)
{
	int ended = 0;

	mq_admin_lock();
	/* clients admitted under the old trust: ended if it no longer holds */
	for (struct mq_conn *c = mq.conns; c != NULL && ctx != NULL; c = c->next) {
		struct tls_error err;
		if (c->dead || c->state != MC_ACTIVE || c->tc == NULL ||
		    tls_conn_recheck(c->tc, ctx, &err) == 0)
			continue;
		log_warn(code_str(err.code), "channel=%s client=%s peer=%s ended by refresh security: "
		         "%s", c->ch->def.name, c->sess != NULL ? c->sess->client_id : "?", c->peer,
		         err.text);
		mq_chan_error(c->ch, err.code, err.text);
		mq_conn_abort(c, CHD_MQ_DISCONNECTED, MQTT_RC_NOT_AUTHORIZED, "%s", err.text);
		ended++;
	}
	for (struct mq_chan *ch = mq.chans; ch != NULL; ch = ch->next) {
		struct mqtt_result r;
		if (!ch->running)
			continue;
		if (load_files(ch, &ch->def, &r) != 0) {
			mq_chan_error(ch, r.code, r.text);
			log_error(code_str(r.code), "channel=%s %s; the previous files stay in force",
			          ch->def.name, r.text);
		}
	}
	pthread_mutex_unlock(&mq.mtx);
	if (ended > 0)
		mq_wake();
}
