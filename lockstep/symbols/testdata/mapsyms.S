/* Fixture for TestMappingSymbols: mapping symbols ($x, $d, ... as ARM and
 * RISC-V assemblers emit them) and assembler-local labels (.L..., kept in
 * .symtab by -Wa,-L) in code that has only size-0 labels, as kernel entry
 * code does. None of them may name an address. */
	.text
	.globl	_start
	.type	_start, @function
_start:
	nop
	jmp	entry_asm
	.size	_start, .-_start

	.p2align 4
	.globl	entry_asm
entry_asm:
"$x":
	nop
	nop
.Lloop:
	nop
	nop
"$d":
	.long	0x12345678
"$a.1":
	nop
"$t":
	nop
"$xrv64i2p1_m2p0":
	nop
	ret

	.data
	.globl	table
	.type	table, @object
table:
	.long	1
	.size	table, 4
"$d.2":
	.long	2
