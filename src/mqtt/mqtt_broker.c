/* The broker of the telemetry service: sessions, subscriptions, delivery,
 * retained messages and wills.  Runs on the loop thread only (mq.mtx held).
 *
 * Durability rule: a QoS 1/2 publication is delivered to nobody before it
 * is committed (the rows of persistent subscribers and the retained copy
 * are in the same group transaction as every other publication of that
 * round), so a crash can never make a subscriber see a message that the
 * publisher will send again as new.  QoS 0 is delivered at once and
 * queued for no offline session (as Mosquitto's default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/log.h"
#include "mqtt_int.h"

/* ---- messages ---- */

struct mq_msg *mq_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                          const uint8_t *props, size_t prlen, uint8_t qos, bool retain,
                          int64_t expiry_ms)
{
	struct mq_msg *m = calloc(1, sizeof *m);

	if (m == NULL || (m->topic = malloc(tlen + 1)) == NULL ||
	    (plen > 0 && (m->payload = malloc(plen)) == NULL) ||
	    (prlen > 0 && (m->props = malloc(prlen)) == NULL))
		fatalx("out of memory");
	m->refs = 1;
	memcpy(m->topic, topic, tlen);
	m->topic[tlen] = '\0';
	m->tlen = tlen;
	if (plen > 0)
		memcpy(m->payload, payload, plen);
	m->plen = plen;
	if (prlen > 0)
		memcpy(m->props, props, prlen);
	m->prlen = prlen;
	m->qos = qos;
	m->retain = retain;
	m->expiry_ms = expiry_ms;
	return m;
}

void mq_msg_ref(struct mq_msg *m)
{
	m->refs++;
}

void mq_msg_unref(struct mq_msg *m)
{
	if (m != NULL && --m->refs == 0) {
		free(m->topic);
		free(m->payload);
		free(m->props);
		free(m->path);
		free(m);
	}
}

static void out_free(struct mq_out *o)
{
	mq_early_settle(o);
	mq_msg_unref(o->m);
	free(o);
}

/* ---- the session table ---- */

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static void stab_grow(void)
{
	size_t n = mq.stab_size ? mq.stab_size * 2 : 1024;
	struct mq_sess **t = calloc(n, sizeof *t);

	if (t == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < mq.stab_size; i++) {
		struct mq_sess *s = mq.stab[i], *next;
		for (; s != NULL; s = next) {
			next = s->hnext;
			size_t b = hash_str(s->client_id) & (n - 1);
			s->hnext = t[b];
			t[b] = s;
		}
	}
	free(mq.stab);
	mq.stab = t;
	mq.stab_size = n;
}

struct mq_sess *mq_sess_find(const char *client_id)
{
	if (mq.stab_size == 0)
		return NULL;
	for (struct mq_sess *s = mq.stab[hash_str(client_id) & (mq.stab_size - 1)]; s != NULL;
	     s = s->hnext)
		if (strcmp(s->client_id, client_id) == 0)
			return s;
	return NULL;
}

struct mq_sess *mq_sess_add(const char *client_id)
{
	struct mq_sess *s = calloc(1, sizeof *s);
	size_t b;

	if (s == NULL || (s->client_id = strdup(client_id)) == NULL)
		fatalx("out of memory");
	if (mq.nsess + 1 > mq.stab_size)
		stab_grow();
	s->id = ++mq.next_sess_id;
	s->refs = 1;
	s->expiry_s = 0;
	s->next_pid = 1;
	b = hash_str(client_id) & (mq.stab_size - 1);
	s->hnext = mq.stab[b];
	mq.stab[b] = s;
	mq.nsess++;
	return s;
}

static void stab_remove(struct mq_sess *s)
{
	struct mq_sess **pp = &mq.stab[hash_str(s->client_id) & (mq.stab_size - 1)];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			mq.nsess--;
			return;
		}
}

static void sess_free_queues(struct mq_sess *s)
{
	struct mq_out *o, *n;

	for (o = s->fl_head; o != NULL; o = n) {
		n = o->next;
		out_free(o);
	}
	for (o = s->q_head; o != NULL; o = n) {
		n = o->next;
		out_free(o);
	}
	s->fl_head = s->fl_tail = s->q_head = s->q_tail = NULL;
	s->n_flight = 0;
	s->n_queued = 0;
}

