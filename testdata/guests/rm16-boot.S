/*
 * rm16-boot.S: PVH entry of the 16-bit real-mode guests (rm16-good,
 * rm16-bad), linked by rm16.ld as an ELF32.
 *
 * QEMU's -kernel enters pvh_start in 32-bit protected mode (paging off).
 * The 16-bit part of the guest (rm16_enter, rm16_real and everything in
 * rm16.c) is linked to run at RM16_BASE (0x8000, below 64 KiB) but loaded
 * after this code at 1 MiB: pvh_start copies it down, zeroes its .bss, loads
 * a GDT with 16-bit segments, far-jumps to 16-bit protected mode, clears
 * CR0.PE and far-jumps to real mode with CS = DS = ES = SS = 0. So in the
 * 16-bit code eip is the linear address and the symbol address, and data
 * addresses are linear (what the gdbstub reads). Before that it copies
 * the 16-bit word at RM16_INPUT (guest-physical 2 MiB, zero unless QEMU's
 * -device loader puts a value there) to rm16_delta: the guest's input.
 * Interrupts stay off (no IVT is needed): every run is deterministic.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define RM16_INPUT 0x200000

	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 4				/* descsz: ELF32, a 32-bit entry */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start

	.section .text.boot, "ax", @progbits
	.code32
	.globl pvh_start
	.type pvh_start, @function
pvh_start:
	cli
	cld
	lgdt rm16_gdt_ptr
	ljmp $0x08, $1f
1:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss

	/* Copy the 16-bit image down to its link address and zero its .bss. */
	movl $__low_lma, %esi
	movl $__low_start, %edi
	movl $__low_end, %ecx
	subl %edi, %ecx
	rep movsb
	movl $__lowbss_start, %edi
	movl $__lowbss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	/*
	 * The input word: rm16_delta = the 16 bits at RM16_INPUT (2 MiB), which
	 * QEMU zeroes; `-device loader,addr=0x200000,data=N,data-len=2` sets it.
	 * eax is cleared so no register carries the input into rm_main.
	 */
	movzwl RM16_INPUT, %eax
	movw %ax, rm16_delta
	xorl %eax, %eax

	/* 16-bit protected mode, then real mode (rm16_enter). */
	ljmp $0x18, $rm16_enter
	.size pvh_start, . - pvh_start

	.section .rodata.boot, "a", @progbits
	.balign 16
	.globl rm16_gdt
	.type rm16_gdt, @object
rm16_gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code, flat */
	.quad 0x00cf92000000ffff	/* 0x10: 32-bit data, flat */
	.quad 0x00009a000000ffff	/* 0x18: 16-bit code, base 0, limit 64 KiB */
	.quad 0x000092000000ffff	/* 0x20: 16-bit data, base 0, limit 64 KiB */
	.size rm16_gdt, . - rm16_gdt
	.balign 8
rm16_gdt_ptr:
	.word 5 * 8 - 1
	.long rm16_gdt

	/* From here on: the 16-bit image, run at RM16_BASE. */
	.section .text.rm16, "ax", @progbits
	.code16
	.globl rm16_enter
	.type rm16_enter, @function
rm16_enter:
	movw $0x20, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl %cr0, %eax
	andl $~1, %eax
	movl %eax, %cr0
	ljmp $0, $rm16_real
	.size rm16_enter, . - rm16_enter

	.globl rm16_real
	.type rm16_real, @function
rm16_real:
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $rm16_stack_top, %esp
	xorl %ebp, %ebp
	calll rm_main
	/* rm_main never returns; if it does, exit with status (0x7e<<1)|1 = 253. */
	movl $0x7e, %eax
	outl %eax, $0xf4
1:	hlt
	jmp 1b
	.size rm16_real, . - rm16_real

	.section .bss.rm16, "aw", @nobits
	.balign 16
	.globl rm16_stack
	.type rm16_stack, @object
rm16_stack:
	.skip 2048
	.size rm16_stack, . - rm16_stack
rm16_stack_top:

	.section .note.GNU-stack, "", @progbits
