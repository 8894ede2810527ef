package compare

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

// memoryWhole is the whole-slice comparison MemoryFrom replaced, kept as
// the oracle its chunked result must equal.
func memoryWhole(name, space string, addr [2]uint64, a, b []byte, opt MemOptions) *MemoryDiff {
	n := max(len(a), len(b))
	diff := make([]bool, n)
	for i := range n {
		diff[i] = i >= len(a) || i >= len(b) || a[i] != b[i]
	}
	if p := opt.PtrSize; (p == 4 || p == 8) && opt.Symbolize[0] != nil && opt.Symbolize[1] != nil {
		start := int((uint64(p) - addr[0]%uint64(p)) % uint64(p))
		if (addr[0]+uint64(start))%uint64(p) == 0 && (addr[1]+uint64(start))%uint64(p) == 0 {
			for off := start; off+p <= len(a) && off+p <= len(b); off += p {
				if bytes.Equal(a[off:off+p], b[off:off+p]) {
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
	}
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
	show := make([]bool, rows)
	for i, x := range diff {
		if x {
			r := i / RowSize
			for k := max(0, r-ctx); k <= min(rows-1, r+ctx); k++ {
				show[k] = true
			}
		}
	}
	hexOf := func(b []byte, lo, hi int) string {
		if lo >= len(b) {
			return ""
		}
		return hex.EncodeToString(b[lo:min(hi, len(b))])
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
		d.Rows = append(d.Rows, HexRow{Offset: lo, A: hexOf(a, lo, hi), B: hexOf(b, lo, hi), Diff: append([]bool(nil), diff[lo:hi]...)})
		r++
	}
	return d
}

// checkChunked compares a and b chunked at several sizes against the
// whole-slice oracle.
func checkChunked(t *testing.T, addr [2]uint64, a, b []byte, opt MemOptions) {
	t.Helper()
	want := memoryWhole("m", "virtual", addr, a, b, opt)
	for _, chunk := range []int{16, 32, 48, 64, 4096, chunkSize} {
		got, err := memoryChunked("m", "virtual", addr, bytes.NewReader(a), bytes.NewReader(b), opt, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunk %d, ctx %d, ptr %d, addr %#x, len %d/%d:\n got %+v\nwant %+v", chunk, opt.Context, opt.PtrSize, addr, len(a), len(b), got, want)
		}
	}
}

// TestMemoryChunkedMatchesWhole checks that comparing a chunk at a time
// gives exactly the rows, counts and pointer symbolisation of comparing
// the whole ranges, whatever the chunk size, context and alignment.
func TestMemoryChunkedMatchesWhole(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	sym := [2]SymbolizeFunc{layout(0x1000), layout(0x1100)}
	for range 400 {
		n := rng.IntN(300)
		a := make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(a[i:], 0x1000+uint64(rng.IntN(0x40)))
		}
		b := bytes.Clone(a)
		for range rng.IntN(6) {
			if n == 0 {
				break
			}
			switch off := rng.IntN(n); rng.IntN(3) {
			case 0: // a raw change
				b[off] ^= byte(1 + rng.IntN(255))
			default: // a pointer moved with the layout: symbolically equal
				if w := off / 8 * 8; w+8 <= n {
					binary.LittleEndian.PutUint64(b[w:], binary.LittleEndian.Uint64(a[w:])+0x100)
				}
			}
		}
		switch rng.IntN(4) {
		case 0:
			b = b[:rng.IntN(n+1)]
		case 1:
			b = append(b, make([]byte, rng.IntN(40))...)
		}
		opt := MemOptions{Context: rng.IntN(4) - 1}
		if rng.IntN(2) == 0 {
			opt.PtrSize, opt.Symbolize = []int{4, 8}[rng.IntN(2)], sym
		}
		addr := [2]uint64{0x8000 + uint64(rng.IntN(3)*4), 0x9000 + uint64(rng.IntN(3)*4)}
		checkChunked(t, addr, a, b, opt)
	}
}

// FuzzMemoryChunked checks the chunked comparison against the whole-slice
// oracle on arbitrary contents. Seeds are in testdata/fuzz/FuzzMemoryChunked.
func FuzzMemoryChunked(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef0123x56789abcdef"), 0, uint8(8), uint8(4))
	f.Fuzz(func(t *testing.T, a, b []byte, ctx int, ptr, misalign uint8) {
		opt := MemOptions{Context: ctx % 5}
		if ptr == 4 || ptr == 8 {
			opt.PtrSize, opt.Symbolize = int(ptr), [2]SymbolizeFunc{layout(0x1000), layout(0x1100)}
		}
		checkChunked(t, [2]uint64{0x8000, 0x9000 + uint64(misalign%8)}, a, b, opt)
	})
}

// TestMemoryRowCap checks that a range differing everywhere keeps at most
// MaxRows rows, says it is truncated, and still counts every byte.
func TestMemoryRowCap(t *testing.T) {
	t.Parallel()
	n := 2 * MaxRows * RowSize
	a, b := make([]byte, n), bytes.Repeat([]byte{1}, n)
	d := Memory("m", "physical", [2]uint64{}, a, b, MemOptions{})
	if d == nil || !d.Truncated || len(d.Rows) != MaxRows || d.DiffBytes != n || d.FirstOffset != 0 {
		t.Fatalf("rows %d truncated %v diff bytes %d; want %d rows, truncated, %d bytes", len(d.Rows), d.Truncated, d.DiffBytes, MaxRows, n)
	}
	if Memory("m", "physical", [2]uint64{}, a[:64], b[:64], MemOptions{}).Truncated {
		t.Error("a small diff is marked truncated")
	}
}

// sparseFile makes a sparse file of n bytes with the given bytes written
// at their offsets.
func sparseFile(t *testing.T, n int64, at map[int64]byte) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "dump.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	for off, v := range at {
		if _, err := f.WriteAt([]byte{v}, off); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestMemoryFromLargeDumpBounded compares two 320 MiB dump files (sparse)
// that differ in three bytes, and checks that what the comparison
// allocates stays a few MiB, not the size of the dumps, while the diff is
// the one Memory gives for such a range.
func TestMemoryFromLargeDumpBounded(t *testing.T) {
	const n = 320 << 20
	fa := sparseFile(t, n, map[int64]byte{0x10: 0})
	fb := sparseFile(t, n, map[int64]byte{0x10: 7, 200 << 20: 9, n - 1: 1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := MemoryFrom("big", "physical", [2]uint64{}, io.NewSectionReader(fa, 0, n), io.NewSectionReader(fb, 0, n), MemOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 8<<20 {
		t.Errorf("comparing two %d MiB dumps allocated %d MiB; want at most 8", n>>20, alloc>>20)
	}
	t.Logf("compared two %d MiB dumps with %.1f MiB allocated", n>>20, float64(alloc)/(1<<20))
	if d == nil || d.DiffBytes != 3 || d.FirstOffset != 0x10 || d.Length != n {
		t.Fatalf("diff %+v; want 3 bytes from +0x10 over %d", d, n)
	}
	var offs []int
	for _, r := range d.Rows {
		if r.Skipped == 0 {
			offs = append(offs, r.Offset)
		}
	}
	want := []int{0, 0x10, 0x20, 200<<20 - 0x10, 200 << 20, 200<<20 + 0x10, n - 0x20, n - 0x10}
	if !reflect.DeepEqual(offs, want) {
		t.Errorf("shown rows at %#x, want %#x", offs, want)
	}
}

// TestMemoryFromReadError checks that a failed read is an error, not a
// verdict.
func TestMemoryFromReadError(t *testing.T) {
	t.Parallel()
	f := sparseFile(t, 64, nil)
	r := io.NewSectionReader(f, 0, 4096) // claims more than the file holds
	if _, err := MemoryFrom("m", "virtual", [2]uint64{}, r, bytes.NewReader(make([]byte, 4096)), MemOptions{}); err == nil {
		t.Fatal("short dump compared without error")
	}
}
