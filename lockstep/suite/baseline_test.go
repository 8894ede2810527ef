package suite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// res is a scenario line for the baseline tests.
func res(name string, st Status, first, localized string) ScenarioResult {
	r := ScenarioResult{Name: name, Status: st, First: first, Localized: localized, Attempts: 1}
	if first != "" {
		r.Divergences = 1
	}
	if noVerdict(st) {
		r.Error = "qemu died"
	}
	return r
}

func TestCompareBaseline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		before *ScenarioResult
		after  ScenarioResult
		want   Change
	}{
		{"still passing", &ScenarioResult{Name: "s", Status: StatusPassed}, res("s", StatusPassed, "", ""), ""},
		{"new divergence", &ScenarioResult{Name: "s", Status: StatusPassed}, res("s", StatusFailed, "rax: 1 vs 2", ""), ChangeNew},
		{"expected divergence lost", ptr(res("s", StatusPassed, "rax: 1 vs 2", "")), res("s", StatusFailed, "", ""), ChangeNew},
		{"fixed", ptr(res("s", StatusFailed, "rax: 1 vs 2", "")), res("s", StatusPassed, "", ""), ChangeFixed},
		{"same failure", ptr(res("s", StatusFailed, "rax: 1 vs 2", "add at f+0x4")), res("s", StatusFailed, "rax: 1 vs 2", "add at f+0x4"), ""},
		{"failure moved", ptr(res("s", StatusFailed, "rax: 1 vs 2", "")), res("s", StatusFailed, "rbx: 1 vs 2", ""), ChangeChanged},
		{"localisation moved", ptr(res("s", StatusFailed, "rax: 1 vs 2", "add at f+0x4")), res("s", StatusFailed, "rax: 1 vs 2", "sub at g+0x8"), ChangeChanged},
		{"expected divergence moved", ptr(res("s", StatusPassed, "rax: 1 vs 2", "")), res("s", StatusPassed, "rcx: 1 vs 2", ""), ChangeChanged},
		{"newly infra", &ScenarioResult{Name: "s", Status: StatusPassed}, res("s", StatusInfra, "", ""), ChangeInfra},
		{"newly missing", ptr(res("s", StatusFailed, "rax: 1 vs 2", "")), res("s", StatusMissing, "", ""), ChangeInfra},
		{"still infra", ptr(res("s", StatusInfra, "", "")), res("s", StatusInfra, "", ""), ""},
		{"infra recovered", ptr(res("s", StatusInfra, "", "")), res("s", StatusPassed, "", ""), ChangeRecovered},
		{"infra then failing", ptr(res("s", StatusInfra, "", "")), res("s", StatusFailed, "rax: 1 vs 2", ""), ChangeNew},
		{"added passing", nil, res("s", StatusPassed, "", ""), ChangeAdded},
		{"added failing", nil, res("s", StatusFailed, "rax: 1 vs 2", ""), ChangeNew},
		{"added infra", nil, res("s", StatusInfra, "", ""), ChangeInfra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &Index{Suite: "x"}
			if tt.before != nil {
				base.Results = []ScenarioResult{*tt.before}
			}
			cur := &Index{Suite: "x", Results: []ScenarioResult{tt.after}}
			c := CompareBaseline(base, cur, "main")
			var got Change
			if len(c.Changes) > 0 {
				got = c.Changes[0].Change
			}
			if got != tt.want || len(c.Changes) > 1 {
				t.Fatalf("change %q, want %q: %+v", got, tt.want, c.Changes)
			}
			if (got == "") != (c.Unchanged == 1) || c.Compared != 1 {
				t.Errorf("compared %d unchanged %d", c.Compared, c.Unchanged)
			}
			if got != "" && c.Changes[0].Detail == "" {
				t.Error("no detail")
			}
			regressed := got == ChangeNew || tt.after.Status == StatusMissing
			if c.Regressed() != regressed {
				t.Errorf("Regressed() = %v, want %v", c.Regressed(), regressed)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestCompareBaselineSuite compares two whole suites: only the changes
// are listed, in order, removed scenarios included, and the text, JSON
// and Markdown say the same.
func TestCompareBaselineSuite(t *testing.T) {
	t.Parallel()
	base := &Index{Suite: "guests", Results: []ScenarioResult{
		res("a", StatusPassed, "", ""), res("b", StatusFailed, "rax: 1 vs 2", ""), res("c", StatusPassed, "", ""),
		res("d", StatusFailed, "mem differs", "mov at f+0x4"), res("gone", StatusPassed, "", ""),
	}}
	cur := &Index{Suite: "guests", Results: []ScenarioResult{
		res("a", StatusPassed, "", ""), res("b", StatusPassed, "", ""), res("c", StatusFailed, "rip: 1 vs 2", ""),
		res("d", StatusFailed, "mem differs", "mov at f+0x8"), res("e", StatusInfra, "", ""),
	}}
	cur.Planned = []string{"a", "b", "c", "d", "e", "other-shard"}
	base.Results = append(base.Results, res("other-shard", StatusFailed, "x", ""))
	c := CompareBaseline(base, cur, "main/index.json")
	var order []string
	for _, d := range c.Changes {
		order = append(order, d.Name+":"+string(d.Change))
	}
	if got, want := strings.Join(order, " "), "c:new e:infra d:changed b:fixed gone:removed"; got != want {
		t.Errorf("changes %s, want %s", got, want)
	}
	if c.Unchanged != 1 || c.Compared != 5 || c.Infra != 1 || !c.Regressed() {
		t.Errorf("comparison %+v", c)
	}
	var txt bytes.Buffer
	if err := RenderBaselineText(&txt, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 unchanged", "new failures:\n  c: passed in the baseline; now failed: rip: 1 vs 2", "f+0x8", "gone: not in this suite"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if strings.Contains(txt.String(), "  a:") {
		t.Errorf("text lists an unchanged scenario:\n%s", txt.String())
	}
	dir := t.TempDir()
	if err := WriteBaseline(dir, c); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, BaselineJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Comparison
	if err := json.Unmarshal(data, &back); err != nil || back.Schema != BaselineSchema || len(back.Changes) != 5 || back.Counts[ChangeNew] != 1 {
		t.Errorf("baseline.json: %v %+v", err, back)
	}
	md, err := os.ReadFile(filepath.Join(dir, BaselineMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"❌ new failures", "## new failures (1)", "| c | ✅ passed | ❌ failed |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestBaselineMarkdownCap: thousands of changes with long details stay
// under the cap and say where the rest is.
func TestBaselineMarkdownCap(t *testing.T) {
	t.Parallel()
	base, cur := &Index{Suite: "big"}, &Index{Suite: "big"}
	for i := range 3000 {
		n := fmt.Sprintf("scenario-%04d", i)
		base.Results = append(base.Results, res(n, StatusPassed, "", ""))
		cur.Results = append(cur.Results, res(n, StatusFailed, strings.Repeat("x", 500), ""))
	}
	c := CompareBaseline(base, cur, "main")
	var md bytes.Buffer
	if err := RenderBaselineMarkdown(&md, c, MarkdownCap); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCount(md.Bytes()); n > MarkdownCap {
		t.Errorf("%d characters, cap %d", n, MarkdownCap)
	}
	if !strings.Contains(md.String(), "more changes left out") || !strings.Contains(md.String(), BaselineJSON) {
		t.Errorf("no note about what was left out:\n%s", md.String()[md.Len()-400:])
	}
}
