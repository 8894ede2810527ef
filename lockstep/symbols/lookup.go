package symbols

import (
	"fmt"
	"os"
	"sort"

	"github.com/lockstep-dev/lockstep/compare"
)

// maxLabelDistance bounds how far past a size-0 text label an address may
// be and still be symbolised by it.
const maxLabelDistance = 64 << 10

// maxWalk bounds the backward scan for a containing symbol among
// overlapping ones.
const maxWalk = 4096

// Symbolize returns addr as symbol+offset. A symbol contains addr when
// addr lies in [Addr, Addr+Size); among several, FUNC and OBJECT symbols
// win over untyped ones, then the innermost (highest start). An address in
// no sized symbol but in an executable section is attributed to the
// nearest preceding size-0 text symbol of the same section within 64 KiB
// (assembly labels). Otherwise ok is false and only Location.Addr is set.
func (t *Table) Symbolize(addr uint64) (compare.Location, bool) {
	loc := compare.Location{Addr: addr}
	best := int32(-1)
	// Last sized symbol starting at or before addr.
	i := sort.Search(len(t.sized), func(k int) bool { return t.syms[t.sized[k]].Addr > addr }) - 1
	for n := 0; i >= 0 && n < maxWalk; i, n = i-1, n+1 {
		if t.maxEnd[i] <= addr {
			break // no symbol at or before i reaches addr
		}
		idx := t.sized[i]
		s := &t.syms[idx]
		if addr >= s.Addr+s.Size {
			continue
		}
		if best < 0 || t.rank(idx) > t.rank(best) {
			best = idx
		}
	}
	if best < 0 {
		best = t.label(addr)
	}
	if best < 0 {
		if idx, ok := t.marks[addr]; ok {
			best = idx
		}
	}
	if best < 0 {
		return loc, false
	}
	loc.Symbol = t.syms[best].Name
	loc.Offset = addr - t.syms[best].Addr
	return loc, true
}

// label returns the size-0 text symbol that addr falls after, or -1.
func (t *Table) label(addr uint64) int32 {
	sec, ok := t.section(addr)
	if !ok || !sec.exec {
		return -1
	}
	i := sort.Search(len(t.labels), func(k int) bool { return t.syms[t.labels[k]].Addr > addr }) - 1
	if i < 0 {
		return -1
	}
	idx := t.labels[i]
	l := t.syms[idx]
	if addr-l.Addr >= maxLabelDistance || l.Addr < sec.addr {
		return -1
	}
	// A sized symbol starting between the label and addr ends the
	// label's reach: addr is past that symbol's end, in padding.
	j := sort.Search(len(t.sized), func(k int) bool { return t.syms[t.sized[k]].Addr > addr }) - 1
	if j >= 0 && t.syms[t.sized[j]].Addr > l.Addr {
		return -1
	}
	return idx
}

// section returns the allocated section holding addr.
func (t *Table) section(addr uint64) (*section, bool) {
	i := sort.Search(len(t.secs), func(k int) bool { return t.secs[k].addr > addr }) - 1
	// Sections may overlap (e.g. per-cpu at 0); scan back a little.
	for n := 0; i >= 0 && n < 8; i, n = i-1, n+1 {
		s := &t.secs[i]
		if addr >= s.addr && addr-s.addr < s.size {
			return s, true
		}
	}
	return nil, false
}

// IsText reports whether addr lies in an executable section.
func (t *Table) IsText(addr uint64) bool {
	s, ok := t.section(addr)
	return ok && s.exec
}

// ReadAt returns n bytes at virtual address addr from the file's section
// contents (PROGBITS and other non-NOBITS allocated sections), e.g. to
// disassemble code the guest cannot read yet. The range may span adjacent
// sections but not a gap or a NOBITS section; that is ErrNotInFile.
func (t *Table) ReadAt(addr uint64, n int) ([]byte, error) {
	if n < 0 || n > 1<<30 {
		return nil, fmt.Errorf("symbols: read %d bytes at %#x: bad length", n, addr)
	}
	out := make([]byte, 0, n)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for len(out) < n {
		cur := addr + uint64(len(out))
		s, ok := t.fileSection(cur)
		if !ok {
			return nil, fmt.Errorf("symbols: read %#x+%d at %#x: %w", addr, n, cur, ErrNotInFile)
		}
		off := cur - s.addr
		k := min(uint64(n-len(out)), s.fileSize-off)
		if f == nil {
			var err error
			if f, err = os.Open(t.path); err != nil {
				return nil, fmt.Errorf("symbols: read %#x: %w", addr, err)
			}
		}
		buf := make([]byte, k)
		if _, err := f.ReadAt(buf, int64(s.offset+off)); err != nil {
			return nil, fmt.Errorf("symbols: read %#x from %s: %w", cur, s.name, err)
		}
		out = append(out, buf...)
	}
	return out, nil
}

// fileSection returns a section whose file bytes hold addr.
func (t *Table) fileSection(addr uint64) (*section, bool) {
	i := sort.Search(len(t.secs), func(k int) bool { return t.secs[k].addr > addr }) - 1
	for n := 0; i >= 0 && n < 8; i, n = i-1, n+1 {
		s := &t.secs[i]
		if s.inFile && addr >= s.addr && addr-s.addr < s.fileSize {
			return s, true
		}
	}
	return nil, false
}

// Section returns the name of the allocated section holding addr.
func (t *Table) Section(addr uint64) (string, bool) {
	s, ok := t.section(addr)
	if !ok {
		return "", false
	}
	return s.name, true
}

// FileOffset returns the section whose bytes in the file hold addr and
// addr's offset in the file: where an initialised value comes from.
func (t *Table) FileOffset(addr uint64) (section string, off uint64, ok bool) {
	s, ok := t.fileSection(addr)
	if !ok {
		return "", 0, false
	}
	return s.name, s.offset + (addr - s.addr), true
}
