/* The agent's heap: kept for reuse while it may be needed, given back
 * when it has not been for a while (memkeep.h).
 *
 * glibc alone gives memory back too eagerly for a queue manager: each
 * thread's arena unmaps a 64 MiB heap as soon as it is empty, and the
 * main arena trims its top past 128 KiB, so a queue that filled and was
 * drained (or purged) fills again from fresh pages -- a page fault and a
 * zeroed page for every 4 KiB, which on the virtual machines this was
 * measured on cost more than the channel's TLS and copying together
 * (doc/PERFORMANCE.md).  So the agent (memtrim_init, before its threads):
 * - runs one arena (every thread allocates from the main heap: a body
 *   freed by a getter is reused by the next put, whatever thread);
 * - never trims on free;
 * - serves allocations of 256 KiB and more from their own mappings: a
 *   connection's buffers are touched only as far as they are used, and
 *   a large message is returned whole when freed.
 * and a thread (memtrim_start) samples the free bytes the heap holds once
 * a second and calls malloc_trim when memkeep says more than 8 MiB of
 * them went unused for a whole window (10 s): then the process's
 * resident size falls back to what it uses.
 *
 * Without glibc (or under a sanitizer's allocator, where mallinfo2
 * reports nothing) the thread never trims. */
#include <stdlib.h>     /* first: defines __GLIBC__ on glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "agent_int.h"
#include "ops_int.h"
#include "chand/memkeep.h"

#define MEMTRIM_TICK_MS 1000
/* a drop of less than this stays held */
#define MEMTRIM_SLACK ((size_t)8 << 20)
/* = CHAN_RBUF_SIZE: a connection's 256 KiB buffers are mappings of their
 * own, touched only as far as used (an idle channel's stay small) */
#define MEMTRIM_MMAP_THRESHOLD (256 << 10)

static struct ticker mt;

void memtrim_init(void)
{
#ifdef __GLIBC__
	/* before any thread has made an arena of its own */
	(void)mallopt(M_ARENA_MAX, 1);
	(void)mallopt(M_TRIM_THRESHOLD, -1);
	(void)mallopt(M_MMAP_THRESHOLD, MEMTRIM_MMAP_THRESHOLD);
#endif
}

#ifdef __GLIBC__
static size_t heap_free(void)
{
	return mallinfo2().fordblks;
}
#endif

static void *memtrim_thread(void *arg)
{
	struct memkeep k;

	(void)arg;
	memkeep_init(&k, MEMTRIM_SLACK);
	while (ticker_sleep(&mt, MEMTRIM_TICK_MS)) {
#ifdef __GLIBC__
		if (memkeep_sample(&k, heap_free()))
			(void)malloc_trim(0);
#endif
	}
	return NULL;
}

int memtrim_start(void)
{
	return ticker_start(&mt, memtrim_thread, NULL, "memory");
}

void memtrim_stop(void)
{
	ticker_stop(&mt);
}