void mq_sess_unref(struct mq_sess *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	sess_free_queues(s);
	for (struct mq_sub *sub = s->subs, *n; sub != NULL; sub = n) {
		n = sub->next;
		free(sub->filter);
		free(sub);
	}
	mq_msg_unref(s->will);
	free(s->in2);
	free(s->identity);
	free(s->client_id);
	free(s);
}

void mq_publish_now(struct mq_msg *m)
{
	struct mq_job *j = NULL;

	if (m->qos > 0) {
		j = mq_job_new(DONE_PUBLISH);
		mq_msg_ref(m);
		j->m = m;
	}
	mq_publish(m, j);
	if (j != NULL)
		mq_job_submit(j);
}

static void publish_will(struct mq_sess *s)
{
	struct mq_msg *w = s->will;

	s->will = NULL;
	if (w == NULL)
		return;
	mq_publish_now(w);
	mq_msg_unref(w);
}

void mq_sess_drop(struct mq_sess *s, struct mq_job *job)
{
	if (s->gone)
		return;
	publish_will(s);
	subtree_remove_owner(mq.subs, s);
	sess_free_queues(s);
	s->n_in2 = 0;
	if (s->persistent) {
		mq_job_op(job != NULL ? job : mq_lazy(), OP_SESS_DEL, s->client_id);
		s->persistent = false;
	}
	stab_remove(s);
	s->gone = true;
	mq_sess_unref(s);
}

/* ---- inbound QoS 2 ids ---- */

bool mq_in2_has(struct mq_sess *s, uint16_t pid)
{
	for (size_t i = 0; i < s->n_in2; i++)
		if (s->in2[i] == pid)
			return true;
	return false;
}

void mq_in2_add(struct mq_sess *s, uint16_t pid)
{
	if (mq_in2_has(s, pid))
		return;
	if (s->n_in2 == s->cap_in2) {
		size_t cap = s->cap_in2 ? s->cap_in2 * 2 : 8;
		uint16_t *n = realloc(s->in2, cap * sizeof *n);
		if (n == NULL)
			fatalx("out of memory");
		s->in2 = n;
		s->cap_in2 = cap;
	}
	s->in2[s->n_in2++] = pid;
}

void mq_in2_del(struct mq_sess *s, uint16_t pid)
{
	for (size_t i = 0; i < s->n_in2; i++)
		if (s->in2[i] == pid) {
			s->in2[i] = s->in2[--s->n_in2];
			return;
		}
}

size_t mq_sess_pending(const struct mq_sess *s)
{
	int64_t stored = s->stored;
	size_t mem = 0;

	for (const struct mq_out *o = s->q_head; o != NULL; o = o->next)
		if (o->seq == 0)
			mem++;
	return (size_t)(stored > 0 ? stored : 0) + mem;
}

/* ---- retained messages ---- */

struct rnode {
	struct rnode *next;
	struct mq_msg *m;
};

static struct rnode **rtab;
static size_t rtab_size, rtab_n;

static void rtab_grow(void)
{
	size_t n = rtab_size ? rtab_size * 2 : 256;
	struct rnode **t = calloc(n, sizeof *t);

	if (t == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < rtab_size; i++)
		for (struct rnode *r = rtab[i], *next; r != NULL; r = next) {
			next = r->next;
			size_t b = hash_str(r->m->topic) & (n - 1);
			r->next = t[b];
			t[b] = r;
		}
	free(rtab);
	rtab = t;
	rtab_size = n;
}

