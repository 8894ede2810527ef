package guest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// ErrReplay is wrapped by a replay that did not do what its recording
// said: QEMU reported a replay error, or the guest stopped at another
// instruction count than the one asked for. A replay that went wrong must
// never be taken for an answer.
var ErrReplay = errors.New("record/replay went wrong")

// ICount returns the number of instructions g has executed (QMP
// query-replay; the guest must run under -icount).
func (g *Guest) ICount(ctx context.Context) (uint64, error) {
	if g.M == nil {
		return 0, fmt.Errorf("guest %s: no QEMU to ask for the instruction count", g.Name())
	}
	var ri qemu.ReplayInfo
	if err := g.M.QMP(ctx, "query-replay", nil, &ri); err != nil {
		return 0, fmt.Errorf("guest %s: query-replay: %w", g.Name(), err)
	}
	return ri.ICount, nil
}

// ReplayBreak sets g's replay breakpoint at instruction count icount
// (QMP replay-break; g must be replaying).
func (g *Guest) ReplayBreak(ctx context.Context, icount uint64) error {
	if g.M == nil {
		return fmt.Errorf("guest %s: no QEMU to set a replay breakpoint in", g.Name())
	}
	if err := g.M.QMP(ctx, "replay-break", map[string]any{"icount": icount}, nil); err != nil {
		return fmt.Errorf("guest %s: replay-break %d: %w", g.Name(), icount, err)
	}
	return nil
}

// RunTo continues a replaying guest until it has executed icount
// instructions, and checks that it stopped there. A guest that stops
// elsewhere, exits first, or whose QEMU reports a replay error gives an
// error wrapping ErrReplay; a QEMU that fails otherwise, a *Fault.
func (g *Guest) RunTo(ctx context.Context, icount uint64) error {
	cur, err := g.ICount(ctx)
	if err != nil {
		return err
	}
	switch {
	case cur == icount:
		return nil
	case cur > icount:
		return fmt.Errorf("guest %s: at instruction %d, cannot replay back to %d", g.Name(), cur, icount)
	}
	if err := g.ReplayBreak(ctx, icount); err != nil {
		return err
	}
	st, err := g.Cont(ctx)
	if err != nil {
		if msg := g.replayError(); msg != "" {
			return fmt.Errorf("%w: guest %s: %s (%v)", ErrReplay, g.Name(), msg, err)
		}
		return err
	}
	if st.Exited() {
		return fmt.Errorf("%w: guest %s ended while replaying to instruction %d%s", ErrReplay, g.Name(), icount, g.replayNote())
	}
	got, err := g.ICount(ctx)
	if err != nil {
		return err
	}
	if got != icount {
		return fmt.Errorf("%w: guest %s stopped at instruction %d, not %d%s", ErrReplay, g.Name(), got, icount, g.replayNote())
	}
	if msg := g.replayError(); msg != "" {
		return fmt.Errorf("%w: guest %s: %s", ErrReplay, g.Name(), msg)
	}
	return nil
}

// replayNote is ": QEMU said ..." when QEMU's stderr has a replay error.
func (g *Guest) replayNote() string {
	if msg := g.replayError(); msg != "" {
		return ": QEMU said " + msg
	}
	return ""
}

// replayError returns the first line of QEMU's stderr that reports a
// record/replay problem ("replay file is over", "Missing ... event in the
// replay log", "replay: ..."), or "".
func (g *Guest) replayError() string {
	if g.M == nil {
		return ""
	}
	for _, line := range strings.Split(g.M.Stderr(), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "replay") || strings.Contains(l, "rrfile") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
