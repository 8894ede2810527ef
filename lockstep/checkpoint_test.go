package lockstep

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// ckptScenario loads a scenario from testdata/scenarios, or skips.
func ckptScenario(tb testing.TB, name string) *scenario.Scenario {
	tb.Helper()
	qemutest.Require(tb, "x86_64", "tcg")
	qemutest.Guest(tb, "demo-good")
	sc, err := scenario.Load(filepath.Join(qemutest.Root(tb), "testdata", "scenarios", name))
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

// startRun sets up a run of sc as Run does, with both guests launched and
// paused at reset, in a fresh run directory. Cleanup tears them down and
// checks that no QEMU is left.
func startRun(tb testing.TB, sc *scenario.Scenario) (*run, context.Context) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	r := newRun(sc, Options{})
	tb.Cleanup(func() {
		r.teardown(ctx, nil)
		cancel()
		if live := qemu.Live(); len(live) > 0 {
			tb.Errorf("QEMU left running: %v", live)
		}
	})
	if err := r.prepare(ctx); err != nil {
		tb.Fatal(err)
	}
	return r, ctx
}

// runWithCheckpoints runs sc like Run (syncPoint saves checkpoints itself),
// capturing the run's log to see whether a checkpoint was restored.
func runWithCheckpoints(t *testing.T, sc *scenario.Scenario) (*Result, string, string) {
	t.Helper()
	var logBuf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := newRun(sc, Options{Keep: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	r.log = r.opts.Logger
	err := r.prepare(ctx)
	for k := range sc.Sync {
		if err != nil {
			break
		}
		var cont bool
		if cont, err = r.syncPoint(ctx, k); !cont {
			break
		}
	}
	if err == nil {
		_, _, err = r.eng.Finish(ctx, r.pair)
	}
	r.teardown(ctx, err)
	t.Cleanup(func() { os.RemoveAll(r.dir) })
	r.finish(err)
	if err != nil {
		t.Fatalf("run %s with checkpoints: %v (notes %q)", sc.Name, err, r.res.Notes)
	}
	return r.res, r.dir, logBuf.String()
}

func instructionDivs(res *Result) []compare.Divergence {
	var out []compare.Divergence
	for _, d := range res.Divergences {
		if d.Kind == compare.KindInstruction {
			out = append(out, d)
		}
	}
	return out
}

// TestCheckpointSameAnswerAsRestart checks that localising from a restored
// snapshot finds exactly what relaunching and replaying finds, and that
// the run goes on from where it was to the same result.
func TestCheckpointSameAnswerAsRestart(t *testing.T) {
	for _, name := range []string{"deep.yaml", "demo.yaml"} {
		t.Run(name, func(t *testing.T) {
			sameAnswerAsRestart(t, ckptScenario(t, name))
		})
	}
}

// sameAnswerAsRestart runs sc with localize.checkpoint restart, then with
// snapshot, and checks that a checkpoint was restored and that both runs
// found the same instruction divergences (summary, PCs, step, sync point),
// the same outcome and the same sync point statuses. It returns the
// snapshot run's directory (kept) and log.
func sameAnswerAsRestart(t *testing.T, sc *scenario.Scenario) (string, string) {
	t.Helper()
	sc.Localize.Checkpoint = scenario.CheckpointRestart
	want, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Localize.Checkpoint = scenario.CheckpointSnapshot
	got, dir, log := runWithCheckpoints(t, sc)
	if !strings.Contains(log, "checkpoint: restored sync point") {
		t.Errorf("localisation did not restore a checkpoint; log:\n%s\nnotes %q", log, got.Notes)
	}

	wi, gi := instructionDivs(want), instructionDivs(got)
	if len(wi) == 0 {
		t.Fatalf("restart found no instruction divergence (notes %q)", want.Notes)
	}
	if len(wi) != len(gi) {
		t.Fatalf("snapshot found %d instruction divergences, restart %d\nsnapshot: %+v\nrestart: %+v", len(gi), len(wi), gi, wi)
	}
	for i := range wi {
		if wi[i].Summary != gi[i].Summary || !reflect.DeepEqual(wi[i].PC, gi[i].PC) || wi[i].Step != gi[i].Step || wi[i].Sync != gi[i].Sync {
			t.Errorf("divergence %d:\nsnapshot %q at %v step %d\nrestart  %q at %v step %d", i,
				gi[i].Summary, gi[i].PC, gi[i].Step, wi[i].Summary, wi[i].PC, wi[i].Step)
		}
	}
	if len(want.Divergences) != len(got.Divergences) || want.Outcome != got.Outcome {
		t.Errorf("snapshot run: %d divergences, %s; restart run: %d, %s", len(got.Divergences), got.Outcome,
			len(want.Divergences), want.Outcome)
	}
	for i := range want.Syncs {
		if want.Syncs[i].Status != got.Syncs[i].Status {
			t.Errorf("sync point %d: snapshot %s, restart %s", i+1, got.Syncs[i].Status, want.Syncs[i].Status)
		}
	}
	for _, n := range got.Notes {
		if strings.Contains(n, "checkpoint") {
			t.Errorf("note: %s", n)
		}
	}
	// The scratch images live in the run directory.
	for _, tag := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(dir, tag+"-ckpt.qcow2")); err != nil {
			t.Errorf("scratch qcow2 of %s: %v", tag, err)
		}
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU left running: %v", live)
	}
	return dir, log
}

