/* Routes (doc/TELEMETRY.md): publications carried beyond this agent's
 * subscribers, through queues and the message channels, exactly once.
 *
 * Out: a publication that matches a route becomes a message in the same
 * group transaction that stores it for this agent's subscribers (so the
 * publisher's PUBACK/PUBREC means both are durable): on queue Q (--queue)
 * or on the transmission queue of queue manager QM with destination
 * MQTT_ROUTE_QUEUE there (--qmgr).  The MQTT attributes travel as message
 * properties (mqtt.topic, mqtt.qos, mqtt.retain, mqtt.path, mqtt.props).
 *
 * In: every agent takes the messages that arrive on MQTT_ROUTE_QUEUE and
 * publishes them as if a client had, deleting them in the transaction that
 * stores the publication: the channel delivered each message exactly once,
 * and the publication is made exactly once.  mqtt.path lists the queue
 * managers a publication has passed; a route never sends it to one of
 * them again, so a mesh with routes both ways does not loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/log.h"
#include "mqtt_int.h"

#define INQ_BATCH 256
#define INQ_RETRY_MS 1000

/* ---- message properties ---- */

/* Property values are one line: '%', CR and LF are %-escaped. */
static void prop_add(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
	size_t need = strlen(key) + 2 + strlen(val) * 3 + 1;

	if (*len + need + 1 > *cap) {
		size_t ncap = (*cap + need) * 2;
		char *n = realloc(*buf, ncap);
		if (n == NULL)
			fatalx("out of memory");
		*buf = n;
		*cap = ncap;
	}
	*len += (size_t)sprintf(*buf + *len, "%s=", key);
	for (const char *p = val; *p != '\0'; p++) {
		if (*p == '%' || *p == '\n' || *p == '\r')
			*len += (size_t)sprintf(*buf + *len, "%%%02X", (unsigned char)*p);
		else
			(*buf)[(*len)++] = *p;
	}
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0';
}

/* The value of key in a "k=v\n..." list, unescaped (malloc'd), or NULL. */
static char *prop_get(const char *props, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = props; p != NULL && *p != '\0';) {
		const char *e = strchr(p, '\n');
		size_t ll = e != NULL ? (size_t)(e - p) : strlen(p);
		if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			char *v = malloc(ll - kl), *o = v;
			if (v == NULL)
				fatalx("out of memory");
			for (const char *q = p + kl + 1; q < p + ll; q++) {
				unsigned x;
				if (*q == '%' && q + 2 < p + ll + 1 && sscanf(q + 1, "%2x", &x) == 1) {
					*o++ = (char)x;
					q += 2;
				} else {
					*o++ = *q;
				}
			}
			*o = '\0';
			return v;
		}
		p = e != NULL ? e + 1 : NULL;
	}
	return NULL;
}

/* ---- out ---- */

static bool path_has(const char *path, const char *qm)
{
	size_t n = strlen(qm);

	for (const char *p = path; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		if (l == n && strncmp(p, qm, n) == 0)
			return true;
		p = e != NULL ? e + 1 : NULL;
	}
	return false;
}

static void route_drop(struct mq_route *r, const char *why)
{
	atomic_fetch_add(&r->dropped, 1);
	pthread_mutex_lock(&r->why_mtx);
	str_copy(r->last_drop, why, sizeof r->last_drop);
	pthread_mutex_unlock(&r->why_mtx);
}

/* The queue managers this publication goes to from here (those of the
 * --qmgr routes it matches and may take). */
static bool route_takes(const struct mq_route *r, const struct mq_msg *m)
{
	const struct mqtt_route_def *d = &r->def;

	return d->qmgr[0] != '\0' && strcmp(d->qmgr, mq.host.qmgr) != 0 &&
	       !path_has(m->path, d->qmgr) &&
	       topic_match_n(d->topic, strlen(d->topic), m->topic, m->tlen);
}

