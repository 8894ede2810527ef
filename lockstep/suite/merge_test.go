package suite

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/reports"
)

// bigMemory is a 64 KiB memory divergence in which every row differs.
func bigMemory() compare.Divergence {
	m := &compare.MemoryDiff{Name: "buf", Space: "virtual", Length: 64 << 10, DiffBytes: 64 << 10}
	for off := 0; off < 64<<10; off += 16 {
		m.Rows = append(m.Rows, compare.HexRow{Offset: off, A: strings.Repeat("00", 16), B: strings.Repeat("ff", 16), Diff: make([]bool, 16)})
	}
	return compare.Divergence{Kind: compare.KindMemory, Summary: "buf: 65536 bytes differ", Memory: m}
}

// runShards runs plan as total shards into dirs under root with the fake
// runner and returns the directories.
func runShards(t *testing.T, p *Plan, total int, formats []reports.Format) []string {
	t.Helper()
	root := t.TempDir()
	var dirs []string
	var attempts atomic.Int32
	for i := 1; i <= total; i++ {
		sh := Shard{i, total}
		dir := filepath.Join(root, fmt.Sprintf("shard%d", i))
		if _, err := Run(context.Background(), p, Select(p.Names(), sh, nil), Options{Jobs: 2, OutDir: dir, Formats: formats, Shard: sh, RunFunc: fakeRun(&attempts)}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	if got := int(attempts.Load()); got != len(p.Entries) {
		t.Fatalf("%d runs for %d scenarios", got, len(p.Entries))
	}
	return dirs
}

var allFormats = []reports.Format{reports.FormatJSON, reports.FormatJUnit, reports.FormatMarkdown, reports.FormatHTML}

func TestMerge(t *testing.T) {
	t.Parallel()
	names := []string{"ok-a", "ok-b", "fail-c", "ok-d", "infra-e", "ok-f", "ok-g"}
	tests := []struct {
		name string
		// drop removes the index of this shard (1-based), or marks it
		// incomplete with all results gone when negative.
		drop   int
		counts map[Status]int
		notes  []string
	}{
		{"all shards", 0, map[Status]int{StatusPassed: 5, StatusFailed: 1, StatusInfra: 1}, nil},
		{"shard 2 lost", 2, nil, []string{"no index.json", "shard 2/3: no index found"}},
		{"shard 3 killed", -3, nil, []string{"shard 3/3 did not finish"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := fakePlan(names...)
			dirs := runShards(t, p, 3, allFormats)
			var lost []string
			switch {
			case tt.drop > 0:
				x, _ := ReadIndex(filepath.Join(dirs[tt.drop-1], IndexFile))
				lost = x.Selected
				os.Remove(filepath.Join(dirs[tt.drop-1], IndexFile))
			case tt.drop < 0:
				dir := dirs[-tt.drop-1]
				x, err := ReadIndex(filepath.Join(dir, IndexFile))
				if err != nil {
					t.Fatal(err)
				}
				lost, x.Results, x.Complete = x.Selected, nil, false
				if err := WriteIndex(dir, x); err != nil {
					t.Fatal(err)
				}
			}
			out := t.TempDir()
			m, err := Merge(dirs, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Results) != len(names) {
				t.Fatalf("%d results for %d scenarios", len(m.Results), len(names))
			}
			for i, r := range m.Results {
				if r.Name != names[i] {
					t.Errorf("result %d is %s, want plan order %s", i, r.Name, names[i])
				}
			}
			if tt.counts != nil && fmt.Sprint(m.Counts) != fmt.Sprint(tt.counts) {
				t.Errorf("counts = %v, want %v", m.Counts, tt.counts)
			}
			if m.Counts[StatusMissing] != len(lost) || (len(lost) > 0) == m.Complete {
				t.Errorf("missing %d (complete %v), want %d: %q", m.Counts[StatusMissing], m.Complete, len(lost), lost)
			}
			if m.Passed() {
				t.Error("merge passed with a failure in it")
			}
			notes := strings.Join(m.Notes, "\n")
			for _, n := range tt.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes %q lack %q", notes, n)
				}
			}
			// JUnit: one testsuite per scenario, counts add up.
			data, err := os.ReadFile(filepath.Join(out, MergedJUnit))
			if err != nil {
				t.Fatal(err)
			}
			var ju reports.JUnitSuites
			if err := xml.Unmarshal(data, &ju); err != nil {
				t.Fatal(err)
			}
			if len(ju.Suites) != len(names) {
				t.Errorf("%d testsuites for %d scenarios", len(ju.Suites), len(names))
			}
			if ju.Errors != m.Counts[StatusInfra]+m.Counts[StatusMissing]+m.Counts[StatusScenario] || ju.Failures < m.Counts[StatusFailed] {
				t.Errorf("junit errors %d failures %d", ju.Errors, ju.Failures)
			}
			// HTML links each report that exists.
			page, err := os.ReadFile(filepath.Join(out, MergedHTML))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range m.Results {
				if h, ok := r.Reports["html"]; ok {
					if !bytes.Contains(page, []byte(`href="`+h+`"`)) {
						t.Errorf("index.html lacks a link to %s", h)
					}
					if _, err := os.Stat(filepath.Join(out, h)); err != nil {
						t.Errorf("linked report: %v", err)
					}
				}
			}
		})
	}
}

func TestMergeRanTwice(t *testing.T) {
	t.Parallel()
	p := fakePlan("ok-a", "ok-b")
	dirs := runShards(t, p, 1, allFormats)
	m, err := Merge([]string{dirs[0], dirs[0]}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(m.Notes, "\n"), "ran more than once") || len(m.Results) != 2 {
		t.Errorf("notes %q, %d results", m.Notes, len(m.Results))
	}
}

func TestMergeNothing(t *testing.T) {
	t.Parallel()
	m, err := Merge([]string{t.TempDir()}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m.Passed() || len(m.Notes) == 0 {
		t.Errorf("an empty merge passed: %+v", m)
	}
}

// TestMarkdownCap: a suite with a 64 KiB memory divergence in every
// scenario gives a summary under the cap that says where the reports are.
func TestMarkdownCap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		scenarios int
		limit     int
		big       bool
		truncated bool
	}{
		{"small fits", 2, MarkdownCap, false, false},
		// Each scenario's own report caps its details (reports.MarkdownLimit),
		// so twenty of them fit, each saying where its details are.
		{"20 big scenarios", 20, MarkdownCap, true, false},
		{"table over the cap", 400, 8192, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var names []string
			for i := range tt.scenarios {
				prefix := "fail-"
				if tt.big {
					prefix = "big-"
				}
				names = append(names, fmt.Sprintf("%s%03d", prefix, i))
			}
			p := fakePlan(names...)
			dirs := runShards(t, p, 1, []reports.Format{reports.FormatMarkdown})
			out := t.TempDir()
			m, err := Merge(dirs, out)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := RenderMarkdown(&b, out, m, tt.limit); err != nil {
				t.Fatal(err)
			}
			s := b.String()
			if n := utf8.RuneCountInString(s); n > tt.limit || len(s) > tt.limit {
				t.Errorf("summary is %d characters (%d bytes), over %d", n, len(s), tt.limit)
			}
			note := strings.Contains(s, "left out to fit") && strings.Contains(s, MergedHTML)
			if note != tt.truncated {
				t.Errorf("truncation note present = %v, want %v", note, tt.truncated)
			}
			if !strings.Contains(s, names[0]) {
				t.Error("summary lacks the first scenario")
			}
			if tt.big && !strings.Contains(s, "do not fit a 65536-character comment") {
				t.Error("the big reports do not say where their details are")
			}
		})
	}
}
