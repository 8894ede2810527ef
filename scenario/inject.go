package scenario

import (
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Injection is one fault injected into one side: at a sync point, or at
// the entry or the return of a function's hit-th call, set registers
// and/or memory. It is a deliberate difference: what diverges later is
// read as its consequence.
type Injection struct {
	Index int
	// Side is 0 for a, 1 for b.
	Side int
	// Sync is the index of the sync point (0-based) whose guests leave
	// it injected, or -1 for a function injection.
	Sync int
	// Func is the function of an entry or return injection, Return set
	// for the return; Hit is which call counts (1 = the first), counted
	// over the whole run.
	Func   string
	Return bool
	Hit    int
	// Regs are the registers set, in name order.
	Regs []RegValue
	// Memory is the memory written, if any.
	Memory *InjectMemory
	Pos    Position
}

// RegValue is one register an injection sets.
type RegValue struct {
	Name  string
	Value uint64
	// Pos is where the scenario names the register.
	Pos Position
}

// InjectMemory is memory an injection writes: Bytes at Symbol+Offset, or
// at Address+Offset.
type InjectMemory struct {
	Symbol     string
	Address    uint64
	HasAddress bool
	Offset     uint64
	Bytes      []byte
	Pos        Position
}

// Where says where the injection happens, for reports: "sync point 2",
// "entry of alloc (call 3)", "return of alloc (call 3)".
func (in *Injection) Where() string {
	switch {
	case in.Sync >= 0:
		return fmt.Sprintf("sync point %d", in.Sync+1)
	case in.Return:
		return fmt.Sprintf("return of %s (call %d)", in.Func, in.Hit)
	}
	return fmt.Sprintf("entry of %s (call %d)", in.Func, in.Hit)
}

// What says what the injection sets, for reports: "rax=0x0, results+8: 00 00".
func (in *Injection) What() string {
	var parts []string
	for _, r := range in.Regs {
		parts = append(parts, fmt.Sprintf("%s=%#x", r.Name, r.Value))
	}
	if m := in.Memory; m != nil {
		at := m.Symbol
		if m.HasAddress {
			at = fmt.Sprintf("%#x", m.Address)
		}
		if m.Offset != 0 {
			at += fmt.Sprintf("+%#x", m.Offset)
		}
		parts = append(parts, fmt.Sprintf("%s: % x", at, m.Bytes))
	}
	return strings.Join(parts, ", ")
}

// MaxInjectBytes bounds the memory one injection writes.
const MaxInjectBytes = 4096

func (b *builder) decodeInject(p string, v *yaml.Node) {
	d := b.d
	items, ok := d.sequence(p, v)
	if !ok {
		return
	}
	b.injectNodes = nil
	for i, it := range items {
		ip := index(p, i)
		in := Injection{Index: i, Side: -1, Sync: -1, Pos: d.at(it)}
		var syncNode *yaml.Node
		n0 := len(d.errs.errs)
		keys := d.mapping(ip, it, map[string]fieldFunc{
			"side": func(p string, _, v *yaml.Node) {
				if s, ok := d.oneOf(p, v, SideNames[0], SideNames[1]); ok {
					in.Side = map[string]int{"a": 0, "b": 1}[s]
				}
			},
			"at": func(p string, _, v *yaml.Node) {
				var kinds []string
				hitSeen := false
				d.mapping(p, v, map[string]fieldFunc{
					"sync": func(p string, _, v *yaml.Node) {
						kinds = append(kinds, "sync")
						syncNode = v
						if n, ok := d.int(p, v, 1, math.MaxInt32); ok {
							in.Sync = n - 1
						}
					},
					"entry": func(p string, _, v *yaml.Node) {
						kinds = append(kinds, "entry")
						if s, ok := d.str(p, v); ok && validInjectFunc(d, p, v, s) {
							in.Func = s
						}
					},
					"return": func(p string, _, v *yaml.Node) {
						kinds = append(kinds, "return")
						if s, ok := d.str(p, v); ok && validInjectFunc(d, p, v, s) {
							in.Func, in.Return = s, true
						}
					},
					"hit": func(p string, _, v *yaml.Node) {
						hitSeen = true
						if n, ok := d.int(p, v, 1, math.MaxInt32); ok {
							in.Hit = n
						}
					},
				})
				switch {
				case len(kinds) == 0:
					d.errorf(v, "%s: needs one of sync, entry, return", p)
				case len(kinds) > 1:
					d.errorf(v, "%s: %s are exclusive: give one", p, strings.Join(kinds, " and "))
				case kinds[0] == "sync" && hitSeen:
					d.errorf(v, "%s: hit is for entry and return (a sync point has its own hit)", p)
				}
				if in.Hit == 0 {
					in.Hit = 1
				}
			},
			"set": func(p string, _, v *yaml.Node) { b.decodeSet(p, v, &in) },
		})
		if keys == nil {
			continue
		}
		for _, f := range []string{"side", "at", "set"} {
			if _, ok := keys[f]; !ok {
				d.errorf(it, "%s: %s is required", ip, f)
			}
		}
		if _, ok := keys["set"]; ok && len(in.Regs) == 0 && in.Memory == nil && len(d.errs.errs) == n0 {
			d.errorf(it, "%s.set: sets nothing", ip)
		}
		if len(d.errs.errs) > n0 {
			continue
		}
		b.s.Inject = append(b.s.Inject, in)
		b.injectNodes = append(b.injectNodes, syncNode)
	}
}

// validInjectFunc checks the function of an entry or return injection:
// a function name or a 0xADDR.
func validInjectFunc(d *decoder, p string, v *yaml.Node, s string) bool {
	if _, _, _, isAddr, err := ParseBreak(s); err == nil && isAddr {
		return true
	}
	if msg := validFunction(s); msg != "" || strings.ContainsAny(s, "*?[+") {
		d.errorf(v, "%s: %q is not a function name or 0xADDR", p, s)
		return false
	}
	return true
}

// FuncIsAddr reports whether the injection's function is an address.
func (in *Injection) FuncIsAddr() bool {
	_, _, _, isAddr, err := ParseBreak(in.Func)
	return err == nil && isAddr
}

// decodeSet decodes inject[].set: register names to values, and memory.
func (b *builder) decodeSet(p string, v *yaml.Node, in *Injection) {
	d := b.d
	v = d.resolve(v)
	if v.Kind != yaml.MappingNode {
		d.errorf(v, "%s: expected a mapping of registers to values (and memory)", p)
		return
	}
	fields := map[string]fieldFunc{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		name := v.Content[i].Value
		if name == "memory" {
			fields[name] = func(p string, _, v *yaml.Node) { in.Memory = b.decodeInjectMemory(p, v) }
			continue
		}
		fields[name] = func(p string, k, v *yaml.Node) {
			if msg := validRegister(name); msg != "" || strings.Contains(name, ".") {
				d.errorf(v, "%s: %q is not a register name", p, name)
				return
			}
			if val, ok := d.uint(p, v); ok {
				in.Regs = append(in.Regs, RegValue{Name: name, Value: val, Pos: d.at(k)})
			}
		}
	}
	d.mapping(p, v, fields)
	sort.Slice(in.Regs, func(i, j int) bool { return in.Regs[i].Name < in.Regs[j].Name })
}

func (b *builder) decodeInjectMemory(p string, v *yaml.Node) *InjectMemory {
	d := b.d
	m := &InjectMemory{Pos: d.at(v)}
	n0 := len(d.errs.errs)
	keys := d.mapping(p, v, map[string]fieldFunc{
		"symbol": func(p string, _, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				if !isSymbol(s) {
					d.errorf(v, "%s: %q is not a symbol", p, s)
					return
				}
				m.Symbol = s
			}
		},
		"address": func(p string, _, v *yaml.Node) {
			m.Address, m.HasAddress = d.uint(p, v)
		},
		"offset": func(p string, _, v *yaml.Node) { m.Offset, _ = d.uint(p, v) },
		"bytes": func(p string, _, v *yaml.Node) {
			s, ok := d.str(p, v)
			if !ok {
				return
			}
			h := strings.Join(strings.Fields(s), "")
			bs, err := hex.DecodeString(h)
			switch {
			case err != nil:
				d.errorf(v, "%s: %q is not hex bytes (e.g. \"00 00 ff\")", p, s)
			case len(bs) == 0:
				d.errorf(v, "%s: no bytes", p)
			case len(bs) > MaxInjectBytes:
				d.errorf(v, "%s: %d bytes, at most %d", p, len(bs), MaxInjectBytes)
			default:
				m.Bytes = bs
			}
		},
	})
	if keys == nil || len(d.errs.errs) > n0 {
		return nil
	}
	if (m.Symbol == "") == !m.HasAddress {
		d.errorf(v, "%s: give exactly one of symbol and address", p)
		return nil
	}
	if m.Bytes == nil {
		d.errorf(v, "%s: bytes is required", p)
		return nil
	}
	return m
}
