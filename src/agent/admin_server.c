/* The admin socket: creation, credential checks, one thread per client,
 * request dispatch through the registered command tables.
 *
 * Why a thread per connection: a command may wait (get --wait), stream a
 * long listing to a slow reader or sit behind an fsync; none of that may
 * stall the main loop or another client.  Each thread has its own store
 * handle, taken from a small pool so short commands do not pay for
 * opening the database. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "chand/admin.h"
#include "chand/agent.h"
#include "chand/log.h"
#include "chand/store.h"

#define ADMIN_MAX_TABLES 32
#define ADMIN_POOL_MAX 8

struct admin_conn {
	struct agent *agent;
	int fd;
	struct admin_io io;
	struct store *st;
	uint64_t id;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool replied;               /* the current request got its final reply */
	bool gone;                  /* a write failed: the client left */
	uint8_t *att;               /* the current request's attachment */
	size_t att_len;
	json_t *pending;            /* a request handed back with admin_unrecv */
	uint8_t *pending_att;       /* and its attachment */
	size_t pending_att_len;
	bool broken;                /* admin_try_recv hit a bad frame or EOF: close after this command */
	bool stream_failed;
	enum chd_code_id stream_code;
	struct admin_conn *next;
};

static pthread_mutex_t srv_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t srv_cond = PTHREAD_COND_INITIALIZER;
static struct admin_conn *srv_conns;
static int srv_nconns;
static struct store *srv_pool[ADMIN_POOL_MAX];
static int srv_npool;
static const struct admin_cmd *srv_tables[ADMIN_MAX_TABLES];
static bool srv_table_blob[ADMIN_MAX_TABLES];   /* its requests may carry an attachment */
static int srv_ntables;
static char *srv_path;

static void *conn_main(void *arg);

/* ---- registration ---- */

static const struct admin_cmd *cmd_find(const char *name, bool *blob)
{
	for (int t = 0; t < srv_ntables; t++)
		for (const struct admin_cmd *c = srv_tables[t]; c->name != NULL; c++)
			if (strcmp(c->name, name) == 0) {
				*blob = srv_table_blob[t];
				return c;
			}
	return NULL;
}

static void register_table(const struct admin_cmd *cmds, bool blob)
{
	bool b;

	if (srv_ntables == ADMIN_MAX_TABLES)
		fatalx("admin_register: more than %d command tables", ADMIN_MAX_TABLES);
	for (const struct admin_cmd *c = cmds; c->name != NULL; c++)
		if (cmd_find(c->name, &b) != NULL)
			fatalx("admin_register: command '%s' registered twice", c->name);
	srv_table_blob[srv_ntables] = blob;
	srv_tables[srv_ntables++] = cmds;
}

void admin_register(const struct admin_cmd *cmds)
{
	register_table(cmds, false);
}

void admin_register_blob(const struct admin_cmd *cmds)
{
	register_table(cmds, true);
}

/* ---- replies ---- */

static int conn_send_blob(struct admin_conn *c, json_t *obj, const uint8_t *att, size_t len)
{
	int rc = -1;

	if (obj != NULL && !c->gone)
		rc = admin_io_queue_blob(&c->io, obj, att, len);
	json_decref(obj);
	if (rc != 0)
		c->gone = true;
	return rc;
}

static int conn_send(struct admin_conn *c, json_t *obj)
{
	return conn_send_blob(c, obj, NULL, 0);
}

int admin_flush(struct admin_conn *c)
{
	if (c->gone || admin_io_flush(&c->io) != 0) {
		c->gone = true;
		return -1;
	}
	return 0;
}

int admin_send(struct admin_conn *c, json_t *obj)
{
	return conn_send(c, obj);
}

int admin_send_record(struct admin_conn *c, json_t *rec)
{
	json_t *o = json_object();

	if (o == NULL || rec == NULL) {
		json_decref(o);
		json_decref(rec);
		return -1;
	}
	json_object_set_new(o, "rec", rec);
	return conn_send(c, o);
}

