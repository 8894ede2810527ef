package suite

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docBlock returns the first fenced yaml block after marker in docs/ci.md.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	return docFence(t, marker, "yaml")
}

// docFence returns the first fenced block in language lang after marker
// in docs/ci.md.
func docFence(t *testing.T, marker, lang string) string {
	t.Helper()
	data, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("docs/ci.md lacks %q", marker)
	}
	s = s[i:]
	fence := "```" + lang + "\n"
	start := strings.Index(s, fence)
	if start < 0 {
		t.Fatalf("no %s block after %q", lang, marker)
	}
	s = s[start+len(fence):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("unterminated %s block after %q", lang, marker)
	}
	return s[:end+1]
}

// TestDocsSuiteFile parses the suite file example of docs/ci.md.
func TestDocsSuiteFile(t *testing.T) {
	t.Parallel()
	f, err := ParseFile("ci.md", []byte(docBlock(t, "### Suite files")))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Matrix) != 2 || len(f.Scenarios) != 2 {
		t.Errorf("parsed %+v", f)
	}
}

// TestDocsWorkflow parses the GitHub Actions workflow of docs/ci.md and
// checks that its shard matrix, --shard total, artifacts and merge agree.
func TestDocsWorkflow(t *testing.T) {
	t.Parallel()
	type step struct {
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		If   string            `yaml:"if"`
		With map[string]string `yaml:"with"`
		Env  map[string]string `yaml:"env"`
	}
	type job struct {
		RunsOn   string `yaml:"runs-on"`
		Needs    string `yaml:"needs"`
		If       string `yaml:"if"`
		Strategy struct {
			FailFast *bool `yaml:"fail-fast"`
			Matrix   struct {
				Shard []int `yaml:"shard"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
		Permissions map[string]string `yaml:"permissions"`
		Steps       []step            `yaml:"steps"`
	}
	var wf struct {
		Name string         `yaml:"name"`
		On   []string       `yaml:"on"`
		Jobs map[string]job `yaml:"jobs"`
	}
	dec := yaml.NewDecoder(strings.NewReader(docBlock(t, "<!-- suite-workflow")))
	dec.KnownFields(true)
	if err := dec.Decode(&wf); err != nil {
		t.Fatal(err)
	}
	shard, merge := wf.Jobs["shard"], wf.Jobs["merge"]
	n := len(shard.Strategy.Matrix.Shard)
	for i, s := range shard.Strategy.Matrix.Shard {
		if s != i+1 {
			t.Errorf("matrix.shard = %v, want 1..N", shard.Strategy.Matrix.Shard)
		}
	}
	if shard.Strategy.FailFast == nil || *shard.Strategy.FailFast {
		t.Error("fail-fast must be false: one failing shard must not cancel the others")
	}
	runs := func(j job) string {
		var b strings.Builder
		for _, s := range j.Steps {
			b.WriteString(s.Run + "\n")
		}
		return b.String()
	}
	suiteRun := regexp.MustCompile(`lockstep suite .*--shard \$\{\{ matrix.shard \}\}/(\d+) -o (\S+)`).FindStringSubmatch(runs(shard))
	if suiteRun == nil || suiteRun[1] != fmt.Sprint(n) {
		t.Fatalf("shard job does not run lockstep suite --shard ${{ matrix.shard }}/%d: %q", n, runs(shard))
	}
	var uploaded string
	for _, s := range shard.Steps {
		if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
			uploaded = s.With["name"]
			if strings.TrimSuffix(s.With["path"], "/") != suiteRun[2] || s.If != "always()" {
				t.Errorf("upload step %+v does not upload %s always", s, suiteRun[2])
			}
		}
	}
	if merge.Needs != "shard" || merge.If != "always()" {
		t.Errorf("merge job: needs %q if %q; it must run after every shard, even failed ones", merge.Needs, merge.If)
	}
	m := regexp.MustCompile(`lockstep merge -o (\S+) (.*)`).FindStringSubmatch(runs(merge))
	if m == nil {
		t.Fatal("merge job does not run lockstep merge")
	}
	var wantDirs []string
	for i := 1; i <= n; i++ {
		wantDirs = append(wantDirs, "shards/"+strings.ReplaceAll(uploaded, "${{ matrix.shard }}", fmt.Sprint(i)))
	}
	if got := strings.Fields(m[2]); !slices.Equal(got, wantDirs) {
		t.Errorf("merge dirs %q, want %q (one per shard, named as uploaded)", got, wantDirs)
	}
	var junit, comment bool
	for _, s := range merge.Steps {
		junit = junit || strings.Contains(s.With["report_paths"], m[1]+"/"+MergedJUnit)
		comment = comment || strings.Contains(s.Run, m[1]+"/"+MergedMarkdown)
	}
	if !junit || !comment {
		t.Errorf("merge job: JUnit published %v, summary commented %v", junit, comment)
	}
}
