/*
 * lib.c: serial output on COM1 and isa-debug-exit for the demo guests.
 */
#include "lib.h"

#if defined(__x86_64__) || defined(__i386__)
/* serial_putc writes one byte to COM1 once the transmitter is empty. */
void serial_putc(char c)
{
	int spins = 100000;

	LEAF_FRAME();
	while (!(inb(COM1_PORT + 5) & 0x20) && --spins)
		;
	outb(COM1_PORT, (uint8_t)c);
}

#endif

/* serial_puts writes a NUL-terminated string to COM1. */
void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

/* serial_puthex writes v as 0x followed by 16 hex digits. */
void serial_puthex(uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	serial_putc('0');
	serial_putc('x');
	for (i = 60; i >= 0; i -= 4)
		serial_putc(digits[(v >> i) & 0xf]);
}

/* serial_putkv writes " key=0x...". */
void serial_putkv(const char *key, uint64_t v)
{
	serial_putc(' ');
	serial_puts(key);
	serial_putc('=');
	serial_puthex(v);
}

#if defined(__x86_64__) || defined(__i386__)
/* qemu_exit ends QEMU through isa-debug-exit: status is (value << 1) | 1. */
void qemu_exit(uint32_t value)
{
	LEAF_FRAME();
	outl(DEBUG_EXIT_PORT, value);
	for (;;)
		__asm__ volatile("cli; hlt");
}

#endif

/* memset is here because the compiler may emit calls to it. */
void *memset(void *d, int c, unsigned long n)
{
	uint8_t *p = d;

	LEAF_FRAME();
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

/* memcpy is here because the compiler may emit calls to it. */
void *memcpy(void *d, const void *s, unsigned long n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	LEAF_FRAME();
	while (n--)
		*p++ = *q++;
	return d;
}
