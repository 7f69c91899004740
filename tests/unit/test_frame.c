/* The frame codec: golden vectors from doc/PROTOCOL.md, round trips of
 * every frame type, every rejection, the negotiation and resync rules, and
 * a deterministic mutation loop (robustness without libFuzzer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chand/frame.h"

#define MAXP FRAME_PAYLOAD_MAX

/* ---- helpers ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (*hex) {
		unsigned v;
		if (*hex == ' ' || *hex == '\n' || *hex == '|') {
			hex++;
			continue;
		}
		cr_assert(sscanf(hex, "%2x", &v) == 1, "bad hex at '%s'", hex);
		cr_assert(n < max);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

/* A frame from raw parts (for frames the encoder would refuse). */
static size_t mk(uint8_t *out, uint8_t version, uint8_t type, uint16_t flags,
                 const uint8_t *payload, size_t len)
{
	memcpy(out, "CHND", 4);
	out[4] = version;
	out[5] = type;
	out[6] = (uint8_t)(flags >> 8);
	out[7] = (uint8_t)flags;
	out[8] = (uint8_t)(len >> 24);
	out[9] = (uint8_t)(len >> 16);
	out[10] = (uint8_t)(len >> 8);
	out[11] = (uint8_t)len;
	memset(out + 12, 0, 4);
	if (len)
		memcpy(out + 16, payload, len);
	return 16 + len;
}

static void set_len(uint8_t *frame, uint32_t len)
{
	frame[8] = (uint8_t)(len >> 24);
	frame[9] = (uint8_t)(len >> 16);
	frame[10] = (uint8_t)(len >> 8);
	frame[11] = (uint8_t)len;
}

/* Decodes a whole frame from an exactly-sized heap copy (so ASan sees any
 * over-read) and returns the rc; *f and err filled. */
static int dec(const uint8_t *p, size_t n, struct frame *f, struct frame_err *err)
{
	uint8_t *copy = malloc(n ? n : 1);
	size_t used = 0;
	int rc;

	cr_assert_not_null(copy);
	memcpy(copy, p, n);
	err->why[0] = '\0';
	rc = frame_decode_buf(copy, n, MAXP, f, &used, err);
	if (rc == FRAME_OK) {
		cr_assert_eq(used, n, "frame of %zu bytes, %zu consumed", n, used);
		/* Views into the copy would dangle: tests compare them now. */
		if (f->h.type == FRAME_MSG || f->h.type == FRAME_PING || f->h.type == FRAME_PING_ACK) {
			static uint8_t keep[1 << 20];
			cr_assert(n <= sizeof(keep));
			memcpy(keep, copy, n);
			if (f->h.type == FRAME_MSG) {
				if (f->u.msg.props)
					f->u.msg.props = (const char *)keep + (f->u.msg.props - (const char *)copy);
				f->u.msg.body = keep + (f->u.msg.body - copy);
			} else if (f->u.ping.data) {
				f->u.ping.data = keep + (f->u.ping.data - copy);
			}
		}
	}
	if (rc == FRAME_EBAD)
		cr_assert(err->why[0] != '\0', "rejection without a reason");
	free(copy);
	return rc;
}

static void expect_bad(const uint8_t *p, size_t n, const char *needle)
{
	struct frame f;
	struct frame_err err;
	int rc = dec(p, n, &f, &err);

	cr_assert_eq(rc, FRAME_EBAD, "expected rejection (%s), got rc %d", needle, rc);
	if (needle)
		cr_assert(strstr(err.why, needle) != NULL, "reason '%s' lacks '%s'", err.why, needle);
}

static void sample_init(struct frame_init *f)
{
	memset(f, 0, sizeof(*f));
	f->min_version = 1;
	f->max_version = 1;
	f->chtype = FRAME_CH_SDR;
	strcpy(f->channel, "QM1.QM2");
	strcpy(f->qmgr, "QM1");
	f->batchsz = 50;
	f->maxmsgl = 4194304;
	f->hbint = 300;
	f->seqwrap = 999999999;
	strcpy(f->sslciph, "TLS_AES_128_GCM_SHA256");
}

static void sample_msg(struct frame_msg *m, const uint8_t *body, size_t body_len)
{
	memset(m, 0, sizeof(*m));
	m->batch_id = 7;
	m->seq = 42;
	m->persistent = true;
	m->priority = 9;
	for (int i = 0; i < MSG_ID_LEN; i++) {
		m->msgid[i] = (uint8_t)(i + 1);
		m->correlid[i] = (uint8_t)(0xa0 + i);
	}
	m->put_time_ms = 1700000000000LL;
	m->expiry_remaining_ms = 60000;
	strcpy(m->xmit_qm, "QM2");
	strcpy(m->xmit_q, "PAYMENTS.IN");
	strcpy(m->format, "MQSTR");
	strcpy(m->reply_q, "REPLY.Q");
	strcpy(m->reply_qm, "QM1");
	m->props = "app=pay\nrégion=eu\n";
	m->props_len = strlen(m->props);
	m->body = body;
	m->body_len = body_len;
}

/* Encodes one frame of each type (plus MSG variants) into bufs[]. */
#define NSAMPLES 19
static size_t samples(struct frame_buf bufs[NSAMPLES])
{
	static const uint8_t body[] = "hello, world";
	struct frame_writer w;
	struct frame_err err;
	struct frame_init in;
	struct frame_init_ack ack = {1, FRAME_CH_RCVR, "QM2", 50, 1048576, 300, 999999999,
	                             "ANY_TLS13_OR_HIGHER"};
	struct frame_resync rs = {false, false, 10, 500, 0, 0, 0};
	struct frame_resync rs2 = {true, false, 10, 500, 11, 550, 50};
	struct frame_resync rs3 = {false, true, 10, 1, 0, 0, 0};
	struct frame_resync_ack ra = {true, 11, 550};
	struct frame_batch fb = {11, 50, 550};
	struct frame_msg m, np, empty;
	uint8_t ping[100];
	size_t k = 0;

	for (size_t i = 0; i < sizeof(ping); i++)
		ping[i] = (uint8_t)i;
	sample_init(&in);
	sample_msg(&m, body, sizeof(body) - 1);
	sample_msg(&np, body, 3);
	np.persistent = false;
	np.seq = 0;
	np.props = NULL;
	np.props_len = 0;
	np.expiry_remaining_ms = 0;
	np.reply_q[0] = np.reply_qm[0] = np.format[0] = '\0';
	sample_msg(&empty, NULL, 0);
	frame_writer_init(&w);
	for (int i = 0; i < NSAMPLES; i++)
		frame_buf_init(&bufs[i]);
#define ADD(call) do { cr_assert_eq((call), FRAME_OK, "sample %zu: %s", k, err.why); k++; } while (0)
	ADD(frame_encode_init(&bufs[k], &w, &in, &err));
	in.ping = true;
	in.peer_qmgr[0] = 'X';
	in.sslciph[0] = '\0';
	ADD(frame_encode_init(&bufs[k], &w, &in, &err));
	ADD(frame_encode_init_ack(&bufs[k], &w, &ack, &err));
	ADD(frame_encode_error(&bufs[k], &w, "CHD5007", "sequence number mismatch: 5 vs 7") == FRAME_OK
	        ? FRAME_OK : FRAME_EBAD);
	ADD(frame_encode_resync(&bufs[k], &w, &rs, &err));
	ADD(frame_encode_resync(&bufs[k], &w, &rs2, &err));
	ADD(frame_encode_resync(&bufs[k], &w, &rs3, &err));
	ADD(frame_encode_resync_ack(&bufs[k], &w, &ra, &err));
	ADD(frame_encode_msg_frame(&bufs[k], &w, &m, &err));
	ADD(frame_encode_msg_frame(&bufs[k], &w, &np, &err));
	ADD(frame_encode_msg_frame(&bufs[k], &w, &empty, &err));
	ADD(frame_encode_end_batch(&bufs[k], &w, &fb, &err));
	ADD(frame_encode_confirm(&bufs[k], &w, &fb, &err));
	ADD(frame_encode_hb(&bufs[k], &w));
	ADD(frame_encode_hb_ack(&bufs[k], &w));
	ADD(frame_encode_ping(&bufs[k], &w, ping, sizeof(ping), &err));
	ADD(frame_encode_ping_ack(&bufs[k], &w, ping, 0, &err));
	ADD(frame_encode_stop(&bufs[k], &w, FRAME_STOP_DISCINT, &err));
	ADD(frame_encode_stop_ack(&bufs[k], &w));
#undef ADD
	cr_assert_eq(k, NSAMPLES);
	return k;
}

