package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestLongTMPDIR runs a scenario with $TMPDIR too long to hold a unix
// socket path below the run directory, as on some CI runners and macOS.
func TestLongTMPDIR(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 70))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	checkCLI(t, []cliCase{
		{"long TMPDIR", []string{"run", "--color", "never", scenarioPath(t, "demo-self.yaml")}, 0, []string{"IDENTICAL"}, nil},
	})
	if left, _ := os.ReadDir(long); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
