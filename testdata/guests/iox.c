/*
 * iox.c: a performance regression that only exit statistics show.
 *
 * kmain calls iox_start (sync point), then writes IOX_WRITES bytes to port
 * 0x80 (the POST diagnostic port: no device behind it, so every write is a
 * plain I/O exit to QEMU under KVM and a no-op to the guest), then calls
 * iox_done (sync point) and exits 0. iox-quiet writes 16 bytes, iox-noisy
 * (-DIOX_NOISY) 20000; registers and memory are the same at both sync
 * points, so only the KVM io_exits counter tells the two apart.
 */
#include "lib.h"

#ifdef IOX_NOISY
#define IOX_WRITES 20000
#else
#define IOX_WRITES 16
#endif

#define POST_PORT 0x80

/* iox_count is how many port writes were made (the same on both sides
 * once it is clamped; only the exits differ). */
volatile uint64_t iox_count;

/* iox_start is the first sync point. */
NOINLINE void iox_start(void)
{
	LEAF_FRAME();
	__asm__ volatile("");
}

/* iox_done is the second sync point. */
NOINLINE void iox_done(void)
{
	LEAF_FRAME();
	__asm__ volatile("");
}

/* kmain is called by boot.S in long mode with interrupts off. */
NOINLINE void kmain(void)
{
	uint32_t i;

	serial_puts("iox: start\n");
	iox_start();
	for (i = 0; i < IOX_WRITES; i++)
		outb(POST_PORT, (uint8_t)i);
	iox_count = i > 16 ? 16 : i;
	iox_done();
	serial_puts("iox: done\n");
	qemu_exit(0);
}
