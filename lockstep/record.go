package lockstep

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// record adds divergences found at sync point k (-1: after the last).
func (r *run) record(k int, divs []compare.Divergence) {
	divs = r.injectedValuesLast(k, divs)
	for _, d := range divs {
		if k >= 0 && k < len(r.res.Syncs) {
			r.res.Syncs[k].Divergences++
		}
		r.res.Divergences = append(r.res.Divergences, d)
	}
}

// Note records a note for the report (engine.Recorder). Each distinct note
// is kept once; finish adds how many times it came.
func (r *run) Note(msg string) {
	if r.noteCount == nil {
		r.noteCount = map[string]int{}
	}
	if r.noteCount[msg]++; r.noteCount[msg] == 1 {
		r.res.Notes = append(r.res.Notes, msg)
	}
}

// countNotes appends "(N times)" to each note that came more than once.
func (r *run) countNotes() {
	for i, n := range r.res.Notes {
		if c := r.noteCount[n]; c > 1 {
			r.res.Notes[i] = fmt.Sprintf("%s (%d times)", n, c)
		}
	}
}

// Progress reports progress to Options.Progress (engine.Recorder).
func (r *run) Progress(phase engine.Phase, k int) {
	if r.opts.Progress == nil {
		return
	}
	p := Progress{Sync: k + 1, Syncs: len(r.sc.Sync), Phase: string(phase), Steps: r.pair.Steps()}
	if r.eng != nil && (phase == engine.PhaseLocalising || phase == engine.PhaseStepping) {
		p.Traced = r.eng.Traced()
	}
	if d := time.Since(r.start).Seconds(); d > 0 {
		p.StepsPerSec = float64(p.Steps) / d
	}
	r.opts.Progress(p)
}

// Window reports a replay bisection's window (engine.WindowRecorder).
func (r *run) Window(k int, lo, hi uint64) {
	if r.opts.Progress == nil {
		return
	}
	r.opts.Progress(Progress{Sync: k + 1, Syncs: len(r.sc.Sync), Phase: string(engine.PhaseLocalising),
		Steps: r.pair.Steps(), Window: [2]uint64{lo, hi}})
}

// noteSource says once why reports show PCs without source lines: a
// side's symbols have no DWARF, or it could not be read. Only what a
// report asked for is known: the DWARF is loaded by the first source line
// wanted.
func (r *run) noteSource() {
	var noDWARF, failed []string
	for i, t := range r.syms {
		if t == nil || (i == 1 && t == r.syms[0]) {
			continue
		}
		who := "guest " + scenario.SideNames[i]
		if i == 0 && t == r.syms[1] {
			who = "both guests"
		}
		switch err := t.SourceErr(); {
		case errors.Is(err, symbols.ErrNoDWARF):
			noDWARF = append(noDWARF, fmt.Sprintf("%s (%s)", filepath.Base(t.Path()), who))
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", who, err))
		}
	}
	if len(noDWARF) > 0 {
		verb := "has"
		if len(noDWARF) > 1 {
			verb = "have"
		}
		r.Note(fmt.Sprintf("no source lines: %s %s no DWARF line tables (build with -g); PCs show as symbol+offset",
			strings.Join(noDWARF, " and "), verb))
	}
	for _, f := range failed {
		r.Note("source lines incomplete: " + f)
	}
}

