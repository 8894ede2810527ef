package scenario

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakeResolver knows a fixed symbol table.
type fakeResolver map[string]uint64 // name -> size

var errNoSymbol = errors.New("no such symbol")

func (f fakeResolver) Resolve(expr string) (uint64, error) {
	sym, off, addr, isAddr, err := ParseBreak(expr)
	if err != nil {
		return 0, err
	}
	if isAddr {
		return addr, nil
	}
	if _, ok := f[sym]; !ok {
		return 0, fmt.Errorf("%w: %s", errNoSymbol, sym)
	}
	return 0x1000 + off, nil
}

func (f fakeResolver) SymbolSize(name string) (uint64, bool) {
	size, ok := f[name]
	return size, ok && size > 0
}

const symbolsDoc = `name: syms
guests:
  defaults: {kernel: k.elf}
  a: {label: good}
  b: {label: bad, kernel: k2.elf}
compare:
  memory: [{symbol: results}]
sync:
  - break: kmain
  - break: checksum+0x10
    compare:
      memory:
        - {symbol: table, offset: 8}
        - {address: 0x1000, length: 4}
  - break: "0x2000"
trace:
  functions: [path_a, "path_*"]
noise:
  memory: [{symbol: results, offsets: [1]}]
`

func TestCheckSymbols(t *testing.T) {
	t.Parallel()
	s, err := parse("t.yaml", []byte(symbolsDoc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	all := fakeResolver{"kmain": 1, "checksum": 64, "results": 256, "table": 16, "path_a": 8}
	tests := []struct {
		name string
		res  [2]Resolver
		want []string
	}{
		{"all resolve", [2]Resolver{all, all}, nil},
		{"b lacks checksum and path_a", [2]Resolver{all, fakeResolver{"kmain": 1, "results": 256, "table": 16}}, []string{
			`10:12: guest b (bad): break "checksum+0x10": no such symbol: checksum`,
			`17:15: guest b (bad): trace function "path_a": no such symbol`,
		}},
		{"a lacks results", [2]Resolver{fakeResolver{"kmain": 1, "checksum": 1, "table": 16, "path_a": 1}, all}, []string{
			`7:12: guest a (good): memory symbol "results": no such symbol`,
			`19:12: guest a (good): noise symbol "results": no such symbol`,
		}},
		{"symbol without size", [2]Resolver{all, fakeResolver{"kmain": 1, "checksum": 1, "results": 0, "table": 16, "path_a": 1}}, []string{
			`7:12: guest b (bad): memory symbol "results" has no size: set length`,
		}},
		{"offset beyond size", [2]Resolver{all, fakeResolver{"kmain": 1, "checksum": 1, "results": 8, "table": 8, "path_a": 1}}, []string{
			`13:11: guest b (bad): memory offset 8 is beyond symbol "table" of size 8`,
		}},
		{"nil resolver", [2]Resolver{nil, all}, []string{`4:6: guest a (good): no symbols to resolve "kmain"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.CheckSymbols(tc.res)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckSymbols = %v", err)
				}
				return
			}
			checkErrors(t, err, tc.want)
			if tc.name == "b lacks checksum and path_a" && !errors.Is(err, errNoSymbol) {
				t.Error("resolver error identity lost")
			}
		})
	}
}

func TestSameBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"{kernel: k.elf}", "{kernel: ./k.elf}", true},
		{"{kernel: k.elf}", "{kernel: k.elf, symbols: other.elf}", false},
		{"{kernel: dir/../k.elf}", "{symbols: k.elf}", true},
		{"{kernel: k.elf}", "{kernel: k2.elf}", false},
		{"{bios: b.bin}", "{bios: b.bin}", false},
	}
	for _, tc := range tests {
		doc := "name: t\nguests:\n  a: " + tc.a + "\n  b: " + tc.b + "\nsync: [{break: \"0x1000\"}]\n"
		s, err := parse("/w/t.yaml", []byte(doc), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if got := s.SameBinary(); got != tc.want {
			t.Errorf("SameBinary(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestErrorsFormat(t *testing.T) {
	t.Parallel()
	errs := Errors{{Pos: Position{"f.yaml", 3, 7}, Msg: "one"}, {Pos: Position{"f.yaml", 9, 0}, Msg: "two"}}
	if got, want := errs.Error(), "f.yaml:3:7: one\nf.yaml:9: two"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("validate: %w", errs)
	var e *Error
	if !errors.As(wrapped, &e) || e.Msg != "one" {
		t.Errorf("errors.As(*Error) = %v", e)
	}
	if !strings.HasPrefix(wrapped.Error(), "validate: f.yaml:3:7: one") {
		t.Errorf("wrapped = %q", wrapped)
	}
}

// TestCheckSymbolsInjectBeyond: an injection's memory must stay inside
// its symbol when the symbol has a size.
func TestCheckSymbolsInjectBeyond(t *testing.T) {
	t.Parallel()
	doc := `name: inj
guests:
  defaults: {kernel: k.elf}
  a: {label: good}
  b: {label: bad}
sync:
  - break: kmain
  - break: kmain
inject:
  - side: b
    at: {sync: 1}
    set: {memory: {symbol: counter, offset: OFF, bytes: "BYTES"}}
`
	for _, tc := range []struct {
		off, bytes string
		res        fakeResolver
		want       string
	}{
		{"0", "01 02 03 04 05 06 07 08", fakeResolver{"kmain": 1, "counter": 8}, ""},
		{"4", "01 02 03 04", fakeResolver{"kmain": 1, "counter": 8}, ""},
		{"4", "01 02 03 04 05", fakeResolver{"kmain": 1, "counter": 8}, `12:19: guest b (bad): injection writes 5 bytes at offset 4 of symbol "counter", which is 8 bytes: past its end`},
		{"8", "01", fakeResolver{"kmain": 1, "counter": 8}, `injection writes 1 bytes at offset 8`},
		{"0xffffffffffffffff", "01 02", fakeResolver{"kmain": 1, "counter": 8}, `past its end`},
		{"64", "01", fakeResolver{"kmain": 1, "counter": 0}, ""}, // no size: a label
	} {
		text := strings.NewReplacer("OFF", tc.off, "BYTES", tc.bytes).Replace(doc)
		s, err := parse("t.yaml", []byte(text), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckSymbols([2]Resolver{tc.res, tc.res})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("offset %s bytes %q: %v", tc.off, tc.bytes, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("offset %s bytes %q: err %v, want %q", tc.off, tc.bytes, err, tc.want)
		}
	}
}
