package engine

import (
	"bytes"
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

// TestSVEViews checks that v0-v31 of an aarch64 model without SVE are
// compared with the low 128 bits of z0-z31 of one with SVE, whichever side
// has SVE, so a difference there is found (before, both sets were only
// noted as one model's registers, and a scenario comparing `vector`
// between cortex-a57 and max passed with nothing compared).
func TestSVEViews(t *testing.T) {
	t.Parallel()
	v0 := bytes.Repeat([]byte{0x11}, 16)
	z0 := append(bytes.Repeat([]byte{0xee}, 16), bytes.Repeat([]byte{0x11}, 15)...)
	z0 = append(z0, 0x12) // the low byte differs from v0's
	for _, sveSide := range []int{0, 1} {
		var caps [2]*capture
		caps[1-sveSide] = &capture{regs: compare.Regs{Names: []string{"x0", "v0", "fpsr"},
			Values: map[string][]byte{"x0": {1}, "v0": v0, "fpsr": {0}}}}
		caps[sveSide] = &capture{regs: compare.Regs{Names: []string{"x0", "z0", "p0", "fpsr"},
			Values: map[string][]byte{"x0": {1}, "z0": z0, "p0": {0}, "fpsr": {0}}}}
		sveViews(caps)
		sve := caps[sveSide].regs
		if !slices.Contains(sve.Names, "v0") || !bytes.Equal(sve.Values["v0"], z0[16:]) {
			t.Fatalf("SVE side %d: v0 %x in %v, want the low 128 bits of z0 %x", sveSide, sve.Values["v0"], sve.Names, z0[16:])
		}
		if slices.Contains(caps[1-sveSide].regs.Names, "z0") {
			t.Errorf("the model without SVE got a z0")
		}
		d := compare.Registers(caps[0].regs, caps[1].regs, compare.RegOptions{})
		found := false
		for _, r := range d {
			found = found || r.Name == "v0"
		}
		if !found {
			t.Errorf("SVE side %d: v0 against z0's low half not compared: diffs %+v", sveSide, d)
		}
	}
}
