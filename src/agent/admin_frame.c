/* Admin protocol frames: the pure codec and buffered blocking I/O shared
 * by chand's admin server and chanctl. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/admin.h"
#include "chand/util.h"

/* Above this many buffered bytes a queued frame is written out at once,
 * so a long listing streams instead of accumulating. */
#define ADMIN_WBUF_HIGH (256 * 1024)

void admin_hdr_encode(uint32_t len, uint8_t out[4])
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

int admin_hdr_decode(const uint8_t in[4], uint32_t *len)
{
	uint32_t v = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];

	if (v == 0 || v > ADMIN_FRAME_MAX)
		return -1;
	*len = v;
	return 0;
}

uint8_t *admin_frame_encode(const json_t *obj, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n;

	if (admin_json_dump(obj, &buf, &n, &cap, 4) != 0 || n == 0 || n > ADMIN_FRAME_MAX) {
		free(buf);
		return NULL;
	}
	admin_hdr_encode((uint32_t)n, (uint8_t *)buf);
	*len = n + 4;
	return (uint8_t *)buf;
}

json_t *admin_frame_decode(const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	json_t *j = admin_json_load((const char *)payload, len, err, errlen);

	if (j == NULL)
		return NULL;
	if (!json_is_object(j)) {
		snprintf(err, errlen, "frame is not a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *admin_request_new(const char *cmd)
{
	return json_pack("{s:i,s:s}", "v", ADMIN_PROTOCOL_VERSION, "cmd", cmd);
}

int admin_request_check(const json_t *req, const char **cmd, enum chd_code_id *code,
                        char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, "v"), *c = json_object_get(req, "cmd");

	if (!json_is_integer(v)) {
		*code = CHD_ADM_BAD_REQUEST;
		snprintf(err, errlen, "request has no integer \"v\" (protocol version)");
		return -1;
	}
	if (json_integer_value(v) != ADMIN_PROTOCOL_VERSION) {
		*code = CHD_ADM_VERSION;
		snprintf(err, errlen, "incompatible chanctl (protocol %lld) and chand (protocol %d)",
		         (long long)json_integer_value(v), ADMIN_PROTOCOL_VERSION);
		return -1;
	}
	if (!json_is_string(c) || json_string_length(c) == 0) {
		*code = CHD_ADM_BAD_REQUEST;
		snprintf(err, errlen, "request has no string \"cmd\"");
		return -1;
	}
	*cmd = json_string_value(c);
	return 0;
}

void admin_io_init(struct admin_io *io, int fd)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
}

void admin_io_free(struct admin_io *io)
{
	free(io->rbuf);
	free(io->wbuf);
	io->rbuf = io->wbuf = NULL;
	io->rcap = io->rstart = io->rend = io->wlen = io->wcap = 0;
}

/* Makes room for want more bytes after rend. */
static int rbuf_reserve(struct admin_io *io, size_t want)
{
	if (io->rstart > 0 && io->rstart == io->rend)
		io->rstart = io->rend = 0;
	if (io->rcap - io->rend >= want)
		return 0;
	if (io->rstart > 0) {
		memmove(io->rbuf, io->rbuf + io->rstart, io->rend - io->rstart);
		io->rend -= io->rstart;
		io->rstart = 0;
		if (io->rcap - io->rend >= want)
			return 0;
	}
	size_t cap = io->rcap ? io->rcap : 65536;
	while (cap - io->rend < want)
		cap *= 2;
	uint8_t *b = realloc(io->rbuf, cap);
	if (b == NULL)
		return -1;
	io->rbuf = b;
	io->rcap = cap;
	return 0;
}

/* Reads until at least need bytes are buffered. */
static int fill(struct admin_io *io, size_t need, int timeout_ms, char *err, size_t errlen,
                bool in_frame)
{
	int64_t deadline = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;

	while (io->rend - io->rstart < need) {
		size_t want = need - (io->rend - io->rstart);
		/* Read ahead up to 64 KiB so small frames cost one syscall. */
		if (rbuf_reserve(io, want < 65536 ? 65536 : want) != 0) {
			snprintf(err, errlen, "out of memory");
			return ADMIN_IO_ERR;
		}
		if (deadline >= 0) {
			int64_t left = deadline - time_mono_ms();
			struct pollfd pfd = { .fd = io->fd, .events = POLLIN };
			if (left <= 0) {
				snprintf(err, errlen, "timed out waiting for data");
				return ADMIN_IO_TIMEOUT;
			}
			int pr = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
			if (pr < 0 && errno != EINTR) {
				snprintf(err, errlen, "poll: %s", strerror(errno));
				return ADMIN_IO_ERR;
			}
			if (pr <= 0)
				continue;
		}
		ssize_t r = recv(io->fd, io->rbuf + io->rend, io->rcap - io->rend, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			return ADMIN_IO_ERR;
		}
		if (r == 0) {
			if (!in_frame && io->rend == io->rstart) {
				snprintf(err, errlen, "connection closed");
				return ADMIN_IO_EOF;
			}
			snprintf(err, errlen, "connection closed inside a frame");
			return ADMIN_IO_ERR;
		}
		io->rend += (size_t)r;
	}
	return ADMIN_IO_OK;
}

int admin_io_read(struct admin_io *io, json_t **out, int idle_ms, char *err, size_t errlen)
{
	uint32_t len;
	int rc;

	*out = NULL;
	rc = fill(io, 1, idle_ms, err, errlen, false);
	if (rc != ADMIN_IO_OK)
		return rc;
	rc = fill(io, 4, ADMIN_STALL_MS, err, errlen, true);
	if (rc != ADMIN_IO_OK)
		return rc;
	if (admin_hdr_decode(io->rbuf + io->rstart, &len) != 0) {
		const uint8_t *h = io->rbuf + io->rstart;
		snprintf(err, errlen, "bad frame length %u (1 to %u allowed)",
		         (unsigned)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]),
		         ADMIN_FRAME_MAX);
		return ADMIN_IO_BAD;
	}
	rc = fill(io, 4 + (size_t)len, ADMIN_STALL_MS, err, errlen, true);
	if (rc != ADMIN_IO_OK)
		return rc;
	*out = admin_frame_decode(io->rbuf + io->rstart + 4, len, err, errlen);
	io->rstart += 4 + (size_t)len;
	return *out != NULL ? ADMIN_IO_OK : ADMIN_IO_BAD;
}

