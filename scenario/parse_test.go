package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid scenario.
const minimal = `name: t
guests:
  defaults: {kernel: k.elf}
  a: {}
  b: {}
sync:
  - break: main
`

func noEnv(string) (string, bool) { return "", false }

func TestExamplesParse(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../testdata/scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		expect   Expect
		same     bool
		syncs    int
		accelB   string
		kernelB  string
		localize bool
	}{
		"demo.yaml":       {ExpectDiverge, false, 5, AccelTCG, "demo-bad.elf", true},
		"demo-self.yaml":  {ExpectIdentical, true, 5, AccelTCG, "demo-good.elf", true},
		"cpu-models.yaml": {ExpectDiverge, true, 2, AccelTCG, "cpu-probe.elf", true},
		"tcg-kvm.yaml":    {ExpectDiverge, true, 2, AccelKVM, "cpu-probe.elf", true},
		"demo-hang.yaml":  {ExpectDiverge, false, 2, AccelTCG, "demo-hang.elf", true},
		"demo-exit.yaml":  {ExpectDiverge, false, 2, AccelTCG, "demo-exit.elf", true},
		"deep.yaml":       {ExpectDiverge, true, 2, AccelTCG, "deep-1e3.elf", true},
		"tsc.yaml":        {ExpectIdentical, true, 1, AccelTCG, "tsc.elf", true},
	}
	if len(files) < len(want) {
		t.Fatalf("found %d scenarios, want at least %d", len(files), len(want))
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		w, ok := want[filepath.Base(f)]
		if !ok {
			continue
		}
		if s.Expect != w.expect || s.SameBinary() != w.same || len(s.Sync) != w.syncs ||
			s.Guests[1].Accel != w.accelB || filepath.Base(s.Guests[1].Kernel) != w.kernelB ||
			s.Localize.Enabled != w.localize {
			t.Errorf("%s: expect=%s same=%v syncs=%d accelB=%s kernelB=%s localize=%v, want %+v", f,
				s.Expect, s.SameBinary(), len(s.Sync), s.Guests[1].Accel, filepath.Base(s.Guests[1].Kernel),
				s.Localize.Enabled, w)
		}
		for _, g := range s.Guests {
			if !filepath.IsAbs(g.Kernel) || filepath.Dir(g.Kernel) != filepath.Join(s.Dir, "..", "guests", "build") {
				t.Errorf("%s: guest %s kernel %q not resolved to ../guests/build", f, g.Side, g.Kernel)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // "line:col: fragment", in file order; exactly these
	}{
		{"unknown top-level key", minimal + "expekt: diverge\n",
			[]string{`8:1: unknown field "expekt" (did you mean "expect"?)`}},
		{"unknown guest key", strings.Replace(minimal, "a: {}", "a: {kernal: x}", 1),
			[]string{`4:7: guests.a: unknown field "kernal" (did you mean "kernel"?)`}},
		{"duplicate key", minimal + "name: u\n",
			[]string{`8:1: duplicate key "name" (first at line 1)`}},
		{"missing name", strings.Replace(minimal, "name: t\n", "description: d\n", 1),
			[]string{`1:1: name is required`}},
		{"missing guests and sync", "name: t\n",
			[]string{`1:1: guests is required`, `1:1: sync is required`}},
		{"missing side b", strings.Replace(minimal, "  b: {}\n", "", 1),
			[]string{`3:3: guests: b is required`}},
		{"bad accel", strings.Replace(minimal, "a: {}", "a: {accel: hvf}", 1),
			[]string{`4:14: guests.a.accel: "hvf" is not one of tcg, kvm`}},
		{"bad memory", strings.Replace(minimal, "a: {}", "a: {memory: lots}", 1),
			[]string{`4:15: guests.a.memory: bad memory size "lots"`}},
		{"empty source_strip entry", strings.Replace(minimal, "a: {}", `a: {source_strip: [""]}`, 1),
			[]string{`4:22: guests.a.source_strip[0]: must not be empty`}},
		{"bad source_strip pattern", strings.Replace(minimal, "a: {}", `a: {source_strip: ["/build/[x/"]}`, 1),
			[]string{`4:22: guests.a.source_strip[0]: bad pattern "[x" in "/build/[x/": syntax error in pattern`}},
		{"source_strip not a list", strings.Replace(minimal, "a: {}", `a: {source_strip: /build/}`, 1),
			[]string{`4:21: guests.a.source_strip: expected a list`}},
		{"attach with a launch field", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: /q}, kernel: x, symbols: s}", 1),
			[]string{`4:34: guests.a.kernel: not allowed with attach`}},
		{"attach without symbols", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: /q}}", 1),
			[]string{`4:6: guests.a: "main" needs symbols: set symbols to the ELF`}},
		{"attach without qmp", strings.Replace(minimal, "a: {}", "a: {attach: {on_exit: resume}, symbols: s}", 1),
			[]string{`4:15: guests.a.attach: qmp is required`}},
		{"attach bad on_exit", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: /q, on_exit: kill}, symbols: s}", 1),
			[]string{`4:34: guests.a.attach.on_exit: "kill" is not one of`}},
		{"attach remote tcp", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: \"tcp:10.0.0.1:4444\"}, symbols: s}", 1),
			[]string{`4:21: guests.a.attach.qmp: host "10.0.0.1" is not the loopback`}},
		{"attach bad port", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: \"tcp:127.0.0.1:0\"}, symbols: s}", 1),
			[]string{`4:21: guests.a.attach.qmp: bad port "0"`}},
		{"attach in defaults", strings.Replace(minimal, "{kernel: k.elf}", "{kernel: k.elf, attach: {qmp: /q}}", 1),
			[]string{`3:37: guests.defaults.attach: not allowed`}},
		{"attach same qmp", strings.Replace(strings.Replace(minimal, "a: {}", "a: {attach: {qmp: /q}, symbols: s}", 1), "b: {}", "b: {attach: {qmp: /q}, symbols: s}", 1),
			[]string{`5:15: guests.b.attach.qmp: the same QEMU as guests.a`}},
		{"attach with localize", strings.Replace(minimal, "a: {}", "a: {attach: {qmp: /q}, symbols: s}", 1) + "localize: {enabled: true}\n",
			[]string{`8:11: localize: not available when a side attaches`}},
		{"break now with hit", strings.Replace(minimal, "- break: main", "- {break: now, hit: 2}", 1),
			[]string{`7:18: sync[0].hit: not allowed with break: now`}},
		{"break now at return", strings.Replace(minimal, "- break: main", "- {break: now, at: return}", 1),
			[]string{`7:18: sync[0].at: return is not allowed with break: now`}},
		{"bad smp", strings.Replace(minimal, "a: {}", "a: {smp: 0}", 1),
			[]string{`4:12: guests.a.smp: 0 is out of range [1, 1024]`}},
		{"same labels", strings.Replace(strings.Replace(minimal, "a: {}", "a: {label: x}", 1), "b: {}", "b: {label: x}", 1),
			[]string{`5:14: guests: a and b have the same label "x"`}},
		{"bad timeout", minimal + "timeout: 60\n",
			[]string{`8:10: timeout: "60" is not a duration`}},
		{"negative timeout", minimal + "timeout: -5s\n",
			[]string{`8:10: timeout: must be positive`}},
		{"bad expect", minimal + "expect: same\n",
			[]string{`8:9: expect: "same" is not one of identical, diverge`}},
		{"empty sync", strings.Replace(minimal, "  - break: main\n", "  []\n", 1),
			[]string{`7:3: sync: needs at least one sync point`}},
		{"sync not a list", strings.Replace(minimal, "  - break: main\n", "  break: main\n", 1),
			[]string{`7:3: sync: expected a list, got a mapping`}},
		{"break missing", minimal + "  - hit: 2\n",
			[]string{`8:5: sync[1]: break is required`}},
		{"bad break", minimal + "  - break: main+zz\n",
			[]string{`8:12: sync[1].break: bad break expression: bad offset "zz"`}},
		{"bad address break", minimal + "  - break: 0xfoo\n",
			[]string{`8:12: sync[1].break: bad break expression: "0xfoo" is not a hex address`}},
		{"hit zero", minimal + "  - {break: main, hit: 0}\n",
			[]string{`8:24: sync[1].hit: 0 is out of range`}},
		{"bad step", minimal + "  - {break: main, step: many}\n",
			[]string{`8:25: sync[1].step: "many" is not an integer`}},
		{"bad sync timeout", minimal + "  - {break: main, timeout: 5}\n",
			[]string{`8:28: sync[1].timeout: "5" is not a duration`}},
		{"unknown sync key", minimal + "  - {break: main, hits: 2}\n",
			[]string{`8:19: sync[1]: unknown field "hits" (did you mean "hit"?)`}},
		{"bad register", minimal + "compare: {registers: [rax, \"r-x\"]}\n",
			[]string{`8:28: compare.registers[1]: register or group must be a non-empty identifier, got "r-x"`}},
		{"bad ignore", minimal + "compare: {ignore: [eflags.RF.x]}\n",
			[]string{`8:20: compare.ignore[0]: want a register or register.BIT, got "eflags.RF.x"`}},
		{"bad callpath", minimal + "compare: {callpath: full}\n",
			[]string{`8:21: compare.callpath: "full" is not one of none, backtrace`}},
		{"memory address without length", minimal + "compare:\n  memory:\n    - {address: 0x1000}\n",
			[]string{`10:7: compare.memory[0]: address needs a length`}},
		{"memory symbol and address", minimal + "compare:\n  memory:\n    - {symbol: x, address: 0x1000, length: 4}\n",
			[]string{`10:7: compare.memory[0]: symbol and address are mutually exclusive`}},
		{"memory neither", minimal + "compare:\n  memory:\n    - {length: 4}\n",
			[]string{`10:7: compare.memory[0]: needs a symbol or an address`}},
		{"memory bad space", minimal + "compare:\n  memory:\n    - {symbol: x, space: io}\n",
			[]string{`10:26: compare.memory[0].space: "io" is not one of virtual, physical`}},
		{"memory zero length", minimal + "compare:\n  memory:\n    - {symbol: x, length: 0}\n",
			[]string{`10:27: compare.memory[0].length: must be positive`}},
		{"bad localize method", minimal + "localize: {method: bisect}\n",
			[]string{`8:20: localize.method: "bisect" is not one of auto, step, trace, replay`}},
		{"bad determinism record", minimal + "determinism: {record: maybe}\n",
			[]string{`8:23: determinism.record: `}},
		{"bad sstep", minimal + "determinism: {sstep: [noirq, nmi]}\n",
			[]string{`8:30: determinism.sstep[1]: "nmi" is not one of noirq, notimer`}},
		{"icount with kvm", strings.Replace(minimal, "b: {}", "b: {accel: kvm}", 1) + "determinism: {icount: \"shift=0\"}\n",
			[]string{`8:23: determinism.icount: not supported with accel kvm (guest b)`}},
		{"bad glob", minimal + "trace: {functions: [\"fib[\"]}\n",
			[]string{`8:21: trace.functions[0]: bad glob "fib["`}},
		{"bad max_steps", minimal + "localize: {max_steps: 0}\n",
			[]string{`8:23: localize.max_steps: 0 is out of range`}},
		{"bad localize enabled", minimal + "localize: {enabled: maybe}\n",
			[]string{`8:21: localize.enabled: "maybe" is not true or false`}},
		{"bad noise register", minimal + "noise: {registers: [\"a b\"]}\n",
			[]string{`8:21: noise.registers[0]: want a register or register.BIT`}},
		{"bad noise offset", minimal + "noise: {memory: [{symbol: r, offsets: [1, -2]}]}\n",
			[]string{`8:43: noise.memory[0].offsets[1]: "-2" is not an unsigned integer`}},
		{"no symbols for symbolic break", strings.Replace(minimal, "  defaults: {kernel: k.elf}\n", "  defaults: {bios: b.bin}\n", 1),
			[]string{`4:6: guests.a: "main" needs symbols`, `5:6: guests.b: "main" needs symbols`}},
		{"unknown arch needs machine and cpu", strings.Replace(minimal, "a: {}", "a: {arch: sparc64}", 1),
			[]string{`4:6: guests.a: machine is required for arch sparc64`, `4:6: guests.a: cpu is required for arch sparc64`}},
		{"drive without file", strings.Replace(minimal, "a: {}", "a: {drives: [{format: raw}]}", 1),
			[]string{`4:16: guests.a.drives[0]: file is required`}},
		{"guest not a mapping", strings.Replace(minimal, "a: {}", "a: [x]", 1),
			[]string{`4:6: guests.a: expected a mapping, got a list`}},
		{"unset variable", strings.Replace(minimal, "k.elf", `"${NOPE_NOT_SET}/k.elf"`, 1),
			[]string{`3:22: guests.defaults.kernel: environment variable NOPE_NOT_SET is not set`}},
		{"yaml syntax error", "name: t\nguests: [a,\n",
			[]string{`2: yaml: did not find expected node content`}},
		{"two documents", minimal + "---\nname: u\n",
			[]string{`8:1: more than one YAML document`}},
		{"empty", "", []string{`1: empty scenario`}},
		{"top level list", "- a\n", []string{`1:1: scenario: expected a mapping, got a list`}},
		{"empty noise offsets", minimal + "noise: {memory: [{symbol: r, offsets: []}]}\n",
			[]string{`8:39: noise.memory[0].offsets: empty list`}},
		{"empty label", strings.Replace(minimal, "a: {}", "a: {label: \"\"}", 1),
			[]string{`4:14: guests.a.label: must not be empty`}},
		{"non-string key", minimal + "[a]: 1\n", []string{`8:1: keys must be strings`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse("t.yaml", []byte(tc.yaml), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

// checkErrors asserts err is Errors with exactly want, in order.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v (%T), want Errors", err, err)
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) did not find the first problem")
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		pos, frag, _ := strings.Cut(w, ": ")
		got := errs[i]
		if got.Pos.File != "t.yaml" {
			t.Errorf("problem %d file = %q", i, got.Pos.File)
		}
		if p := strings.TrimPrefix(got.Pos.String(), "t.yaml:"); p != pos {
			t.Errorf("problem %d at %s, want %s (%v)", i, p, pos, got)
		}
		if !strings.Contains(got.Msg, frag) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got.Msg, frag)
		}
		if !strings.HasPrefix(got.Error(), "t.yaml:"+pos+": ") {
			t.Errorf("problem %d Error() = %q", i, got.Error())
		}
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	const doc = `name: ""
timeout: soon
guests:
  defaults: {accel: qemu}
  a: {smp: -1}
  b: {memory: 1X, extra: 1}
compare:
  registers: [""]
sync:
  - break: "+4"
    hit: zero
  - step: 5
expect: maybe
`
	_, err := parse("t.yaml", []byte(doc), noEnv)
	checkErrors(t, err, []string{
		`1:7: name is required`,
		`2:10: timeout: "soon" is not a duration`,
		`4:21: guests.defaults.accel: "qemu" is not one of tcg, kvm`,
		`5:12: guests.a.smp: -1 is out of range`,
		`6:15: guests.b.memory: bad memory size "1X"`,
		`6:19: guests.b: unknown field "extra"`,
		`8:15: compare.registers[0]: register or group must be a non-empty identifier`,
		`10:12: sync[0].break: bad break expression`,
		`11:10: sync[0].hit: "zero" is not an integer`,
		`12:5: sync[1]: break is required`,
		`13:9: expect: "maybe" is not one of identical, diverge`,
	})
	if n := strings.Count(err.Error(), "\n"); n != 10 {
		t.Errorf("Error() has %d newlines, want 10 (one problem per line)", n)
	}
}

