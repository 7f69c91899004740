/* bench_tlsstream: a bare TLS stream between two processes on loopback,
 * the yardstick for chand's 64 KiB nonpersistent channel rate
 * (bench/bench_channel.sh, issue 11).
 *
 *   bench_tlsstream [-m MEGABYTES] [-b WRITE_BYTES] [-p PRIORITY] PKI_DIR
 *
 * PKI_DIR is made by tests/pki/mkpki.sh.  The process forks: the child
 * accepts on 127.0.0.1 as QM2 (qm2-chain.pem, client certificate
 * required), the parent connects as QM1 (qm1-chain.pem) and both verify
 * the peer against ca-bundle.pem, as a mutual-TLS channel does.  The
 * default priority is the one chand uses for ANY_TLS13_OR_HIGHER (TLS 1.3,
 * AES-256-GCM preferred).  After the handshake the parent writes
 * MEGABYTES MiB in WRITE_BYTES (64 KiB) gnutls_record_send calls; the child
 * reads them all and answers one byte.  The clock runs from the first write
 * to that byte, so the handshake is not in it.  Only GnuTLS and the kernel
 * are measured: no chand code.
 *
 * Output: one "RESULT key=value ..." line on stdout; exit status 1 on any
 * failure (both processes stop after 300 s at the latest). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define TIME_LIMIT 300        /* seconds, for each process */
#define PRIO_TLS13 "NORMAL:-VERS-ALL:+VERS-TLS1.3:-MAC-ALL:+AEAD:-CIPHER-ALL:" \
                   "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305"

static const char *who = "bench_tlsstream";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Credentials of one end: its certificate chain and key, and the CA bundle
 * that verifies the other end. */
