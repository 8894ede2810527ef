package bisect_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/bisect"
	"github.com/lockstep-dev/lockstep/lockstep/bisect/bisecttest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// demoSpec is the acceptance history: 20 commits, the build broken at the
// first midpoint (10, fixed by 11) and the regression planted at 14.
var demoSpec = bisecttest.Spec{Commits: 20, Regression: 14, Broken: 10}

// setup builds the repository and the reference kernel from its first
// commit, and points $REFERENCE at it for the fixture scenario (on a cross
// architecture, testdata/bisect/<arch>-<kernel>.yaml). It skips when the
// architecture's QEMU or cross compiler is missing.
func setup(t *testing.T, spec bisecttest.Spec, kernel string) (string, []string, bisect.Config) {
	t.Helper()
	sc := kernel
	if spec.Arch == "" {
		qemutest.Require(t, "x86_64", "tcg")
	} else {
		bisecttest.RequireCross(t, spec.Arch)
		sc = spec.Arch + "-" + kernel
	}
	repo, hashes := bisecttest.Repo(t, spec)
	t.Setenv("REFERENCE", bisecttest.Reference(t, repo, hashes[0], kernel))
	cfg := bisect.Config{
		Repo: repo, Good: hashes[0], Bad: "main",
		Build: bisecttest.Build(kernel), Artifact: bisecttest.Artifact(kernel),
		Scenario: bisecttest.Scenario(t, sc), TempDir: t.TempDir(),
	}
	return repo, hashes, cfg
}

// untouched fails the test if the bisection left anything behind: a
// worktree, bisect refs or log, a change to the checkout or its branch,
// a scratch directory or a QEMU.
func untouched(t *testing.T, repo string, cfg bisect.Config, head string) {
	t.Helper()
	if wt := strings.TrimSpace(bisecttest.Git(t, repo, "worktree", "list", "--porcelain")); strings.Count(wt, "worktree ") != 1 {
		t.Errorf("git worktree list shows more than the main one:\n%s", wt)
	}
	if refs := bisecttest.Git(t, repo, "for-each-ref", "refs/bisect/"); refs != "" {
		t.Errorf("bisect refs left in the repository:\n%s", refs)
	}
	for _, f := range []string{"BISECT_LOG", "BISECT_START", "BISECT_TERMS"} {
		if _, err := os.Stat(filepath.Join(repo, ".git", f)); err == nil {
			t.Errorf(".git/%s left in the repository", f)
		}
	}
	if st := bisecttest.Git(t, repo, "status", "--porcelain"); st != "" {
		t.Errorf("checkout changed:\n%s", st)
	}
	if h := strings.TrimSpace(bisecttest.Git(t, repo, "rev-parse", "HEAD")); h != head {
		t.Errorf("HEAD moved from %s to %s", head, h)
	}
	if b := strings.TrimSpace(bisecttest.Git(t, repo, "symbolic-ref", "--short", "HEAD")); b != "main" {
		t.Errorf("branch is %q, want main", b)
	}
	if ents, err := os.ReadDir(cfg.TempDir); err != nil || len(ents) != 0 {
		t.Errorf("scratch left in %s: %v %v", cfg.TempDir, ents, err)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}

// bisectClean runs the bisection, logs its summary, checks that it left
// nothing behind (untouched) and returns the outcome and the summary.
func bisectClean(t *testing.T, repo string, hashes []string, cfg bisect.Config) (*bisect.Outcome, string) {
	t.Helper()
	out, err := bisect.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bisect: %v", err)
	}
	var sum bytes.Buffer
	if err := bisect.WriteSummary(&sum, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", sum.String())
	untouched(t, repo, cfg, hashes[len(hashes)-1])
	return out, sum.String()
}

// TestBisectFindsRegression is the acceptance test: 20 commits, one broken
// build, one regression; the regressing commit is named exactly, the broken
// one skipped, within ⌈log₂ 20⌉ + 2 steps.
func TestBisectFindsRegression(t *testing.T) {
	repo, hashes, cfg := setup(t, demoSpec, "demo")
	cfg.Log = filepath.Join(t.TempDir(), "bisect.jsonl")
	out, _ := bisectClean(t, repo, hashes, cfg)

	if out.FirstBad.Hash != hashes[demoSpec.Regression] {
		t.Errorf("first bad %s %q, want %s (commit %d)", out.FirstBad.Short(), out.FirstBad.Subject,
			hashes[demoSpec.Regression], demoSpec.Regression)
	}
	if out.FirstBad.Subject != "plant the regression" || out.FirstBad.Author != "Fixture Author <author@example.com>" {
		t.Errorf("first bad subject %q author %q", out.FirstBad.Subject, out.FirstBad.Author)
	}
	if max := int(math.Ceil(math.Log2(20))) + 2; len(out.Steps) > max {
		t.Errorf("%d steps, want at most %d", len(out.Steps), max)
	}
	var skipped bool
	for _, s := range out.Steps {
		if s.Commit.Hash == hashes[demoSpec.Broken] {
			skipped = s.Verdict == bisect.Skip && strings.Contains(s.Reason, "build failed")
		}
		if s.Commit.Hash == hashes[demoSpec.Regression] && s.Verdict != bisect.Bad {
			t.Errorf("regressing commit judged %s", s.Verdict)
		}
	}
	if !skipped {
		t.Errorf("broken commit %d was not tested and skipped for its build", demoSpec.Broken)
	}
	if !out.Steps[0].BadEnd || out.Steps[0].Verdict != bisect.Bad {
		t.Errorf("step 1 is %+v, want the bad end, bad", out.Steps[0])
	}
	if out.Signature.Kind == "" || out.Signature.Symbol == "" {
		t.Errorf("no signature: %+v", out.Signature)
	}
	if out.Result == nil || out.Result.Outcome != lockstep.OutcomeDiverged || !bisect.Matches(out.Result, out.Signature) {
		t.Fatalf("first bad commit's result is missing or does not show %s", out.Signature)
	}

	// Resume: every verdict is in the log, so nothing is judged again; the
	// first bad commit is rebuilt and run once for its report.
	entries, err := bisect.ReadLog(cfg.Log)
	if err != nil || len(entries) != len(out.Steps) {
		t.Fatalf("log has %d entries (%v), want %d", len(entries), err, len(out.Steps))
	}
	again, err := bisect.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("resumed bisect: %v", err)
	}
	if again.FirstBad.Hash != out.FirstBad.Hash || again.Judged() != 0 || len(again.Steps) != len(out.Steps) {
		t.Errorf("resume: first bad %s, %d steps judged of %d; want %s, 0 of %d",
			again.FirstBad.Short(), again.Judged(), len(again.Steps), out.FirstBad.Short(), len(out.Steps))
	}
	if again.Result == nil || !bisect.Matches(again.Result, out.Signature) {
		t.Errorf("resume: no report run of the first bad commit")
	}
	untouched(t, repo, cfg, hashes[len(hashes)-1])
}

