/*
 * demo.c: the lockstep demo kernel.
 *
 * Built as demo-good (no flags), demo-bad (-DREGRESSION), demo-hang (-DHANG),
 * demo-exit (-DEARLY_EXIT), and demo-spin-good/-bad (-DSPIN, without and with
 * -DREGRESSION: they never exit, spinning in spin() after the results are
 * written, for the attach tests). kmain runs, in order: checksum x3, path_a,
 * marker, the results writes, report, "demo: done", exit(0).
 *
 * demo-bad carries exactly three planted differences, independent of each
 * other:
 *   1. results[5] is 0x1111111111111112 instead of 0x1111111111111111;
 *   2. path_a calls path_c instead of path_b on the way to leaf;
 *   3. marker is called with rsi 0x5a5b instead of 0x5a5a (rdi identical).
 * It also moves code and data without changing behaviour: regression_pad
 * (never called) sits before leaf, so leaf, path_*, marker, report and kmain
 * change address, and regression_scratch sits before results in .bss, so
 * results moves. results[0] and results[1] hold layout-dependent pointers
 * (&leaf and &results[8]) that only compare equal as symbol+offset.
 */
#include "lib.h"

#ifdef REGRESSION
#define RESULT5 0x1111111111111112UL
#define MARKER_B 0x5a5bUL
#define PATH_NEXT path_c
#else
#define RESULT5 0x1111111111111111UL
#define MARKER_B 0x5a5aUL
#define PATH_NEXT path_b
#endif

#define MARKER_A 0x6d61726b6572UL	/* "marker" */
#define RESULTS_WORDS 32

/* demo_input is the data checksum reads: 160 bytes including the NUL. */
const char demo_input[160] =
	"lockstep demo input: two guests, one program, every register, "
	"every byte of memory and every call path compared at the same "
	"sync points until they part ways.";

#ifdef REGRESSION
/* regression_scratch moves results in the regressed build. */
uint64_t regression_scratch[2];
#endif

/* results is what the demo computes; compared as memory by scenarios. */
uint64_t results[RESULTS_WORDS];

/* checksum returns the FNV-1a hash of n bytes at p. */
NOINLINE uint64_t checksum(const void *p, unsigned long n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325UL;

	LEAF_FRAME();
	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3UL;
	}
	return h;
}

#ifdef REGRESSION
/*
 * regression_pad is never called: it only shifts every later function, the
 * way a regression that adds code to an early function moves the layout.
 */
NOINLINE uint64_t regression_pad(uint64_t x, uint64_t y)
{
	uint64_t i;

	LEAF_FRAME();
	for (i = 0; i < y; i++) {
		x = x * 0x5851f42d4c957f2dUL + 0x14057b7ef767814fUL;
		x ^= x >> 33;
		if (x & 1)
			x += checksum(&x, sizeof(x));
	}
	return x ^ y;
}
#endif

/* leaf is the end of the call path the demo compares. */
NOINLINE uint64_t leaf(uint64_t x)
{
	LEAF_FRAME();
	return (x * 0x9e3779b97f4a7c15UL) ^ (x >> 7);
}

/* path_b is the good build's way to leaf; identical in body to path_c. */
NOINLINE uint64_t path_b(uint64_t x)
{
	uint64_t r = leaf(x + 7);

	return r + 3;
}

/* path_c is the regressed build's way to leaf; identical in body to path_b. */
NOINLINE uint64_t path_c(uint64_t x)
{
	uint64_t r = leaf(x + 7);

	return r + 3;
}

/* path_a calls path_b (good) or path_c (regressed). */
NOINLINE uint64_t path_a(uint64_t x)
{
	uint64_t r = PATH_NEXT(x + 1);

	return r ^ 0xa;
}

/* marker is the register sync point: rdi is the same, rsi is planted. */
NOINLINE uint64_t marker(unsigned long a, unsigned long b)
{
	LEAF_FRAME();
	__asm__ volatile("" : : "r"(a), "r"(b));
	return a ^ 0x4d;
}

/* report prints the interesting words of results to the serial port. */
NOINLINE void report(const uint64_t *r, unsigned long n)
{
	unsigned long i;

	serial_puts("demo: report");
	for (i = 2; i < 8 && i < n; i++)
		serial_putkv("r", r[i]);
	serial_putc('\n');
}

#ifdef HANG
/* hang_here spins forever before the first checksum. */
NOINLINE void hang_here(void)
{
	serial_puts("demo: hang\n");
	for (;;)
		__asm__ volatile("");
}
#endif

#ifdef SPIN
/* spin_ticks counts spin's rounds. */
volatile uint64_t spin_ticks;

/* tick is called on every round of spin: a place to stop a running guest. */
NOINLINE void tick(void)
{
	LEAF_FRAME();
	spin_ticks++;
}

/*
 * spin runs forever, with the results in place, like a guest still up. It
 * calls marker too, which every demo build has (demo-hang never gets there).
 */
NOINLINE void spin(void)
{
	serial_puts("demo: spin\n");
	for (;;) {
		tick();
		marker(spin_ticks, MARKER_B);
	}
}
#endif

#ifdef EARLY_EXIT
/* early_exit leaves through isa-debug-exit with value 3 (QEMU status 7). */
NOINLINE void early_exit(void)
{
	serial_puts("demo: early exit\n");
	qemu_exit(3);
}
#endif

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint64_t c0, c1, c2, p, m;
	unsigned long i;

	serial_puts("demo: start\n");
#ifdef HANG
	hang_here();
#endif
#ifdef EARLY_EXIT
	early_exit();
#endif
	c0 = checksum(demo_input, 64);
	c1 = checksum(demo_input + 64, 32);
	c2 = checksum(demo_input + 96, 63);
	p = path_a(c0 ^ c1);
	m = marker(MARKER_A, MARKER_B);

	results[0] = (uint64_t)&leaf;
	results[1] = (uint64_t)&results[8];
	results[2] = c0;
	results[3] = c1;
	results[4] = c2;
	results[5] = RESULT5;
	results[6] = p;
	results[7] = m;
	for (i = 8; i < RESULTS_WORDS; i++)
		results[i] = (i * 0x0101010101010101UL) ^ c2;

#ifdef SPIN
	spin();
#endif
	report(results, RESULTS_WORDS);
	serial_puts("demo: done\n");
	qemu_exit(0);
}
