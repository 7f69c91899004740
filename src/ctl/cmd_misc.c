/* chanctl commands that need no agent: explain. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int do_explain(struct ctl *c, const struct ctl_args *a);

static const struct ctl_cmd misc_cmds[] = {
	{ "explain", "[CODE]   (CHDnnnn or nnnn; no CODE: the whole catalogue)", NULL, 0, 1,
	  do_explain, CTL_NO_AGENT },
	{ NULL, NULL, NULL, 0, 0, NULL, 0 },
};

const struct ctl_family ctl_misc_family = { "misc", misc_cmds };

static void explain_one(const struct ctl *c, const struct chd_code *k)
{
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "code", k->code, "text", k->text, "help", k->help);
		ctl_json_print(o, stdout);
		json_decref(o);
	} else {
		printf("%s %s\n    %s\n", k->code, k->text, k->help);
	}
}

static int do_explain(struct ctl *c, const struct ctl_args *a)
{
	size_t n;
	const struct chd_code *t = code_table(&n);

	if (a->npos == 0) {
		for (size_t i = 0; i < n; i++)
			explain_one(c, &t[i]);
		return CTL_EXIT_OK;
	}
	const struct chd_code *k = code_lookup(a->pos[0]);
	if (k == NULL)
		ctl_usage_err("unknown code '%s' (codes look like CHD2002; chanctl explain lists them)",
		              a->pos[0]);
	explain_one(c, k);
	return CTL_EXIT_OK;
}
