package main

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// progress shows "sync point k/n, steps/s" on a terminal and nothing
// otherwise. It uses github.com/schollz/progressbar, which handles
// terminal width, throttling and clearing the line when done.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, syncs int) *progress {
	if !isTerminal(w) {
		return &progress{}
	}
	bar := progressbar.NewOptions(syncs,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("starting"),
		// The description already says "sync k/n"; a count and an ETA
		// beside it disagreed with it (the bar counts completed points).
		progressbar.OptionSetWidth(20),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
	)
	return &progress{bar: bar}
}

func (p *progress) update(u lockstep.Progress) {
	if p.bar == nil {
		return
	}
	desc := u.Phase
	if u.Sync > 0 {
		desc = fmt.Sprintf("sync %d/%d %s", u.Sync, u.Syncs, u.Phase)
	}
	if u.Steps > 0 {
		desc += fmt.Sprintf(", %d steps (%.0f/s)", u.Steps, u.StepsPerSec)
	}
	if u.Window[1] > 0 {
		desc += fmt.Sprintf(", replay window %d..%d (%d instructions)", u.Window[0], u.Window[1], u.Window[1]-u.Window[0])
	}
	if u.Traced > 0 {
		desc += fmt.Sprintf(", %d instructions traced", u.Traced)
	}
	// Set before Describe: Describe renders, and a throttled Set after
	// it would leave the bar one sync point behind the description.
	if u.Sync > 0 {
		p.bar.Set(u.Sync - 1)
	}
	p.bar.Describe(desc)
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Exit()
	}
}
