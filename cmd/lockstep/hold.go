package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// addHoldFlags adds --hold, --on-divergence and --hold-timeout to run.
func addHoldFlags(fl *pflag.FlagSet, f *runFlags) {
	fl.BoolVar(&f.hold, "hold", false, "after the reports, hold both guests stopped at the first divergence (the localised instruction, else the diverging sync point) for gdb, until Ctrl-C; same as --on-divergence hold")
	fl.StringVar(&f.onDivergence, "on-divergence", "kill", "what to do with the guests once the run has diverged: kill, or hold (see --hold)")
	fl.DurationVar(&f.holdTimeout, "hold-timeout", 0, "with --hold, release the guests after this long (default: wait for Ctrl-C or SIGTERM)")
}

// holdWanted reads --hold and --on-divergence; explicit says whether
// --on-divergence was given.
func holdWanted(f runFlags, explicit bool) (bool, error) {
	switch f.onDivergence {
	case "kill":
		if f.hold && explicit {
			return false, fmt.Errorf("--hold and --on-divergence kill contradict each other")
		}
		return f.hold, nil
	case "hold":
		return true, nil
	}
	return false, fmt.Errorf("--on-divergence must be kill or hold, not %q", f.onDivergence)
}

// holdDivergence holds the run's first divergence for gdb: it says why
// when there is nothing to hold, otherwise drives a pair there, prints how
// to attach gdb, waits for Ctrl-C, SIGTERM or --hold-timeout, and tears
// everything down. It writes to stderr only: stdout holds the report. It
// returns the error that kept it from holding, nil when it held (or had
// nothing to hold, or was interrupted).
func holdDivergence(ctx context.Context, s streams, h *lockstep.Hold, timeout time.Duration) error {
	defer h.Close(ctx)
	w := s.err
	if h.Reason != "" {
		fmt.Fprintf(w, "lockstep: not holding: %s\n", h.Reason)
		return nil
	}
	fmt.Fprintf(w, "lockstep: hold: bringing both guests back to %s ...\n", h.Where())
	if err := h.Start(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(w, "lockstep: not holding: interrupted while bringing the guests back; both were stopped")
			return nil
		}
		fmt.Fprintf(w, "lockstep: not holding: %v\n", err)
		return err
	}
	fmt.Fprintf(w, "lockstep: held at %s (got there in %s); lockstep has detached, both gdbstubs are free\n",
		h.Where(), h.Took.Round(10*time.Millisecond))
	if h.Why != "" {
		fmt.Fprintf(w, "  (%s)\n", h.Why)
	}
	for _, n := range h.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, sd := range h.Sides {
		fmt.Fprintf(w, "  %s: pc %s", sd.Name, sd.PC)
		if sd.PC.Source() != "" {
			fmt.Fprintf(w, " (%s)", sd.PC.Source())
		}
		if !sd.AtReported {
			fmt.Fprintf(w, "; WARNING: the report gives %s: the replay did not come back to the same place", sd.Reported)
		}
		fmt.Fprintf(w, "\n    %s\n", sd.Command)
	}
	fmt.Fprintf(w, "  both sides in one gdb (inferiors 1 and 2): %s -x %s\n", h.Sides[0].GDB, h.Script)
	fmt.Fprintln(w, "  in gdb, `disconnect` leaves a guest held for the next gdb; `detach` or quitting gdb resumes it")
	if h.Reverse {
		fmt.Fprintf(w, "  reverse execution is available: both guests replay a recording (held at instruction count %d on a, %d on b); in gdb, reverse-stepi and reverse-continue go backwards\n",
			h.ICount[0], h.ICount[1])
	} else if h.NoReverse != "" {
		fmt.Fprintf(w, "  reverse execution is not available: %s\n", h.NoReverse)
	}
	if timeout > 0 {
		fmt.Fprintf(w, "  holding for %s, or until Ctrl-C (SIGINT) or SIGTERM\n", timeout)
	} else {
		fmt.Fprintln(w, "  holding until Ctrl-C (SIGINT) or SIGTERM")
	}
	why := h.Wait(ctx, timeout)
	fmt.Fprintf(w, "lockstep: released (%s); tearing both guests down\n", why)
	return nil
}