func TestDefaultsAndMerge(t *testing.T) {
	t.Parallel()
	const doc = `name: merge
guests:
  defaults:
    cpu: max
    kernel: good.elf
    args: [-x]
    drives: [{file: disk.img, format: raw, if: virtio, snapshot: true}]
  a: {label: left}
  b:
    kernel: /abs/bad.elf
    symbols: syms.elf
    args: []
    cpu: qemu64
    accel: kvm
    qemu: ./bin/qemu
    smp: 2
compare:
  registers: [general]
  ignore: [eflags.RF]
  memory: [{symbol: results}]
sync:
  - break: kmain
  - break: checksum+0x10
    hit: 3
    timeout: 10s
    step: 2000
    compare: {registers: [rax, rdi], callpath: backtrace}
  - break: "0xffff8000"
    compare: {memory: []}
`
	s, err := parse("/work/x/sc.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Guests[0], s.Guests[1]
	wantA := Guest{Side: "a", Label: "left", Arch: "x86_64", QEMU: "qemu-system-x86_64", Machine: "pc", CPU: "max",
		Accel: "tcg", Memory: "64M", SMP: 1, Kernel: "/work/x/good.elf", Symbols: "/work/x/good.elf", Args: []string{"-x"},
		Drives: []Drive{{File: "/work/x/disk.img", Format: "raw", If: "virtio", Snapshot: true, Pos: Position{"/work/x/sc.yaml", 7, 14}}},
		Pos:    Position{"/work/x/sc.yaml", 8, 6}}
	if !reflect.DeepEqual(a, wantA) {
		t.Errorf("guest a =\n%+v\nwant\n%+v", a, wantA)
	}
	if b.Label != "b" || b.Kernel != "/abs/bad.elf" || b.Symbols != "/work/x/syms.elf" || b.CPU != "qemu64" ||
		b.Accel != "kvm" || b.QEMU != "/work/x/bin/qemu" || b.SMP != 2 || len(b.Args) != 0 || b.Args == nil ||
		len(b.Drives) != 1 || b.Machine != "pc" {
		t.Errorf("guest b = %+v", b)
	}
	if got := s.Pos["guests.b.cpu"]; got.Line != 13 {
		t.Errorf("Pos[guests.b.cpu] = %v, want line 13", got)
	}
	if got := s.Pos["guests.a.cpu"]; got.Line != 4 {
		t.Errorf("Pos[guests.a.cpu] = %v, want line 4 (inherited from defaults)", got)
	}
	if s.Timeout != DefaultTimeout || s.Expect != ExpectIdentical || !s.Localize.Enabled ||
		s.Localize.MaxSteps != DefaultMaxSteps || !reflect.DeepEqual(s.Determinism.Sstep, []string{"noirq", "notimer"}) {
		t.Errorf("top-level defaults: %v %v %+v %+v", s.Timeout, s.Expect, s.Localize, s.Determinism)
	}
	s0, s1, s2 := s.Sync[0], s.Sync[1], s.Sync[2]
	if s0.Hit != 1 || s0.Timeout != 0 || s0.Step != 0 || s0.Compare.CallPath != CallPathNone ||
		!reflect.DeepEqual(s0.Compare.Registers, []string{"general"}) || len(s0.Compare.Memory) != 1 {
		t.Errorf("sync[0] = %+v", s0)
	}
	if s1.Symbol != "checksum" || s1.Offset != 0x10 || s1.Hit != 3 || s1.Timeout != 10*time.Second || s1.Step != 2000 ||
		!reflect.DeepEqual(s1.Compare.Registers, []string{"rax", "rdi"}) || s1.Compare.CallPath != CallPathBacktrace ||
		!reflect.DeepEqual(s1.Compare.Ignore, []string{"eflags.RF"}) || len(s1.Compare.Memory) != 1 {
		t.Errorf("sync[1] = %+v", s1)
	}
	if !s2.IsAddr || s2.Addr != 0xffff8000 || len(s2.Compare.Memory) != 0 || s2.Pos.Line != 28 {
		t.Errorf("sync[2] = %+v", s2)
	}
	if m := s.Compare.Memory[0]; m.Symbol != "results" || m.Space != SpaceVirtual || m.Length != 0 || m.Pos.Line != 20 {
		t.Errorf("memory = %+v", m)
	}
	if s.SameBinary() {
		t.Error("SameBinary() = true for different symbols")
	}
	if p := s.PosOf("sync[1].compare.registers"); p.Line != 27 || p.Col != 26 {
		t.Errorf("PosOf(sync[1].compare.registers) = %v", p)
	}
	if p := s.PosOf("sync[0].compare.registers"); p.Line != 18 {
		t.Errorf("PosOf(sync[0].compare.registers) = %v, want the top-level compare.registers line", p)
	}
	if p := s.PosOf("sync[0].step"); p.Line != 22 {
		t.Errorf("PosOf fallback = %v, want the sync[0] line", p)
	}
}

func TestX86DefaultArgs(t *testing.T) {
	t.Parallel()
	s, err := parse("t.yaml", []byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Guests[0].Args, DefaultX86Args) {
		t.Errorf("args = %q, want %q", s.Guests[0].Args, DefaultX86Args)
	}
	s.Guests[0].Args[0] = "mutated"
	if DefaultX86Args[0] != "-device" || s.Guests[1].Args[0] != "-device" {
		t.Error("guests share the DefaultX86Args backing array")
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GUESTS": "/opt/guests", "CPU": "max", "HIT": "4", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	doc := `name: env-$CPU
guests:
  defaults: {kernel: "${GUESTS}/demo.elf", append: "x=$EMPTY;cost=$$5"}
  a: {cpu: $CPU}
  b: {kernel: rel/$CPU.elf}
sync:
  - {break: main, hit: "${HIT}"}
`
	s, err := parse("/w/t.yaml", []byte(doc), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "env-max" || s.Guests[0].Kernel != "/opt/guests/demo.elf" || s.Guests[0].CPU != "max" ||
		s.Guests[1].Kernel != "/w/rel/max.elf" || s.Sync[0].Hit != 4 || s.Guests[0].Append != "x=;cost=$5" {
		t.Errorf("expanded: name=%q a=%+v b.kernel=%q hit=%d", s.Name, s.Guests[0], s.Guests[1].Kernel, s.Sync[0].Hit)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "1", "B_2": "two"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"$A", "1", ""},
		{"${A}x", "1x", ""},
		{"$B_2/$A", "two/1", ""},
		{"$$A", "$A", ""},
		{"cost $5", "cost $5", ""},
		{"end$", "end$", ""},
		{"$UNSET", "", "environment variable UNSET is not set"},
		{"${A", "", "unterminated ${"},
		{"${}", "", "bad variable name"},
		{"${A-B}", "", "bad variable name"},
	}
	for _, tc := range tests {
		got, err := expandEnv(tc.in, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandEnv(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadUsesProcessEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LOCKSTEP_TEST_KERNEL", "from-env.elf")
	p := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(minimal, "k.elf", "$LOCKSTEP_TEST_KERNEL", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "from-env.elf"); s.Guests[0].Kernel != want || s.Dir != dir {
		t.Errorf("kernel = %q dir = %q, want %q", s.Guests[0].Kernel, s.Dir, want)
	}
	if !s.SameBinary() {
		t.Error("SameBinary() = false for one kernel")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestPathResolution(t *testing.T) {
	t.Parallel()
	doc := `name: paths
guests:
  defaults: {kernel: ../guests/k.elf, initrd: init.cpio, bios: /usr/share/bios.bin, qemu: qemu-system-x86_64}
  a: {qemu: ../qemu/build/qemu-system-x86_64}
  b: {drives: [{file: ./disk.qcow2}]}
sync: [{break: main}]
`
	s, err := parse("scen/dir/t.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Abs("scen/dir")
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Guests[0], s.Guests[1]
	checks := []struct{ name, got, want string }{
		{"dir", s.Dir, base},
		{"kernel", a.Kernel, filepath.Join(base, "../guests/k.elf")},
		{"symbols", a.Symbols, filepath.Join(base, "../guests/k.elf")},
		{"initrd", a.Initrd, filepath.Join(base, "init.cpio")},
		{"bios", a.BIOS, "/usr/share/bios.bin"},
		{"qemu with slash", a.QEMU, filepath.Join(base, "../qemu/build/qemu-system-x86_64")},
		{"qemu bare name", b.QEMU, "qemu-system-x86_64"},
		{"drive", b.Drives[0].File, filepath.Join(base, "disk.qcow2")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestYAMLFeatures(t *testing.T) {
	t.Parallel()
	doc := `name: anchors
x-common: &common {cpu: max, kernel: k.elf}
guests:
  a: *common
  b: {<<: *common, cpu: qemu64}
sync: [{break: main}]
`
	// x-common is an unknown key: anchors must live inside known fields.
	_, err := parse("t.yaml", []byte(doc), noEnv)
	checkErrors(t, err, []string{`2:1: unknown field "x-common"`})

	doc = `name: anchors
guests:
  defaults: &common {cpu: max, kernel: k.elf}
  a: *common
  b: {<<: *common, cpu: qemu64}
sync: [{break: main}]
`
	s, err := parse("t.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s.Guests[0].CPU != "max" || s.Guests[1].CPU != "qemu64" || s.Guests[1].Kernel == "" {
		t.Errorf("guests = %+v", s.Guests)
	}
}

func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("name: bomb\nguests:\n  a: {args: &l0 [x, x, x, x, x, x, x, x, x, x]}\n")
	for i := 1; i < 8; i++ {
		b.WriteString("  x" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := parse("t.yaml", []byte(b.String()), noEnv)
	if err == nil {
		t.Fatal("alias bomb parsed")
	}
}

func TestMergeKeyBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("name: bomb\nguests:\n  defaults: &m0 {cpu: x}\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "  x%d: &m%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("  a: *m8\n")
	_, err := parse("t.yaml", []byte(b.String()), noEnv)
	if err == nil || !strings.Contains(err.Error(), "document too large") {
		t.Fatalf("merge-key bomb: %v", err)
	}
}

func TestParseBreak(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		sym    string
		off    uint64
		addr   uint64
		isAddr bool
		ok     bool
	}{
		{"kmain", "kmain", 0, 0, false, true},
		{"checksum+0x10", "checksum", 16, 0, false, true},
		{"checksum+16", "checksum", 16, 0, false, true},
		{" leaf + 0x4 ", "leaf", 4, 0, false, true},
		{"foo.cold", "foo.cold", 0, 0, false, true},
		{"memcpy@plt", "memcpy@plt", 0, 0, false, true},
		{"0x100000", "", 0, 0x100000, true, true},
		{"0XFFFFFFFF81000000", "", 0, 0xffffffff81000000, true, true},
		{"", "", 0, 0, false, false},
		{"0x", "", 0, 0, false, false},
		{"0x+1", "", 0, 0, false, false},
		{"0x10000000000000000", "", 0, 0, false, false},
		{"123", "", 0, 0, false, false},
		{"sym+", "", 0, 0, false, false},
		{"sym+-1", "", 0, 0, false, false},
		{"sym-4", "", 0, 0, false, false},
		{"sym+0x", "", 0, 0, false, false},
		{"sym+1+2", "", 0, 0, false, false},
		{"a b", "", 0, 0, false, false},
	}
	for _, tc := range tests {
		sym, off, addr, isAddr, err := ParseBreak(tc.in)
		if !tc.ok {
			if !errors.Is(err, ErrBadBreak) {
				t.Errorf("ParseBreak(%q) err = %v, want ErrBadBreak", tc.in, err)
			}
			continue
		}
		if err != nil || sym != tc.sym || off != tc.off || addr != tc.addr || isAddr != tc.isAddr {
			t.Errorf("ParseBreak(%q) = %q %d %#x %v %v", tc.in, sym, off, addr, isAddr, err)
		}
	}
}

func TestSourceStrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		guests string // the guests mapping, under "guests:"
		want   [2][]string
	}{
		{"none", "{defaults: {kernel: k.elf}, a: {}, b: {}}", [2][]string{nil, nil}},
		{"defaults", "{defaults: {kernel: k.elf, source_strip: [/build/reproducible-path/linux-*/]}, a: {}, b: {}}",
			[2][]string{{"/build/reproducible-path/linux-*/"}, {"/build/reproducible-path/linux-*/"}}},
		{"a side replaces the default", "{defaults: {kernel: k.elf, source_strip: [/x/]}, a: {source_strip: [/home/me/linux/, src/]}, b: {source_strip: []}}",
			[2][]string{{"/home/me/linux/", "src/"}, {}}},
		{"not resolved against the scenario", "{defaults: {kernel: k.elf}, a: {source_strip: [linux/]}, b: {}}", [2][]string{{"linux/"}, nil}},
	}
	for _, tc := range tests {
		doc := "name: t\nguests: " + tc.guests + "\nsync:\n  - break: main\n"
		s, err := parse("/work/x/sc.yaml", []byte(doc), noEnv)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		for i, g := range s.Guests {
			if !reflect.DeepEqual(g.SourceStrip, tc.want[i]) {
				t.Errorf("%s: guest %s source_strip = %q, want %q", tc.name, g.Side, g.SourceStrip, tc.want[i])
			}
		}
	}
}
