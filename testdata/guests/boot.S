/*
 * boot.S: PVH entry for the lockstep demo guests.
 *
 * QEMU's -kernel loads an ELF64 carrying a XEN_ELFNOTE_PHYS32_ENTRY note and
 * enters pvh_start in 32-bit protected mode with paging off and ebx holding
 * the physical address of the hvm_start_info. We load a GDT, identity-map the
 * first 1 GiB with 2 MiB pages, enable long mode and SSE, zero .bss, set up a
 * stack and call kmain with rbp = 0 so frame-pointer walks stop there.
 * Interrupts stay disabled throughout: the guests are fully deterministic.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MSR_EFER 0xc0000080

	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 8				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.quad pvh_start

	.section .text.boot, "ax", @progbits
	.code32
	.globl pvh_start
	.type pvh_start, @function
pvh_start:
	cli
	cld
	movl %ebx, pvh_start_info
	lgdt gdt_ptr
	movl $boot_stack_top, %esp

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

	/* CR0: PG | PE | MP, clear EM (SSE usable). */
	movl %cr0, %eax
	andl $~(1 << 2), %eax
	orl $(1 << 31) | (1 << 1) | 1, %eax
	movl %eax, %cr0

	ljmp $0x08, $long_entry
	.size pvh_start, . - pvh_start

	.code64
	.globl long_entry
	.type long_entry, @function
long_entry:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs

	/* Zero .bss (QEMU already does; this keeps the image self-sufficient). */
	movabsq $__bss_start, %rdi
	movabsq $__bss_end, %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq

	movabsq $boot_stack_top, %rsp
	xorl %ebp, %ebp
	call kmain

	/* kmain never returns; if it does, exit with status (0x7e<<1)|1 = 253. */
	movl $0x7e, %eax
	outl %eax, $0xf4
1:	hlt
	jmp 1b
	.size long_entry, . - long_entry

	.section .rodata.boot, "a", @progbits
	.balign 16
	.globl boot_gdt
	.type boot_gdt, @object
boot_gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* 0x10: data, DPL 0 */
	.size boot_gdt, . - boot_gdt
	.balign 8
gdt_ptr:
	.word 3 * 8 - 1
	.long boot_gdt

	.section .data.boot, "aw", @progbits
	.balign 4096
	.globl boot_pml4
	.type boot_pml4, @object
boot_pml4:
	.quad boot_pdpt + 0x3		/* present | writable */
	.fill 511, 8, 0
	.size boot_pml4, . - boot_pml4

	.globl boot_pdpt
	.type boot_pdpt, @object
boot_pdpt:
	.quad boot_pd + 0x3
	.fill 511, 8, 0
	.size boot_pdpt, . - boot_pdpt

	/* 512 x 2 MiB pages: identity map of the first 1 GiB. */
	.globl boot_pd
	.type boot_pd, @object
boot_pd:
	.set .Lpde, 0
	.rept 512
	.quad (.Lpde << 21) | 0x83	/* present | writable | page size */
	.set .Lpde, .Lpde + 1
	.endr
	.size boot_pd, . - boot_pd

	.balign 8
	.globl pvh_start_info
	.type pvh_start_info, @object
pvh_start_info:
	.quad 0
	.size pvh_start_info, . - pvh_start_info

	.section .bss.boot, "aw", @nobits
	.balign 16
	.globl boot_stack
	.type boot_stack, @object
boot_stack:
	.skip 16384
	.size boot_stack, . - boot_stack
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
