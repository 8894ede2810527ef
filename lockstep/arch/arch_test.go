package arch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"x86_64", "x86_64", false},
		{"i386:x86-64", "x86_64", false},
		{"I386:X86-64", "x86_64", false},
		{"i386", "i386", false},
		{"aarch64", "aarch64", false},
		{"arm64", "aarch64", false},
		{"riscv:rv64", "riscv64", false},
		{"riscv64", "riscv64", false},
		{"s390:64-bit", "s390x", false},
		{"s390x", "s390x", false},
		{"mips", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		a, err := Lookup(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrUnknownArch) {
				t.Errorf("Lookup(%q) error = %v, want ErrUnknownArch", tc.in, err)
			}
			continue
		}
		if err != nil || a.Name != tc.want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
}

func TestArchFields(t *testing.T) {
	t.Parallel()
	x, _ := Lookup("x86_64")
	if x.PC != "rip" || x.SP != "rsp" || x.FP != "rbp" || x.PtrSize != 8 || x.Link != "" {
		t.Errorf("x86_64 = %+v", x)
	}
	if got := strings.Join(x.ArgRegs, " "); got != "rdi rsi rdx rcx r8 r9" {
		t.Errorf("x86_64 ArgRegs = %q", got)
	}
	a, _ := Lookup("aarch64")
	if a.PC != "pc" || a.SP != "sp" || a.FP != "x29" || a.Link != "x30" {
		t.Errorf("aarch64 = %+v", a)
	}
	tests := []struct {
		name, pc, sp, fp, link, args, ret string
		ptr                               int
		big, watchBefore                  bool
		kind                              int
		frame                             *FrameLayout
	}{
		{"x86_64", "rip", "rsp", "rbp", "", "rdi rsi rdx rcx r8 r9", "rax", 8, false, false, 1, &FrameLayout{0, 8}},
		{"aarch64", "pc", "sp", "x29", "x30", "x0 x1 x2 x3 x4 x5 x6 x7", "x0", 8, false, true, 4, &FrameLayout{0, 8}},
		{"riscv64", "pc", "sp", "fp", "ra", "a0 a1 a2 a3 a4 a5 a6 a7", "a0", 8, false, true, 4, &FrameLayout{-16, -8}},
		{"s390x", "pswa", "r15", "r11", "r14", "r2 r3 r4 r5 r6", "r2", 8, true, false, 2, nil},
	}
	for _, tc := range tests {
		a, err := Lookup(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(a.PC, a.SP, a.FP, a.Link, strings.Join(a.ArgRegs, " "), strings.Join(a.RetRegs, " "),
			a.PtrSize, a.BigEndian, a.WatchBefore, a.BreakKind, a.FrameRecord)
		want := fmt.Sprint(tc.pc, tc.sp, tc.fp, tc.link, tc.args, tc.ret, tc.ptr, tc.big, tc.watchBefore, tc.kind, tc.frame)
		if got != want {
			t.Errorf("%s: got %s, want %s", tc.name, got, want)
		}
		if a.Disasm == nil || a.CallBefore == nil || a.FallThrough == nil || a.LiveArgs == nil || a.StackAlign == 0 {
			t.Errorf("%s: missing Disasm, CallBefore, FallThrough, LiveArgs or StackAlign", tc.name)
		}
		for _, r := range a.EntryScratch {
			if r == a.SP || r == a.PC {
				t.Errorf("%s: EntryScratch holds %s", tc.name, r)
			}
			for _, x := range a.ArgRegs {
				if r == x {
					t.Errorf("%s: EntryScratch holds argument register %s", tc.name, r)
				}
			}
		}
	}
	if s, _ := Lookup("s390x"); s.BackChain == nil || s.BackChain.RetAddr != 112 {
		t.Errorf("s390x BackChain = %+v", s.BackChain)
	}
}

func TestFlagBits(t *testing.T) {
	t.Parallel()
	x, _ := Lookup("x86_64")
	tests := []struct {
		reg, bit string
		mask     uint64
		ok       bool
	}{
		{"eflags", "CF", 1 << 0, true},
		{"eflags", "zf", 1 << 6, true},
		{"EFLAGS", "RF", 1 << 16, true},
		{"eflags", "IOPL", 3 << 12, true},
		{"eflags", "ID", 1 << 21, true},
		{"rflags", "OF", 1 << 11, true},
		{"mxcsr", "RC", 3 << 13, true},
		{"eflags", "XX", 0, false},
		{"rax", "CF", 0, false},
	}
	for _, tc := range tests {
		b, ok := x.FlagBit(tc.reg, tc.bit)
		if ok != tc.ok || (ok && b.Mask() != tc.mask) {
			t.Errorf("FlagBit(%s,%s) = %+v mask %#x, %v; want mask %#x, %v", tc.reg, tc.bit, b, b.Mask(), ok, tc.mask, tc.ok)
		}
	}
	// Named bits of a register must not overlap.
	for _, a := range []string{"x86_64", "aarch64"} {
		ar, _ := Lookup(a)
		for reg, bits := range ar.Flags {
			var seen uint64
			for _, b := range bits {
				if seen&b.Mask() != 0 {
					t.Errorf("%s %s.%s overlaps an earlier bit", a, reg, b.Name)
				}
				seen |= b.Mask()
			}
		}
	}
}

func sym(addr uint64) string {
	switch addr {
	case 0x1000:
		return "kmain"
	case 0x2010:
		return "results+0x10"
	}
	return fmt.Sprintf("%#x", addr) // as Location.String does for unknown addresses
}

func TestDisasm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch string
		code []byte
		pc   uint64
		want string
		n    int
	}{
		{"x86_64", []byte{0x55}, 0, "push %rbp", 1},
		{"x86_64", []byte{0x48, 0x89, 0xe5}, 0, "mov %rsp,%rbp", 3},
		{"x86_64", []byte{0xe8, 0xfb, 0x0e, 0x00, 0x00}, 0x100, "callq 0x1000 <kmain>", 5},
		{"x86_64", []byte{0xe8, 0x00, 0x00, 0x00, 0x00}, 0x10, "callq 0x15", 5},
		{"x86_64", []byte{0x48, 0x8b, 0x05, 0x09, 0x10, 0x00, 0x00}, 0x1000, "mov 0x1009(%rip),%rax  # 0x2010 <results+0x10>", 7},
		{"x86_64", []byte{0xc3, 0x90}, 0, "retq", 1},
		{"x86_64", []byte{0xf3, 0x0f, 0x1e, 0xfa}, 0, "endbr64", 4},
		{"i386", []byte{0x89, 0xe5}, 0, "mov %esp,%ebp", 2},
		{"aarch64", []byte{0xfd, 0x7b, 0xbf, 0xa9}, 0, "stp x29, x30, [sp,#-16]!", 4},
		{"aarch64", []byte{0x00, 0x04, 0x00, 0x94}, 0, "bl .+0x1000 <kmain>", 4},
		{"aarch64", []byte{0xc0, 0x03, 0x5f, 0xd6}, 0, "ret", 4},
	}
	for _, tc := range tests {
		a, err := Lookup(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := a.Disasm(tc.code, tc.pc, sym)
		if err != nil || got != tc.want || n != tc.n {
			t.Errorf("%s Disasm(% x) = %q, %d, %v; want %q, %d", tc.arch, tc.code, got, n, err, tc.want, tc.n)
		}
	}
}

func TestDisasmErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch string
		code []byte
	}{
		{"x86_64", nil},
		{"x86_64", []byte{0xe8, 0x00}}, // truncated call
		{"x86_64", []byte{0x0f, 0x0b + 0xf0}},
		{"aarch64", []byte{0x00, 0x00}},
		{"aarch64", []byte{0x00, 0x00, 0x00, 0x00}}, // udf #0 is not decoded by arm64asm
	}
	for _, tc := range tests {
		a, _ := Lookup(tc.arch)
		if s, _, err := a.Disasm(tc.code, 0, nil); err == nil {
			// udf may decode on newer x/arch versions; only insist on
			// errors for truncated input.
			if len(tc.code) < 4 {
				t.Errorf("%s Disasm(% x) = %q, want error", tc.arch, tc.code, s)
			}
		} else if !errors.Is(err, ErrDecode) {
			t.Errorf("%s Disasm(% x) error %v does not match ErrDecode", tc.arch, tc.code, err)
		}
	}
}

func TestCallBefore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		arch string
		code []byte
		want bool
	}{
		{"e8 rel32", "x86_64", []byte{0x90, 0xe8, 0x10, 0x20, 0x00, 0x00}, true},
		{"call *%rax", "x86_64", []byte{0x90, 0xff, 0xd0}, true},
		{"call *%r11", "x86_64", []byte{0x41, 0xff, 0xd3}, true},
		{"call *(%rax)", "x86_64", []byte{0xff, 0x10}, true},
		{"call *0x8(%rbx)", "x86_64", []byte{0xff, 0x53, 0x08}, true},
		{"call *0x10(%rsp)", "x86_64", []byte{0xff, 0x54, 0x24, 0x10}, true},
		{"call *rip+disp32", "x86_64", []byte{0xff, 0x15, 0x00, 0x10, 0x00, 0x00}, true},
		{"call *disp32(%rax,%rcx,8)", "x86_64", []byte{0xff, 0x94, 0xc8, 0x00, 0x10, 0x00, 0x00}, true},
		{"notrack call *%rax", "x86_64", []byte{0x3e, 0xff, 0xd0}, true},
		{"call *%gs:0x10", "x86_64", []byte{0x65, 0xff, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00}, true},
		{"jmp *%rax", "x86_64", []byte{0xff, 0xe0}, false},
		{"push (%rax)", "x86_64", []byte{0xff, 0x30}, false},
		{"ret", "x86_64", []byte{0x90, 0x90, 0xc3}, false},
		{"jmp rel32", "x86_64", []byte{0xe9, 0x10, 0x20, 0x00, 0x00}, false},
		{"empty", "x86_64", nil, false},
		{"i386 call", "i386", []byte{0xe8, 0x10, 0x20, 0x00, 0x00}, true},
		{"bl", "aarch64", []byte{0x00, 0x04, 0x00, 0x94}, true},
		{"blr x8", "aarch64", []byte{0x00, 0x01, 0x3f, 0xd6}, true},
		{"blraaz x8", "aarch64", []byte{0x1f, 0x09, 0x3f, 0xd6}, true},
		{"br x8", "aarch64", []byte{0x00, 0x01, 0x1f, 0xd6}, false},
		{"ret", "aarch64", []byte{0xc0, 0x03, 0x5f, 0xd6}, false},
		{"short", "aarch64", []byte{0x94}, false},
	}
	for _, tc := range tests {
		a, _ := Lookup(tc.arch)
		if got := a.CallBefore(tc.code); got != tc.want {
			t.Errorf("%s: CallBefore(% x) = %v, want %v", tc.name, tc.code, got, tc.want)
		}
	}
}

