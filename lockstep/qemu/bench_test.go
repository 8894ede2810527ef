package qemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// BenchmarkStartClose measures a full launch (process, QMP handshake,
// query-version) and teardown of a paused TCG guest.
func BenchmarkStartClose(b *testing.B) {
	qemutest.Require(b, "x86_64", "tcg")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for b.Loop() {
		inst, err := qemu.Start(ctx, tinySpec(), qemu.Options{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQMPQueryStatus measures one QMP round trip to a real QEMU.
func BenchmarkQMPQueryStatus(b *testing.B) {
	qemutest.Require(b, "x86_64", "tcg")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inst, err := qemu.Start(ctx, tinySpec(), qemu.Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close(ctx)
	var st struct{ Status string }
	for b.Loop() {
		if err := inst.QMP.Execute(ctx, "query-status", nil, &st); err != nil {
			b.Fatal(err)
		}
	}
}
