/* A bare aarch64 entry as a tiny guest writes it: a global label without
   a type, a literal pool ($d) inside it and code after it ($x again). */
	.text
	.globl _start
_start:
	ldr x0, =0x123456789abcdef0
	ldr x1, =stack_top
	mov sp, x1
	b 1f
	.ltorg
1:	bl helper
	b .
	.type helper, %function
helper:
	mov x0, #1
	ret
	.size helper, .-helper
	.bss
	.space 4096
stack_top:
