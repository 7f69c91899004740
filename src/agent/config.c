/* Loading and checking chand.conf (libconfig).
 *
 * The walk is table driven: every key the file may hold is listed in
 * the schema below with its type, so an unknown key or a wrong type is
 * reported with its line without any per-key code.  Values are then
 * read and range-checked; all errors are gathered before failing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "chand/config.h"
#include "chand/keystore.h"
#include "chand/log.h"

enum cfg_kind { K_STRING, K_INT, K_BOOL, K_GROUP, K_LIST };

struct cfg_key {
	const char *name;
	enum cfg_kind kind;
	const struct cfg_key *sub;   /* K_GROUP members, or K_LIST element members */
};

static const struct cfg_key listener_keys[] = {
	{ "address", K_STRING, NULL }, { "port", K_INT, NULL }, { NULL, 0, NULL } };
static const struct cfg_key keystore_keys[] = {
	{ "path", K_STRING, NULL }, { "stash", K_STRING, NULL }, { "label", K_STRING, NULL },
	{ NULL, 0, NULL } };
static const struct cfg_key admin_keys[] = {
	{ "socket", K_STRING, NULL }, { "mode", K_STRING, NULL }, { "group", K_STRING, NULL },
	{ NULL, 0, NULL } };
static const struct cfg_key log_keys[] = {
	{ "level", K_STRING, NULL }, { "syslog", K_BOOL, NULL }, { "file", K_STRING, NULL },
	{ NULL, 0, NULL } };
static const struct cfg_key limits_keys[] = {
	{ "max_channels", K_INT, NULL }, { "max_msg_length", K_INT, NULL },
	{ "dead_peer_timeout", K_INT, NULL }, { NULL, 0, NULL } };
static const struct cfg_key tls_keys[] = {
	{ "expiry_warning_days", K_INT, NULL }, { "handshake_timeout", K_INT, NULL },
	{ NULL, 0, NULL } };
static const struct cfg_key metrics_keys[] = {
	{ "address", K_STRING, NULL }, { "port", K_INT, NULL }, { "allow_remote", K_BOOL, NULL },
	{ "tls_label", K_STRING, NULL }, { NULL, 0, NULL } };
static const struct cfg_key root_keys[] = {
	{ "qmgr", K_STRING, NULL },
	{ "data_dir", K_STRING, NULL },
	{ "listeners", K_LIST, listener_keys },
	{ "keystore", K_GROUP, keystore_keys },
	{ "admin", K_GROUP, admin_keys },
	{ "log", K_GROUP, log_keys },
	{ "limits", K_GROUP, limits_keys },
	{ "dead_letter_queue", K_STRING, NULL },
	{ "tls", K_GROUP, tls_keys },
	{ "user", K_STRING, NULL },
	{ "group", K_STRING, NULL },
	{ "allow_root", K_BOOL, NULL },
	{ "metrics", K_GROUP, metrics_keys },
	{ NULL, 0, NULL },
};

static const char *kind_text[] = {
	[K_STRING] = "a string", [K_INT] = "an integer", [K_BOOL] = "a boolean (true or false)",
	[K_GROUP] = "a group { ... }", [K_LIST] = "a list ( { ... }, ... )",
};

struct cfg_load_ctx {
	const char *path;
	struct cfg_errors *errs;
};

