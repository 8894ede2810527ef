/*
 * stepexit.c: a guest that ends a few instructions after a sync point, for
 * step windows that a guest exit cuts short.
 *
 * kmain prints "stepexit: start", calls window_start (the sync point) and,
 * a handful of instructions after it returns, writes 0 to port 0xf4
 * (EARLY_PORT). With isa-debug-exit at iobase=0xf4 (the scenario default)
 * QEMU exits on that write with status 1. With the device at iobase=0xf8
 * the write goes nowhere: the guest spins SPIN iterations, prints
 * "stepexit: late", calls late_point (a second sync point) and writes 2 to
 * port 0xf8 (LATE_PORT): QEMU status 5.
 *
 * So one binary gives both cases a test needs: the same device placement on
 * both sides ends both guests at the same instruction; different placements
 * end one side inside the window while the other runs on, with every
 * register equal up to that instruction. stepexit-pad (-DPAD) is the same
 * program with an unused function before window_start, which moves
 * window_start, late_point and kmain: a second build with the same
 * behaviour, for the different-builds mode.
 */
#include "lib.h"

#define EARLY_PORT 0xf4
#define LATE_PORT 0xf8
#define SPIN 2000

/* stepexit_count is stored on every spin iteration (volatile). */
volatile uint64_t stepexit_count;

#ifdef PAD
/* stepexit_pad is never called: it only moves the functions after it. */
NOINLINE uint64_t stepexit_pad(uint64_t x)
{
	LEAF_FRAME();
	return x * 0x9e3779b97f4a7c15UL + 1;
}
#endif

/* window_start is the sync point whose step window the exit cuts short. */
NOINLINE void window_start(void)
{
	LEAF_FRAME();
	__asm__ volatile("");
}

/* late_point is reached only by a guest whose first exit write went nowhere. */
NOINLINE void late_point(uint64_t n)
{
	LEAF_FRAME();
	__asm__ volatile("" : : "r"(n));
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint64_t i;

	serial_puts("stepexit: start\n");
	window_start();
	outl(EARLY_PORT, 0);
	for (i = 0; i < SPIN; i++)
		stepexit_count = i;
	serial_puts("stepexit: late\n");
	late_point(stepexit_count);
	outl(LATE_PORT, 2);
	for (;;)
		__asm__ volatile("cli; hlt");
}
