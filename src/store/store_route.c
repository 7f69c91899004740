/* Route definitions (doc/TELEMETRY.md, routes): opaque JSON text owned by the mqtt
 * module, one row per route.  Rarely written, so statements are prepared
 * per call instead of taking slots in the handle's cache. */
#include <stdlib.h>
#include <string.h>

#include "chand/store_mqtt.h"
#include "store_int.h"

static int check_name(struct store *st, const char *name)
{
	char why[160];

	if (name == NULL || !name_valid(name, why, sizeof why))
		return store_fail(st, STORE_BAD_NAME, "route: %s", name ? why : "name is missing");
	return STORE_OK;
}

static int run_write(struct store *st, const char *sql, const char *name, const char *attrs,
                     const char *what, int *changes)
{
	sqlite3_stmt *s = NULL;
	bool own;
	int rc, erc;

	if ((rc = store_wbegin(st, &own)) != STORE_OK)
		return rc;
	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC)) == SQLITE_OK &&
	    attrs != NULL)
		if ((rc = sqlite3_bind_text(s, 2, attrs, -1, SQLITE_STATIC)) == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 3, time_now_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = STORE_OK;
		if (changes != NULL)
			*changes = sqlite3_changes(st->db);
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = store_fail(st, STORE_EXISTS, "route '%s' already exists (use replace)", name);
	} else {
		rc = store_sqlfail(st, rc, what);
	}
	sqlite3_finalize(s);
	erc = store_wend(st, own, rc == STORE_OK);
	return rc == STORE_OK ? erc : rc;
}

int store_route_put(struct store *st, const char *name, const char *attrs, bool replace)
{
	int rc;

	if ((rc = check_name(st, name)) != STORE_OK)
		return rc;
	if (attrs == NULL)
		return store_fail(st, STORE_BAD_ARG, "route '%s': no attributes given", name);
	return run_write(st, replace
	                 ? "INSERT INTO main.routes (name, attrs, created_ms, altered_ms)"
	                   " VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET"
	                   " attrs = excluded.attrs, altered_ms = excluded.altered_ms"
	                 : "INSERT INTO main.routes (name, attrs, created_ms, altered_ms)"
	                   " VALUES (?1, ?2, ?3, ?3)",
	                 name, attrs, "writing a route definition", NULL);
}

int store_route_delete(struct store *st, const char *name)
{
	int rc, changes = 0;

	if ((rc = check_name(st, name)) != STORE_OK)
		return rc;
	if ((rc = run_write(st, "DELETE FROM main.routes WHERE name = ?1", name, NULL,
	                    "deleting a route definition", &changes)) != STORE_OK)
		return rc;
	return changes ? STORE_OK : store_fail(st, STORE_NOT_FOUND, "route '%s' is not defined", name);
}

int store_route_list(struct store *st, char ***names, char ***attrs, size_t *n)
{
	sqlite3_stmt *s = NULL;
	char **nv = NULL, **av = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*names = *attrs = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(st->db, "SELECT name, attrs FROM main.routes ORDER BY name", -1, &s,
	                        NULL);
	if (rc != SQLITE_OK)
		return store_sqlfail(st, rc, "listing routes");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *nm = (const char *)sqlite3_column_text(s, 0);
		const char *at = (const char *)sqlite3_column_text(s, 1);
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **a = realloc(nv, ncap * sizeof *a), **b;
			if (a == NULL)
				goto oom;
			nv = a;
			if ((b = realloc(av, ncap * sizeof *b)) == NULL)
				goto oom;
			av = b;
			cap = ncap;
		}
		nv[cnt] = strdup(nm ? nm : "");
		av[cnt] = strdup(at ? at : "{}");
		cnt++;
		if (nv[cnt - 1] == NULL || av[cnt - 1] == NULL)
			goto oom;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_route_list_free(nv, av, cnt);
		return store_sqlfail(st, rc, "listing routes");
	}
	*names = nv;
	*attrs = av;
	*n = cnt;
	return STORE_OK;
oom:
	sqlite3_finalize(s);
	store_route_list_free(nv, av, cnt);
	return store_fail(st, STORE_ERR, "out of memory");
}

void store_route_list_free(char **names, char **attrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (names != NULL)
			free(names[i]);
		if (attrs != NULL)
			free(attrs[i]);
	}
	free(names);
	free(attrs);
}
