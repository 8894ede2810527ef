package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep-dev/lockstep/scenario"
)

// File is a decoded suite file.
type File struct {
	// Path is the file as given; Dir is its absolute directory, against
	// which scenario paths and templates resolve.
	Path string
	Dir  string
	Name string
	// Scenarios are files, directories or globs, relative to Dir.
	Scenarios []string
	// Optional are scenarios like Scenarios that are skipped, not
	// failed, where this machine cannot run them (see Entry.Optional).
	Optional []string
	Matrix   []Matrix
}

// Matrix expands one template scenario over guest fields. Every
// combination of the listed values becomes one scenario.
type Matrix struct {
	// Template is the scenario file expanded, relative to the suite file.
	Template string
	// Name is the expanded scenario's name with {field} placeholders; the
	// default is the template's name followed by each value.
	Name string
	// Side is the guest the values go to: "a", "b" or "both" (default).
	Side string
	// Axes are the fields and their values, in MatrixFields order.
	Axes []Axis
	// Optional marks the expanded scenarios optional (Entry.Optional).
	Optional bool
	Pos      scenario.Position
}

// Axis is one matrix field and its values.
type Axis struct {
	Field  string
	Values []string
}

// MatrixFields are the guest fields a matrix can vary, in expansion order.
var MatrixFields = []string{"kernel", "cpu", "accel", "qemu", "machine"}

// ErrSuite marks a problem in a suite file or in the scenario list.
var ErrSuite = errors.New("suite")

// LoadFile reads and strictly decodes the suite file at path. Every
// problem is reported at once, as scenario.Errors with file:line:col.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load suite: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile decodes a suite file; path names it in messages and relative
// paths resolve against its directory.
func ParseFile(path string, data []byte) (*File, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("load suite: %w", err)
	}
	f := &File{Path: path, Dir: dir}
	var errs scenario.Errors
	add := func(n *yaml.Node, format string, a ...any) {
		pos := scenario.Position{File: path, Line: 1}
		if n != nil {
			pos.Line, pos.Col = n.Line, n.Column
		}
		errs = append(errs, &scenario.Error{Pos: pos, Msg: fmt.Sprintf(format, a...)})
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			add(nil, "empty suite")
		} else {
			add(nil, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, errs
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		add(root, "a suite is a mapping with name, scenarios and matrix")
		return nil, errs
	}
	for k, v := range pairs(root) {
		switch k.Value {
		case "name":
			f.Name = scalar(v, add)
		case "scenarios":
			f.Scenarios = strings1(v, add)
		case "optional":
			f.Optional = strings1(v, add)
		case "matrix":
			if v.Kind != yaml.SequenceNode {
				add(v, "matrix is a list of {template, name, side, kernel, cpu, accel, qemu, machine}")
				continue
			}
			for _, m := range v.Content {
				f.Matrix = append(f.Matrix, parseMatrix(path, m, add))
			}
		default:
			add(k, "unknown key %q (valid: name, scenarios, optional, matrix)", k.Value)
		}
	}
	if f.Name == "" {
		add(root, "name is required")
	}
	if len(f.Scenarios) == 0 && len(f.Optional) == 0 && len(f.Matrix) == 0 {
		add(root, "a suite needs scenarios or a matrix")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

func parseMatrix(path string, n *yaml.Node, add func(*yaml.Node, string, ...any)) Matrix {
	m := Matrix{Side: "both", Pos: scenario.Position{File: path, Line: n.Line, Col: n.Column}}
	if n.Kind != yaml.MappingNode {
		add(n, "a matrix entry is a mapping")
		return m
	}
	axes := map[string][]string{}
	for k, v := range pairs(n) {
		switch {
		case k.Value == "template":
			m.Template = scalar(v, add)
		case k.Value == "name":
			m.Name = scalar(v, add)
		case k.Value == "optional":
			switch b := scalar(v, add); b {
			case "true", "false":
				m.Optional = b == "true"
			default:
				add(v, "optional must be true or false, not %q", b)
			}
		case k.Value == "side":
			m.Side = scalar(v, add)
			if !slices.Contains([]string{"a", "b", "both"}, m.Side) {
				add(v, "side must be a, b or both, not %q", m.Side)
			}
		case slices.Contains(MatrixFields, k.Value):
			vals := strings1(v, add)
			if len(vals) == 0 {
				add(v, "%s: at least one value", k.Value)
			}
			axes[k.Value] = vals
		default:
			add(k, "unknown key %q in matrix (valid: template, name, side, optional, %s)", k.Value, strings.Join(MatrixFields, ", "))
		}
	}
	if m.Template == "" {
		add(n, "matrix: template is required")
	}
	for _, fld := range MatrixFields {
		if vals, ok := axes[fld]; ok {
			m.Axes = append(m.Axes, Axis{fld, vals})
		}
	}
	if len(m.Axes) == 0 {
		add(n, "matrix: no axis (give one of %s)", strings.Join(MatrixFields, ", "))
	}
	return m
}

// pairs yields the keys and values of a mapping node.
func pairs(n *yaml.Node) func(func(k, v *yaml.Node) bool) {
	return func(yield func(k, v *yaml.Node) bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !yield(n.Content[i], n.Content[i+1]) {
				return
			}
		}
	}
}

func scalar(n *yaml.Node, add func(*yaml.Node, string, ...any)) string {
	if n.Kind != yaml.ScalarNode {
		add(n, "expected a string")
		return ""
	}
	return n.Value
}

// strings1 decodes a string or a list of strings.
func strings1(n *yaml.Node, add func(*yaml.Node, string, ...any)) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		add(n, "expected a list of strings")
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s := scalar(c, add); s != "" {
			out = append(out, s)
		}
	}
	return out
}
