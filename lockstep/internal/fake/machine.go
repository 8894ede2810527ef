package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
)

// defaultNode is the block node savevm writes to when no blockdev-add named
// one: the name package guest gives its scratch qcow2.
const defaultNode = "lockstep-ckpt"

// Machine is the process of a fake guest; it implements guest.Machine. It
// is safe for concurrent use.
type Machine struct {
	v       *vm
	cmdline string
}

// Binary returns "fake-qemu".
func (m *Machine) Binary() string { return "fake-qemu" }

// Version returns "7.2.0", the QEMU the fake imitates.
func (m *Machine) Version() string { return "7.2.0" }

// CommandLine returns a command line that names the guest.
func (m *Machine) CommandLine() string { return m.cmdline }

// Exited is closed once the process has ended.
func (m *Machine) Exited() <-chan struct{} { return m.v.exited }

// ExitStatus reports how the process ended, once it has.
func (m *Machine) ExitStatus() (guest.ProcessExit, bool) {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return m.v.exit, m.v.reaped
}

// Stderr returns the program's Stderr and what QEMU wrote since (an
// internal error's report).
func (m *Machine) Stderr() string {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return m.v.stderr.String()
}

// Serial returns the serial output of the states reached so far.
func (m *Machine) Serial() ([]byte, error) {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return []byte(m.v.serial.String()), nil
}

// Shutdown returns the program's Shutdown and Panicked once the process
// has exited by itself, and nothing before or after a kill.
func (m *Machine) Shutdown() (string, bool) {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	if !m.v.gone || m.v.exit.Closed || m.v.exit.Signal != 0 {
		return "", false
	}
	return m.v.prog.Shutdown, m.v.prog.Panicked
}

// Status answers QMP query-status: "debug" while stopped, "running" while
// a continue runs or after Resume, "internal-error" after an internal
// error. It fails once the process has ended, and blocks until ctx ends
// while QEMU is frozen.
func (m *Machine) Status(ctx context.Context) (string, error) {
	if err := m.begin(ctx, "query-status"); err != nil {
		return "", err
	}
	defer m.v.mu.Unlock()
	return m.v.status, nil
}

