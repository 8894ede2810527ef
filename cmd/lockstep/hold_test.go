package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// buildLockstep builds the lockstep binary, for tests that signal it.
func buildLockstep(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lockstep")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// held is a `lockstep run --hold` running in the background.
type held struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	lines  chan string
	done   chan error
}

// startHold starts bin with args and reads its stderr line by line.
func startHold(t *testing.T, bin, runDir string, args ...string) *held {
	t.Helper()
	h := &held{cmd: exec.Command(bin, args...), lines: make(chan string, 100), done: make(chan error, 1)}
	pipe, err := h.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stdout = io.Discard
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The safety net: the test has checked the teardown before this.
		h.cmd.Process.Kill()
		qemutest.Release(runDir)
	})
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.done <- h.cmd.Wait()
	}()
	return h
}

// waitFor reads stderr until a line contains marker.
func (h *held) waitFor(t *testing.T, marker string, bound time.Duration) {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				t.Fatalf("lockstep ended without %q:\n%s", marker, h.stderr.String())
			}
			h.stderr.WriteString(l + "\n")
			if strings.Contains(l, marker) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within %s:\n%s", marker, bound, h.stderr.String())
		}
	}
}

// exit waits for the process to end and returns its status and stderr.
func (h *held) exit(t *testing.T, bound time.Duration) (int, string) {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case l, ok := <-h.lines:
			if ok {
				h.stderr.WriteString(l + "\n")
				continue
			}
			var ee *exec.ExitError
			switch err := <-h.done; {
			case err == nil:
				return 0, h.stderr.String()
			case errors.As(err, &ee):
				return ee.ExitCode(), h.stderr.String()
			default:
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("lockstep still running %s after the signal:\n%s", bound, h.stderr.String())
		}
	}
}

var pcRE = regexp.MustCompile(`\$\d+ = (0x[0-9a-f]+)`)

// gdbPCs runs gdb in batch mode with args and returns every `p/x $pc`
// value it printed.
func gdbPCs(t *testing.T, gdb string, args ...string) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, gdb, append([]string{"-nx", "-batch"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb %v: %v\n%s", args, err, out)
	}
	return pcsIn(t, string(out))
}

// rspStop connects to a gdbstub socket, asks '?' and reports whether a
// stop reply came within bound.
func rspStop(t *testing.T, sock string, bound time.Duration) (net.Conn, bool) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte("$?#3f")); err != nil {
		return c, false
	}
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "$T") {
		n, err := c.Read(buf)
		if err != nil {
			return c, false
		}
		got = append(got, buf[:n]...)
	}
	return c, true
}

