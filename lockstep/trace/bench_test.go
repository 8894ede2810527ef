package trace

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// BenchmarkCompare measures parser plus Compare throughput on a recorded
// log (the real 32/64-bit excerpt repeated) compared with itself.
func BenchmarkCompare(b *testing.B) {
	one, err := os.ReadFile("testdata/pvh-32to64.log")
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(one, 200)
	b.SetBytes(int64(2 * len(data)))
	b.ReportAllocs()
	var states uint64
	for b.Loop() {
		d, err := Compare(context.Background(), NewParser(bytes.NewReader(data)), NewParser(bytes.NewReader(data)), Options{})
		if err != nil || d.Outcome != SameUntilEOF {
			b.Fatalf("%v %v", d.String(), err)
		}
		states += d.Index
	}
	b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "insn/s")
}

// BenchmarkLiveTCG runs deep-1e5 twice under TCG through FIFOs and
// compares every instruction of the kernel (SeaBIOS filtered out).
func BenchmarkLiveTCG(b *testing.B) {
	bin := qemutest.Require(b, "x86_64", "tcg")
	kernel := qemutest.Guest(b, "deep-1e5")
	var states uint64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		dir := b.TempDir()
		ra, _ := traced(b, ctx, bin, dir, "a.fifo", kernel, "qemu64", "-serial", "file:"+filepath.Join(dir, "a.serial"))
		rb, _ := traced(b, ctx, bin, dir, "b.fifo", kernel, "qemu64", "-serial", "file:"+filepath.Join(dir, "b.serial"))
		d, err := Compare(ctx, NewParser(ra), NewParser(rb), Options{})
		cancel()
		if err != nil || d.Outcome != SameUntilEOF {
			b.Fatalf("%v %v", d.String(), err)
		}
		states += d.Index
	}
	b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "insn/s")
	b.ReportMetric(float64(states)/float64(b.N), "insn/op")
}
