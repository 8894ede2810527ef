package compare

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
)

// ErrBadIgnore is wrapped by IgnoreValid for a malformed or unknown ignore
// rule.
var ErrBadIgnore = errors.New("bad ignore rule")

// Regs is one side's captured registers.
type Regs struct {
	// Names is the register order (target.xml order).
	Names []string
	// Values holds each register's numeric value, big-endian, full width
	// (a 32-bit eflags is 4 bytes, an xmm register 16).
	Values map[string][]byte
}

// FlagBit is a named bit field of a flags register. It mirrors arch.Bit so
// that compare needs no architecture knowledge; callers convert.
type FlagBit struct {
	Name  string
	Shift uint
	Width uint
}

func (b FlagBit) mask() *big.Int {
	w := b.Width
	if w == 0 {
		w = 1
	}
	m := new(big.Int).Lsh(big.NewInt(1), w)
	m.Sub(m, big.NewInt(1))
	return m.Lsh(m, b.Shift)
}

// SymbolizeFunc resolves an address to symbol+offset through one side's
// symbols; ok is false when the address lies in no symbol.
type SymbolizeFunc = func(uint64) (Location, bool)

// RegOptions controls Registers.
type RegOptions struct {
	// Ignore lists whole registers ("eflags") or named flag bits
	// ("eflags.RF") to leave out; names are case-insensitive.
	Ignore []string
	// Flags maps flags register names to their named bits.
	Flags map[string][]FlagBit
	// Symbolize, when set (different builds), resolves values on each
	// side; a value that symbolises on both sides to the same
	// symbol+offset is not a divergence.
	Symbolize [2]SymbolizeFunc
	// Noise lists ignore rules learned by calibration, in Ignore's syntax.
	// Registers still returns diffs that match them; IsNoise tells the
	// caller to mark the divergence as noise.
	Noise []string
}

// rules is a parsed set of ignore rules: whole registers and per-register
// bit names, all lowercase.
type rules struct {
	whole map[string]bool
	bits  map[string]map[string]bool
}

func parseRules(list []string) rules {
	r := rules{whole: map[string]bool{}, bits: map[string]map[string]bool{}}
	for _, s := range list {
		s = strings.ToLower(strings.TrimSpace(s))
		reg, bit, ok := strings.Cut(s, ".")
		if !ok {
			r.whole[reg] = true
			continue
		}
		if r.bits[reg] == nil {
			r.bits[reg] = map[string]bool{}
		}
		r.bits[reg][bit] = true
	}
	return r
}

// flagsFor returns the named bits of reg, matching case-insensitively.
func flagsFor(flags map[string][]FlagBit, reg string) ([]FlagBit, bool) {
	if b, ok := flags[reg]; ok {
		return b, true
	}
	for k, b := range flags {
		if strings.EqualFold(k, reg) {
			return b, true
		}
	}
	return nil, false
}

// IgnoreValid checks one ignore rule: a register name, or reg.BIT where reg
// is a flags register in flags and BIT one of its named bits.
func IgnoreValid(rule string, flags map[string][]FlagBit) error {
	reg, bit, dotted := strings.Cut(strings.TrimSpace(rule), ".")
	if !validName(reg) {
		return fmt.Errorf("%q: register name must be letters, digits or '_': %w", rule, ErrBadIgnore)
	}
	if !dotted {
		return nil
	}
	bits, ok := flagsFor(flags, reg)
	if !ok {
		regs := slices.Sorted(maps.Keys(flags))
		return fmt.Errorf("%q: %s has no named bits (flags registers: %s): %w", rule, reg, strings.Join(regs, ", "), ErrBadIgnore)
	}
	var names []string
	for _, b := range bits {
		if strings.EqualFold(b.Name, bit) {
			return nil
		}
		names = append(names, b.Name)
	}
	return fmt.Errorf("%q: unknown bit %q of %s (known: %s): %w", rule, bit, reg, strings.Join(names, " "), ErrBadIgnore)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Registers compares the registers of a.Names present on either side and
// returns those that differ, in a.Names order (then any only in b.Names).
// Ignored registers and bits are masked out first. For flags registers,
// Bits lists the named bits that differ. A register missing on one side is
// reported with the value "unavailable".
func Registers(a, b Regs, opt RegOptions) []RegisterDiff {
	ign := parseRules(opt.Ignore)
	var out []RegisterDiff
	seen := make(map[string]bool, len(a.Names))
	names := append([]string(nil), a.Names...)
	for _, n := range b.Names {
		if _, ok := a.Values[n]; !ok {
			names = append(names, n)
		}
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		lname := strings.ToLower(name)
		if ign.whole[lname] {
			continue
		}
		va, oka := a.Values[name]
		vb, okb := b.Values[name]
		if !oka && !okb {
			continue
		}
		if !oka || !okb {
			d := RegisterDiff{Name: name, Values: [2]string{"unavailable", "unavailable"}}
			if oka {
				d.Values[0] = hexValue(va)
			}
			if okb {
				d.Values[1] = hexValue(vb)
			}
			out = append(out, d)
			continue
		}
		if d, ok := compareReg(name, va, vb, ign, opt); ok {
			out = append(out, d)
		}
	}
	return out
}

func compareReg(name string, va, vb []byte, ign rules, opt RegOptions) (RegisterDiff, bool) {
	d := RegisterDiff{Name: name, Values: [2]string{hexValue(va), hexValue(vb)}}
	if bits, ok := flagsFor(opt.Flags, name); ok {
		x := new(big.Int).SetBytes(va)
		y := new(big.Int).SetBytes(vb)
		diff := new(big.Int).Xor(x, y)
		for _, fb := range bits {
			if ign.bits[strings.ToLower(name)][strings.ToLower(fb.Name)] {
				diff.AndNot(diff, fb.mask())
			}
		}
		if diff.Sign() == 0 {
			return d, false
		}
		for _, fb := range bits {
			if new(big.Int).And(diff, fb.mask()).Sign() != 0 {
				d.Bits = append(d.Bits, fb.Name)
			}
		}
		return d, true
	}
	if equalValue(va, vb) {
		return d, false
	}
	if len(va) <= 8 && len(vb) <= 8 {
		x, y := toUint(va), toUint(vb)
		la, oka := symOf(opt.Symbolize[0], x)
		lb, okb := symOf(opt.Symbolize[1], y)
		if oka {
			d.Symbolic[0] = la.String()
		}
		if okb {
			d.Symbolic[1] = lb.String()
		}
		if oka && okb && la.Symbol == lb.Symbol && la.Offset == lb.Offset {
			return d, false
		}
	}
	return d, true
}

// IsNoise reports whether d lies entirely within opt.Noise: the whole
// register is listed, or every differing named bit is and no unnamed bit
// differs.
func (opt RegOptions) IsNoise(d RegisterDiff) bool {
	if len(opt.Noise) == 0 {
		return false
	}
	n := parseRules(opt.Noise)
	lname := strings.ToLower(d.Name)
	if n.whole[lname] {
		return true
	}
	bits, ok := flagsFor(opt.Flags, d.Name)
	if !ok || len(d.Bits) == 0 {
		return false
	}
	// Every differing bit must be named and listed as noise.
	va, ea := parseHexValue(d.Values[0])
	vb, eb := parseHexValue(d.Values[1])
	if ea != nil || eb != nil {
		return false
	}
	diff := new(big.Int).Xor(va, vb)
	for _, fb := range bits {
		if n.bits[lname][strings.ToLower(fb.Name)] {
			diff.AndNot(diff, fb.mask())
		}
	}
	// Bits masked by Ignore were never reported, so remove them too.
	ign := parseRules(opt.Ignore)
	for _, fb := range bits {
		if ign.bits[lname][strings.ToLower(fb.Name)] {
			diff.AndNot(diff, fb.mask())
		}
	}
	return diff.Sign() == 0
}

func symOf(f SymbolizeFunc, v uint64) (Location, bool) {
	if f == nil {
		return Location{Addr: v}, false
	}
	l, ok := f(v)
	if !ok || l.Symbol == "" {
		return Location{Addr: v}, false
	}
	return l, true
}

// equalValue compares two big-endian numbers of possibly different widths.
func equalValue(a, b []byte) bool {
	return bytes.Equal(bytes.TrimLeft(a, "\x00"), bytes.TrimLeft(b, "\x00"))
}

func toUint(v []byte) uint64 {
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

// hexValue formats a big-endian value as "0x" and every digit of its width.
func hexValue(v []byte) string {
	if len(v) == 0 {
		return "0x0"
	}
	return "0x" + hex.EncodeToString(v)
}

func parseHexValue(s string) (*big.Int, error) {
	x, ok := new(big.Int).SetString(strings.TrimPrefix(s, "0x"), 16)
	if !ok {
		return nil, fmt.Errorf("not a hex value: %q", s)
	}
	return x, nil
}

// shortHex trims the leading zeros of a full-width "0x..." value.
func shortHex(s string) string {
	if !strings.HasPrefix(s, "0x") {
		return s
	}
	t := strings.TrimLeft(s[2:], "0")
	if t == "" {
		t = "0"
	}
	return "0x" + t
}
