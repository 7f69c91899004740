/* tls_ctx_load: keystore file + stash -> a context.  Kept apart from ctx.c
 * so that programs building contexts from PEM files (unit tests, the
 * benchmark) do not need the keystore module. */
#include <stdio.h>
#include <string.h>

#include "chand/util.h"

#include "tls_int.h"

int tls_ctx_load(struct tls_ctx **out, const char *ks_path, const char *stash_path,
                 struct tls_error *err)
{
	struct ks_material *m = NULL;
	enum chd_code_id code = CHD_KS_OPEN;
	char why[400];
	int r;

	*out = NULL;
	why[0] = '\0';
	if (ks_material_load(ks_path, stash_path, &m, &code, why, sizeof why) != 0) {
		/* the keystore's reasons usually name the file already */
		if (why[0] != '\0' && strstr(why, ks_path) != NULL)
			tls_err_set(err, CHD_TLS_KEYSTORE, "%s %s", code_str(code), why);
		else
			tls_err_set(err, CHD_TLS_KEYSTORE, "keystore %s: %s %s", ks_path, code_str(code),
			            why[0] != '\0' ? why : code_text(code));
		return -1;
	}
	r = tls_ctx_from_material(out, m, err);
	ks_material_free(m);
	if (r != 0) {
		/* name the file the material came from */
		char text[sizeof err->text];
		int k = snprintf(text, sizeof text, "keystore %s: ", ks_path);
		if (k > 0 && (size_t)k < sizeof text) {
			str_copy(text + k, err->text, sizeof text - (size_t)k);
			str_copy(err->text, text, sizeof err->text);
		}
	}
	return r;
}
