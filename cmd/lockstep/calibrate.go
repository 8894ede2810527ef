package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/scenario"
)

// calibrateFlags are the flags of `lockstep calibrate`.
type calibrateFlags struct {
	runs          int
	minRuns       int
	maxRuns       int
	settle        int
	noIcountProbe bool
	write         bool
	keep          bool
	verbose       bool
	runDir        string
}

func newCalibrateCommand(s streams) *cobra.Command {
	var f calibrateFlags
	cmd := &cobra.Command{
		Use:   "calibrate SCENARIO",
		Short: "Learn what varies between identical runs (noise) and print the ignore rules",
		Long: `calibrate runs each side of SCENARIO against itself (a against a, b against
b), with learned noise disabled, and reports which registers, flag bits,
memory bytes and call-path functions differ between identical runs. With
--write it adds those rules to the scenario's noise section, with a comment;
lockstep run then marks divergences within them as noise.

Each side runs at least --min-runs times and keeps running until --settle
runs in a row find nothing new, up to --max-runs; --runs N runs exactly N
times instead. A side that stopped at the bound, or whose last runs still
found something, is reported as not settled: its noise may be incomplete.
A side that learned noise runs once more under determinism.icount, unless
the scenario has icount or a KVM side; noise that goes away there comes from
time, and calibrate suggests icount instead of ignoring it.

Arrival, exit and instruction divergences between identical runs cannot be
learned; calibrate lists them as unstable: add determinism (icount, sstep, rtc).

Exit status: 0 on success, 2 for a usage or scenario error, 3 for an
infrastructure failure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return calibrateScenario(cmd.Context(), s, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.runs, "runs", 0, "run each side exactly this many times (default: adaptive, see --min-runs, --max-runs, --settle)")
	fl.IntVar(&f.minRuns, "min-runs", lockstep.DefaultMinRuns, "adaptive: the fewest runs per side")
	fl.IntVar(&f.maxRuns, "max-runs", lockstep.DefaultMaxRuns, "adaptive: the most runs per side")
	fl.IntVar(&f.settle, "settle", lockstep.DefaultSettle, "stop once this many runs in a row find nothing new")
	fl.BoolVar(&f.noIcountProbe, "no-icount-probe", false, "do not run under determinism.icount to tell whether the noise comes from time")
	fl.BoolVar(&f.write, "write", false, "add the learned noise to the scenario file")
	fl.BoolVar(&f.keep, "keep", false, "keep each run's directory")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log QEMU command lines and progress to stderr")
	fl.StringVar(&f.runDir, "run-dir", "", "parent directory of the run directories (default: $TMPDIR)")
	cmd.MarkFlagsMutuallyExclusive("runs", "min-runs")
	cmd.MarkFlagsMutuallyExclusive("runs", "max-runs")
	return cmd
}

func calibrateScenario(ctx context.Context, s streams, f calibrateFlags, path string) error {
	sc, err := scenario.Load(path)
	if err != nil {
		return withCode(exitUsage, err)
	}
	copts := lockstep.CalibrateOptions{Runs: f.runs, Settle: f.settle, NoIcountProbe: f.noIcountProbe,
		Options: lockstep.Options{Keep: f.keep, RunDir: f.runDir}}
	if f.runs == 0 {
		copts.MinRuns, copts.MaxRuns = f.minRuns, f.maxRuns
	}
	if f.verbose {
		copts.Logger = slog.New(slog.NewTextHandler(s.err, nil))
	}
	cal, err := calibrate(ctx, s, sc, copts)
	if err != nil {
		return err
	}
	if err := printCalibration(s.out, cal); err != nil {
		return withCode(exitInfra, err)
	}
	if cal.Noise.IsZero() {
		return nil
	}
	if !f.write {
		fmt.Fprintf(s.out, "\nadd --write to add these rules to %s\n", path)
		return nil
	}
	if err := scenario.AddNoise(path, cal.Noise, calibrationComment(cal, time.Now())); err != nil {
		return withCode(exitInfra, err)
	}
	fmt.Fprintf(s.out, "\nwrote the noise section of %s\n", path)
	return nil
}

// calibrate runs lockstep.Calibrate with a progress line per run on stderr
// and maps its errors to exit statuses.
func calibrate(ctx context.Context, s streams, sc *scenario.Scenario, copts lockstep.CalibrateOptions) (*lockstep.Calibration, error) {
	copts.OnRun = func(r lockstep.CalibrationRun) {
		fmt.Fprintf(s.err, "calibrate: side %s run %s: %s, %s (%s)\n", scenario.SideNames[r.Side], runOf(r.Run, r.Plan),
			compare.Plural(len(r.Result.Divergences), "difference", "differences"), runNews(r), r.Result.Duration.Round(time.Millisecond))
	}
	cal, err := lockstep.Calibrate(ctx, sc, copts)
	var se *lockstep.ScenarioError
	switch {
	case errors.As(err, &se):
		return nil, withCode(exitUsage, err)
	case err != nil:
		return nil, withCode(exitInfra, err)
	}
	return cal, nil
}

// runOf is "2/3" for run 2 of exactly 3, "4 (of 3 to 12)" for an
// adaptive run.
func runOf(run int, p lockstep.CalibrationPlan) string {
	if p.Adaptive() {
		return fmt.Sprintf("%d (of %d to %d)", run, p.MinRuns, p.MaxRuns)
	}
	return fmt.Sprintf("%d/%d", run, p.Runs)
}

// runNews says what a run added.
func runNews(r lockstep.CalibrationRun) string {
	if r.New {
		return "new noise"
	}
	return fmt.Sprintf("nothing new (%d in a row)", r.Stable)
}

// calibrationComment is the comment --write puts above the noise key.
func calibrationComment(cal *lockstep.Calibration, now time.Time) string {
	c := fmt.Sprintf("learned by lockstep calibrate on %s: %s", now.Format("2006-01-02"), sideRuns(cal))
	if !cal.Settled() {
		c += ", not settled"
	}
	return c
}

// sideRuns is "4 runs per side", or "4 runs of a, 7 of b".
func sideRuns(cal *lockstep.Calibration) string {
	a, b := cal.Sides[0].Runs, cal.Sides[1].Runs
	if a == b {
		return compare.Plural(a, "run", "runs") + " per side"
	}
	return fmt.Sprintf("%s of a, %d of b", compare.Plural(a, "run", "runs"), b)
}

// planText says how the sides were run.
func planText(p lockstep.CalibrationPlan) string {
	if p.Adaptive() {
		return fmt.Sprintf("until %d runs in a row find nothing new (%d to %d runs per side)", p.Settle, p.MinRuns, p.MaxRuns)
	}
	return compare.Plural(p.Runs, "run", "runs") + " per side"
}

// confidence says whether a side settled, and how rare noise can be and
// still be missing. It claims no more than the runs showed.
func confidence(p lockstep.CalibrationPlan, sd *lockstep.SideCalibration) string {
	if sd.Settled {
		return fmt.Sprintf("settled: nothing new in the last %d of %d runs; rarer noise, in under %.0f%% of runs, may have gone unseen",
			sd.Stable, sd.Runs, 100*sd.MissBound())
	}
	end := fmt.Sprintf("stopped at the bound of %d runs", p.MaxRuns)
	if !p.Adaptive() {
		end = fmt.Sprintf("a fixed %s", compare.Plural(p.Runs, "run", "runs"))
	}
	quiet := fmt.Sprintf("run %d still found something new", sd.Runs)
	if sd.Stable > 0 {
		quiet = fmt.Sprintf("nothing new in the last %d (%d needed)", sd.Stable, p.Settle)
	}
	return fmt.Sprintf("NOT SETTLED: %s, %s: the noise may be incomplete", end, quiet)
}

// icountText says what a run under icount did to a side's noise: one
// line, or a heading and a line per finding.
func icountText(pr *lockstep.IcountProbe) string {
	var parts []string
	add := func(rules []string, what string) {
		if len(rules) > 0 {
			parts = append(parts, what+": "+strings.Join(rules, ", "))
		}
	}
	add(pr.Gone, "did not vary (from time)")
	add(pr.Kept, "still varied (not from time)")
	add(pr.Unsure, "did not vary, but varied too rarely before to tell")
	if pr.Other > 0 {
		parts = append(parts, compare.Plural(pr.Other, "other difference", "other differences")+" appeared")
	}
	head := fmt.Sprintf("under determinism.icount %q (%s):", pr.Icount, compare.Plural(pr.Runs, "run", "runs"))
	switch len(parts) {
	case 0:
		return head + " no differences"
	case 1:
		return head + " " + parts[0]
	}
	return head + "\n    " + strings.Join(parts, "\n    ")
}

// printCalibration prints what varied, per side and item, how far to
// trust it, the advice and the rules.
func printCalibration(w io.Writer, cal *lockstep.Calibration) error {
	fmt.Fprintf(w, "calibrate %s: each side against itself, %s\n", cal.Scenario, planText(cal.Plan))
	for i := range cal.Sides {
		sd := &cal.Sides[i]
		fmt.Fprintf(w, "\nside %s (%s): %d/%d runs differed\n", sd.Side, sd.Label, sd.Varied, sd.Runs)
		fmt.Fprintf(w, "  %s\n", confidence(cal.Plan, sd))
		if len(sd.Items) == 0 && len(sd.Unstable) == 0 {
			fmt.Fprintln(w, "  nothing varies")
		}
		for _, it := range sd.Items {
			fmt.Fprintf(w, "  %-9s %-24s %d/%d runs  at %s%s\n", it.Kind, itemText(it), it.Runs, sd.Runs, it.Sync, firstText(it.First))
		}
		for _, u := range sd.Unstable {
			fmt.Fprintf(w, "  UNSTABLE  %s at %s: %s  %d/%d runs%s\n", u.Kind, u.Sync, u.Summary, u.Runs, sd.Runs, firstText(u.First))
		}
		if sd.Icount != nil {
			fmt.Fprintf(w, "  %s\n", icountText(sd.Icount))
		}
		for _, n := range sd.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	for _, a := range cal.Advice() {
		fmt.Fprintf(w, "\nadvice: %s\n", a)
	}
	if cal.Noise.IsZero() {
		fmt.Fprintln(w, "\nno noise learned: identical runs compare equal")
		return nil
	}
	rules, err := scenario.NoiseYAML(cal.Noise)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nignore rules:\n%s", rules)
	return nil
}

// firstText is ", first in run N" for what a later run found.
func firstText(run int) string {
	if run <= 1 {
		return ""
	}
	return fmt.Sprintf(", first in run %d", run)
}

// itemText is an item's rule, with the offsets of a memory item.
func itemText(it lockstep.NoiseItem) string {
	if it.Kind != compare.KindMemory {
		return it.Rule
	}
	if len(it.Offsets) == 0 {
		return it.Rule + " (all bytes)"
	}
	return fmt.Sprintf("%s %s", it.Rule, offsetRanges(it.Offsets))
}

// offsetRanges renders sorted offsets as "+0x0..0x3,+0x8".
func offsetRanges(offs []uint64) string {
	var parts []string
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprintf("+%#x", offs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("+%#x..%#x", offs[i], offs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// calibrateBeforeRun is `run --calibrate N`: it calibrates sc with exactly
// N runs per side (no icount probe, to keep the run short) and merges the
// learned noise into it in memory, summarising on stderr.
func calibrateBeforeRun(ctx context.Context, s streams, sc *scenario.Scenario, runs int, opts lockstep.Options) error {
	if runs < 1 {
		return withCode(exitUsage, fmt.Errorf("--calibrate must be at least 1, not %d", runs))
	}
	opts.Progress = nil
	cal, err := calibrate(ctx, s, sc, lockstep.CalibrateOptions{Runs: runs, NoIcountProbe: true, Options: opts})
	if err != nil {
		return err
	}
	if cal.Noise.IsZero() {
		fmt.Fprintf(s.err, "calibrate: no noise learned in %s\n", sideRuns(cal))
	} else {
		rules, err := scenario.NoiseYAML(cal.Noise)
		if err != nil {
			return withCode(exitInfra, err)
		}
		fmt.Fprintf(s.err, "calibrate: learned noise, applied to this run:\n%s", rules)
	}
	for i := range cal.Sides {
		if sd := &cal.Sides[i]; !sd.Settled {
			fmt.Fprintf(s.err, "calibrate: warning: side %s: %s\n", sd.Side, confidence(cal.Plan, sd))
		}
	}
	if cal.Unstable() {
		fmt.Fprintf(s.err, "calibrate: warning: %v\n", cal.Err())
	}
	for _, a := range cal.Advice() {
		fmt.Fprintf(s.err, "calibrate: %s\n", a)
	}
	lockstep.ApplyCalibration(sc, cal)
	return nil
}
