/* bench_tls: what the TLS layer costs (doc/TLS.md, "Measured").
 *
 *   bench_tls [-n HANDSHAKES] [-c CLIENT_THREADS] [-m MEGABYTES] [PKI_DIR]
 *
 * Handshakes: one responder thread on 127.0.0.1 accepts connections one
 * after the other and runs the full responder path (peek, SNI lookup,
 * mutual authentication with SSLCAUTH(REQUIRED) and an SSLPEER filter);
 * CLIENT_THREADS initiators connect in a loop. Printed: handshakes per
 * second of wall time, and the responder thread's CPU time per handshake,
 * from which the rate one responder core sustains follows.
 *
 * Bulk: one connection per CipherSpec, the initiator sends MEGABYTES in
 * 64 KiB tls_send_all calls, the responder reads them and answers one
 * byte; MB/s over that time.
 *
 * Without PKI_DIR a PKI is made with tests/pki/mkpki.sh in a temp dir. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chand/tls.h"
#include "chand/util.h"
#include "../tests/unit/tls_pem.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

#define CHUNK (64 * 1024)

struct bench {
	const char *pki;
	struct tls_ctx *cctx, *sctx;
	const char *spec;
	int lfd;
	struct sockaddr_in addr;
	int total;              /* connections the responder serves */
	int nclients;
	size_t bulk_bytes;      /* 0: handshake mode */
	/* results */
	int failures;
	int64_t srv_cpu_ns;
	pthread_mutex_t lock;
	int next;               /* handshakes handed out to clients */
};

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct tls_ctx *bench_ctx(const char *pki, const char *label, const char *cert,
                                 const char *key)
{
	struct ks_material *m = tp_material_new();
	struct tls_ctx *ctx = NULL;
	struct tls_error err;

	if (m == NULL || tp_add_personal(m, pki, label, cert, key, "inter.pem") != 0 ||
	    tp_add_trusted(m, pki, "root.pem") != 0) {
		fprintf(stderr, "bench_tls: cannot read %s/%s\n", pki, cert);
		exit(1);
	}
	if (tls_ctx_from_material(&ctx, m, &err) != 0) {
		fprintf(stderr, "bench_tls: %s\n", err.text);
		exit(1);
	}
	tp_material_free(m);
	return ctx;
}

static int bench_lookup(void *arg, const char *channel, struct tls_params *out)
{
	struct bench *b = arg;

	if (strcmp(channel, "QM1.TO.QM2") != 0)
		return -1;
	memset(out, 0, sizeof *out);
	str_copy(out->channel, channel, sizeof out->channel);
	str_copy(out->sslciph, b->spec, sizeof out->sslciph);
	str_copy(out->label, "qm2", sizeof out->label);
	out->sslcauth = SSLCAUTH_REQUIRED;
	str_copy(out->sslpeer, "CN=QM1, O=Acme", sizeof out->sslpeer);
	return 0;
}

static void *bench_server(void *arg)
{
	struct bench *b = arg;
	int64_t cpu0 = thread_cpu_ns();
	uint8_t *buf = malloc(CHUNK);

	for (int i = 0; i < b->total; i++) {
		struct tls_conn *c;
		struct tls_error err;
		int fd = accept(b->lfd, NULL, NULL);

		if (fd < 0) {
			perror("accept");
			b->failures++;
			continue;
		}
		if (tls_server_open(&c, fd, b->sctx, bench_lookup, b, 10000, -1, &err) != 0) {
			fprintf(stderr, "responder: %s %s\n", code_str(err.code), err.text);
			b->failures++;
			continue;
		}
		if (b->bulk_bytes > 0) {
			size_t got = 0;
			while (got < b->bulk_bytes) {
				ssize_t n = tls_recv(c, buf, CHUNK, 30000, &err);
				if (n <= 0) {
					fprintf(stderr, "responder recv: %s\n", err.text);
					b->failures++;
					break;
				}
				got += (size_t)n;
			}
		}
		/* one byte tells the initiator we are done (and, under TLS 1.3,
		 * that its certificate was accepted) */
		if (tls_send_all(c, "k", 1, 10000, &err) != 0)
			b->failures++;
		tls_close(c);
	}
	b->srv_cpu_ns = thread_cpu_ns() - cpu0;
	free(buf);
	return NULL;
}

static int bench_connect(struct bench *b)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&b->addr, sizeof b->addr) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void bench_one(struct bench *b, uint8_t *buf)
{
	struct tls_params p;
	struct tls_conn *c;
	struct tls_error err;
	char k;
	int fd = bench_connect(b);

	if (fd < 0) {
		perror("connect");
		b->failures++;
		return;
	}
	memset(&p, 0, sizeof p);
	str_copy(p.channel, "QM1.TO.QM2", sizeof p.channel);
	str_copy(p.sslciph, b->spec, sizeof p.sslciph);
	str_copy(p.label, "qm1", sizeof p.label);
	str_copy(p.sslpeer, "CN=QM2, O=Acme", sizeof p.sslpeer);
	if (tls_client_open(&c, fd, b->cctx, &p, 10000, -1, &err) != 0) {
		fprintf(stderr, "initiator: %s %s\n", code_str(err.code), err.text);
		b->failures++;
		return;
	}
	for (size_t sent = 0; sent < b->bulk_bytes; sent += CHUNK) {
		if (tls_send_all(c, buf, CHUNK, 30000, &err) != 0) {
			fprintf(stderr, "initiator send: %s\n", err.text);
			b->failures++;
			break;
		}
	}
	if (tls_recv(c, &k, 1, 10000, &err) != 1) {
		fprintf(stderr, "initiator recv: %s\n", err.text);
		b->failures++;
	}
	tls_close(c);
}