void mq_retained_set(struct mq_msg *m)
{
	struct rnode **pp, *r;

	if (rtab_size == 0)
		rtab_grow();
	pp = &rtab[hash_str(m->topic) & (rtab_size - 1)];
	for (; (r = *pp) != NULL; pp = &r->next)
		if (strcmp(r->m->topic, m->topic) == 0)
			break;
	if (r != NULL) {
		mq_msg_unref(r->m);
		if (m->plen == 0) {
			*pp = r->next;
			free(r);
			rtab_n--;
			return;
		}
		mq_msg_ref(m);
		r->m = m;
		return;
	}
	if (m->plen == 0)
		return;
	if (rtab_n + 1 > rtab_size) {
		rtab_grow();
		pp = &rtab[hash_str(m->topic) & (rtab_size - 1)];
	}
	if ((r = malloc(sizeof *r)) == NULL)
		fatalx("out of memory");
	mq_msg_ref(m);
	r->m = m;
	r->next = *pp;
	*pp = r;
	rtab_n++;
}

size_t mq_retained_count(void);
size_t mq_retained_count(void)
{
	return rtab_n;
}

void mq_retained_clear(void);
void mq_retained_clear(void)
{
	for (size_t i = 0; i < rtab_size; i++)
		for (struct rnode *r = rtab[i], *next; r != NULL; r = next) {
			next = r->next;
			mq_msg_unref(r->m);
			free(r);
		}
	free(rtab);
	rtab = NULL;
	rtab_size = rtab_n = 0;
}

/* ---- delivery ---- */

static void queue_append(struct mq_sess *s, struct mq_out *o)
{
	o->next = NULL;
	if (s->q_tail != NULL)
		s->q_tail->next = o;
	else
		s->q_head = o;
	s->q_tail = o;
	s->n_queued++;
}

static struct mq_out *out_new(struct mq_msg *m, uint8_t qos, bool retain, uint32_t sub_id,
                              int64_t seq)
{
	struct mq_out *o = calloc(1, sizeof *o);

	if (o == NULL)
		fatalx("out of memory");
	mq_msg_ref(m);
	o->m = m;
	o->qos = qos;
	o->retain = retain;
	o->sub_id = sub_id;
	o->seq = seq;
	return o;
}

/* Hands a message to an online clean session, or drops it with a count
 * when its memory queue is full. */
static void deliver_mem(struct mq_sess *s, struct mq_msg *m, uint8_t qos, bool retain,
                        uint32_t sub_id)
{
	if (s->gone || s->conn == NULL)
		return;
	if (s->n_queued >= MQ_CLEANQ_MAX) {
		if (s->dropped++ == 0)
			log_warn(code_str(CHD_MQ_DROPPED), "channel=%s client=%s queue of %d waiting "
			         "messages is full; dropping messages for it", s->channel, s->client_id,
			         MQ_CLEANQ_MAX);
		return;
	}
	queue_append(s, out_new(m, qos, retain, sub_id, 0));
}

struct tgt {
	struct mq_sess *sess;
	uint8_t qos;
	bool retain;
	uint32_t sub_id;
};

struct fanout {
	struct mq_msg *m;
	struct tgt *v;
	size_t n, cap;
};

static void fan_cb(void *arg, void *owner, const char *filter, uint8_t opts, uint32_t subid)
{
	struct fanout *f = arg;
	struct mq_sess *s = owner;
	uint8_t qos = opts & 3;
	bool rap = (opts >> 3) & 1, no_local = (opts >> 2) & 1;

	(void)filter;
	if (no_local && f->m->origin == s->id)
		return;
	if (!mq_may_read(s, f->m->topic))
		return;
	if (qos > f->m->qos)
		qos = f->m->qos;
	/* one copy per session, with the highest QoS of its matching
	 * subscriptions ([MQTT-3.3.5-1]) */
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].sess == s) {
			if (qos > f->v[i].qos)
				f->v[i].qos = qos;
			if (rap && f->m->retain)
				f->v[i].retain = true;
			if (f->v[i].sub_id == 0)
				f->v[i].sub_id = subid;
			return;
		}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct tgt *n = realloc(f->v, cap * sizeof *n);
		if (n == NULL)
			fatalx("out of memory");
		f->v = n;
		f->cap = cap;
	}
	f->v[f->n++] = (struct tgt){ s, qos, rap && f->m->retain, subid };
}

