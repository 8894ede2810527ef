package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// renderKTAP writes the result in KTAP (version 1), the format kernel test
// infrastructure reads (kselftest, KUnit, KernelCI, LKFT): one top-level
// test, the scenario, with a subtest per JUnit test case (each sync point,
// the divergences after the last one, the verdict, an error). The cases
// and their outcomes are those of the JUnit report, so the two formats
// always agree. Details go in "# " diagnostic lines.
func renderKTAP(w io.Writer, r *lockstep.Result, opt Options) error {
	doc := buildJUnit(r, opt)
	var b bytes.Buffer
	b.WriteString("KTAP version 1\n1..1\n")
	suite := doc.Suites[0]
	fmt.Fprintf(&b, "  KTAP version 1\n  # Subtest: %s\n  1..%d\n", ktapText(suite.Name), len(suite.Cases))
	failed := false
	for i, c := range suite.Cases {
		var diag string
		status, directive := "ok", ""
		switch {
		case c.Error != nil:
			status, diag = "not ok", "error: "+c.Error.Text
		case c.Failure != nil:
			status, diag = "not ok", c.Failure.Message+"\n"+c.Failure.Text
		case c.Skipped != nil:
			directive = " # SKIP " + ktapText(c.Skipped.Message)
		}
		if status == "not ok" {
			failed = true
		}
		if c.diag != "" {
			fmt.Fprintf(&b, "  # %s\n", ktapText(c.diag))
		}
		for _, line := range strings.Split(strings.TrimRight(diag, "\n"), "\n") {
			if line = strings.TrimRight(line, " "); line != "" {
				fmt.Fprintf(&b, "  # %s\n", line)
			}
		}
		fmt.Fprintf(&b, "  %s %d %s%s\n", status, i+1, ktapText(c.Name), directive)
	}
	status := "ok"
	if failed || !r.Passed {
		status = "not ok"
	}
	fmt.Fprintf(&b, "%s 1 %s\n", status, ktapText(suite.Name))
	_, err := w.Write(b.Bytes())
	return err
}

// ktapText makes s fit a KTAP test line: one line, and no '#', which would
// start a directive.
func ktapText(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "#", "no.").Replace(s)
}
