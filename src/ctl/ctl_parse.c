/* chanctl's grammar: command words matched against the family tables
 * (exact word, else a unique prefix, relayctl style), then options and
 * positional arguments.  Usage errors name what was wrong and list the
 * valid words, and exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "chand/util.h"

#define MAX_WORDS 4
#define MAX_CMDS 128

struct cand {
	const struct ctl_cmd *cmd;
	char words[MAX_WORDS][32];
	int nwords;
};

static int collect(struct cand *v)
{
	int n = 0;

	for (size_t f = 0; ctl_families[f] != NULL; f++)
		for (const struct ctl_cmd *c = ctl_families[f]->cmds; c->words != NULL; c++) {
			if (n == MAX_CMDS)
				return n;
			struct cand *k = &v[n++];
			char buf[128];
			str_copy(buf, c->words, sizeof(buf));
			k->cmd = c;
			k->nwords = 0;
			for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && k->nwords < MAX_WORDS;
			     w = strtok_r(NULL, " ", &save))
				str_copy(k->words[k->nwords++], w, sizeof(k->words[0]));
		}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct words at position k among the live candidates, sorted,
 * joined with ", " into buf. */
static void words_at(struct cand *v, const bool *live, int n, int k, const char *prefix,
                     char *buf, size_t len)
{
	const char *w[MAX_CMDS];
	int nw = 0;
	size_t off = 0;

	for (int i = 0; i < n; i++) {
		if (!live[i] || v[i].nwords <= k)
			continue;
		if (prefix != NULL && strncmp(v[i].words[k], prefix, strlen(prefix)) != 0)
			continue;
		bool dup = false;
		for (int j = 0; j < nw; j++)
			if (strcmp(w[j], v[i].words[k]) == 0)
				dup = true;
		if (!dup)
			w[nw++] = v[i].words[k];
	}
	qsort(w, (size_t)nw, sizeof(w[0]), cmp_str);
	buf[0] = '\0';
	for (int j = 0; j < nw && off < len; j++) {
		int r = snprintf(buf + off, len - off, "%s%s", j ? ", " : "", w[j]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
}

static void joined(char **argv, int k, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < k && off < len; i++) {
		int r = snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
}

/* "chanctl WORDS FORM" for each form of c's synopsis (forms are separated
 * by '\n'), the forms after the first on lines of their own starting with
 * lead. */
static void usage_text(const struct ctl_cmd *c, const char *lead, char *buf, size_t len)
{
	const char *syn = c->synopsis ? c->synopsis : "";
	size_t off = 0;
	bool first = true;

	buf[0] = '\0';
	for (;;) {
		size_t n = strcspn(syn, "\n");
		int r = snprintf(buf + off, len - off, "%schanctl %s%s%.*s", first ? "" : lead,
		                 c->words, n ? " " : "", (int)n, syn);
		if (r < 0 || (size_t)r >= len - off)
			return;
		off += (size_t)r;
		first = false;
		if (syn[n] == '\0')
			return;
		syn += n + 1;
	}
}

static void print_cmd_usage(FILE *f, const struct ctl_cmd *c)
{
	char text[4096];

	usage_text(c, "\n       ", text, sizeof(text));
	fprintf(f, "usage: %s\n", text);
}

void ctl_print_usage(FILE *f)
{
	fprintf(f, "usage: chanctl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t fi = 0; ctl_families[fi] != NULL; fi++)
		for (const struct ctl_cmd *c = ctl_families[fi]->cmds; c->words != NULL; c++) {
			/* One line per form, each with the command words, so that
			 * the bash completion reads every form's options. */
			const char *syn = c->synopsis ? c->synopsis : "";
			for (;;) {
				size_t n = strcspn(syn, "\n");
				fprintf(f, "  %s%s%.*s\n", c->words, n ? " " : "", (int)n, syn);
				if (syn[n] == '\0')
					break;
				syn += n + 1;
			}
		}
	fprintf(f, "  keystore create|import|trust|list|show|remove ...\n"
	        "  check-peer --sslpeer FILTER --cert PEM\n"
	        "\nSee chanctl(1).\n");
}

static const struct ctl_cmd *match(int argc, char **argv, int *used)
{
	static struct cand v[MAX_CMDS];
	bool live[MAX_CMDS];
	int n = collect(v), k = 0;
	char list[1024], said[256];

	for (int i = 0; i < n; i++)
		live[i] = true;
	for (;;) {
		/* Done when one live candidate has exactly k words. */
		int complete = -1, longer = 0;
		for (int i = 0; i < n; i++) {
			if (!live[i])
				continue;
			if (v[i].nwords == k)
				complete = i;
			else
				longer++;
		}
		if (complete >= 0 && (longer == 0 || k >= argc || argv[k][0] == '-')) {
			*used = k;
			return v[complete].cmd;
		}
		words_at(v, live, n, k, NULL, list, sizeof(list));
		joined(argv, k, said, sizeof(said));
		if (k >= argc || argv[k][0] == '-') {
			if (k == 0)
				ctl_usage_err("missing command; valid: %s (chanctl --help)", list);
			ctl_usage_err("missing argument after '%s'; valid: %s", said, list);
		}
		const char *tok = argv[k];
		bool exact = false;
		for (int i = 0; i < n; i++)
			if (live[i] && v[i].nwords > k && strcmp(v[i].words[k], tok) == 0)
				exact = true;
		char pref[1024];
		words_at(v, live, n, k, tok, pref, sizeof(pref));
		if (!exact) {
			if (pref[0] == '\0') {
				if (k == 0)
					ctl_usage_err("unknown command '%s'; valid: %s", tok, list);
				ctl_usage_err("unknown argument '%s' after '%s'; valid: %s", tok, said, list);
			}
			if (strchr(pref, ',') != NULL)
				ctl_usage_err("ambiguous %s '%s'; could be: %s", k == 0 ? "command" : "argument",
				              tok, pref);
		}
		for (int i = 0; i < n; i++) {
			if (!live[i] || v[i].nwords <= k) {
				live[i] = false;
				continue;
			}
			live[i] = exact ? strcmp(v[i].words[k], tok) == 0
			                : strncmp(v[i].words[k], tok, strlen(tok)) == 0;
		}
		k++;
	}
}

static void opt_list(const struct ctl_cmd *c, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (const struct ctl_opt *o = c->opts; o != NULL && o->name != NULL && off < len; o++) {
		int r = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", o->name);
		if (r < 0)
			break;
		off += (size_t)r;
	}
	if (off < len)
		snprintf(buf + off, len - off, "%s--json", off ? ", " : "");
}

void ctl_parse(int argc, char **argv, struct ctl_args *out, bool *json)
{
	int k;
	const struct ctl_cmd *c;
	bool only_pos = false;
	char list[1024];

	memset(out, 0, sizeof(*out));
	c = match(argc, argv, &k);
	out->cmd = c;
	for (int i = k; i < argc; i++) {
		const char *t = argv[i];
		if (!only_pos && strcmp(t, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (!only_pos && t[0] == '-' && t[1] != '\0') {
			char name[64];
			const char *eq = strncmp(t, "--", 2) == 0 ? strchr(t, '=') : NULL;
			size_t nl = eq ? (size_t)(eq - t) : strlen(t);
			int idx = -1, j = 0;

			if (nl >= sizeof(name))
				nl = sizeof(name) - 1;
			memcpy(name, t, nl);
			name[nl] = '\0';
			if (strcmp(name, "--json") == 0) {
				*json = true;
				continue;
			}
			if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
				print_cmd_usage(stdout, c);
				exit(CTL_EXIT_OK);
			}
			for (const struct ctl_opt *o = c->opts; o != NULL && o->name != NULL; o++, j++)
				if (strcmp(o->name, name) == 0 || (o->alias && strcmp(o->alias, name) == 0))
					idx = j;
			if (idx < 0) {
				opt_list(c, list, sizeof(list));
				ctl_usage_err("unknown option '%s' for '%s'; valid: %s", name, c->words, list);
			}
			const struct ctl_opt *o = &c->opts[idx];
			if (idx >= CTL_MAX_OPTS)
				ctl_usage_err("internal error: '%s' has more than %d options", c->words,
				              CTL_MAX_OPTS);
			if (o->metavar == NULL) {
				if (eq != NULL)
					ctl_usage_err("option %s takes no value", o->name);
				out->val[idx] = "";
			} else if (o->metavar[0] == '[' && eq == NULL) {
				/* An optional value: the next word, unless it is an option. */
				if (i + 1 < argc && argv[i + 1][0] != '-')
					out->val[idx] = argv[++i];
				else
					out->val[idx] = "";
			} else if (eq != NULL) {
				out->val[idx] = eq + 1;
			} else if (i + 1 < argc) {
				out->val[idx] = argv[++i];
			} else {
				ctl_usage_err("option %s needs a value (%s %s)", o->name, o->name, o->metavar);
			}
			out->set[idx] = true;
			continue;
		}
		if (out->npos >= c->max_pos || out->npos >= CTL_MAX_POS) {
			char text[4096];
			usage_text(c, "\n       ", text, sizeof(text));
			ctl_usage_err("unexpected argument '%s' for '%s'; usage: %s", t, c->words, text);
		}
		out->pos[out->npos++] = t;
	}
	if (out->npos < c->min_pos) {
		char text[4096];
		usage_text(c, "\n       ", text, sizeof(text));
		ctl_usage_err("missing argument for '%s'; usage: %s", c->words, text);
	}
}

static int opt_index(const struct ctl_args *a, const char *name)
{
	int j = 0;

	for (const struct ctl_opt *o = a->cmd->opts; o != NULL && o->name != NULL; o++, j++)
		if (strcmp(o->name, name) == 0)
			return j;
	return -1;
}

const char *ctl_opt(const struct ctl_args *a, const char *name)
{
	int j = opt_index(a, name);

	return j >= 0 && a->set[j] ? a->val[j] : NULL;
}

bool ctl_flag(const struct ctl_args *a, const char *name)
{
	return ctl_opt(a, name) != NULL;
}

bool ctl_opt_long(const struct ctl_args *a, const char *name, long min, long max, long *out)
{
	const char *v = ctl_opt(a, name);

	if (v == NULL)
		return false;
	if (!parse_long(v, min, max, out))
		ctl_usage_err("%s wants a number from %ld to %ld (got '%s')", name, min, max, v);
	return true;
}

int ctl_opt_word(const struct ctl_args *a, const char *name, const char *const *words)
{
	const char *v = ctl_opt(a, name);
	char list[256];
	size_t off = 0;

	if (v == NULL)
		return -1;
	for (int i = 0; words[i] != NULL; i++)
		if (strcasecmp(words[i], v) == 0)
			return i;
	list[0] = '\0';
	for (int i = 0; words[i] != NULL && off < sizeof(list); i++) {
		int r = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", words[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
	ctl_usage_err("%s wants one of: %s (got '%s')", name, list, v);
}
