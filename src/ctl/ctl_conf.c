/* chanctl's reading of chand.conf: only where the agent's admin socket
 * is and the default keystore. chand's own loader (src/agent/config.c)
 * checks the whole file; chanctl does not link it (doc/ARCHITECTURE.md),
 * so a key chanctl does not use never stops chanctl. The paths are
 * derived the way chand derives them: relative to the real directory of
 * the file, admin.socket defaulting to <data_dir>/chand.sock and
 * keystore.path to key.db beside the file. */
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/config.h"

/* p relative to dir, as chand's loader joins them ("./x" and "." too). */
static char *conf_join(const char *dir, const char *p)
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

/* The real directory of the file at path (malloc'd), or NULL. */
static char *conf_dir(const char *path)
{
	char *d = strdup(path), *slash, *real;

	if (d == NULL)
		return NULL;
	slash = strrchr(d, '/');
	if (slash == d)
		d[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(d, ".");
	real = realpath(d, NULL);
	free(d);
	return real;
}

/* A non-empty string key (name is dotted, "admin.socket"): 0 with *out
 * (borrowed; NULL if absent), or -1 with "FILE:LINE: reason" in err. */
static int conf_string(config_t *c, const char *path, const char *name, const char **out,
                       char *err, size_t errlen)
{
	config_setting_t *s = config_lookup(c, name);
	const char *file;

	*out = NULL;
	if (s == NULL)
		return 0;
	file = config_setting_source_file(s) ? config_setting_source_file(s) : path;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		snprintf(err, errlen, "%s:%u: '%s' must be a string", file,
		         config_setting_source_line(s), name);
		return -1;
	}
	*out = config_setting_get_string(s);
	if ((*out)[0] == '\0') {
		snprintf(err, errlen, "%s:%u: '%s' must not be empty", file,
		         config_setting_source_line(s), name);
		return -1;
	}
	return 0;
}

int ctl_conf_read(struct ctl_conf *cc, const char *path, char *err, size_t errlen)
{
	const char *sock = NULL, *data = NULL, *ks = NULL;
	config_t c;
	char *dir = NULL, *data_dir = NULL;
	FILE *f;
	int rc = -1;

	memset(cc, 0, sizeof(*cc));
	/* libconfig's I/O error text is just "file I/O error": say why. */
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	dir = conf_dir(path);
	if (dir == NULL) {
		snprintf(err, errlen, "cannot resolve the directory of %s: %s", path, strerror(errno));
		return -1;
	}
	config_init(&c);
	config_set_include_dir(&c, dir);
	if (config_read_file(&c, path) != CONFIG_TRUE) {
		const char *file = config_error_file(&c) ? config_error_file(&c) : path;
		if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "cannot read %s: %s", file, config_error_text(&c));
		else
			snprintf(err, errlen, "%s:%d: %s", file, config_error_line(&c),
			         config_error_text(&c));
		goto out;
	}
	if (conf_string(&c, path, "admin.socket", &sock, err, errlen) != 0 ||
	    conf_string(&c, path, "data_dir", &data, err, errlen) != 0 ||
	    conf_string(&c, path, "keystore.path", &ks, err, errlen) != 0)
		goto out;
	if (sock != NULL) {
		cc->admin_socket = conf_join(dir, sock);
	} else if (data != NULL) {
		data_dir = conf_join(dir, data);
		cc->admin_socket = data_dir ? conf_join(data_dir, "chand.sock") : NULL;
	}
	cc->ks_path = conf_join(dir, ks != NULL ? ks : "key.db");
	if (cc->ks_path == NULL || ((sock != NULL || data != NULL) && cc->admin_socket == NULL)) {
		snprintf(err, errlen, "%s: out of memory", path);
		ctl_conf_free(cc);
		goto out;
	}
	rc = 0;
out:
	config_destroy(&c);
	free(data_dir);
	free(dir);
	return rc;
}

void ctl_conf_free(struct ctl_conf *cc)
{
	free(cc->admin_socket);
	free(cc->ks_path);
	memset(cc, 0, sizeof(*cc));
}

const struct ctl_conf *ctl_config(const char *conf, bool quiet)
{
	static struct ctl_conf cc;
	static const struct ctl_conf *done;
	static bool tried;
	const char *path = conf != NULL ? conf : CFG_DEFAULT_PATH;
	char err[1024];

	if (tried)
		return done;
	tried = true;
	if (conf == NULL && access(path, F_OK) != 0)
		return NULL;
	if (ctl_conf_read(&cc, path, err, sizeof(err)) != 0) {
		if (conf != NULL || !quiet)
			ctl_fail(CHD_CONFIG_ERROR, "cannot use configuration: %s", err);
		return NULL;
	}
	done = &cc;
	return done;
}
