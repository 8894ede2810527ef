package symbols

import (
	"cmp"
	"debug/dwarf"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lockstep-dev/lockstep/compare"
)

// maxOriginDepth bounds the DW_AT_abstract_origin/DW_AT_specification chain
// followed to name an inlined function.
const maxOriginDepth = 8

// maxUnitScan bounds the backward scan for a unit range holding an address
// among overlapping ones.
const maxUnitScan = 16

// sourceIndex maps code addresses to source lines and inlined calls. It
// indexes the compilation units' address ranges when opened, and a unit's
// line table and inlined subroutines on the first lookup in that unit.
type sourceIndex struct {
	d      *dwarf.Data
	isText func(uint64) bool
	m      *mapping // keeps the sections' mapping alive with the index

	units []unitInfo
	// ranges are the units' address ranges, by start.
	ranges []unitRange

	mu  sync.Mutex // serialises unit builds: one dwarf reader at a time
	err error      // the first unit that failed to index, under mu
}

// unitInfo is one compilation unit.
type unitInfo struct {
	entry *dwarf.Entry
	// end is the offset of the next unit in .debug_info: the DIE walk of
	// this unit never reads past it.
	end     dwarf.Offset
	compDir string
	data    atomic.Pointer[unitData]
}

type unitRange struct {
	lo, hi uint64
	unit   int32
}

// unitData is a unit's line table and inlined calls, by address.
type unitData struct {
	// files are the line table's file names, stripped, by DWARF file
	// index ("" where the table has none).
	files []string
	rows  []lineRow
	segs  []inlineSeg
	calls []inlineCall
}

// lineRow is a line-table row; file < 0 marks the end of a sequence.
type lineRow struct {
	addr uint64
	file int32
	line int32
}

// inlineSeg says that from lo to the next segment's lo the innermost
// inlined call is call (-1: none).
type inlineSeg struct {
	lo   uint64
	call int32
}

// inlineCall is one DW_TAG_inlined_subroutine: the function inlined, its
// call site (file index, line) and the inlined call it sits in (-1: none).
type inlineCall struct {
	fn     string
	file   int32
	line   int32
	parent int32
}

// newSourceIndex indexes d's compilation units by address range. Ranges
// that start outside executable code (code the linker discarded, left at
// address 0) are dropped.
func newSourceIndex(d *dwarf.Data, isText func(uint64) bool, m *mapping) (*sourceIndex, error) {
	x := &sourceIndex{d: d, isText: isText, m: m}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			continue
		}
		if n := len(x.units); n > 0 && x.units[n-1].end == math.MaxUint32 {
			x.units[n-1].end = e.Offset
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			x.addUnit(e)
		}
		r.SkipChildren()
	}
	slices.SortFunc(x.ranges, func(a, b unitRange) int { return cmp.Compare(a.lo, b.lo) })
	return x, nil
}

func (x *sourceIndex) addUnit(e *dwarf.Entry) {
	ui := int32(len(x.units))
	compDir, _ := e.Val(dwarf.AttrCompDir).(string)
	if compDir != "" {
		compDir = path.Clean(compDir)
	}
	x.units = append(x.units, unitInfo{entry: e, end: math.MaxUint32, compDir: compDir})
	rs, err := x.d.Ranges(e)
	if err != nil {
		x.fail(fmt.Errorf("unit at %#x: ranges: %w", e.Offset, err))
		return
	}
	for _, r := range rs {
		if r[1] > r[0] && x.isText(r[0]) {
			x.ranges = append(x.ranges, unitRange{r[0], r[1], ui})
		}
	}
}

// fail records the first error met while indexing.
func (x *sourceIndex) fail(err error) {
	if x.err == nil {
		x.err = err
	}
}

func (x *sourceIndex) firstErr() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// lookup implements Table.Source.
func (x *sourceIndex) lookup(addr uint64) (file string, line int, inlined []compare.InlinedFrame, ok bool) {
	ui := x.unitOf(addr)
	if ui < 0 {
		return "", 0, nil, false
	}
	ud := x.unit(ui)
	i := sort.Search(len(ud.rows), func(k int) bool { return ud.rows[k].addr > addr }) - 1
	if i < 0 || ud.rows[i].line <= 0 || ud.file(ud.rows[i].file) == "" {
		return "", 0, nil, false
	}
	row := ud.rows[i]
	j := sort.Search(len(ud.segs), func(k int) bool { return ud.segs[k].lo > addr }) - 1
	if j >= 0 {
		n := 0 // the chain's length, bounded against a parent cycle
		for c := ud.segs[j].call; c >= 0 && n < len(ud.calls); c = ud.calls[c].parent {
			n++
		}
		if n > 0 {
			inlined = make([]compare.InlinedFrame, 0, n)
		}
		for c := ud.segs[j].call; c >= 0 && len(inlined) < n; c = ud.calls[c].parent {
			call := ud.calls[c]
			inlined = append(inlined, compare.InlinedFrame{Function: call.fn, File: ud.file(call.file), Line: int(call.line)})
		}
	}
	return ud.file(row.file), int(row.line), inlined, true
}

