/*
 * plat.c (riscv64): serial output on the virt machine's NS16550A and exit
 * through its SiFive test device (QEMU's exit status is the value).
 */
#include "lib.h"

/* serial_putc writes one byte once the transmit holding register is empty. */
void serial_putc(char c)
{
	volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
	int spins = 100000;

	LEAF_FRAME();
	while (!(uart[5] & UART_LSR_THRE) && --spins)
		;
	uart[0] = (uint8_t)c;
}

/* qemu_exit ends QEMU through the SiFive test device. */
void qemu_exit(uint32_t value)
{
	volatile uint32_t *test = (volatile uint32_t *)TEST_BASE;

	LEAF_FRAME();
	*test = value ? (value << 16) | TEST_FAIL : TEST_PASS;
	for (;;)
		__asm__ volatile("wfi");
}
