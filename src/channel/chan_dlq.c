/* The dead-letter header (doc/CHANNELS.md, "Dead-letter queue").
 *
 * A message that cannot be delivered is put to the DLQ unchanged (same
 * msgid, correlid, priority, persistence, put time, expiry, format, reply
 * queue, body) with these properties in front of its own:
 *
 *   chand.dlh.reason=CHD2001
 *   chand.dlh.reason_text=<one line>
 *   chand.dlh.dest_qmgr=<xmit_qm of the message>
 *   chand.dlh.dest_q=<xmit_q of the message>
 *   chand.dlh.time=<ISO-8601 UTC, when it was dead-lettered>
 *   chand.dlh.channel=<channel name>
 *
 * Properties are "key=value" lines; a value never holds a newline (the
 * reason text is made one line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_int.h"

static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

char *chan_dlq_props(const struct chd_msg *m, enum chd_code_id reason, const char *reason_text,
                     const char *channel, int64_t now_ms)
{
	char when[40], text[400];
	const char *own = m->props != NULL ? m->props : "";
	size_t ol = strlen(own);
	char *out;
	int n;

	time_format_ms(now_ms, when, sizeof(when));
	str_copy(text, reason_text != NULL ? reason_text : code_text(reason), sizeof(text));
	one_line(text);
	n = snprintf(NULL, 0, "chand.dlh.reason=%s\nchand.dlh.reason_text=%s\nchand.dlh.dest_qmgr=%s\n"
	             "chand.dlh.dest_q=%s\nchand.dlh.time=%s\nchand.dlh.channel=%s\n",
	             code_str(reason), text, m->xmit_qm, m->xmit_q, when, channel);
	if (n < 0 || (out = malloc((size_t)n + ol + 2)) == NULL)
		return NULL;
	snprintf(out, (size_t)n + 1, "chand.dlh.reason=%s\nchand.dlh.reason_text=%s\n"
	         "chand.dlh.dest_qmgr=%s\nchand.dlh.dest_q=%s\nchand.dlh.time=%s\n"
	         "chand.dlh.channel=%s\n", code_str(reason), text, m->xmit_qm, m->xmit_q, when,
	         channel);
	memcpy(out + n, own, ol);
	out[n + ol] = '\0';
	/* a trailing line without newline stays as it was */
	return out;
}

int chan_dlq_put(struct store *st, const char *dlq, const struct chd_msg *m,
                 enum chd_code_id reason, const char *reason_text, const char *channel,
                 char *why, size_t whylen)
{
	struct chd_msg c = *m;
	size_t done = 0;
	int rc;

	c.props = chan_dlq_props(m, reason, reason_text, channel, time_now_ms());
	if (c.props == NULL) {
		snprintf(why, whylen, "out of memory");
		return STORE_ERR;
	}
	c.xmit_qm[0] = c.xmit_q[0] = '\0';
	c.seq = 0;
	rc = store_put(st, dlq, NULL, &c, 1, &done);
	if (rc != STORE_OK)
		snprintf(why, whylen, "%s", store_errmsg(st));
	free(c.props);
	return rc;
}
