package compare

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
)

// RowSize is the number of bytes in a HexRow.
const RowSize = 16

// MaxRows bounds the hexdump rows a MemoryDiff keeps (differing rows and
// their context, 64 KiB of each side's bytes). A range that differs in more
// rows still counts every differing byte; its dump stops there and
// Truncated is set.
const MaxRows = 4096

// chunkSize is how much of each side MemoryFrom reads at a time.
const chunkSize = 1 << 20

// MemOptions controls Memory.
type MemOptions struct {
	// Context is the number of equal rows shown around each differing
	// row: 0 means the default of 1, a negative value means none.
	Context int
	// PtrSize is the pointer size in bytes (4 or 8); 0 disables pointer
	// symbolisation.
	PtrSize int
	// BigEndian selects the byte order of pointer words.
	BigEndian bool
	// Symbolize, when set (different builds), resolves pointer words on
	// each side: aligned words that both symbolise to the same
	// symbol+offset count as equal.
	Symbolize [2]SymbolizeFunc
}

// symbolizing reports whether pointer words are symbolised.
func (o MemOptions) symbolizing() bool {
	return (o.PtrSize == 4 || o.PtrSize == 8) && o.Symbolize[0] != nil && o.Symbolize[1] != nil
}

// Source is one side's bytes of a compared range: a byte slice
// (bytes.Reader) or a dump file (io.SectionReader), read in chunks.
type Source interface {
	io.ReaderAt
	Size() int64
}

// Memory compares a range read from both sides and returns nil when it is
// equal. Bytes present on only one side (the reads differ in length) count
// as different. Rows are 16 bytes from the range start; runs of equal rows
// beyond Context rows of a differing one collapse into one Skipped row.
func Memory(name, space string, addr [2]uint64, a, b []byte, opt MemOptions) *MemoryDiff {
	// Reading from memory cannot fail.
	d, _ := MemoryFrom(name, space, addr, bytes.NewReader(a), bytes.NewReader(b), opt)
	return d
}

// MemoryFrom is Memory over two sources, read a chunk at a time so that a
// bulk dump of any size is compared in bounded memory: the result is the
// same as Memory's over the whole contents. The error is a failed read.
func MemoryFrom(name, space string, addr [2]uint64, a, b Source, opt MemOptions) (*MemoryDiff, error) {
	return memoryChunked(name, space, addr, a, b, opt, chunkSize)
}

// maxPad is how far past a chunk's ends its window reaches when pointers
// are symbolised, so that a word straddling a chunk boundary is seen whole.
const maxPad = 8

func memoryChunked(name, space string, addr [2]uint64, a, b Source, opt MemOptions, chunk int) (*MemoryDiff, error) {
	na, nb := int(a.Size()), int(b.Size())
	n := max(na, nb)
	d := &MemoryDiff{Name: name, Space: space, Addr: addr, Length: n, FirstOffset: -1}
	ctx := opt.Context
	switch {
	case ctx == 0:
		ctx = 1
	case ctx < 0:
		ctx = 0
	}
	w := newRowWriter(d, ctx)
	pad := 0
	if opt.symbolizing() {
		pad = maxPad
	}
	bufA := make([]byte, min(n, chunk+2*pad))
	bufB := make([]byte, min(n, chunk+2*pad))
	diff := make([]bool, min(n, chunk))
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		wlo, whi := max(0, lo-pad), min(n, hi+pad)
		wa, err := window(a, bufA, wlo, min(whi, na))
		if err != nil {
			return nil, fmt.Errorf("memory %s: side a: %w", name, err)
		}
		wb, err := window(b, bufB, wlo, min(whi, nb))
		if err != nil {
			return nil, fmt.Errorf("memory %s: side b: %w", name, err)
		}
		c := chunkView{lo: lo, hi: hi, wlo: wlo, a: wa, b: wb, na: na, nb: nb, diff: diff[:hi-lo]}
		if c.mark() {
			symbolicPointers(addr, &c, opt)
			for i, x := range c.diff {
				if x {
					c.ndiff++
					if d.FirstOffset < 0 {
						d.FirstOffset = lo + i
					}
				}
			}
			d.DiffBytes += c.ndiff
		}
		for r := lo; r < hi; {
			if e := w.equalRun(&c, r); e > r {
				r = e
				continue
			}
			w.row(&c, r, min(hi, r+RowSize))
			r += RowSize
		}
	}
	if d.DiffBytes == 0 {
		return nil, nil
	}
	w.finish()
	return d, nil
}

// window reads [lo, hi) of s into buf; an empty range gives no bytes.
func window(s Source, buf []byte, lo, hi int) ([]byte, error) {
	if hi <= lo {
		return nil, nil
	}
	out := buf[:hi-lo]
	if n, err := s.ReadAt(out, int64(lo)); err != nil && !(err == io.EOF && n == len(out)) {
		return nil, err
	}
	return out, nil
}

