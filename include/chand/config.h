/* The agent's configuration file (libconfig), chand.conf(5) and doc/ADMIN.md.
 *
 * Only qmgr and data_dir are required; every other key has a default.
 * Relative paths are relative to the directory of the file.  Loading
 * gathers every error ("FILE:LINE: reason") before it fails, so an
 * operator fixes a file in one pass (relayd's yyerror habit). */
#ifndef CHAND_CONFIG_H
#define CHAND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chand/util.h"

#ifndef CHAND_SYSCONFDIR
#define CHAND_SYSCONFDIR "/etc/chand"
#endif
#define CFG_DEFAULT_PATH CHAND_SYSCONFDIR "/chand.conf"

/* Bounds of the numeric keys. max_msg_length is capped so a message,
 * base64-encoded, always fits in one admin frame (admin.h). */
#define CFG_MAX_CHANNELS_MAX 100000
#define CFG_MSG_LENGTH_MAX (32L * 1024 * 1024)
/* limits.dead_peer_timeout (seconds, 0 = the kernel's TCP defaults): a
 * channel whose peer's host stops answering at TCP level ends within it,
 * whatever HBINT is (TCP keepalive and TCP_USER_TIMEOUT, doc/CHANNELS.md). */
#define CFG_DEAD_PEER_TIMEOUT 60
#define CFG_DEAD_PEER_MAX 3600

struct cfg_listener {
	char address[64];       /* numeric IPv4 or IPv6 address */
	int port;               /* 1-65535 */
	int line;               /* where it was defined (for bind errors) */
};

struct chand_config {
	char *file;             /* the file as given */
	char *dir;              /* its directory (base of relative paths) */
	char qmgr[CHAND_NAME_MAX + 1];
	char *data_dir;
	struct cfg_listener *listeners;
	size_t nlisteners;

	char *ks_path;          /* default <dir>/key.db */
	bool ks_configured;     /* keystore.path was given: it must load at start */
	char *ks_stash;         /* default ks_stash_path(ks_path) */
	char *ks_label;         /* default qmgr in lower case */

	char *admin_socket;     /* default <data_dir>/chand.sock */
	mode_t admin_mode;      /* default 0660 */
	char *admin_group;      /* NULL: only the agent's user (and root) */
	gid_t admin_gid;        /* resolved with CFG_AGENT */

	int log_level;          /* enum log_level; default info */
	bool log_syslog;        /* default true, false with CFG_FOREGROUND */
	char *log_file;         /* "" = none */

	long max_channels;      /* default 1000 */
	long max_msg_length;    /* default 4194304 */
	long dead_peer_timeout; /* seconds, default CFG_DEAD_PEER_TIMEOUT; 0 = off */
	char dlq[CHAND_NAME_MAX + 1]; /* "" = no dead-letter queue */

	int tls_expiry_warning_days; /* default 30 */
	int tls_handshake_timeout;   /* seconds, default 30 */

	/* Privileges (privs.c): started as root, chand drops to user (and
	 * group, default the user's primary group) or refuses to run unless
	 * allow_root. */
	char *user;             /* NULL: no drop */
	char *group;            /* NULL: the user's primary group */
	uid_t run_uid;          /* resolved with CFG_AGENT when user is set */
	gid_t run_gid;
	bool allow_root;        /* default false */

	/* The optional Prometheus listener (metrics.c). */
	bool metrics_enabled;   /* a metrics group is present */
	char metrics_address[64]; /* numeric; default 127.0.0.1 */
	int metrics_port;       /* default CFG_METRICS_PORT */
	bool metrics_allow_remote; /* a non-loopback address needs it */
	char metrics_tls_label[64 + 1]; /* KS_LABEL_MAX; "" = plain HTTP, else HTTPS
	                                   with this keystore label */
};

#define CFG_METRICS_PORT 9414

/* The errors of one load, each a complete line without newline. */
struct cfg_errors {
	char **v;
	size_t n;
};

enum cfg_flags {
	/* chand -f: syslog defaults to false. */
	CFG_FOREGROUND = 1 << 0,
	/* The agent itself (and --check-config): also check that data_dir
	 * exists and is writable and that admin.group exists.  chanctl loads
	 * without it: it only wants the socket and keystore paths. */
	CFG_AGENT = 1 << 1,
};

/* Loads path into cfg (which this initialises). Returns 0, or -1 with at
 * least one line in errs (which this initialises; free it with
 * cfg_errors_free either way). cfg must be freed with cfg_free either way. */
int cfg_load(struct chand_config *cfg, const char *path, unsigned flags,
             struct cfg_errors *errs);
void cfg_free(struct chand_config *cfg);
void cfg_errors_free(struct cfg_errors *errs);

/* Path of the agent's database and lock file for a loaded config
 * ("<data_dir>/<qmgr>.db", "<data_dir>/<qmgr>.lock"); malloc'd. */
char *cfg_db_path(const struct chand_config *cfg);
char *cfg_lock_path(const struct chand_config *cfg);

#endif
