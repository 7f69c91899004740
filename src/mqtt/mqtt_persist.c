/* The writer thread of the telemetry service: group commit.
 *
 * QoS 1/2 publications, session changes and outbound packet ids must be
 * durable before the client hears about them (PUBACK/PUBREC after the
 * commit).  One fsync per publication would cap every publisher at the
 * disk's fsync rate, so the loop queues jobs and this thread runs every
 * job that is waiting in ONE transaction: while one commit is on the
 * disk, the next group collects.  Jobs complete in the order they were
 * submitted, which keeps each client's acknowledgements in order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chand/log.h"
#include "mqtt_int.h"

struct mq_job *mq_job_new(enum mq_done done)
{
	struct mq_job *j = calloc(1, sizeof *j);

	if (j == NULL)
		fatalx("out of memory");
	j->done = done;
	return j;
}

struct mq_op *mq_job_op(struct mq_job *j, enum mq_op_kind kind, const char *client_id)
{
	struct mq_op *op;

	if (j->nops == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 4;
		struct mq_op *n = realloc(j->ops, cap * sizeof *n);
		if (n == NULL)
			fatalx("out of memory");
		j->ops = n;
		j->cap = cap;
	}
	op = &j->ops[j->nops++];
	memset(op, 0, sizeof *op);
	op->kind = kind;
	if (client_id != NULL && (op->client_id = strdup(client_id)) == NULL)
		fatalx("out of memory");
	return op;
}

void mq_op_free(struct mq_op *op)
{
	free(op->client_id);
	free(op->text);
	if (op->m != NULL)
		mq_msg_unref(op->m);
	if (op->sess != NULL)
		mq_sess_unref(op->sess);
	mq_early_unref(op->early);
	mq_route_op_free(op);
}

void mq_job_free(struct mq_job *j)
{
	for (size_t i = 0; i < j->nops; i++)
		mq_op_free(&j->ops[i]);
	free(j->ops);
	mqtt_wbuf_free(&j->pkt);
	for (size_t i = 0; i < j->ntg; i++) {
		mq_sess_unref(j->tg[i].sess);
		mq_msg_unref(j->tg[i].m);
	}
	free(j->tg);
	if (j->conn != NULL)
		mq_conn_unref(j->conn);
	if (j->m != NULL)
		mq_msg_unref(j->m);
	if (j->sess != NULL)
		mq_sess_unref(j->sess);
	free(j);
}

struct mq_job *mq_lazy(void)
{
	if (mq.lazy == NULL)
		mq.lazy = mq_job_new(DONE_NONE);
	return mq.lazy;
}

void mq_lazy_flush(void)
{
	if (mq.lazy != NULL) {
		mq_job_submit(mq.lazy);
		mq.lazy = NULL;
	}
}

void mq_job_submit(struct mq_job *j)
{
	pthread_mutex_lock(&mq.pq_mtx);
	if (mq.pq_tail != NULL)
		mq.pq_tail->next = j;
	else
		mq.pq_head = j;
	mq.pq_tail = j;
	pthread_cond_signal(&mq.pq_cond);
	pthread_mutex_unlock(&mq.pq_mtx);
}

static void msg_of(const struct mq_msg *m, struct store_mqtt_msg *sm, int64_t now)
{
	memset(sm, 0, sizeof *sm);
	sm->topic = m->topic;
	sm->payload = m->payload;
	sm->payload_len = m->plen;
	sm->props = m->props;
	sm->props_len = m->prlen;
	sm->qos = m->qos;
	sm->retain = m->retain;
	sm->expiry_ms = m->expiry_ms;
	sm->put_ms = now;
}

static int run_op(struct store *st, struct mq_op *op, int64_t now)
{
	struct store_mqtt_session s;
	struct store_mqtt_sub sub;
	struct store_mqtt_msg sm;
	int rc = STORE_OK;

	switch (op->kind) {
	case OP_SESS_PUT:
		memset(&s, 0, sizeof s);
		s.client_id = op->client_id;
		str_copy(s.channel, op->channel, sizeof s.channel);
		s.protocol = op->protocol;
		s.expiry_s = op->expiry_s;
		s.disconnected_ms = op->when_ms;
		s.next_pid = op->pid;
		s.identity = op->text;
		rc = store_mqtt_session_put(st, &s);
		break;
	case OP_SESS_DEL:
		rc = store_mqtt_session_delete(st, op->client_id);
		break;
	case OP_SESS_TOUCH:
		rc = store_mqtt_session_touch(st, op->client_id, op->when_ms, op->pid);
		break;
	case OP_SUB_PUT:
		sub.filter = op->text;
		sub.qos = op->qos;
		sub.opts = op->opts;
		sub.sub_id = op->sub_id;
		rc = store_mqtt_sub_put(st, op->client_id, &sub);
		break;
	case OP_SUB_DEL:
		rc = store_mqtt_sub_delete(st, op->client_id, op->text);
		break;
	case OP_OUT_ADD:
		msg_of(op->m, &sm, now);
		sm.qos = op->qos;
		sm.retain = op->state != 0;   /* retain flag as it will be sent */
		/* a routed publication sent before its row (mqtt_early.c) is
		 * written as in flight, with its packet id */
		sm.pid = op->pid;
		sm.state = op->pid != 0 ? STORE_MQTT_SENT : STORE_MQTT_QUEUED;
		rc = store_mqtt_out_add(st, op->client_id, &sm);
		op->seq = sm.seq;
		break;
	case OP_OUT_SET:
		rc = store_mqtt_out_set(st, op->client_id, op->seq, op->pid, op->state);
		break;
	case OP_OUT_DEL:
		rc = store_mqtt_out_delete(st, op->client_id, op->seq);
		break;
	case OP_IN2_PUT:
		rc = store_mqtt_in2_put(st, op->client_id, op->pid);
		break;
	case OP_IN2_DEL:
		rc = store_mqtt_in2_delete(st, op->client_id, op->pid);
		break;
	case OP_RET_PUT:
		msg_of(op->m, &sm, now);
		sm.retain = true;
		rc = store_mqtt_retain_put(st, &sm);
		break;
	case OP_RET_DEL:
		rc = store_mqtt_retain_delete(st, op->text);
		break;
	case OP_Q_PUT:
	case OP_Q_CONFIRM:
		rc = mq_route_run_op(st, op);
		break;
	}
	/* Deleting what is already gone is fine (a session dropped while its
	 * acknowledgements were on the way). */
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

