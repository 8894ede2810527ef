package reports

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

func TestParseFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []Format
		wantErr bool
	}{
		{"text", []Format{FormatText}, false},
		{"text,json,junit,html,md,ktap", Formats, false},
		{" JSON , md,json,", []Format{FormatJSON, FormatMarkdown}, false},
		{"markdown", []Format{FormatMarkdown}, false},
		{"", nil, true},
		{" , ", nil, true},
		{"text,pdf", nil, true},
		{"xml", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormats(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrUnknownFormat) {
					t.Fatalf("ParseFormats(%q) error = %v, want ErrUnknownFormat", tt.in, err)
				}
				if !strings.Contains(err.Error(), "text, json, junit, html, md") {
					t.Errorf("error %q does not list the valid formats", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFormats(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseFormats(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("ParseFormats(%q) = %v, want %v", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestExt(t *testing.T) {
	t.Parallel()
	want := map[Format]string{FormatText: ".txt", FormatJSON: ".json", FormatJUnit: ".xml", FormatHTML: ".html", FormatMarkdown: ".md", "pdf": ""}
	for f, ext := range want {
		if got := f.Ext(); got != ext {
			t.Errorf("%s.Ext() = %q, want %q", f, got, ext)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	r := loadInput(t, "identical")
	if err := Render(io.Discard, "pdf", r, Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Render(pdf) = %v, want ErrUnknownFormat", err)
	}
	if err := Render(io.Discard, FormatText, nil, Options{}); !errors.Is(err, ErrNilResult) {
		t.Errorf("Render(nil) = %v, want ErrNilResult", err)
	}
	if err := Render(failWriter{}, FormatText, r, Options{}); !errors.Is(err, errWrite) {
		t.Errorf("Render to a failing writer = %v, want errWrite", err)
	}
}

var errWrite = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestReadJSON(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(filepath.Join("testdata", "diverged.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		in     string
		schema bool // error must match ErrSchema
		ok     bool
	}{
		{"valid", string(good), false, true},
		{"unknown field kept compatible", `{"schema":"lockstep.result/v1","scenario":"x","future":1}`, false, true},
		{"other version", `{"schema":"lockstep.result/v2","scenario":"x"}`, true, false},
		{"no schema", `{"scenario":"x"}`, true, false},
		{"schema wrong type", `{"schema":2}`, false, false},
		{"not json", `<xml/>`, false, false},
		{"trailing data", `{"schema":"lockstep.result/v1"} {}`, false, false},
		{"wrong field type", `{"schema":"lockstep.result/v1","syncs":{}}`, false, false},
		{"empty", ``, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadJSON(strings.NewReader(tt.in))
			if tt.ok {
				if err != nil || r == nil {
					t.Fatalf("ReadJSON: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ReadJSON succeeded, want an error")
			}
			if got := errors.Is(err, ErrSchema); got != tt.schema {
				t.Errorf("errors.Is(%v, ErrSchema) = %v, want %v", err, got, tt.schema)
			}
		})
	}
}

func TestReadJSONSchemaMessage(t *testing.T) {
	t.Parallel()
	_, err := ReadJSON(strings.NewReader(`{"schema":"lockstep.result/v0"}`))
	for _, want := range []string{"lockstep.result/v0", lockstep.SchemaVersion} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}

// TestJSONRoundTrip checks that JSON output reads back to a Result that
// renders identically in every format.
func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range inputs {
		r := loadInput(t, in)
		var first bytes.Buffer
		if err := Render(&first, FormatJSON, r, Options{}); err != nil {
			t.Fatal(err)
		}
		back, err := ReadJSON(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("%s: ReadJSON of rendered JSON: %v", in, err)
		}
		for _, f := range Formats {
			var a, b bytes.Buffer
			if err := Render(&a, f, r, Options{Verbose: true}); err != nil {
				t.Fatal(err)
			}
			if err := Render(&b, f, back, Options{Verbose: true}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s: %s differs after a JSON round trip", in, f)
			}
		}
	}
}

func TestJSONSetsSchema(t *testing.T) {
	t.Parallel()
	r := &lockstep.Result{Scenario: "bare"}
	var buf bytes.Buffer
	if err := Render(&buf, FormatJSON, r, Options{}); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatalf("ReadJSON: %v", err)
	}
	if back.Schema != lockstep.SchemaVersion || back.Divergences == nil || back.Syncs == nil {
		t.Errorf("got schema %q, divergences %v, syncs %v; want schema set and empty (not null) lists",
			back.Schema, back.Divergences, back.Syncs)
	}
	if r.Schema != "" {
		t.Error("Render modified its input")
	}
}

func TestJUnitMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                          string
		tests, failures, errs, skip int
		failing                     []string // names of failing or erroring cases
	}{
		{"diverged", 6, 5, 0, 0, []string{"sync 2: checksum (hit 3)", "sync 3: report (hit 1)", "sync 4: finish (hit 1)", "after the last sync point", "expect: identical"}},
		{"identical", 4, 0, 0, 0, nil},
		{"error", 3, 0, 1, 2, []string{"error"}},
		{"expect-diverge", 3, 0, 0, 0, nil},
		{"diverge-missing", 2, 1, 0, 0, []string{"expect: diverge"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, FormatJUnit, loadInput(t, tt.in), Options{}); err != nil {
				t.Fatal(err)
			}
			var doc JUnitSuites
			if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("JUnit output does not parse: %v", err)
			}
			if len(doc.Suites) != 1 {
				t.Fatalf("got %d suites, want 1", len(doc.Suites))
			}
			s := doc.Suites[0]
			if s.Tests != tt.tests || s.Failures != tt.failures || s.Errors != tt.errs || s.Skipped != tt.skip {
				t.Errorf("suite counts tests=%d failures=%d errors=%d skipped=%d, want %d/%d/%d/%d",
					s.Tests, s.Failures, s.Errors, s.Skipped, tt.tests, tt.failures, tt.errs, tt.skip)
			}
			if len(s.Cases) != s.Tests || doc.Tests != s.Tests || doc.Failures != s.Failures {
				t.Errorf("inconsistent counts: %d cases, suite %d tests, root %d tests", len(s.Cases), s.Tests, doc.Tests)
			}
			var failing []string
			for _, c := range s.Cases {
				if c.Classname != s.Name {
					t.Errorf("case %q classname %q, want scenario %q", c.Name, c.Classname, s.Name)
				}
				if c.Failure != nil || c.Error != nil {
					failing = append(failing, c.Name)
				}
			}
			if strings.Join(failing, "|") != strings.Join(tt.failing, "|") {
				t.Errorf("failing cases %q, want %q", failing, tt.failing)
			}
			// Round trip: re-encoding the decoded document gives the same XML.
			again, err := xml.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimPrefix(buf.String(), xml.Header); string(again)+"\n" != want {
				t.Error("JUnit XML does not survive an encoding/xml round trip")
			}
		})
	}
}

// TestHTMLWellFormed parses every HTML golden input with encoding/xml in
// HTML mode and checks that tags balance and nothing external is loaded.
func TestHTMLWellFormed(t *testing.T) {
	t.Parallel()
	for _, in := range inputs {
		for _, verbose := range []bool{false, true} {
			var buf bytes.Buffer
			if err := Render(&buf, FormatHTML, loadInput(t, in), Options{Verbose: verbose}); err != nil {
				t.Fatal(err)
			}
			if err := checkHTML(buf.String()); err != nil {
				t.Errorf("%s (verbose=%v): %v", in, verbose, err)
			}
		}
	}
}

var codeRE = regexp.MustCompile("(?s)```+.*?```+|`[^`\n]*`")

var voidElements = map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "link": true, "input": true, "wbr": true}

var (
	tagRE   = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>`)
	styleRE = regexp.MustCompile(`(?s)<style>.*?</style>`)
)

// checkHTML parses doc with encoding/xml in HTML mode (entities, attribute
// syntax) and then checks that every non-void tag is closed in order.
func checkHTML(doc string) error {
	for _, bad := range []string{"http://", "https://", "<script", "<link", "src=", "@import"} {
		if strings.Contains(doc, bad) {
			return errors.New("HTML references external or active content: " + bad)
		}
	}
	d := xml.NewDecoder(strings.NewReader(strings.TrimPrefix(doc, "<!DOCTYPE html>")))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	var stack []string
	for _, m := range tagRE.FindAllStringSubmatch(styleRE.ReplaceAllString(doc, "<style></style>"), -1) {
		name := strings.ToLower(m[2])
		if voidElements[name] {
			continue
		}
		if m[1] == "" {
			stack = append(stack, name)
			continue
		}
		if len(stack) == 0 || stack[len(stack)-1] != name {
			return errors.New("unbalanced </" + name + "> (open: " + strings.Join(stack, ">") + ")")
		}
		stack = stack[:len(stack)-1]
	}
	if len(stack) != 0 {
		return errors.New("unclosed elements: " + strings.Join(stack, ">"))
	}
	return nil
}

func TestCheckHTMLDetectsBreakage(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"<html><div></html>", "<html><p></div></html>", `<html><img src="https://x"></html>`} {
		if checkHTML(doc) == nil {
			t.Errorf("checkHTML(%q) accepted a broken document", doc)
		}
	}
	if err := checkHTML("<html><meta charset=utf-8><p>a &amp; b</p></html>"); err != nil {
		t.Errorf("checkHTML rejected a good document: %v", err)
	}
}

// TestEscaping feeds hostile strings through every format.
func TestEscaping(t *testing.T) {
	t.Parallel()
	evil := "<script>alert(1)</script>|`**x**`\n]]>&"
	r := &lockstep.Result{
		Schema: lockstep.SchemaVersion, Scenario: evil, Description: evil, Expect: "identical",
		Outcome: lockstep.OutcomeDiverged, Error: evil, Notes: []string{evil},
		Sides: [2]lockstep.Side{{Label: evil}, {Label: evil, Kernel: evil}},
		Syncs: []lockstep.SyncResult{{Index: 0, Break: evil, Hit: 1, Status: "diverge", Divergences: 1}},
		Divergences: []compare.Divergence{{
			Kind: compare.KindCallPath, Sync: 0, SyncName: evil, Summary: evil,
			CallPath: &compare.CallPathDiff{Unified: "-" + evil + "\n+" + evil + "\n"},
		}},
	}
	var h bytes.Buffer
	if err := Render(&h, FormatHTML, r, Options{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "<script>") {
		t.Error("HTML contains an unescaped <script>")
	}
	if err := checkHTML(h.String()); err != nil {
		t.Errorf("HTML with hostile strings is not well formed: %v", err)
	}
	var x bytes.Buffer
	if err := Render(&x, FormatJUnit, r, Options{}); err != nil {
		t.Fatal(err)
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
		t.Errorf("JUnit with hostile strings does not parse: %v", err)
	}
	var m bytes.Buffer
	if err := Render(&m, FormatMarkdown, r, Options{}); err != nil {
		t.Fatal(err)
	}
	// Code spans and fences show their text literally; elsewhere HTML
	// metacharacters must be escaped.
	prose := codeRE.ReplaceAllString(m.String(), "")
	if strings.Contains(prose, "<script>") || strings.Contains(prose, "<details><summary><") {
		t.Errorf("Markdown contains raw HTML outside code:\n%s", prose)
	}
}

func TestColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1") // must not override an explicit Options.Color
	r := loadInput(t, "diverged")
	var plain, col bytes.Buffer
	if err := Render(&plain, FormatText, r, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Render(&col, FormatText, r, Options{Color: true}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Bytes(), []byte("\x1b[")) {
		t.Error("plain text contains ANSI escapes")
	}
	if !bytes.Contains(col.Bytes(), []byte("\x1b[")) {
		t.Error("coloured text has no ANSI escapes")
	}
	if !strings.Contains(plain.String(), "^^") {
		t.Error("plain hexdump has no caret line marking differing bytes")
	}
	if AutoColor(&bytes.Buffer{}) {
		t.Error("AutoColor(buffer) = true")
	}
}

func TestWriteAll(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	r := loadInput(t, "diverged")
	paths, err := WriteAll(dir, "report", Formats, r, Options{Color: true})
	if err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	if len(paths) != len(Formats) {
		t.Fatalf("WriteAll wrote %d files, want %d", len(paths), len(Formats))
	}
	for i, p := range paths {
		if want := filepath.Join(dir, "report"+Formats[i].Ext()); p != want {
			t.Errorf("path %q, want %q", p, want)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var direct bytes.Buffer
		if err := Render(&direct, Formats[i], r, Options{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, direct.Bytes()) {
			t.Errorf("%s differs from Render without colour", p)
		}
	}
	if _, err := WriteAll(dir, "x", []Format{"pdf"}, r, Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("WriteAll(pdf) = %v, want ErrUnknownFormat", err)
	}
	if _, err := WriteAll(dir, "../x", Formats, r, Options{}); err == nil {
		t.Error("WriteAll accepted a base name with a path separator")
	}
}

// junitAttrs are the attributes the Jenkins xunit plugin's JUnit schema
// (junit-10) allows on each element lockstep writes.
var junitAttrs = map[string][]string{
	"testsuites": {"name", "time", "tests", "failures", "errors"},
	"testsuite": {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname",
		"id", "package", "file", "log", "url"},
	"testcase":   {"name", "time", "classname", "group"},
	"failure":    {"type", "message"},
	"error":      {"type", "message"},
	"skipped":    {"type", "message"},
	"properties": {},
	"property":   {"name", "value"},
	"system-out": {},
	"system-err": {},
}

// TestJUnitSchema checks every golden JUnit file against what the Jenkins
// xunit JUnit schema allows: known elements, their attributes only, the
// required ones present, and times as plain decimal seconds.
func TestJUnitSchema(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden JUnit files: %v", err)
	}
	required := map[string][]string{"testsuite": {"name", "tests", "failures", "errors"}, "testcase": {"name"},
		"property": {"name", "value"}}
	timeRE := regexp.MustCompile(`^[0-9]*(\.[0-9]*)?$`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			se, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			allowed, known := junitAttrs[se.Name.Local]
			if !known {
				t.Errorf("%s: element <%s> is not in the schema", f, se.Name.Local)
				continue
			}
			have := map[string]bool{}
			for _, a := range se.Attr {
				have[a.Name.Local] = true
				if !slices.Contains(allowed, a.Name.Local) {
					t.Errorf("%s: <%s %s=…> is not allowed", f, se.Name.Local, a.Name.Local)
				}
				if a.Name.Local == "time" && !timeRE.MatchString(a.Value) {
					t.Errorf("%s: <%s time=%q> is not decimal seconds", f, se.Name.Local, a.Value)
				}
			}
			for _, r := range required[se.Name.Local] {
				if !have[r] {
					t.Errorf("%s: <%s> lacks required %s", f, se.Name.Local, r)
				}
			}
		}
	}
}

// TestControlCharacters renders a result whose scenario name, label,
// description and serial output hold terminal escapes: no format but JSON
// writes them raw (issue 14: a name could clear the screen or print a fake
// PASS).
func TestControlCharacters(t *testing.T) {
	t.Parallel()
	r := loadInput(t, "identical")
	r.Scenario = "x\x1b[2J\x1b[HPASS\r"
	r.Description = "line one\nline\x07two"
	r.Sides[0].Label = "good\x1b]0;title\x07"
	r.Sides[1].SerialTail = "boot\x1b[31m ok\x9b"
	r.Notes = append(r.Notes, "only a raw \x9b byte")
	if len(r.Syncs) == 0 {
		t.Fatal("input without sync points")
	}
	// A guest task's comm (prctl PR_SET_NAME, or a corrupted task_struct).
	comm := "evil\n\x1b[2Jnot ok 1\r"
	r.Syncs[0].State[1].Task = &compare.Task{CPU: 0, Comm: comm, PID: 1}
	for _, f := range []Format{FormatText, FormatMarkdown, FormatHTML, FormatJUnit, FormatKTAP} {
		var buf bytes.Buffer
		if err := Render(&buf, f, r, Options{Verbose: true}); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"\x1b", "\x07", "\r", "\x9b", "\u009b"} {
			if strings.Contains(buf.String(), bad) {
				t.Errorf("%s output holds %q", f, bad)
			}
		}
		if !strings.Contains(buf.String(), `\x1b[2J`) {
			t.Errorf("%s output does not show the escaped name", f)
		}
	}
	if r.Scenario != "x\x1b[2J\x1b[HPASS\r" || r.Syncs[0].State[1].Task.Comm != comm {
		t.Error("Render modified its input")
	}
}

// TestMarkdownFitsAComment renders a run with a 64 KiB memory divergence
// at each of 7 sync points (issue 14: 103,023 characters): the report
// stays within a GitHub comment and says where the details are; the same
// differing bytes are shown once.
func TestMarkdownFitsAComment(t *testing.T) {
	t.Parallel()
	r := loadInput(t, "identical")
	r.Syncs, r.Divergences = nil, nil
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	for k := range 7 {
		r.Syncs = append(r.Syncs, lockstep.SyncResult{Index: k, Break: fmt.Sprintf("point%d", k), Hit: 1,
			Status: lockstep.SyncDiverge, Reached: [2]bool{true, true}, Divergences: 1})
		b[k] ^= 0xff // each point's bytes differ a little differently
		md := compare.Memory("buf", "virtual", [2]uint64{0x1000, 0x1000}, a, b, compare.MemOptions{PtrSize: 8})
		r.Divergences = append(r.Divergences, compare.Divergence{Kind: compare.KindMemory, Sync: k,
			SyncName: fmt.Sprintf("point%d", k), Summary: compare.MemorySummary(md), Memory: md})
	}
	r.Outcome, r.Passed = lockstep.OutcomeDiverged, false
	var buf bytes.Buffer
	if err := Render(&buf, FormatMarkdown, r, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCount(buf.Bytes()); n > MarkdownLimit {
		t.Errorf("Markdown of %d characters, want at most %d", n, MarkdownLimit)
	}
	if !strings.Contains(buf.String(), "text, HTML and JSON reports") {
		t.Errorf("the cut report does not say where the details are")
	}
	// Small: the same dump at two points is shown once.
	small := loadInput(t, "identical")
	small.Syncs, small.Divergences = nil, nil
	x, y := make([]byte, 64), make([]byte, 64)
	y[3] = 1
	md := compare.Memory("buf", "virtual", [2]uint64{0x1000, 0x1000}, x, y, compare.MemOptions{PtrSize: 8})
	for k := range 2 {
		small.Syncs = append(small.Syncs, lockstep.SyncResult{Index: k, Break: fmt.Sprintf("p%d", k), Hit: 1,
			Status: lockstep.SyncDiverge, Reached: [2]bool{true, true}, Divergences: 1})
		small.Divergences = append(small.Divergences, compare.Divergence{Kind: compare.KindMemory, Sync: k,
			SyncName: fmt.Sprintf("p%d", k), Summary: compare.MemorySummary(md), Memory: md})
	}
	buf.Reset()
	if err := Render(&buf, FormatMarkdown, small, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "+0000"); n != 1 {
		t.Errorf("the dump appears %d times, want once:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "The same bytes differ as at") {
		t.Errorf("no reference to the dump shown earlier:\n%s", buf.String())
	}
}

// TestKTAP checks every golden KTAP file's structure: the version line,
// plans that match the tests, test numbers in order, and the same outcomes
// as the JUnit file of the same input.
func TestKTAP(t *testing.T) {
	t.Parallel()
	for _, in := range inputs {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", in+".ktap"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if lines[0] != "KTAP version 1" || lines[1] != "1..1" || lines[2] != "  KTAP version 1" {
			t.Errorf("%s: header %q", in, lines[:3])
			continue
		}
		var plan, n, notOK int
		for _, l := range lines[3:] {
			switch {
			case strings.HasPrefix(l, "  1.."):
				plan, _ = strconv.Atoi(strings.TrimPrefix(l, "  1.."))
			case strings.HasPrefix(l, "  ok "), strings.HasPrefix(l, "  not ok "):
				n++
				f := strings.Fields(l)
				num := f[1]
				if f[0] == "not" {
					num, notOK = f[2], notOK+1
				}
				if num != strconv.Itoa(n) {
					t.Errorf("%s: test %s out of order: %q", in, num, l)
				}
			case strings.HasPrefix(l, "  # "), strings.HasPrefix(l, "ok 1 "), strings.HasPrefix(l, "not ok 1 "):
			default:
				t.Errorf("%s: line %q is not KTAP", in, l)
			}
		}
		var doc JUnitSuites
		if err := xml.Unmarshal(mustRead(t, filepath.Join("testdata", "golden", in+".xml")), &doc); err != nil {
			t.Fatal(err)
		}
		s := doc.Suites[0]
		if plan != n || n != s.Tests || notOK != s.Failures+s.Errors {
			t.Errorf("%s: plan %d, %d tests, %d not ok; JUnit %d tests, %d failing", in, plan, n, notOK, s.Tests, s.Failures+s.Errors)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLocalizationMethod: every human-readable format says which method
// localised a sync point, why, and what a replay cost; JSON keeps it.
func TestLocalizationMethod(t *testing.T) {
	t.Parallel()
	r := loadInput(t, "identical")
	if len(r.Syncs) == 0 {
		t.Fatal("input has no sync points")
	}
	r.Syncs[0].Localization = &lockstep.Localization{Method: "replay", Why: "localize.method: replay",
		Depth: 10001989, Probes: 141, Passes: 3, Record: 6 * time.Second, Replay: 9 * time.Second,
		ICount: [2]uint64{18767304, 18767623}}
	for _, f := range []Format{FormatText, FormatMarkdown, FormatHTML, FormatJSON} {
		var b bytes.Buffer
		if err := Render(&b, f, r, Options{}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"replay", "10001989", "141", "18767623"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s report lacks %q", f, want)
			}
		}
	}
}

// TestRedGreenMeanVerdicts checks, in every coloured golden report, that
// red and green mark verdicts only (outcomes, PASS/FAIL, sync statuses),
// never a side: side a is blue and side b magenta, so neither the good
// nor the regressed build reads as an error (issue 14).
func TestRedGreenMeanVerdicts(t *testing.T) {
	t.Parallel()
	verdicts := map[string]bool{"IDENTICAL": true, "DIVERGED": true, "ERROR": true, "PASS": true, "FAIL": true,
		"match": true, "diverge": true, "noise": true, "unreached": true, "skipped": true, "error": true,
		"INCOMPLETE": true, "incomplete": true}
	redGreen := regexp.MustCompile("\x1b\\[(?:3[12];1|1;3[12]|3[12])m([^\x1b]*)")
	sides := regexp.MustCompile("\x1b\\[(?:3[45]|3[45];1|1;3[45])m")
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.color.txt"))
	if len(files) == 0 {
		t.Fatal("no coloured golden reports")
	}
	for _, f := range files {
		data := string(mustRead(t, f))
		for _, m := range redGreen.FindAllStringSubmatch(data, -1) {
			if !verdicts[strings.TrimSpace(m[1])] {
				t.Errorf("%s: %q is red or green but is not a verdict", f, m[1])
			}
		}
		if strings.Contains(f, "diverged") && !sides.MatchString(data) {
			t.Errorf("%s: no blue or magenta side colour", f)
		}
	}
}

// TestJUnitCasesTimesBodies checks three JUnit points of issue 14: the
// cases do not depend on expect (a verdict case either way), the case
// times add up to at most the suite's (the verdict case takes none), and a
// failure body holds the register table and the hexdump.
func TestJUnitCasesTimesBodies(t *testing.T) {
	t.Parallel()
	decode := func(r *lockstep.Result) JUnitSuite {
		t.Helper()
		var buf bytes.Buffer
		if err := Render(&buf, FormatJUnit, r, Options{}); err != nil {
			t.Fatal(err)
		}
		var doc JUnitSuites
		if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Suites) != 1 {
			t.Fatalf("JUnit: %v, %d suites", err, len(doc.Suites))
		}
		return doc.Suites[0]
	}
	secs := func(s string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("time %q: %v", s, err)
		}
		return v
	}
	for _, in := range inputs {
		r := loadInput(t, in)
		s := decode(r)
		var sum float64
		for _, c := range s.Cases {
			sum += secs(c.Time)
			if strings.HasPrefix(c.Name, "expect: ") && secs(c.Time) != 0 {
				t.Errorf("%s: verdict case %q takes %s s, want 0", in, c.Name, c.Time)
			}
		}
		if sum > secs(s.Time)+0.0015*float64(len(s.Cases)) {
			t.Errorf("%s: case times add up to %.3f s, over the suite's %s s", in, sum, s.Time)
		}
		flipped := loadInput(t, in)
		flipped.Expect = map[string]string{"identical": "diverge", "diverge": "identical"}[r.Expect]
		if f := decode(flipped); len(f.Cases) != len(s.Cases) {
			t.Errorf("%s: %d cases with expect %s, %d with %s", in, len(s.Cases), r.Expect, len(f.Cases), flipped.Expect)
		}
	}
	s := decode(loadInput(t, "diverged"))
	for _, c := range s.Cases {
		if c.Name != "sync 2: checksum (hit 3)" {
			continue
		}
		if c.Failure == nil {
			t.Fatalf("case %q has no failure", c.Name)
		}
		for _, w := range []string{"register  a", "rax       0x000000000000002a  0x000000000000002b", "+0010  a  2a 00", "^^"} {
			if !strings.Contains(c.Failure.Text, w) {
				t.Errorf("failure body lacks %q:\n%s", w, c.Failure.Text)
			}
		}
		return
	}
	t.Error("no case for sync 2")
}