void mq_publish(struct mq_msg *m, struct mq_job *job)
{
	struct fanout f = { m, NULL, 0, 0 };
	size_t nops = job != NULL ? job->nops : 0;

	/* routes first: a full queue fails the job before anything else of
	 * it is written (mqtt_persist.c) */
	mq_routes_apply(m, job);
	/* a publication that goes on to a queue is never sent before its job
	 * commits: that put may fail, and the batch would come again and be
	 * sent a second time at each retry */
	bool onward = job != NULL && job->nops > nops;
	if (m->retain) {
		struct mq_job *rj = job != NULL ? job : mq_lazy();
		struct mq_op *op;
		mq_retained_set(m);
		if (m->plen == 0) {
			op = mq_job_op(rj, OP_RET_DEL, NULL);
			if ((op->text = strdup(m->topic)) == NULL)
				fatalx("out of memory");
		} else {
			op = mq_job_op(rj, OP_RET_PUT, NULL);
			mq_msg_ref(m);
			op->m = m;
		}
	}
	subtree_match(mq.subs, m->topic, m->tlen, fan_cb, &f);
	for (size_t i = 0; i < f.n; i++) {
		struct tgt *t = &f.v[i];
		struct mq_sess *s = t->sess;

		/* a routed publication (DONE_INQ) was read from the store and may
		 * not be durable yet: every target waits for the job's commit,
		 * which is (store_db.c, group sync) */
		if (job == NULL || (t->qos == 0 && job->done != DONE_INQ)) {
			deliver_mem(s, m, 0, t->retain, t->sub_id);
			mq_sess_pump(s);
		} else if (s->persistent && t->qos > 0) {
			struct mq_op *op = mq_job_op(job, OP_OUT_ADD, s->client_id);
			mq_msg_ref(m);
			op->m = m;
			op->qos = t->qos;
			op->state = t->retain ? 1 : 0;
			op->sub_id = t->sub_id;
			s->refs++;
			op->sess = s;
			if (!onward && mq_early_ok(s, op, job)) {
				/* sent now; the row only if it is not acknowledged
				 * while the job is held (mqtt_early.c) */
				struct mq_out *o = out_new(m, t->qos, t->retain, t->sub_id, 0);
				mq_early_attach(o, op, job);
				queue_append(s, o);
				mq_sess_pump(s);
			} else {
				s->rows_pending++;
			}
		} else if (s->conn != NULL) {
			if (job->ntg == job->captg) {
				size_t cap = job->captg ? job->captg * 2 : 8;
				struct mq_tgt *n = realloc(job->tg, cap * sizeof *n);
				if (n == NULL)
					fatalx("out of memory");
				job->tg = n;
				job->captg = cap;
			}
			s->refs++;
			mq_msg_ref(m);
			job->tg[job->ntg++] = (struct mq_tgt){ s, m, t->qos, t->retain, t->sub_id };
		}
	}
	free(f.v);
}

/* A row committed for a persistent session: into its memory queue when it
 * is online and the row follows what is already loaded; otherwise it is
 * read from the store later (resume or backlog). While early entries of
 * the session wait for their job (mqtt_early.c), every row joins memory:
 * a read of the store could otherwise bring an early entry in twice. */
static void deliver_row(struct mq_op *op)
{
	struct mq_sess *s = op->sess;

	if (s->gone)
		return;
	s->stored++;
	if (op->seq <= s->loaded_upto)
		return;
	if (s->early_rows == 0 && (s->conn == NULL || s->backlog || s->n_queued >= MQ_MEMQ_MAX)) {
		/* offline too: the row is read at resume, even when some of the
		 * session's messages are still in memory */
		s->backlog = true;
		return;
	}
	struct mq_out *o = out_new(op->m, op->qos, op->state != 0, op->sub_id, op->seq);
	s->loaded_upto = op->seq;
	queue_append(s, o);
	mq_sess_pump(s);
}

static void send_ack(struct mq_conn *c, enum mqtt_ptype type, uint16_t pid, uint8_t reason)
{
	if (c == NULL || c->dead || c->state != MC_ACTIVE)
		return;
	if (mqtt_encode_ack(&c->w, c->version, type, pid, reason, NULL) != 0)
		fatalx("out of memory");
	mq_conn_send(c);
}

