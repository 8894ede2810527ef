package qemutest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ShortDir returns a fresh directory for a run's RunDir, removed when the
// test ends. t.TempDir is too long a parent: the gdbstub and QMP sockets
// live two levels below it and a unix socket path is limited to 107 bytes.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lsk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Proc is a live QEMU process found in /proc.
type Proc struct {
	Pid  int
	Argv []string
	// Dir is its private directory (runDir/lockstep-N/lockstep-SIDE-M),
	// set by FindQEMU.
	Dir string
}

// QEMUsUnder returns the live qemu-system processes whose command line
// mentions runDir. Zombies have an empty command line and are skipped.
func QEMUsUnder(runDir string) []Proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if dying(pid) {
			continue
		}
		if strings.HasPrefix(filepath.Base(argv[0]), "qemu-system") &&
			strings.Contains(string(b), filepath.Clean(runDir)+"/") {
			out = append(out, Proc{Pid: pid, Argv: argv})
		}
	}
	return out
}

// FindQEMU returns the QEMU of one side ("a", "b") of the run under
// runDir. qemu.Start makes that side's directory with
// MkdirTemp(runDir/lockstep-N, "lockstep-"+side+"-"), which appends only
// digits, and QEMU's arguments name files inside it.
func FindQEMU(runDir, side string) (Proc, bool) {
	re := regexp.MustCompile("^(" + regexp.QuoteMeta(filepath.Clean(runDir)) +
		"/lockstep-[0-9]+/lockstep-" + regexp.QuoteMeta(side) + "-[0-9]+)/")
	for _, p := range QEMUsUnder(runDir) {
		for _, arg := range p.Argv[1:] {
			// Arguments look like "file:DIR/serial.log" or "socket,path=DIR/gdb.sock".
			if i := strings.Index(arg, "/"); i >= 0 {
				if m := re.FindStringSubmatch(arg[i:]); m != nil {
					p.Dir = m[1]
					return p, true
				}
			}
		}
	}
	return Proc{}, false
}

// NoQEMUUnder fails the test if a QEMU of the run under runDir lives on.
// It looks only at that run, so parallel tests do not see each other's
// guests.
//
// A QEMU killed by the kernel's parent-death signal or by Release an
// instant ago can still be tearing down its memory: it is given a few
// seconds to go. A leaked QEMU lives on and is still reported.
func NoQEMUUnder(t testing.TB, runDir string) {
	t.Helper()
	left := QEMUsUnder(runDir)
	for deadline := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		left = QEMUsUnder(runDir)
	}
	for _, p := range left {
		t.Errorf("QEMU left running: pid %d: %s", p.Pid, strings.Join(p.Argv, " "))
	}
}

// Release kills whatever QEMU of the run under runDir is left, stopped or
// not: the safety net behind the run's own teardown, which NoQEMUUnder
// checks first.
func Release(runDir string) {
	for _, p := range QEMUsUnder(runDir) {
		syscall.Kill(p.Pid, syscall.SIGCONT)
		syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	// Wait for them to go, so that a check that follows sees the result.
	for deadline := time.Now().Add(5 * time.Second); len(QEMUsUnder(runDir)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

// dying reports whether process pid is a zombie, is exiting (the kernel's
// PF_EXITING flag) or has a SIGKILL pending: it is going, whatever its
// command line still says.
func dying(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The command name in parentheses may hold spaces: fields follow the
	// last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is the state, f[6] the flags (field 9 of proc(5)).
	if len(f) > 6 {
		if f[0] == "Z" || f[0] == "X" || f[0] == "x" {
			return true
		}
		if flags, err := strconv.ParseUint(f[6], 10, 64); err == nil && flags&0x4 != 0 { // PF_EXITING
			return true
		}
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(syscall.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// SignalWhenSerial sends sig to one side's QEMU of the run under runDir as
// soon as its serial log holds marker, polling until ctx ends. It returns
// the pid signalled, or why none was.
func SignalWhenSerial(ctx context.Context, runDir, side, marker string, sig syscall.Signal) (int, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if p, ok := FindQEMU(runDir, side); ok {
			serial, _ := os.ReadFile(filepath.Join(p.Dir, "serial.log"))
			if bytes.Contains(serial, []byte(marker)) {
				if err := syscall.Kill(p.Pid, sig); err != nil {
					return 0, fmt.Errorf("kill %d: %w", p.Pid, err)
				}
				return p.Pid, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0, fmt.Errorf("side %s never printed %q: %w", side, marker, ctx.Err())
		}
	}
}