// TestHoldAttachGDB runs scenarios with --hold and checks what a user
// would: the reports are written before the hold; each gdbstub is free
// and serves one client at a time; real gdb attached to each side (and
// to both at once through the script) reads the PC the report gives;
// SIGINT ends the hold with the run's own exit status, and nothing is
// left behind. One binary on two CPU models is held at the localised
// CPUID (by single steps from a sync point, and by the trace engine from
// reset); two builds of the demo at the diverging sync point.
func TestHoldAttachGDB(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	gdb := qemutest.RequireGDB(t)
	qemutest.Guest(t, "cpu-probe")
	bin := buildLockstep(t)
	tests := []struct {
		name, scenario, report, held string
		// want is the PC each side must stand at, from the report.
		want func(t *testing.T, res *lockstep.Result) [2]compare.Location
	}{
		{"instruction", "cpu-hold.yaml", "cpu-hold.json", "held at the localised instruction, ",
			func(t *testing.T, res *lockstep.Result) [2]compare.Location {
				for _, d := range res.Divergences {
					if d.Kind == compare.KindInstruction {
						return d.PC
					}
				}
				t.Fatalf("the report localised no instruction")
				return [2]compare.Location{}
			}},
		{"from reset, by the trace engine", "cpu-models.yaml", "cpu-models.json", "held at the localised instruction, ",
			func(t *testing.T, res *lockstep.Result) [2]compare.Location {
				for _, d := range res.Divergences {
					if d.Kind == compare.KindInstruction && d.Sync == 0 {
						return d.PC
					}
				}
				t.Fatalf("the report localised no instruction before sync point 1")
				return [2]compare.Location{}
			}},
		{"two builds, at the localised call", "demo.yaml", "demo-regression.json", "held at the localised call's entry, hit 1 (a) and 1 (b) of its function after sync point 2 (checksum)",
			func(t *testing.T, res *lockstep.Result) [2]compare.Location {
				for _, d := range res.Divergences {
					if in := d.Instruction; in != nil && in.Granularity == compare.ByFunction && d.Sync == 2 {
						if in.Entry != [2]int{1, 1} {
							t.Errorf("the call is hit %v, want [1 1]", in.Entry)
						}
						if d.PC[0].Symbol != "path_b" || d.PC[1].Symbol != "path_c" {
							t.Errorf("the localised call is %s vs %s, want path_b vs path_c", d.PC[0], d.PC[1])
						}
						return d.PC
					}
				}
				t.Fatalf("the report localised no call before sync point 3")
				return [2]compare.Location{}
			}},
		{"sync point", demoNoLocalize(t), "demo-regression.json", "held at sync point 3 (leaf)",
			func(t *testing.T, res *lockstep.Result) [2]compare.Location {
				if res.Syncs[2].Status != lockstep.SyncDiverge {
					t.Fatalf("sync point 3 is %s, want diverge", res.Syncs[2].Status)
				}
				return res.Syncs[2].PC
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The gdbstub checks that do not depend on the place run once.
			scen := tt.scenario
			if !filepath.IsAbs(scen) {
				scen = scenarioPath(t, scen)
			}
			holdAndAttach(t, bin, gdb, scen, tt.report, tt.held, i == 0, tt.want)
		})
	}
}

