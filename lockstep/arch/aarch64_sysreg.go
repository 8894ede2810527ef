package arch

import (
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
)

// a64SysRegs names the common AArch64 system registers by their
// op0_op1_CRn_CRm_op2 encoding, as arm64asm prints an unnamed one
// ("S3_0_C0_C0_0"): the ID registers, the EL1 control, exception, memory
// and timer registers, the EL0-visible ones (NZCV, FPCR, TPIDR_EL0,
// counters) and a few of EL2/EL3. It is not the full architecture list;
// anything else stays in the generic s3_... form, which objdump also
// accepts.
var a64SysRegs = map[string]string{
	"S3_0_C0_C0_0": "MIDR_EL1", "S3_0_C0_C0_5": "MPIDR_EL1", "S3_0_C0_C0_6": "REVIDR_EL1",
	"S3_0_C0_C1_0": "ID_PFR0_EL1", "S3_0_C0_C1_1": "ID_PFR1_EL1", "S3_0_C0_C1_2": "ID_DFR0_EL1",
	"S3_0_C0_C1_3": "ID_AFR0_EL1", "S3_0_C0_C1_4": "ID_MMFR0_EL1", "S3_0_C0_C1_5": "ID_MMFR1_EL1",
	"S3_0_C0_C1_6": "ID_MMFR2_EL1", "S3_0_C0_C1_7": "ID_MMFR3_EL1",
	"S3_0_C0_C2_0": "ID_ISAR0_EL1", "S3_0_C0_C2_1": "ID_ISAR1_EL1", "S3_0_C0_C2_2": "ID_ISAR2_EL1",
	"S3_0_C0_C2_3": "ID_ISAR3_EL1", "S3_0_C0_C2_4": "ID_ISAR4_EL1", "S3_0_C0_C2_5": "ID_ISAR5_EL1",
	"S3_0_C0_C2_6": "ID_MMFR4_EL1", "S3_0_C0_C2_7": "ID_ISAR6_EL1",
	"S3_0_C0_C3_0": "MVFR0_EL1", "S3_0_C0_C3_1": "MVFR1_EL1", "S3_0_C0_C3_2": "MVFR2_EL1",
	"S3_0_C0_C3_4": "ID_PFR2_EL1",
	"S3_0_C0_C4_0": "ID_AA64PFR0_EL1", "S3_0_C0_C4_1": "ID_AA64PFR1_EL1", "S3_0_C0_C4_4": "ID_AA64ZFR0_EL1",
	"S3_0_C0_C4_5": "ID_AA64SMFR0_EL1",
	"S3_0_C0_C5_0": "ID_AA64DFR0_EL1", "S3_0_C0_C5_1": "ID_AA64DFR1_EL1", "S3_0_C0_C5_4": "ID_AA64AFR0_EL1",
	"S3_0_C0_C5_5": "ID_AA64AFR1_EL1",
	"S3_0_C0_C6_0": "ID_AA64ISAR0_EL1", "S3_0_C0_C6_1": "ID_AA64ISAR1_EL1", "S3_0_C0_C6_2": "ID_AA64ISAR2_EL1",
	"S3_0_C0_C7_0": "ID_AA64MMFR0_EL1", "S3_0_C0_C7_1": "ID_AA64MMFR1_EL1", "S3_0_C0_C7_2": "ID_AA64MMFR2_EL1",
	"S3_1_C0_C0_0": "CCSIDR_EL1", "S3_1_C0_C0_1": "CLIDR_EL1", "S3_1_C0_C0_7": "AIDR_EL1",
	"S3_2_C0_C0_0": "CSSELR_EL1", "S3_3_C0_C0_1": "CTR_EL0", "S3_3_C0_C0_7": "DCZID_EL0",
	"S3_0_C1_C0_0": "SCTLR_EL1", "S3_0_C1_C0_1": "ACTLR_EL1", "S3_0_C1_C0_2": "CPACR_EL1",
	"S3_0_C2_C0_0": "TTBR0_EL1", "S3_0_C2_C0_1": "TTBR1_EL1", "S3_0_C2_C0_2": "TCR_EL1",
	"S3_0_C4_C0_0": "SPSR_EL1", "S3_0_C4_C0_1": "ELR_EL1", "S3_0_C4_C1_0": "SP_EL0",
	"S3_0_C4_C2_0": "SPSEL", "S3_0_C4_C2_2": "CURRENTEL", "S3_0_C4_C2_3": "PAN", "S3_0_C4_C2_4": "UAO",
	"S3_3_C4_C2_0": "NZCV", "S3_3_C4_C2_1": "DAIF", "S3_3_C4_C2_5": "DIT", "S3_3_C4_C2_6": "SSBS",
	"S3_3_C4_C2_7": "TCO", "S3_3_C4_C4_0": "FPCR", "S3_3_C4_C4_1": "FPSR",
	"S3_0_C5_C1_0": "AFSR0_EL1", "S3_0_C5_C1_1": "AFSR1_EL1", "S3_0_C5_C2_0": "ESR_EL1",
	"S3_0_C6_C0_0": "FAR_EL1", "S3_0_C7_C4_0": "PAR_EL1",
	"S3_0_C10_C2_0": "MAIR_EL1", "S3_0_C10_C3_0": "AMAIR_EL1",
	"S3_0_C12_C0_0": "VBAR_EL1", "S3_0_C12_C1_0": "ISR_EL1",
	"S3_0_C13_C0_1": "CONTEXTIDR_EL1", "S3_0_C13_C0_4": "TPIDR_EL1",
	"S3_3_C13_C0_2": "TPIDR_EL0", "S3_3_C13_C0_3": "TPIDRRO_EL0",
	"S3_0_C14_C1_0": "CNTKCTL_EL1",
	"S3_3_C14_C0_0": "CNTFRQ_EL0", "S3_3_C14_C0_1": "CNTPCT_EL0", "S3_3_C14_C0_2": "CNTVCT_EL0",
	"S3_3_C14_C2_0": "CNTP_TVAL_EL0", "S3_3_C14_C2_1": "CNTP_CTL_EL0", "S3_3_C14_C2_2": "CNTP_CVAL_EL0",
	"S3_3_C14_C3_0": "CNTV_TVAL_EL0", "S3_3_C14_C3_1": "CNTV_CTL_EL0", "S3_3_C14_C3_2": "CNTV_CVAL_EL0",
	"S3_3_C9_C12_0": "PMCR_EL0", "S3_3_C9_C13_0": "PMCCNTR_EL0",
	"S3_3_C2_C4_0": "RNDR", "S3_3_C2_C4_1": "RNDRRS",
	"S2_0_C0_C2_2": "MDSCR_EL1",
	"S3_4_C0_C0_0": "VPIDR_EL2", "S3_4_C0_C0_5": "VMPIDR_EL2",
	"S3_4_C1_C0_0": "SCTLR_EL2", "S3_4_C1_C1_0": "HCR_EL2",
	"S3_4_C4_C0_0": "SPSR_EL2", "S3_4_C4_C0_1": "ELR_EL2", "S3_4_C5_C2_0": "ESR_EL2",
	"S3_4_C12_C0_0": "VBAR_EL2",
	"S3_6_C1_C0_0":  "SCTLR_EL3", "S3_6_C1_C1_0": "SCR_EL3",
}

// SysRegName returns the architectural name of an AArch64 system register
// written in its generic form ("s3_0_c0_c0_0" or "S3_0_C0_C0_0" ->
// "MIDR_EL1"), or "" when the table does not know it.
func SysRegName(generic string) string {
	return a64SysRegs[strings.ToUpper(generic)]
}

// a64NameSysRegs rewrites the generic system-register operands of inst in
// text (GNU syntax, lowercase) to their names.
func a64NameSysRegs(inst arm64asm.Inst, text string) string {
	for _, a := range inst.Args {
		if a == nil {
			break
		}
		if _, ok := a.(arm64asm.Systemreg); !ok {
			continue
		}
		g := a.String()
		if n := a64SysRegs[g]; n != "" {
			text = strings.Replace(text, strings.ToLower(g), strings.ToLower(n), 1)
		}
	}
	return text
}