static void cfg_err(struct cfg_load_ctx *lc, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cfg_walk(struct cfg_load_ctx *lc, const config_setting_t *grp,
                     const struct cfg_key *keys, const char *prefix);
static char *cfg_path_join(const char *dir, const char *p);

static void errs_add(struct cfg_errors *e, char *line)
{
	char **v;

	if (line == NULL)
		return;
	v = realloc(e->v, (e->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(line);
		return;
	}
	e->v = v;
	e->v[e->n++] = line;
}

static void cfg_err(struct cfg_load_ctx *lc, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	char *text, *line;
	const char *file = lc->path;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (text == NULL)
		return;
	if (s != NULL && config_setting_source_file(s) != NULL)
		file = config_setting_source_file(s);
	if (s != NULL && asprintf(&line, "%s:%u: %s", file, config_setting_source_line(s), text) < 0)
		line = NULL;
	else if (s == NULL && asprintf(&line, "%s: %s", file, text) < 0)
		line = NULL;
	free(text);
	errs_add(lc->errs, line);
}

static bool kind_ok(const config_setting_t *s, enum cfg_kind k)
{
	int t = config_setting_type(s);

	switch (k) {
	case K_STRING: return t == CONFIG_TYPE_STRING;
	case K_INT: return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case K_BOOL: return t == CONFIG_TYPE_BOOL;
	case K_GROUP: return t == CONFIG_TYPE_GROUP;
	/* An empty "()" is a list but an empty "[]" parses as an array. */
	case K_LIST: return t == CONFIG_TYPE_LIST ||
	                    (t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0);
	}
	return false;
}

/* Reports unknown keys and wrong types under grp, recursively. */
static void cfg_walk(struct cfg_load_ctx *lc, const config_setting_t *grp,
                     const struct cfg_key *keys, const char *prefix)
{
	int n = config_setting_length(grp);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct cfg_key *k;
		char full[256];

		snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", name ? name : "?");
		for (k = keys; k->name != NULL; k++)
			if (name != NULL && strcmp(k->name, name) == 0)
				break;
		if (k->name == NULL) {
			cfg_err(lc, s, "unknown key '%s'", full);
			continue;
		}
		if (!kind_ok(s, k->kind)) {
			cfg_err(lc, s, "'%s' must be %s", full, kind_text[k->kind]);
			continue;
		}
		if (k->kind == K_GROUP) {
			cfg_walk(lc, s, k->sub, full);
		} else if (k->kind == K_LIST) {
			int m = config_setting_length(s);
			for (int j = 0; j < m; j++) {
				const config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
				char ename[280];
				snprintf(ename, sizeof(ename), "%s[%d]", full, j);
				if (config_setting_type(e) != CONFIG_TYPE_GROUP)
					cfg_err(lc, e, "'%s' must be a group { ... }", ename);
				else
					cfg_walk(lc, e, k->sub, ename);
			}
		}
	}
}

/* The member of grp called name if present and of the right kind (a
 * wrong kind was already reported by cfg_walk). */
static config_setting_t *member(const config_setting_t *grp, const char *name, enum cfg_kind k)
{
	config_setting_t *s;

	if (grp == NULL)
		return NULL;
	s = config_setting_get_member(grp, name);
	return s != NULL && kind_ok(s, k) ? s : NULL;
}

static long long int_value(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT64 ? config_setting_get_int64(s)
	                                                    : config_setting_get_int(s);
}

static void get_long(struct cfg_load_ctx *lc, const config_setting_t *grp, const char *name,
                     const char *full, long min, long max, long *out)
{
	config_setting_t *s = member(grp, name, K_INT);
	long long v;

	if (s == NULL)
		return;
	v = int_value(s);
	if (v < min || v > max) {
		cfg_err(lc, s, "'%s' must be between %ld and %ld (got %lld)", full, min, max, v);
		return;
	}
	*out = (long)v;
}

static char *cfg_path_join(const char *dir, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0 || p[0] == '\0')
		return strdup(dir);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

/* A path-valued key: relative to the file's directory. */
static void get_path(struct cfg_load_ctx *lc, const struct chand_config *cfg,
                     const config_setting_t *grp, const char *name, const char *full,
                     char **out)
{
	config_setting_t *s = member(grp, name, K_STRING);
	const char *v;

	if (s == NULL)
		return;
	v = config_setting_get_string(s);
	if (v[0] == '\0') {
		cfg_err(lc, s, "'%s' must not be empty", full);
		return;
	}
	free(*out);
	*out = cfg_path_join(cfg->dir, v);
}

static bool parse_mode(const char *s, mode_t *out)
{
	size_t n = strlen(s);
	unsigned v = 0;

	if (n < 3 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return false;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	if (v > 0777)
		return false;
	*out = (mode_t)v;
	return true;
}

static void load_listeners(struct cfg_load_ctx *lc, struct chand_config *cfg,
                           const config_setting_t *list)
{
	int n = config_setting_length(list);

	free(cfg->listeners);
	cfg->listeners = calloc(n > 0 ? (size_t)n : 1, sizeof(*cfg->listeners));
	cfg->nlisteners = 0;
	if (cfg->listeners == NULL)
		return;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		struct cfg_listener *l = &cfg->listeners[cfg->nlisteners];
		config_setting_t *s;
		char full[64];
		unsigned char tmp[sizeof(struct in6_addr)];
		long port = 1414;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			continue;
		l->line = (int)config_setting_source_line(e);
		str_copy(l->address, "0.0.0.0", sizeof(l->address));
		if ((s = member(e, "address", K_STRING)) != NULL) {
			const char *a = config_setting_get_string(s);
			snprintf(full, sizeof(full), "listeners[%d].address", i);
			if (inet_pton(AF_INET, a, tmp) != 1 && inet_pton(AF_INET6, a, tmp) != 1) {
				cfg_err(lc, s, "'%s' must be a numeric IPv4 or IPv6 address (got \"%s\")",
				        full, a);
				continue;
			}
			str_copy(l->address, a, sizeof(l->address));
		}
		snprintf(full, sizeof(full), "listeners[%d].port", i);
		get_long(lc, e, "port", full, 1, 65535, &port);
		l->port = (int)port;
		cfg->nlisteners++;
	}
}

static void set_defaults(struct chand_config *cfg, unsigned flags)
{
	cfg->admin_mode = 0660;
	cfg->admin_gid = (gid_t)-1;
	cfg->log_level = CHLOG_INFO;
	cfg->log_syslog = !(flags & CFG_FOREGROUND);
	cfg->max_channels = 1000;
	cfg->max_msg_length = 4194304;
	cfg->dead_peer_timeout = CFG_DEAD_PEER_TIMEOUT;
	cfg->tls_expiry_warning_days = 30;
	cfg->tls_handshake_timeout = 30;
	cfg->run_uid = (uid_t)-1;
	cfg->run_gid = (gid_t)-1;
	str_copy(cfg->metrics_address, "127.0.0.1", sizeof(cfg->metrics_address));
	cfg->metrics_port = CFG_METRICS_PORT;
}

/* Loopback only by default: the exposition names every channel, peer
 * and queue, which is nobody else's business. */
static bool addr_is_loopback(const char *a)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, a, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, a, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return false;
}

