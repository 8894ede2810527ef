/*
 * rep.c: REP string instructions inside a step window, for comparing QEMU
 * versions that single-step and log them differently per iteration (QEMU
 * 7.2 against 10.0, docs/qemu-versions.md).
 *
 * kmain prints "rep: start", calls rep_start (the first sync point) and
 * rep_work: `rep stosq` (REP_QWORDS qwords), `rep movsb` (REP_BYTES bytes)
 * and `repe cmpsb` over the copy (all equal: runs to the end), each a few
 * instructions apart, then `repe cmpsb` of 8 zero bytes against the 8 bytes
 * at physical REP_PROBE (free RAM, zero unless a scenario writes there with
 * `-device loader`: then that REP stops early, a divergence inside a REP). Then it reads port REP_PORT: 0xff when no device
 * sits there, 0 with an isa-debug-exit at 0xf8 (a scenario puts one on one
 * side only). That `inb` is the guests' real first divergence, after the
 * REPs; the value goes into rep_value, rep_end's argument (the second
 * sync point) and the exit status.
 */
#include "lib.h"

#define REP_QWORDS 64
#define REP_BYTES 40
#define REP_PORT 0xf8
#define REP_PROBE 0x200000UL

uint64_t rep_fill[REP_QWORDS];
uint8_t rep_src[REP_BYTES] = "lockstep: rep movsb across QEMU versions";
uint8_t rep_dst[REP_BYTES];
uint8_t rep_zero[8];
volatile uint64_t rep_value;

/* rep_start is the sync point whose step window covers the REPs. */
NOINLINE void rep_start(void)
{
	LEAF_FRAME();
	__asm__ volatile("");
}

/* rep_end is reached with the port's value. */
NOINLINE void rep_end(uint64_t v)
{
	LEAF_FRAME();
	__asm__ volatile("" : : "r"(v));
}

/* rep_work runs the REP string instructions and returns the port value. */
NOINLINE uint64_t rep_work(void)
{
	void *d = rep_fill, *s;
	uint64_t n = REP_QWORDS;
	uint8_t v;

	__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0x5a5a5a5a5a5a5a5aUL) : "memory");
	d = rep_dst;
	s = rep_src;
	n = REP_BYTES;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	d = rep_dst;
	s = rep_src;
	n = REP_BYTES;
	__asm__ volatile("repe cmpsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory", "cc");
	rep_value = n;
	d = (void *)REP_PROBE;
	s = rep_zero;
	n = sizeof(rep_zero);
	__asm__ volatile("repe cmpsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory", "cc");
	rep_value += n;
	v = inb(REP_PORT);
	rep_value += v;
	return rep_value;
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint64_t v;

	serial_puts("rep: start\n");
	rep_start();
	v = rep_work();
	rep_end(v);
	serial_puthex(v);
	serial_puts("\nrep: done\n");
	qemu_exit(v == 0xff ? 0 : 1);
}