void mq_routes_apply(struct mq_msg *m, struct mq_job *job)
{
	/* mqtt.path: where it has been, this agent, and every queue manager
	 * this agent sends it to now -- so that in a mesh QM2 does not send
	 * QM3 a second copy of what QM1 sent both of them */
	char path[1024];
	size_t pl;
	bool path_ok = true;

	pl = (size_t)snprintf(path, sizeof path, "%s%s%s", m->path != NULL ? m->path : "",
	                      m->path != NULL ? "," : "", mq.host.qmgr);
	if (pl >= sizeof path)
		path_ok = false;
	for (struct mq_route *r = mq.routes; r != NULL && path_ok; r = r->next) {
		if (!route_takes(r, m) || path_has(path, r->def.qmgr))
			continue;
		int k = snprintf(path + pl, sizeof path - pl, ",%s", r->def.qmgr);
		if (k < 0 || (size_t)k >= sizeof path - pl)
			path_ok = false;
		else
			pl += (size_t)k;
	}
	for (struct mq_route *r = mq.routes; r != NULL; r = r->next) {
		const struct mqtt_route_def *d = &r->def;
		char topic[TOPIC_MAX_LEN + 1];
		char qos[4], *props = NULL;
		size_t plen = 0, pcap = 0;
		struct chd_msg *cm;
		struct mq_op *op;
		uint8_t eq;

		if (!topic_match_n(d->topic, strlen(d->topic), m->topic, m->tlen))
			continue;
		atomic_fetch_add(&r->matched, 1);
		if (d->qmgr[0] != '\0' && (strcmp(d->qmgr, mq.host.qmgr) == 0 ||
		                           path_has(m->path, d->qmgr))) {
			/* it came from there: no loops in a mesh */
			atomic_fetch_add(&r->loops, 1);
			continue;
		}
		if (d->qmgr[0] != '\0' && !mqtt_route_topic(d, m->topic, topic, sizeof topic)) {
			route_drop(r, "the rewritten topic is empty or too long");
			continue;
		}
		if (d->qmgr[0] == '\0')
			str_copy(topic, m->topic, sizeof topic);
		if (!path_ok) {
			route_drop(r, "the path of queue managers is too long");
			continue;
		}
		eq = m->qos > d->qos_min ? m->qos : (uint8_t)d->qos_min;
		snprintf(qos, sizeof qos, "%u", eq);
		prop_add(&props, &plen, &pcap, "mqtt.topic", topic);
		prop_add(&props, &plen, &pcap, "mqtt.qos", qos);
		prop_add(&props, &plen, &pcap, "mqtt.retain", m->retain ? "1" : "0");
		prop_add(&props, &plen, &pcap, "mqtt.path", path);
		if (m->prlen > 0) {
			char *b = b64_encode(m->props, m->prlen);
			if (b == NULL)
				fatalx("out of memory");
			prop_add(&props, &plen, &pcap, "mqtt.props", b);
			free(b);
		}
		if ((cm = calloc(1, sizeof *cm)) == NULL)
			fatalx("out of memory");
		cm->persistent = eq > 0;
		cm->priority = 4;
		cm->expiry_ms = m->expiry_ms;
		str_copy(cm->format, "MQTT", sizeof cm->format);
		cm->props = props;
		if (m->plen > 0) {
			if ((cm->body = malloc(m->plen)) == NULL)
				fatalx("out of memory");
			memcpy(cm->body, m->payload, m->plen);
		}
		cm->body_len = m->plen;
		/* QoS 0 with nobody waiting: the round's lazy job */
		op = mq_job_op(job != NULL ? job : mq_lazy(), OP_Q_PUT, NULL);
		op->qmsg = cm;
		op->route = r;
		if (d->qmgr[0] != '\0') {
			str_copy(op->qname, MQTT_ROUTE_QUEUE, sizeof op->qname);
			str_copy(op->qmgr, d->qmgr, sizeof op->qmgr);
		} else {
			str_copy(op->qname, d->queue, sizeof op->qname);
		}
	}
}

int mq_route_run_op(struct store *st, struct mq_op *op)
{
	size_t done = 0;
	int rc;

	if (op->kind == OP_Q_CONFIRM)
		return store_confirm(st, op->locked);
	rc = store_put(st, op->qname, op->qmgr[0] ? op->qmgr : NULL, op->qmsg, 1, &done);
	if (rc == STORE_OK) {
		atomic_fetch_add(&op->route->forwarded, 1);
	} else {
		char why[300];
		snprintf(why, sizeof why, "%s", store_errmsg(st));
		route_drop(op->route, why);
		/* QoS 0 has nobody to tell: say it here (the job's owner logs the rest) */
		if (!op->qmsg->persistent)
			log_warn(code_str(CHD_MQ_STORE), "route=%s QoS 0 publication not forwarded: %s",
			         op->route->def.name, why);
	}
	return rc;
}

