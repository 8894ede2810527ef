package suite

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lockstep-dev/lockstep/reports"
)

// RenderJUnit writes one JUnit document for x with one testsuite per
// scenario: the scenario's own JUnit report (one test case per sync point)
// when it was written, else a single test case carrying the status.
// Report paths resolve against dir.
func RenderJUnit(w io.Writer, dir string, x *Index) error {
	doc := reports.JUnitSuites{Name: x.Suite, Time: secs(x.Duration)}
	for _, r := range x.Results {
		suites, err := scenarioJUnit(dir, r)
		if err != nil {
			return err
		}
		for _, s := range suites {
			doc.Tests += s.Tests
			doc.Failures += s.Failures
			doc.Errors += s.Errors
			doc.Suites = append(doc.Suites, s)
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func scenarioJUnit(dir string, r ScenarioResult) ([]reports.JUnitSuite, error) {
	if p, ok := r.Reports["junit"]; ok && (r.Status == StatusPassed || r.Status == StatusFailed) {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return nil, fmt.Errorf("junit: %w", err)
		}
		var doc reports.JUnitSuites
		if err := xml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("junit: %s: %w", p, err)
		}
		for i := range doc.Suites {
			doc.Suites[i].Name = r.Name
		}
		if len(doc.Suites) > 0 {
			return doc.Suites, nil
		}
	}
	c := reports.JUnitCase{Classname: r.Name, Name: r.Name, Time: secs(r.Duration)}
	s := reports.JUnitSuite{Name: r.Name, Tests: 1, Time: secs(r.Duration)}
	msg := string(r.Status) + firstOf(r)
	switch r.Status {
	case StatusFailed:
		s.Failures = 1
		c.Failure = &reports.JUnitMessage{Message: msg, Type: string(r.Status)}
	case StatusInfra, StatusScenario, StatusMissing:
		s.Errors = 1
		c.Error = &reports.JUnitMessage{Message: msg, Type: string(r.Status)}
	case StatusSkipped:
		s.Skipped = 1
		c.Skipped = &reports.JUnitMessage{Message: msg, Type: string(r.Status)}
	}
	s.Cases = []reports.JUnitCase{c}
	return []reports.JUnitSuite{s}, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
