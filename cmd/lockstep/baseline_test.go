package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/suite"
)

// writeShard writes a complete one-shard index with results into a new
// directory under root.
func writeShard(t *testing.T, root, name string, results ...suite.ScenarioResult) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	x := &suite.Index{Schema: suite.IndexSchema, Suite: "s", Shard: suite.All, Complete: true, Started: time.Now()}
	for _, r := range results {
		x.Planned = append(x.Planned, r.Name)
		x.Results = append(x.Results, r)
	}
	x.Selected = x.Planned
	if err := suite.WriteIndex(dir, x); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMergeBaseline checks merge --baseline's exit statuses and outputs
// (docs/ci.md): 1 for a new failure or a missing scenario, 3 for a
// scenario without a verdict, 0 when the only failures are the
// baseline's own.
func TestMergeBaseline(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r := func(name string, st suite.Status, first string) suite.ScenarioResult {
		x := suite.ScenarioResult{Name: name, Status: st, First: first, Attempts: 1}
		if first != "" {
			x.Divergences = 1
		}
		return x
	}
	base := writeShard(t, root, "base", r("a", suite.StatusPassed, ""), r("b", suite.StatusFailed, "rax: 1 vs 2"), r("c", suite.StatusPassed, ""))
	tests := []struct {
		name    string
		results []suite.ScenarioResult
		code    int
		out     []string
	}{
		{"known failure only", []suite.ScenarioResult{r("a", suite.StatusPassed, ""), r("b", suite.StatusFailed, "rax: 1 vs 2"), r("c", suite.StatusPassed, "")},
			0, []string{"3 scenarios, 3 unchanged"}},
		{"fixed", []suite.ScenarioResult{r("a", suite.StatusPassed, ""), r("b", suite.StatusPassed, ""), r("c", suite.StatusPassed, "")},
			0, []string{"fixed:\n  b: was failed: rax: 1 vs 2; now passed"}},
		{"new failure", []suite.ScenarioResult{r("a", suite.StatusFailed, "rip: 3 vs 4"), r("b", suite.StatusFailed, "rax: 1 vs 2"), r("c", suite.StatusPassed, "")},
			exitMismatch, []string{"new failures:\n  a: passed in the baseline; now failed: rip: 3 vs 4"}},
		{"changed", []suite.ScenarioResult{r("a", suite.StatusPassed, ""), r("b", suite.StatusFailed, "rbx: 1 vs 2"), r("c", suite.StatusPassed, "")},
			0, []string{"changed first divergence or localisation:\n  b: first divergence was \"rax: 1 vs 2\", now \"rbx: 1 vs 2\""}},
		{"infra", []suite.ScenarioResult{r("a", suite.StatusPassed, ""), r("b", suite.StatusFailed, "rax: 1 vs 2"), r("c", suite.StatusInfra, "")},
			exitInfra, []string{"newly without a verdict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			shard := writeShard(t, dir, "shard", tt.results...)
			out := filepath.Join(dir, "merged")
			code, stdout, stderr := cli(t, "merge", "--baseline", base, "-o", out, shard)
			if code != tt.code {
				t.Errorf("status %d, want %d\n%s\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.out {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, f := range []string{suite.BaselineJSON, suite.BaselineMarkdown, suite.IndexFile} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		shard := writeShard(t, dir, "shard", r("a", suite.StatusPassed, ""), r("b", suite.StatusFailed, "rax: 1 vs 2"))
		x, err := suite.ReadIndex(filepath.Join(shard, suite.IndexFile))
		if err != nil {
			t.Fatal(err)
		}
		x.Planned = append(x.Planned, "c") // planned, never reported
		if err := suite.WriteIndex(shard, x); err != nil {
			t.Fatal(err)
		}
		code, stdout, _ := cli(t, "merge", "--baseline", filepath.Join(base, suite.IndexFile), "-o", filepath.Join(dir, "m"), shard)
		if code != exitMismatch || !strings.Contains(stdout, "c: was passed; now missing") {
			t.Errorf("status %d, want %d\n%s", code, exitMismatch, stdout)
		}
	})
	t.Run("bad baseline", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := cli(t, "merge", "--baseline", filepath.Join(root, "nope"), "-o", filepath.Join(t.TempDir(), "m"), base)
		if code != exitUsage || !strings.Contains(stderr, "baseline") {
			t.Errorf("status %d, want %d\n%s", code, exitUsage, stderr)
		}
	})
}