// begin starts QMP command cmd: on success v.mu is held. A command to a
// process that has ended fails; one to a frozen process blocks until ctx
// ends, and fails.
func (m *Machine) begin(ctx context.Context, cmd string) error {
	v := m.v
	v.mu.Lock()
	if v.gone {
		v.mu.Unlock()
		return fmt.Errorf("qmp %s: connection closed: QEMU has exited", cmd)
	}
	if err := ctx.Err(); err != nil {
		v.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	if cmd != "query-status" {
		v.commands = append(v.commands, cmd)
	}
	if !v.frozen {
		return nil
	}
	v.mu.Unlock()
	select {
	case <-ctx.Done():
		// qemuMachine.Status adds what /proc says of the process.
		return fmt.Errorf("qmp %s: %w; the process is stopped (SIGSTOP or a debugger)", cmd, ctx.Err())
	case <-v.exited:
		return fmt.Errorf("qmp %s: connection closed: QEMU has exited", cmd)
	}
}

// QMP runs a QMP command. The fake knows query-status, memsave and
// pmemsave (which write memory to a file), human-monitor-command (see
// HMP), blockdev-add (recorded, always successful) and
// query-named-block-nodes (which lists the snapshots); any other command
// fails. result, when not nil, is filled as json.Unmarshal would.
func (m *Machine) QMP(ctx context.Context, command string, args, result any) error {
	var reply any
	var err error
	switch command {
	case "query-status":
		var st string
		if st, err = m.Status(ctx); err == nil {
			reply = map[string]any{"status": st, "running": st == "running"}
		}
	case "memsave", "pmemsave":
		err = m.memsave(ctx, command, args)
		reply = map[string]any{}
	case "human-monitor-command":
		var a struct {
			CommandLine string `json:"command-line"`
		}
		if err = remarshal(args, &a); err == nil {
			reply, err = m.HMP(ctx, a.CommandLine)
		}
	case "blockdev-add":
		err = m.blockdevAdd(ctx, args)
		reply = map[string]any{}
	case "query-named-block-nodes":
		reply, err = m.blockNodes(ctx)
	case "query-stats-schemas":
		reply = m.v.statsSchemas()
	case "query-stats":
		var a struct {
			Target string `json:"target"`
		}
		if err = remarshal(args, &a); err == nil {
			reply = m.v.queryStats(a.Target)
		}
	default:
		return fmt.Errorf("fake: no QMP command %s", command)
	}
	if err != nil || result == nil {
		return err
	}
	return remarshal(reply, result)
}

// remarshal converts v into out through JSON.
func remarshal(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("fake: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("fake: %w", err)
	}
	return nil
}

// memsave writes memory to a file as QMP memsave and pmemsave do (the
// fake has one address space).
func (m *Machine) memsave(ctx context.Context, cmd string, args any) error {
	var a struct {
		Val      *int64 `json:"val"`
		Size     *int64 `json:"size"`
		Filename string `json:"filename"`
	}
	if err := remarshal(args, &a); err != nil {
		return err
	}
	if a.Val == nil || a.Size == nil || a.Filename == "" {
		return fmt.Errorf("qmp %s: parameters val, size and filename are required", cmd)
	}
	if err := m.begin(ctx, cmd); err != nil {
		return err
	}
	defer m.v.mu.Unlock()
	addr, size := uint64(*a.Val), uint64(*a.Size)
	if *a.Size < 0 || size > 1<<32 || !m.v.readable(addr, size) {
		return fmt.Errorf("qmp %s: Invalid addr 0x%x/size %d specified", cmd, addr, *a.Size)
	}
	if err := os.WriteFile(a.Filename, m.v.read(addr, int(size)), 0o644); err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	return nil
}

// blockdevAdd records the node name of a hot-plugged drive.
func (m *Machine) blockdevAdd(ctx context.Context, args any) error {
	var a struct {
		NodeName string `json:"node-name"`
	}
	if err := remarshal(args, &a); err != nil {
		return err
	}
	if err := m.begin(ctx, "blockdev-add"); err != nil {
		return err
	}
	defer m.v.mu.Unlock()
	if a.NodeName != "" {
		m.v.node = a.NodeName
	}
	return nil
}

// blockNodes answers query-named-block-nodes: the scratch node, with the
// snapshots saved so far, once it is attached or holds snapshots.
func (m *Machine) blockNodes(ctx context.Context) (any, error) {
	if err := m.begin(ctx, "query-named-block-nodes"); err != nil {
		return nil, err
	}
	defer m.v.mu.Unlock()
	type snap struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type image struct {
		Format    string `json:"format"`
		Snapshots []snap `json:"snapshots,omitempty"`
	}
	type node struct {
		NodeName string `json:"node-name"`
		Drv      string `json:"drv"`
		Image    image  `json:"image"`
	}
	nodes := []node{}
	if m.v.node != "" || len(m.v.snapshots) > 0 {
		n := node{NodeName: m.node(), Drv: "qcow2", Image: image{Format: "qcow2"}}
		for i, s := range m.v.snapshots {
			n.Image.Snapshots = append(n.Image.Snapshots, snap{ID: fmt.Sprint(i + 1), Name: s.tag})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// node is the block node that holds snapshots; v.mu must be held.
func (m *Machine) node() string {
	if m.v.node == "" {
		return defaultNode
	}
	return m.v.node
}

// HMP runs a human monitor command. The fake knows savevm, loadvm and
// delvm, which answer "" on success and the error text otherwise, as
// QEMU's do; any other command fails. savevm works whether or not a
// drive was attached with blockdev-add (unlike QEMU), so checkpoint code
// can be tested without qemu-img.
func (m *Machine) HMP(ctx context.Context, cmdline string) (string, error) {
	f := strings.Fields(cmdline)
	if len(f) == 0 || !slices.Contains([]string{"savevm", "loadvm", "delvm"}, f[0]) {
		return "", fmt.Errorf("fake: no HMP command %q", cmdline)
	}
	if len(f) != 2 {
		return "", fmt.Errorf("fake: HMP %s: want one tag, got %q", f[0], cmdline)
	}
	if err := m.begin(ctx, cmdline); err != nil {
		return "", err
	}
	defer m.v.mu.Unlock()
	switch f[0] {
	case "savevm":
		m.v.save(f[1])
		return "", nil
	case "loadvm":
		return m.v.load(f[1]), nil
	}
	return m.v.drop(f[1]), nil
}

// Close ends the process if it still runs: ExitStatus then reports Closed
// (and SIGKILL for a frozen QEMU, which does not answer quit).
func (m *Machine) Close(ctx context.Context) error {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	if m.v.gone {
		return nil
	}
	pe := guest.ProcessExit{Closed: true}
	if m.v.frozen {
		pe.Code, pe.Signal = -1, syscall.SIGKILL
	}
	m.v.end(pe)
	return nil
}

// Snapshot is what savevm saved.
type Snapshot struct {
	// Index is the state the guest was at.
	Index int
	// Breakpoints were inserted when it was saved: under KVM a software
	// breakpoint is an int3 in RAM, which the snapshot would carry.
	Breakpoints []Breakpoint
}

// Snapshot returns snapshot tag.
func (m *Machine) Snapshot(tag string) (Snapshot, bool) {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	i := slices.IndexFunc(m.v.snapshots, func(s snapshot) bool { return s.tag == tag })
	if i < 0 {
		return Snapshot{}, false
	}
	s := m.v.snapshots[i]
	return Snapshot{Index: s.idx, Breakpoints: slices.Clone(s.bps)}, true
}

// Snapshots returns the snapshot tags, oldest first.
func (m *Machine) Snapshots() []string {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	var tags []string
	for _, s := range m.v.snapshots {
		tags = append(tags, s.tag)
	}
	return tags
}

// Commands returns the QMP commands (but query-status) and HMP command
// lines that reached the process so far, oldest first.
func (m *Machine) Commands() []string {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return slices.Clone(m.v.commands)
}

// Kill kills QEMU with SIGKILL now, as if from outside: a pending step or
// continue fails with rsp.ErrClosed. It does nothing to a process that has
// ended.
func (m *Machine) Kill() {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	m.v.fire(Kill, 0)
}

// Freeze stops QEMU (SIGSTOP) now, as if from outside, with the effects of
// the Freeze event.
func (m *Machine) Freeze() {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	m.v.fire(Freeze, 0)
}
