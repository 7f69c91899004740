/* `chanctl import mosquitto-conf FILE [--apply]`: prints the chanctl
 * commands that reproduce a mosquitto.conf's listeners on chand (the
 * mapping is src/ctl/mosqconf.c, doc/MOSQUITTO.md), or runs them.
 *
 * --apply runs the keystore commands in-process the way `chanctl
 * keystore` does (ks_cli_main) and the agent commands through chanctl's
 * own command table and admin connection, so each behaves exactly as
 * typed; it stops at the first failure, whose message is already out. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "mosqconf.h"
#include "chand/config.h"
#include "chand/ctlcmd.h"

#define IMPORT_FILE_MAX (4u * 1024u * 1024u)

static const struct ctl_opt import_opts[] = {
	{ "--apply", NULL, NULL },
	{ "-k", "--keystore", "FILE" },
	{ "--key-password-file", NULL, "F" },
	{ "--keystore-password-file", NULL, "F" },
	{ NULL, NULL, NULL },
};

static int do_import(struct ctl *c, const struct ctl_args *a);

static const struct ctl_cmd import_cmds[] = {
	{ "import mosquitto-conf", "FILE [--apply] [-k FILE] [--key-password-file F] "
	  "[--keystore-password-file F]", import_opts, 1, 1, do_import, CTL_NO_AGENT },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_import_family = { "import", import_cmds };

/* ---- the file-system look-ups the mapping asks for ---- */

static bool env_exists(void *arg, const char *path)
{
	(void)arg;
	return access(path, F_OK) == 0;
}

