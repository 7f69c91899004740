/* Protocol rules both ends must apply identically: negotiation of the
 * channel values and the resynchronisation decision (doc/PROTOCOL.md
 * sections 5 and 6).  Pure functions over decoded frames. */
#include <stdio.h>
#include <string.h>

#include "chand/frame.h"
#include "frame_int.h"

static bool refuse(enum chd_code_id *code, enum chd_code_id c, char *why, size_t whylen,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static bool refuse(enum chd_code_id *code, enum chd_code_id c, char *why, size_t whylen,
                   const char *fmt, ...)
{
	va_list ap;

	if (code)
		*code = c;
	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

bool frame_negotiate(const struct frame_init *in, const struct frame_params *local,
                     struct frame_init_ack *ack, enum chd_code_id *code,
                     char *why, size_t whylen)
{
	int mine = local->max_version >= FRAME_VERSION_MIN && local->max_version <= FRAME_VERSION_MAX
	           ? local->max_version : FRAME_VERSION_MAX;
	int lo = in->min_version > FRAME_VERSION_MIN ? in->min_version : FRAME_VERSION_MIN;
	int hi = in->max_version < mine ? in->max_version : mine;

	if (lo > hi)
		return refuse(code, CHD_CH_VERSION, why, whylen,
		              "protocol version mismatch: initiator speaks %u-%u, responder %d-%d",
		              in->min_version, in->max_version, FRAME_VERSION_MIN, mine);
	if (strcmp(in->channel, local->channel) != 0)
		return refuse(code, CHD_CH_PROTOCOL, why, whylen,
		              "INIT names channel '%s' but the connection is for channel '%s'",
		              in->channel, local->channel);
	if (!frame_chtype_pair(in->chtype, local->chtype, NULL))
		return refuse(code, CHD_CH_TYPE, why, whylen,
		              "channel %s: initiator type %s does not pair with responder type %s",
		              local->channel, frame_chtype_name(in->chtype),
		              frame_chtype_name(local->chtype));
	if (in->peer_qmgr[0] != '\0' && strcmp(in->peer_qmgr, local->qmgr) != 0)
		return refuse(code, CHD_CH_QMGR, why, whylen,
		              "channel %s: initiator expects queue manager %s, this is %s",
		              local->channel, in->peer_qmgr, local->qmgr);
	if (in->seqwrap != local->seqwrap)
		return refuse(code, CHD_CH_SEQWRAP, why, whylen,
		              "channel %s: SEQWRAP mismatch: initiator %u, responder %u "
		              "(set the same SEQWRAP at both ends)",
		              local->channel, in->seqwrap, local->seqwrap);
	memset(ack, 0, sizeof(*ack));
	ack->version = (uint8_t)hi;
	ack->chtype = (uint8_t)local->chtype;
	str_copy(ack->qmgr, local->qmgr, sizeof(ack->qmgr));
	ack->batchsz = min_u32(in->batchsz, local->batchsz);
	ack->maxmsgl = min_u32(in->maxmsgl, local->maxmsgl);
	ack->hbint = in->hbint > local->hbint ? in->hbint : local->hbint;
	ack->seqwrap = local->seqwrap;
	return true;
}

bool frame_check_init_ack(const struct frame_init *sent, const struct frame_init_ack *ack,
                          enum chd_code_id *code, char *why, size_t whylen)
{
	if (ack->version < sent->min_version || ack->version > sent->max_version ||
	    ack->version < FRAME_VERSION_MIN || ack->version > FRAME_VERSION_MAX)
		return refuse(code, CHD_CH_VERSION, why, whylen,
		              "responder chose protocol version %u, this agent offered %u-%u",
		              ack->version, sent->min_version, sent->max_version);
	if (!frame_chtype_pair(sent->chtype, ack->chtype, NULL))
		return refuse(code, CHD_CH_TYPE, why, whylen,
		              "channel %s: initiator type %s does not pair with responder type %s",
		              sent->channel, frame_chtype_name(sent->chtype),
		              frame_chtype_name(ack->chtype));
	if (sent->peer_qmgr[0] != '\0' && strcmp(sent->peer_qmgr, ack->qmgr) != 0)
		return refuse(code, CHD_CH_QMGR, why, whylen,
		              "channel %s: expected queue manager %s, reached %s", sent->channel,
		              sent->peer_qmgr, ack->qmgr);
	if (ack->seqwrap != sent->seqwrap)
		return refuse(code, CHD_CH_SEQWRAP, why, whylen,
		              "channel %s: SEQWRAP mismatch: initiator %u, responder %u",
		              sent->channel, sent->seqwrap, ack->seqwrap);
	if (ack->batchsz > sent->batchsz || ack->maxmsgl > sent->maxmsgl ||
	    ack->hbint < sent->hbint)
		return refuse(code, CHD_CH_PROTOCOL, why, whylen,
		              "channel %s: responder negotiated BATCHSZ %u MAXMSGL %u HBINT %u "
		              "against offered %u %u %u",
		              sent->channel, ack->batchsz, ack->maxmsgl, ack->hbint, sent->batchsz,
		              sent->maxmsgl, sent->hbint);
	return true;
}

bool frame_resync_answer(const struct frame_resync *rs, uint64_t my_batch, uint32_t my_seq,
                         struct frame_resync_ack *ack, char *why, size_t whylen)
{
	memset(ack, 0, sizeof(*ack));
	ack->batch_id = my_batch;
	ack->seq = my_seq;
	if (rs->reset) {
		/* reset channel at the sending end: its number wins. */
		ack->seq = rs->seq;
		return true;
	}
	if (rs->indoubt) {
		if (my_batch == rs->indoubt_batch && my_seq == rs->indoubt_seq) {
			ack->committed = true;
			return true;
		}
		/* Version 2: batches batch_id+1 .. indoubt_batch are all in
		 * doubt, and this end may have committed some of them.  It
		 * cannot check their seqs (it never saw the ones it did not
		 * commit); the sending end checks them against its records. */
		if (rs->indoubt_batch - rs->batch_id > 1 && my_batch > rs->batch_id &&
		    my_batch < rs->indoubt_batch) {
			ack->committed = true;
			return true;
		}
		if (my_seq == rs->seq && my_batch != rs->indoubt_batch)
			return true;
		return refuse(NULL, CHD_CH_SEQ, why, whylen,
		              "sequence number mismatch: sender last committed seq %u, in doubt "
		              "batch %llu ending at seq %u; receiver last committed seq %u (batch %llu)",
		              rs->seq, (unsigned long long)rs->indoubt_batch, rs->indoubt_seq, my_seq,
		              (unsigned long long)my_batch);
	}
	if (my_seq == rs->seq)
		return true;
	return refuse(NULL, CHD_CH_SEQ, why, whylen,
	              "sequence number mismatch: sender last committed seq %u, "
	              "receiver last committed seq %u", rs->seq, my_seq);
}

bool frame_resync_check_ack_v(const struct frame_resync *sent, const struct frame_resync_ack *ack,
                              const uint32_t *seqs, size_t nseqs, char *why, size_t whylen)
{
	bool in_range = sent->indoubt && ack->batch_id > sent->batch_id &&
	                ack->batch_id <= sent->indoubt_batch;

	if (ack->committed) {
		if (sent->indoubt && ack->batch_id == sent->indoubt_batch &&
		    ack->seq == sent->indoubt_seq)
			return true;
		/* a batch in the middle of several in doubt: its own last seq */
		if (in_range && seqs != NULL && ack->batch_id - sent->batch_id <= nseqs &&
		    seqs[ack->batch_id - sent->batch_id - 1] == ack->seq)
			return true;
		return refuse(NULL, CHD_CH_SEQ, why, whylen,
		              "receiver says batch %llu ending at seq %u is committed, but the "
		              "in-doubt batches here are %llu to %llu ending at seq %u",
		              (unsigned long long)ack->batch_id, ack->seq,
		              (unsigned long long)sent->batch_id + 1,
		              (unsigned long long)sent->indoubt_batch, sent->indoubt_seq);
	}
	if (ack->seq == sent->seq && !in_range)
		return true;
	return refuse(NULL, CHD_CH_SEQ, why, whylen,
	              "sequence number mismatch: sender last committed seq %u, "
	              "receiver answered seq %u (batch %llu)", sent->seq, ack->seq,
	              (unsigned long long)ack->batch_id);
}

bool frame_resync_check_ack(const struct frame_resync *sent, const struct frame_resync_ack *ack,
                            char *why, size_t whylen)
{
	return frame_resync_check_ack_v(sent, ack, NULL, 0, why, whylen);
}
