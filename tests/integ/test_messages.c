/* Messages through chanctl put/get and a real agent: order, browse,
 * counts, waits, descriptors, binary bodies, refusals, transmission
 * headers, and no loss or duplication when the agent is killed during a
 * long put or get.  Also the wire itself, spoken raw: bodies as frame
 * attachments, and what the agent does with attachments that do not
 * match their "blobs" or come with a command that takes none. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chand/admin.h"
#include "helpers.h"

static struct th_agent ag;

static void init(void)
{
	cr_assert_eq(th_agent_start(&ag, "QMM", NULL, NULL), 0);
}

static void fini(void)
{
	th_agent_kill9(&ag);
	th_rmtree(ag.dir);
}

TestSuite(messages, .init = init, .fini = fini, .timeout = 120);

static char *ctl_in(int want, const char *in, char **err, const char *args)
{
	char *out = NULL, *e = NULL;
	int rc = th_ctl(&ag, in, &out, &e, "%s", args);

	cr_assert_eq(rc, want, "chanctl %s: exit %d, want %d\nstdout: %.2000s\nstderr: %s", args, rc,
	             want, out ? out : "", e ? e : "");
	if (err != NULL)
		*err = e;
	else
		free(e);
	return out;
}

static char *ctl(int want, char **err, const char *args)
{
	return ctl_in(want, NULL, err, args);
}

/* The lines of get --json output as JSON objects. */
static json_t *json_lines(const char *out)
{
	json_t *a = json_array();
	const char *p = out;

	while (p != NULL && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		json_error_t je;
		json_t *o = json_loadb(p, n, 0, &je);
		cr_assert(json_is_object(o), "not a JSON object line: %.*s", (int)n, p);
		json_array_append_new(a, o);
		p = nl ? nl + 1 : NULL;
	}
	return a;
}

#define JSTR(o, k) json_string_value(json_object_get((o), (k)))

Test(messages, priority_then_arrival_browse_count_all)
{
	char *out, *err;

	free(ctl(0, NULL, "define qlocal ORD"));
	free(ctl_in(0, "low1\nlow2\n", NULL, "put ORD"));
	free(ctl(0, NULL, "put ORD --priority 5 -m high1"));
	free(ctl(0, NULL, "put ORD --priority 9 -m top"));
	free(ctl(0, NULL, "put ORD --priority 5 -m high2"));
	free(ctl(0, NULL, "put ORD -m low3"));

	/* Browse shows the order and takes nothing. */
	out = ctl(0, NULL, "get ORD --browse --all");
	cr_expect_str_eq(out, "top\nhigh1\nhigh2\nlow1\nlow2\nlow3\n");
	free(out);
	out = ctl(0, NULL, "get ORD --browse");
	cr_expect_str_eq(out, "top\n");
	free(out);

	out = ctl(0, NULL, "get ORD");
	cr_expect_str_eq(out, "top\n");
	free(out);
	out = ctl(0, NULL, "get ORD --count 3");
	cr_expect_str_eq(out, "high1\nhigh2\nlow1\n");
	free(out);
	out = ctl(0, NULL, "get ORD --all");
	cr_expect_str_eq(out, "low2\nlow3\n");
	free(out);

	/* Empty: get fails, get --all succeeds with nothing. */
	out = ctl(1, &err, "get ORD");
	cr_expect_str_eq(out, "");
	cr_expect_str_eq(err, "chanctl: no message available on queue 'ORD' (CHD2009)\n");
	free(out);
	free(err);
	out = ctl(0, NULL, "get ORD --all");
	cr_expect_str_eq(out, "");
	free(out);
}

