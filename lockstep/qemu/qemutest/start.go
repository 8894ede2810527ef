package qemutest

import (
	"context"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// Start starts spec for a test and registers its Close in t.Cleanup. It
// skips the test (via Require) when qemu-system-<arch> or the requested
// accelerator is unavailable, and fails it when QEMU does not start. An
// empty spec.Arch means x86_64.
func Start(t testing.TB, spec qemu.Spec) *qemu.Instance {
	t.Helper()
	if spec.Arch == "" && spec.Binary == "" {
		spec.Arch = "x86_64"
	}
	if spec.Binary == "" {
		var accels []string
		if spec.Accel != "" {
			accels = append(accels, spec.Accel)
		}
		Require(t, spec.Arch, accels...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inst, err := qemu.Start(ctx, spec, qemu.Options{Name: t.Name()})
	if err != nil {
		cancel()
		t.Fatalf("start qemu: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := inst.Close(cctx); err != nil {
			t.Errorf("close qemu: %v", err)
		}
		cancel()
	})
	return inst
}