void mq_route_op_free(struct mq_op *op)
{
	if (op->qmsg != NULL) {
		msg_clear(op->qmsg);
		free(op->qmsg);
		op->qmsg = NULL;
	}
	if (op->locked != NULL) {
		msg_list_free(op->locked);
		free(op->locked);
		op->locked = NULL;
	}
}

/* ---- in ---- */

/* The queue is defined with the first telemetry channel or route (not
 * before: an agent that does no MQTT keeps its queue list as it was). */
int mq_inq_prepare(struct store *st)
{
	struct queue_def q;
	int rc;

	if (mq.inq_ready)
		return 0;
	if (store_queue_get(st, MQTT_ROUTE_QUEUE, &q) == STORE_OK) {
		mq.inq_ready = true;
		mq.inq_more = true;
		return 0;
	}
	queue_def_init(&q, QTYPE_LOCAL);
	str_copy(q.name, MQTT_ROUTE_QUEUE, sizeof q.name);
	q.maxdepth = 999999999;
	str_copy(q.descr, "publications routed here by other queue managers", sizeof q.descr);
	rc = store_queue_define(st, &q, false);
	if (rc != STORE_OK && rc != STORE_EXISTS) {
		log_error(code_str(CHD_DB_ERROR), "cannot define queue %s: %s", MQTT_ROUTE_QUEUE,
		          store_errmsg(st));
		return -1;
	}
	log_info(code_str(CHD_Q_DEFINED), "queue %s defined: routed publications arrive there",
	         MQTT_ROUTE_QUEUE);
	mq.inq_ready = true;
	mq.inq_more = true;
	return 0;
}

/* A routed message back into a publication, or NULL (it is not one). */
static struct mq_msg *from_msg(const struct chd_msg *cm)
{
	char *topic = prop_get(cm->props, "mqtt.topic");
	char *qos = prop_get(cm->props, "mqtt.qos");
	char *retain = prop_get(cm->props, "mqtt.retain");
	char *path = prop_get(cm->props, "mqtt.path");
	char *props = prop_get(cm->props, "mqtt.props");
	struct mq_msg *m = NULL;
	uint8_t *pb = NULL;
	size_t pl = 0, errpos;
	const char *why;

	if (topic == NULL || topic[0] == '\0' ||
	    topic_name_check(topic, strlen(topic), &errpos, &why) != 0)
		goto out;
	if (props != NULL && (pb = b64_decode(props, strlen(props), &pl)) == NULL)
		goto out;
	m = mq_msg_new((const uint8_t *)topic, strlen(topic), cm->body, cm->body_len, pb, pl,
	               qos != NULL && atoi(qos) >= 0 && atoi(qos) <= 2 ? (uint8_t)atoi(qos)
	                                                              : (cm->persistent ? 1 : 0),
	               retain != NULL && strcmp(retain, "1") == 0, cm->expiry_ms);
	m->path = path;
	path = NULL;
out:
	free(topic);
	free(qos);
	free(retain);
	free(path);
	free(props);
	free(pb);
	return m;
}

void mq_inq_poll(void)
{
	struct msg_list *l;
	struct mq_job *job;
	uint64_t gen = store_change_gen();
	int64_t now = time_mono_ms();
	int rc;

	if (!mq.inq_ready || mq.inq_jobs >= MQ_INQ_JOBS || mq.rd == NULL || now < mq.inq_retry_at)
		return;
	if (gen == mq.inq_gen && !mq.inq_more)
		return;
	mq.inq_gen = gen;
	if ((l = calloc(1, sizeof *l)) == NULL)
		fatalx("out of memory");
	rc = store_lock(mq.rd, MQTT_ROUTE_QUEUE, INQ_BATCH, mq.inq_owner, l);
	if (rc != STORE_OK) {
		if (rc != STORE_NO_MSG)
			log_error(code_str(CHD_DB_ERROR), "cannot read %s: %s", MQTT_ROUTE_QUEUE,
			          store_errmsg(mq.rd));
		mq.inq_more = false;
		msg_list_free(l);
		free(l);
		return;
	}
	mq.inq_more = l->n == INQ_BATCH;
	job = mq_job_new(DONE_INQ);
	for (size_t i = 0; i < l->n; i++) {
		struct mq_msg *m = from_msg(&l->v[i]);
		if (m == NULL) {
			/* not a publication: removed with the batch, said once each */
			mq.inq_bad++;
			log_warn(code_str(CHD_MQ_PROTOCOL), "a message on %s is not a routed publication "
			         "(no valid mqtt.topic property); removed", MQTT_ROUTE_QUEUE);
			continue;
		}
		mq_publish(m, job);
		mq_msg_unref(m);
	}
	struct mq_op *op = mq_job_op(job, OP_Q_CONFIRM, NULL);
	op->locked = l;
	job->count = l->n;
	mq.inq_jobs++;
	mq_early_hold(job);
}