static struct mq_out *flight_find(struct mq_sess *s, uint16_t pid, struct mq_out **prev)
{
	struct mq_out *p = NULL;

	for (struct mq_out *o = s->fl_head; o != NULL; p = o, o = o->next)
		if (o->pid == pid) {
			*prev = p;
			return o;
		}
	return NULL;
}

void mq_deliver_committed(struct mq_job *job)
{
	struct mq_conn *c = job->conn;

	switch (job->done) {
	case DONE_NONE:
		return;
	case DONE_PUBLISH:
	case DONE_ADMIN:
	case DONE_INQ:
		if (c != NULL) {
			if (c->inflight_in > 0)
				c->inflight_in--;
			if (job->qos == 1)
				for (size_t i = 0; i < c->n_in1; i++)
					if (c->in1[i] == job->pid) {
						c->in1[i] = c->in1[--c->n_in1];
						break;
					}
			if (job->rc != 0) {
				if (job->qos == 2 && c->sess != NULL)
					mq_in2_del(c->sess, job->pid);
				/* a full route queue: v5 says so ([MQTT-3.4.2] 0x97);
				 * 3.1.1 has no refusal, so no ack: the client sends it
				 * again later (back-pressure, nothing lost) */
				if (c->version == MQTT_V5 && !c->dead)
					send_ack(c, job->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, job->pid,
					         job->rc == STORE_FULL ? MQTT_RC_QUOTA_EXCEEDED
					                               : MQTT_RC_UNSPECIFIED);
				else if (!c->dead)
					mq_conn_close(c, CHD_MQ_STORE, true, "publication could not be "
					              "stored: %s", job->err);
			} else {
				send_ack(c, job->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, job->pid, 0);
			}
		}
		for (size_t i = 0; i < job->nops; i++) {
			struct mq_op *op = &job->ops[i];
			if (op->kind != OP_OUT_ADD)
				continue;
			if (op->early != NULL) {
				mq_early_done(op, job->rc);
				continue;
			}
			if (op->sess->rows_pending > 0)
				op->sess->rows_pending--;
			if (job->rc == 0)
				deliver_row(op);
		}
		if (job->rc == 0) {
			for (size_t i = 0; i < job->ntg; i++) {
				struct mq_tgt *t = &job->tg[i];
				deliver_mem(t->sess, t->m, t->qos, t->retain, t->sub_id);
				mq_sess_pump(t->sess);
			}
		}
		if (job->done == DONE_INQ)
			mq_inq_done(job);
		if (job->waiter != NULL) {
			pthread_mutex_lock(&job->waiter->mtx);
			if (job->rc != 0 && job->waiter->rc == 0)
				job->waiter->rc = job->rc;
			if (job->rc == 0)
				job->waiter->ok++;
			job->waiter->pending--;
			pthread_cond_broadcast(&job->waiter->cond);
			pthread_mutex_unlock(&job->waiter->mtx);
		}
		return;
	case DONE_PUBREL:
		if (job->rc == 0)
			send_ack(c, MQTT_PUBCOMP, job->pid, 0);
		else if (c != NULL && !c->dead)
			mq_conn_close(c, CHD_MQ_STORE, true, "PUBREL could not be stored: %s", job->err);
		return;
	case DONE_SEND:
		if (job->sess == NULL || job->sess->gone || job->sess->conn == NULL)
			return;
		for (struct mq_out *o = job->sess->fl_head; o != NULL; o = o->next)
			if (o->held && job->rc == 0) {
				o->held = false;
				mq_send_publish(job->sess->conn, o);
			}
		return;
	case DONE_CONNACK:
		if (c == NULL || c->dead)
			return;
		if (job->rc != 0) {
			if (mqtt_encode_connack(&c->w, c->version, false, c->version == MQTT_V5
			                        ? MQTT_RC_UNSPECIFIED : MQTT_V3_SERVER_UNAVAILABLE,
			                        NULL) != 0)
				fatalx("out of memory");
			mq_conn_send(c);
			mq_conn_close(c, CHD_MQ_STORE, false, "session could not be stored: %s",
			              job->err);
			return;
		}
		if (mqtt_wbuf_reserve(&c->w, job->pkt.len) != 0)
			fatalx("out of memory");
		memcpy(c->w.p + c->w.len, job->pkt.p, job->pkt.len);
		c->w.len += job->pkt.len;
		mq_conn_send(c);
		mq_conn_unpause(c);
		if (c->sess != NULL)
			mq_sess_resume(c->sess);
		return;
	case DONE_SUBACK:
		mq_deliver_suback(job);
		if (c != NULL && !c->dead)
			mq_conn_unpause(c);
		return;
	case DONE_BYTES:
		if (c == NULL || c->dead)
			return;
		if (job->rc == 0) {
			if (mqtt_wbuf_reserve(&c->w, job->pkt.len) != 0)
				fatalx("out of memory");
			memcpy(c->w.p + c->w.len, job->pkt.p, job->pkt.len);
			c->w.len += job->pkt.len;
			mq_conn_send(c);
		} else {
			mq_conn_close(c, CHD_MQ_STORE, true, "change could not be stored: %s", job->err);
			return;
		}
		mq_conn_unpause(c);
		return;
	case DONE_PUBREC_IN:
		if (job->sess == NULL || job->sess->gone || job->sess->conn == NULL || job->rc != 0)
			return;
		send_ack(job->sess->conn, MQTT_PUBREL, job->pid, 0);
		return;
	}
}

