package qemu_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// alive reports whether pid is a live (non-zombie) process. PID 1 here
// does not reap orphans, so a dead reparented child can linger as a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// goneWithin reports whether pid is gone (or a zombie) within d.
func goneWithin(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func startFake(t *testing.T, mode, childFile string, opts qemu.Options) (*qemu.Instance, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return qemu.Start(ctx, qemu.Spec{Binary: fakeBinary(t, mode, childFile)}, opts)
}

func TestFakeStartAndQuit(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&lockedWriter{b: &logs}, nil))
	inst, err := startFake(t, "ok", "", qemu.Options{Dir: parent, Name: "a/b c", Keep: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(inst.Dir) })
	if !strings.Contains(logs.String(), strconv.Quote(inst.CommandLine)) {
		t.Errorf("log lacks the quoted command line %q:\n%s", inst.CommandLine, logs.String())
	}
	if inst.Version != "99.0.0" {
		t.Errorf("Version = %q", inst.Version)
	}
	if filepath.Dir(inst.Dir) != parent || !strings.HasPrefix(filepath.Base(inst.Dir), "lockstep-a_b_c-") {
		t.Errorf("Dir = %q, want lockstep-a_b_c-* under %q", inst.Dir, parent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code, ok := inst.ExitCode(); !ok || code != 0 {
		t.Errorf("ExitCode = %d, %v; want 0 after quit", code, ok)
	}
	if _, err := os.Stat(inst.StderrPath); err != nil {
		t.Errorf("Keep: run dir files gone: %v", err)
	}
	requireGone(t, inst.Pid)
}

// TestFakeStubbornEscalates checks the whole escalation: quit is ignored,
// SIGTERM is ignored, SIGKILL to the group kills QEMU and its child.
func TestFakeStubbornEscalates(t *testing.T) {
	t.Parallel()
	childFile := filepath.Join(t.TempDir(), "child.pid")
	inst, err := startFake(t, "stubborn", childFile, qemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(childFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(child) {
		t.Fatalf("child %d not running before Close", child)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code, ok := inst.ExitCode(); !ok || code != -1 {
		t.Errorf("ExitCode = %d, %v; want -1 (killed by signal)", code, ok)
	}
	// Close reaps QEMU itself; its child, killed by the same SIGKILL to the
	// group, dies asynchronously (kill returns before the target is gone).
	if alive(inst.Pid) || !goneWithin(child, 2*time.Second) {
		t.Errorf("alive after Close: qemu %v, child %v", alive(inst.Pid), alive(child))
	}
	if _, err := os.Stat(inst.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir not removed: %v", err)
	}
}

func TestFakeStartFailures(t *testing.T) {
	t.Parallel()
	t.Run("exits", func(t *testing.T) {
		t.Parallel()
		_, err := startFake(t, "fail", "", qemu.Options{})
		var se *qemu.StartError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want *StartError", err)
		}
		if se.ExitCode != 1 || !strings.Contains(se.Stderr, "unsupported machine type") || !strings.Contains(err.Error(), "unsupported machine type") {
			t.Errorf("StartError = %+v", se)
		}
	})
	t.Run("never answers", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		_, err := startFake(t, "silent", "", qemu.Options{Dir: parent, StartTimeout: 300 * time.Millisecond})
		var se *qemu.StartError
		if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want *StartError wrapping DeadlineExceeded", err)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Errorf("run dir left behind after failed start: %v", left)
		}
		if se.Pid == 0 || alive(se.Pid) {
			t.Errorf("pid %d: started %v, alive %v after failed start", se.Pid, se.Pid != 0, alive(se.Pid))
		}
		for _, p := range qemu.Live() {
			if p == se.Pid {
				t.Errorf("pid %d still registered after failed start", p)
			}
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := qemu.Start(context.Background(), qemu.Spec{Arch: "x86_64"}, qemu.Options{})
	var nf *qemu.NotFoundError
	if !errors.Is(err, qemu.ErrNotFound) || !errors.As(err, &nf) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "qemu-system-x86_64 not found in PATH") || !strings.Contains(err.Error(), "qemu-system-x86") || nf.Package != "qemu-system-x86" {
		t.Errorf("message %q does not name the binary and package", err)
	}
}

func TestKVMUnavailable(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64")
	if qemutest.KVMUsable() == nil {
		t.Skip("/dev/kvm is usable here, so the unavailable path cannot be exercised")
	}
	_, err := qemu.Start(context.Background(), qemu.Spec{Arch: "x86_64", Accel: "kvm"}, qemu.Options{})
	if !errors.Is(err, qemu.ErrKVMUnavailable) || !strings.Contains(err.Error(), "/dev/kvm") {
		t.Fatalf("err = %v, want ErrKVMUnavailable naming /dev/kvm", err)
	}
}

func TestRealBadMachine(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	spec := tinySpec()
	spec.Machine = "no-such-machine"
	_, err := qemu.Start(context.Background(), spec, qemu.Options{})
	var se *qemu.StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StartError", err)
	}
	if se.ExitCode != 1 || !strings.Contains(se.Stderr, "unsupported machine type") {
		t.Errorf("StartError = exit %d stderr %q", se.ExitCode, se.Stderr)
	}
}

func TestRealContextCancelKills(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inst, err := qemu.Start(ctx, tinySpec(), qemu.Options{Name: "cancel"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	if err := inst.QMP.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitExited(t, inst)
	requireGone(t, inst.Pid)
}

// TestRealHungQEMU stops QEMU with SIGSTOP: QMP quit cannot be answered and
// SIGTERM stays pending, so only the group SIGKILL can end it.
func TestRealHungQEMU(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	inst, err := qemu.Start(context.Background(), tinySpec(), qemu.Options{Name: "hung"})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(inst.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, exited := inst.ExitCode(); !exited {
		t.Fatal("Close returned but QEMU not reaped")
	}
	requireGone(t, inst.Pid)
}

// TestRealGuestExit boots demo-good to its isa-debug-exit and checks the
// exit status and serial log.
func TestRealGuestExit(t *testing.T) {
	t.Parallel()
	spec := tinySpec()
	spec.Memory = "64M"
	spec.Kernel = qemutest.Guest(t, "demo-good")
	spec.Args = []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}
	inst := qemutest.Start(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := inst.QMP.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.Exited():
	case <-ctx.Done():
		t.Fatal("guest did not exit")
	}
	if code, _ := inst.ExitCode(); code != 1 {
		t.Errorf("ExitCode = %d, want 1 (isa-debug-exit 0)", code)
	}
	serial, err := inst.Serial()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(serial), "demo: done") {
		t.Errorf("serial = %q, want demo: done", serial)
	}
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	requireGone(t, inst.Pid)
}

// TestHandleSignalsKillsQEMU runs a child test binary that owns a QEMU and
// uses HandleSignals; SIGINT to the child must kill that QEMU.
func TestHandleSignalsKillsQEMU(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), helperEnv+"=signal-child")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-ctx.Done():
			t.Fatal("child said nothing")
			return ""
		}
	}
	first := next()
	pidStr, ok := strings.CutPrefix(first, "pid ")
	if !ok {
		t.Fatalf("child: %q", first)
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatalf("qemu %d not running before SIGINT", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "qemu exited" {
		t.Errorf("child after SIGINT: %q, want qemu exited", got)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
	if alive(pid) {
		t.Errorf("qemu %d alive after child's SIGINT", pid)
	}
}

// TestRealTrace runs a guest with Trace set: Start must pick the
// one-instruction-per-block flag for this QEMU and the log must fill with
// CPU state dumps. Tracing from reset through the BIOS is slow, so the test
// only waits for the first dumps and then closes.
func TestRealTrace(t *testing.T) {
	t.Parallel()
	spec := tinySpec()
	spec.Trace = filepath.Join(t.TempDir(), "trace.log")
	inst := qemutest.Start(t, spec)
	if !strings.Contains(inst.CommandLine, "-d cpu,nochain") {
		t.Errorf("command line lacks -d cpu,nochain: %s", inst.CommandLine)
	}
	major, minor, _, err := qemu.ParseVersion(inst.Version)
	if err != nil {
		t.Fatal(err)
	}
	wantFlag := "-singlestep"
	if major > 8 || major == 8 && minor >= 1 {
		wantFlag = "one-insn-per-tb=on"
	}
	if !strings.Contains(inst.CommandLine, wantFlag) {
		t.Errorf("QEMU %s: command line lacks %s: %s", inst.Version, wantFlag, inst.CommandLine)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := inst.QMP.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(spec.Trace); err == nil && fi.Size() > 64<<10 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("trace log stayed empty")
		}
	}
	if err := inst.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(spec.Trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil {
		t.Fatal(err)
	}
	// One dump per instruction: the reset vector, then the next ones.
	if c := strings.Count(string(head[:n]), "IP="); c < 10 || !strings.Contains(string(head[:n]), "EIP=0000fff0") {
		t.Errorf("trace head has %d dumps, want >= 10 starting at the reset vector", c)
	}
}

// TestQMPClosedOnExit checks that a command on a QEMU that has gone away
// fails with ErrClosed.
func TestQMPClosedOnExit(t *testing.T) {
	t.Parallel()
	inst, err := startFake(t, "stubborn", filepath.Join(t.TempDir(), "child.pid"), qemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	if err := syscall.Kill(-inst.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(t, inst)
	<-inst.QMP.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inst.QMP.Execute(ctx, "query-status", nil, nil); !errors.Is(err, qemu.ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}

// TestNotFoundPath checks that a binary given as a path that does not
// exist, or is not executable, is reported as such, not as missing from
// PATH.
func TestNotFoundPath(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "qemu-system-x86_64")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bin, want string
	}{
		{filepath.Join(dir, "nope", "qemu-system-x86_64"), "no such file or directory"},
		{notExec, "permission denied"},
	}
	for _, tt := range tests {
		_, err := qemu.Start(context.Background(), qemu.Spec{Arch: "x86_64", Binary: tt.bin}, qemu.Options{Dir: t.TempDir()})
		if !errors.Is(err, qemu.ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrNotFound", tt.bin, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.bin) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "PATH") {
			t.Errorf("%s: message %q: want the path and %q, not PATH", tt.bin, msg, tt.want)
		}
	}
}

// TestRealBadCPUStderrFirst checks that a QEMU that refuses its CPU model
// is reported with its own message first, before what lockstep saw of it
// going away.
func TestRealBadCPUStderrFirst(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	spec := tinySpec()
	spec.CPU = "qemu65"
	_, err := qemu.Start(context.Background(), spec, qemu.Options{})
	if err == nil {
		t.Fatal("started with cpu qemu65")
	}
	var se *qemu.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Stderr, "qemu65") {
		t.Fatalf("err = %v, want *StartError with QEMU's complaint about qemu65", err)
	}
	if want := "qemu start (exit status 1): " + strings.TrimSpace(se.Stderr); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q does not start with %q", err, want)
	}
}

// TestRealLongRunDir starts QEMU below a directory too long for a unix
// socket path (a long $TMPDIR): the sockets go to a short private
// directory, which Close removes with the run directory.
func TestRealLongRunDir(t *testing.T) {
	t.Parallel()
	qemutest.Require(t, "x86_64", "tcg")
	long := filepath.Join(t.TempDir(), strings.Repeat("a-long-ci-runner-temp-dir/", 4))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	inst, err := qemu.Start(context.Background(), tinySpec(), qemu.Options{Dir: long, Name: "a"})
	if err != nil {
		t.Fatalf("start below %d-byte dir: %v", len(long), err)
	}
	sockDir := filepath.Dir(inst.QMPSocket)
	if strings.HasPrefix(sockDir, long) || len(inst.QMPSocket) > 107 || len(inst.GDBSocket) > 107 {
		t.Errorf("sockets %s, %s: want a short directory outside %s", inst.QMPSocket, inst.GDBSocket, long)
	}
	if fi, err := os.Stat(sockDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir %s: %v, %v; want private 0700", sockDir, fi, err)
	}
	if !strings.HasPrefix(inst.Dir, long) {
		t.Errorf("run dir %s not below %s", inst.Dir, long)
	}
	if err := inst.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{sockDir, inst.Dir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after Close: %v", d, err)
		}
	}
}
