package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestHoldReverse runs a pair recorded and localised by replay bisection
// (deep-1e3 on two CPU models: the first difference is a CPUID) with
// --hold --keep. The pair is held replaying a recording: real gdb on side
// a reads the report's PC, `reverse-stepi` goes back to the instruction
// before it (checked against the ELF's disassembly: the CPUID follows it)
// and `stepi` forward again; SIGINT ends the hold with the run's own
// status and no QEMU left. Then `lockstep replay RUN_DIR --at N` reopens
// the kept recordings one instruction before the held place, where gdb
// reads the PC reverse-stepi found; and the bad inputs of `replay` fail
// clearly.
func TestHoldReverse(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	gdb := qemutest.RequireGDB(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img (qemu-utils) not installed: reverse execution needs a qcow2 snapshot image")
	}
	kernel := qemutest.Guest(t, "deep-1e3")
	bin := buildLockstep(t)
	runDir := qemutest.ShortDir(t)
	outDir := t.TempDir()

	h := startHold(t, bin, runDir, "run", "--hold", "--keep", "--run-dir", runDir, "-o", outDir, "--format", "json",
		scenarioPath(t, "deep-replay-hold.yaml"))
	h.waitFor(t, "lockstep: held at", 120*time.Second)
	h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
	text := h.stderr.String()
	if !strings.Contains(text, "held at the localised instruction") || !strings.Contains(text, "reverse execution is available") {
		t.Errorf("not held at the localised instruction with reverse execution:\n%s", text)
	}
	if strings.Contains(text, "WARNING") {
		t.Errorf("a side is not at the reported PC:\n%s", text)
	}
	var res lockstep.Result
	data, err := os.ReadFile(filepath.Join(outDir, "deep-replay-hold.json"))
	if err != nil {
		t.Fatalf("report not written before holding: %v", err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	var want, wantB uint64
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction {
			want, wantB = d.PC[0].Addr, d.PC[1].Addr
			break
		}
	}
	if want == 0 {
		t.Fatalf("the report localised no instruction")
	}
	if l := res.Syncs[1].Localization; l == nil || l.Method != "replay" {
		t.Errorf("sync point 2 was localised by %+v, want replay", l)
	}
	socks := heldSockets(t, text)
	pcs := gdbPCs(t, gdb, "-ex", "set architecture i386:x86-64", "-ex", "target remote "+socks[0],
		"-ex", "p/x $pc", "-ex", "reverse-stepi", "-ex", "p/x $pc", "-ex", "stepi", "-ex", "p/x $pc", "-ex", "disconnect", kernel)
	if len(pcs) != 3 {
		t.Fatalf("gdb printed pcs %#x, want 3", pcs)
	}
	if pcs[0] != want || pcs[2] != want {
		t.Errorf("gdb reads pc %#x, then %#x after reverse-stepi and stepi; the report gives %#x", pcs[0], pcs[2], want)
	}
	prev := pcs[1]
	if n := insnLen(t, kernel, prev); prev+uint64(n) != want {
		t.Errorf("reverse-stepi went to %#x, whose instruction (%d bytes) is not the one before %#x", prev, n, want)
	}
	// Side b too (the same binary: the same instructions).
	pcs = gdbPCs(t, gdb, "-ex", "set architecture i386:x86-64", "-ex", "target remote "+socks[1],
		"-ex", "p/x $pc", "-ex", "reverse-stepi", "-ex", "p/x $pc", "-ex", "disconnect", kernel)
	if len(pcs) != 2 || pcs[0] != wantB || pcs[1] != prev {
		t.Errorf("side b: gdb reads pcs %#x (held, after reverse-stepi), want %#x and %#x", pcs, wantB, prev)
	}

	h.release(t, runDir)

	kept, _ := filepath.Glob(filepath.Join(runDir, "lockstep-*", lockstep.RecordingDir, lockstep.ManifestName))
	if len(kept) != 1 {
		t.Fatalf("kept run: %d manifests (%v), want 1", len(kept), kept)
	}
	var m lockstep.Manifest
	if data, err := os.ReadFile(kept[0]); err != nil || json.Unmarshal(data, &m) != nil {
		t.Fatalf("manifest %s: %v", kept[0], err)
	}
	keptRun := filepath.Dir(filepath.Dir(kept[0]))

	t.Run("replay --at", func(t *testing.T) {
		at := m.ICount[0] - 1
		h := startHold(t, bin, runDir, "replay", keptRun, "--at", fmt.Sprint(at))
		h.waitFor(t, "lockstep: held at", 60*time.Second)
		h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
		text := h.stderr.String()
		if !strings.Contains(text, fmt.Sprintf("held at instruction count %d (a)", at)) || !strings.Contains(text, "reverse execution is available") {
			t.Errorf("not held at instruction count %d with reverse execution:\n%s", at, text)
		}
		socks := heldSockets(t, text)
		pcs := gdbPCs(t, gdb, "-ex", "set architecture i386:x86-64", "-ex", "target remote "+socks[0],
			"-ex", "p/x $pc", "-ex", "disconnect", kernel)
		if len(pcs) != 1 || pcs[0] != prev {
			t.Errorf("at instruction %d gdb reads pc %#x, want %#x (where reverse-stepi went)", at, pcs, prev)
		}
		h.release(t, runDir)
		if _, err := os.Stat(kept[0]); err != nil {
			t.Errorf("replay removed the kept run's recordings: %v", err)
		}
	})

	t.Run("run --keep, then replay", func(t *testing.T) {
		// Without --hold a kept, recorded run records the place too; the
		// replay holds it there, at the report's PC, with reverse
		// execution.
		runDir := qemutest.ShortDir(t)
		code, _, errs := cli(t, "run", "--keep", "--run-dir", runDir, "--format", "json", scenarioPath(t, "deep-replay-hold.yaml"))
		if code != 0 {
			t.Fatalf("run --keep: status %d:\n%s", code, errs)
		}
		kept, _ := filepath.Glob(filepath.Join(runDir, "lockstep-*", lockstep.RecordingDir, lockstep.ManifestName))
		if len(kept) != 1 {
			t.Fatalf("run --keep kept %d manifests, want 1", len(kept))
		}
		h := startHold(t, bin, runDir, "replay", filepath.Dir(filepath.Dir(kept[0])))
		h.waitFor(t, "lockstep: held at", 60*time.Second)
		h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
		text := h.stderr.String()
		if !strings.Contains(text, "to the localised instruction") || !strings.Contains(text, "reverse execution is available") || strings.Contains(text, "WARNING") {
			t.Errorf("not held at the localised instruction with reverse execution:\n%s", text)
		}
		socks := heldSockets(t, text)
		pcs := gdbPCs(t, gdb, "-ex", "set architecture i386:x86-64", "-ex", "target remote "+socks[1],
			"-ex", "p/x $pc", "-ex", "reverse-stepi", "-ex", "p/x $pc", "-ex", "disconnect", kernel)
		if len(pcs) != 2 || pcs[0] != want || pcs[1] != prev {
			t.Errorf("side b: gdb reads pcs %#x (held, after reverse-stepi), want %#x and %#x", pcs, want, prev)
		}
		h.release(t, runDir)
	})

	t.Run("sync point", func(t *testing.T) {
		// Without localisation the hold is at the diverging sync point;
		// the recording goes on past it (the replay must not end there).
		runDir := qemutest.ShortDir(t)
		outDir := t.TempDir()
		h := startHold(t, bin, runDir, "run", "--hold", "--run-dir", runDir, "-o", outDir, "--format", "json",
			scenarioPath(t, "deep-replay-hold-sync.yaml"))
		h.waitFor(t, "lockstep: held at", 120*time.Second)
		h.waitFor(t, "holding until Ctrl-C", 5*time.Second)
		text := h.stderr.String()
		if !strings.Contains(text, "held at sync point 2 (deep_verify)") || !strings.Contains(text, "reverse execution is available") {
			t.Errorf("not held at sync point 2 with reverse execution:\n%s", text)
		}
		var res lockstep.Result
		data, err := os.ReadFile(filepath.Join(outDir, "deep-replay-hold-sync.json"))
		if err != nil || json.Unmarshal(data, &res) != nil {
			t.Fatalf("report: %v", err)
		}
		want := res.Syncs[1].PC[0].Addr
		socks := heldSockets(t, text)
		pcs := gdbPCs(t, gdb, "-ex", "set architecture i386:x86-64", "-ex", "target remote "+socks[0],
			"-ex", "p/x $pc", "-ex", "reverse-stepi", "-ex", "p/x $pc", "-ex", "stepi", "-ex", "p/x $pc", "-ex", "disconnect", kernel)
		if len(pcs) != 3 || pcs[0] != want || pcs[1] == want || pcs[2] != want {
			t.Errorf("gdb reads pcs %#x (held, after reverse-stepi, after stepi); want %#x, another, %#x", pcs, want, want)
		}
		h.release(t, runDir)
		if left, _ := os.ReadDir(runDir); len(left) > 0 {
			t.Errorf("run directory %s left behind: %v", runDir, left)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		checkCLI(t, []cliCase{
			{"no recordings", []string{"replay", t.TempDir()}, 2, nil, []string{"no recordings", "--keep", "determinism.record"}},
			{"beyond the recording", []string{"replay", keptRun, "--at", fmt.Sprint(m.End[0] + 1_000_000)}, 2,
				nil, []string{"beyond the recording", fmt.Sprintf("ends at instruction %d", m.End[0])}},
			{"no run dir", []string{"replay"}, 2, nil, []string{"usage: lockstep replay RUN_DIR"}},
		})
		qemutest.NoQEMUUnder(t, runDir)
	})
}

// heldSockets returns the gdbstub sockets a hold printed, a's first.
func heldSockets(t *testing.T, text string) []string {
	t.Helper()
	var socks []string
	for _, m := range regexp.MustCompile(`target remote (\S+?)'`).FindAllStringSubmatch(text, -1) {
		socks = append(socks, m[1])
	}
	if len(socks) != 2 {
		t.Fatalf("no gdb commands for both sides:\n%s", text)
	}
	return socks
}

// insnLen decodes the x86-64 instruction at addr in the ELF file and
// returns its length.
func insnLen(t *testing.T, path string, addr uint64) int {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr >= p.Vaddr+p.Filesz {
			continue
		}
		buf := make([]byte, 16)
		n, _ := p.ReadAt(buf, int64(addr-p.Vaddr))
		in, err := x86asm.Decode(buf[:n], 64)
		if err != nil {
			t.Fatalf("decode at %#x: %v", addr, err)
		}
		return in.Len
	}
	t.Fatalf("%#x is in no loaded segment of %s", addr, path)
	return 0
}

// release sends SIGINT to a holding lockstep and checks that it ends the
// hold with status 0 (the scenario expects its divergence) and leaves no
// QEMU under runDir.
func (h *held) release(t *testing.T, runDir string) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, text := h.exit(t, 60*time.Second); code != 0 || !strings.Contains(text, "released (interrupted)") {
		t.Errorf("exit status %d after SIGINT, want 0 and a release:\n%s", code, text)
	}
	qemutest.NoQEMUUnder(t, runDir)
}
