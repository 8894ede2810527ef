package arch

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
)

// aarch64PState are the named bits of CPSR/PSTATE as gdb shows it.
var aarch64PState = []Bit{
	{"SP", 0, 1}, {"EL", 2, 2}, {"nRW", 4, 1}, {"F", 6, 1}, {"I", 7, 1},
	{"A", 8, 1}, {"D", 9, 1}, {"SSBS", 12, 1}, {"BTYPE", 10, 2}, {"IL", 20, 1},
	{"SS", 21, 1}, {"PAN", 22, 1}, {"UAO", 23, 1}, {"DIT", 24, 1}, {"TCO", 25, 1},
	{"V", 28, 1}, {"C", 29, 1}, {"Z", 30, 1}, {"N", 31, 1},
}

func init() {
	register(&Arch{
		Name:       "aarch64",
		PC:         "pc",
		SP:         "sp",
		FP:         "x29",
		PtrSize:    8,
		ArgRegs:    []string{"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"},
		Flags:      map[string][]Bit{"cpsr": aarch64PState},
		Disasm:     disasmAArch64,
		CallBefore: aarch64CallBefore,
		MaxCallLen: 4,
		Link:       "x30",
		DWARFRegs:  aarch64DWARF(),
		RetRegs:    []string{"x0"}, // x1 too for 128-bit values
		// x8 (indirect result), the temporaries x9-x18, the callee-saved
		// x19-x29 and the return address in x30 (code of the caller, which
		// moves between builds).
		EntryScratch: []string{"x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18",
			"x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30"},
		StackAlign:  16,
		StatusFlags: map[string][]string{"cpsr": {"N", "Z", "C", "V"}},
		FallThrough: aarch64FallThrough,
		LiveArgs: func(code []byte, pc uint64, callee func(uint64) ([]bool, bool)) []bool {
			return liveArgs(8, 0, aarch64Flow, code, pc, callee)
		},
		WatchBefore: true,
		// AAPCS64: x29 points at {previous x29, x30}.
		FrameRecord: &FrameLayout{PrevFP: 0, RetAddr: 8},
		BreakKind:   4,
	}, "arm64")
}

// aarch64DWARF is the AArch64 DWARF numbering: x0-x30, then sp (31).
func aarch64DWARF() []string {
	r := make([]string, 32)
	for i := range 31 {
		r[i] = fmt.Sprintf("x%d", i)
	}
	r[31] = "sp"
	return r
}

// disasmAArch64 disassembles one A64 instruction in GNU syntax, annotating
// PC-relative branch targets.
func disasmAArch64(code []byte, pc uint64, sym func(uint64) string) (string, int, error) {
	if len(code) < 4 {
		return "", 0, fmt.Errorf("aarch64 at %#x: %w: %d bytes", pc, ErrDecode, len(code))
	}
	inst, err := arm64asm.Decode(code[:4])
	if err != nil {
		return "", 0, fmt.Errorf("aarch64 at %#x: %w: %w", pc, ErrDecode, err)
	}
	text := a64NameSysRegs(inst, strings.TrimSpace(arm64asm.GNUSyntax(inst)))
	if sym != nil {
		for _, a := range inst.Args {
			if a == nil {
				break
			}
			if rel, ok := a.(arm64asm.PCRel); ok {
				target := pc + uint64(int64(rel))
				if s := sym(target); s != "" && s != fmt.Sprintf("%#x", target) {
					text += " <" + s + ">"
				}
				break
			}
		}
	}
	return text, 4, nil
}

// aarch64CallBefore reports whether the last four bytes of code are a BL or
// BLR (including the pointer-authenticated BLRA* forms).
func aarch64CallBefore(code []byte) bool {
	if len(code) < 4 {
		return false
	}
	w := binary.LittleEndian.Uint32(code[len(code)-4:])
	switch {
	case w&0xfc000000 == 0x94000000: // BL imm26
		return true
	case w&0xfffffc1f == 0xd63f0000: // BLR Xn
		return true
	case w&0xfefff800 == 0xd63f0800: // BLRAA/BLRAAZ/BLRAB/BLRABZ
		return true
	}
	return false
}
