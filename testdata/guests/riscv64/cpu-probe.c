/*
 * cpu-probe.c (riscv64): one binary whose behaviour depends on the CPU model.
 *
 * probe_ids reads misa, mvendorid, marchid and mimpid into probe_id[] and
 * calls probe_result with them (a0..a3 at that breakpoint). It then acts on
 * misa's C bit: with compressed instructions (-cpu rv64) it sums with
 * probe_sum_rvc, which runs a compressed c.add, without (rv64,c=false) with
 * probe_sum_plain, so the call path differs too; then probe_done, then exit.
 * The rest of the guest is built without C, so it runs on both.
 */
#include "lib.h"

#define MISA_C (1UL << ('C' - 'A'))

/* probe_id holds misa, mvendorid, marchid and mimpid. */
uint64_t probe_id[4];

/* probe_sum is what the sums go to. */
uint64_t probe_sum;

/* probe_result is a sync point: a0=misa, a1=mvendorid, a2=marchid, a3=mimpid. */
NOINLINE void probe_result(uint64_t misa, uint64_t vendor, uint64_t arch,
			   uint64_t impl)
{
	serial_puts("probe: id");
	serial_putkv("misa", misa);
	serial_putkv("mvendorid", vendor);
	serial_putkv("marchid", arch);
	serial_putkv("mimpid", impl);
	serial_putc('\n');
}

/* probe_ids reads the ID CSRs. */
NOINLINE void probe_ids(void)
{
	uint64_t misa, vendor, arch, impl;

	__asm__ volatile("csrr %0, misa" : "=r"(misa));
	__asm__ volatile("csrr %0, mvendorid" : "=r"(vendor));
	__asm__ volatile("csrr %0, marchid" : "=r"(arch));
	__asm__ volatile("csrr %0, mimpid" : "=r"(impl));
	probe_id[0] = misa;
	probe_id[1] = vendor;
	probe_id[2] = arch;
	probe_id[3] = impl;
	probe_result(misa, vendor, arch, impl);
}

/* probe_sum_rvc adds v to probe_sum with a compressed c.add. */
NOINLINE void probe_sum_rvc(uint64_t v)
{
	uint64_t s = probe_sum;

	LEAF_FRAME();
	/* c.add and c.nop: 4 bytes, so what follows stays 4-byte aligned. */
	__asm__ volatile(".option push\n\t.option rvc\n\tc.add %0, %1\n\t"
			 "c.nop\n\t.option pop"
			 : "+r"(s) : "r"(v));
	probe_sum = s;
}

/* probe_sum_plain adds v to probe_sum with an uncompressed add. */
NOINLINE void probe_sum_plain(uint64_t v)
{
	LEAF_FRAME();
	probe_sum += v;
}

/* probe_done is the final sync point; it prints the sum. */
NOINLINE void probe_done(void)
{
	serial_puts("probe:");
	serial_putkv("sum", probe_sum);
	serial_puts("\nprobe: done\n");
}

/* kmain is called by start.S in M-mode. */
NOINLINE void kmain(void)
{
	uint64_t i;

	serial_puts("probe: start\n");
	probe_ids();
	for (i = 1; i <= 4; i++) {
		if (probe_id[0] & MISA_C)
			probe_sum_rvc(i);
		else
			probe_sum_plain(i);
	}
	probe_done();
	qemu_exit(0);
}
