/* The admin protocol codec: frame headers and their bounds, JSON
 * payloads, request envelopes (version), buffered I/O over a socketpair. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chand/admin.h"

TestSuite(admin, .timeout = 20);

Test(admin, header_round_trip_and_bounds)
{
	uint8_t h[4];
	uint32_t len;

	admin_hdr_encode(0x01020304, h);
	cr_expect_eq(h[0], 1);
	cr_expect_eq(h[3], 4);
	cr_expect_eq(admin_hdr_decode(h, &len), 0);
	cr_expect_eq(len, 0x01020304);

	admin_hdr_encode(ADMIN_FRAME_MAX, h);
	cr_expect_eq(admin_hdr_decode(h, &len), 0);
	cr_expect_eq(len, ADMIN_FRAME_MAX);

	admin_hdr_encode(ADMIN_FRAME_MAX + 1, h);
	cr_expect_eq(admin_hdr_decode(h, &len), -1);
	admin_hdr_encode(0, h);
	cr_expect_eq(admin_hdr_decode(h, &len), -1);
	memset(h, 0xff, 4);
	cr_expect_eq(admin_hdr_decode(h, &len), -1);
}

Test(admin, frame_encode_decode)
{
	json_t *o = json_pack("{s:i,s:s,s:[i,i]}", "v", 1, "cmd", "display queue", "x", 1, 2);
	size_t len;
	uint8_t *f = admin_frame_encode(o, &len);
	uint32_t plen;
	char err[200];

	cr_assert_not_null(f);
	cr_assert_eq(admin_hdr_decode(f, &plen), 0);
	cr_expect_eq(plen + 4, len);
	json_t *back = admin_frame_decode(f + 4, plen, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_expect(json_equal(o, back));
	json_decref(back);
	json_decref(o);
	free(f);
}

Test(admin, decode_rejects_garbage)
{
	char err[200];

	cr_expect_null(admin_frame_decode((const uint8_t *)"{\"a\":", 5, err, sizeof(err)));
	cr_expect(strstr(err, "invalid JSON") != NULL, "%s", err);
	cr_expect_null(admin_frame_decode((const uint8_t *)"[1,2]", 5, err, sizeof(err)));
	cr_expect_str_eq(err, "frame is not a JSON object");
	cr_expect_null(admin_frame_decode((const uint8_t *)"{\"a\":1,\"a\":2}", 13, err, sizeof(err)));
	cr_expect_null(admin_frame_decode((const uint8_t *)"\xff\xfe", 2, err, sizeof(err)));
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

Test(admin, io_several_frames_then_eof)
{
	int sv[2];
	struct admin_io w, r;
	json_t *got;
	char err[200];

	pair(sv);
	admin_io_init(&w, sv[0]);
	admin_io_init(&r, sv[1]);
	for (int i = 0; i < 3; i++) {
		json_t *o = json_pack("{s:i}", "n", i);
		cr_assert_eq(admin_io_queue(&w, o), 0);
		json_decref(o);
	}
	cr_assert_eq(admin_io_flush(&w), 0);
	close(sv[0]);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_OK, "%s", err);
		cr_expect_eq(json_integer_value(json_object_get(got, "n")), i);
		json_decref(got);
	}
	cr_expect_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_EOF);
	admin_io_free(&w);
	admin_io_free(&r);
	close(sv[1]);
}

Test(admin, io_rejects_oversized_length_without_waiting)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	char err[200];

	pair(sv);
	admin_io_init(&r, sv[1]);
	/* Claims 4 GiB - 1; nothing follows. The reader must refuse at once
	 * (not allocate, not wait for the body). */
	cr_assert_eq(write(sv[0], "\xff\xff\xff\xff", 4), 4);
	cr_expect_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_BAD);
	cr_expect(strstr(err, "bad frame length 4294967295") != NULL, "%s", err);
	cr_expect_null(got);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}

Test(admin, io_garbage_json_and_truncated_frame)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	char err[200];

	pair(sv);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(write(sv[0], "\0\0\0\x05hello", 9), 9);
	cr_expect_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_BAD);
	/* A header announcing 10 bytes, 3 sent, then the writer closes. */
	cr_assert_eq(write(sv[0], "\0\0\0\x0a{\"a", 7), 7);
	close(sv[0]);
	cr_expect_eq(admin_io_read(&r, &got, 1000, err, sizeof(err)), ADMIN_IO_ERR);
	cr_expect_str_eq(err, "connection closed inside a frame");
	admin_io_free(&r);
	close(sv[1]);
}

Test(admin, io_idle_timeout)
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
};

static void *write_big(void *arg)
{
	struct big_writer *b = arg;
	struct admin_io w;

	admin_io_init(&w, b->fd);
	admin_io_write(&w, b->obj);
	admin_io_free(&w);
	return NULL;
}

Test(admin, io_large_frame)
{
	int sv[2];
	struct admin_io r;
	json_t *got;
	char err[200];
	size_t n = 5 * 1024 * 1024;
	char *s = malloc(n + 1);
	pthread_t t;

	memset(s, 'x', n);
	s[n] = '\0';
	pair(sv);
	struct big_writer b = { sv[0], json_pack("{s:s}", "body", s) };
	cr_assert_eq(pthread_create(&t, NULL, write_big, &b), 0);
	admin_io_init(&r, sv[1]);
	cr_assert_eq(admin_io_read(&r, &got, 5000, err, sizeof(err)), ADMIN_IO_OK, "%s", err);
	cr_expect_eq(json_string_length(json_object_get(got, "body")), n);
	json_decref(got);
	pthread_join(t, NULL);
	json_decref(b.obj);
	free(s);
	admin_io_free(&r);
	close(sv[0]);
	close(sv[1]);
}
