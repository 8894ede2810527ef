/*
 * arch.h (riscv64): the QEMU virt machine's NS16550A UART and SiFive test
 * device (exit), and the CPU model word deep.c mixes in. Included by ../lib.h.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

/* The virt machine's NS16550A: THR at 0, LSR at 5 (THRE is bit 5). */
#define UART_BASE 0x10000000UL
#define UART_LSR_THRE 0x20

/* The virt machine's sifive_test: 0x5555 exits 0, code<<16|0x3333 exits code. */
#define TEST_BASE 0x100000UL
#define TEST_PASS 0x5555U
#define TEST_FAIL 0x3333U

/*
 * arch_feature_word reads misa: its extension bits differ between -cpu rv64
 * and a model with an extension removed (rv64,c=false).
 */
ALWAYS_INLINE uint64_t arch_feature_word(void)
{
	uint64_t v;

	__asm__ volatile("csrr %0, misa" : "=r"(v));
	return v;
}

#endif
