package lockstep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/scenario"
)

// RecordingDir is the directory, in a run directory, where a hold under
// record/replay keeps both sides' recordings and the manifest `lockstep
// replay` reopens them with.
const RecordingDir = "rr"

// ManifestName is the manifest's file name in RecordingDir.
const ManifestName = "replay.json"

// recordTail is how many instructions a recording goes on past a sync
// point held: the replay must not end there (its QEMU would), and gdb may
// step forward.
const recordTail = 1000

// rrSnapshot is the name of the VM snapshot a recording takes at its
// start (rrsnapshot) and reverse execution goes back to.
const rrSnapshot = "init"

// Manifest describes a run's recordings: enough to replay both guests
// again and hold them at an instruction count (`lockstep replay`).
type Manifest struct {
	// Scenario is the scenario file (absolute); Guests and Determinism
	// are the run's own, command-line overrides included.
	Scenario    string               `json:"scenario"`
	Guests      [2]scenario.Guest    `json:"guests"`
	Determinism scenario.Determinism `json:"determinism"`
	// Files are each side's execution log; Snapshots each side's qcow2
	// image holding the recording's start snapshot.
	Files     [2]string `json:"files"`
	Snapshots [2]string `json:"snapshots"`
	// ICount is each side's instruction count at the place held (the
	// localised instruction, before it executes); End the count where
	// the recording ends.
	ICount [2]uint64 `json:"icount"`
	End    [2]uint64 `json:"end"`
	// PC is each side's program counter at ICount, as the report gives it.
	PC [2]compare.Location `json:"pc"`
	// Where describes the place held, for people.
	Where string `json:"where"`
}

// noReverse says why the planned hold cannot be under record/replay, ""
// when it can: the run was recorded (determinism.record, or replay
// localisation), and the pair can be recorded.
func (h *Hold) noReverse() string {
	sc := h.r.sc
	if !sc.Determinism.Record && sc.Localize.Method != scenario.MethodReplay {
		return "the run was not recorded (set determinism.record: true, or localize.method: replay)"
	}
	if why := localize.Unreplayable([2]scenario.Guest(sc.Guests), sc.SameBinary()); why != "" {
		return why
	}
	if h.Sync < 0 && h.Steps > 0 {
		return "the divergence was localised from reset by the trace engine, whose count leaves out the firmware an instruction count includes"
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return "qemu-img (to make the snapshot image reverse execution needs) is not installed"
	}
	return ""
}

// rrSpecs are the scenario's guests with what reverse execution needs: a
// qcow2 drive for the start snapshot. (qemu.Spec leaves out the default
// NIC of every recording: with it, a replay that loads the snapshot
// hangs.)
func rrSpecs(sc *scenario.Scenario, snaps [2]string) [2]scenario.Guest {
	var out [2]scenario.Guest
	for i, g := range sc.Guests {
		g.Drives = append(append([]scenario.Drive(nil), g.Drives...),
			scenario.Drive{File: snaps[i], Format: "qcow2", If: "none"})
		out[i] = g
	}
	return out
}

// launchRR launches a pair recording to or replaying from m's files.
func (h *Hold) launchRR(ctx context.Context, m *Manifest, mode, tag string) (guest.Pair, error) {
	r := h.r
	specs := rrSpecs(r.sc, m.Snapshots)
	var p guest.Pair
	var eg errgroup.Group
	for i := range p {
		eg.Go(func() error {
			g, err := r.launcher.Launch(ctx, guest.Config{Side: i, Tag: scenario.SideNames[i] + tag, Spec: specs[i], Syms: r.syms[i],
				RR: qemu.RecordReplay{Mode: mode, File: m.Files[i], Snapshot: rrSnapshot}})
			p[i] = g
			return err
		})
	}
	err := eg.Wait()
	if err != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.to.Teardown)
		defer cancel()
		p.Close(tctx)
		return guest.Pair{}, err
	}
	return p, nil
}

// recordAndReplay is the placer under record/replay: it records a fresh
// pair (with a start snapshot) from boot past the place planned, then
// replays the recording to the instruction count of that place and
// leaves the pair replaying, where gdb can also execute backwards. The
// recordings and a manifest stay in the run directory for `lockstep
// replay`.
func (h *Hold) recordAndReplay(life, ctx context.Context, e *engine.Engine) error {
	m, err := h.keepRecording(ctx, e)
	if err != nil {
		return err
	}
	return h.replayTo(life, ctx, m, m.ICount)
}