// demoNoLocalize writes the demo scenario with localisation off into a
// temporary directory and returns its path.
func demoNoLocalize(t *testing.T) string {
	root := qemutest.Root(t)
	body, err := os.ReadFile(scenarioPath(t, "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	body = bytes.ReplaceAll(body, []byte("../guests/build/"), []byte(filepath.Join(root, "testdata", "guests", "build")+"/"))
	body = append(body, "localize: {enabled: false}\n"...)
	path := filepath.Join(t.TempDir(), "demo-nolocal.yaml")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// holdAndAttach runs scen with --hold and checks the held guests' PCs
// against wantPC with gdb; with stub, also that the gdbstub is free and
// serves one client at a time, and that `disconnect` keeps a guest held.
func holdAndAttach(t *testing.T, bin, gdb, scen, report, held string, stub bool, wantPC func(*testing.T, *lockstep.Result) [2]compare.Location) {
	runDir := qemutest.ShortDir(t)
	outDir := t.TempDir()
	h := startHold(t, bin, runDir, "run", "--hold", "--run-dir", runDir, "-o", outDir, "--format", "json",
		scen)
	h.waitFor(t, "lockstep: held at", 120*time.Second)
	h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
	text := h.stderr.String()
	if !strings.Contains(text, held) {
		t.Errorf("not %s:\n%s", held, text)
	}
	if strings.Contains(text, "WARNING") {
		t.Errorf("a side is not at the reported PC:\n%s", text)
	}

	// The report is on disk before the hold.
	data, err := os.ReadFile(filepath.Join(outDir, report))
	if err != nil {
		t.Fatalf("report not written before holding: %v", err)
	}
	var res lockstep.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	want := wantPC(t, &res)

	m := regexp.MustCompile(`gdb -x (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no gdb script announced:\n%s", text)
	}
	script := m[1]
	body, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	var socks []string
	for _, s := range regexp.MustCompile(`(?m)^target remote (\S+)$`).FindAllStringSubmatch(string(body), -1) {
		socks = append(socks, s[1])
	}
	if len(socks) != 2 || !strings.Contains(string(body), "add-inferior") {
		t.Fatalf("script %s does not open two inferiors:\n%s", script, body)
	}

	// lockstep has let go of the gdbstub, and QEMU serves one client at
	// a time: a second one gets no answer while the first is attached.
	sessions := socks
	if stub {
		first, ok := rspStop(t, socks[0], 10*time.Second)
		if !ok {
			t.Fatalf("side a's gdbstub does not answer a new client: lockstep did not detach")
		}
		second, ok := rspStop(t, socks[0], time.Second)
		if ok {
			t.Errorf("side a's gdbstub answered a second client while the first was attached")
		}
		second.Close()
		first.Close()
		sessions = append(sessions, socks[0])
	}

	// Each side alone, as the printed commands do; `disconnect` leaves
	// the guest held, so a second gdb finds it at the same place.
	for i, sock := range sessions {
		pcs := gdbPCs(t, gdb, "-ex", "target remote "+sock, "-ex", "p/x $pc", "-ex", "disconnect")
		if w := want[i%2].Addr; len(pcs) != 1 || pcs[0] != w {
			t.Errorf("side %d: gdb reads pc %#x, the report gives %#x (%s)", i%2, pcs, w, want[i%2])
		}
	}
	// Both at once through the script. Quitting gdb detaches side a,
	// which resumes it; side b is disconnected and stays held.
	pcs := gdbPCs(t, gdb, "-x", script, "-ex", "p/x $pc", "-ex", "inferior 2", "-ex", "p/x $pc", "-ex", "disconnect")
	if len(pcs) != 2 || pcs[0] != want[0].Addr || pcs[1] != want[1].Addr {
		t.Errorf("through the script gdb reads pcs %#x, want %#x and %#x", pcs, want[0].Addr, want[1].Addr)
	}

	if err := h.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, text := h.exit(t, 60*time.Second)
	if code != 0 { // both scenarios expect their divergence
		t.Errorf("exit status %d after SIGINT, want the run's own 0:\n%s", code, text)
	}
	if !strings.Contains(text, "released (interrupted)") {
		t.Errorf("no release message:\n%s", text)
	}
	qemutest.NoQEMUUnder(t, runDir)
	if left, _ := os.ReadDir(runDir); len(left) > 0 {
		t.Errorf("run directory %s left behind: %v", runDir, left)
	}
	if _, err := os.Stat(socks[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gdbstub socket %s left behind (%v)", socks[0], err)
	}
}

// TestHoldNothingToHold checks that --hold neither hangs nor holds when
// there is nothing to hold: an identical pair (the run's own status, a
// note why), and a run whose QEMU is missing (infrastructure, status 3).
func TestHoldNothingToHold(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	runDir := qemutest.ShortDir(t)
	checkCLI(t, []cliCase{
		{"identical", []string{"run", "--hold", "--run-dir", runDir, scenarioPath(t, "demo-self.yaml")}, 0,
			[]string{"IDENTICAL"}, []string{"not holding: the guests did not diverge"}},
		{"on-divergence hold", []string{"run", "--on-divergence", "hold", "--run-dir", runDir, scenarioPath(t, "demo-self.yaml")}, 0,
			[]string{"IDENTICAL"}, []string{"not holding: the guests did not diverge"}},
		{"contradiction", []string{"run", "--hold", "--on-divergence", "kill", scenarioPath(t, "demo-self.yaml")}, 2,
			nil, []string{"contradict"}},
		{"bad on-divergence", []string{"run", "--on-divergence", "stop", scenarioPath(t, "demo-self.yaml")}, 2,
			nil, []string{"kill or hold"}},
	})
	qemutest.NoQEMUUnder(t, runDir)
	if left, _ := os.ReadDir(runDir); len(left) > 0 {
		t.Errorf("run directory %s left behind: %v", runDir, left)
	}

	t.Run("infrastructure", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		code, _, errs := cli(t, "run", "--hold", "--run-dir", runDir, scenarioPath(t, "demo-self.yaml"))
		if code != 3 || !strings.Contains(errs, "not holding: the run failed (infrastructure") {
			t.Errorf("status %d, stderr %q; want 3 and no hold of a failed run", code, errs)
		}
		if left, _ := os.ReadDir(runDir); len(left) > 0 {
			t.Errorf("run directory %s left behind: %v", runDir, left)
		}
	})
}
