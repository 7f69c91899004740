/* SNI carries the channel name (and the initiator's CipherSpec id) from the
 * initiator to the responder inside the ClientHello, so the responder can
 * pick the channel's certificate, CipherSpec and SSLCAUTH before it answers.
 *
 * Channel names are case-sensitive and may hold '/', '%', '_' and '.',
 * none of which survive as DNS labels (DNS is case-insensitive, and '/'
 * and '%' are not hostname characters).  So the name's bytes are hex
 * encoded (lower case), cut into labels of at most 62 characters, followed
 * by an optional "s<id>" label for the initiator's CipherSpec and the
 * fixed suffix "chl.chand":
 *
 *     TO.QM2            -> 544f2e514d32.s3.chl.chand
 *     48-char name      -> <62 hex>.<34 hex>.s3.chl.chand   (112 bytes)
 *
 * 's' is not a hex digit, so the spec label cannot be mistaken for part of
 * the name.  Decoding accepts upper-case hex (resolvers and middleboxes may
 * change the case of a DNS name) and any split into labels, then checks
 * the decoded name with name_valid(). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chand/tls.h"
#include "chand/util.h"

#define SNI_SUFFIX ".chl.chand"
#define SNI_LABEL_HEX 62
#define SNI_LABEL_MAX 63

static int sni_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int tls_sni_encode_spec(const char *channel, int spec_id, char *out, size_t outlen)
{
	static const char hexd[] = "0123456789abcdef";
	char buf[TLS_SNI_MAX + 1];
	size_t n, i, o = 0;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (channel == NULL || out == NULL || !name_valid(channel, NULL, 0) ||
	    spec_id < -1 || spec_id > TLS_SNI_SPEC_MAX)
		return -1;
	n = strlen(channel);
	for (i = 0; i < n; i++) {
		if (i > 0 && (2 * i) % SNI_LABEL_HEX == 0)
			buf[o++] = '.';
		buf[o++] = hexd[(unsigned char)channel[i] >> 4];
		buf[o++] = hexd[(unsigned char)channel[i] & 0x0f];
	}
	buf[o] = '\0';
	if (spec_id >= 0) {
		char lab[16];
		int k = snprintf(lab, sizeof lab, ".s%d", spec_id);
		if (k < 0 || (size_t)k >= sizeof lab)
			return -1;
		memcpy(buf + o, lab, (size_t)k + 1);
		o += (size_t)k;
	}
	memcpy(buf + o, SNI_SUFFIX, sizeof SNI_SUFFIX);
	o += sizeof SNI_SUFFIX - 1;
	if (o + 1 > outlen)
		return -1;
	memcpy(out, buf, o + 1);
	return 0;
}

void tls_sni_encode(const char *channel, char *out, size_t outlen)
{
	(void)tls_sni_encode_spec(channel, -1, out, outlen);
}

/* Parses "s<decimal>" (no sign, no leading zero unless "0"). */
static int sni_parse_spec(const char *lab, size_t len, int *id)
{
	long v = 0;
	size_t i;

	if (len < 2 || len > 6 || (lab[0] != 's' && lab[0] != 'S'))
		return -1;
	if (lab[1] == '0' && len > 2)
		return -1;
	for (i = 1; i < len; i++) {
		if (lab[i] < '0' || lab[i] > '9')
			return -1;
		v = v * 10 + (lab[i] - '0');
	}
	if (v > TLS_SNI_SPEC_MAX)
		return -1;
	*id = (int)v;
	return 0;
}

int tls_sni_decode_spec(const char *sni, char *channel, size_t chlen, int *spec_id)
{
	char name[CHAND_NAME_MAX + 1];
	size_t len, sfx = sizeof SNI_SUFFIX - 1, pos = 0, nhex = 0;
	int id = -1, half = -1;
	bool seen_spec = false;

	if (channel != NULL && chlen > 0)
		channel[0] = '\0';
	if (spec_id != NULL)
		*spec_id = -1;
	if (sni == NULL || channel == NULL)
		return -1;
	len = strlen(sni);
	if (len > TLS_SNI_MAX || len <= sfx || strcasecmp(sni + len - sfx, SNI_SUFFIX) != 0)
		return -1;
	len -= sfx;

	/* Walk the labels before the suffix: hex labels, then at most one
	 * spec label, which must be the last. */
	while (pos < len) {
		const char *lab = sni + pos;
		const char *dot = memchr(lab, '.', len - pos);
		size_t llen = dot != NULL ? (size_t)(dot - lab) : len - pos;
		size_t i;

		if (llen == 0 || llen > SNI_LABEL_MAX || seen_spec)
			return -1;
		if (sni_hexval(lab[0]) < 0) {
			if (sni_parse_spec(lab, llen, &id) != 0)
				return -1;
			seen_spec = true;
		} else {
			for (i = 0; i < llen; i++) {
				int v = sni_hexval(lab[i]);
				if (v < 0)
					return -1;
				if (half < 0) {
					half = v;
				} else {
					if (nhex >= CHAND_NAME_MAX)
						return -1;
					name[nhex++] = (char)(half << 4 | v);
					half = -1;
				}
			}
		}
		pos += llen + (dot != NULL ? 1 : 0);
		if (dot != NULL && pos == len)
			return -1; /* empty label before the suffix */
	}
	if (half >= 0 || nhex == 0)
		return -1;
	name[nhex] = '\0';
	if (memchr(name, '\0', nhex) != NULL || !name_valid(name, NULL, 0))
		return -1;
	if (nhex + 1 > chlen)
		return -1;
	memcpy(channel, name, nhex + 1);
	if (spec_id != NULL)
		*spec_id = id;
	return 0;
}

int tls_sni_decode(const char *sni, char *channel, size_t chlen)
{
	return tls_sni_decode_spec(sni, channel, chlen, NULL);
}
