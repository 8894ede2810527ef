package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Default and fixed bounds of the lifecycle.
const (
	DefaultStartTimeout = 30 * time.Second // QEMU starts in well under a second; a loaded 2-core CI machine has taken over 10
	quitGrace           = 2 * time.Second  // after QMP quit, before SIGTERM
	termGrace           = 2 * time.Second  // after SIGTERM, before SIGKILL
	killWait            = 5 * time.Second  // after SIGKILL; independent of ctx
	stderrBufMax        = 64 << 10
	connectRetry        = 20 * time.Millisecond
)

// Options control how Start runs a Spec.
type Options struct {
	Dir           string        // parent of the private run directory; "" is os.TempDir()
	Name          string        // label used in the directory name and logs ("a", "b")
	Keep          bool          // keep the run directory after Close
	Logger        *slog.Logger  // logs the quoted command line at Info; nil discards
	QMPTranscript io.Writer     // optional: every QMP message sent and received
	StartTimeout  time.Duration // bound on start-up; 0 is DefaultStartTimeout
	// Budget, when set, is the run's share of a bound on the QEMUs alive
	// at once: Start waits for a slot before it executes QEMU, and the
	// slot is freed when the process has exited.
	Budget *Owner
}

// Instance is a running QEMU process owned by this package.
type Instance struct {
	Dir, GDBSocket, QMPSocket, SerialPath, StderrPath string

	Argv        []string // binary (resolved) and arguments
	CommandLine string   // Argv quoted for a shell
	Pid         int      // also the process group id
	QMP         *QMP
	Version     string // from query-version, e.g. "7.2.22"

	// sockDir holds the sockets: Dir, or a short directory of its own
	// when Dir is too long for a unix socket path.
	sockDir string
	// budget holds the slot this process takes (nil: none).
	budget *Owner
	name   string
	keep   bool
	log    *slog.Logger
	cmd    *exec.Cmd
	stderr *capBuffer
	errf   *os.File

	exited   chan struct{}
	waitErr  error
	exitCode int
	signal   syscall.Signal

	closeMu   sync.Mutex
	closed    bool
	closeErr  error
	closeDone chan struct{}
}

