package qemutest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

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

// KVMUsable reports why KVM cannot be used, or nil when /dev/kvm opens
// read-write and a qemu64 x86_64 machine starts under it. Nested KVM can
// open and still refuse the vCPU state QEMU sets at reset ("failed to set
// MSR 0x10a"): that host cannot run KVM guests, and the tests skip.
func KVMUsable() error { return KVMUsableCPU("qemu64") }

// KVMUsableCPU is KVMUsable for one CPU model ("max" passes host features
// through, which a nested host may refuse where qemu64 works).
func KVMUsableCPU(cpu string) error {
	kvmMu.Lock()
	defer kvmMu.Unlock()
	if err, ok := kvmProbed[cpu]; ok {
		return err
	}
	err := probeKVM(cpu)
	kvmProbed[cpu] = err
	return err
}

// RequireKVM skips the test unless an x86_64 machine with CPU model cpu
// starts under KVM here.
func RequireKVM(t testing.TB, cpu string) {
	t.Helper()
	Require(t, "x86_64", "tcg")
	if err := KVMUsableCPU(cpu); err != nil {
		t.Skipf("KVM unavailable for -cpu %s: %v", cpu, err)
	}
}

var (
	kvmMu     sync.Mutex
	kvmProbed = map[string]error{}
)

func probeKVM(cpu string) error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/kvm: %w", err)
	}
	f.Close()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil // nothing to probe with; the tests skip on QEMU anyway
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-accel", "kvm", "-machine", "pc", "-cpu", cpu,
		"-display", "none", "-nodefaults", "-S", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + `{"execute":"quit"}` + "\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("a -cpu %s KVM machine does not start here (%v): %s", cpu, err, msg)
	}
	return nil
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

// CrossGuest returns the path of a guest built for arch (aarch64, riscv64,
// s390x) from testdata/guests by cross.mk, e.g. CrossGuest(t, "riscv64",
// "demo-good") gives testdata/guests/build/riscv64/demo-good.elf. It skips
// the test, with the reason, when qemu-system-<arch> or the Debian cross
// compiler <arch>-linux-gnu-gcc is missing; a failed build fails the test.
func CrossGuest(t testing.TB, arch, name string) string {
	t.Helper()
	Require(t, arch, "tcg")
	root := Root(t)
	path := filepath.Join(root, "testdata", "guests", "build", arch, name+".elf")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if _, err := exec.LookPath(arch + "-linux-gnu-gcc"); err != nil {
		t.Skipf("%s-linux-gnu-gcc not installed (Debian package gcc-%s-linux-gnu), so the %s guests cannot be built: %v", arch, arch, arch, err)
	}
	crossMu.Lock()
	defer crossMu.Unlock()
	if _, err := os.Stat(path); err != nil {
		out, err := exec.Command("make", "-C", filepath.Join(root, "testdata", "guests"), "cross-"+arch).CombinedOutput()
		if err != nil {
			t.Fatalf("building the %s guests: %v\n%s", arch, err, out)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("guest %s/%s not produced by make -C testdata/guests cross-%s: %v", arch, name, arch, err)
	}
	return path
}

var crossMu sync.Mutex
