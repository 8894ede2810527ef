package fake

import (
	"fmt"
	"time"
)

// Program is what a fake guest executes: the states it passes through, one
// per instruction executed.
type Program struct {
	// States[0] is where the guest starts, paused as under -S. Its Regs,
	// Mem and Serial are the initial registers, memory and serial output;
	// its Event is ignored, except Hang and LostStep, which concern leaving
	// a state.
	States []State
	// End is what happens after the last state: Hang (the zero value None
	// means Hang too: a continue runs until interrupted, a step stays put),
	// Exit with ExitCode, or Kill, Freeze or InternalError as for a state.
	End      Event
	ExitCode int
	// Mapped is the readable memory; reading outside it gives E14 as QEMU
	// does. Nil means everything is readable (zero where never written).
	Mapped []Range
	// Arch is the architecture; "" and "x86_64" are the only ones for now.
	Arch string
	// SstepBits is the qqemu.sstepbits answer. Nil means TCG's
	// ENABLE=1,NOIRQ=2,NOTIMER=4; an empty map means a stub without the
	// packet (rsp.ErrUnsupported).
	SstepBits map[string]uint64
	// Stderr is what QEMU wrote to stderr at startup (warnings, say).
	Stderr string
	// Shutdown and Panicked are what Machine.Shutdown reports once the
	// process has exited: the SHUTDOWN event's reason ("guest-panic",
	// "host-signal", ...) and whether the guest panicked.
	Shutdown string
	Panicked bool
	// ReapLag delays the exit status of a process that ended by itself:
	// its gdbstub and QMP connections close at once, but ExitStatus and
	// Exited report the end only ReapLag later, as for a QEMU that shuts
	// down on a guest panic (a zombie not yet waited for).
	ReapLag time.Duration
	// Fail, when set, makes Launcher.Launch fail with it: a QEMU that did
	// not start.
	Fail error
}

// Range is a range of guest memory: Len bytes from Addr.
type Range struct{ Addr, Len uint64 }

// has reports whether addr lies inside r.
func (r Range) has(addr uint64) bool { return addr >= r.Addr && addr-r.Addr < r.Len }

// State is one point of a program: where the guest is after an instruction.
type State struct {
	// PC is the program counter ("rip" reads it).
	PC uint64
	// Regs are register values that take effect on arriving here, merged
	// over the previous state's; names are those of the target
	// description. Registers never set read as zero.
	Regs map[string]uint64
	// Mem holds the bytes written on arriving here: a store by the
	// previous instruction.
	Mem map[uint64][]byte
	// Serial is text the guest writes to its serial port on arriving here.
	Serial string
	// Event is what happens on arriving here.
	Event Event
	// Code is the exit status of an Exit event.
	Code int
	// Stats are accelerator counters ("vcpu.io_exits", "vm.NAME") added
	// on arriving here: what QMP query-stats reports as cumulative KVM
	// statistics. A program none of whose states has any has no
	// query-stats counters at all, as under TCG.
	Stats map[string]uint64
}

// Event is what happens when a fake guest arrives at a state.
type Event int

// The events.
const (
	// None: nothing; the guest stops here after a step.
	None Event = iota
	// Exit: the guest ends normally. The gdbstub answers W<code>, the
	// process exits with status Code (like isa-debug-exit), and
	// Machine.ExitStatus reports Code with no signal.
	Exit
	// Kill: QEMU is killed by SIGKILL. The gdbstub connection closes (step
	// and continue return an error wrapping rsp.ErrClosed and no stop
	// reply), ExitStatus reports code -1 and SIGKILL, Status fails.
	Kill
	// Freeze: QEMU is stopped (SIGSTOP). Every request blocks until its
	// context ends and then fails with no stop reply; as with rsp.Client,
	// the connection is then broken and later requests fail at once with
	// rsp.ErrClosed. Machine.Status and QMP block until their context ends
	// and fail. The process has not exited.
	Freeze
	// InternalError: QEMU reports an internal error (KVM's "emulation
	// failure"). The stop reply is T05 at this PC, Machine.Status answers
	// "internal-error" and Stderr holds "KVM internal error. Suberror:
	// 1\nemulation failure". Like QEMU, which does not resume a VM in that
	// state, a later step or continue gets no stop reply.
	InternalError
	// LostStep: the first single step issued while at this state is
	// answered T05 without moving, as QEMU 7.2 sometimes does; later steps
	// move normally.
	LostStep
	// Hang: the guest spins here forever (a 'jmp .'): a step stays put, a
	// continue runs until interrupted. As a Program's End, it is the
	// default.
	Hang
	// SkipStep: the first single step issued while at this state executes
	// two instructions (arrives two states on, the skipped state's event
	// ignored), as a nested KVM sometimes does on a 'push'; later steps
	// move normally.
	SkipStep
)

var eventNames = [...]string{"none", "exit", "kill", "freeze", "internal-error", "lost-step", "hang", "skip-step"}

// String names the event.
func (e Event) String() string {
	if e >= 0 && int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// Linear returns n states at PCs start, start+1, ...: a straight run of
// one-byte instructions.
func Linear(start uint64, n int) []State {
	s := make([]State, n)
	for i := range s {
		s[i].PC = start + uint64(i)
	}
	return s
}

// At returns a pointer to states[i] so a test can set its fields; a
// negative i counts from the end (-1 is the last state).
func At(states []State, i int) *State {
	if i < 0 {
		i += len(states)
	}
	return &states[i]
}

// Find returns the index of the first state at pc, or -1.
func Find(states []State, pc uint64) int {
	for i, s := range states {
		if s.PC == pc {
			return i
		}
	}
	return -1
}
