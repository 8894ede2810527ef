package guest

import "time"

// Timeouts are every bound a run applies besides the scenario's own
// timeouts: one named block, so that tests can shorten them and a reader
// can see them all at once.
type Timeouts struct {
	// Teardown bounds closing both guests at the end of a run (it runs even
	// when the run's context is done).
	Teardown time.Duration
	// Reserve is kept back from the run's deadline when waiting for a sync
	// point, for capture and teardown.
	Reserve time.Duration
	// MinWait is the least a side may wait for a sync point.
	MinWait time.Duration
	// Step bounds one single step. A step never takes long; one that does
	// is interrupted, and one whose interrupt is not answered means QEMU
	// stopped answering.
	Step time.Duration
	// ExitWait bounds the wait for the process exit status after the
	// gdbstub reported an exit or closed.
	ExitWait time.Duration
	// Health bounds a liveness question to QEMU (QMP query-status).
	Health time.Duration
	// Probe is how often QEMU is asked whether it still answers while a
	// guest runs towards a stop, so that a frozen QEMU is found within
	// Probe+Health rather than at the end of the wait.
	Probe time.Duration
	// Cleanup bounds removing breakpoints after a wait.
	Cleanup time.Duration
	// FinishFirst and FinishLongest bound letting the guests run on after
	// the last sync point: both get FinishFirst; when only one has ended,
	// the other gets up to FinishLongest.
	FinishFirst, FinishLongest time.Duration
	// CheckpointAttach and CheckpointJob bound attaching the scratch qcow2
	// and one savevm/loadvm.
	CheckpointAttach, CheckpointJob time.Duration
	// TraceIdle bounds each read of a trace pipe: SeaBIOS runs unlogged
	// before the kernel's first logged instruction.
	TraceIdle time.Duration
}

// DefaultTimeouts returns the bounds of a normal run.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Teardown:         15 * time.Second,
		Reserve:          3 * time.Second,
		MinWait:          time.Second,
		Step:             10 * time.Second,
		ExitWait:         2 * time.Second,
		Health:           2 * time.Second,
		Probe:            5 * time.Second,
		Cleanup:          5 * time.Second,
		FinishFirst:      5 * time.Second,
		FinishLongest:    30 * time.Second,
		CheckpointAttach: 10 * time.Second,
		CheckpointJob:    60 * time.Second,
		TraceIdle:        30 * time.Second,
	}
}
