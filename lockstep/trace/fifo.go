package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrIdle is returned by a FIFO reader when no data arrived within the
// FIFO's Idle duration (a guest that halted without exiting logs nothing).
var ErrIdle = errors.New("no trace data within the idle timeout")

// pipeSize is the pipe buffer size requested for a FIFO.
const pipeSize = 1 << 20

// ErrAborted is returned by FIFO.Open after Abort, e.g. because QEMU exited
// before it opened its log.
var ErrAborted = errors.New("fifo open aborted")

// Args returns the QEMU arguments that log the CPU state before every
// instruction to fifo, for the QEMU version given as "7.2.22" or
// "8.1.0" (a leading "v" and trailing text are ignored). Before 8.1 this
// is "-singlestep"; from 8.1 "-accel tcg,one-insn-per-tb=on", which also
// selects TCG, so the caller must not pass another -accel. An unparsable
// version gets the 8.1+ form.
func Args(qemuVersion string, fifo string) []string {
	log := []string{"-d", "cpu,nochain", "-D", fifo}
	if major, minor, ok := parseVersion(qemuVersion); ok && (major < 8 || major == 8 && minor < 1) {
		return append([]string{"-singlestep"}, log...)
	}
	return append([]string{"-accel", "tcg,one-insn-per-tb=on"}, log...)
}

func parseVersion(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// FIFO is a named pipe a QEMU writes its trace log into.
type FIFO struct {
	path  string
	ctx   context.Context
	abort chan struct{}
	once  sync.Once
	// Idle bounds each read: a read that gets no data for this long fails
	// with ErrIdle. Zero means reads are bounded only by the context.
	Idle time.Duration
}

// OpenFIFO creates the named pipe dir/name (mode 0600; dir should be a
// private 0700 temp dir). ctx bounds Open and every read of the reader
// Open returns: when ctx ends, a pending Open returns and the reader is
// closed.
func OpenFIFO(ctx context.Context, dir, name string) (*FIFO, error) {
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		return nil, fmt.Errorf("trace: mkfifo %s: %w", p, err)
	}
	return &FIFO{path: p, ctx: ctx, abort: make(chan struct{})}, nil
}

// Path returns the pipe's path, to pass to Args.
func (f *FIFO) Path() string { return f.path }

// Abort makes a pending or future Open fail with ErrAborted.
func (f *FIFO) Abort() { f.once.Do(func() { close(f.abort) }) }

// Remove deletes the pipe.
func (f *FIFO) Remove() error { return os.Remove(f.path) }

// Open opens the pipe for reading. It blocks until the writer (QEMU, which
// opens its log at startup and blocks there until a reader appears) opens
// it, the context ends or Abort is called. Start QEMU first, then Open.
func (f *FIFO) Open() (io.ReadCloser, error) {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		fl, err := os.OpenFile(f.path, os.O_RDONLY, 0)
		ch <- res{fl, err}
	}()
	var cause error
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("trace: open fifo: %w", r.err)
		}
		return f.reader(r.f), nil
	case <-f.ctx.Done():
		cause = f.ctx.Err()
	case <-f.abort:
		cause = ErrAborted
	}
	// Unblock the opener: a non-blocking writer open succeeds because a
	// reader is waiting.
	if w, err := os.OpenFile(f.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		defer w.Close()
	}
	select {
	case r := <-ch:
		if r.f != nil {
			r.f.Close()
		}
	case <-time.After(time.Second):
		// The goroutine stays blocked in open(2) only if the pipe vanished;
		// it ends when the process does.
	}
	return nil, fmt.Errorf("trace: open fifo %s: %w", f.path, cause)
}

func (f *FIFO) reader(fl *os.File) *fifoReader {
	// A larger pipe means fewer context switches between QEMU and the
	// parser. Best effort: the size is capped by /proc/sys/fs/pipe-max-size.
	if rc, err := fl.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
	r := &fifoReader{f: fl, idle: f.Idle, ctx: f.ctx}
	r.stop = context.AfterFunc(f.ctx, func() { fl.Close() })
	return r
}

// fifoReader reads a pipe with an idle bound and closes it when its
// context ends.
type fifoReader struct {
	f    *os.File
	idle time.Duration
	ctx  context.Context
	stop func() bool
}

func (r *fifoReader) Read(p []byte) (int, error) {
	if r.idle > 0 {
		if err := r.f.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
			return 0, fmt.Errorf("trace: fifo deadline: %w", err)
		}
	}
	n, err := r.f.Read(p)
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, fmt.Errorf("trace: read %s: %w (%v)", r.f.Name(), ErrIdle, r.idle)
	case r.ctx.Err() != nil:
		return n, fmt.Errorf("trace: read %s: %w", r.f.Name(), r.ctx.Err())
	}
	return n, fmt.Errorf("trace: read %s: %w", r.f.Name(), err)
}

// Close closes the pipe. A QEMU still writing then gets EPIPE/SIGPIPE.
func (r *fifoReader) Close() error {
	r.stop()
	err := r.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