int admin_send_record_blob(struct admin_conn *c, json_t *rec, const uint8_t *data, size_t len)
{
	json_t *o = json_object(), *blobs = json_array();

	if (o == NULL || blobs == NULL || rec == NULL ||
	    json_array_append_new(blobs, json_integer((json_int_t)len)) != 0) {
		json_decref(o);
		json_decref(blobs);
		json_decref(rec);
		return -1;
	}
	json_object_set_new_nocheck(o, "rec", rec);
	json_object_set_new_nocheck(o, "blobs", blobs);
	return conn_send_blob(c, o, data, len);
}

int admin_reply_ok(struct admin_conn *c, json_t *fields)
{
	json_t *o = json_pack("{s:b}", "ok", 1);

	if (fields != NULL) {
		json_object_update(o, fields);
		json_decref(fields);
	}
	c->replied = true;
	if (conn_send(c, o) != 0)
		return -1;
	return admin_flush(c);
}

static int reply_verr(struct admin_conn *c, enum chd_code_id code, json_t *fields,
                      const char *fmt, va_list ap)
{
	char text[1024];
	json_t *o;

	vsnprintf(text, sizeof(text), fmt, ap);
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	o = json_pack("{s:b,s:s,s:s}", "ok", 0, "code", code_str(code), "error", text);
	if (fields != NULL) {
		json_object_update_missing(o, fields);
		json_decref(fields);
	}
	c->replied = true;
	if (conn_send(c, o) != 0)
		return -1;
	return admin_flush(c) == 0 ? 0 : -1;
}

