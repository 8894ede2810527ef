package qemu_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestRecordReplayBreak records deep-1e5 to its end, then replays the
// recording and stops it at an exact instruction count with ReplayBreak,
// read back with ICount.
func TestRecordReplayBreak(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	elf := qemutest.Guest(t, "deep-1e5")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "a.rr")
	spec := qemu.Spec{Arch: "x86_64", Accel: "tcg", CPU: "qemu64", Memory: "64M", Kernel: elf,
		Args: scenario.DefaultX86Args, Icount: "shift=0,sleep=off"}

	rec := spec
	rec.RR = qemu.RecordReplay{Mode: qemu.RRRecord, File: file}
	inst, err := qemu.Start(ctx, rec, qemu.Options{Name: "record"})
	if err != nil {
		t.Fatal(err)
	}
	if ri, err := inst.QMP.Replay(ctx); err != nil || ri.Mode != "record" {
		t.Fatalf("query-replay while recording: %+v, %v", ri, err)
	}
	if err := inst.QMP.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.Exited():
	case <-ctx.Done():
		t.Fatal("the recording did not end")
	}
	if code, _ := inst.ExitCode(); code != 1 {
		t.Errorf("recorded guest exit status %d, want 1 (deep_verify ok); stderr %q", code, inst.Stderr())
	}
	inst.Close(ctx)

	const at = 1_000_000
	play := spec
	play.RR = qemu.RecordReplay{Mode: qemu.RRReplay, File: file}
	inst, err = qemu.Start(ctx, play, qemu.Options{Name: "replay"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.WithoutCancel(ctx))
	if err := inst.ReplayBreak(ctx, at); err != nil {
		t.Fatal(err)
	}
	if err := inst.QMP.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	for {
		var st struct {
			Status string `json:"status"`
		}
		if err := inst.QMP.Execute(ctx, "query-status", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status == "paused" {
			break
		}
		select {
		case <-inst.Exited():
			t.Fatalf("the replay ended before instruction %d; stderr %q", at, inst.Stderr())
		case <-ctx.Done():
			t.Fatal("the replay never stopped")
		case <-time.After(20 * time.Millisecond):
		}
	}
	n, err := inst.ICount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != at {
		t.Errorf("replay stopped at instruction %d, want %d", n, at)
	}
	if err := inst.ReplayDeleteBreak(ctx); err != nil {
		t.Error(err)
	}
}
