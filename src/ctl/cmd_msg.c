/* chanctl put and get.
 *
 * put from stdin batches lines into one request (up to PUT_BATCH messages
 * or PUT_BATCH_BYTES) which the agent commits in one transaction.  A
 * batch is sent early whenever stdin has nothing more ready, so a person
 * typing sees each line put at once while a pipe gets full batches.
 * The bodies go raw in the request's attachment, their lengths in
 * "blobs" (doc/ADMIN-PROTOCOL.md): nothing is base64-encoded on the wire.
 *
 * put --topic publishes to the agent's MQTT subscribers instead (request
 * "publish", doc/ADMIN-PROTOCOL.md), the same way: batches, pipelining and
 * the bodies as attachments.
 *
 * get acknowledges each step only after the messages are written out
 * (stdout flushed): the agent deletes them then, and not before. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/config.h"
#include "chand/message.h"
#include "chand/util.h"

#define PUT_BATCH 256
#define PUT_BATCH_BYTES (1024 * 1024)
/* No message can be longer than the largest max_msg_length. */
#define PUT_LINE_MAX CFG_MSG_LENGTH_MAX

/* A message from a dead-letter queue carries why it is there (the
 * chand.dlh.* properties, doc/CHANNELS.md): plain `get` says so on stderr
 * before its body, so stdout stays the bodies scripts read. */
static void dead_letter_header(const json_t *rec)
{
	const char *props = json_string_value(json_object_get(rec, "props"));
	const char *keys[] = { "chand.dlh.reason=", "chand.dlh.reason_text=", "chand.dlh.dest_q=",
		"chand.dlh.dest_qmgr=", "chand.dlh.time=" };
	char vals[5][300];

	if (props == NULL || strstr(props, "chand.dlh.reason=") == NULL)
		return;
	for (int k = 0; k < 5; k++) {
		const char *p = strstr(props, keys[k]);
		size_t n = 0;
		vals[k][0] = '\0';
		if (p == NULL)
			continue;
		p += strlen(keys[k]);
		while (p[n] != '\0' && p[n] != '\n' && n < sizeof vals[k] - 1)
			n++;
		memcpy(vals[k], p, n);
		vals[k][n] = '\0';
	}
	fflush(stdout);
	fprintf(stderr, "dead letter: %s %s; for %s at %s; at %s\n", vals[0], vals[1],
	        vals[2][0] ? vals[2] : "?", vals[3][0] ? vals[3] : "?", vals[4][0] ? vals[4] : "?");
}

static int do_put(struct ctl *c, const struct ctl_args *a);
static int do_get(struct ctl *c, const struct ctl_args *a);

static const struct ctl_opt put_opts[] = {
	{ "--qmgr", NULL, "QM" }, { "--nonpersistent", NULL, NULL }, { "--priority", NULL, "N" },
	{ "--expiry", NULL, "S" }, { "--correlid", NULL, "ID" }, { "-m", "--message", "TEXT" },
	{ "--file", NULL, "F" }, { "--topic", NULL, "TOPIC" }, { "--qos", NULL, "0|1|2" },
	{ "--retain", NULL, NULL }, { NULL, NULL, NULL },
};
static const struct ctl_opt get_opts[] = {
	{ "--wait", NULL, "S" }, { "--count", NULL, "N" }, { "--all", NULL, NULL },
	{ "--browse", NULL, NULL }, { NULL, NULL, NULL },
};