static void free_samples(struct frame_buf bufs[NSAMPLES])
{
	for (int i = 0; i < NSAMPLES; i++)
		frame_buf_free(&bufs[i]);
}

/* Re-encodes a decoded frame with its own version and counter: must give
 * the same bytes (the encoding is canonical). */
static void assert_reencodes(const struct frame *f, const uint8_t *p, size_t n)
{
	struct frame_buf b;
	struct frame_writer w = {f->h.version, f->h.counter};
	struct frame_err err = {""};

	frame_buf_init(&b);
	cr_assert_eq(frame_encode(&b, &w, f, &err), FRAME_OK, "re-encode %s: %s",
	             frame_type_name(f->h.type), err.why);
	cr_assert_eq(b.len, n, "%s re-encoded to %zu bytes, not %zu", frame_type_name(f->h.type),
	             b.len, n);
	cr_assert(memcmp(b.p, p, n) == 0, "%s re-encoded differently", frame_type_name(f->h.type));
	cr_assert_eq(w.counter, f->h.counter + 1);
	frame_buf_free(&b);
}

/* ---- golden vectors (the examples in doc/PROTOCOL.md) ---- */

Test(frame_golden, init, .timeout = 30)
{
	uint8_t p[256];
	size_t n = unhex("43484e44 01 01 0000 00000037 00000000"
	                 "01 01 01 07 514d312e514d32 03 514d31 00"
	                 "00000032 00400000 0000012c 3b9ac9ff"
	                 "16 544c535f4145535f3132385f47434d5f534841323536", p, sizeof(p));
	struct frame f;
	struct frame_err err;

	cr_assert_eq(dec(p, n, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.h.type, FRAME_INIT);
	cr_assert_eq(f.h.counter, 0);
	cr_assert_eq(f.u.init.min_version, 1);
	cr_assert_eq(f.u.init.chtype, FRAME_CH_SDR);
	cr_assert_str_eq(f.u.init.channel, "QM1.QM2");
	cr_assert_str_eq(f.u.init.qmgr, "QM1");
	cr_assert_str_eq(f.u.init.peer_qmgr, "");
	cr_assert_eq(f.u.init.batchsz, 50);
	cr_assert_eq(f.u.init.maxmsgl, 4194304);
	cr_assert_eq(f.u.init.hbint, 300);
	cr_assert_eq(f.u.init.seqwrap, 999999999);
	cr_assert_str_eq(f.u.init.sslciph, "TLS_AES_128_GCM_SHA256");
	cr_assert(!f.u.init.ping);
	assert_reencodes(&f, p, n);
}

Test(frame_golden, msg, .timeout = 30)
{
	uint8_t p[256];
	size_t n = unhex("43484e44 01 20 0001 00000069 00000005"
	                 "0000000000000001 00000001 05"
	                 "0102030405060708090a0b0c0d0e0f101112131415161718"
	                 "000000000000000000000000000000000000000000000000"
	                 "0000018bcfe56800 0000000000000000"
	                 "03 514d32 02 5131 05 4d51535452 00 00"
	                 "00000003 613d31 00000002 6869", p, sizeof(p));
	struct frame f;
	struct frame_err err;
	struct chd_msg m;

	cr_assert_eq(dec(p, n, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.h.type, FRAME_MSG);
	cr_assert_eq(f.h.counter, 5);
	cr_assert(f.u.msg.persistent);
	cr_assert_eq(f.u.msg.batch_id, 1);
	cr_assert_eq(f.u.msg.seq, 1);
	cr_assert_eq(f.u.msg.priority, 5);
	cr_assert_eq(f.u.msg.msgid[23], 0x18);
	cr_assert_eq(f.u.msg.put_time_ms, 1700000000000LL);
	cr_assert_eq(f.u.msg.expiry_remaining_ms, 0);
	cr_assert_str_eq(f.u.msg.xmit_qm, "QM2");
	cr_assert_str_eq(f.u.msg.xmit_q, "Q1");
	cr_assert_str_eq(f.u.msg.format, "MQSTR");
	cr_assert_str_eq(f.u.msg.reply_q, "");
	cr_assert_eq(f.u.msg.props_len, 3);
	cr_assert(memcmp(f.u.msg.props, "a=1", 3) == 0);
	cr_assert_eq(f.u.msg.body_len, 2);
	cr_assert(memcmp(f.u.msg.body, "hi", 2) == 0);
	assert_reencodes(&f, p, n);
	cr_assert_eq(frame_msg_to_chd(&f.u.msg, 5000, &m), FRAME_OK);
	cr_assert_str_eq(m.props, "a=1");
	cr_assert_eq(m.expiry_ms, 0);
	cr_assert_str_eq(m.xmit_q, "Q1");
	msg_clear(&m);
}

Test(frame_golden, end_batch_and_hb, .timeout = 30)
{
	uint8_t p[64];
	size_t n = unhex("43484e44 01 21 0000 00000010 00000009"
	                 "0000000000000005 00000003 00000011", p, sizeof(p));
	struct frame f;
	struct frame_err err;

	cr_assert_eq(dec(p, n, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.h.type, FRAME_END_BATCH);
	cr_assert_eq(f.u.batch.batch_id, 5);
	cr_assert_eq(f.u.batch.count, 3);
	cr_assert_eq(f.u.batch.last_seq, 17);
	n = unhex("43484e44 01 30 0000 00000000 0000000a", p, sizeof(p));
	cr_assert_eq(dec(p, n, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.h.type, FRAME_HB);
	cr_assert_eq(f.h.counter, 10);
}

/* ---- round trips ---- */

Test(frame_roundtrip, every_type, .timeout = 30)
{
	struct frame_buf bufs[NSAMPLES];
	bool seen[256] = {false};
	size_t k = samples(bufs);

	for (size_t i = 0; i < k; i++) {
		struct frame f;
		struct frame_err err;
		cr_assert_eq(dec(bufs[i].p, bufs[i].len, &f, &err), FRAME_OK, "sample %zu: %s", i,
		             err.why);
		cr_assert_eq(f.h.counter, i, "frames are numbered in order");
		seen[f.h.type] = true;
		assert_reencodes(&f, bufs[i].p, bufs[i].len);
	}
	for (int t = 0; t < 256; t++)
		if (strcmp(frame_type_name(t), "UNKNOWN") != 0)
			cr_assert(seen[t], "no sample of %s", frame_type_name(t));
	free_samples(bufs);
}

Test(frame_roundtrip, several_frames_in_one_buffer, .timeout = 30)
{
	struct frame_buf b;
	struct frame_writer w;
	struct frame_batch fb = {3, 1, 9};
	struct frame f;
	struct frame_err err;
	size_t off = 0, used;
	int types[3] = {FRAME_HB, FRAME_END_BATCH, FRAME_STOP_ACK};

	frame_buf_init(&b);
	frame_writer_init(&w);
	w.counter = UINT32_MAX;  /* the counter wraps */
	cr_assert_eq(frame_encode_hb(&b, &w), FRAME_OK);
	cr_assert_eq(frame_encode_end_batch(&b, &w, &fb, &err), FRAME_OK);
	cr_assert_eq(frame_encode_stop_ack(&b, &w), FRAME_OK);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(frame_decode_buf(b.p + off, b.len - off, MAXP, &f, &used, &err), FRAME_OK);
		cr_assert_eq(f.h.type, types[i]);
		cr_assert_eq(f.h.counter, (uint32_t)(UINT32_MAX + (uint32_t)i));
		off += used;
	}
	cr_assert_eq(off, b.len);
	frame_buf_free(&b);
}

Test(frame_roundtrip, need_more, .timeout = 30)
{
	struct frame_buf bufs[NSAMPLES];
	size_t k = samples(bufs);

	for (size_t i = 0; i < k; i++) {
		for (size_t n = 0; n < bufs[i].len; n++) {
			struct frame f;
			struct frame_err err;
			size_t used = 0;
			int rc = frame_decode_buf(bufs[i].p, n, MAXP, &f, &used, &err);
			cr_assert_eq(rc, FRAME_NEED_MORE, "sample %zu cut at %zu: rc %d", i, n, rc);
			cr_assert(used > n && used <= bufs[i].len);
		}
	}
	free_samples(bufs);
}

Test(frame_roundtrip, limits_at_the_edge, .timeout = 30)
{
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame f;
	struct frame_init in;
	struct frame_msg m;
	char props[FRAME_PROPS_MAX + 1];
	uint8_t ping[FRAME_PING_MAX];
	char text[2000];

	frame_buf_init(&b);
	frame_writer_init(&w);
	sample_init(&in);
	memset(in.channel, 'C', FRAME_NAME_MAX);
	memset(in.qmgr, 'Q', FRAME_NAME_MAX);
	memset(in.peer_qmgr, 'P', FRAME_NAME_MAX);
	memset(in.sslciph, 'S', FRAME_CIPHER_MAX);
	in.channel[FRAME_NAME_MAX] = in.qmgr[FRAME_NAME_MAX] = in.peer_qmgr[FRAME_NAME_MAX] = '\0';
	in.sslciph[FRAME_CIPHER_MAX] = '\0';
	in.batchsz = FRAME_BATCHSZ_MAX;
	in.maxmsgl = FRAME_MAXMSGL_MAX;
	in.hbint = FRAME_HBINT_MAX;
	in.seqwrap = FRAME_SEQWRAP_MAX;
	in.min_version = in.max_version = 255;
	cr_assert_eq(frame_encode_init(&b, &w, &in, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(b.len, 16 + 231, "largest INIT is the rule's maximum");
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	assert_reencodes(&f, b.p, b.len);
	in.batchsz = 1;
	in.maxmsgl = 1;
	in.hbint = 0;
	in.seqwrap = FRAME_SEQWRAP_MIN;
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_init(&b, &w, &in, &err), FRAME_OK, "%s", err.why);

	memset(props, 'p', FRAME_PROPS_MAX);
	props[FRAME_PROPS_MAX] = '\0';
	sample_msg(&m, NULL, 0);
	m.props = props;
	m.props_len = FRAME_PROPS_MAX;
	m.seq = FRAME_SEQWRAP_MAX;
	m.priority = 0;
	m.expiry_remaining_ms = FRAME_EXPIRY_MAX_MS;
	m.put_time_ms = INT64_MAX;
	m.batch_id = UINT64_MAX;
	memset(m.format, 'F', FRAME_FORMAT_MAX);
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_msg_frame(&b, &w, &m, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.u.msg.props_len, FRAME_PROPS_MAX);
	cr_assert_eq(f.u.msg.put_time_ms, INT64_MAX);
	cr_assert_eq(f.u.msg.batch_id, UINT64_MAX);

	memset(ping, 0xff, sizeof(ping));
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_ping(&b, &w, ping, sizeof(ping), &err), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.u.ping.len, FRAME_PING_MAX);
	cr_assert_eq(frame_encode_ping(&b, &w, ping, sizeof(ping) + 1, &err), FRAME_EBAD);

	/* The longest ERROR text: cut to FRAME_TEXT_MAX on a character boundary. */
	for (size_t i = 0; i + 2 < sizeof(text); i += 2)
		memcpy(text + i, "\xc3\xa9", 2);  /* é */
	text[sizeof(text) - 1] = '\0';
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_error(&b, &w, "CHD5009", text), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(strlen(f.u.error.text), FRAME_TEXT_MAX);
	frame_buf_free(&b);
}

Test(frame_roundtrip, header_limits_checked_before_payload, .timeout = 30)
{
	uint8_t h[16];
	struct frame_header fh;
	struct frame_err err;

	/* The largest MSG payload passes the header check, one byte more does not. */
	mk(h, 1, FRAME_MSG, 0, NULL, 0);
	set_len(h, (uint32_t)FRAME_PAYLOAD_MAX);
	cr_assert_eq(frame_header_decode(h, 16, &fh, FRAME_PAYLOAD_MAX, &err), FRAME_OK, "%s",
	             err.why);
	set_len(h, (uint32_t)FRAME_PAYLOAD_MAX + 1);
	cr_assert_eq(frame_header_decode(h, 16, &fh, SIZE_MAX, &err), FRAME_EBAD);
	set_len(h, UINT32_MAX);
	cr_assert_eq(frame_header_decode(h, 16, &fh, SIZE_MAX, &err), FRAME_EBAD);
	/* ...and against the negotiated limit */
	set_len(h, (uint32_t)frame_max_payload(1024) + 1);
	cr_assert_eq(frame_header_decode(h, 16, &fh, frame_max_payload(1024), &err), FRAME_EBAD);
	cr_assert(strstr(err.why, "exceeds the limit") != NULL, "%s", err.why);
	set_len(h, (uint32_t)frame_max_payload(1024));
	cr_assert_eq(frame_header_decode(h, 16, &fh, frame_max_payload(1024), &err), FRAME_OK);
	/* before negotiation, a MSG of any real size is refused at the header */
	set_len(h, FRAME_CTRL_PAYLOAD_MAX + 1);
	cr_assert_eq(frame_header_decode(h, 16, &fh, FRAME_CTRL_PAYLOAD_MAX, &err), FRAME_EBAD);
	cr_assert_eq(frame_max_payload(UINT32_MAX), FRAME_PAYLOAD_MAX);
}

/* ---- rejections ---- */

Test(frame_reject, header, .timeout = 30)
{
	uint8_t p[64];
	size_t n;
	struct frame_header h;
	struct frame_err err;
	uint8_t stop = FRAME_STOP_OPERATOR;

	cr_assert_eq(frame_header_decode(NULL, 0, &h, MAXP, &err), FRAME_NEED_MORE);
	/* bad magic: refused from the first wrong byte, before 16 arrive */
	cr_assert_eq(frame_header_decode((const uint8_t *)"GET / HTTP/1.1\r\n", 1, &h, MAXP, &err),
	             FRAME_EBAD);
	cr_assert(strstr(err.why, "magic") != NULL);
	cr_assert_eq(frame_header_decode((const uint8_t *)"\x16\x03\x01", 3, &h, MAXP, &err),
	             FRAME_EBAD);
	cr_assert_eq(frame_header_decode((const uint8_t *)"CHN", 3, &h, MAXP, &err),
	             FRAME_NEED_MORE);
	cr_assert_eq(frame_header_decode((const uint8_t *)"CHNE", 4, &h, MAXP, &err), FRAME_EBAD);
	n = mk(p, 1, FRAME_HB, 0, NULL, 0);
	p[3] = 'X';
	expect_bad(p, n, "magic");
	/* versions */
	n = mk(p, 0, FRAME_HB, 0, NULL, 0);
	expect_bad(p, n, "version");
	n = mk(p, FRAME_VERSION_MAX + 1, FRAME_HB, 0, NULL, 0);
	expect_bad(p, n, "version");
	/* unknown types */
	for (int t = 0; t < 256; t++) {
		if (strcmp(frame_type_name(t), "UNKNOWN") != 0)
			continue;
		n = mk(p, 1, (uint8_t)t, 0, NULL, 0);
		expect_bad(p, n, "unknown frame type");
	}
	/* reserved flags: every bit outside each type's mask */
	for (int t = 0; t < 256; t++) {
		if (strcmp(frame_type_name(t), "UNKNOWN") == 0)
			continue;
		for (int bit = 0; bit < 16; bit++) {
			uint16_t fl = (uint16_t)(1u << bit);
			if ((t == FRAME_INIT || t == FRAME_MSG || t == FRAME_RESYNC_ACK ||
			     t == FRAME_RESYNC) && bit == 0)
				continue;
			if (t == FRAME_RESYNC && bit == 1)
				continue;
			n = mk(p, 1, (uint8_t)t, fl, NULL, 0);
			expect_bad(p, n, "reserved flag");
		}
	}
	/* lengths outside the type's bounds */
	n = mk(p, 1, FRAME_HB, 0, p, 1);
	expect_bad(p, n, "payload length");
	n = mk(p, 1, FRAME_STOP, 0, &stop, 1);
	set_len(p, 2);
	cr_assert_eq(frame_header_decode(p, 16, &h, MAXP, &err), FRAME_EBAD);
	set_len(p, 0);
	cr_assert_eq(frame_header_decode(p, 16, &h, MAXP, &err), FRAME_EBAD);
	mk(p, 1, FRAME_PING, 0, NULL, 0);
	set_len(p, FRAME_PING_MAX + 1);
	cr_assert_eq(frame_header_decode(p, 16, &h, MAXP, &err), FRAME_EBAD);
	mk(p, 1, FRAME_END_BATCH, 0, NULL, 0);
	set_len(p, UINT32_MAX);
	cr_assert_eq(frame_header_decode(p, 16, &h, MAXP, &err), FRAME_EBAD);
}

/* Cutting or padding any payload (and fixing the length field to match)
 * must be refused, except PING whose data is free-form. */
Test(frame_reject, truncated_and_trailing, .timeout = 30)
{
	struct frame_buf bufs[NSAMPLES];
	size_t k = samples(bufs);

	for (size_t i = 0; i < k; i++) {
		uint8_t *p = malloc(bufs[i].len + 1);
		uint8_t type = bufs[i].p[5];
		cr_assert_not_null(p);
		if (type == FRAME_PING || type == FRAME_PING_ACK) {
			free(p);
			continue;
		}
		memcpy(p, bufs[i].p, bufs[i].len);
		for (size_t n = FRAME_HEADER_LEN; n < bufs[i].len; n++) {
			set_len(p, (uint32_t)(n - FRAME_HEADER_LEN));
			expect_bad(p, n, NULL);
		}
		/* one trailing byte */
		p[bufs[i].len] = 0;
		set_len(p, (uint32_t)(bufs[i].len + 1 - FRAME_HEADER_LEN));
		expect_bad(p, bufs[i].len + 1, NULL);
		/* header and payload disagree in frame_decode */
		{
			struct frame_header h;
			struct frame f;
			struct frame_err err;
			set_len(p, (uint32_t)(bufs[i].len - FRAME_HEADER_LEN));
			cr_assert_eq(frame_header_decode(p, bufs[i].len, &h, MAXP, &err), FRAME_OK);
			if (h.length > 0)
				cr_assert_eq(frame_decode(&h, p + 16, h.length - 1, &f, &err), FRAME_EBAD);
		}
		free(p);
	}
	free_samples(bufs);
}

/* A valid MSG encoded, then one field patched at payload offset off. */
static size_t msg_patched(uint8_t *out, size_t off, const uint8_t *bytes, size_t nbytes)
{
	static const uint8_t body[] = "body";
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame_msg m;
	size_t n;

	sample_msg(&m, body, 4);
	frame_buf_init(&b);
	frame_writer_init(&w);
	cr_assert_eq(frame_encode_msg_frame(&b, &w, &m, &err), FRAME_OK, "%s", err.why);
	n = b.len;
	memcpy(out, b.p, n);
	if (nbytes)
		memcpy(out + FRAME_HEADER_LEN + off, bytes, nbytes);
	frame_buf_free(&b);
	return n;
}

/* payload offsets in the sample MSG */
#define OFF_SEQ 8
#define OFF_PRIO 12
#define OFF_PUT 61
#define OFF_EXP 69
#define OFF_XQM 77          /* 03 "QM2" */
#define OFF_XQ (OFF_XQM + 4) /* 0b "PAYMENTS.IN" */
#define OFF_FMT (OFF_XQ + 12) /* 05 "MQSTR" */
#define OFF_RQ (OFF_FMT + 6)  /* 07 "REPLY.Q" */
#define OFF_RQM (OFF_RQ + 8)  /* 03 "QM1" */
#define OFF_PROPS (OFF_RQM + 4)

Test(frame_reject, msg_fields, .timeout = 30)
{
	uint8_t p[512];
	size_t n;
	struct frame f;
	struct frame_err err;

	n = msg_patched(p, 0, NULL, 0);
	cr_assert_eq(dec(p, n, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_str_eq(f.u.msg.reply_qm, "QM1");
	cr_assert_eq(f.u.msg.body_len, 4);

	n = msg_patched(p, OFF_PRIO, (const uint8_t *)"\x0a", 1);
	expect_bad(p, n, "priority");
	n = msg_patched(p, OFF_PRIO, (const uint8_t *)"\xff", 1);
	expect_bad(p, n, "priority");
	n = msg_patched(p, 0, (const uint8_t *)"\0\0\0\0\0\0\0\0", 8);
	expect_bad(p, n, "batch id");
	n = msg_patched(p, OFF_SEQ, (const uint8_t *)"\0\0\0\0", 4);
	expect_bad(p, n, "seq");  /* persistent with seq 0 */
	n = msg_patched(p, OFF_SEQ, (const uint8_t *)"\x3b\x9a\xca\x00", 4);
	expect_bad(p, n, "seq");  /* 1000000000 > SEQWRAP max */
	n = msg_patched(p, 0, NULL, 0);
	p[7] = 0;  /* nonpersistent with seq 42 */
	expect_bad(p, n, "seq");
	n = msg_patched(p, OFF_PUT, (const uint8_t *)"\x80\0\0\0\0\0\0\0", 8);
	expect_bad(p, n, "put time");
	n = msg_patched(p, OFF_EXP, (const uint8_t *)"\0\0\x02\xde\x41\x35\x30\x01", 8);
	expect_bad(p, n, "expiry");  /* FRAME_EXPIRY_MAX_MS + 1 */
	/* names */
	n = msg_patched(p, OFF_XQM + 1, (const uint8_t *)" ", 1);
	expect_bad(p, n, "xmit qmgr");
	n = msg_patched(p, OFF_XQM + 2, (const uint8_t *)"\0", 1);
	expect_bad(p, n, "NUL");
	n = msg_patched(p, OFF_XQ + 1, (const uint8_t *)"\xc3\xa9", 2);
	expect_bad(p, n, "xmit queue");
	n = msg_patched(p, OFF_RQ + 7, (const uint8_t *)"*", 1);
	expect_bad(p, n, "reply queue");
	n = msg_patched(p, OFF_FMT + 1, (const uint8_t *)"\x01", 1);
	expect_bad(p, n, "format");
	/* string lengths that run past the payload */
	n = msg_patched(p, OFF_XQM, (const uint8_t *)"\xff", 1);
	expect_bad(p, n, NULL);
	n = msg_patched(p, OFF_FMT, (const uint8_t *)"\x09", 1);
	expect_bad(p, n, NULL);
	/* an empty required name */
	{
		struct frame_buf b;
		struct frame_writer w;
		struct frame_msg m;
		static const uint8_t body[] = "x";
		sample_msg(&m, body, 1);
		m.xmit_q[0] = '\0';
		frame_buf_init(&b);
		frame_writer_init(&w);
		cr_assert_eq(frame_encode_msg_frame(&b, &w, &m, &err), FRAME_EBAD);
		cr_assert_eq(b.len, 0, "a refused frame leaves the buffer as it was");
		cr_assert_eq(w.counter, 0, "a refused frame does not advance the counter");
		frame_buf_free(&b);
	}
	/* properties: invalid UTF-8, NUL, overlong, surrogate; length overflow */
	n = msg_patched(p, OFF_PROPS + 4, (const uint8_t *)"\xff", 1);
	expect_bad(p, n, "properties");
	n = msg_patched(p, OFF_PROPS + 4, (const uint8_t *)"\0", 1);
	expect_bad(p, n, "properties");
	n = msg_patched(p, OFF_PROPS + 4, (const uint8_t *)"\xc0\xaf", 2);
	expect_bad(p, n, "properties");
	n = msg_patched(p, OFF_PROPS + 4, (const uint8_t *)"\xed\xa0\x80", 3);
	expect_bad(p, n, "properties");
	n = msg_patched(p, OFF_PROPS, (const uint8_t *)"\xff\xff\xff\xff", 4);
	expect_bad(p, n, "properties");
	n = msg_patched(p, OFF_PROPS, (const uint8_t *)"\x00\x01\x00\x01", 4);
	expect_bad(p, n, "properties");  /* 65537 > FRAME_PROPS_MAX */
	/* body length must match what remains, and be bounded */
	n = msg_patched(p, 0, NULL, 0);
	p[n - 5] = 5;
	expect_bad(p, n, "body");
	p[n - 5] = 3;
	expect_bad(p, n, "body");
	memcpy(p + n - 8, "\xff\xff\xff\xff", 4);
	expect_bad(p, n, "body");
}

Test(frame_reject, control_fields, .timeout = 30)
{
	uint8_t p[600], pl[600];
	size_t n;
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame_init in;

	/* INIT: bad values */
	frame_buf_init(&b);
	frame_writer_init(&w);
	sample_init(&in);
	cr_assert_eq(frame_encode_init(&b, &w, &in, &err), FRAME_OK, "%s", err.why);
	memcpy(p, b.p, b.len);
	n = b.len;
	p[16] = 0;                       /* min version 0 */
	expect_bad(p, n, "versions");
	p[16] = 2;                       /* min 2 > max 1 */
	expect_bad(p, n, "versions");
	p[16] = 1;
	p[18] = 5;                       /* channel type */
	expect_bad(p, n, "channel type");
	p[18] = 0;
	expect_bad(p, n, "channel type");
	p[18] = 1;
	p[20] = '-';                     /* channel name QM1.QM2 -> Q-1... */
	expect_bad(p, n, "channel");
	p[20] = 'M';
	p[16 + 3 + 8 + 4 + 1] = 0;       /* BATCHSZ 50 -> 0x00000032 -> first byte... */
	memcpy(p + 16 + 3 + 8 + 4 + 1, "\0\0\0\0", 4);
	expect_bad(p, n, "BATCHSZ");
	memcpy(p + 16 + 3 + 8 + 4 + 1, "\0\0\x27\x10", 4);  /* 10000 */
	expect_bad(p, n, "BATCHSZ");
	memcpy(p + 16 + 3 + 8 + 4 + 1, "\0\0\0\x32", 4);
	memcpy(p + 16 + 3 + 8 + 4 + 5, "\x06\x40\x00\x01", 4);  /* 100 MiB + 1 */
	expect_bad(p, n, "MAXMSGL");
	memcpy(p + 16 + 3 + 8 + 4 + 5, "\0\x40\0\0", 4);
	memcpy(p + 16 + 3 + 8 + 4 + 9, "\0\x0f\x42\x40", 4);  /* HBINT 1000000 */
	expect_bad(p, n, "HBINT");
	memcpy(p + 16 + 3 + 8 + 4 + 9, "\0\0\x01\x2c", 4);
	memcpy(p + 16 + 3 + 8 + 4 + 13, "\0\0\0\x63", 4);  /* SEQWRAP 99 */
	expect_bad(p, n, "SEQWRAP");
	memcpy(p + 16 + 3 + 8 + 4 + 13, "\x3b\x9a\xc9\xff", 4);
	p[n - 1] = '-';                  /* CipherSpec name */
	expect_bad(p, n, "sslciph");
	p[n - 1] = '6';
	cr_assert_eq(dec(p, n, (struct frame[1]){0}, &err), FRAME_OK, "%s", err.why);
	/* encoder refuses an over-long name */
	memset(in.channel, 'C', sizeof(in.channel));
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_init(&b, &w, &in, &err), FRAME_EBAD);
	cr_assert_eq(b.len, 0);
	frame_buf_free(&b);

	/* ERROR: bad codes, text with a newline, bad UTF-8, text too long */
	memcpy(pl, "\x07" "CHD500X" "\x00\x00", 10);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 10);
	expect_bad(p, n, "code");
	memcpy(pl, "\x06" "CHD500" "\x00\x00", 9);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 9);
	expect_bad(p, n, NULL);
	memcpy(pl, "\x07" "XHD5009" "\x00\x00", 10);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 10);
	expect_bad(p, n, "code");
	memcpy(pl, "\x07" "CHD5009" "\x00\x03" "a\nb", 13);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 13);
	expect_bad(p, n, "text");
	memcpy(pl, "\x07" "CHD5009" "\x00\x03" "a\xe9z", 13);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 13);
	expect_bad(p, n, "text");
	memcpy(pl, "\x07" "CHD5009" "\x02\x01", 10);  /* 513 */
	memset(pl + 10, 'a', 513);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 10 + 512);  /* payload max 522: text length lies */
	expect_bad(p, n, "text");
	memcpy(pl, "\x07" "CHD5009" "\x00\x05" "abc", 12);
	n = mk(p, 1, FRAME_ERROR, 0, pl, 12);
	expect_bad(p, n, "truncated");
	/* stable frames must be version 1 (only testable once a v2 exists) */

	/* RESYNC */
	memset(pl, 0, 28);
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT | FRAME_F_RESYNC_RESET, pl, 28);
	expect_bad(p, n, "INDOUBT and RESET");
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT, pl, 28);
	expect_bad(p, n, "in-doubt");          /* in doubt, batch 0 */
	pl[19] = 1;                            /* in-doubt batch 1, count 0 */
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT, pl, 28);
	expect_bad(p, n, "in-doubt");
	pl[27] = 1;
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT, pl, 28);
	cr_assert_eq(dec(p, n, (struct frame[1]){0}, &err), FRAME_OK, "%s", err.why);
	n = mk(p, 1, FRAME_RESYNC, 0, pl, 28);
	expect_bad(p, n, "without the INDOUBT flag");
	pl[7] = 1;                             /* committed batch 1 == in-doubt 1 */
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT, pl, 28);
	expect_bad(p, n, "not after committed");
	memset(pl, 0, 28);
	memcpy(pl + 24, "\0\0\x27\x10", 4);    /* count 10000 */
	pl[19] = 1;
	n = mk(p, 1, FRAME_RESYNC, FRAME_F_RESYNC_INDOUBT, pl, 28);
	expect_bad(p, n, "count");
	memset(pl, 0, 28);
	memcpy(pl + 8, "\xff\xff\xff\xff", 4); /* seq */
	n = mk(p, 1, FRAME_RESYNC, 0, pl, 28);
	expect_bad(p, n, "seq");

	/* END_BATCH / CONFIRM */
	memcpy(pl, "\0\0\0\0\0\0\0\x01" "\0\0\0\0" "\0\0\0\x05", 16);
	n = mk(p, 1, FRAME_END_BATCH, 0, pl, 16);
	expect_bad(p, n, "count");             /* empty batch */
	memcpy(pl + 8, "\xff\xff\xff\xff", 4);
	n = mk(p, 1, FRAME_CONFIRM, 0, pl, 16);
	expect_bad(p, n, "count");             /* overflowing count */
	memcpy(pl, "\0\0\0\0\0\0\0\0" "\0\0\0\x01" "\0\0\0\x05", 16);
	n = mk(p, 1, FRAME_CONFIRM, 0, pl, 16);
	expect_bad(p, n, "batch id");

	/* STOP */
	pl[0] = 0;
	n = mk(p, 1, FRAME_STOP, 0, pl, 1);
	expect_bad(p, n, "reason");
	pl[0] = 5;
	n = mk(p, 1, FRAME_STOP, 0, pl, 1);
	expect_bad(p, n, "reason");
	frame_writer_init(&w);
	frame_buf_init(&b);
	cr_assert_eq(frame_encode_stop(&b, &w, 9, &err), FRAME_EBAD);
	cr_assert_eq(frame_encode_error(&b, &w, "CHD50", "x"), FRAME_EBAD);
	cr_assert_eq(frame_encode_error(&b, &w, NULL, "x"), FRAME_EBAD);
	cr_assert_eq(b.len, 0);
	frame_buf_free(&b);
}