int admin_reply_err(struct admin_conn *c, enum chd_code_id code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = reply_verr(c, code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int admin_reply_err_fields(struct admin_conn *c, enum chd_code_id code, json_t *fields,
                           const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = reply_verr(c, code, fields, fmt, ap);
	va_end(ap);
	return rc;
}

int admin_bad_request(struct admin_conn *c, const char *fmt, ...)
{
	va_list ap;
	char text[512];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warn(code_str(CHD_ADM_BAD_REQUEST), "conn=%llu uid=%ld pid=%ld malformed request: %s",
	         (unsigned long long)c->id, (long)c->uid, (long)c->pid, text);
	admin_reply_err(c, CHD_ADM_BAD_REQUEST, "malformed request: %s", text);
	return -1;
}

int admin_recv(struct admin_conn *c, json_t **out, int timeout_ms)
{
	char err[256];
	int rc;

	if (admin_flush(c) != 0)
		return ADMIN_IO_ERR;
	rc = admin_io_read(&c->io, out, timeout_ms, err, sizeof(err));
	if (rc == ADMIN_IO_BAD)
		log_warn(code_str(CHD_ADM_BAD_REQUEST), "conn=%llu uid=%ld pid=%ld malformed frame: %s",
		         (unsigned long long)c->id, (long)c->uid, (long)c->pid, err);
	return rc;
}

void admin_stream_fail(struct admin_conn *c, enum chd_code_id code)
{
	c->stream_failed = true;
	c->stream_code = code;
}

const uint8_t *admin_req_blob(struct admin_conn *c, size_t *len)
{
	*len = c->att_len;
	return c->att;
}

int admin_try_recv(struct admin_conn *c, json_t **out, uint8_t **att, size_t *att_len)
{
	char err[256];
	int rc;

	*out = NULL;
	*att = NULL;
	*att_len = 0;
	if (c->pending != NULL) {
		*out = c->pending;
		*att = c->pending_att;
		*att_len = c->pending_att_len;
		c->pending = NULL;
		c->pending_att = NULL;
		c->pending_att_len = 0;
		return ADMIN_IO_OK;
	}
	if (!admin_io_ready(&c->io))
		return 0;
	rc = admin_io_read_blob(&c->io, out, att, att_len, ADMIN_STALL_MS, err, sizeof(err));
	if (rc == ADMIN_IO_BAD)
		log_warn(code_str(CHD_ADM_BAD_REQUEST), "conn=%llu uid=%ld pid=%ld malformed frame: %s",
		         (unsigned long long)c->id, (long)c->uid, (long)c->pid, err);
	if (rc != ADMIN_IO_OK)
		c->broken = true;
	return rc == ADMIN_IO_EOF ? ADMIN_IO_ERR : rc;
}

void admin_unrecv(struct admin_conn *c, json_t *req, uint8_t *att, size_t att_len)
{
	if (c->pending != NULL)
		fatalx("admin_unrecv: a request is already pending");
	c->pending = req;
	c->pending_att = att;
	c->pending_att_len = att_len;
}

/* ---- request fields ---- */

int admin_get_str(struct admin_conn *c, const json_t *req, const char *key, bool required,
                  const char **out)
{
	const json_t *v = json_object_get(req, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return admin_bad_request(c, "missing field \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return admin_bad_request(c, "field \"%s\" must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int admin_get_int(struct admin_conn *c, const json_t *req, const char *key, bool required,
                  long long *out, bool *present)
{
	const json_t *v = json_object_get(req, key);

	if (present)
		*present = false;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return admin_bad_request(c, "missing field \"%s\"", key);
		return 0;
	}
	if (!json_is_integer(v))
		return admin_bad_request(c, "field \"%s\" must be an integer", key);
	*out = (long long)json_integer_value(v);
	if (present)
		*present = true;
	return 0;
}

int admin_get_bool(struct admin_conn *c, const json_t *req, const char *key, bool required,
                   bool *out, bool *present)
{
	const json_t *v = json_object_get(req, key);

	if (present)
		*present = false;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return admin_bad_request(c, "missing field \"%s\"", key);
		return 0;
	}
	if (!json_is_boolean(v))
		return admin_bad_request(c, "field \"%s\" must be true or false", key);
	*out = json_is_true(v);
	if (present)
		*present = true;
	return 0;
}

struct store *admin_store(struct admin_conn *c) { return c->st; }
struct agent *admin_agent(struct admin_conn *c) { return c->agent; }
uint64_t admin_conn_id(struct admin_conn *c) { return c->id; }

bool admin_client_gone(struct admin_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

	if (c->gone)
		return true;
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void admin_conn_peer(struct admin_conn *c, long *uid, long *pid)
{
	*uid = (long)c->uid;
	*pid = (long)c->pid;
}

/* ---- store handle pool ---- */

static struct store *pool_get(struct agent *a, char *err, size_t errlen)
{
	struct store *st = NULL;

	pthread_mutex_lock(&srv_mtx);
	if (srv_npool > 0)
		st = srv_pool[--srv_npool];
	pthread_mutex_unlock(&srv_mtx);
	if (st == NULL && agent_store_open(a, &st, err, errlen) != STORE_OK)
		return NULL;
	return st;
}

static void pool_put(struct store *st)
{
	pthread_mutex_lock(&srv_mtx);
	if (srv_npool < ADMIN_POOL_MAX) {
		srv_pool[srv_npool++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&srv_mtx);
	if (st != NULL)
		store_close(st);
}

/* ---- socket ---- */

static bool sock_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int admin_listen(struct agent *a, char *err, size_t errlen)
{
	const struct chand_config *cfg = a->cfg;
	const char *path = cfg->admin_socket;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "admin socket %s exists and is not a socket", path);
			return -1;
		}
		if (sock_answers(path)) {
			snprintf(err, errlen, "another agent answers at %s", path);
			return -1;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot remove stale admin socket %s: %s", path,
			         strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "admin socket: %s", strerror(errno));
		return -1;
	}
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	/* Nobody may connect in the window between bind and chmod. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		snprintf(err, errlen, "cannot bind admin socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (cfg->admin_group != NULL && chown(path, (uid_t)-1, cfg->admin_gid) != 0) {
		snprintf(err, errlen, "cannot give admin socket %s to group %s: %s", path,
		         cfg->admin_group, strerror(errno));
		goto fail;
	}
	if (chmod(path, cfg->admin_mode) != 0) {
		snprintf(err, errlen, "cannot chmod admin socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, 64) != 0) {
		snprintf(err, errlen, "cannot listen on admin socket %s: %s", path, strerror(errno));
		goto fail;
	}
	free(srv_path);
	srv_path = strdup(path);
	return fd;
fail:
	close(fd);
	unlink(path);
	return -1;
}

/* True if process pid has gid among its supplementary groups. The
 * kernel's SO_PEERCRED carries only the primary gid. */
static bool proc_has_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		char *p = line + 7, *end;
		for (;;) {
			unsigned long g = strtoul(p, &end, 10);
			if (end == p)
				break;
			if ((gid_t)g == gid)
				found = true;
			p = end;
		}
		break;
	}
	fclose(f);
	return found;
}