void mq_inq_done(struct mq_job *job)
{
	if (mq.inq_jobs > 0)
		mq.inq_jobs--;
	if (job->rc != 0) {
		/* nothing of the batch happened: the messages go back */
		for (size_t i = 0; i < job->nops; i++)
			if (job->ops[i].kind == OP_Q_CONFIRM)
				store_release(job->ops[i].locked);
		log_warn(code_str(CHD_MQ_STORE), "routed publications from %s not published yet: %s; "
		         "retrying", MQTT_ROUTE_QUEUE, job->err);
		mq.inq_retry_at = time_mono_ms() + INQ_RETRY_MS;
		mq.inq_more = true;
		return;
	}
	mq.inq_done += job->count;
	mq.inq_more = true;
}

/* ---- definitions ---- */

static struct mq_route *route_add(const struct mqtt_route_def *d)
{
	struct mq_route *r = calloc(1, sizeof *r), **pp;

	if (r == NULL)
		fatalx("out of memory");
	r->def = *d;
	pthread_mutex_init(&r->why_mtx, NULL);
	/* sorted by name: display order */
	for (pp = &mq.routes; *pp != NULL && strcmp((*pp)->def.name, d->name) < 0; pp = &(*pp)->next)
		;
	r->next = *pp;
	*pp = r;
	return r;
}

static struct mq_route *route_find(const char *name)
{
	for (struct mq_route *r = mq.routes; r != NULL; r = r->next)
		if (strcmp(r->def.name, name) == 0)
			return r;
	return NULL;
}

void mq_routes_load(struct store *st)
{
	char **names = NULL, **attrs = NULL;
	size_t n = 0;

	if (store_route_list(st, &names, &attrs, &n) != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "cannot load routes: %s", store_errmsg(st));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct mqtt_route_def d;
		char err[400];
		if (mqtt_route_from_text(&d, names[i], attrs[i], err, sizeof err) != 0)
			log_error(code_str(CHD_DB_ERROR), "%s", err);
		else
			route_add(&d);
	}
	store_route_list_free(names, attrs, n);
}

void mq_routes_free(void)
{
	struct mq_route *lists[2] = { mq.routes, mq.dead_routes };

	for (int k = 0; k < 2; k++)
		for (struct mq_route *r = lists[k], *n; r != NULL; r = n) {
			n = r->next;
			pthread_mutex_destroy(&r->why_mtx);
			free(r);
		}
	mq.routes = mq.dead_routes = NULL;
}

