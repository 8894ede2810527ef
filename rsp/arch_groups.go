package rsp

import "strings"

// The register groups of aarch64, riscv and s390x, by target-description
// feature, the same on every CPU model. QEMU's descriptions differ between
// models of one architecture: aarch64 puts fpsr and fpcr in group "float"
// inside the SVE feature on max and leaves them ungrouped (so "system") in
// the FPU feature on cortex-a57; riscv's FPU registers have a union type
// (so "vector"); s390x has groups "psw", "access" and "control", and the
// low halves of v0-v15 ungrouped. Each function returns the group of r;
// the target description's own group stays in Register.TDescGroup.

// aarch64Group: core → general; fpsr, fpcr → float; the FPU's v0-v31 and
// SVE's z, p, ffr and vg → vector; everything else (QEMU's system
// registers, pauth, mte) → system.
func aarch64Group(r *Register) string {
	f := strings.ToLower(r.Feature)
	n := strings.ToLower(r.Name)
	switch {
	case strings.HasSuffix(f, ".aarch64.core"):
		return "general"
	case n == "fpsr" || n == "fpcr":
		return "float"
	case strings.HasSuffix(f, ".aarch64.fpu") || strings.HasSuffix(f, ".aarch64.sve"):
		return "vector"
	}
	return "system"
}

// riscvGroup: cpu → general; fpu (and fflags, frm, fcsr wherever they are)
// → float; vector → vector; everything else (CSRs, priv) → system.
func riscvGroup(r *Register) string {
	f := strings.ToLower(r.Feature)
	n := strings.ToLower(r.Name)
	switch {
	case strings.HasSuffix(f, ".riscv.cpu"):
		return "general"
	case strings.HasSuffix(f, ".riscv.fpu") || n == "fflags" || n == "frm" || n == "fcsr":
		return "float"
	case strings.HasSuffix(f, ".riscv.vector"):
		return "vector"
	}
	return "system"
}

// s390Group: core (r0-r15, pswm, pswa) → general; fpr (fpc, f0-f15) →
// float; vx (v0l-v15l, v16-v31) → vector; everything else (access and
// control registers, guarded storage, virtualisation) → system.
func s390Group(r *Register) string {
	f := strings.ToLower(r.Feature)
	switch {
	case strings.HasSuffix(f, ".s390.core"):
		return "general"
	case strings.HasSuffix(f, ".s390.fpr"):
		return "float"
	case strings.HasSuffix(f, ".s390.vx"):
		return "vector"
	}
	return "system"
}
