/* A tiny x86-64 program with hand-written ORC tables (the 6.1 layout:
 * sp_reg:4 bp_reg:4 type:2 end:1), for TestBacktraceORC. No CFI, no frame
 * pointers: only ORC can unwind it. ORC_REG_SP is 5, type CALL 0. */
/* ORC(sp_off, bits) describes the code from here to the next ORC(). */
#define ORC(sp_off, bits) \
	771: .pushsection .orc_unwind_ip, "a"; .long 771b - .; .popsection; \
	.pushsection .orc_unwind, "a"; .short sp_off, 0, bits; .popsection
#define SP_CALL 0x0005
#define END     0x0400

	.text
	.globl _start
	.type _start, @function
_start:
	ORC(0, END)
	call top
1:	jmp 1b
	.size _start, . - _start

	.globl top
	.type top, @function
top:
	ORC(8, SP_CALL)
	push %rbx
	ORC(16, SP_CALL)
	call leaf
	pop %rbx
	ORC(8, SP_CALL)
	ret
	.size top, . - top

	.globl leaf
	.type leaf, @function
leaf:
	ORC(8, SP_CALL)
	sub $0x18, %rsp
	ORC(0x20, SP_CALL)
	nop			/* leaf+4: TestBacktraceORC stops here */
	add $0x18, %rsp
	ORC(8, SP_CALL)
	ret
	.size leaf, . - leaf
