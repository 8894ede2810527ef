package scenario

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AddNoise merges n into the noise section of the scenario file at path and
// rewrites the file, keeping the other keys, their order and comments.
// Entries already present are kept; new registers and call-path functions
// are appended; a memory entry for the same symbol (or address) gains the
// new offsets, or becomes the whole symbol when either side has no offsets.
// comment, when not empty, becomes the comment above the noise key. The
// file is replaced atomically; blank lines are not preserved (a limit of
// the YAML encoder).
func AddNoise(path string, n Noise, comment string) error {
	if err := validateNoise(n); err != nil {
		return fmt.Errorf("add noise: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("add noise: %w", err)
	}
	root, err := parseYAML(path, data)
	if err != nil {
		return fmt.Errorf("add noise: %w", err)
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("add noise: %s: top level is not a mapping", path)
	}
	key, val := mapGet(root, "noise")
	if key == nil {
		key = scalar("noise")
		val = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, key, val)
	} else if isNull(val) {
		*val = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", LineComment: val.LineComment}
	} else if val.Kind != yaml.MappingNode {
		return fmt.Errorf("add noise: %s:%d:%d: noise is not a mapping", path, val.Line, val.Column)
	}
	if comment != "" {
		key.HeadComment = comment
	}
	if err := mergeNoiseNode(val, n); err != nil {
		return fmt.Errorf("add noise: %s: %w", path, err)
	}

	out, err := encodeYAML(root)
	if err != nil {
		return fmt.Errorf("add noise: encode: %w", err)
	}
	if err := checkNoiseSection(path, out); err != nil {
		return fmt.Errorf("add noise: result does not decode: %w", err)
	}
	return writeAtomic(path, out)
}

// NoiseYAML renders n as a scenario's noise section, a mapping with the
// single key "noise", laid out as AddNoise writes it. It does not validate
// n; names that YAML would misread are quoted.
func NoiseYAML(n Noise) ([]byte, error) {
	val := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if err := mergeNoiseNode(val, n); err != nil {
		return nil, fmt.Errorf("noise yaml: %w", err)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalar("noise"), val}}
	out, err := encodeYAML(root)
	if err != nil {
		return nil, fmt.Errorf("noise yaml: encode: %w", err)
	}
	return out, nil
}

