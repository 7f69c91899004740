/* When freed memory is given back (memkeep.h). */
#include <criterion/criterion.h>

#include "chand/memkeep.h"

#define MIB ((size_t)1 << 20)

/* Feeds n samples of free bytes v; returns how many said "give back". */
static int feed(struct memkeep *k, size_t v, int n)
{
	int trims = 0;

	for (int i = 0; i < n; i++)
		trims += memkeep_sample(k, v);
	return trims;
}

Test(memkeep, little_free_memory_is_kept)
{
	struct memkeep k;

	memkeep_init(&k, 8 * MIB);
	cr_assert_eq(feed(&k, 8 * MIB, 100), 0);
}

Test(memkeep, free_memory_is_given_back_once_after_a_whole_window)
{
	struct memkeep k;

	memkeep_init(&k, 8 * MIB);
	cr_assert_eq(feed(&k, 1 * MIB, 5), 0);
	/* a burst came and went between two samples: its memory is free now */
	cr_assert_eq(feed(&k, 400 * MIB, MEMKEEP_WINDOW - 1), 0);
	cr_assert(memkeep_sample(&k, 400 * MIB), "a whole window unused: given back");
	cr_assert_eq(feed(&k, 400 * MIB, 50), 0, "given back once, clean since");
}

Test(memkeep, memory_reused_within_the_window_is_kept)
{
	struct memkeep k;

	memkeep_init(&k, 8 * MIB);
	/* a queue filled and drained again and again: the free memory is
	 * taken again before a window passes */
	for (int round = 0; round < 10; round++) {
		cr_assert_eq(feed(&k, 400 * MIB, MEMKEEP_WINDOW - 2), 0, "round %d", round);
		cr_assert_eq(feed(&k, 2 * MIB, 1), 0, "round %d", round);
	}
}

Test(memkeep, clean_memory_taken_and_freed_again_is_dirty)
{
	struct memkeep k;

	memkeep_init(&k, 8 * MIB);
	feed(&k, 300 * MIB, MEMKEEP_WINDOW);            /* given back: clean */
	cr_assert_eq(feed(&k, 300 * MIB, 30), 0);
	cr_assert_eq(feed(&k, 100 * MIB, 1), 0);        /* 200 MiB taken */
	/* freed again: 200 MiB dirty, given back after a window */
	cr_assert_eq(feed(&k, 300 * MIB, MEMKEEP_WINDOW - 1), 0);
	cr_assert(memkeep_sample(&k, 300 * MIB));
}

Test(memkeep, a_part_in_use_all_along_only_counts_what_went_unused)
{
	struct memkeep k;

	memkeep_init(&k, 8 * MIB);
	/* free memory swinging between 5 and 60 MiB: only 5 went unused */
	for (int i = 0; i < 5 * MEMKEEP_WINDOW; i++)
		cr_assert_not(memkeep_sample(&k, i % 3 == 0 ? 5 * MIB : 60 * MIB), "sample %d", i);
}