static void load_metrics(struct cfg_load_ctx *lc, struct chand_config *cfg,
                         const config_setting_t *g)
{
	config_setting_t *s;
	long port = cfg->metrics_port;

	cfg->metrics_enabled = true;
	if ((s = member(g, "allow_remote", K_BOOL)) != NULL)
		cfg->metrics_allow_remote = config_setting_get_bool(s) != 0;
	get_long(lc, g, "port", "metrics.port", 1, 65535, &port);
	cfg->metrics_port = (int)port;
	if ((s = member(g, "address", K_STRING)) != NULL) {
		const char *a = config_setting_get_string(s);
		unsigned char tmp[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET, a, tmp) != 1 && inet_pton(AF_INET6, a, tmp) != 1)
			cfg_err(lc, s, "'metrics.address' must be a numeric IPv4 or IPv6 address "
			        "(got \"%s\")", a);
		else if (!addr_is_loopback(a) && !cfg->metrics_allow_remote)
			cfg_err(lc, s, "'metrics.address' %s is not a loopback address: the metrics "
			        "name every channel and peer; set metrics.allow_remote = true to serve "
			        "them to the network", a);
		else
			str_copy(cfg->metrics_address, a, sizeof(cfg->metrics_address));
	}
	/* HTTPS with that keystore label; whether the label exists is only
	 * known once the keystore is loaded (metrics_start). */
	if ((s = member(g, "tls_label", K_STRING)) != NULL) {
		const char *l = config_setting_get_string(s);
		_Static_assert(sizeof(cfg->metrics_tls_label) == KS_LABEL_MAX + 1, "label size");
		if (l[0] == '\0' || strlen(l) > KS_LABEL_MAX)
			cfg_err(lc, s, "'metrics.tls_label' must be 1 to %d characters", KS_LABEL_MAX);
		else
			str_copy(cfg->metrics_tls_label, l, sizeof(cfg->metrics_tls_label));
	}
}