static const struct ctl_cmd msg_cmds[] = {
	{ "put", "QUEUE [--qmgr QM] [--nonpersistent] [--priority N] [--expiry S] [--correlid ID] "
	  "[-m TEXT | --file F]   (no -m/--file: one message per line of stdin)\n"
	  "--topic TOPIC [--qos 0|1|2] [--retain] [-m TEXT | --file F]   (publishes to MQTT "
	  "subscribers)", put_opts, 0, 1, do_put, 0 },
	{ "get", "QUEUE [--wait S] [--count N | --all] [--browse]", get_opts, 1, 1, do_get, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_msg_family = { "message", msg_cmds };

/* ---- put ---- */

/* Batches sent whose reply has not arrived yet, at most PUT_PIPELINE. */
#define PUT_PIPELINE 4

struct put_state {
	struct ctl *c;
	json_t *tmpl;          /* request fields shared by every batch */
	json_t *blobs;         /* the batch being built: body lengths... */
	uint8_t *att;          /* ...and the bodies, back to back */
	size_t bytes, cap;
	unsigned long long total;   /* acknowledged by the agent */
	size_t inflight[PUT_PIPELINE];  /* sizes of the batches awaiting replies */
	size_t ninflight;
	bool single;           /* -m or --file: one message, no counts in errors */
	const char *done;      /* "put", or "published" (--topic) */
};

static size_t inflight_msgs(const struct put_state *ps)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->ninflight; i++)
		n += ps->inflight[i];
	return n;
}

static void put_lost(struct put_state *ps, const char *why)
{
	if (ps->single)
		ctl_fail(CHD_ADM_NO_AGENT, "connection to the agent lost (%s): the message may or "
		         "may not have been %s", why, ps->done);
	ctl_fail(CHD_ADM_NO_AGENT, "%s %llu message%s; connection to the agent lost (%s): the "
	         "next %zu may or may not have been %s", ps->done, ps->total,
	         ps->total == 1 ? "" : "s", why, inflight_msgs(ps), ps->done);
}

/* Reads the reply to the oldest batch in flight. Exits on failure. */
static void put_reply(struct put_state *ps)
{
	json_t *f;
	char err[256];

	if (ctl_recv(ps->c, &f, err, sizeof(err)) != 0)
		put_lost(ps, err);
	size_t n = ps->inflight[0];
	json_t *ok = json_object_get(f, "ok");
	/* How many of a refused batch went through: "put", or for a publish
	 * "published" (either key is read). */
	const json_t *dv = json_object_get(f, "published");
	json_int_t done = json_integer_value(json_is_integer(dv) ? dv : json_object_get(f, "put"));
	if (!json_is_boolean(ok))
		ctl_fail(CHD_ADM_BAD_REQUEST, "unexpected reply from the agent");
	if (ps->c->json) {
		size_t i;
		json_t *id;
		json_array_foreach(json_object_get(f, "msgids"), i, id)
			printf("{\"msgid\":\"%s\"}\n", json_string_value(id));
	}
	if (!json_is_true(ok)) {
		char prefix[160];
		ps->total += (unsigned long long)(done > 0 ? done : 0);
		if (ps->single)
			prefix[0] = '\0';
		else
			snprintf(prefix, sizeof(prefix), "%s %llu message%s; message %llu refused: ",
			         ps->done, ps->total, ps->total == 1 ? "" : "s", ps->total + 1);
		/* Batches behind this one are skipped by the agent (stream). */
		ctl_print_reply_error(f, prefix);
		json_decref(f);
		exit(CTL_EXIT_FAIL);
	}
	ps->total += n;
	json_decref(f);
	memmove(ps->inflight, ps->inflight + 1, (ps->ninflight - 1) * sizeof(ps->inflight[0]));
	ps->ninflight--;
}

/* Sends the batch being built without waiting for its reply (unless the
 * pipeline is full). The agent commits pipelined batches in order and
 * skips the rest of the stream after a failure, so the count reported
 * on failure is exact. */
static void put_send(struct put_state *ps)
{
	size_t n = json_array_size(ps->blobs);
	json_t *req;

	if (n == 0)
		return;
	if (ps->ninflight == PUT_PIPELINE)
		put_reply(ps);
	req = json_copy(ps->tmpl);
	if (req == NULL || json_object_set_new(req, "blobs", ps->blobs) != 0 ||
	    json_object_set_new(req, "stream", json_true()) != 0)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	if (!ps->c->connected)
		ctl_connect(ps->c);
	if (ctl_send_blob(ps->c, req, ps->att, ps->bytes) != 0)
		put_lost(ps, strerror(errno));
	ps->inflight[ps->ninflight++] = n;
	if ((ps->blobs = json_array()) == NULL)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	ps->bytes = 0;
}