static uint16_t next_pid(struct mq_sess *s)
{
	for (unsigned tries = 0; tries < 65536; tries++) {
		uint16_t pid = s->next_pid++;
		struct mq_out *prev;
		if (s->next_pid == 0)
			s->next_pid = 1;
		if (pid == 0)
			continue;
		if (s->n_flight == 0 || flight_find(s, pid, &prev) == NULL)
			return pid;
	}
	return 0;
}

static void sess_load(struct mq_sess *s);

void mq_sess_pump(struct mq_sess *s)
{
	struct mq_conn *c = s->conn;
	struct mq_job *j2 = NULL;
	unsigned max;
	int64_t now = time_now_ms();

	if (c == NULL || c->dead || c->state != MC_ACTIVE || c->paused > 0)
		return;
	/* a slow reader: leave the rest queued (bounded) instead of buffering
	 * without end */
	if (c->w.len - c->woff > MQ_OUTBUF_HIGH)
		return;
	max = c->client_recv_max ? c->client_recv_max : MQ_INFLIGHT_DEFAULT;
	while (s->q_head != NULL && c->w.len - c->woff <= MQ_OUTBUF_HIGH) {
		struct mq_out *o = s->q_head;

		if (o->qos > 0 && s->n_flight >= max)
			break;
		s->q_head = o->next;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		s->n_queued--;
		o->next = NULL;
		if (o->seq > 0 && s->stored > 0)
			s->stored--;
		if (o->m->expiry_ms != 0 && o->m->expiry_ms <= now) {
			if (o->seq > 0) {
				struct mq_op *op = mq_job_op(mq_lazy(), OP_OUT_DEL, s->client_id);
				op->seq = o->seq;
			}
			out_free(o);
			continue;
		}
		if (!mq_send_publish_fits(c, o)) {
			if (s->dropped++ == 0)
				log_warn(code_str(CHD_MQ_DROPPED), "channel=%s client=%s a message on '%.200s' "
				         "is larger than the client's maximum packet size; dropped",
				         s->channel, s->client_id, o->m->topic);
			if (o->seq > 0) {
				struct mq_op *op = mq_job_op(mq_lazy(), OP_OUT_DEL, s->client_id);
				op->seq = o->seq;
			}
			out_free(o);
			continue;
		}
		if (o->qos == 0) {
			mq_send_publish(c, o);
			if (o->seq > 0) {
				struct mq_op *op = mq_job_op(mq_lazy(), OP_OUT_DEL, s->client_id);
				op->seq = o->seq;
			}
			out_free(o);
			continue;
		}
		o->pid = next_pid(s);
		o->state = STORE_MQTT_SENT;
		if (s->fl_tail != NULL)
			s->fl_tail->next = o;
		else
			s->fl_head = o;
		s->fl_tail = o;
		s->n_flight++;
		if (o->seq > 0 && o->qos == 2) {
			/* exactly once: the packet id must be durable before the
			 * client can see it, or a resend after a crash would carry
			 * another id and look new */
			struct mq_op *op;
			if (j2 == NULL) {
				j2 = mq_job_new(DONE_SEND);
				s->refs++;
				j2->sess = s;
			}
			op = mq_job_op(j2, OP_OUT_SET, s->client_id);
			op->seq = o->seq;
			op->pid = o->pid;
			op->state = STORE_MQTT_SENT;
			o->held = true;
		} else {
			if (o->seq > 0) {
				/* QoS 1: its packet id on the row, without waiting for
				 * it, so a resend after a restart carries DUP and the same
				 * id ([MQTT-4.4.0-1]); lost in a crash, the message is
				 * only sent again as new, which QoS 1 allows */
				struct mq_op *op = mq_job_op(mq_lazy(), OP_OUT_SET, s->client_id);
				op->seq = o->seq;
				op->pid = o->pid;
				op->state = STORE_MQTT_SENT;
			}
			mq_send_publish(c, o);
		}
	}
	if (j2 != NULL)
		mq_job_submit(j2);
	if (s->backlog && s->n_queued < MQ_MEMQ_MAX / 2)
		sess_load(s);
}

