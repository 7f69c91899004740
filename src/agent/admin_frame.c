/* Admin protocol frames: the pure codec and buffered blocking I/O shared
 * by chand's admin server and chanctl.
 *
 * JSON is parsed and produced by jansson only.  What keeps this fast is
 * that the JSON stays small: message bodies never go through it, they
 * travel as raw bytes in the frame's attachment. */
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
 * so a long listing streams instead of accumulating; an attachment this
 * large is written straight from the caller's buffer. */
#define ADMIN_WBUF_HIGH (256 * 1024)
/* Read-ahead: small frames cost one syscall for many. */
#define ADMIN_READ_AHEAD 65536
/* How every frame's JSON is written (and duplicate keys are refused on
 * reading: a request must not mean two things). */
#define ADMIN_DUMP_FLAGS JSON_COMPACT
#define ADMIN_LOAD_FLAGS JSON_REJECT_DUPLICATES

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint32_t v, uint8_t *p)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void admin_hdr_encode(uint32_t json_len, uint32_t att_len, uint8_t out[ADMIN_HDR_LEN])
{
	put_be32(json_len, out);
	put_be32(att_len, out + 4);
}

int admin_hdr_decode(const uint8_t in[ADMIN_HDR_LEN], uint32_t *json_len, uint32_t *att_len,
                     char *err, size_t errlen)
{
	uint32_t j = be32(in), a = be32(in + 4);

	if (j == 0 || j > ADMIN_JSON_MAX) {
		snprintf(err, errlen, "bad frame length %u (JSON of 1 to %u bytes allowed)", (unsigned)j,
		         ADMIN_JSON_MAX);
		return -1;
	}
	if (a > ADMIN_FRAME_MAX) {
		snprintf(err, errlen, "bad attachment length %u (at most %u bytes allowed)",
		         (unsigned)a, ADMIN_FRAME_MAX);
		return -1;
	}
	*json_len = j;
	*att_len = a;
	return 0;
}

int admin_blobs_check(const json_t *obj, size_t att_len, char *err, size_t errlen)
{
	const json_t *blobs = json_object_get(obj, "blobs"), *v;
	size_t i, off = 0;

	if (blobs == NULL) {
		if (att_len == 0)
			return 0;
		snprintf(err, errlen, "attachment of %zu bytes but no \"blobs\" to say what it holds",
		         att_len);
		return -1;
	}
	if (!json_is_array(blobs)) {
		snprintf(err, errlen, "\"blobs\" must be an array of lengths");
		return -1;
	}
	json_array_foreach(blobs, i, v) {
		json_int_t len = json_integer_value(v);
		if (!json_is_integer(v) || len < 0) {
			snprintf(err, errlen, "blobs[%zu] must be an integer length >= 0", i);
			return -1;
		}
		if ((uint64_t)len > att_len - off) {
			snprintf(err, errlen, "blobs[%zu] (%lld bytes at offset %zu) runs past the end of "
			         "the attachment (%zu bytes)", i, (long long)len, off, att_len);
			return -1;
		}
		off += (size_t)len;
	}
	if (off != att_len) {
		snprintf(err, errlen, "\"blobs\" cover %zu bytes of an attachment of %zu", off, att_len);
		return -1;
	}
	return 0;
}

/* Writes the JSON text of obj at (*buf + off), growing *buf and *cap as
 * needed; *n = its length. 0, or -1 (allocation failure, dump failure,
 * or longer than ADMIN_JSON_MAX). */
static int dump_at(const json_t *obj, uint8_t **buf, size_t *cap, size_t off, size_t *n)
{
	size_t need;

	if (*cap < off + 256) {
		size_t nc = *cap ? *cap * 2 : ADMIN_READ_AHEAD;
		while (nc < off + 256)
			nc *= 2;
		uint8_t *b = realloc(*buf, nc);
		if (b == NULL)
			return -1;
		*buf = b;
		*cap = nc;
	}
	need = json_dumpb(obj, (char *)*buf + off, *cap - off, ADMIN_DUMP_FLAGS);
	if (need == 0 || need > ADMIN_JSON_MAX)
		return -1;
	if (need > *cap - off) {
		/* Too small: jansson said how much it needs; write again. */
		size_t nc = *cap;
		while (nc - off < need)
			nc *= 2;
		uint8_t *b = realloc(*buf, nc);
		if (b == NULL)
			return -1;
		*buf = b;
		*cap = nc;
		if (json_dumpb(obj, (char *)*buf + off, *cap - off, ADMIN_DUMP_FLAGS) != need)
			return -1;
	}
	*n = need;
	return 0;
}

uint8_t *admin_frame_encode_blob(const json_t *obj, const uint8_t *att, size_t att_len,
                                 size_t *len)
{
	uint8_t *buf = NULL;
	size_t cap = 0, n;
	char err[160];

	if (att_len > ADMIN_FRAME_MAX || admin_blobs_check(obj, att_len, err, sizeof(err)) != 0)
		return NULL;
	if (dump_at(obj, &buf, &cap, ADMIN_HDR_LEN, &n) != 0) {
		free(buf);
		return NULL;
	}
	if (att_len > 0) {
		uint8_t *b = realloc(buf, ADMIN_HDR_LEN + n + att_len);
		if (b == NULL) {
			free(buf);
			return NULL;
		}
		buf = b;
		memcpy(buf + ADMIN_HDR_LEN + n, att, att_len);
	}
	admin_hdr_encode((uint32_t)n, (uint32_t)att_len, buf);
	*len = ADMIN_HDR_LEN + n + att_len;
	return buf;
}

uint8_t *admin_frame_encode(const json_t *obj, size_t *len)
{
	return admin_frame_encode_blob(obj, NULL, 0, len);
}

json_t *admin_frame_decode(const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)payload, len, ADMIN_LOAD_FLAGS, &je);

	if (j == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d (byte %d): %s", je.line,
		         je.column, je.position, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		snprintf(err, errlen, "frame is not a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *admin_frame_parse(const uint8_t *frame, size_t len, const uint8_t **att,
                          size_t *att_len, char *err, size_t errlen)
{
	uint32_t jl, al;
	json_t *j;

	*att = NULL;
	*att_len = 0;
	if (len < ADMIN_HDR_LEN) {
		snprintf(err, errlen, "truncated frame: %zu bytes, the header alone is %d", len,
		         ADMIN_HDR_LEN);
		return NULL;
	}
	if (admin_hdr_decode(frame, &jl, &al, err, errlen) != 0)
		return NULL;
	if (len - ADMIN_HDR_LEN < (size_t)jl + al) {
		snprintf(err, errlen, "truncated frame: %zu bytes, its header announces %zu", len,
		         ADMIN_HDR_LEN + (size_t)jl + al);
		return NULL;
	}
	if (len - ADMIN_HDR_LEN > (size_t)jl + al) {
		snprintf(err, errlen, "%zu bytes after the end of the frame",
		         len - ADMIN_HDR_LEN - (size_t)jl - al);
		return NULL;
	}
	if ((j = admin_frame_decode(frame + ADMIN_HDR_LEN, jl, err, errlen)) == NULL)
		return NULL;
	if (admin_blobs_check(j, al, err, errlen) != 0) {
		json_decref(j);
		return NULL;
	}
	*att = al > 0 ? frame + ADMIN_HDR_LEN + jl : NULL;
	*att_len = al;
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
	if (dump_at(obj, &io->wbuf, &io->wcap, io->wlen + ADMIN_HDR_LEN, &n) != 0)
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
