package rsp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirFetcher serves xi:include documents from a testdata directory.
func dirFetcher(dir string) func(string) ([]byte, error) {
	return func(annex string) ([]byte, error) {
		if strings.Contains(annex, "/") {
			return nil, fmt.Errorf("annex %q: %w", annex, ErrMalformed)
		}
		return os.ReadFile(filepath.Join(dir, annex))
	}
}

func loadSample(t *testing.T, arch string) *Layout {
	t.Helper()
	dir := filepath.Join("testdata", "tdesc", arch)
	doc, err := os.ReadFile(filepath.Join(dir, "target.xml"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseTargetXML(doc, dirFetcher(dir))
	if err != nil {
		t.Fatalf("%s: %v", arch, err)
	}
	return l
}

func TestParseTargetXML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sample     string
		arch       string
		bigEndian  bool
		nregs      int
		gsize      int // bytes the sample's 'g' holds
		wantGSize  int
		pc, sp, fp string
		general    string // first registers of "general", space-separated
		outsideG   string // a register read with 'p'
		num        map[string]int
		group      map[string]string
		tdesc      map[string]string // target.xml's groups, still selectable
	}{
		{
			sample: "x86_64", arch: "i386:x86-64", nregs: 66, gsize: 608, wantGSize: 608,
			pc: "rip", sp: "rsp", fp: "rbp",
			general: "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs",
			num:     map[string]int{"rax": 0, "rip": 16, "eflags": 17, "efer": 32, "xmm0": 49, "mxcsr": 65},
			group:   map[string]string{"cr3": "system", "st0": "float", "fop": "float", "xmm3": "vector", "mxcsr": "vector", "fs_base": "system"},
		},
		{
			sample: "aarch64", arch: "aarch64", nregs: 70, gsize: 268, wantGSize: 268,
			pc: "pc", sp: "sp", fp: "x29",
			general:  "x0 x1 x2 x3 x4 x5 x6 x7 x8 x9 x10 x11 x12 x13 x14 x15 x16 x17 x18 x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 x29 x30 sp pc cpsr",
			outsideG: "v0",
			num:      map[string]int{"cpsr": 33, "v0": 34, "v31": 65, "fpsr": 66, "fpcr": 67, "SCTLR_EL1": 200, "TTBR0_EL1": 201},
			group:    map[string]string{"v7": "vector", "fpsr": "float", "fpcr": "float", "SCTLR_EL1": "system"},
		},
		{
			sample: "riscv64", arch: "riscv:rv64", nregs: 33 + 35 + 3, gsize: 33 * 8, wantGSize: 264,
			pc: "pc", sp: "sp", fp: "fp",
			general:  "zero ra sp gp tp t0 t1 t2 fp s1 a0",
			outsideG: "ft0",
			num:      map[string]int{"pc": 32, "ft0": 33, "ft31": 64, "fflags": 66, "fcsr": 68, "mstatus": 833, "mepc": 898},
			group:    map[string]string{"ft1": "float", "fflags": "float", "mstatus": "system", "pc": "general"},
		},
		{
			sample: "s390x", arch: "s390:64-bit", bigEndian: true, nregs: 34, gsize: 400, wantGSize: 208,
			pc: "pswa", sp: "r15", fp: "r11",
			general: "pswm pswa r0 r1 r2", outsideG: "",
			num:   map[string]int{"pswa": 1, "r0": 2, "acr0": 18, "acr15": 33},
			group: map[string]string{"pswm": "general", "pswa": "general", "acr3": "system"},
			tdesc: map[string]string{"pswm": "psw", "acr3": "access"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.sample, func(t *testing.T) {
			t.Parallel()
			l := loadSample(t, tt.sample)
			if l.Arch != tt.arch || l.BigEndian != tt.bigEndian || len(l.Registers) != tt.nregs {
				t.Errorf("arch %q be %v nregs %d; want %q %v %d", l.Arch, l.BigEndian, len(l.Registers), tt.arch, tt.bigEndian, tt.nregs)
			}
			if l.PC() != tt.pc || l.SP() != tt.sp || l.FP() != tt.fp {
				t.Errorf("pc/sp/fp = %s/%s/%s", l.PC(), l.SP(), l.FP())
			}
			if got := names(l.Group("general")); !strings.HasPrefix(got, tt.general) {
				t.Errorf("general = %s\nwant prefix %s", got, tt.general)
			}
			if got := len(l.Group("all")); got != tt.nregs {
				t.Errorf("all has %d", got)
			}
			for n, want := range tt.num {
				if r, ok := l.Lookup(n); !ok || r.Num != want {
					t.Errorf("%s num = %+v, want %d", n, r, want)
				}
			}
			for n, want := range tt.group {
				if r, ok := l.Lookup(n); !ok || r.Group != want {
					t.Errorf("%s group = %+v, want %s", n, r, want)
				}
			}
			for n, want := range tt.tdesc {
				r, ok := l.Lookup(n)
				if !ok || r.TDescGroup != want || !strings.Contains(" "+names(l.Group(want))+" ", " "+r.Name+" ") {
					t.Errorf("%s: target.xml group %+v, want %s (and selectable by it)", n, r, want)
				}
			}
			l.assignOffsets(tt.gsize)
			if l.GSize != tt.wantGSize {
				t.Errorf("g size = %d, want %d", l.GSize, tt.wantGSize)
			}
			if tt.outsideG != "" {
				if r, _ := l.Lookup(tt.outsideG); r.Offset != -1 {
					t.Errorf("%s offset %d, want -1", r.Name, r.Offset)
				}
			}
			if r, _ := l.Lookup(tt.pc); r.Offset < 0 {
				t.Errorf("pc outside g")
			}
		})
	}
}

func TestParseTargetXMLErrors(t *testing.T) {
	t.Parallel()
	loop := func(string) ([]byte, error) { return []byte(`<target><xi:include href="self.xml"/></target>`), nil }
	tests := []struct {
		name  string
		doc   string
		fetch func(string) ([]byte, error)
		want  error
	}{
		{"bad xml", `<target><reg`, nil, nil},
		{"no bitsize", `<feature name="x"><reg name="a"/></feature>`, nil, ErrMalformed},
		{"odd bitsize", `<feature name="x"><reg name="a" bitsize="7"/></feature>`, nil, ErrMalformed},
		{"dup regnum", `<feature name="x"><reg name="a" bitsize="8" regnum="1"/><reg name="b" bitsize="8" regnum="1"/></feature>`, nil, ErrMalformed},
		{"include loop", `<target><xi:include href="self.xml"/></target>`, loop, ErrMalformed},
		{"include without fetcher", `<target><xi:include href="a.xml"/></target>`, nil, ErrUnsupported},
		{"fetch error", `<target><xi:include href="a.xml"/></target>`, func(string) ([]byte, error) { return nil, ErrRefused }, ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTargetXML([]byte(tt.doc), tt.fetch)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    Value
		hex  string
		u    uint64
		fits bool
	}{
		{Value{Bytes: []byte{0xf0, 0xff, 0, 0, 0, 0, 0, 0}}, "0x000000000000fff0", 0xfff0, true},
		{Value{Bytes: []byte{0, 0, 0, 0, 0, 0, 0xff, 0xf0}, BigEndian: true}, "0x000000000000fff0", 0xfff0, true},
		{Value{Bytes: []byte{2, 0, 0, 0}}, "0x00000002", 2, true},
		{Value{Bytes: append([]byte{1}, make([]byte, 15)...)}, "0x00000000000000000000000000000001", 1, true},
		{Value{Bytes: append(make([]byte, 15), 0x80)}, "0x80000000000000000000000000000000", 0, false},
		{Value{Bytes: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0}}, "0x00090807060504030201", 0x0807060504030201, false},
		{Value{Bytes: []byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 0}}, "0x00000807060504030201", 0x0807060504030201, true},
	}
	for _, tt := range tests {
		if got := tt.v.Hex(); got != tt.hex {
			t.Errorf("Hex(%x) = %s, want %s", tt.v.Bytes, got, tt.hex)
		}
		if u, ok := tt.v.Uint64(); u != tt.u || ok != tt.fits {
			t.Errorf("Uint64(%x) = %#x %v, want %#x %v", tt.v.Bytes, u, ok, tt.u, tt.fits)
		}
	}
	for _, be := range []bool{false, true} {
		v := ValueFromUint64(0x1122334455667788, 8, be)
		if u, ok := v.Uint64(); !ok || u != 0x1122334455667788 || v.Hex() != "0x1122334455667788" {
			t.Errorf("round trip be=%v: %x", be, v.Bytes)
		}
		if w := ValueFromUint64(0xabcd, 2, be); w.Hex() != "0xabcd" {
			t.Errorf("2-byte be=%v: %s", be, w.Hex())
		}
	}
}

