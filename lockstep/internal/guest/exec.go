package guest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lockstep-dev/lockstep/rsp"
)

// maxStepOff bounds the steps taken to move off a breakpoint: a step can
// stop without moving (QEMU reports a pending event first).
const maxStepOff = 4

// exitReply is the stop reply of a guest that has ended.
func (g *Guest) exitReply() rsp.StopReply {
	return rsp.StopReply{Kind: 'W', ExitCode: g.exitCode}
}

// Step single-steps one instruction. On a guest with several vCPUs it
// steps only the vCPU that last stopped ('vCont;s:thread'): a plain 's'
// steps that vCPU but lets the others run, which no lockstep comparison
// survives.
//
// A guest that ends returns a reply for which Exited() is true and no
// error; a QEMU that died or stopped answering returns a *Fault.
func (g *Guest) Step(ctx context.Context) (rsp.StopReply, error) {
	if g.exited {
		return g.exitReply(), nil
	}
	if g.Timeouts.Step > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeouts.Step)
		defer cancel()
	}
	var st rsp.StopReply
	var err error
	if g.Spec.SMP > 1 && g.thread != "" {
		st, err = g.T.StepThread(ctx, g.thread)
	} else {
		st, err = g.T.Step(ctx)
	}
	g.Steps++
	return g.stopped(ctx, "step", st, err)
}

