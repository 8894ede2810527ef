/*
 * arch.h (aarch64): the QEMU virt machine's PL011 UART and PSCI, and the CPU
 * model word deep.c mixes in. Included by ../lib.h.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

/* The virt machine's PL011: data register and flag register (TXFF is bit 5). */
#define UART_BASE 0x09000000UL
#define UART_DR (UART_BASE + 0x00)
#define UART_FR (UART_BASE + 0x18)
#define UART_FR_TXFF (1U << 5)

/*
 * PSCI SYSTEM_OFF and SYSTEM_RESET, through HVC: QEMU provides PSCI when
 * -kernel starts at EL1. QEMU exits with status 0 after either (a reset
 * under -no-reboot); its SHUTDOWN event says which (guest-shutdown,
 * guest-reset), and lockstep reports a reset as such.
 */
#define PSCI_SYSTEM_OFF 0x84000008UL
#define PSCI_SYSTEM_RESET 0x84000009UL

/*
 * arch_feature_word reads ID_AA64ISAR0_EL1 (instruction set attributes):
 * cortex-a57 and max differ in it (max has LSE atomics, SHA3, RDM, ...).
 */
ALWAYS_INLINE uint64_t arch_feature_word(void)
{
	uint64_t v;

	__asm__ volatile("mrs %0, id_aa64isar0_el1" : "=r"(v));
	return v;
}

#endif
