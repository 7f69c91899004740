/* The agent's optional Prometheus listener: HTTP/1.1 GET /metrics on a
 * loopback address (config "metrics"), served by one small thread.
 *
 * Deliberately minimal: one request per connection (Connection: close),
 * one connection at a time, the request bounded in size
 * (METRICS_REQ_MAX) and time (METRICS_IO_MS), so a stuck or hostile
 * client costs at most that and never touches a channel.  The text comes
 * from metrics_format(), the same as `chanctl status --format prometheus`. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/channel.h"
#include "chand/log.h"
#include "chand/metrics.h"

/* Largest request head we read (request line and headers). */
#define METRICS_REQ_MAX 8192
/* Time a client gets to send its request and to take the reply. */
#define METRICS_IO_MS 5000

static struct {
	bool started;
	pthread_t thread;
	int lfd, stopfd;
	struct agent *a;
} mx = { .lfd = -1, .stopfd = -1 };

int metrics_listen(const struct chand_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (!cfg->metrics_enabled)
		return -2;
	memset(&ss, 0, sizeof(ss));
	if (strchr(cfg->metrics_address, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)cfg->metrics_port);
		if (inet_pton(AF_INET6, cfg->metrics_address, &s6->sin6_addr) != 1)
			goto bad;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)cfg->metrics_port);
		if (inet_pton(AF_INET, cfg->metrics_address, &s4->sin_addr) != 1)
			goto bad;
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "metrics: socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
		snprintf(err, errlen, "cannot listen for metrics on %s port %d: %s",
		         cfg->metrics_address, cfg->metrics_port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
bad:
	snprintf(err, errlen, "bad metrics address %s", cfg->metrics_address);
	return -1;
}

/* Waits for fd to be ready for events until deadline (monotonic ms).
 * 1 ready, 0 timeout or stopping, -1 error. */
static int mx_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - time_mono_ms();
		struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = mx.stopfd, .events = POLLIN } };
		if (left <= 0)
			return 0;
		int n = poll(p, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (p[1].revents & POLLIN)
			return 0;
		if (p[0].revents)
			return 1;
	}
}

static void mx_send(int fd, const char *data, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
		if (w > 0) {
			data += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    mx_wait(fd, POLLOUT, deadline) == 1)
			continue;
		return;
	}
}

static void mx_reply(int fd, const char *status, const char *extra, const char *body,
                     size_t blen, bool head_only, int64_t deadline)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
	                 strncmp(status, "200", 3) == 0 ? "text/plain; version=0.0.4; charset=utf-8"
	                                                : "text/plain; charset=utf-8",
	                 blen, extra != NULL ? extra : "");

	if (n < 0 || (size_t)n >= sizeof(hdr))
		return;
	mx_send(fd, hdr, (size_t)n, deadline);
	if (!head_only)
		mx_send(fd, body, blen, deadline);
}

static void mx_error(int fd, const char *status, const char *extra, bool head_only,
                     int64_t deadline)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);

	mx_reply(fd, status, extra, body, (size_t)n, head_only, deadline);
}

/* The exposition text of the agent now (malloc'd), or NULL. */
static char *mx_render(struct store **st)
{
	struct chan_result r = { 0 };
	struct queue_def *qs = NULL;
	size_t nq = 0;
	json_t *status = NULL, *queues;
	char err[256];
	char *text = NULL;

	if (*st == NULL && agent_store_open(mx.a, st, err, sizeof(err)) != STORE_OK) {
		log_warn(code_str(CHD_DB_ERROR), "metrics: cannot open the database: %s", err);
		*st = NULL;
		return NULL;
	}
	if (chan_op_status(*st, "*", &status, &r) != 0) {
		log_warn(code_str(r.code), "metrics: status failed: %s", r.text);
		return NULL;
	}
	if (store_queue_list(*st, "*", &qs, &nq) != STORE_OK) {
		log_warn(code_str(CHD_DB_ERROR), "metrics: cannot list queues: %s", store_errmsg(*st));
		json_decref(status);
		return NULL;
	}
	queues = json_array();
	for (size_t i = 0; i < nq && queues != NULL; i++) {
		json_t *o = json_object();
		bool local = qs[i].type == QTYPE_LOCAL;
		json_object_set_new(o, "name", json_string(qs[i].name));
		json_object_set_new(o, "type", json_string(local ? "qlocal" : "qremote"));
		json_object_set_new(o, "curdepth", local ? json_integer(qs[i].curdepth) : json_null());
		json_array_append_new(queues, o);
	}
	free(qs);
	struct metrics_agent ag = { .qmgr = mx.a->cfg->qmgr, .version = CHAND_VERSION,
	                            .start_ms = mx.a->start_ms };
	text = metrics_format(status, queues, &ag);
	json_decref(status);
	json_decref(queues);
	return text;
}

/* Reads one request head and answers it. */
static void mx_serve(int fd, struct store **st)
{
	int64_t deadline = time_mono_ms() + METRICS_IO_MS;
	char req[METRICS_REQ_MAX + 1];
	size_t len = 0;
	char *end = NULL;

	while (end == NULL) {
		if (len == METRICS_REQ_MAX) {
			mx_error(fd, "431 Request Header Fields Too Large", NULL, false, deadline);
			return;
		}
		ssize_t r = recv(fd, req + len, METRICS_REQ_MAX - len, 0);
		if (r == 0)
			return;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) && mx_wait(fd, POLLIN, deadline) == 1)
				continue;
			return;
		}
		len += (size_t)r;
		req[len] = '\0';
		if (memchr(req, '\0', len) != NULL) {
			mx_error(fd, "400 Bad Request", NULL, false, deadline);
			return;
		}
		end = strstr(req, "\r\n\r\n");
		if (end == NULL)
			end = strstr(req, "\n\n");
	}

	/* Request line: METHOD SP TARGET SP HTTP/1.x */
	char method[16], target[1024], version[16];
	char *eol = strpbrk(req, "\r\n");
	*eol = '\0';
	if (sscanf(req, "%15s %1023s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		mx_error(fd, "400 Bad Request", NULL, false, deadline);
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head) {
		mx_error(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false, deadline);
		return;
	}
	char *q = strchr(target, '?');
	if (q != NULL)
		*q = '\0';
	if (strcmp(target, "/metrics") != 0) {
		mx_error(fd, "404 Not Found", NULL, head, deadline);
		return;
	}
	char *text = mx_render(st);
	if (text == NULL) {
		mx_error(fd, "500 Internal Server Error", NULL, head, deadline);
		return;
	}
	mx_reply(fd, "200 OK", NULL, text, strlen(text), head, deadline);
	free(text);
}

static void *mx_thread(void *arg)
{
	struct store *st = NULL;

	(void)arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = mx.lfd, .events = POLLIN },
		                       { .fd = mx.stopfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error(code_str(CHD_SYS_RESOURCE), "metrics: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(mx.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* Out of descriptors: back off instead of spinning. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				poll(&p[1], 1, 1000);
			continue;
		}
		mx_serve(fd, &st);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	if (st != NULL)
		store_close(st);
	return NULL;
}

int metrics_start(struct agent *a, int fd)
{
	mx.a = a;
	mx.lfd = fd;
	mx.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mx.stopfd < 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "metrics: eventfd: %s", strerror(errno));
		return -1;
	}
	int rc = pthread_create(&mx.thread, NULL, mx_thread, NULL);
	if (rc != 0) {
		log_error(code_str(CHD_SYS_RESOURCE), "metrics: cannot start its thread: %s", strerror(rc));
		return -1;
	}
	mx.started = true;
	log_info(code_str(CHD_METRICS_START), "metrics=%s%s%s:%d serving GET /metrics",
	         strchr(a->cfg->metrics_address, ':') ? "[" : "", a->cfg->metrics_address,
	         strchr(a->cfg->metrics_address, ':') ? "]" : "", a->cfg->metrics_port);
	return 0;
}

void metrics_stop(void)
{
	if (mx.started) {
		uint64_t one = 1;
		if (write(mx.stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			log_warn(code_str(CHD_SYS_RESOURCE), "metrics: cannot wake its thread: %s", strerror(errno));
		pthread_join(mx.thread, NULL);
		mx.started = false;
	}
	if (mx.lfd >= 0)
		close(mx.lfd);
	if (mx.stopfd >= 0)
		close(mx.stopfd);
	mx.lfd = mx.stopfd = -1;
}

/* ---- the "agent info" admin command ---- */

static int cmd_agent_info(struct admin_conn *c, json_t *req)
{
	struct agent *a = admin_agent(c);

	(void)req;
	return admin_reply_ok(c, json_pack("{s:s,s:s,s:I,s:I}", "qmgr", a->cfg->qmgr, "version",
	                                   CHAND_VERSION, "pid", (json_int_t)getpid(),
	                                   "start_time_ms", (json_int_t)a->start_ms));
}

const struct admin_cmd metrics_admin_cmds[] = {
	{ "agent info", cmd_agent_info },
	{ NULL, NULL },
};
