package lockstep

import (
	"time"

	"github.com/lockstep-dev/lockstep/compare"
)

// SchemaVersion identifies the JSON layout of Result. It changes whenever a
// field is removed or changes meaning; added fields keep it.
const SchemaVersion = "lockstep.result/v1"

// Outcome is what a run found.
type Outcome string

// The outcomes of a run.
const (
	OutcomeIdentical Outcome = "identical" // every sync point compared, no divergence (noise excluded)
	OutcomeDiverged  Outcome = "diverged"  // at least one divergence
	// OutcomeIncomplete: no divergence, but something the scenario asked
	// for was not compared (a sync point neither side reached, a memory
	// range unreadable on both sides). It never passes.
	OutcomeIncomplete Outcome = "incomplete"
	OutcomeError      Outcome = "error" // infrastructure failure; see Result.Error
)

// SyncStatus is what happened at one sync point.
type SyncStatus string

// The statuses of a sync point.
const (
	SyncMatch      SyncStatus = "match"      // reached by both, compared, no divergence
	SyncNoise      SyncStatus = "noise"      // reached and compared; only noise divergences
	SyncDiverge    SyncStatus = "diverge"    // reached and compared; at least one divergence
	SyncIncomplete SyncStatus = "incomplete" // reached by both, but something asked for could be compared on neither side
	SyncUnreached  SyncStatus = "unreached"  // one or both sides never got there
	SyncSkipped    SyncStatus = "skipped"    // an earlier stop or failure ended the run first
)

// Mode says how addresses compare (DESIGN.md "One binary or two builds").
type Mode string

// The modes of a run.
const (
	ModeSameBinary      Mode = "same-binary"
	ModeDifferentBuilds Mode = "different-builds"
)

// SideState is how a guest ended.
type SideState string

// The states of a side at the end of a run.
const (
	StateRunning SideState = "running" // still running after the last sync point
	StateStopped SideState = "stopped" // stopped where nobody asked it to
	StateExited  SideState = "exited"  // the guest ended (isa-debug-exit, power-off)
	// StatePanicked: the guest ended in a panic QEMU reported
	// (GUEST_PANICKED: an s390x disabled wait, pvpanic), whatever QEMU's
	// exit status (0 under its default -action panic=shutdown).
	StatePanicked SideState = "panicked"
	// StateReset: the guest reset itself (a triple fault, a reboot),
	// which -no-reboot turns into QEMU's exit, status 0.
	StateReset  SideState = "reset"
	StateKilled SideState = "killed" // QEMU died: killed by a signal, crashed, or stopped answering
	// StateDetached: lockstep attached to a running QEMU and left it
	// running or paused (Side.OnExit) when it detached.
	StateDetached SideState = "detached"
)

// Result is everything a run found. It is JSON-serialisable and is the only
// input of the renderers in package reports.
type Result struct {
	Schema      string `json:"schema"`
	Scenario    string `json:"scenario"`
	File        string `json:"file,omitempty"`
	Description string `json:"description,omitempty"`
	// Expect is the scenario's expectation: "identical" or "diverge".
	Expect  string  `json:"expect"`
	Outcome Outcome `json:"outcome"`
	// Passed reports whether Outcome matched Expect (exit status 0).
	Passed bool `json:"passed"`
	// Mode is "same-binary" or "different-builds" (see DESIGN.md).
	Mode  Mode    `json:"mode"`
	Sides [2]Side `json:"sides"`
	// Syncs has one entry per sync point in scenario order, including those
	// never reached.
	Syncs []SyncResult `json:"syncs"`
	// Divergences lists every divergence in the order found.
	Divergences []compare.Divergence `json:"divergences"`
	// Notes are things the user should know that are not divergences, e.g.
	// "sstep NOTIMER unsupported under kvm" or "step window compared by function".
	Notes []string `json:"notes,omitempty"`
	// Injections are the faults the scenario injected into one side
	// (deliberate differences), in the order they happened.
	Injections []Injection   `json:"injections,omitempty"`
	Error      string        `json:"error,omitempty"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"duration_ns"`
	Stats      Stats         `json:"stats"`
}