static void put_sync(struct put_state *ps)
{
	while (ps->ninflight > 0)
		put_reply(ps);
}

static void put_add(struct put_state *ps, const uint8_t *body, size_t len)
{
	if (ps->cap - ps->bytes < len) {
		size_t cap = ps->cap ? ps->cap : PUT_BATCH_BYTES + 64 * 1024;
		while (cap - ps->bytes < len)
			cap *= 2;
		uint8_t *b = realloc(ps->att, cap);
		if (b == NULL)
			ctl_fail(CHD_DB_ERROR, "out of memory for a message of %zu bytes", len);
		ps->att = b;
		ps->cap = cap;
	}
	if (len > 0)
		memcpy(ps->att + ps->bytes, body, len);
	ps->bytes += len;
	if (json_array_append_new(ps->blobs, json_integer((json_int_t)len)) != 0)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	if (json_array_size(ps->blobs) >= PUT_BATCH || ps->bytes >= PUT_BATCH_BYTES)
		put_send(ps);
}

/* A line reader on fd 0 that can tell whether another line is ready
 * without blocking. */
struct lines {
	char *buf;
	size_t cap, start, end;
	bool eof;
};

static bool line_buffered(const struct lines *l)
{
	if (l->end == l->start)
		return false;
	return memchr(l->buf + l->start, '\n', l->end - l->start) != NULL;
}

static bool line_ready(const struct lines *l)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };

	return l->eof || line_buffered(l) || poll(&p, 1, 0) > 0;
}

/* Next line (without its newline) in line and len; false at the end. */
static bool line_next(struct lines *l, const char **line, size_t *len, unsigned long long no)
{
	for (;;) {
		char *nl = l->end > l->start ? memchr(l->buf + l->start, '\n', l->end - l->start) : NULL;
		if (nl != NULL) {
			*line = l->buf + l->start;
			*len = (size_t)(nl - *line);
			l->start = (size_t)(nl - l->buf) + 1;
			return true;
		}
		if (l->eof) {
			if (l->end == l->start)
				return false;
			/* A last line without a newline is a message too. */
			*line = l->buf + l->start;
			*len = l->end - l->start;
			l->start = l->end;
			return true;
		}
		if (l->start > 0) {
			memmove(l->buf, l->buf + l->start, l->end - l->start);
			l->end -= l->start;
			l->start = 0;
		}
		if (l->end == l->cap) {
			if (l->cap > PUT_LINE_MAX)
				ctl_fail(CHD_Q_MSG_TOO_LONG, "line %llu of stdin is longer than %ld bytes", no,
				         PUT_LINE_MAX);
			size_t cap = l->cap ? l->cap * 2 : 1 << 20;
			char *b = realloc(l->buf, cap);
			if (b == NULL)
				ctl_fail(CHD_DB_ERROR, "out of memory");
			l->buf = b;
			l->cap = cap;
		}
		ssize_t r = read(0, l->buf + l->end, l->cap - l->end);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			ctl_fail(CHD_DB_ERROR, "cannot read stdin: %s", strerror(errno));
		if (r == 0)
			l->eof = true;
		l->end += (size_t)r;
	}
}

/* Blocks until stdin has data, handling the agent's replies meanwhile. */
static void wait_input(struct put_state *ps)
{
	while (ps->ninflight > 0) {
		struct pollfd p[2] = {
			{ .fd = 0, .events = POLLIN },
			{ .fd = ps->c->io.fd, .events = POLLIN },
		};
		if (ps->c->io.rend > ps->c->io.rstart) {
			put_reply(ps);
			continue;
		}
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents)
			put_reply(ps);
		if (p[0].revents)
			return;
	}
}

