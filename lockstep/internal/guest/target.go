package guest

import (
	"context"
	"syscall"

	"github.com/lockstep-dev/lockstep/rsp"
)

// Target is the gdbstub of one guest: everything the engine asks of it.
// *rsp.Client implements it; so does the fake target.
type Target interface {
	Layout() *rsp.Layout
	PC(ctx context.Context) (uint64, error)
	ReadRegisterSet(ctx context.Context, names ...string) (rsp.Registers, error)
	ReadMemory(ctx context.Context, addr uint64, n int) ([]byte, error)
	ReadPhysical(ctx context.Context, addr uint64, n int) ([]byte, error)
	// WriteRegister and WriteMemory change the guest (fault injection).
	WriteRegister(ctx context.Context, name string, v rsp.Value) error
	WriteMemory(ctx context.Context, addr uint64, data []byte) error
	InsertBreakpoint(ctx context.Context, kind rsp.BreakKind, addr uint64, size int) error
	RemoveBreakpoint(ctx context.Context, kind rsp.BreakKind, addr uint64, size int) error
	// Step and Continue wait for the stop reply. When ctx ends first they
	// interrupt the target and return that stop with an error wrapping
	// ctx.Err(); a target that does not answer the interrupt fails with an
	// error wrapping rsp.ErrClosed.
	Step(ctx context.Context) (rsp.StopReply, error)
	StepThread(ctx context.Context, thread string) (rsp.StopReply, error)
	Continue(ctx context.Context) (rsp.StopReply, error)
	// Resume continues without waiting; the target is not used again.
	Resume(ctx context.Context) error
	SstepBits(ctx context.Context) (map[string]uint64, error)
	SetSstep(ctx context.Context, mask uint64) error
	Packets() int
	Close() error
}

// Machine is the process behind a guest: QEMU, or the fake's stand-in.
type Machine interface {
	// Binary, Version and CommandLine describe the process for the report.
	Binary() string
	Version() string
	CommandLine() string
	// Exited is closed once the process has ended and been reaped.
	Exited() <-chan struct{}
	// ExitStatus reports how the process ended, once it has.
	ExitStatus() (ProcessExit, bool)
	// Stderr is what the process wrote to stderr so far.
	Stderr() string
	// Serial is the guest's serial output so far.
	Serial() ([]byte, error)
	// Status asks the process for its run state (QMP query-status:
	// "running", "paused", "debug", "internal-error", "shutdown", ...).
	// A process that does not answer within ctx is not healthy.
	Status(ctx context.Context) (string, error)
	// Shutdown is the reason of the last SHUTDOWN event ("guest-shutdown",
	// "guest-reset", "guest-panic", "host-signal", ...), "" if none, and
	// whether the guest reported a panic (GUEST_PANICKED).
	Shutdown() (reason string, panicked bool)
	// QMP runs a QMP command; HMP a human monitor command.
	QMP(ctx context.Context, command string, args, result any) error
	HMP(ctx context.Context, cmdline string) (string, error)
	// Close ends the process. It never leaves it running.
	Close(ctx context.Context) error
}

// ProcessExit is how a process ended.
type ProcessExit struct {
	// Code is the exit status; -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended it, 0 if none.
	Signal syscall.Signal
	// Closed is set when lockstep itself ended the process (Close).
	Closed bool
}
