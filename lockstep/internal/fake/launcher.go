package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// shortWait is the exit and health wait of fake guests: the fake answers
// at once, so the waits only bound how long a diagnosis takes.
const shortWait = 200 * time.Millisecond

// Timeouts returns guest.DefaultTimeouts with ExitWait and Health
// shortened to 200ms, the bounds Launcher gives its guests by default.
func Timeouts() guest.Timeouts {
	to := guest.DefaultTimeouts()
	to.ExitWait, to.Health = shortWait, shortWait
	return to
}

// Launcher launches fake guests; it implements guest.Launcher. It is safe
// for concurrent use (guest.LaunchPair launches both sides at once).
type Launcher struct {
	// Program returns what side (0 or 1) runs on its launch-th launch,
	// counted from 0, so that a relaunch (localisation) can differ.
	Program func(side, launch int) Program
	// Dir is the run directory given to the guests (Guest.Dir).
	Dir string
	// Timeouts are the guests' bounds; the zero value means Timeouts().
	Timeouts guest.Timeouts

	mu       sync.Mutex
	launches [2]int
	last     [2]struct {
		t *Target
		m *Machine
	}
}

// Launch starts a fake guest for cfg, running Program(cfg.Side, n) where n
// counts the launches of that side. A Program with Fail set fails the
// launch with it.
func (l *Launcher) Launch(ctx context.Context, cfg guest.Config) (*guest.Guest, error) {
	if cfg.Side < 0 || cfg.Side > 1 {
		return nil, fmt.Errorf("fake: launch: side %d", cfg.Side)
	}
	label := (&guest.Guest{Side: cfg.Side, Spec: cfg.Spec}).Name()
	if l.Program == nil {
		return nil, errors.New("fake: launch: Launcher.Program is nil")
	}
	l.mu.Lock()
	n := l.launches[cfg.Side]
	l.launches[cfg.Side]++
	l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("guest %s: %w", label, err)
	}
	p := l.Program(cfg.Side, n)
	if p.Fail != nil {
		return nil, fmt.Errorf("guest %s: %w", label, p.Fail)
	}
	t, m, err := New(p)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", label, err)
	}
	tag := cfg.Tag
	if tag == "" {
		tag = scenario.SideNames[cfg.Side]
	}
	m.cmdline = fmt.Sprintf("fake-qemu -name %s -S -gdb chardev:gdb0 # launch %d", tag, n)
	to := l.Timeouts
	if to == (guest.Timeouts{}) {
		to = Timeouts()
	}
	g, err := guest.New(cfg.Side, cfg.Tag, cfg.Spec, t, m, cfg.Syms, to)
	if err != nil {
		dead, cancel := context.WithCancel(context.Background())
		cancel()
		m.Close(dead)
		return nil, err
	}
	g.Dir = l.Dir
	l.mu.Lock()
	l.last[cfg.Side].t, l.last[cfg.Side].m = t, m
	l.mu.Unlock()
	return g, nil
}

// Launches returns how many times side was launched (failed launches
// included).
func (l *Launcher) Launches(side int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.launches[side]
}

// Last returns the target and machine of side's last successful launch,
// nil before any.
func (l *Launcher) Last(side int) (*Target, *Machine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[side].t, l.last[side].m
}

// Both is a Launcher.Program that runs p on both sides at every launch.
func Both(p Program) func(side, launch int) Program {
	return func(int, int) Program { return p }
}

// Sides is a Launcher.Program that runs a on side 0 and b on side 1 at
// every launch.
func Sides(a, b Program) func(side, launch int) Program {
	return func(side, _ int) Program {
		if side == 0 {
			return a
		}
		return b
	}
}
