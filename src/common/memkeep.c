/* When to give freed heap memory back (memkeep.h). */
#include <string.h>

#include "chand/memkeep.h"

void memkeep_init(struct memkeep *k, size_t slack)
{
	memset(k, 0, sizeof(*k));
	k->slack = slack;
}

bool memkeep_sample(struct memkeep *k, size_t free_bytes)
{
	size_t least = (size_t)-1;

	/* what was taken from the free memory may have been the clean part */
	if (free_bytes < k->clean)
		k->clean = free_bytes;
	k->win[k->pos] = free_bytes - k->clean;
	k->pos = (k->pos + 1) % MEMKEEP_WINDOW;
	if (k->n < MEMKEEP_WINDOW)
		k->n++;
	if (k->n < MEMKEEP_WINDOW)
		return false;
	for (unsigned i = 0; i < MEMKEEP_WINDOW; i++)
		if (k->win[i] < least)
			least = k->win[i];
	if (least <= k->slack)
		return false;
	k->clean = free_bytes;
	k->n = 0;
	return true;
}