static bool peer_allowed(const struct agent *a, const struct ucred *cr)
{
	if (cr->uid == geteuid() || cr->uid == 0)
		return true;
	if (a->cfg->admin_group == NULL || a->cfg->admin_gid == (gid_t)-1)
		return false;
	return cr->gid == a->cfg->admin_gid || proc_has_group(cr->pid, a->cfg->admin_gid);
}

/* Refused clients being told why, each by a short-lived thread. */
#define ADMIN_MAX_REFUSALS 16
#define ADMIN_REFUSE_LINGER_MS 1000
static _Atomic int srv_refusing;

struct refusal {
	int fd;
	uint8_t *frame;
	size_t len;
};

/* Sends the refusal, then reads and discards what the client sends until
 * it closes (at most ADMIN_REFUSE_LINGER_MS): closing a Unix socket with
 * unread data would make the client's read fail with ECONNRESET before it
 * sees the reason. */
static void *refuse_thread(void *arg)
{
	struct refusal *r = arg;
	struct timeval tv = { 0, ADMIN_REFUSE_LINGER_MS * 1000 };
	char sink[4096];
	int64_t end = time_mono_ms() + ADMIN_REFUSE_LINGER_MS;

	setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(r->fd, r->frame, r->len, MSG_NOSIGNAL) == (ssize_t)r->len)
		shutdown(r->fd, SHUT_WR);
	while (time_mono_ms() < end && recv(r->fd, sink, sizeof(sink), 0) > 0)
		;
	close(r->fd);
	free(r->frame);
	free(r);
	atomic_fetch_sub(&srv_refusing, 1);
	return NULL;
}

/* Tells a refused client why, without ever blocking the main loop. */
static void refuse(int fd, enum chd_code_id code, const char *text)
{
	json_t *o = json_pack("{s:b,s:s,s:s}", "ok", 0, "code", code_str(code), "error", text);
	struct refusal *r = calloc(1, sizeof(*r));
	pthread_t t;
	pthread_attr_t attr;

	if (o != NULL && r != NULL)
		r->frame = admin_frame_encode(o, &r->len);
	json_decref(o);
	if (r == NULL || r->frame == NULL) {
		if (r != NULL)
			free(r);
		close(fd);
		return;
	}
	r->fd = fd;
	if (atomic_fetch_add(&srv_refusing, 1) < ADMIN_MAX_REFUSALS) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		int rc = pthread_create(&t, &attr, refuse_thread, r);
		pthread_attr_destroy(&attr);
		if (rc == 0)
			return;
	}
	/* Too many at once: best effort, never waiting. */
	atomic_fetch_sub(&srv_refusing, 1);
	ssize_t w = send(fd, r->frame, r->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
	free(r->frame);
	free(r);
}

