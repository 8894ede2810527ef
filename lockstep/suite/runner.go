package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/reports"
)

// RunFunc runs one scenario; lockstep.Run by default (tests replace it).
type RunFunc func(ctx context.Context, e Entry, opts lockstep.Options) (*lockstep.Result, error)

// Options tune a suite run.
type Options struct {
	// Jobs is how many scenarios run at once (each starts two QEMUs);
	// 0 is DefaultJobs().
	Jobs int
	// QEMUs, when not 0, bounds the QEMU processes alive at once across
	// the suite (at least qemu.MinBudget): a scenario that localises
	// starts more pairs than the two Jobs counts.
	QEMUs int
	// OutDir receives every scenario's reports and index.json.
	OutDir string
	// Formats are the report formats written per scenario.
	Formats []reports.Format
	// Verbose is passed to the report renderers.
	Verbose bool
	// RetryInfra reruns a scenario up to this many times after an
	// infrastructure failure.
	RetryInfra int
	// Shard is recorded in the index; the caller selects the entries.
	Shard Shard
	// Run is the base of every scenario's lockstep.Options (RunDir, Keep,
	// Logger); Progress is set per scenario. Run.Symbols is a new cache
	// shared by the suite's scenarios when nil.
	Run lockstep.Options
	// Progress receives one plain line per scenario started and finished
	// when Reporter is nil; nil discards.
	Progress io.Writer
	// Reporter shows progress (a Live display on a terminal); nil is a
	// Plain one on Progress.
	Reporter Reporter
	// RunFunc replaces lockstep.Run.
	RunFunc RunFunc
}

// DefaultJobs is half the CPUs, at least 1: every scenario runs two QEMUs.
func DefaultJobs() int { return max(1, runtime.NumCPU()/2) }

// Run runs the plan's entries named in selected (p.Names() for all), at most
// o.Jobs at a time, writes each one's reports into o.OutDir and keeps
// o.OutDir/index.json current after each scenario. The index is returned
// with every result; the error is for the suite's machinery only (an
// unwritable output directory), never for a scenario's verdict.
func Run(ctx context.Context, p *Plan, selected []string, o Options) (*Index, error) {
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs()
	}
	if o.RunFunc == nil {
		o.RunFunc = func(ctx context.Context, e Entry, opts lockstep.Options) (*lockstep.Result, error) {
			return lockstep.Run(ctx, e.Scenario, opts)
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Reporter == nil {
		o.Reporter = NewPlain(o.Progress)
	}
	defer o.Reporter.Close()
	var budget *qemu.Budget
	if o.QEMUs != 0 {
		b, err := qemu.NewBudget(o.QEMUs)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSuite, err)
		}
		budget = b
	}
	if o.Run.Symbols == nil {
		// One vmlinux named by many scenarios is read once.
		o.Run.Symbols = symbols.NewCache()
	}
	if o.Shard.Total == 0 {
		o.Shard = All
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	byName := map[string]Entry{}
	for _, e := range p.Entries {
		byName[e.Name] = e
	}
	x := &Index{Schema: IndexSchema, Suite: p.Name, Shard: o.Shard, Planned: p.Names(), Selected: selected, Started: time.Now().UTC(), Results: []ScenarioResult{}}
	if err := WriteIndex(o.OutDir, x); err != nil {
		return nil, err
	}

	var (
		mu       sync.Mutex
		writeErr error
		done     int
	)
	sem := make(chan struct{}, o.Jobs)
	var wg sync.WaitGroup
	for _, name := range selected {
		e, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%w: selected scenario %q is not in the plan", ErrSuite, name)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		var slots *qemu.Owner
		if budget != nil && ctx.Err() == nil {
			// Wait for room for a pair here, outside the scenario's
			// timeout.
			var err error
			if slots, err = budget.Admit(ctx, name); err != nil {
				<-sem
			}
		}
		if ctx.Err() != nil {
			break
		}
		o.Reporter.Start(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			oe := o
			if slots != nil {
				oe.Run.QEMUSlots = slots
				defer slots.Done()
			}
			r := runOne(ctx, e, oe)
			mu.Lock()
			defer mu.Unlock()
			done++
			x.Results = append(x.Results, r)
			o.Reporter.Finish(r, done, len(selected))
			if err := WriteIndex(o.OutDir, x); err != nil && writeErr == nil {
				writeErr = err
			}
		}()
	}
	wg.Wait()
	order := map[string]int{}
	for i, n := range selected {
		order[n] = i
	}
	slices.SortStableFunc(x.Results, func(a, b ScenarioResult) int { return order[a.Name] - order[b.Name] })
	x.Duration = time.Since(x.Started)
	x.Complete = ctx.Err() == nil
	if budget != nil {
		peak, over, waits := budget.Stats()
		x.QEMUs = &QEMUUse{Budget: budget.Max(), Peak: peak, Overdrafts: over, Waits: waits}
	}
	if err := WriteIndex(o.OutDir, x); err != nil {
		return x, err
	}
	if writeErr != nil {
		return x, writeErr
	}
	if err := ctx.Err(); err != nil {
		return x, fmt.Errorf("suite: interrupted: %w", err)
	}
	return x, nil
}

