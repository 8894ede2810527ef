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
