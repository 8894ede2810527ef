package bisect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// bisection is the state of one Run.
type bisection struct {
	cfg      Config
	repo     string // absolute
	scenario string // absolute
	out      *Outcome
	log      *logWriter
	prior    map[string]Entry // verdicts from the log, by commit
	scratch  *scratch

	good, bad string // resolved ends
	goods     []string
	skipped   map[string]bool
	sig       *Signature
	judged    map[string]*Step
	results   map[string]*lockstep.Result
}

// prepare resolves the revisions and checks the scenario loads.
func (b *bisection) prepare(ctx context.Context) error {
	var err error
	if b.good, err = resolve(ctx, b.repo, b.cfg.Good); err != nil {
		return err
	}
	if b.bad, err = resolve(ctx, b.repo, b.cfg.Bad); err != nil {
		return err
	}
	if b.good == b.bad {
		return fmt.Errorf("%w: good and bad are the same commit %s", ErrUsage, b.good)
	}
	ok, err := isAncestor(ctx, b.repo, b.good, b.bad)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInfrastructure, err)
	}
	if !ok {
		return fmt.Errorf("%w: good %s is not an ancestor of bad %s", ErrUsage, b.cfg.Good, b.cfg.Bad)
	}
	if b.out.Good, err = describe(ctx, b.repo, b.good); err != nil {
		return fmt.Errorf("%w: %w", ErrInfrastructure, err)
	}
	if b.out.Bad, err = describe(ctx, b.repo, b.bad); err != nil {
		return fmt.Errorf("%w: %w", ErrInfrastructure, err)
	}
	// The scenario must load before anything is built; the artifact need
	// not exist yet.
	if _, err := LoadScenario(b.scenario, candidateEnv(filepath.Join(os.TempDir(), "worktree"), b.cfg, 1)); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	b.goods = []string{b.good}
	b.skipped = map[string]bool{}
	b.judged = map[string]*Step{}
	b.results = map[string]*lockstep.Result{}
	return nil
}

// bisect judges the bad end, then halves the range until one commit is
// left.
func (b *bisection) bisect(ctx context.Context) error {
	st, err := b.step(ctx, b.bad, true)
	if err != nil {
		return err
	}
	if st.Verdict != Bad {
		why := st.Reason
		if why == "" {
			why = st.Runs.String()
		}
		return fmt.Errorf("%w: %s %s: %s", ErrNotReproduced, st.Commit.Short(), st.Verdict, why)
	}
	for {
		cands, err := candidates(ctx, b.repo, b.bad, b.goods)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInfrastructure, err)
		}
		next, left := Choose(cands, b.bad, b.skipped)
		if next == "" {
			if len(left) == 0 {
				b.out.FirstBad = b.judged[b.bad].Commit
				return nil
			}
			b.out.Ambiguous = []Commit{b.judged[b.bad].Commit}
			for _, h := range left {
				c, err := describe(ctx, b.repo, h)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrInfrastructure, err)
				}
				b.out.Ambiguous = append(b.out.Ambiguous, c)
			}
			return fmt.Errorf("%w: the first bad commit could be any of %d", ErrAmbiguous, len(b.out.Ambiguous))
		}
		st, err := b.step(ctx, next, false)
		if err != nil {
			return err
		}
		switch st.Verdict {
		case Bad:
			b.bad = next
		case Good:
			b.goods = append(b.goods, next)
		default:
			b.skipped[next] = true
		}
	}
}

// step judges one commit, or takes its verdict from the log, and records it.
func (b *bisection) step(ctx context.Context, hash string, badEnd bool) (*Step, error) {
	c, err := describe(ctx, b.repo, hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInfrastructure, err)
	}
	st := &Step{N: len(b.out.Steps) + 1, Commit: c, BadEnd: badEnd}
	if e, ok := b.prior[hash]; ok && (!badEnd || e.Verdict != Bad || e.Signature != nil) {
		st.Verdict, st.Reason, st.Runs, st.Resumed = e.Verdict, e.Reason, e.Runs, true
		if badEnd && e.Verdict == Bad {
			sig := *e.Signature
			b.sig = &sig
			b.out.Signature = sig
		}
	} else {
		start := time.Now()
		if err := b.judge(ctx, st); err != nil {
			return nil, err
		}
		st.Duration = time.Since(start)
		e := Entry{Commit: hash, Subject: c.Subject, Verdict: st.Verdict, Reason: st.Reason,
			Runs: st.Runs, BadEnd: badEnd, Time: time.Now().UTC()}
		if badEnd && b.sig != nil {
			sig := *b.sig
			e.Signature = &sig
		}
		if err := b.log.append(e); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInfrastructure, err)
		}
	}
	b.out.Steps = append(b.out.Steps, *st)
	b.judged[hash] = st
	if b.cfg.OnStep != nil {
		b.cfg.OnStep(*st)
	}
	return st, nil
}