static int rres(struct mqtt_result *r, enum chd_code_id code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int rres(struct mqtt_result *r, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
	return -1;
}

/* The target must exist now: a queue (local or remote definition), or a
 * transmission queue that reaches the queue manager. */
static int check_target(struct store *st, const struct mqtt_route_def *d, struct mqtt_result *r)
{
	char lq[CHAND_NAME_MAX + 1], xqm[CHAND_NAME_MAX + 1], xq[CHAND_NAME_MAX + 1];
	int rc;

	if (d->queue[0] != '\0') {
		rc = store_resolve(st, d->queue, NULL, lq, xqm, xq);
		if (rc == STORE_UNKNOWN_Q)
			return rres(r, CHD_Q_UNKNOWN, "route %s: queue %s is not defined", d->name,
			            d->queue);
		if (rc != STORE_OK)
			return rres(r, CHD_Q_UNKNOWN, "route %s: queue %s cannot take messages: %s",
			            d->name, d->queue, store_errmsg(st));
		return 0;
	}
	if (strcmp(d->qmgr, mq.host.qmgr) == 0)
		return rres(r, CHD_CONFIG_ERROR, "route %s: %s is this queue manager; its subscribers "
		            "get every publication already", d->name, d->qmgr);
	rc = store_resolve(st, MQTT_ROUTE_QUEUE, d->qmgr, lq, xqm, xq);
	if (rc != STORE_OK)
		return rres(r, CHD_Q_UNKNOWN, "route %s: no transmission queue reaches queue manager "
		            "%s (define qlocal %s --usage xmitq, and a channel that serves it): %s",
		            d->name, d->qmgr, d->qmgr, store_errmsg(st));
	return 0;
}

int mqtt_op_route_define(struct store *st, const char *name, const json_t *attrs, bool replace,
                         struct mqtt_result *r)
{
	struct mqtt_route_def d;
	struct mq_route *old;
	char err[400], *text;
	json_t *o;
	int rc;

	mqtt_route_init(&d, name);
	if (mqtt_route_apply_json(&d, attrs, err, sizeof err) != 0 ||
	    mqtt_route_validate(&d, err, sizeof err) != 0)
		return rres(r, CHD_CONFIG_ERROR, "route %s: %s", name, err);
	mq_admin_lock();
	old = route_find(name);
	if (old != NULL && !replace) {
		pthread_mutex_unlock(&mq.mtx);
		return rres(r, CHD_Q_EXISTS, "route %s is already defined (use --replace)", name);
	}
	if (check_target(st, &d, r) != 0 || mq_inq_prepare(st) != 0) {
		if (r->text[0] == '\0')
			rres(r, CHD_DB_ERROR, "cannot define queue %s", MQTT_ROUTE_QUEUE);
		pthread_mutex_unlock(&mq.mtx);
		return -1;
	}
	o = mqtt_route_to_json(&d);
	text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (text == NULL) {
		pthread_mutex_unlock(&mq.mtx);
		return rres(r, CHD_SYS_RESOURCE, "out of memory");
	}
	rc = store_route_put(st, name, text, replace);
	free(text);
	if (rc != STORE_OK) {
		pthread_mutex_unlock(&mq.mtx);
		return rres(r, rc == STORE_EXISTS ? CHD_Q_EXISTS : CHD_DB_ERROR, "route %s: %s", name,
		            store_errmsg(st));
	}
	if (old != NULL)
		old->def = d;
	else
		route_add(&d);
	log_info(code_str(CHD_CH_DEFINED), "route=%s defined: topic '%s' to %s %s%s", name, d.topic,
	         d.queue[0] ? "queue" : "queue manager", d.queue[0] ? d.queue : d.qmgr,
	         d.qos_min > 0 ? " (QoS raised to at least the route's minimum)" : "");
	pthread_mutex_unlock(&mq.mtx);
	return 0;
}

int mqtt_op_route_delete(struct store *st, const char *name, struct mqtt_result *r)
{
	struct mq_route **pp, *rt;
	int rc;

	mq_admin_lock();
	for (pp = &mq.routes; *pp != NULL && strcmp((*pp)->def.name, name) != 0; pp = &(*pp)->next)
		;
	if ((rt = *pp) == NULL) {
		pthread_mutex_unlock(&mq.mtx);
		return rres(r, CHD_Q_UNKNOWN, "route %s is not defined", name);
	}
	if ((rc = store_route_delete(st, name)) != STORE_OK && rc != STORE_NOT_FOUND) {
		pthread_mutex_unlock(&mq.mtx);
		return rres(r, CHD_DB_ERROR, "route %s: %s", name, store_errmsg(st));
	}
	*pp = rt->next;
	/* operations in the writer's queue may still point at it */
	rt->deleted = true;
	rt->next = mq.dead_routes;
	mq.dead_routes = rt;
	log_info(code_str(CHD_CH_DELETED), "route=%s deleted", name);
	pthread_mutex_unlock(&mq.mtx);
	return 0;
}

json_t *mqtt_op_route_display(const char *pattern)
{
	json_t *arr = json_array();

	mq_admin_lock();
	for (struct mq_route *r = mq.routes; r != NULL; r = r->next) {
		json_t *o;
		if (!name_match(pattern, r->def.name))
			continue;
		o = mqtt_route_to_json(&r->def);
		json_object_set_new(o, "matched", json_integer((json_int_t)atomic_load(&r->matched)));
		json_object_set_new(o, "forwarded",
		                    json_integer((json_int_t)atomic_load(&r->forwarded)));
		json_object_set_new(o, "dropped", json_integer((json_int_t)atomic_load(&r->dropped)));
		json_object_set_new(o, "loops_prevented",
		                    json_integer((json_int_t)atomic_load(&r->loops)));
		pthread_mutex_lock(&r->why_mtx);
		json_object_set_new(o, "last_drop_reason", r->last_drop[0] ? json_string(r->last_drop)
		                                                           : json_null());
		pthread_mutex_unlock(&r->why_mtx);
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&mq.mtx);
	return arr;
}
