package lockstep

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

// TestNoReverse checks when a hold can be under record/replay, and that
// the reason it cannot says why.
func TestNoReverse(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img (qemu-utils) not installed: every hold would say so")
	}
	guests := func(accel string, smp int, kernelB string) [2]scenario.Guest {
		return [2]scenario.Guest{
			{Accel: scenario.AccelTCG, Kernel: "/k", Symbols: "/k", SMP: 1},
			{Accel: accel, Kernel: kernelB, Symbols: kernelB, SMP: smp},
		}
	}
	tests := []struct {
		name   string
		record bool
		method string
		g      [2]scenario.Guest
		sync   int
		steps  int
		want   string // "" when reverse execution is possible
	}{
		{"recorded", true, scenario.MethodAuto, guests(scenario.AccelTCG, 1, "/k"), 0, 41, ""},
		{"replay localisation", false, scenario.MethodReplay, guests(scenario.AccelTCG, 1, "/k"), 0, 41, ""},
		{"at a sync point", true, scenario.MethodAuto, guests(scenario.AccelTCG, 1, "/k"), 1, 0, ""},
		{"not recorded", false, scenario.MethodAuto, guests(scenario.AccelTCG, 1, "/k"), 0, 41, "not recorded"},
		{"kvm", true, scenario.MethodAuto, guests(scenario.AccelKVM, 1, "/k"), 0, 41, "KVM"},
		{"smp", true, scenario.MethodAuto, guests(scenario.AccelTCG, 2, "/k"), 0, 41, "vCPUs"},
		{"two builds", true, scenario.MethodAuto, guests(scenario.AccelTCG, 1, "/k2"), 0, 41, "different builds"},
		{"from reset", true, scenario.MethodAuto, guests(scenario.AccelTCG, 1, "/k"), -1, 3000, "from reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &scenario.Scenario{Guests: tt.g}
			sc.Determinism.Record = tt.record
			sc.Localize.Method = tt.method
			h := &Hold{r: &run{sc: sc}, Sync: tt.sync, Steps: tt.steps}
			got := h.noReverse()
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("noReverse() = %q, want %q", got, tt.want)
			}
		})
	}
}
