package suite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// BaselineSchema is the schema of the JSON comparison with a baseline
// (docs/ci.md).
const BaselineSchema = "lockstep.baseline/v1"

// Files a comparison with a baseline writes next to the index.
const (
	BaselineJSON     = "baseline.json"
	BaselineMarkdown = "baseline.md"
)

// Change is how a scenario's result differs from the baseline's.
type Change string

// The changes, in the order they are reported.
const (
	// ChangeNew: it fails now and did not in the baseline (a new
	// divergence, an expected divergence no longer found, a new
	// scenario that fails), or the baseline had no verdict for it.
	ChangeNew Change = "new"
	// ChangeInfra: no verdict now (infrastructure failure, missing: its
	// shard was killed, or an optional scenario skipped) where the
	// baseline had another status.
	ChangeInfra Change = "infra"
	// ChangeChanged: same verdict, but the first divergence or where
	// localisation put it differs.
	ChangeChanged Change = "changed"
	// ChangeFixed: it failed in the baseline and passes now.
	ChangeFixed Change = "fixed"
	// ChangeRecovered: the baseline had no verdict (infra or missing),
	// it passes now.
	ChangeRecovered Change = "recovered"
	// ChangeAdded: not in the baseline, passes now.
	ChangeAdded Change = "added"
	// ChangeRemoved: in the baseline, not in this suite.
	ChangeRemoved Change = "removed"
)

var changeOrder = []Change{ChangeNew, ChangeInfra, ChangeChanged, ChangeFixed, ChangeRecovered, ChangeAdded, ChangeRemoved}

var changeTitle = map[Change]string{
	ChangeNew:       "new failures",
	ChangeInfra:     "newly without a verdict (infrastructure, missing or skipped)",
	ChangeChanged:   "changed first divergence or localisation",
	ChangeFixed:     "fixed",
	ChangeRecovered: "verdict again (infrastructure failure or missing in the baseline)",
	ChangeAdded:     "added (passing, not in the baseline)",
	ChangeRemoved:   "removed (in the baseline only)",
}

// Delta is one scenario whose result changed.
type Delta struct {
	Name   string `json:"name"`
	Change Change `json:"change"`
	// Before and After are the scenario's lines in the baseline and in
	// this run (nil when absent).
	Before *ScenarioResult `json:"before,omitempty"`
	After  *ScenarioResult `json:"after,omitempty"`
	// Detail says what changed, in one line.
	Detail string `json:"detail"`
}

// Comparison is a suite's result compared to a baseline's.
type Comparison struct {
	Schema   string `json:"schema"`
	Suite    string `json:"suite"`
	Baseline string `json:"baseline"`
	// Compared counts the scenarios of this run; Unchanged those with
	// the baseline's verdict, first divergence and localisation.
	Compared  int            `json:"compared"`
	Unchanged int            `json:"unchanged"`
	Counts    map[Change]int `json:"counts"`
	Changes   []Delta        `json:"changes"`
	// Missing counts this run's missing scenarios (a killed shard), new
	// or not: they never pass.
	Missing int `json:"missing"`
	// Infra counts this run's scenarios without a verdict because of an
	// infrastructure failure, new or not.
	Infra int `json:"infra"`
}

// ReadBaseline reads a baseline: a suite or merge output directory, or
// its index.json.
func ReadBaseline(path string) (*Index, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, IndexFile)
	}
	x, err := ReadIndex(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return x, nil
}

func failing(s Status) bool   { return s == StatusFailed || s == StatusScenario }
func noVerdict(s Status) bool { return s == StatusInfra || s == StatusMissing || s == StatusSkipped }

// CompareBaseline compares cur, this run's index, to base, the
// baseline's, scenario by scenario (by name). Only cur's results are
// compared: a shard is compared with a whole baseline, and the
// baseline's scenarios that cur's suite plans for other shards are
// not reported as removed.
func CompareBaseline(base, cur *Index, baseName string) *Comparison {
	c := &Comparison{Schema: BaselineSchema, Suite: cur.Suite, Baseline: baseName, Counts: map[Change]int{}, Changes: []Delta{}}
	before := map[string]*ScenarioResult{}
	for i := range base.Results {
		before[base.Results[i].Name] = &base.Results[i]
	}
	seen := map[string]bool{}
	for i := range cur.Results {
		a := &cur.Results[i]
		seen[a.Name] = true
		c.Compared++
		switch a.Status {
		case StatusMissing:
			c.Missing++
		case StatusInfra:
			c.Infra++
		}
		b := before[a.Name]
		ch, detail := classifyChange(b, a)
		if ch == "" {
			c.Unchanged++
			continue
		}
		c.Changes = append(c.Changes, Delta{Name: a.Name, Change: ch, Before: b, After: a, Detail: detail})
	}
	planned := map[string]bool{}
	for _, n := range cur.Planned {
		planned[n] = true
	}
	for i := range base.Results {
		b := &base.Results[i]
		// A scenario of another shard of this suite is not removed.
		if !seen[b.Name] && !planned[b.Name] {
			c.Changes = append(c.Changes, Delta{Name: b.Name, Change: ChangeRemoved, Before: b, Detail: "not in this suite (was " + string(b.Status) + ")"})
		}
	}
	rank := map[Change]int{}
	for i, ch := range changeOrder {
		rank[ch] = i
	}
	slices.SortStableFunc(c.Changes, func(x, y Delta) int { return rank[x.Change] - rank[y.Change] })
	for _, d := range c.Changes {
		c.Counts[d.Change]++
	}
	return c
}

