/* Throughput of the queue store alone: put and lock+confirm of persistent
 * and nonpersistent messages, in batches as channels move them.
 *
 *   bench_store [-n MESSAGES] [-b PER_CALL] [-s BYTES] [-t THREADS] [-d DIR]
 *
 * Prints msgs/s and MB/s per case; doc/STORAGE.md records the figures. */
#include <ftw.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chand/store.h"

static long opt_n = 100000, opt_batch = 256, opt_size = 1024, opt_threads = 4;
static char path[4096];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static struct store *open_or_die(bool reset)
{
	struct store_opts o = { .qmgr = "BENCH", .reset_np = reset };
	struct store *st;
	char err[512];

	if (store_open(&st, path, &o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bench_store: %s\n", err);
		exit(1);
	}
	return st;
}

static void die(struct store *st, const char *what)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, store_errmsg(st));
	exit(1);
}

static void define(struct store *st, const char *name)
{
	struct queue_def q;

	queue_def_init(&q, QTYPE_LOCAL);
	str_copy(q.name, name, sizeof(q.name));
	q.maxdepth = 999999999;
	q.maxmsgl = opt_size;
	if (store_queue_define(st, &q, true) != STORE_OK)
		die(st, "define");
}

static void put_n(struct store *st, const char *q, long n, long batch, bool persistent,
                  bool mixed)
{
	struct chd_msg *m = calloc((size_t)batch, sizeof(*m));
	uint8_t *body = malloc((size_t)opt_size);

	if (m == NULL || body == NULL)
		exit(1);
	memset(body, 'b', (size_t)opt_size);
	for (long done = 0; done < n;) {
		long k = n - done < batch ? n - done : batch;
		size_t put;

		for (long i = 0; i < k; i++) {
			memset(&m[i], 0, sizeof(m[i]));
			m[i].body = body; /* shared, never freed through m */
			m[i].body_len = (size_t)opt_size;
			m[i].persistent = persistent;
			m[i].priority = mixed ? (int)((done + i) % 10) : 5;
		}
		if (store_put(st, q, NULL, m, (size_t)k, &put) != STORE_OK)
			die(st, "put");
		done += k;
	}
	free(body);
	free(m);
}

static int64_t lock_ms, confirm_ms;

static long get_all(struct store *st, const char *q, long batch)
{
	long total = 0;

	lock_ms = confirm_ms = 0;
	for (;;) {
		struct msg_list l = { 0 };
		int64_t t0 = time_mono_ms(), t1;
		int rc = store_lock(st, q, (size_t)batch, 1, &l);

		t1 = time_mono_ms();
		lock_ms += t1 - t0;
		if (rc == STORE_NO_MSG)
			break;
		if (rc != STORE_OK || store_confirm(st, &l) != STORE_OK)
			die(st, "lock/confirm");
		confirm_ms += time_mono_ms() - t1;
		total += (long)l.n;
		msg_list_free(&l);
	}
	return total;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu0;

static void report(const char *what, long n, int64_t ms)
{
	double s = ms > 0 ? ms / 1000.0 : 0.001, cpu = cpu_s() - cpu0;

	printf("%-36s %9.0f msgs/s %8.1f MB/s  (%ld in %.2f s, cpu %.1f us/msg)\n", what, n / s,
	       n * (double)opt_size / s / 1e6, n, s, cpu * 1e6 / (double)n);
	fflush(stdout);
	cpu0 = cpu_s();
}

static void report_get(const char *what, long n, int64_t ms)
{
	report(what, n, ms);
	printf("%-36s   lock %.2f s, confirm %.2f s\n", "", lock_ms / 1000.0, confirm_ms / 1000.0);
}

struct thr {
	int id;
	long n;
};

static void *put_thread(void *arg)
{
	struct thr *t = arg;
	struct store *st = open_or_die(false);
	char q[32];

	snprintf(q, sizeof(q), "BENCH.T%d", t->id);
	put_n(st, q, t->n, opt_batch, true, false);
	store_close(st);
	return NULL;
}

static void cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[512];

	str_copy(out, "unknown", len);
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p != NULL) {
				p += strspn(p + 1, " ") + 1;
				p[strcspn(p, "\n")] = '\0';
				str_copy(out, p, len);
			}
			break;
		}
	fclose(f);
}

