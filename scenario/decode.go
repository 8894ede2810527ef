package scenario

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the nodes visited through aliases, so an alias bomb is a
// reported problem and not a hang.
const maxNodes = 100000

// maxDepth bounds nesting (and alias recursion).
const maxDepth = 64

// decoder walks a yaml.Node tree, recording positions and problems.
type decoder struct {
	file   string
	errs   *errorList
	pos    map[string]Position
	lookup func(string) (string, bool)
	nodes  int
	bombed bool
}

func (d *decoder) at(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.addf(d.at(n), format, args...)
}

// resolve follows aliases and counts visited nodes.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes && !d.bombed {
		d.bombed = true
		d.errorf(n, "document too large: more than %d nodes after alias expansion", maxNodes)
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

// fieldFunc decodes the value of one mapping key; path is the field's
// dotted path. It is not called for null values.
type fieldFunc func(path string, key, val *yaml.Node)

// pair is one key/value of a mapping after merge-key expansion.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n in order, with YAML merge keys
// ("<<: *anchor") expanded; explicit keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node, depth int) []pair {
	if depth > maxDepth {
		d.errorf(n, "merge keys nested too deeply")
		return nil
	}
	var out, merged []pair
	for i := 0; i+1 < len(n.Content) && !d.bombed; i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			v = d.resolve(v)
			var srcs []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				srcs = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, s := range v.Content {
					srcs = append(srcs, d.resolve(s))
				}
			}
			for _, s := range srcs {
				if s.Kind != yaml.MappingNode {
					d.errorf(s, "merge key needs a mapping, got %s", kindName(s))
					continue
				}
				merged = append(merged, d.pairs(s, depth+1)...)
			}
			continue
		}
		out = append(out, pair{k, v})
	}
	if len(merged) == 0 {
		return out
	}
	seen := map[string]bool{}
	for _, p := range out {
		seen[p.key.Value] = true
	}
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

// mapping decodes mapping n at path, calling fields[key] for each non-null
// value in document order. It reports a non-mapping, non-string and
// duplicate keys, and unknown keys (with a suggestion). It returns the
// keys present, including those with null values, or nil if n is not a
// mapping.
func (d *decoder) mapping(path string, n *yaml.Node, fields map[string]fieldFunc) map[string]*yaml.Node {
	n = d.resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", label(path), kindName(n))
		return nil
	}
	seen := map[string]*yaml.Node{}
	for _, p := range d.pairs(n, 0) {
		if d.bombed {
			return seen
		}
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key, "%s: keys must be strings, got %s", label(path), kindName(p.key))
			continue
		}
		name := p.key.Value
		if first, dup := seen[name]; dup {
			d.errorf(p.key, "%s: duplicate key %q (first at line %d)", label(path), name, first.Line)
			continue
		}
		seen[name] = p.key
		fn, ok := fields[name]
		if !ok {
			msg := fmt.Sprintf("%s: unknown field %q", label(path), name)
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(p.key, "%s", msg)
			continue
		}
		sub := join(path, name)
		v := d.resolve(p.val)
		d.pos[sub] = d.at(v)
		if isNull(v) {
			continue
		}
		fn(sub, p.key, v)
	}
	return seen
}

// sequence returns the items of list n at path, or nil (reported) if n is
// not a list.
func (d *decoder) sequence(path string, n *yaml.Node) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, got %s", label(path), kindName(n))
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for i, c := range n.Content {
		if d.bombed {
			return nil, false
		}
		c = d.resolve(c)
		d.pos[index(path, i)] = d.at(c)
		out = append(out, c)
	}
	return out, true
}

// str decodes a scalar with environment expansion.
func (d *decoder) str(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a string, got %s", label(path), kindName(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.errorf(n, "%s: %v", label(path), err)
		return "", false
	}
	return s, true
}

// strList decodes a list of scalars, checking each with valid (if not nil),
// which returns a problem description or "".
func (d *decoder) strList(path string, n *yaml.Node, valid func(string) string) ([]string, bool) {
	items, ok := d.sequence(path, n)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok2 := d.str(index(path, i), it)
		if !ok2 {
			ok = false
			continue
		}
		if valid != nil {
			if msg := valid(s); msg != "" {
				d.errorf(it, "%s: %s", label(index(path, i)), msg)
				ok = false
				continue
			}
		}
		out = append(out, s)
	}
	return out, ok
}

// uint decodes an unsigned integer: decimal, 0x hex, 0o octal or 0b binary,
// or an integral float such as 1e6.
func (d *decoder) uint(path string, n *yaml.Node) (uint64, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < math.MaxUint64 && f == math.Trunc(f) &&
		strings.ContainsAny(s, "eE") {
		return uint64(f), true
	}
	d.errorf(n, "%s: %q is not an unsigned integer", label(path), s)
	return 0, false
}

// int decodes an integer that must lie in [lo, hi].
func (d *decoder) int(path string, n *yaml.Node, lo, hi int) (int, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || !strings.ContainsAny(s, "eE") || math.Abs(f) > 1e18 {
			d.errorf(n, "%s: %q is not an integer", label(path), s)
			return 0, false
		}
		v = int64(f)
	}
	if v < int64(lo) || v > int64(hi) {
		if hi == math.MaxInt {
			d.errorf(n, "%s: %d is out of range: must be >= %d", label(path), v, lo)
		} else {
			d.errorf(n, "%s: %d is out of range [%d, %d]", label(path), v, lo, hi)
		}
		return 0, false
	}
	return int(v), true
}

// duration decodes a positive Go duration such as "60s" or "1m30s".
func (d *decoder) duration(path string, n *yaml.Node) (time.Duration, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.errorf(n, "%s: %q is not a duration (e.g. 60s, 1m30s)", label(path), s)
		return 0, false
	}
	if v <= 0 {
		d.errorf(n, "%s: must be positive, got %s", label(path), s)
		return 0, false
	}
	return v, true
}

// bool decodes true or false.
func (d *decoder) bool(path string, n *yaml.Node) (bool, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	d.errorf(n, "%s: %q is not true or false", label(path), s)
	return false, false
}

// oneOf decodes a string that must be one of choices.
func (d *decoder) oneOf(path string, n *yaml.Node, choices ...string) (string, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return "", false
	}
	for _, c := range choices {
		if s == c {
			return s, true
		}
	}
	d.errorf(n, "%s: %q is not one of %s", label(path), s, strings.Join(choices, ", "))
	return "", false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// label names a path in messages; the document root is "scenario".
func label(path string) string {
	if path == "" {
		return "scenario"
	}
	return path
}

// suggest returns the known field closest to name, if close enough.
func suggest(name string, fields map[string]fieldFunc) string {
	best, bestD := "", 3
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if dist := EditDistance(name, k, 2); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

// EditDistance returns the Levenshtein distance of a and b, ignoring ASCII
// case, or limit+1 as soon as the distance must exceed limit (limit >= 0).
// It is the measure behind every "did you mean" suggestion.
func EditDistance(a, b string, limit int) int {
	if max(len(a)-len(b), len(b)-len(a)) > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if lowerASCII(a[i-1]) == lowerASCII(b[j-1]) {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit+1)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
