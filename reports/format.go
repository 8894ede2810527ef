package reports

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// Format names a report format.
type Format string

// The report formats. FormatText is the default.
const (
	FormatText     Format = "text"
	FormatJSON     Format = "json"
	FormatJUnit    Format = "junit"
	FormatHTML     Format = "html"
	FormatMarkdown Format = "md"
	// FormatKTAP is KTAP version 1, for kernel test infrastructure.
	FormatKTAP Format = "ktap"
)

// Formats lists every format in the order they are documented.
var Formats = []Format{FormatText, FormatJSON, FormatJUnit, FormatHTML, FormatMarkdown, FormatKTAP}

// Errors returned by this package, matched with errors.Is.
var (
	// ErrUnknownFormat is returned for a format name that is not one of Formats.
	ErrUnknownFormat = errors.New("unknown report format")
	// ErrSchema is returned by ReadJSON for a document whose schema is not
	// lockstep.SchemaVersion.
	ErrSchema = errors.New("unsupported result schema")
	// ErrNilResult is returned when a nil Result is rendered.
	ErrNilResult = errors.New("nil result")
)

// Options tune the human-readable renderers. JSON ignores them.
type Options struct {
	// Color enables ANSI colour in the text format. The caller decides, for
	// example with AutoColor; the renderer never looks at the terminal.
	Color bool
	// Verbose adds noise divergences in full, command lines, serial output,
	// per-sync durations and call-path frames.
	Verbose bool
}

// ParseFormats parses a comma-separated list such as "text,json,junit".
// Blank entries are ignored and duplicates are dropped; an empty list is an
// error, as is any unknown name (the error lists the valid ones).
func ParseFormats(list string) ([]Format, error) {
	var out []Format
	seen := map[Format]bool{}
	var bad []string
	for _, p := range strings.Split(list, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		f := Format(p)
		if p == "markdown" {
			f = FormatMarkdown
		}
		if !f.valid() {
			bad = append(bad, fmt.Sprintf("%q", p))
			continue
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("parse formats: %w %s (valid: %s)", ErrUnknownFormat, strings.Join(bad, ", "), validList())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parse formats: %w: empty list (valid: %s)", ErrUnknownFormat, validList())
	}
	return out, nil
}

func validList() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

func (f Format) valid() bool {
	return slices.Contains(Formats, f)
}

// Ext returns the file extension for the format, with the dot: ".txt",
// ".json", ".xml", ".html" or ".md". It returns "" for an unknown format.
func (f Format) Ext() string {
	switch f {
	case FormatText:
		return ".txt"
	case FormatJSON:
		return ".json"
	case FormatJUnit:
		return ".xml"
	case FormatHTML:
		return ".html"
	case FormatMarkdown:
		return ".md"
	case FormatKTAP:
		return ".ktap"
	}
	return ""
}

// String returns the format's name.
func (f Format) String() string { return string(f) }

// Render writes r to w in format f.
func Render(w io.Writer, f Format, r *lockstep.Result, opt Options) error {
	if r == nil {
		return fmt.Errorf("render %s: %w", f, ErrNilResult)
	}
	if f != FormatJSON {
		// JSON escapes control characters itself, and keeps the data as is.
		r = sanitized(r)
	}
	var err error
	switch f {
	case FormatText:
		err = renderText(w, r, opt)
	case FormatJSON:
		err = renderJSON(w, r)
	case FormatJUnit:
		err = renderJUnit(w, r, opt)
	case FormatHTML:
		err = renderHTML(w, r, opt)
	case FormatMarkdown:
		err = renderMarkdown(w, r, opt)
	case FormatKTAP:
		err = renderKTAP(w, r, opt)
	default:
		return fmt.Errorf("render: %w %q (valid: %s)", ErrUnknownFormat, string(f), validList())
	}
	if err != nil {
		return fmt.Errorf("render %s: %w", f, err)
	}
	return nil
}

// WriteAll renders r once per format into dir/base+f.Ext() and returns the
// paths written, in the order of fs. The directory is created if missing.
// Colour is never written to files: opt.Color is ignored here.
func WriteAll(dir string, base string, fs []Format, r *lockstep.Result, opt Options) ([]string, error) {
	if base == "" || strings.ContainsAny(base, `/\`) {
		return nil, fmt.Errorf("write reports: invalid base name %q", base)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write reports: %w", err)
	}
	opt.Color = false
	var paths []string
	for _, f := range fs {
		if !f.valid() {
			return paths, fmt.Errorf("write reports: %w %q (valid: %s)", ErrUnknownFormat, string(f), validList())
		}
		p := filepath.Join(dir, base+f.Ext())
		if err := writeFile(p, f, r, opt); err != nil {
			return paths, fmt.Errorf("write reports: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeFile(path string, f Format, r *lockstep.Result, opt Options) (err error) {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := fh.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	return Render(fh, f, r, opt)
}
