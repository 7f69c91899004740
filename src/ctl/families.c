/* The command families of chanctl, in the order `chanctl --help` lists
 * them.  A family joins by defining a `const struct ctl_family` in its
 * own file (a table of struct ctl_cmd, see ctl.h) and adding it here. */
#include <stddef.h>

#include "ctl.h"

extern const struct ctl_family ctl_queue_family;
extern const struct ctl_family ctl_msg_family;
extern const struct ctl_family ctl_channel_family;
extern const struct ctl_family ctl_explain_family;
extern const struct ctl_family ctl_mqsc_family;
extern const struct ctl_family ctl_import_family;
extern const struct ctl_family ctl_route_family;
extern const struct ctl_family ctl_qmgr_family;

const struct ctl_family *const ctl_families[] = {
	&ctl_queue_family,
	&ctl_msg_family,
	&ctl_channel_family,
	&ctl_route_family,
	&ctl_qmgr_family,
	&ctl_mqsc_family,
	&ctl_import_family,
	&ctl_explain_family,
	NULL,
};
