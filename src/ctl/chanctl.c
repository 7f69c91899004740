/* chanctl: the operator's command line for chand.
 *   chanctl [-s SOCKET | -c CONFIG | -m QMGR] [--json] COMMAND [ARGS]
 * Which agent: -s, else -c, else -m (CHAND_SYSCONFDIR/QMGR.conf, like
 * runmqsc QM1), else $CHAND_CONF, else the default configuration.
 * Commands that need no agent (keystore, check-peer, explain) run
 * locally; everything else is one conversation over the admin socket. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/config.h"
#include "chand/ctlcmd.h"

static void usage_global(FILE *f)
{
	ctl_print_usage(f);
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const char *conf = NULL, *qmgr = NULL;
	char mconf[1024];
	int i;

	/* A vanished agent shows up as a failed write, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc; i++) {
		const char *t = argv[i];
		if (strcmp(t, "-s") == 0 || strcmp(t, "-c") == 0 || strcmp(t, "-m") == 0) {
			if (i + 1 >= argc)
				ctl_usage_err("option %s needs a value", t);
			if (t[1] == 's')
				c.sock = argv[++i];
			else if (t[1] == 'c')
				conf = argv[++i];
			else
				qmgr = argv[++i];
		} else if (strncmp(t, "--socket=", 9) == 0) {
			c.sock = t + 9;
		} else if (strcmp(t, "--json") == 0) {
			c.json = true;
		} else if (strcmp(t, "-h") == 0 || strcmp(t, "--help") == 0) {
			usage_global(stdout);
			return CTL_EXIT_OK;
		} else if (strcmp(t, "--version") == 0) {
			printf("chanctl %s (admin protocol %d)\n", PACKAGE_VERSION, ADMIN_PROTOCOL_VERSION);
			return CTL_EXIT_OK;
		} else if (t[0] == '-') {
			ctl_usage_err("unknown option '%s'; valid: -s SOCKET, -c CONFIG, -m QMGR, --json, "
			              "--help, --version", t);
		} else {
			break;
		}
	}
	if ((c.sock != NULL) + (conf != NULL) + (qmgr != NULL) > 1)
		ctl_usage_err("give one of -s SOCKET, -c CONFIG and -m QMGR");
	if (qmgr != NULL) {
		char why[160];
		if (!name_valid(qmgr, why, sizeof why))
			ctl_usage_err("-m %s: invalid queue manager name: %s", qmgr, why);
		snprintf(mconf, sizeof mconf, "%s/%s.conf", CHAND_SYSCONFDIR, qmgr);
		conf = mconf;
	} else if (c.sock == NULL && conf == NULL && getenv("CHAND_CONF") != NULL &&
	           getenv("CHAND_CONF")[0] != '\0') {
		conf = getenv("CHAND_CONF");
	}
	c.conf = conf;
	if (i >= argc) {
		usage_global(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage_global(stdout);
		return CTL_EXIT_OK;
	}

	/* Commands owned by other modules get their own argv. */
	if (strcmp(argv[i], "keystore") == 0) {
		const struct ctl_conf *cfg = ctl_config(conf, true);
		return ks_cli_main(argc - i, argv + i, cfg ? cfg->ks_path : NULL, c.json);
	}
	if (strcmp(argv[i], "check-peer") == 0)
		return dnf_cli_check_peer(argc - i, argv + i);

	struct ctl_args a;
	ctl_json_errors(c.json);
	ctl_parse(argc - i, argv + i, &a, &c.json);
	ctl_json_errors(c.json);
	if (!(a.cmd->flags & CTL_NO_AGENT) && c.sock == NULL) {
		const char *path = conf ? conf : CFG_DEFAULT_PATH;
		const struct ctl_conf *cfg = ctl_config(conf, false);
		if (cfg == NULL)
			ctl_fail(CHD_ADM_NO_AGENT, "no admin socket: give -s SOCKET or -c CONFIG "
			         "(%s: %s)", path, strerror(ENOENT));
		if (cfg->admin_socket == NULL)
			ctl_fail(CHD_CONFIG_ERROR, "cannot use configuration: %s: no admin.socket and no "
			         "data_dir to find the agent's socket in", path);
		c.sock = cfg->admin_socket;
	}
	int rc = a.cmd->fn(&c, &a);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		fprintf(stderr, "chanctl: cannot write the output: %s\n", strerror(errno));
		rc = CTL_EXIT_FAIL;
	}
	ctl_close(&c);
	return rc;
}
