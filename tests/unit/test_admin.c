/* The admin protocol codec: frame headers and the bounds on both
 * lengths, JSON payloads (jansson, its errors with their position),
 * attachments and their "blobs", request envelopes (version), buffered
 * I/O over a socketpair. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/admin.h"

TestSuite(admin, .timeout = 30);

Test(admin, header_round_trip_and_bounds)
{
	uint8_t h[ADMIN_HDR_LEN];
	uint32_t jl, al;
	char err[200];

	admin_hdr_encode(0x01020304, 0x0a0b0c0d, h);
	cr_expect_eq(h[0], 1);
	cr_expect_eq(h[3], 4);
	cr_expect_eq(h[4], 0x0a);
	cr_expect_eq(h[7], 0x0d);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), -1, "both too long");

	admin_hdr_encode(ADMIN_JSON_MAX, ADMIN_FRAME_MAX, h);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(jl, ADMIN_JSON_MAX);
	cr_expect_eq(al, ADMIN_FRAME_MAX);
	admin_hdr_encode(1, 0, h);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(jl, 1);
	cr_expect_eq(al, 0);

	admin_hdr_encode(ADMIN_JSON_MAX + 1, 0, h);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), -1);
	cr_expect(strstr(err, "bad frame length 16777217") != NULL, "%s", err);
	admin_hdr_encode(0, 0, h);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), -1);
	cr_expect(strstr(err, "bad frame length 0") != NULL, "%s", err);
	admin_hdr_encode(2, ADMIN_FRAME_MAX + 1, h);
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), -1);
	cr_expect(strstr(err, "bad attachment length 67108865") != NULL, "%s", err);
	memset(h, 0xff, sizeof(h));
	cr_expect_eq(admin_hdr_decode(h, &jl, &al, err, sizeof(err)), -1);
}

Test(admin, frame_encode_parse_without_attachment)
{
	json_t *o = json_pack("{s:i,s:s,s:[i,i]}", "v", 1, "cmd", "display queue", "x", 1, 2);
	size_t len, att_len;
	const uint8_t *att;
	uint8_t *f = admin_frame_encode(o, &len);
	uint32_t jl, al;
	char err[200];

	cr_assert_not_null(f);
	cr_assert_eq(admin_hdr_decode(f, &jl, &al, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(jl + ADMIN_HDR_LEN, len);
	cr_expect_eq(al, 0);
	/* Compact: no spaces. */
	cr_expect_eq(memcmp(f + ADMIN_HDR_LEN, "{\"v\":1,\"cmd\":\"display queue\",\"x\":[1,2]}", jl), 0,
	             "%.*s", (int)jl, f + ADMIN_HDR_LEN);
	json_t *back = admin_frame_parse(f, len, &att, &att_len, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_expect(json_equal(o, back));
	cr_expect_null(att);
	cr_expect_eq(att_len, 0);
	json_decref(back);
	json_decref(o);
	free(f);
}