// Cont resumes the guest until the next stop. If the guest sits on one of
// lockstep's breakpoints it first steps off it with the breakpoint removed,
// as gdb does, so the same breakpoint does not fire again at once.
//
// When ctx ends first, the guest is interrupted and the stop is returned
// with an error wrapping ctx.Err(). A guest that ends returns a reply for
// which Exited() is true and no error; a QEMU that died, or did not answer
// the interrupt, returns a *Fault.
func (g *Guest) Cont(ctx context.Context) (rsp.StopReply, error) {
	if g.exited {
		return g.exitReply(), nil
	}
	// The requests around the wait are short and bounded by the stub's
	// own request timeout: a caller's bound that expires between them
	// must interrupt the wait, not leave a request half done.
	rctx := context.WithoutCancel(ctx)
	pc, err := g.PC(rctx)
	if err != nil {
		return rsp.StopReply{}, err
	}
	if kind, ok := g.bps[pc]; ok {
		if err := g.T.RemoveBreakpoint(rctx, kind, pc, g.bpSize()); err != nil {
			return rsp.StopReply{}, g.fail(ctx, fmt.Errorf("step off breakpoint: %w", err))
		}
		var st rsp.StopReply
		npc := pc
		for try := 0; try < maxStepOff && npc == pc; try++ {
			st, err = g.Step(ctx)
			if err != nil || st.Exited() {
				return st, err
			}
			if npc, err = g.PC(rctx); err != nil {
				return st, err
			}
		}
		if err := g.T.InsertBreakpoint(rctx, kind, pc, g.bpSize()); err != nil {
			return st, g.fail(ctx, fmt.Errorf("re-insert breakpoint: %w", err))
		}
		if _, hit := g.bps[npc]; hit {
			// The step landed on another breakpoint: that is a stop.
			return st, nil
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := g.watch(wctx, cancel)
	st, err := g.T.Continue(wctx)
	done()
	return g.stopped(wctx, "continue", st, err)
}

// errNotAnswering is the cause of a wait ended because QEMU stopped
// answering QMP while the guest ran.
var errNotAnswering = errors.New("QEMU stopped answering QMP while the guest ran")

// watch asks QEMU every Timeouts.Probe whether it still answers, while a
// continue waits, and cancels the wait when two questions in a row go
// unanswered (one could be a loaded machine). The questions have their own
// bound, not the wait's: a wait that ends is not a QEMU that stopped
// answering. The returned func stops the watch and waits for it.
func (g *Guest) watch(ctx context.Context, cancel context.CancelCauseFunc) func() {
	if g.M == nil || g.Timeouts.Probe <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(g.Timeouts.Probe)
		defer t.Stop()
		failed := 0
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), g.Timeouts.Health)
			_, err := g.M.Status(hctx)
			hcancel()
			if err == nil {
				failed = 0
				continue
			}
			if failed++; failed >= 2 && ctx.Err() == nil {
				cancel(fmt.Errorf("%w: %w", errNotAnswering, err))
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// stopped normalises what a step or continue returned: an exit is checked
// against the process (a guest that ended, or a QEMU that died), and a
// lost gdbstub is diagnosed.
func (g *Guest) stopped(ctx context.Context, op string, st rsp.StopReply, err error) (rsp.StopReply, error) {
	switch {
	case err == nil && !st.Exited():
		if st.Thread != "" {
			g.thread = st.Thread
		}
		if runStateStop(st) {
			// QEMU stopped the VM for a run state of its own: a guest
			// panic (s390x disabled wait) or a shutdown, after which
			// QEMU usually exits at once. Decide now, so the caller
			// sees the guest end, not a stop and then a lost gdbstub.
			if f := g.Healthy(ctx); f != nil {
				return st, f
			}
			if g.exited {
				return g.exitReply(), nil
			}
		}
		return st, nil
	case err == nil || errors.Is(err, rsp.ErrClosed):
		if st.Exited() {
			g.exitCode = st.ExitCode
		}
		if d := g.Diagnose(ctx, err); d != nil {
			return st, d
		}
		return g.exitReply(), nil
	case errors.Is(context.Cause(ctx), errNotAnswering):
		if d := g.Diagnose(ctx, context.Cause(ctx)); d != nil {
			return st, d
		}
		return st, fmt.Errorf("guest %s: %s: %w", g.Name(), op, context.Cause(ctx))
	case expired(ctx) && st.Kind != 0:
		// Interrupted at the caller's bound: the guest is alive and
		// stopped where st says.
		if st.Thread != "" {
			g.thread = st.Thread
		}
		return st, fmt.Errorf("guest %s: %s: %w", g.Name(), op, err)
	}
	// No stop reply: an interrupt that was not answered, or a broken
	// connection.
	cause := fmt.Errorf("%s: %w", op, err)
	if expired(ctx) {
		cause = fmt.Errorf("%s: no stop reply to the interrupt: %w", op, context.Cause(ctx))
	}
	if d := g.Diagnose(ctx, cause); d != nil {
		return st, d
	}
	return g.exitReply(), nil
}

// The stop signals QEMU's gdbstub gives when the VM stops for a run state
// rather than a debug event (gdbstub.c, gdb_vm_state_change): shutdown is
// GDB_SIGNAL_QUIT, guest-panicked (and any state it does not name)
// GDB_SIGNAL_UNKNOWN.
const (
	sigQuit    = 3
	sigUnknown = 143
)

// runStateStop reports whether st is a stop for a run state, not a trap.
func runStateStop(st rsp.StopReply) bool {
	return (st.Kind == 'T' || st.Kind == 'S') && st.Watch == "" && (st.Signal == sigQuit || st.Signal == sigUnknown)
}

// expired reports whether ctx has ended or its deadline has passed: a
// socket deadline set from ctx fires a moment before ctx's own timer.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// fail turns an error of a request to the gdbstub into what it means: a
// refusal stays the guest's error; anything else (a closed connection, a
// request that timed out) is diagnosed against the process.
func (g *Guest) fail(ctx context.Context, err error) error {
	if errors.Is(err, rsp.ErrRefused) || errors.Is(err, rsp.ErrUnsupported) || errors.Is(err, rsp.ErrNoRegister) || expired(ctx) {
		// A refusal is the guest's; a request cut short by the caller's
		// own bound says nothing about QEMU.
		return fmt.Errorf("guest %s: %w", g.Name(), err)
	}
	if d := g.Diagnose(ctx, err); d != nil {
		return d
	}
	return fmt.Errorf("guest %s: %w: %w", g.Name(), ErrExited, err)
}

// ErrExited is wrapped by requests made to a guest that has ended.
var ErrExited = errors.New("the guest has exited")
