/* Admin commands for messages: put and get (doc/ADMIN-PROTOCOL.md).
 *
 * Bodies travel as the raw attachment of a frame, never inside the JSON:
 * a put request's "blobs" lists its messages' lengths in order, a message
 * record's single blob is its body.  The bodies of a put are used where
 * they arrived (the attachment buffer), not copied.
 *
 * Durability and speed come from the same choice: a put request carries
 * a batch of messages that goes into the store in one store_put call (one
 * transaction, one fsync), and its reply is only sent once that call has
 * returned.  A destructive get hands out at most GET_STEP messages at a
 * time, locked to this connection; they are deleted (durably) only after
 * the client says it has written them out, and a client that vanishes
 * before that gives them back to the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "chand/log.h"

#define GET_STEP 256
/* Group commit of pipelined puts: at most this many requests, messages
 * or body bytes in one transaction. */
#define PUT_GROUP_MAX 8
#define PUT_GROUP_MSGS 2048
#define PUT_GROUP_BYTES (8 * 1024 * 1024)
/* Messages in one put request: "blobs" of zeros are cheap to send, the
 * descriptors they make are not. chanctl sends at most 256. */
#define PUT_REQ_MSGS_MAX 10000
/* Granularity of a waiting get's checks for shutdown and a vanished client. */
#define GET_WAIT_SLICE_MS 500

static int cmd_put(struct admin_conn *c, json_t *req);
static int cmd_get(struct admin_conn *c, json_t *req);

const struct admin_cmd admin_msg_cmds[] = {
	{ "get", cmd_get },
	{ NULL, NULL },
};

/* Requests that carry bodies in their attachment. */
static const struct admin_cmd msg_blob_cmds[] = {
	{ "put", cmd_put },
	{ NULL, NULL },
};

void admin_register_builtin(void)
{
	admin_register(admin_queue_cmds);
	admin_register(admin_msg_cmds);
	admin_register_blob(msg_blob_cmds);
}

/* A store error in reply. A queue of the wrong type is, for a put, a
 * direct put to a transmission queue (it has no transmission header)
 * and, for a get, a remote queue definition (it holds no messages). */
static int msg_store_error(struct admin_conn *c, int rc, const char *queue, json_t *fields,
                           bool put)
{
	if (rc != STORE_WRONG_TYPE)
		return admin_store_error_fields(c, rc, queue, fields);
	return admin_reply_err_fields(c, put ? CHD_Q_BAD_XMITQ : CHD_Q_UNKNOWN, fields, "%s",
	                              store_errmsg(admin_store(c)));
}

static enum chd_code_id msg_code(struct admin_conn *c, int rc, bool put)
{
	if (rc == STORE_WRONG_TYPE)
		return put ? CHD_Q_BAD_XMITQ : CHD_Q_UNKNOWN;
	return admin_code_of_store(rc);
}

/* ---- put ---- */

/* The descriptor fields shared by every message of a put request.
 * 0, or -1 with a reason in err and the code to reply with (a malformed
 * field is ADM_BAD_REQUEST, a bad name Q_BAD_NAME). */
