/* chanctl run and dump: MQSC scripts (doc/OPERATIONS.md).
 *
 * run translates each MQSC command into the argv of a chanctl command
 * (mqsc.c) and runs that command in a child process forked from this one:
 * the same parser and command function as on the command line, with no
 * second implementation, and a command that fails (chanctl's error paths
 * exit) ends only its child.  dump reads the definitions through the
 * --json display commands run the same way and writes them as MQSC. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "mqsc.h"

static int do_run(struct ctl *c, const struct ctl_args *a);
static int do_dump(struct ctl *c, const struct ctl_args *a);

static const struct ctl_opt run_opts[] = { { "--check", NULL, NULL }, { NULL, NULL, NULL } };

static const struct ctl_cmd mqsc_cmds[] = {
	{ "run", "[FILE|-] [--check]   (MQSC script; stdin without FILE; --check: parse only)",
	  run_opts, 0, 1, do_run, 0 },
	{ "dump", "   (every definition as an MQSC script that run restores)", NULL, 0, 0, do_dump,
	  0 },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_mqsc_family = { "mqsc", mqsc_cmds };

/* Scripts are operator-written text; anything this large is a mistake. */
#define SCRIPT_MAX (64L * 1024 * 1024)

struct obuf {
	char *s;
	size_t n, cap;
};

static int ob_add(struct obuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (p == NULL)
			return -1;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
	return 0;
}

static int read_all(FILE *f, struct obuf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b->n + n > (size_t)SCRIPT_MAX) {
			errno = EFBIG;
			return -1;
		}
		if (ob_add(b, chunk, n) != 0)
			return -1;
	}
	if (ferror(f))
		return -1;
	if (b->s == NULL && ob_add(b, "", 0) != 0)
		return -1;
	return 0;
}

/* ---- running one chanctl command in a child ---- */

struct result {
	int status;          /* exit code, 128+signal if killed */
	struct obuf out, err;  /* captured output (capture mode only) */
};

static void drain(int *fd, struct obuf *b)
{
	char buf[8192];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n > 0) {
		if (ob_add(b, buf, (size_t)n) != 0)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	close(*fd);
	*fd = -1;
}

/* The child: the same steps as chanctl's main after its global options. */
static void child(struct ctl *c, char **argv, int argc, bool parse_only, bool json)
{
	struct ctl cc = *c;
	struct ctl_args a;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null >= 0 && null != 0) {
		dup2(null, 0);
		close(null);
	}
	cc.connected = false;
	cc.json = json;
	ctl_parse(argc, argv, &a, &cc.json);
	if (parse_only)
		exit(CTL_EXIT_OK);
	if (a.cmd->fn == do_run || a.cmd->fn == do_dump)
		ctl_usage_err("%s cannot run inside a script", a.cmd->words);
	int rc = a.cmd->fn(&cc, &a);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_FAIL;
	ctl_close(&cc);
	exit(rc);
}

/* Runs argv as a chanctl command.  capture_out: its stdout is collected
 * in r instead of going to ours.  Its stderr always is, so that run can
 * tell a lost agent from a failed command. */
