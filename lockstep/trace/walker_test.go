package trace

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSeekThenCompare walks a log to the n-th arrival at a PC, as the
// localisation walks sync points, then compares from there.
func TestSeekThenCompare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// loop alternates 0x1000 / 0x1004; state i has RCX 100-i/2.
	tests := []struct {
		name     string
		seeks    [][2]uint64 // pc, hit
		bState   int         // state of b to corrupt (-1: none)
		stopAt   uint64      // stop at this PC's first arrival after index 0 (0: no stop)
		wantSeq  uint64      // Seq of the state Seek leaves the walker at
		outcome  Outcome
		index    uint64
		prevHits uint64
		err      error
	}{
		{name: "first arrival", seeks: [][2]uint64{{0x1004, 1}}, bState: 9, wantSeq: 1, outcome: Differ, index: 8, prevHits: 3},
		{name: "third arrival", seeks: [][2]uint64{{0x1000, 3}}, bState: 9, wantSeq: 4, outcome: Differ, index: 5, prevHits: 2},
		// Hits count from the previous seek, strictly after it.
		{name: "chained", seeks: [][2]uint64{{0x1000, 2}, {0x1000, 1}}, bState: 9, wantSeq: 4, outcome: Differ, index: 5, prevHits: 2},
		{name: "stop", seeks: [][2]uint64{{0x1000, 1}}, bState: -1, stopAt: 0x1000, wantSeq: 0, outcome: SameUntilStop, index: 3},
		{name: "not reached", seeks: [][2]uint64{{0x2000, 1}}, bState: -1, err: ErrNotReached},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := loop(20), loop(20)
			if tt.bState >= 0 {
				b[tt.bState].Regs[RAX] = 7
			}
			wa := NewWalker(NewParser(strings.NewReader(formatLog(a))))
			wb := NewWalker(NewParser(strings.NewReader(formatLog(b))))
			for _, sk := range tt.seeks {
				for _, w := range []*Walker{wa, wb} {
					if _, err := w.Seek(ctx, sk[0], int(sk[1])); err != nil {
						if !errors.Is(err, tt.err) {
							t.Fatalf("seek: %v, want %v", err, tt.err)
						}
						return
					}
				}
			}
			if tt.err != nil {
				t.Fatalf("seek succeeded, want %v", tt.err)
			}
			if got := wa.State().Seq; got != tt.wantSeq {
				t.Errorf("seek left a at state %d, want %d", got, tt.wantSeq)
			}
			opt := Options{}
			if tt.stopAt != 0 {
				opt.Stop = func(i uint64, s *State) bool { return i > 0 && s.PC == tt.stopAt }
			}
			d, err := CompareFrom(ctx, wa, wb, opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.outcome || d.Index != tt.index {
				t.Fatalf("%s, want %v at %d", d.String(), tt.outcome, tt.index)
			}
			if d.Outcome == Differ && (d.PrevHits != [2]uint64{tt.prevHits, tt.prevHits} || d.Prev[0].Seq != tt.wantSeq+tt.index-1) {
				t.Errorf("prev seq %d hits %v, want seq %d hits %d", d.Prev[0].Seq, d.PrevHits, tt.wantSeq+tt.index-1, tt.prevHits)
			}
		})
	}
}

// TestSeekCollapsesRepeats checks that a repeated state at the sought PC
// counts once, as in Compare.
func TestSeekCollapsesRepeats(t *testing.T) {
	t.Parallel()
	s := loop(10)
	s = append(s[:3], append([]State{s[2]}, s[3:]...)...) // state 2 (pc 0x1000) logged twice
	w := NewWalker(NewParser(strings.NewReader(formatLog(s))))
	if _, err := w.Seek(context.Background(), 0x1000, 3); err != nil {
		t.Fatal(err)
	}
	if w.State().Regs[RCX] != 98 || w.Dups() != 1 {
		t.Errorf("third arrival at rcx %d with %d repeats, want rcx 98 and 1 repeat", w.State().Regs[RCX], w.Dups())
	}
}
