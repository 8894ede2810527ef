package compare

import (
	"errors"
	"strings"
	"testing"
)

// FuzzIgnoreValid checks that ignore-rule parsing never panics, that its
// errors keep their identity, and that an accepted bit rule really masks
// that bit in Registers. Seeds are in testdata/fuzz/FuzzIgnoreValid.
func FuzzIgnoreValid(f *testing.F) {
	f.Add("eflags.RF")
	f.Fuzz(func(t *testing.T, rule string) {
		err := IgnoreValid(rule, testFlags)
		if err != nil {
			if !errors.Is(err, ErrBadIgnore) {
				t.Fatalf("IgnoreValid(%q) error %v is not ErrBadIgnore", rule, err)
			}
			return
		}
		reg, bit, dotted := strings.Cut(strings.TrimSpace(rule), ".")
		a := regs(reg, be(0, 4))
		b := regs(reg, be(0xffffffff, 4))
		got := Registers(a, b, RegOptions{Ignore: []string{rule}, Flags: map[string][]FlagBit{strings.ToLower(reg): eflagsBits}})
		if !dotted {
			if len(got) != 0 {
				t.Fatalf("rule %q did not ignore %s: %+v", rule, reg, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("rule %q: Registers() = %+v, want one diff", rule, got)
		}
		for _, n := range got[0].Bits {
			if strings.EqualFold(n, bit) {
				t.Fatalf("rule %q: bit %s still reported: %+v", rule, bit, got[0])
			}
		}
	})
}
