/* Admin commands for queue objects: define, alter, delete, display. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "chand/log.h"

static int cmd_define(struct admin_conn *c, json_t *req);
static int cmd_alter(struct admin_conn *c, json_t *req);
static int cmd_delete(struct admin_conn *c, json_t *req);
static int cmd_display(struct admin_conn *c, json_t *req);

const struct admin_cmd admin_queue_cmds[] = {
	{ "define queue", cmd_define },
	{ "alter queue", cmd_alter },
	{ "delete queue", cmd_delete },
	{ "display queue", cmd_display },
	{ NULL, NULL },
};

int admin_store_error(struct admin_conn *c, int rc, const char *queue)
{
	return admin_store_error_fields(c, rc, queue, NULL);
}

enum chd_code_id admin_code_of_store(int rc)
{
	switch (rc) {
	case STORE_UNKNOWN_Q:
	case STORE_NOT_FOUND: return CHD_Q_UNKNOWN;
	case STORE_FULL: return CHD_Q_FULL;
	case STORE_TOO_LONG: return CHD_Q_MSG_TOO_LONG;
	case STORE_EXISTS: return CHD_Q_EXISTS;
	case STORE_NOT_EMPTY: return CHD_Q_NOT_EMPTY;
	case STORE_PUT_INHIBITED: return CHD_Q_PUT_INHIBITED;
	case STORE_GET_INHIBITED: return CHD_Q_GET_INHIBITED;
	case STORE_NO_MSG: return CHD_Q_NO_MSG;
	case STORE_BAD_XMITQ: return CHD_Q_BAD_XMITQ;
	case STORE_IN_USE: return CHD_Q_IN_USE;
	case STORE_DISK_FULL: return CHD_DISK_FULL;
	case STORE_BAD_NAME: return CHD_Q_BAD_NAME;
	case STORE_WRONG_TYPE: return CHD_Q_UNKNOWN;
	case STORE_BAD_ARG: return CHD_ADM_BAD_REQUEST;
	default:
		return CHD_DB_ERROR;
	}
}

int admin_store_error_fields(struct admin_conn *c, int rc, const char *queue, json_t *fields)
{
	const char *why = store_errmsg(admin_store(c));
	enum chd_code_id code = admin_code_of_store(rc);

	if (code == CHD_DB_ERROR || code == CHD_DISK_FULL)
		log_error(code_str(code), "queue=%s %s", queue ? queue : "-", why);
	return admin_reply_err_fields(c, code, fields, "%s", why[0] ? why : code_text(code));
}

static json_t *time_json(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	time_format_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

/* The record of a queue: the same object `chanctl --json display queue`
 * prints (lower-case attribute names). */
static json_t *queue_json(const struct queue_def *q)
{
	bool local = q->type == QTYPE_LOCAL;
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(q->name));
	json_object_set_new(o, "type", json_string(local ? "qlocal" : "qremote"));
	json_object_set_new(o, "usage", local ? json_string(q->usage == QUSAGE_XMITQ ? "xmitq"
	                                                                              : "normal")
	                                      : json_null());
	json_object_set_new(o, "curdepth", local ? json_integer(q->curdepth) : json_null());
	json_object_set_new(o, "maxdepth", local ? json_integer(q->maxdepth) : json_null());
	json_object_set_new(o, "maxmsgl", local ? json_integer(q->maxmsgl) : json_null());
	json_object_set_new(o, "put", json_string(q->put_enabled ? "enabled" : "disabled"));
	json_object_set_new(o, "get", local ? json_string(q->get_enabled ? "enabled" : "disabled")
	                                    : json_null());
	json_object_set_new(o, "rname", local ? json_null() : json_string(q->rname));
	json_object_set_new(o, "rqmname", local ? json_null() : json_string(q->rqmname));
	/* The effective XMITQ: an empty one means "the queue named like RQMNAME". */
	json_object_set_new(o, "xmitq", local ? json_null()
	                                      : json_string(q->xmitq[0] ? q->xmitq : q->rqmname));
	json_object_set_new(o, "descr", json_string(q->descr));
	json_object_set_new(o, "oldest_put_time", local ? time_json(q->oldest_put_ms) : json_null());
	json_object_set_new(o, "created", time_json(q->created_ms));
	json_object_set_new(o, "altered", time_json(q->altered_ms));
	return o;
}