/* Brings the next rows of a persistent session from the store. */
static void sess_load(struct mq_sess *s)
{
	struct store_mqtt_msg *rows = NULL;
	size_t n = 0, room = MQ_MEMQ_MAX > s->n_queued ? MQ_MEMQ_MAX - s->n_queued : 0;
	int rc;

	if (mq.rd == NULL || room == 0)
		return;
	rc = store_mqtt_out_load(mq.rd, s->client_id, s->loaded_upto, room, time_now_ms(), &rows, &n);
	if (rc != STORE_OK) {
		log_error(code_str(CHD_DB_ERROR), "channel=%s client=%s cannot read its waiting "
		          "messages: %s", s->channel, s->client_id, store_errmsg(mq.rd));
		return;
	}
	/* rows of a job not done yet may be visible before they are durable
	 * (store_db.c, group sync): they come with that job (deliver_row) */
	size_t use = 0;
	while (use < n && rows[use].seq <= mq.rows_durable)
		use++;
	s->backlog = n == room && use == n;
	for (size_t i = 0; i < use; i++) {
		struct store_mqtt_msg *r = &rows[i];
		struct mq_msg *m = mq_msg_new((const uint8_t *)r->topic, strlen(r->topic), r->payload,
		                              r->payload_len, r->props, r->props_len, r->qos,
		                              r->retain, r->expiry_ms);
		struct mq_out *o = out_new(m, r->qos, r->retain, 0, r->seq);

		mq_msg_unref(m);
		s->loaded_upto = r->seq;
		if (r->state != STORE_MQTT_QUEUED && r->pid != 0 && r->qos > 0) {
			/* in flight when the client went away: resend with the same
			 * packet id ([MQTT-4.4.0-1]) */
			o->pid = r->pid;
			o->state = r->state;
			o->dup = true;
			if (s->fl_tail != NULL)
				s->fl_tail->next = o;
			else
				s->fl_head = o;
			s->fl_tail = o;
			s->n_flight++;
			if (s->stored > 0)
				s->stored--;
			if (s->conn != NULL) {
				if (o->state == STORE_MQTT_RELSENT)
					send_ack(s->conn, MQTT_PUBREL, o->pid, 0);
				else
					mq_send_publish(s->conn, o);
			}
		} else {
			queue_append(s, o);
		}
	}
	store_mqtt_msgs_free(rows, n);
}