static int put_template(const json_t *req, struct chd_msg *t, enum chd_code_id *code, char *err,
                        size_t errlen)
{
	const json_t *v;
	char why[160];

	memset(t, 0, sizeof(*t));
	t->persistent = true;
	*code = CHD_ADM_BAD_REQUEST;
	if ((v = json_object_get(req, "priority")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > MSG_PRIORITY_MAX) {
			snprintf(err, errlen, "\"priority\" must be an integer from 0 to %d", MSG_PRIORITY_MAX);
			return -1;
		}
		t->priority = (int)json_integer_value(v);
	}
	if ((v = json_object_get(req, "persistent")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(err, errlen, "\"persistent\" must be true or false");
			return -1;
		}
		t->persistent = json_is_true(v);
	}
	if ((v = json_object_get(req, "expiry_ms")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
		    json_integer_value(v) > 100LL * 365 * 86400 * 1000) {
			snprintf(err, errlen, "\"expiry_ms\" must be a positive integer (at most 100 years)");
			return -1;
		}
		t->expiry_ms = time_now_ms() + json_integer_value(v);
	}
	if ((v = json_object_get(req, "correlid")) != NULL) {
		if (!json_is_string(v) || hex_decode(json_string_value(v), t->correlid, MSG_ID_LEN) < 0) {
			snprintf(err, errlen, "\"correlid\" must be at most %d bytes in hex", MSG_ID_LEN);
			return -1;
		}
	}
	if ((v = json_object_get(req, "format")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) > MSG_FORMAT_MAX) {
			snprintf(err, errlen, "\"format\" must be a string of at most %d characters",
			         MSG_FORMAT_MAX);
			return -1;
		}
		str_copy(t->format, json_string_value(v), sizeof(t->format));
	}
	static const char *const names[] = { "reply_q", "reply_qm" };
	for (int i = 0; i < 2; i++) {
		if ((v = json_object_get(req, names[i])) == NULL || json_is_null(v))
			continue;
		if (!json_is_string(v)) {
			snprintf(err, errlen, "\"%s\" must be a string", names[i]);
			return -1;
		}
		if (json_string_length(v) == 0)
			continue;
		if (!name_valid(json_string_value(v), why, sizeof(why))) {
			*code = CHD_Q_BAD_NAME;
			snprintf(err, errlen, "%s: %s", names[i], why);
			return -1;
		}
		str_copy(i == 0 ? t->reply_q : t->reply_qm, json_string_value(v), CHAND_NAME_MAX + 1);
	}
	return 0;
}

/* One put request of a group: its messages are msgs[off, off + n); their
 * bodies point into its attachment, freed with the group if own. */
struct put_req {
	json_t *req;
	uint8_t *own;
	size_t off, n;
};

struct put_group {
	struct put_req reqs[PUT_GROUP_MAX];
	size_t nreqs;
	struct chd_msg *msgs;
	size_t n, cap, bytes;
};

/* The messages' bodies are not theirs to free: only the attachments. */
static void group_free(struct put_group *g)
{
	free(g->msgs);
	for (size_t i = 0; i < g->nreqs; i++) {
		json_decref(g->reqs[i].req);
		free(g->reqs[i].own);
	}
}

/* Adds req's messages to the group, their bodies the consecutive parts
 * of att named by "blobs" (already checked to cover att exactly). own is
 * att if the group is to free it, else NULL. 0 (own is the group's now),
 * -1 (connection to close, after a reply), 1 (an error reply was sent).
 * With quiet, nothing is sent: the caller hands the request back to be
 * processed on its own. */
static int group_add(struct admin_conn *c, struct put_group *g, json_t *req,
                     const uint8_t *att, uint8_t *own, bool quiet)
{
	const json_t *blobs = json_object_get(req, "blobs");
	struct chd_msg tmpl;
	enum chd_code_id code;
	char err[256];
	size_t n, off = 0;

	if (!json_is_array(blobs) || json_array_size(blobs) == 0 ||
	    json_array_size(blobs) > PUT_REQ_MSGS_MAX) {
		if (quiet)
			return 1;
		return admin_bad_request(c, "\"blobs\" must list the lengths of the message bodies "
		                         "(1 to %d messages)", PUT_REQ_MSGS_MAX);
	}
	if (put_template(req, &tmpl, &code, err, sizeof(err)) != 0) {
		if (quiet)
			return 1;
		if (code == CHD_ADM_BAD_REQUEST)
			return admin_bad_request(c, "%s", err);
		admin_reply_err(c, code, "%s", err);
		return 1;
	}
	n = json_array_size(blobs);
	if (g->cap - g->n < n) {
		size_t cap = g->cap ? g->cap : 256;
		while (cap - g->n < n)
			cap *= 2;
		struct chd_msg *v = realloc(g->msgs, cap * sizeof(*v));
		if (v == NULL) {
			if (quiet)
				return 1;
			admin_reply_err(c, CHD_DB_ERROR, "out of memory for %zu messages", n);
			return 1;
		}
		g->msgs = v;
		g->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct chd_msg *m = &g->msgs[g->n + i];
		size_t len = (size_t)json_integer_value(json_array_get(blobs, i));
		*m = tmpl;
		m->body = len > 0 ? (uint8_t *)att + off : NULL;
		m->body_len = len;
		off += len;
	}
	g->bytes += off;
	g->reqs[g->nreqs++] = (struct put_req){ json_incref(req), own, g->n, n };
	g->n += n;
	return 0;
}

