/*
 * alloc.c: a guest with an allocator and an error path, for fault injection.
 *
 * kmain builds ITEMS items; each make_item allocates a buffer from a bump
 * allocator (alloc) and fills it. When alloc returns NULL, make_item takes
 * its error path: it counts the failure, prints "alloc: out of memory" and
 * returns ITEM_FAILED instead of the item's checksum. The pool is big
 * enough, so a clean run never fails; a run with alloc's 3rd return forced
 * to NULL (scenario inject) recovers, and its results differ afterwards:
 * results[2] is ITEM_FAILED, the later items sit elsewhere in the pool,
 * and the failure count and pool use differ.
 */
#include "lib.h"

#define POOL_SIZE 1024
#define ITEM_WORDS 8
#define ITEMS 6
#define ITEM_FAILED 0xdeadUL

/* pool is the allocator's arena; pool_used how much of it is taken. */
uint8_t pool[POOL_SIZE] __attribute__((aligned(16)));
uint64_t pool_used;

/* results: the items' checksums, then failures, pool_used and a check. */
uint64_t results[ITEMS + 3];
uint64_t failures;

/* alloc returns n bytes of pool, or NULL when the pool is exhausted. */
NOINLINE void *alloc(unsigned long n)
{
	void *p;

	LEAF_FRAME();
	if (pool_used + n > POOL_SIZE)
		return 0;
	p = &pool[pool_used];
	pool_used += n;
	return p;
}

/* fill writes words derived from seed into buf and returns their sum. */
NOINLINE uint64_t fill(uint64_t *buf, unsigned long words, uint64_t seed)
{
	uint64_t sum = 0, x = seed * 0x9e3779b97f4a7c15UL + 1;
	unsigned long i;

	LEAF_FRAME();
	for (i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x;
		sum += x;
	}
	return sum;
}

/* make_item allocates and fills item i; on allocation failure it recovers. */
NOINLINE uint64_t make_item(uint64_t i)
{
	uint64_t *buf = alloc(ITEM_WORDS * sizeof(uint64_t));

	if (!buf) {
		failures++;
		serial_puts("alloc: out of memory\n");
		return ITEM_FAILED;
	}
	return fill(buf, ITEM_WORDS, i);
}

/* report prints the results. */
NOINLINE void report(const uint64_t *r, unsigned long n)
{
	unsigned long i;

	serial_puts("alloc: report");
	for (i = 0; i < n; i++)
		serial_putkv("r", r[i]);
	serial_putc('\n');
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint64_t i;

	serial_puts("alloc: start\n");
	for (i = 0; i < ITEMS; i++)
		results[i] = make_item(i);
	results[ITEMS] = failures;
	results[ITEMS + 1] = pool_used;
	results[ITEMS + 2] = ((uint64_t *)pool)[ITEM_WORDS * 3];
	report(results, ITEMS + 3);
	serial_puts("alloc: done\n");
	qemu_exit(0);
}