// judge builds the commit and runs the scenario against it cfg.Runs times.
func (b *bisection) judge(ctx context.Context, st *Step) error {
	if b.scratch == nil {
		s, err := newScratch(ctx, b.repo, b.cfg.TempDir)
		if err != nil {
			return b.abort(ctx, err)
		}
		b.scratch = s
	}
	if err := b.scratch.checkout(ctx, st.Commit.Hash); err != nil {
		return b.abort(ctx, err)
	}
	kernel, syms := b.artifacts()
	for _, p := range []string{kernel, syms} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return b.abort(ctx, fmt.Errorf("remove stale artifact: %w", err))
		}
	}
	tail, err := build(ctx, b.cfg, b.scratch.tree, b.scratch.dog)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		st.Verdict, st.Reason, st.BuildTail = Skip, err.Error(), tail
		return nil
	}
	for _, p := range []string{kernel, syms} {
		if _, err := os.Stat(p); err != nil {
			st.Verdict, st.Reason = Skip, fmt.Sprintf("build left no artifact: %v", err)
			return nil
		}
	}
	var scenarioErr error
	for i := 1; i <= b.cfg.Runs; i++ {
		res, err := b.runOnce(ctx, i)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var se *lockstep.ScenarioError
		if errors.As(err, &se) || errors.Is(err, errScenario) {
			scenarioErr = err
		}
		v := ClassifyRun(res, err, b.sig)
		if v == RunBad && b.sig == nil {
			sig, _ := FirstSignature(res)
			b.sig = &sig
			b.out.Signature = sig
		}
		if v == RunBad && st.result == nil {
			st.result = res
			b.results[st.Commit.Hash] = res
		}
		st.Runs.Add(v)
	}
	st.Verdict, st.Reason = Decide(st.Runs)
	if st.Verdict == Skip && scenarioErr != nil {
		st.Reason = fmt.Sprintf("%s: %v", st.Reason, firstLine(scenarioErr.Error()))
	}
	if st.Runs.Disagree() && st.Reason == "" {
		st.Reason = "runs disagree"
	}
	return nil
}

// abort turns a failure outside the runs into the error that ends Run.
func (b *bisection) abort(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%w: %w", ErrInfrastructure, err)
}

var errScenario = errors.New("scenario")

// runOnce loads the scenario for run i and runs it.
func (b *bisection) runOnce(ctx context.Context, i int) (*lockstep.Result, error) {
	sc, err := LoadScenario(b.scenario, candidateEnv(b.scratch.tree, b.cfg, i))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errScenario, err)
	}
	return lockstep.Run(ctx, sc, b.cfg.Run)
}

// artifacts returns the absolute candidate kernel and symbol paths.
func (b *bisection) artifacts() (kernel, syms string) {
	kernel = filepath.Join(b.scratch.tree, b.cfg.Artifact)
	syms = kernel
	if b.cfg.Symbols != "" {
		syms = filepath.Join(b.scratch.tree, b.cfg.Symbols)
	}
	return kernel, syms
}

// finalReport makes sure the first bad commit has a run that diverged like
// the bad end to report: when its verdict came from the log, it is built
// and run again (up to cfg.Runs times) for the report only.
func (b *bisection) finalReport(ctx context.Context) error {
	h := b.out.FirstBad.Hash
	if res := b.results[h]; res != nil {
		b.out.Result = res
		return nil
	}
	st := &Step{Commit: b.out.FirstBad}
	if err := b.judge(ctx, st); err != nil {
		return err
	}
	if st.result == nil {
		return fmt.Errorf("%w: first bad commit %s (from the log) did not diverge again for its report: %s",
			ErrNotReproduced, st.Commit.Short(), st.Runs)
	}
	b.out.Result = st.result
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