struct bg {
	const char *args;
	int rc;
	char *out, *err;
	int64_t ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *bg_run(void *arg)
{
	struct bg *b = arg;
	int64_t t0 = now_ms();
	b->rc = th_ctl(&ag, NULL, &b->out, &b->err, "%s", b->args);
	b->ms = now_ms() - t0;
	return NULL;
}

Test(messages, wait_is_woken_by_a_put)
{
	pthread_t t;
	struct bg b = { .args = "get W --wait 20" };

	free(ctl(0, NULL, "define qlocal W"));
	pthread_create(&t, NULL, bg_run, &b);
	usleep(700000);
	free(ctl(0, NULL, "put W -m wakeup"));
	pthread_join(t, NULL);
	cr_expect_eq(b.rc, 0, "%s", b.err ? b.err : "");
	cr_expect_str_eq(b.out, "wakeup\n");
	cr_expect_lt(b.ms, 5000, "the waiting get took %lld ms", (long long)b.ms);
	free(b.out);
	free(b.err);

	/* A wait that expires: no message, after about the time asked. */
	int64_t t0 = now_ms();
	char *err;
	free(ctl(1, &err, "get W --wait 1"));
	int64_t ms = now_ms() - t0;
	cr_expect_geq(ms, 900);
	cr_expect_lt(ms, 5000);
	cr_expect_str_eq(err, "chanctl: no message available on queue 'W' (CHD2009)\n");
	free(err);
}

Test(messages, json_descriptor_fields_correlid_expiry)
{
	char *out;

	free(ctl(0, NULL, "define qlocal D"));
	free(ctl(0, NULL, "put D -m plain"));
	free(ctl(0, NULL, "put D --nonpersistent --priority 4 --correlid ORDER-42 -m np"));
	free(ctl(0, NULL, "put D --correlid 0a0b0c -m hexcorr"));
	out = ctl(0, NULL, "get D --all --json");
	json_t *a = json_lines(out);
	free(out);
	cr_assert_eq(json_array_size(a), 3);

	json_t *m = json_array_get(a, 0);   /* priority 4 first */
	cr_expect_str_eq(JSTR(m, "body"), "np");
	cr_expect_eq(json_integer_value(json_object_get(m, "priority")), 4);
	cr_expect(json_is_false(json_object_get(m, "persistent")));
	cr_expect_str_eq(JSTR(m, "correlid"), "4f524445522d3432" "00000000000000000000000000000000");
	m = json_array_get(a, 1);
	cr_expect_str_eq(JSTR(m, "body"), "plain");
	cr_expect(json_is_true(json_object_get(m, "persistent")));
	cr_expect(json_is_null(json_object_get(m, "correlid")));
	cr_expect_eq(strlen(JSTR(m, "msgid")), 48);
	const char *pt = JSTR(m, "put_time");
	cr_expect(pt != NULL && strlen(pt) == 24 && pt[4] == '-' && pt[10] == 'T' && pt[23] == 'Z',
	          "%s", pt ? pt : "(null)");
	m = json_array_get(a, 2);
	cr_expect_str_eq(JSTR(m, "correlid"), "0a0b0c000000000000000000000000000000000000000000");
	json_decref(a);

	/* Expiry: gone after its time. */
	free(ctl(0, NULL, "put D --expiry 1 -m shortlived"));
	out = ctl(0, NULL, "get D --browse --json");
	a = json_lines(out);
	cr_expect(JSTR(json_array_get(a, 0), "expiry") != NULL);
	json_decref(a);
	free(out);
	usleep(1300000);
	free(ctl(1, NULL, "get D"));
}

Test(messages, binary_bodies)
{
	char path[400], *out;
	const unsigned char body[] = { 'a', 0x00, 0xff, 0xfe, '\n', 'z' };

	free(ctl(0, NULL, "define qlocal BIN"));
	snprintf(path, sizeof(path), "%s/body.bin", ag.dir);
	FILE *f = fopen(path, "wb");
	fwrite(body, 1, sizeof(body), f);
	fclose(f);
	char args[500];
	snprintf(args, sizeof(args), "put BIN --file '%s'", path);
	free(ctl(0, NULL, args));
	free(ctl(0, NULL, args));
	out = ctl(0, NULL, "get BIN --json");
	json_t *a = json_lines(out);
	free(out);
	cr_expect_null(json_object_get(json_array_get(a, 0), "body"));
	cr_expect_str_eq(JSTR(json_array_get(a, 0), "body_base64"), "YQD//gp6");
	json_decref(a);
	/* Raw: the bytes and a newline, through a file (binary-safe). */
	char outpath[420];
	snprintf(outpath, sizeof(outpath), "%s/out.bin", ag.dir);
	cr_assert_eq(th_sh(NULL, NULL, NULL, 30, "'%s' -s '%s' get BIN > '%s'", th_chanctl_bin(),
	                   ag.sock, outpath), 0);
	f = fopen(outpath, "rb");
	unsigned char got[32];
	size_t n = fread(got, 1, sizeof(got), f);
	fclose(f);
	cr_expect_eq(n, sizeof(body) + 1);
	cr_expect_eq(memcmp(got, body, sizeof(body)), 0);
	cr_expect_eq(got[sizeof(body)], '\n');
}

Test(messages, refusals)
{
	char *err, *out;

	free(ctl(1, &err, "put NOPE -m x"));
	cr_expect_str_eq(err, "chanctl: queue 'NOPE' is not defined (CHD2001)\n");
	free(err);
	free(ctl(1, &err, "get NOPE"));
	cr_expect_str_eq(err, "chanctl: queue 'NOPE' is not defined (CHD2001)\n");
	free(err);

	free(ctl(0, NULL, "define qlocal SMALL --maxmsgl 10"));
	free(ctl(1, &err, "put SMALL -m 01234567890"));
	cr_expect_str_eq(err, "chanctl: message of 11 bytes is longer than MAXMSGL 10 of queue "
	                      "'SMALL' (CHD2003)\n");
	free(err);

	free(ctl(0, NULL, "define qlocal OFF --put disabled"));
	free(ctl(1, &err, "put OFF -m x"));
	cr_expect(strstr(err, "(CHD2007)") != NULL, "%s", err);
	free(err);
	free(ctl(2, &err, "put OFF --priority 10 -m x"));
	cr_expect_str_eq(err, "chanctl: --priority wants a number from 0 to 9 (got '10')\n");
	free(err);
	free(ctl(1, &err, "put 'BAD NAME' -m x"));
	cr_expect(strstr(err, "invalid queue name") && strstr(err, "(CHD2006)"), "%s", err);
	free(err);

	/* Queue full in the middle of a stream (4 batches, pipelined):
	 * exact count, nothing lost silently, and nothing put after the
	 * failure even though later batches were already sent. */
	free(ctl(0, NULL, "define qlocal CAP --maxdepth 300"));
	char *in = malloc(1000 * 8 + 1), *p = in;
	for (int i = 1; i <= 1000; i++)
		p += sprintf(p, "m%05d\n", i);
	free(ctl_in(1, in, &err, "put CAP"));
	cr_expect_str_eq(err, "chanctl: put 300 messages; message 301 refused: queue 'CAP' is full "
	                      "(MAXDEPTH 300) (CHD2002)\n");
	free(err);
	out = ctl(0, NULL, "get CAP --all");
	in[300 * 7] = '\0';
	cr_expect_str_eq(out, in, "the queue must hold exactly lines 1-300 in order");
	free(out);
	free(in);
}

Test(messages, remote_queue_puts_land_on_the_xmitq_with_a_header)
{
	char *out;

	free(ctl(0, NULL, "define qlocal QM2 --usage xmitq"));
	free(ctl(0, NULL, "define qremote TO.QM2 --rname APP.IN --rqmname QM2"));
	free(ctl(0, NULL, "put TO.QM2 -m via-remote"));
	free(ctl(0, NULL, "put ANY.Q --qmgr QM2 -m via-qmgr"));
	out = ctl(0, NULL, "get QM2 --browse --all --json");
	json_t *a = json_lines(out);
	free(out);
	cr_assert_eq(json_array_size(a), 2);
	json_t *m = json_array_get(a, 0);
	cr_expect_str_eq(JSTR(m, "body"), "via-remote");
	cr_expect_str_eq(JSTR(m, "xmit_qm"), "QM2");
	cr_expect_str_eq(JSTR(m, "xmit_q"), "APP.IN");
	m = json_array_get(a, 1);
	cr_expect_str_eq(JSTR(m, "body"), "via-qmgr");
	cr_expect_str_eq(JSTR(m, "xmit_qm"), "QM2");
	cr_expect_str_eq(JSTR(m, "xmit_q"), "ANY.Q");
	json_decref(a);
	/* The local queue manager's own name means a local queue. */
	free(ctl(0, NULL, "define qlocal LOCAL.Q"));
	free(ctl(0, NULL, "put LOCAL.Q --qmgr QMM -m here"));
	out = ctl(0, NULL, "get LOCAL.Q");
	cr_expect_str_eq(out, "here\n");
	free(out);
	/* A direct put to a transmission queue has no header: refused. */
	char *err;
	free(ctl(1, &err, "put QM2 -m direct"));
	cr_expect(strstr(err, "(CHD2010)") != NULL, "%s", err);
	cr_expect(strstr(err, "'QM2' is a transmission queue") != NULL, "%s", err);
	free(err);
	/* A remote queue definition holds nothing to get. */
	free(ctl(1, &err, "get TO.QM2"));
	cr_expect(strstr(err, "'TO.QM2' is a remote queue definition") && strstr(err, "(CHD2001)"),
	          "%s", err);
	free(err);
	free(ctl(1, &err, "get TO.QM2 --browse"));
	cr_expect(strstr(err, "(CHD2001)") != NULL, "%s", err);
	free(err);
}

Test(messages, empty_lines_are_empty_messages)
{
	char *out;

	free(ctl(0, NULL, "define qlocal EMPTY"));
	free(ctl_in(0, "a\n\n\nb\n\n", NULL, "put EMPTY"));
	out = ctl(0, NULL, "--json display queue EMPTY");
	json_error_t je;
	json_t *q = json_loads(out, 0, &je);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(q, 0), "curdepth")), 5,
	             "%s", out);
	json_decref(q);
	free(out);
	out = ctl(0, NULL, "get EMPTY --all");
	cr_expect_str_eq(out, "a\n\n\nb\n\n");
	free(out);
}

