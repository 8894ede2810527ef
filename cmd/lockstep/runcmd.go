package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/reports"
	"github.com/lockstep-dev/lockstep/scenario"
)

// runFlags are the flags of `lockstep run`.
type runFlags struct {
	formats string
	outDir  string
	keep    bool
	bisect  bool
	color   string
	verbose bool
	runDir  string
	// calibrate is the number of calibration runs per side before the run
	// (0: none).
	calibrate int
	// hold, onDivergence and holdTimeout are --hold, --on-divergence and
	// --hold-timeout (hold.go).
	hold         bool
	onDivergence string
	holdTimeout  time.Duration
}

func newRunCommand(s streams) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scenario: two guests in lockstep, diffed at every sync point",
		Long: `run launches both guests of SCENARIO, drives them to each sync point,
compares registers, memory and call paths there, and reports.

Exit status: 0 when the result matches the scenario's expect, 1 when it does
not, 2 for a usage or scenario error, 3 for an infrastructure failure
(QEMU missing, a guest that failed to start, a lost gdbstub).

With --bisect (for git bisect run): 3 becomes 125, which skips the commit;
so does a scenario error that depends on the build (a missing kernel, an
unknown symbol, no symbol table); an error in the scenario file itself
exits 128, which stops the bisection. 2 is never used: git counts it bad.

With --hold, once the reports are written, both guests are brought back to
the first divergence and left stopped there for gdb (docs/hold.md): the
commands to attach go to stderr; Ctrl-C ends the hold with the run's own
exit status.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runScenario(cmd, s, f, args[0])
			var ee *exitError
			if f.bisect && errors.As(err, &ee) && ee.code == exitUsage {
				// git bisect run counts 2 as bad; a usage error stops it.
				ee.code = exitAbort
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.formats, "format", "text", "report format: text, json, junit, html, md or ktap; with -o, several comma-separated")
	fl.StringVarP(&f.outDir, "output", "o", "", "write every report format to this directory (default: text to stdout)")
	fl.BoolVar(&f.keep, "keep", false, "keep the run directory: serial logs, QEMU command lines, QMP and RSP transcripts")
	fl.BoolVar(&f.bisect, "bisect", false, "for git bisect run: 125 (skip) on infrastructure failure or a build that does not fit the scenario, 128 (stop) on a scenario file error")
	fl.StringVar(&f.color, "color", "auto", "colour the text report: auto, always, never")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log QEMU command lines and progress to stderr; show noise divergences, command lines and serial output in the reports")
	fl.StringVar(&f.runDir, "run-dir", "", "parent directory of the run directory (default: $TMPDIR)")
	fl.IntVar(&f.calibrate, "calibrate", 0, "first run each side against itself N times and treat what varies as noise")
	addHoldFlags(fl, &f)
	return cmd
}

func runScenario(cmd *cobra.Command, s streams, f runFlags, path string) error {
	infraCode := exitInfra
	if f.bisect {
		infraCode = exitSkip
	}
	formats, err := parseFormats(f.formats, f.outDir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	hold, err := holdWanted(f, cmd.Flags().Changed("on-divergence"))
	if err != nil {
		return withCode(exitUsage, err)
	}
	color, err := colorMode(f.color, s)
	if err != nil {
		return withCode(exitUsage, err)
	}
	sc, err := scenario.Load(path)
	if err != nil {
		if f.bisect {
			return withCode(exitAbort, fmt.Errorf("%w\n(an error in the scenario file: exit %d stops git bisect run)", err, exitAbort))
		}
		return withCode(exitUsage, err)
	}
	if f.outDir != "" {
		if err := checkOutput(f.outDir, reportBase(sc.Name), formats); err != nil {
			return withCode(exitUsage, err)
		}
	}
	opts := lockstep.Options{Keep: f.keep, RunDir: f.runDir}
	if f.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(s.err, nil))
	}
	if f.calibrate != 0 {
		if err := calibrateBeforeRun(cmd.Context(), s, sc, f.calibrate, opts); err != nil {
			return err
		}
	}
	prog := newProgress(s.err, len(sc.Sync))
	opts.Progress = prog.update
	var res *lockstep.Result
	var held *lockstep.Hold
	var runErr error
	if hold {
		res, held, runErr = lockstep.RunHold(cmd.Context(), sc, opts)
	} else {
		res, runErr = lockstep.Run(cmd.Context(), sc, opts)
	}
	prog.done()

	var se *lockstep.ScenarioError
	scenarioErr := errors.As(runErr, &se)
	// A scenario error (a missing kernel, a register the target lacks) is
	// reported like a validation error: the message alone on stderr, no
	// report of a run that never really happened on stdout. With -o the
	// report files are still written, for CI that collects them.
	textShown := false
	if res != nil && (!scenarioErr || f.outDir != "") {
		if textShown, err = writeReports(s, f, formats, res, color); err != nil {
			if held != nil {
				held.Close(cmd.Context())
			}
			return withCode(infraCode, fmt.Errorf("write reports: %w", err))
		}
	}
	if held != nil {
		// The reports are out: now hold the divergence for gdb.
		holdDivergence(cmd.Context(), s, held, f.holdTimeout)
	}
	if runErr != nil && !scenarioErr && textShown && res.Error != "" && sameFile(s.out, s.err) {
		// The report just printed the error to the same terminal (or
		// pipe): say it once.
		runErr = errShown{runErr}
	}
	switch {
	case scenarioErr && f.bisect:
		return bisectScenarioError(runErr)
	case scenarioErr:
		hint := fmt.Sprintf("(fix the scenario; lockstep validate %s checks it without starting QEMU)", path)
		if _, err := lockstep.Validate(path); err == nil {
			// Found in the running guests (a register, an address, the
			// debug registers): validate would say ok.
			hint = "(fix the scenario; the running guests showed this, which lockstep validate cannot check without them)"
		}
		return withCode(exitUsage, fmt.Errorf("%w\n%s", runErr, hint))
	case runErr != nil && errors.Is(runErr, context.Canceled) && cmd.Context().Err() != nil:
		return withCode(infraCode, fmt.Errorf("interrupted; both guests were stopped: %w", runErr))
	case runErr != nil:
		return withCode(infraCode, runErr)
	case !res.Passed:
		return withCode(exitMismatch, fmt.Errorf("result %s, expected %s", res.Outcome, res.Expect))
	}
	return nil
}

// bisectScenarioError maps a scenario error found at run time under
// --bisect: one that depends on the commit's build (a file it did not
// produce, a symbol renamed or inlined in it, no symbol table) skips the
// commit (125); any other is the scenario's own and stops the bisection.
func bisectScenarioError(err error) error {
	if errors.Is(err, symbols.ErrUnknownSymbol) || errors.Is(err, symbols.ErrNoSymbols) || errors.Is(err, fs.ErrNotExist) {
		return withCode(exitSkip, fmt.Errorf("%w\n(this build does not fit the scenario: exit %d skips the commit)", err, exitSkip))
	}
	return withCode(exitAbort, fmt.Errorf("%w\n(an error in the scenario: exit %d stops git bisect run)", err, exitAbort))
}

// writeReports prints the text report (or the one format asked for) to
// stdout, and with -o writes every requested format to the directory.
// It says whether the text report went to stdout.
func writeReports(s streams, f runFlags, formats []reports.Format, res *lockstep.Result, color bool) (bool, error) {
	if f.outDir == "" {
		for _, fm := range formats {
			if err := reports.Render(s.out, fm, res, reports.Options{Color: color && fm == reports.FormatText, Verbose: f.verbose}); err != nil {
				return false, err
			}
		}
		return slices.Contains(formats, reports.FormatText), nil
	}
	if err := os.MkdirAll(f.outDir, 0o755); err != nil {
		return false, err
	}
	files, err := reports.WriteAll(f.outDir, reportBase(res.Scenario), formats, res, reports.Options{Verbose: f.verbose})
	if err != nil {
		return false, err
	}
	if err := reports.Render(s.out, reports.FormatText, res, reports.Options{Color: color, Verbose: f.verbose}); err != nil {
		return false, err
	}
	fmt.Fprintf(s.out, "\nreports: %s\n", strings.Join(files, ", "))
	return true, nil
}

// errShown is a run error the text report has already shown on the same
// output as stderr: stderr then says only where it is, not all of it again.
type errShown struct{ err error }

func (e errShown) Error() string { return "the run failed: see the error line of the report above" }
func (e errShown) Unwrap() error { return e.err }

// sameFile reports whether two writers are the same open file, terminal
// or pipe (stdout and stderr of a terminal, or 2>&1).
func sameFile(a, b io.Writer) bool {
	fa, oka := a.(*os.File)
	fb, okb := b.(*os.File)
	if !oka || !okb {
		return false
	}
	sa, err := fa.Stat()
	if err != nil {
		return false
	}
	sb, err := fb.Stat()
	return err == nil && os.SameFile(sa, sb)
}

// parseFormats parses --format. Without -o every format goes to stdout,
// where two of them would run together into one unreadable stream, so
// several formats need an output directory.
func parseFormats(list, outDir string) ([]reports.Format, error) {
	formats, err := reports.ParseFormats(list)
	if err != nil {
		return nil, err
	}
	if outDir == "" && len(formats) > 1 {
		return nil, fmt.Errorf("--format %s: stdout takes one format; add -o DIR to write several", list)
	}
	return formats, nil
}

// reportBase is the base name of the report files of the scenario named
// name.
func reportBase(name string) string {
	b := filepath.Base(name)
	if b == "" || b == "." {
		return "lockstep"
	}
	return b
}

// colorMode decides whether the text report is coloured.
func colorMode(mode string, s streams) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" {
			return false, nil
		}
		return reports.AutoColor(s.out), nil
	}
	return false, fmt.Errorf("--color must be auto, always or never, not %q", mode)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