/* user and group: resolved only for the agent (chanctl does not care). */
static void load_privs(struct cfg_load_ctx *lc, struct chand_config *cfg,
                       const config_setting_t *root, unsigned flags)
{
	config_setting_t *us = member(root, "user", K_STRING), *gs = member(root, "group", K_STRING);
	config_setting_t *s;
	char buf[4096];

	if ((s = member(root, "allow_root", K_BOOL)) != NULL)
		cfg->allow_root = config_setting_get_bool(s) != 0;
	if (us != NULL) {
		const char *u = config_setting_get_string(us);
		if (u[0] == '\0') {
			cfg_err(lc, us, "'user' must not be empty (leave it out not to switch users)");
		} else {
			cfg->user = strdup(u);
			if (flags & CFG_AGENT) {
				struct passwd pw, *res = NULL;
				int rc = getpwnam_r(u, &pw, buf, sizeof(buf), &res);
				if (res == NULL) {
					cfg_err(lc, us, "'user': no such user '%s'%s%s", u, rc ? ": " : "",
					        rc ? strerror(rc) : "");
				} else if (pw.pw_uid == 0) {
					cfg_err(lc, us, "'user' %s is root: name an unprivileged user", u);
				} else {
					cfg->run_uid = pw.pw_uid;
					cfg->run_gid = pw.pw_gid;
				}
			}
		}
	}
	if (gs != NULL) {
		const char *g = config_setting_get_string(gs);
		if (us == NULL) {
			cfg_err(lc, gs, "'group' needs 'user' (the user to run as)");
		} else if (g[0] == '\0') {
			cfg_err(lc, gs, "'group' must not be empty (leave it out for the user's group)");
		} else {
			cfg->group = strdup(g);
			if (flags & CFG_AGENT) {
				struct group gr, *res = NULL;
				int rc = getgrnam_r(g, &gr, buf, sizeof(buf), &res);
				if (res == NULL)
					cfg_err(lc, gs, "'group': no such group '%s'%s%s", g, rc ? ": " : "",
					        rc ? strerror(rc) : "");
				else if (gr.gr_gid == 0)
					cfg_err(lc, gs, "'group' %s is root's group: name an unprivileged group", g);
				else
					cfg->run_gid = gr.gr_gid;
			}
		}
	}
}