// keepRecording records both sides from boot past the place planned into
// the run directory, and writes the manifest.
func (h *Hold) keepRecording(ctx context.Context, e *engine.Engine) (*Manifest, error) {
	r := h.r
	dir := filepath.Join(r.dir, RecordingDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file, err := filepath.Abs(r.sc.File)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Scenario: file, Guests: r.sc.Guests, Determinism: r.sc.Determinism, PC: h.want, Where: h.Where()}
	for i, side := range scenario.SideNames {
		m.Files[i] = filepath.Join(dir, side+".rr")
		m.Snapshots[i] = filepath.Join(dir, side+".qcow2")
		if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", m.Snapshots[i], "16M").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err := h.record(ctx, e, m); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// keepRecordings is the end of a kept run (--keep) that was recorded and
// diverged, without --hold: it records the place a hold would stand at
// into the run directory, for `lockstep replay`, and notes where.
func (r *run) keepRecordings(ctx context.Context, runErr error) {
	h := r.holdPlan(runErr)
	if h.Reason != "" {
		return
	}
	if why := h.noReverse(); why != "" {
		r.Note("no recording kept for `lockstep replay`: " + why)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, r.sc.Timeout)
	defer cancel()
	m, err := h.keepRecording(pctx, h.engine(pctx))
	if err != nil {
		r.Note(fmt.Sprintf("no recording kept for `lockstep replay`: %v", err))
		return
	}
	r.Note(fmt.Sprintf("recordings of %s (instruction count %d on a, %d on b) kept for `lockstep replay %s`",
		m.Where, m.ICount[0], m.ICount[1], r.dir))
}

// record records both sides from boot past the place planned, measuring
// the instruction count of that place and of the recording's end.
func (h *Hold) record(ctx context.Context, e *engine.Engine, m *Manifest) (err error) {
	r := h.r
	p, err := h.launchRR(ctx, m, qemu.RRRecord, "-hold-record")
	if err != nil {
		return err
	}
	defer func() {
		// The recording is complete only once QEMU has ended.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.to.Teardown)
		defer cancel()
		if cerr := p.Close(tctx); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := h.toSync(ctx, e, p); err != nil {
		return err
	}
	counts := func(into *[2]uint64) error {
		return p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
			n, err := g.ICount(ctx)
			into[i] = n
			return err
		})
	}
	if err := counts(&m.ICount); err != nil {
		return err
	}
	for i := range m.ICount {
		m.ICount[i] += uint64(h.Steps)
	}
	// Past the place: to the diverging sync point, through the step
	// window, or some way past the sync point held. A replay that reaches
	// the end of its recording ends its QEMU.
	var exited [2]uint64 // steps to the guest's exit, 0 when it did not
	switch {
	case h.Steps == 0:
		if err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
			for n := range uint64(recordTail) {
				st, err := g.Step(ctx)
				if err != nil {
					return err
				}
				if st.Exited() {
					exited[i] = n + 1
					return nil
				}
			}
			return nil
		}); err != nil {
			return err
		}
	case h.spec > h.Sync:
		if _, err := localize.Replay(ctx, e, p, h.spec, [2]map[uint64]string{}); err != nil {
			return err
		}
	default:
		if _, err := e.LockstepSteps(ctx, p, h.Sync, h.cspec, h.Steps+1, nil); err != nil {
			return err
		}
	}
	for i, g := range p {
		if exited[i] > 0 {
			// The recording ends with the guest's exit, at least this
			// far on.
			m.End[i] = m.ICount[i] + exited[i]
			continue
		}
		if m.End[i], err = g.ICount(ctx); err != nil {
			return err
		}
	}
	for i := range m.End {
		if m.End[i] <= m.ICount[i] {
			return fmt.Errorf("side %s: the recording ends at instruction %d, before the place held (%d)",
				scenario.SideNames[i], m.End[i], m.ICount[i])
		}
	}
	return nil
}

