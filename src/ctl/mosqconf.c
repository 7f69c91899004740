/* mosquitto.conf to chanctl commands (see mosqconf.h, doc/MOSQUITTO.md).
 *
 * The model follows mosquitto 2.x (mosquitto.conf(5) and src/conf.c):
 *  - listener-scoped keys (cafile, certfile, require_certificate, ...)
 *    apply to the listener defined last; before any `listener` line they
 *    apply to the default listener, which only runs when the file has a
 *    `port` or `bind_address` line, or no listener at all (then it listens
 *    on the loopback only, port 1883, anonymous clients allowed);
 *  - security keys (password_file, acl_file, allow_anonymous) apply to the
 *    current listener with `per_listener_settings true`, else to every
 *    listener wherever they stand (the last one wins);
 *  - a listener uses TLS exactly when it has both certfile and keyfile;
 *    require_certificate false sets SSL_VERIFY_NONE: no certificate is
 *    asked for, so it is SSLCAUTH(NEVER), not OPTIONAL;
 *  - tls_version is the lowest version allowed (1.6.x: the only one).
 * Every key that is not carried over is named in a note. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chand/cipherspec.h"
#include "chand/keystore.h"
#include "mosqconf.h"

/* The settings a listener (or, for the security ones, the whole file)
 * can carry; each remembers its value and line. */
enum lslot {
	LS_CAFILE, LS_CAPATH, LS_CERTFILE, LS_KEYFILE, LS_CRLFILE, LS_CIPHERS, LS_CIPHERS13,
	LS_TLSVER, LS_REQCERT, LS_USEID, LS_USESUBJ, LS_MAXCONN, LS_PROTOCOL, LS_LANON,
	LS_PWFILE, LS_ACLFILE, LS_ANON, LS_MAXPACKET, LS_MAXKEEPALIVE, LS__N
};

static const char *const slot_key[LS__N] = {
	"cafile", "capath", "certfile", "keyfile", "crlfile", "ciphers", "ciphers_tls1.3",
	"tls_version", "require_certificate", "use_identity_as_username",
	"use_subject_as_username", "max_connections", "protocol", "listener_allow_anonymous",
	"password_file", "acl_file", "allow_anonymous", "max_packet_size", "max_keepalive",
};

struct lset {
	char *v;
	int line;
};

struct listener {
	int line;
	long port;
	char *addr;                 /* NULL: every address */
	bool is_default;
	struct lset s[LS__N];
};

enum kkind {
	K_LISTENER, K_PORT, K_BIND, K_LSTR, K_LBOOL, K_LINT, K_SEC, K_SECBOOL, K_GINT, K_PLS,
	K_CONNECTION, K_BRIDGE, K_NOT,
};

struct keydef {
	const char *name;
	enum kkind kind;
	int slot;                   /* enum lslot, or -1 */
	const char *reason;         /* K_NOT */
};

#define R_STORE "chand keeps every session and message in its SQLite store"
#define R_LOG "chand logs as chand.conf says (log.level, log.syslog, log.file)"
#define R_PLUGIN "chand has no plugins; identity and access come from --identity, " \
	"--password-file and --acl-file"
#define R_NONE "chand has no such setting"
#define R_HTTP "chand serves neither HTTP nor websockets"
#define R_ENGINE "chand takes keys from its keystore, not from OpenSSL engines"

