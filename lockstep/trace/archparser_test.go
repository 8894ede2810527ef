package trace

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// TestArchParserLogs decodes the heads of real QEMU 7.2 "-d cpu" logs of
// testdata/frames.c (package guest) on aarch64 and riscv64, and of the
// s390x demo guest: the states' PCs and a register each instruction
// changed.
func TestArchParserLogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch, file string
		pcs        []uint64
		reg        string
		state      int
		want       uint64
	}{
		// ldr x0, =stack+16384 loads the stack top into x0.
		{"aarch64", "testdata/aarch64-cpu.log", []uint64{0x40080000, 0x40080004, 0x40080008}, "x0", 1, 0x400a4000},
		{"aarch64", "testdata/aarch64-cpu.log", nil, "cpsr", 0, 0x400003c5},
		// QEMU's reset vector: auipc t0, 0 at 0x1000.
		{"riscv64", "testdata/riscv64-cpu.log", []uint64{0x1000, 0x1004, 0x1008}, "t0", 1, 0x1000},
		{"riscv64", "testdata/riscv64-cpu.log", nil, "mstatus", 0, 0xa00000000},
		// s390x: larl %r1 at 0x20000 (demo-good.elf of testdata/guests/s390x),
		// the PSW mask with the condition code, a control register.
		{"s390x", "testdata/s390x-cpu.log", []uint64{0x20000, 0x20006, 0x2000c}, "r1", 1, 0x20690},
		{"s390x", "testdata/s390x-cpu.log", nil, "pswm", 0, 0x180000000},
		{"s390x", "testdata/s390x-cpu.log", nil, "cr14", 2, 0xc2000000},
	}
	for _, tc := range tests {
		f, err := os.Open(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewArchParser(tc.arch, f)
		if err != nil {
			t.Fatal(err)
		}
		var states []ArchState
		for {
			var s ArchState
			err := p.Next(&s)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			states = append(states, s)
		}
		f.Close()
		if len(states) != 3 {
			t.Fatalf("%s: %d states, want 3", tc.file, len(states))
		}
		for i, pc := range tc.pcs {
			if states[i].PC != pc || states[i].Seq != uint64(i) {
				t.Errorf("%s state %d: pc %#x seq %d, want %#x", tc.file, i, states[i].PC, states[i].Seq, pc)
			}
		}
		idx := -1
		for i, n := range ArchRegNames(tc.arch) {
			if n == tc.reg {
				idx = i
			}
		}
		if idx < 0 || states[tc.state].Regs[idx] != tc.want {
			t.Errorf("%s state %d: %s = %#x, want %#x", tc.file, tc.state, tc.reg, states[tc.state].Regs[idx], tc.want)
		}
	}
}