func (ud *unitData) file(i int32) string {
	if i < 0 || int(i) >= len(ud.files) {
		return ""
	}
	return ud.files[i]
}

// unitOf returns the unit whose ranges hold addr, or -1.
func (x *sourceIndex) unitOf(addr uint64) int {
	i := sort.Search(len(x.ranges), func(k int) bool { return x.ranges[k].lo > addr }) - 1
	for n := 0; i >= 0 && n < maxUnitScan; i, n = i-1, n+1 {
		if addr < x.ranges[i].hi {
			return int(x.ranges[i].unit)
		}
	}
	return -1
}

// unit returns unit ui's data, indexing it on first use. A unit that fails
// to index keeps what was read before the failure, and the failure is
// kept for SourceErr.
func (x *sourceIndex) unit(ui int) *unitData {
	u := &x.units[ui]
	if ud := u.data.Load(); ud != nil {
		return ud
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if ud := u.data.Load(); ud != nil {
		return ud
	}
	var ud *unitData
	err := guarded(func() error {
		var err error
		ud, err = buildUnit(x.d, u, x.isText)
		return err
	})
	if ud == nil {
		ud = &unitData{}
	}
	if err != nil {
		x.fail(fmt.Errorf("unit at %#x: %w", u.entry.Offset, err))
	}
	u.data.Store(ud)
	return ud
}

// buildUnit reads unit u's line table and inlined subroutines. On error it
// returns what it has so far with the error.
func buildUnit(d *dwarf.Data, u *unitInfo, isText func(uint64) bool) (*unitData, error) {
	ud := &unitData{}
	if err := ud.readLines(d, u, isText); err != nil {
		return ud, fmt.Errorf("line table: %w", err)
	}
	if err := ud.readInlines(d, u, isText); err != nil {
		return ud, fmt.Errorf("inlined subroutines: %w", err)
	}
	return ud, nil
}

// readLines reads the unit's line table into rows, sorted by address with
// a sequence's end before a row that starts another at the same address.
// Sequences that start outside executable code are dropped.
func (ud *unitData) readLines(d *dwarf.Data, u *unitInfo, isText func(uint64) bool) error {
	lr, err := d.LineReader(u.entry)
	if err != nil || lr == nil {
		return err
	}
	fileIdx := map[*dwarf.LineFile]int32{}
	indexOf := func(f *dwarf.LineFile) int32 {
		if f == nil {
			return -1
		}
		if i, ok := fileIdx[f]; ok {
			return i
		}
		for i, g := range lr.Files() { // the table grew (DW_LNE_define_file)
			if g != nil {
				fileIdx[g] = int32(i)
			}
		}
		if i, ok := fileIdx[f]; ok {
			return i
		}
		return -1
	}
	var seq []lineRow
	var le dwarf.LineEntry
	for {
		if err := lr.Next(&le); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			ud.setFiles(lr.Files(), u.compDir)
			return err
		}
		if !le.EndSequence {
			line := int32(min(le.Line, math.MaxInt32))
			seq = append(seq, lineRow{addr: le.Address, file: indexOf(le.File), line: line})
			continue
		}
		// Rows at the end address itself cover nothing.
		for len(seq) > 0 && seq[len(seq)-1].addr >= le.Address {
			seq = seq[:len(seq)-1]
		}
		if len(seq) > 0 && isText(seq[0].addr) {
			ud.rows = append(ud.rows, seq...)
			ud.rows = append(ud.rows, lineRow{addr: le.Address, file: -1})
		}
		seq = seq[:0]
	}
	slices.SortStableFunc(ud.rows, func(a, b lineRow) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return cmp.Compare(min(a.file, 0), min(b.file, 0)) // an end (-1) first
	})
	ud.setFiles(lr.Files(), u.compDir)
	return nil
}

// setFiles keeps the line table's file names, stripped of the compilation
// directory and DefaultSourceStrip.
func (ud *unitData) setFiles(files []*dwarf.LineFile, compDir string) {
	ud.files = make([]string, len(files))
	for i, f := range files {
		if f != nil {
			ud.files[i] = cleanSourcePath(f.Name, compDir)
		}
	}
}

// cleanSourcePath makes name relative to the build directory where it lies
// in it: compDir, then DefaultSourceStrip, are removed.
func cleanSourcePath(name, compDir string) string {
	if compDir != "" && compDir != "/" && compDir != "." {
		if rest, ok := strings.CutPrefix(name, compDir+"/"); ok && rest != "" {
			return rest
		}
	}
	return StripSource(name, DefaultSourceStrip)
}

