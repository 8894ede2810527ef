/*
 * tsc.c: noise next to a real regression.
 *
 * kmain reads rdtsc into tsc_sample (host-time noise under TCG without
 * -icount: differs run to run), computes a deterministic value into
 * tsc_value, calls tsc_done(tsc_lo, value) and exits 0. tsc-bad (-DTSC_BAD)
 * differs only in tsc_value (one constant of the computation), with the
 * same layout, so a tool that masks tsc_sample and rdi at tsc_done must
 * still report tsc_value and rsi.
 */
#include "lib.h"

#ifdef TSC_BAD
#define TSC_STEP 0x2545f4914f6cdd1fUL
#else
#define TSC_STEP 0x2545f4914f6cdd1dUL
#endif

/* tsc_sample is the raw time stamp counter read at start (noise). */
volatile uint64_t tsc_sample;

/* tsc_value is the deterministic result (the real signal). */
volatile uint64_t tsc_value;

/* tsc_compute returns a deterministic value independent of the TSC. */
NOINLINE uint64_t tsc_compute(uint64_t seed)
{
	uint64_t i, x = seed;

	LEAF_FRAME();
	for (i = 0; i < 64; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		x += TSC_STEP;
	}
	return x;
}

/* tsc_done is the sync point: rdi is the TSC low half, rsi the value. */
NOINLINE void tsc_done(uint32_t tsc_lo, uint64_t value)
{
	LEAF_FRAME();
	__asm__ volatile("" : : "r"(tsc_lo), "r"(value));
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint32_t lo, hi;
	uint64_t v;

	serial_puts("tsc: start\n");
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	tsc_sample = ((uint64_t)hi << 32) | lo;
	v = tsc_compute(0x6a09e667f3bcc908UL);
	tsc_value = v;
	tsc_done(lo, v);
	serial_puts("tsc:");
	serial_putkv("value", v);
	serial_puts("\ntsc: done\n");
	qemu_exit(0);
}
