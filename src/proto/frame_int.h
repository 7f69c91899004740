/* Internals shared by the frame codec's files: big-endian access, field
 * validators and the per-type header rules. */
#ifndef CHAND_FRAME_INT_H
#define CHAND_FRAME_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chand/frame.h"

/* Payload size bounds and allowed header flags of one frame type. */
struct frame_rule {
	uint32_t min_len, max_len;
	uint16_t flags;
	bool stable;     /* layout fixed forever: always header version 1 */
};
/* NULL for an unknown type. */
const struct frame_rule *frame_rule_of(int type);

/* Fixed payload sizes. */
#define FRAME_RESYNC_LEN 28
#define FRAME_RESYNC_ACK_LEN 12
#define FRAME_BATCH_LEN 16
#define FRAME_STOP_LEN 1

void frame_seterr(struct frame_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Name rules of name_valid() over n bytes (no NUL inside, 1..48).
 * Writes the reason to why on failure. */
bool frame_name_ok(const uint8_t *s, size_t n, char *why, size_t whylen);
/* SSLCIPH names: A-Z a-z 0-9 _, at most FRAME_CIPHER_MAX. */
bool frame_cipher_ok(const uint8_t *s, size_t n);
/* FORMAT: printable ASCII (0x20-0x7e), at most FRAME_FORMAT_MAX. */
bool frame_format_ok(const uint8_t *s, size_t n);
/* "CHD" and four digits. */
bool frame_code_ok(const uint8_t *s, size_t n);
/* One line of UTF-8: valid, no NUL, no C0 controls and no DEL. */
bool frame_text_ok(const uint8_t *s, size_t n);

static inline void be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static inline uint16_t be16_get(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

#endif