// chunkView is one chunk [lo, hi) of the range, with each side's bytes of
// a window starting at wlo around it (cut short where that side ends).
type chunkView struct {
	lo, hi, wlo int
	a, b        []byte
	na, nb      int
	diff        []bool // per byte of [lo, hi)
	ndiff       int    // marks set in diff
}

// span returns the bytes of side (c.a or c.b) in [lo, hi) that it has.
func (c *chunkView) span(side []byte, lo, hi int) []byte {
	lo, hi = max(lo-c.wlo, 0), min(hi-c.wlo, len(side))
	if hi <= lo {
		return nil
	}
	return side[lo:hi]
}

// mark sets the raw diff marks of the chunk (a byte differs, or only one
// side has it) and reports whether any is set.
func (c *chunkView) mark() bool {
	a, b := c.span(c.a, c.lo, c.hi), c.span(c.b, c.lo, c.hi)
	if len(a) == len(c.diff) && bytes.Equal(a, b) {
		clear(c.diff)
		return false
	}
	for i := range c.diff {
		c.diff[i] = i >= len(a) || i >= len(b) || a[i] != b[i]
	}
	return true
}

// symbolicPointers clears the diff marks of aligned pointer words that
// differ raw but symbolise to the same symbol+offset on both sides.
func symbolicPointers(addr [2]uint64, c *chunkView, opt MemOptions) {
	if !opt.symbolizing() {
		return
	}
	p := opt.PtrSize
	// Align on side A's addresses; a word is only considered when it is
	// aligned on both sides.
	start := int((uint64(p) - addr[0]%uint64(p)) % uint64(p))
	if (addr[0]+uint64(start))%uint64(p) != 0 || (addr[1]+uint64(start))%uint64(p) != 0 {
		return
	}
	// Every word that overlaps the chunk, read whole from the window.
	first := start
	if from := c.lo - p + 1; from > start {
		first = start + (from-start+p-1)/p*p
	}
	common := min(c.na, c.nb)
	for off := first; off < c.hi && off+p <= common; off += p {
		wa := c.a[off-c.wlo : off-c.wlo+p]
		wb := c.b[off-c.wlo : off-c.wlo+p]
		if bytes.Equal(wa, wb) {
			continue
		}
		la, oka := symOf(opt.Symbolize[0], word(wa, opt.BigEndian))
		lb, okb := symOf(opt.Symbolize[1], word(wb, opt.BigEndian))
		if oka && okb && la.Symbol == lb.Symbol && la.Offset == lb.Offset {
			for i := max(off, c.lo); i < min(off+p, c.hi); i++ {
				c.diff[i-c.lo] = false
			}
		}
	}
}

// heldRow is a row kept aside as possible context for a later differing
// row, as bytes (it is hex-encoded only if it is shown).
type heldRow struct {
	off    int
	a, b   [RowSize]byte
	na, nb int
	diff   [RowSize]bool
	nd     int
}

func (h *heldRow) hexRow() HexRow {
	r := HexRow{Offset: h.off, Diff: slices.Clone(h.diff[:h.nd])}
	if h.na > 0 {
		r.A = hex.EncodeToString(h.a[:h.na])
	}
	if h.nb > 0 {
		r.B = hex.EncodeToString(h.b[:h.nb])
	}
	return r
}

// rowWriter turns rows, in order, into a MemoryDiff's Rows: differing rows
// with ctx rows of context either side, runs of other rows collapsed, at
// most MaxRows shown.
type rowWriter struct {
	d        *MemoryDiff
	ctx      int
	lastDiff int // index of the last differing row, or -1
	// A run of hidden rows: skipped rows from skipOff, then held (the
	// last ctx hidden rows, context if a differing row follows).
	skipOff, skipped int
	held             []heldRow
	heldN            int // rows in held, oldest at held[heldHead]
	heldHead         int
	shown            int
}

func newRowWriter(d *MemoryDiff, ctx int) *rowWriter {
	return &rowWriter{d: d, ctx: ctx, lastDiff: -1, held: make([]heldRow, ctx)}
}

// row takes the row [lo, hi) of chunk c.
func (w *rowWriter) row(c *chunkView, lo, hi int) {
	if w.d.Truncated {
		return
	}
	h := heldRow{off: lo, nd: hi - lo}
	copy(h.diff[:], c.diff[lo-c.lo:hi-c.lo])
	isDiff := slices.Contains(h.diff[:h.nd], true)
	h.na = copy(h.a[:], c.span(c.a, lo, hi))
	h.nb = copy(h.b[:], c.span(c.b, lo, hi))
	r := lo / RowSize
	switch {
	case isDiff:
		w.flushSkipped()
		for k := range w.heldN {
			w.emit(&w.held[(w.heldHead+k)%len(w.held)])
		}
		w.heldN, w.heldHead = 0, 0
		w.emit(&h)
		w.lastDiff = r
	case w.lastDiff >= 0 && r-w.lastDiff <= w.ctx:
		w.emit(&h)
	default:
		w.hide(h)
	}
}

