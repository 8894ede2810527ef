package qemutest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// Root returns the module root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("qemutest: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Require skips the test unless qemu-system-<arch> is installed and, for
// each accel given ("tcg", "kvm"), that accelerator is usable. It returns
// the path of the QEMU binary.
func Require(t testing.TB, arch string, accels ...string) string {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-" + arch)
	if err != nil {
		t.Skipf("qemu-system-%s not installed (Debian package %s): %v", arch, qemu.DebianPackage(arch), err)
	}
	for _, a := range accels {
		if a == "kvm" {
			if err := KVMUsable(); err != nil {
				t.Skipf("KVM unavailable: %v", err)
			}
		}
	}
	return bin
}

// RequireGDB skips the test unless gdb is installed, returning its path.
func RequireGDB(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("gdb")
	if err != nil {
		t.Skipf("gdb not installed (Debian package gdb): %v", err)
	}
	return bin
}

// KVMUsable reports why /dev/kvm cannot be used, or nil when it opens
// read-write.
func KVMUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/kvm: %w", err)
	}
	return f.Close()
}

var buildOnce sync.Once
var buildErr error
var buildOut []byte

// Guest returns the path of a demo guest built from testdata/guests (e.g.
// "demo-good" gives testdata/guests/build/demo-good.elf). It runs make once
// per test binary when the guest is missing, and fails the test (it does not
// skip: the guests are part of the source tree) when the build fails.
func Guest(t testing.TB, name string) string {
	t.Helper()
	root := Root(t)
	path := filepath.Join(root, "testdata", "guests", "build", name+".elf")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	buildOnce.Do(func() {
		cmd := exec.Command("make", "-C", filepath.Join(root, "testdata", "guests"))
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building demo guests: %v\n%s", buildErr, buildOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("guest %s not produced by make -C testdata/guests: %v", name, err)
	}
	return path
}
