package arch

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// crossArchs are the architectures built from testdata/cross with the
// Debian cross compilers: triple prefix, link address, extra flags.
var crossArchs = map[string]struct {
	triple, text string
	flags        []string
}{
	"aarch64": {"aarch64-linux-gnu", "0x40080000", nil},
	"riscv64": {"riscv64-linux-gnu", "0x80000000", []string{"-mcmodel=medany"}},
	"s390x":   {"s390x-linux-gnu", "0x10000", nil},
}

var (
	crossMu    sync.Mutex
	crossBuilt = map[string]string{}
	crossDir   string
)

// crossBuild compiles testdata/cross/src for arch with the cross compiler
// (freestanding, linked at a fixed address) and returns the ELF's path;
// it skips when the compiler is not installed.
func crossBuild(t *testing.T, arch, src string, extra ...string) string {
	t.Helper()
	c, ok := crossArchs[arch]
	if !ok {
		t.Fatalf("no cross build for %s", arch)
	}
	gcc := c.triple + "-gcc"
	if _, err := exec.LookPath(gcc); err != nil {
		t.Skipf("%s not installed (Debian package gcc-%s): %v", gcc, c.triple, err)
	}
	key := arch + "/" + src + "/" + strings.Join(extra, " ")
	crossMu.Lock()
	defer crossMu.Unlock()
	if p, ok := crossBuilt[key]; ok {
		return p
	}
	if crossDir == "" {
		d, err := os.MkdirTemp("", "lockstep-arch-cross-")
		if err != nil {
			t.Fatal(err)
		}
		crossDir = d
	}
	out := filepath.Join(crossDir, strings.NewReplacer("/", "_", " ", "_", ".", "_").Replace(key))
	args := []string{"-O2", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie",
		"-Wl,-Ttext=" + c.text, "-Wl,--build-id=none", "-o", out}
	args = append(args, c.flags...)
	args = append(args, extra...)
	args = append(args, filepath.Join("testdata", "cross", src))
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", gcc, strings.Join(args, " "), err, b)
	}
	crossBuilt[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if crossDir != "" {
		os.RemoveAll(crossDir)
	}
	os.Exit(code)
}

// objdumpInst is one instruction as the cross objdump shows it.
type objdumpInst struct {
	addr     uint64
	n        int // bytes
	mnem     string
	operands string
	fn       string
}

var crossObjdumpLine = regexp.MustCompile(`^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(\S+)\s*(.*)$`)
var crossFuncLine = regexp.MustCompile(`^[0-9a-f]+ <([^>]+)>:$`)

// crossObjdump disassembles path's .text with the arch's objdump.
func crossObjdump(t *testing.T, arch, path string) []objdumpInst {
	t.Helper()
	return crossObjdump2(t, arch, path, 50)
}

// crossObjdump2 is crossObjdump wanting at least least instructions.
func crossObjdump2(t *testing.T, arch, path string, least int) []objdumpInst {
	t.Helper()
	od := crossArchs[arch].triple + "-objdump"
	if _, err := exec.LookPath(od); err != nil {
		t.Skipf("%s not installed (Debian package binutils-%s): %v", od, crossArchs[arch].triple, err)
	}
	out, err := exec.Command(od, "-d", "-j", ".text", "-w", path).Output()
	if err != nil {
		t.Fatalf("%s: %v", od, err)
	}
	var insts []objdumpInst
	fn := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := crossFuncLine.FindStringSubmatch(line); m != nil {
			fn = m[1]
			continue
		}
		m := crossObjdumpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		addr, _ := strconv.ParseUint(m[1], 16, 64)
		n := 0
		for _, f := range strings.Fields(m[2]) {
			n += len(f) / 2
		}
		ops := m[4]
		if i := strings.Index(ops, "#"); i >= 0 && arch != "aarch64" {
			ops = strings.TrimSpace(ops[:i])
		}
		if i := strings.Index(ops, "//"); i >= 0 {
			ops = strings.TrimSpace(ops[:i])
		}
		insts = append(insts, objdumpInst{addr, n, m[3], ops, fn})
	}
	if len(insts) < least {
		t.Fatalf("%s: only %d instructions in objdump's output", path, len(insts))
	}
	return insts
}

// crossText returns the .text bytes and address of path.
func crossText(t *testing.T, path string) ([]byte, uint64, *elf.File) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s := f.Section(".text")
	code, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	return code, s.Addr, f
}

// crossMnemonic maps spellings that differ between x/arch's GNU syntax and
// objdump without changing the instruction.
var crossMnemonic = map[string]map[string]string{
	"riscv64": {"addi": "add", "addiw": "addw", "slli": "sll", "srli": "srl", "srai": "sra",
		"andi": "and", "ori": "or", "xori": "xor", "slliw": "sllw", "srliw": "srlw", "sraiw": "sraw",
		"jalr": "jalr", "c.jalr": "jalr", "jr": "jalr", "sltiu": "sltu", "slti": "slt"},
	"aarch64": {},
	"s390x":   {},
}