static void load_values(struct cfg_load_ctx *lc, struct chand_config *cfg, config_t *c,
                        unsigned flags)
{
	const config_setting_t *root = config_root_setting(c), *g;
	config_setting_t *s, *dds = NULL;
	char why[256];

	/* qmgr and data_dir: required. */
	if ((s = member(root, "qmgr", K_STRING)) != NULL) {
		const char *q = config_setting_get_string(s);
		if (!name_valid(q, why, sizeof(why)))
			cfg_err(lc, s, "'qmgr': %s", why);
		else
			str_copy(cfg->qmgr, q, sizeof(cfg->qmgr));
	} else if (config_setting_get_member(root, "qmgr") == NULL) {
		cfg_err(lc, NULL, "missing required key 'qmgr'");
	}
	if ((dds = member(root, "data_dir", K_STRING)) != NULL)
		get_path(lc, cfg, root, "data_dir", "data_dir", &cfg->data_dir);
	else if (config_setting_get_member(root, "data_dir") == NULL)
		cfg_err(lc, NULL, "missing required key 'data_dir'");

	if ((s = member(root, "listeners", K_LIST)) != NULL) {
		load_listeners(lc, cfg, s);
	} else {
		/* No listeners key: the IBM MQ default port on every address. */
		cfg->listeners = calloc(1, sizeof(*cfg->listeners));
		if (cfg->listeners != NULL) {
			str_copy(cfg->listeners[0].address, "0.0.0.0", sizeof(cfg->listeners[0].address));
			cfg->listeners[0].port = 1414;
			cfg->nlisteners = 1;
		}
	}

	g = member(root, "keystore", K_GROUP);
	cfg->ks_path = cfg_path_join(cfg->dir, "key.db");
	get_path(lc, cfg, g, "path", "keystore.path", &cfg->ks_path);
	cfg->ks_configured = member(g, "path", K_STRING) != NULL;
	get_path(lc, cfg, g, "stash", "keystore.stash", &cfg->ks_stash);
	if (cfg->ks_stash == NULL && cfg->ks_path != NULL)
		cfg->ks_stash = ks_stash_path(cfg->ks_path);
	if ((s = member(g, "label", K_STRING)) != NULL) {
		const char *l = config_setting_get_string(s);
		if (l[0] == '\0' || strlen(l) > KS_LABEL_MAX)
			cfg_err(lc, s, "'keystore.label' must be 1 to %d characters", KS_LABEL_MAX);
		else
			cfg->ks_label = strdup(l);
	}

	g = member(root, "admin", K_GROUP);
	get_path(lc, cfg, g, "socket", "admin.socket", &cfg->admin_socket);
	if ((s = member(g, "mode", K_STRING)) != NULL &&
	    !parse_mode(config_setting_get_string(s), &cfg->admin_mode))
		cfg_err(lc, s, "'admin.mode' must be an octal mode like \"0660\" (got \"%s\")",
		        config_setting_get_string(s));
	if ((s = member(g, "group", K_STRING)) != NULL) {
		const char *grp = config_setting_get_string(s);
		if (grp[0] == '\0') {
			cfg_err(lc, s, "'admin.group' must not be empty (leave it out for owner only)");
		} else {
			cfg->admin_group = strdup(grp);
			if (flags & CFG_AGENT) {
				struct group gr, *res = NULL;
				char buf[4096];
				int rc = getgrnam_r(grp, &gr, buf, sizeof(buf), &res);
				if (res == NULL)
					cfg_err(lc, s, "'admin.group': no such group '%s'%s%s", grp,
					        rc ? ": " : "", rc ? strerror(rc) : "");
				else
					cfg->admin_gid = gr.gr_gid;
			}
		}
	}

	g = member(root, "log", K_GROUP);
	if ((s = member(g, "level", K_STRING)) != NULL) {
		int lv = log_level_parse(config_setting_get_string(s));
		if (lv < 0)
			cfg_err(lc, s, "'log.level' must be one of error, warn, info, debug (got \"%s\")",
			        config_setting_get_string(s));
		else
			cfg->log_level = lv;
	}
	if ((s = member(g, "syslog", K_BOOL)) != NULL)
		cfg->log_syslog = config_setting_get_bool(s) != 0;
	if ((s = member(g, "file", K_STRING)) != NULL && config_setting_get_string(s)[0] != '\0')
		cfg->log_file = cfg_path_join(cfg->dir, config_setting_get_string(s));

	g = member(root, "limits", K_GROUP);
	get_long(lc, g, "max_channels", "limits.max_channels", 1, CFG_MAX_CHANNELS_MAX,
	         &cfg->max_channels);
	get_long(lc, g, "max_msg_length", "limits.max_msg_length", 1, CFG_MSG_LENGTH_MAX,
	         &cfg->max_msg_length);
	get_long(lc, g, "dead_peer_timeout", "limits.dead_peer_timeout", 0, CFG_DEAD_PEER_MAX,
	         &cfg->dead_peer_timeout);

	if ((s = member(root, "dead_letter_queue", K_STRING)) != NULL) {
		const char *d = config_setting_get_string(s);
		if (d[0] != '\0' && !name_valid(d, why, sizeof(why)))
			cfg_err(lc, s, "'dead_letter_queue': %s", why);
		else
			str_copy(cfg->dlq, d, sizeof(cfg->dlq));
	}

	g = member(root, "tls", K_GROUP);
	long v = cfg->tls_expiry_warning_days;
	get_long(lc, g, "expiry_warning_days", "tls.expiry_warning_days", 0, 3650, &v);
	cfg->tls_expiry_warning_days = (int)v;
	v = cfg->tls_handshake_timeout;
	get_long(lc, g, "handshake_timeout", "tls.handshake_timeout", 1, 600, &v);
	cfg->tls_handshake_timeout = (int)v;

	if ((g = member(root, "metrics", K_GROUP)) != NULL)
		load_metrics(lc, cfg, g);
	load_privs(lc, cfg, root, flags);

	/* Derived defaults. */
	if (cfg->ks_label == NULL && cfg->qmgr[0] != '\0') {
		cfg->ks_label = strdup(cfg->qmgr);
		for (char *p = cfg->ks_label; p != NULL && *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (cfg->admin_socket == NULL && cfg->data_dir != NULL)
		cfg->admin_socket = cfg_path_join(cfg->data_dir, "chand.sock");
	if (cfg->admin_socket != NULL &&
	    strlen(cfg->admin_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		config_setting_t *as = member(member(root, "admin", K_GROUP), "socket", K_STRING);
		cfg_err(lc, as != NULL ? as : dds, "admin socket path %s is too long (%zu bytes, at most %zu)",
		        cfg->admin_socket, strlen(cfg->admin_socket),
		        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	}

	if ((flags & CFG_AGENT) && cfg->data_dir != NULL && dds != NULL) {
		struct stat st;
		if (stat(cfg->data_dir, &st) != 0)
			cfg_err(lc, dds, "data_dir %s: %s", cfg->data_dir,
			        errno == ENOENT ? "does not exist" : strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			cfg_err(lc, dds, "data_dir %s is not a directory", cfg->data_dir);
		else if (cfg->run_uid != (uid_t)-1 && st.st_uid != cfg->run_uid)
			/* The agent writes it after dropping to user: say so now
			 * rather than fail on the first database write. */
			cfg_err(lc, dds, "data_dir %s is owned by uid %ld, not by user %s (uid %ld): "
			        "chown it to %s", cfg->data_dir, (long)st.st_uid, cfg->user,
			        (long)cfg->run_uid, cfg->user);
		else if (access(cfg->data_dir, W_OK | X_OK) != 0)
			cfg_err(lc, dds, "data_dir %s is not writable: %s", cfg->data_dir, strerror(errno));
	}
}

int cfg_load(struct chand_config *cfg, const char *path, unsigned flags, struct cfg_errors *errs)
{
	struct cfg_load_ctx lc = { .path = path, .errs = errs };
	config_t c;
	FILE *f;
	char *slash, *d;

	memset(cfg, 0, sizeof(*cfg));
	memset(errs, 0, sizeof(*errs));
	set_defaults(cfg, flags);
	cfg->file = strdup(path);
	if (cfg->file == NULL)
		return -1;

	/* libconfig's I/O error text is just "file I/O error": say why. */
	f = fopen(path, "re");
	if (f == NULL) {
		char *line;
		if (asprintf(&line, "cannot read %s: %s", path, strerror(errno)) >= 0)
			errs_add(errs, line);
		return -1;
	}
	fclose(f);

	/* Relative paths must survive the daemon's chdir("/"): anchor them
	 * at the real directory of the file. */
	d = strdup(path);
	if (d == NULL)
		return -1;
	slash = strrchr(d, '/');
	if (slash == d)
		d[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(d, ".");
	cfg->dir = realpath(d, NULL);
	free(d);
	if (cfg->dir == NULL) {
		char *line;
		if (asprintf(&line, "cannot resolve the directory of %s: %s", path, strerror(errno)) >= 0)
			errs_add(errs, line);
		return -1;
	}

	config_init(&c);
	config_set_include_dir(&c, cfg->dir);
	if (config_read_file(&c, path) != CONFIG_TRUE) {
		char *line;
		const char *file = config_error_file(&c) ? config_error_file(&c) : path;
		int rc;
		if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
			rc = asprintf(&line, "cannot read %s: %s", file, config_error_text(&c));
		else
			rc = asprintf(&line, "%s:%d: %s", file, config_error_line(&c), config_error_text(&c));
		if (rc >= 0)
			errs_add(errs, line);
		config_destroy(&c);
		return -1;
	}
	cfg_walk(&lc, config_root_setting(&c), root_keys, "");
	load_values(&lc, cfg, &c, flags);
	config_destroy(&c);
	if (errs->n == 0 && (cfg->data_dir == NULL || cfg->ks_path == NULL || cfg->ks_stash == NULL ||
	                     cfg->ks_label == NULL || cfg->admin_socket == NULL)) {
		char *line;
		if (asprintf(&line, "%s: out of memory", path) >= 0)
			errs_add(errs, line);
	}
	return errs->n == 0 ? 0 : -1;
}

void cfg_free(struct chand_config *cfg)
{
	free(cfg->file);
	free(cfg->dir);
	free(cfg->data_dir);
	free(cfg->listeners);
	free(cfg->ks_path);
	free(cfg->ks_stash);
	free(cfg->ks_label);
	free(cfg->admin_socket);
	free(cfg->admin_group);
	free(cfg->log_file);
	free(cfg->user);
	free(cfg->group);
	memset(cfg, 0, sizeof(*cfg));
}

void cfg_errors_free(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

char *cfg_db_path(const struct chand_config *cfg)
{
	char *p;

	if (asprintf(&p, "%s/%s.db", cfg->data_dir, cfg->qmgr) < 0)
		return NULL;
	return p;
}

char *cfg_lock_path(const struct chand_config *cfg)
{
	char *p;

	if (asprintf(&p, "%s/%s.lock", cfg->data_dir, cfg->qmgr) < 0)
		return NULL;
	return p;
}
