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
	OutcomeIdentical Outcome = "identical" // no divergence (noise excluded)
	OutcomeDiverged  Outcome = "diverged"  // at least one divergence
	OutcomeError     Outcome = "error"     // infrastructure failure; see Result.Error
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
	Mode  string  `json:"mode"`
	Sides [2]Side `json:"sides"`
	// Syncs has one entry per sync point in scenario order, including those
	// never reached.
	Syncs []SyncResult `json:"syncs"`
	// Divergences lists every divergence in the order found.
	Divergences []compare.Divergence `json:"divergences"`
	// Notes are things the user should know that are not divergences, e.g.
	// "sstep NOTIMER unsupported under kvm" or "step window compared by function".
	Notes    []string      `json:"notes,omitempty"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Stats    Stats         `json:"stats"`
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
	// State is how the guest ended: "running", "stopped", "exited", "killed".
	State    string `json:"state,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// SerialTail is the last lines of the guest's serial output.
	SerialTail string `json:"serial_tail,omitempty"`
}

// SyncResult is what happened at one sync point.
type SyncResult struct {
	Index int    `json:"index"`
	Break string `json:"break"`
	Hit   int    `json:"hit"`
	// Status is "match", "diverge", "noise" (only noise divergences),
	// "unreached" (one or both sides never got there) or "skipped" (an
	// earlier failure ended the run).
	Status  string              `json:"status"`
	Reached [2]bool             `json:"reached"`
	PC      [2]compare.Location `json:"pc"`
	// Divergences counts the divergences recorded at this point.
	Divergences int `json:"divergences"`
	// Steps is the number of lockstep instructions executed in its step window.
	Steps    int           `json:"steps,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Stats are counters of the run.
type Stats struct {
	SyncPoints  int     `json:"sync_points"`
	Steps       int     `json:"steps"`
	StepsPerSec float64 `json:"steps_per_sec,omitempty"`
	RSPPackets  int     `json:"rsp_packets,omitempty"`
}
