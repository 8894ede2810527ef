/* A tiny freestanding guest for the frame walk on aarch64, riscv64 and
   s390x, built by unwind_arch_test.go without call-frame information, so
   that only the frame-pointer chain (s390x: the -mbackchain stack back
   chain) and the link register find the callers. leaf sets up no frame
   (aarch64 omits leaf frame records; elsewhere it is a leaf too), dies
   ends with a call to a noreturn function. */
#define N __attribute__((noipa, used))

volatile long sink;
__attribute__((used, aligned(16))) char stack[16384];

N void nr(void) __attribute__((noreturn));

N long leaf(long x) { return x * 3 + sink; }

N long mid(long x) { long r = leaf(x + 1); sink = r; return r + 1; }

N void dies(long x) { sink = x; nr(); }

N long top(long x) { long r = mid(x) + mid(x + 1); sink = r; return r; }

N void kmain(void) { top(sink); dies(1); sink = 2; /* not a tail call */ }

N void nr(void) { for (;;) sink++; }

#if defined(__aarch64__)
__asm__(".pushsection .text\n.globl _start\n_start:\n"
	"	ldr x0, =stack+16384\n	mov sp, x0\n	mov x29, #0\n	mov x30, #0\n"
	"	bl kmain\n1:	b 1b\n.ltorg\n.popsection\n");
#elif defined(__riscv)
__asm__(".pushsection .text\n.globl _start\n_start:\n"
	"	.option push\n	.option norelax\n	la sp, stack+16384\n	.option pop\n"
	"	li s0, 0\n	li ra, 0\n	call kmain\n1:	j 1b\n.popsection\n");
#elif defined(__s390x__)
__asm__(".pushsection .text\n.globl _start\n_start:\n"
	"	larl %r15, stack+16384\n	aghi %r15, -160\n	xc 0(8,%r15), 0(%r15)\n"
	"	lghi %r14, 0\n	brasl %r14, kmain\n1:	j 1b\n.popsection\n");
#endif

