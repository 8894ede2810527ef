/*
 * start.S (aarch64): entry for `qemu-system-aarch64 -M virt -kernel x.elf`.
 *
 * QEMU enters _start at EL1 with the MMU and caches off and interrupts
 * masked. We install a vector table that reports any exception and powers
 * off, zero .bss, set sp to the top of boot_stack, x29 = x30 = 0 (the frame
 * chain ends there) and call kmain.
 */
	.section .text.boot, "ax", %progbits
	.globl _start
	.type _start, %function
_start:
	adrp x0, vectors
	add x0, x0, :lo12:vectors
	msr vbar_el1, x0
	isb
	adrp x1, __bss_start
	add x1, x1, :lo12:__bss_start
	adrp x2, __bss_end
	add x2, x2, :lo12:__bss_end
1:	cmp x1, x2
	b.hs 2f
	str xzr, [x1], #8
	b 1b
2:	adrp x0, boot_stack_top
	add x0, x0, :lo12:boot_stack_top
	mov sp, x0
	mov x29, #0
	mov x30, #0
	bl kmain
	/* kmain never returns; if it does, exit with 0x7e. */
	mov w0, #0x7e
	bl qemu_exit
	.size _start, . - _start

	.globl boot_trap
	.type boot_trap, %function
boot_trap:
	mrs x19, esr_el1
	mrs x20, elr_el1
	adrp x0, trap_msg
	add x0, x0, :lo12:trap_msg
	bl serial_puts
	mov x0, x19
	bl serial_puthex
	mov w0, #' '
	bl serial_putc
	mov x0, x20
	bl serial_puthex
	mov w0, #'\n'
	bl serial_putc
	mov w0, #0x7f
	bl qemu_exit
	.size boot_trap, . - boot_trap

	/* Every one of the 16 vectors goes to boot_trap. */
	.balign 2048
vectors:
	.rept 16
	.balign 128
	b boot_trap
	.endr

	.section .rodata.boot, "a", %progbits
trap_msg:
	.asciz "trap: esr/elr "

	.section .bss.boot, "aw", %nobits
	.balign 16
	.globl boot_stack
	.type boot_stack, %object
boot_stack:
	.space 16384
	.size boot_stack, . - boot_stack
	.globl boot_stack_top
boot_stack_top:
