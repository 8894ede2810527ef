package suite

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep-dev/lockstep/scenario"
)

// Expanded is one scenario of a matrix: its name and the scenario YAML,
// with every path made absolute so that it runs from anywhere.
type Expanded struct {
	Name string
	YAML []byte
}

// pathFields are the guest keys holding file paths.
var pathFields = []string{"kernel", "initrd", "bios", "symbols"}

// Expand expands m, whose paths are relative to dir, into one scenario per
// combination of its axes, in order (the last axis varies fastest).
func Expand(dir string, m Matrix) ([]Expanded, error) {
	tpath := abs(dir, m.Template)
	data, err := os.ReadFile(tpath)
	if err != nil {
		return nil, fmt.Errorf("%s: matrix template: %w", m.Pos, err)
	}
	var out []Expanded
	for _, combo := range combinations(m.Axes) {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: matrix template %s: not a scenario mapping", m.Pos, m.Template)
		}
		root := doc.Content[0]
		guests := child(root, "guests")
		tdir := filepath.Dir(tpath)
		for _, side := range []string{"defaults", "a", "b"} {
			absolutize(child(guests, side), tdir)
		}
		base := scalarValue(root, "name")
		name := expandName(m.Name, base, m.Axes, combo)
		set(root, "name", name)
		sides := []string{"a", "b"}
		if m.Side != "both" {
			sides = []string{m.Side}
		}
		for i, ax := range m.Axes {
			v := combo[i]
			if ax.Field == "kernel" || (ax.Field == "qemu" && strings.Contains(v, "/")) {
				v = abs(dir, v)
			}
			for _, s := range sides {
				set(child(guests, s), ax.Field, v)
			}
		}
		b, err := yaml.Marshal(root)
		if err != nil {
			return nil, fmt.Errorf("%s: expand %s: %w", m.Pos, name, err)
		}
		hdr := fmt.Sprintf("# Expanded by lockstep suite from %s (%s).\n", m.Template, m.Pos)
		out = append(out, Expanded{Name: name, YAML: append([]byte(hdr), b...)})
	}
	return out, nil
}

// combinations is the cartesian product of the axes' values.
func combinations(axes []Axis) [][]string {
	out := [][]string{nil}
	for _, ax := range axes {
		var next [][]string
		for _, prefix := range out {
			for _, v := range ax.Values {
				next = append(next, append(append([]string(nil), prefix...), v))
			}
		}
		out = next
	}
	return out
}

// expandName fills {field} placeholders, or appends each value to base.
func expandName(pattern, base string, axes []Axis, combo []string) string {
	if pattern == "" {
		parts := []string{base}
		for _, v := range combo {
			parts = append(parts, nameOf(v))
		}
		return strings.Join(parts, "-")
	}
	s := strings.ReplaceAll(pattern, "{name}", base)
	for i, ax := range axes {
		s = strings.ReplaceAll(s, "{"+ax.Field+"}", nameOf(combo[i]))
	}
	return s
}

// nameOf turns a value into a name fragment: a path's base name without
// its extension, with anything but letters, digits, '.', '_' and '-'
// replaced by '-'.
func nameOf(v string) string {
	if strings.Contains(v, "/") {
		v = strings.TrimSuffix(filepath.Base(v), filepath.Ext(v))
	}
	return sanitize(v)
}

func sanitize(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, v)
}

// abs resolves p against dir, unless it is absolute or starts with an
// environment variable ("${HOME}/..."), which the scenario's parser
// expands.
func abs(dir, p string) string {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "$") {
		return p
	}
	return filepath.Join(dir, p)
}

// child returns the mapping under key in n, creating it when missing.
func child(n *yaml.Node, key string) *yaml.Node {
	for k, v := range pairs(n) {
		if k.Value == key {
			return v
		}
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

func scalarValue(n *yaml.Node, key string) string {
	for k, v := range pairs(n) {
		if k.Value == key {
			return v.Value
		}
	}
	return ""
}

// set sets key to the string v in the mapping n.
func set(n *yaml.Node, key, v string) {
	for k, val := range pairs(n) {
		if k.Value == key {
			*val = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
}

// absolutize makes the path fields of a guest mapping absolute.
func absolutize(g *yaml.Node, dir string) {
	for k, v := range pairs(g) {
		switch {
		case slices.Contains(pathFields, k.Value) && v.Kind == yaml.ScalarNode && v.Value != "":
			v.Value = abs(dir, v.Value)
		case k.Value == "qemu" && strings.Contains(v.Value, "/"):
			v.Value = abs(dir, v.Value)
		case k.Value == "drives" && v.Kind == yaml.SequenceNode:
			for _, d := range v.Content {
				if d.Kind == yaml.MappingNode {
					for dk, dv := range pairs(d) {
						if dk.Value == "file" && dv.Value != "" {
							dv.Value = abs(dir, dv.Value)
						}
					}
				}
			}
		}
	}
}

// Scenario parses an expanded scenario. file is where it would live.
func (e Expanded) Scenario(file string) (*scenario.Scenario, error) {
	return scenario.Parse(file, e.YAML)
}
