/* MQTT identity and access (doc/TELEMETRY.md): the files Mosquitto
 * operators already have.
 *
 *  - a mosquitto_passwd password file ("user:hash" lines, $7$ PBKDF2-SHA512
 *    and $6$ salted SHA-512 hashes), given with --password-file;
 *  - a mosquitto acl_file ("user", "topic", "pattern" lines), given with
 *    --acl-file.
 *
 * The *_parse functions are pure (no I/O, no logging, no global state) so
 * they can be fuzzed; the *_load functions open the file securely and call
 * them.  Errors are one line: "FILE:LINE: reason" for content, "FILE: reason"
 * for the file itself.  Both objects are immutable once built, so several
 * event-loop threads may check against one concurrently; `refresh security`
 * builds new ones and swaps them in (keeping the old ones on error). */
#ifndef CHAND_MQTT_AUTH_H
#define CHAND_MQTT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest password or ACL file accepted (bytes). */
#define MQTT_AUTH_FILE_MAX (16u * 1024u * 1024u)

/* ---- password file ---- */

struct mqtt_passwd;

/* Parses password-file text of len bytes (need not be NUL-terminated; an
 * embedded NUL is an error).  name is used in errors ("FILE:LINE: reason").
 * Lines are "user:hash"; LF or CRLF line ends; blank lines and lines whose
 * first non-blank character is '#' are ignored (as mosquitto).  Hashes:
 *   "$7$ITER$SALT$HASH"  PBKDF2-HMAC-SHA512, ITER iterations, base64 salt
 *                        and 64-byte hash (mosquitto 2.x default);
 *   "$6$SALT$HASH"       SHA512(password || salt), base64 salt and hash
 *                        (mosquitto 1.x).
 * Salts are 12 or 64 bytes and ITER 1..1000000 (what mosquitto accepts,
 * bounded so a CONNECT cannot cost seconds); blanks around the user name
 * and the hash are trimmed (as mosquitto).  Anything else (no ':', empty user, unknown or malformed hash, duplicate
 * user) is an error naming file and line.  An empty file parses to an empty
 * set (no one can log in).  Returns 0 and *out, or -1 with err. */
int mqtt_passwd_parse(const char *text, size_t len, const char *name,
                      struct mqtt_passwd **out, char *err, size_t errlen);

/* Reads the file and parses it.  The file is opened with O_NOFOLLOW and
 * O_CLOEXEC (a symbolic link is refused), checked on the descriptor with
 * fstat: it must be a regular file, at most MQTT_AUTH_FILE_MAX bytes, and
 * neither readable nor writable by others (mode & 007), else an error
 * naming the file and the fix ("chmod 0600 FILE" or 0640).  The text read is
 * zeroed before it is freed.  Returns 0 and *out, or -1 with a one-line err. */
int mqtt_passwd_load(const char *path, struct mqtt_passwd **out, char *err, size_t errlen);

/* True if user is in the file and password (pwlen bytes, any content)
 * matches its hash.  The derived hash is compared in constant time.  A $7$
 * check costs ITER rounds of PBKDF2 (mosquitto's default 101 is cheap;
 * callers should still run it off the event loop if files use large counts).
 * An unknown user costs a 101-round PBKDF2 too, so timing does not reveal
 * which user names exist. */
bool mqtt_passwd_check(const struct mqtt_passwd *pw, const char *user,
                       const uint8_t *password, size_t pwlen);
bool mqtt_passwd_has_user(const struct mqtt_passwd *pw, const char *user);
size_t mqtt_passwd_count(const struct mqtt_passwd *pw);
/* Zeroes salts and hashes before freeing.  NULL is a no-op. */
void mqtt_passwd_free(struct mqtt_passwd *pw);

/* ---- ACL file ---- */

struct mqtt_acl;

/* What a client wants to do.  READ: receive a publication on a topic name;
 * WRITE: publish to a topic name; SUBSCRIBE: subscribe with a filter (the
 * filter must be covered by an entry granting read). */
enum mqtt_acl_access {
	MQTT_ACL_READ = 1,
	MQTT_ACL_WRITE = 2,
	MQTT_ACL_SUBSCRIBE = 4,
};