// readInlines walks the unit's DIEs for DW_TAG_inlined_subroutine, names
// each through its abstract origin, and lays their ranges out as
// segments: at each address, the innermost inlined call.
func (ud *unitData) readInlines(d *dwarf.Data, u *unitInfo, isText func(uint64) bool) error {
	if !u.entry.Children {
		return nil
	}
	r := d.Reader()
	r.Seek(u.entry.Offset)
	if _, err := r.Next(); err != nil { // the unit's own DIE
		return err
	}
	names := &originNames{d: d, r: d.Reader(), cache: map[dwarf.Offset]string{}}
	var ivs []inlineInterval
	stack := []int32{-1} // per open DIE level: the innermost inlined call
	var err error
	for len(stack) > 0 {
		var e *dwarf.Entry
		if e, err = r.Next(); err != nil || e == nil || e.Offset >= u.end {
			break
		}
		if e.Tag == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		cur := stack[len(stack)-1]
		if e.Tag == dwarf.TagInlinedSubroutine {
			var rs [][2]uint64
			if rs, err = d.Ranges(e); err != nil {
				break
			}
			call := inlineCall{fn: names.of(e), file: -1, line: -1, parent: cur}
			if f, ok := e.Val(dwarf.AttrCallFile).(int64); ok && f >= 0 && f < math.MaxInt32 {
				call.file = int32(f)
			}
			if l, ok := e.Val(dwarf.AttrCallLine).(int64); ok && l >= 0 && l < math.MaxInt32 {
				call.line = int32(l)
			}
			cur = int32(len(ud.calls))
			ud.calls = append(ud.calls, call)
			for _, rg := range rs {
				if rg[1] > rg[0] && isText(rg[0]) {
					ivs = append(ivs, inlineInterval{lo: rg[0], hi: rg[1], call: cur, depth: int32(len(stack))})
				}
			}
		}
		if e.Children {
			if holdsCode(e.Tag) {
				stack = append(stack, cur)
			} else {
				r.SkipChildren() // types, call sites: no inlined code
			}
		}
	}
	ud.segs = inlineSegments(ivs)
	return err
}

// holdsCode reports whether a DIE with this tag may have inlined
// subroutines among its descendants. Types (a kernel unit is mostly
// struct members) are skipped, through DW_AT_sibling where the compiler
// gave one.
func holdsCode(tag dwarf.Tag) bool {
	switch tag {
	case dwarf.TagSubprogram, dwarf.TagLexDwarfBlock, dwarf.TagInlinedSubroutine,
		dwarf.TagNamespace, dwarf.TagModule, dwarf.TagCompileUnit, dwarf.TagPartialUnit:
		return true
	}
	return false
}

// inlineInterval is one address range of an inlined call, at a DIE depth.
type inlineInterval struct {
	lo, hi uint64
	call   int32
	depth  int32
}

// inlineSegments flattens nested intervals into segments, each naming the
// innermost call over it. Intervals are expected to nest (an inlined
// call's ranges lie within its caller's); ones that overlap without
// nesting are resolved in start order without breaking the segment order.
func inlineSegments(ivs []inlineInterval) []inlineSeg {
	if len(ivs) == 0 {
		return nil
	}
	slices.SortFunc(ivs, func(a, b inlineInterval) int {
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		if c := cmp.Compare(b.hi, a.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.depth, b.depth)
	})
	var segs []inlineSeg
	var stack []inlineInterval
	set := func(at uint64) {
		call := int32(-1)
		if n := len(stack); n > 0 {
			call = stack[n-1].call
		}
		if n := len(segs); n > 0 {
			last := &segs[n-1]
			switch {
			case at < last.lo:
				return // badly nested: keep the segments ordered
			case at == last.lo:
				last.call = call
				return
			case last.call == call:
				return
			}
		}
		segs = append(segs, inlineSeg{lo: at, call: call})
	}
	popUntil := func(lo uint64) {
		for n := len(stack); n > 0 && stack[n-1].hi <= lo; n = len(stack) {
			end := stack[n-1].hi
			stack = stack[:n-1]
			// Badly nested: callers that ended first end here too.
			for n := len(stack); n > 0 && stack[n-1].hi <= end; n = len(stack) {
				stack = stack[:n-1]
			}
			set(end)
		}
	}
	for _, iv := range ivs {
		popUntil(iv.lo)
		stack = append(stack, iv)
		set(iv.lo)
	}
	popUntil(math.MaxUint64)
	return segs
}

// originNames names inlined functions through DW_AT_abstract_origin and
// DW_AT_specification, caching by DIE offset.
type originNames struct {
	d     *dwarf.Data
	r     *dwarf.Reader
	cache map[dwarf.Offset]string
}

// of returns the name of the function e is an instance of, or "??".
func (o *originNames) of(e *dwarf.Entry) string {
	for n := 0; e != nil && n < maxOriginDepth; n++ {
		if name, ok := e.Val(dwarf.AttrName).(string); ok && name != "" {
			return name
		}
		off, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if !ok {
			if off, ok = e.Val(dwarf.AttrSpecification).(dwarf.Offset); !ok {
				break
			}
		}
		if name, ok := o.cache[off]; ok {
			return name
		}
		o.r.Seek(off)
		next, err := o.r.Next()
		if err != nil || next == nil {
			break
		}
		if name, ok := next.Val(dwarf.AttrName).(string); ok && name != "" {
			o.cache[off] = name
			return name
		}
		e = next
	}
	return "??"
}