// replayTo launches a pair replaying m's recordings and runs each side
// to instruction count at[i]. The pair (h.pair) lives as long as life.
func (h *Hold) replayTo(life, ctx context.Context, m *Manifest, at [2]uint64) error {
	p, err := h.launchRR(life, m, qemu.RRReplay, "-hold")
	if err != nil {
		return err
	}
	h.pair = p
	for _, g := range p {
		if _, err := g.ApplySstep(ctx, h.r.sc.Determinism.Sstep); err != nil {
			return err
		}
	}
	if err := p.Each(ctx, func(ctx context.Context, i int, g *guest.Guest) error {
		return g.RunTo(ctx, at[i])
	}); err != nil {
		return err
	}
	h.Reverse, h.ICount = true, at
	return nil
}

// placeRR is the placer of a planned hold: under record/replay when the
// run was recorded, else (or when recording fails) relaunchAndStep.
func (h *Hold) placeRR(life, ctx context.Context, e *engine.Engine) error {
	if h.NoReverse = h.noReverse(); h.NoReverse != "" {
		return h.relaunchAndStep(life, ctx, e)
	}
	err := h.recordAndReplay(life, ctx, e)
	if err == nil || ctx.Err() != nil {
		return err
	}
	h.NoReverse = fmt.Sprintf("record/replay failed (%v)", err)
	h.Note("hold: " + h.NoReverse + "; held by replaying from boot instead")
	if cerr := h.closePair(ctx); cerr != nil {
		return cerr
	}
	h.Reverse, h.ICount = false, [2]uint64{}
	return h.relaunchAndStep(life, ctx, e)
}

// closePair tears down h.pair, if any.
func (h *Hold) closePair(ctx context.Context) error {
	if h.pair[0] == nil && h.pair[1] == nil {
		return nil
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.r.to.Teardown)
	defer cancel()
	err := h.pair.Close(tctx)
	h.pair = guest.Pair{}
	return err
}

// ErrNoRecording is returned by ReplayRun for a run directory without
// recordings.
var ErrNoRecording = errors.New("no recordings")

// ReplayRun reopens the recordings a kept run left in runDir (`lockstep
// run --keep` of a recorded run that diverged, with or without --hold)
// and returns a Hold that replays
// both guests to instruction count at (0: the place the run held, each
// side's own count). The caller calls Start, Wait and Close as for
// RunHold; the run directory is never removed.
func ReplayRun(runDir string, at uint64, opts Options) (*Hold, error) {
	// QEMU's sockets are below it, and QEMU runs elsewhere than here.
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(runDir, RecordingDir, ManifestName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: %s not found (a run keeps recordings with --keep when it was recorded: determinism.record or localize.method: replay, and diverged)",
			runDir, ErrNoRecording, filepath.Join(RecordingDir, ManifestName))
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range m.Files {
		for _, f := range []string{m.Files[i], m.Snapshots[i]} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("%s: %w: %v", runDir, ErrNoRecording, err)
			}
		}
	}
	target := m.ICount
	if at > 0 {
		for i := range target {
			if at > m.End[i] {
				return nil, fmt.Errorf("--at %d is beyond the recording: side %s's recording ends at instruction %d", at, scenario.SideNames[i], m.End[i])
			}
			target[i] = at
		}
	}
	sc, err := scenario.Load(m.Scenario)
	if err != nil {
		return nil, &ScenarioError{Err: fmt.Errorf("the recorded run's scenario: %w", err)}
	}
	// The guests as the run launched them, overrides included.
	sc.Guests, sc.Determinism = m.Guests, m.Determinism
	opts.Keep = true
	r := newRun(sc, opts)
	if r.syms, err = checkScenario(sc, opts.Symbols); err != nil {
		return nil, err
	}
	r.dir = runDir
	r.launcher = r.opts.launcher
	if r.launcher == nil {
		r.launcher = &guest.QEMU{Dir: runDir, Logger: r.opts.Logger, Determinism: sc.Determinism, Timeouts: r.to}
	}
	h := &Hold{r: r, Place: HeldAtICount, Sync: -1, want: m.PC}
	if at > 0 {
		h.want = [2]compare.Location{}
		h.unchecked = true
	}
	h.place = func(life, ctx context.Context, e *engine.Engine) error {
		return h.replayTo(life, ctx, &m, target)
	}
	h.Why = "replaying the recordings in " + filepath.Join(runDir, RecordingDir)
	if at == 0 {
		h.Why += " to " + m.Where
	}
	h.ICount = target
	return h, nil
}
