package bisect

import (
	"fmt"
	"io"
	"strings"
)

// WriteSummary writes the outcome as text: the first bad commit (or the
// candidates when ambiguous), the bad end's signature, and one line per
// step with its verdict and run counts.
func WriteSummary(w io.Writer, o *Outcome) error {
	var b strings.Builder
	switch {
	case o.FirstBad.Hash != "":
		fmt.Fprintf(&b, "first bad commit: %s\n", o.FirstBad.Hash)
		fmt.Fprintf(&b, "  subject: %s\n", o.FirstBad.Subject)
		fmt.Fprintf(&b, "  author:  %s\n", o.FirstBad.Author)
		if !o.FirstBad.Date.IsZero() {
			fmt.Fprintf(&b, "  date:    %s\n", o.FirstBad.Date.Format("2006-01-02 15:04:05 -0700"))
		}
	case len(o.Ambiguous) > 0:
		fmt.Fprintf(&b, "only skipped commits left; the first bad commit could be any of:\n")
		for _, c := range o.Ambiguous {
			fmt.Fprintf(&b, "  %s  %s\n", c.Hash, c.Subject)
		}
	default:
		fmt.Fprintf(&b, "no first bad commit found\n")
	}
	if o.Signature.Kind != "" {
		fmt.Fprintf(&b, "divergence: %s (as at the bad end %s)\n", o.Signature, o.Bad.Short())
	}
	fmt.Fprintf(&b, "range: good %s .. bad %s, %d run(s) per commit\n", o.Good.Short(), o.Bad.Short(), o.Runs)
	resumed := len(o.Steps) - o.Judged()
	fmt.Fprintf(&b, "steps: %d", len(o.Steps))
	if resumed > 0 {
		fmt.Fprintf(&b, " (%d from the log)", resumed)
	}
	b.WriteString("\n")
	for _, s := range o.Steps {
		b.WriteString(s.String())
		b.WriteString("\n")
	}
	var flaky []string
	for _, s := range o.Steps {
		if s.Runs.Disagree() {
			flaky = append(flaky, fmt.Sprintf("%s (%s)", s.Commit.Short(), s.Runs))
		}
	}
	if len(flaky) > 0 {
		fmt.Fprintf(&b, "runs disagreed at %d commit(s): %s\n", len(flaky), strings.Join(flaky, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
