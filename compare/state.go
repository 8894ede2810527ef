package compare

import "fmt"

// SideState is what one side looked like at a sync point both sides
// reached, whether or not anything differed there: where it stopped, its
// backtrace and the values of the registers the sync point compares.
type SideState struct {
	PC Location `json:"pc"`
	// Registers are the compared registers in compare order (the order
	// the sync point lists them, groups in target.xml order), with whole
	// ignored registers left out.
	Registers []RegisterValue `json:"registers,omitempty"`
	// Backtrace is the side's call path, outermost first, taken whether or
	// not the sync point compares call paths.
	Backtrace []Frame `json:"backtrace,omitempty"`
	// Task is the Linux task the side was running, when its symbols have
	// the DWARF types to find it (nil otherwise).
	Task *Task `json:"task,omitempty"`
}

// RegisterValue is one register's value: a full-width hex string, as in
// RegisterDiff.
type RegisterValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// List lists r's registers in r.Names order with their hex values;
// a name without a value is left out.
func (r Regs) List() []RegisterValue {
	out := make([]RegisterValue, 0, len(r.Names))
	for _, n := range r.Names {
		v, ok := r.Values[n]
		if !ok {
			continue
		}
		out = append(out, RegisterValue{Name: n, Value: hexValue(v)})
	}
	return out
}

// Task is the Linux task a side's stopped vCPU was running at a sync
// point: read from the per-CPU current task pointer and the task_struct
// member offsets of the kernel's DWARF.
type Task struct {
	// CPU is the vCPU that stopped (0-based).
	CPU int `json:"cpu"`
	// Comm is task_struct.comm; PID is task_struct.pid (the thread id).
	Comm string `json:"comm"`
	PID  int    `json:"pid"`
	// Context is ContextTask, ContextSoftIRQ, ContextHardIRQ or ContextNMI,
	// from the CPU's preempt count; empty when it could not be read.
	Context string `json:"context,omitempty"`
	// PreemptCount is the CPU's preempt count (x86: with the inverted
	// need-resched bit cleared).
	PreemptCount uint32 `json:"preempt_count"`
	// Addr is the task_struct's address.
	Addr uint64 `json:"addr"`
}

// The execution contexts of a Task.
const (
	ContextTask    = "task"
	ContextSoftIRQ = "softirq"
	ContextHardIRQ = "hardirq"
	ContextNMI     = "nmi"
)

// String is "cpu 0 swapper/0 (pid 1), task context".
func (t *Task) String() string {
	if t == nil {
		return ""
	}
	s := fmt.Sprintf("cpu %d %s (pid %d)", t.CPU, t.Comm, t.PID)
	if t.Context != "" {
		s += ", " + t.Context + " context"
	}
	return s
}
