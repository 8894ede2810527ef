package scenario_test

import (
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

// TestArchDefaultsAndNoFirmware checks each architecture's machine and CPU
// defaults and that bios: none is the keyword for no firmware, not a path
// (a file called none is ./none).
func TestArchDefaultsAndNoFirmware(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		guest, machine, cpu, bios string
	}{
		{"{arch: aarch64}", "virt", "cortex-a57", ""},
		{"{arch: riscv64, bios: none}", "virt", "rv64", scenario.BIOSNone},
		{"{arch: s390x}", "s390-ccw-virtio", "qemu", ""},
		{"{arch: riscv64, bios: ./none}", "virt", "rv64", "/scen/none"},
		{"{arch: x86_64, bios: fw.bin}", "pc", "qemu64", "/scen/fw.bin"},
	} {
		t.Run(tt.guest, func(t *testing.T) {
			s, err := scenario.Parse("/scen/s.yaml", []byte("name: n\nguests:\n  defaults: "+tt.guest+"\n  a: {}\n  b: {}\nsync:\n  - break: 0x1000\n"))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range s.Guests {
				if g.Machine != tt.machine || g.CPU != tt.cpu || g.BIOS != tt.bios || (len(g.Args) != 0) != (tt.machine == "pc") {
					t.Errorf("side %s: machine %q cpu %q bios %q args %q; want %q %q %q, args only on x86", g.Side, g.Machine, g.CPU, g.BIOS, g.Args, tt.machine, tt.cpu, tt.bios)
				}
			}
		})
	}
}

// TestArchAlias checks that another spelling of an architecture (Go's
// arm64, Debian's amd64) names the one QEMU uses, at the arch field,
// instead of asking for a machine and CPU of an unknown architecture.
func TestArchAlias(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ arch, want string }{
		{"arm64", `s.yaml:3:20: guests.a.arch: "arm64" is not what QEMU calls it: use aarch64 (qemu-system-aarch64)`},
		{"amd64", `use x86_64`},
		{"s390", `use s390x`},
	} {
		_, err := scenario.Parse("/scen/s.yaml", []byte("name: n\nguests:\n  defaults: {arch: "+tt.arch+"}\n  a: {}\n  b: {}\nsync:\n  - break: 0x1000\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "required") {
			t.Errorf("arch %s: error %v, want %q and nothing required", tt.arch, err, tt.want)
		}
	}
}