// equalRun hides, at once, the rows from lo that are equal, outside the
// context of the last differing row and more than ctx rows before the
// chunk's next differing row or end, and returns where it stopped (lo if
// it hid none): a large equal range costs no work per row.
func (w *rowWriter) equalRun(c *chunkView, lo int) int {
	if w.d.Truncated {
		return c.hi
	}
	if w.lastDiff >= 0 && lo/RowSize-w.lastDiff <= w.ctx {
		return lo
	}
	end := c.hi
	if c.ndiff > 0 {
		if i := slices.Index(c.diff[lo-c.lo:], true); i >= 0 {
			end = lo + i/RowSize*RowSize
		}
	}
	end -= w.ctx * RowSize // the rows before end that may become context
	if end-lo < 2*RowSize {
		return lo
	}
	end = lo + (end-lo)/RowSize*RowSize
	for k := range w.heldN {
		w.skip(w.held[(w.heldHead+k)%len(w.held)].off)
	}
	w.heldN, w.heldHead = 0, 0
	w.skip(lo)
	w.skipped += (end-lo)/RowSize - 1
	return end
}

// hide keeps a row that is not shown (yet) aside.
func (w *rowWriter) hide(h heldRow) {
	if w.ctx == 0 {
		w.skip(h.off)
		return
	}
	if w.heldN == w.ctx {
		w.skip(w.held[w.heldHead].off)
		w.held[w.heldHead] = h
		w.heldHead = (w.heldHead + 1) % len(w.held)
		return
	}
	w.held[(w.heldHead+w.heldN)%len(w.held)] = h
	w.heldN++
}

func (w *rowWriter) skip(off int) {
	if w.skipped == 0 {
		w.skipOff = off
	}
	w.skipped++
}

func (w *rowWriter) flushSkipped() {
	if w.skipped > 0 && !w.d.Truncated {
		w.d.Rows = append(w.d.Rows, HexRow{Offset: w.skipOff, Skipped: w.skipped})
	}
	w.skipped = 0
}

func (w *rowWriter) emit(h *heldRow) {
	if w.shown == MaxRows {
		w.d.Truncated = true
		return
	}
	w.shown++
	w.d.Rows = append(w.d.Rows, h.hexRow())
}

// finish collapses the hidden rows at the end.
func (w *rowWriter) finish() {
	for k := range w.heldN {
		w.skip(w.held[(w.heldHead+k)%len(w.held)].off)
	}
	w.heldN = 0
	w.flushSkipped()
}

// DiffOffsets calls fn with the offset of every byte that differs between
// a and b, over the length both have, in increasing order, until fn
// returns false; it reads a chunk at a time.
func DiffOffsets(a, b Source, fn func(off int64) bool) error {
	n := min(a.Size(), b.Size())
	bufA := make([]byte, min(n, chunkSize))
	bufB := make([]byte, min(n, chunkSize))
	for lo := int64(0); lo < n; lo += chunkSize {
		hi := min(n, lo+chunkSize)
		wa, err := window(a, bufA, int(lo), int(hi))
		if err != nil {
			return err
		}
		wb, err := window(b, bufB, int(lo), int(hi))
		if err != nil {
			return err
		}
		for i := range wa {
			if wa[i] != wb[i] && !fn(lo+int64(i)) {
				return nil
			}
		}
	}
	return nil
}

func word(b []byte, bigEndian bool) uint64 {
	if len(b) == 4 {
		if bigEndian {
			return uint64(binary.BigEndian.Uint32(b))
		}
		return uint64(binary.LittleEndian.Uint32(b))
	}
	if bigEndian {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// Offsets returns the offsets, from the range start, of the bytes marked
// as differing in md's hexdump rows, in increasing order.
func (md *MemoryDiff) Offsets() []int {
	var offs []int
	for _, row := range md.Rows {
		if row.Skipped > 0 {
			continue
		}
		for i, d := range row.Diff {
			if d {
				offs = append(offs, row.Offset+i)
			}
		}
	}
	slices.Sort(offs)
	return slices.Compact(offs)
}

// Words returns the offsets of the words of size word that hold differing
// bytes of md, in increasing order, at most limit of them.
func (md *MemoryDiff) Words(word, limit int) []int {
	var out []int
	for _, o := range md.Offsets() {
		w := o / word * word
		if len(out) > 0 && out[len(out)-1] == w {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, w)
	}
	return out
}