// TestArchParserErrors checks the errors for input that is not a dump, a
// bad value, a dump cut short and an unknown architecture.
func TestArchParserErrors(t *testing.T) {
	t.Parallel()
	a64 := " PC=0000000040080000 X00=0000000000000000 X01=0000000000000000\n"
	tests := []struct {
		name, arch, in string
		want           error
		msg            string
	}{
		{"not a log", "aarch64", "hello\nworld\n", ErrUnknownFormat, "no aarch64 register dump"},
		{"x86 log to aarch64", "aarch64", "RAX=0000000000000000 RBX=0000000000000000\n", ErrUnknownFormat, "first line"},
		{"bad hex", "aarch64", " PC=00000000400800zz X00=0\n", ErrMalformed, `"PC"`},
		{"cut short at EOF", "aarch64", a64, io.ErrUnexpectedEOF, "missing x2"},
		{"cut short by the next", "aarch64", a64 + a64, ErrMalformed, "without x2"},
		{"riscv cut short", "riscv64", " pc       0000000080000000\n x0/zero  0000000000000000 x1/ra    0000000000000000\n", io.ErrUnexpectedEOF, "missing sp"},
		{"s390x cut short", "s390x", s390PSW + "R00=0000000000000000 R01=0000000000000000\n", io.ErrUnexpectedEOF, "missing r2"},
		{"s390x no addr", "s390x", "PSW=mask 0000000180000000\n", ErrMalformed, `"PSW"`},
		{"s390x bad mask", "s390x", "PSW=mask 00000001800000zz addr 0000000000020000 cc 00\n", ErrMalformed, `"PSWM"`},
		{"s390x cc_op names", "s390x", s390PSW + s390PSW, ErrMalformed, "without r0"},
	}
	for _, tc := range tests {
		p, err := NewArchParser(tc.arch, strings.NewReader(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		var s ArchState
		err = p.Next(&s)
		var fe *FormatError
		if !errors.Is(err, tc.want) || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if _, err := NewArchParser("mips64", strings.NewReader("")); err == nil {
		t.Error("NewArchParser(mips64) did not fail")
	}
}

// s390PSW is an s390x dump's first line, with a lazy condition code.
const s390PSW = "PSW=mask 0000100180000000 addr 0000000000020000 cc    CC_OP_ADD_64\n"

// FuzzS390xParser checks that the s390x parser (whose PSW line is not
// KEY=value pairs) never panics or loops, that every state has all its
// registers, and that a log that parses compares equal with itself.
// Seeds are in testdata/fuzz/FuzzS390xParser.
func FuzzS390xParser(f *testing.F) {
	f.Add([]byte(s390PSW + "R00=0000000000000000 R01=1 R02=2 R03=3\n"))
	if data, err := os.ReadFile("testdata/s390x-cpu.log"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkArchStates(t, "s390x", data) > 0 {
			// A log that parses is the same as itself to its end.
			d, err := Compare(t.Context(), mustSource(t, "s390x", string(data)), mustSource(t, "s390x", string(data)), Options{})
			if err == nil && (d.Outcome != SameUntilEOF || d.Arch != "s390x") {
				t.Fatalf("a log against itself: %s (%s)", d.String(), d.Arch)
			}
		}
	})
}

// FuzzArchParser checks that the aarch64 and riscv64 parsers never panic
// or loop, and that every state has all its registers. Seeds are in
// testdata/fuzz/FuzzArchParser.
func FuzzArchParser(f *testing.F) {
	addArchSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, a64 bool) {
		checkArchStates(t, fuzzArch(a64), data)
	})
}

// checkArchStates parses data as arch's log until it ends or fails,
// checking that every state has all the registers and that there are no
// more states than bytes (no loop); it returns the states parsed.
func checkArchStates(t *testing.T, arch string, data []byte) int {
	t.Helper()
	p, err := NewArchParser(arch, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= len(data); i++ {
		var s ArchState
		if err := p.Next(&s); err != nil {
			return i
		}
		if len(s.Regs) != len(ArchRegNames(arch)) {
			t.Fatalf("state with %d registers", len(s.Regs))
		}
	}
	t.Fatalf("more states than bytes")
	return 0
}

// BenchmarkArchParser measures the aarch64, riscv64 and s390x parsers on the
// recorded log heads, repeated; the x86 parser on its excerpt
// (BenchmarkCompare) is the yardstick.
func BenchmarkArchParser(b *testing.B) {
	for _, tc := range []struct{ arch, file string }{
		{"aarch64", "testdata/aarch64-cpu.log"},
		{"riscv64", "testdata/riscv64-cpu.log"},
		{"s390x", "testdata/s390x-cpu.log"},
	} {
		b.Run(tc.arch, func(b *testing.B) {
			one, err := os.ReadFile(tc.file)
			if err != nil {
				b.Fatal(err)
			}
			data := bytes.Repeat(one, 500)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var states uint64
			for b.Loop() {
				p, _ := NewArchParser(tc.arch, bytes.NewReader(data))
				var s ArchState
				for {
					err := p.Next(&s)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					states++
				}
			}
			b.ReportMetric(float64(states)/b.Elapsed().Seconds(), "states/s")
		})
	}
}