Test(admin, frame_with_attachment_round_trip)
{
	static const uint8_t body[] = "abc\0\xff\n" "12345";   /* 3 + 0 + 3 + 5 bytes, binary */
	json_t *o = json_pack("{s:s,s:[i,i,i,i]}", "cmd", "put", "blobs", 3, 0, 3, 5);
	size_t len, att_len;
	const uint8_t *att;
	char err[200];
	uint8_t *f = admin_frame_encode_blob(o, body, 11, &len);

	cr_assert_not_null(f);
	json_t *back = admin_frame_parse(f, len, &att, &att_len, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_expect(json_equal(o, back));
	cr_assert_eq(att_len, 11);
	cr_expect_eq(att, f + len - 11, "the attachment follows the JSON");
	cr_expect_eq(memcmp(att, body, 11), 0);
	json_decref(back);

	/* Every truncation is refused with a reason, and so is a byte more. */
	for (size_t cut = 0; cut < len; cut++) {
		json_t *j = admin_frame_parse(f, cut, &att, &att_len, err, sizeof(err));
		cr_expect_null(j, "accepted a frame cut to %zu of %zu bytes", cut, len);
		json_decref(j);
		cr_expect(strstr(err, "truncated frame") != NULL, "cut %zu: %s", cut, err);
	}
	uint8_t *more = malloc(len + 1);
	memcpy(more, f, len);
	more[len] = 'x';
	cr_expect_null(admin_frame_parse(more, len + 1, &att, &att_len, err, sizeof(err)));
	cr_expect_str_eq(err, "1 bytes after the end of the frame");
	free(more);
	free(f);

	/* The encoder refuses "blobs" that do not match the attachment. */
	cr_expect_null(admin_frame_encode_blob(o, body, 10, &len));
	cr_expect_null(admin_frame_encode_blob(o, body, 12, &len));
	json_decref(o);
	o = json_pack("{s:s}", "cmd", "put");
	cr_expect_null(admin_frame_encode_blob(o, body, 3, &len), "attachment without blobs");
	json_decref(o);
}

Test(admin, blobs_out_of_range_are_refused_with_a_reason)
{
	char err[200];
	json_t *o;

	o = json_pack("{s:i}", "x", 1);
	cr_expect_eq(admin_blobs_check(o, 0, err, sizeof(err)), 0);
	cr_expect_eq(admin_blobs_check(o, 4, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "attachment of 4 bytes but no \"blobs\" to say what it holds");
	json_decref(o);

	o = json_pack("{s:[]}", "blobs");
	cr_expect_eq(admin_blobs_check(o, 0, err, sizeof(err)), 0);
	cr_expect_eq(admin_blobs_check(o, 1, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "\"blobs\" cover 0 bytes of an attachment of 1");
	json_decref(o);

	o = json_pack("{s:[i,i]}", "blobs", 4, 6);
	cr_expect_eq(admin_blobs_check(o, 10, err, sizeof(err)), 0);
	cr_expect_eq(admin_blobs_check(o, 9, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "blobs[1] (6 bytes at offset 4) runs past the end of the attachment "
	                      "(9 bytes)");
	cr_expect_eq(admin_blobs_check(o, 11, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "\"blobs\" cover 10 bytes of an attachment of 11");
	json_decref(o);

	/* A huge length must not wrap the running offset around. */
	o = json_pack("{s:[i,I]}", "blobs", 4, (json_int_t)0x7fffffffffffffffLL);
	cr_expect_eq(admin_blobs_check(o, 10, err, sizeof(err)), -1);
	cr_expect(strstr(err, "blobs[1]") != NULL && strstr(err, "runs past") != NULL, "%s", err);
	json_decref(o);

	o = json_pack("{s:[i]}", "blobs", -1);
	cr_expect_eq(admin_blobs_check(o, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "blobs[0] must be an integer length >= 0");
	json_decref(o);
	o = json_pack("{s:[s]}", "blobs", "3");
	cr_expect_eq(admin_blobs_check(o, 3, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "blobs[0] must be an integer length >= 0");
	json_decref(o);
	o = json_pack("{s:i}", "blobs", 3);
	cr_expect_eq(admin_blobs_check(o, 3, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "\"blobs\" must be an array of lengths");
	json_decref(o);
}

/* Decodes text as a frame's JSON; returns the reason it was refused. */
static void expect_refused(const char *text, size_t len, const char *want)
{
	char err[300];
	json_t *j = admin_frame_decode((const uint8_t *)text, len, err, sizeof(err));

	cr_expect_null(j, "accepted: %.*s", (int)len, text);
	json_decref(j);
	cr_expect(strstr(err, want) != NULL, "%.*s -> %s (want %s)", (int)len, text, err, want);
}

Test(admin, json_errors_come_from_jansson_with_their_position)
{
	expect_refused("{\"a\":", 5, "invalid JSON at line 1, column 5 (byte 5): unexpected token");
	expect_refused("{\"a\":1,\"a\":2}", 13, "(byte 10): duplicate object key");
	expect_refused("{\"a\":\"\xff\"}", 9, "(byte 6): unable to decode byte 0xff");
	expect_refused("{\"a\":1} x", 9, "(byte 9): end of file expected");
	expect_refused("{\"a\":\"\\u0000\"}", 14, "invalid JSON at line 1");
	expect_refused("{\"a\":99999999999999999999}", 26, "too big integer");
	expect_refused("{\n\"a\":\n tru}", 12, "invalid JSON at line 3, column 4 (byte 11)");
	expect_refused("", 0, "invalid JSON at line 1, column 0 (byte 0)");
	expect_refused("[1,2]", 5, "frame is not a JSON object");
	expect_refused("\"s\"", 3, "invalid JSON");
}

struct deep {
	char *text;
	size_t len;
	json_t *got;
	char err[300];
};

static void *parse_deep(void *arg)
{
	struct deep *d = arg;

	d->got = admin_frame_decode((const uint8_t *)d->text, d->len, d->err, sizeof(d->err));
	return NULL;
}

/* Parses depth nested objects on a thread with an admin connection's
 * stack. */
static void nest(struct deep *d, int depth)
{
	pthread_attr_t attr;
	pthread_t t;

	d->text = malloc((size_t)depth * 6 + 2);
	d->len = 0;
	for (int i = 0; i < depth; i++) {
		memcpy(d->text + d->len, "{\"a\":", 5);
		d->len += 5;
	}
	d->text[d->len++] = '1';
	memset(d->text + d->len, '}', (size_t)depth);
	d->len += (size_t)depth;
	cr_assert_eq(pthread_attr_init(&attr), 0);
	cr_assert_eq(pthread_attr_setstacksize(&attr, ADMIN_THREAD_STACK), 0);
	cr_assert_eq(pthread_create(&t, &attr, parse_deep, d), 0);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	free(d->text);
}

Test(admin, deep_nesting_fits_a_connection_thread_or_is_refused)
{
	struct deep d;

	/* jansson's own limit (2048 levels) is reached before the stack of
	 * an admin connection thread runs out. */
	nest(&d, 2040);
	cr_expect_not_null(d.got, "%s", d.err);
	json_decref(d.got);
	nest(&d, 100000);
	cr_expect_null(d.got);
	cr_expect(strstr(d.err, "maximum parsing depth") != NULL, "%s", d.err);
}

Test(admin, request_envelope_and_version)
{
	const char *cmd;
	enum chd_code_id code;
	char err[200];
	json_t *r = admin_request_new("get");

	cr_expect_eq(admin_request_check(r, &cmd, &code, err, sizeof(err)), 0);
	cr_expect_str_eq(cmd, "get");
	json_decref(r);

	r = json_pack("{s:i,s:s}", "v", ADMIN_PROTOCOL_VERSION + 1, "cmd", "get");
	cr_expect_eq(admin_request_check(r, &cmd, &code, err, sizeof(err)), -1);
	cr_expect_eq(code, CHD_ADM_VERSION);
	char want[200];
	snprintf(want, sizeof(want), "incompatible chanctl (protocol %d) and chand (protocol %d)",
	         ADMIN_PROTOCOL_VERSION + 1, ADMIN_PROTOCOL_VERSION);
	cr_expect_str_eq(err, want);
	json_decref(r);

	r = json_pack("{s:s}", "cmd", "get");
	cr_expect_eq(admin_request_check(r, &cmd, &code, err, sizeof(err)), -1);
	cr_expect_eq(code, CHD_ADM_BAD_REQUEST);
	json_decref(r);

	r = json_pack("{s:i,s:i}", "v", ADMIN_PROTOCOL_VERSION, "cmd", 3);
	cr_expect_eq(admin_request_check(r, &cmd, &code, err, sizeof(err)), -1);
	cr_expect_eq(code, CHD_ADM_BAD_REQUEST);
	json_decref(r);

	r = json_pack("{s:s,s:s}", "v", "1", "cmd", "get");
	cr_expect_eq(admin_request_check(r, &cmd, &code, err, sizeof(err)), -1);
	cr_expect_eq(code, CHD_ADM_BAD_REQUEST);
	json_decref(r);
}

static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

Test(admin, io_frames_with_and_without_attachments_then_eof)
{
	int sv[2];
	struct admin_io w, r;
	json_t *got;
	uint8_t *att;
	size_t att_len;
	char err[200], body[16];

	pair(sv);
	admin_io_init(&w, sv[0]);
	admin_io_init(&r, sv[1]);
	for (int i = 0; i < 4; i++) {
		/* Odd frames carry a body "body<i>". */
		json_t *o = json_pack("{s:i}", "n", i);
		snprintf(body, sizeof(body), "body%d", i);
		if (i % 2) {
			json_object_set_new(o, "blobs", json_pack("[i]", (int)strlen(body)));
			cr_assert_eq(admin_io_queue_blob(&w, o, (const uint8_t *)body, strlen(body)), 0);
		} else {
			cr_assert_eq(admin_io_queue(&w, o), 0);
		}
		json_decref(o);
	}
	cr_assert_eq(admin_io_flush(&w), 0);
	close(sv[0]);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
		             ADMIN_IO_OK, "%s", err);
		cr_expect_eq(json_integer_value(json_object_get(got, "n")), i);
		snprintf(body, sizeof(body), "body%d", i);
		if (i % 2) {
			cr_assert_eq(att_len, strlen(body));
			cr_expect_eq(memcmp(att, body, att_len), 0);
		} else {
			cr_expect_eq(att_len, 0);
			cr_expect_null(att);
		}
		free(att);
		json_decref(got);
	}
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_EOF);
	admin_io_free(&w);
	admin_io_free(&r);
	close(sv[1]);
}

Test(admin, io_json_only_reader_refuses_an_attachment)
{
	int sv[2];
	struct admin_io w, r;
	json_t *got, *o = json_pack("{s:[i]}", "blobs", 3);
	char err[200];

	pair(sv);
	admin_io_init(&w, sv[0]);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(admin_io_write_blob(&w, o, (const uint8_t *)"abc", 3), 0);
	cr_expect_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_BAD);
	cr_expect_str_eq(err, "unexpected attachment of 3 bytes");
	cr_expect_null(got);
	/* And a writer cannot send an attachment its "blobs" do not describe. */
	cr_expect_eq(admin_io_queue_blob(&w, o, (const uint8_t *)"abcd", 4), -1);
	json_decref(o);
	admin_io_free(&w);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}

Test(admin, io_rejects_oversized_lengths_without_waiting)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	uint8_t *att;
	size_t att_len;
	char err[200];

	/* JSON length 4 GiB - 1; nothing follows. The reader must refuse at
	 * once (not allocate, not wait for the body). */
	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(write(sv[0], "\xff\xff\xff\xff\0\0\0\0", 8), 8);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_BAD);
	cr_expect(strstr(err, "bad frame length 4294967295") != NULL, "%s", err);
	cr_expect_null(got);
	cr_expect_null(att);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);

	/* A sane JSON length, an attachment of 4 GiB - 1. */
	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(write(sv[0], "\0\0\0\x02\xff\xff\xff\xff{}", 10), 10);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_BAD);
	cr_expect(strstr(err, "bad attachment length 4294967295") != NULL, "%s", err);
	cr_expect_null(got);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}

