package qemu

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustBudget(t *testing.T, n int) *Budget {
	t.Helper()
	b, err := NewBudget(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBudgetBounds(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, 0, 1} {
		if _, err := NewBudget(n); err == nil {
			t.Errorf("NewBudget(%d) accepted", n)
		}
	}
	// Eight runs start a pair each, holding it a while: never more than
	// the budget alive, nobody over it (each waits holding nothing or
	// holds a pair and asks for nothing more, except the pair's second
	// half, which may wait while the first is held).
	for _, n := range []int{2, 3, 4, 6} {
		b := mustBudget(t, n)
		var alive, most atomic.Int32
		var wg sync.WaitGroup
		for r := range 8 {
			o := b.Owner("run")
			wg.Add(1)
			go func() {
				defer wg.Done()
				var pair sync.WaitGroup
				for range 2 {
					pair.Add(1)
					go func() {
						defer pair.Done()
						if _, err := o.acquire(t.Context()); err != nil {
							t.Error(err)
							return
						}
						v := alive.Add(1)
						for m := most.Load(); v > m && !most.CompareAndSwap(m, v); m = most.Load() {
						}
						time.Sleep(time.Duration(1+r%3) * time.Millisecond)
						alive.Add(-1)
						o.release()
					}()
				}
				pair.Wait()
			}()
		}
		wg.Wait()
		peak, over, _ := b.Stats()
		if int(most.Load()) > n+over || peak > n+over || b.InUse() != 0 {
			t.Errorf("budget %d: %d alive at once (peak %d, %d overdrafts), %d in use after", n, most.Load(), peak, over, b.InUse())
		}
	}
}

// TestBudgetNoDeadlock has two runs that each hold a pair and then each
// want a second pair (a localisation) on a budget of four: without the
// overdraft neither would ever move. The older run is let over the
// budget; the younger gets its pair once the older has finished.
func TestBudgetNoDeadlock(t *testing.T) {
	t.Parallel()
	b := mustBudget(t, 4)
	old, young := b.Owner("old"), b.Owner("young")
	for _, o := range []*Owner{old, young, old, young} {
		if _, err := o.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan string, 2)
	var release sync.WaitGroup
	for _, o := range []*Owner{old, young} {
		release.Add(1)
		go func() {
			defer release.Done()
			for range 2 {
				if _, err := o.acquire(ctx); err != nil {
					t.Errorf("%s: %v", o.name, err)
					return
				}
			}
			done <- o.name
			for range 4 {
				o.release()
			}
		}()
	}
	if first := <-done; first != "old" {
		t.Errorf("%s got its second pair first, want the older run", first)
	}
	if second := <-done; second != "young" {
		t.Errorf("second %q", second)
	}
	release.Wait()
	peak, over, waits := b.Stats()
	if over != 2 || peak != 6 || waits < 1 || b.InUse() != 0 {
		t.Errorf("peak %d, overdrafts %d, waits %d, in use %d; want 6, 2, at least 1, 0", peak, over, waits, b.InUse())
	}
}

// TestBudgetCancel checks that a start waiting for a slot gives up with
// the context, and that its waiting does not linger: a run that holds
// nothing is never let over the budget.
func TestBudgetCancel(t *testing.T) {
	t.Parallel()
	b := mustBudget(t, 2)
	a := b.Owner("a")
	for range 2 {
		if _, err := a.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	waited, err := b.Owner("b").acquire(ctx)
	if !waited || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waited %v, err %v; want a wait ended by the deadline", waited, err)
	}
	b.mu.Lock()
	n := len(b.waiting)
	b.mu.Unlock()
	if _, over, _ := b.Stats(); n != 0 || over != 0 {
		t.Errorf("%d waiters left, %d overdrafts", n, over)
	}
	a.release()
	if _, err := b.Owner("c").acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestBudgetHoldersFirst checks that a freed slot goes to a run that
// holds QEMUs and waits for one more (a localisation pair) before a run
// that holds none (a new scenario).
func TestBudgetHoldersFirst(t *testing.T) {
	t.Parallel()
	b := mustBudget(t, 4)
	holder, other := b.Owner("holder"), b.Owner("other")
	for _, o := range []*Owner{holder, holder, other, other} {
		if _, err := o.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 2)
	wait := func(o *Owner) {
		if _, err := o.acquire(t.Context()); err != nil {
			t.Error(err)
		}
		got <- o.name
	}
	waiters := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiting)
	}
	// The new run waits first, then the holder.
	fresh := b.Owner("new")
	go wait(fresh)
	for waiters() < 1 {
		time.Sleep(time.Millisecond)
	}
	go wait(holder)
	for waiters() < 2 {
		time.Sleep(time.Millisecond)
	}
	other.release()
	if first := <-got; first != "holder" {
		t.Errorf("the freed slot went to %q, want the run holding QEMUs", first)
	}
	other.release()
	if second := <-got; second != "new" {
		t.Errorf("second %q", second)
	}
	if _, over, _ := b.Stats(); over != 0 {
		t.Errorf("%d overdrafts, want none", over)
	}
}

// TestBudgetAdmit checks that Admit waits for room for a pair and one
// more (a localisation), or for nothing to be in use; that the pair it
// reserves is used without waiting, and that Done returns what was not.
func TestBudgetAdmit(t *testing.T) {
	t.Parallel()
	b := mustBudget(t, 6)
	first, err := b.Admit(t.Context(), "first")
	if err != nil {
		t.Fatal(err)
	}
	a := b.Owner("a")
	if _, err := a.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 3 of 6 in use: a pair fits, a pair and a localisation do not.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.Admit(ctx, "early"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("admitted with 3 of 6 in use: %v", err)
	}
	type admitted struct {
		o   *Owner
		err error
	}
	ch := make(chan admitted, 1)
	go func() {
		o, err := b.Admit(t.Context(), "run")
		ch <- admitted{o, err}
	}()
	a.release()
	r := <-ch
	if r.err != nil || b.InUse() != 4 {
		t.Fatalf("admit: %v with %d in use, want two pairs reserved (4)", r.err, b.InUse())
	}
	// The reserved pair's first QEMU starts at once.
	if waited, err := r.o.acquire(t.Context()); waited || err != nil || b.InUse() != 4 {
		t.Fatalf("first start of an admitted run: waited %v, %v, %d in use", waited, err, b.InUse())
	}
	r.o.Done() // the second was never started
	if b.InUse() != 3 {
		t.Errorf("%d in use after Done, want 3", b.InUse())
	}
	r.o.release()
	r.o.Done()
	first.Done()
	if b.InUse() != 0 {
		t.Errorf("%d in use, want 0", b.InUse())
	}
	// With nothing in use a run is admitted even where a pair and a
	// localisation do not fit.
	small := mustBudget(t, 2)
	if _, err := small.Admit(t.Context(), "only"); err != nil || small.InUse() != 2 {
		t.Errorf("budget 2: %v, %d in use", err, small.InUse())
	}
}