Test(frame_reject, encoder_checks_msg, .timeout = 30)
{
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct chd_msg m;
	static uint8_t body[] = "x";

	frame_buf_init(&b);
	frame_writer_init(&w);
	memset(&m, 0, sizeof(m));
	m.body = body;
	m.body_len = 1;
	m.persistent = true;
	strcpy(m.xmit_qm, "QM2");
	strcpy(m.xmit_q, "Q");
	m.priority = 10;
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 1, &m, 0, &err), FRAME_EBAD);
	cr_assert(strstr(err.why, "priority") != NULL);
	m.priority = -1;
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 1, &m, 0, &err), FRAME_EBAD);
	m.priority = 0;
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);  /* seq 0 */
	cr_assert_eq(frame_encode_msg(&b, &w, 0, 1, &m, 0, &err), FRAME_EBAD);  /* batch 0 */
	m.persistent = false;
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 1, &m, 0, &err), FRAME_EBAD);  /* np with seq */
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_OK, "%s", err.why);
	strcpy(m.reply_q, "BAD Q");
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);
	cr_assert(strstr(err.why, "reply queue") != NULL, "%s", err.why);
	m.reply_q[0] = '\0';
	strcpy(m.format, "\tX");
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);
	m.format[0] = '\0';
	m.props = (char *)"k=\xff";
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);
	m.props = NULL;
	m.body_len = (size_t)FRAME_MAXMSGL_MAX + 1;
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);
	m.body_len = 1;
	m.xmit_qm[0] = '\0';
	cr_assert_eq(frame_encode_msg(&b, &w, 1, 0, &m, 0, &err), FRAME_EBAD);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(w.counter, 1);
	frame_buf_free(&b);
}