/* ---- the wire, raw ---- */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(ag.sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, ag.sock, strlen(ag.sock) + 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* The next frame (5 s at most), or NULL if the agent closed. */
static json_t *raw_read(struct admin_io *io, uint8_t **att, size_t *att_len)
{
	json_t *j = NULL;
	char err[200];

	if (admin_io_read_blob(io, &j, att, att_len, 5000, err, sizeof(err)) != ADMIN_IO_OK)
		return NULL;
	return j;
}

Test(messages, bodies_travel_raw_as_attachments)
{
	static const uint8_t bodies[] = "one\0\xff\ntwo!" "three";   /* 10 + 0 + 5 bytes */
	struct admin_io io;
	json_t *req, *f;
	uint8_t *att;
	size_t att_len;

	free(ctl(0, NULL, "define qlocal RAW"));
	admin_io_init(&io, raw_connect());
	req = admin_request_new("put");
	json_object_set_new(req, "queue", json_string("RAW"));
	json_object_set_new(req, "blobs", json_pack("[i,i,i]", 10, 0, 5));
	cr_assert_eq(admin_io_write_blob(&io, req, bodies, 15), 0);
	json_decref(req);
	f = raw_read(&io, &att, &att_len);
	cr_assert_not_null(f);
	cr_expect(json_is_true(json_object_get(f, "ok")), "%s", JSTR(f, "error"));
	cr_expect_eq(json_integer_value(json_object_get(f, "put")), 3);
	cr_expect_eq(json_array_size(json_object_get(f, "msgids")), 3);
	cr_expect_null(att);
	json_decref(f);

	/* Browse: one record per message, its body the only blob. */
	req = admin_request_new("get");
	json_object_set_new(req, "queue", json_string("RAW"));
	json_object_set_new(req, "max", json_integer(0));
	json_object_set_new(req, "browse", json_true());
	cr_assert_eq(admin_io_write(&io, req), 0);
	json_decref(req);
	const size_t want_len[] = { 10, 0, 5 };
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		f = raw_read(&io, &att, &att_len);
		cr_assert_not_null(f);
		cr_assert(json_is_object(json_object_get(f, "rec")));
		cr_expect_null(json_object_get(json_object_get(f, "rec"), "body_base64"),
		               "no base64 on the wire");
		cr_expect_eq(json_integer_value(json_array_get(json_object_get(f, "blobs"), 0)),
		             (json_int_t)want_len[i]);
		cr_assert_eq(att_len, want_len[i]);
		cr_expect(att_len == 0 || memcmp(att, bodies + off, att_len) == 0, "body %d", i);
		off += att_len;
		free(att);
		json_decref(f);
	}
	f = raw_read(&io, &att, &att_len);
	cr_assert_not_null(f);
	cr_expect(json_is_true(json_object_get(f, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(f, "count")), 3);
	json_decref(f);
	close(io.fd);
	admin_io_free(&io);
}

Test(messages, attachments_that_do_not_fit_are_refused)
{
	struct admin_io io;
	json_t *req, *f;
	uint8_t *att;
	size_t att_len;

	free(ctl(0, NULL, "define qlocal FIT"));

	/* "blobs" longer than the attachment: a malformed frame, the
	 * connection closes without a reply, nothing is put. */
	admin_io_init(&io, raw_connect());
	uint8_t hdr[ADMIN_HDR_LEN];
	const char *j = "{\"v\":1,\"cmd\":\"put\",\"queue\":\"FIT\",\"blobs\":[4,4]}";
	admin_hdr_encode((uint32_t)strlen(j), 6, hdr);
	/* One write: the agent may refuse (and close) as soon as it has read
	 * the JSON, so a second write could meet a closed socket. */
	char frame[256];
	size_t flen = 0;
	memcpy(frame, hdr, sizeof(hdr));
	flen += sizeof(hdr);
	memcpy(frame + flen, j, strlen(j));
	flen += strlen(j);
	memcpy(frame + flen, "abcdef", 6);
	flen += 6;
	cr_assert_eq(send(io.fd, frame, flen, MSG_NOSIGNAL), (ssize_t)flen);
	cr_expect_null(f = raw_read(&io, &att, &att_len), "the agent must close the connection");
	json_decref(f);
	close(io.fd);
	admin_io_free(&io);

	/* An attachment on a command that takes none: refused before it runs. */
	admin_io_init(&io, raw_connect());
	req = admin_request_new("define queue");
	json_object_set_new(req, "type", json_string("qlocal"));
	json_object_set_new(req, "name", json_string("NOT.MADE"));
	json_object_set_new(req, "blobs", json_pack("[i]", 3));
	cr_assert_eq(admin_io_write_blob(&io, req, (const uint8_t *)"xyz", 3), 0);
	json_decref(req);
	f = raw_read(&io, &att, &att_len);
	cr_assert_not_null(f);
	cr_expect_str_eq(JSTR(f, "code"), "CHD6002");
	cr_expect(strstr(JSTR(f, "error"), "command \"define queue\" takes no attachment") != NULL,
	          "%s", JSTR(f, "error"));
	json_decref(f);
	cr_expect_null(f = raw_read(&io, &att, &att_len));
	json_decref(f);
	close(io.fd);
	admin_io_free(&io);

	/* A put without "blobs": malformed. */
	admin_io_init(&io, raw_connect());
	req = admin_request_new("put");
	json_object_set_new(req, "queue", json_string("FIT"));
	cr_assert_eq(admin_io_write(&io, req), 0);
	json_decref(req);
	f = raw_read(&io, &att, &att_len);
	cr_assert_not_null(f);
	cr_expect_str_eq(JSTR(f, "code"), "CHD6002");
	cr_expect(strstr(JSTR(f, "error"), "\"blobs\" must list the lengths") != NULL, "%s",
	          JSTR(f, "error"));
	json_decref(f);
	close(io.fd);
	admin_io_free(&io);

	/* Ten thousand and one empty messages in one request: too many. */
	admin_io_init(&io, raw_connect());
	req = admin_request_new("put");
	json_object_set_new(req, "queue", json_string("FIT"));
	json_t *zeros = json_array();
	for (int i = 0; i < 10001; i++)
		json_array_append_new(zeros, json_integer(0));
	json_object_set_new(req, "blobs", zeros);
	cr_assert_eq(admin_io_write(&io, req), 0);
	json_decref(req);
	f = raw_read(&io, &att, &att_len);
	cr_assert_not_null(f);
	cr_expect_str_eq(JSTR(f, "code"), "CHD6002");
	cr_expect(strstr(JSTR(f, "error"), "(1 to 10000 messages)") != NULL, "%s", JSTR(f, "error"));
	json_decref(f);
	close(io.fd);
	admin_io_free(&io);

	char *err, *out;
	free(ctl(1, &err, "display queue NOT.MADE"));
	free(err);
	out = ctl(0, NULL, "get FIT --all");
	cr_expect_str_eq(out, "", "nothing may have been put");
	free(out);
	char *log = th_read_file(ag.log);
	cr_expect(strstr(log, "blobs[1] (4 bytes at offset 4) runs past the end of the attachment "
	                      "(6 bytes)") != NULL, "%s", log);
	free(log);
	cr_expect(th_agent_alive(&ag));
}

Test(messages, nonpersistent_messages_do_not_survive_a_restart)
{
	free(ctl(0, NULL, "define qlocal NP"));
	free(ctl(0, NULL, "put NP --nonpersistent -m gone"));
	free(ctl(0, NULL, "put NP -m stays"));
	cr_expect_eq(th_agent_stop(&ag), 0);
	cr_assert_eq(th_agent_restart(&ag), 0);
	char *out = ctl(0, NULL, "get NP --all");
	cr_expect_str_eq(out, "stays\n");
	free(out);
}

/* ---- crashes ---- */

struct killer {
	int delay_ms;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;
	usleep((useconds_t)k->delay_ms * 1000);
	th_agent_kill9(&ag);
	return NULL;
}

/* Lines "%08d\n" for 1..n. */
static char *numbered(long n)
{
	char *s = malloc((size_t)n * 9 + 1), *p = s;
	for (long i = 1; i <= n; i++)
		p += sprintf(p, "%08ld\n", i);
	return s;
}

Test(messages, kill9_during_a_long_put_loses_no_acknowledged_message)
{
	const long n = 1500000;
	char *in = numbered(n), *out = NULL, *err = NULL;
	struct killer k = { 1500 };
	pthread_t t;
	unsigned long long reported = 0;

	free(ctl(0, NULL, "define qlocal CRASH --maxdepth 999999999"));
	pthread_create(&t, NULL, kill_later, &k);
	int rc = th_ctl(&ag, in, &out, &err, "put CRASH");
	pthread_join(t, NULL);
	cr_assert_eq(rc, 1, "the put must have been cut short (rc %d); stderr: %s", rc, err);
	cr_assert(sscanf(err, "chanctl: put %llu message", &reported) == 1, "%s", err);
	cr_expect(strstr(err, "connection to the agent lost") != NULL, "%s", err);
	cr_expect(strstr(err, "(CHD6004)") != NULL, "%s", err);
	cr_expect_gt(reported, 0);
	free(out);
	free(err);

	cr_assert_eq(th_agent_restart(&ag), 0);
	char path[400];
	snprintf(path, sizeof(path), "%s/after.txt", ag.dir);
	cr_assert_eq(th_sh(NULL, NULL, NULL, 100, "'%s' -s '%s' get CRASH --all > '%s'",
	                   th_chanctl_bin(), ag.sock, path), 0);
	out = th_read_file(path);
	size_t got = strlen(out) / 9;
	/* Everything acknowledged is there, in order, once; at most the
	 * batches in flight at the crash were committed on top of that. */
	cr_expect_geq(got, reported);
	cr_expect_leq(got, reported + 4 * 256, "only the batches in flight may be there unreported");
	cr_expect_eq(strlen(out) % 9, 0);
	cr_expect_eq(memcmp(out, in, strlen(out)), 0, "the queue must hold a prefix of the input");
	free(out);
	free(in);
}

Test(messages, kill9_during_get_all_loses_nothing)
{
	const long n = 300000;
	char *in = numbered(n), *err = NULL;
	char inpath[400], outpath[400], restpath[400];
	struct killer k = { 1000 };
	pthread_t t;

	snprintf(inpath, sizeof(inpath), "%s/in.txt", ag.dir);
	snprintf(outpath, sizeof(outpath), "%s/got.txt", ag.dir);
	snprintf(restpath, sizeof(restpath), "%s/rest.txt", ag.dir);
	FILE *f = fopen(inpath, "w");
	fputs(in, f);
	fclose(f);
	free(ctl(0, NULL, "define qlocal DRAIN --maxdepth 999999999"));
	cr_assert_eq(th_sh(NULL, NULL, NULL, 100, "'%s' -s '%s' put DRAIN < '%s'", th_chanctl_bin(),
	                   ag.sock, inpath), 0);

	pthread_create(&t, NULL, kill_later, &k);
	int rc = th_sh(NULL, NULL, &err, 100, "'%s' -s '%s' get DRAIN --all > '%s'",
	               th_chanctl_bin(), ag.sock, outpath);
	pthread_join(t, NULL);
	cr_assert_eq(rc, 1, "the get must have been cut short; stderr: %s", err);
	unsigned long long maybe = 0;
	char *p = strstr(err, "the last ");
	if (p != NULL)
		sscanf(p, "the last %llu", &maybe);
	cr_expect(strstr(err, "chanctl: connection lost") != NULL, "%s", err);
	free(err);

	cr_assert_eq(th_agent_restart(&ag), 0);
	cr_assert_eq(th_sh(NULL, NULL, NULL, 100, "'%s' -s '%s' get DRAIN --all > '%s'",
	                   th_chanctl_bin(), ag.sock, restpath), 0);
	char *got = th_read_file(outpath), *rest = th_read_file(restpath);
	size_t ng = strlen(got) / 9, nr = strlen(rest) / 9;
	cr_expect_eq(strlen(got) % 9, 0, "printed output must be whole messages");
	cr_expect_gt(ng, 0);
	cr_expect_lt(ng, (size_t)n, "the kill must come before the end");
	/* What was printed is the head of the queue, in order; what remains
	 * is the tail, starting at most `maybe` messages before the end of
	 * what was printed (printed but not confirmed: delivered again). */
	cr_expect_eq(memcmp(got, in, strlen(got)), 0);
	long overlap = (long)ng + (long)nr - n;
	cr_assert_geq(overlap, 0, "%ld messages lost", -overlap);
	cr_expect_leq((unsigned long long)overlap, maybe,
	              "%ld messages came twice but chanctl warned of %llu", overlap, maybe);
	cr_expect_eq(memcmp(rest, in + (ng - (size_t)overlap) * 9, strlen(rest)), 0,
	             "the rest must be exactly the messages not confirmed, in order");
	free(got);
	free(rest);
	free(in);
}
