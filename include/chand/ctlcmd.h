/* chanctl's command front ends that need no agent, callable in-process
 * (src/ctl/libctl.a): chanctl's main, `import mosquitto-conf --apply`
 * and the tests that drive them.  Each takes the command's own argv
 * (argv[0] is the command word), prints to stdout/stderr and returns the
 * process exit code. */
#ifndef CHAND_CTLCMD_H
#define CHAND_CTLCMD_H

#include <stdbool.h>

/* `chanctl keystore ...`: argv[0] is "keystore". config_ks_path is the
 * keystore path from the config chanctl was given (-c), or NULL. */
int ks_cli_main(int argc, char **argv, const char *config_ks_path, bool json);

/* `chanctl check-peer --sslpeer FILTER --cert FILE` (argv[0] is
 * "check-peer"). Reads a PEM or DER certificate and prints "match"
 * (returns 0), "no match: REASON" naming the peer DN and the failing
 * element (returns 1), or an error: "error: SSLPEER position N: REASON"
 * for a bad filter, a one-line "error: ..." for an unreadable or invalid
 * certificate or bad usage (returns 2). Results go to stdout, errors to
 * stderr. */
int dnf_cli_check_peer(int argc, char **argv);

#endif
