package compare

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkMemoryFrom compares two 64 MiB dump files that differ in a
// few bytes, a chunk at a time, and reports the rate next to that of
// only reading both files with the same chunk size (the floor), as a
// ratio: what comparing adds to the reading it cannot avoid.
func BenchmarkMemoryFrom(b *testing.B) {
	const n = 64 << 20
	dir := b.TempDir()
	mk := func(name string, at map[int64]byte) *os.File {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		for off, v := range at {
			data[off] = v
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	fa := mk("a.bin", nil)
	fb := mk("b.bin", map[int64]byte{0x100: 1, n / 2: 2, n - 1: 3})
	buf := make([]byte, chunkSize)
	var raw, cmp time.Duration
	b.SetBytes(2 * n)
	for b.Loop() {
		t0 := time.Now()
		for _, f := range []*os.File{fa, fb} {
			r := io.NewSectionReader(f, 0, n)
			for off := int64(0); off < n; off += chunkSize {
				if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		}
		t1 := time.Now()
		d, err := MemoryFrom("m", "physical", [2]uint64{}, io.NewSectionReader(fa, 0, n), io.NewSectionReader(fb, 0, n), MemOptions{})
		if err != nil || d == nil || d.DiffBytes != 3 {
			b.Fatalf("diff %+v, %v", d, err)
		}
		raw += t1.Sub(t0)
		cmp += time.Since(t1)
	}
	mib := float64(2*n) / (1 << 20) * float64(b.N)
	b.ReportMetric(mib/cmp.Seconds(), "MiB/s")
	b.ReportMetric(mib/raw.Seconds(), "raw-MiB/s")
	b.ReportMetric(cmp.Seconds()/raw.Seconds(), "x-raw-read")
}
