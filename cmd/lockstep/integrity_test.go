package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/reports"
)

// These tests pin the exit statuses of runs whose outcome is easy to get
// wrong: a guest lost while the run waits for it (3, or 125 with
// --bisect, whatever the scenario expects), a sync point never reached
// (1, and the reports agree), a guest exit inside a step window (a
// finding, not a failure). Each runs under its own --run-dir and finds its
// QEMU processes in /proc by that directory, so they run in parallel.

// signalWhenSerial sends sig to side's QEMU of the run under runDir as
// soon as its serial log holds marker, polling until ctx ends. The channel
// gets nil once the signal is sent, or why it was not.
func signalWhenSerial(ctx context.Context, runDir, side, marker string, sig syscall.Signal) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := qemutest.SignalWhenSerial(ctx, runDir, side, marker, sig)
		done <- err
	}()
	return done
}

// hangScenario writes a demo-good vs demo-hang scenario (b spins in
// hang_here after printing "demo: hang", on its way to report) and
// returns its path.
func hangScenario(t *testing.T, expect string, timeout, reportTimeout time.Duration) string {
	t.Helper()
	good, hang := qemutest.Guest(t, "demo-good"), qemutest.Guest(t, "demo-hang")
	doc := fmt.Sprintf(`name: lost-guest
description: demo-good vs demo-hang, side b's QEMU lost while the run waits at report
timeout: %s
guests:
  defaults: {kernel: %q}
  a: {label: good}
  b: {label: hang, kernel: %q}
sync:
  - {break: kmain, timeout: 5s}
  - {break: report, timeout: %s}
expect: %s
`, timeout, good, hang, reportTimeout, expect)
	path := filepath.Join(t.TempDir(), "lost-guest.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLILostGuest kills or stops side b's QEMU while `lockstep run` waits
// for it at report: exit status 3 (125 with --bisect) naming side b,
// whether the scenario expects a divergence or none. A lost guest is
// neither a divergence that passes expect: diverge nor a mismatch.
func TestCLILostGuest(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	tests := []struct {
		name   string
		expect string
		sig    syscall.Signal
		bisect bool
		code   int
	}{
		{"kill, expect diverge", "diverge", syscall.SIGKILL, false, exitInfra},
		{"kill, expect diverge, bisect", "diverge", syscall.SIGKILL, true, exitSkip},
		{"kill, expect identical", "identical", syscall.SIGKILL, false, exitInfra},
		{"kill, expect identical, bisect", "identical", syscall.SIGKILL, true, exitSkip},
		{"stop, expect diverge", "diverge", syscall.SIGSTOP, false, exitInfra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout, reportTimeout := 30*time.Second, 5*time.Second
			if tt.sig == syscall.SIGSTOP {
				timeout, reportTimeout = 20*time.Second, 3*time.Second
			}
			sc := hangScenario(t, tt.expect, timeout, reportTimeout)
			runDir := qemutest.ShortDir(t)
			t.Cleanup(func() { qemutest.Release(runDir) })
			args := []string{"run", "--color", "never", "--run-dir", runDir}
			if tt.bisect {
				args = append(args, "--bisect")
			}
			args = append(args, sc)

			// The test's deadline is a safety net only: the run must end
			// by itself within the scenario's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
			defer cancel()
			sctx, scancel := context.WithCancel(ctx)
			signalled := signalWhenSerial(sctx, runDir, "b", "demo: hang", tt.sig)
			var out, errb bytes.Buffer
			code := run(ctx, args, streams{&out, &errb})
			scancel()
			if err := <-signalled; err != nil {
				t.Fatalf("side b's QEMU was not sent %v: %v\nstatus %d, stdout:\n%s\nstderr:\n%s", tt.sig, err, code, out.String(), errb.String())
			}
			if ctx.Err() != nil {
				t.Errorf("the run ended only when the test's safety deadline cancelled it")
			}
			qemutest.NoQEMUUnder(t, runDir)
			if code != tt.code {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			if tt.sig == syscall.SIGKILL && !strings.Contains(errb.String(), "guest b") {
				t.Errorf("stderr does not name guest b:\n%s", errb.String())
			}
		})
	}
}

// TestCLINeverReachedSync runs a scenario whose second sync point neither
// guest ever executes, with expect: identical, writing text and JUnit:
// status 1, a FAIL verdict in the text report (never IDENTICAL PASS), and
// a JUnit failure for that point.
func TestCLINeverReachedSync(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	t.Parallel()
	runDir, outDir := qemutest.ShortDir(t), t.TempDir()
	t.Cleanup(func() { qemutest.Release(runDir) })
	code, stdout, stderr := cli(t, "run", "--color", "never", "--run-dir", runDir, "-o", outDir,
		"--format", "text,junit", scenarioPath(t, "never-reached.yaml"))
	qemutest.NoQEMUUnder(t, runDir)
	if code != exitMismatch {
		t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitMismatch, stdout, stderr)
	}
	txt, err := os.ReadFile(filepath.Join(outDir, "never-reached.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stdout": stdout, "never-reached.txt": string(txt)} {
		head, _, _ := strings.Cut(text, "\n")
		if strings.Contains(head, "PASS") || !strings.Contains(head, "FAIL") {
			t.Errorf("%s verdict %q, want FAIL", name, head)
		}
		if !strings.Contains(text, "1/2 sync points") {
			t.Errorf("%s does not say 1/2 sync points reached:\n%s", name, text)
		}
	}
	b, err := os.ReadFile(filepath.Join(outDir, "never-reached.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var js reports.JUnitSuites
	if err := xml.Unmarshal(b, &js); err != nil {
		t.Fatalf("junit: %v\n%s", err, b)
	}
	failed := false
	for _, s := range js.Suites {
		for _, c := range s.Cases {
			failed = failed || (strings.Contains(c.Name, "path_c") && c.Failure != nil)
		}
	}
	if js.Failures == 0 || !failed {
		t.Errorf("JUnit reports %d failures (path_c failed: %v), want the unreached sync point failed:\n%s", js.Failures, failed, b)
	}
}

// TestCLIExitInStepWindow checks that a guest exit inside a step window is
// a finding: one side exiting is the divergence stepexit-one expects
// (status 0, an [exit] divergence), both exiting at the same instruction
// is the identical run stepexit-both expects (status 0).
func TestCLIExitInStepWindow(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "stepexit")
	tests := []struct {
		scenario string
		stdout   []string
	}{
		{"stepexit-one.yaml", []string{"DIVERGED  PASS", "[exit]", "1/2 sync points"}},
		{"stepexit-both.yaml", []string{"IDENTICAL  PASS", "1/1 sync points"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			runDir := qemutest.ShortDir(t)
			t.Cleanup(func() { qemutest.Release(runDir) })
			code, stdout, stderr := cli(t, "run", "--color", "never", "--run-dir", runDir, scenarioPath(t, tt.scenario))
			qemutest.NoQEMUUnder(t, runDir)
			if code != exitOK {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitOK, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}