Test(admin, io_bad_blobs_garbage_json_and_truncated_frames)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	uint8_t *att;
	size_t att_len;
	char err[200];

	pair(sv);
	admin_io_init(&r, sv[1]);
	/* Garbage JSON: jansson's reason. */
	cr_assert_eq(write(sv[0], "\0\0\0\x05\0\0\0\0hello", 13), 13);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_BAD);
	cr_expect(strncmp(err, "invalid JSON at line 1, column ", 31) == 0, "%s", err);
	/* "blobs" that run past the attachment: refused before it is read. */
	cr_assert_eq(write(sv[0], "\0\0\0\x0d\0\0\0\x02{\"blobs\":[3]}xy", 23), 23);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_BAD);
	cr_expect_str_eq(err, "blobs[0] (3 bytes at offset 0) runs past the end of the attachment "
	                      "(2 bytes)");
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);

	/* A header announcing 10 bytes of JSON, 3 sent, then the writer closes. */
	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(write(sv[0], "\0\0\0\x0a\0\0\0\0{\"a", 11), 11);
	close(sv[0]);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_ERR);
	cr_expect_str_eq(err, "connection closed inside a frame");
	admin_io_free(&r);
	close(sv[1]);

	/* Whole JSON, attachment cut short. */
	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(write(sv[0], "\0\0\0\x0d\0\0\0\x05{\"blobs\":[5]}abc", 24), 24);
	close(sv[0]);
	cr_expect_eq(admin_io_read_blob(&r, &got, &att, &att_len, 1000, err, sizeof(err)),
	             ADMIN_IO_ERR);
	cr_expect_str_eq(err, "connection closed inside a frame");
	cr_expect_null(got);
	cr_expect_null(att);
	admin_io_free(&r);
	close(sv[1]);
}

