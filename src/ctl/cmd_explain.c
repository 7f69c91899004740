/* chanctl explain: the catalogue of CHD codes (include/chand/codes.h),
 * read locally so an operator can look up a code from a log line on a
 * machine where no agent runs. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int do_explain(struct ctl *c, const struct ctl_args *a);

static const struct ctl_opt explain_opts[] = { { "--all", NULL, NULL }, { NULL, NULL, NULL } };

static const struct ctl_cmd explain_cmds[] = {
	{ "explain", "[CODE | --all]   (CODE: CHDnnnn or nnnn; no CODE lists every code)",
	  explain_opts, 0, 1, do_explain, CTL_NO_AGENT },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_explain_family = { "explain", explain_cmds };

static json_t *code_json(const struct chd_code *k)
{
	return json_pack("{s:s,s:s,s:s}", "code", k->code, "text", k->text, "explanation", k->help);
}

/* The explanation wrapped at 76 columns under a 4-space indent: catalogue
 * entries are single long sentences. */
static void print_wrapped(const char *s)
{
	const int width = 72;
	int col = 0;

	while (*s != '\0') {
		size_t w = strcspn(s, " ");
		if (col > 0 && col + 1 + (int)w > width) {
			putchar('\n');
			col = 0;
		}
		printf("%s%.*s", col == 0 ? "    " : " ", (int)w, s);
		col += (col == 0 ? 0 : 1) + (int)w;
		s += w;
		while (*s == ' ')
			s++;
	}
	putchar('\n');
}

static int explain_all(const struct ctl *c)
{
	size_t n;
	const struct chd_code *t = code_table(&n);

	if (c->json) {
		json_t *all = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(all, code_json(&t[i]));
		ctl_json_print(all, stdout);
		json_decref(all);
		return CTL_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s  %s\n", t[i].code, t[i].text);
	return CTL_EXIT_OK;
}

static int do_explain(struct ctl *c, const struct ctl_args *a)
{
	const struct chd_code *k;

	if (a->npos == 0)
		return explain_all(c);
	if (ctl_flag(a, "--all"))
		ctl_usage_err("give a CODE or --all, not both");
	k = code_lookup(a->pos[0]);
	if (k == NULL) {
		fprintf(stderr, "chanctl: unknown code '%s' (chanctl explain --all lists every code)\n",
		        a->pos[0]);
		return CTL_EXIT_FAIL;
	}
	if (c->json) {
		json_t *o = code_json(k);
		ctl_json_print(o, stdout);
		json_decref(o);
		return CTL_EXIT_OK;
	}
	printf("%s: %s\n", k->code, k->text);
	print_wrapped(k->help);
	return CTL_EXIT_OK;
}
