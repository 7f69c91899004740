/* mosquitto_passwd password files (doc/TELEMETRY.md): parse, check,
 * and the secure file reader both MQTT auth files use.
 *
 * mqtt_passwd_parse is pure (fuzzable).  Where mosquitto silently drops a
 * line it cannot use (no ':', bad hash, unknown type) we refuse the file
 * with FILE:LINE: an operator whose user cannot log in should learn why
 * when the file is loaded, not from a failed CONNECT. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "chand/mqtt_auth.h"
#include "chand/util.h"

#define PW_HASH_LEN 64          /* SHA-512 */
#define PW_SALT_MAX 64
#define PW_ITER_MAX 1000000L    /* a CONNECT must not cost seconds of CPU */
#define PW_USER_MAX 65535       /* MQTT UTF-8 string */

enum pw_kind { PW_SHA512 = 6, PW_PBKDF2 = 7 };

struct pw_entry {
	char *user;
	enum pw_kind kind;
	unsigned iter;
	size_t saltlen;
	uint8_t salt[PW_SALT_MAX];
	uint8_t hash[PW_HASH_LEN];
	unsigned line;
};

struct mqtt_passwd {
	struct pw_entry *e;     /* sorted by user */
	size_t n;
};

void mqtt_auth_lerr(char *err, size_t errlen, const char *name, unsigned line, const char *fmt,
                    ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s:%u: ", name, line);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

bool mqtt_auth_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* [*s, *e) trimmed of blanks at both ends. */
static void pw_trim(const char **s, const char **e)
{
	while (*s < *e && mqtt_auth_blank(**s))
		(*s)++;
	while (*e > *s && mqtt_auth_blank((*e)[-1]))
		(*e)--;
}

/* Base64 field [s, e) into out (at most max bytes); length or -1. */
static long pw_b64(const char *s, const char *e, uint8_t *out, size_t max)
{
	size_t n = 0;
	uint8_t *d = b64_decode(s, (size_t)(e - s), &n);
	long r = -1;

	if (d == NULL)
		return -1;
	if (n <= max) {
		memcpy(out, d, n);
		r = (long)n;
	}
	secure_zero(d, n);
	free(d);
	return r;
}

/* Parses "$7$ITER$SALT$HASH" or "$6$SALT$HASH" in [s, e) into pe. 0, or -1
 * with a reason (never quoting the hash) in why. */
static int pw_parse_hash(const char *s, const char *e, struct pw_entry *pe, char *why,
                         size_t whylen)
{
	const char *f[4];
	size_t flen[4];
	size_t nf = 0;
	const char *p;
	long v;

	if (s == e) {
		snprintf(why, whylen, "no password hash after ':'");
		return -1;
	}
	if (*s != '$') {
		snprintf(why, whylen, "password is not hashed (run mosquitto_passwd -U on the file)");
		return -1;
	}
	/* split the rest on '$' */
	p = s + 1;
	while (p <= e && nf < 4) {
		const char *q = memchr(p, '$', (size_t)(e - p));
		if (q == NULL)
			q = e;
		f[nf] = p;
		flen[nf] = (size_t)(q - p);
		nf++;
		p = q + 1;
	}
	if (p <= e) {
		snprintf(why, whylen, "malformed password hash (too many '$' fields)");
		return -1;
	}
	if (flen[0] == 1 && f[0][0] == '6') {
		pe->kind = PW_SHA512;
		pe->iter = 0;
		if (nf != 3) {
			snprintf(why, whylen, "malformed $6$ hash (expected $6$SALT$HASH)");
			return -1;
		}
	} else if (flen[0] == 1 && f[0][0] == '7') {
		char num[16];
		pe->kind = PW_PBKDF2;
		if (nf != 4) {
			snprintf(why, whylen, "malformed $7$ hash (expected $7$ITERATIONS$SALT$HASH)");
			return -1;
		}
		if (flen[1] == 0 || flen[1] >= sizeof(num)) {
			snprintf(why, whylen, "bad $7$ iteration count");
			return -1;
		}
		memcpy(num, f[1], flen[1]);
		num[flen[1]] = '\0';
		if (!parse_long(num, 1, PW_ITER_MAX, &v)) {
			snprintf(why, whylen, "bad $7$ iteration count '%s' (1 to %ld)", num, PW_ITER_MAX);
			return -1;
		}
		pe->iter = (unsigned)v;
		/* shift SALT, HASH down to f[1], f[2] */
		f[1] = f[2], flen[1] = flen[2];
		f[2] = f[3], flen[2] = flen[3];
	} else {
		char t[8];
		size_t k = flen[0] < 4 ? flen[0] : 4;
		for (size_t i = 0; i < k; i++)
			t[i] = (f[0][i] >= 0x21 && f[0][i] < 0x7f) ? f[0][i] : '?';
		t[k] = '\0';
		snprintf(why, whylen,
		         "unsupported password hash type '$%s$' (mosquitto_passwd makes $7$; $6$ is also read)",
		         t);
		return -1;
	}
	/* mosquitto accepts 12-byte salts (what mosquitto_passwd makes) and
	 * 64-byte ones; so do we, so a file we accept is one mosquitto accepts. */
	v = pw_b64(f[1], f[1] + flen[1], pe->salt, sizeof(pe->salt));
	if (v != 12 && v != 64) {
		snprintf(why, whylen, "bad password salt (base64 of 12 or 64 bytes expected)");
		return -1;
	}
	pe->saltlen = (size_t)v;
	v = pw_b64(f[2], f[2] + flen[2], pe->hash, sizeof(pe->hash));
	if (v != PW_HASH_LEN) {
		snprintf(why, whylen, "bad password hash (base64 of 64 bytes expected)");
		return -1;
	}
	return 0;
}

static int pw_cmp(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

void mqtt_passwd_free(struct mqtt_passwd *pw)
{
	if (pw == NULL)
		return;
	for (size_t i = 0; i < pw->n; i++)
		free(pw->e[i].user);
	secure_zero(pw->e, pw->n * sizeof(*pw->e));
	free(pw->e);
	free(pw);
}

int mqtt_passwd_parse(const char *text, size_t len, const char *name, struct mqtt_passwd **out,
                      char *err, size_t errlen)
{
	struct mqtt_passwd *pw;
	size_t cap = 0;
	unsigned line = 0;
	const char *p, *end;

	*out = NULL;
	if (text == NULL && len > 0)
		return -1;
	if (text == NULL)
		text = "";
	p = text;
	end = text + len;
	pw = calloc(1, sizeof(*pw));
	if (pw == NULL) {
		mqtt_auth_lerr(err, errlen, name ? name : "password file", 0, "out of memory");
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		const char *colon, *us, *ue, *hs, *he;
		struct pw_entry pe;
		char why[160];

		p = nl ? nl + 1 : end;
		line++;
		if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "NUL byte in line");
			goto fail;
		}
		pw_trim(&ls, &le);
		if (ls == le || *ls == '#')
			continue;
		colon = memchr(ls, ':', (size_t)(le - ls));
		if (colon == NULL) {
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "expected USER:HASH (no ':')");
			goto fail;
		}
		us = ls, ue = colon;
		hs = colon + 1, he = le;
		pw_trim(&us, &ue);
		pw_trim(&hs, &he);
		if (us == ue) {
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "empty user name");
			goto fail;
		}
		if ((size_t)(ue - us) > PW_USER_MAX || !utf8_valid((const uint8_t *)us, (size_t)(ue - us))) {
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "user name is not a valid MQTT string (UTF-8, <= 65535 bytes)");
			goto fail;
		}
		memset(&pe, 0, sizeof(pe));
		if (pw_parse_hash(hs, he, &pe, why, sizeof(why)) != 0) {
			secure_zero(&pe, sizeof(pe));
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "%s", why);
			goto fail;
		}
		pe.line = line;
		pe.user = strndup(us, (size_t)(ue - us));
		if (pe.user == NULL) {
			secure_zero(&pe, sizeof(pe));
			mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "out of memory");
			goto fail;
		}
		if (pw->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct pw_entry *ne = calloc(nc, sizeof(*ne));
			if (ne == NULL) {
				free(pe.user);
				secure_zero(&pe, sizeof(pe));
				mqtt_auth_lerr(err, errlen, name ? name : "password file", line, "out of memory");
				goto fail;
			}
			/* copy by hand (not realloc) so no stale hash is left behind */
			if (pw->n > 0)
				memcpy(ne, pw->e, pw->n * sizeof(*ne));
			secure_zero(pw->e, pw->n * sizeof(*pw->e));
			free(pw->e);
			pw->e = ne;
			cap = nc;
		}
		pw->e[pw->n++] = pe;
		secure_zero(&pe, sizeof(pe));
	}
	if (pw->n > 1) {
		qsort(pw->e, pw->n, sizeof(*pw->e), pw_cmp);
		for (size_t i = 1; i < pw->n; i++) {
			if (strcmp(pw->e[i - 1].user, pw->e[i].user) == 0) {
				mqtt_auth_lerr(err, errlen, name ? name : "password file", pw->e[i].line,
				       "duplicate user (also on line %u)", pw->e[i - 1].line);
				goto fail;
			}
		}
	}
	*out = pw;
	return 0;
