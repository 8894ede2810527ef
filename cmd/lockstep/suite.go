package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/suite"
	"github.com/lockstep-dev/lockstep/reports"
)

// suiteFlags are the flags of `lockstep suite`.
type suiteFlags struct {
	jobs       int
	qemus      int
	outDir     string
	formats    string
	expand     string
	list       bool
	shard      string
	shardTotal int
	durations  string
	retryInfra int
	keep       bool
	verbose    bool
	runDir     string
	baseline   string
}

func newSuiteCommand(s streams) *cobra.Command {
	var f suiteFlags
	cmd := &cobra.Command{
		Use:   "suite SCENARIO|DIR|GLOB|SUITE...",
		Short: "Run many scenarios in parallel, optionally one shard of them, into one output directory",
		Long: `suite runs every scenario given as a file, a directory (its *.yaml), a glob
or a suite file (a list of scenarios and matrices over guest fields), at most
-j at a time, and writes each scenario's reports and an index.json
(schema lockstep.suite/v1) into -o DIR. --shard INDEX/TOTAL (or GitLab's
CI_NODE_INDEX/CI_NODE_TOTAL, or Kubernetes' JOB_COMPLETION_INDEX with
--shard-total) runs a stable subset; lockstep merge joins the shards.

Exit status: 0 when every scenario of the shard passed, 1 when one failed
or had a scenario error, 2 for a usage or scenario-file error, 3 when the
only failures were infrastructure failures. With --baseline the status
is about the changes (docs/ci.md): 1 for a new failure or a missing
scenario, 3 when a scenario has no verdict (infrastructure), 0 otherwise,
even when failures known from the baseline remain.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSuite(cmd, s, f, args)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.jobs, "jobs", "j", suite.DefaultJobs(), "scenarios run at once (each starts two QEMUs)")
	fl.IntVar(&f.qemus, "qemus", 0, "most QEMU processes alive at once across the suite, localisation pairs included (0: no bound beyond -j)")
	fl.StringVarP(&f.outDir, "output", "o", "lockstep-out", "output directory: reports per scenario and index.json")
	fl.StringVar(&f.formats, "format", "text,json,junit,md,html", "report formats written per scenario")
	fl.StringVar(&f.expand, "expand", "", "write the matrix scenarios to this directory as NAME.yaml and exit")
	fl.BoolVar(&f.list, "list", false, "print the names of the scenarios this shard would run and exit")
	fl.StringVar(&f.shard, "shard", "", "run shard INDEX/TOTAL (1-based); default from CI_NODE_INDEX/CI_NODE_TOTAL or JOB_COMPLETION_INDEX")
	fl.IntVar(&f.shardTotal, "shard-total", 0, "the shard count for JOB_COMPLETION_INDEX (default $LOCKSTEP_SHARD_TOTAL)")
	fl.StringVar(&f.durations, "durations", "", "balance shards by the durations in this index.json of a previous run")
	fl.IntVar(&f.retryInfra, "retry-infra", 0, "rerun a scenario up to N times after an infrastructure failure")
	fl.BoolVar(&f.keep, "keep", false, "keep every run directory")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log QEMU command lines to stderr; verbose reports")
	fl.StringVar(&f.runDir, "run-dir", "", "parent directory of the run directories (default: $TMPDIR)")
	fl.StringVar(&f.baseline, "baseline", "", "compare with a previous suite or merge output (DIR or its index.json) and report only what changed")
	return cmd
}

func runSuite(cmd *cobra.Command, s streams, f suiteFlags, args []string) error {
	formats, err := reports.ParseFormats(f.formats)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.jobs < 1 {
		return withCode(exitUsage, fmt.Errorf("-j %d: need at least 1", f.jobs))
	}
	if f.qemus != 0 && f.qemus < qemu.MinBudget {
		return withCode(exitUsage, fmt.Errorf("--qemus %d: a scenario needs at least %d (one pair); 0 sets no bound", f.qemus, qemu.MinBudget))
	}
	plan, err := suite.Collect(args)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.expand != "" {
		files, err := suite.WriteExpanded(f.expand, plan)
		if err != nil {
			return withCode(exitInfra, err)
		}
		fmt.Fprintf(s.out, "%d scenarios written to %s\n", len(files), f.expand)
		return nil
	}
	shard, err := suiteShard(f)
	if err != nil {
		return withCode(exitUsage, err)
	}
	var durations map[string]time.Duration
	if f.durations != "" {
		if durations, err = suite.ReadDurations(f.durations); err != nil {
			return withCode(exitUsage, err)
		}
	}
	var base *suite.Index
	if f.baseline != "" {
		if base, err = suite.ReadBaseline(f.baseline); err != nil {
			return withCode(exitUsage, err)
		}
	}
	selected := suite.Select(plan.Names(), shard, durations)
	if f.list {
		for _, n := range selected {
			fmt.Fprintln(s.out, n)
		}
		return nil
	}
	opts := suite.Options{
		Jobs: f.jobs, QEMUs: f.qemus, OutDir: f.outDir, Formats: formats, Verbose: f.verbose,
		RetryInfra: f.retryInfra, Shard: shard, Progress: s.err,
		Run: lockstep.Options{Keep: f.keep, RunDir: f.runDir},
	}
	if f.verbose {
		opts.Run.Logger = slog.New(slog.NewTextHandler(s.err, nil))
	} else if isTerminal(s.err) {
		// One line per running scenario, redrawn; plain lines otherwise
		// (and with -v, whose log lines would break the redrawing).
		width := 80
		if w, _, err := term.GetSize(int(s.err.(*os.File).Fd())); err == nil {
			width = w
		}
		opts.Reporter = suite.NewLive(s.err, width, len(selected))
	}
	budget := ""
	if f.qemus > 0 {
		budget = fmt.Sprintf(", at most %d QEMUs", f.qemus)
	}
	fmt.Fprintf(s.err, "suite %s: shard %s: %d of %d scenarios, -j %d%s\n", plan.Name, shard, len(selected), len(plan.Entries), f.jobs, budget)
	x, err := suite.Run(cmd.Context(), plan, selected, opts)
	if err != nil {
		return withCode(exitInfra, err)
	}
	fmt.Fprintf(s.out, "%s\nindex: %s\n", countsLine(x), f.outDir+"/"+suite.IndexFile)
	if q := x.QEMUs; q != nil {
		fmt.Fprintf(s.out, "QEMUs: at most %d alive at once (budget %d), %d starts waited, %d let over the budget to avoid a deadlock\n", q.Peak, q.Budget, q.Waits, q.Overdrafts)
	}
	if base != nil {
		return compareBaseline(s, base, f.baseline, x, f.outDir)
	}
	return suiteExit(x)
}

// compareBaseline compares x with the baseline base, writes
// baseline.json and baseline.md into dir, prints the changes and returns
// the exit status of a baseline comparison: 1 for a new failure or a
// missing scenario, 3 for an infrastructure failure or when every
// scenario was skipped, else 0.
func compareBaseline(s streams, base *suite.Index, baseName string, x *suite.Index, dir string) error {
	c := suite.CompareBaseline(base, x, baseName)
	if err := suite.WriteBaseline(dir, c); err != nil {
		return withCode(exitInfra, err)
	}
	if err := suite.RenderBaselineText(s.out, c); err != nil {
		return withCode(exitInfra, err)
	}
	fmt.Fprintf(s.out, "changes: %s, %s\n", dir+"/"+suite.BaselineMarkdown, dir+"/"+suite.BaselineJSON)
	switch {
	case c.Regressed():
		return withCode(exitMismatch, fmt.Errorf("suite %s: %d new failures, %d missing against the baseline", x.Suite, c.Counts[suite.ChangeNew], c.Missing))
	case c.Infra > 0:
		return withCode(exitInfra, fmt.Errorf("suite %s: no new failures against the baseline, but %d scenarios without a verdict (infrastructure)", x.Suite, c.Infra))
	case len(x.Results) > 0 && x.Counts[suite.StatusPassed]+x.Counts[suite.StatusFailed]+x.Counts[suite.StatusScenario] == 0:
		return withCode(exitInfra, fmt.Errorf("suite %s: %s: no scenario ran on this machine", x.Suite, countsLine(x)))
	}
	return nil
}

// suiteShard is --shard, else the CI environment, else everything.
func suiteShard(f suiteFlags) (suite.Shard, error) {
	if f.shard != "" {
		return suite.ParseShard(f.shard)
	}
	sh, ok, err := suite.ShardFromEnv(os.Getenv, f.shardTotal)
	if err != nil || !ok {
		return suite.All, err
	}
	return sh, nil
}

func countsLine(x *suite.Index) string {
	var parts []string
	for _, st := range []suite.Status{suite.StatusPassed, suite.StatusFailed, suite.StatusScenario, suite.StatusInfra, suite.StatusMissing, suite.StatusSkipped} {
		if n := x.Counts[st]; n > 0 || st == suite.StatusPassed {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// suiteExit maps an index to the exit status: failures before
// infrastructure failures.
func suiteExit(x *suite.Index) error {
	c := x.Counts
	switch {
	case c[suite.StatusFailed]+c[suite.StatusScenario]+c[suite.StatusMissing] > 0:
		return withCode(exitMismatch, fmt.Errorf("suite %s: %s", x.Suite, countsLine(x)))
	case c[suite.StatusInfra] > 0:
		return withCode(exitInfra, fmt.Errorf("suite %s: %s", x.Suite, countsLine(x)))
	case c[suite.StatusPassed] == 0 && c[suite.StatusSkipped] > 0:
		// Every scenario skipped: nothing compared is not a pass. (A
		// shard with no scenario at all passes: the merge judges.)
		return withCode(exitInfra, fmt.Errorf("suite %s: %s: no scenario ran on this machine", x.Suite, countsLine(x)))
	}
	return nil
}