static void *bench_client(void *arg)
{
	struct bench *b = arg;
	uint8_t *buf = calloc(1, CHUNK);

	for (;;) {
		pthread_mutex_lock(&b->lock);
		int mine = b->next < b->total ? b->next++ : -1;
		pthread_mutex_unlock(&b->lock);
		if (mine < 0)
			break;
		bench_one(b, buf);
	}
	free(buf);
	return NULL;
}

/* Runs b->total connections; returns the wall time in ns. */
static int64_t bench_run(struct bench *b)
{
	pthread_t srv, cl[16];
	socklen_t alen = sizeof b->addr;
	struct timespec t0, t1;

	b->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&b->addr, 0, sizeof b->addr);
	b->addr.sin_family = AF_INET;
	b->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&b->addr, sizeof b->addr) != 0 ||
	    listen(b->lfd, 64) != 0 || getsockname(b->lfd, (struct sockaddr *)&b->addr, &alen) != 0) {
		perror("listen");
		exit(1);
	}
	b->next = 0;
	b->failures = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&srv, NULL, bench_server, b);
	for (int i = 0; i < b->nclients; i++)
		pthread_create(&cl[i], NULL, bench_client, b);
	for (int i = 0; i < b->nclients; i++)
		pthread_join(cl[i], NULL);
	pthread_join(srv, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(b->lfd);
	return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
}

static void bench_handshakes(const char *pki, const char *what, const char *c1, const char *k1,
                             const char *c2, const char *k2, const char *spec, int n, int nclients)
{
	struct bench b;
	int64_t ns;

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	b.pki = pki;
	b.cctx = bench_ctx(pki, "qm1", c1, k1);
	b.sctx = bench_ctx(pki, "qm2", c2, k2);
	b.spec = spec;
	b.nclients = nclients;
	b.total = n / 10 > 0 ? n / 10 : 1; /* warm-up */
	bench_run(&b);
	b.total = n;
	ns = bench_run(&b);
	printf("handshakes %-10s %-26s n=%d clients=%d: %.0f/s wall, responder %.2f ms CPU each "
	       "(%.0f/s per responder core)%s\n",
	       what, spec, n, nclients, n / (ns / 1e9), b.srv_cpu_ns / 1e6 / n,
	       1e9 * n / (double)b.srv_cpu_ns, b.failures ? "  FAILURES" : "");
	tls_ctx_unref(b.cctx);
	tls_ctx_unref(b.sctx);
	pthread_mutex_destroy(&b.lock);
}

static void bench_bulk(const char *pki, const char *spec, size_t mb)
{
	struct bench b;
	int64_t ns;

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	b.cctx = bench_ctx(pki, "qm1", "qm1.pem", "qm1.key");
	b.sctx = bench_ctx(pki, "qm2", "qm2.pem", "qm2.key");
	b.spec = spec;
	b.nclients = 1;
	b.total = 1;
	b.bulk_bytes = mb << 20;
	ns = bench_run(&b);
	printf("bulk %-40s %zu MiB in 64 KiB records: %.0f MB/s%s\n", spec[0] ? spec : "(plain TCP)",
	       mb, (double)(mb << 20) / 1e6 / (ns / 1e9), b.failures ? "  FAILURES" : "");
	tls_ctx_unref(b.cctx);
	tls_ctx_unref(b.sctx);
	pthread_mutex_destroy(&b.lock);
}

int main(int argc, char **argv)
{
	int n = 1000, nclients = 2, opt;
	size_t mb = 512;
	char *made = NULL;
	const char *pki;

	while ((opt = getopt(argc, argv, "n:c:m:")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'c': nclients = atoi(optarg); break;
		case 'm': mb = (size_t)atol(optarg); break;
		default:
			fprintf(stderr, "usage: bench_tls [-n HANDSHAKES] [-c CLIENTS] [-m MB] [PKI_DIR]\n");
			return 2;
		}
	}
	if (n < 1 || nclients < 1 || nclients > 16 || mb < 1) {
		fprintf(stderr, "bench_tls: bad arguments\n");
		return 2;
	}
	if (optind < argc) {
		pki = argv[optind];
	} else {
		const char *src = getenv("TEST_SRCDIR");
		made = tp_pki_make(src != NULL ? src : TEST_SRCDIR);
		if (made == NULL) {
			fprintf(stderr, "bench_tls: mkpki.sh failed\n");
			return 1;
		}
		pki = made;
	}
	bench_handshakes(pki, "RSA-2048", "qm1.pem", "qm1.key", "qm2.pem", "qm2.key", "ANY_TLS13", n,
	                 nclients);
	bench_handshakes(pki, "RSA-2048", "qm1.pem", "qm1.key", "qm2.pem", "qm2.key", "ANY_TLS12", n,
	                 nclients);
	bench_handshakes(pki, "ECDSA-P256", "qm1-ec.pem", "qm1-ec.key", "qm2-ec.pem", "qm2-ec.key",
	                 "ANY_TLS13", n, nclients);
	bench_handshakes(pki, "ECDSA-P256", "qm1-ec.pem", "qm1-ec.key", "qm2-ec.pem", "qm2-ec.key",
	                 "ANY_TLS12", n, nclients);
	bench_bulk(pki, "TLS_AES_128_GCM_SHA256", mb);
	bench_bulk(pki, "TLS_AES_256_GCM_SHA384", mb);
	bench_bulk(pki, "TLS_CHACHA20_POLY1305_SHA256", mb);
	bench_bulk(pki, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", mb);
	bench_bulk(pki, "", mb);
	if (made != NULL) {
		tp_rmtree(made);
		free(made);
	}
	return 0;
}