static void exec_cmd(struct ctl *c, char **argv, int argc, bool parse_only, bool json,
                     bool capture_out, struct result *r)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, st;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	fflush(stdout);
	fflush(stderr);
	if ((capture_out && pipe2(po, O_CLOEXEC) != 0) || pipe2(pe, O_CLOEXEC) != 0)
		ctl_fail(CHD_ADM_NO_AGENT, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		ctl_fail(CHD_ADM_NO_AGENT, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (capture_out)
			dup2(po[1], 1);
		dup2(pe[1], 2);
		child(c, argv, argc, parse_only, json);
	}
	/* poll ignores negative descriptors: stdout may not be captured. */
	if (capture_out)
		close(po[1]);
	close(pe[1]);
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ctl_fail(CHD_ADM_NO_AGENT, "poll: %s", strerror(errno));
		}
		if (po[0] >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			drain(&po[0], &r->out);
		if (pe[0] >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			drain(&pe[0], &r->err);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			ctl_fail(CHD_ADM_NO_AGENT, "waitpid: %s", strerror(errno));
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void result_free(struct result *r)
{
	free(r->out.s);
	free(r->err.s);
}

/* ---- run ---- */

/* The argv as a shell command line, for --check. */
static void print_shell(FILE *f, const struct mqsc_argv *av)
{
	fputs("chanctl", f);
	for (int i = 0; i < av->n; i++) {
		const char *s = av->v[i];
		if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                           "0123456789._/%:=+-,@") == strlen(s)) {
			fprintf(f, " %s", s);
			continue;
		}
		fputs(" '", f);
		for (; *s; s++) {
			if (*s == '\'')
				fputs("'\\''", f);
			else
				fputc(*s, f);
		}
		fputc('\'', f);
	}
	fputc('\n', f);
}

static char *trim_nl(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	return s;
}

/* --json: one object per command and a summary, one per line. */
static void json_report(size_t num, const struct mqsc_cmd *cmd, const struct mqsc_argv *av,
                        const char *error, const struct result *r)
{
	json_t *o = json_object(), *args = json_array();

	json_object_set_new(o, "number", json_integer((json_int_t)num));
	json_object_set_new(o, "line", json_integer(cmd->line));
	json_object_set_new(o, "command", json_string(cmd->text));
	for (int i = 0; av != NULL && i < av->n; i++)
		json_array_append_new(args, json_string(av->v[i]));
	json_object_set_new(o, "chanctl", args);
	if (av != NULL && av->note != NULL)
		json_object_set_new(o, "note", json_string(av->note));
	if (r != NULL) {
		json_t *out = NULL;
		if (r->out.n > 0)
			out = json_loads(r->out.s, JSON_DECODE_ANY, NULL);
		if (out == NULL && r->out.n > 0)
			out = json_string(trim_nl(r->out.s));
		json_object_set_new(o, "exit", json_integer(r->status));
		json_object_set_new(o, "output", out ? out : json_null());
		if (r->status != 0)
			error = r->err.n > 0 ? trim_nl(r->err.s) : "failed";
	} else {
		json_object_set_new(o, "exit", error ? json_integer(CTL_EXIT_FAIL) : json_integer(0));
	}
	json_object_set_new(o, "ok", json_boolean(error == NULL));
	if (error != NULL)
		json_object_set_new(o, "error", json_string(error));
	ctl_json_print(o, stdout);
	json_decref(o);
}

