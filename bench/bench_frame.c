/* Speed of the frame codec on MSG frames: encode, decode (zero copy), and
 * decode plus an owned copy (frame_msg_to_chd), for 1 KiB and 64 KiB bodies.
 * Usage: bench_frame [seconds-per-case, default 1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chand/frame.h"

#define BATCH 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_msg(struct chd_msg *m, size_t body_len)
{
	memset(m, 0, sizeof(*m));
	msg_new_id(m->msgid);
	m->priority = 4;
	m->persistent = true;
	m->put_time_ms = 1700000000000LL;
	m->expiry_ms = 0;
	strcpy(m->format, "MQSTR");
	strcpy(m->reply_q, "REPLY.Q");
	strcpy(m->reply_qm, "QM1");
	strcpy(m->xmit_qm, "QM2");
	strcpy(m->xmit_q, "PAYMENTS.IN");
	m->body = malloc(body_len);
	if (m->body == NULL)
		exit(1);
	for (size_t i = 0; i < body_len; i++)
		m->body[i] = (uint8_t)('a' + i % 26);
	m->body_len = body_len;
}

static void report(const char *what, size_t body_len, long n, double secs)
{
	double rate = (double)n / secs;

	printf("%-28s %6zu B  %12.0f msgs/s  %9.1f MB/s  %7.1f ns/msg\n", what, body_len, rate,
	       rate * (double)body_len / 1e6, 1e9 / rate);
}

static int run(size_t body_len, double budget)
{
	struct chd_msg m;
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame f;
	uint64_t sink = 0;
	long n;
	double t0, t;

	make_msg(&m, body_len);
	frame_buf_init(&b);
	frame_writer_init(&w);

	/* encode: BATCH frames per buffer, as a sender fills one write */
	n = 0;
	t0 = now_s();
	do {
		frame_buf_reset(&b);
		for (int i = 0; i < BATCH; i++)
			if (frame_encode_msg(&b, &w, 7, (uint32_t)(n + i) % FRAME_SEQWRAP_MAX + 1, &m,
			                     0, &err) != FRAME_OK) {
				fprintf(stderr, "encode: %s\n", err.why);
				return 1;
			}
		n += BATCH;
		sink += b.len;
	} while ((t = now_s() - t0) < budget);
	report("encode", body_len, n, t);

	/* decode (zero copy) of the last buffer, over and over */
	n = 0;
	t0 = now_s();
	do {
		size_t off = 0, used;
		for (int i = 0; i < BATCH; i++) {
			if (frame_decode_buf(b.p + off, b.len - off, frame_max_payload(FRAME_MAXMSGL_MAX),
			                     &f, &used, &err) != FRAME_OK) {
				fprintf(stderr, "decode: %s\n", err.why);
				return 1;
			}
			sink += f.u.msg.body[body_len - 1];
			off += used;
		}
		n += BATCH;
	} while ((t = now_s() - t0) < budget);
	report("decode (zero copy)", body_len, n, t);

	/* decode + owned copy, as a receiver hands messages to the store */
	n = 0;
	t0 = now_s();
	do {
		size_t off = 0, used;
		for (int i = 0; i < BATCH; i++) {
			struct chd_msg out;
			if (frame_decode_buf(b.p + off, b.len - off, frame_max_payload(FRAME_MAXMSGL_MAX),
			                     &f, &used, &err) != FRAME_OK ||
			    frame_msg_to_chd(&f.u.msg, 0, &out) != FRAME_OK) {
				fprintf(stderr, "decode: %s\n", err.why);
				return 1;
			}
			sink += out.body[0];
			msg_clear(&out);
			off += used;
		}
		n += BATCH;
	} while ((t = now_s() - t0) < budget);
	report("decode + frame_msg_to_chd", body_len, n, t);

	if (sink == 42)
		printf("\n");
	frame_buf_free(&b);
	msg_clear(&m);
	return 0;
}

int main(int argc, char **argv)
{
	double budget = argc > 1 ? atof(argv[1]) : 1.0;

	if (budget <= 0)
		budget = 1.0;
	if (run(1024, budget) != 0 || run(65536, budget) != 0)
		return 1;
	return 0;
}