static bool same_str(const json_t *a, const json_t *b)
{
	const char *x = json_string_value(a), *y = json_string_value(b);

	if (x == NULL || x[0] == '\0')
		return y == NULL || y[0] == '\0';
	return y != NULL && strcmp(x, y) == 0;
}

/* Pipelined put requests that have already arrived for the same
 * destination join the first one: one store_put, one transaction, one
 * fsync for all (group commit). Each still gets its own reply, sent only
 * after the commit. */
static void group_gather(struct admin_conn *c, struct put_group *g, json_t *first)
{
	while (g->nreqs < PUT_GROUP_MAX && g->n < PUT_GROUP_MSGS && g->bytes < PUT_GROUP_BYTES) {
		json_t *next;
		uint8_t *att;
		size_t att_len;
		const char *cmd;
		enum chd_code_id code;
		char err[256];

		if (admin_try_recv(c, &next, &att, &att_len) != ADMIN_IO_OK)
			return;
		if (admin_request_check(next, &cmd, &code, err, sizeof(err)) != 0 ||
		    strcmp(cmd, "put") != 0 || !json_is_true(json_object_get(next, "stream")) ||
		    !json_is_string(json_object_get(next, "queue")) ||
		    !same_str(json_object_get(first, "queue"), json_object_get(next, "queue")) ||
		    !same_str(json_object_get(first, "qmgr"), json_object_get(next, "qmgr")) ||
		    (json_object_get(next, "qmgr") != NULL &&
		     !json_is_string(json_object_get(next, "qmgr"))) ||
		    group_add(c, g, next, att, att, true) != 0) {
			admin_unrecv(c, next, att, att_len);
			return;
		}
		json_decref(next);
	}
}

static json_t *ids_json(const struct put_group *g, size_t from, size_t to)
{
	json_t *ids = json_array();

	for (size_t i = from; i < to; i++) {
		char hex[2 * MSG_ID_LEN + 1];
		hex_encode(g->msgs[i].msgid, MSG_ID_LEN, hex);
		json_array_append_new(ids, json_string(hex));
	}
	return ids;
}

static int cmd_put(struct admin_conn *c, json_t *req)
{
	struct put_group g = { .nreqs = 0 };
	const char *queue, *qmgr;
	size_t done = 0, att_len;
	const uint8_t *att = admin_req_blob(c, &att_len);
	int rc;

	if (admin_get_str(c, req, "queue", true, &queue) != 0 ||
	    admin_get_str(c, req, "qmgr", false, &qmgr) != 0)
		return -1;
	/* This request's attachment stays the dispatcher's (borrowed until
	 * we return); gathered ones become the group's. */
	if ((rc = group_add(c, &g, req, att, NULL, false)) != 0) {
		group_free(&g);
		return rc < 0 ? -1 : 0;
	}
	if (json_is_true(json_object_get(req, "stream")))
		group_gather(c, &g, req);
	if (qmgr != NULL && qmgr[0] == '\0')
		qmgr = NULL;

	rc = store_put(admin_store(c), queue, qmgr, g.msgs, g.n, &done);
	for (size_t i = 0; i < g.nreqs; i++) {
		struct put_req *r = &g.reqs[i];
		int wrc;
		if (done >= r->off + r->n) {
			wrc = admin_reply_ok(c, json_pack("{s:I,s:o}", "put", (json_int_t)r->n, "msgids",
			                                  ids_json(&g, r->off, r->off + r->n)));
		} else if (done >= r->off) {
			/* The request holding the failed message: its count and the
			 * reason; the rest of the stream is skipped. */
			wrc = msg_store_error(c, rc, queue,
			                      json_pack("{s:I,s:o}", "put", (json_int_t)(done - r->off),
			                                "msgids", ids_json(&g, r->off, done)), true);
			admin_stream_fail(c, msg_code(c, rc, true));
		} else {
			wrc = admin_reply_err_fields(c, msg_code(c, rc, true),
			                             json_pack("{s:b}", "skipped", 1),
			                             "skipped: an earlier request of this stream failed");
		}
		if (wrc != 0) {
			group_free(&g);
			return -1;
		}
	}
	group_free(&g);
	return 0;
}

