package bisect

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// watchdogScript outlives lockstep: it reads commands on stdin, a pipe
// whose other end only lockstep holds. "build PGID" names the running
// build's process group, "idle" says none runs, "close" ends it quietly.
// End of input without "close" means lockstep died (even by SIGKILL, which
// no handler sees): it kills the build's process group and removes the
// scratch directory $1.
const watchdogScript = `dir=$1; pg=
while IFS= read -r line; do
	case $line in
	"build "*) pg=${line#build } ;;
	idle) pg= ;;
	close) exit 0 ;;
	esac
done
if [ -n "$pg" ]; then kill -KILL -"$pg" 2>/dev/null; sleep 1; fi
rm -rf "$dir"
`

// watchdog is the lockstep end of a watchdog process.
type watchdog struct {
	mu  sync.Mutex
	w   io.WriteCloser
	cmd *exec.Cmd
}

// startWatchdog starts a watchdog for the scratch directory dir, in its
// own process group so that a Ctrl-C meant for lockstep does not end it.
func startWatchdog(dir string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	cmd := exec.Command("sh", "-c", watchdogScript, "lockstep-watchdog", dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	return &watchdog{w: w, cmd: cmd}, nil
}

// say sends one command line; a watchdog that is gone is not an error
// worth failing a bisection for.
func (d *watchdog) say(format string, args ...any) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		fmt.Fprintf(d.w, format+"\n", args...)
	}
}

// building tells the watchdog which process group to kill if lockstep
// dies; pgid 0 means no build runs.
func (d *watchdog) building(pgid int) {
	if pgid == 0 {
		d.say("idle")
		return
	}
	d.say("build %d", pgid)
}

// close ends the watchdog without it doing anything, and reaps it.
func (d *watchdog) close() {
	if d == nil {
		return
	}
	d.say("close")
	d.mu.Lock()
	d.w.Close()
	d.w = nil
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}