int admin_accept(struct agent *a, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		char text[256];

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn(code_str(CHD_ACCEPT_FAILED), "admin accept: %s; pausing", strerror(errno));
				return -1;
			}
			return 0;  /* EAGAIN: drained */
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
			log_warn(code_str(CHD_ADM_REFUSED), "cannot read admin client credentials: %s",
			         strerror(errno));
			close(fd);
			continue;
		}
		if (!peer_allowed(a, &cr)) {
			log_warn(code_str(CHD_ADM_REFUSED), "uid=%ld pid=%ld admin client refused: not "
			         "the agent's user%s%s", (long)cr.uid, (long)cr.pid,
			         a->cfg->admin_group ? " nor in group " : " and no admin.group is set",
			         a->cfg->admin_group ? a->cfg->admin_group : "");
			snprintf(text, sizeof(text), "permission denied: uid %ld is not the agent's user%s%s",
			         (long)cr.uid, a->cfg->admin_group ? " nor in group " : "",
			         a->cfg->admin_group ? a->cfg->admin_group : "");
			refuse(fd, CHD_ADM_REFUSED, text);
			continue;
		}

		struct admin_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->agent = a;
		c->fd = fd;
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
		c->id = agent_owner_id();
		admin_io_init(&c->io, fd);

		pthread_mutex_lock(&srv_mtx);
		if (srv_nconns >= ADMIN_MAX_CONNS || atomic_load(&a->stopping)) {
			bool stopping = atomic_load(&a->stopping);
			pthread_mutex_unlock(&srv_mtx);
			log_warn(code_str(CHD_ADM_REFUSED), "uid=%ld pid=%ld admin client refused: %s",
			         (long)cr.uid, (long)cr.pid,
			         stopping ? "agent is stopping" : "too many admin connections");
			snprintf(text, sizeof(text), stopping ? "the agent is stopping"
			         : "too many admin connections (at most %d)", ADMIN_MAX_CONNS);
			refuse(fd, CHD_ADM_REFUSED, text);
			free(c);
			continue;
		}
		c->next = srv_conns;
		srv_conns = c;
		srv_nconns++;
		pthread_mutex_unlock(&srv_mtx);

		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		/* Commands keep their data on the heap; a small stack keeps many
		 * clients cheap. */
		pthread_attr_setstacksize(&attr, ADMIN_THREAD_STACK);
		int rc = pthread_create(&t, &attr, conn_main, c);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			log_warn(code_str(CHD_SYS_RESOURCE), "cannot start admin thread: %s", strerror(rc));
			pthread_mutex_lock(&srv_mtx);
			for (struct admin_conn **pp = &srv_conns; *pp; pp = &(*pp)->next)
				if (*pp == c) {
					*pp = c->next;
					break;
				}
			srv_nconns--;
			pthread_mutex_unlock(&srv_mtx);
			refuse(fd, CHD_ADM_REFUSED, "the agent cannot start a thread for this client");
			admin_io_free(&c->io);
			free(c);
		}
	}
}

/* ---- connection thread ---- */

static void reply_skipped(struct admin_conn *c)
{
	admin_reply_err_fields(c, c->stream_code, json_pack("{s:b}", "skipped", 1),
	                       "skipped: an earlier request of this stream failed");
}

static void conn_dispatch(struct admin_conn *c)
{
	char err[512];

	for (;;) {
		json_t *req = NULL;
		const char *name;
		enum chd_code_id code;
		bool blob = false;
		int rc;

		free(c->att);
		c->att = NULL;
		c->att_len = 0;
		if (c->pending != NULL) {
			req = c->pending;
			c->att = c->pending_att;
			c->att_len = c->pending_att_len;
			c->pending = NULL;
			c->pending_att = NULL;
			c->pending_att_len = 0;
			rc = ADMIN_IO_OK;
		} else {
			rc = admin_io_read_blob(&c->io, &req, &c->att, &c->att_len, -1, err, sizeof(err));
		}

		if (rc == ADMIN_IO_EOF)
			return;
		if (rc == ADMIN_IO_BAD) {
			log_warn(code_str(CHD_ADM_BAD_REQUEST), "conn=%llu uid=%ld pid=%ld malformed "
			         "frame: %s; disconnecting", (unsigned long long)c->id,
			         (long)c->uid, (long)c->pid, err);
			return;
		}
		if (rc != ADMIN_IO_OK) {
			log_debug("admin conn=%llu: %s", (unsigned long long)c->id, err);
			return;
		}
		if (atomic_load(&c->agent->stopping)) {
			admin_reply_err(c, CHD_AGENT_STOP, "the agent is stopping");
			json_decref(req);
			return;
		}
		if (admin_request_check(req, &name, &code, err, sizeof(err)) != 0) {
			if (code == CHD_ADM_VERSION) {
				log_warn(code_str(code), "uid=%ld pid=%ld %s", (long)c->uid, (long)c->pid, err);
				admin_reply_err(c, code, "%s", err);
			} else {
				admin_bad_request(c, "%s", err);
			}
			json_decref(req);
			return;
		}
		/* A broken pipelined stream: skip the rest of it unprocessed. */
		if (json_is_true(json_object_get(req, "stream"))) {
			if (c->stream_failed) {
				reply_skipped(c);
				json_decref(req);
				if (admin_flush(c) != 0)
					return;
				continue;
			}
		} else {
			c->stream_failed = false;
		}
		const struct admin_cmd *cmd = cmd_find(name, &blob);
		if (cmd == NULL) {
			admin_reply_err(c, CHD_ADM_BAD_REQUEST, "unknown command \"%s\"", name);
			json_decref(req);
			continue;
		}
		if (c->att_len > 0 && !blob) {
			admin_bad_request(c, "command \"%s\" takes no attachment (got %zu bytes)", name,
			                  c->att_len);
			json_decref(req);
			return;
		}
		log_debug("admin conn=%llu uid=%ld pid=%ld cmd=\"%s\"",
		          (unsigned long long)c->id, (long)c->uid, (long)c->pid, name);
		c->replied = false;
		rc = cmd->fn(c, req);
		json_decref(req);
		if (rc == 0 && !c->replied)
			fatalx("admin command '%s' returned without a reply", name);
		if (admin_flush(c) != 0 || rc != 0 || c->broken)
			return;
	}
}

