package scenario

import "testing"

// TestMemoryLengthBound checks that a memory range over MaxMemoryLength is
// rejected at validation unless it sets allow_large.
func TestMemoryLengthBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mem  string
		want []string
	}{
		{"terabyte", "{address: 0, length: 1099511627776, space: physical}",
			[]string{`10:5: compare.memory[0]: length 1099511627776 is over 268435456 (256 MiB); set allow_large: true`}},
		{"just over", "{address: 0, length: 268435457}", []string{`10:5: compare.memory[0]: length 268435457 is over`}},
		{"at the bound", "{address: 0, length: 268435456}", nil},
		{"opted in", "{address: 0, length: 1099511627776, allow_large: true}", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse("t.yaml", []byte(minimal+"compare:\n  memory:\n  - "+tc.mem+"\n"), noEnv)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErrors(t, err, tc.want)
		})
	}
}

// TestSymbolBoundsAndOverflow checks, against the symbols, that a symbol's
// own size is bounded like a length, and that an offset that wraps the
// symbol's address around 64 bits is rejected, for memory and for breaks.
func TestSymbolBoundsAndOverflow(t *testing.T) {
	t.Parallel()
	res := fakeResolver{"main": 1, "results": 256, "huge": 1 << 30}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"offset wraps", minimal + "compare:\n  memory:\n  - {symbol: results, offset: 0xffffffffffffffff, length: 1}\n",
			[]string{`10:5: guest a (a): memory symbol "results" (0x1000) + offset 0xffffffffffffffff + length 1 overflows 64 bits`,
				`10:5: guest b (b): memory symbol "results"`}},
		{"length wraps", minimal + "compare:\n  memory:\n  - {symbol: results, offset: 8, length: 0xfffffffffffffff8}\n",
			nil}, // rejected by the length bound at parse time, see below
		{"huge symbol", minimal + "compare:\n  memory:\n  - {symbol: huge}\n",
			[]string{`10:5: guest a (a): memory symbol "huge" is 1073741824 bytes, over 268435456 (256 MiB)`,
				`10:5: guest b (b): memory symbol "huge" is 1073741824 bytes`}},
		{"huge symbol opted in", minimal + "compare:\n  memory:\n  - {symbol: huge, allow_large: true}\n", []string{}},
		{"break offset wraps", "name: t\nguests:\n  defaults: {kernel: k.elf}\n  a: {}\n  b: {}\nsync:\n  - break: main+0xfffffffffffff000\n",
			[]string{`7:12: guest a (a): break "main+0xfffffffffffff000": offset 0xfffffffffffff000 overflows the address of main (0x1000)`,
				`7:12: guest b (b): break "main+0xfffffffffffff000"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := parse("t.yaml", []byte(tc.doc), noEnv)
			if tc.want == nil {
				if err == nil {
					t.Fatal("parse accepted a range whose length is over the bound")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckSymbols([2]Resolver{res, res})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErrors(t, err, tc.want)
		})
	}
}
