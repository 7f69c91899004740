/* Base64 (util.h, done by GnuTLS in b64.c) and listening sockets
 * (netlisten.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chand/netlisten.h"
#include "chand/util.h"

/* RFC 4648 section 10. */
static const struct {
	const char *plain, *b64;
} rfc4648[] = {
	{ "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

Test(b64, rfc4648_vectors_both_ways, .timeout = 10)
{
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *p = rfc4648[i].plain, *e = rfc4648[i].b64;
		char *enc = b64_encode((const uint8_t *)p, strlen(p));
		cr_assert_not_null(enc, "encode %s", p);
		cr_expect_str_eq(enc, e);
		free(enc);
		size_t n = 99;
		uint8_t *dec = b64_decode(e, strlen(e), &n);
		cr_assert_not_null(dec, "decode %s", e);
		cr_expect_eq(n, strlen(p), "%s", e);
		cr_expect_eq(memcmp(dec, p, n), 0, "%s", e);
		free(dec);
	}
}

/* Long input: one line, no PEM line breaks; every byte value survives. */
Test(b64, long_binary_round_trip_on_one_line, .timeout = 10)
{
	uint8_t in[1000];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	char *enc = b64_encode(in, sizeof(in));
	cr_assert_not_null(enc);
	cr_expect_eq(strlen(enc), 4 * ((sizeof(in) + 2) / 3));
	cr_expect_null(strpbrk(enc, "\r\n -"), "%s", enc);
	size_t n = 0;
	uint8_t *dec = b64_decode(enc, strlen(enc), &n);
	cr_assert_not_null(dec);
	cr_expect_eq(n, sizeof(in));
	cr_expect_eq(memcmp(dec, in, sizeof(in)), 0);
	free(dec);
	free(enc);
	/* The 62nd and 63rd characters are '+' and '/', not the URL ones. */
	const uint8_t hi[] = { 0xfb, 0xff, 0xbf };
	enc = b64_encode(hi, sizeof(hi));
	cr_expect_str_eq(enc, "+/+/");
	free(enc);
}

Test(b64, invalid_input_refused, .timeout = 10)
{
	static const char *const bad[] = {
		"Zg",           /* no padding */
		"Zg=",          /* short padding */
		"Z===",         /* three pad characters */
		"====",
		"Zg==Zg==",     /* padding in the middle */
		"Zm=v",
		"Zm9v YmFy   ", /* white space, though a multiple of 4 */
		"Zm9v\r\nYmFy\r\n",
		"Zm9-YmF_",     /* the URL-safe alphabet */
		"Zm9v!A==",
		"Zm9vY",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 0;
		uint8_t *d = b64_decode(bad[i], strlen(bad[i]), &n);
		cr_expect_null(d, "\"%s\" accepted", bad[i]);
		free(d);
	}
	/* A NUL inside the given length. */
	size_t n = 0;
	uint8_t *d = b64_decode("Zm9\0Zm9v", 8, &n);
	cr_expect_null(d);
	free(d);
	/* Only the given length is read. */
	d = b64_decode("Zm9vYmFy!!!!", 8, &n);
	cr_assert_not_null(d);
	cr_expect_eq(n, 6);
	cr_expect_eq(memcmp(d, "foobar", 6), 0);
	free(d);
}

/* ---- netlisten ---- */

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A port that was free a moment ago (bound to 0, then closed). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int port = bound_port(fd);
	close(fd);
	return port;
}

Test(netlisten, binds_and_listens_non_blocking, .timeout = 10)
{
	char err[256] = "";
	int port = free_port();
	int fd = netlisten_open("127.0.0.1", port, 4, err, sizeof(err));

	cr_assert_geq(fd, 0, "%s", err);
	cr_expect_eq(bound_port(fd), port);
	cr_expect(fcntl(fd, F_GETFL) & O_NONBLOCK);
	cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Listening: a client connects. */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_expect_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	close(c);

	/* The port taken: one line naming it. */
	char want[128];
	int fd2 = netlisten_open("127.0.0.1", port, 4, err, sizeof(err));
	cr_expect_eq(fd2, -1);
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: %s", port, strerror(EADDRINUSE));
	cr_expect_str_eq(err, want);
	close(fd);
}

Test(netlisten, ipv6_and_bad_addresses, .timeout = 10)
{
	char err[256] = "";
	int port = free_port();
	int fd = netlisten_open("::1", port, 4, err, sizeof(err));

	if (fd < 0 && strstr(err, "Cannot assign") != NULL)
		cr_skip_test("no IPv6 loopback here: %s", err);
	cr_assert_geq(fd, 0, "%s", err);
	int v6only = 0;
	socklen_t len = sizeof(v6only);
	cr_expect_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
	cr_expect_eq(v6only, 1);
	close(fd);

	cr_expect_eq(netlisten_open("localhost", 9414, 4, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "cannot listen on localhost:9414: not a numeric IPv4 or IPv6 address");
	cr_expect_eq(netlisten_open("::zz", 9414, 4, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "cannot listen on [::zz]:9414: not a numeric IPv4 or IPv6 address");
	cr_expect_eq(netlisten_open("127.0.0.1", 0, 4, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "cannot listen on 127.0.0.1:0: port out of range");
	cr_expect_eq(netlisten_open("127.0.0.1", 65536, 4, err, sizeof(err)), -1);

	char name[NETLISTEN_NAME_MAX];
	cr_expect_str_eq(netlisten_name("::1", 9414, name, sizeof(name)), "[::1]:9414");
	cr_expect_str_eq(netlisten_name("10.0.0.1", 1, name, sizeof(name)), "10.0.0.1:1");
}