int admin_io_flush(struct admin_io *io)
{
	size_t off = 0;

	while (off < io->wlen) {
		ssize_t w = send(io->fd, io->wbuf + off, io->wlen - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			io->wlen = 0;
			return -1;
		}
		off += (size_t)w;
	}
	io->wlen = 0;
	return 0;
}

int admin_io_queue(struct admin_io *io, const json_t *obj)
{
	char *buf = (char *)io->wbuf;
	size_t cap = io->wcap, n;
	int rc;

	/* Room for the header first; the JSON goes right after it. */
	if (cap - io->wlen < 4 + 64) {
		size_t nc = cap ? cap * 2 : 65536;
		char *b = realloc(buf, nc);
		if (b == NULL)
			return -1;
		buf = b;
		cap = nc;
	}
	rc = admin_json_dump(obj, &buf, &n, &cap, io->wlen + 4);
	io->wbuf = (uint8_t *)buf;
	io->wcap = cap;
	if (rc != 0 || n == 0 || n > ADMIN_FRAME_MAX)
		return -1;
	admin_hdr_encode((uint32_t)n, io->wbuf + io->wlen);
	io->wlen += n + 4;
	if (io->wlen >= ADMIN_WBUF_HIGH)
		return admin_io_flush(io);
	return 0;
}

int admin_io_write(struct admin_io *io, const json_t *obj)
{
	if (admin_io_queue(io, obj) != 0)
		return -1;
	return admin_io_flush(io);
}

bool admin_io_ready(struct admin_io *io)
{
	struct pollfd pfd = { .fd = io->fd, .events = POLLIN };

	if (io->rend > io->rstart)
		return true;
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}
