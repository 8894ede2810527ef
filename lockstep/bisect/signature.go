package bisect

import (
	"fmt"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// Signature is what "diverges the same way" means: the kind of a
// divergence and the symbol it is about.
type Signature struct {
	Kind   compare.Kind `json:"kind"`
	Symbol string       `json:"symbol"`
}

// String returns "kind at symbol".
func (s Signature) String() string {
	if s.Symbol == "" {
		return string(s.Kind)
	}
	return fmt.Sprintf("%s at %s", s.Kind, s.Symbol)
}

// SignatureOf returns the signature of one divergence. The symbol is the
// memory range's name for a memory divergence, else the reference side's
// (side a's) program counter symbol, which does not move between
// candidates, else side b's, else the sync point's break expression.
func SignatureOf(d compare.Divergence) Signature {
	s := Signature{Kind: d.Kind}
	switch {
	case d.Memory != nil && d.Memory.Name != "":
		s.Symbol = d.Memory.Name
	case d.PC[compare.A].Symbol != "":
		s.Symbol = d.PC[compare.A].Symbol
	case d.PC[compare.B].Symbol != "":
		s.Symbol = d.PC[compare.B].Symbol
	default:
		s.Symbol = d.SyncName
	}
	return s
}

// FirstSignature returns the signature of the first divergence of res that
// is not noise, and false when there is none.
func FirstSignature(res *lockstep.Result) (Signature, bool) {
	if res == nil {
		return Signature{}, false
	}
	for _, d := range res.Divergences {
		if !d.Noise {
			return SignatureOf(d), true
		}
	}
	return Signature{}, false
}

// Matches reports whether any divergence of res that is not noise has the
// signature sig.
func Matches(res *lockstep.Result, sig Signature) bool {
	if res == nil {
		return false
	}
	for _, d := range res.Divergences {
		if !d.Noise && SignatureOf(d) == sig {
			return true
		}
	}
	return false
}

// RunVerdict is what one run of a commit found.
type RunVerdict string

// The verdicts of one run.
const (
	RunBad   RunVerdict = "bad"   // diverged the way the bad end does
	RunGood  RunVerdict = "good"  // identical
	RunOther RunVerdict = "other" // diverged, but not the way the bad end does
	RunError RunVerdict = "error" // infrastructure or scenario failure, or a run that did not compare everything
)

// ClassifyRun classifies one run against the bad end's signature. A nil
// sig (the bad end itself, whose signature is not known yet) makes every
// divergence bad. runErr is Run's error.
func ClassifyRun(res *lockstep.Result, runErr error, sig *Signature) RunVerdict {
	if runErr != nil || res == nil || res.Outcome == lockstep.OutcomeError || res.Outcome == lockstep.OutcomeIncomplete {
		// An incomplete run (a sync point neither side reached) cannot
		// call the commit good: nothing was compared there.
		return RunError
	}
	_, diverged := FirstSignature(res)
	switch {
	case !diverged:
		return RunGood
	case sig == nil || Matches(res, *sig):
		return RunBad
	default:
		return RunOther
	}
}

// Counts tallies the runs of one commit by verdict.
type Counts struct {
	Bad   int `json:"bad,omitempty"`
	Good  int `json:"good,omitempty"`
	Other int `json:"other,omitempty"`
	Error int `json:"error,omitempty"`
}

// Add counts one run.
func (c *Counts) Add(v RunVerdict) {
	switch v {
	case RunBad:
		c.Bad++
	case RunGood:
		c.Good++
	case RunOther:
		c.Other++
	default:
		c.Error++
	}
}

// Total is the number of runs counted.
func (c Counts) Total() int { return c.Bad + c.Good + c.Other + c.Error }

// Disagree reports whether the runs did not all find the same thing.
func (c Counts) Disagree() bool {
	n := 0
	for _, v := range []int{c.Bad, c.Good, c.Other, c.Error} {
		if v > 0 {
			n++
		}
	}
	return n > 1
}

// String returns e.g. "3 runs: 2 bad, 1 good"; zero counts are left out.
func (c Counts) String() string {
	t := c.Total()
	s := fmt.Sprintf("%d run", t)
	if t != 1 {
		s += "s"
	}
	sep := ": "
	for _, p := range []struct {
		n    int
		name string
	}{{c.Bad, "bad"}, {c.Good, "good"}, {c.Other, "diverged otherwise"}, {c.Error, "failed"}} {
		if p.n > 0 {
			s += fmt.Sprintf("%s%d %s", sep, p.n, p.name)
			sep = ", "
		}
	}
	return s
}

// Verdict is the classification of a commit.
type Verdict string

// The verdicts of a commit, as git bisect names them.
const (
	Good Verdict = "good"
	Bad  Verdict = "bad"
	Skip Verdict = "skip"
)

// Decide turns the run counts of a commit that built into its verdict:
// bad when any run diverged the way the bad end does; good when none did,
// at least one run was identical and none diverged otherwise; skip when
// the runs cannot judge it (all failed, or they diverged otherwise). The
// reason explains a skip.
func Decide(c Counts) (Verdict, string) {
	switch {
	case c.Bad > 0:
		return Bad, ""
	case c.Other > 0:
		return Skip, "diverged, but not the way the bad end does"
	case c.Good > 0:
		return Good, ""
	case c.Total() == 0:
		return Skip, "no run"
	default:
		return Skip, "every run failed or compared nothing"
	}
}