static void *writer_main(void *arg)
{
	struct store *st = NULL;
	char err[256];
	bool warned = false;
	int64_t mark = 0;

	(void)arg;
	if (mq.host.store_open(mq.host.arg, &st, err, sizeof err) != STORE_OK) {
		log_error(code_str(CHD_MQ_STORE), "telemetry writer cannot open the database: %s", err);
		st = NULL;
	}
	for (;;) {
		struct mq_job *batch, *j;
		size_t nops = 0;
		int rc = STORE_OK;
		int64_t now = time_now_ms();

		pthread_mutex_lock(&mq.pq_mtx);
		while (mq.pq_head == NULL && !mq.writer_stop)
			pthread_cond_wait(&mq.pq_cond, &mq.pq_mtx);
		batch = mq.pq_head;
		mq.pq_head = mq.pq_tail = NULL;
		bool stop = mq.writer_stop;
		pthread_mutex_unlock(&mq.pq_mtx);
		if (batch == NULL && stop)
			break;

		for (j = batch; j != NULL; j = j->next)
			nops += j->nops;
		if (nops > 0) {
			if (st == NULL) {
				rc = STORE_ERR;
				snprintf(err, sizeof err, "no database handle");
			} else if ((rc = store_begin(st)) == STORE_OK) {
				for (j = batch; j != NULL && rc == STORE_OK; j = j->next)
					for (size_t i = 0; i < j->nops && rc == STORE_OK; i++) {
						rc = run_op(st, &j->ops[i], now);
						/* A route's queue that is full or refuses the
						 * message fails only this job: its routes come
						 * first in it, so nothing else of it was written,
						 * and the group goes on. */
						if (rc != STORE_OK && rc != STORE_ERR && rc != STORE_DISK_FULL &&
						    j->ops[i].kind == OP_Q_PUT) {
							j->rc = rc;
							snprintf(j->err, sizeof j->err, "%s", store_errmsg(st));
							rc = STORE_OK;
							break;
						}
					}
				if (rc == STORE_OK)
					rc = store_commit(st);
				if (rc != STORE_OK) {
					snprintf(err, sizeof err, "%s", store_errmsg(st));
					store_rollback(st);
				}
			} else {
				snprintf(err, sizeof err, "%s", store_errmsg(st));
			}
			if (rc != STORE_OK) {
				/* The whole group failed: nothing of it is durable, so
				 * no client is told otherwise (each job reports it). */
				if (!warned || rc == STORE_DISK_FULL)
					log_error(code_str(CHD_MQ_STORE), "telemetry commit of %zu operations "
					          "failed: %s", nops, err);
				warned = true;
				for (j = batch; j != NULL; j = j->next) {
					j->rc = rc;
					str_copy(j->err, err, sizeof j->err);
				}
			} else {
				warned = false;
			}
		}
		/* session rows up to the highest seq this thread (their only
		 * writer) committed are durable: sess_load reads no further */
		if (rc == STORE_OK)
			for (j = batch; j != NULL; j = j->next)
				for (size_t i = 0; i < j->nops; i++)
					if (j->ops[i].kind == OP_OUT_ADD && j->ops[i].seq > mark)
						mark = j->ops[i].seq;
		for (j = batch; j != NULL; j = j->next)
			j->seq_mark = mark;
		pthread_mutex_lock(&mq.pq_mtx);
		for (j = batch; j != NULL; j = j->next)
			if (j->next == NULL)
				break;
		if (batch != NULL) {
			if (mq.done_tail != NULL)
				mq.done_tail->next = batch;
			else
				mq.done_head = batch;
			mq.done_tail = j;
		}
		pthread_mutex_unlock(&mq.pq_mtx);
		mq_wake();
	}
	if (st != NULL)
		store_close(st);
	return NULL;
}

int mq_writer_start(void)
{
	int r = pthread_create(&mq.writer_thr, NULL, writer_main, NULL);

	if (r != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "cannot start the telemetry writer thread: %s",
		          strerror(r));
		return -1;
	}
	return 0;
}

/* After the loop has stopped submitting: what is queued is committed
 * first (the writer drains its queue before it sees the flag). */
void mq_writer_stop(void)
{
	pthread_mutex_lock(&mq.pq_mtx);
	mq.writer_stop = true;
	pthread_cond_signal(&mq.pq_cond);
	pthread_mutex_unlock(&mq.pq_mtx);
	pthread_join(mq.writer_thr, NULL);
}

void mq_run_done(void)
{
	struct mq_job *list, *j;

	pthread_mutex_lock(&mq.pq_mtx);
	list = mq.done_head;
	mq.done_head = mq.done_tail = NULL;
	pthread_mutex_unlock(&mq.pq_mtx);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		if (j->seq_mark > mq.rows_durable)
			mq.rows_durable = j->seq_mark;
		mq_deliver_committed(j);
		mq_job_free(j);
	}
}