// TestBisectFlakyReportsDisagreement bisects a regression that shows on
// odd runs only (the run number is the guest's seed): --runs 4 finds it and
// reports "4 runs: 2 bad, 2 good" at the bad commits.
func TestBisectFlakyReportsDisagreement(t *testing.T) {
	spec := bisecttest.Spec{Commits: 4, Flaky: 2}
	repo, hashes, cfg := setup(t, spec, "flaky")
	cfg.Runs = 4
	out, sum := bisectClean(t, repo, hashes, cfg)
	if out.FirstBad.Hash != hashes[spec.Flaky] {
		t.Errorf("first bad %s, want %s (commit %d)", out.FirstBad.Short(), hashes[spec.Flaky], spec.Flaky)
	}
	want := bisect.Counts{Bad: 2, Good: 2}
	for _, s := range out.Steps {
		if s.Verdict == bisect.Bad && s.Runs != want {
			t.Errorf("bad commit %s runs %s, want %s", s.Commit.Short(), s.Runs, want)
		}
		if s.Verdict == bisect.Good && s.Runs != (bisect.Counts{Good: 4}) {
			t.Errorf("good commit %s runs %s, want 4 good", s.Commit.Short(), s.Runs)
		}
	}
	if !strings.Contains(sum, "4 runs: 2 bad, 2 good") || !strings.Contains(sum, "runs disagreed") {
		t.Errorf("summary does not report the disagreement:\n%s", sum)
	}
	if out.Signature != (bisect.Signature{Kind: "register", Symbol: "marker"}) {
		t.Errorf("signature %s, want register at marker", out.Signature)
	}
}

// TestBisectInterrupted cancels the bisection while its first guest pair
// runs: the error says so, and the repository, the scratch directory and
// the QEMU registry are left clean.
func TestBisectInterrupted(t *testing.T) {
	repo, hashes, cfg := setup(t, demoSpec, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled bool
	cfg.Run.Progress = func(p lockstep.Progress) {
		if p.Phase != "starting" && !cancelled {
			cancelled = true
			if len(qemu.Live()) == 0 {
				t.Errorf("no QEMU running at phase %s", p.Phase)
			}
			cancel()
		}
	}
	_, err := bisect.Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if !cancelled {
		t.Fatal("the run never got past starting")
	}
	untouched(t, repo, cfg, hashes[len(hashes)-1])
}
