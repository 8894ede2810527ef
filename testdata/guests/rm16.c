/*
 * rm16.c: the 16-bit real-mode guest, built with gcc -m16 (32-bit C run in
 * real mode through operand- and address-size prefixes) and entered from
 * rm16-boot.S with CS = DS = ES = SS = 0, interrupts off.
 *
 * Built as rm16-good (no flags) and rm16-bad (-DRM16_BAD). rm_main runs, in
 * order: "rm16: start", rm_checksum(rm_input, 32), rm_fill(rm_table, 16),
 * the planted store rm_table[5] = RM16_PLANT + rm16_delta, rm_done(sum),
 * "rm16: done", exit(0). RM16_PLANT is 0x1111 (good) or 0x1112 (bad): one
 * immediate is the only byte that differs between the two ELFs (same
 * layout). rm16_delta is the guest's input (see below), 0 by default.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define NOINLINE __attribute__((noinline))
#define NORETURN __attribute__((noreturn))
#define COM1_PORT 0x3f8
#define DEBUG_EXIT_PORT 0xf4

#ifdef RM16_BAD
#define RM16_PLANT 0x1112
#else
#define RM16_PLANT 0x1111
#endif

/* rm_table (16 x u16, 32 bytes): rm_fill's pattern, then the planted store. */
u16 rm_table[16];

/*
 * rm16_delta is the input word rm16-boot.S copies from guest-physical
 * 0x200000 (0 unless `-device loader,addr=0x200000,data=N,data-len=2`);
 * it is added to the planted value, so one binary given input 1 stores
 * what rm16-bad stores.
 */
u16 rm16_delta;

/* rm_input is what rm_checksum reads. */
const u8 rm_input[32] = {
	0x52, 0x65, 0x61, 0x6c, 0x20, 0x6d, 0x6f, 0x64,
	0x65, 0x3a, 0x20, 0x73, 0x65, 0x67, 0x6d, 0x65,
	0x6e, 0x74, 0x20, 0x3c, 0x3c, 0x20, 0x34, 0x20,
	0x2b, 0x20, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74,
};

static inline __attribute__((always_inline)) void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline __attribute__((always_inline)) void outl(u16 port, u32 v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline __attribute__((always_inline)) u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* rm_putc writes one byte to COM1 once the transmitter is empty. */
NOINLINE void rm_putc(char c)
{
	int spins = 10000;

	while (!(inb(COM1_PORT + 5) & 0x20) && --spins)
		;
	outb(COM1_PORT, (u8)c);
}

/* rm_puts writes a NUL-terminated string to COM1. */
NOINLINE void rm_puts(const char *s)
{
	while (*s)
		rm_putc(*s++);
}

/* rm_puthex writes v as 0x followed by 4 hex digits. */
NOINLINE void rm_puthex(u16 v)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	rm_putc('0');
	rm_putc('x');
	for (i = 12; i >= 0; i -= 4)
		rm_putc(digits[(v >> i) & 0xf]);
}

/* rm_checksum is a 16-bit Fletcher-like sum of n bytes at p (sync point). */
NOINLINE u16 rm_checksum(const u8 *p, u16 n)
{
	u16 a = 1, b = 0;

	while (n--) {
		a = (u16)(a + *p++);
		b = (u16)(b + a);
	}
	return (u16)(b << 8 ^ a);
}

/* rm_fill stores t[i] = (i + 1) * 0x0101 for i < n (sync point). */
NOINLINE void rm_fill(u16 *t, u16 n)
{
	u16 i;

	for (i = 0; i < n; i++)
		t[i] = (u16)((i + 1) * 0x0101);
}

/* rm_done prints the sum and rm_table[5] (sync point). */
NOINLINE void rm_done(u16 sum)
{
	rm_puts("rm16: sum=");
	rm_puthex(sum);
	rm_puts(" table[5]=");
	rm_puthex(rm_table[5]);
	rm_putc('\n');
}

/* rm_exit ends QEMU through isa-debug-exit: status is (value << 1) | 1. */
NORETURN NOINLINE void rm_exit(u32 value)
{
	outl(DEBUG_EXIT_PORT, value);
	for (;;)
		__asm__ volatile("cli; hlt");
}

NORETURN void rm_main(void)
{
	u16 sum;

	rm_puts("rm16: start\n");
	sum = rm_checksum(rm_input, sizeof(rm_input));
	rm_fill(rm_table, 16);
	rm_table[5] = (u16)(RM16_PLANT + rm16_delta);
	rm_done(sum);
	rm_puts("rm16: done\n");
	rm_exit(0);
}
