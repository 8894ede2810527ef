package suite

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// Reporter shows a suite's progress. Its methods are called from the
// scenarios' goroutines and must be safe for concurrent use.
type Reporter interface {
	// Start is called when a scenario starts.
	Start(name string)
	// Update is called as a running scenario advances.
	Update(name string, u lockstep.Progress)
	// Finish is called when a scenario is done: done of total are.
	Finish(r ScenarioResult, done, total int)
	// Close ends the display (the suite is over).
	Close()
}

// Plain writes one line per scenario started and one per scenario
// finished, for logs and pipes; updates are not shown.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPlain returns a Plain reporter writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Start implements Reporter.
func (p *Plain) Start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "start  %s\n", name)
}

// Update implements Reporter: plain output shows no updates.
func (p *Plain) Update(string, lockstep.Progress) {}

// Finish implements Reporter.
func (p *Plain) Finish(r ScenarioResult, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, finishLine(r, done, total))
}

// Close implements Reporter.
func (p *Plain) Close() {}

func finishLine(r ScenarioResult, done, total int) string {
	return fmt.Sprintf("%-6s %s (%s, %d/%d)%s", r.Status, r.Name, r.Duration.Round(time.Millisecond), done, total, firstOf(r))
}

// Live is the terminal display: finished scenarios scroll up as plain
// lines, and below them one line per running scenario (its sync point,
// phase, steps and time) is redrawn in place, every running scenario
// getting its line however fast the others advance. Lines are cut to
// the terminal's width so that each takes one row.
type Live struct {
	mu      sync.Mutex
	w       io.Writer
	width   int
	now     func() time.Time
	every   time.Duration
	running []*liveLine // in start order
	drawn   int         // rows of running lines on the screen
	last    time.Time   // last redraw caused by an update
	done    int
	total   int
}

type liveLine struct {
	name  string
	start time.Time
	u     lockstep.Progress
}

// NewLive returns a Live display on w (a terminal width columns wide)
// for total scenarios. Updates redraw at most every 100 ms; starts and
// finishes redraw at once.
func NewLive(w io.Writer, width, total int) *Live {
	if width < 20 {
		width = 80
	}
	return &Live{w: w, width: width, total: total, now: time.Now, every: 100 * time.Millisecond}
}

// Start implements Reporter.
func (l *Live) Start(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = append(l.running, &liveLine{name: name, start: l.now(), u: lockstep.Progress{Phase: "starting"}})
	l.redraw("")
}

// Update implements Reporter.
func (l *Live) Update(name string, u lockstep.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.running {
		if r.name == name {
			r.u = u
		}
	}
	if now := l.now(); now.Sub(l.last) >= l.every {
		l.last = now
		l.redraw("")
	}
}

// Finish implements Reporter.
func (l *Live) Finish(r ScenarioResult, done, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = slices.DeleteFunc(l.running, func(x *liveLine) bool { return x.name == r.Name })
	l.done, l.total = done, total
	l.redraw(finishLine(r, done, total))
}

// Close implements Reporter: it clears the running lines.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running = nil
	l.redraw("")
}

// redraw moves the cursor up over the running lines drawn last, clears
// to the end of the screen, prints the finished line (if any), which
// stays, then the running lines.
func (l *Live) redraw(finished string) {
	var b strings.Builder
	if l.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", l.drawn)
	}
	b.WriteString("\r\x1b[J")
	if finished != "" {
		b.WriteString(cut(finished, l.width) + "\n")
	}
	now := l.now()
	for _, r := range l.running {
		b.WriteString(cut(l.line(r, now), l.width) + "\n")
	}
	l.drawn = len(l.running)
	io.WriteString(l.w, b.String())
}

func (l *Live) line(r *liveLine, now time.Time) string {
	s := fmt.Sprintf("  %s %s", r.name, now.Sub(r.start).Round(100*time.Millisecond))
	u := r.u
	if u.Sync > 0 {
		s += fmt.Sprintf(" sync %d/%d", u.Sync, u.Syncs)
	}
	if u.Phase != "" {
		s += " " + u.Phase
	}
	if u.Steps > 0 {
		s += fmt.Sprintf(", %d steps (%.0f/s)", u.Steps, u.StepsPerSec)
	}
	return s
}

// cut shortens s to width runes, marking the cut.
func cut(s string, width int) string {
	r := []rune(s)
	if len(r) < width {
		return s
	}
	return string(r[:width-2]) + "…"
}