static gnutls_certificate_credentials_t creds(const char *pki, const char *name)
{
	gnutls_certificate_credentials_t c;
	char cert[4096], key[4096], ca[4096];
	int rc;

	snprintf(cert, sizeof cert, "%s/%s-chain.pem", pki, name);
	snprintf(key, sizeof key, "%s/%s.key", pki, name);
	snprintf(ca, sizeof ca, "%s/ca-bundle.pem", pki);
	if ((rc = gnutls_certificate_allocate_credentials(&c)) < 0)
		die("gnutls: %s", gnutls_strerror(rc));
	if ((rc = gnutls_certificate_set_x509_trust_file(c, ca, GNUTLS_X509_FMT_PEM)) <= 0)
		die("%s: %s", ca, rc < 0 ? gnutls_strerror(rc) : "no certificate");
	if ((rc = gnutls_certificate_set_x509_key_file(c, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
		die("%s: %s", cert, gnutls_strerror(rc));
	return c;
}

static gnutls_session_t session(int fd, unsigned flags, gnutls_certificate_credentials_t c,
                                const char *prio)
{
	gnutls_session_t s;
	const char *where = NULL;
	int rc;

	if ((rc = gnutls_init(&s, flags)) < 0)
		die("gnutls_init: %s", gnutls_strerror(rc));
	if ((rc = gnutls_priority_set_direct(s, prio, &where)) < 0)
		die("priority \"%s\" at \"%s\": %s", prio, where ? where : "?", gnutls_strerror(rc));
	if ((rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c)) < 0)
		die("gnutls_credentials_set: %s", gnutls_strerror(rc));
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 30000);
	return s;
}

static void handshake(gnutls_session_t s)
{
	int rc;

	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		die("handshake: %s", gnutls_strerror(rc));
}

/* The child: accepts one connection, reads TOTAL bytes, answers one byte. */
static int receiver(int lfd, const char *pki, const char *prio, uint64_t total)
{
	gnutls_certificate_credentials_t c = creds(pki, "qm2");
	gnutls_session_t s;
	static char buf[64 * 1024];
	uint64_t got = 0;
	char srv_prio[1024];
	int fd;

	who = "bench_tlsstream receiver";
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept: %s", strerror(errno));
	close(lfd);
	snprintf(srv_prio, sizeof srv_prio, "%s:%%SERVER_PRECEDENCE", prio);
	s = session(fd, GNUTLS_SERVER, c, srv_prio);
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(s, NULL, 0);
	handshake(s);
	while (got < total) {
		ssize_t n = gnutls_record_recv(s, buf, sizeof buf);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			die("recv after %llu of %llu bytes: %s", (unsigned long long)got,
			    (unsigned long long)total, n == 0 ? "end of stream" : gnutls_strerror((int)n));
		got += (uint64_t)n;
	}
	for (;;) {
		ssize_t n = gnutls_record_send(s, "k", 1);

		if (n == 1)
			break;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			die("send: %s", gnutls_strerror((int)n));
	}
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(fd);
	gnutls_certificate_free_credentials(c);
	return 0;
}

/* The parent: connects, writes TOTAL bytes in WR-byte calls, waits for the
 * answer; prints the RESULT line. */
static int sender(const struct sockaddr_in *addr, const char *pki, const char *prio,
                  uint64_t total, size_t wr)
{
	gnutls_certificate_credentials_t c = creds(pki, "qm1");
	gnutls_session_t s;
	char *buf = malloc(wr), k;
	const char *ver, *cipher;
	uint64_t sent = 0;
	double t0, el;
	int fd;

	if (!buf)
		die("out of memory");
	memset(buf, 'x', wr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0)
		die("connect: %s", strerror(errno));
	s = session(fd, GNUTLS_CLIENT, c, prio);
	gnutls_session_set_verify_cert(s, "127.0.0.1", 0);
	handshake(s);
	ver = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
	cipher = gnutls_cipher_get_name(gnutls_cipher_get(s));
	t0 = now_s();
	while (sent < total) {
		size_t off = 0, len = total - sent < wr ? (size_t)(total - sent) : wr;

		/* gnutls_record_send takes at most one record's worth: finish
		 * the write as an application's send-all would. */
		while (off < len) {
			ssize_t n = gnutls_record_send(s, buf + off, len - off);

			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0)
				die("send: %s", gnutls_strerror((int)n));
			off += (size_t)n;
		}
		sent += len;
	}
	for (;;) {
		ssize_t n = gnutls_record_recv(s, &k, 1);

		if (n == 1)
			break;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			die("waiting for the receiver: %s", n == 0 ? "end of stream" : gnutls_strerror((int)n));
	}
	el = now_s() - t0;
	printf("RESULT bytes=%llu write=%zu seconds=%.3f mb_per_s=%.1f tls=%s cipher=%s\n",
	       (unsigned long long)total, wr, el, (double)total / 1e6 / el, ver ? ver : "?",
	       cipher ? cipher : "?");
	fflush(stdout);
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(fd);
	gnutls_certificate_free_credentials(c);
	free(buf);
	return 0;
}

static long num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1)
		die("%s: not a positive number: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof addr;
	const char *prio = PRIO_TLS13;
	long mb = 1024, wr = 64 * 1024;
	int o, lfd, status, rc;
	pid_t child;

	while ((o = getopt(argc, argv, "m:b:p:")) != -1) {
		switch (o) {
		case 'm': mb = num(optarg, "-m"); break;
		case 'b': wr = num(optarg, "-b"); break;
		case 'p': prio = optarg; break;
		default:
			fprintf(stderr, "usage: bench_tlsstream [-m MEGABYTES] [-b WRITE_BYTES] "
			                "[-p PRIORITY] PKI_DIR\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: bench_tlsstream [-m MEGABYTES] [-b WRITE_BYTES] "
		                "[-p PRIORITY] PKI_DIR\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
		die("listen on 127.0.0.1: %s", strerror(errno));
	/* Before the fork, so neither process initialises GnuTLS twice. */
	if ((rc = gnutls_global_init()) < 0)
		die("gnutls: %s", gnutls_strerror(rc));
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	alarm(TIME_LIMIT);
	if (child == 0) {
		/* A sender that dies must not leave the receiver in accept(). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(1);
		_exit(receiver(lfd, argv[optind], prio, (uint64_t)mb << 20));
	}
	close(lfd);
	rc = sender(&addr, argv[optind], prio, (uint64_t)mb << 20, (size_t)wr);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("the receiver failed");
	gnutls_global_deinit();
	return rc;
}
