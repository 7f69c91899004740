/* mosquitto acl_file parsing and checking (doc/TELEMETRY.md).
 *
 * Pure apart from mqtt_acl_load (fuzzable).  The semantics are mosquitto
 * 2.x's acl_file, with the differences mqtt_auth.h lists (all of them
 * refuse more, never grant more).  Matching is the pubsub module's
 * (topic_match, topic_filter_covers), so ACLs and subscriptions can never
 * disagree about what a filter matches. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chand/mqtt_auth.h"
#include "chand/pubsub.h"
#include "chand/util.h"

#define ACL_R MQTT_ACL_READ
#define ACL_W MQTT_ACL_WRITE

enum acl_owner { ACL_ANON = 0, ACL_PATTERN = 1, ACL_USER = 2 };

struct acl_entry {
	enum acl_owner owner;
	const char *user;       /* ACL_USER: the "user" line's name (owned by names[]) */
	char *filter;
	unsigned access;        /* ACL_R | ACL_W; 0 = deny */
	bool subst;             /* pattern with a %c or %u level */
	unsigned line;
};

struct acl_user {
	const char *name;
	const struct acl_entry *e;
	size_t n;
};

struct mqtt_acl {
	struct acl_entry *e;    /* sorted: anonymous, patterns, users by name */
	size_t n;
	size_t anon_n, pat_off, pat_n;
	struct acl_user *users; /* sorted by name */
	size_t nusers;
	char **names;           /* every "user" line's name */
	size_t nnames;
};


/* A word from the file, safe to put in a one-line error: at most 32
 * bytes, anything but printable ASCII shown as '?'. */
static void acl_show(const char *s, size_t n, char out[40])
{
	size_t k = n > 32 ? 32 : n;

	for (size_t i = 0; i < k; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > k) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

static bool acl_word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* The access word -> bits; -1 if not one. */
static int acl_access_word(const char *s, size_t n)
{
	if (acl_word_is(s, n, "read"))
		return ACL_R;
	if (acl_word_is(s, n, "write"))
		return ACL_W;
	if (acl_word_is(s, n, "readwrite"))
		return ACL_R | ACL_W;
	if (acl_word_is(s, n, "deny"))
		return 0;
	return -1;
}

/* Does the filter have a level that is exactly "%c" or "%u"? */
static bool acl_has_subst(const char *f)
{
	const char *lv = f;

	for (;;) {
		const char *sl = strchr(lv, '/');
		size_t n = sl ? (size_t)(sl - lv) : strlen(lv);
		if (n == 2 && lv[0] == '%' && (lv[1] == 'c' || lv[1] == 'u'))
			return true;
		if (sl == NULL)
			return false;
		lv = sl + 1;
	}
}

static void acl_free_entries(struct acl_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].filter);
	free(e);
}

void mqtt_acl_free(struct mqtt_acl *acl)
{
	if (acl == NULL)
		return;
	acl_free_entries(acl->e, acl->n);
	for (size_t i = 0; i < acl->nnames; i++)
		free(acl->names[i]);
	free(acl->names);
	free(acl->users);
	free(acl);
}

size_t mqtt_acl_count(const struct mqtt_acl *acl)
{
	return acl ? acl->n : 0;
}

