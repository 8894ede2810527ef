package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Attacher is a Machine lockstep did not start (scenario attach): closing
// it detaches and restores the run state, it never ends the process.
type Attacher interface {
	Machine
	// Attached reports whether the machine is a running QEMU lockstep
	// attached to.
	Attached() bool
	// LeftAs says how Close left the VM: "running", "paused", or "" if
	// it could not restore it.
	LeftAs() string
}

// IsAttached reports whether g runs in a QEMU lockstep attached to.
func (g *Guest) IsAttached() bool {
	a, ok := g.M.(Attacher)
	return ok && a.Attached()
}

// attach connects to the running QEMU of cfg.Spec.Attach, pauses it and
// connects to its gdbstub. On failure the QEMU is left as found.
func (l *QEMU) attach(ctx context.Context, cfg Config, name, label string) (g *Guest, err error) {
	at := cfg.Spec.Attach
	var qmpLog *os.File
	if l.Keep {
		if qmpLog, err = os.Create(filepath.Join(l.Dir, name+"-qmp.log")); err != nil {
			return nil, fmt.Errorf("guest %s: %w", label, err)
		}
		defer func() {
			if err != nil {
				qmpLog.Close()
			}
		}()
	}
	opts := qemu.AttachOptions{QMP: at.QMP, Dir: l.Dir, Name: name, Logger: l.Logger}
	if qmpLog != nil {
		opts.QMPTranscript = qmpLog
	}
	a, err := qemu.Attach(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", label, err)
	}
	m := newAttachedMachine(a, at)
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.Timeouts.Teardown)
			m.Close(cctx)
			cancel()
		}
	}()
	var ropts []rsp.Option
	if l.Keep {
		f, err := os.Create(filepath.Join(l.Dir, name+"-rsp.log"))
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", label, err)
		}
		m.onClose(f.Close)
		ropts = append(ropts, rsp.WithTranscript(f))
	}
	c, err := rsp.Dial(ctx, a.GDBNetwork, a.GDBAddress, ropts...)
	if err != nil {
		return nil, fmt.Errorf("guest %s: attach gdbstub at %s: %w", label, a.GDBAddress, err)
	}
	spec := cfg.Spec
	spec.Accel = scenario.AccelTCG
	if a.KVM {
		spec.Accel = scenario.AccelKVM
	}
	if spec.Arch == "" || spec.Arch == scenario.DefaultArch {
		if a.Arch != "" {
			spec.Arch = a.Arch
		}
	}
	g, err = New(cfg.Side, cfg.Tag, spec, c, m, cfg.Syms, l.Timeouts)
	if err != nil {
		c.Close()
		return nil, err
	}
	g.Dir = l.Dir
	if qmpLog != nil {
		g.OnClose(qmpLog.Close)
	}
	return g, nil
}

// attachedMachine adapts a *qemu.Attached to Machine.
type attachedMachine struct {
	a      *qemu.Attached
	addr   string
	onExit string

	left    string
	closers []func() error
	shutdownWatch
}

func newAttachedMachine(a *qemu.Attached, at *scenario.Attach) *attachedMachine {
	m := &attachedMachine{a: a, addr: at.QMP, onExit: at.OnExit, shutdownWatch: shutdownWatch{done: make(chan struct{})}}
	go m.follow(a.QMP.Events())
	return m
}

func (m *attachedMachine) onClose(f func() error) { m.closers = append(m.closers, f) }

func (m *attachedMachine) Attached() bool  { return true }
func (m *attachedMachine) LeftAs() string  { return m.left }
func (m *attachedMachine) Binary() string  { return "" }
func (m *attachedMachine) Version() string { return m.a.Version }
func (m *attachedMachine) CommandLine() string {
	return "(attached to the running QEMU at " + m.a.GDBAddress + ", QMP " + m.qmp() + ")"
}
func (m *attachedMachine) qmp() string { return m.addr }

// Exited is closed when the monitor connection ends: lockstep cannot wait
// for a process it did not start.
func (m *attachedMachine) Exited() <-chan struct{} { return m.a.QMP.Done() }

// ExitStatus is never known for a process lockstep did not start.
func (m *attachedMachine) ExitStatus() (ProcessExit, bool) { return ProcessExit{}, false }
func (m *attachedMachine) Stderr() string                  { return "" }
func (m *attachedMachine) Serial() ([]byte, error)         { return nil, nil }
func (m *attachedMachine) Status(ctx context.Context) (string, error) {
	return m.a.Status(ctx)
}
func (m *attachedMachine) QMP(ctx context.Context, command string, args, result any) error {
	return m.a.QMP.Execute(ctx, command, args, result)
}
func (m *attachedMachine) HMP(ctx context.Context, cmdline string) (string, error) {
	return m.a.QMP.HMP(ctx, cmdline)
}

// Close detaches: stops the gdbstub lockstep started and leaves the VM
// running or paused as the scenario asks (on_exit), by default as it was
// found. It never ends the process.
func (m *attachedMachine) Close(ctx context.Context) error {
	resume := m.a.FoundRunning
	switch m.onExit {
	case scenario.OnExitResume:
		resume = true
	case scenario.OnExitPause:
		resume = false
	}
	err := m.a.Close(ctx, resume)
	if err == nil {
		m.left = map[bool]string{true: "running", false: "paused"}[resume]
	}
	for _, f := range m.closers {
		f()
	}
	m.closers = nil
	return err
}

// restore undoes, on an attached guest, what lockstep changed through
// the gdbstub: its breakpoints and the single-step mask.
func (g *Guest) restore(ctx context.Context) error {
	var errs []error
	if !g.exited {
		if err := g.RemoveAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("guest %s: detach: %w", g.Name(), err))
		}
		if g.sstepSet {
			if err := g.T.SetSstep(ctx, g.sstep); err != nil {
				errs = append(errs, fmt.Errorf("guest %s: detach: restore sstep %#x: %w", g.Name(), g.sstep, err))
			}
		}
	}
	return errors.Join(errs...)
}
