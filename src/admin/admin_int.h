/* Internals shared by the files of src/admin/ (not a contract). */
#ifndef CHAND_ADMIN_INT_H
#define CHAND_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Above this many buffered bytes a queued frame is written out at once,
 * so a long listing streams instead of accumulating; an attachment this
 * large is written straight from the caller's buffer. */
#define ADMIN_WBUF_HIGH (256 * 1024)
/* Read-ahead: small frames cost one syscall for many. */
#define ADMIN_READ_AHEAD 65536

/* Writes the compact JSON text of obj at (*buf + off), growing *buf and
 * *cap as needed; *n = its length. 0, or -1 (allocation failure, dump
 * failure, or longer than ADMIN_JSON_MAX). Shared by the frame encoder
 * and the buffered writer, which builds frames in place. */
int admin_dump_at(const json_t *obj, uint8_t **buf, size_t *cap, size_t off, size_t *n);

#endif
