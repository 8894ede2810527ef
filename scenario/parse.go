package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds the size of a scenario file.
const MaxFileSize = 1 << 20

// Load reads, decodes and validates the scenario file at path. Problems in
// the file are returned as Errors; a file that cannot be read is a wrapped
// os error.
func Load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a scenario. file names the scenario in
// messages, and relative paths in it resolve against file's directory.
// Every problem is reported, as Errors.
func Parse(file string, data []byte) (*Scenario, error) {
	return parse(file, data, os.LookupEnv)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses exactly one YAML document into a node tree.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	var errs errorList
	if len(data) > MaxFileSize {
		errs.addf(Position{File: file, Line: 1}, "file too large: more than %d bytes", MaxFileSize)
		return nil, errs.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.addf(Position{File: file, Line: 1}, "empty scenario")
			return nil, errs.err()
		}
		errs.errs = append(errs.errs, flowVarHint(yamlError(file, err), data))
		return nil, errs.err()
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		errs.addf(Position{File: file, Line: extra.Line, Col: extra.Column}, "more than one YAML document")
		return nil, errs.err()
	case !errors.Is(err, io.EOF):
		errs.errs = append(errs.errs, yamlError(file, err))
		return nil, errs.err()
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		errs.addf(Position{File: file, Line: 1}, "empty scenario")
		return nil, errs.err()
	}
	return doc.Content[0], nil
}

// yamlError turns a yaml syntax error ("yaml: line N: msg") into an Error.
func yamlError(file string, err error) *Error {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, convErr := strconv.Atoi(m[1])
		if convErr == nil {
			return &Error{Pos: Position{File: file, Line: line}, Msg: "yaml: " + m[2]}
		}
	}
	return &Error{Pos: Position{File: file, Line: 1}, Msg: err.Error()}
}

// flowVarHint adds a hint to a YAML error that a flow mapping or sequence
// ({...} or [...]) did not end when the lines from the error on hold an
// unquoted ${VAR}: inside a flow collection its braces end or open one, so
// YAML reports only "did not find expected ',' or '}'".
func flowVarHint(e *Error, data []byte) *Error {
	if !strings.Contains(e.Msg, "did not find expected ',' or") {
		return e
	}
	lines := strings.Split(string(data), "\n")
	for n := max(e.Pos.Line, 1); n <= len(lines); n++ {
		if v, ok := unquotedVar(lines[n-1]); ok {
			e.Msg += fmt.Sprintf(" (line %d: %s inside { } or [ ] must be quoted, e.g. \"%s\")", n, v, v)
			return e
		}
	}
	return e
}

// unquotedVar returns the first ${...} of line that is outside quotes.
func unquotedVar(line string) (string, bool) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' '):
			return "", false
		case strings.HasPrefix(line[i:], "${"):
			if end := strings.IndexByte(line[i:], '}'); end > 0 {
				return line[i : i+end+1], true
			}
			return line[i:], true
		}
	}
	return "", false
}

func parse(file string, data []byte, lookup func(string) (string, bool)) (*Scenario, error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	var errs errorList
	d := &decoder{file: file, errs: &errs, pos: map[string]Position{}, lookup: lookup}
	s := &Scenario{File: file, Dir: dir, Pos: d.pos}
	b := &builder{d: d, s: s}
	b.decode(root)
	b.finish(root)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}
