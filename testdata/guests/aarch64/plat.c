/*
 * plat.c (aarch64): serial output on the virt machine's PL011 and exit
 * through PSCI SYSTEM_OFF (QEMU exits with status 0 whatever the value: the
 * value is printed first when it is not 0).
 */
#include "lib.h"

/* serial_putc writes one byte to the PL011 once its FIFO has room. */
void serial_putc(char c)
{
	volatile uint32_t *fr = (volatile uint32_t *)UART_FR;
	volatile uint32_t *dr = (volatile uint32_t *)UART_DR;
	int spins = 100000;

	LEAF_FRAME();
	while ((*fr & UART_FR_TXFF) && --spins)
		;
	*dr = (uint8_t)c;
}

/*
 * qemu_exit powers the machine off with PSCI SYSTEM_OFF, or, for a failure
 * (value not 0), resets it with SYSTEM_RESET: PSCI has no exit status, and
 * QEMU exits with 0 after both, but says which it was.
 */
void qemu_exit(uint32_t value)
{
	if (value) {
		serial_puts("exit:");
		serial_putkv("value", value);
		serial_putc('\n');
	}
	{
		register uint64_t x0 __asm__("x0") = value ? PSCI_SYSTEM_RESET : PSCI_SYSTEM_OFF;

		__asm__ volatile("hvc #0" : "+r"(x0) : : "memory");
	}
	for (;;)
		__asm__ volatile("wfi");
}
