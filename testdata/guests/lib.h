/*
 * lib.h: freestanding helpers shared by the lockstep demo guests: port I/O,
 * COM1 serial output and isa-debug-exit.
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef short int16_t;

#define NOINLINE __attribute__((noinline))
#define NORETURN __attribute__((noreturn))
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/*
 * LEAF_FRAME forces a push rbp / mov rsp,rbp frame in a leaf function: gcc 12
 * omits it in leaves despite -mno-omit-leaf-frame-pointer, and lockstep's
 * backtraces walk the rbp chain.
 */
#define LEAF_FRAME() __asm__ volatile("" : : "r"(__builtin_frame_address(0)))

#if defined(__x86_64__) || defined(__i386__)
/* COM1 and the isa-debug-exit port QEMU is started with. */
#define COM1_PORT 0x3f8
#define DEBUG_EXIT_PORT 0xf4

ALWAYS_INLINE void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

ALWAYS_INLINE void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

ALWAYS_INLINE uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
#else
/*
 * Other architectures (aarch64/, riscv64/, s390x/): arch.h, found through
 * -I<arch>, has the UART, the exit device and arch_feature_word().
 */
#include "arch.h"
#endif

void serial_putc(char c);
void serial_puts(const char *s);
void serial_puthex(uint64_t v);
void serial_putkv(const char *key, uint64_t v);
NORETURN void qemu_exit(uint32_t value);

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

#endif
