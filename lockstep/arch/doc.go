// Package arch holds what lockstep knows about each guest architecture: the
// names of the program counter, stack and frame pointers and link register,
// the argument, return and scratch registers of the C calling convention,
// named flag bits, call instruction encodings, fall-through and argument
// liveness (flow.go walks every path of a function for aarch64, riscv64
// and s390x; x86_args.go for x86-64), the frame-record layout, breakpoint
// kinds, write-watchpoint timing and a disassembler (golang.org/x/arch).
// Each architecture lives in its own file (x86_64.go, aarch64.go with
// aarch64_flow.go and aarch64_sysreg.go, riscv64.go, s390x.go); register
// layouts themselves come from the gdbstub's target.xml, not from here.
//
// Facts measured against QEMU 7.2 (TCG) and the Debian cross toolchains:
// aarch64 and riscv64 report a write watchpoint before the store, x86 and
// s390x after it; QEMU's TCG gdbstub ignores the Z0/Z1 kind; GCC's riscv64
// frame record is {fp-16: caller's fp, fp-8: ra}, and a leaf saves only the
// caller's fp at fp-8; s390x has no frame-pointer chain (the back chain
// exists only with -mbackchain, r14 is saved in the caller's register save
// area at 112).
package arch
