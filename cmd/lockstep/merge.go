package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep/suite"
)

// mergeFlags are the flags of `lockstep merge`.
type mergeFlags struct {
	outDir   string
	baseline string
}

func newMergeCommand(s streams) *cobra.Command {
	var f mergeFlags
	cmd := &cobra.Command{
		Use:   "merge DIR...",
		Short: "Merge the output directories of suite shards into one verdict",
		Long: `merge reads the index.json of each shard's output directory and writes into
-o DIR one index.json, one JUnit file (junit.xml, one testsuite per scenario),
one Markdown summary that fits a pull-request comment (summary.md, at most
65,536 characters) and an HTML page (index.html) linking every scenario's
reports, which are copied to DIR/scenarios.

A scenario planned by the suite but reported by no shard (a killed shard) is
missing, not passed. Exit status: 0 only when every scenario passed, 1 when
one failed, had a scenario error or is missing, 3 when the only failures
were infrastructure failures. --baseline DIR compares the merged result
with a previous one and reports only what changed; the status is then 1
for a new failure or a missing scenario, 3 for a scenario without a
verdict, 0 otherwise (docs/ci.md).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMerge(s, f, args)
		},
	}
	cmd.Flags().StringVarP(&f.outDir, "output", "o", "lockstep-merged", "directory of the merged outputs (not one of the shard directories)")
	cmd.Flags().StringVar(&f.baseline, "baseline", "", "compare with a previous suite or merge output (DIR or its index.json) and report only what changed")
	return cmd
}

func runMerge(s streams, f mergeFlags, dirs []string) error {
	out, err := filepath.Abs(f.outDir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	for _, d := range dirs {
		if ad, err := filepath.Abs(d); err == nil && ad == out {
			return withCode(exitUsage, fmt.Errorf("merge: -o %s is one of the shard directories", f.outDir))
		}
	}
	var base *suite.Index
	if f.baseline != "" {
		if base, err = suite.ReadBaseline(f.baseline); err != nil {
			return withCode(exitUsage, err)
		}
	}
	x, err := suite.Merge(dirs, f.outDir)
	if err != nil {
		return withCode(exitInfra, err)
	}
	for _, n := range x.Notes {
		fmt.Fprintln(s.err, "note:", n)
	}
	fmt.Fprintf(s.out, "%d scenarios: %s\nmerged: %s\n", len(x.Planned), countsLine(x), f.outDir)
	if len(x.Planned) == 0 {
		return withCode(exitMismatch, fmt.Errorf("merge: no scenarios found in %v", dirs))
	}
	if base != nil {
		return compareBaseline(s, base, f.baseline, x, f.outDir)
	}
	return suiteExit(x)
}
