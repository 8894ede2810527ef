/*
 * deep.c: a long deterministic computation with a divergence deep inside.
 *
 * Built with -DWORK=N as deep-1e3, deep-1e5 and deep-1e6: kmain calls
 * deep_start (a sync point), runs a loop of about N instructions that folds
 * into deep_state through deep_mix, executes CPUID leaf 1 and mixes its ECX
 * into deep_state (so -cpu qemu64 and -cpu max first differ AT that cpuid,
 * about N instructions after deep_start), runs about 2000 more instructions
 * through deep_tail, and calls deep_verify (a sync point) before exit(0).
 *
 * On aarch64, riscv64 and s390x the cpuid is arch_feature_word() (arch.h):
 * ID_AA64ISAR0_EL1, misa or the STIDP word, read where the cpuid is.
 *
 * deep-good and deep-bad are WORK=1000 builds without the cpuid (-DNO_CPUID).
 * Iteration DEEP_K of the loop adds a constant before calling deep_mix;
 * deep-bad (-DPLANT_BAD) adds a different one, so call #DEEP_K of deep_mix
 * (1-based; its rsi is DEEP_K) is the first whose rdi differs, thousands of
 * instructions before deep_verify notices. The two builds have identical
 * layouts: only that immediate differs. deep_verify checks deep_state
 * against the good build's value: deep-good exits 0 (QEMU status 1),
 * deep-bad exits 1 (QEMU status 3).
 *
 * deep-stash (-DSTASH, x86_64) stores the cpuid's ECX to deep_stash and
 * clears the cpuid's registers at once, so the two CPU models' registers
 * agree again two instructions later; a second loop of about WORK
 * instructions follows, and only then is deep_stash folded into
 * deep_state: the registers differ again there, long after the store.
 */
#include "lib.h"

#ifndef WORK
#define WORK 1000
#endif

/* DEEP_LOOP_INSNS is the measured instruction count of one loop iteration. */
#define DEEP_LOOP_INSNS 19
/* DEEP_TAIL_INSNS is the measured instruction count of one tail iteration. */
#define DEEP_TAIL_INSNS 17

#define DEEP_ITERS (WORK / DEEP_LOOP_INSNS)
#define DEEP_TAIL_ITERS (2000 / DEEP_TAIL_INSNS)
#define DEEP_SEED 0x243f6a8885a308d3UL
#define DEEP_K 10

/* DEEP_EXPECT is deep-good's final deep_state (measured); deep_verify checks it. */
#if defined(NO_CPUID) && WORK == 1000
#define DEEP_EXPECT 0xa954818f6dac2af6UL
#endif

#ifdef PLANT_BAD
#define DEEP_PLANT 0x5bd1e997UL
#else
#define DEEP_PLANT 0x5bd1e995UL
#endif

/* deep_state is the folded result; volatile so every iteration stores it. */
volatile uint64_t deep_state;

/* deep_stash keeps the cpuid's ECX (deep-stash) until after the second loop. */
volatile uint32_t deep_stash;

/* deep_start is the sync point before the loop. */
NOINLINE void deep_start(void)
{
	LEAF_FRAME();
	__asm__ volatile("" : : : "memory");
}

/* deep_mix folds iteration i into x; it is called once per loop iteration. */
NOINLINE uint64_t deep_mix(uint64_t x, uint64_t i)
{
	LEAF_FRAME();
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9UL;
	return x ^ i;
}

/* deep_tail folds iteration i into x after the cpuid. */
NOINLINE uint64_t deep_tail(uint64_t x, uint64_t i)
{
	LEAF_FRAME();
	x ^= x >> 27;
	x *= 0x94d049bb133111ebUL;
	return x + i;
}

/*
 * VERIFY_PAGE (the deep-1e7 and deeper builds) puts deep_verify, and kmain
 * after it, on pages of their own: QEMU's TCG runs one instruction per
 * translation block on any page that holds a breakpoint, so a sync point
 * on the loop's page would slow the whole loop tenfold.
 */
#ifdef VERIFY_PAGE
#define VERIFY_ALIGN __attribute__((aligned(4096)))
#else
#define VERIFY_ALIGN
#endif

/* deep_verify is the final sync point: it checks and prints state. */
NOINLINE VERIFY_ALIGN int deep_verify(uint64_t state)
{
	serial_puts("deep:");
	serial_putkv("state", state);
	serial_putc('\n');
#if defined(DEEP_EXPECT)
	if (state != DEEP_EXPECT) {
		serial_puts("deep: verify failed\n");
		return 1;
	}
	serial_puts("deep: verify ok\n");
#endif
	return 0;
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE VERIFY_ALIGN void kmain(void)
{
	uint64_t i;

	serial_puts("deep: start\n");
	deep_state = DEEP_SEED;
	deep_start();
	for (i = 1; i <= DEEP_ITERS; i++)
		deep_state = deep_mix(deep_state + (i == DEEP_K ? DEEP_PLANT : 0), i);
#ifndef NO_CPUID
#if defined(__x86_64__) && defined(STASH)
	/* Store ECX, then clear what cpuid set: only memory differs now. */
	__asm__ volatile("mov $1, %%eax\n\txor %%ecx, %%ecx\n\tcpuid\n\t"
			 "movl %%ecx, deep_stash(%%rip)\n\t"
			 "xor %%eax, %%eax\n\txor %%ebx, %%ebx\n\t"
			 "xor %%ecx, %%ecx\n\txor %%edx, %%edx"
			 : : : "rax", "rbx", "rcx", "rdx", "memory");
	for (i = 1; i <= DEEP_ITERS; i++)
		deep_state = deep_mix(deep_state, i);
	deep_state ^= deep_stash;
#elif defined(__x86_64__)
	{
		uint32_t a = 1, b, c = 0, d;

		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		deep_state ^= c;
	}
#else
	/* The other architectures read their CPU-model word (arch.h). */
	deep_state ^= arch_feature_word();
#endif
#endif
	for (i = 0; i < DEEP_TAIL_ITERS; i++)
		deep_state = deep_tail(deep_state, i);
	qemu_exit(deep_verify(deep_state));
}
