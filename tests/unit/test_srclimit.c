/* Per-source connection counts and log rate limits (srclimit.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <criterion/criterion.h>

#include "chand/srclimit.h"

static struct sockaddr_storage v4(const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1, "%s", ip);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1, "%s", ip);
	return ss;
}

Test(ratelimit, one_line_per_interval_with_the_count_of_the_rest, .timeout = 10)
{
	struct ratelimit rl = { 0 };
	unsigned sup = 99;

	cr_assert(ratelimit_allow(&rl, 1000, 5000, &sup));
	cr_assert_eq(sup, 0);
	cr_assert_not(ratelimit_allow(&rl, 1001, 5000, &sup));
	cr_assert_not(ratelimit_allow(&rl, 3000, 5000, NULL));
	cr_assert_not(ratelimit_allow(&rl, 5999, 5000, &sup));
	cr_assert(ratelimit_allow(&rl, 6000, 5000, &sup));
	cr_assert_eq(sup, 3, "suppressed %u", sup);
	/* the count restarts after an allowed line */
	cr_assert(ratelimit_allow(&rl, 20000, 5000, &sup));
	cr_assert_eq(sup, 0);
	/* a fresh limiter allows at once, whatever the clock says */
	struct ratelimit fresh = { 0 };
	cr_assert(ratelimit_allow(&fresh, -5, 5000, &sup));
}

Test(srclimit, cap_per_address_ports_do_not_matter, .timeout = 10)
{
	struct sockaddr_storage a1 = v4("192.0.2.10", 1000), a2 = v4("192.0.2.10", 2000);
	struct sockaddr_storage b = v4("192.0.2.11", 1000);

	for (int i = 0; i < 3; i++)
		cr_assert_eq(srclimit_enter(i % 2 ? &a1 : &a2, 3), 0, "enter %d", i);
	cr_assert_eq(srclimit_enter(&a1, 3), -1, "a 4th connection under a cap of 3");
	cr_assert_eq(srclimit_count(&a2), 3, "a refused enter must not count");
	cr_assert_eq(srclimit_enter(&b, 3), 0, "another address has its own count");
	srclimit_leave(&a1);
	cr_assert_eq(srclimit_count(&a1), 2);
	cr_assert_eq(srclimit_enter(&a2, 3), 0, "a slot freed by leave is usable");
	cr_assert_eq(srclimit_enter(&a2, 0), 0, "max 0: no cap");
	cr_assert_eq(srclimit_count(&a2), 4);
	for (int i = 0; i < 4; i++)
		srclimit_leave(&a1);
	srclimit_leave(&b);
	cr_assert_eq(srclimit_count(&a1), 0);
	cr_assert_eq(srclimit_count(&b), 0);
	srclimit_leave(&b);   /* one leave too many changes nothing */
	cr_assert_eq(srclimit_enter(&b, 1), 0);
	cr_assert_eq(srclimit_enter(&b, 1), -1);
	srclimit_leave(&b);
}

Test(srclimit, ipv6_counts_by_64_and_mapped_ipv4_as_ipv4, .timeout = 10)
{
	struct sockaddr_storage x = v6("2001:db8:1:2::1", 1), y = v6("2001:db8:1:2:ffff::9", 2);
	struct sockaddr_storage z = v6("2001:db8:1:3::1", 3);
	struct sockaddr_storage m = v6("::ffff:198.51.100.7", 4), p = v4("198.51.100.7", 5);
	char buf[64];

	cr_assert_eq(srclimit_enter(&x, 2), 0);
	cr_assert_eq(srclimit_enter(&y, 2), 0);
	cr_assert_eq(srclimit_enter(&x, 2), -1, "same /64: the cap applies");
	cr_assert_eq(srclimit_enter(&z, 2), 0, "another /64");
	cr_assert_eq(srclimit_enter(&m, 1), 0);
	cr_assert_eq(srclimit_enter(&p, 1), -1, "v4-mapped and plain IPv4 are one source");
	srclimit_source_str(&y, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2001:db8:1:2::/64");
	srclimit_source_str(&m, buf, sizeof(buf));
	cr_assert_str_eq(buf, "198.51.100.7");
	srclimit_leave(&x);
	srclimit_leave(&y);
	srclimit_leave(&z);
	srclimit_leave(&p);
	cr_assert_eq(srclimit_count(&x) + srclimit_count(&z) + srclimit_count(&m), 0);

	struct sockaddr_storage u;
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(srclimit_enter(&u, 1), 0, "AF_UNIX is never limited");
	srclimit_source_str(&u, buf, sizeof(buf));
	cr_assert_str_eq(buf, "?");
}

Test(srclimit, log_limiter_is_per_source, .timeout = 10)
{
	struct sockaddr_storage a = v4("203.0.113.1", 1), b = v4("203.0.113.2", 1);
	unsigned sup = 99;

	cr_assert(srclimit_log_allow(&a, 60000, &sup));
	cr_assert_eq(sup, 0);
	for (int i = 0; i < 5; i++)
		cr_assert_not(srclimit_log_allow(&a, 60000, &sup));
	cr_assert(srclimit_log_allow(&b, 60000, &sup), "another source logs on its own");
	/* an interval of 0 allows every line and reports what was held back */
	cr_assert(srclimit_log_allow(&a, 0, &sup));
	cr_assert_eq(sup, 5, "suppressed %u", sup);
	/* the limiter survives the source's connections coming and going */
	cr_assert_eq(srclimit_enter(&a, 1), 0);
	srclimit_leave(&a);
	cr_assert_not(srclimit_log_allow(&a, 60000, &sup));
}

#define THREADS 8
#define ROUNDS 20000

static void *churn(void *arg)
{
	struct sockaddr_storage *a = arg;

	for (int i = 0; i < ROUNDS; i++) {
		if (srclimit_enter(a, 0) != 0)
			return (void *)1;
		srclimit_leave(a);
	}
	return NULL;
}

Test(srclimit, concurrent_enter_leave_balances, .timeout = 60)
{
	struct sockaddr_storage a = v4("198.18.0.1", 1);
	pthread_t t[THREADS];

	cr_assert_eq(srclimit_enter(&a, 0), 0);   /* keeps the entry alive */
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, &a), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rv;
		cr_assert_eq(pthread_join(t[i], &rv), 0);
		cr_assert_null(rv);
	}
	cr_assert_eq(srclimit_count(&a), 1, "count %d after balanced enters/leaves",
	             srclimit_count(&a));
	srclimit_leave(&a);
	cr_assert_eq(srclimit_count(&a), 0);
}

Test(srclimit, many_sources_come_and_go, .timeout = 60)
{
	/* far more sources than the sweep threshold: each comes and goes,
	 * and each stays countable while it holds a connection */
	for (int i = 0; i < 20000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		struct sockaddr_storage a = v4(ip, 1);
		cr_assert_eq(srclimit_enter(&a, 1), 0);
		cr_assert_eq(srclimit_count(&a), 1);
		srclimit_leave(&a);
		cr_assert_eq(srclimit_count(&a), 0);
	}
}
