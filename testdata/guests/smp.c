/*
 * smp.c: a two-vCPU guest whose application processor runs a sync point.
 *
 * Run with -smp 2. kmain (on the BSP) prints "smp: start", maps the local
 * APIC (0xfee00000: one 2 MiB page in a page directory of its own, since
 * boot.S maps only the first 1 GiB), copies smp-ap.S's real-mode trampoline
 * to SMP_TRAMPOLINE and calls smp_start_ap, which sends INIT, SIPI, SIPI
 * (vector 0x08) to all processors but itself through the ICR. The AP comes
 * up through the trampoline in long mode on the BSP's page tables and
 * calls ap_main, which reads its APIC ID (1) and calls ap_work(id) (the
 * sync point on the AP): ap_work stores ap_fold(id) in ap_result, ap_main
 * then sets ap_done and parks the AP (cli; hlt). The BSP spins on ap_done
 * (no counter, so its registers do not depend on how long it spun), calls
 * smp_done(ap_id, ap_result) (a sync point on the BSP), prints
 * "smp: ap id=0x... result=0x..." and "smp: done" and exits 0 (status 1),
 * or 1 (status 3) when the AP's ID or result is not what the BSP computes.
 */
#include "lib.h"

#define LAPIC_BASE 0xfee00000UL
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_PENDING (1u << 12)
/* Destination shorthand "all excluding self", level assert. */
#define ICR_ALL_BUT_SELF 0x000c4000u
#define ICR_INIT 0x500u
#define ICR_STARTUP 0x600u

#define SMP_TRAMPOLINE 0x8000UL
#define AP_SEED 0x6170776f726b2121UL

extern uint64_t boot_pdpt[512];
extern char ap_trampoline[], ap_trampoline_end[];

/* smp_lapic_pd maps 3..4 GiB: only the 2 MiB page of the local APIC. */
uint64_t smp_lapic_pd[512] __attribute__((aligned(4096)));

/* ap_result is ap_work's result, written by the AP. */
volatile uint64_t ap_result;
/* ap_id is the AP's APIC ID, ap_done is set by the AP after ap_work. */
volatile uint32_t ap_id;
volatile uint32_t ap_done;

ALWAYS_INLINE uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

ALWAYS_INLINE void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

/* ap_fold folds an APIC ID into a result (both processors call it). */
NOINLINE uint64_t ap_fold(uint64_t id)
{
	uint64_t x = AP_SEED ^ id;
	int i;

	LEAF_FRAME();
	for (i = 0; i < 16; i++)
		x = (x ^ (x >> 29)) * 0x9e3779b97f4a7c15UL + (uint64_t)i;
	return x;
}

/* ap_work runs on the AP only (sync point): it stores ap_fold(id). */
NOINLINE uint64_t ap_work(uint64_t id)
{
	uint64_t x = ap_fold(id);

	ap_result = x;
	return x;
}

/* ap_main is called by smp-ap.S on the AP, in long mode. */
NORETURN void ap_main(void)
{
	uint32_t id = lapic_read(LAPIC_ID) >> 24;

	ap_id = id;
	ap_work(id);
	ap_done = 1;
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* lapic_map maps the local APIC's page and enables the APIC. */
NOINLINE void lapic_map(void)
{
	uint64_t cr3;

	smp_lapic_pd[(LAPIC_BASE >> 21) & 511] = (LAPIC_BASE & ~0x1fffffUL) | 0x9b; /* P W PWT PCD PS */
	boot_pdpt[3] = (uint64_t)smp_lapic_pd | 0x3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	lapic_write(LAPIC_SVR, 0x1ff);
}

/* icr_send writes the ICR and waits until the APIC has sent it. */
NOINLINE void icr_send(uint32_t lo)
{
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, lo);
	while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
		__asm__ volatile("pause");
}

/* smp_start_ap copies the trampoline down and sends INIT, SIPI, SIPI. */
NOINLINE void smp_start_ap(void)
{
	memcpy((void *)SMP_TRAMPOLINE, ap_trampoline, (unsigned long)(ap_trampoline_end - ap_trampoline));
	icr_send(ICR_ALL_BUT_SELF | ICR_INIT);
	icr_send(ICR_ALL_BUT_SELF | ICR_STARTUP | (SMP_TRAMPOLINE >> 12));
	icr_send(ICR_ALL_BUT_SELF | ICR_STARTUP | (SMP_TRAMPOLINE >> 12));
}

/* smp_done is the BSP's sync point after the AP finished; it prints. */
NOINLINE int smp_done(uint64_t id, uint64_t result)
{
	serial_puts("smp: ap");
	serial_putkv("id", id);
	serial_putkv("result", result);
	serial_putc('\n');
	if (id != 1 || result != ap_fold(1)) {
		serial_puts("smp: wrong ap result\n");
		return 1;
	}
	serial_puts("smp: done\n");
	return 0;
}

/* kmain is called by boot.S on the BSP in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	serial_puts("smp: start\n");
	lapic_map();
	smp_start_ap();
	while (!ap_done)
		__asm__ volatile("pause");
	qemu_exit(smp_done(ap_id, ap_result));
}
