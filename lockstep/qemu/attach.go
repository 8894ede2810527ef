package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultAttachTimeout bounds connecting to a running QEMU's QMP socket and
// starting its gdbstub. A QEMU greets a QMP client at once; a socket that
// stays silent is not QMP, or another client (libvirt) holds the monitor.
const DefaultAttachTimeout = 10 * time.Second

// ErrAttach is wrapped by every error Attach returns.
var ErrAttach = errors.New("cannot attach to the running QEMU")

// AttachOptions say how to reach a running QEMU.
type AttachOptions struct {
	// QMP is the QMP socket: a unix socket path, or "tcp:HOST:PORT".
	QMP string
	// Dir is where the private gdbstub socket goes when lockstep starts
	// one; it must be short enough for a unix socket path.
	Dir           string
	Name          string
	Logger        *slog.Logger
	QMPTranscript io.Writer
	// Timeout bounds the attach; 0 is DefaultAttachTimeout.
	Timeout time.Duration
}

// Attached is a QEMU lockstep did not start. Closing it restores what
// lockstep changed and never ends the process.
type Attached struct {
	QMP     *QMP
	Version string
	// GDBNetwork and GDBAddress are where its gdbstub listens ("unix",
	// path or "tcp", host:port).
	GDBNetwork, GDBAddress string
	// StartedGDB is set when lockstep started the gdbstub (and so stops
	// it on Close); unset when one was already listening.
	StartedGDB bool
	// FoundStatus is the run state found at attach ("running", "paused",
	// ...); FoundRunning whether the VM was running.
	FoundStatus  string
	FoundRunning bool
	// KVM reports whether the VM runs under KVM.
	KVM bool
	// Arch is the QEMU target ("x86_64").
	Arch string

	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error
}

// Attach connects to the QMP socket of a running QEMU, learns its run
// state, and makes sure a gdbstub listens: an existing one (a chardev
// labelled "gdb", or the NAME of -gdb chardev:NAME on the command line
// of a QEMU behind a unix QMP socket, with a unix or tcp server socket)
// when nobody is
// connected to it, otherwise one lockstep starts on a private unix socket
// in opts.Dir with the HMP command gdbserver. It leaves the VM paused
// (Close restores the run state). On failure nothing is changed and the
// error wraps ErrAttach.
func Attach(ctx context.Context, opts AttachOptions) (a *Attached, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("guest", opts.Name)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultAttachTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w at %s: %s", ErrAttach, opts.QMP, fmt.Sprintf(format, args...))
	}
	network, addr := "unix", opts.QMP
	if rest, ok := strings.CutPrefix(opts.QMP, "tcp:"); ok {
		network, addr = "tcp", rest
	}
	var d net.Dialer
	conn, err := d.DialContext(actx, network, addr)
	if err != nil {
		return nil, fail("%v", err)
	}
	q, err := ConnectQMP(actx, conn, opts.QMPTranscript)
	if err != nil {
		if actx.Err() != nil {
			return nil, fail("no QMP greeting within %s: the socket is not a QMP monitor, or another client (libvirt?) holds it (%v)", timeout, err)
		}
		return nil, fail("not a QMP monitor: %v", err)
	}
	defer func() {
		if err != nil {
			q.Close()
		}
	}()
	a = &Attached{QMP: q, log: log}
	var ver struct {
		QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
	}
	if err := q.Execute(actx, "query-version", nil, &ver); err != nil {
		return nil, fail("query-version: %v", err)
	}
	a.Version = fmt.Sprintf("%d.%d.%d", ver.QEMU.Major, ver.QEMU.Minor, ver.QEMU.Micro)
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := q.Execute(actx, "query-status", nil, &st); err != nil {
		return nil, fail("query-status: %v", err)
	}
	a.FoundStatus, a.FoundRunning = st.Status, st.Running
	switch st.Status {
	case "shutdown", "internal-error", "guest-panicked", "io-error":
		return nil, fail("the VM is in run state %q: nothing to compare", st.Status)
	}
	var kvm struct {
		Enabled bool `json:"enabled"`
	}
	if err := q.Execute(actx, "query-kvm", nil, &kvm); err == nil {
		a.KVM = kvm.Enabled
	}
	var tgt struct {
		Arch string `json:"arch"`
	}
	if err := q.Execute(actx, "query-target", nil, &tgt); err == nil {
		a.Arch = tgt.Arch
	}
	var chardevs []struct {
		Label    string `json:"label"`
		Filename string `json:"filename"`
	}
	if err := q.Execute(actx, "query-chardev", nil, &chardevs); err != nil {
		return nil, fail("query-chardev: %v", err)
	}
	// A gdbstub QEMU started with -gdb DEV is the chardev labelled
	// "gdb"; with -gdb chardev:NAME it is NAME, which only the command
	// line tells. Starting another gdbstub would replace (and delete)
	// that chardev, so lockstep must find it.
	stub := "gdb"
	args, known := peerCommandLine(conn)
	if name, ok := gdbChardevName(args); known && ok {
		stub = name
	}
	for _, c := range chardevs {
		if c.Label != stub {
			continue
		}
		n, ad, connected, ok := gdbChardev(c.Filename)
		switch {
		case !ok:
			return nil, fail("its gdbstub listens on %q, which lockstep cannot connect to", c.Filename)
		case connected:
			return nil, fail("a debugger is already connected to its gdbstub (%s): detach it first", c.Filename)
		}
		a.GDBNetwork, a.GDBAddress = n, ad
		log.Info("attach: using the gdbstub already listening", "addr", ad)
		if err := a.pause(actx); err != nil {
			return nil, fail("%v", err)
		}
		return a, nil
	}
	if !known {
		for _, c := range chardevs {
			if c.Filename == "gdb" {
				// The gdbstub's own monitor chardev: a gdbstub was set
				// up once, and may listen on a chardev given by name.
				log.Warn("attach: cannot read the QEMU's command line; a gdbstub on a -gdb chardev:NAME would be replaced")
				break
			}
		}
	}
	if opts.Dir == "" {
		return nil, fail("no directory for the gdbstub socket")
	}
	path := filepath.Join(opts.Dir, "gdb-"+sanitize(opts.Name)+".sock")
	if !SocketsFit(filepath.Dir(path)) {
		return nil, fail("socket directory %q too long for a unix socket path", opts.Dir)
	}
	out, err := q.HMP(actx, "gdbserver unix:"+path+",server=on,wait=off")
	if err != nil {
		var qe *QMPError
		if errors.As(err, &qe) {
			return nil, fail("the monitor refused human-monitor-command, which starting a gdbstub needs: %v", err)
		}
		return nil, fail("gdbserver: %v", err)
	}
	if !strings.Contains(out, "Waiting for gdb connection") {
		return nil, fail("gdbserver did not start a gdbstub: %s", strings.TrimSpace(out))
	}
	if _, err := os.Stat(path); err != nil {
		a.stopGDB(context.WithoutCancel(ctx))
		return nil, fail("gdbserver reported success but %s is missing: is the QEMU on another host or in a container? (%v)", path, err)
	}
	a.GDBNetwork, a.GDBAddress, a.StartedGDB = "unix", path, true
	log.Info("attach: started a gdbstub", "path", path)
	if err := a.pause(actx); err != nil {
		a.stopGDB(context.WithoutCancel(ctx))
		return nil, fail("%v", err)
	}
	return a, nil
}

