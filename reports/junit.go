package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// JUnit XML document types. They are exported so tests and tools can decode
// what Render writes with encoding/xml.

// JUnitSuites is the root element, <testsuites>. Its attributes are those
// the Jenkins xunit JUnit schema allows there (no skipped count).
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one <testsuite>: the scenario.
type JUnitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property"`
	Cases      []JUnitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

// JUnitProperty is a <property name= value=>.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one <testcase>.
type JUnitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitMessage `xml:"failure"`
	Error     *JUnitMessage `xml:"error"`
	Skipped   *JUnitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
	// diag is a line KTAP shows as a diagnostic whatever the outcome
	// (the running task of a sync point).
	diag string
}

// JUnitMessage is a <failure>, <error> or <skipped> element.
type JUnitMessage struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// buildJUnit maps a Result onto JUnit; docs/report.md describes the mapping.
func buildJUnit(r *lockstep.Result, opt Options) JUnitSuites {
	s := summarize(r)
	class := r.Scenario
	if class == "" {
		class = "lockstep"
	}
	suite := JUnitSuite{
		Name: class,
		Time: seconds(r.Duration),
		Properties: []JUnitProperty{
			{"expect", s.Expect},
			{"outcome", string(r.Outcome)},
			{"passed", fmt.Sprint(r.Passed)},
			{"mode", string(r.Mode)},
			{"side.a", sideLabel(r, 0) + ": " + sideLine(r.Sides[0])},
			{"side.b", sideLabel(r, 1) + ": " + sideLine(r.Sides[1])},
		},
	}
	if !r.Started.IsZero() {
		suite.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	expectDiverge := s.Expect == "diverge"
	by, other := groupBySync(r)
	for _, sy := range r.Syncs {
		c := JUnitCase{
			Classname: class,
			Name:      syncTitle(sy),
			Time:      seconds(sy.Duration),
		}
		ds := by[sy.Index]
		real, _ := splitNoise(ds)
		c.SystemOut = junitOut(r, sy, ds, opt)
		if task := syncTask(sy); task != "" {
			c.SystemOut = "task " + task + "\n" + c.SystemOut
			c.diag = "task " + task
		}
		switch {
		case sy.Status == lockstep.SyncSkipped:
			c.Skipped = &JUnitMessage{Message: "not run: an earlier failure ended the run"}
		case expectDiverge:
			// Divergences are what the scenario asks for; the verdict case decides.
		case len(real) > 0 || sy.Status == lockstep.SyncDiverge || sy.Status == lockstep.SyncUnreached || sy.Status == lockstep.SyncIncomplete:
			c.Failure = &JUnitMessage{
				Message: failureMessage(sy, real),
				Type:    failureType(sy, real),
				Text:    details(r, real),
			}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if len(other) > 0 {
		real, _ := splitNoise(other)
		c := JUnitCase{Classname: class, Name: "after the last sync point", Time: seconds(0)}
		c.SystemOut = summaries(other)
		if !expectDiverge && len(real) > 0 {
			c.Failure = &JUnitMessage{
				Message: compare.Plural(len(real), "divergence", "divergences"),
				Type:    string(real[0].Kind),
				Text:    details(r, real),
			}
		}
		suite.Cases = append(suite.Cases, c)
	}
	// The verdict is a case of its own whatever the expectation, so the
	// number of cases does not depend on it; its time is 0: the sync
	// point cases hold the run's time.
	if r.Outcome != lockstep.OutcomeError {
		c := JUnitCase{Classname: class, Name: "expect: " + s.Expect, Time: seconds(0)}
		switch {
		case r.Passed && expectDiverge:
			c.SystemOut = "first divergence: " + firstLine(s.First)
		case r.Passed:
			c.SystemOut = "identical: every sync point reached and compared"
		case expectDiverge:
			c.Failure = &JUnitMessage{
				Message: "expected a divergence, none found",
				Type:    string(r.Outcome),
				Text:    countsLine(s),
			}
		default:
			c.Failure = &JUnitMessage{
				Message: fmt.Sprintf("expected identical, the run is %s", r.Outcome),
				Type:    string(r.Outcome),
				Text:    countsLine(s),
			}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if r.Outcome == lockstep.OutcomeError || r.Error != "" {
		msg := r.Error
		if msg == "" {
			msg = "the run ended in error"
		}
		suite.Cases = append(suite.Cases, JUnitCase{
			Classname: class, Name: "error", Time: seconds(0),
			Error: &JUnitMessage{Message: firstTextLine(msg), Type: "infrastructure", Text: msg},
		})
	}
	if len(r.Notes) > 0 {
		suite.SystemOut = "notes:\n- " + strings.Join(r.Notes, "\n- ")
	}
	for _, c := range suite.Cases {
		suite.Tests++
		switch {
		case c.Error != nil:
			suite.Errors++
		case c.Failure != nil:
			suite.Failures++
		case c.Skipped != nil:
			suite.Skipped++
		}
	}
	return JUnitSuites{
		Name: "lockstep", Tests: suite.Tests, Failures: suite.Failures,
		Errors: suite.Errors, Time: suite.Time,
		Suites: []JUnitSuite{suite},
	}
}

func splitNoise(ds []*compare.Divergence) (real, noise []*compare.Divergence) {
	for _, d := range ds {
		if d.Noise {
			noise = append(noise, d)
		} else {
			real = append(real, d)
		}
	}
	return real, noise
}

func failureMessage(sy lockstep.SyncResult, real []*compare.Divergence) string {
	if len(real) == 0 {
		if why := incompleteWhy(sy); why != "" {
			return "sync point " + string(sy.Status) + ": " + why
		}
		return "sync point " + string(sy.Status)
	}
	msg := fmt.Sprintf("%s; first: %s %s", compare.Plural(len(real), "divergence", "divergences"), real[0].Kind, real[0].Summary)
	return msg
}

func failureType(sy lockstep.SyncResult, real []*compare.Divergence) string {
	if len(real) == 0 {
		return string(sy.Status)
	}
	return string(real[0].Kind)
}

// summaries lists divergences one per line, as in the text summary.
// details renders divergences as the text report does (register tables,
// hexdumps, call paths), without colour, for a failure's body.
func details(r *lockstep.Result, ds []*compare.Divergence) string {
	t := &textWriter{r: r, p: newPalette(false)}
	for _, d := range ds {
		t.divergence(d)
	}
	return t.buf.String()
}

func summaries(ds []*compare.Divergence) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s", firstLine(d))
		if d.Noise {
			b.WriteString(" (noise)")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func junitOut(r *lockstep.Result, sy lockstep.SyncResult, ds []*compare.Divergence, opt Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\n", sy.Status)
	if pc := syncPC(sy); pc != "" {
		fmt.Fprintf(&b, "pc: %s\n", pc)
	}
	if sy.Steps > 0 {
		fmt.Fprintf(&b, "steps: %d\n", sy.Steps)
	}
	if opt.Verbose || len(ds) > 0 {
		b.WriteString(summaries(ds))
	}
	junitState(&b, r, sy)
	return b.String()
}

// junitState lists what each side looked like at sy: its pc, compared
// registers one per line and backtrace, outermost first.
func junitState(b *strings.Builder, r *lockstep.Result, sy lockstep.SyncResult) {
	if !hasState(sy) {
		return
	}
	for i, st := range sy.State {
		fmt.Fprintf(b, "state %s (%s): pc %s\n", [2]string{"a", "b"}[i], sideLabel(r, i), statePC(st))
		for _, rg := range st.Registers {
			fmt.Fprintf(b, "  %s %s\n", rg.Name, rg.Value)
		}
		if len(st.Backtrace) > 0 {
			b.WriteString("  backtrace, outermost first:\n")
			for _, l := range backtraceLines(st.Backtrace) {
				fmt.Fprintf(b, "    %s\n", l.text)
			}
		}
	}
}

func firstTextLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func renderJUnit(w io.Writer, r *lockstep.Result, opt Options) error {
	doc := buildJUnit(r, opt)
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
