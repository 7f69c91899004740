/* Routed QoS 1 publications sent to persistent sessions before their rows.
 *
 * A publication routed here by another queue manager waits in
 * MQTT_ROUTE_QUEUE.  The loop takes a batch (mqtt_route.c) and gives every
 * persistent subscriber a row (OUT_ADD), written in one transaction with
 * the batch's removal from the queue (Q_CONFIRM).  Done that way, each QoS
 * 1 publication to a persistent subscriber costs an insert with its
 * payload, an update when it is sent and a delete when it is acknowledged
 * -- the busiest work of the agent in the two-site benchmark, where the
 * subscriber acknowledges within a millisecond.
 *
 * So when the session can take the publication at once (online, nothing
 * of it in the store that is not also in memory, none of its rows waiting
 * for a commit), the entry goes on its memory queue now, with no row, and
 * the batch's job is held until every such entry is acknowledged -- at
 * most MQ_EARLY_HOLD_MS.  The job then goes to the writer without the rows
 * of what was acknowledged; what was not gets its row as before (with the
 * packet id it was sent with, so a restart resends it with DUP).
 *
 * Nothing can be lost: until the job commits, the publications are still
 * in MQTT_ROUTE_QUEUE, and after a crash they are routed again.  A QoS 1
 * publication may then reach the subscriber twice, which QoS 1 allows;
 * QoS 2 never takes this path, nor does a publication that a route of
 * this agent also puts on a queue (mq_publish: that put could fail and the
 * batch come again).  Held jobs go to the writer in the order
 * they were taken, so routed publications commit in order.  While early
 * entries of a session wait for their job, rows committed for it meanwhile
 * join its memory queue (mqtt_broker.c, deliver_row), so the store never
 * holds a row of it that memory lacks and a later read cannot bring an
 * early entry in twice.
 *
 * Loop thread only, except the ops the writer runs after submission. */
#include <limits.h>
#include <stdlib.h>

#include "chand/log.h"
#include "mqtt_int.h"

void mq_early_unref(struct mq_early *e)
{
	if (e != NULL && --e->refs == 0)
		free(e);
}

bool mq_early_ok(const struct mq_sess *s, const struct mq_op *op, const struct mq_job *job)
{
	const struct mq_conn *c = s->conn;

	return job != NULL && job->done == DONE_INQ && op->qos == 1 && s->persistent && !s->gone &&
	       c != NULL && !c->dead && c->state == MC_ACTIVE && !s->backlog &&
	       s->rows_pending == 0 && s->n_queued < MQ_MEMQ_MAX;
}

void mq_early_attach(struct mq_out *o, struct mq_op *op, struct mq_job *job)
{
	struct mq_early *e = calloc(1, sizeof *e);

	if (e == NULL)
		fatalx("out of memory");
	e->o = o;
	e->job = job;
	e->refs = 2;
	o->early = e;
	op->early = e;
	op->sess->early_rows++;
	job->early_open++;
}

void mq_early_settle(struct mq_out *o)
{
	struct mq_early *e = o->early;

	if (e == NULL)
		return;
	o->early = NULL;
	e->o = NULL;
	e->settled = true;
	if (e->job != NULL && e->job->early_open > 0)
		e->job->early_open--;
	mq_early_unref(e);
}

/* The job leaves the hold: the rows of settled entries are not written;
 * an entry in flight is written with its packet id. */
static void trim(struct mq_job *j)
{
	size_t k = 0;

	for (size_t i = 0; i < j->nops; i++) {
		struct mq_op *op = &j->ops[i];
		struct mq_early *e = op->early;

		if (e != NULL) {
			e->job = NULL;
			if (e->settled) {
				if (op->sess->early_rows > 0)
					op->sess->early_rows--;
				mq_op_free(op);
				continue;
			}
			if (e->o != NULL && e->o->state != STORE_MQTT_QUEUED)
				op->pid = e->o->pid;
		}
		if (k != i)
			j->ops[k] = *op;
		k++;
	}
	j->nops = k;
}

void mq_early_hold(struct mq_job *job)
{
	job->next = NULL;
	job->hold_until = time_mono_ms() + MQ_EARLY_HOLD_MS;
	if (mq.held_tail != NULL)
		mq.held_tail->next = job;
	else
		mq.held_head = job;
	mq.held_tail = job;
	mq_early_release(false);
}

void mq_early_release(bool force)
{
	int64_t now = time_mono_ms();
	struct mq_job *j;

	while ((j = mq.held_head) != NULL &&
	       (force || j->early_open == 0 || now >= j->hold_until)) {
		mq.held_head = j->next;
		if (mq.held_head == NULL)
			mq.held_tail = NULL;
		j->next = NULL;
		trim(j);
		mq_job_submit(j);
	}
}

int mq_early_timeout(void)
{
	int64_t d;

	if (mq.held_head == NULL)
		return -1;
	d = mq.held_head->hold_until - time_mono_ms();
	return d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
}

void mq_early_done(struct mq_op *op, int rc)
{
	struct mq_early *e = op->early;
	struct mq_sess *s = op->sess;
	struct mq_out *o = e->o;

	if (s->early_rows > 0)
		s->early_rows--;
	if (rc != 0 || s->gone) {
		/* no row (the batch goes back to MQTT_ROUTE_QUEUE and comes
		 * again), or the session's rows went with it */
		if (o != NULL) {
			o->early = NULL;
			e->o = NULL;
			mq_early_unref(e);
		}
		return;
	}
	if (op->seq > s->loaded_upto)
		s->loaded_upto = op->seq;
	if (o == NULL) {
		/* acknowledged after the job left the hold: its row goes */
		struct mq_op *del = mq_job_op(mq_lazy(), OP_OUT_DEL, s->client_id);
		del->seq = op->seq;
		return;
	}
	o->seq = op->seq;
	o->early = NULL;
	e->o = NULL;
	mq_early_unref(e);
	if (o->state == STORE_MQTT_QUEUED)
		s->stored++;   /* a row waiting in memory, as deliver_row counts it */
}