static bool cert_name(const char *n)
{
	size_t l = strlen(n);

	return l > 4 && (strcmp(n + l - 4, ".pem") == 0 || strcmp(n + l - 4, ".crt") == 0 ||
	                 strcmp(n + l - 4, ".cer") == 0);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The regular *.pem, *.crt, *.cer files of a capath directory (the
 * c_rehash links point at them, so they are skipped as symbolic links). */
static int env_list_dir(void *arg, const char *dir, char ***out, size_t *n, char *err,
                        size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, dl = strlen(dir);
	bool slash = dl > 0 && (dir[dl - 1] == '/' || dir[dl - 1] == '\\');

	(void)arg;
	*out = NULL;
	*n = 0;
	if (d == NULL) {
		snprintf(err, errlen, "cannot read the directory: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char *p, **nv;

		if (!cert_name(de->d_name))
			continue;
		if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", de->d_name) < 0)
			goto oom;
		if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		nv = realloc(v, (cnt + 1) * sizeof *v);
		if (nv == NULL) {
			free(p);
			goto oom;
		}
		v = nv;
		v[cnt++] = p;
	}
	closedir(d);
	qsort(v, cnt, sizeof *v, cmp_str);
	*out = v;
	*n = cnt;
	return 0;
oom:
	closedir(d);
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Looks at the PEM armour only: PKCS#8 "ENCRYPTED PRIVATE KEY" or the
 * OpenSSL traditional "Proc-Type: 4,ENCRYPTED" header. */
static int env_key_encrypted(void *arg, const char *path)
{
	char buf[65536];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	if (memmem(buf, (size_t)r, "ENCRYPTED PRIVATE KEY", 21) != NULL ||
	    memmem(buf, (size_t)r, "Proc-Type: 4,ENCRYPTED", 22) != NULL)
		return 1;
	if (memmem(buf, (size_t)r, "PRIVATE KEY-----", 16) != NULL)
		return 0;
	return -1;
}

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		ctl_fail(CHD_CONFIG_ERROR, "cannot read %s: %s", path, strerror(errno));
	buf = malloc(IMPORT_FILE_MAX + 1);
	if (buf == NULL)
		ctl_fail(CHD_CONFIG_ERROR, "cannot read %s: out of memory", path);
	n = fread(buf, 1, IMPORT_FILE_MAX + 1, f);
	if (ferror(f))
		ctl_fail(CHD_CONFIG_ERROR, "cannot read %s: %s", path, strerror(errno));
	fclose(f);
	if (n > IMPORT_FILE_MAX)
		ctl_fail(CHD_CONFIG_ERROR, "cannot read %s: larger than %u bytes", path,
		         IMPORT_FILE_MAX);
	*len = n;
	return buf;
}


static void print_notes(const struct mqc_result *r, const char *file)
{
	fflush(stdout);
	for (size_t i = 0; i < r->nnotes; i++) {
		if (r->notes[i].line > 0)
			fprintf(stderr, "chanctl: %s:%d: %s\n", file, r->notes[i].line, r->notes[i].text);
		else
			fprintf(stderr, "chanctl: %s: %s\n", file, r->notes[i].text);
	}
}

static const char *kind_name(enum mqc_kind k)
{
	return k == MQC_COMMENT ? "comment" : k == MQC_KEYSTORE ? "keystore" : "agent";
}

static int print_json(const struct mqc_result *r, const char *file, const char *prefix)
{
	json_t *o = json_object(), *cmds = json_array(), *notes = json_array();

	for (size_t i = 0; i < r->ncmds; i++) {
		const struct mqc_cmd *c = &r->cmds[i];
		json_t *e = json_pack("{s:s,s:i}", "kind", kind_name(c->kind), "line", c->line);

		if (c->kind == MQC_COMMENT) {
			json_object_set_new(e, "text", json_string(c->text));
		} else {
			json_t *v = json_array();
			char *line = mqc_cmd_line(c, prefix);

			for (int j = 0; j < c->argc; j++)
				json_array_append_new(v, json_string(c->argv[j]));
			json_object_set_new(e, "argv", v);
			json_object_set_new(e, "command", line ? json_string(line) : json_null());
			free(line);
		}
		json_array_append_new(cmds, e);
	}
	for (size_t i = 0; i < r->nnotes; i++)
		json_array_append_new(notes, json_pack("{s:i,s:s}", "line", r->notes[i].line, "text",
		                                       r->notes[i].text));
	json_object_set_new(o, "file", json_string(file));
	json_object_set_new(o, "channels", json_integer((json_int_t)r->nchannels));
	json_object_set_new(o, "commands", cmds);
	json_object_set_new(o, "notes", notes);
	ctl_json_print(o, stdout);
	json_decref(o);
	return CTL_EXIT_OK;
}

/* The global options of the printed commands: the same -s or -c that
 * this chanctl was given, so the lines work when piped to sh. */
static char *line_prefix(const struct ctl *c, const char *conf)
{
	const char *opt = c->sock ? "-s" : conf ? "-c" : NULL;
	char *q, *p;

	if (opt == NULL)
		return strdup("");
	q = mqc_shell_quote(c->sock ? c->sock : conf);
	if (q == NULL || asprintf(&p, "%s %s ", opt, q) < 0)
		p = NULL;
	free(q);
	return p;
}

/* Runs one command as chanctl would. Returns its exit code. */
static int run_cmd(struct ctl *c, const struct mqc_cmd *m, const char *ks_path)
{
	char *argv[MQC_MAX_ARGS + 1];
	struct ctl_args a;
	bool json = c->json;

	for (int i = 0; i < m->argc; i++)
		argv[i] = m->argv[i];
	argv[m->argc] = NULL;
	if (m->kind == MQC_KEYSTORE)
		return ks_cli_main(m->argc, argv, ks_path, c->json);
	ctl_parse(m->argc, argv, &a, &json);
	return a.cmd->fn(c, &a);
}

static int apply(struct ctl *c, const struct mqc_result *r, const char *conf, const char *kflag,
                 const char *prefix)
{
	const struct ctl_conf *cfg = NULL;
	const char *path = conf ? conf : CFG_DEFAULT_PATH;
	const char *ks_path = kflag;
	bool need_ks = false;
	int rc = CTL_EXIT_OK;

	for (size_t i = 0; i < r->ncmds; i++)
		need_ks |= r->cmds[i].kind == MQC_KEYSTORE;
	if (c->sock == NULL || (need_ks && ks_path == NULL))
		cfg = ctl_config(conf, false);
	if (c->sock == NULL) {
		if (cfg == NULL)
			ctl_fail(CHD_ADM_NO_AGENT, "--apply needs the agent: give -s SOCKET or -c CONFIG "
			         "(%s: %s)", path, strerror(ENOENT));
		if (cfg->admin_socket == NULL)
			ctl_fail(CHD_CONFIG_ERROR, "cannot use configuration: %s: no admin.socket and no "
			         "data_dir to find the agent's socket in", path);
		c->sock = cfg->admin_socket;
	}
	if (need_ks && ks_path == NULL && cfg != NULL)
		ks_path = cfg->ks_path;
	if (need_ks && (ks_path == NULL || *ks_path == '\0'))
		ctl_usage_err("--apply needs the agent's keystore: give -k FILE (or -c CONFIG with "
		              "keystore.path)");

	for (size_t i = 0; i < r->ncmds && rc == CTL_EXIT_OK; i++) {
		const struct mqc_cmd *m = &r->cmds[i];
		char *line = mqc_cmd_line(m, prefix);

		printf("%s\n", line ? line : "?");
		free(line);
		fflush(stdout);
		if (m->kind == MQC_COMMENT)
			continue;
		rc = run_cmd(c, m, ks_path);
		fflush(stdout);
		if (rc != CTL_EXIT_OK)
			fprintf(stderr, "chanctl: import stopped: the command above failed; the ones "
			        "before it took effect\n");
	}
	return rc;
}

static int do_import(struct ctl *c, const struct ctl_args *a)
{
	const char *file = a->pos[0];
	struct mqc_env env = { NULL, env_exists, env_list_dir, env_key_encrypted };
	struct mqc_opts o = { file, ctl_opt(a, "-k"), ctl_opt(a, "--keystore-password-file"),
	                      ctl_opt(a, "--key-password-file") };
	struct mqc_result r;
	char *conf = c->conf != NULL ? strdup(c->conf) : NULL, *prefix, *text;
	size_t len;
	int rc;

	text = read_file(file, &len);
	rc = mqc_convert(text, len, &o, &env, &r);
	free(text);
	if (rc < 0)
		ctl_fail(CHD_CONFIG_ERROR, "%s: out of memory", file);
	if (rc > 0) {
		fprintf(stderr, "chanctl: %s\n", r.err);
		free(conf);
		return CTL_EXIT_USAGE;
	}
	prefix = line_prefix(c, conf);
	if (prefix == NULL)
		ctl_fail(CHD_CONFIG_ERROR, "%s: out of memory", file);
	if (ctl_flag(a, "--apply")) {
		print_notes(&r, file);
		rc = apply(c, &r, conf, o.keystore, prefix);
	} else if (c->json) {
		rc = print_json(&r, file, prefix);
	} else {
		for (size_t i = 0; i < r.ncmds; i++) {
			char *line = mqc_cmd_line(&r.cmds[i], prefix);

			if (line == NULL)
				ctl_fail(CHD_CONFIG_ERROR, "%s: out of memory", file);
			printf("%s\n", line);
			free(line);
		}
		print_notes(&r, file);
		rc = CTL_EXIT_OK;
	}
	free(prefix);
	free(conf);
	mqc_result_free(&r);
	return rc;
}