// classifyChange returns how a (now) differs from b (the baseline, nil
// when absent), or "" when it does not.
func classifyChange(b, a *ScenarioResult) (Change, string) {
	now := string(a.Status) + firstOf(*a)
	switch {
	case b == nil && failing(a.Status):
		return ChangeNew, "not in the baseline; now " + now
	case b == nil && noVerdict(a.Status):
		return ChangeInfra, "not in the baseline; now " + now
	case b == nil:
		return ChangeAdded, "not in the baseline; now " + now
	case noVerdict(a.Status):
		if a.Status == b.Status {
			return "", ""
		}
		return ChangeInfra, fmt.Sprintf("was %s%s; now %s", b.Status, firstOf(*b), now)
	case failing(a.Status) && !failing(b.Status):
		if noVerdict(b.Status) {
			return ChangeNew, fmt.Sprintf("no verdict in the baseline (%s); now %s", b.Status, now)
		}
		if a.Divergences == 0 && b.Divergences > 0 {
			return ChangeNew, fmt.Sprintf("the baseline's divergence (%s) is no longer found; now %s", b.First, now)
		}
		return ChangeNew, fmt.Sprintf("passed in the baseline; now %s", now)
	case !failing(a.Status) && failing(b.Status):
		return ChangeFixed, fmt.Sprintf("was %s%s; now %s", b.Status, firstOf(*b), now)
	case noVerdict(b.Status):
		return ChangeRecovered, fmt.Sprintf("was %s%s; now %s", b.Status, firstOf(*b), now)
	}
	// Same verdict: did the divergence move?
	switch {
	case a.First != b.First:
		return ChangeChanged, fmt.Sprintf("first divergence was %q, now %q", b.First, a.First)
	case a.Localized != b.Localized:
		return ChangeChanged, fmt.Sprintf("localised at %q, now %q", b.Localized, a.Localized)
	case a.Status == StatusScenario && a.Error != b.Error:
		return ChangeChanged, fmt.Sprintf("error was %q, now %q", b.Error, a.Error)
	}
	return "", ""
}

// Regressed reports whether a scenario fails now that did not in the
// baseline, or is missing: the comparison's exit status 1.
func (c *Comparison) Regressed() bool { return c.Counts[ChangeNew] > 0 || c.Missing > 0 }

// RenderBaselineText writes the comparison as plain lines.
func RenderBaselineText(w io.Writer, c *Comparison) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "baseline %s: %d scenarios, %d unchanged%s\n", c.Baseline, c.Compared, c.Unchanged, changeCounts(c))
	for _, ch := range changeOrder {
		if c.Counts[ch] == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", changeTitle[ch])
		for _, d := range c.Changes {
			if d.Change == ch {
				fmt.Fprintf(&b, "  %s: %s\n", d.Name, d.Detail)
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func changeCounts(c *Comparison) string {
	s := ""
	for _, ch := range changeOrder {
		if n := c.Counts[ch]; n > 0 {
			s += fmt.Sprintf(", %d %s", n, ch)
		}
	}
	return s
}

// RenderBaselineMarkdown writes the comparison for a pull-request
// comment, in at most limit bytes: what does not fit is counted in a
// note pointing at baseline.json.
func RenderBaselineMarkdown(w io.Writer, c *Comparison, limit int) error {
	var b bytes.Buffer
	verdict := "✅ no new failures"
	switch {
	case c.Regressed():
		verdict = "❌ new failures"
	case c.Infra > 0:
		verdict = "⚠️ no new failures, but scenarios without a verdict"
	}
	fmt.Fprintf(&b, "# lockstep suite %s against the baseline: %s\n\n", mdCell(c.Suite), verdict)
	fmt.Fprintf(&b, "%d scenarios compared to %s: %d unchanged%s.\n", c.Compared, mdCell(c.Baseline), c.Unchanged, changeCounts(c))
	const noteRoom = 300
	left := 0
	for _, ch := range changeOrder {
		if c.Counts[ch] == 0 {
			continue
		}
		head := fmt.Sprintf("\n## %s (%d)\n\n| scenario | was | now | what changed |\n|---|---|---|---|\n", changeTitle[ch], c.Counts[ch])
		wrote := false
		for _, d := range c.Changes {
			if d.Change != ch {
				continue
			}
			was, now := "", ""
			if d.Before != nil {
				was = statusIcon[d.Before.Status] + " " + string(d.Before.Status)
			}
			if d.After != nil {
				now = statusIcon[d.After.Status] + " " + string(d.After.Status)
			}
			row := fmt.Sprintf("| %s | %s | %s | %s |\n", mdCell(d.Name), was, now, mdCell(truncate(d.Detail, 300)))
			need := len(row)
			if !wrote {
				need += len(head)
			}
			if left > 0 || b.Len()+need+noteRoom > limit {
				left++
				continue
			}
			if !wrote {
				b.WriteString(head)
				wrote = true
			}
			b.WriteString(row)
		}
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n> %d more changes left out to fit a %d-character comment: all are in %s.\n", left, limit, BaselineJSON)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteBaseline writes c as baseline.json and baseline.md into dir.
func WriteBaseline(dir string, c *Comparison) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, BaselineJSON), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	var md bytes.Buffer
	if err := RenderBaselineMarkdown(&md, c, MarkdownCap); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, BaselineMarkdown), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}