/* ---- MSG <-> chd_msg ---- */

Test(frame_msg, chd_round_trip_and_expiry, .timeout = 30)
{
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame f;
	struct chd_msg m, out;
	const int64_t now = 1700000000000LL;

	memset(&m, 0, sizeof(m));
	msg_new_id(m.msgid);
	memset(m.correlid, 0x5a, MSG_ID_LEN);
	m.priority = 3;
	m.persistent = true;
	m.put_time_ms = now - 10;
	m.expiry_ms = now + 5000;
	strcpy(m.format, "MQSTR");
	strcpy(m.reply_q, "R.Q");
	strcpy(m.reply_qm, "QM1");
	strcpy(m.xmit_qm, "QM2");
	strcpy(m.xmit_q, "IN");
	m.props = strdup("a=1\nb=2");
	m.body = (uint8_t *)strdup("payload");
	m.body_len = 7;
	frame_buf_init(&b);
	frame_writer_init(&w);
	cr_assert_eq(frame_encode_msg(&b, &w, 4, 99, &m, now, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_eq(f.u.msg.expiry_remaining_ms, 5000);
	cr_assert_eq(f.u.msg.seq, 99);
	cr_assert_eq(f.u.msg.batch_id, 4);
	/* the receiver's clock is 1 hour ahead: expiry follows its clock */
	cr_assert_eq(frame_msg_to_chd(&f.u.msg, now + 3600000, &out), FRAME_OK);
	cr_assert_eq(out.expiry_ms, now + 3600000 + 5000);
	cr_assert(memcmp(out.msgid, m.msgid, MSG_ID_LEN) == 0);
	cr_assert(memcmp(out.correlid, m.correlid, MSG_ID_LEN) == 0);
	cr_assert_eq(out.priority, 3);
	cr_assert(out.persistent);
	cr_assert_eq(out.put_time_ms, now - 10);
	cr_assert_str_eq(out.format, "MQSTR");
	cr_assert_str_eq(out.reply_q, "R.Q");
	cr_assert_str_eq(out.reply_qm, "QM1");
	cr_assert_str_eq(out.xmit_qm, "QM2");
	cr_assert_str_eq(out.xmit_q, "IN");
	cr_assert_str_eq(out.props, "a=1\nb=2");
	cr_assert_eq(out.body_len, 7);
	cr_assert(memcmp(out.body, "payload", 7) == 0);
	msg_clear(&out);

	/* already expired when sent: 1 ms left; never: 0; far: capped */
	frame_buf_reset(&b);
	m.expiry_ms = now - 1;
	cr_assert_eq(frame_encode_msg(&b, &w, 4, 99, &m, now, &err), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK);
	cr_assert_eq(f.u.msg.expiry_remaining_ms, 1);
	frame_buf_reset(&b);
	m.expiry_ms = INT64_MAX;
	cr_assert_eq(frame_encode_msg(&b, &w, 4, 99, &m, INT64_MIN, &err), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK);
	cr_assert_eq(f.u.msg.expiry_remaining_ms, FRAME_EXPIRY_MAX_MS);
	cr_assert_eq(frame_msg_to_chd(&f.u.msg, INT64_MAX - 1, &out), FRAME_OK);
	cr_assert_eq(out.expiry_ms, INT64_MAX);  /* saturates */
	msg_clear(&out);
	frame_buf_reset(&b);
	m.expiry_ms = 0;
	free(m.body);
	m.body = NULL;
	m.body_len = 0;
	cr_assert_eq(frame_encode_msg(&b, &w, 4, 99, &m, now, &err), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK);
	cr_assert_eq(f.u.msg.expiry_remaining_ms, 0);
	cr_assert_eq(frame_msg_to_chd(&f.u.msg, now, &out), FRAME_OK);
	cr_assert_eq(out.expiry_ms, 0);
	cr_assert_not_null(out.body);
	cr_assert_eq(out.body_len, 0);
	msg_clear(&out);
	msg_clear(&m);
	frame_buf_free(&b);
}

Test(frame_msg, error_text_is_sanitized, .timeout = 30)
{
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	struct frame f;

	frame_buf_init(&b);
	frame_writer_init(&w);
	cr_assert_eq(frame_encode_errorf(&b, &w, "CHD4005", "peer DN %s\nline2\x7f \xff\xc3",
	                                 "CN=QM2, O=\xc3\xa9t\xc3\xa9"), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_str_eq(f.u.error.code, "CHD4005");
	cr_assert_str_eq(f.u.error.text, "peer DN CN=QM2, O=\xc3\xa9t\xc3\xa9 line2  ??");
	frame_buf_reset(&b);
	cr_assert_eq(frame_encode_error(&b, &w, "CHD5009", NULL), FRAME_OK);
	cr_assert_eq(dec(b.p, b.len, &f, &err), FRAME_OK, "%s", err.why);
	cr_assert_str_eq(f.u.error.text, "");
	frame_buf_free(&b);
}

/* ---- protocol rules ---- */

static struct frame_params local_rcvr(void)
{
	struct frame_params p = {"QM1.QM2", FRAME_CH_RCVR, "QM2", 100, 1048576, 60, 999999999, 0};
	return p;
}

Test(frame_rules, negotiate, .timeout = 30)
{
	struct frame_init in;
	struct frame_init_ack ack;
	struct frame_params lp = local_rcvr();
	enum chd_code_id code;
	char why[256];

	sample_init(&in);
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)), "%s", why);
	cr_assert_eq(ack.version, 1);
	cr_assert_eq(ack.chtype, FRAME_CH_RCVR);
	cr_assert_str_eq(ack.qmgr, "QM2");
	cr_assert_eq(ack.batchsz, 50);       /* lower */
	cr_assert_eq(ack.maxmsgl, 1048576);  /* lower */
	cr_assert_eq(ack.hbint, 300);        /* higher */
	cr_assert_eq(ack.seqwrap, 999999999);
	cr_assert(frame_check_init_ack(&in, &ack, &code, why, sizeof(why)), "%s", why);

	/* an initiator offering 1-5 gets the highest both speak (3);
	 * one offering 1-2 gets 2, one offering only 1 gets 1 (negotiating
	 * down) */
	in.max_version = 5;
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)), "%s", why);
	cr_assert_eq(ack.version, 3);
	in.max_version = 2;
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)), "%s", why);
	cr_assert_eq(ack.version, 2);
	in.max_version = 1;
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)), "%s", why);
	cr_assert_eq(ack.version, 1);
	in.min_version = 4;
	in.max_version = 5;
	cr_assert(!frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_VERSION);
	cr_assert(strstr(why, "4-5") != NULL, "%s", why);
	in.min_version = 1;
	in.max_version = 1;
	in.chtype = FRAME_CH_SVR;
	cr_assert(!frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_TYPE);
	cr_assert(strstr(why, "SVR") && strstr(why, "RCVR"), "%s", why);
	in.chtype = FRAME_CH_SDR;
	strcpy(in.peer_qmgr, "QM9");
	cr_assert(!frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_QMGR);
	strcpy(in.peer_qmgr, "QM2");
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)), "%s", why);
	in.seqwrap = 1000;
	cr_assert(!frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	cr_assert(strstr(why, "SEQWRAP") && strstr(why, "1000") && strstr(why, "999999999"),
	          "%s", why);
	cr_assert_eq(code, CHD_CH_SEQWRAP);
	in.seqwrap = 999999999;
	strcpy(in.channel, "OTHER");
	cr_assert(!frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_PROTOCOL);
	strcpy(in.channel, "QM1.QM2");

	/* the initiator double-checks what came back */
	cr_assert(frame_negotiate(&in, &lp, &ack, &code, why, sizeof(why)));
	ack.batchsz = 51;
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	ack.batchsz = 50;
	ack.hbint = 10;
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	ack.hbint = 300;
	ack.version = 2;
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_VERSION);
	ack.version = 1;
	ack.chtype = FRAME_CH_SDR;
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_TYPE);
	ack.chtype = FRAME_CH_RCVR;
	strcpy(ack.qmgr, "QM3");
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	cr_assert_eq(code, CHD_CH_QMGR);
	strcpy(ack.qmgr, "QM2");
	ack.seqwrap = 100;
	cr_assert(!frame_check_init_ack(&in, &ack, &code, why, sizeof(why)));
	ack.seqwrap = 999999999;
	cr_assert(frame_check_init_ack(&in, &ack, &code, why, sizeof(why)), "%s", why);
}