static int acl_cmp(const void *a, const void *b)
{
	const struct acl_entry *x = a, *y = b;

	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	if (x->owner == ACL_USER) {
		int c = strcmp(x->user, y->user);
		if (c != 0)
			return c;
	}
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Groups the sorted entries into the anonymous, pattern and per-user
 * slices.  0, or -1 on allocation failure. */
static int acl_index(struct mqtt_acl *acl)
{
	size_t i = 0;

	if (acl->n > 1)
		qsort(acl->e, acl->n, sizeof(*acl->e), acl_cmp);
	while (i < acl->n && acl->e[i].owner == ACL_ANON)
		i++;
	acl->anon_n = i;
	acl->pat_off = i;
	while (i < acl->n && acl->e[i].owner == ACL_PATTERN)
		i++;
	acl->pat_n = i - acl->pat_off;
	if (i < acl->n) {
		acl->users = calloc(acl->n - i, sizeof(*acl->users));
		if (acl->users == NULL)
			return -1;
	}
	while (i < acl->n) {
		struct acl_user *u = &acl->users[acl->nusers++];
		u->name = acl->e[i].user;
		u->e = &acl->e[i];
		while (i < acl->n && strcmp(acl->e[i].user, u->name) == 0) {
			i++;
			u->n++;
		}
	}
	return 0;
}

int mqtt_acl_parse(const char *text, size_t len, const char *name, struct mqtt_acl **out,
                   char *err, size_t errlen)
{
	struct mqtt_acl *acl;
	size_t cap = 0, namecap = 0;
	const char *cur_user = NULL;
	unsigned line = 0;
	const char *p, *end;

	*out = NULL;
	if (text == NULL && len > 0)
		return -1;
	if (text == NULL)
		text = "";
	p = text;
	end = text + len;
	acl = calloc(1, sizeof(*acl));
	if (acl == NULL)
		goto nomem;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *raw = p, *ls = p, *le = nl ? nl : end;
		const char *kw, *kwe, *a, *ae, *t;
		char show[40];

		p = nl ? nl + 1 : end;
		line++;
		if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
			mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "NUL byte in line");
			goto fail;
		}
		while (ls < le && mqtt_auth_blank(*ls))
			ls++;
		while (le > ls && mqtt_auth_blank(le[-1]))
			le--;
		if (ls == le || *ls == '#')
			continue;
		kw = ls;
		kwe = kw;
		while (kwe < le && !mqtt_auth_blank(*kwe))
			kwe++;
		a = kwe;
		while (a < le && mqtt_auth_blank(*a))
			a++;
		if (acl_word_is(kw, (size_t)(kwe - kw), "user")) {
			char *u;
			if (a == le) {
				mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "missing user name after 'user'");
				goto fail;
			}
			/* The rest of the line is the name (it may hold blanks), as
			 * in mosquitto. */
			if ((size_t)(le - a) > 65535 || !utf8_valid((const uint8_t *)a, (size_t)(le - a))) {
				mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line,
				        "user name is not a valid MQTT string (UTF-8, <= 65535 bytes)");
				goto fail;
			}
			if (acl->nnames == namecap) {
				size_t nc = namecap ? namecap * 2 : 8;
				char **nn = realloc(acl->names, nc * sizeof(*nn));
				if (nn == NULL)
					goto nomem;
				acl->names = nn;
				namecap = nc;
			}
			u = strndup(a, (size_t)(le - a));
			if (u == NULL)
				goto nomem;
			acl->names[acl->nnames++] = u;
			cur_user = u;
			continue;
		}
		bool pattern = acl_word_is(kw, (size_t)(kwe - kw), "pattern");
		if (!pattern && !acl_word_is(kw, (size_t)(kwe - kw), "topic")) {
			acl_show(kw, (size_t)(kwe - kw), show);
			mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line,
			        "unknown keyword '%s' (expected user, topic or pattern)", show);
			goto fail;
		}
		if (a == le) {
			mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "missing topic after '%s'",
			        pattern ? "pattern" : "topic");
			goto fail;
		}
		ae = a;
		while (ae < le && !mqtt_auth_blank(*ae))
			ae++;
		t = ae;
		while (t < le && mqtt_auth_blank(*t))
			t++;
		int access;
		if (t == le) {
			/* "topic FILTER": readwrite, as mosquitto.  "topic read" is
			 * refused: mosquitto would take "read" as the topic, which is
			 * surely not what the operator meant. */
			if (acl_access_word(a, (size_t)(ae - a)) >= 0) {
				acl_show(a, (size_t)(ae - a), show);
				mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "missing topic after '%s'", show);
				goto fail;
			}
			access = ACL_R | ACL_W;
			t = a;
		} else {
			access = acl_access_word(a, (size_t)(ae - a));
			if (access < 0) {
				acl_show(a, (size_t)(ae - a), show);
				mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line,
				        "bad access '%s' (expected read, write, readwrite or deny)", show);
				goto fail;
			}
		}
		/* The topic is the rest of the line (it may hold blanks). */
		size_t epos = 0;
		const char *why = NULL;
		if (topic_filter_check(t, (size_t)(le - t), &epos, &why) != 0) {
			mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "invalid topic filter at position %zu: %s",
			        (size_t)(t - raw) + epos + 1, why ? why : "invalid");
			goto fail;
		}
		if (acl->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct acl_entry *ne = realloc(acl->e, nc * sizeof(*ne));
			if (ne == NULL)
				goto nomem;
			acl->e = ne;
			cap = nc;
		}
		struct acl_entry *e = &acl->e[acl->n];
		memset(e, 0, sizeof(*e));
		e->filter = strndup(t, (size_t)(le - t));
		if (e->filter == NULL)
			goto nomem;
		acl->n++;
		e->access = (unsigned)access;
		e->line = line;
		if (pattern) {
			e->owner = ACL_PATTERN;
			e->subst = acl_has_subst(e->filter);
		} else if (cur_user != NULL) {
			e->owner = ACL_USER;
			e->user = cur_user;
		} else {
			e->owner = ACL_ANON;
		}
	}
	if (acl_index(acl) != 0)
		goto nomem;
	*out = acl;
	return 0;
nomem:
	mqtt_auth_lerr(err, errlen, name ? name : "ACL file", line, "out of memory");
fail:
	mqtt_acl_free(acl);
	return -1;
}