func normCross(arch, m string) string {
	m = strings.ToLower(m)
	if r, ok := crossMnemonic[arch][m]; ok {
		return r
	}
	return m
}

// TestCrossDisasmMatchesObjdump checks, for code built by each cross
// compiler, that Disasm agrees with the cross objdump on every
// instruction's length and mnemonic, and that branch targets are printed
// as the same absolute address.
func TestCrossDisasmMatchesObjdump(t *testing.T) {
	t.Parallel()
	for _, arch := range []string{"aarch64", "riscv64", "s390x"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			a, err := Lookup(arch)
			if err != nil {
				t.Fatal(err)
			}
			path := crossBuild(t, arch, "flow.c")
			insts := crossObjdump(t, arch, path)
			code, base, _ := crossText(t, path)
			bad := 0
			for _, in := range insts {
				got, n, err := a.Disasm(code[in.addr-base:], in.addr, nil)
				if err != nil {
					t.Errorf("%#x: objdump %s %s, Disasm error %v", in.addr, in.mnem, in.operands, err)
					bad++
					continue
				}
				if n != in.n {
					t.Errorf("%#x: length %d, objdump %d (%q vs %s %s)", in.addr, n, in.n, got, in.mnem, in.operands)
				}
				gm := strings.Fields(got)[0]
				if normCross(arch, gm) != normCross(arch, in.mnem) {
					t.Logf("%#x: mnemonic %q, objdump %q %q", in.addr, got, in.mnem, in.operands)
					bad++
				}
			}
			// Extended mnemonics differ in a few spellings (x/arch prints
			// some aliases objdump does not); most must agree.
			if bad*10 > len(insts) {
				t.Errorf("%d of %d instructions differ from objdump", bad, len(insts))
			}
			t.Logf("%d instructions, %d spelled differently", len(insts), bad)
		})
	}
}

// crossCalls says which objdump instructions are calls.
func crossIsCall(arch string, in objdumpInst) bool {
	switch arch {
	case "aarch64":
		return in.mnem == "bl" || in.mnem == "blr"
	case "riscv64":
		switch in.mnem {
		case "jal", "jalr":
			// "jal 80000000 <ext>", "jalr a5" link through ra; "jalr zero,..." does not.
			return !strings.HasPrefix(in.operands, "zero,")
		case "call":
			return true
		}
	case "s390x":
		switch in.mnem {
		case "brasl", "bras", "basr", "bas":
			return !strings.HasSuffix(in.operands, ",%r0")
		}
	}
	return false
}

// crossTransfer says which objdump instructions do not always fall through.
func crossTransfer(arch string, in objdumpInst) bool {
	m := in.mnem
	switch arch {
	case "aarch64":
		return m == "b" || strings.HasPrefix(m, "b.") || m == "bl" || m == "blr" || m == "br" || m == "ret" ||
			m == "cbz" || m == "cbnz" || m == "tbz" || m == "tbnz" || m == "brk" || m == "udf" || m == "svc"
	case "riscv64":
		return strings.HasPrefix(m, "b") || m == "j" || m == "jal" || m == "jalr" || m == "jr" || m == "ret" ||
			m == "call" || m == "tail" || m == "ecall" || m == "ebreak"
	case "s390x":
		if m == "nopr" || m == "nop" || m == "bcr" && strings.HasPrefix(in.operands, "0,") {
			return false
		}
		return strings.HasPrefix(m, "b") || strings.HasPrefix(m, "j") || m == "svc" ||
			strings.HasPrefix(m, "c") && strings.HasSuffix(m, "j") && strings.Contains(in.operands, ",")
	}
	return false
}

// TestCrossCallsAndFallThrough checks CallBefore at every instruction end
// against objdump's calls, and FallThrough against its branches, jumps,
// calls and returns.
func TestCrossCallsAndFallThrough(t *testing.T) {
	t.Parallel()
	for _, arch := range []string{"aarch64", "riscv64", "s390x"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			a, _ := Lookup(arch)
			path := crossBuild(t, arch, "flow.c")
			insts := crossObjdump(t, arch, path)
			code, base, _ := crossText(t, path)
			calls, falsePos := 0, 0
			for _, in := range insts {
				end := in.addr + uint64(in.n) - base
				before := code[end-uint64(min(uint64(a.MaxCallLen), end)) : end]
				isCall := crossIsCall(arch, in)
				got := a.CallBefore(before)
				if isCall {
					calls++
					if !got {
						t.Errorf("%#x %s %s: CallBefore false after a call", in.addr, in.mnem, in.operands)
					}
				} else if got {
					falsePos++ // the tail of a longer instruction can look like a short call
					t.Logf("%#x %s %s: CallBefore true after a non-call", in.addr, in.mnem, in.operands)
				}
				next, ok := a.FallThrough(code[in.addr-base:], in.addr)
				if want := !crossTransfer(arch, in); ok != want || ok && next != in.addr+uint64(in.n) {
					t.Errorf("%#x %s %s: FallThrough = %#x, %v; want %v", in.addr, in.mnem, in.operands, next, ok, want)
				}
			}
			if calls < 5 {
				t.Errorf("only %d calls in the fixture", calls)
			}
			if falsePos*20 > len(insts) {
				t.Errorf("CallBefore true after %d of %d non-calls", falsePos, len(insts))
			}
		})
	}
}