/* ---- get ---- */

/* The record of a message (its body goes as the frame's attachment).
 * Built with the _nocheck setters where the text is known ASCII: keys
 * are literals, ids hex, times ISO digits, names restricted to ASCII. */
static json_t *msg_json(const struct chd_msg *m)
{
	char hex[2 * MSG_ID_LEN + 1], ts[40];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	hex_encode(m->msgid, MSG_ID_LEN, hex);
	json_object_set_new_nocheck(o, "msgid", json_string_nocheck(hex));
	if (!msg_id_is_zero(m->correlid)) {
		hex_encode(m->correlid, MSG_ID_LEN, hex);
		json_object_set_new_nocheck(o, "correlid", json_string_nocheck(hex));
	}
	json_object_set_new_nocheck(o, "priority", json_integer(m->priority));
	json_object_set_new_nocheck(o, "persistent", json_boolean(m->persistent));
	time_format_ms(m->put_time_ms, ts, sizeof(ts));
	json_object_set_new_nocheck(o, "put_time", json_string_nocheck(ts));
	if (m->expiry_ms > 0) {
		time_format_ms(m->expiry_ms, ts, sizeof(ts));
		json_object_set_new_nocheck(o, "expiry", json_string_nocheck(ts));
	}
	/* format and props are free text: checked. */
	if (m->format[0])
		json_object_set_new_nocheck(o, "format", json_string(m->format));
	if (m->reply_q[0])
		json_object_set_new_nocheck(o, "reply_q", json_string_nocheck(m->reply_q));
	if (m->reply_qm[0])
		json_object_set_new_nocheck(o, "reply_qm", json_string_nocheck(m->reply_qm));
	if (m->xmit_qm[0] || m->xmit_q[0]) {
		json_object_set_new_nocheck(o, "xmit_qm", json_string_nocheck(m->xmit_qm));
		json_object_set_new_nocheck(o, "xmit_q", json_string_nocheck(m->xmit_q));
	}
	if (m->props != NULL)
		json_object_set_new_nocheck(o, "props", json_string(m->props));
	return o;
}

enum wait_rc { WAIT_AGAIN, WAIT_TIMEOUT, WAIT_STOP, WAIT_GONE };

/* Waits for a put (anywhere) until deadline, in slices so that shutdown
 * and a client that went away are noticed. */
static enum wait_rc wait_put(struct admin_conn *c, uint64_t *gen, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - time_mono_ms();
		uint64_t before = *gen;

		if (left <= 0)
			return WAIT_TIMEOUT;
		store_wait(gen, (int)(left < GET_WAIT_SLICE_MS ? left : GET_WAIT_SLICE_MS));
		if (agent_stopping(admin_agent(c)))
			return WAIT_STOP;
		if (admin_client_gone(c))
			return WAIT_GONE;
		if (*gen != before)
			return WAIT_AGAIN;
	}
}

