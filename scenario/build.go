package scenario

import (
	"fmt"
	"math"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// builder turns the node tree into a Scenario.
type builder struct {
	d *decoder
	s *Scenario

	guests      map[string]guestRaw // "defaults", "a", "b"
	guestsNode  *yaml.Node
	guestsKeys  map[string]*yaml.Node
	guestsBad   bool // a guest field failed to decode: skip cross-checks
	compare     compareRaw
	syncRaw     []compareRaw
	syncNode    *yaml.Node
	haveSync    bool
	sstepSet    bool
	localizeSet bool
	// injectNodes are the at.sync nodes of inject[], by index (nil for a
	// function injection), to check them against sync.
	injectNodes  []*yaml.Node
	maxStepsSet  bool
	timeoutSet   bool
	icountNode   *yaml.Node
	requiredSeen map[string]bool
}

// setting is one guest field as written, with where it was written.
type setting struct {
	v   any
	pos Position
}

// guestRaw is a guest mapping before merging: the fields it sets.
type guestRaw struct {
	fields map[string]setting
	pos    Position
}

// compareRaw is a compare mapping before merging: nil means "not set".
type compareRaw struct {
	registers, ignore *[]string
	memory            *[]MemoryRange
	callpath          *string
	stats             **StatsSpec
	pos               map[string]Position
}

var (
	registerRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	regBitRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)?$`)
	memoryRE   = regexp.MustCompile(`^[0-9]+[kKmMgGtT]?$`)
	formatRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func validRegister(s string) string {
	if !registerRE.MatchString(s) {
		return "register or group must be a non-empty identifier, got " + quote(s)
	}
	return ""
}

func validRegBit(s string) string {
	if !regBitRE.MatchString(s) {
		return "want a register or register.BIT, got " + quote(s)
	}
	return ""
}

func validFunction(s string) string {
	if !isSymbol(s) {
		return "want a function name, got " + quote(s)
	}
	return ""
}

func validGlob(s string) string {
	if s == "" {
		return "empty function name"
	}
	if _, err := path.Match(s, ""); err != nil {
		return "bad glob " + quote(s) + ": " + err.Error()
	}
	return ""
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func (b *builder) decode(root *yaml.Node) {
	d := b.d
	b.requiredSeen = map[string]bool{}
	d.mapping("", root, map[string]fieldFunc{
		"name": func(p string, _, v *yaml.Node) {
			if s, ok := d.str(p, v); ok {
				b.s.Name = strings.TrimSpace(s)
				if strings.ContainsAny(s, "\n\r") {
					d.errorf(v, "name: must be one line")
				}
			}
		},
		"description": func(p string, _, v *yaml.Node) {
			b.s.Description, _ = d.str(p, v)
		},
		"timeout": func(p string, _, v *yaml.Node) {
			if t, ok := d.duration(p, v); ok {
				b.s.Timeout, b.timeoutSet = t, true
			}
		},
		"guests":      func(p string, _, v *yaml.Node) { b.decodeGuests(p, v) },
		"determinism": func(p string, _, v *yaml.Node) { b.decodeDeterminism(p, v) },
		"compare":     func(p string, _, v *yaml.Node) { b.compare = b.decodeCompare(p, v) },
		"sync":        func(p string, _, v *yaml.Node) { b.decodeSync(p, v) },
		"trace": func(p string, _, v *yaml.Node) {
			d.mapping(p, v, map[string]fieldFunc{
				"functions": func(p string, _, v *yaml.Node) {
					b.s.Trace.Functions, _ = d.strList(p, v, validGlob)
				},
			})
		},
		"localize": func(p string, _, v *yaml.Node) {
			d.mapping(p, v, map[string]fieldFunc{
				"enabled": func(p string, _, v *yaml.Node) {
					if e, ok := d.bool(p, v); ok {
						b.s.Localize.Enabled, b.localizeSet = e, true
					}
				},
				"max_steps": func(p string, _, v *yaml.Node) {
					if n, ok := d.int(p, v, 1, math.MaxInt); ok {
						b.s.Localize.MaxSteps, b.maxStepsSet = n, true
					}
				},
				"max_writes": func(p string, _, v *yaml.Node) {
					if n, ok := d.int(p, v, 1, 1<<20); ok {
						b.s.Localize.MaxWrites = n
					}
				},
				"checkpoint": func(p string, _, v *yaml.Node) {
					if c, ok := d.oneOf(p, v, CheckpointAuto, CheckpointRestart, CheckpointSnapshot); ok {
						b.s.Localize.Checkpoint = c
					}
				},
				"method": func(p string, _, v *yaml.Node) {
					if m, ok := d.oneOf(p, v, MethodAuto, MethodStep, MethodTrace, MethodReplay); ok {
						b.s.Localize.Method = m
					}
				},
			})
		},
		"noise":  func(p string, _, v *yaml.Node) { b.s.Noise = decodeNoise(d, p, v) },
		"inject": func(p string, _, v *yaml.Node) { b.decodeInject(p, v) },
		"expect": func(p string, _, v *yaml.Node) {
			if e, ok := d.oneOf(p, v, string(ExpectIdentical), string(ExpectDiverge)); ok {
				b.s.Expect = Expect(e)
			}
		},
	})
}

func (b *builder) decodeDeterminism(p string, v *yaml.Node) {
	d := b.d
	d.mapping(p, v, map[string]fieldFunc{
		"sstep": func(p string, _, v *yaml.Node) {
			seen := map[string]bool{}
			list, ok := d.strList(p, v, func(s string) string {
				if s != SstepNoIRQ && s != SstepNoTimer {
					return quote(s) + " is not one of noirq, notimer"
				}
				if seen[s] {
					return "duplicate " + quote(s)
				}
				seen[s] = true
				return ""
			})
			if ok {
				b.s.Determinism.Sstep, b.sstepSet = list, true
			}
		},
		"icount": func(p string, _, v *yaml.Node) {
			b.s.Determinism.Icount, _ = d.str(p, v)
			b.icountNode = v
		},
		"rtc": func(p string, _, v *yaml.Node) {
			b.s.Determinism.RTC, _ = d.str(p, v)
		},
		"record": func(p string, _, v *yaml.Node) {
			b.s.Determinism.Record, _ = d.bool(p, v)
		},
	})
}

// decodeCompare decodes a compare mapping into the fields it sets.
func (b *builder) decodeCompare(p string, v *yaml.Node) compareRaw {
	d := b.d
	var c compareRaw
	c.pos = map[string]Position{}
	d.mapping(p, v, map[string]fieldFunc{
		"registers": func(p string, _, v *yaml.Node) {
			if l, ok := d.strList(p, v, validRegister); ok {
				c.registers = &l
				c.pos["registers"] = d.at(v)
			}
		},
		"ignore": func(p string, _, v *yaml.Node) {
			if l, ok := d.strList(p, v, validRegBit); ok {
				c.ignore = &l
				c.pos["ignore"] = d.at(v)
			}
		},
		"memory": func(p string, _, v *yaml.Node) {
			items, ok := d.sequence(p, v)
			if !ok {
				return
			}
			l := make([]MemoryRange, 0, len(items))
			for i, it := range items {
				if m, ok := b.decodeMemory(index(p, i), it); ok {
					l = append(l, m)
				}
			}
			c.memory = &l
			c.pos["memory"] = d.at(v)
		},
		"callpath": func(p string, _, v *yaml.Node) {
			if s, ok := d.oneOf(p, v, CallPathNone, CallPathBacktrace); ok {
				c.callpath = &s
				c.pos["callpath"] = d.at(v)
			}
		},
		"stats": func(p string, _, v *yaml.Node) {
			// stats: none (or null) turns an inherited comparison off.
			if v.Kind == yaml.ScalarNode && (isNull(v) || v.Value == "none") {
				var none *StatsSpec
				c.stats = &none
				c.pos["stats"] = d.at(v)
				return
			}
			if st, ok := b.decodeStats(p, v); ok {
				c.stats = &st
				c.pos["stats"] = d.at(v)
			}
		},
	})
	return c
}

func (b *builder) decodeMemory(p string, v *yaml.Node) (MemoryRange, bool) {
	d := b.d
	m := MemoryRange{Space: SpaceVirtual, Pos: d.at(v)}
	ok := true
	var hasLen bool
	n := len(d.errs.errs)
	d.mapping(p, v, map[string]fieldFunc{
		"symbol": func(p string, _, v *yaml.Node) {
			if s, ok2 := d.str(p, v); ok2 {
				if !isSymbol(s) {
					d.errorf(v, "%s: %s is not a symbol name", p, quote(s))
					return
				}
				m.Symbol = s
			}
		},
		"address": func(p string, _, v *yaml.Node) {
			m.Address, m.HasAddress = d.uint(p, v)
		},
		"length": func(p string, _, v *yaml.Node) {
			if l, ok2 := d.uint(p, v); ok2 {
				if l == 0 {
					d.errorf(v, "%s: must be positive", p)
					return
				}
				m.Length, hasLen = l, true
			}
		},
		"offset": func(p string, _, v *yaml.Node) {
			m.Offset, _ = d.uint(p, v)
		},
		"space": func(p string, _, v *yaml.Node) {
			if s, ok2 := d.oneOf(p, v, SpaceVirtual, SpacePhysical); ok2 {
				m.Space = s
			}
		},
		"allow_large": func(p string, _, v *yaml.Node) {
			m.AllowLarge, _ = d.bool(p, v)
		},
	})
	if len(d.errs.errs) > n {
		return m, false
	}
	switch {
	case m.Symbol != "" && m.HasAddress:
		d.errorf(v, "%s: symbol and address are mutually exclusive", p)
		ok = false
	case m.Symbol == "" && !m.HasAddress:
		d.errorf(v, "%s: needs a symbol or an address", p)
		ok = false
	case m.HasAddress && !hasLen:
		d.errorf(v, "%s: address needs a length", p)
		ok = false
	case m.HasAddress && (m.Address+m.Offset < m.Address || m.Address+m.Offset+m.Length < m.Address+m.Offset):
		d.errorf(v, "%s: address+offset+length overflows 64 bits", p)
		ok = false
	case m.Length > MaxMemoryLength && !m.AllowLarge:
		d.errorf(v, "%s: length %d is over %d (256 MiB); set allow_large: true to compare a range this large", p, m.Length, MaxMemoryLength)
		ok = false
	}
	return m, ok
}

func (b *builder) decodeSync(p string, v *yaml.Node) {
	d := b.d
	b.syncNode = v
	items, ok := d.sequence(p, v)
	if !ok {
		return
	}
	b.haveSync = true
	if len(items) == 0 {
		d.errorf(v, "sync: needs at least one sync point")
	}
	for i, it := range items {
		ip := index(p, i)
		sp := SyncPoint{Index: i, Hit: 1, At: AtEntry, Pos: d.at(it)}
		var over compareRaw
		var breakSeen bool
		var hitNode, totalNode *yaml.Node
		keys := d.mapping(ip, it, map[string]fieldFunc{
			"break": func(p string, _, v *yaml.Node) {
				breakSeen = true
				s, ok := d.str(p, v)
				if !ok {
					return
				}
				if strings.TrimSpace(s) == BreakNow {
					sp.Break, sp.Now = BreakNow, true
					return
				}
				sym, off, addr, isAddr, err := ParseBreak(s)
				if err != nil {
					d.errorf(v, "%s: %v", p, err)
					return
				}
				sp.Break, sp.Symbol, sp.Offset, sp.Addr, sp.IsAddr = strings.TrimSpace(s), sym, off, addr, isAddr
			},
			"hit": func(p string, _, v *yaml.Node) {
				hitNode = v
				if n, ok := d.int(p, v, 1, math.MaxInt32); ok {
					sp.Hit = n
				}
			},
			"hit_total": func(p string, _, v *yaml.Node) {
				totalNode = v
				if n, ok := d.int(p, v, 1, math.MaxInt32); ok {
					sp.HitTotal = n
				}
			},
			"timeout": func(p string, _, v *yaml.Node) {
				sp.Timeout, _ = d.duration(p, v)
			},
			"step": func(p string, _, v *yaml.Node) {
				sp.Step, _ = d.int(p, v, 0, math.MaxInt32)
			},
			"at": func(p string, _, v *yaml.Node) {
				if a, ok := d.oneOf(p, v, AtEntry, AtReturn); ok {
					sp.At = a
				}
			},
			"compare": func(p string, _, v *yaml.Node) { over = b.decodeCompare(p, v) },
		})
		if keys != nil && !breakSeen {
			d.errorf(it, "%s: break is required", ip)
		}
		switch {
		case sp.Now:
			for _, f := range []string{"hit", "hit_total"} {
				if n, ok := keys[f]; ok {
					d.errorf(n, "%s.%s: not allowed with break: now (the guests do not run to it)", ip, f)
				}
			}
			if sp.At == AtReturn {
				d.errorf(keys["at"], "%s.at: return is not allowed with break: now", ip)
			}
		case hitNode != nil && totalNode != nil:
			d.errorf(totalNode, "%s: give hit (counted from the previous sync point) or hit_total (counted from boot), not both", ip)
		case totalNode != nil && sp.HitTotal > 0:
			if rel, err := hitFromTotal(b.s.Sync, sp); err != nil {
				d.errorf(totalNode, "%s.hit_total: %v", ip, err)
			} else {
				sp.Hit = rel
			}
		}
		b.s.Sync = append(b.s.Sync, sp)
		b.syncRaw = append(b.syncRaw, over)
	}
}

// hitFromTotal converts sync point sp's hit_total (its arrival at break
// counted from boot) into the hit lockstep runs to (counted from the
// previous point). That count is known only when every earlier point
// breaks at the same place, at its entry: then the arrivals before the
// previous point are the sum of their hits.
func hitFromTotal(earlier []SyncPoint, sp SyncPoint) (int, error) {
	before := 0
	for _, e := range earlier {
		if !sameBreak(e, sp) || e.At != AtEntry {
			at := e.Break
			if e.At != AtEntry {
				at += " (at: " + e.At + ")"
			}
			return 0, fmt.Errorf("counting from boot needs every earlier sync point to break at %s at its entry, and sync[%d] breaks at %s; "+
				"lockstep does not count arrivals at %s before that point, so use hit (counted from the previous point)",
				sp.Break, e.Index, at, sp.Break)
		}
		before += e.Hit
	}
	if sp.HitTotal <= before {
		return 0, fmt.Errorf("arrival %d at %s from boot is not after the previous sync point, which is arrival %d", sp.HitTotal, sp.Break, before)
	}
	return sp.HitTotal - before, nil
}

// sameBreak reports whether two sync points break at the same place as
// written (a symbol and an address are not matched up).
func sameBreak(a, b SyncPoint) bool {
	if a.IsAddr || b.IsAddr {
		return a.IsAddr && b.IsAddr && a.Addr == b.Addr
	}
	return a.Symbol == b.Symbol && a.Offset == b.Offset
}

// mergeCompare overlays over on base field by field.
func mergeCompare(base CompareSpec, over compareRaw) CompareSpec {
	out := base
	if over.registers != nil {
		out.Registers = *over.registers
	}
	if over.ignore != nil {
		out.Ignore = *over.ignore
	}
	if over.memory != nil {
		out.Memory = *over.memory
	}
	if over.callpath != nil {
		out.CallPath = *over.callpath
	}
	if over.stats != nil {
		out.Stats = *over.stats
	}
	return out
}

// resolvePath makes p absolute against dir; empty stays empty.
func resolvePath(dir, p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}
