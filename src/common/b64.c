/* Standard base64 with padding (util.h), done by GnuTLS: the raw forms of
 * gnutls_base64_encode2/decode2 (no PEM header, no line breaks when
 * encoding).  A file of its own so that only the programs that use
 * base64 link GnuTLS.
 *
 * GnuTLS's decoder skips line breaks and white space; the callers parse
 * password files, keystore rows and message JSON, where base64 is one
 * token, so anything but the alphabet, with at most two '=' at the end
 * of a length that is a multiple of 4, is refused here first. */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>

#include "chand/util.h"

char *b64_encode(const uint8_t *in, size_t n)
{
	gnutls_datum_t d = { .data = (unsigned char *)in, .size = (unsigned)n };
	gnutls_datum_t r = { NULL, 0 };
	char *out;

	if (n == 0)
		return calloc(1, 1);
	if (n > UINT_MAX / 2)
		return NULL;
	if (gnutls_base64_encode2(&d, &r) != 0)
		return NULL;
	/* Copied: callers free() what they get, and GnuTLS's allocator is
	 * its own business. */
	out = malloc((size_t)r.size + 1);
	if (out != NULL) {
		memcpy(out, r.data, r.size);
		out[r.size] = '\0';
	}
	gnutls_free(r.data);
	return out;
}

static bool b64_alphabet(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* The shape of standard padded base64: alphabet only, a multiple of 4,
 * '=' only as the last one or two characters. */
static bool b64_well_formed(const char *in, size_t inlen)
{
	size_t pad = 0;

	if (inlen % 4 != 0)
		return false;
	while (pad < 2 && pad < inlen && in[inlen - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < inlen - pad; i++)
		if (!b64_alphabet((unsigned char)in[i]))
			return false;
	return true;
}

uint8_t *b64_decode(const char *in, size_t inlen, size_t *outlen)
{
	gnutls_datum_t d = { .data = (unsigned char *)in, .size = (unsigned)inlen };
	gnutls_datum_t r = { NULL, 0 };
	uint8_t *out;

	if (!b64_well_formed(in, inlen) || inlen > UINT_MAX)
		return NULL;
	if (inlen == 0) {
		*outlen = 0;
		return calloc(1, 1);
	}
	if (gnutls_base64_decode2(&d, &r) != 0)
		return NULL;
	out = malloc((size_t)r.size + 1);
	if (out != NULL) {
		memcpy(out, r.data, r.size);
		*outlen = r.size;
	}
	/* Decoded data may be a secret (keystore password rows). */
	secure_zero(r.data, r.size);
	gnutls_free(r.data);
	return out;
}
