/* Speed of the subscription tree with 100,000 subscriptions: a fleet of
 * devices each subscribed to its own command topics, plus a few back-end
 * consumers with wildcards.  Prints subtree_match calls per second (one
 * per published topic) and callbacks per second, and the cost of adding
 * and of removing the subscriptions owner by owner.
 * Usage: bench_topic [seconds, default 1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chand/pubsub.h"

#define DEVICES 99990
#define APPS 10

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_cb(void *arg, void *owner, const char *filter, uint8_t opts, uint32_t subid)
{
	(void)owner;
	(void)filter;
	(void)opts;
	(void)subid;
	(*(size_t *)arg)++;
}

int main(int argc, char **argv)
{
	static char owners[DEVICES + APPS];
	static const char *app_filters[APPS] = {
		"fleet/+/telemetry/#", "fleet/+/status", "fleet/#", "$share/ingest/fleet/+/telemetry/+",
		"$share/ingest/fleet/+/telemetry/+", "alerts/#", "fleet/+/telemetry/temp",
		"fleet/+/+/battery", "$SYS/#", "audit/+/+",
	};
	static const char *kinds[] = { "telemetry/temp", "telemetry/battery", "status", "cmd/reboot" };
	double secs = argc > 1 ? atof(argv[1]) : 1.0, t0, t1;
	struct subtree *t = subtree_new();
	char f[96];
	size_t calls = 0, hits = 0, removed = 0;
	unsigned seed = 12345;

	if (t == NULL || secs <= 0)
		return 1;
	t0 = now_s();
	for (int i = 0; i < DEVICES; i++) {
		snprintf(f, sizeof f, "fleet/dev%06d/cmd/+", i);
		if (subtree_add(t, f, strlen(f), &owners[i], 1, 0) != 0)
			return 1;
	}
	for (int i = 0; i < APPS; i++)
		if (subtree_add(t, app_filters[i], strlen(app_filters[i]), &owners[DEVICES + i], 1,
		                0) != 0)
			return 1;
	t1 = now_s();
	printf("add: %zu subscriptions in %.3f s (%.0f/s)\n", subtree_count(t), t1 - t0,
	       (double)subtree_count(t) / (t1 - t0));

	t0 = now_s();
	do {
		for (int k = 0; k < 1000; k++) {
			int n;

			seed = seed * 1103515245u + 12345u;
			n = snprintf(f, sizeof f, "fleet/dev%06u/%s", (seed >> 8) % DEVICES,
			             kinds[(seed >> 4) % 4]);
			subtree_match(t, f, (size_t)n, count_cb, &hits);
			calls++;
		}
		t1 = now_s();
	} while (t1 - t0 < secs);
	printf("match: %.0f topics/s, %.0f matches/s (%.2f subscriptions matched per topic)\n",
	       (double)calls / (t1 - t0), (double)hits / (t1 - t0), (double)hits / (double)calls);

	t0 = now_s();
	for (int i = 0; i < DEVICES + APPS; i++)
		removed += subtree_remove_owner(t, &owners[i]);
	t1 = now_s();
	printf("remove_owner: %zu subscriptions in %.3f s, %zu left\n", removed, t1 - t0,
	       subtree_count(t));
	subtree_free(t);
	return 0;
}