Test(frame_rules, channel_types, .timeout = 30)
{
	bool sends;

	cr_assert(frame_chtype_pair(FRAME_CH_SDR, FRAME_CH_RCVR, &sends) && sends);
	cr_assert(frame_chtype_pair(FRAME_CH_SVR, FRAME_CH_RQSTR, &sends) && sends);
	cr_assert(frame_chtype_pair(FRAME_CH_RQSTR, FRAME_CH_SVR, &sends) && !sends);
	for (int a = 0; a <= 5; a++)
		for (int b = 0; b <= 5; b++) {
			bool ok = (a == FRAME_CH_SDR && b == FRAME_CH_RCVR) ||
			          (a == FRAME_CH_SVR && b == FRAME_CH_RQSTR) ||
			          (a == FRAME_CH_RQSTR && b == FRAME_CH_SVR);
			cr_assert_eq(frame_chtype_pair(a, b, NULL), ok, "%d %d", a, b);
		}
	cr_assert_eq(frame_chtype_parse("rqstr"), FRAME_CH_RQSTR);
	cr_assert_eq(frame_chtype_parse("xyz"), -1);
	cr_assert_str_eq(frame_chtype_name(FRAME_CH_SVR), "SVR");
	cr_assert_str_eq(frame_stop_reason_name(FRAME_STOP_DISCINT), "DISCINT");
	cr_assert_eq(frame_seq_next(5, 10), 6);
	cr_assert_eq(frame_seq_next(10, 10), 1);
	cr_assert_eq(frame_seq_next(0, 10), 1);
	cr_assert_eq(frame_seq_next(FRAME_SEQWRAP_MAX, FRAME_SEQWRAP_MAX), 1);
}

