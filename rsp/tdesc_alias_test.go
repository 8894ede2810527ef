package rsp

import "testing"

// TestLookupExactBeforeAlias checks that a register's exact name wins over
// another register's lower-cased alias: QEMU's aarch64 description has
// fpsr (FPU) and FPSR (system registers), and reading "fpsr" must not read
// FPSR, whichever comes first.
func TestLookupExactBeforeAlias(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`<target><architecture>aarch64</architecture><feature name="x"><reg name="fpsr" bitsize="32"/><reg name="FPSR" bitsize="64"/></feature></target>`,
		`<target><architecture>aarch64</architecture><feature name="x"><reg name="FPSR" bitsize="64"/><reg name="fpsr" bitsize="32"/></feature></target>`,
	} {
		l, err := ParseTargetXML([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"fpsr", "FPSR"} {
			if r, ok := l.Lookup(name); !ok || r.Name != name {
				t.Errorf("Lookup(%q) = %+v, want the register of that exact name", name, r)
			}
		}
		if r, ok := l.Lookup("Fpsr"); !ok || (r.Name != "fpsr" && r.Name != "FPSR") {
			t.Errorf("Lookup(Fpsr) = %+v", r)
		}
	}
}