// TestCheckpointGDBStub checks what a restore does to the gdbstub: the
// connection stays usable, the registers read back as saved, and
// breakpoints inserted before the load still fire after it.
func TestCheckpointGDBStub(t *testing.T) {
	sc := ckptScenario(t, "demo-self.yaml")
	r, ctx := startRun(t, sc)
	none := [2]map[uint64]string{}
	if _, err := localize.Replay(ctx, r.eng, r.pair, 0, none); err != nil {
		t.Fatalf("replay: %v", err)
	}
	g := r.pair[0]
	regs := []string{"rip", "rsp", "rax", "rdi"}
	before, err := g.Registers(ctx, regs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := localize.SaveBoth(ctx, r.pair, 0); err != nil {
		t.Fatal(err)
	}
	// Move on, so the restore has something to undo.
	if _, err := localize.Replay(ctx, r.eng, r.pair, 1, none); err != nil {
		t.Fatalf("replay: %v", err)
	}
	next, err := g.Resolve(sc.Sync[1].Break)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Insert(ctx, g.BPKind, next); err != nil {
		t.Fatal(err)
	}
	if err := localize.Restore(ctx, r.pair, 0); err != nil {
		t.Fatal(err)
	}
	after, err := g.Registers(ctx, regs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regs {
		b, _ := before[name].Uint64()
		a, _ := after[name].Uint64()
		if a != b {
			t.Errorf("%s after restore %#x, saved %#x", name, a, b)
		}
	}
	if !g.HasBreakpoint(next) {
		t.Fatalf("breakpoint at %#x not re-inserted", next)
	}
	if _, err := g.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := g.PC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pc != next {
		t.Errorf("after restore the guest stopped at %#x, want the breakpoint at %#x", pc, next)
	}
	if err := localize.Restore(ctx, r.pair, 7); !errors.Is(err, localize.ErrNoCheckpoint) {
		t.Errorf("restore of a missing checkpoint: %v, want ErrNoCheckpoint", err)
	}
}

func TestParseJobs(t *testing.T) {
	tests := []struct {
		name, raw, id, status, jerr string
		err                         error
	}{
		{"concluded", `[{"current-progress":1,"status":"concluded","total-progress":1,"type":"snapshot-save","id":"j1"}]`, "j1", "concluded", "", nil},
		{"error", `[{"status":"concluded","type":"snapshot-save","id":"j1","error":"No block device node 'ckpt'"}]`, "j1", "concluded", "No block device node 'ckpt'", nil},
		{"other job", `[{"status":"running","id":"j2"}]`, "j1", "", "", errNoJob},
		{"empty", `[]`, "j1", "", "", errNoJob},
	}
	for _, tc := range tests {
		j, err := parseJobs([]byte(tc.raw), tc.id)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || j.Status != tc.status || j.Error != tc.jerr {
			t.Errorf("%s: %+v %v", tc.name, j, err)
		}
	}
	if _, err := parseJobs([]byte(`{`), "x"); err == nil {
		t.Error("bad JSON accepted")
	}
}

// FuzzParseJobs checks that no query-jobs reply makes the parser panic,
// and that a found job always has a status.
func FuzzParseJobs(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw, id string) {
		j, err := parseJobs([]byte(raw), id)
		if err == nil && (j.ID != id || j.Status == "") {
			t.Errorf("job %+v for id %q", j, id)
		}
	})
}
