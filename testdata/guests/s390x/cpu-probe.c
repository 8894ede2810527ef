/*
 * cpu-probe.c (s390x): one binary whose behaviour depends on the CPU model.
 *
 * probe_ids stores the CPU id (STIDP) and the facility list (STFLE, four
 * doublewords) into probe_id[] and probe_fac[] and calls probe_result with
 * the id, its machine type and the first two facility doublewords (r2..r5
 * at that breakpoint). It then acts on facility 58 (miscellaneous-
 * instruction-extensions 2, z14: -cpu qemu has it, z196 not): with it, it
 * sums with probe_sum_agh (agh, add halfword from memory, z14), without it
 * with probe_sum_ag, so the call path differs too; then probe_done, exit.
 */
#include "lib.h"

/* probe_id holds the STIDP word. */
uint64_t probe_id[1];

/* probe_fac holds the facility list STFLE stores (facilities 0-255). */
uint64_t probe_fac[4];

/* probe_addend is the halfword the adds read from memory. */
int16_t probe_addend;

/* probe_sum is what the sums go to. */
uint64_t probe_sum;

/* probe_result is a sync point: r2=cpu id, r3=machine type, r4, r5=facilities. */
NOINLINE void probe_result(uint64_t id, uint64_t type, uint64_t fac0,
			   uint64_t fac1)
{
	serial_puts("probe: id");
	serial_putkv("cpuid", id);
	serial_putkv("type", type);
	serial_putkv("fac0", fac0);
	serial_putkv("fac1", fac1);
	serial_putc('\n');
}

/* probe_ids reads the CPU id and the facility list. */
NOINLINE void probe_ids(void)
{
	uint64_t id;
	register uint64_t r0 __asm__("0") = 3; /* doublewords - 1 */

	__asm__ volatile("stidp %0" : "=Q"(id));
	__asm__ volatile("stfle %1" : "+d"(r0), "=Q"(probe_fac) : : "cc");
	probe_id[0] = id;
	probe_result(id, (id >> 16) & 0xffff, probe_fac[0], probe_fac[1]);
}

/* probe_sum_agh adds probe_addend to probe_sum with agh (z14). */
NOINLINE void probe_sum_agh(void)
{
	uint64_t s = probe_sum;

	LEAF_FRAME();
	__asm__ volatile(".insn rxy,0xe30000000038,%0,%1"	/* agh */
			 : "+d"(s) : "T"(probe_addend) : "cc");
	probe_sum = s;
}

/* probe_sum_ag adds probe_addend to probe_sum with a plain add. */
NOINLINE void probe_sum_ag(void)
{
	LEAF_FRAME();
	probe_sum += probe_addend;
}

/* probe_done is the final sync point; it prints the sum. */
NOINLINE void probe_done(void)
{
	serial_puts("probe:");
	serial_putkv("sum", probe_sum);
	serial_puts("\nprobe: done\n");
}

/* kmain is called by start.S in 64-bit mode. */
NOINLINE void kmain(void)
{
	int i;

	serial_puts("probe: start\n");
	probe_ids();
	for (i = 1; i <= 4; i++) {
		probe_addend = (int16_t)i;
		/* Facility n is bit 63 - n % 64 of doubleword n / 64. */
		if (probe_fac[0] & (1UL << (63 - 58)))
			probe_sum_agh();
		else
			probe_sum_ag();
	}
	probe_done();
	qemu_exit(0);
}