// pause stops a running VM before anyone connects to the gdbstub: a
// gdbstub client connecting to a running VM stops it and QEMU 7.2 sends a
// stop reply nobody asked for, which would answer the client's first
// request.
func (a *Attached) pause(ctx context.Context) error {
	if !a.FoundRunning {
		return nil
	}
	if err := a.QMP.Execute(ctx, "stop", nil, nil); err != nil {
		return fmt.Errorf("pause the VM: %w", err)
	}
	return nil
}

// gdbChardev parses the filename query-chardev reports for the gdbstub's
// chardev: "disconnected:unix:PATH,server=on" while nobody is connected,
// "unix:PATH,server=on" or "tcp:HOST:PORT,server=on <-> PEER" when someone is.
// A disconnected client socket (no server=on) is nothing to connect to.
func gdbChardev(filename string) (network, addr string, connected, ok bool) {
	f, disc := strings.CutPrefix(filename, "disconnected:")
	connected = !disc
	if i := strings.Index(f, " <-> "); i >= 0 {
		f, connected = f[:i], true
	}
	f, opts, _ := strings.Cut(f, ",")
	server := false
	for _, o := range strings.Split(opts, ",") {
		server = server || o == "server" || o == "server=on"
	}
	if !connected && !server {
		// A client socket (the stub connects out to a debugger):
		// nothing listens for lockstep.
		return "", "", false, false
	}
	switch {
	case strings.HasPrefix(f, "unix:"):
		return "unix", strings.TrimPrefix(f, "unix:"), connected, true
	case strings.HasPrefix(f, "tcp:"):
		hp := strings.TrimPrefix(f, "tcp:")
		if host, port, err := net.SplitHostPort(hp); err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			return "tcp", net.JoinHostPort(host, port), connected, true
		}
	}
	return "", "", false, false
}

// stopGDB stops the gdbstub lockstep started.
func (a *Attached) stopGDB(ctx context.Context) error {
	out, err := a.QMP.HMP(ctx, "gdbserver none")
	if err != nil {
		return fmt.Errorf("gdbserver none: %w", err)
	}
	if !strings.Contains(out, "Disabled gdbserver") {
		return fmt.Errorf("gdbserver none: %s", strings.TrimSpace(out))
	}
	return nil
}

// Status asks for the run state.
func (a *Attached) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	err := a.QMP.Execute(ctx, "query-status", nil, &st)
	return st.Status, err
}

// Close detaches: it stops the gdbstub lockstep started, leaves the VM
// running or paused (resume: true resumes it, false pauses it) and closes
// QMP. The gdbstub connection must be closed (and lockstep's breakpoints
// removed) before. It never quits QEMU. It is idempotent.
func (a *Attached) Close(ctx context.Context, resume bool) error {
	a.closeOnce.Do(func() {
		var errs []error
		select {
		case <-a.QMP.Done():
			// QEMU is gone, or closed the monitor: nothing to restore.
			a.closeErr = fmt.Errorf("detach: the monitor connection is gone: %w", a.QMP.closeErr())
			a.QMP.Close()
			return
		default:
		}
		if a.StartedGDB {
			if err := a.stopGDB(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if resume {
			if err := a.QMP.Execute(ctx, "cont", nil, nil); err != nil {
				errs = append(errs, fmt.Errorf("cont: %w", err))
			}
		} else if st, err := a.Status(ctx); err == nil && st == "running" {
			if err := a.QMP.Execute(ctx, "stop", nil, nil); err != nil {
				errs = append(errs, fmt.Errorf("stop: %w", err))
			}
		}
		a.log.Info("detached", "resumed", resume, "err", errors.Join(errs...))
		errs = append(errs, a.QMP.Close())
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}
