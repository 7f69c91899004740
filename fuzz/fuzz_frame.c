/* libFuzzer target for the channel frame codec (src/proto, pure).
 *
 * The input is a byte stream as a peer would send it: frames are decoded
 * one after another until the bytes run out or one is refused.  Beyond
 * "never crash, never read out of bounds", it checks the properties the
 * channel code relies on:
 *   - a refused frame always has a reason;
 *   - an accepted frame re-encodes to exactly the same bytes (the encoding
 *     is canonical, so encoder and decoder agree on every rule);
 *   - NEED_MORE asks for more bytes than are there;
 *   - a decoded message converts to a struct chd_msg and back to the
 *     same payload;
 *   - an INIT the responder accepts yields an INIT_ACK the initiator
 *     accepts, and a RESYNC answer is accepted by the sender (given its records).
 * Run: fuzz/run.sh [seconds] */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chand/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reencode(const struct frame *f, const uint8_t *p, size_t n)
{
	struct frame_buf b;
	struct frame_writer w = {f->h.version, f->h.counter};
	struct frame_err err;

	frame_buf_init(&b);
	if (frame_encode(&b, &w, f, &err) != FRAME_OK || b.len != n || memcmp(b.p, p, n) != 0)
		abort();
	frame_buf_free(&b);
}

static void check_msg(const struct frame_msg *fm, const uint8_t *frame, size_t n)
{
	struct chd_msg m;
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;

	if (frame_msg_to_chd(fm, 1700000000000LL, &m) != FRAME_OK)
		return;  /* out of memory is not a bug */
	/* Back to the wire as the channel would send it (same clock): the
	 * payload must come out byte for byte as it came in. */
	frame_buf_init(&b);
	frame_writer_init(&w);
	if (frame_encode_msg(&b, &w, fm->batch_id, fm->seq, &m, 1700000000000LL, &err) != FRAME_OK)
		abort();
	if (b.len != n || memcmp(b.p + 6, frame + 6, 6) != 0 ||
	    memcmp(b.p + FRAME_HEADER_LEN, frame + FRAME_HEADER_LEN, n - FRAME_HEADER_LEN) != 0)
		abort();
	frame_buf_free(&b);
	msg_clear(&m);
}

static void check_init(const struct frame_init *in)
{
	struct frame_params local = {in->channel, FRAME_CH_RCVR, "QM2", 100, 1048576, 60,
	                             999999999, 0};
	struct frame_init_ack ack;
	struct frame_buf b;
	struct frame_writer w;
	struct frame_err err;
	enum chd_code_id code;
	char why[256];

	if (in->chtype == FRAME_CH_RQSTR)
		local.chtype = FRAME_CH_SVR;
	else if (in->chtype == FRAME_CH_SVR)
		local.chtype = FRAME_CH_RQSTR;
	local.seqwrap = in->seqwrap;
	if (!frame_negotiate(in, &local, &ack, &code, why, sizeof(why))) {
		if (why[0] == '\0')
			abort();
		return;
	}
	if (!frame_check_init_ack(in, &ack, &code, why, sizeof(why)))
		abort();
	frame_buf_init(&b);
	frame_writer_init(&w);
	if (frame_encode_init_ack(&b, &w, &ack, &err) != FRAME_OK)
		abort();
	frame_buf_free(&b);
}

static void check_resync(const struct frame_resync *rs)
{
	const uint64_t batches[3] = {rs->batch_id, rs->indoubt_batch, rs->batch_id + 1};
	const uint32_t seqs[3] = {rs->seq, rs->indoubt_seq, rs->seq + 1};
	/* What the sending end recorded of the batches in doubt: here only
	 * the first, batch_id+1 ending at seq+1 (the third candidate), which
	 * the receiver may have committed when several are in doubt. */
	const uint32_t recorded[1] = {rs->seq + 1};
	struct frame_resync_ack ack;
	char why[256];

	for (int i = 0; i < 3; i++)
		if (frame_resync_answer(rs, batches[i], seqs[i], &ack, why, sizeof(why)) &&
		    !frame_resync_check_ack_v(rs, &ack, recorded, 1, why, sizeof(why)))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct frame f;
		struct frame_err err;
		size_t used = 0;
		int rc;

		err.why[0] = '\0';
		rc = frame_decode_buf(data + off, size - off, FRAME_PAYLOAD_MAX, &f, &used, &err);
		if (rc == FRAME_NEED_MORE) {
			if (used <= size - off)
				abort();
			break;
		}
		if (rc != FRAME_OK) {
			if (rc != FRAME_EBAD || err.why[0] == '\0')
				abort();
			break;
		}
		if (used < FRAME_HEADER_LEN || used > size - off)
			abort();
		check_reencode(&f, data + off, used);
		if (f.h.type == FRAME_MSG)
			check_msg(&f.u.msg, data + off, used);
		else if (f.h.type == FRAME_INIT)
			check_init(&f.u.init);
		else if (f.h.type == FRAME_RESYNC)
			check_resync(&f.u.resync);
		off += used;
	}
	return 0;
}
