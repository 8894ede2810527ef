/* A bare riscv64 entry: a global label without a type; the assembler
   emits $xrv64... mapping symbols (with the ISA string) at it. */
	.option norvc
	.text
	.globl _start
_start:
	la sp, stack_top
	call helper
	j .
	.type helper, %function
helper:
	li a0, 1
	ret
	.size helper, .-helper
	.word 0x12345678
	.bss
	.space 4096
stack_top:
