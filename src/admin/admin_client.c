/* The client side of the admin protocol: connecting to the agent's
 * socket and one request/reply exchange.  chanctl wraps these with its
 * error reporting; nothing here prints or exits. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chand/admin_proto.h"
#include "chand/util.h"

int admin_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "admin socket path %s is too long", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		/* Nothing listening is the common case (agent stopped): say it
		 * plainly rather than as a socket error. */
		if (e == ENOENT || e == ECONNREFUSED || e == ENOTSOCK)
			snprintf(err, errlen, "no agent at %s", path);
		else
			snprintf(err, errlen, "cannot connect to the agent at %s: %s", path, strerror(e));
		return -1;
	}
	return fd;
}

int admin_call(struct admin_io *io, json_t *req, admin_rec_fn on_rec, void *arg,
               json_t **final, char *err, size_t errlen)
{
	int rc;

	if (final != NULL)
		*final = NULL;
	rc = req != NULL ? admin_io_write(io, req) : -1;
	if (rc != 0)
		snprintf(err, errlen, "%s", req != NULL ? strerror(errno) : "out of memory");
	json_decref(req);
	if (rc != 0)
		return ADMIN_CALL_LOST;
	for (;;) {
		json_t *f, *rec, *ok;

		rc = admin_io_read(io, &f, -1, err, errlen);
		if (rc != ADMIN_IO_OK) {
			if (rc == ADMIN_IO_EOF)
				snprintf(err, errlen, "the agent closed the connection");
			return ADMIN_CALL_LOST;
		}
		if ((rec = json_object_get(f, "rec")) != NULL) {
			int stop = on_rec != NULL ? on_rec(arg, rec) : 0;
			json_decref(f);
			if (stop)
				return ADMIN_CALL_STOPPED;
			continue;
		}
		ok = json_object_get(f, "ok");
		if (!json_is_boolean(ok)) {
			json_decref(f);
			snprintf(err, errlen, "unexpected reply from the agent");
			return ADMIN_CALL_BAD;
		}
		rc = json_is_true(ok) ? ADMIN_CALL_OK : ADMIN_CALL_REFUSED;
		if (final != NULL)
			*final = f;
		else
			json_decref(f);
		return rc;
	}
}
