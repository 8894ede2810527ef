package arch

import "testing"

// FuzzDisasm checks that no architecture's disassembler or call detector
// panics, and that a decoded length fits the input. Seeds are in
// testdata/fuzz/FuzzDisasm.
func FuzzDisasm(f *testing.F) {
	f.Add([]byte{0x55, 0x48, 0x89, 0xe5}, uint64(0x100000))
	f.Fuzz(func(t *testing.T, code []byte, pc uint64) {
		for _, name := range Names() {
			a, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			text, n, err := a.Disasm(code, pc, func(addr uint64) string {
				if addr&1 == 0 {
					return "sym"
				}
				return ""
			})
			if err == nil && (n <= 0 || n > len(code) || text == "") {
				t.Errorf("%s Disasm(% x) = %q, %d: bad length or empty text", name, code, text, n)
			}
			a.CallBefore(code)
		}
	})
}

// FuzzX86Flow checks that the x86 control-flow readers (FallThrough in
// every mode, LiveArgs over all paths) never panic or loop, that a
// fall-through lies after the instruction, and that liveness has one
// answer per argument register. Seeds are in testdata/fuzz/FuzzX86Flow.
func FuzzX86Flow(f *testing.F) {
	f.Add([]byte{0x48, 0x85, 0xff, 0x74, 0x04, 0x48, 0x89, 0xf0, 0xc3, 0x31, 0xc0, 0xc3}, uint64(0x1000))
	f.Add([]byte{0x31, 0xc0, 0x48, 0x01, 0xf8, 0x48, 0xff, 0xc9, 0x75, 0xf8, 0xc3}, uint64(0x1000))
	f.Fuzz(func(t *testing.T, code []byte, pc uint64) {
		for _, mode := range []int{16, 32, 64} {
			if next, ok := X86FallThrough(code, pc, mode); ok && (next-pc == 0 || next-pc > 15) {
				t.Errorf("X86FallThrough(% x, %#x, %d) = %#x", code, pc, mode, next)
			}
		}
		live := X86LiveArgs(code, pc, func(target uint64) ([]bool, bool) {
			return []bool{target&1 == 0}, target&2 == 0
		})
		if len(live) != len(x86ArgFamilies) {
			t.Errorf("X86LiveArgs gave %d answers", len(live))
		}
	})
}

// FuzzFlow checks that the control-flow readers of aarch64, riscv64 and
// s390x (FallThrough, LiveArgs over all paths, CallBefore) never panic or
// loop, that a fall-through lies just after the instruction, and that
// liveness has one answer per argument register. Seeds are in
// testdata/fuzz/FuzzFlow.
func FuzzFlow(f *testing.F) {
	f.Add([]byte{0xe0, 0x03, 0x01, 0xaa, 0xc0, 0x03, 0x5f, 0xd6}, uint64(0x40080000))
	f.Add([]byte{0x2d, 0x9d, 0x82, 0x80}, uint64(0x80000000))
	f.Add([]byte{0xec, 0x26, 0x00, 0x09, 0x00, 0xd9, 0x07, 0xfe}, uint64(0x10000))
	f.Fuzz(func(t *testing.T, code []byte, pc uint64) {
		for _, name := range []string{"aarch64", "riscv64", "s390x"} {
			a, _ := Lookup(name)
			if next, ok := a.FallThrough(code, pc); ok && (next-pc == 0 || next-pc > 6) {
				t.Errorf("%s FallThrough(% x, %#x) = %#x", name, code, pc, next)
			}
			live := a.LiveArgs(code, pc, func(target uint64) ([]bool, bool) {
				return []bool{target&1 == 0}, target&2 == 0
			})
			if len(live) != len(a.ArgRegs) {
				t.Errorf("%s LiveArgs gave %d answers", name, len(live))
			}
			a.CallBefore(code)
		}
	})
}
