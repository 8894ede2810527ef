package symbols

import (
	"debug/elf"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/lockstep-dev/lockstep/scenario"
)

// UnknownSymbolError reports a name that is not in the table, with up to
// three close names.
type UnknownSymbolError struct {
	Name        string
	Suggestions []string
}

// Error returns e.g. `unknown symbol "chksum" (did you mean checksum?)`.
func (e *UnknownSymbolError) Error() string {
	s := fmt.Sprintf("unknown symbol %q", e.Name)
	if len(e.Suggestions) > 0 {
		s += " (did you mean " + strings.Join(e.Suggestions, ", ") + "?)"
	}
	return s
}

// Is makes errors.Is(err, ErrUnknownSymbol) true.
func (e *UnknownSymbolError) Is(target error) bool { return target == ErrUnknownSymbol }

// Expr is a parsed address expression: a symbol plus an offset, or an
// absolute address when Symbol is empty.
type Expr struct {
	Symbol string
	Offset int64
	Addr   uint64
}

// ParseExpr parses "sym", "sym+0x10", "sym+16", "sym-4" or an address
// ("0xffffffff81000000", "1048576"). It needs no symbol table, so a
// scenario can be checked for syntax before symbols are loaded.
func ParseExpr(expr string) (Expr, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return Expr{}, fmt.Errorf("%w: empty", ErrBadExpr)
	}
	if s[0] >= '0' && s[0] <= '9' {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return Expr{}, fmt.Errorf("%w: %q: %w", ErrBadExpr, expr, err)
		}
		return Expr{Addr: v}, nil
	}
	name, off := s, ""
	sign := int64(1)
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		name, off = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		if s[i] == '-' {
			sign = -1
		}
		if off == "" {
			return Expr{}, fmt.Errorf("%w: %q: missing offset", ErrBadExpr, expr)
		}
	}
	if !validSymbolName(name) {
		return Expr{}, fmt.Errorf("%w: %q: bad symbol name %q", ErrBadExpr, expr, name)
	}
	e := Expr{Symbol: name}
	if off != "" {
		v, err := strconv.ParseUint(off, 0, 63)
		if err != nil {
			return Expr{}, fmt.Errorf("%w: %q: offset: %w", ErrBadExpr, expr, err)
		}
		e.Offset = sign * int64(v)
	}
	return e, nil
}

// validSymbolName accepts C identifiers plus '.', '$' and '@' (as in
// "foo.cold", "__func__.1").
func validSymbolName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '.' || c == '$' || c == '@' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Resolve evaluates an address expression ("sym", "sym+0x10", "sym+16",
// "0xffff...") to an address. An unknown symbol is an
// *UnknownSymbolError naming up to three close names.
func (t *Table) Resolve(expr string) (uint64, error) {
	e, err := ParseExpr(expr)
	if err != nil {
		return 0, fmt.Errorf("symbols: resolve: %w", err)
	}
	if e.Symbol == "" {
		return e.Addr, nil
	}
	s, ok := t.Lookup(e.Symbol)
	if !ok {
		return 0, fmt.Errorf("symbols: resolve %q in %s: %w", expr, t.path, &UnknownSymbolError{Name: e.Symbol, Suggestions: t.Suggest(e.Symbol, 3)})
	}
	return s.Addr + uint64(e.Offset), nil
}

// Suggest returns up to n names close to name: by edit distance, then
// names that extend it. Function names come first on ties.
func (t *Table) Suggest(name string, n int) []string {
	type cand struct {
		name string
		dist int
		fn   bool
	}
	limit := max(2, len(name)/4)
	var cands []cand
	for other, idx := range t.byName {
		d := -1
		switch {
		case strings.EqualFold(other, name):
			d = 0
		case len(other) > len(name) && strings.EqualFold(other[:len(name)], name):
			d = limit + 1 + (len(other)-len(name))/8
		default:
			if d = scenario.EditDistance(name, other, limit); d > limit {
				continue
			}
		}
		cands = append(cands, cand{other, d, t.syms[idx].Func})
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.dist != b.dist {
			return a.dist < b.dist
		}
		if a.fn != b.fn {
			return a.fn
		}
		return a.name < b.name
	})
	var out []string
	for i := 0; i < len(cands) && i < n; i++ {
		out = append(out, cands[i].name)
	}
	return out
}

// ValidPattern reports whether glob is a well-formed path.Match pattern.
func ValidPattern(glob string) error {
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("symbols: pattern %q: %w", glob, err)
	}
	return nil
}

// Match returns the functions whose names match glob (path.Match syntax),
// by address. A glob without metacharacters is an exact name. A malformed
// pattern matches nothing (check it with ValidPattern).
func (t *Table) Match(glob string) []Symbol {
	var out []Symbol
	if !strings.ContainsAny(glob, `*?[\`) {
		idx, ok := t.byName[glob]
		if !ok || !t.syms[idx].Func {
			return nil
		}
		out = append(out, t.syms[idx])
		if t.meta[idx].bind == elf.STB_LOCAL {
			// Local functions may share the name; return them all.
			s := t.syms[idx]
			for _, idx := range t.funcs {
				if f := t.syms[idx]; f.Name == glob && f.Addr != s.Addr {
					out = append(out, f)
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
		}
		return out
	}
	for _, idx := range t.funcs {
		if ok, err := path.Match(glob, t.syms[idx].Name); err != nil {
			return nil
		} else if ok {
			out = append(out, t.syms[idx])
		}
	}
	return out
}