/* --correlid: 1-48 hex digits (even count) are bytes; anything else is
 * text of at most 24 bytes. Both are padded with zero bytes. */
static void correlid_hex(const char *s, char out[2 * MSG_ID_LEN + 1])
{
	uint8_t id[MSG_ID_LEN] = { 0 };
	size_t n = strlen(s);

	if (n == 0)
		ctl_usage_err("--correlid must not be empty");
	if (hex_decode(s, id, MSG_ID_LEN) < 0) {
		if (n > MSG_ID_LEN)
			ctl_usage_err("--correlid is %zu bytes of text (at most %d, or %d hex digits)", n,
			              MSG_ID_LEN, 2 * MSG_ID_LEN);
		memcpy(id, s, n);
	}
	if (msg_id_is_zero(id))
		ctl_usage_err("--correlid must not be all zero");
	hex_encode(id, MSG_ID_LEN, out);
}

/* A topic name to publish to (MQTT 3.1.1 4.7, 5.0 4.7): 1 to 65535 bytes
 * of UTF-8 without wildcards. */
static void check_topic(const char *t)
{
	size_t n = strlen(t);

	if (n == 0)
		ctl_usage_err("--topic must not be empty");
	if (n > 65535)
		ctl_usage_err("--topic is %zu bytes long (at most 65535)", n);
	if (strpbrk(t, "+#") != NULL)
		ctl_usage_err("--topic '%s' holds a wildcard (+ or #): publications go to one topic "
		              "name, wildcards are for subscriptions", t);
	if (!utf8_valid((const uint8_t *)t, n))
		ctl_usage_err("--topic is not valid UTF-8");
}

/* put --topic: the "publish" request's shared members. */
static json_t *publish_template(const struct ctl_args *a)
{
	static const char *const queue_only[] = { "--qmgr", "--nonpersistent", "--priority",
		"--expiry", "--correlid", NULL };
	static const char *const qos_words[] = { "0", "1", "2", NULL };
	const char *topic = ctl_opt(a, "--topic");
	json_t *req;
	int q;

	if (a->npos > 0)
		ctl_usage_err("give a QUEUE or --topic TOPIC, not both");
	for (int i = 0; queue_only[i] != NULL; i++)
		if (ctl_opt(a, queue_only[i]) != NULL)
			ctl_usage_err("%s is for messages put on a queue, not for publications (--topic; "
			              "QoS 1 and 2 publications are persistent, QoS 0 ones are not)",
			              queue_only[i]);
	check_topic(topic);
	q = ctl_opt_word(a, "--qos", qos_words);
	req = admin_request_new("publish");
	json_object_set_new(req, "topic", json_string(topic));
	json_object_set_new(req, "qos", json_integer(q < 0 ? 0 : q));
	json_object_set_new(req, "retain", json_boolean(ctl_flag(a, "--retain")));
	return req;
}

