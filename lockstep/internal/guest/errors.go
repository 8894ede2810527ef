package guest

import (
	"errors"
	"fmt"

	"github.com/lockstep-dev/lockstep/scenario"
)

// ErrInfrastructure marks failures of the machinery rather than findings
// about the guests: QEMU missing, a guest that failed to start, a QEMU that
// died or stopped answering. Package lockstep re-exports it.
var ErrInfrastructure = errors.New("infrastructure failure")

// ErrTraceMismatch is returned when a gdbstub pair, driven to the
// instruction a trace found, is not in the state the trace logged.
var ErrTraceMismatch = errors.New("gdbstub state does not match the trace")

type infraError struct{ err error }

func (e *infraError) Error() string   { return e.err.Error() }
func (e *infraError) Unwrap() []error { return []error{e.err, ErrInfrastructure} }

// Infra marks err as an infrastructure failure (nil stays nil).
func Infra(err error) error {
	if err == nil || errors.Is(err, ErrInfrastructure) {
		return err
	}
	var se *ScenarioError
	if errors.As(err, &se) {
		return err
	}
	return &infraError{err}
}

// Infraf is Infra(fmt.Errorf(format, args...)).
func Infraf(format string, args ...any) error { return Infra(fmt.Errorf(format, args...)) }

// ScenarioError is a problem with the scenario found at run time, such as
// a symbol that does not resolve: a usage error (exit status 2).
type ScenarioError struct{ Err error }

func (e *ScenarioError) Error() string { return e.Err.Error() }
func (e *ScenarioError) Unwrap() error { return e.Err }

// Fault is a QEMU that died, crashed or stopped answering: an
// infrastructure failure of one side, never a finding about the guest.
type Fault struct {
	// Index is the guest's side: 0 for a, 1 for b.
	Index int
	// Side names the guest ("b (regressed)").
	Side string
	// Tag names the guest's files ("b", "b-localise"): which QEMU of that
	// side failed.
	Tag string
	// What says what happened ("QEMU was killed by signal killed").
	What string
	// Stderr holds the last lines QEMU wrote to stderr.
	Stderr string
	// Err is the error that led to the diagnosis, if any.
	Err error
}

func (f *Fault) Error() string {
	s := fmt.Sprintf("guest %s: %s", f.Side, f.What)
	if f.Tag != "" && f.Tag != scenario.SideNames[f.Index] {
		s = fmt.Sprintf("guest %s (its QEMU %s): %s", f.Side, f.Tag, f.What)
	}
	if f.Stderr != "" {
		s += "\nQEMU's last stderr lines:\n" + f.Stderr
	}
	return s
}

// Unwrap lets errors.Is find ErrInfrastructure and the cause.
func (f *Fault) Unwrap() []error {
	if f.Err != nil {
		return []error{ErrInfrastructure, f.Err}
	}
	return []error{ErrInfrastructure}
}
