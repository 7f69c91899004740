#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chand/util.h"

bool name_valid(const char *name, char *why, size_t whylen)
{
	size_t n;

	if (name == NULL || name[0] == '\0') {
		if (why)
			snprintf(why, whylen, "name is empty");
		return false;
	}
	n = strlen(name);
	if (n > CHAND_NAME_MAX) {
		if (why)
			snprintf(why, whylen, "name '%.60s' is %zu characters long (at most %d)",
			         name, n, CHAND_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '/' || c == '%')
			continue;
		if (why) {
			if (c >= 0x20 && c < 0x7f)
				snprintf(why, whylen, "name '%s' has '%c' at position %zu "
				         "(allowed: A-Z a-z 0-9 . _ / %%)", name, c, i + 1);
			else
				snprintf(why, whylen, "name has byte 0x%02x at position %zu "
				         "(allowed: A-Z a-z 0-9 . _ / %%)", c, i + 1);
		}
		return false;
	}
	return true;
}

bool name_match(const char *pattern, const char *name)
{
	size_t pl, nl;
	bool lead, trail;

	if (pattern == NULL || strcmp(pattern, "*") == 0)
		return true;
	pl = strlen(pattern);
	nl = strlen(name);
	lead = pl > 0 && pattern[0] == '*';
	trail = pl > 1 && pattern[pl - 1] == '*';
	if (lead) {
		pattern++;
		pl--;
	}
	if (trail)
		pl--;
	if (lead && trail) {
		char sub[CHAND_NAME_MAX + 1];
		if (pl > CHAND_NAME_MAX)
			return false;
		memcpy(sub, pattern, pl);
		sub[pl] = '\0';
		return strstr(name, sub) != NULL;
	}
	if (lead)
		return nl >= pl && memcmp(name + nl - pl, pattern, pl) == 0;
	if (trail)
		return nl >= pl && memcmp(name, pattern, pl) == 0;
	return strcmp(pattern, name) == 0;
}

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_ms(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long hex_decode(const char *in, uint8_t *out, size_t outmax)
{
	size_t n = strlen(in);

	if (n % 2 != 0 || n / 2 > outmax)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)in[2 * i]), lo = hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/* b64_encode and b64_decode are in b64.c: they use GnuTLS, which the
 * programs that link libcommon without them need not link. */

bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

void secure_zero(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

/* The checks of a secret file, made on the descriptor that was opened (with
 * O_NOFOLLOW: the file itself, never a symbolic link to it), so that nothing
 * can be swapped in between the check and the read.  *refused (if given)
 * says the file is there but not acceptable as a secret: a symbolic link,
 * group/other bits, another owner. */
static int secret_open(const char *path, bool *refused, char *err, size_t errlen)
{
	struct stat st;
	bool dummy;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (refused == NULL)
		refused = &dummy;
	*refused = false;
	if (fd < 0) {
		if (errno == ELOOP) {
			*refused = true;
			snprintf(err, errlen, "%s is a symbolic link: give the file itself", path);
		} else {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		}
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		*refused = true;
		snprintf(err, errlen, "%s has mode %04o: it must not be accessible by group or others "
		         "(chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	/* another user's secret file is not ours to use (root may: it starts
	 * the agent that then drops to the owner) */
	if (st.st_uid != geteuid() && geteuid() != 0) {
		*refused = true;
		snprintf(err, errlen, "%s belongs to uid %u, not to this user (uid %u): chown it or run "
		         "as its owner", path, (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

int file_check_secret(const char *path, char *err, size_t errlen)
{
	int fd = secret_open(path, NULL, err, errlen);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Reads the rest of fd (a regular file) and closes it. */
static char *read_fd_all(int fd, const char *path, size_t maxlen, size_t *len, char *err,
                         size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((size_t)st.st_size > maxlen) {
		snprintf(err, errlen, "%s is too large (%lld bytes, at most %zu)", path,
		         (long long)st.st_size, maxlen);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory reading %s", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "short read");
			secure_zero(buf, got);
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

char *file_read_all(const char *path, size_t maxlen, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	return read_fd_all(fd, path, maxlen, len, err, errlen);
}

char *file_read_secret(const char *path, size_t maxlen, size_t *len, bool *refused, char *err,
                       size_t errlen)
{
	int fd = secret_open(path, refused, err, errlen);

	if (fd < 0)
		return NULL;
	return read_fd_all(fd, path, maxlen, len, err, errlen);
}

bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

size_t str_copy(char *dst, const char *src, size_t dstlen)
{
	size_t n = strlen(src);

	if (dstlen > 0) {
		size_t c = n < dstlen - 1 ? n : dstlen - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}