int mqtt_acl_load(const char *path, struct mqtt_acl **out, char *err, size_t errlen)
{
	size_t len;
	char *text;
	int rc;

	*out = NULL;
	/* Not secret, but whoever may write it may grant themselves access. */
	text = mqtt_auth_read_file(path, 002, false, &len, err, errlen);
	if (text == NULL)
		return -1;
	rc = mqtt_acl_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

/* ---- checking ---- */

static const struct acl_user *acl_find_user(const struct mqtt_acl *acl, const char *user)
{
	size_t lo = 0, hi = acl->nusers;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(user, acl->users[mid].name);
		if (c == 0)
			return &acl->users[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Can this name replace a %c / %u level?  0 yes; -1 no, it is missing or
 * empty (the pattern is about no one's tree: it neither grants nor
 * denies, as in mosquitto); -2 no, it is dangerous: '+' or '#' would make
 * it a wildcard, '/' would span levels (user "a/b" must not reach
 * "users/a/b/#" of user "a"), and a '$' first level would reach the
 * $-topics that wildcards never match. */
static int acl_subst_ok(const char *v, bool first)
{
	if (v == NULL || v[0] == '\0')
		return -1;
	if (strpbrk(v, "+#/") != NULL || (first && v[0] == '$'))
		return -2;
	return 0;
}

/* Writes the pattern f with %c/%u levels replaced into buf (cap bytes).
 * Returns the length needed (excluding NUL), or the negative
 * acl_subst_ok() verdict of a name that cannot replace its level (-2 also
 * for a result longer than a topic can be). */
static long acl_subst(const char *f, const char *user, const char *cid, char *buf, size_t cap)
{
	size_t o = 0;
	const char *lv = f;
	bool first = true;

	for (;;) {
		const char *sl = strchr(lv, '/');
		size_t n = sl ? (size_t)(sl - lv) : strlen(lv);
		const char *src = lv;
		size_t sn = n;
		if (n == 2 && lv[0] == '%' && (lv[1] == 'c' || lv[1] == 'u')) {
			src = lv[1] == 'c' ? cid : user;
			int ok = acl_subst_ok(src, first);
			if (ok < 0)
				return ok;
			sn = strlen(src);
		}
		if (o + sn + 1 < cap)
			memcpy(buf + o, src, sn);
		o += sn;
		if (sl == NULL)
			break;
		if (o + 1 < cap)
			buf[o] = '/';
		o++;
		lv = sl + 1;
		first = false;
	}
	if (o < cap)
		buf[o] = '\0';
	return o > (size_t)TOPIC_MAX_LEN ? -2 : (long)o;
}

/* Does entry filter f apply to topic for this access?  For a deny entry
 * and SUBSCRIBE, "apply" means it covers the whole subscription. */
static bool acl_applies(const char *f, const char *topic, enum mqtt_acl_access access)
{
	if (access == MQTT_ACL_SUBSCRIBE)
		return topic_filter_covers(f, topic);
	return topic_match(f, topic);
}

static unsigned acl_need(enum mqtt_acl_access access)
{
	return access == MQTT_ACL_WRITE ? ACL_W : ACL_R;
}

/* One entry: -1 refuses outright, 1 grants, 0 says nothing. */
static int acl_entry_verdict(const struct acl_entry *e, const char *filter, const char *topic,
                             enum mqtt_acl_access access)
{
	if (e->access != 0 && !(e->access & acl_need(access)))
		return 0;
	if (!acl_applies(filter, topic, access))
		return 0;
	return e->access == 0 ? -1 : 1;
}

bool mqtt_acl_check(const struct mqtt_acl *acl, const char *user, const char *client_id,
                    const char *topic, enum mqtt_acl_access access)
{
	const struct acl_entry *own = NULL;
	size_t nown = 0;
	bool granted = false;
	size_t tlen;

	if (acl == NULL || topic == NULL)
		return false;
	tlen = strlen(topic);
	if (access == MQTT_ACL_SUBSCRIBE) {
		if (topic_filter_check(topic, tlen, NULL, NULL) != 0)
			return false;
	} else if (access == MQTT_ACL_READ || access == MQTT_ACL_WRITE) {
		if (topic_name_check(topic, tlen, NULL, NULL) != 0)
			return false;
	} else {
		return false;
	}

	if (user == NULL) {
		own = acl->e;
		nown = acl->anon_n;
	} else {
		const struct acl_user *u = acl_find_user(acl, user);
		if (u != NULL) {
			own = u->e;
			nown = u->n;
		}
	}
	for (size_t i = 0; i < nown; i++) {
		int v = acl_entry_verdict(&own[i], own[i].filter, topic, access);
		if (v < 0)
			return false;
		if (v > 0)
			granted = true;
	}

	for (size_t i = 0; i < acl->pat_n; i++) {
		const struct acl_entry *e = &acl->e[acl->pat_off + i];
		char small[256];
		char *buf = small;
		const char *f = e->filter;
		int v;

		if (e->subst) {
			long need = acl_subst(e->filter, user, client_id, small, sizeof(small));
			if (need == -1)
				continue;
			if (need < 0) {
				/* A dangerous name: a deny we cannot evaluate refuses
				 * (we cannot tell what it was meant to keep from this
				 * client); a grant grants nothing. */
				if (e->access == 0)
					return false;
				continue;
			}
			if ((size_t)need >= sizeof(small)) {
				buf = malloc((size_t)need + 1);
				if (buf == NULL)
					return false;
				(void)acl_subst(e->filter, user, client_id, buf, (size_t)need + 1);
			}
			f = buf;
		}
		v = acl_entry_verdict(e, f, topic, access);
		if (buf != small)
			free(buf);
		if (v < 0)
			return false;
		if (v > 0)
			granted = true;
	}
	return granted;
}
