package suite

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// IndexSchema is the schema of the JSON index that suite and merge write
// (docs/ci.md).
const IndexSchema = "lockstep.suite/v1"

// IndexFile is the index's file name in an output directory.
const IndexFile = "index.json"

// ErrSchema is returned for an index whose schema is not IndexSchema.
var ErrSchema = errors.New("unsupported suite index schema")

// Status is a scenario's verdict in a suite.
type Status string

// The statuses. Only StatusPassed passes; StatusInfra is counted apart
// (not the change's fault, retried with RetryInfra).
const (
	StatusPassed   Status = "passed"   // the result matched expect
	StatusFailed   Status = "failed"   // it did not
	StatusInfra    Status = "infra"    // infrastructure failure: QEMU missing or dead, timeout
	StatusScenario Status = "scenario" // a problem in the scenario found at run time
	StatusMissing  Status = "missing"  // planned but never reported (a killed shard)
	StatusSkipped  Status = "skipped"  // optional, and this machine cannot run it (no KVM, no such QEMU)
)

// Index is a suite's (or a shard's, or a merge's) JSON index.
type Index struct {
	Schema string `json:"schema"`
	Suite  string `json:"suite"`
	// Shard is the shard this index covers; merges have Total shards and
	// Index 0.
	Shard Shard `json:"shard"`
	// Planned lists every scenario of the whole suite, in every shard, so
	// that a merge can tell what never ran.
	Planned []string `json:"planned"`
	// Selected lists this shard's scenarios.
	Selected []string `json:"selected"`
	// Complete is false while the shard runs: an index left incomplete
	// belongs to a shard that was killed.
	Complete bool             `json:"complete"`
	Started  time.Time        `json:"started"`
	Duration time.Duration    `json:"duration_ns"`
	Counts   map[Status]int   `json:"counts"`
	Results  []ScenarioResult `json:"results"`
	Shards   []Shard          `json:"shards,omitempty"` // merge: the shards found
	// Notes are the merge's findings about the shards: one missing, an
	// incomplete index, a scenario that ran twice.
	Notes []string `json:"notes,omitempty"`
	// QEMUs is the QEMU budget of the run (--qemus) and what it saw;
	// absent without a budget and in merges.
	QEMUs *QEMUUse `json:"qemus,omitempty"`
}

// QEMUUse is what a suite's QEMU budget saw.
type QEMUUse struct {
	// Budget is the most QEMU processes meant to be alive at once.
	Budget int `json:"budget"`
	// Peak is the most that were; above Budget only by Overdrafts.
	Peak int `json:"peak"`
	// Overdrafts counts QEMU starts let over the budget because every
	// scenario holding QEMUs was waiting for another (a deadlock
	// otherwise).
	Overdrafts int `json:"overdrafts"`
	// Waits counts QEMU starts that waited for a slot.
	Waits int `json:"waits"`
}

// ScenarioResult is one scenario's line in the index.
type ScenarioResult struct {
	Name   string `json:"name"`
	File   string `json:"file,omitempty"`
	Status Status `json:"status"`
	// Outcome and Expect are the run's (lockstep.Result).
	Outcome string `json:"outcome,omitempty"`
	Expect  string `json:"expect,omitempty"`
	// Divergences counts the divergences that are not noise; First is
	// the first one's summary.
	Divergences int    `json:"divergences"`
	First       string `json:"first_divergence,omitempty"`
	// Localized is where localisation put the first divergence: the
	// first divergent instruction's summary and location, when one was
	// found (baselines compare it).
	Localized string `json:"localized,omitempty"`
	Error     string `json:"error,omitempty"`
	// Attempts is 1 plus the infrastructure retries.
	Attempts int           `json:"attempts"`
	Shard    string        `json:"shard,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Reports maps a format ("json", "junit", ...) to its file, relative
	// to the index's directory.
	Reports map[string]string `json:"reports,omitempty"`
}

// Passed reports whether every planned scenario passed, optional ones
// skipped aside, and at least one ran: nothing compared is not a pass.
func (x *Index) Passed() bool {
	return x.Counts[StatusPassed] > 0 && x.Counts[StatusPassed]+x.Counts[StatusSkipped] == len(x.Planned)
}

func (x *Index) count() {
	x.Counts = map[Status]int{}
	for _, r := range x.Results {
		x.Counts[r.Status]++
	}
}

// ReadIndex reads an index file.
func ReadIndex(path string) (*Index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var x Index
	if err := json.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("read index: %s: %w", path, err)
	}
	if x.Schema != IndexSchema {
		return nil, fmt.Errorf("read index: %s: %w %q (want %q)", path, ErrSchema, x.Schema, IndexSchema)
	}
	return &x, nil
}

// WriteIndex writes x to dir/index.json atomically (a killed process
// leaves the previous version).
func WriteIndex(dir string, x *Index) error {
	x.count()
	data, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	tmp := filepath.Join(dir, "."+IndexFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, IndexFile)); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// relTo returns path relative to dir, or path when it cannot be.
func relTo(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}
