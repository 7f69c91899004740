/* The modules built into chand, in start order (see agent.h).  A module
 * joins by adding its struct agent_module here, e.g.
 *     extern const struct agent_module chan_module;
 *     ... &chan_module, NULL };
 * The agent itself (queues and messages) needs no entry: its admin
 * commands are registered by admin_register_builtin(). */
#include <stddef.h>

#include "chand/agent.h"

extern const struct agent_module chan_module;   /* src/agent/admin_channel.c */
extern const struct agent_module mqtt_module;   /* src/agent/admin_mqtt.c */

const struct agent_module *const agent_modules[] = {
	&chan_module,
	&mqtt_module,
	NULL,
};
