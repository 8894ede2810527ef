package qemu

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var live = struct {
	sync.Mutex
	m map[*Instance]struct{}
}{m: make(map[*Instance]struct{})}

func register(i *Instance) {
	live.Lock()
	live.m[i] = struct{}{}
	live.Unlock()
}

func unregister(i *Instance) {
	live.Lock()
	delete(live.m, i)
	live.Unlock()
}

// Live returns the pids of the QEMU processes this package started that
// have not yet been reaped.
func Live() []int {
	live.Lock()
	defer live.Unlock()
	pids := make([]int, 0, len(live.m))
	for i := range live.m {
		pids = append(pids, i.Pid)
	}
	return pids
}

// KillAll sends SIGKILL to the process group of every live instance. It
// does not wait or clean up directories; it is the last-resort safety net
// for signal handlers.
func KillAll() {
	live.Lock()
	defer live.Unlock()
	for i := range live.m {
		if i.Pid > 0 {
			syscall.Kill(-i.Pid, syscall.SIGKILL)
		}
	}
}

// HandleSignals returns a context that is cancelled, after KillAll, on the
// first SIGINT or SIGTERM. After that first signal the default behaviour is
// restored, so a second one ends the program. The returned stop function
// releases the signal handler and cancels the context.
func HandleSignals(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			signal.Stop(ch)
			cancel()
		})
	}
	go func() {
		select {
		case <-ch:
			KillAll()
			stop()
		case <-ctx.Done():
			stop()
		}
	}()
	return ctx, stop
}
