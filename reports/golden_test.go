package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// inputs are the hand-built Results in testdata, by base name.
var inputs = []string{"diverged", "identical", "error", "expect-diverge", "diverge-missing", "stats-task", "incomplete-stats"}

func loadInput(t testing.TB, name string) *lockstep.Result {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ReadJSON(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return r
}

// variant is one rendering of an input compared against a golden file.
type variant struct {
	suffix string // golden file name after the input name
	format Format
	opt    Options
}

var variants = []variant{
	{".txt", FormatText, Options{}},
	{".color.txt", FormatText, Options{Color: true}},
	{".verbose.txt", FormatText, Options{Verbose: true}},
	{".json", FormatJSON, Options{}},
	{".xml", FormatJUnit, Options{}},
	{".md", FormatMarkdown, Options{}},
	{".html", FormatHTML, Options{}},
	{".ktap", FormatKTAP, Options{}},
	{".verbose.html", FormatHTML, Options{Verbose: true}},
}

func TestGolden(t *testing.T) {
	for _, in := range inputs {
		r := loadInput(t, in)
		for _, v := range variants {
			t.Run(in+v.suffix, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Render(&buf, v.format, r, v.opt); err != nil {
					t.Fatalf("Render: %v", err)
				}
				checkGolden(t, filepath.Join("testdata", "golden", in+v.suffix), buf.Bytes())
			})
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./reports -update and review the diff)\n%s",
			path, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\nwant: " + w + "\n got: " + g
		}
	}
	return ""
}

// TestIncompleteAgrees: a run whose stats could not be compared (TCG) is
// a failure in every format, each saying what was not compared.
func TestIncompleteAgrees(t *testing.T) {
	r := loadInput(t, "incomplete-stats")
	if r.Passed || r.Outcome != lockstep.OutcomeIncomplete {
		t.Fatalf("input: passed %v outcome %s", r.Passed, r.Outcome)
	}
	for _, tc := range []struct {
		format Format
		want   []string
	}{
		{FormatText, []string{"INCOMPLETE  FAIL", "incomplete (stats not compared)"}},
		{FormatJUnit, []string{`failures="3"`, `message="sync point incomplete: stats not compared"`}},
		{FormatKTAP, []string{"# sync point incomplete: stats not compared\n  not ok 1", "not ok 1 iox-stats"}},
		{FormatMarkdown, []string{"**INCOMPLETE**, FAIL", "**incomplete** (stats not compared)"}},
		{FormatJSON, []string{`"passed": false`, `"uncompared": [`}},
	} {
		var buf bytes.Buffer
		if err := Render(&buf, tc.format, r, Options{}); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%v lacks %q:\n%s", tc.format, w, buf.String())
			}
		}
	}
}