static int get_name(struct admin_conn *c, json_t *req, const char *key, bool required,
                    char *out, size_t outlen)
{
	const char *v;
	char why[160];

	if (admin_get_str(c, req, key, required, &v) != 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!name_valid(v, why, sizeof(why))) {
		admin_reply_err(c, CHD_Q_BAD_NAME, "%s: %s", key, why);
		return 1;
	}
	str_copy(out, v, outlen);
	return 0;
}

static int get_enabled(struct admin_conn *c, json_t *req, const char *key, bool *out)
{
	const char *v;

	if (admin_get_str(c, req, key, false, &v) != 0)
		return -1;
	if (v == NULL)
		return 0;
	if (strcmp(v, "enabled") == 0)
		*out = true;
	else if (strcmp(v, "disabled") == 0)
		*out = false;
	else
		return admin_bad_request(c, "\"%s\" must be \"enabled\" or \"disabled\"", key);
	return 0;
}

/* Applies the attributes present in req to q. Returns 0, -1 (connection
 * to close) or 1 (an error reply was sent). */
static int apply_attrs(struct admin_conn *c, json_t *req, struct queue_def *q)
{
	long long v;
	bool present;
	const char *s;
	int rc;

	if (q->type == QTYPE_LOCAL) {
		if (admin_get_int(c, req, "maxdepth", false, &v, &present) != 0)
			return -1;
		if (present)
			q->maxdepth = (long)v;
		if (admin_get_int(c, req, "maxmsgl", false, &v, &present) != 0)
			return -1;
		if (present)
			q->maxmsgl = (long)v;
		if (admin_get_str(c, req, "usage", false, &s) != 0)
			return -1;
		if (s != NULL) {
			if (strcmp(s, "normal") == 0)
				q->usage = QUSAGE_NORMAL;
			else if (strcmp(s, "xmitq") == 0)
				q->usage = QUSAGE_XMITQ;
			else
				return admin_bad_request(c, "\"usage\" must be \"normal\" or \"xmitq\"");
		}
		if (get_enabled(c, req, "get", &q->get_enabled) != 0)
			return -1;
	} else {
		if ((rc = get_name(c, req, "rname", false, q->rname, sizeof(q->rname))) != 0)
			return rc;
		if ((rc = get_name(c, req, "rqmname", false, q->rqmname, sizeof(q->rqmname))) != 0)
			return rc;
		if (admin_get_str(c, req, "xmitq", false, &s) != 0)
			return -1;
		/* "" resets XMITQ to the default (the queue named like RQMNAME). */
		if (s != NULL && s[0] == '\0')
			q->xmitq[0] = '\0';
		else if ((rc = get_name(c, req, "xmitq", false, q->xmitq, sizeof(q->xmitq))) != 0)
			return rc;
	}
	if (get_enabled(c, req, "put", &q->put_enabled) != 0)
		return -1;
	if (admin_get_str(c, req, "descr", false, &s) != 0)
		return -1;
	if (s != NULL) {
		if (strlen(s) > QUEUE_DESCR_MAX) {
			admin_reply_err(c, CHD_ADM_BAD_REQUEST, "descr is %zu bytes long (at most %d)",
			                strlen(s), QUEUE_DESCR_MAX);
			return 1;
		}
		str_copy(q->descr, s, sizeof(q->descr));
	}
	return 0;
}

static int parse_type(struct admin_conn *c, json_t *req, enum queue_type *t)
{
	const char *s;

	if (admin_get_str(c, req, "type", true, &s) != 0)
		return -1;
	if (strcmp(s, "qlocal") == 0)
		*t = QTYPE_LOCAL;
	else if (strcmp(s, "qremote") == 0)
		*t = QTYPE_REMOTE;
	else
		return admin_bad_request(c, "\"type\" must be \"qlocal\" or \"qremote\"");
	return 0;
}

