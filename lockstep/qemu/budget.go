package qemu

import (
	"context"
	"fmt"
	"sync"
)

// Budget bounds how many QEMU processes a set of runs (a suite's
// scenarios) keeps alive at once. A scenario is not always two QEMUs:
// localisation starts a second pair (and the trace engine a third) while
// the first is kept for the later sync points, so counting scenarios (-j)
// does not bound memory; counting processes does.
//
// Each run takes an Owner; Start takes a slot before it executes QEMU and
// gives it back when the process has exited. A Start waits while the
// budget is spent. Waiting could deadlock: two runs each holding a pair
// and each waiting for a localisation pair. So when every run that holds
// a slot is itself waiting for another, the oldest of them (the first
// Owner made) is let over the budget, and the overdraft is counted
// (Stats): progress is guaranteed, and the budget is exceeded only where
// nothing else could move. A freed slot goes to a run that already holds
// QEMUs before a run that holds none, which would only hold more: that
// keeps such standstills rare.
type Budget struct {
	max int

	mu      sync.Mutex
	used    int
	holds   map[*Owner]int
	waiting map[*Owner]int
	// change is closed and replaced whenever a slot is freed or a run
	// starts waiting: the waiters look again.
	change     chan struct{}
	peak, over int
	waits      int
	seq        int
}

// MinBudget is the smallest budget: one pair.
const MinBudget = 2

// NewBudget returns a budget of n QEMU processes (at least MinBudget).
func NewBudget(n int) (*Budget, error) {
	if n < MinBudget {
		return nil, fmt.Errorf("qemu budget %d: a scenario needs at least %d QEMUs (one pair)", n, MinBudget)
	}
	return &Budget{max: n, holds: map[*Owner]int{}, waiting: map[*Owner]int{}, change: make(chan struct{})}, nil
}

// Owner is one run's share of a Budget.
type Owner struct {
	b    *Budget
	seq  int
	name string
	// reserved counts slots Admit took for o that no QEMU uses yet
	// (under b.mu).
	reserved int
}

// Owner returns a new owner (a run, named for the logs); owners made
// earlier take precedence when the budget has to be overdrawn.
func (b *Budget) Owner(name string) *Owner {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return &Owner{b: b, seq: b.seq, name: name}
}

// Max returns the budget.
func (b *Budget) Max() int { return b.max }

// Stats returns the most QEMUs alive at once, how many starts went over
// the budget to avoid a deadlock, and how many starts had to wait.
func (b *Budget) Stats() (peak, overdrafts, waits int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak, b.over, b.waits
}

// InUse returns the QEMUs alive now.
func (b *Budget) InUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// wait releases b.mu until the next broadcast or the end of ctx, and
// takes it again.
func (b *Budget) wait(ctx context.Context) error {
	ch := b.change
	b.mu.Unlock()
	defer b.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broadcast wakes every waiter; b.mu is held.
func (b *Budget) broadcast() {
	close(b.change)
	b.change = make(chan struct{})
}

// stuck reports whether o may overdraw: o holds slots, every owner that
// holds slots is waiting for another, and o is the oldest of them. b.mu
// is held.
func (b *Budget) stuck(o *Owner) bool {
	if b.holds[o] == 0 {
		return false
	}
	for h := range b.holds {
		if b.waiting[h] == 0 || h.seq < o.seq {
			return false
		}
	}
	return true
}

// Admit waits until a new run can start a pair at once and still leave
// room for one more pair (a run that finds a divergence starts a second
// pair to localise it while it keeps the first): four slots free, or
// none in use at all; and no run that holds QEMUs waiting for one. It
// then returns the run's Owner holding two slots in reserve: its first
// two starts take them without waiting. A suite admits each scenario
// before running it, so that a scenario's own time (its timeout) is not
// spent waiting for its first pair. Done returns what the run did not
// use.
func (b *Budget) Admit(ctx context.Context, name string) (*Owner, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used > 0 && (b.used+2*MinBudget > b.max || b.holderWaiting()) {
		if err := b.wait(ctx); err != nil {
			return nil, err
		}
	}
	b.seq++
	o := &Owner{b: b, seq: b.seq, name: name, reserved: MinBudget}
	b.take(o, MinBudget)
	return o, nil
}

// take gives o n slots; b.mu is held.
func (b *Budget) take(o *Owner, n int) {
	b.used += n
	b.holds[o] += n
	b.peak = max(b.peak, b.used)
}

// give takes n slots back from o and wakes the waiters; b.mu is held.
func (b *Budget) give(o *Owner, n int) {
	b.used -= n
	if b.holds[o] -= n; b.holds[o] <= 0 {
		delete(b.holds, o)
	}
	b.broadcast()
}

// Done returns the slots o holds in reserve and has not started a QEMU
// in (a run that ended early, or attached to running guests).
func (o *Owner) Done() {
	b := o.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if o.reserved == 0 {
		return
	}
	b.give(o, o.reserved)
	o.reserved = 0
}

// holderWaiting reports whether a run that holds slots waits for
// another. b.mu is held.
func (b *Budget) holderWaiting() bool {
	for h := range b.waiting {
		if b.holds[h] > 0 {
			return true
		}
	}
	return false
}

// acquire takes a slot for one QEMU, waiting while the budget is spent;
// waited reports whether it had to.
func (o *Owner) acquire(ctx context.Context) (waited bool, err error) {
	b := o.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if o.reserved > 0 {
		o.reserved--
		return false, nil
	}
	b.waiting[o]++
	defer func() {
		if b.waiting[o]--; b.waiting[o] == 0 {
			delete(b.waiting, o)
			// A holder that stops waiting may let a new run in.
			b.broadcast()
		}
	}()
	for {
		switch {
		case b.used < b.max && (b.holds[o] > 0 || !b.holderWaiting()):
			// A run that already holds QEMUs goes first: it needs the
			// slot to finish and free what it holds, where a new run
			// would only hold more.
		case b.stuck(o):
			b.over++
		default:
			if !waited {
				waited = true
				b.waits++
				// Others may be stuck now that o waits too.
				b.broadcast()
			}
			if err := b.wait(ctx); err != nil {
				return waited, fmt.Errorf("waiting for a QEMU slot (budget %d, all in use): %w", b.max, err)
			}
			continue
		}
		b.take(o, 1)
		return waited, nil
	}
}

// release gives back a slot acquire took.
func (o *Owner) release() {
	b := o.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.give(o, 1)
}
