/* chanctl: errors, the connection to the agent, tables. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "chand/util.h"

/* With --json an error is one JSON object on stderr, {"code", "message"},
 * for scripts; the exit codes do not change. */
static bool json_errors;

void ctl_json_errors(bool on)
{
	json_errors = on;
}

static void print_error(const char *code, const char *msg)
{
	fflush(stdout);
	if (json_errors) {
		json_t *o = json_pack("{s:s,s:s}", "code", code, "message", msg);
		char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s != NULL)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
		return;
	}
	if (strcmp(code, "usage") == 0)
		fprintf(stderr, "chanctl: %s\n", msg);
	else
		fprintf(stderr, "chanctl: %s (%s)\n", msg, code);
}

void ctl_usage_err(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	print_error("usage", msg);
	exit(CTL_EXIT_USAGE);
}

void ctl_fail(enum chd_code_id code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	print_error(code_str(code), msg);
	exit(CTL_EXIT_FAIL);
}

void ctl_check_name(const char *what, const char *name)
{
	char why[200];

	if (!name_valid(name, why, sizeof(why)))
		ctl_fail(CHD_Q_BAD_NAME, "invalid %s: %s", what, why);
}

void ctl_print_reply_error(const json_t *reply, const char *prefix)
{
	const char *code = json_string_value(json_object_get(reply, "code"));
	const char *err = json_string_value(json_object_get(reply, "error"));
	char msg[2048];

	snprintf(msg, sizeof msg, "%s%s", prefix ? prefix : "", err ? err : "failed");
	print_error(code ? code : "CHD0000", msg);
}

void ctl_connect(struct ctl *c)
{
	char err[512];
	int fd = admin_connect(c->sock, err, sizeof err);

	if (fd < 0)
		ctl_fail(CHD_ADM_NO_AGENT, "%s", err);
	admin_io_init(&c->io, fd);
	c->connected = true;
}

void ctl_close(struct ctl *c)
{
	if (c->connected) {
		close(c->io.fd);
		admin_io_free(&c->io);
		c->connected = false;
	}
}

int ctl_send(struct ctl *c, json_t *obj)
{
	int rc = obj != NULL ? admin_io_write(&c->io, obj) : -1;

	json_decref(obj);
	return rc;
}

int ctl_send_blob(struct ctl *c, json_t *obj, const uint8_t *att, size_t len)
{
	int rc = obj != NULL ? admin_io_write_blob(&c->io, obj, att, len) : -1;

	json_decref(obj);
	return rc;
}

int ctl_recv_blob(struct ctl *c, json_t **out, uint8_t **att, size_t *att_len, char *err,
                  size_t errlen)
{
	int rc = admin_io_read_blob(&c->io, out, att, att_len, -1, err, errlen);

	if (rc == ADMIN_IO_OK)
		return 0;
	if (rc == ADMIN_IO_EOF)
		snprintf(err, errlen, "the agent closed the connection");
	return -1;
}

int ctl_recv(struct ctl *c, json_t **out, char *err, size_t errlen)
{
	return ctl_recv_blob(c, out, NULL, NULL, err, errlen);
}

static int call(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg, json_t **final,
                bool quiet);

int ctl_call(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg, json_t **final)
{
	return call(c, req, on_rec, arg, final, false);
}

int ctl_call_quiet(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg)
{
	return call(c, req, on_rec, arg, NULL, true);
}

static int call(struct ctl *c, json_t *req, ctl_rec_fn on_rec, void *arg, json_t **final,
                bool quiet)
{
	char err[256];
	json_t *f = NULL;
	int rc;

	if (final != NULL)
		*final = NULL;
	if (!c->connected)
		ctl_connect(c);
	rc = admin_call(&c->io, req, on_rec, arg, &f, err, sizeof(err));
	switch (rc) {
	case ADMIN_CALL_OK:
		if (final != NULL)
			*final = f;
		else
			json_decref(f);
		return CTL_EXIT_OK;
	case ADMIN_CALL_REFUSED:
		if (!quiet)
			ctl_print_reply_error(f, NULL);
		json_decref(f);
		return CTL_EXIT_FAIL;
	case ADMIN_CALL_STOPPED:
		return CTL_EXIT_FAIL;
	case ADMIN_CALL_BAD:
		ctl_fail(CHD_ADM_BAD_REQUEST, "%s", err);
	default:
		ctl_fail(CHD_ADM_NO_AGENT, "connection to the agent lost: %s", err);
	}
}

int ctl_simple(struct ctl *c, json_t *req, const char *done_text)
{
	json_t *f;
	int rc = ctl_call(c, req, NULL, NULL, &f);

	if (rc != CTL_EXIT_OK)
		return rc;
	if (c->json)
		ctl_json_print(f, stdout);
	else if (done_text != NULL)
		printf("%s\n", done_text);
	json_decref(f);
	return CTL_EXIT_OK;
}

void ctl_json_print(const json_t *v, FILE *f)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s != NULL) {
		fputs(s, f);
		fputc('\n', f);
		free(s);
	}
}

void ctl_table_init(struct ctl_table *t, const char *const *heads, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->heads = heads;
	t->ncols = ncols;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **v = realloc(t->cells, cap * t->ncols * sizeof(*v));
		if (v == NULL)
			ctl_fail(CHD_DB_ERROR, "out of memory");
		t->cells = v;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] && cells[i][0] ? cells[i] : "-");
	t->nrows++;
}

void ctl_table_print(struct ctl_table *t, FILE *f)
{
	size_t w[32] = { 0 };

	for (size_t i = 0; i < t->ncols && i < 32; i++) {
		w[i] = strlen(t->heads[i]);
		for (size_t r = 0; r < t->nrows; r++) {
			const char *s = t->cells[r * t->ncols + i];
			if (s != NULL && strlen(s) > w[i])
				w[i] = strlen(s);
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = r == 0 ? t->heads[i] : t->cells[(r - 1) * t->ncols + i];
			if (i + 1 == t->ncols)
				fprintf(f, "%s\n", s ? s : "-");
			else
				fprintf(f, "%-*s  ", (int)w[i], s ? s : "-");
		}
	}
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