/* Version 2: batches 11-13 in doubt after committed batch 10 (seq 500);
 * their last seqs 550, 600, 650.  The receiver may have committed any. */
Test(frame_rules, resync_several_in_doubt, .timeout = 30)
{
	struct frame_resync rs = {true, false, 10, 500, 13, 650, 50};
	const uint32_t seqs[] = {550, 600, 650};
	struct frame_resync_ack ack;
	char why[256];

	/* none committed */
	cr_assert(frame_resync_answer(&rs, 10, 500, &ack, why, sizeof(why)), "%s", why);
	cr_assert(!ack.committed);
	cr_assert(frame_resync_check_ack_v(&rs, &ack, seqs, 3, why, sizeof(why)), "%s", why);
	/* the middle one: committed up to 12 */
	cr_assert(frame_resync_answer(&rs, 12, 600, &ack, why, sizeof(why)), "%s", why);
	cr_assert(ack.committed && ack.batch_id == 12 && ack.seq == 600);
	cr_assert(frame_resync_check_ack_v(&rs, &ack, seqs, 3, why, sizeof(why)), "%s", why);
	/* without the list (version 1 view) the middle one is refused */
	cr_assert(!frame_resync_check_ack(&rs, &ack, why, sizeof(why)));
	/* the middle one with a seq that is not its own */
	cr_assert(frame_resync_answer(&rs, 12, 599, &ack, why, sizeof(why)), "%s", why);
	cr_assert(!frame_resync_check_ack_v(&rs, &ack, seqs, 3, why, sizeof(why)));
	cr_assert(strstr(why, "599") && strstr(why, "11 to 13"), "%s", why);
	/* all of them */
	cr_assert(frame_resync_answer(&rs, 13, 650, &ack, why, sizeof(why)), "%s", why);
	cr_assert(ack.committed && ack.batch_id == 13);
	cr_assert(frame_resync_check_ack_v(&rs, &ack, seqs, 3, why, sizeof(why)), "%s", why);
	/* beyond the range, or behind it: mismatch at the receiver */
	cr_assert(!frame_resync_answer(&rs, 14, 700, &ack, why, sizeof(why)));
	cr_assert(!frame_resync_answer(&rs, 9, 450, &ack, why, sizeof(why)));
	/* a not-committed answer whose batch is in the range is refused */
	ack = (struct frame_resync_ack){false, 12, 500};
	cr_assert(!frame_resync_check_ack_v(&rs, &ack, seqs, 3, why, sizeof(why)));
}

