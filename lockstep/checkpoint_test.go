package lockstep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
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
	dir, err := os.MkdirTemp("", "lockstep-")
	if err != nil {
		tb.Fatal(err)
	}
	r.dir = dir
	tb.Cleanup(func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer tcancel()
		for _, s := range r.sides {
			s.close(tctx)
		}
		cancel()
		os.RemoveAll(dir)
		if live := qemu.Live(); len(live) > 0 {
			tb.Errorf("QEMU left running: %v", live)
		}
	})
	if err := r.loadSymbols(); err != nil {
		tb.Fatal(err)
	}
	if err := r.launchBoth(ctx, dir); err != nil {
		tb.Fatal(err)
	}
	if err := r.applyDeterminism(ctx); err != nil {
		tb.Fatal(err)
	}
	return r, ctx
}

// runWithCheckpoints runs sc like Run (syncPoint saves checkpoints itself),
// capturing the run's log to see whether a checkpoint was restored.
func runWithCheckpoints(t *testing.T, sc *scenario.Scenario) (*Result, string, string) {
	t.Helper()
	r, ctx := startRun(t, sc)
	var logBuf bytes.Buffer
	r.log = slog.New(slog.NewTextHandler(&logBuf, nil))
	var err error
	for k := range sc.Sync {
		var cont bool
		cont, err = r.syncPoint(ctx, k)
		if err != nil || !cont {
			break
		}
	}
	if err == nil {
		err = r.finishGuests(ctx)
	}
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
			sc := ckptScenario(t, name)
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
				if wi[i].Summary != gi[i].Summary || wi[i].PC != gi[i].PC || wi[i].Step != gi[i].Step || wi[i].Sync != gi[i].Sync {
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
			// The scratch images live in the run directory.
			for _, tag := range []string{"a", "b"} {
				if _, err := os.Stat(filepath.Join(dir, tag+"-ckpt.qcow2")); err != nil {
					t.Errorf("scratch qcow2 of %s: %v", tag, err)
				}
			}
			if live := qemu.Live(); len(live) > 0 {
				t.Errorf("QEMU left running: %v", live)
			}
		})
	}
}

// TestCheckpointGDBStub checks what a restore does to the gdbstub: the
// connection stays usable, the registers read back as saved, and
// breakpoints inserted before the load still fire after it.
func TestCheckpointGDBStub(t *testing.T) {
	sc := ckptScenario(t, "demo-self.yaml")
	r, ctx := startRun(t, sc)
	if ok, err := r.replayTo(ctx, r.sides, 0, [2]map[uint64]string{}); err != nil || !ok {
		t.Fatalf("replay: %v %q", err, r.res.Notes)
	}
	s := r.sides[0]
	before, err := s.rsp.ReadRegisters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.checkpointSave(ctx, r.sides, 0); err != nil {
		t.Fatal(err)
	}
	// Move on, so the restore has something to undo.
	if ok, err := r.replayTo(ctx, r.sides, 1, [2]map[uint64]string{}); err != nil || !ok {
		t.Fatalf("replay: %v %q", err, r.res.Notes)
	}
	next, err := s.resolve(sc.Sync[1].Break)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.insert(ctx, s.bpKind, next); err != nil {
		t.Fatal(err)
	}
	if err := r.checkpointRestore(ctx, r.sides, 0); err != nil {
		t.Fatal(err)
	}
	after, err := s.rsp.ReadRegisters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rip", "rsp", "rax", "rdi"} {
		b, _ := before[name].Uint64()
		a, _ := after[name].Uint64()
		if a != b {
			t.Errorf("%s after restore %#x, saved %#x", name, a, b)
		}
	}
	if _, ok := s.bps[next]; !ok {
		t.Fatalf("breakpoint at %#x not re-inserted", next)
	}
	if _, err := s.cont(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := s.pc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pc != next {
		t.Errorf("after restore the guest stopped at %#x, want the breakpoint at %#x", pc, next)
	}
	if err := r.checkpointRestore(ctx, r.sides, 7); !errors.Is(err, errNoCheckpoint) {
		t.Errorf("restore of a missing checkpoint: %v, want errNoCheckpoint", err)
	}
}

func TestWantCheckpoint(t *testing.T) {
	tests := []struct {
		mode    string
		enabled bool
		k       int
		elapsed time.Duration
		want    bool
	}{
		{scenario.CheckpointRestart, true, 0, time.Hour, false},
		{scenario.CheckpointSnapshot, true, 0, 0, true},
		{scenario.CheckpointSnapshot, false, 0, 0, false},
		{scenario.CheckpointSnapshot, true, 2, 0, false}, // the last point
		{scenario.CheckpointAuto, true, 0, 0, false},
		{scenario.CheckpointAuto, true, 1, autoMinReplay + time.Second, true},
		{"", true, 1, autoMinReplay + time.Second, true},
	}
	for _, tc := range tests {
		sc := &scenario.Scenario{Sync: make([]scenario.SyncPoint, 3),
			Localize: scenario.Localize{Enabled: tc.enabled, Checkpoint: tc.mode}}
		r := &run{sc: sc, start: time.Now().Add(-tc.elapsed)}
		if got := r.wantCheckpoint(tc.k); got != tc.want {
			t.Errorf("mode %q enabled %v k %d after %s: %v, want %v", tc.mode, tc.enabled, tc.k, tc.elapsed, got, tc.want)
		}
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

func TestParseSnapshotTags(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseSnapshotTags", "named-block-nodes"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := corpusString(raw)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := parseSnapshotTags([]byte(seed), ckptNode)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0] != "lockstep-sync1" || tags[1] != "lockstep-sync2" {
		t.Errorf("tags %q", tags)
	}
	if tags, _ := parseSnapshotTags([]byte(seed), "other"); len(tags) != 0 {
		t.Errorf("tags of a missing node %q", tags)
	}
}

// FuzzParseSnapshotTags checks that no query-named-block-nodes reply makes
// the parser panic.
func FuzzParseSnapshotTags(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		tags, err := parseSnapshotTags([]byte(raw), ckptNode)
		if err != nil && tags != nil {
			t.Errorf("tags %q with error %v", tags, err)
		}
	})
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

// corpusString decodes a one-string file in Go's fuzz corpus format.
func corpusString(b []byte) (string, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
		return "", fmt.Errorf("not a fuzz corpus file")
	}
	return strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
}