Test(admin, io_stalled_frame_times_out)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	char err[200];

	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_expect_eq(admin_io_read(&r, &got, 100, err, sizeof(err)), ADMIN_IO_TIMEOUT);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}

struct big_writer {
	int fd;
	json_t *obj;
	const uint8_t *att;
	size_t att_len;
	int rc;
};

static void *write_big(void *arg)
{
	struct big_writer *b = arg;
	struct admin_io w;

	admin_io_init(&w, b->fd);
	b->rc = admin_io_write_blob(&w, b->obj, b->att, b->att_len);
	admin_io_free(&w);
	return NULL;
}

Test(admin, io_large_json_and_large_attachment)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	uint8_t *att;
	size_t att_len;
	char err[200];
	size_t n = 5 * 1024 * 1024, an = 40 * 1024 * 1024 + 7;
	char *s = malloc(n + 1);
	uint8_t *body = malloc(an);
	pthread_t t;

	memset(s, 'x', n);
	s[n] = '\0';
	for (size_t i = 0; i < an; i++)
		body[i] = (uint8_t)(i * 7 + i / 4096);
	pair(sv);
	struct big_writer b = { sv[0], json_pack("{s:s,s:[i,i]}", "text", s, "blobs", 7, (int)(an - 7)),
		                    body, an, -9 };
	cr_assert_eq(pthread_create(&t, NULL, write_big, &b), 0);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(admin_io_read_blob(&r, &got, &att, &att_len, 5000, err, sizeof(err)),
	             ADMIN_IO_OK, "%s", err);
	pthread_join(t, NULL);
	cr_expect_eq(b.rc, 0);
	cr_expect_eq(json_string_length(json_object_get(got, "text")), n);
	cr_assert_eq(att_len, an);
	cr_expect_eq(memcmp(att, body, an), 0);
	free(att);
	json_decref(got);
	json_decref(b.obj);
	free(s);
	free(body);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}
