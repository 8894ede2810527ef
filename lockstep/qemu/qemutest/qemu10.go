package qemutest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// QEMU10Wrapper is the name of the wrapper script testdata/qemu10/fetch.sh
// writes into its cache directory.
const QEMU10Wrapper = "qemu-system-x86_64-10"

// RequireQEMU10 skips the test unless the QEMU 10.0 cache made by
// `make qemu10` (testdata/qemu10/fetch.sh) is there, and returns its
// wrapper (which sets QEMU_MODULE_DIR and -L). The directory is
// $LOCKSTEP_QEMU10, else ~/.cache/lockstep/qemu10.
func RequireQEMU10(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LOCKSTEP_QEMU10")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("QEMU 10 cache: no home directory: %v", err)
		}
		dir = filepath.Join(home, ".cache", "lockstep", "qemu10")
	}
	bin := filepath.Join(dir, QEMU10Wrapper)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("QEMU 10 cache missing (%v): run `make qemu10` to unpack QEMU 10.0 from bookworm-backports", err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(string(out), "version 10.") {
		t.Skipf("%s --version: %q, %v: not a working QEMU 10 (re-run `make qemu10`)", bin, strings.TrimSpace(string(out)), err)
	}
	return bin
}