static int do_put(struct ctl *c, const struct ctl_args *a)
{
	struct put_state ps = { .c = c, .done = "put" };
	const char *queue = a->pos[0], *s, *text = ctl_opt(a, "-m"), *file = ctl_opt(a, "--file");
	long v;

	if (text != NULL && file != NULL)
		ctl_usage_err("give -m TEXT or --file F, not both");
	if (ctl_opt(a, "--topic") != NULL) {
		ps.tmpl = publish_template(a);
		ps.done = "published";
		goto bodies;
	}
	if (ctl_opt(a, "--qos") != NULL || ctl_flag(a, "--retain"))
		ctl_usage_err("--qos and --retain are for publications: give --topic TOPIC");
	if (a->npos == 0)
		ctl_usage_err("missing argument for 'put'; usage: chanctl put QUEUE ... or chanctl put "
		              "--topic TOPIC ... (chanctl put --help)");
	ctl_check_name("queue name", queue);
	ps.tmpl = admin_request_new("put");
	json_object_set_new(ps.tmpl, "queue", json_string(queue));
	if ((s = ctl_opt(a, "--qmgr")) != NULL) {
		ctl_check_name("queue manager name", s);
		json_object_set_new(ps.tmpl, "qmgr", json_string(s));
	}
	json_object_set_new(ps.tmpl, "persistent", json_boolean(!ctl_flag(a, "--nonpersistent")));
	if (ctl_opt_long(a, "--priority", 0, MSG_PRIORITY_MAX, &v))
		json_object_set_new(ps.tmpl, "priority", json_integer(v));
	if (ctl_opt_long(a, "--expiry", 1, 100L * 365 * 86400, &v))
		json_object_set_new(ps.tmpl, "expiry_ms", json_integer((json_int_t)v * 1000));
	if ((s = ctl_opt(a, "--correlid")) != NULL) {
		char hex[2 * MSG_ID_LEN + 1];
		correlid_hex(s, hex);
		json_object_set_new(ps.tmpl, "correlid", json_string(hex));
	}
bodies:
	ps.blobs = json_array();

	ps.single = text != NULL || file != NULL;
	if (text != NULL) {
		put_add(&ps, (const uint8_t *)text, strlen(text));
	} else if (file != NULL) {
		char err[256];
		size_t len;
		char *body = file_read_all(file, PUT_LINE_MAX, &len, err, sizeof(err));
		if (body == NULL)
			ctl_fail(CHD_Q_MSG_TOO_LONG, "%s", err);
		put_add(&ps, (const uint8_t *)body, len);
		free(body);
	} else {
		struct lines l = { 0 };
		const char *line;
		size_t len;
		unsigned long long no = 0;
		for (;;) {
			/* Nothing more ready on stdin: put what we have now, and
			 * read the agent's replies while waiting for input, so a
			 * person typing sees a refusal at once. */
			if (!line_ready(&l)) {
				put_send(&ps);
				wait_input(&ps);
			}
			if (!line_next(&l, &line, &len, no + 1))
				break;
			no++;
			put_add(&ps, (const uint8_t *)line, len);
		}
		free(l.buf);
	}
	put_send(&ps);
	put_sync(&ps);
	json_decref(ps.blobs);
	json_decref(ps.tmpl);
	free(ps.att);
	return CTL_EXIT_OK;
}

/* ---- get ---- */

struct get_state {
	struct ctl *c;
	unsigned long long printed;     /* written out */
	unsigned long long confirmed;   /* known deleted by the agent */
	bool browse;
};

/* A message record; its body is the frame's attachment (one blob). */
static void print_msg(struct get_state *gs, const json_t *f, const uint8_t *body, size_t len)
{
	const json_t *rec = json_object_get(f, "rec");

	if (json_array_size(json_object_get(f, "blobs")) != 1)
		ctl_fail(CHD_ADM_BAD_REQUEST, "the agent sent a message record without its body");
	if (gs->c->json) {
		/* The user-visible contract (doc/ADMIN.md): the body as text
		 * when it is UTF-8, else base64. */
		json_t *o = json_object();
		const char *const keys[] = { "msgid", "correlid", "priority", "persistent", "put_time",
			"expiry", "format", "reply_q", "reply_qm", "xmit_qm", "xmit_q", "props", NULL };
		if (o == NULL)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		for (int i = 0; keys[i] != NULL; i++) {
			json_t *v = json_object_get(rec, keys[i]);
			if (v != NULL)
				json_object_set(o, keys[i], v);
			else if (strcmp(keys[i], "correlid") == 0)
				json_object_set_new(o, "correlid", json_null());
		}
		if (utf8_valid(body, len)) {
			json_object_set_new(o, "body", json_stringn_nocheck(len ? (const char *)body : "",
			                                                    len));
		} else {
			char *b64 = b64_encode(body, len);
			if (b64 == NULL)
				ctl_fail(CHD_DB_ERROR, "out of memory");
			json_object_set_new(o, "body_base64", json_string_nocheck(b64));
			free(b64);
		}
		ctl_json_print(o, stdout);
		json_decref(o);
	} else {
		dead_letter_header(rec);
		if (len > 0)
			fwrite(body, 1, len, stdout);
		fputc('\n', stdout);
	}
	gs->printed++;
}

