package engine

import "testing"

func TestRepSummary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		iters [2]int64
		want  string
	}{
		{[2]int64{8, 6}, "; inside a REP string instruction (compared at its retirement): 8 iterations on a, 6 on b (b stopped at iteration 6)"},
		{[2]int64{3, 40}, "; inside a REP string instruction (compared at its retirement): 3 iterations on a, 40 on b (a stopped at iteration 3)"},
		{[2]int64{5, 5}, "; inside a REP string instruction (compared at its retirement): 5 iterations on a, 5 on b"},
		{[2]int64{-1, 5}, "; inside a REP string instruction (compared at its retirement): ? iterations on a, 5 on b"},
	} {
		if got := repSummary(tc.iters); got != tc.want {
			t.Errorf("repSummary(%v) = %q, want %q", tc.iters, got, tc.want)
		}
	}
}