static const struct keydef keydefs[] = {
	{ "listener", K_LISTENER, -1, NULL },
	{ "port", K_PORT, -1, NULL },
	{ "bind_address", K_BIND, -1, NULL },
	{ "cafile", K_LSTR, LS_CAFILE, NULL },
	{ "capath", K_LSTR, LS_CAPATH, NULL },
	{ "certfile", K_LSTR, LS_CERTFILE, NULL },
	{ "keyfile", K_LSTR, LS_KEYFILE, NULL },
	{ "crlfile", K_LSTR, LS_CRLFILE, NULL },
	{ "ciphers", K_LSTR, LS_CIPHERS, NULL },
	{ "ciphers_tls1.3", K_LSTR, LS_CIPHERS13, NULL },
	{ "tls_version", K_LSTR, LS_TLSVER, NULL },
	{ "protocol", K_LSTR, LS_PROTOCOL, NULL },
	{ "require_certificate", K_LBOOL, LS_REQCERT, NULL },
	{ "use_identity_as_username", K_LBOOL, LS_USEID, NULL },
	{ "use_subject_as_username", K_LBOOL, LS_USESUBJ, NULL },
	{ "listener_allow_anonymous", K_LBOOL, LS_LANON, NULL },
	{ "max_connections", K_LINT, LS_MAXCONN, NULL },
	{ "password_file", K_SEC, LS_PWFILE, NULL },
	{ "acl_file", K_SEC, LS_ACLFILE, NULL },
	{ "allow_anonymous", K_SECBOOL, LS_ANON, NULL },
	{ "max_packet_size", K_GINT, LS_MAXPACKET, NULL },
	{ "max_keepalive", K_GINT, LS_MAXKEEPALIVE, NULL },
	{ "per_listener_settings", K_PLS, -1, NULL },
	{ "connection", K_CONNECTION, -1, NULL },
	/* Bridge keys (those not starting with "bridge_"). */
	{ "address", K_BRIDGE, -1, NULL }, { "addresses", K_BRIDGE, -1, NULL },
	{ "topic", K_BRIDGE, -1, NULL }, { "cleansession", K_BRIDGE, -1, NULL },
	{ "clientid", K_BRIDGE, -1, NULL }, { "remote_clientid", K_BRIDGE, -1, NULL },
	{ "local_clientid", K_BRIDGE, -1, NULL }, { "keepalive_interval", K_BRIDGE, -1, NULL },
	{ "idle_timeout", K_BRIDGE, -1, NULL }, { "threshold", K_BRIDGE, -1, NULL },
	{ "start_type", K_BRIDGE, -1, NULL }, { "restart_timeout", K_BRIDGE, -1, NULL },
	{ "round_robin", K_BRIDGE, -1, NULL }, { "try_private", K_BRIDGE, -1, NULL },
	{ "notifications", K_BRIDGE, -1, NULL },
	{ "notifications_local_only", K_BRIDGE, -1, NULL },
	{ "notification_topic", K_BRIDGE, -1, NULL }, { "remote_username", K_BRIDGE, -1, NULL },
	{ "remote_password", K_BRIDGE, -1, NULL }, { "local_username", K_BRIDGE, -1, NULL },
	{ "local_password", K_BRIDGE, -1, NULL }, { "username", K_BRIDGE, -1, NULL },
	{ "password", K_BRIDGE, -1, NULL },
	/* Not carried over, with the reason. */
	{ "persistence", K_NOT, -1, R_STORE },
	{ "persistence_file", K_NOT, -1, R_STORE },
	{ "persistence_location", K_NOT, -1, R_STORE },
	{ "autosave_interval", K_NOT, -1, R_STORE },
	{ "autosave_on_changes", K_NOT, -1, R_STORE },
	{ "persistent_client_expiration", K_NOT, -1,
	  "chand ends a persistent session when its session expiry ends (--session-expiry-max)" },
	{ "log_dest", K_NOT, -1, R_LOG }, { "log_type", K_NOT, -1, R_LOG },
	{ "log_facility", K_NOT, -1, R_LOG }, { "log_timestamp", K_NOT, -1, R_LOG },
	{ "log_timestamp_format", K_NOT, -1, R_LOG }, { "connection_messages", K_NOT, -1, R_LOG },
	{ "websockets_log_level", K_NOT, -1, R_LOG },
	{ "pid_file", K_NOT, -1, "chand's service manager keeps track of its process" },
	{ "user", K_NOT, -1, "chand runs as the user chand.conf names" },
	{ "sys_interval", K_NOT, -1, "chand publishes no $SYS topics; use chanctl status" },
	{ "max_queued_messages", K_NOT, -1,
	  "chand keeps what an offline client missed in its store, within the queue manager's limits" },
	{ "max_queued_bytes", K_NOT, -1,
	  "chand keeps what an offline client missed in its store, within the queue manager's limits" },
	{ "max_inflight_messages", K_NOT, -1,
	  "chand's in-flight window is the client's receive maximum" },
	{ "max_inflight_bytes", K_NOT, -1, "chand's in-flight window is the client's receive maximum" },
	{ "queue_qos0_messages", K_NOT, -1,
	  "chand does not queue QoS 0 messages for offline clients (as IBM MQ's telemetry service)" },
	{ "message_size_limit", K_NOT, -1, "chand limits whole packets (--max-packet), not payloads" },
	{ "memory_limit", K_NOT, -1, R_NONE },
	{ "upgrade_outgoing_qos", K_NOT, -1, R_NONE },
	{ "allow_duplicate_messages", K_NOT, -1, R_NONE },
	{ "retain_available", K_NOT, -1, "chand always keeps retained messages" },
	{ "retain_expiry_interval", K_NOT, -1, R_NONE },
	{ "check_retain_source", K_NOT, -1, R_NONE },
	{ "set_tcp_nodelay", K_NOT, -1, R_NONE },
	{ "global_max_clients", K_NOT, -1, "chand limits clients per channel (--max-clients)" },
	{ "global_max_connections", K_NOT, -1, "chand limits clients per channel (--max-clients)" },
	{ "clientid_prefixes", K_NOT, -1, R_NONE },
	{ "allow_zero_length_clientid", K_NOT, -1, R_NONE },
	{ "auto_id_prefix", K_NOT, -1, R_NONE },
	{ "listener_auto_id_prefix", K_NOT, -1, R_NONE },
	{ "auth_plugin", K_NOT, -1, R_PLUGIN }, { "plugin", K_NOT, -1, R_PLUGIN },
	{ "global_plugin", K_NOT, -1, R_PLUGIN }, { "plugin_load", K_NOT, -1, R_PLUGIN },
	{ "plugin_use", K_NOT, -1, R_PLUGIN },
	{ "auth_plugin_deny_special_chars", K_NOT, -1, R_PLUGIN },
	{ "psk_file", K_NOT, -1, "chand has no TLS-PSK; clients use certificates or passwords" },
	{ "psk_hint", K_NOT, -1, "chand has no TLS-PSK; clients use certificates or passwords" },
	{ "include_dir", K_NOT, -1,
	  "the files in that directory are not read: import each with chanctl import mosquitto-conf" },
	{ "tls_keylog", K_NOT, -1, "chand never logs TLS keys" },
	{ "mount_point", K_NOT, -1, "chand has no mount points; topics are used as clients send them" },
	{ "bind_interface", K_NOT, -1, "chand binds addresses: give the interface's address as --address" },
	{ "socket_domain", K_NOT, -1, "chand listens on the --address given (0.0.0.0 or ::)" },
	{ "use_username_as_clientid", K_NOT, -1, R_NONE },
	{ "max_qos", K_NOT, -1, "chand accepts QoS 0, 1 and 2" },
	{ "max_topic_alias", K_NOT, -1, R_NONE },
	{ "max_topic_alias_broker", K_NOT, -1, R_NONE },
	{ "http_dir", K_NOT, -1, R_HTTP }, { "websockets_origin", K_NOT, -1, R_HTTP },
	{ "websockets_headers_size", K_NOT, -1, R_HTTP },
	{ "packet_buffer_size", K_NOT, -1, R_NONE },
	{ "dhparamfile", K_NOT, -1, "chand uses ECDHE key exchange only (no DH parameters)" },
	{ "tls_engine", K_NOT, -1, R_ENGINE }, { "tls_keyform", K_NOT, -1, R_ENGINE },
	{ "tls_engine_kpass_sha1", K_NOT, -1, R_ENGINE },
	{ "enable_proxy_protocol", K_NOT, -1, "chand does not speak the PROXY protocol" },
	{ "proxy_protocol_v2_require_tls", K_NOT, -1, "chand does not speak the PROXY protocol" },
	{ "accept_protocol_versions", K_NOT, -1, "give --protocol v311,v5 to the define command by hand" },
	{ "disable_client_cert_date_checks", K_NOT, -1, "chand always checks certificate dates" },
	{ "mptcp", K_NOT, -1, R_NONE },
};

/* OpenSSL's names of the TLS 1.2 suites chand has (TLS 1.3 names are the
 * IANA ones in OpenSSL too). */
