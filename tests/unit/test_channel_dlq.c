/* The dead-letter header put in front of a message's own properties
 * (doc/CHANNELS.md section 8). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "chan_int.h"

Test(dlq, header_then_own_properties)
{
	struct chd_msg m;
	char *p;

	memset(&m, 0, sizeof(m));
	strcpy(m.xmit_qm, "QM2");
	strcpy(m.xmit_q, "NOSUCH");
	m.props = (char *)"app=1\nx=y\n";
	p = chan_dlq_props(&m, CHD_Q_UNKNOWN, "queue 'NOSUCH' is not defined", "QM1.QM2",
	                   1700000000000LL);
	cr_assert_not_null(p);
	cr_assert_str_eq(p, "chand.dlh.reason=CHD2001\n"
	                    "chand.dlh.reason_text=queue 'NOSUCH' is not defined\n"
	                    "chand.dlh.dest_qmgr=QM2\n"
	                    "chand.dlh.dest_q=NOSUCH\n"
	                    "chand.dlh.time=2023-11-14T22:13:20.000Z\n"
	                    "chand.dlh.channel=QM1.QM2\n"
	                    "app=1\nx=y\n");
	free(p);
}

Test(dlq, reason_text_is_one_line_and_defaults)
{
	struct chd_msg m;
	char *p;

	memset(&m, 0, sizeof(m));
	strcpy(m.xmit_qm, "QM2");
	strcpy(m.xmit_q, "Q");
	p = chan_dlq_props(&m, CHD_Q_FULL, "line one\nline two\r", "C", 0);
	cr_assert_not_null(p);
	cr_assert(strstr(p, "chand.dlh.reason_text=line one line two \n") != NULL, "%s", p);
	cr_assert(strstr(p, "chand.dlh.reason=CHD2002\n") == p);
	free(p);
	p = chan_dlq_props(&m, CHD_Q_PUT_INHIBITED, NULL, "C", 0);
	cr_assert(strstr(p, "chand.dlh.reason_text=put inhibited\n") != NULL, "%s", p);
	/* no properties of its own: the header alone, every line ended */
	cr_assert_eq(p[strlen(p) - 1], '\n');
	free(p);
}