static unsigned long long unconfirmed(const struct get_state *gs)
{
	return gs->browse || gs->printed < gs->confirmed ? 0 : gs->printed - gs->confirmed;
}

static void get_lost(struct get_state *gs, const char *why)
{
	unsigned long long n = unconfirmed(gs);

	if (n > 0)
		ctl_fail(CHD_ADM_NO_AGENT, "connection lost: the last %llu message%s may be "
		         "delivered again (%s)", n, n == 1 ? "" : "s", why);
	ctl_fail(CHD_ADM_NO_AGENT, "connection lost: %s", why);
}

static int do_get(struct ctl *c, const struct ctl_args *a)
{
	struct get_state gs = { .c = c, .browse = ctl_flag(a, "--browse") };
	const char *queue = a->pos[0];
	json_t *req = admin_request_new("get");
	long count = 1, wait = 0;
	char err[256];

	ctl_check_name("queue name", queue);
	if (ctl_flag(a, "--all") && ctl_opt(a, "--count") != NULL)
		ctl_usage_err("give --count N or --all, not both");
	ctl_opt_long(a, "--count", 1, 1000000000, &count);
	if (ctl_flag(a, "--all"))
		count = 0;
	ctl_opt_long(a, "--wait", 0, 7L * 86400, &wait);
	json_object_set_new(req, "queue", json_string(queue));
	json_object_set_new(req, "max", json_integer(count));
	json_object_set_new(req, "wait_ms", json_integer((json_int_t)wait * 1000));
	json_object_set_new(req, "browse", json_boolean(gs.browse));

	/* Large writes: the output is flushed at each step anyway. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	ctl_connect(c);
	if (ctl_send(c, req) != 0)
		get_lost(&gs, strerror(errno));
	for (;;) {
		json_t *f, *v;
		uint8_t *body;
		size_t len;
		if (ctl_recv_blob(c, &f, &body, &len, err, sizeof(err)) != 0)
			get_lost(&gs, err);
		if (json_object_get(f, "rec") != NULL) {
			print_msg(&gs, f, body, len);
			free(body);
			json_decref(f);
			continue;
		}
		free(body);
		if (len > 0) {
			ctl_fail(CHD_ADM_BAD_REQUEST, "unexpected attachment from the agent");
		} else if ((v = json_object_get(f, "confirm")) != NULL) {
			json_int_t n = json_integer_value(v);
			gs.confirmed = (unsigned long long)json_integer_value(json_object_get(f, "confirmed"));
			/* Written out before the agent may delete them. */
			if (fflush(stdout) != 0 || ferror(stdout))
				ctl_fail(CHD_DB_ERROR, "cannot write the output (%s): the last %llu messages "
				         "stay on the queue", strerror(errno), unconfirmed(&gs));
			if (ctl_send(c, json_pack("{s:I}", "ack", n)) != 0)
				get_lost(&gs, strerror(errno));
		} else if (json_is_boolean(v = json_object_get(f, "ok"))) {
			json_t *cnt = json_object_get(f, "count");
			if (json_is_integer(cnt))
				gs.confirmed = (unsigned long long)json_integer_value(cnt);
			if (json_is_false(v)) {
				char prefix[200] = "";
				unsigned long long n = unconfirmed(&gs);
				if (n > 0)
					snprintf(prefix, sizeof(prefix), "the last %llu message%s may be delivered "
					         "again: ", n, n == 1 ? "" : "s");
				fflush(stdout);
				ctl_print_reply_error(f, prefix);
				json_decref(f);
				return CTL_EXIT_FAIL;
			}
			json_decref(f);
			return CTL_EXIT_OK;
		} else {
			json_decref(f);
			ctl_fail(CHD_ADM_BAD_REQUEST, "unexpected reply from the agent");
		}
		json_decref(f);
	}
}