static const char *const openssl_names[][2] = {
	{ "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
	{ "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
	{ "ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ "ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
	{ "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ "ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
};

struct label {
	char *path;
	char *label;
	int kind;                   /* 0 trust, 1 personal, 2 crl */
};

struct conv {
	const struct mqc_opts *o;
	const struct mqc_env *env;
	const char *name;
	bool oom;
	bool pls;                   /* per_listener_settings */
	struct listener deflt, global;
	struct listener *ls;
	size_t nls;
	struct mqc_cmd *ks, *ag;    /* keystore commands, then define/start */
	size_t nks, nag;
	struct mqc_note *notes;
	size_t nnotes;
	struct label *labels;
	size_t nlabels;
	char **checked;             /* paths already checked for existence */
	size_t nchecked;
	struct mqc_result *out;
};

/* ---- small helpers ---- */

static char *cv_strndup(struct conv *cv, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL) {
		cv->oom = true;
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *cv_strdup(struct conv *cv, const char *s)
{
	return cv_strndup(cv, s, strlen(s));
}

static char *cv_fmt(struct conv *cv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *cv_fmt(struct conv *cv, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (p = malloc((size_t)n + 1)) == NULL) {
		cv->oom = true;
		return NULL;
	}
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static bool cv_grow(struct conv *cv, void **v, size_t n, size_t size)
{
	void *p;

	/* n is the count before the append; capacities are 8, 16, 32... */
	if (n != 0 && (n < 8 || (n & (n - 1)) != 0))
		return true;
	p = realloc(*v, (n == 0 ? 8 : n * 2) * size);
	if (p == NULL) {
		cv->oom = true;
		return false;
	}
	*v = p;
	return true;
}

static void note(struct conv *cv, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(struct conv *cv, int line, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (!cv_grow(cv, (void **)&cv->notes, cv->nnotes, sizeof *cv->notes))
		return;
	cv->notes[cv->nnotes].line = line;
	cv->notes[cv->nnotes].text = cv_strdup(cv, buf);
	if (cv->notes[cv->nnotes].text != NULL)
		cv->nnotes++;
}

static void not_carried(struct conv *cv, int line, const char *key, const char *reason)
{
	note(cv, line, "%s is not carried over: %s", key, reason);
}

static struct mqc_cmd *cmd_new(struct conv *cv, bool keystore, int line)
{
	struct mqc_cmd **v = keystore ? &cv->ks : &cv->ag;
	size_t *n = keystore ? &cv->nks : &cv->nag;
	struct mqc_cmd *c;

	if (!cv_grow(cv, (void **)v, *n, sizeof **v))
		return NULL;
	c = &(*v)[(*n)++];
	memset(c, 0, sizeof *c);
	c->kind = keystore ? MQC_KEYSTORE : MQC_AGENT;
	c->line = line;
	return c;
}

static void comment(struct conv *cv, bool keystore, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void comment(struct conv *cv, bool keystore, int line, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	struct mqc_cmd *c;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	c = cmd_new(cv, keystore, line);
	if (c == NULL)
		return;
	c->kind = MQC_COMMENT;
	c->text = cv_strdup(cv, buf);
}

static void arg(struct conv *cv, struct mqc_cmd *c, const char *w)
{
	if (c == NULL || w == NULL)
		return;
	if (c->argc >= MQC_MAX_ARGS) {
		cv->oom = true;          /* cannot happen: the longest command has ~30 words */
		return;
	}
	c->argv[c->argc] = cv_strdup(cv, w);
	if (c->argv[c->argc] != NULL)
		c->argc++;
}

static void args(struct conv *cv, struct mqc_cmd *c, const char *const *w)
{
	for (; *w != NULL; w++)
		arg(cv, c, *w);
}

static bool is_windows_path(const char *p)
{
	return (isalpha((unsigned char)p[0]) && p[1] == ':' && (p[2] == '\\' || p[2] == '/')) ||
	       (p[0] == '\\' && p[1] == '\\');
}

/* Warns once per path that does not exist here (Windows paths are kept
 * as given: the operator copies the files over and edits the command). */
static void check_path(struct conv *cv, int line, const char *key, const char *path)
{
	size_t i;

	if (cv->env == NULL || cv->env->exists == NULL)
		return;
	for (i = 0; i < cv->nchecked; i++)
		if (strcmp(cv->checked[i], path) == 0)
			return;
	if (!cv_grow(cv, (void **)&cv->checked, cv->nchecked, sizeof *cv->checked))
		return;
	cv->checked[cv->nchecked] = cv_strdup(cv, path);
	if (cv->checked[cv->nchecked] == NULL)
		return;
	cv->nchecked++;
	if (cv->env->exists(cv->env->arg, path))
		return;
	if (is_windows_path(path))
		note(cv, line, "%s %s does not exist here (a Windows path): copy the file to this "
		     "machine and change the path in the command", key, path);
	else
		note(cv, line, "%s %s does not exist", key, path);
}

/* The keystore label for a file: "mosq-" and the file name without its
 * extension, made of the characters labels allow, unique per path. */
static const char *label_for(struct conv *cv, const char *path, int kind, bool *fresh)
{
	char base[KS_LABEL_MAX + 1], cand[KS_LABEL_MAX + 16];
	const char *name = path, *p, *dot;
	size_t i, n;
	int k;

	*fresh = false;
	for (i = 0; i < cv->nlabels; i++)
		if (cv->labels[i].kind == kind && strcmp(cv->labels[i].path, path) == 0)
			return cv->labels[i].label;
	for (p = path; *p; p++)
		if (*p == '/' || *p == '\\')
			name = p + 1;
	dot = strrchr(name, '.');
	n = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
	if (n == 0) {
		name = "file";
		n = 4;
	}
	if (n > KS_LABEL_MAX - 9)
		n = KS_LABEL_MAX - 9;
	memcpy(base, "mosq-", 5);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		base[5 + i] = (char)(isalnum(c) || c == '.' || c == '_' || c == '-' || c == '@' ||
		                     c == '+' ? c : '-');
	}
	base[5 + n] = '\0';
	for (k = 1;; k++) {
		bool used = false;

		if (k == 1)
			snprintf(cand, sizeof cand, "%s", base);
		else
			snprintf(cand, sizeof cand, "%s-%d", base, k);
		for (i = 0; i < cv->nlabels && !used; i++)
			used = strcmp(cv->labels[i].label, cand) == 0;
		if (!used)
			break;
	}
	if (!cv_grow(cv, (void **)&cv->labels, cv->nlabels, sizeof *cv->labels))
		return NULL;
	cv->labels[cv->nlabels].path = cv_strdup(cv, path);
	cv->labels[cv->nlabels].label = cv_strdup(cv, cand);
	cv->labels[cv->nlabels].kind = kind;
	if (cv->labels[cv->nlabels].path == NULL || cv->labels[cv->nlabels].label == NULL) {
		free(cv->labels[cv->nlabels].path);
		free(cv->labels[cv->nlabels].label);
		return NULL;
	}
	*fresh = true;
	return cv->labels[cv->nlabels++].label;
}

/* "-k FILE" and "--password-file F" after the keystore subcommand words,
 * when given. */
static void ks_words(struct conv *cv, struct mqc_cmd *c, const char *const *w)
{
	args(cv, c, w);
	if (cv->o->keystore != NULL)
		args(cv, c, (const char *const[]){ "-k", cv->o->keystore, NULL });
	if (cv->o->keystore_password_file != NULL)
		args(cv, c, (const char *const[]){ "--password-file", cv->o->keystore_password_file,
		                                     NULL });
}

/* ---- parsing ---- */

static void lfree(struct listener *l)
{
	for (int i = 0; i < LS__N; i++)
		free(l->s[i].v);
	free(l->addr);
}

static int syntax(struct conv *cv, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int syntax(struct conv *cv, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(cv->out->err, sizeof cv->out->err, "%s:%d: ", cv->name, line);
	if (n < 0 || (size_t)n >= sizeof cv->out->err)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(cv->out->err + n, sizeof cv->out->err - (size_t)n, fmt, ap);
	va_end(ap);
	return 1;
}

static int set_slot(struct conv *cv, struct listener *l, int slot, const char *v, int line)
{
	char *copy = cv_strdup(cv, v);

	if (copy == NULL)
		return -1;
	free(l->s[slot].v);
	l->s[slot].v = copy;
	l->s[slot].line = line;
	return 0;
}

/* A decimal number in [min,max]. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s == '\0' || (!isdigit((unsigned char)*s) && *s != '-'))
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static const struct keydef *keydef_find(const char *key)
{
	for (size_t i = 0; i < sizeof keydefs / sizeof keydefs[0]; i++)
		if (strcmp(keydefs[i].name, key) == 0)
			return &keydefs[i];
	return NULL;
}

/* One line of key and value (value trimmed, "" if none). */
static int parse_line(struct conv *cv, int line, const char *key, const char *val,
                      struct listener **cur, const char **bridge, char *bridge_buf, size_t bblen)
{
	const struct keydef *k = keydef_find(key);
	struct listener *scope = *cur ? *cur : &cv->deflt;

	if (k == NULL) {
		if (*bridge != NULL && strncmp(key, "bridge_", 7) != 0) {
			note(cv, line, "%s is not carried over: unknown key (in bridge %s)", key, *bridge);
			return 0;
		}
		if (strncmp(key, "bridge_", 7) == 0 || strncmp(key, "auth_opt_", 9) == 0 ||
		    strncmp(key, "plugin_opt_", 11) == 0) {
			if (key[0] == 'b')
				note(cv, line, "%s is not carried over: it belongs to bridge %s, and bridges "
				     "are not carried over", key, *bridge ? *bridge : "(none defined)");
			else
				not_carried(cv, line, key, R_PLUGIN);
			return 0;
		}
		not_carried(cv, line, key, "not a mosquitto.conf key chanctl knows");
		return 0;
	}
	if (k->kind == K_NOT) {
		not_carried(cv, line, key, k->reason);
		return 0;
	}
	if (k->kind == K_BRIDGE) {
		note(cv, line, "%s is not carried over: it belongs to bridge %s, and bridges are not "
		     "carried over", key, *bridge ? *bridge : "(none defined)");
		return 0;
	}
	if (*val == '\0')
		return syntax(cv, line, "%s needs a value", key);

	switch (k->kind) {
	case K_LISTENER: {
		char port[32];
		size_t plen = strcspn(val, " \t");
		const char *addr = val + plen + strspn(val + plen, " \t");
		struct listener *l;
		long p = -1;

		if (plen < sizeof port) {
			memcpy(port, val, plen);
			port[plen] = '\0';
		}
		if (plen >= sizeof port || !parse_long(port, 0, 65535, &p))
			return syntax(cv, line, "listener port \"%.*s\" is not a number from 1 to 65535",
			              (int)plen, val);
		if (addr[strcspn(addr, " \t")] != '\0')
			return syntax(cv, line, "listener takes a port and an address, not \"%s\"", val);
		if (p == 0 && *addr == '\0')
			return syntax(cv, line, "listener port 0 needs a unix socket path");
		if (!cv_grow(cv, (void **)&cv->ls, cv->nls, sizeof *cv->ls))
			return -1;
		l = &cv->ls[cv->nls++];
		memset(l, 0, sizeof *l);
		l->line = line;
		l->port = p;
		if (*addr != '\0' && (l->addr = cv_strdup(cv, addr)) == NULL)
			return -1;
		*cur = l;
		return 0;
	}
	case K_PORT: {
		long p;

		if (!parse_long(val, 1, 65535, &p))
			return syntax(cv, line, "port \"%s\" is not a number from 1 to 65535", val);
		cv->deflt.port = p;
		cv->deflt.line = line;
		return 0;
	}
	case K_BIND:
		free(cv->deflt.addr);
		if ((cv->deflt.addr = cv_strdup(cv, val)) == NULL)
			return -1;
		if (cv->deflt.port == 0)
			cv->deflt.port = 1883;
		if (cv->deflt.line == 0)
			cv->deflt.line = line;
		return 0;
	case K_LSTR:
		if (k->slot == LS_TLSVER && strcmp(val, "tlsv1.3") != 0 && strcmp(val, "tlsv1.2") != 0 &&
		    strcmp(val, "tlsv1.1") != 0 && strcmp(val, "tlsv1") != 0)
			return syntax(cv, line, "tls_version must be tlsv1.3, tlsv1.2, tlsv1.1 or tlsv1, "
			              "not \"%s\"", val);
		return set_slot(cv, scope, k->slot, val, line);
	case K_LBOOL:
	case K_SECBOOL:
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
			return syntax(cv, line, "%s must be true or false, not \"%s\"", key, val);
		if (k->kind == K_SECBOOL && !cv->pls)
			return set_slot(cv, &cv->global, k->slot, val, line);
		return set_slot(cv, scope, k->slot, val, line);
	case K_LINT: {
		long n;

		if (!parse_long(val, -1, 1000000000L, &n))
			return syntax(cv, line, "%s must be a number, not \"%s\"", key, val);
		return set_slot(cv, scope, k->slot, val, line);
	}
	case K_GINT: {
		long n;

		if (!parse_long(val, 0, 1000000000L, &n))
			return syntax(cv, line, "%s must be a number, not \"%s\"", key, val);
		return set_slot(cv, &cv->global, k->slot, val, line);
	}
	case K_SEC:
		return set_slot(cv, cv->pls ? scope : &cv->global, k->slot, val, line);
	case K_PLS:
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
			return syntax(cv, line, "%s must be true or false, not \"%s\"", key, val);
		return 0;    /* read by the first pass */
	case K_CONNECTION:
		snprintf(bridge_buf, bblen, "%s", val);
		*bridge = bridge_buf;
		note(cv, line, "connection is not carried over: bridge %s; chand links queue managers "
		     "with message channels and routes, not MQTT bridges", val);
		return 0;
	default:
		return 0;
	}
}

/* Splits the text into lines and feeds them to parse_line; first pass
 * only looks for per_listener_settings (its value governs the whole file). */
static int parse_text(struct conv *cv, const char *text, size_t len, bool first_pass)
{
	struct listener *cur = NULL;
	const char *bridge = NULL;
	char bridge_buf[256];
	size_t pos = 0;
	int line = 0;

	while (pos < len) {
		size_t end = pos, klen;
		char buf[4096];
		char *s, *e, *v;
		int rc;

		while (end < len && text[end] != '\n')
			end++;
		line++;
		if (memchr(text + pos, '\0', end - pos) != NULL) {
			if (first_pass)
				return 0;
			return syntax(cv, line, "the line holds a NUL byte");
		}
		if (end - pos >= sizeof buf) {
			if (first_pass)
				return 0;
			return syntax(cv, line, "the line is longer than %zu bytes", sizeof buf - 1);
		}
		memcpy(buf, text + pos, end - pos);
		buf[end - pos] = '\0';
		pos = end + 1;

		e = buf + strlen(buf);
		while (e > buf && isspace((unsigned char)e[-1]))
			*--e = '\0';
		s = buf + strspn(buf, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		klen = strcspn(s, " \t");
		v = s + klen;
		if (*v != '\0')
			*v++ = '\0';
		v += strspn(v, " \t");
		if (first_pass) {
			if (strcmp(s, "per_listener_settings") == 0)
				cv->pls = strcmp(v, "true") == 0;
			continue;
		}
		rc = parse_line(cv, line, s, v, &cur, &bridge, bridge_buf, sizeof bridge_buf);
		if (rc != 0)
			return rc;
		if (cv->oom)
			return -1;
	}
	return 0;
}

/* ---- mapping ---- */

static bool is_true(const struct lset *s)
{
	return s->v != NULL && strcmp(s->v, "true") == 0;
}

static int suite_index(const struct cs_suite *s)
{
	size_t n;
	const struct cs_suite *all = cs_suites(&n);

	return (int)(s - all);
}

/* The suites of a colon-separated list of one protocol version, as a
 * mask; false (bad names in bad) if a word is not a suite chand has. */
static bool suites_mask(const char *list, unsigned version, uint32_t *mask, char *bad, size_t badlen)
{
	char buf[1024];
	char *save = NULL;
	uint32_t m = 0;

	snprintf(buf, sizeof buf, "%s", list);
	for (char *w = strtok_r(buf, ":, ", &save); w != NULL; w = strtok_r(NULL, ":, ", &save)) {
		const struct cs_suite *s = NULL;

		for (size_t i = 0; i < sizeof openssl_names / sizeof openssl_names[0]; i++)
			if (strcasecmp(w, openssl_names[i][0]) == 0)
				s = cs_suite_lookup(openssl_names[i][1]);
		if (s == NULL)
			s = cs_suite_lookup(w);
		if (s == NULL || s->version != version) {
			snprintf(bad, badlen, "%s", w);
			return false;
		}
		m |= 1u << suite_index(s);
	}
	if (m == 0) {
		snprintf(bad, badlen, "%s", list);
		return false;
	}
	*mask = m;
	return true;
}

static uint32_t version_mask(unsigned version)
{
	size_t n;
	const struct cs_suite *all = cs_suites(&n);
	uint32_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (all[i].version == version)
			m |= 1u << i;
	return m;
}

/* SSLCIPH for a TLS listener: the CipherSpec allowing exactly the suites
 * mosquitto would, else the family that allows them all (with a note). */
static const char *map_sslciph(struct conv *cv, const struct listener *l)
{
	const struct lset *tv = &l->s[LS_TLSVER], *c12 = &l->s[LS_CIPHERS], *c13 = &l->s[LS_CIPHERS13];
	uint32_t all12 = version_mask(CS_TLS12), all13 = version_mask(CS_TLS13);
	uint32_t m12 = all12, m13 = all13, want;
	bool v12 = true, restricted = false;
	char bad[128];
	size_t n;
	const struct cipherspec *list = cs_list(&n);
	const char *fallback;

	if (tv->v != NULL) {
		if (strcmp(tv->v, "tlsv1.3") == 0) {
			v12 = false;
		} else if (strcmp(tv->v, "tlsv1.1") == 0 || strcmp(tv->v, "tlsv1") == 0) {
			note(cv, tv->line, "tls_version %s is raised to TLS 1.2: chand has nothing older",
			     tv->v);
		}
	}
	if (c12->v != NULL) {
		if (!v12)
			note(cv, c12->line, "ciphers is not carried over: it only applies to TLS 1.2, "
			     "which tls_version tlsv1.3 excludes");
		else if (suites_mask(c12->v, CS_TLS12, &m12, bad, sizeof bad))
			restricted = true;
		else
			note(cv, c12->line, "ciphers is not carried over: \"%s\" is not a TLS 1.2 suite "
			     "chand has (ECDHE with AES-GCM or ChaCha20-Poly1305 only)", bad);
	}
	if (c13->v != NULL) {
		if (suites_mask(c13->v, CS_TLS13, &m13, bad, sizeof bad))
			restricted = true;
		else
			note(cv, c13->line, "ciphers_tls1.3 is not carried over: \"%s\" is not a TLS 1.3 "
			     "suite chand has", bad);
	}
	want = (v12 ? m12 : 0) | m13;
	/* The families first: mosquitto's tls_version is a minimum. */
	if (want == (all12 | all13))
		return "ANY_TLS12_OR_HIGHER";
	if (want == all13)
		return "ANY_TLS13_OR_HIGHER";
	for (size_t i = 0; i < n; i++)
		if (list[i].suites == want)
			return list[i].name;
	fallback = v12 ? "ANY_TLS12_OR_HIGHER" : "ANY_TLS13_OR_HIGHER";
	if (restricted) {
		const struct lset *at = c12->v != NULL && v12 ? c12 : c13;

		note(cv, at->line, "%s is not carried over exactly: one SSLCIPH cannot name that set "
		     "of suites; %s allows every %s suite chand has (all ECDHE AEAD)%s", slot_key[at == c12 ?
		     LS_CIPHERS : LS_CIPHERS13], fallback, v12 ? "TLS 1.2 and 1.3" : "TLS 1.3",
		     at == c12 ? "; naming one TLS 1.2 suite in --sslciph would refuse TLS 1.3 clients"
		               : "");
	}
	return fallback;
}

/* Keystore commands for a TLS listener; *certlabl gets the personal label. */
static void map_keystore(struct conv *cv, const struct listener *l, const char **certlabl)
{
	const struct lset *ca = &l->s[LS_CAFILE], *cap = &l->s[LS_CAPATH];
	const struct lset *cert = &l->s[LS_CERTFILE], *key = &l->s[LS_KEYFILE];
	const struct lset *crl = &l->s[LS_CRLFILE];
	struct mqc_cmd *c;
	const char *lab;
	bool fresh;

	if (ca->v != NULL) {
		lab = label_for(cv, ca->v, 0, &fresh);
		if (lab != NULL && fresh) {
			check_path(cv, ca->line, "cafile", ca->v);
			c = cmd_new(cv, true, ca->line);
			ks_words(cv, c, (const char *const[]){ "keystore", "trust", NULL });
			args(cv, c, (const char *const[]){ "--label", lab, "--cert", ca->v, NULL });
		}
	}
	if (cap->v != NULL) {
		char **files = NULL, err[512] = "";
		size_t nf = 0;
		int r = -1;

		if (cv->env != NULL && cv->env->list_dir != NULL)
			r = cv->env->list_dir(cv->env->arg, cap->v, &files, &nf, err, sizeof err);
		else
			snprintf(err, sizeof err, "the directory was not read");
		if (r != 0) {
			note(cv, cap->line, "capath %s: %s; trust its CA certificates one by one with "
			     "chanctl keystore trust --label L --cert FILE", cap->v, err);
			comment(cv, true, cap->line, "capath %s: trust each CA certificate in it with "
			        "chanctl keystore trust --label L --cert FILE", cap->v);
		} else if (nf == 0) {
			note(cv, cap->line, "capath %s holds no certificate file (*.pem, *.crt, *.cer)",
			     cap->v);
		}
		for (size_t i = 0; r == 0 && i < nf; i++) {
			lab = label_for(cv, files[i], 0, &fresh);
			if (lab != NULL && fresh) {
				c = cmd_new(cv, true, cap->line);
				ks_words(cv, c, (const char *const[]){ "keystore", "trust", NULL });
				args(cv, c, (const char *const[]){ "--label", lab, "--cert", files[i], NULL });
			}
		}
		for (size_t i = 0; i < nf; i++)
			free(files[i]);
		free(files);
	}
	*certlabl = label_for(cv, cert->v, 1, &fresh);
	if (*certlabl != NULL && fresh) {
		int enc = -1;

		check_path(cv, cert->line, "certfile", cert->v);
		check_path(cv, key->line, "keyfile", key->v);
		if (cv->o->key_password_file == NULL && cv->env != NULL &&
		    cv->env->key_encrypted != NULL)
			enc = cv->env->key_encrypted(cv->env->arg, key->v);
		if (cv->o->key_password_file == NULL && enc == 1) {
			note(cv, key->line, "keyfile %s is encrypted: give --key-password-file FILE "
			     "(a file holding its pass phrase)", key->v);
			comment(cv, true, key->line, "%s is encrypted: add --key-password-file FILE "
			        "(a file holding its pass phrase)", key->v);
		} else if (cv->o->key_password_file == NULL && enc == -1) {
			comment(cv, true, key->line, "if %s is encrypted, add --key-password-file FILE "
			        "(a file holding its pass phrase)", key->v);
		}
		c = cmd_new(cv, true, cert->line);
		ks_words(cv, c, (const char *const[]){ "keystore", "import", NULL });
		args(cv, c, (const char *const[]){ "--label", *certlabl, "--cert", cert->v, "--key",
		                                     key->v, NULL });
		if (cv->o->key_password_file != NULL)
			args(cv, c, (const char *const[]){ "--key-password-file",
			                                     cv->o->key_password_file, NULL });
	}
	if (crl->v != NULL) {
		lab = label_for(cv, crl->v, 2, &fresh);
		if (lab != NULL && fresh) {
			check_path(cv, crl->line, "crlfile", crl->v);
			c = cmd_new(cv, true, crl->line);
			ks_words(cv, c, (const char *const[]){ "keystore", "crl", "add", NULL });
			args(cv, c, (const char *const[]){ "--label", lab, "--crl", crl->v, NULL });
		}
	}
}

static void map_listener(struct conv *cv, struct listener *l, const char *chname, bool local_only,
                         bool *anon_noted)
{
	const struct listener *sec = cv->pls ? l : &cv->global;
	const struct lset *pw = &sec->s[LS_PWFILE], *acl = &sec->s[LS_ACLFILE];
	const struct lset *anon = &sec->s[LS_ANON];
	const struct lset *reqcert = &l->s[LS_REQCERT];
	bool tls = l->s[LS_CERTFILE].v != NULL && l->s[LS_KEYFILE].v != NULL;
	const char *identity = "username", *certlabl = NULL, *sslciph = NULL, *cauth = NULL;
	const char *anon_word;
	char port[16];
	struct mqc_cmd *c;

	snprintf(port, sizeof port, "%ld", l->port);
	if (l->is_default)
		comment(cv, false, l->line, "the default listener%s: port %ld%s%s", l->line ?
		        "" : " (no listener in the file: mosquitto listens on the loopback only)",
		        l->port, l->addr ? ", address " : "", l->addr ? l->addr : "");
	else
		comment(cv, false, l->line, "listener %ld%s%s (line %d)", l->port, l->addr ? " " : "",
		        l->addr ? l->addr : "", l->line);

	if (tls) {
		map_keystore(cv, l, &certlabl);
		sslciph = map_sslciph(cv, l);
		if (is_true(reqcert)) {
			cauth = "required";
			if (l->s[LS_CAFILE].v == NULL && l->s[LS_CAPATH].v == NULL)
				note(cv, reqcert->line, "require_certificate true without cafile or capath: "
				     "chand checks client certificates against the CAs its keystore trusts");
		} else {
			/* mosquitto sets SSL_VERIFY_NONE: it asks for no certificate. */
			cauth = "never";
			comment(cv, false, l->line, "require_certificate %s: mosquitto asks clients for "
			        "no certificate, so --sslcauth never (optional would ask for one)",
			        reqcert->v ? reqcert->v : "not set");
		}
		if (is_true(&l->s[LS_USEID]))
			identity = "cert-cn";
		else if (is_true(&l->s[LS_USESUBJ]))
			identity = "cert-dn";
		if (strncmp(identity, "cert", 4) == 0 && !is_true(reqcert))
			note(cv, l->s[is_true(&l->s[LS_USEID]) ? LS_USEID : LS_USESUBJ].line,
			     "%s without require_certificate true: no client certificate is asked for, "
			     "so no client can be identified by one", is_true(&l->s[LS_USEID]) ?
			     "use_identity_as_username" : "use_subject_as_username");
	} else {
		static const int tls_slots[] = { LS_CAFILE, LS_CAPATH, LS_CRLFILE, LS_CIPHERS,
		                                 LS_CIPHERS13, LS_TLSVER, LS_REQCERT, LS_USEID,
		                                 LS_USESUBJ };
		int which = l->s[LS_CERTFILE].v ? LS_CERTFILE : LS_KEYFILE;

		if (l->s[which].v != NULL)
			note(cv, l->s[which].line, "%s is not carried over: mosquitto uses TLS only with "
			     "both certfile and keyfile", slot_key[which]);
		for (size_t i = 0; i < sizeof tls_slots / sizeof tls_slots[0]; i++)
			if (l->s[tls_slots[i]].v != NULL)
				note(cv, l->s[tls_slots[i]].line, "%s is not carried over: the listener has "
				     "no certfile and keyfile, so mosquitto does not use TLS on it",
				     slot_key[tls_slots[i]]);
		note(cv, l->line, "listener %ld: channel %s is plain TCP, NOT ENCRYPTED (no certfile "
		     "and keyfile): user names and passwords cross the network in clear", l->port,
		     chname);
		comment(cv, false, l->line, "WARNING: %s is plain TCP, NOT ENCRYPTED", chname);
	}

	if (l->s[LS_LANON].v != NULL)
		anon = &l->s[LS_LANON];
	if (anon->v != NULL) {
		anon_word = is_true(anon) ? "yes" : "no";
	} else if (local_only) {
		anon_word = "yes";
	} else {
		anon_word = "no";
		if (!*anon_noted)
			note(cv, 0, "allow_anonymous is not set: mosquitto 2.x then refuses clients "
			     "without a user name (1.6 allowed them): --allow-anonymous no");
		*anon_noted = true;
	}

	c = cmd_new(cv, false, l->line);
	args(cv, c, (const char *const[]){ "define", "channel", chname, "--type", "mqtt", "--port",
	                                     port, NULL });
	if (l->addr != NULL)
		args(cv, c, (const char *const[]){ "--address", l->addr, NULL });
	if (tls)
		args(cv, c, (const char *const[]){ "--sslciph", sslciph, "--certlabl", certlabl,
		                                     "--sslcauth", cauth, NULL });
	args(cv, c, (const char *const[]){ "--identity", identity, NULL });
	if (pw->v != NULL) {
		if (strncmp(identity, "cert", 4) == 0) {
			note(cv, pw->line, "password_file is not carried over for listener %ld: with %s "
			     "mosquitto does not use it", l->port, strcmp(identity, "cert-cn") == 0 ?
			     "use_identity_as_username" : "use_subject_as_username");
		} else {
			check_path(cv, pw->line, "password_file", pw->v);
			args(cv, c, (const char *const[]){ "--password-file", pw->v, NULL });
		}
	}
	if (acl->v != NULL) {
		check_path(cv, acl->line, "acl_file", acl->v);
		args(cv, c, (const char *const[]){ "--acl-file", acl->v, NULL });
	}
	args(cv, c, (const char *const[]){ "--allow-anonymous", anon_word, NULL });
	if (l->s[LS_MAXCONN].v != NULL && strcmp(l->s[LS_MAXCONN].v, "-1") != 0) {
		if (strcmp(l->s[LS_MAXCONN].v, "0") == 0)
			note(cv, l->s[LS_MAXCONN].line, "max_connections is not carried over: 0 is not "
			     "a limit chand takes");
		else
			args(cv, c, (const char *const[]){ "--max-clients", l->s[LS_MAXCONN].v, NULL });
	}
	if (cv->global.s[LS_MAXPACKET].v != NULL && strcmp(cv->global.s[LS_MAXPACKET].v, "0") != 0)
		args(cv, c, (const char *const[]){ "--max-packet", cv->global.s[LS_MAXPACKET].v, NULL });
	if (cv->global.s[LS_MAXKEEPALIVE].v != NULL &&
	    strcmp(cv->global.s[LS_MAXKEEPALIVE].v, "0") != 0)
		args(cv, c, (const char *const[]){ "--keepalive-max", cv->global.s[LS_MAXKEEPALIVE].v,
		                                     NULL });
	c = cmd_new(cv, false, l->line);
	args(cv, c, (const char *const[]){ "start", "channel", chname, NULL });
}

/* Notes every setting of a listener that gets no channel. */
static void drop_listener(struct conv *cv, const struct listener *l, const char *why)
{
	for (int i = 0; i < LS__N; i++)
		if (l->s[i].v != NULL)
			not_carried(cv, l->s[i].line, slot_key[i], why);
}

static int map_all(struct conv *cv)
{
	struct listener **run;
	size_t nrun = 0;
	bool local_only = false, anon_noted = false;
	int rc = 0;

	run = calloc(cv->nls + 1, sizeof *run);
	if (run == NULL)
		return -1;
	cv->deflt.is_default = true;
	if (cv->deflt.port != 0) {
		run[nrun++] = &cv->deflt;
	} else if (cv->nls == 0) {
		/* No listener at all: mosquitto 2.x listens on the loopback only. */
		cv->deflt.port = 1883;
		cv->deflt.addr = cv_strdup(cv, "127.0.0.1");
		run[nrun++] = &cv->deflt;
		local_only = true;
	} else {
		drop_listener(cv, &cv->deflt, "it applies to the default listener, which does not run "
		              "(the file has listener lines and no port or bind_address line)");
	}
	for (size_t i = 0; i < cv->nls; i++) {
		struct listener *l = &cv->ls[i];
		const char *proto = l->s[LS_PROTOCOL].v;

		if (l->port == 0) {
			note(cv, l->line, "listener 0 %s is not carried over: chand has no unix socket "
			     "listeners", l->addr);
			drop_listener(cv, l, "its listener is not carried over");
			continue;
		}
		if (proto != NULL && strcmp(proto, "mqtt") != 0) {
			note(cv, l->line, "listener %ld is not carried over: protocol %s (chand serves "
			     "MQTT over TCP only)", l->port, proto);
			drop_listener(cv, l, "its listener is not carried over");
			continue;
		}
		for (size_t j = 0; j < nrun; j++)
			if (run[j]->port == l->port &&
			    ((run[j]->addr == NULL && l->addr == NULL) ||
			     (run[j]->addr != NULL && l->addr != NULL && strcmp(run[j]->addr, l->addr) == 0))) {
				rc = syntax(cv, l->line, "listener %ld%s%s is already defined at line %d",
				            l->port, l->addr ? " " : "", l->addr ? l->addr : "", run[j]->line);
				goto out;
			}
		run[nrun++] = l;
	}
	/* Half a TLS setup is an error in mosquitto too. */
	for (size_t i = 0; i < nrun; i++) {
		const struct lset *ce = &run[i]->s[LS_CERTFILE], *ke = &run[i]->s[LS_KEYFILE];

		if ((ce->v == NULL) != (ke->v == NULL)) {
			rc = syntax(cv, ce->v ? ce->line : ke->line, "%s without %s: mosquitto needs both "
			            "for TLS", ce->v ? "certfile" : "keyfile", ce->v ? "keyfile" : "certfile");
			goto out;
		}
	}
	if (cv->global.s[LS_MAXPACKET].v != NULL && strcmp(cv->global.s[LS_MAXPACKET].v, "0") == 0)
		not_carried(cv, cv->global.s[LS_MAXPACKET].line, "max_packet_size",
		            "0 (no limit) is not a value chand takes; chand keeps its default");
	if (cv->global.s[LS_MAXKEEPALIVE].v != NULL &&
	    strcmp(cv->global.s[LS_MAXKEEPALIVE].v, "0") == 0)
		not_carried(cv, cv->global.s[LS_MAXKEEPALIVE].line, "max_keepalive",
		            "0 is not a value chand takes; chand keeps its default");
	for (size_t i = 0; i < nrun; i++) {
		char name[64];
		int same = 0;

		for (size_t j = 0; j < i; j++)
			same += run[j]->port == run[i]->port;
		if (same == 0)
			snprintf(name, sizeof name, "MQTT.%ld", run[i]->port);
		else
			snprintf(name, sizeof name, "MQTT.%ld.%d", run[i]->port, same + 1);
		map_listener(cv, run[i], name, local_only, &anon_noted);
		cv->out->nchannels++;
	}
	{
		/* chand trusts its keystore's CAs on every channel, mosquitto a
		 * listener's own cafile: say so when listeners had different ones. */
		const char *first = NULL;

		for (size_t i = 0; i < nrun; i++) {
			const char *ca = run[i]->s[LS_CAFILE].v;

			if (ca == NULL || !is_true(&run[i]->s[LS_REQCERT]))
				continue;
			if (first == NULL)
				first = ca;
			else if (strcmp(first, ca) != 0) {
				note(cv, run[i]->s[LS_CAFILE].line, "listeners check client certificates "
				     "against different cafiles; chand trusts every CA of its keystore on "
				     "every channel (use --sslpeer to tell clients apart)");
				break;
			}
		}
	}
out:
	free(run);
	return cv->oom ? -1 : rc;
}

static void cmds_free(struct mqc_cmd *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < v[i].argc; j++)
			free(v[i].argv[j]);
		free(v[i].text);
	}
	free(v);
}

/* The final list: a header, the keystore commands, refresh security (the
 * agent reads its keystore at start and on refresh), define and start. */
static int assemble(struct conv *cv)
{
	struct mqc_result *r = cv->out;
	size_t n = 1 + cv->nks + 1 + cv->nag, k = 0;
	bool any_ks = false;

	r->cmds = calloc(n, sizeof *r->cmds);
	if (r->cmds == NULL)
		return -1;
	r->cmds[k].kind = MQC_COMMENT;
	r->cmds[k].text = cv_fmt(cv, "chanctl import mosquitto-conf %s: %zu channel%s "
	                         "(per_listener_settings %s)", cv->name, r->nchannels,
	                         r->nchannels == 1 ? "" : "s", cv->pls ? "true" : "false");
	k++;
	for (size_t i = 0; i < cv->nks; i++) {
		any_ks |= cv->ks[i].kind == MQC_KEYSTORE;
		r->cmds[k++] = cv->ks[i];
	}
	if (any_ks) {
		struct mqc_cmd *c = &r->cmds[k++];

		c->kind = MQC_AGENT;
		c->argv[0] = cv_strdup(cv, "refresh");
		c->argv[1] = cv_strdup(cv, "security");
		c->argc = 2;
	}
	for (size_t i = 0; i < cv->nag; i++)
		r->cmds[k++] = cv->ag[i];
	r->ncmds = k;
	free(cv->ks);
	free(cv->ag);
	cv->ks = cv->ag = NULL;
	cv->nks = cv->nag = 0;
	/* Notes in line order (stable: insertion sort), file-wide ones first. */
	for (size_t i = 1; i < cv->nnotes; i++) {
		struct mqc_note t = cv->notes[i];
		size_t j = i;

		for (; j > 0 && cv->notes[j - 1].line > t.line; j--)
			cv->notes[j] = cv->notes[j - 1];
		cv->notes[j] = t;
	}
	r->notes = cv->notes;
	r->nnotes = cv->nnotes;
	cv->notes = NULL;
	cv->nnotes = 0;
	return cv->oom ? -1 : 0;
}

int mqc_convert(const char *text, size_t len, const struct mqc_opts *opts,
                const struct mqc_env *env, struct mqc_result *out)
{
	static const struct mqc_opts none;
	struct conv cv;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&cv, 0, sizeof cv);
	cv.o = opts ? opts : &none;
	cv.env = env;
	cv.name = cv.o->name ? cv.o->name : "mosquitto.conf";
	cv.out = out;
	parse_text(&cv, text, len, true);
	rc = parse_text(&cv, text, len, false);
	if (rc == 0)
		rc = map_all(&cv);
	if (rc == 0)
		rc = assemble(&cv);
	if (cv.oom)
		rc = -1;
	lfree(&cv.deflt);
	lfree(&cv.global);
	for (size_t i = 0; i < cv.nls; i++)
		lfree(&cv.ls[i]);
	free(cv.ls);
	cmds_free(cv.ks, cv.nks);
	cmds_free(cv.ag, cv.nag);
	for (size_t i = 0; i < cv.nnotes; i++)
		free(cv.notes[i].text);
	free(cv.notes);
	for (size_t i = 0; i < cv.nlabels; i++) {
		free(cv.labels[i].path);
		free(cv.labels[i].label);
	}
	free(cv.labels);
	for (size_t i = 0; i < cv.nchecked; i++)
		free(cv.checked[i]);
	free(cv.checked);
	if (rc != 0) {
		char err[sizeof out->err];

		memcpy(err, out->err, sizeof err);
		mqc_result_free(out);
		memcpy(out->err, err, sizeof err);
		if (rc < 0)
			snprintf(out->err, sizeof out->err, "out of memory");
	}
	return rc;
}

void mqc_result_free(struct mqc_result *r)
{
	cmds_free(r->cmds, r->ncmds);
	for (size_t i = 0; i < r->nnotes; i++)
		free(r->notes[i].text);
	free(r->notes);
	memset(r, 0, sizeof *r);
}

/* ---- output ---- */

char *mqc_shell_quote(const char *w)
{
	size_t n = 0, i;
	bool safe = *w != '\0';
	char *p, *q;

	for (i = 0; w[i]; i++) {
		unsigned char c = (unsigned char)w[i];

		if (!(isalnum(c) || strchr("_-./:=@%+,", c)))
			safe = false;
		n += c == '\'' ? 4 : 1;
	}
	if (safe)
		return strdup(w);
	p = malloc(n + 3);
	if (p == NULL)
		return NULL;
	q = p;
	*q++ = '\'';
	for (i = 0; w[i]; i++) {
		if (w[i] == '\'') {
			memcpy(q, "'\\''", 4);
			q += 4;
		} else {
			*q++ = w[i];
		}
	}
	*q++ = '\'';
	*q = '\0';
	return p;
}

char *mqc_cmd_line(const struct mqc_cmd *c, const char *prefix)
{
	size_t len, cap;
	char *buf;

	if (c->kind == MQC_COMMENT) {
		buf = malloc(strlen(c->text ? c->text : "") + 3);
		if (buf != NULL)
			sprintf(buf, "# %s", c->text ? c->text : "");
		return buf;
	}
	cap = 64 + strlen(prefix ? prefix : "");
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	len = (size_t)sprintf(buf, "chanctl %s", prefix ? prefix : "");
	for (int i = 0; i < c->argc; i++) {
		char *q = mqc_shell_quote(c->argv[i]), *nb;
		size_t ql;

		if (q == NULL) {
			free(buf);
			return NULL;
		}
		ql = strlen(q);
		if (len + ql + 2 > cap) {
			cap = (len + ql + 2) * 2;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(q);
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		if (i > 0)
			buf[len++] = ' ';
		memcpy(buf + len, q, ql + 1);
		len += ql;
		free(q);
	}
	return buf;
}