Test(frame_rules, resync, .timeout = 30)
{
	struct frame_resync rs = {false, false, 10, 500, 0, 0, 0};
	struct frame_resync_ack ack;
	char why[256];

	/* in step */
	cr_assert(frame_resync_answer(&rs, 10, 500, &ack, why, sizeof(why)), "%s", why);
	cr_assert(!ack.committed && ack.seq == 500 && ack.batch_id == 10);
	cr_assert(frame_resync_check_ack(&rs, &ack, why, sizeof(why)), "%s", why);
	/* mismatch: both numbers in the reason */
	cr_assert(!frame_resync_answer(&rs, 10, 480, &ack, why, sizeof(why)));
	cr_assert(strstr(why, "500") && strstr(why, "480"), "%s", why);
	/* in doubt, committed at the receiver */
	rs = (struct frame_resync){true, false, 10, 500, 11, 550, 50};
	cr_assert(frame_resync_answer(&rs, 11, 550, &ack, why, sizeof(why)), "%s", why);
	cr_assert(ack.committed && ack.batch_id == 11 && ack.seq == 550);
	cr_assert(frame_resync_check_ack(&rs, &ack, why, sizeof(why)), "%s", why);
	/* in doubt, not committed: back out */
	cr_assert(frame_resync_answer(&rs, 10, 500, &ack, why, sizeof(why)), "%s", why);
	cr_assert(!ack.committed && ack.seq == 500);
	cr_assert(frame_resync_check_ack(&rs, &ack, why, sizeof(why)), "%s", why);
	/* in doubt, receiver somewhere else */
	cr_assert(!frame_resync_answer(&rs, 9, 450, &ack, why, sizeof(why)));
	cr_assert(strstr(why, "550") && strstr(why, "450"), "%s", why);
	cr_assert(!frame_resync_answer(&rs, 11, 500, &ack, why, sizeof(why)));
	/* reset at the sending end: the receiver adopts its number */
	rs = (struct frame_resync){false, true, 10, 1, 0, 0, 0};
	cr_assert(frame_resync_answer(&rs, 12, 777, &ack, why, sizeof(why)), "%s", why);
	cr_assert(!ack.committed && ack.seq == 1 && ack.batch_id == 12);
	cr_assert(frame_resync_check_ack(&rs, &ack, why, sizeof(why)), "%s", why);
	/* the sender refuses inconsistent answers */
	rs = (struct frame_resync){false, false, 10, 500, 0, 0, 0};
	ack = (struct frame_resync_ack){true, 11, 550};
	cr_assert(!frame_resync_check_ack(&rs, &ack, why, sizeof(why)));
	ack = (struct frame_resync_ack){false, 10, 499};
	cr_assert(!frame_resync_check_ack(&rs, &ack, why, sizeof(why)));
	rs = (struct frame_resync){true, false, 10, 500, 11, 550, 50};
	ack = (struct frame_resync_ack){true, 11, 549};
	cr_assert(!frame_resync_check_ack(&rs, &ack, why, sizeof(why)));
	ack = (struct frame_resync_ack){false, 11, 500};
	cr_assert(!frame_resync_check_ack(&rs, &ack, why, sizeof(why)));
}

