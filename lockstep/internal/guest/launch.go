package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Config says which guest to launch.
type Config struct {
	Side int
	// Tag names the guest's files ("a", "b-localise"); "" is the side name.
	Tag  string
	Spec scenario.Guest
	Syms *symbols.Table
	// TraceLog, when set, is the path QEMU writes its per-instruction CPU
	// log to (a FIFO read by the trace engine); TraceArgs are extra QEMU
	// arguments for it (-dfilter).
	TraceLog  string
	TraceArgs []string
	// RR, when its Mode is set, records or replays the guest (TCG only).
	RR qemu.RecordReplay
}

// Launcher starts guests. QEMU implements it with real processes; the
// fake target package with scripted ones.
type Launcher interface {
	Launch(ctx context.Context, cfg Config) (*Guest, error)
}

// QEMU launches real QEMU processes in a run directory.
type QEMU struct {
	// Dir is the run directory: sockets, logs and scratch files go below it.
	Dir string
	// Keep retains transcripts and command lines in Dir.
	Keep        bool
	Logger      *slog.Logger
	Determinism scenario.Determinism
	Timeouts    Timeouts
	// Budget, when set, bounds the QEMUs alive at once across the runs
	// sharing it (a suite): each Launch waits for a slot.
	Budget *qemu.Owner
}

// Spec converts the scenario's guest into a launcher spec.
func Spec(g scenario.Guest, det scenario.Determinism) qemu.Spec {
	spec := qemu.Spec{
		Arch: g.Arch, Binary: g.QEMU, Machine: g.Machine, CPU: g.CPU, Accel: g.Accel,
		Memory: g.Memory, SMP: g.SMP, Kernel: g.Kernel, Initrd: g.Initrd, Append: g.Append,
		BIOS: g.BIOS, Args: g.Args, RTC: det.RTC,
	}
	if g.BIOS == scenario.BIOSNone {
		spec.BIOS, _, _ = scenario.NoFirmware(g.Arch)
	}
	if g.Accel != scenario.AccelKVM {
		spec.Icount = det.Icount
	}
	for _, d := range g.Drives {
		spec.Drives = append(spec.Drives, qemu.Drive{File: d.File, Format: d.Format, If: d.If, Snapshot: d.Snapshot})
	}
	return spec
}

// Launch starts the guest's QEMU paused and attaches to its gdbstub. On
// failure nothing is left running.
func (l *QEMU) Launch(ctx context.Context, cfg Config) (g *Guest, err error) {
	name := cfg.Tag
	if name == "" {
		name = scenario.SideNames[cfg.Side]
	}
	label := (&Guest{Side: cfg.Side, Spec: cfg.Spec}).Name()
	if cfg.Spec.Attach != nil {
		if cfg.TraceLog != "" {
			return nil, fmt.Errorf("guest %s: the trace engine needs a QEMU lockstep starts, not an attached one", label)
		}
		return l.attach(ctx, cfg, name, label)
	}
	// On failure everything opened so far is closed, last first.
	var transcripts, started []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(append(transcripts, started...)) {
				c()
			}
		}
	}()
	spec := Spec(cfg.Spec, l.Determinism)
	spec.RR = cfg.RR
	if cfg.TraceLog != "" {
		spec.Trace = cfg.TraceLog
		spec.Args = append(append([]string(nil), spec.Args...), cfg.TraceArgs...)
	}
	var qmpLog io.Writer
	if l.Keep {
		f, err := os.Create(filepath.Join(l.Dir, name+"-qmp.log"))
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", label, err)
		}
		transcripts = append(transcripts, f.Close)
		qmpLog = f
	}
	inst, err := qemu.Start(ctx, spec, qemu.Options{
		Dir: l.Dir, Name: name, Keep: l.Keep, Logger: l.Logger, QMPTranscript: qmpLog, Budget: l.Budget,
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", label, err)
	}
	m := newQEMUMachine(inst)
	started = append(started, func() error {
		dead, cancel := context.WithCancel(context.Background())
		cancel()
		return m.Close(dead)
	})
	if l.Keep {
		cmd := "#!/bin/sh\n# QEMU command line of guest " + label + "\n" + inst.CommandLine + "\n"
		if err := os.WriteFile(filepath.Join(l.Dir, name+"-cmdline.sh"), []byte(cmd), 0o755); err != nil {
			return nil, fmt.Errorf("guest %s: %w", label, err)
		}
	}
	var ropts []rsp.Option
	if l.Keep {
		f, err := os.Create(filepath.Join(l.Dir, name+"-rsp.log"))
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", label, err)
		}
		transcripts = append(transcripts, f.Close)
		ropts = append(ropts, rsp.WithTranscript(f))
	}
	c, err := rsp.Dial(ctx, "unix", inst.GDBSocket, ropts...)
	if err != nil {
		return nil, fmt.Errorf("guest %s: attach gdbstub: %w", label, err)
	}
	started = append(started, c.Close)
	g, err = New(cfg.Side, cfg.Tag, cfg.Spec, c, m, cfg.Syms, l.Timeouts)
	if err != nil {
		return nil, err
	}
	g.Dir = l.Dir
	g.Socket = inst.GDBSocket
	// Guest.Close closes the gdbstub, then the process, then these.
	for _, f := range transcripts {
		g.OnClose(f)
	}
	return g, nil
}