func TestCompareFlags(t *testing.T) {
	t.Parallel()
	x, _ := Lookup("x86_64")
	cf := x.CompareFlags()
	if len(cf["eflags"]) != len(x.Flags["eflags"]) {
		t.Fatalf("CompareFlags()[eflags] = %v", cf["eflags"])
	}
	for i, b := range x.Flags["eflags"] {
		c := cf["eflags"][i]
		if c.Name != b.Name || c.Shift != b.Shift || c.Width != b.Width {
			t.Errorf("bit %d: %+v vs %+v", i, c, b)
		}
	}
}

func TestX86FallThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code []byte
		next uint64
		ok   bool
	}{
		{"push rbp", []byte{0x55}, 0x1001, true},
		{"mov rsp,rbp", []byte{0x48, 0x89, 0xe5}, 0x1003, true},
		{"endbr64", []byte{0xf3, 0x0f, 0x1e, 0xfa}, 0x1004, true},
		{"nop", []byte{0x90}, 0x1001, true},
		{"call rel32", []byte{0xe8, 0, 0, 0, 0}, 0, false},
		{"jmp rel8", []byte{0xeb, 0xfe}, 0, false},
		{"je rel8", []byte{0x74, 0x02}, 0, false},
		{"ret", []byte{0xc3}, 0, false},
		{"int3", []byte{0xcc}, 0, false},
		{"hlt", []byte{0xf4}, 0, false},
		{"syscall", []byte{0x0f, 0x05}, 0, false},
		{"truncated", []byte{0x48}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next, ok := X86FallThrough(tt.code, 0x1000, 64)
			if ok != tt.ok || next != tt.next {
				t.Errorf("X86FallThrough(% x) = %#x, %v; want %#x, %v", tt.code, next, ok, tt.next, tt.ok)
			}
		})
	}
}

// TestSpecialEncodings checks instructions the x/arch decoders lack or
// misread: riscv's privileged returns and unimp, and s390x's zero halfword.
func TestSpecialEncodings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arch string
		code []byte
		text string
		n    int
		fall bool
	}{
		{"riscv64", []byte{0x73, 0x00, 0x20, 0x30}, "mret", 4, false},
		{"riscv64", []byte{0x73, 0x00, 0x50, 0x10}, "wfi", 4, false},
		{"riscv64", []byte{0x73, 0x00, 0x00, 0x12}, "sfence.vma", 4, true},
		{"riscv64", []byte{0x00, 0x00}, "unimp", 2, false},
		{"riscv64", []byte{0x73, 0x10, 0x00, 0xc0}, "unimp", 4, false},
		{"riscv64", []byte{0x82, 0x80}, "ret", 2, false},
		{"riscv64", []byte{0x01, 0x00}, "nop", 2, true},
		{"aarch64", []byte{0x1f, 0x20, 0x03, 0xd5}, "nop", 4, true},
		{"s390x", []byte{0x07, 0x07}, "nopr %r7", 2, true},
	}
	for _, tc := range tests {
		a, _ := Lookup(tc.arch)
		text, n, err := a.Disasm(tc.code, 0x1000, nil)
		if err != nil || text != tc.text || n != tc.n {
			t.Errorf("%s % x: Disasm = %q, %d, %v; want %q, %d", tc.arch, tc.code, text, n, err, tc.text, tc.n)
		}
		next, ok := a.FallThrough(tc.code, 0x1000)
		if ok != tc.fall || ok && next != 0x1000+uint64(tc.n) {
			t.Errorf("%s %s: FallThrough = %#x, %v; want %v", tc.arch, tc.text, next, ok, tc.fall)
		}
	}
	if s, _ := Lookup("s390x"); true {
		if _, _, err := s.Disasm([]byte{0, 0}, 0x1000, nil); err == nil {
			t.Error("s390x: the zero halfword decoded")
		}
	}
}
