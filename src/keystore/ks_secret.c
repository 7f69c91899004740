/* Keystore passwords: password files, the stash, the terminal prompt, and
 * the PBKDF2 verifier. Every buffer that held a password is zeroed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <gnutls/crypto.h>

#include "chand/util.h"
#include "ks_int.h"

/* Stash format (version 1): the line "chand-stash 1", then the password in
 * base64 on one line. Base64 only keeps the password off a casual `cat`;
 * the protection is the file mode (0600, checked on every read). */
#define KS_STASH_MAGIC "chand-stash 1\n"
#define KS_PWFILE_MAX 65536

static int ks_pw_take_line(const char *buf, size_t len, const char *what, const char *path,
                           char *pw, char *err, size_t errlen);
static void ks_tty_signal(int sig);

/* The terminal state to restore if a signal ends the prompt (Ctrl-C):
 * otherwise the operator's shell is left without echo. */
static volatile sig_atomic_t ks_tty_fd = -1;
static struct termios ks_tty_saved;

static void ks_tty_signal(int sig)
{
	if (ks_tty_fd >= 0)
		tcsetattr(ks_tty_fd, TCSANOW, &ks_tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

char *ks_stash_path(const char *ks_path)
{
	const char *base, *dot;
	size_t keep;
	char *p;

	if (ks_path == NULL)
		return NULL;
	base = strrchr(ks_path, '/');
	base = base ? base + 1 : ks_path;
	dot = strrchr(base, '.');
	/* A leading dot names a hidden file, not an extension. */
	keep = (dot != NULL && dot != base) ? (size_t)(dot - ks_path) : strlen(ks_path);
	p = malloc(keep + sizeof ".sth");
	if (p == NULL)
		return NULL;
	memcpy(p, ks_path, keep);
	memcpy(p + keep, ".sth", sizeof ".sth");
	return p;
}

bool ks_label_valid(const char *label, char *why, size_t whylen)
{
	size_t n = label ? strlen(label) : 0, i;

	if (n == 0 || n > KS_LABEL_MAX) {
		snprintf(why, whylen, "label must be 1-%d characters (got %zu)", KS_LABEL_MAX, n);
		return false;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@' || c == '+')) {
			snprintf(why, whylen, "label \"%s\": character %zu is not one of "
			         "A-Z a-z 0-9 . _ - @ +", label, i + 1);
			return false;
		}
	}
	return true;
}

static int ks_pw_take_line(const char *buf, size_t len, const char *what, const char *path,
                           char *pw, char *err, size_t errlen)
{
	size_t n = 0;

	while (n < len && buf[n] != '\n' && buf[n] != '\0')
		n++;
	if (n < len && buf[n] == '\0') {
		snprintf(err, errlen, "%s %s contains a NUL byte", what, path);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		snprintf(err, errlen, "%s %s is empty", what, path);
		return -1;
	}
	if (n > KS_PASSWORD_MAX) {
		snprintf(err, errlen, "%s %s: password longer than %d bytes", what, path,
		         KS_PASSWORD_MAX);
		return -1;
	}
	memcpy(pw, buf, n);
	pw[n] = '\0';
	return 0;
}

int ks_pw_from_file(const char *path, char *pw, char *err, size_t errlen)
{
	size_t len;
	char *buf = file_read_secret(path, KS_PWFILE_MAX, &len, NULL, err, errlen);
	int rc;

	if (buf == NULL)
		return -1;
	rc = ks_pw_take_line(buf, len, "password file", path, pw, err, errlen);
	secure_zero(buf, len);
	free(buf);
	return rc;
}

int ks_pw_from_stash(const char *path, char *pw, enum chd_code_id *code, char *err, size_t errlen)
{
	size_t len, declen = 0;
	char *buf;
	uint8_t *dec = NULL;
	const char *b64;
	size_t b64len;
	int rc = -1;
	bool refused;

	*code = CHD_KS_OPEN;
	buf = file_read_secret(path, KS_PWFILE_MAX, &len, &refused, err, errlen);
	if (buf == NULL) {
		if (refused)
			*code = CHD_KS_PERMS;
		return -1;
	}
	if (len < sizeof KS_STASH_MAGIC - 1 ||
	    memcmp(buf, KS_STASH_MAGIC, sizeof KS_STASH_MAGIC - 1) != 0) {
		snprintf(err, errlen, "%s is not a chand stash file", path);
		goto out;
	}
	b64 = buf + sizeof KS_STASH_MAGIC - 1;
	b64len = len - (sizeof KS_STASH_MAGIC - 1);
	while (b64len > 0 && (b64[b64len - 1] == '\n' || b64[b64len - 1] == '\r'))
		b64len--;
	dec = b64_decode(b64, b64len, &declen);
	if (dec == NULL || declen == 0 || declen > KS_PASSWORD_MAX ||
	    memchr(dec, '\0', declen) != NULL) {
		snprintf(err, errlen, "stash %s is damaged", path);
		goto out;
	}
	memcpy(pw, dec, declen);
	pw[declen] = '\0';
	rc = 0;
out:
	if (dec != NULL) {
		secure_zero(dec, declen);
		free(dec);
	}
	secure_zero(buf, len);
	free(buf);
	return rc;
}

/* Written to a temporary file then renamed, so an agent never reads half a
 * stash, and created 0600 under umask 077 so it is never readable by others. */
int ks_stash_write(const char *path, const char *pw, char *err, size_t errlen)
{
	char *b64 = b64_encode((const uint8_t *)pw, strlen(pw));
	char *tmp = NULL;
	mode_t old;
	int fd = -1, rc = -1;
	size_t b64len;

	if (b64 == NULL || asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	b64len = strlen(b64);
	old = umask(077);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	umask(old);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create stash %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) != 0 ||
	    write(fd, KS_STASH_MAGIC, sizeof KS_STASH_MAGIC - 1) != (ssize_t)(sizeof KS_STASH_MAGIC - 1) ||
	    write(fd, b64, b64len) != (ssize_t)b64len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write stash %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "cannot write stash %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename stash to %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0 && tmp != NULL)
		unlink(tmp);
	free(tmp);
	if (b64 != NULL) {
		secure_zero(b64, strlen(b64));
		free(b64);
	}
	return rc;
}

int ks_pw_prompt(const char *prompt, char *pw, char *err, size_t errlen)
{
	struct termios old, quiet;
	struct sigaction sa, oint, oterm, ohup;
	size_t n = 0;
	int fd, rc = -1;
	bool toolong = false;
	char c;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "no keystore password: give --password-file, create a stash "
		         "(keystore stash), or run on a terminal");
		return -1;
	}
	if (tcgetattr(fd, &old) != 0) {
		snprintf(err, errlen, "cannot prompt for the password: %s", strerror(errno));
		close(fd);
		return -1;
	}
	quiet = old;
	ks_tty_saved = old;
	ks_tty_fd = fd;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sa.sa_handler = ks_tty_signal;
	sigaction(SIGINT, &sa, &oint);
	sigaction(SIGTERM, &sa, &oterm);
	sigaction(SIGHUP, &sa, &ohup);
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* Echo goes off before the prompt appears, so nothing typed after
	 * the prompt is echoed or discarded by the flush. */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0 || write(fd, prompt, strlen(prompt)) < 0) {
		snprintf(err, errlen, "cannot prompt for the password: %s", strerror(errno));
		n = 0;
		goto restore;
	}
	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n' || c == '\r')
			break;
		if (n < KS_PASSWORD_MAX)
			pw[n++] = c;
		else
			toolong = true;
	}
	pw[n] = '\0';
	c = 0;
	if (write(fd, "\n", 1) < 0) {
		/* Cosmetic only: the password was read. */
	}
	if (n == 0 && !toolong)
		snprintf(err, errlen, "empty password");
restore:
	tcsetattr(fd, TCSADRAIN, &old);
	ks_tty_fd = -1;
	sigaction(SIGINT, &oint, NULL);
	sigaction(SIGTERM, &oterm, NULL);
	sigaction(SIGHUP, &ohup, NULL);
	close(fd);
	if (toolong)
		snprintf(err, errlen, "password longer than %d bytes", KS_PASSWORD_MAX);
	else if (n > 0)
		rc = 0;
	if (rc != 0)
		secure_zero(pw, KS_PASSWORD_MAX + 1);
	return rc;
}

int ks_pw_derive(const char *pw, const uint8_t *salt, size_t saltlen, unsigned iter,
                 uint8_t out[32])
{
	gnutls_datum_t key = { (unsigned char *)(uintptr_t)pw, (unsigned)strlen(pw) };
	gnutls_datum_t s = { (unsigned char *)(uintptr_t)salt, (unsigned)saltlen };

	return gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &s, iter, out, 32) == 0 ? 0 : -1;
}

bool ks_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}