static int cmd_define(struct admin_conn *c, json_t *req)
{
	struct queue_def q;
	enum queue_type t;
	bool replace = false;
	int rc;

	if (parse_type(c, req, &t) != 0 ||
	    admin_get_bool(c, req, "replace", false, &replace, NULL) != 0)
		return -1;
	queue_def_init(&q, t);
	if ((rc = get_name(c, req, "name", true, q.name, sizeof(q.name))) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = apply_attrs(c, req, &q)) != 0)
		return rc < 0 ? -1 : 0;
	if (t == QTYPE_REMOTE && (q.rname[0] == '\0' || q.rqmname[0] == '\0'))
		return admin_bad_request(c, "a remote queue needs \"rname\" and \"rqmname\"");
	rc = store_queue_define(admin_store(c), &q, replace);
	if (rc == STORE_EXISTS)
		return admin_reply_err(c, CHD_Q_EXISTS, "queue '%s' already exists (use --replace to "
		                       "redefine it)", q.name);
	if (rc != STORE_OK)
		return admin_store_error(c, rc, q.name);
	long uid, pid;
	admin_conn_peer(c, &uid, &pid);
	log_info(code_str(CHD_Q_DEFINED), "queue=%s type=%s uid=%ld %s", q.name, t == QTYPE_LOCAL ? "qlocal" : "qremote",
	         uid, replace ? "defined (replace)" : "defined");
	return admin_reply_ok(c, NULL);
}

static int cmd_alter(struct admin_conn *c, json_t *req)
{
	struct queue_def q;
	enum queue_type t;
	char name[CHAND_NAME_MAX + 1];
	int rc;

	if (parse_type(c, req, &t) != 0)
		return -1;
	if ((rc = get_name(c, req, "name", true, name, sizeof(name))) != 0)
		return rc < 0 ? -1 : 0;
	rc = store_queue_get(admin_store(c), name, &q);
	if (rc != STORE_OK)
		return admin_store_error(c, rc, name);
	if (q.type != t)
		return admin_reply_err(c, CHD_Q_UNKNOWN, "queue '%s' is a %s, not a %s", name,
		                       q.type == QTYPE_LOCAL ? "qlocal" : "qremote",
		                       t == QTYPE_LOCAL ? "qlocal" : "qremote");
	if ((rc = apply_attrs(c, req, &q)) != 0)
		return rc < 0 ? -1 : 0;
	rc = store_queue_define(admin_store(c), &q, true);
	if (rc != STORE_OK)
		return admin_store_error(c, rc, name);
	log_info(code_str(CHD_Q_ALTERED), "queue=%s altered", name);
	return admin_reply_ok(c, NULL);
}

static int cmd_delete(struct admin_conn *c, json_t *req)
{
	char name[CHAND_NAME_MAX + 1];
	struct queue_def q;
	bool purge = false;
	int rc;

	if ((rc = get_name(c, req, "name", true, name, sizeof(name))) != 0)
		return rc < 0 ? -1 : 0;
	if (admin_get_bool(c, req, "purge", false, &purge, NULL) != 0)
		return -1;
	rc = store_queue_get(admin_store(c), name, &q);
	if (rc == STORE_OK)
		rc = store_queue_delete(admin_store(c), name, purge);
	if (rc == STORE_NOT_EMPTY)
		return admin_reply_err(c, CHD_Q_NOT_EMPTY, "queue '%s' holds %ld message%s (use --purge "
		                       "to delete it with them)", name, q.curdepth,
		                       q.curdepth == 1 ? "" : "s");
	if (rc != STORE_OK)
		return admin_store_error(c, rc, name);
	log_info(code_str(CHD_Q_DELETED), "queue=%s deleted%s", name, purge && q.curdepth > 0 ? " (purged)" : "");
	return admin_reply_ok(c, json_pack("{s:I}", "purged", (json_int_t)(q.type == QTYPE_LOCAL
	                                                                    ? q.curdepth : 0)));
}

static int cmd_display(struct admin_conn *c, json_t *req)
{
	const char *pattern;
	struct queue_def *qs = NULL;
	size_t n = 0;
	int rc;

	if (admin_get_str(c, req, "pattern", false, &pattern) != 0)
		return -1;
	if (pattern == NULL || pattern[0] == '\0')
		pattern = "*";
	rc = store_queue_list(admin_store(c), pattern, &qs, &n);
	if (rc != STORE_OK)
		return admin_store_error(c, rc, pattern);
	/* A plain name that matches nothing is an error; a pattern is not. */
	if (n == 0 && strchr(pattern, '*') == NULL) {
		free(qs);
		return admin_reply_err(c, CHD_Q_UNKNOWN, "queue '%s' is not defined", pattern);
	}
	for (size_t i = 0; i < n; i++)
		if (admin_send_record(c, queue_json(&qs[i])) != 0) {
			free(qs);
			return -1;
		}
	free(qs);
	return admin_reply_ok(c, json_pack("{s:I}", "count", (json_int_t)n));
}