// Start launches QEMU for spec in a fresh private 0700 directory, waits for
// its QMP socket, connects QMP and queries the version. The guest is left
// paused (-S). The process belongs to ctx for its whole life: when ctx is
// cancelled the process group is killed (call Close to reap the directory
// too). On any start-up failure everything is torn down (the directory is
// kept if opts.Keep) and, if QEMU exited or never answered, a *StartError
// carrying its stderr is returned.
func Start(ctx context.Context, spec Spec, opts Options) (inst *Instance, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qemu start: %w", err)
	}

	name, err := spec.BinaryName()
	if err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		arch := spec.Arch
		if spec.Binary != "" {
			arch = strings.TrimPrefix(filepath.Base(spec.Binary), "qemu-system-")
		}
		return nil, &NotFoundError{Binary: name, Package: DebianPackage(arch), Err: err}
	}
	if spec.Accel == "kvm" {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot open /dev/kvm read-write: %w", ErrKVMUnavailable, err)
		}
		f.Close()
	}
	if spec.Trace != "" && spec.QEMUVersion == "" {
		v, err := probeVersion(ctx, bin, timeout)
		if err != nil {
			return nil, err
		}
		spec.QEMUVersion = v
	}

	dir, err := os.MkdirTemp(opts.Dir, "lockstep-"+sanitize(opts.Name)+"-")
	if err != nil {
		return nil, fmt.Errorf("qemu start: run dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("qemu start: run dir: %w", err)
	}
	sockDir := dir
	if !SocketsFit(dir) {
		// A long $TMPDIR (CI runners, macOS) leaves no room for a socket
		// path: the sockets go to a short private directory of their own.
		if sockDir, err = shortSocketDir(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("qemu start: run directory %q too long for a unix socket path, and no short directory for the sockets: %w", dir, err)
		}
	}
	removeDirs := func() {
		os.RemoveAll(dir)
		if sockDir != dir {
			os.RemoveAll(sockDir)
		}
	}
	_, args, err := spec.CommandSockets(dir, sockDir)
	if err != nil {
		removeDirs()
		return nil, err
	}
	i := &Instance{
		Dir:        dir,
		sockDir:    sockDir,
		GDBSocket:  filepath.Join(sockDir, GDBSocketName),
		QMPSocket:  filepath.Join(sockDir, QMPSocketName),
		SerialPath: filepath.Join(dir, SerialLogName),
		StderrPath: filepath.Join(dir, StderrLogName),
		Argv:       append([]string{bin}, args...),
		name:       opts.Name,
		keep:       opts.Keep,
		log:        log.With("guest", opts.Name),
		stderr:     &capBuffer{max: stderrBufMax},
		exited:     make(chan struct{}),
		exitCode:   -1,
		closeDone:  make(chan struct{}),
	}
	i.CommandLine = Quote(i.Argv)
	if o := opts.Budget; o != nil {
		waited, err := o.acquire(ctx)
		if err != nil {
			removeDirs()
			return nil, fmt.Errorf("qemu start: %w", err)
		}
		if waited {
			i.log.Info("waited for a QEMU slot", "budget", o.b.Max())
		}
		i.budget = o
	}
	i.log.Info("starting qemu", "cmd", i.CommandLine, "dir", dir)

	if err := i.launch(); err != nil {
		if i.budget != nil {
			i.budget.release()
		}
		if !opts.Keep {
			removeDirs()
		} else if sockDir != dir {
			os.RemoveAll(sockDir)
		}
		return nil, &StartError{Argv: i.Argv, ExitCode: -1, Err: err}
	}
	go i.watch(ctx)

	defer func() {
		if err != nil {
			// A failed start is torn down at once: straight to SIGKILL.
			dead, cancel := context.WithCancel(context.Background())
			cancel()
			i.Close(dead)
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q, err := i.connectQMP(sctx, opts.QMPTranscript)
	if err != nil {
		return nil, i.startError(err)
	}
	i.QMP = q
	var ver struct {
		QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
	}
	if err := q.Execute(sctx, "query-version", nil, &ver); err != nil {
		return nil, i.startError(err)
	}
	i.Version = fmt.Sprintf("%d.%d.%d", ver.QEMU.Major, ver.QEMU.Minor, ver.QEMU.Micro)
	i.log.Info("qemu started", "pid", i.Pid, "version", i.Version)
	return i, nil
}

// launch starts the process in its own process group.
func (i *Instance) launch() error {
	f, err := os.OpenFile(i.StderrPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("stderr log: %w", err)
	}
	i.errf = f
	var cmd *exec.Cmd
	// ETXTBSY: an executable (a wrapper script, say) that was just written
	// can be briefly held open for writing by another fork of this process
	// (Go issue 22315); that passes within milliseconds, so retry a little.
	for try := 0; ; try++ {
		cmd = exec.Command(i.Argv[0], i.Argv[1:]...)
		cmd.Dir = i.Dir
		cmd.Stdin = nil
		cmd.Stdout = io.MultiWriter(f, i.stderr)
		cmd.Stderr = cmd.Stdout
		// The group id equals the pid, so one kill(-pid) reaches QEMU and
		// anything it spawned. Pdeathsig kills QEMU if we die without
		// cleaning up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		// WaitDelay bounds Wait if something outside the group holds the
		// output pipe open.
		cmd.WaitDelay = time.Second

		// The kernel sends Pdeathsig when the OS *thread* that forked the
		// child exits, not when the process does. Go only ends a thread
		// when a goroutine exits while locked to it; pinning this
		// goroutine for the fork ensures the fork runs on a thread the
		// runtime keeps (we unlock right after), so QEMU is not killed
		// spuriously when some unrelated thread goes away, yet still dies
		// with this process.
		runtime.LockOSThread()
		err = cmd.Start()
		runtime.UnlockOSThread()
		if !errors.Is(err, syscall.ETXTBSY) || try >= 5 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("exec %s: %w", i.Argv[0], err)
	}
	i.cmd = cmd
	i.Pid = cmd.Process.Pid
	register(i)
	go func() {
		err := cmd.Wait()
		i.waitErr = err
		i.exitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			i.signal = ws.Signal()
		}
		f.Close()
		// Strays QEMU may have left in its group go with it.
		syscall.Kill(-i.Pid, syscall.SIGKILL)
		unregister(i)
		if i.budget != nil {
			i.budget.release()
		}
		close(i.exited)
	}()
	return nil
}

// watch kills the process group when ctx is cancelled.
func (i *Instance) watch(ctx context.Context) {
	select {
	case <-ctx.Done():
		i.log.Info("context done: killing qemu", "pid", i.Pid, "cause", ctx.Err())
		i.killGroup(syscall.SIGKILL)
	case <-i.exited:
	}
}

// connectQMP retries connecting to the QMP socket until it answers, QEMU
// exits or ctx ends.
func (i *Instance) connectQMP(ctx context.Context, transcript io.Writer) (*QMP, error) {
	t := time.NewTicker(connectRetry)
	defer t.Stop()
	var last error
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", i.QMPSocket)
		if err == nil {
			return ConnectQMP(ctx, conn, transcript)
		}
		last = err
		select {
		case <-i.exited:
			return nil, errors.New("qemu exited during start-up")
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for qmp socket: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

func (i *Instance) startError(err error) error {
	// If QEMU is on its way out, let it finish so its stderr is complete.
	select {
	case <-i.exited:
	case <-time.After(200 * time.Millisecond):
	}
	code, _ := i.ExitCode()
	return &StartError{Argv: i.Argv, Stderr: i.Stderr(), ExitCode: code, Pid: i.Pid, Err: err}
}

// Exited returns a channel closed when the process has exited and been
// reaped.
func (i *Instance) Exited() <-chan struct{} { return i.exited }

// ExitCode returns the exit status once the process has exited; QEMU ended
// by isa-debug-exit gives (value<<1)|1. code is -1 if a signal killed it.
func (i *Instance) ExitCode() (code int, exited bool) {
	select {
	case <-i.exited:
		return i.exitCode, true
	default:
		return -1, false
	}
}

// Signal returns the signal that ended the process, once it has exited;
// 0 when it exited by itself (or has not exited yet).
func (i *Instance) Signal() syscall.Signal {
	select {
	case <-i.exited:
		return i.signal
	default:
		return 0
	}
}

// Closing reports whether Close has been called: an exit from then on is
// lockstep's doing, not QEMU's.
func (i *Instance) Closing() bool {
	i.closeMu.Lock()
	defer i.closeMu.Unlock()
	return i.closed
}

// Stderr returns what QEMU has written to stderr (and stdout) so far, up
// to the first 64 KiB; StderrPath holds all of it.
func (i *Instance) Stderr() string { return i.stderr.String() }

// Serial returns the guest's serial output so far.
func (i *Instance) Serial() ([]byte, error) {
	b, err := os.ReadFile(i.SerialPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read serial log: %w", err)
	}
	return b, nil
}

// Close stops QEMU and cleans up: QMP quit, a short wait, SIGTERM to the
// process group, a wait, then SIGKILL to the group. Each wait is bounded by
// ctx and a few seconds; once ctx is done Close goes straight to SIGKILL.
// It always reaps the process, removes Dir unless Keep was set, and is
// idempotent: later calls wait for the first and return its result.
func (i *Instance) Close(ctx context.Context) error {
	i.closeMu.Lock()
	if i.closed {
		i.closeMu.Unlock()
		<-i.closeDone
		return i.closeErr
	}
	i.closed = true
	i.closeMu.Unlock()
	defer close(i.closeDone)
	i.closeErr = i.close(ctx)
	return i.closeErr
}

func (i *Instance) close(ctx context.Context) error {
	var errs []error
	if !i.hasExited() && i.QMP != nil && ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, quitGrace)
		if err := i.QMP.Execute(qctx, "quit", nil, nil); err != nil {
			i.log.Debug("qmp quit", "err", err)
		}
		i.waitExit(qctx)
		cancel()
	}
	if !i.hasExited() && ctx.Err() == nil {
		i.log.Info("qemu still running: SIGTERM", "pid", i.Pid)
		i.killGroup(syscall.SIGTERM)
		tctx, cancel := context.WithTimeout(ctx, termGrace)
		i.waitExit(tctx)
		cancel()
	}
	if !i.hasExited() {
		i.log.Info("qemu still running: SIGKILL", "pid", i.Pid)
		i.killGroup(syscall.SIGKILL)
		kctx, cancel := context.WithTimeout(context.Background(), killWait)
		if !i.waitExit(kctx) {
			errs = append(errs, fmt.Errorf("qemu close: pid %d not reaped %v after SIGKILL", i.Pid, killWait))
		}
		cancel()
	}
	// Anything left in the group goes too (the reaper also does this).
	i.killGroup(syscall.SIGKILL)
	if i.QMP != nil {
		if err := i.QMP.Close(); err != nil {
			i.log.Debug("qmp close", "err", err)
		}
	}
	if !i.keep {
		if err := os.RemoveAll(i.Dir); err != nil {
			errs = append(errs, fmt.Errorf("qemu close: remove run dir: %w", err))
		}
	}
	if i.sockDir != "" && i.sockDir != i.Dir {
		// Sockets of an exited QEMU are worth nothing, kept or not.
		if err := os.RemoveAll(i.sockDir); err != nil {
			errs = append(errs, fmt.Errorf("qemu close: remove socket dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// shortSocketDir makes a private 0700 directory short enough for the
// sockets: in /tmp, or in os.TempDir() if /tmp will not do.
func shortSocketDir() (string, error) {
	var errs []error
	for _, parent := range []string{"/tmp", os.TempDir()} {
		d, err := os.MkdirTemp(parent, "lockstep-")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !SocketsFit(d) {
			os.RemoveAll(d)
			errs = append(errs, fmt.Errorf("%s: too long", d))
			continue
		}
		if err := os.Chmod(d, 0o700); err != nil {
			os.RemoveAll(d)
			errs = append(errs, err)
			continue
		}
		return d, nil
	}
	return "", errors.Join(errs...)
}

func (i *Instance) hasExited() bool {
	_, ok := i.ExitCode()
	return ok
}

func (i *Instance) waitExit(ctx context.Context) bool {
	select {
	case <-i.exited:
		return true
	case <-ctx.Done():
		return false
	}
}

func (i *Instance) killGroup(sig syscall.Signal) {
	if i.Pid > 0 {
		if err := syscall.Kill(-i.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			i.log.Debug("kill process group", "pid", i.Pid, "sig", sig, "err", err)
		}
	}
}

func probeVersion(ctx context.Context, bin string, timeout time.Duration) (string, error) {
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(vctx, bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("qemu --version: %w", err)
	}
	return ParseVersionOutput(string(out))
}

func sanitize(name string) string {
	if name == "" {
		return "qemu"
	}
	b := []byte(name)
	for k, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[k] = '_'
		}
	}
	if len(b) > 16 {
		b = b[:16]
	}
	return string(b)
}

// capBuffer is a concurrency-safe buffer that keeps the first max bytes.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
