/* Admin protocol frames: the pure codec (no I/O), shared by chand's
 * admin server and chanctl (include/chand/admin_proto.h).
 *
 * JSON is parsed and produced by jansson only.  What keeps this fast is
 * that the JSON stays small: message bodies never go through it, they
 * travel as raw bytes in the frame's attachment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "chand/admin_proto.h"

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

int admin_dump_at(const json_t *obj, uint8_t **buf, size_t *cap, size_t off, size_t *n)
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
	if (admin_dump_at(obj, &buf, &cap, ADMIN_HDR_LEN, &n) != 0) {
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

