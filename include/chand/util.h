/* Small utilities shared by every module: names, time, encodings, secrets. */
#ifndef CHAND_UTIL_H
#define CHAND_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAND_NAME_MAX 48

/* Object names (queues, channels, queue managers): 1-48 characters of
 * A-Z a-z 0-9 . _ / %.  Returns true if valid; otherwise false and a
 * one-line reason in why (if non-NULL). */
bool name_valid(const char *name, char *why, size_t whylen);

/* Glob-style pattern for display/status: a trailing or leading '*' or a
 * bare "*". NULL pattern matches everything. Case-sensitive like names. */
bool name_match(const char *pattern, const char *name);

/* Wall clock in milliseconds since the epoch, and monotonic milliseconds. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/* ISO-8601 UTC "2026-11-22T13:45:00.123Z" into buf (>= 32 bytes). */
void time_format_ms(int64_t ms, char *buf, size_t len);

/* Lower-case hex. hex_encode writes 2*n+1 bytes. hex_decode returns the
 * number of bytes written, or -1 on bad input / too long. */
void hex_encode(const uint8_t *in, size_t n, char *out);
long hex_decode(const char *in, uint8_t *out, size_t outmax);

/* Standard base64 with padding (RFC 4648 section 4), by GnuTLS (b64.c:
 * a program calling these links GnuTLS). b64_encode returns a malloc'd
 * string on one line; b64_decode a malloc'd buffer and its length in
 * *outlen, or NULL for anything but the alphabet with its padding (white
 * space and line breaks included) or out of memory. */
char *b64_encode(const uint8_t *in, size_t n);
uint8_t *b64_decode(const char *in, size_t inlen, size_t *outlen);

/* True if the bytes are valid UTF-8 without NUL bytes. */
bool utf8_valid(const uint8_t *s, size_t n);

/* Zero memory the compiler may not elide. */
void secure_zero(void *p, size_t n);

/* Refuse secret files that others can read: returns 0 if the file exists
 * and has no group/other permission bits, else -1 with a reason. */
int file_check_secret(const char *path, char *err, size_t errlen);

/* Read a whole file (at most maxlen bytes) into a malloc'd, NUL-terminated
 * buffer. Returns NULL with a reason in err. */
char *file_read_all(const char *path, size_t maxlen, size_t *len, char *err, size_t errlen);
/* The same for a secret (password file, stash): opened with O_NOFOLLOW and
 * refused, with the reason, when the open file is not a regular file owned
 * by this user (or root) with no group/other permission bits.  *refused
 * (may be NULL) is set when the file exists but is not acceptable as a
 * secret (symbolic link, mode, owner), as against missing or unreadable. */
char *file_read_secret(const char *path, size_t maxlen, size_t *len, bool *refused, char *err,
                       size_t errlen);

/* Parse a decimal integer in [min,max]; false if not a number or out of range. */
bool parse_long(const char *s, long min, long max, long *out);

/* Bounded copy that always terminates; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t dstlen);

#endif