static int do_run(struct ctl *c, const struct ctl_args *a)
{
	const char *file = a->npos > 0 ? a->pos[0] : "-";
	bool check = ctl_flag(a, "--check"), stdin_in = strcmp(file, "-") == 0;
	struct obuf text = { 0 };
	struct mqsc_script sc;
	size_t ok = 0, bad = 0, notrun = 0;
	bool lost = false;
	FILE *f = stdin_in ? stdin : fopen(file, "r");

	if (f == NULL) {
		fprintf(stderr, "chanctl: cannot open %s: %s\n", file, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	if (read_all(f, &text) != 0) {
		fprintf(stderr, "chanctl: cannot read %s: %s\n", stdin_in ? "standard input" : file,
		        strerror(errno));
		if (!stdin_in)
			fclose(f);
		free(text.s);
		return CTL_EXIT_FAIL;
	}
	if (!stdin_in)
		fclose(f);
	if (mqsc_parse(text.s, text.n, &sc) != 0)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	free(text.s);

	for (size_t i = 0; i < sc.n; i++) {
		const struct mqsc_cmd *cmd = &sc.cmds[i];
		struct mqsc_argv av;
		struct result r;
		char err[512];

		if (!c->json)
			printf("%6zu : %s\n", i + 1, cmd->text);
		if (mqsc_translate(cmd, &av, err, sizeof(err)) != 0) {
			bad++;
			if (c->json) {
				json_report(i + 1, cmd, NULL, err, NULL);
			} else {
				fflush(stdout);
				fprintf(stderr, "%s\n", err);
				printf("\n");
			}
			continue;
		}
		if (check && !c->json) {
			printf("         ");
			print_shell(stdout, &av);
		}
		/* What the script asked for that chand does not need (SSLKEYR). */
		if (av.note != NULL && !c->json) {
			const char *n = av.note;
			while (*n != '\0') {
				size_t l = strcspn(n, "\n");
				printf("         note: %.*s\n", (int)l, n);
				n += l + (n[l] == '\n');
			}
		}
		/* --check still runs chanctl's parser on the translation, so a
		 * script that passes the check is accepted by every command. */
		exec_cmd(c, av.v, av.n, check, c->json, c->json, &r);
		if (r.status == 0)
			ok++;
		else
			bad++;
		if (c->json) {
			json_report(i + 1, cmd, &av, NULL, &r);
		} else {
			fflush(stdout);
			if (r.err.n > 0)
				fputs(r.err.s, stderr);
			printf("\n");
		}
		/* Without the agent every further command would fail the same
		 * way: say so once. */
		lost = r.status != 0 && r.err.s != NULL && strstr(r.err.s, "(CHD6004)") != NULL;
		result_free(&r);
		mqsc_argv_free(&av);
		if (lost) {
			notrun = sc.n - i - 1;
			if (notrun > 0 && !c->json) {
				fflush(stdout);
				fprintf(stderr, "chanctl: the agent cannot be reached; the remaining %zu "
				        "commands were not run (CHD6004)\n", notrun);
			}
			break;
		}
	}
	if (c->json) {
		json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:b}", "read", (json_int_t)sc.n,
		                      check ? "valid" : "succeeded", (json_int_t)ok,
		                      check ? "invalid" : "failed", (json_int_t)bad,
		                      "not_run", (json_int_t)notrun, "executed", !check);
		ctl_json_print(o, stdout);
		json_decref(o);
	} else if (check) {
		printf("%zu command%s read, %zu valid, %zu not valid (nothing was executed)\n", sc.n,
		       sc.n == 1 ? "" : "s", ok, bad);
	} else if (notrun > 0) {
		printf("%zu command%s read, %zu succeeded, %zu failed, %zu not run\n", sc.n,
		       sc.n == 1 ? "" : "s", ok, bad, notrun);
	} else {
		printf("%zu command%s read, %zu succeeded, %zu failed\n", sc.n, sc.n == 1 ? "" : "s", ok,
		       bad);
	}
	mqsc_script_free(&sc);
	return bad + notrun > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

/* ---- dump ---- */

static int cmp_name(const void *x, const void *y)
{
	const char *a = json_string_value(json_object_get(*(json_t *const *)x, "name"));
	const char *b = json_string_value(json_object_get(*(json_t *const *)y, "name"));

	return strcmp(a ? a : "", b ? b : "");
}

/* `chanctl --json display WHAT *`, parsed; the objects sorted by name so
 * that dumps of equal configurations are equal. */
static json_t *display_all(struct ctl *c, const char *what, json_t ***objs, size_t *n)
{
	char *argv[] = { (char *)"display", (char *)what, (char *)"*", NULL };
	struct result r;
	json_error_t je;
	json_t *all, *o;
	size_t i;

	exec_cmd(c, argv, 3, false, true, true, &r);
	if (r.status != 0) {
		fprintf(stderr, "%s", r.err.s ? r.err.s : "");
		fprintf(stderr, "chanctl: dump: display %s failed\n", what);
		result_free(&r);
		return NULL;
	}
	all = json_loads(r.out.s ? r.out.s : "", 0, &je);
	result_free(&r);
	if (!json_is_array(all)) {
		fprintf(stderr, "chanctl: dump: display %s printed no JSON array (%s)\n", what, je.text);
		json_decref(all);
		return NULL;
	}
	*n = json_array_size(all);
	*objs = calloc(*n + 1, sizeof(**objs));
	if (*objs == NULL)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	json_array_foreach(all, i, o)
		(*objs)[i] = o;
	qsort(*objs, *n, sizeof(**objs), cmp_name);
	return all;
}

static int dump_list(struct obuf *b, json_t **objs, size_t n, const char *type,
                     char *(*fn)(const json_t *, char *, size_t))
{
	char err[512];

	for (size_t i = 0; i < n; i++) {
		const char *t = json_string_value(json_object_get(objs[i], "type"));
		if (type != NULL && (t == NULL || strcmp(t, type) != 0))
			continue;
		char *s = fn(objs[i], err, sizeof(err));
		if (s == NULL) {
			fprintf(stderr, "chanctl: dump: %s\n", err);
			return -1;
		}
		if (ob_add(b, "\n", 1) != 0 || ob_add(b, s, strlen(s)) != 0)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		free(s);
	}
	return 0;
}

static int do_dump(struct ctl *c, const struct ctl_args *a)
{
	json_t **qs = NULL, **chs = NULL, **rs = NULL;
	size_t nq = 0, nch = 0, nr = 0;
	json_t *qall, *chall = NULL, *rall = NULL;
	struct obuf b = { 0 };
	char hdr[200];
	int rc = CTL_EXIT_FAIL;

	(void)a;
	if (c->json)
		ctl_usage_err("dump writes an MQSC script; use --json display queue|channel|route for "
		              "JSON");
	if ((qall = display_all(c, "queue", &qs, &nq)) == NULL)
		goto out;
	if ((chall = display_all(c, "channel", &chs, &nch)) == NULL)
		goto out;
	if ((rall = display_all(c, "route", &rs, &nr)) == NULL)
		goto out;
	for (size_t i = 0; i < nq; i++) {
		const char *t = json_string_value(json_object_get(qs[i], "type"));
		if (t == NULL || (strcmp(t, "qlocal") != 0 && strcmp(t, "qremote") != 0)) {
			/* A queue type MQSC here cannot define: mqsc_dump_queue names it. */
			char err[512];
			free(mqsc_dump_queue(qs[i], err, sizeof(err)));
			fprintf(stderr, "chanctl: dump: %s\n", err);
			goto out;
		}
	}
	snprintf(hdr, sizeof(hdr), "* chanctl dump: %zu queues, %zu channels, %zu routes.\n"
	         "* Restore with: chanctl run FILE (every DEFINE has REPLACE).\n", nq, nch, nr);
	if (ob_add(&b, hdr, strlen(hdr)) != 0)
		ctl_fail(CHD_DB_ERROR, "out of memory");
	/* Transmission queues before the remote queues and channels naming them,
	 * and routes last: the agent refuses one whose queue, or transmission
	 * queue to its queue manager, is not defined yet. */
	if (dump_list(&b, qs, nq, "qlocal", mqsc_dump_queue) != 0 ||
	    dump_list(&b, qs, nq, "qremote", mqsc_dump_queue) != 0 ||
	    dump_list(&b, chs, nch, NULL, mqsc_dump_channel) != 0)
		goto out;
	if (nr > 0) {
		static const char note[] = "\n* Routes carry MQTT publications to a queue or to another "
			"queue manager:\n* chand's own objects (IBM MQ has no ROUTE).\n";
		if (ob_add(&b, note, strlen(note)) != 0)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		if (dump_list(&b, rs, nr, NULL, mqsc_dump_route) != 0)
			goto out;
	}
	/* Only a complete dump is written: a partial one would restore as if
	 * it were everything. */
	fputs(b.s, stdout);
	rc = CTL_EXIT_OK;
out:
	free(b.s);
	free(qs);
	free(chs);
	free(rs);
	json_decref(qall);
	json_decref(chall);
	json_decref(rall);
	return rc;
}
