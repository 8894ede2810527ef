package reports

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// htmlElem is one element of a rendered page with the chain of its
// ancestors, for the structural checks below.
type htmlElem struct {
	name    string
	attrs   map[string]string
	parents []*htmlElem // outermost first
}

func (e *htmlElem) class(c string) bool {
	for _, f := range strings.Fields(e.attrs["class"]) {
		if f == c {
			return true
		}
	}
	return false
}

// parseHTMLElems lists every element of doc in document order.
func parseHTMLElems(t *testing.T, doc string) []*htmlElem {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(strings.TrimPrefix(doc, "<!DOCTYPE html>")))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var all, stack []*htmlElem
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &htmlElem{name: strings.ToLower(tok.Name.Local), attrs: map[string]string{}, parents: append([]*htmlElem(nil), stack...)}
			for _, a := range tok.Attr {
				e.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			all = append(all, e)
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return all
}

// cssRule returns the declarations of the first rule whose selector is sel
// inside css (one level deep, as html.tmpl writes them).
func cssRule(css, sel string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(sel) + `\s*\{([^}]*)\}`).FindStringSubmatch(css)
	if m == nil {
		return ""
	}
	return m[1]
}

// mediaBlock returns the body of the @media block whose condition is cond.
func mediaBlock(css, cond string) string {
	i := strings.Index(css, "@media "+cond)
	if i < 0 {
		return ""
	}
	body := css[i:]
	open := strings.Index(body, "{")
	depth := 0
	for j := open; j < len(body); j++ {
		switch body[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return body[open+1 : j]
			}
		}
	}
	return ""
}

func renderHTMLString(t *testing.T, r *lockstep.Result, opt Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, FormatHTML, r, opt); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHTMLDarkAndNarrow checks the page's CSS: a dark scheme that redefines
// the colours (side colours stay blue and magenta, verdict colours are
// separate variables), long values that wrap, and a narrow layout.
func TestHTMLDarkAndNarrow(t *testing.T) {
	t.Parallel()
	doc := renderHTMLString(t, loadInput(t, "diverged"), Options{})
	css := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(doc)
	if css == nil {
		t.Fatal("no <style>")
	}
	dark := mediaBlock(css[1], "(prefers-color-scheme: dark)")
	if dark == "" {
		t.Fatal("no @media (prefers-color-scheme: dark) block")
	}
	for _, v := range []string{"--a:", "--b:", "--abg:", "--bbg:", "--ca:", "--cb:", "--fg:", "--bg:", "--card:", "--line:", "--mut:", "--th:", "--pre:", "--ok:", "--bad:"} {
		if !strings.Contains(dark, v) {
			t.Errorf("dark scheme does not override %s", v)
		}
	}
	if !strings.Contains(css[1], "color-scheme: light dark") {
		t.Error("the page does not declare color-scheme: light dark")
	}
	// Outside the variables, no rule may hard-code a light background
	// that the dark scheme cannot reach; only the verdict badges (white
	// text on a strong colour) may.
	rest := strings.Replace(css[1], dark, "", 1)
	rest = regexp.MustCompile(`(?s):root\s*\{.*?\}`).ReplaceAllString(rest, "")
	for _, line := range strings.Split(rest, "\n") {
		if regexp.MustCompile(`background:\s*#`).MatchString(line) && !strings.Contains(line, ".badge") {
			t.Errorf("hard-coded background outside the colour variables: %s", strings.TrimSpace(line))
		}
	}
	// Side colours must be different from the verdict colours in both schemes.
	for _, block := range []string{css[1], dark} {
		root := regexp.MustCompile(`(?s):root\s*\{(.*?)\}`).FindStringSubmatch(block)
		if root == nil {
			t.Fatal("no :root variables")
		}
		vars := map[string]string{}
		for _, m := range regexp.MustCompile(`(--[a-z]+):\s*([^;]+);`).FindAllStringSubmatch(root[1], -1) {
			vars[m[1]] = m[2]
		}
		for _, side := range []string{"--a", "--b"} {
			for _, verdict := range []string{"--ok", "--bad"} {
				if vars[side] == "" || vars[side] == vars[verdict] {
					t.Errorf("side colour %s (%q) is empty or equals verdict colour %s", side, vars[side], verdict)
				}
			}
		}
	}
	narrow := mediaBlock(css[1], "(max-width:")
	if narrow == "" {
		t.Fatal("no max-width media query for narrow screens")
	}
	for _, sel := range []string{".scroll", "pre"} {
		if !strings.Contains(cssRule(css[1], sel), "overflow-x:auto") {
			t.Errorf("%s does not scroll horizontally (overflow-x:auto)", sel)
		}
	}
	for _, sel := range []string{".first", ".kv td"} {
		if !strings.Contains(cssRule(css[1], sel), "overflow-wrap:anywhere") {
			t.Errorf("%s does not wrap long values (overflow-wrap:anywhere)", sel)
		}
	}
}

// TestHTMLStructure checks every golden input, plain and verbose: every
// table sits in a scrollable container, every sync section and divergence
// is a <details>, and only the first divergent sync section is open.
func TestHTMLStructure(t *testing.T) {
	t.Parallel()
	for _, name := range inputs {
		for _, verbose := range []bool{false, true} {
			r := loadInput(t, name)
			elems := parseHTMLElems(t, renderHTMLString(t, r, Options{Verbose: verbose}))
			var syncs []*htmlElem
			for _, e := range elems {
				switch {
				case e.name == "section":
					t.Errorf("%s: a <section> left (sync sections are <details>)", name)
				case e.name == "table":
					if p := e.parents[len(e.parents)-1]; !p.class("scroll") {
						t.Errorf("%s: a <table class=%q> is not in a scrollable container (parent <%s class=%q>)", name, e.attrs["class"], p.name, p.attrs["class"])
					}
				case e.name == "pre":
					// pre scrolls by itself (checked in the CSS); it must not
					// sit in a table that is not in a scroll container.
					for _, p := range e.parents {
						if p.name == "table" && !p.parents[len(p.parents)-1].class("scroll") {
							t.Errorf("%s: a <pre> in a table outside a scroll container", name)
						}
					}
				case e.class("sync"):
					if e.name != "details" {
						t.Errorf("%s: sync section %q is a <%s>, want <details>", name, e.attrs["id"], e.name)
					}
					syncs = append(syncs, e)
				case e.class("div"):
					if e.name != "details" {
						t.Errorf("%s: divergence %q is a <%s>, want <details>", name, e.attrs["id"], e.name)
					}
					if _, open := e.attrs["open"]; open {
						if _, po := e.parents[len(e.parents)-1].attrs["open"]; !po {
							t.Errorf("%s: divergence %q is open inside a closed section", name, e.attrs["id"])
						}
					}
				}
			}
			// Every sync point with something to show has its section.
			ids := map[string]*htmlElem{}
			for _, e := range syncs {
				ids[e.attrs["id"]] = e
			}
			firstDivergent := ""
			for _, e := range syncs {
				if e.attrs["id"] != "other" && firstDivergent == "" && hasDivergedPill(e, elems) {
					firstDivergent = e.attrs["id"]
				}
			}
			if firstDivergent == "" && ids["other"] != nil {
				firstDivergent = "other"
			}
			for _, e := range syncs {
				_, open := e.attrs["open"]
				if want := e.attrs["id"] == firstDivergent; open != want {
					t.Errorf("%s (verbose %v): section %q open=%v, want %v (first divergent: %q)", name, verbose, e.attrs["id"], open, want, firstDivergent)
				}
			}
			if name == "diverged" {
				if firstDivergent != "sync1" {
					t.Errorf("diverged: first divergent section is %q, want sync1 (sync 2: checksum)", firstDivergent)
				}
				if len(syncs) < 3 {
					t.Errorf("diverged: %d sync sections, want at least 3", len(syncs))
				}
			}
		}
	}
}

// hasDivergedPill reports whether the summary heading of sync section s
// carries a "diverged" status pill or s holds a divergence that is not noise.
func hasDivergedPill(s *htmlElem, elems []*htmlElem) bool {
	for _, e := range elems {
		if len(e.parents) == 0 {
			continue
		}
		inS := false
		for _, p := range e.parents {
			inS = inS || p == s
		}
		if !inS {
			continue
		}
		if e.class("pill") && e.class("diverged") && e.parents[len(e.parents)-1].name == "h3" {
			if sum := e.parents[len(e.parents)-2]; sum.name == "summary" && sum.parents[len(sum.parents)-1] == s {
				return true
			}
		}
		if e.class("div") && !e.class("noise") && e.parents[len(e.parents)-1] == s {
			return true
		}
	}
	return false
}