// Side describes one guest as it was run.
type Side struct {
	Label   string `json:"label"`
	Accel   string `json:"accel"`
	CPU     string `json:"cpu,omitempty"`
	Machine string `json:"machine,omitempty"`
	Kernel  string `json:"kernel,omitempty"`
	Symbols string `json:"symbols,omitempty"`
	QEMU    string `json:"qemu"`         // binary path
	Version string `json:"qemu_version"` // from QMP query-version
	Command string `json:"command"`      // shell-quoted command line
	// State is how the guest ended: "running", "stopped", "exited", "panicked", "reset", "killed".
	State    SideState `json:"state,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	// Attach is the QMP socket of a QEMU lockstep attached to instead of
	// launching one; OnExit is what it was left as ("running", "paused").
	Attach string `json:"attach,omitempty"`
	OnExit string `json:"on_exit,omitempty"`
	// SerialTail is the last lines of the guest's serial output.
	SerialTail string `json:"serial_tail,omitempty"`
}

// SyncResult is what happened at one sync point.
type SyncResult struct {
	Index int    `json:"index"`
	Break string `json:"break"`
	// Hit is the arrival run to, counted from the previous sync point;
	// HitTotal is the arrival from boot when the scenario gave hit_total.
	Hit      int `json:"hit"`
	HitTotal int `json:"hit_total,omitempty"`
	// Status is one of the SyncStatus values.
	Status  SyncStatus          `json:"status"`
	Reached [2]bool             `json:"reached"`
	PC      [2]compare.Location `json:"pc"`
	// Divergences counts the divergences recorded at this point.
	Divergences int `json:"divergences"`
	// Uncompared names what the point asked to compare and neither side
	// could provide.
	Uncompared []string `json:"uncompared,omitempty"`
	// Steps is the number of lockstep instructions executed in its step window.
	Steps    int           `json:"steps,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// State is what each side looked like when both reached the point
	// (pc, compared registers, backtrace), also when they matched; zero
	// (left out of the JSON) when the point was not reached by both.
	State [2]compare.SideState `json:"state,omitzero"`
	// Stats are the accelerator statistics (KVM exits and more) compared
	// at this point: deltas since the previous sync point, the counters
	// that moved most first. Nil when the point compares none.
	Stats *compare.StatsTable `json:"stats,omitempty"`
	// Localization says how the divergence first found here was
	// localised; nil when it was not localised by instruction.
	Localization *Localization `json:"localization,omitempty"`
}

// Localization says which localisation method ran at a sync point and why,
// and what a replay bisection cost.
type Localization struct {
	// Method is "step", "trace" or "replay".
	Method string `json:"method"`
	Why    string `json:"why,omitempty"`
	// Fallback says why replay was not used or gave no answer.
	Fallback string `json:"fallback,omitempty"`
	// Depth is the instruction count between the previous sync point and
	// this one (side a), measured by a recording.
	Depth uint64 `json:"depth,omitempty"`
	// Probes and Passes are the replay stops compared and the replays.
	Probes int `json:"probes,omitempty"`
	Passes int `json:"passes,omitempty"`
	// Record and Replay are the time spent recording and replaying.
	Record time.Duration `json:"record_ns,omitempty"`
	Replay time.Duration `json:"replay_ns,omitempty"`
	// ICount is each side's instruction count since boot at the localised
	// instruction (replay only).
	ICount [2]uint64 `json:"icount,omitzero"`
}

// Reached counts the sync points both sides reached.
func (r *Result) Reached() int {
	n := 0
	for _, s := range r.Syncs {
		if s.Reached[0] && s.Reached[1] {
			n++
		}
	}
	return n
}

// Stats are counters of the run.
type Stats struct {
	SyncPoints  int     `json:"sync_points"`
	Steps       int     `json:"steps"`
	StepsPerSec float64 `json:"steps_per_sec,omitempty"`
	RSPPackets  int     `json:"rsp_packets,omitempty"`
}

// Injection is a fault injected into one side (scenario inject): a
// deliberate difference. Divergences found after it are read as its
// consequences.
type Injection struct {
	// Index is its place in the scenario's inject list (0-based).
	Index int    `json:"index"`
	Side  string `json:"side"`
	// Where is "sync point 2", "entry of alloc (call 3)" or "return of
	// alloc (call 3)"; Set what it set ("rax=0x0", "pool+0x8: 00 00").
	Where string `json:"where"`
	Set   string `json:"set"`
	// Sync is the sync point (0-based) the side stood at or was running
	// to when it was injected.
	Sync int `json:"sync"`
	// PC is where the side stood.
	PC compare.Location `json:"pc"`
}
