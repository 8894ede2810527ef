package guest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lockstep-dev/lockstep/rsp"
)

// stderrLines is how many of QEMU's last stderr lines a Fault carries.
const stderrLines = 8

// fatalMarks are stderr texts by which QEMU reports that it, not the guest,
// failed: accelerator internal errors, TCG and assertion aborts, crashes.
var fatalMarks = []string{
	"KVM internal error",
	"emulation failure",
	"internal error",
	"Assertion",
	"assertion failed",
	"Aborted",
	"core dumped",
	"Segmentation fault",
	"tcg fatal error",
	"fatal error",
	"hardware error",
	"Bail out!",
}

// hostShutdowns are SHUTDOWN reasons that come from the host, not the guest.
var hostShutdowns = map[string]bool{
	"host-error": true, "host-qmp-quit": true, "host-qmp-system-reset": true,
	"host-signal": true, "host-ui": true, "subsystem-reset": true,
}

// fatalLine returns the first stderr line that says QEMU itself failed.
func fatalLine(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		for _, m := range fatalMarks {
			if strings.Contains(line, m) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// Diagnose tells a guest that ended from a QEMU that failed. It is called
// when the gdbstub reported an exit, closed, or did not answer (cause says
// how, nil for an exit reply). It returns nil, and marks the guest exited,
// when the guest itself ended: the process exited by itself with a normal
// status (isa-debug-exit, power-off, reset under -no-reboot, a guest
// panic). It returns a *Fault, an infrastructure failure, when the process
// was killed by a signal, reported an internal error, was shut down from
// the host, stopped answering QMP, or is alive with its gdbstub gone. The
// decision rests on the wait status, QMP and stderr, never on timing.
func (g *Guest) Diagnose(ctx context.Context, cause error) *Fault {
	ctx = context.WithoutCancel(ctx)
	f := &Fault{Index: g.Side, Side: g.Name(), Tag: g.Tag, Err: cause}
	if g.M == nil {
		f.What = fmt.Sprintf("the gdbstub was lost: %v", cause)
		return f
	}
	if g.IsAttached() {
		return g.diagnoseAttached(ctx, f, cause)
	}
	if cause == nil || errors.Is(cause, rsp.ErrClosed) {
		// The exit status arrives a moment after the stub's W reply or
		// the connection closing.
		wctx, cancel := context.WithTimeout(ctx, g.Timeouts.ExitWait)
		select {
		case <-g.M.Exited():
		case <-wctx.Done():
		}
		cancel()
	}
	f.Stderr = lastLines(strings.TrimSpace(g.M.Stderr()), stderrLines)
	if pe, ok := g.M.ExitStatus(); ok {
		return g.diagnoseExit(f, pe)
	}
	state, failed, lost := g.failed(ctx, f)
	if failed {
		if pe, ok := g.reaped(ctx, f, lost); ok {
			return g.diagnoseExit(f, pe)
		}
		if cause != nil && !errors.Is(cause, errNotAnswering) {
			f.What += fmt.Sprintf(" (gdbstub: %v)", cause)
		}
		return f
	}
	if cause == nil {
		// The stub said the target exited and QEMU still answers: trust
		// the stub; the process is on its way out.
		g.exited = true
		return nil
	}
	f.What = fmt.Sprintf("the gdbstub stopped answering while QEMU still runs (state %s): %v", state, cause)
	return f
}

// diagnoseAttached decides for a QEMU lockstep attached to, whose exit
// status it cannot wait for: the gdbstub's exit reply is the guest
// ending; anything else is QEMU's failure (gone, not answering QMP, or
// answering with its gdbstub lost).
func (g *Guest) diagnoseAttached(ctx context.Context, f *Fault, cause error) *Fault {
	if cause == nil {
		g.exited = true
		g.exitCode = -1
		return nil
	}
	state, failed, _ := g.failed(ctx, f)
	if failed {
		f.What = "the attached " + f.What + fmt.Sprintf(" (gdbstub: %v)", cause)
		return f
	}
	f.What = fmt.Sprintf("the gdbstub of the attached QEMU stopped answering while QEMU still runs (state %s): %v", state, cause)
	return f
}

// diagnoseExit decides about a process that has exited.
func (g *Guest) diagnoseExit(f *Fault, pe ProcessExit) *Fault {
	reason, _ := g.M.Shutdown()
	switch {
	case pe.Closed:
		f.What = "QEMU was stopped by lockstep"
	case pe.Signal != 0:
		f.What = fmt.Sprintf("QEMU was killed by signal %d (%v)", int(pe.Signal), pe.Signal)
	case fatalLine(f.Stderr) != "":
		f.What = fmt.Sprintf("QEMU failed (exit status %d): %s", pe.Code, fatalLine(f.Stderr))
	case hostShutdowns[reason]:
		f.What = fmt.Sprintf("QEMU was shut down from the host (%s)", reason)
	default:
		g.exited = true
		g.exitCode = pe.Code
		return nil
	}
	return f
}

// Healthy checks a guest that stopped where nobody asked it to: QEMU may
// have stopped the VM itself (an accelerator internal error) rather than
// the guest taking an exception. It returns a *Fault when QEMU reports an
// internal error, stopped answering, wrote a failure to stderr, or is gone.
// A guest that panicked (run state guest-panicked) or whose QEMU exited by
// itself is marked exited (Exited, Panicked) and gets nil.
func (g *Guest) Healthy(ctx context.Context) *Fault {
	if g.M == nil {
		return nil
	}
	f := &Fault{Index: g.Side, Side: g.Name(), Tag: g.Tag, Stderr: lastLines(strings.TrimSpace(g.M.Stderr()), stderrLines)}
	if pe, ok := g.M.ExitStatus(); ok {
		return g.diagnoseExit(f, pe)
	}
	state, failed, lost := g.failed(ctx, f)
	if failed {
		if pe, ok := g.reaped(ctx, f, lost); ok {
			return g.diagnoseExit(f, pe)
		}
		return f
	}
	if state == "guest-panicked" || state == "shutdown" {
		// The guest panicked: QEMU stopped the VM and, under its default
		// -action panic=shutdown, exits a moment later. Either way the
		// guest has ended; that is the guest's doing, not QEMU failing.
		g.panicked = g.panicked || state == "guest-panicked"
		if pe, ok := g.reaped(ctx, f, true); ok {
			return g.diagnoseExit(f, pe)
		}
		if g.panicked {
			g.exited, g.exitCode = true, -1
		}
	}
	return nil
}

// reaped waits, up to Timeouts.ExitWait, for the exit status of a process
// that stopped answering QMP: a QEMU that shuts down by itself (a guest
// panic on s390x, a power-off) closes its sockets a moment before it is
// reaped, and that is the guest ending, not QEMU failing. It returns the
// exit status once known, with f.Stderr refreshed and f.What cleared.
func (g *Guest) reaped(ctx context.Context, f *Fault, lost bool) (ProcessExit, bool) {
	if !lost {
		return ProcessExit{}, false
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.Timeouts.ExitWait)
	select {
	case <-g.M.Exited():
	case <-wctx.Done():
	}
	cancel()
	pe, ok := g.M.ExitStatus()
	if ok {
		f.What = ""
		f.Stderr = lastLines(strings.TrimSpace(g.M.Stderr()), stderrLines)
	}
	return pe, ok
}

// failed asks the running process for its run state and reads its
// stderr. It says, in f, what failed: no answer within Timeouts.Health,
// the internal-error run state, or a failure on stderr; lost is set when
// the QMP connection failed other than by timing out.
func (g *Guest) failed(ctx context.Context, f *Fault) (state string, failed, lost bool) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.Timeouts.Health)
	state, err := g.M.Status(hctx)
	cancel()
	line := fatalLine(f.Stderr)
	switch {
	case err != nil:
		f.What = fmt.Sprintf("QEMU stopped answering: %v", err)
		// A closed connection, not one that timed out (a frozen QEMU):
		// the process may be exiting.
		lost = !errors.Is(err, context.DeadlineExceeded)
	case state == "internal-error":
		f.What = "QEMU stopped the guest with an internal error (run state internal-error)"
		if line != "" {
			f.What += ": " + line
		}
	case line != "":
		f.What = "QEMU reported a failure: " + line
	default:
		return state, false, false
	}
	return state, true, lost
}