/* Parses mosquitto acl_file text:
 *   user NAME                              following lines apply to NAME
 *   topic [read|write|readwrite|deny] TOPIC      (no access word = readwrite)
 *   pattern [read|write|readwrite|deny] TOPIC    every client; %c = client
 *                                                id, %u = user name
 * Lines before the first "user" line apply to anonymous clients (no user
 * name).  '#' comment lines and blank lines are ignored; LF or CRLF.
 * Errors "FILE:LINE: reason": unknown keyword, bad access word, missing
 * topic, invalid topic filter (with its 1-based position).  Returns 0 and
 * *out, or -1 with err.  Pure. */
int mqtt_acl_parse(const char *text, size_t len, const char *name, struct mqtt_acl **out,
                   char *err, size_t errlen);

/* Same secure open as mqtt_passwd_load (O_NOFOLLOW, regular file, bounded
 * size), but an ACL file may be world-readable (it is not secret); it is
 * refused if others may write it. */
int mqtt_acl_load(const char *path, struct mqtt_acl **out, char *err, size_t errlen);

/* May this client (user NULL = anonymous; client_id may be NULL) do access
 * on topic (for MQTT_ACL_SUBSCRIBE: the subscription filter)?
 *
 * The entries that apply are the client's own (the "user NAME" blocks for
 * its user name, merged, or the anonymous lines) plus every pattern after
 * %c/%u substitution.  %c and %u are substituted only as a whole topic
 * level ("devices/%c/status"; "dev_%c" is literal), as mosquitto does.  A
 * pattern using %u (%c) does not apply to a client without a user name
 * (client id) or with an empty one, as in mosquitto.  A name containing
 * '+', '#' or '/' (or starting with '$' where it would be the first
 * level) would widen or shift the filter: a pattern using it grants
 * nothing, and if it is a deny pattern it refuses everything to that
 * client (we cannot tell what it was meant to deny).
 *
 *  - READ (deliver a publication on topic) and WRITE (accept a
 *    publication to topic): refused if any applicable deny entry matches
 *    topic; granted if an entry with read (resp. write) access matches.
 *  - SUBSCRIBE (filter): refused if a deny entry covers the whole filter;
 *    granted if an entry with read access covers it (topic_filter_covers:
 *    "spBv1.0/#" covers "spBv1.0/+/NDATA/#" but not "#").  A granted
 *    filter may still overlap deny entries ("a/#" under "topic read a/#"
 *    and "topic deny a/secret"), so the broker must also check READ for
 *    each publication it delivers, as mosquitto does.
 *  - no applicable entry grants: refused.
 *
 * Differences from mosquitto 2.0's acl_file, all in the refusing
 * direction: a deny entry wins wherever it is (mosquitto lets a user
 * entry's grant beat a pattern's deny); a SUBSCRIBE is checked (mosquitto
 * 2.0 accepts every subscription and filters only at delivery).
 * Invalid topic / filter or NULL acl: refused.  Thread-safe (reads only). */
bool mqtt_acl_check(const struct mqtt_acl *acl, const char *user, const char *client_id,
                    const char *topic, enum mqtt_acl_access access);
/* Number of entries (topic and pattern lines). */
size_t mqtt_acl_count(const struct mqtt_acl *acl);
void mqtt_acl_free(struct mqtt_acl *acl);

/* ---- internal: shared by the two loaders (mqtt_passwd.c) ---- */

/* "NAME:LINE: reason" into err (both parsers). */
void mqtt_auth_lerr(char *err, size_t errlen, const char *name, unsigned line, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
/* Blanks between words of both file formats (not newline). */
bool mqtt_auth_blank(char c);

/* Opens path with O_NOFOLLOW|O_CLOEXEC|O_NONBLOCK, checks the descriptor
 * (regular file, at most MQTT_AUTH_FILE_MAX bytes, no mode bits in
 * refuse_mode, e.g. 007 or 002) and reads it whole into a malloc'd,
 * NUL-terminated buffer (*len bytes, NUL not counted).  secret: the file
 * holds secrets (the mode error then says chmod 0600/0640, and partial
 * reads are zeroed).  NULL with a one-line err "PATH: reason". */
char *mqtt_auth_read_file(const char *path, unsigned refuse_mode, bool secret, size_t *len,
                          char *err, size_t errlen);

#endif