var liveComment = regexp.MustCompile(`/\* LIVE\(([0-9,]*)\)(?: DEAD\(([0-9,]*)\))?[^*]*\*/\s*\n\s*N \w+ (?:\(\*)?\s*(\w+)\(`)

func parseIdx(s string) []int {
	var idx []int
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			i, _ := strconv.Atoi(f)
			idx = append(idx, i)
		}
	}
	return idx
}

// TestCrossLiveArgs checks LiveArgs on the fixture's functions against the
// LIVE(...) comments in testdata/cross/flow.c, with callees answered by
// LiveArgs itself, as the engine does.
func TestCrossLiveArgs(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("testdata", "cross", "flow.c"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{}
	dead := map[string][]int{}
	for _, m := range liveComment.FindAllStringSubmatch(string(src), -1) {
		want[m[3]] = parseIdx(m[1])
		if m[2] != "" {
			dead[m[3]] = parseIdx(m[2])
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d LIVE comments parsed", len(want))
	}
	for _, arch := range []string{"aarch64", "riscv64", "s390x"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			a, _ := Lookup(arch)
			path := crossBuild(t, arch, "flow.c")
			code, base, f := crossText(t, path)
			syms, err := f.Symbols()
			if err != nil {
				t.Fatal(err)
			}
			type fn struct {
				name       string
				addr, size uint64
			}
			var fns []fn
			for _, s := range syms {
				if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
					fns = append(fns, fn{s.Name, s.Value, s.Size})
				}
			}
			sort.Slice(fns, func(i, j int) bool { return fns[i].addr < fns[j].addr })
			var live func(addr uint64, depth int) []bool
			live = func(addr uint64, depth int) []bool {
				for _, f := range fns {
					if f.addr == addr && depth < 4 {
						c := code[f.addr-base : f.addr-base+f.size]
						return a.LiveArgs(c, f.addr, func(target uint64) ([]bool, bool) {
							return live(target, depth+1), false
						})
					}
				}
				return nil
			}
			checked := 0
			for _, f := range fns {
				w, ok := want[f.name]
				if !ok {
					continue
				}
				got := live(f.addr, 0)
				exp := make([]bool, len(a.ArgRegs))
				for _, i := range w {
					exp[i] = true
				}
				if d, ok := dead[f.name]; ok {
					// Only the listed registers are known.
					var g, e []bool
					for _, i := range append(w, d...) {
						g, e = append(g, got[i]), append(e, exp[i])
					}
					got, exp = g, e
				}
				if !slicesEqual(got, exp) {
					t.Errorf("%s: LiveArgs = %v, want %v", f.name, got, exp)
				}
				checked++
			}
			if checked < len(want) {
				t.Errorf("checked %d of %d functions", checked, len(want))
			}
		})
	}
}

func slicesEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestA64SystemRegisterNames checks that mrs/msr operands are named as
// objdump names them, for the registers in the table and the generic form
// for one that is not.
func TestA64SystemRegisterNames(t *testing.T) {
	t.Parallel()
	a, _ := Lookup("aarch64")
	path := crossBuild(t, "aarch64", "sysreg.S")
	insts := crossObjdump2(t, "aarch64", path, 30)
	code, base, _ := crossText(t, path)
	named := 0
	for _, in := range insts {
		if in.mnem != "mrs" && in.mnem != "msr" {
			continue
		}
		got, _, err := a.Disasm(code[in.addr-base:], in.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := in.mnem + " " + strings.Join(strings.Fields(strings.ReplaceAll(in.operands, ",", ", ")), " ")
		if got != want {
			t.Errorf("%#x: Disasm %q, objdump %q", in.addr, got, want)
		}
		if !strings.Contains(got, "s3_") {
			named++
		}
	}
	if named < 30 {
		t.Errorf("only %d system registers named", named)
	}
	if SysRegName("s3_0_c0_c0_0") != "MIDR_EL1" || SysRegName("S3_0_C15_C2_0") != "" {
		t.Errorf("SysRegName: MIDR %q, unknown %q", SysRegName("s3_0_c0_c0_0"), SysRegName("S3_0_C15_C2_0"))
	}
}
