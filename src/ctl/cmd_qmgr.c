/* chanctl stop qmgr [--wait S] (like IBM MQ's endmqm): asks the agent for
 * its clean stop (running batches finish or back out, as for SIGTERM) and
 * returns once the agent is gone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/util.h"

static int do_stop_qmgr(struct ctl *c, const struct ctl_args *a);

static const struct ctl_opt stop_opts[] = { { "--wait", NULL, "S" }, { NULL, NULL, NULL } };

static const struct ctl_cmd qmgr_cmds[] = {
	{ "stop qmgr", "[--wait S]   (returns when the agent has stopped; default 60 s)", stop_opts,
	  0, 0, do_stop_qmgr, 0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_qmgr_family = { "qmgr", qmgr_cmds };

/* Whether something still accepts connections on the admin socket. */
static bool answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0 || strlen(path) >= sizeof sa.sun_path) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	str_copy(sa.sun_path, path, sizeof sa.sun_path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static int do_stop_qmgr(struct ctl *c, const struct ctl_args *a)
{
	long wait_s = 60;
	int64_t end;
	int rc;

	ctl_opt_long(a, "--wait", 0, 86400, &wait_s);
	rc = ctl_simple(c, admin_request_new("stop qmgr"), NULL);
	if (rc != CTL_EXIT_OK)
		return rc;
	ctl_close(c);
	end = time_mono_ms() + wait_s * 1000;
	while (answers(c->sock)) {
		if (time_mono_ms() >= end) {
			if (wait_s > 0)
				ctl_fail(CHD_STOP_SLOW, "the agent at %s is still stopping after %ld s",
				         c->sock, wait_s);
			if (!c->json)
				printf("stop requested.\n");
			return CTL_EXIT_OK;
		}
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (!c->json)
		printf("queue manager stopped.\n");
	return CTL_EXIT_OK;
}
