package compare

import "testing"

func TestFirstCallDivergence(t *testing.T) {
	t.Parallel()
	regs := []string{"rdi", "rsi"}
	c := func(name string, args ...uint64) Call { return Call{Name: name, Args: args, ArgNames: regs} }
	sym := [2]func(uint64) (Location, bool){layout(0x1000), layout(0x1100)}
	tests := []struct {
		name   string
		a, b   []Call
		sym    [2]func(uint64) (Location, bool)
		index  int
		reason string
		ok     bool
	}{
		{"equal", []Call{c("mix", 1), c("fib", 2)}, []Call{c("mix", 1), c("fib", 2)}, [2]func(uint64) (Location, bool){}, -1, "", false},
		{"both empty", nil, nil, [2]func(uint64) (Location, bool){}, -1, "", false},
		{"argument of the nth call of a function",
			[]Call{c("mix", 0x10), c("fib", 1), c("mix", 0x10), c("mix", 5, 0x10)},
			[]Call{c("mix", 0x10), c("fib", 1), c("mix", 0x10), c("mix", 5, 0x11)}, [2]func(uint64) (Location, bool){},
			3, "call #3 of mix: rsi 0x10 vs 0x11", true},
		{"name differs", []Call{c("a"), c("b")}, []Call{c("a"), c("c")}, [2]func(uint64) (Location, bool){}, 1, "call #2: b vs c", true},
		{"b stops early", []Call{c("a"), c("b")}, []Call{c("a")}, [2]func(uint64) (Location, bool){}, 1, "call #2: only a calls b", true},
		{"a stops early", []Call{c("a")}, []Call{c("a"), c("z")}, [2]func(uint64) (Location, bool){}, 1, "call #2: only b calls z", true},
		{"pointer args equal symbolically", []Call{c("f", 0x1008)}, []Call{c("f", 0x1108)}, sym, -1, "", false},
		{"pointer args differ symbolically", []Call{c("f", 0x1008)}, []Call{c("f", 0x1110)}, sym, 0, "call #1 of f: rdi 0x1008 (buf+0x8) vs 0x1110 (buf+0x10)", true},
		{"unnamed args", []Call{{Name: "g", Args: []uint64{1, 2, 3}}}, []Call{{Name: "g", Args: []uint64{1, 2, 4}}}, [2]func(uint64) (Location, bool){}, 0, "call #1 of g: arg2 0x3 vs 0x4", true},
	}
	for _, tc := range tests {
		i, reason, ok := FirstCallDivergence(tc.a, tc.b, tc.sym)
		if i != tc.index || reason != tc.reason || ok != tc.ok {
			t.Errorf("%s: FirstCallDivergence() = %d, %q, %v; want %d, %q, %v", tc.name, i, reason, ok, tc.index, tc.reason, tc.ok)
		}
	}
}