void mq_sess_resume(struct mq_sess *s)
{
	struct mq_out *o;

	/* what was in flight in memory (a takeover without restart): resend */
	for (o = s->fl_head; o != NULL; o = o->next) {
		if (o->held)
			continue;
		o->dup = true;
		if (o->state == STORE_MQTT_RELSENT)
			send_ack(s->conn, MQTT_PUBREL, o->pid, 0);
		else
			mq_send_publish(s->conn, o);
	}
	if (s->persistent && (s->fl_head == NULL && s->q_head == NULL))
		s->backlog = true;
	if (s->persistent && s->backlog)
		sess_load(s);
	mq_sess_pump(s);
}

void mq_sess_acked(struct mq_sess *s, enum mqtt_ptype type, uint16_t pid)
{
	struct mq_out *prev = NULL, *o = flight_find(s, pid, &prev);
	struct mq_op *op;

	if (o == NULL) {
		/* v5 [MQTT-4.3.3]: a PUBREC for an unknown id still gets its
		 * PUBREL so the client can release the id */
		if (type == MQTT_PUBREC)
			send_ack(s->conn, MQTT_PUBREL, pid, s->conn != NULL && s->conn->version == MQTT_V5
			         ? MQTT_RC_PID_NOT_FOUND : 0);
		return;
	}
	if (type == MQTT_PUBREC && o->qos == 2 && o->state == STORE_MQTT_SENT) {
		o->state = STORE_MQTT_RELSENT;
		o->dup = false;
		if (o->seq > 0) {
			struct mq_job *j = mq_job_new(DONE_PUBREC_IN);
			s->refs++;
			j->sess = s;
			j->pid = pid;
			op = mq_job_op(j, OP_OUT_SET, s->client_id);
			op->seq = o->seq;
			op->pid = pid;
			op->state = STORE_MQTT_RELSENT;
			mq_job_submit(j);
		} else {
			send_ack(s->conn, MQTT_PUBREL, pid, 0);
		}
		return;
	}
	if ((type == MQTT_PUBACK && o->qos == 1) || (type == MQTT_PUBCOMP && o->qos == 2) ||
	    (type == MQTT_PUBREC && o->qos == 2)) {
		/* PUBACK, PUBCOMP, or (v5) a PUBREC with an error: done */
		if (prev != NULL)
			prev->next = o->next;
		else
			s->fl_head = o->next;
		if (s->fl_tail == o)
			s->fl_tail = prev;
		s->n_flight--;
		if (o->seq > 0) {
			op = mq_job_op(mq_lazy(), OP_OUT_DEL, s->client_id);
			op->seq = o->seq;
		}
		s->msgs_out++;
		out_free(o);
		mq_sess_pump(s);
	}
}

void mq_send_retained(struct mq_sess *s, const char *filter, size_t flen, uint8_t qos,
                      uint32_t sub_id)
{
	int64_t now = time_now_ms();

	for (size_t i = 0; i < rtab_size; i++)
		for (struct rnode *r = rtab[i]; r != NULL; r = r->next) {
			struct mq_msg *m = r->m;
			if (m->expiry_ms != 0 && m->expiry_ms <= now)
				continue;
			if (!topic_match_n(filter, flen, m->topic, m->tlen))
				continue;
			/* retained messages sent for a new subscription keep their
			 * retain flag ([MQTT-3.3.1-8]) */
			queue_append(s, out_new(m, m->qos < qos ? m->qos : qos, true, sub_id, 0));
		}
	mq_sess_pump(s);
}

void mq_sess_timers(int64_t now_mono, int64_t now_ms)
{
	for (size_t i = 0; i < mq.stab_size; i++) {
		struct mq_sess *s = mq.stab[i], *next;
		for (; s != NULL; s = next) {
			next = s->hnext;
			if (s->conn != NULL)
				continue;
			if (s->will != NULL && now_mono >= s->will_at_mono)
				publish_will(s);
			if (s->expiry_s >= 0 && s->disconnected_ms > 0 &&
			    now_ms - s->disconnected_ms >= s->expiry_s * 1000) {
				log_info(code_str(CHD_MQ_SESSION), "channel=%s client=%s session expired "
				         "after %lld s away; its subscriptions and waiting messages are "
				         "removed", s->channel, s->client_id, (long long)s->expiry_s);
				mq_sess_drop(s, NULL);
			}
		}
	}
}