// finish sets the outcome from what was found. A run passes only when it
// matched its expectation with everything compared: a divergence where
// one was expected, or no divergence with every sync point reached and
// compared where identical was expected.
func (r *run) finish(err error) {
	r.noteSource()
	r.res.Duration = time.Since(r.start)
	r.res.Stats.SyncPoints = len(r.sc.Sync)
	r.res.Stats.Steps = r.pair.Steps()
	if d := r.res.Duration.Seconds(); d > 0 && r.res.Stats.Steps > 0 {
		r.res.Stats.StepsPerSec = float64(r.res.Stats.Steps) / d
	}
	for _, g := range r.pair {
		if g == nil {
			continue
		}
		r.res.Stats.RSPPackets += g.T.Packets()
		if g.LostSteps > 0 {
			r.Note(fmt.Sprintf("guest %s: %d single steps executed nothing and were repeated", g.Name(), g.LostSteps))
		}
	}
	missed := false
	if err == nil {
		r.injMu.Lock()
		happened := map[int]bool{}
		for _, in := range r.res.Injections {
			happened[in.Index] = true
		}
		r.injMu.Unlock()
		for i := range r.sc.Inject {
			if in := &r.sc.Inject[i]; !happened[i] {
				missed = true
				r.Note(fmt.Sprintf("injection %d (side %s, %s) never happened: the guest did not get there before the run ended, so no difference was injected",
					i+1, scenario.SideNames[in.Side], in.Where()))
			}
		}
	}
	r.countNotes()
	if err != nil {
		r.res.Outcome = OutcomeError
		r.res.Error = err.Error()
		r.res.Passed = false
		return
	}
	real := 0
	for _, d := range r.res.Divergences {
		if !d.Noise {
			real++
		}
	}
	complete := len(r.res.Syncs) > 0
	for _, s := range r.res.Syncs {
		if s.Status != SyncMatch && s.Status != SyncNoise && s.Status != SyncDiverge {
			complete = false
		}
	}
	switch {
	case real > 0:
		r.res.Outcome = OutcomeDiverged
	case complete && !missed:
		// Identical after an injection that never happened says
		// nothing about how the guest recovers from it.
		r.res.Outcome = OutcomeIdentical
	default:
		r.res.Outcome = OutcomeIncomplete
	}
	switch r.sc.Expect {
	case scenario.ExpectDiverge:
		r.res.Passed = r.res.Outcome == OutcomeDiverged
	default:
		r.res.Passed = r.res.Outcome == OutcomeIdentical
	}
}

// injectedValuesLast marks the register divergences at sync point k that
// are an injection itself rather than a consequence of it: the injected
// side still holds the value an earlier injection set in that register
// (and the other side does not). Their summaries say so, and they go
// after the point's other divergences, so that a report's first
// divergence is a consequence whenever there is one.
func (r *run) injectedValuesLast(k int, divs []compare.Divergence) []compare.Divergence {
	if k < 0 || len(r.sc.Inject) == 0 {
		return divs
	}
	r.injMu.Lock()
	done := slices.Clone(r.res.Injections)
	r.injMu.Unlock()
	held := func(d *compare.Divergence) string {
		if d.Register == nil {
			return ""
		}
		for _, in := range done {
			si := &r.sc.Inject[in.Index]
			// At a sync point, it is set as the guests leave it; at a
			// function, on the way to it.
			if in.Sync > k || (si.Sync >= 0 && in.Sync == k) {
				continue
			}
			side := si.Side
			for _, reg := range si.Regs {
				if !strings.EqualFold(reg.Name, d.Register.Name) {
					continue
				}
				v, ok := hexValue(d.Register.Values[side])
				w, okOther := hexValue(d.Register.Values[1-side])
				if ok && v == reg.Value && (!okOther || w != reg.Value) {
					return fmt.Sprintf("%s still holds the value injected at %s", in.Side, si.Where())
				}
			}
		}
		return ""
	}
	var rest, injected []compare.Divergence
	for _, d := range divs {
		if why := held(&d); why != "" {
			d.Summary += " (" + why + ")"
			injected = append(injected, d)
			continue
		}
		rest = append(rest, d)
	}
	if len(injected) == 0 {
		return divs
	}
	return append(rest, injected...)
}

// hexValue parses a register value as reports hold it ("0x1f"), up to 64
// bits.
func hexValue(s string) (uint64, bool) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(h, 16, 64)
	return v, err == nil
}
