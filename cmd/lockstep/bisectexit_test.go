package main

import (
	"path/filepath"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestRunBisectScenarioErrors checks that under --bisect no scenario error
// exits 2, which git bisect run counts as bad: a scenario that does not
// fit this commit's build (a missing kernel, a sync symbol it lacks) skips
// the commit (125), and an error in the scenario file stops the bisection
// (128). None starts QEMU.
func TestRunBisectScenarioErrors(t *testing.T) {
	good := qemutest.Guest(t, "demo-good")
	missing := filepath.Join(t.TempDir(), "vmlinux")
	unknownSym := writeScenario(t, "unknown.yaml", okHead+"sync:\n  - break: kmain_renamed\n", good)
	noKernel := writeScenario(t, "nokernel.yaml", okHead+"sync:\n  - break: kmain\n", missing)
	syntax := writeScenario(t, "syntax.yaml", "name: bad\nguests: {a: {label: one}\n  b: [\n", "")
	badKey := writeScenario(t, "badkey.yaml", okHead+"sync:\n  - break: kmain\nexpct: identical\n", good)
	checkBad(t, []badCase{
		{"unknown symbol skips", []string{"run", "--bisect", unknownSym}, 125, []string{"kmain_renamed", "skips the commit"}, nil},
		{"missing kernel skips", []string{"run", "--bisect", noKernel}, 125, []string{"vmlinux", "skips the commit"}, nil},
		{"syntax error stops", []string{"run", "--bisect", syntax}, 128, []string{"syntax.yaml:", "stops git bisect run"}, nil},
		{"unknown key stops", []string{"run", "--bisect", badKey}, 128, []string{"expct", "stops git bisect run"}, nil},
		{"bad format stops", []string{"run", "--bisect", "--format", "pdf", unknownSym}, 128, []string{"pdf"}, nil},
		{"without --bisect still 2", []string{"run", unknownSym}, 2, []string{"kmain_renamed"}, nil},
	})
}
