package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure is Errors
// with positions in the file, and that every success is a valid scenario.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../testdata/scenarios/*.yaml", "testdata/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte(symbolsDoc))
	f.Add([]byte(strings.Replace(minimal, "a: {}", "a: {source_strip: [/build/*/, src/, \"[\"]}", 1)))
	f.Add([]byte(strings.Replace(minimal, "  - break: main\n", "  - {break: main, hit: 2}\n  - {break: main, hit_total: 5}\n", 1)))
	lookup := func(k string) (string, bool) { return "v", k == "SET" }
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parse("f.yaml", data, lookup)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not Errors: %T %v", err, err)
			}
			lines := strings.Count(string(data), "\n") + 2
			for _, e := range errs {
				if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Line > lines || e.Msg == "" {
					t.Fatalf("bad problem %#v (file has %d lines)", e, lines)
				}
			}
			return
		}
		if s.Name == "" || len(s.Sync) == 0 || s.Timeout <= 0 || s.Guests[0].Label == s.Guests[1].Label {
			t.Fatalf("invalid scenario accepted: %+v", s)
		}
		for _, sp := range s.Sync {
			if sp.Hit < 1 || sp.Break == "" || sp.Step < 0 || !sp.Pos.IsValid() {
				t.Fatalf("invalid sync point accepted: %+v", sp)
			}
		}
		for _, g := range s.Guests {
			if g.Attach != nil {
				// A running QEMU: no launch fields, a QMP address.
				if g.Attach.QMP == "" || g.QEMU != "" || g.Kernel != "" || g.Args != nil || s.Localize.Enabled {
					t.Fatalf("invalid attached guest accepted: %+v %+v", g, g.Attach)
				}
				continue
			}
			if g.Accel != AccelTCG && g.Accel != AccelKVM || g.SMP < 1 || g.QEMU == "" {
				t.Fatalf("invalid guest accepted: %+v", g)
			}
		}
		for _, in := range s.Inject {
			if in.Side < 0 || in.Side > 1 || in.Hit < 1 || (in.Sync >= 0) == (in.Func != "") || in.Sync >= len(s.Sync) ||
				len(in.Regs) == 0 && (in.Memory == nil || len(in.Memory.Bytes) == 0) {
				t.Fatalf("invalid injection accepted: %+v", in)
			}
		}
		_ = s.CheckSymbols([2]Resolver{fakeResolver{}, nil})
	})
}

// FuzzParseBreak checks ParseBreak's results are consistent and round-trip.
func FuzzParseBreak(f *testing.F) {
	f.Fuzz(func(t *testing.T, expr string) {
		sym, off, addr, isAddr, err := ParseBreak(expr)
		if err != nil {
			if !errors.Is(err, ErrBadBreak) {
				t.Fatalf("error %v is not ErrBadBreak", err)
			}
			return
		}
		if isAddr {
			if sym != "" || off != 0 {
				t.Fatalf("address break with symbol: %q %d", sym, off)
			}
			return
		}
		if !isSymbol(sym) || addr != 0 {
			t.Fatalf("ParseBreak(%q) = %q %d %d", expr, sym, off, addr)
		}
		sym2, off2, _, _, err := ParseBreak(sym + "+" + strconv.FormatUint(off, 10))
		if err != nil || sym2 != sym || off2 != off {
			t.Fatalf("round trip of %q: %q %d %v", expr, sym2, off2, err)
		}
	})
}

// FuzzExpandEnv checks expansion never panics and leaves no variable.
func FuzzExpandEnv(f *testing.F) {
	lookup := func(k string) (string, bool) { return "<" + k + ">", !strings.HasPrefix(k, "UNSET") }
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandEnv(s, lookup)
		if err != nil {
			return
		}
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("expandEnv(%q) = %q without any $", s, out)
		}
	})
}
