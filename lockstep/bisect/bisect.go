package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// Errors returned by Run, matched with errors.Is.
var (
	// ErrUsage marks a problem with the configuration, the revisions or the
	// scenario: nothing was bisected.
	ErrUsage = errors.New("bisect usage")
	// ErrNotReproduced is returned when the bad end does not diverge (in
	// any of its runs), or cannot be built or judged.
	ErrNotReproduced = errors.New("bad end does not diverge")
	// ErrAmbiguous is returned when only skipped commits are left: the first
	// bad commit is the bad end or one of them (Outcome.Ambiguous).
	ErrAmbiguous = errors.New("only skipped commits left")
	// ErrInfrastructure marks a failure of git or the file system.
	ErrInfrastructure = errors.New("bisect infrastructure failure")
)

// DefaultBuildTimeout bounds one build when Config.BuildTimeout is zero.
const DefaultBuildTimeout = 30 * time.Minute

// Config is one bisection.
type Config struct {
	// Repo is the user's repository. It is only read.
	Repo string
	// Good and Bad are revisions: Good is an ancestor of Bad that does not
	// diverge, Bad one that does.
	Good, Bad string
	// Build is a shell command (sh -c) run in the scratch work tree with
	// $WORKTREE set to it.
	Build string
	// Artifact is the candidate kernel, relative to the work tree.
	Artifact string
	// Symbols is the candidate's symbol file relative to the work tree;
	// "" is Artifact.
	Symbols string
	// Scenario is the scenario file: side a is the fixed reference, side b
	// the candidate (see LoadScenario).
	Scenario string
	// Runs is the number of runs per commit; 0 is 1.
	Runs int
	// Log, when set, is a JSON-lines file each verdict is appended to; the
	// verdicts already in it are reused (resume).
	Log string
	// TempDir is the parent of the scratch clone; "" is os.TempDir().
	TempDir string
	// BuildTimeout bounds each build; 0 is DefaultBuildTimeout.
	BuildTimeout time.Duration
	// BuildOutput receives the builds' output; nil keeps only its tail.
	BuildOutput io.Writer
	// Run tunes each lockstep run (RunDir, Keep, Logger, Progress).
	Run lockstep.Options
	// OnStep, when set, is called after each step.
	OnStep func(Step)
}

// Step is one commit judged.
type Step struct {
	// N is the 1-based step number.
	N       int     `json:"n"`
	Commit  Commit  `json:"commit"`
	Verdict Verdict `json:"verdict"`
	// Reason explains a skip (build failure, missing artifact, failed runs).
	Reason string `json:"reason,omitempty"`
	Runs   Counts `json:"runs"`
	// BadEnd marks the step that tested the --bad revision.
	BadEnd bool `json:"bad_end,omitempty"`
	// Resumed marks a verdict taken from the log rather than judged now.
	Resumed bool `json:"resumed,omitempty"`
	// BuildTail is the end of a failed build's output.
	BuildTail string        `json:"build_tail,omitempty"`
	Duration  time.Duration `json:"duration_ns"`

	result *lockstep.Result // the first run that matched the signature
}

// String returns a one-line account of the step.
func (s Step) String() string {
	line := fmt.Sprintf("%2d  %-4s  %s  %s", s.N, s.Verdict, s.Commit.Short(), s.Commit.Subject)
	if s.Runs.Total() > 0 {
		line += "  [" + s.Runs.String() + "]"
	}
	if s.Reason != "" {
		line += "  (" + s.Reason + ")"
	}
	if s.BadEnd {
		line += "  <bad end>"
	}
	if s.Resumed {
		line += "  <from log>"
	}
	return line
}

// Outcome is what a bisection found.
type Outcome struct {
	Good, Bad Commit
	// FirstBad is the first commit that diverges; zero when Ambiguous.
	FirstBad Commit `json:"first_bad"`
	// Signature is how the bad end diverges.
	Signature Signature `json:"signature"`
	Runs      int       `json:"runs"`
	Steps     []Step    `json:"steps"`
	// Ambiguous lists the commits the first bad one may be when only
	// skipped commits were left (the bad end first).
	Ambiguous []Commit `json:"ambiguous,omitempty"`
	// Result is the lockstep run of the first bad commit against the
	// reference that diverged like the bad end.
	Result *lockstep.Result `json:"-"`
}

// Judged returns the number of steps judged in this invocation (not taken
// from the log).
func (o *Outcome) Judged() int {
	n := 0
	for _, s := range o.Steps {
		if !s.Resumed {
			n++
		}
	}
	return n
}

// Run bisects. On success the Outcome names the first bad commit. The
// error wraps ErrUsage, ErrNotReproduced, ErrAmbiguous (the Outcome is
// then filled in as far as it goes), ErrInfrastructure, or the context's
// error when ctx was cancelled. The scratch clone is removed and every
// QEMU torn down before Run returns, whatever happened.
func Run(ctx context.Context, cfg Config) (_ *Outcome, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	b := &bisection{cfg: cfg, out: &Outcome{Runs: cfg.Runs}, prior: map[string]Entry{}}
	if b.repo, err = filepath.Abs(cfg.Repo); err != nil {
		return nil, fmt.Errorf("%w: repo: %w", ErrUsage, err)
	}
	if b.scenario, err = filepath.Abs(cfg.Scenario); err != nil {
		return nil, fmt.Errorf("%w: scenario: %w", ErrUsage, err)
	}
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	if cfg.Log != "" {
		entries, err := ReadLog(cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("%w: resume: %w", ErrUsage, err)
		}
		for _, e := range entries {
			b.prior[e.Commit] = e
		}
		if b.log, err = openLog(cfg.Log); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInfrastructure, err)
		}
		defer func() {
			if cerr := b.log.close(); cerr != nil && err == nil {
				err = fmt.Errorf("%w: close log: %w", ErrInfrastructure, cerr)
			}
		}()
	}
	defer func() {
		if cerr := b.scratch.close(); cerr != nil && err == nil {
			err = fmt.Errorf("%w: remove scratch clone: %w", ErrInfrastructure, cerr)
		}
	}()
	err = b.bisect(ctx)
	if err == nil {
		err = b.finalReport(ctx)
	}
	if ctx.Err() != nil {
		return b.out, fmt.Errorf("bisect interrupted: %w", context.Cause(ctx))
	}
	return b.out, err
}

func (c *Config) check() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"repo", c.Repo}, {"good", c.Good}, {"bad", c.Bad},
		{"build", c.Build}, {"artifact", c.Artifact}, {"scenario", c.Scenario}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v", ErrUsage, missing)
	}
	if filepath.IsAbs(c.Artifact) || (c.Symbols != "" && filepath.IsAbs(c.Symbols)) {
		return fmt.Errorf("%w: artifact and symbols are relative to the work tree", ErrUsage)
	}
	if c.Runs < 0 {
		return fmt.Errorf("%w: runs %d < 1", ErrUsage, c.Runs)
	}
	if c.Runs == 0 {
		c.Runs = 1
	}
	if c.BuildTimeout <= 0 {
		c.BuildTimeout = DefaultBuildTimeout
	}
	return nil
}
