/* mrs and msr of the system registers SysRegName knows, and one it does
   not, for cross_test.go to compare with objdump. */
	.arch armv8.5-a+rng+memtag+sve
	.text
	.globl _start
_start:
	mrs x0, midr_el1
	mrs x1, mpidr_el1
	mrs x2, id_aa64pfr0_el1
	mrs x3, id_aa64isar0_el1
	mrs x4, id_aa64isar1_el1
	mrs x5, id_aa64mmfr0_el1
	mrs x6, id_aa64zfr0_el1
	mrs x7, ctr_el0
	mrs x8, dczid_el0
	mrs x9, currentel
	mrs x10, nzcv
	mrs x11, daif
	mrs x12, fpcr
	mrs x13, fpsr
	mrs x14, tpidr_el0
	mrs x15, cntvct_el0
	mrs x16, cntfrq_el0
	mrs x17, sctlr_el1
	mrs x18, esr_el1
	mrs x19, far_el1
	mrs x20, mvfr0_el1
	mrs x21, rndr
	mrs x22, id_pfr0_el1
	msr vbar_el1, x0
	msr tpidr_el1, x1
	msr mair_el1, x2
	msr tcr_el1, x3
	msr ttbr0_el1, x4
	msr cntv_ctl_el0, x5
	msr hcr_el2, x6
	mrs x0, s3_0_c15_c2_0
	ret
