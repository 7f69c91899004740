/* Never root: chand refuses to run as root unless the configuration
 * names a user to drop to (or, for containers and test rigs, says
 * allow_root).  The drop happens after the listeners are bound (ports
 * below 1024) and before anything is written to data_dir, so every file
 * the agent creates belongs to that user. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "ops_int.h"
#include "chand/log.h"

int privs_check(const struct chand_config *cfg)
{
	if (geteuid() != 0) {
		if (cfg->user != NULL && geteuid() != cfg->run_uid) {
			log_error(code_str(CHD_ROOT_REFUSED), "user=%s uid=%ld: chand runs as uid %ld and "
			          "only root can switch users; start it as %s or remove 'user'",
			          cfg->user, (long)cfg->run_uid, (long)geteuid(), cfg->user);
			return -1;
		}
		return 0;
	}
	if (cfg->user != NULL || cfg->allow_root)
		return 0;
	log_error(code_str(CHD_ROOT_REFUSED), "refusing to run as root: start chand as its service "
	          "user, or name that user in %s (user = \"chand\";) for chand to drop to "
	          "(allow_root = true; runs as root anyway: for containers and test rigs only)",
	          cfg->file);
	return -1;
}

bool privs_need_drop(const struct chand_config *cfg)
{
	return geteuid() == 0 && cfg->user != NULL;
}

int privs_drop(const struct chand_config *cfg)
{
	uid_t uid = cfg->run_uid;
	gid_t gid = cfg->run_gid;

	if (uid == (uid_t)-1 || uid == 0 || gid == (gid_t)-1 || gid == 0) {
		log_error(code_str(CHD_ROOT_REFUSED), "user=%s cannot drop privileges: user not "
		          "resolved", cfg->user);
		return -1;
	}
	/* Supplementary groups first: after setuid we no longer may. */
	if (initgroups(cfg->user, gid) != 0) {
		log_error(code_str(CHD_ROOT_REFUSED), "user=%s initgroups: %s", cfg->user,
		          strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) != 0) {
		log_error(code_str(CHD_ROOT_REFUSED), "user=%s setgid(%ld): %s", cfg->user, (long)gid,
		          strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) != 0) {
		log_error(code_str(CHD_ROOT_REFUSED), "user=%s setuid(%ld): %s", cfg->user, (long)uid,
		          strerror(errno));
		return -1;
	}
	/* A drop that could be undone is no drop: prove it cannot. */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || geteuid() == 0 ||
	    getegid() == 0) {
		log_error(code_str(CHD_ROOT_REFUSED), "user=%s privileges could be regained after "
		          "dropping them; refusing to run", cfg->user);
		return -1;
	}
	log_info(code_str(CHD_PRIVS_DROPPED), "user=%s uid=%ld gid=%ld dropped root privileges", cfg->user, (long)uid,
	         (long)gid);
	return 0;
}