static void *conn_main(void *arg)
{
	struct admin_conn *c = arg;
	char err[256];

	c->st = pool_get(c->agent, err, sizeof(err));
	if (c->st == NULL) {
		log_error(code_str(CHD_DB_ERROR), "admin client: cannot open the database: %s", err);
		admin_reply_err(c, CHD_DB_ERROR, "cannot open the database: %s", err);
	} else {
		conn_dispatch(c);
		/* Messages handed to this client but never acknowledged go back
		 * to their queues: a vanished client loses nothing. */
		store_release_owner(c->id);
		pool_put(c->st);
	}

	pthread_mutex_lock(&srv_mtx);
	for (struct admin_conn **pp = &srv_conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	srv_nconns--;
	close(c->fd);
	/* The last client gone: close the pooled handles, so an idle agent
	 * stays small (memtrim.c gives the freed memory back once it has
	 * gone unused for a while). */
	int idle = srv_nconns == 0 ? srv_npool : -1;
	struct store *drop[ADMIN_POOL_MAX];
	for (int i = 0; i < idle; i++)
		drop[i] = srv_pool[i];
	if (idle > 0)
		srv_npool = 0;
	pthread_cond_broadcast(&srv_cond);
	pthread_mutex_unlock(&srv_mtx);
	for (int i = 0; i < idle; i++)
		store_close(drop[i]);
	json_decref(c->pending);
	free(c->pending_att);
	free(c->att);
	admin_io_free(&c->io);
	free(c);
	return NULL;
}

void admin_shutdown(struct agent *a, int timeout_ms)
{
	struct timespec ts;
	bool all_done;

	(void)a;
	pthread_mutex_lock(&srv_mtx);
	/* Wake threads blocked in read or write; waiters in store_wait see
	 * the stopping flag after store_wake_all. */
	for (struct admin_conn *c = srv_conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv_mtx);
	store_wake_all();

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&srv_mtx);
	while (srv_nconns > 0)
		if (pthread_cond_timedwait(&srv_cond, &srv_mtx, &ts) == ETIMEDOUT)
			break;
	all_done = srv_nconns == 0;
	if (!all_done)
		log_warn(code_str(CHD_STOP_SLOW), "%d admin connection(s) did not end in time", srv_nconns);
	while (srv_npool > 0)
		store_close(srv_pool[--srv_npool]);
	pthread_mutex_unlock(&srv_mtx);
	if (srv_path != NULL) {
		unlink(srv_path);
		free(srv_path);
		srv_path = NULL;
	}
}
