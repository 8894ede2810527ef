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
	runs    int
	write   bool
	keep    bool
	verbose bool
	runDir  string
}

func newCalibrateCommand(s streams) *cobra.Command {
	var f calibrateFlags
	cmd := &cobra.Command{
		Use:   "calibrate SCENARIO",
		Short: "Learn what varies between identical runs (noise) and print the ignore rules",
		Long: `calibrate runs each side of SCENARIO against itself (a against a, b against
b) --runs times, with learned noise disabled, and reports which registers,
flag bits, memory bytes and call-path functions differ between identical runs.
With --write it adds those rules to the scenario's noise section, with a
comment; lockstep run then marks divergences within them as noise.

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
	fl.IntVar(&f.runs, "runs", lockstep.DefaultCalibrationRuns, "runs per side")
	fl.BoolVar(&f.write, "write", false, "add the learned noise to the scenario file")
	fl.BoolVar(&f.keep, "keep", false, "keep each run's directory")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log QEMU command lines and progress to stderr")
	fl.StringVar(&f.runDir, "run-dir", "", "parent directory of the run directories (default: $TMPDIR)")
	return cmd
}

func calibrateScenario(ctx context.Context, s streams, f calibrateFlags, path string) error {
	if f.runs < 1 {
		return withCode(exitUsage, fmt.Errorf("--runs must be at least 1, not %d", f.runs))
	}
	sc, err := scenario.Load(path)
	if err != nil {
		return withCode(exitUsage, err)
	}
	opts := lockstep.Options{Keep: f.keep, RunDir: f.runDir}
	if f.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(s.err, nil))
	}
	cal, err := calibrate(ctx, s, sc, f.runs, opts)
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
func calibrate(ctx context.Context, s streams, sc *scenario.Scenario, runs int, opts lockstep.Options) (*lockstep.Calibration, error) {
	copts := lockstep.CalibrateOptions{Runs: runs, Options: opts}
	copts.OnRun = func(side, run int, res *lockstep.Result) {
		fmt.Fprintf(s.err, "calibrate: side %s run %d/%d: %d differences (%s)\n",
			scenario.SideNames[side], run, runs, len(res.Divergences), res.Duration.Round(time.Millisecond))
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

// calibrationComment is the comment --write puts above the noise key.
func calibrationComment(cal *lockstep.Calibration, now time.Time) string {
	return fmt.Sprintf("learned by lockstep calibrate on %s: %s per side", now.Format("2006-01-02"), compare.Plural(cal.Runs, "run", "runs"))
}

// printCalibration prints what varied, per side and item, and the rules.
func printCalibration(w io.Writer, cal *lockstep.Calibration) error {
	fmt.Fprintf(w, "calibrate %s: %s per side (each side against itself)\n", cal.Scenario, compare.Plural(cal.Runs, "run", "runs"))
	for _, sd := range cal.Sides {
		fmt.Fprintf(w, "\nside %s (%s): %d/%d runs differed\n", sd.Side, sd.Label, sd.Varied, sd.Runs)
		if len(sd.Items) == 0 && len(sd.Unstable) == 0 {
			fmt.Fprintln(w, "  nothing varies")
		}
		for _, it := range sd.Items {
			fmt.Fprintf(w, "  %-9s %-24s %d/%d runs  at %s\n", it.Kind, itemText(it), it.Runs, sd.Runs, it.Sync)
		}
		for _, u := range sd.Unstable {
			fmt.Fprintf(w, "  UNSTABLE  %s at %s: %s  %d/%d runs\n", u.Kind, u.Sync, u.Summary, u.Runs, sd.Runs)
		}
		for _, n := range sd.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if cal.Unstable() {
		fmt.Fprintf(w, "\nunstable: %s\n", lockstep.UnstableHint)
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

// calibrateBeforeRun is `run --calibrate N`: it calibrates sc and merges the
// learned noise into it in memory, summarising on stderr.
func calibrateBeforeRun(ctx context.Context, s streams, sc *scenario.Scenario, runs int, opts lockstep.Options) error {
	if runs < 1 {
		return withCode(exitUsage, fmt.Errorf("--calibrate must be at least 1, not %d", runs))
	}
	copts := opts
	copts.Progress = nil
	cal, err := calibrate(ctx, s, sc, runs, copts)
	if err != nil {
		return err
	}
	if cal.Noise.IsZero() {
		fmt.Fprintf(s.err, "calibrate: no noise learned in %d runs per side\n", runs)
	} else {
		rules, err := scenario.NoiseYAML(cal.Noise)
		if err != nil {
			return withCode(exitInfra, err)
		}
		fmt.Fprintf(s.err, "calibrate: learned noise, applied to this run:\n%s", rules)
	}
	if cal.Unstable() {
		fmt.Fprintf(s.err, "calibrate: warning: %v\ncalibrate: %s\n", cal.Err(), lockstep.UnstableHint)
	}
	lockstep.ApplyCalibration(sc, cal)
	return nil
}