int main(int argc, char **argv)
{
	char dir[4096] = "", tmpl[4096], cpu[256];
	struct store *st;
	bool own_dir = false;
	int64_t t0;
	long n1;
	int c;

	while ((c = getopt(argc, argv, "n:b:s:t:d:")) != -1) {
		switch (c) {
		case 'n': opt_n = atol(optarg); break;
		case 'b': opt_batch = atol(optarg); break;
		case 's': opt_size = atol(optarg); break;
		case 't': opt_threads = atol(optarg); break;
		case 'd': str_copy(dir, optarg, sizeof(dir)); break;
		default:
			fprintf(stderr, "usage: bench_store [-n MESSAGES] [-b PER_CALL] [-s BYTES]"
			        " [-t THREADS] [-d DIR]\n");
			return 2;
		}
	}
	if (opt_n <= 0 || opt_batch <= 0 || opt_size < 0 || opt_threads <= 0) {
		fprintf(stderr, "bench_store: counts must be positive\n");
		return 2;
	}
	if (dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/chand-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL) {
			perror("mkdtemp");
			return 1;
		}
		str_copy(dir, tmpl, sizeof(dir));
		own_dir = true;
	}
	snprintf(path, sizeof(path), "%s/BENCH.db", dir);
	cpu_model(cpu, sizeof(cpu));
	printf("chand store bench: %ld messages of %ld bytes, %ld per call, in %s\n", opt_n,
	       opt_size, opt_batch, dir);
	printf("machine: %s, %ld cpus; SQLite %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
	       sqlite3_libversion());

	st = open_or_die(true);
	define(st, "BENCH.P");
	define(st, "BENCH.NP");

	cpu0 = cpu_s();
	t0 = time_mono_ms();
	put_n(st, "BENCH.P", opt_n, opt_batch, true, false);
	report("persistent put", opt_n, time_mono_ms() - t0);
	t0 = time_mono_ms();
	if (get_all(st, "BENCH.P", opt_batch) != opt_n)
		die(st, "persistent get: count mismatch");
	report_get("persistent lock+confirm", opt_n, time_mono_ms() - t0);

	t0 = time_mono_ms();
	put_n(st, "BENCH.NP", opt_n, opt_batch, false, false);
	report("nonpersistent put", opt_n, time_mono_ms() - t0);
	t0 = time_mono_ms();
	if (get_all(st, "BENCH.NP", opt_batch) != opt_n)
		die(st, "nonpersistent get: count mismatch");
	report_get("nonpersistent lock+confirm", opt_n, time_mono_ms() - t0);

	/* priorities 0-9 interleaved: delivery order is no longer file order,
	 * so each batch of deletes touches many more pages */
	t0 = time_mono_ms();
	put_n(st, "BENCH.P", opt_n, opt_batch, true, true);
	report("persistent put, priorities 0-9", opt_n, time_mono_ms() - t0);
	t0 = time_mono_ms();
	if (get_all(st, "BENCH.P", opt_batch) != opt_n)
		die(st, "persistent get: count mismatch");
	report_get("persistent lock+confirm, prio 0-9", opt_n, time_mono_ms() - t0);

	/* what one fsync per message costs */
	n1 = opt_n / 50 > 200 ? opt_n / 50 : 200;
	t0 = time_mono_ms();
	put_n(st, "BENCH.P", n1, 1, true, false);
	report("persistent put, 1 per call", n1, time_mono_ms() - t0);
	t0 = time_mono_ms();
	if (get_all(st, "BENCH.P", 1) != n1)
		die(st, "persistent get: count mismatch");
	report("persistent lock+confirm, 1 per call", n1, time_mono_ms() - t0);

	/* several writers (channel receivers) at once, one handle each */
	{
		pthread_t *th = calloc((size_t)opt_threads, sizeof(*th));
		struct thr *ta = calloc((size_t)opt_threads, sizeof(*ta));
		char label[64];

		for (long i = 0; i < opt_threads; i++) {
			char q[32];
			snprintf(q, sizeof(q), "BENCH.T%ld", i);
			define(st, q);
		}
		t0 = time_mono_ms();
		for (long i = 0; i < opt_threads; i++) {
			ta[i].id = (int)i;
			ta[i].n = opt_n / opt_threads;
			if (pthread_create(&th[i], NULL, put_thread, &ta[i]) != 0) {
				perror("pthread_create");
				return 1;
			}
		}
		for (long i = 0; i < opt_threads; i++)
			pthread_join(th[i], NULL);
		snprintf(label, sizeof(label), "persistent put, %ld threads", opt_threads);
		report(label, opt_n / opt_threads * opt_threads, time_mono_ms() - t0);
		free(th);
		free(ta);
	}

	store_close(st);
	if (own_dir)
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
