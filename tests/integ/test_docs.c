/* The examples of doc/ADMIN.md, doc/CHANNELS.md and doc/ADMIN-PROTOCOL.md,
 * checked so the docs cannot drift from the program.
 *
 * Every fenced block of these docs must carry a tag; an untagged or
 * unknown one fails the test, so no example goes unchecked by accident:
 *   console  "$ command" lines, each followed by its output (stdout and
 *            stderr), run in order against a real agent QM1 ("QM2$ command":
 *            against a second agent QM2; both have plain-TCP listeners on
 *            127.0.0.1, whose ports the commands see as $QM1_PORT and
 *            $QM2_PORT), chanctl pointed at the agent's socket, in a temp
 *            dir, and compared exactly, except that "..." matches any text
 *            within a line, and a line that is only "..." matches one or
 *            more lines;
 *   json     one JSON value, or one JSON value per line (parsed by jansson);
 *   hex      a whole admin frame, decoded by admin_frame_parse, whose JSON
 *            must equal the json block just before it, and which
 *            admin_frame_encode_blob must write byte for byte;
 *   text, sh not run: diagrams, log excerpts, synopses, installation paths.
 * Each doc also has a minimum count of checked examples, so an example
 * that is dropped or no longer found fails too. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/admin.h"
#include "helpers.h"

TestSuite(docs, .timeout = 240);

struct doc {
	char *name;
	char **lines;
	int n;
};

static void doc_load(struct doc *d, const char *rel)
{
	const char *top = getenv("TEST_SRCDIR");
	char *path = NULL, *text;

	cr_assert_gt(asprintf(&path, "%s/%s", top ? top : TEST_SRCDIR, rel), 0);
	text = th_read_file(path);
	cr_assert_not_null(text, "cannot read %s", path);
	d->name = strdup(rel);
	d->lines = NULL;
	d->n = 0;
	/* strsep keeps empty lines, which transcripts contain. */
	for (char *p = text, *l; (l = strsep(&p, "\n")) != NULL;) {
		d->lines = realloc(d->lines, (size_t)(d->n + 1) * sizeof(*d->lines));
		d->lines[d->n++] = strdup(l);
	}
	free(text);
	free(path);
}

static void doc_free(struct doc *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	free(d->name);
}

/* Lines from..to-1 joined, each ending in a newline. */
static char *join(char **lines, int from, int to)
{
	size_t len = 0;
	char *s;

	for (int i = from; i < to; i++)
		len += strlen(lines[i]) + 1;
	s = malloc(len + 1);
	len = 0;
	for (int i = from; i < to; i++) {
		size_t l = strlen(lines[i]);
		memcpy(s + len, lines[i], l);
		len += l;
		s[len++] = '\n';
	}
	s[len] = '\0';
	return s;
}

/* want against got: "..." matches any characters but a newline; a line
 * that is only "..." matches one or more whole lines. */
static bool glob_match(const char *w, const char *g, bool line_start)
{
	while (*w) {
		if (line_start && strncmp(w, "...\n", 4) == 0) {
			for (const char *e = strchr(g, '\n'); e != NULL; e = strchr(e + 1, '\n'))
				if (glob_match(w + 4, e + 1, true))
					return true;
			return false;
		}
		if (strncmp(w, "...", 3) == 0) {
			for (const char *p = g;; p++) {
				if (glob_match(w + 3, p, false))
					return true;
				if (*p == '\0' || *p == '\n')
					return false;
			}
		}
		if (*w != *g)
			return false;
		line_start = *w == '\n';
		w++;
		g++;
	}
	return *g == '\0';
}

/* "chanctl " in a command becomes the binary under test with the socket. */
static char *with_binary(const char *cmd, const struct th_agent *a)
{
	char *s = malloc(strlen(cmd) * 4 + 1024);
	size_t o = 0;

	for (const char *p = cmd; *p;) {
		if (strncmp(p, "chanctl ", 8) == 0 && (p == cmd || strchr(" (|;&", p[-1]) != NULL)) {
			o += (size_t)sprintf(s + o, "'%s' -s '%s' ", th_chanctl_bin(), a->sock);
			p += 8;
		} else {
			s[o++] = *p++;
		}
	}
	s[o] = '\0';
	return s;
}

