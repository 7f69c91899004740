/* `chanctl status --format prometheus` (status_prom.c). */
#ifndef CHAND_CTL_STATUS_PROM_H
#define CHAND_CTL_STATUS_PROM_H

#include <jansson.h>

#include "ctl.h"

/* Prints the Prometheus exposition of the status records in status
 * (borrowed) with the agent's local queue depths and start time, which
 * it asks the agent for. Returns the exit code. */
int ctl_status_prom(struct ctl *c, const json_t *status);

#endif