// encodeYAML encodes the document with root as its top node, with the
// two-space indent of scenario files.
func encodeYAML(root *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(rootDoc(root)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validateNoise checks n with the same rules as a scenario's noise section.
func validateNoise(n Noise) error {
	var msgs []string
	for _, r := range n.Registers {
		if m := validRegBit(r); m != "" {
			msgs = append(msgs, "registers: "+m)
		}
	}
	for _, f := range n.CallPath {
		if m := validFunction(f); m != "" {
			msgs = append(msgs, "callpath: "+m)
		}
	}
	for _, m := range n.Memory {
		switch {
		case m.Symbol != "" && m.HasAddress:
			msgs = append(msgs, "memory: symbol and address are mutually exclusive")
		case m.Symbol == "" && !m.HasAddress:
			msgs = append(msgs, "memory: needs a symbol or an address")
		case m.Symbol != "" && !isSymbol(m.Symbol):
			msgs = append(msgs, "memory: "+quote(m.Symbol)+" is not a symbol name")
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("invalid noise: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// checkNoiseSection re-parses rewritten data and decodes its noise section.
func checkNoiseSection(file string, data []byte) error {
	root, err := parseYAML(file, data)
	if err != nil {
		return err
	}
	var errs errorList
	d := &decoder{file: file, errs: &errs, pos: map[string]Position{},
		lookup: func(string) (string, bool) { return "", true }}
	if _, v := mapGet(root, "noise"); v != nil {
		decodeNoise(d, "noise", v)
	}
	return errs.err()
}

func rootDoc(root *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
}

// writeAtomic replaces path with data, keeping its permissions.
func writeAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("add noise: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("add noise: write: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("add noise: chmod: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("add noise: write: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("add noise: %w", err)
	}
	return nil
}

// mapGet returns the key and value nodes of name in mapping m, or nils.
func mapGet(m *yaml.Node, name string) (key, val *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name {
			return k, m.Content[i+1]
		}
	}
	return nil, nil
}

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intScalar(v uint64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v, 10)}
}

func flowSeq() *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
}

// listField returns the sequence under name in m, creating a list if the
// key is missing or null: a flow list of scalars, or a block list when
// block is set.
func listField(m *yaml.Node, name string, block bool) (*yaml.Node, error) {
	k, v := mapGet(m, name)
	fresh := flowSeq()
	if block {
		fresh.Style = 0
	}
	switch {
	case k == nil:
		v = fresh
		m.Content = append(m.Content, scalar(name), v)
	case isNull(v):
		*v = *fresh
	case v.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("%d:%d: noise.%s is not a list", v.Line, v.Column, name)
	}
	return v, nil
}

// appendStrings appends the values of add missing from seq.
func appendStrings(seq *yaml.Node, add []string) {
	have := map[string]bool{}
	for _, c := range seq.Content {
		have[c.Value] = true
	}
	for _, s := range add {
		if !have[s] {
			have[s] = true
			seq.Content = append(seq.Content, scalar(s))
		}
	}
}

func mergeNoiseNode(val *yaml.Node, n Noise) error {
	if len(n.Registers) > 0 {
		seq, err := listField(val, "registers", false)
		if err != nil {
			return err
		}
		appendStrings(seq, n.Registers)
	}
	if len(n.Memory) > 0 {
		seq, err := listField(val, "memory", true)
		if err != nil {
			return err
		}
		for _, m := range n.Memory {
			if err := mergeNoiseMemory(seq, m); err != nil {
				return err
			}
		}
	}
	if len(n.CallPath) > 0 {
		seq, err := listField(val, "callpath", false)
		if err != nil {
			return err
		}
		appendStrings(seq, n.CallPath)
	}
	return nil
}

// sameNoiseTarget reports whether the memory entry node e names m's symbol
// or address.
func sameNoiseTarget(e *yaml.Node, m NoiseMemory) bool {
	if e.Kind != yaml.MappingNode {
		return false
	}
	if m.Symbol != "" {
		_, v := mapGet(e, "symbol")
		return v != nil && v.Value == m.Symbol
	}
	_, v := mapGet(e, "address")
	if v == nil {
		return false
	}
	a, err := strconv.ParseUint(strings.TrimSpace(v.Value), 0, 64)
	return err == nil && a == m.Address
}

func mergeNoiseMemory(seq *yaml.Node, m NoiseMemory) error {
	for _, e := range seq.Content {
		if !sameNoiseTarget(e, m) {
			continue
		}
		k, offs := mapGet(e, "offsets")
		if k == nil || isNull(offs) {
			return nil // already the whole symbol
		}
		if len(m.Offsets) == 0 { // now the whole symbol
			for i := 0; i+1 < len(e.Content); i += 2 {
				if e.Content[i] == k {
					e.Content = append(e.Content[:i], e.Content[i+2:]...)
					break
				}
			}
			return nil
		}
		if offs.Kind != yaml.SequenceNode {
			return fmt.Errorf("%d:%d: noise memory offsets is not a list", offs.Line, offs.Column)
		}
		set := map[uint64]bool{}
		for _, c := range offs.Content {
			v, err := strconv.ParseUint(strings.TrimSpace(c.Value), 0, 64)
			if err != nil {
				return fmt.Errorf("%d:%d: bad offset %q", c.Line, c.Column, c.Value)
			}
			set[v] = true
		}
		for _, o := range m.Offsets {
			set[o] = true
		}
		offs.Content = offs.Content[:0]
		for _, o := range slices.Sorted(maps.Keys(set)) {
			offs.Content = append(offs.Content, intScalar(o))
		}
		return nil
	}
	e := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	if m.Symbol != "" {
		e.Content = append(e.Content, scalar("symbol"), scalar(m.Symbol))
	} else {
		e.Content = append(e.Content, scalar("address"),
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprintf("%#x", m.Address)})
	}
	if len(m.Offsets) > 0 {
		offs := slices.Clone(m.Offsets)
		slices.Sort(offs)
		offs = slices.Compact(offs)
		seqN := flowSeq()
		for _, o := range offs {
			seqN.Content = append(seqN.Content, intScalar(o))
		}
		e.Content = append(e.Content, scalar("offsets"), seqN)
	}
	seq.Content = append(seq.Content, e)
	return nil
}
