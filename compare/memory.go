package compare

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// RowSize is the number of bytes in a HexRow.
const RowSize = 16

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

// Memory compares a range read from both sides and returns nil when it is
// equal. Bytes present on only one side (the reads differ in length) count
// as different. Rows are 16 bytes from the range start; runs of equal rows
// beyond Context rows of a differing one collapse into one Skipped row.
func Memory(name, space string, addr [2]uint64, a, b []byte, opt MemOptions) *MemoryDiff {
	n := max(len(a), len(b))
	diff := make([]bool, n)
	for i := range n {
		diff[i] = i >= len(a) || i >= len(b) || a[i] != b[i]
	}
	symbolicPointers(addr, a, b, diff, opt)
	d := &MemoryDiff{Name: name, Space: space, Addr: addr, Length: n, FirstOffset: -1}
	for i, x := range diff {
		if x {
			d.DiffBytes++
			if d.FirstOffset < 0 {
				d.FirstOffset = i
			}
		}
	}
	if d.DiffBytes == 0 {
		return nil
	}
	ctx := opt.Context
	switch {
	case ctx == 0:
		ctx = 1
	case ctx < 0:
		ctx = 0
	}
	rows := (n + RowSize - 1) / RowSize
	rowDiff := make([]bool, rows)
	for i, x := range diff {
		if x {
			rowDiff[i/RowSize] = true
		}
	}
	show := make([]bool, rows)
	for r, x := range rowDiff {
		if !x {
			continue
		}
		for k := max(0, r-ctx); k <= min(rows-1, r+ctx); k++ {
			show[k] = true
		}
	}
	for r := 0; r < rows; {
		if !show[r] {
			s := r
			for r < rows && !show[r] {
				r++
			}
			d.Rows = append(d.Rows, HexRow{Offset: s * RowSize, Skipped: r - s})
			continue
		}
		lo, hi := r*RowSize, min(n, (r+1)*RowSize)
		d.Rows = append(d.Rows, HexRow{
			Offset: lo,
			A:      hexSlice(a, lo, hi),
			B:      hexSlice(b, lo, hi),
			Diff:   append([]bool(nil), diff[lo:hi]...),
		})
		r++
	}
	return d
}

// symbolicPointers clears the diff marks of aligned pointer words that
// differ raw but symbolise to the same symbol+offset on both sides.
func symbolicPointers(addr [2]uint64, a, b []byte, diff []bool, opt MemOptions) {
	p := opt.PtrSize
	if (p != 4 && p != 8) || opt.Symbolize[0] == nil || opt.Symbolize[1] == nil {
		return
	}
	// Align on side A's addresses; a word is only considered when it is
	// aligned on both sides.
	start := int((uint64(p) - addr[0]%uint64(p)) % uint64(p))
	if (addr[0]+uint64(start))%uint64(p) != 0 || (addr[1]+uint64(start))%uint64(p) != 0 {
		return
	}
	for off := start; off+p <= len(a) && off+p <= len(b); off += p {
		changed := false
		for i := off; i < off+p; i++ {
			changed = changed || diff[i]
		}
		if !changed {
			continue
		}
		la, oka := symOf(opt.Symbolize[0], word(a[off:off+p], opt.BigEndian))
		lb, okb := symOf(opt.Symbolize[1], word(b[off:off+p], opt.BigEndian))
		if oka && okb && la.Symbol == lb.Symbol && la.Offset == lb.Offset {
			for i := off; i < off+p; i++ {
				diff[i] = false
			}
		}
	}
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

func hexSlice(b []byte, lo, hi int) string {
	if lo >= len(b) {
		return ""
	}
	return hex.EncodeToString(b[lo:min(hi, len(b))])
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
