/*
 * start.S (riscv64): entry for `qemu-system-riscv64 -M virt -bios none
 * -kernel x.elf`.
 *
 * QEMU's reset vector jumps to _start (0x80000000) in M-mode with a0 = hart
 * id and a1 = the device tree. We install a trap vector that reports any
 * trap and exits, zero .bss, set sp to the top of boot_stack, fp = ra = 0
 * (the frame chain ends there) and call kmain.
 */
	.section .text.boot, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	csrw mie, zero
	lla t0, boot_trap
	csrw mtvec, t0
	lla t1, __bss_start
	lla t2, __bss_end
1:	bgeu t1, t2, 2f
	sd zero, 0(t1)
	addi t1, t1, 8
	j 1b
2:	lla sp, boot_stack_top
	li fp, 0
	li ra, 0
	call kmain
	/* kmain never returns; if it does, exit with 0x7e. */
	li a0, 0x7e
	call qemu_exit
	.size _start, . - _start

	.balign 4
	.globl boot_trap
	.type boot_trap, @function
boot_trap:
	csrr s1, mcause
	csrr s2, mepc
	lla a0, trap_msg
	call serial_puts
	mv a0, s1
	call serial_puthex
	li a0, ' '
	call serial_putc
	mv a0, s2
	call serial_puthex
	li a0, '\n'
	call serial_putc
	li a0, 0x7f
	call qemu_exit
	.size boot_trap, . - boot_trap

	.section .rodata.boot, "a", @progbits
trap_msg:
	.asciz "trap: mcause/mepc "

	.section .bss.boot, "aw", @nobits
	.balign 16
	.globl boot_stack
	.type boot_stack, @object
boot_stack:
	.space 16384
	.size boot_stack, . - boot_stack
	.globl boot_stack_top
boot_stack_top:
