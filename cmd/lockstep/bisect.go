package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep/bisect"
	"github.com/lockstep-dev/lockstep/reports"
)

// bisectFlags are the flags of `lockstep bisect`.
type bisectFlags struct {
	repo, good, bad   string
	build             string
	artifact, symbols string
	scenario          string
	runs              int
	outDir            string
	resume            string
	tmpDir            string
	buildTimeout      time.Duration
	verbose           bool
}

func newBisectCommand(s streams) *cobra.Command {
	var f bisectFlags
	cmd := &cobra.Command{
		Use:   "bisect --repo PATH --good REV --bad REV --build CMD --artifact FILE --scenario FILE",
		Short: "Find the commit that made two guests diverge",
		Long: `bisect finds the first commit between --good and --bad whose build diverges
from the scenario's reference side the way --bad does. Side a of the scenario
is the fixed reference; side b is the candidate built at each commit (the
scenario may name it as ${CANDIDATE}; otherwise side b's kernel and symbols
are replaced by it).

Each commit is built with --build (sh -c, in a scratch clone of --repo that
shares its objects; $WORKTREE names it) and run --runs times: bad if any run
diverges like the bad end (same kind and symbol), good if none does and a run
was identical, skip if the build fails, leaves no --artifact, or the runs
cannot judge it. The user's checkout, branches and bisect state are never
touched.

Exit status: 0 when the first bad commit is found, 1 when it is not (the bad
end does not diverge, or only skipped commits are left), 2 for a usage or
scenario error, 3 for an infrastructure failure or an interrupt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBisect(cmd, s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", ".", "the git repository to bisect (only read)")
	fl.StringVar(&f.good, "good", "", "a revision that does not diverge (required)")
	fl.StringVar(&f.bad, "bad", "", "a revision that diverges (required)")
	fl.StringVar(&f.build, "build", "", "build command, run with sh -c in the scratch work tree $WORKTREE (required)")
	fl.StringVar(&f.artifact, "artifact", "", "candidate kernel, relative to the work tree (required)")
	fl.StringVar(&f.symbols, "symbols", "", "candidate symbol file relative to the work tree (default: the artifact)")
	fl.StringVar(&f.scenario, "scenario", "", "scenario: side a the reference, side b the candidate (required)")
	fl.IntVar(&f.runs, "runs", 1, "runs per commit; bad if any run diverges like the bad end")
	fl.StringVarP(&f.outDir, "output", "o", "", "directory for the first bad commit's reports in every format, bisect.json and the log")
	fl.StringVar(&f.resume, "resume", "", "verdict log (JSON lines): appended to, and commits already in it are not judged again")
	fl.StringVar(&f.tmpDir, "tmp-dir", "", "parent of the scratch clone (default: $TMPDIR)")
	fl.DurationVar(&f.buildTimeout, "build-timeout", bisect.DefaultBuildTimeout, "bound on each build")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show build output and log QEMU command lines to stderr")
	for _, name := range []string{"good", "bad", "build", "artifact", "scenario"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runBisect(cmd *cobra.Command, s streams, f bisectFlags) error {
	if f.runs < 1 {
		return withCode(exitUsage, fmt.Errorf("--runs must be at least 1, not %d", f.runs))
	}
	cfg := bisect.Config{
		Repo: f.repo, Good: f.good, Bad: f.bad, Build: f.build, Artifact: f.artifact, Symbols: f.symbols,
		Scenario: f.scenario, Runs: f.runs, Log: f.resume, TempDir: f.tmpDir, BuildTimeout: f.buildTimeout,
	}
	if f.outDir != "" {
		if err := os.MkdirAll(f.outDir, 0o755); err != nil {
			return withCode(exitInfra, err)
		}
		if cfg.Log == "" {
			cfg.Log = filepath.Join(f.outDir, "bisect.jsonl")
		}
	}
	if f.verbose {
		cfg.BuildOutput = s.err
		cfg.Run.Logger = slog.New(slog.NewTextHandler(s.err, nil))
	}
	cfg.OnStep = func(st bisect.Step) { fmt.Fprintf(s.err, "bisect: %s\n", st) }

	out, err := bisect.Run(cmd.Context(), cfg)
	if out != nil && (out.FirstBad.Hash != "" || len(out.Steps) > 0) {
		if werr := bisect.WriteSummary(s.out, out); werr != nil {
			return withCode(exitInfra, werr)
		}
	}
	if err == nil && f.outDir != "" {
		if werr := writeBisectOutputs(s, f.outDir, out); werr != nil {
			return withCode(exitInfra, werr)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bisect.ErrUsage):
		return withCode(exitUsage, err)
	case errors.Is(err, bisect.ErrNotReproduced), errors.Is(err, bisect.ErrAmbiguous):
		fmt.Fprintln(s.err, "lockstep:", err)
		return withCode(exitMismatch, err)
	default:
		return withCode(exitInfra, err)
	}
}

// writeBisectOutputs writes the first bad commit's divergence report in
// every format and the outcome as bisect.json.
func writeBisectOutputs(s streams, dir string, out *bisect.Outcome) error {
	var files []string
	if out.Result != nil {
		fs, err := reports.WriteAll(dir, "first-bad", reports.Formats, out.Result, reports.Options{})
		if err != nil {
			return err
		}
		files = fs
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "bisect.json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return err
	}
	files = append(files, p)
	fmt.Fprintf(s.out, "\nreports: %s\n", strings.Join(files, ", "))
	return nil
}
