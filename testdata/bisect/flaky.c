/*
 * flaky.c: a guest whose regression shows on some runs only.
 *
 * kmain reads the first byte of the kernel command line (QEMU's -append,
 * which a scenario sets to the run number ${LOCKSTEP_RUN}) from fw_cfg and
 * calls marker(MARKER_A, b). b is 0x5a5a, except in a FLAKY build on a run
 * whose number is odd, where it is 0x5a5b: the run-to-run variation of a
 * real flaky regression, made deterministic per run by the seed.
 */
#include "lib.h"

#define MARKER_A 0x6d61726b6572UL	/* "marker" */
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15

ALWAYS_INLINE void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

/* flaky_seed is the first byte of the command line, 0 when there is none. */
volatile uint64_t flaky_seed;

/* read_seed reads the first command-line byte through fw_cfg. */
NOINLINE uint64_t read_seed(void)
{
	uint32_t size = 0;
	int i;

	LEAF_FRAME();
	outw(FW_CFG_SELECTOR, FW_CFG_CMDLINE_SIZE);
	for (i = 0; i < 4; i++)
		size |= (uint32_t)inb(FW_CFG_DATA) << (8 * i);
	if (size < 2)
		return 0;
	outw(FW_CFG_SELECTOR, FW_CFG_CMDLINE_DATA);
	return inb(FW_CFG_DATA);
}

/* marker is the sync point: rdi is always equal, rsi carries the regression. */
NOINLINE uint64_t marker(unsigned long a, unsigned long b)
{
	LEAF_FRAME();
	__asm__ volatile("" : : "r"(a), "r"(b));
	return a ^ b;
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint64_t b = 0x5a5aUL;

	serial_puts("flaky: start\n");
	flaky_seed = read_seed();
#ifdef FLAKY
	b += flaky_seed & 1;
#endif
	serial_putkv("flaky: seed", flaky_seed);
	serial_putc('\n');
	marker(MARKER_A, b);
	serial_puts("flaky: done\n");
	qemu_exit(0);
}
