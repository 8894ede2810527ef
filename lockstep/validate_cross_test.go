package lockstep_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestValidateCrossKernels checks the kernel ELF against the side's arch
// with the aarch64, riscv64 and s390x guests: a kernel of another
// architecture (even when symbols name a matching file), the 64-bit
// spelling of EM_RISCV, bios: none as a keyword (refused where the machine
// cannot start without firmware, s390x), and a bare riscv64 image at the
// start of RAM under QEMU's default firmware.
func TestValidateCrossKernels(t *testing.T) {
	arm := qemutest.CrossGuest(t, "aarch64", "demo-good")
	rv := qemutest.CrossGuest(t, "riscv64", "demo-good")
	s390 := qemutest.CrossGuest(t, "s390x", "demo-good")
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "v.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, guests string
		want         []string // empty: valid
	}{
		{"aarch64", "  defaults: {arch: aarch64, kernel: " + arm + "}", nil},
		{"riscv64 bios none", "  defaults: {arch: riscv64, bios: none, kernel: " + rv + "}", nil},
		{"s390x defaults", "  defaults: {arch: s390x, kernel: " + s390 + "}", nil},
		{"riscv64 kernel, aarch64 symbols", "  defaults: {arch: aarch64, kernel: " + arm + "}\n  b: {kernel: " + rv + ", symbols: " + arm + "}",
			[]string{"v.yaml:", "guest b: kernel " + rv + " is built for riscv64, but arch is aarch64"}},
		{"s390x kernel as riscv64", "  defaults: {arch: riscv64, bios: none, kernel: " + rv + "}\n  b: {kernel: " + s390 + "}",
			[]string{"guest b:", "is built for s390x, but arch is riscv64"}},
		{"aarch64 bios none", "  defaults: {arch: aarch64, bios: none, kernel: " + arm + "}", nil},
		{"s390x bios none", "  defaults: {arch: s390x, bios: none, kernel: " + s390 + "}",
			[]string{"v.yaml:3:", "guest a: bios: none on s390x: ", "s390-ccw.img", "leave bios out"}},
		{"riscv64 under OpenSBI", "  defaults: {arch: riscv64, kernel: " + rv + "}",
			[]string{"v.yaml:", "loads at 0x80000000, where QEMU's default firmware (OpenSBI) sits; set bios: none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.guests, "\n  b:") {
				tt.guests += "\n  b: {}"
			}
			p := write("name: v\nguests:\n" + tt.guests + "\n  a: {}\nsync:\n  - break: kmain\n")
			_, err := lockstep.Validate(p)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid scenario refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("validated")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestCrossBIOSNoneRuns runs the demo with bios: none on aarch64, which
// lockstep validated but QEMU refused ("Could not find ROM image 'none'":
// an infrastructure failure, exit 3): aarch64 virt has no firmware with
// -kernel, so bios: none leaves -bios out.
func TestCrossBIOSNoneRuns(t *testing.T) {
	sc := loadCross(t, crossArch{arch: "aarch64"}, "demo")
	for i := range sc.Guests {
		sc.Guests[i].BIOS = scenario.BIOSNone
	}
	res := runScenario(t, sc)
	if res.Outcome != lockstep.OutcomeDiverged || res.Error != "" {
		t.Fatalf("outcome %s, error %q; want the demo's divergences", res.Outcome, res.Error)
	}
}
