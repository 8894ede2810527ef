/*
 * start.S (s390x): entry for `qemu-system-s390x -M s390-ccw-virtio -kernel
 * x.elf`.
 *
 * QEMU starts the ELF entry (not 0x10000, so it is not taken for Linux) in
 * 64-bit mode with the prefix at 0 and interrupts off. We point the
 * program-check and restart new PSWs at a disabled wait (a fault ends QEMU
 * as a guest panic instead of looping), zero .bss, set r15 to the top of
 * boot_stack less a 160-byte register save area whose back chain is 0, and
 * call kmain with r14 = 0.
 */
	.section .text.boot, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	larl %r1, trap_psw
	mvc 0x1d0(16, %r0), 0(%r1)	/* program new PSW */
	mvc 0x1a0(16, %r0), 0(%r1)	/* restart new PSW */
	larl %r1, __bss_start
	larl %r2, __bss_end
1:	clgr %r1, %r2
	jhe 2f
	mvghi 0(%r1), 0
	aghi %r1, 8
	j 1b
2:	larl %r15, boot_stack_top
	aghi %r15, -160
	xc 0(8, %r15), 0(%r15)
	lghi %r14, 0
	lghi %r11, 0
	brasl %r14, kmain
	/* kmain never returns; if it does, exit with 0x7e. */
	lghi %r2, 0x7e
	brasl %r14, qemu_exit
	.size _start, . - _start

	.section .rodata.boot, "a", @progbits
	.balign 8
	/* A disabled wait at 0xdead000: QEMU reports a guest panic. */
trap_psw:
	.quad 0x0002000180000000, 0xdead000

	.section .bss.boot, "aw", @nobits
	.balign 16
	.globl boot_stack
	.type boot_stack, @object
boot_stack:
	.space 16384
	.size boot_stack, . - boot_stack
	.globl boot_stack_top
boot_stack_top:
