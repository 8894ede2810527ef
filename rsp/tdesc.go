package rsp

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Bounds on target descriptions.
const (
	maxTdescBytes    = 4 << 20 // all documents together
	maxTdescIncludes = 64
	maxTdescDepth    = 8
	maxRegisters     = 8192
	maxRegBits       = 1 << 16
)

// Layout is the register layout of a target, read from its target
// description (target.xml and its xi:includes).
type Layout struct {
	Arch      string     // <architecture>, e.g. "i386:x86-64", "aarch64", "riscv:rv64"
	BigEndian bool       // target byte order (inferred from Arch)
	Registers []Register // in register-number order
	GSize     int        // bytes in a 'g' reply

	index map[string]int // lower-case name -> index in Registers
}

// Register describes one register of the layout.
type Register struct {
	Name    string
	Num     int    // register number for 'p'/'P'
	BitSize int    // width in bits
	Type    string // target.xml type ("int64", "code_ptr", "vec128", ...)
	Group   string // the normalised group (general, float, vector, system), else target.xml's, else one inferred
	// TDescGroup is the group target.xml gives, lower case ("" when none):
	// Group normalises it on architectures whose CPU models disagree.
	TDescGroup string
	Feature    string // enclosing <feature name=...>
	Offset     int    // byte offset in the 'g' reply; -1 if outside it (read with 'p')
}

// Size returns the register width in bytes.
func (r *Register) Size() int { return (r.BitSize + 7) / 8 }

// Lookup finds a register by name (case-insensitive).
func (l *Layout) Lookup(name string) (*Register, bool) {
	// The index is a hint: a stale entry (Registers edited) falls through.
	if i, ok := l.index[name]; ok && i < len(l.Registers) && l.Registers[i].Name == name {
		return &l.Registers[i], true
	}
	if i, ok := l.index[strings.ToLower(name)]; ok && i < len(l.Registers) && strings.EqualFold(l.Registers[i].Name, name) {
		return &l.Registers[i], true
	}
	for i := range l.Registers {
		if strings.EqualFold(l.Registers[i].Name, name) {
			return &l.Registers[i], true
		}
	}
	return nil, false
}

// Group returns the registers of a group ("general", "float", "vector",
// "system", ... or "all"), in register-number order. Registers without a
// group attribute are classified by feature and type: integer, pointer and
// flags registers of the core feature are "general". On aarch64, riscv and
// s390x the four groups are normalised by feature, the same on every CPU
// model; a group target.xml names ("cp_regs", "psw") still selects its
// registers.
func (l *Layout) Group(name string) []Register {
	var out []Register
	for _, r := range l.Registers {
		if strings.EqualFold(name, "all") || strings.EqualFold(r.Group, name) || r.TDescGroup != "" && strings.EqualFold(r.TDescGroup, name) {
			out = append(out, r)
		}
	}
	return out
}

// PC returns the name of the program counter register.
func (l *Layout) PC() string { return l.special(0) }

// SP returns the name of the stack pointer register.
func (l *Layout) SP() string { return l.special(1) }

// FP returns the name of the frame pointer register.
func (l *Layout) FP() string { return l.special(2) }

func (l *Layout) special(i int) string {
	if a, ok := archFor(l.Arch); ok {
		if _, ok := l.Lookup(a.special[i]); ok {
			return a.special[i]
		}
	}
	for _, n := range [][]string{{"pc", "rip", "eip"}, {"sp", "rsp", "esp"}, {"fp", "rbp", "ebp", "x29", "s0"}}[i] {
		if _, ok := l.Lookup(n); ok {
			return n
		}
	}
	return ""
}

// assignOffsets places registers 0, 1, 2, ... in a gsize-byte 'g' reply in
// order, while they fit; every other register gets offset -1.
func (l *Layout) assignOffsets(gsize int) {
	off, next := 0, 0
	for i := range l.Registers {
		r := &l.Registers[i]
		r.Offset = -1
		if r.Num == next && off+r.Size() <= gsize {
			r.Offset = off
			off += r.Size()
			next++
		}
	}
	l.GSize = off
}

// ParseTargetXML parses a target description. fetch returns the document
// named by an xi:include href (the annex for qXfer:features:read); it may be
// nil when the document has no includes. Registers are numbered in document
// order unless regnum= says otherwise. All registers get Offset -1 until
// the 'g' size is known.
func ParseTargetXML(doc []byte, fetch func(annex string) ([]byte, error)) (*Layout, error) {
	p := &tdescParser{fetch: fetch, types: map[string]string{}, seen: map[int]string{}}
	if err := p.parse(doc, 0); err != nil {
		return nil, fmt.Errorf("rsp: target description: %w", err)
	}
	l := &Layout{Arch: p.arch, Registers: p.regs}
	a, known := archFor(l.Arch)
	l.BigEndian = known && a.bigEndian
	for i := range l.Registers {
		r := &l.Registers[i]
		r.TDescGroup = r.Group
		if r.Group == "" {
			r.Group = p.classify(r, a, known)
		}
		if known && a.normalize != nil {
			if g := a.normalize(r); g != "" {
				r.Group = g
			}
		}
		r.Offset = -1
	}
	sort.SliceStable(l.Registers, func(i, j int) bool { return l.Registers[i].Num < l.Registers[j].Num })
	l.index = make(map[string]int, 2*len(l.Registers))
	for i, r := range l.Registers {
		l.index[r.Name] = i
		// A lower-case alias never takes the place of a register of that
		// exact name (aarch64 has fpsr and the system register FPSR).
		if lc := strings.ToLower(r.Name); lc != r.Name {
			if j, taken := l.index[lc]; !taken || l.Registers[j].Name != lc {
				l.index[lc] = i
			}
		}
	}
	return l, nil
}

type tdescParser struct {
	fetch    func(string) ([]byte, error)
	arch     string
	regs     []Register
	types    map[string]string // type id -> kind: "vector", "union", "struct", "flags", "enum"
	seen     map[int]string
	next     int
	total    int
	includes int
}

func (p *tdescParser) parse(doc []byte, depth int) error {
	p.total += len(doc)
	if p.total > maxTdescBytes {
		return fmt.Errorf("documents exceed %d bytes: %w", maxTdescBytes, ErrTooLarge)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	feature := ""
	var text *strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("xml: %w: %w", err, ErrMalformed)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "architecture":
				text = &strings.Builder{}
			case "include":
				if err := p.include(attr(t, "href"), depth); err != nil {
					return err
				}
			case "feature":
				feature = attr(t, "name")
			case "vector", "union", "struct", "flags", "enum":
				if id := attr(t, "id"); id != "" {
					p.types[id] = t.Name.Local
				}
			case "reg":
				if err := p.reg(t, feature); err != nil {
					return err
				}
			}
		case xml.CharData:
			if text != nil && text.Len() < 256 {
				text.Write(t)
			}
		case xml.EndElement:
			if t.Name.Local == "architecture" && text != nil {
				p.arch = strings.TrimSpace(text.String())
				text = nil
			}
			if t.Name.Local == "feature" {
				feature = ""
			}
		}
	}
}

func (p *tdescParser) include(href string, depth int) error {
	if href == "" {
		return fmt.Errorf("xi:include without href: %w", ErrMalformed)
	}
	if depth+1 > maxTdescDepth {
		return fmt.Errorf("include %q nested deeper than %d: %w", href, maxTdescDepth, ErrMalformed)
	}
	p.includes++
	if p.includes > maxTdescIncludes {
		return fmt.Errorf("more than %d includes: %w", maxTdescIncludes, ErrMalformed)
	}
	if p.fetch == nil {
		return fmt.Errorf("include %q: no fetcher: %w", href, ErrUnsupported)
	}
	sub, err := p.fetch(href)
	if err != nil {
		return fmt.Errorf("include %q: %w", href, err)
	}
	return p.parse(sub, depth+1)
}

func (p *tdescParser) reg(t xml.StartElement, feature string) error {
	if len(p.regs) >= maxRegisters {
		return fmt.Errorf("more than %d registers: %w", maxRegisters, ErrTooLarge)
	}
	name := attr(t, "name")
	if name == "" {
		return fmt.Errorf("reg without name: %w", ErrMalformed)
	}
	bits, err := strconv.Atoi(attr(t, "bitsize"))
	if err != nil || bits <= 0 || bits > maxRegBits || bits%8 != 0 {
		return fmt.Errorf("reg %q: bad bitsize %q: %w", name, attr(t, "bitsize"), ErrMalformed)
	}
	num := p.next
	if s := attr(t, "regnum"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= 1<<20 {
			return fmt.Errorf("reg %q: bad regnum %q: %w", name, s, ErrMalformed)
		}
		num = n
	}
	if prev, dup := p.seen[num]; dup {
		return fmt.Errorf("regs %q and %q share number %d: %w", prev, name, num, ErrMalformed)
	}
	p.seen[num] = name
	p.next = num + 1
	typ := attr(t, "type")
	if typ == "" {
		typ = "int"
	}
	p.regs = append(p.regs, Register{
		Name: name, Num: num, BitSize: bits, Type: typ,
		Group: strings.ToLower(attr(t, "group")), Feature: feature, Offset: -1,
	})
	return nil
}

// classify infers a group for a register whose target.xml gives none.
func (p *tdescParser) classify(r *Register, a arch, known bool) string {
	if known && a.groups != nil {
		if g, ok := a.groups[r.Name]; ok {
			return g
		}
	}
	switch r.Type {
	case "ieee_half", "ieee_single", "ieee_double", "i387_ext", "arm_fpa_ext", "bfloat16", "float", "ieee_quad":
		return "float"
	}
	switch p.types[r.Type] {
	case "vector", "union":
		return "vector"
	}
	if strings.HasPrefix(r.Type, "vec") {
		return "vector"
	}
	f := strings.ToLower(r.Feature)
	if strings.HasSuffix(f, ".core") || strings.HasSuffix(f, ".cpu") || strings.HasSuffix(f, ".core64") || f == "" {
		return "general"
	}
	return "system"
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// readTargetXMLLocked fetches and parses target.xml and its includes with
// 'qXfer:features:read:ANNEX:off,len'. mu must be held.
func (c *Client) readTargetXMLLocked(ctx context.Context) (*Layout, error) {
	fetch := func(annex string) ([]byte, error) { return c.xferLocked(ctx, "features", annex) }
	doc, err := fetch("target.xml")
	if err != nil {
		return nil, err
	}
	return ParseTargetXML(doc, fetch)
}

// xferLocked reads a whole qXfer object in chunks that fit the stub.
func (c *Client) xferLocked(ctx context.Context, object, annex string) ([]byte, error) {
	if strings.ContainsAny(annex, ":#$}*") {
		return nil, fmt.Errorf("qxfer annex %q: %w", annex, ErrMalformed)
	}
	chunk := c.cn.maxOut / 2
	if chunk > 0xffb {
		chunk = 0xffb
	}
	var out []byte
	for {
		req := fmt.Sprintf("qXfer:%s:read:%s:%x,%x", object, annex, len(out), chunk)
		rep, err := c.exchange(ctx, "read "+annex, req)
		if err != nil {
			return nil, err
		}
		switch rep[0] {
		case 'l', 'm':
			out = append(out, rep[1:]...)
		default:
			return nil, fmt.Errorf("qxfer %s reply %q: %w", annex, trunc(rep), ErrMalformed)
		}
		if len(out) > maxTdescBytes {
			return nil, fmt.Errorf("qxfer %s: %w", annex, ErrTooLarge)
		}
		if rep[0] == 'l' {
			return out, nil
		}
		if len(rep) == 1 {
			return nil, fmt.Errorf("qxfer %s: empty 'm' chunk: %w", annex, ErrMalformed)
		}
	}
}

// trunc shortens a packet for an error message.
func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