// qemuMachine adapts a *qemu.Instance to Machine. It follows the QMP
// events that say how the guest ended.
type qemuMachine struct {
	inst *qemu.Instance
	shutdownWatch
}

func newQEMUMachine(inst *qemu.Instance) *qemuMachine {
	m := &qemuMachine{inst: inst, shutdownWatch: shutdownWatch{done: make(chan struct{})}}
	go m.follow(inst.QMP.Events())
	return m
}

// shutdownEventsWait bounds how long Shutdown waits for the QMP events of
// a QEMU to be read to their end.
const shutdownEventsWait = 250 * time.Millisecond

// shutdownWatch follows a QEMU's QMP events for how the guest ended.
type shutdownWatch struct {
	mu       sync.Mutex
	reason   string
	panicked bool
	done     chan struct{} // closed once the event stream has ended
}

// follow records SHUTDOWN reasons and guest panics until the QMP
// connection ends.
func (m *shutdownWatch) follow(events <-chan qemu.Event) {
	defer close(m.done)
	for ev := range events {
		switch ev.Name {
		case "SHUTDOWN":
			var d struct {
				Reason string `json:"reason"`
			}
			if json.Unmarshal(ev.Data, &d) == nil {
				m.mu.Lock()
				m.reason = d.Reason
				m.mu.Unlock()
			}
		case "GUEST_PANICKED":
			m.mu.Lock()
			m.panicked = true
			m.mu.Unlock()
		}
	}
}

func (m *qemuMachine) Binary() string          { return m.inst.Argv[0] }
func (m *qemuMachine) Version() string         { return m.inst.Version }
func (m *qemuMachine) CommandLine() string     { return m.inst.CommandLine }
func (m *qemuMachine) Exited() <-chan struct{} { return m.inst.Exited() }
func (m *qemuMachine) Stderr() string          { return m.inst.Stderr() }
func (m *qemuMachine) Serial() ([]byte, error) { return m.inst.Serial() }
func (m *qemuMachine) Close(ctx context.Context) error {
	return m.inst.Close(ctx)
}

func (m *qemuMachine) ExitStatus() (ProcessExit, bool) {
	code, ok := m.inst.ExitCode()
	if !ok {
		return ProcessExit{}, false
	}
	return ProcessExit{Code: code, Signal: m.inst.Signal(), Closed: m.inst.Closing()}, true
}

func (m *shutdownWatch) Shutdown() (string, bool) {
	// The events of a QEMU that has ended are read a moment after its
	// exit: wait for the stream's end, briefly (QEMU may still run).
	t := time.NewTimer(shutdownEventsWait)
	select {
	case <-m.done:
	case <-t.C:
	}
	t.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reason, m.panicked
}

func (m *qemuMachine) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := m.inst.QMP.Execute(ctx, "query-status", nil, &st); err != nil {
		if ps := procState(m.inst.Pid); ps != "" {
			return "", fmt.Errorf("%w; the process is %s", err, ps)
		}
		return "", err
	}
	return st.Status, nil
}

func (m *qemuMachine) QMP(ctx context.Context, command string, args, result any) error {
	return m.inst.QMP.Execute(ctx, command, args, result)
}

func (m *qemuMachine) HMP(ctx context.Context, cmdline string) (string, error) {
	return m.inst.QMP.HMP(ctx, cmdline)
}

// procState describes a process that is not running normally, from
// /proc/PID/stat: "stopped (SIGSTOP or a debugger)", "a zombie"; "" when
// it runs or sleeps, or cannot be read.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	switch b[i+2] {
	case 'T', 't':
		return "stopped (SIGSTOP or a debugger)"
	case 'Z':
		return "a zombie"
	case 'D':
		return "in uninterruptible sleep"
	}
	return ""
}