fail:
	mqtt_passwd_free(pw);
	return -1;
}

static const struct pw_entry *pw_find(const struct mqtt_passwd *pw, const char *user)
{
	size_t lo = 0, hi;

	if (pw == NULL || user == NULL)
		return NULL;
	hi = pw->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(user, pw->e[mid].user);
		if (c == 0)
			return &pw->e[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool mqtt_passwd_has_user(const struct mqtt_passwd *pw, const char *user)
{
	return pw_find(pw, user) != NULL;
}

size_t mqtt_passwd_count(const struct mqtt_passwd *pw)
{
	return pw ? pw->n : 0;
}

/* Derives the hash of password under pe's scheme into out (64 bytes). */
static int pw_derive(const struct pw_entry *pe, const uint8_t *password, size_t pwlen,
                     uint8_t out[PW_HASH_LEN])
{
	static const uint8_t empty[1];
	const uint8_t *pwd = password ? password : empty;

	if (pe->kind == PW_SHA512) {
		gnutls_hash_hd_t h;
		if (gnutls_hash_init(&h, GNUTLS_DIG_SHA512) < 0)
			return -1;
		if (gnutls_hash(h, pwd, pwlen) < 0 || gnutls_hash(h, pe->salt, pe->saltlen) < 0) {
			gnutls_hash_deinit(h, out);
			return -1;
		}
		gnutls_hash_deinit(h, out);
		return 0;
	}
	/* gnutls_datum_t is not const-qualified; the data is only read. */
	gnutls_datum_t key = { (unsigned char *)(uintptr_t)pwd, (unsigned)pwlen };
	gnutls_datum_t salt = { (unsigned char *)(uintptr_t)pe->salt, (unsigned)pe->saltlen };
	if (pwlen > 65535)
		return -1;
	return gnutls_pbkdf2(GNUTLS_MAC_SHA512, &key, &salt, pe->iter, out, PW_HASH_LEN) < 0 ? -1 : 0;
}

bool mqtt_passwd_check(const struct mqtt_passwd *pw, const char *user, const uint8_t *password,
                       size_t pwlen)
{
	const struct pw_entry *pe = pw_find(pw, user);
	uint8_t d[PW_HASH_LEN];
	volatile uint8_t diff = 0;

	if (pe == NULL) {
		/* Spend what a mosquitto_passwd default ($7$, 101 rounds) costs,
		 * so the answer time does not tell which user names exist. */
		struct pw_entry dummy = { .kind = PW_PBKDF2, .iter = 101, .saltlen = 12 };
		(void)pw_derive(&dummy, password, pwlen > 65535 ? 0 : pwlen, d);
		secure_zero(d, sizeof(d));
		return false;
	}
	if (pw_derive(pe, password, pwlen, d) != 0) {
		secure_zero(d, sizeof(d));
		return false;
	}
	for (size_t i = 0; i < PW_HASH_LEN; i++)
		diff |= (uint8_t)(d[i] ^ pe->hash[i]);
	secure_zero(d, sizeof(d));
	return diff == 0;
}

/* ---- the secure reader shared with mqtt_acl_load ---- */

char *mqtt_auth_read_file(const char *path, unsigned refuse_mode, bool secret, size_t *len,
                          char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t cap, n = 0;
	int fd;

	*len = 0;
	/* O_NOFOLLOW: a link in the final component is refused (ELOOP), so a
	 * writable directory cannot redirect us to another file; O_NONBLOCK:
	 * opening a FIFO must not hang the agent (S_ISREG refuses it next). */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP)
			snprintf(err, errlen, "%s: is a symbolic link (refused; give the file's real path)",
			         path);
		else
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((unsigned)st.st_mode & refuse_mode) {
		if (secret)
			snprintf(err, errlen,
			         "%s: others may read or write it (mode %04o); run: chmod 0600 %s (or 0640 to share with a group)",
			         path, (unsigned)st.st_mode & 07777u, path);
		else
			snprintf(err, errlen, "%s: others may write it (mode %04o); run: chmod o-w %s", path,
			         (unsigned)st.st_mode & 07777u, path);
		goto fail;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > MQTT_AUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: too large (%jd bytes; at most %u)", path, (intmax_t)st.st_size,
		         MQTT_AUTH_FILE_MAX);
		goto fail;
	}
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Read to EOF, not st_size bytes: the file may be changing under us.
	 * The buffer grows as needed, never past the size limit. */
	for (;;) {
		ssize_t r;
		if (n == cap) {
			size_t nc = cap * 2;
			char *nb;
			if (cap > MQTT_AUTH_FILE_MAX) {
				snprintf(err, errlen, "%s: too large (more than %u bytes)", path,
				         MQTT_AUTH_FILE_MAX);
				goto fail;
			}
			if (nc > (size_t)MQTT_AUTH_FILE_MAX + 1)
				nc = (size_t)MQTT_AUTH_FILE_MAX + 1;
			nb = malloc(nc + 1);
			if (nb == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			memcpy(nb, buf, n);
			secure_zero(buf, n);
			free(buf);
			buf = nb;
			cap = nc;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > MQTT_AUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: too large (more than %u bytes)", path, MQTT_AUTH_FILE_MAX);
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	if (buf != NULL) {
		if (secret)
			secure_zero(buf, n);
		free(buf);
	}
	close(fd);
	return NULL;
}

int mqtt_passwd_load(const char *path, struct mqtt_passwd **out, char *err, size_t errlen)
{
	size_t len;
	char *text;
	int rc;

	*out = NULL;
	text = mqtt_auth_read_file(path, 007, true, &len, err, errlen);
	if (text == NULL)
		return -1;
	rc = mqtt_passwd_parse(text, len, path, out, err, errlen);
	secure_zero(text, len);
	free(text);
	return rc;
}