func firstOf(r ScenarioResult) string {
	switch {
	case r.Error != "":
		return ": " + r.Error
	case r.First != "":
		return ": " + r.First
	}
	return ""
}

// runOne runs e, retrying infrastructure failures, and writes its reports.
func runOne(ctx context.Context, e Entry, o Options) ScenarioResult {
	sr := ScenarioResult{Name: e.Name, File: e.File, Shard: o.Shard.String()}
	start := time.Now()
	var res *lockstep.Result
	var err error
	run := o.Run
	run.Progress = func(u lockstep.Progress) { o.Reporter.Update(e.Name, u) }
	for sr.Attempts = 1; ; sr.Attempts++ {
		res, err = o.RunFunc(ctx, e, run)
		if classify(res, err) != StatusInfra || sr.Attempts > o.RetryInfra || ctx.Err() != nil {
			break
		}
	}
	sr.Duration = time.Since(start)
	sr.Status = classify(res, err)
	if err != nil {
		sr.Error = err.Error()
	}
	if e.Optional && sr.Status == StatusInfra && (errors.Is(err, qemu.ErrNotFound) || errors.Is(err, qemu.ErrKVMUnavailable)) {
		sr.Status, sr.Error = StatusSkipped, "optional, cannot run here: "+sr.Error
		return sr
	}
	if res != nil {
		sr.Outcome, sr.Expect = string(res.Outcome), res.Expect
		for _, d := range res.Divergences {
			if !d.Noise {
				if sr.Divergences == 0 {
					sr.First = d.Summary
				}
				sr.Divergences++
				if sr.Localized == "" && d.Kind == compare.KindInstruction {
					sr.Localized = localized(d)
				}
			}
		}
		files, werr := reports.WriteAll(o.OutDir, sanitize(e.Name), o.Formats, res, reports.Options{Verbose: o.Verbose})
		if werr != nil {
			sr.Status, sr.Error = StatusInfra, werr.Error()
		}
		sr.Reports = map[string]string{}
		for i, f := range files {
			sr.Reports[string(o.Formats[i])] = relTo(o.OutDir, f)
		}
	}
	return sr
}

// classify maps a run's result to a status, as the CLI's exit statuses do.
func classify(res *lockstep.Result, err error) Status {
	var se *lockstep.ScenarioError
	switch {
	case errors.As(err, &se):
		return StatusScenario
	case err != nil:
		return StatusInfra
	case res == nil:
		return StatusInfra
	case res.Passed:
		return StatusPassed
	}
	return StatusFailed
}

// localized names an instruction divergence for a baseline comparison:
// its summary and each side's location.
func localized(d compare.Divergence) string {
	loc := func(l compare.Location) string {
		if l.Symbol != "" {
			return fmt.Sprintf("%s+%#x", l.Symbol, l.Offset)
		}
		return fmt.Sprintf("%#x", l.Addr)
	}
	where := loc(d.PC[0])
	if b := loc(d.PC[1]); b != where {
		where += " / " + b
	}
	return fmt.Sprintf("%s (at %s)", d.Summary, where)
}
