// Package arch holds what lockstep knows about each guest architecture: the
// names of the program counter, stack and frame pointers, argument
// registers, named flag bits, call instruction encodings and a disassembler.
// Each architecture lives in its own file (x86_64.go, aarch64.go); register
// layouts themselves come from the gdbstub's target.xml, not from here.
package arch
