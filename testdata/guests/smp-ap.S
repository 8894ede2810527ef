/*
 * smp-ap.S: the application processor's way from the SIPI to ap_main, for
 * the smp guest (smp.c).
 *
 * ap_trampoline..ap_trampoline_end is position-independent 16-bit code:
 * the BSP copies it to SMP_TRAMPOLINE (0x8000) and sends a SIPI with vector
 * 0x08, so the AP starts there in real mode with CS = 0x0800, IP = 0. It
 * loads ap_gdt (DS = CS) and far-jumps to ap_pm32 in the image at 1 MiB,
 * which enables PAE, loads boot.S's page tables (boot_pml4: the BSP's), sets
 * EFER.LME and paging and enters ap_long, which sets rsp to the top of
 * ap_stack and rbp to 0 and calls ap_main. Interrupts stay off.
 */

#define MSR_EFER 0xc0000080

	.section .text, "ax", @progbits
	.code16
	.globl ap_trampoline
	.type ap_trampoline, @function
ap_trampoline:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl ap_gdt_ptr - ap_trampoline
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x18, $ap_pm32
	.balign 8
ap_gdt_ptr:
	.word 4 * 8 - 1
	.long ap_gdt
	.globl ap_trampoline_end
ap_trampoline_end:
	.size ap_trampoline, . - ap_trampoline

	.code32
	.globl ap_pm32
	.type ap_pm32, @function
ap_pm32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss

	/* CR4: PAE | OSFXSR | OSXMMEXCPT. */
	movl %cr4, %eax
	orl $(1 << 5) | (1 << 9) | (1 << 10), %eax
	movl %eax, %cr4

	movl $boot_pml4, %eax
	movl %eax, %cr3

	/* EFER.LME. */
	movl $MSR_EFER, %ecx
	rdmsr
	orl $(1 << 8), %eax
	wrmsr

	/* CR0: PG | PE | MP, clear EM. */
	movl %cr0, %eax
	andl $~(1 << 2), %eax
	orl $(1 << 31) | (1 << 1) | 1, %eax
	movl %eax, %cr0

	ljmp $0x08, $ap_long
	.size ap_pm32, . - ap_pm32

	.code64
	.globl ap_long
	.type ap_long, @function
ap_long:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movabsq $ap_stack_top, %rsp
	xorl %ebp, %ebp
	call ap_main
	/* ap_main does not return; if it does, park the AP. */
1:	cli
	hlt
	jmp 1b
	.size ap_long, . - ap_long

	.section .rodata, "a", @progbits
	.balign 16
	.globl ap_gdt
	.type ap_gdt, @object
ap_gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
	.size ap_gdt, . - ap_gdt

	.section .bss, "aw", @nobits
	.balign 16
	.globl ap_stack
	.type ap_stack, @object
ap_stack:
	.skip 8192
	.size ap_stack, . - ap_stack
ap_stack_top:

	.section .note.GNU-stack, "", @progbits