static bool is_command(const char *line)
{
	return strncmp(line, "$ ", 2) == 0 || strncmp(line, "QM2$ ", 5) == 0;
}

/* Runs the console block whose lines are first..end-1 against qm[0] (QM1)
 * and qm[1] (QM2); returns how many commands it ran. */
static int run_console(const struct doc *d, int first, int end, struct th_agent qm[2],
                       const char *dir)
{
	int ran = 0;

	cr_assert_lt(first, end, "%s line %d: empty console block", d->name, first);
	for (int j = first; j < end;) {
		cr_assert(is_command(d->lines[j]), "%s line %d: not a command: %s", d->name, j + 1,
		          d->lines[j]);
		int k = j + 1;
		while (k < end && !is_command(d->lines[k]))
			k++;
		bool on2 = d->lines[j][0] == 'Q';
		char *cmd = with_binary(d->lines[j] + (on2 ? 5 : 2), &qm[on2]);
		char *want = join(d->lines, j + 1, k);
		char *out = NULL;
		/* A newline, not "; }", ends the group: a command may end in a # comment. */
		int rc = th_sh(NULL, &out, NULL, 60, "cd '%s' && export QM1_PORT=%d QM2_PORT=%d && "
		               "{ %s\n} 2>&1", dir, qm[0].port, qm[1].port, cmd);
		cr_expect_neq(rc, -1, "%s line %d: timed out: %s", d->name, j + 1, d->lines[j]);
		cr_expect(glob_match(want, out ? out : "", true),
		          "%s line %d: %s\n--- documented:\n%s--- got:\n%s", d->name, j + 1, d->lines[j],
		          want, out ? out : "");
		ran++;
		free(out);
		free(want);
		free(cmd);
		j = k;
	}
	return ran;
}

/* The JSON of a json block: one value, or one value per line (an array
 * of them). NULL (and a failed expectation) if it does not parse. */
static json_t *parse_json(const struct doc *d, int first, const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	if (v != NULL)
		return v;
	json_t *all = json_array();
	char *copy = strdup(text), *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		json_t *one = json_loads(l, JSON_REJECT_DUPLICATES, &je);
		if (one == NULL) {
			cr_expect_fail("%s line %d: json example does not parse: %s (line %d col %d)\n%s",
			               d->name, first, je.text, je.line, je.column, text);
			json_decref(all);
			free(copy);
			return NULL;
		}
		json_array_append_new(all, one);
	}
	free(copy);
	return all;
}

/* A hex block: the bytes of one admin frame. Its JSON must equal prev
 * (the json block before it). */
static void check_hex(const struct doc *d, int first, const char *text, const json_t *prev)
{
	size_t cap = strlen(text) / 2 + 1, n = 0;
	uint8_t *buf = malloc(cap);

	for (const char *p = text; *p;) {
		if (isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		unsigned b;
		cr_assert(isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1]) &&
		          sscanf(p, "%2x", &b) == 1, "%s line %d: not hex at \"%.8s\"", d->name, first,
		          p);
		buf[n++] = (uint8_t)b;
		p += 2;
	}
	const uint8_t *att = NULL;
	size_t att_len = 0;
	char err[256] = "";
	json_t *obj = admin_frame_parse(buf, n, &att, &att_len, err, sizeof(err));
	cr_assert_not_null(obj, "%s line %d: the frame does not decode: %s", d->name, first, err);
	cr_expect_eq(admin_blobs_check(obj, att_len, err, sizeof(err)), 0, "%s line %d: %s", d->name,
	             first, err);
	cr_assert_not_null(prev, "%s line %d: no json block before the frame", d->name, first);
	char *a = json_dumps(obj, JSON_SORT_KEYS), *b = json_dumps(prev, JSON_SORT_KEYS);
	cr_expect(json_equal(obj, prev), "%s line %d: the frame's JSON differs from the json "
	          "example before it:\n%s\n%s", d->name, first, a, b);
	/* What the text around the example says the attachment is. */
	cr_expect(att_len == 10 && memcmp(att, "helloworld", 10) == 0, "%s line %d: attachment "
	          "%.*s", d->name, first, (int)att_len, (const char *)att);
	/* And the codec writes the same bytes for that object and attachment. */
	size_t elen = 0;
	uint8_t *enc = admin_frame_encode_blob(obj, att, att_len, &elen);
	cr_expect(enc != NULL && elen == n && memcmp(enc, buf, n) == 0, "%s line %d: "
	          "admin_frame_encode_blob writes other bytes (%zu, documented %zu)", d->name, first,
	          elen, n);
	free(enc);
	free(a);
	free(b);
	json_decref(obj);
	free(buf);
}

struct counts {
	int commands, json, hex;
};

static struct counts check_doc(const char *rel)
{
	struct counts c = { 0, 0, 0 };
	struct doc d;
	struct th_agent qm[2];
	bool started = false;
	char *dir = th_tempdir("docs");
	json_t *prev = NULL;

	doc_load(&d, rel);
	for (int i = 0; i < d.n; i++) {
		if (strncmp(d.lines[i], "```", 3) != 0)
			continue;
		const char *tag = d.lines[i] + 3;
		int first = i + 1, end = first;
		while (end < d.n && strcmp(d.lines[end], "```") != 0)
			end++;
		cr_assert_lt(end, d.n, "%s line %d: block never closed", rel, i + 1);
		if (strcmp(tag, "console") == 0) {
			if (!started) {
				cr_assert_eq(th_agent_start(&qm[0], "QM1", NULL, NULL), 0);
				cr_assert_eq(th_agent_start(&qm[1], "QM2", NULL, NULL), 0);
				started = true;
			}
			c.commands += run_console(&d, first, end, qm, dir);
		} else if (strcmp(tag, "json") == 0) {
			char *text = join(d.lines, first, end);
			json_decref(prev);
			prev = parse_json(&d, first, text);
			c.json += prev != NULL;
			free(text);
		} else if (strcmp(tag, "hex") == 0) {
			char *text = join(d.lines, first, end);
			check_hex(&d, first, text, prev);
			c.hex++;
			free(text);
		} else {
			cr_expect(strcmp(tag, "text") == 0 || strcmp(tag, "sh") == 0,
			          "%s line %d: example block tagged \"%s\": tag it console, json, hex (checked) "
			          "or text, sh (not run)", rel, i + 1, tag);
		}
		i = end;
	}
	json_decref(prev);
	if (started) {
		for (int q = 0; q < 2; q++) {
			int st = th_agent_stop(&qm[q]);
			cr_expect_eq(st, 0, "agent %s of %s exited with %d", qm[q].qmgr, rel, st);
			th_rmtree(qm[q].dir);
		}
	}
	doc_free(&d);
	th_rmtree(dir);
	free(dir);
	return c;
}

Test(docs, admin_md)
{
	struct counts c = check_doc("doc/ADMIN.md");

	cr_expect_geq(c.commands, 38, "only %d console commands found", c.commands);
	cr_expect_geq(c.json, 1, "only %d json examples found", c.json);
}

Test(docs, channels_md)
{
	struct counts c = check_doc("doc/CHANNELS.md");

	cr_expect_geq(c.commands, 20, "only %d console commands found", c.commands);
}

Test(docs, admin_protocol_md)
{
	struct counts c = check_doc("doc/ADMIN-PROTOCOL.md");

	cr_expect_geq(c.json, 4, "only %d json examples found", c.json);
	cr_expect_geq(c.hex, 1, "only %d frame examples found", c.hex);
}

/* The matcher itself: what the doc checks rest on must be able to fail. */
Test(docs, wildcard_matching)
{
	cr_expect(glob_match("a...c\n", "abbbc\n", true));
	cr_expect(!glob_match("a...c\n", "ab\nbc\n", true));
	cr_expect(glob_match("x\n...\ny\n", "x\n1\n2\ny\n", true));
	cr_expect(!glob_match("x\n...\ny\n", "x\ny\n", true));
	cr_expect(!glob_match("abc\n", "abd\n", true));
	cr_expect(!glob_match("abc\n", "abc\nmore\n", true));
	cr_expect(glob_match("", "", true));
}
