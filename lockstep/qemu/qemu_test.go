package qemu_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// tinySpec is a paused x86_64 TCG guest; with -S it sits idle whether or
// not it has a kernel.
func tinySpec() qemu.Spec {
	return qemu.Spec{Arch: "x86_64", Machine: "pc", CPU: "qemu64", Accel: "tcg", Memory: "32M"}
}

// requireGone fails unless both the pid and its process group are gone.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists (kill 0: %v)", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists (kill 0: %v)", pid, err)
	}
}

func waitExited(t *testing.T, i *qemu.Instance) {
	t.Helper()
	select {
	case <-i.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not exit", i.Pid)
	}
}

func TestStartQMPAndClose(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	spec := tinySpec()
	var transcript strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := qemu.Start(ctx, spec, qemu.Options{Name: "a", QMPTranscript: &lockedWriter{b: &transcript}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())

	if !strings.HasPrefix(inst.Version, "7.") && !strings.HasPrefix(inst.Version, "8.") && !strings.HasPrefix(inst.Version, "9.") && !strings.HasPrefix(inst.Version, "1") {
		t.Errorf("Version = %q", inst.Version)
	}
	fi, err := os.Stat(inst.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, p := range []string{inst.QMPSocket, inst.GDBSocket} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("%s: not a socket (%v)", p, err)
		}
	}
	var st struct {
		Running bool
		Status  string
	}
	if err := inst.QMP.Execute(ctx, "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Status != "prelaunch" {
		t.Errorf("query-status = %+v, want paused prelaunch", st)
	}
	out, err := inst.QMP.HMP(ctx, "info version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimSpace(out), inst.Version) {
		t.Errorf("info version = %q, want prefix %q", out, inst.Version)
	}
	var qerr *qemu.QMPError
	if err := inst.QMP.Execute(ctx, "no-such-command", nil, nil); !errors.As(err, &qerr) || qerr.Class != "CommandNotFound" {
		t.Errorf("unknown command: err = %v, want *QMPError CommandNotFound", err)
	}
	if !strings.Contains(transcript.String(), `-> {"execute":"query-status"`) {
		t.Errorf("transcript lacks query-status:\n%s", transcript.String())
	}

	pid := inst.Pid
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	code, exited := inst.ExitCode()
	if !exited || code != 0 {
		t.Errorf("ExitCode = %d, %v; want 0 after QMP quit", code, exited)
	}
	requireGone(t, pid)
	if _, err := os.Stat(inst.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir not removed: %v", err)
	}
	if err := inst.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
