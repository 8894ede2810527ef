/*
 * cpu-probe.c (aarch64): one binary whose behaviour depends on the CPU model.
 *
 * probe_ids reads MIDR_EL1, ID_AA64ISAR0_EL1 and ID_AA64PFR0_EL1 into
 * probe_id[] and calls probe_result with them (x0..x2 at that breakpoint).
 * It then acts on ISAR0.Atomic (bits 23:20): with LSE atomics (max) it adds
 * with probe_add_lse (ldadd), without (cortex-a57) with probe_add_llsc
 * (ldxr/stxr), so the call path differs too; then probe_done, then exit.
 */
#include "lib.h"

/* probe_id holds MIDR_EL1, ID_AA64ISAR0_EL1 and ID_AA64PFR0_EL1. */
uint64_t probe_id[3];

/* probe_counter is what the atomic adds go to. */
uint64_t probe_counter;

/* probe_result is a sync point: x0=MIDR, x1=ISAR0, x2=PFR0. */
NOINLINE void probe_result(uint64_t midr, uint64_t isar0, uint64_t pfr0)
{
	serial_puts("probe: id");
	serial_putkv("midr", midr);
	serial_putkv("isar0", isar0);
	serial_putkv("pfr0", pfr0);
	serial_putc('\n');
}

/* probe_ids reads the ID registers. */
NOINLINE void probe_ids(void)
{
	uint64_t midr, isar0, pfr0;

	__asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
	__asm__ volatile("mrs %0, id_aa64isar0_el1" : "=r"(isar0));
	__asm__ volatile("mrs %0, id_aa64pfr0_el1" : "=r"(pfr0));
	probe_id[0] = midr;
	probe_id[1] = isar0;
	probe_id[2] = pfr0;
	probe_result(midr, isar0, pfr0);
}

/* probe_add_lse adds v to probe_counter with an LSE ldadd. */
NOINLINE void probe_add_lse(uint64_t v)
{
	uint64_t old;

	LEAF_FRAME();
	__asm__ volatile(".arch_extension lse\n\tldadd %1, %0, [%2]"
			 : "=&r"(old) : "r"(v), "r"(&probe_counter) : "memory");
}

/* probe_add_llsc adds v to probe_counter with an ldxr/stxr loop. */
NOINLINE void probe_add_llsc(uint64_t v)
{
	uint64_t old;
	uint32_t fail;

	LEAF_FRAME();
	__asm__ volatile("1: ldxr %0, [%3]\n\t"
			 "add %0, %0, %2\n\t"
			 "stxr %w1, %0, [%3]\n\t"
			 "cbnz %w1, 1b"
			 : "=&r"(old), "=&r"(fail) : "r"(v), "r"(&probe_counter)
			 : "memory");
}

/* probe_done is the final sync point; it prints the counter. */
NOINLINE void probe_done(void)
{
	serial_puts("probe:");
	serial_putkv("counter", probe_counter);
	serial_puts("\nprobe: done\n");
}

/* kmain is called by start.S at EL1 with the MMU off. */
NOINLINE void kmain(void)
{
	uint64_t i;

	serial_puts("probe: start\n");
	probe_ids();
	for (i = 1; i <= 4; i++) {
		if (((probe_id[1] >> 20) & 0xf) >= 2)
			probe_add_lse(i);
		else
			probe_add_llsc(i);
	}
	probe_done();
	qemu_exit(0);
}