/* ---- robustness: deterministic mutation of valid frames ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic and good enough to spray bytes */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Every test here has the same timeout: Criterion 2.4 leaks in its runner
 * (LeakSanitizer fails the run) when one binary mixes timeouts under -j2. */
Test(frame_robust, mutation_loop, .timeout = 30)
{
	static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x30, 0x09, 0x0a,
	                                      0x31, 0x2e, 0xc3, 0xed};
	struct frame_buf bufs[NSAMPLES];
	size_t k = samples(bufs);
	long ok = 0, bad = 0, more = 0;
	uint8_t *work = malloc(8192);

	cr_assert_not_null(work);
	rng_state = 0x5eedf00dcafe1234ULL;
	for (long iter = 0; iter < 200000; iter++) {
		const struct frame_buf *src = &bufs[rng() % k];
		size_t n = src->len, mutations = 1 + rng() % 4;
		uint8_t *p;
		struct frame f;
		struct frame_err err;
		size_t used = 0;
		int rc;

		if (n > 4096)
			continue;
		memcpy(work, src->p, n);
		for (size_t m = 0; m < mutations; m++) {
			size_t at = n ? rng() % n : 0;
			switch (rng() % 8) {
			case 0: if (n) work[at] ^= (uint8_t)(1u << (rng() % 8)); break;
			case 1: if (n) work[at] = (uint8_t)rng(); break;
			case 2: if (n) work[at] = interesting[rng() % sizeof(interesting)]; break;
			case 3: n = rng() % (n + 1); break;                   /* truncate */
			case 4: if (n < 8000) work[n++] = (uint8_t)rng(); break;  /* append */
			case 5: /* make the length field claim the real size, +-1 */
				if (n >= 16)
					set_len(work, (uint32_t)(n - 16 + (rng() % 3) - 1));
				break;
			case 6: if (n >= 16) set_len(work, (uint32_t)rng()); break;
			default: /* change a string length byte-ish field somewhere in the payload */
				if (n > 17) work[16 + rng() % (n - 16)] = (uint8_t)(rng() % 80);
				break;
			}
		}
		p = malloc(n ? n : 1);  /* exact size: ASan catches any over-read */
		cr_assert_not_null(p);
		memcpy(p, work, n);
		rc = frame_decode_buf(p, n, MAXP, &f, &used, &err);
		if (rc == FRAME_OK) {
			ok++;
			cr_assert(used <= n);
			assert_reencodes(&f, p, used);
		} else if (rc == FRAME_NEED_MORE) {
			more++;
			cr_assert(used > n);
		} else {
			cr_assert_eq(rc, FRAME_EBAD);
			cr_assert(err.why[0] != '\0');
			bad++;
		}
		free(p);
	}
	cr_log_info("mutation loop: %ld decoded, %ld refused, %ld incomplete", ok, bad, more);
	cr_assert(ok > 1000 && bad > 1000 && more > 100, "ok %ld bad %ld more %ld", ok, bad, more);
	free(work);
	free_samples(bufs);
}
