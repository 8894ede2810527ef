/*
 * stores.c: many stores to one word, one of them different.
 *
 * kmain calls stores_start (a sync point), then store_word stores
 * STORE_COUNT values into stores_out[0], one call per store, then stores
 * stores_total(STORE_COUNT) (their sum) into stores_out[1], calls
 * stores_done (a sync point) and exits 0. stores-bad (-DSTORE_BAD) adds 1
 * to the value of store number STORE_BAD_AT (1-based) and every store after
 * it, so stores_out differs at stores_done. STORE_BAD_AT is beyond 256 (the
 * old write-localisation budget) and within the default localize.max_writes
 * (4096): write localisation must name store #STORE_BAD_AT.
 */
#include "lib.h"

#define STORE_COUNT 400
#define STORE_BAD_AT 300

/* stores_out is the watched memory. */
uint64_t stores_out[4];

/* stores_start is the sync point before the stores. */
NOINLINE void stores_start(void)
{
	LEAF_FRAME();
	serial_puts("stores: start\n");
}

/* store_word stores v into stores_out[0]. */
NOINLINE void store_word(uint64_t v)
{
	LEAF_FRAME();
	*(volatile uint64_t *)&stores_out[0] = v;
}

/* stores_total returns the sum of the values stored: a return value that
 * differs between the builds (a sync point with at: return). */
NOINLINE uint64_t stores_total(uint64_t n)
{
	uint64_t i, sum = 0;

	LEAF_FRAME();
	for (i = 1; i <= n; i++) {
		uint64_t v = i * 0x10;
#ifdef STORE_BAD
		if (i >= STORE_BAD_AT)
			v++;
#endif
		sum += v;
	}
	return sum;
}

/* stores_done is the sync point after the stores. */
NOINLINE void stores_done(void)
{
	LEAF_FRAME();
	serial_puts("stores: done\n");
}

void kmain(void)
{
	uint64_t i;

	stores_start();
	for (i = 1; i <= STORE_COUNT; i++) {
		uint64_t v = i * 0x10;
#ifdef STORE_BAD
		if (i >= STORE_BAD_AT)
			v++;
#endif
		store_word(v);
	}
	stores_out[1] = stores_total(STORE_COUNT);
	stores_done();
	qemu_exit(0);
}