// TestAttachOtherArch attaches to a scripted aarch64 stub: Dial must work
// on any architecture, and registers outside 'g' are read with 'p'.
func TestAttachOtherArch(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "tdesc", "aarch64")
	fetch := dirFetcher(dir)
	greply := strings.Repeat("00", 268)
	greply = "1100000000000000" + greply[16:] // x0 = 0x11
	preqs := 0
	nc := runStub(t, func(s *fakeStub) {
		for {
			p, ok := s.read()
			if !ok {
				return
			}
			switch {
			case strings.HasPrefix(p, "qSupported"):
				s.reply("PacketSize=1000;qXfer:features:read+")
			case p == "QStartNoAckMode":
				s.reply("")
			case strings.HasPrefix(p, "qXfer:features:read:"):
				f := strings.Split(strings.TrimPrefix(p, "qXfer:features:read:"), ":")
				var off, n int
				fmt.Sscanf(f[1], "%x,%x", &off, &n)
				doc, err := fetch(f[0])
				if err != nil {
					s.reply("E00")
					continue
				}
				if off+n >= len(doc) {
					s.reply("l" + string(doc[min(off, len(doc)):]))
				} else {
					s.reply("m" + string(doc[off:off+n]))
				}
			case p == "?":
				s.reply("T05thread:01;")
			case p == "g":
				s.reply(greply)
			case strings.HasPrefix(p, "p"):
				preqs++
				var n int
				fmt.Sscanf(p[1:], "%x", &n)
				switch {
				case n == 200: // SCTLR_EL1: unavailable
					s.reply("xxxxxxxxxxxxxxxx")
				case n == 201: // TTBR0_EL1: refused, as QEMU refuses riscv pmpcfg1
					s.reply("E14")
				case n >= 34 && n <= 65: // v0..v31
					s.reply(strings.Repeat("ab", 16))
				default:
					s.reply("01000000")
				}
			default:
				s.reply("")
			}
		}
	})
	c, err := New(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Layout().Arch != "aarch64" || c.Layout().GSize != 268 {
		t.Fatalf("layout %q g %d", c.Layout().Arch, c.Layout().GSize)
	}
	regs, err := c.ReadRegisters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := regs["x0"].Uint64(); u != 0x11 {
		t.Errorf("x0 = %s", regs["x0"].Hex())
	}
	if _, ok := regs["SCTLR_EL1"]; ok {
		t.Errorf("unavailable register present")
	}
	if _, ok := regs["TTBR0_EL1"]; ok {
		t.Errorf("refused register present")
	}
	if v := regs["v5"]; len(v.Bytes) != 16 {
		t.Errorf("v5 = %v", v)
	}
	if preqs != 36 {
		t.Errorf("%d p packets, want 36", preqs)
	}
	if _, err := c.ReadRegister(context.Background(), "nope"); !errors.Is(err, ErrNoRegister) {
		t.Errorf("unknown register: %v", err)
	}
}
