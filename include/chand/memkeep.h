/* When to give freed heap memory back to the system.
 *
 * Touching fresh memory is dear (on the virtual machines this was
 * measured on, about 3 us per KiB: a page fault and the zeroing of each
 * page), so the agent keeps what it freed for reuse as long as it may
 * need it again, and gives it back once it has gone a while without
 * needing it: a queue that filled and drained refills from the memory it
 * had; a burst that is over does not pin its peak for ever.
 *
 * Pure: the caller samples the free bytes its allocator holds (once a
 * second in chand) and trims when told to.  Free memory counts as
 * resident ("dirty") unless it was free at the last give-back and has not
 * been taken since (free bytes falling below that level mean it was).
 * The rule: give back when, for a whole window of samples, at least
 * `slack` dirty free bytes went unused (the window's smallest dirty
 * amount is above the slack).  A sample between a burst and its end is
 * not needed: the burst's memory is free, and dirty, afterwards. */
#ifndef CHAND_MEMKEEP_H
#define CHAND_MEMKEEP_H

#include <stdbool.h>
#include <stddef.h>

#define MEMKEEP_WINDOW 10

struct memkeep {
	size_t win[MEMKEEP_WINDOW]; /* dirty free bytes of the last samples, a ring */
	unsigned pos, n;            /* next slot, samples since the last give-back */
	size_t clean;               /* free bytes given back and not taken since */
	size_t slack;               /* less unused than this is kept */
};

void memkeep_init(struct memkeep *k, size_t slack);
/* Records one sample of the free bytes the allocator holds; true if they
 * should be given back now (the caller trims; they count as clean from
 * here). */
bool memkeep_sample(struct memkeep *k, size_t free_bytes);

#endif
