/*
 * cpu-probe.c: one binary whose behaviour depends on the CPU model.
 *
 * It executes CPUID leaves 0, 1, 7 (subleaf 0) and 0x80000001, storing
 * eax/ebx/ecx/edx in probe_cpuid[i][0..3] and calling cpuid_result after each
 * one so the values are in rdi..r8 at that breakpoint. It then runs
 * instructions whose flags or results are architecturally undefined or
 * model dependent, storing the pushfq image after each in probe_flags[i] and
 * the destination in probe_values[i]; then probe_done, then exit(0).
 */
#include "lib.h"

#define PROBE_LEAVES 4
#define PROBE_COUNT 12

/* FLAGS_IN is the rflags every flag probe starts from: CF PF AF ZF SF OF set. */
#define FLAGS_IN 0x8d7UL

/* probe_leaf lists the CPUID leaves probed, in order. */
const uint32_t probe_leaf[PROBE_LEAVES] = { 0, 1, 7, 0x80000001 };

/* probe_cpuid holds eax, ebx, ecx, edx for each leaf of probe_leaf. */
uint32_t probe_cpuid[PROBE_LEAVES][4];

/* probe_flags holds the pushfq image after each flag probe. */
uint64_t probe_flags[PROBE_COUNT];

/* probe_values holds the destination register after each flag probe. */
uint64_t probe_values[PROBE_COUNT];

/* cpuid_result is a sync point: rdi=leaf, rsi=eax, rdx=ebx, rcx=ecx, r8=edx. */
NOINLINE void cpuid_result(uint32_t leaf, uint32_t eax, uint32_t ebx,
			   uint32_t ecx, uint32_t edx)
{
	serial_puts("probe: cpuid");
	serial_putkv("leaf", leaf);
	serial_putkv("eax", eax);
	serial_putkv("ebx", ebx);
	serial_putkv("ecx", ecx);
	serial_putkv("edx", edx);
	serial_putc('\n');
}

/* probe_cpuid_all executes every leaf of probe_leaf. */
NOINLINE void probe_cpuid_all(void)
{
	int i;

	for (i = 0; i < PROBE_LEAVES; i++) {
		uint32_t a = probe_leaf[i], b, c = 0, d;

		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		probe_cpuid[i][0] = a;
		probe_cpuid[i][1] = b;
		probe_cpuid[i][2] = c;
		probe_cpuid[i][3] = d;
		cpuid_result(probe_leaf[i], a, b, c, d);
	}
}

/*
 * PROBE runs insn (operands %[d] destination, %[s] source) from FLAGS_IN and
 * records the flags and destination in slot i.
 */
#define PROBE(i, insn, dinit, sinit)                                          \
	do {                                                                  \
		uint64_t d_ = (dinit), f_;                                    \
		__asm__ volatile("push %[fin]\n\t"                            \
				 "popfq\n\t" insn "\n\t"                      \
				 "pushfq\n\t"                                 \
				 "pop %[f]"                                   \
				 : [d] "+r"(d_), [f] "=&r"(f_)                \
				 : [s] "r"((uint64_t)(sinit)),                \
				   [fin] "r"(FLAGS_IN)                        \
				 : "cc", "memory");                           \
		probe_flags[i] = f_;                                          \
		probe_values[i] = d_;                                         \
	} while (0)

/* probe_flags_all runs the undefined-flag probes. */
NOINLINE void probe_flags_all(void)
{
	uint64_t a, dx, f;

	/* 0: mul: SF ZF AF PF undefined. */
	a = 0x123456789abcdef1UL;
	__asm__ volatile("push %[fin]\n\tpopfq\n\tmulq %[s]\n\tpushfq\n\tpop %[f]"
			 : "+a"(a), "=d"(dx), [f] "=&r"(f)
			 : [s] "r"(0x10UL), [fin] "r"(FLAGS_IN)
			 : "cc", "memory");
	probe_flags[0] = f;
	probe_values[0] = a ^ dx;
	/* 1: imul: SF ZF AF PF undefined. */
	PROBE(1, "imul %[s], %[d]", 0x7fffffff00000001UL, 0x3UL);
	/* 2, 3: bsf/bsr with a zero source: destination undefined. */
	PROBE(2, "bsf %[s], %[d]", 0xdeadbeefUL, 0);
	PROBE(3, "bsr %[s], %[d]", 0xdeadbeefUL, 0);
	/* 4-6: shifts and rotates by more than 1: OF undefined (AF too). */
	PROBE(4, "shl $4, %[d]", 0xf00000000000000fUL, 0);
	PROBE(5, "shr $3, %[d]", 0x8000000000000007UL, 0);
	PROBE(6, "rol $5, %[d]", 0x8800000000000001UL, 0);
	/* 7: bt: OF SF AF PF undefined. */
	PROBE(7, "bt %[s], %[d]", 0x5UL, 2);
	/* 8: and: AF undefined. */
	PROBE(8, "and %[s], %[d]", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL);
	/* 9: shl by 1: OF defined here (control), AF undefined. */
	PROBE(9, "shl $1, %[d]", 0x4000000000000000UL, 0);
	/* 10: lzcnt (ABM): decodes as bsr on CPUs without ABM (qemu64). */
	PROBE(10, "lzcnt %[s], %[d]", 0, 0x1UL);
	/* 11: tzcnt (BMI1): decodes as bsf on CPUs without BMI1 (qemu64). */
	PROBE(11, "tzcnt %[s], %[d]", 0, 0x8000000000000000UL);
}

/* probe_done is the final sync point; it prints the recorded flags. */
NOINLINE void probe_done(void)
{
	int i;

	serial_puts("probe: flags");
	for (i = 0; i < PROBE_COUNT; i++)
		serial_putkv("f", probe_flags[i]);
	serial_puts("\nprobe: values");
	for (i = 0; i < PROBE_COUNT; i++)
		serial_putkv("v", probe_values[i]);
	serial_puts("\nprobe: done\n");
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	serial_puts("probe: start\n");
	probe_cpuid_all();
	probe_flags_all();
	probe_done();
	qemu_exit(0);
}
