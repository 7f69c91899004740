/* Buffered frame I/O on a blocking stream socket, the same at both ends
 * of the admin socket (chand's connection threads and chanctl). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin_int.h"
#include "chand/admin_proto.h"
#include "chand/util.h"

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
	size_t cap = io->rcap ? io->rcap : ADMIN_READ_AHEAD;
	while (cap - io->rend < want)
		cap *= 2;
	uint8_t *b = realloc(io->rbuf, cap);
	if (b == NULL)
		return -1;
	io->rbuf = b;
	io->rcap = cap;
	return 0;
}

/* One recv into buf (up to len bytes) by deadline (-1: none). Returns
 * the byte count (0 at end of stream) or a negative enum admin_io_rc. */
static ssize_t read_some(int fd, uint8_t *buf, size_t len, int64_t deadline, char *err,
                         size_t errlen)
{
	for (;;) {
		if (deadline >= 0) {
			int64_t left = deadline - time_mono_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
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
		ssize_t r = recv(fd, buf, len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			return ADMIN_IO_ERR;
		}
		return r;
	}
}

/* Reads until at least need bytes are buffered. */
static int fill(struct admin_io *io, size_t need, int timeout_ms, char *err, size_t errlen,
                bool in_frame)
{
	int64_t deadline = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;

	while (io->rend - io->rstart < need) {
		size_t want = need - (io->rend - io->rstart);
		if (rbuf_reserve(io, want < ADMIN_READ_AHEAD ? ADMIN_READ_AHEAD : want) != 0) {
			snprintf(err, errlen, "out of memory");
			return ADMIN_IO_ERR;
		}
		ssize_t r = read_some(io->fd, io->rbuf + io->rend, io->rcap - io->rend, deadline, err,
		                      errlen);
		if (r < 0)
			return (int)r;
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

/* The attachment of the frame being read: what the read-ahead already
 * holds, then the rest straight from the socket into its own buffer (no
 * second copy of a large body). */
static int read_att(struct admin_io *io, uint8_t **att, size_t len, char *err, size_t errlen)
{
	int64_t deadline = time_mono_ms() + ADMIN_STALL_MS;
	size_t have = io->rend - io->rstart, got;
	uint8_t *buf = malloc(len);

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory for an attachment of %zu bytes", len);
		return ADMIN_IO_ERR;
	}
	got = have < len ? have : len;
	memcpy(buf, io->rbuf + io->rstart, got);
	io->rstart += got;
	while (got < len) {
		ssize_t r = read_some(io->fd, buf + got, len - got, deadline, err, errlen);
		if (r <= 0) {
			if (r == 0)
				snprintf(err, errlen, "connection closed inside a frame");
			free(buf);
			return r == 0 ? ADMIN_IO_ERR : (int)r;
		}
		got += (size_t)r;
	}
	*att = buf;
	return ADMIN_IO_OK;
}

int admin_io_read_blob(struct admin_io *io, json_t **out, uint8_t **att, size_t *att_len,
                       int idle_ms, char *err, size_t errlen)
{
	uint32_t jl, al;
	int rc;

	*out = NULL;
	if (att != NULL) {
		*att = NULL;
		*att_len = 0;
	}
	rc = fill(io, 1, idle_ms, err, errlen, false);
	if (rc != ADMIN_IO_OK)
		return rc;
	rc = fill(io, ADMIN_HDR_LEN, ADMIN_STALL_MS, err, errlen, true);
	if (rc != ADMIN_IO_OK)
		return rc;
	/* Both lengths are bounded before anything is allocated for them. */
	if (admin_hdr_decode(io->rbuf + io->rstart, &jl, &al, err, errlen) != 0)
		return ADMIN_IO_BAD;
	if (al > 0 && att == NULL) {
		snprintf(err, errlen, "unexpected attachment of %u bytes", (unsigned)al);
		return ADMIN_IO_BAD;
	}
	rc = fill(io, ADMIN_HDR_LEN + (size_t)jl, ADMIN_STALL_MS, err, errlen, true);
	if (rc != ADMIN_IO_OK)
		return rc;
	json_t *j = admin_frame_decode(io->rbuf + io->rstart + ADMIN_HDR_LEN, jl, err, errlen);
	io->rstart += ADMIN_HDR_LEN + (size_t)jl;
	if (j == NULL)
		return ADMIN_IO_BAD;
	if (admin_blobs_check(j, al, err, errlen) != 0) {
		json_decref(j);
		return ADMIN_IO_BAD;
	}
	if (al > 0) {
		rc = read_att(io, att, al, err, errlen);
		if (rc != ADMIN_IO_OK) {
			json_decref(j);
			return rc;
		}
		*att_len = al;
	}
	*out = j;
	return ADMIN_IO_OK;
}

int admin_io_read(struct admin_io *io, json_t **out, int idle_ms, char *err, size_t errlen)
{
	return admin_io_read_blob(io, out, NULL, NULL, idle_ms, err, errlen);
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

int admin_io_flush(struct admin_io *io)
{
	int rc = send_all(io->fd, io->wbuf, io->wlen);

	io->wlen = 0;
	return rc;
}

int admin_io_queue_blob(struct admin_io *io, const json_t *obj, const uint8_t *att,
                        size_t att_len)
{
	char err[160];
	size_t n;

	if (att_len > ADMIN_FRAME_MAX || admin_blobs_check(obj, att_len, err, sizeof(err)) != 0)
		return -1;
	/* The JSON goes right after room for the header. */
	if (admin_dump_at(obj, &io->wbuf, &io->wcap, io->wlen + ADMIN_HDR_LEN, &n) != 0)
		return -1;
	admin_hdr_encode((uint32_t)n, (uint32_t)att_len, io->wbuf + io->wlen);
	io->wlen += ADMIN_HDR_LEN + n;
	if (att_len >= ADMIN_WBUF_HIGH) {
		if (admin_io_flush(io) != 0)
			return -1;
		return send_all(io->fd, att, att_len);
	}
	if (att_len > 0) {
		if (io->wcap - io->wlen < att_len) {
			size_t nc = io->wcap;
			while (nc - io->wlen < att_len)
				nc *= 2;
			uint8_t *b = realloc(io->wbuf, nc);
			if (b == NULL)
				return -1;
			io->wbuf = b;
			io->wcap = nc;
		}
		memcpy(io->wbuf + io->wlen, att, att_len);
		io->wlen += att_len;
	}
	if (io->wlen >= ADMIN_WBUF_HIGH)
		return admin_io_flush(io);
	return 0;
}

int admin_io_queue(struct admin_io *io, const json_t *obj)
{
	return admin_io_queue_blob(io, obj, NULL, 0);
}

int admin_io_write_blob(struct admin_io *io, const json_t *obj, const uint8_t *att,
                        size_t att_len)
{
	if (admin_io_queue_blob(io, obj, att, att_len) != 0)
		return -1;
	return admin_io_flush(io);
}

int admin_io_write(struct admin_io *io, const json_t *obj)
{
	return admin_io_write_blob(io, obj, NULL, 0);
}

bool admin_io_ready(struct admin_io *io)
{
	struct pollfd pfd = { .fd = io->fd, .events = POLLIN };

	if (io->rend > io->rstart)
		return true;
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}
