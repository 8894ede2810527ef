package trace

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readAll(t testing.TB, r io.Reader) []State {
	t.Helper()
	p := NewParser(r)
	var out []State
	for {
		var s State
		err := p.Next(&s)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("state %d: %v", len(out), err)
		}
		out = append(out, s)
	}
}

func TestParserRealLogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		states    int
		modes     []int // Mode of the first and last state
		firstPC   uint64
		check     func(t *testing.T, s []State)
		countLine []string // prefixes whose count must equal states
	}{
		{file: "pvh-32to64.log", states: 23, modes: []int{32, 64}, firstPC: 0x100000,
			check: func(t *testing.T, s []State) {
				f := s[0]
				if f.Regs[RBX] != 0x21e0 || f.Regs[RSP] != 0x6edc || f.Regs[CS] != 8 || f.Regs[DS] != 0x10 || f.Regs[RFL] != 6 || f.Regs[CR0] != 0x11 {
					t.Errorf("first state regs = %x", f.Regs)
				}
				l := s[len(s)-1]
				if l.Regs[EFER] != 0x500 || l.Regs[CR0] != 0x80000013 || l.Regs[CR3] != 0x101000 || l.Regs[CR4] != 0x620 {
					t.Errorf("last state control regs = %x", l.Regs)
				}
				for i, st := range s {
					if st.Seq != uint64(i) {
						t.Errorf("state %d: Seq %d", i, st.Seq)
					}
				}
			}},
		{file: "bios-realmode.log", states: 3, modes: []int{32, 32}, firstPC: 0xfffffff0,
			check: func(t *testing.T, s []State) {
				if s[1].PC != 0xfe05b || s[1].Regs[RIP] != 0xe05b || s[1].Regs[CS] != 0xf000 || s[0].Regs[RDX] != 0x60fb1 {
					t.Errorf("real mode: pc %#x rip %#x cs %#x", s[1].PC, s[1].Regs[RIP], s[1].Regs[CS])
				}
			}},
		{file: "long-fpu.log", states: 2, modes: []int{64, 64}, firstPC: 0x10004a,
			check: func(t *testing.T, s []State) {
				if s[1].Regs[RAX] != 0x10 || s[1].CPL != 0 || s[1].Halted {
					t.Errorf("fpu log: %+v", s[1])
				}
			}},
		{file: "mixed-inasm-exec.log", modes: []int{32, 64}, firstPC: 0x100040, countLine: []string{"EAX=", "RAX="}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.states
			if tt.countLine != nil {
				for _, l := range strings.Split(string(data), "\n") {
					for _, p := range tt.countLine {
						if strings.HasPrefix(l, p) {
							want++
						}
					}
				}
			}
			s := readAll(t, bytes.NewReader(data))
			if len(s) != want || want == 0 {
				t.Fatalf("got %d states, want %d", len(s), want)
			}
			if s[0].Mode != tt.modes[0] || s[len(s)-1].Mode != tt.modes[1] {
				t.Errorf("modes %d..%d, want %v", s[0].Mode, s[len(s)-1].Mode, tt.modes)
			}
			if s[0].PC != tt.firstPC {
				t.Errorf("first PC %#x, want %#x", s[0].PC, tt.firstPC)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/long-fpu.log")
	if err != nil {
		t.Fatal(err)
	}
	block := string(good[:bytes.Index(good[1:], []byte("RAX="))+1])
	tests := []struct {
		name  string
		in    string
		ok    int   // states decoded before the error
		want  error // sentinel
		isFmt bool
	}{
		{name: "empty", in: "", want: io.EOF},
		{name: "blank lines", in: "\n\n\n", want: io.EOF},
		{name: "not a log", in: "hello\nworld\n", want: ErrUnknownFormat, isFmt: true},
		{name: "long preamble", in: strings.Repeat("x=1 y=2\n", maxPreamble+5) + block, want: ErrUnknownFormat, isFmt: true},
		{name: "truncated", in: block + block[:200], ok: 1, want: io.ErrUnexpectedEOF, isFmt: true},
		{name: "interrupted", in: block[:150] + "\n" + block, want: ErrMalformed, isFmt: true},
		{name: "bad hex", in: strings.Replace(block, "RBX=00000000000021e0", "RBX=00000000000021zz", 1), want: ErrMalformed, isFmt: true},
		{name: "too wide", in: strings.Replace(block, "RBX=00000000000021e0", "RBX=00000000000021e00", 1), want: ErrMalformed, isFmt: true},
		{name: "bad segment", in: strings.Replace(block, "CS =0008", "CS =", 1), want: ErrMalformed, isFmt: true},
		{name: "no final newline", in: block + strings.TrimRight(block, "\n"), ok: 2, want: io.EOF},
		{name: "noise between", in: block + "Trace 0: 0x7f [0/1/2/3]\n----------------\nIN: \n0x0:  90  nop\n\n" + block, ok: 2, want: io.EOF},
		{name: "long junk line", in: strings.Repeat("z", bufSize*2) + "\n" + block, ok: 1, want: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := NewParser(strings.NewReader(tt.in))
			var s State
			n := 0
			var err error
			for {
				if err = p.Next(&s); err != nil {
					break
				}
				n++
			}
			if n != tt.ok {
				t.Errorf("decoded %d states, want %d", n, tt.ok)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var fe *FormatError
			if errors.As(err, &fe) != tt.isFmt {
				t.Errorf("FormatError = %v, want %v (%v)", fe, tt.isFmt, err)
			}
		})
	}
}

func TestRegName(t *testing.T) {
	t.Parallel()
	for i := 0; i < NumRegs; i++ {
		if n := RegName(i); n == "" || RegIndex(n) != i {
			t.Errorf("RegName(%d) = %q, RegIndex = %d", i, n, RegIndex(n))
		}
	}
	if RegName(-1) != "" || RegName(NumRegs) != "" || RegIndex("eflags") != RFL || RegIndex("nope") != -1 {
		t.Error("out-of-range names")
	}
}

func FuzzParser(f *testing.F) {
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed logs: %v", err)
	}
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser(bytes.NewReader(data))
		var s State
		prev := uint64(0)
		for i := 0; ; i++ {
			err := p.Next(&s)
			if err != nil {
				var fe *FormatError
				if err != io.EOF && !errors.As(err, &fe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if s.Seq != uint64(i) || (s.Mode != 32 && s.Mode != 64) {
				t.Fatalf("state %d: seq %d mode %d", i, s.Seq, s.Mode)
			}
			if s.Mode == 32 && s.PC > 0xffffffff {
				t.Fatalf("32-bit PC %#x", s.PC)
			}
			if p.Bytes() < prev || p.Bytes() > uint64(len(data)) {
				t.Fatalf("bytes %d of %d", p.Bytes(), len(data))
			}
			prev = p.Bytes()
		}
	})
}
