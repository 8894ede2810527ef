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
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
	)
	return &progress{bar: bar}
}

func (p *progress) update(u lockstep.Progress) {
	if p.bar == nil {
		return
	}
	desc := fmt.Sprintf("sync %d/%d %s", max(u.Sync, 0), u.Syncs, u.Phase)
	if u.Steps > 0 {
		desc += fmt.Sprintf(", %d steps (%.0f/s)", u.Steps, u.StepsPerSec)
	}
	p.bar.Describe(desc)
	if u.Sync > 0 {
		p.bar.Set(u.Sync - 1)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Exit()
	}
}