static int get_browse(struct admin_conn *c, const char *queue, long long max, int64_t wait_ms)
{
	struct msg_list l = { 0 };
	int64_t deadline = time_mono_ms() + wait_ms;
	size_t count = 0;
	int rc;

	for (;;) {
		uint64_t gen = store_change_gen();
		rc = store_browse(admin_store(c), queue, max > 0 ? (size_t)max : SIZE_MAX, &l);
		if (rc == STORE_OK)
			break;
		if (rc != STORE_NO_MSG)
			return msg_store_error(c, rc, queue, NULL, false);
		enum wait_rc w = wait_put(c, &gen, deadline);
		if (w == WAIT_GONE)
			return -1;
		if (w == WAIT_STOP)
			return admin_reply_err(c, CHD_AGENT_STOP, "the agent is stopping");
		if (w == WAIT_TIMEOUT) {
			if (max == 0)
				return admin_reply_ok(c, json_pack("{s:i}", "count", 0));
			return admin_reply_err(c, CHD_Q_NO_MSG, "no message available on queue '%s'", queue);
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		if (admin_send_record_blob(c, msg_json(&l.v[i]), l.v[i].body, l.v[i].body_len) != 0) {
			msg_list_free(&l);
			return -1;
		}
		count++;
	}
	msg_list_free(&l);
	return admin_reply_ok(c, json_pack("{s:I}", "count", (json_int_t)count));
}

/* Sends a step's messages and asks the client to acknowledge them once
 * written out; confirmed is how many earlier messages are deleted. */
static int send_step(struct admin_conn *c, const struct msg_list *l, size_t confirmed)
{
	for (size_t i = 0; i < l->n; i++)
		if (admin_send_record_blob(c, msg_json(&l->v[i]), l->v[i].body, l->v[i].body_len) != 0)
			return -1;
	if (admin_send(c, json_pack("{s:I,s:I}", "confirm", (json_int_t)l->n, "confirmed",
	                            (json_int_t)confirmed)) != 0)
		return -1;
	return admin_flush(c);
}

/* Waits for the acknowledgement of a sent step and deletes its messages.
 * Returns 0, -1 (client gone or broke the protocol: the messages stay) or
 * 1 (the store failed; error replied, the messages stay). */
static int finish_step(struct admin_conn *c, const char *queue, struct msg_list *l,
                       size_t confirmed)
{
	json_t *ack = NULL;
	int rc;

	/* No timeout: the client writes the messages out first, and a paused
	 * pager is a legitimate slow reader. */
	rc = admin_recv(c, &ack, -1);
	if (rc != ADMIN_IO_OK) {
		log_debug("get queue=%s: client left before acknowledging %zu messages; they stay",
		          queue, l->n);
		return -1;
	}
	const json_t *n = json_object_get(ack, "ack");
	if (!json_is_integer(n) || json_integer_value(n) != (json_int_t)l->n) {
		json_decref(ack);
		admin_bad_request(c, "expected {\"ack\":%zu}", l->n);
		return -1;
	}
	json_decref(ack);
	rc = store_confirm(admin_store(c), l);
	if (rc != STORE_OK) {
		msg_store_error(c, rc, queue, json_pack("{s:I}", "count", (json_int_t)confirmed), false);
		return 1;
	}
	return 0;
}

static int reply_stop(struct admin_conn *c, size_t total)
{
	return admin_reply_err_fields(c, CHD_AGENT_STOP, json_pack("{s:I}", "count", (json_int_t)total),
	                              "the agent is stopping");
}

/* Destructive get, pipelined one step deep: step k+1 is locked and sent
 * before the acknowledgement of step k is awaited, so the client writes
 * one step while the agent deletes the previous one (an fsync). */
static int get_destructive(struct admin_conn *c, const char *queue, long long max,
                           int64_t wait_ms)
{
	struct msg_list prev = { 0 }, cur = { 0 };
	bool all = max == 0, have_prev = false;
	size_t total = 0, handed = 0;
	int64_t deadline = time_mono_ms() + wait_ms;
	int rc;

	for (;;) {
		size_t want = GET_STEP;
		uint64_t gen;

		if (!all && handed >= (size_t)max)
			break;
		if (!all && (size_t)max - handed < want)
			want = (size_t)max - handed;
		gen = store_change_gen();
		rc = store_lock(admin_store(c), queue, want, admin_conn_id(c), &cur);
		if (rc == STORE_NO_MSG) {
			msg_list_free(&cur);
			if (have_prev) {
				/* Settle what is out before waiting for more. */
				if ((rc = finish_step(c, queue, &prev, total)) != 0)
					goto fail;
				total += prev.n;
				msg_list_free(&prev);
				have_prev = false;
				deadline = time_mono_ms() + wait_ms;
				continue;
			}
			enum wait_rc w = wait_put(c, &gen, deadline);
			if (w == WAIT_AGAIN)
				continue;
			if (w == WAIT_GONE)
				return -1;
			if (w == WAIT_STOP)
				return reply_stop(c, total);
			break;
		}
		if (rc != STORE_OK) {
			msg_list_free(&cur);
			if (have_prev) {
				if ((rc = finish_step(c, queue, &prev, total)) != 0)
					goto fail;
				total += prev.n;
				msg_list_free(&prev);
			}
			return msg_store_error(c, rc, queue, json_pack("{s:I}", "count", (json_int_t)total),
			                       false);
		}
		if (send_step(c, &cur, total) != 0) {
			rc = -1;
			goto fail;
		}
		handed += cur.n;
		if (have_prev) {
			if ((rc = finish_step(c, queue, &prev, total)) != 0)
				goto fail;
			total += prev.n;
			msg_list_free(&prev);
		}
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		have_prev = true;
		/* --wait applies to each message: the clock restarts. */
		deadline = time_mono_ms() + wait_ms;
		if (agent_stopping(admin_agent(c)))
			break;
	}
	if (have_prev) {
		if ((rc = finish_step(c, queue, &prev, total)) != 0)
			goto fail;
		total += prev.n;
		msg_list_free(&prev);
	}
	if (agent_stopping(admin_agent(c)) && (all || total < (size_t)max))
		return reply_stop(c, total);
	if (total == 0 && !all)
		return admin_reply_err_fields(c, CHD_Q_NO_MSG, json_pack("{s:i}", "count", 0),
		                              "no message available on queue '%s'", queue);
	return admin_reply_ok(c, json_pack("{s:I}", "count", (json_int_t)total));
fail:
	/* Unconfirmed messages go back to the queue. */
	if (have_prev)
		store_release(&prev);
	if (cur.n > 0)
		store_release(&cur);
	msg_list_free(&prev);
	msg_list_free(&cur);
	/* Close the connection either way: the client may already have sent
	 * an acknowledgement that no longer has a step to settle. */
	return -1;
}

static int cmd_get(struct admin_conn *c, json_t *req)
{
	const char *queue;
	long long max = 1, wait_ms = 0;
	bool browse = false;
	struct queue_def q;
	int rc;

	if (admin_get_str(c, req, "queue", true, &queue) != 0 ||
	    admin_get_int(c, req, "max", false, &max, NULL) != 0 ||
	    admin_get_int(c, req, "wait_ms", false, &wait_ms, NULL) != 0 ||
	    admin_get_bool(c, req, "browse", false, &browse, NULL) != 0)
		return -1;
	if (max < 0 || wait_ms < 0 || wait_ms > 7LL * 86400 * 1000)
		return admin_bad_request(c, "max and wait_ms must be >= 0 (wait at most 7 days)");

	rc = store_queue_get(admin_store(c), queue, &q);
	if (rc != STORE_OK)
		return msg_store_error(c, rc, queue, NULL, false);
	if (q.type != QTYPE_LOCAL)
		return admin_reply_err(c, CHD_Q_UNKNOWN, "'%s' is a remote queue definition: "
		                       "get from a local queue", queue);
	if (browse)
		return get_browse(c, queue, max, wait_ms);
	return get_destructive(c, queue, max, wait_ms);
}
