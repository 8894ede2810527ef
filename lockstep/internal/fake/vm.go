package fake

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/rsp"
)

// internalErrorText is what KVM prints when it gives up on an instruction.
const internalErrorText = "KVM internal error. Suberror: 1\nemulation failure\n"

// vm is the state a Target and its Machine share: where the program is,
// registers, memory, breakpoints and the process's fate. mu guards it all;
// nobody holds mu while blocking.
type vm struct {
	prog   Program
	layout *rsp.Layout

	mu       sync.Mutex
	idx      int
	regs     map[string]uint64 // canonical register name -> value
	mem      map[uint64]byte
	bps      map[Breakpoint]int // inserted breakpoints, with a count as QEMU keeps duplicates
	lost     map[int]bool       // states whose lost step has happened
	serial   strings.Builder
	stderr   strings.Builder
	status   string // QMP run state
	frozen   bool
	internal bool
	sstep    uint64

	exited chan struct{} // closed when the process has ended
	gone   bool          // the process has ended
	reaped bool          // its exit status is known (Program.ReapLag after gone)
	exit   guest.ProcessExit

	stats     map[string]uint64 // cumulative query-stats counters so far
	node      string            // block node of the scratch qcow2 ("" until blockdev-add)
	snapshots []snapshot
	commands  []string
	writes    []Write
}

// Breakpoint is a breakpoint or watchpoint inserted into a fake target.
type Breakpoint struct {
	Kind rsp.BreakKind
	Addr uint64
	Size int
}

// snapshot is what savevm saved.
type snapshot struct {
	tag  string
	idx  int
	regs map[string]uint64
	mem  map[uint64]byte
	bps  []Breakpoint
}

func newVM(p Program, layout *rsp.Layout) *vm {
	v := &vm{
		prog: p, layout: layout,
		regs: map[string]uint64{}, mem: map[uint64]byte{}, bps: map[Breakpoint]int{},
		lost: map[int]bool{}, status: "debug", exited: make(chan struct{}),
	}
	bits := v.sstepBits()
	for _, b := range bits {
		v.sstep |= b
	}
	v.stderr.WriteString(p.Stderr)
	// A 64-bit guest with paging on, as lockstep's PVH guests run, unless
	// a state says otherwise (cr0 0 is real mode).
	v.regs["cr0"] = 0x80000011
	v.regs["efer"] = 0x500 // LME, LMA
	v.arrive(0)
	return v
}

// sstepBits is the stub's qqemu.sstepbits answer.
func (v *vm) sstepBits() map[string]uint64 {
	if v.prog.SstepBits == nil {
		return map[string]uint64{"ENABLE": 1, "NOIRQ": 2, "NOTIMER": 4}
	}
	return maps.Clone(v.prog.SstepBits)
}

// arrive applies the effects of state i (registers, memory, serial output)
// and makes it the current one.
func (v *vm) arrive(i int) {
	v.idx = i
	s := &v.prog.States[i]
	for name, val := range s.Regs {
		v.regs[v.canonical(name)] = val
	}
	for addr, b := range s.Mem {
		for k, c := range b {
			v.mem[addr+uint64(k)] = c
		}
	}
	v.serial.WriteString(s.Serial)
	for name, n := range s.Stats {
		if v.stats == nil {
			v.stats = map[string]uint64{}
		}
		v.stats[name] += n
	}
}

// statsSchemas answers query-stats-schemas: one kvm provider per target
// with the program's counters, all cumulative; none when it has none.
func (v *vm) statsSchemas() []map[string]any {
	byTarget := map[string][]map[string]any{}
	seen := map[string]bool{}
	for _, st := range v.prog.States {
		for name := range st.Stats {
			target, short, _ := strings.Cut(name, ".")
			if !seen[name] {
				seen[name] = true
				byTarget[target] = append(byTarget[target], map[string]any{"name": short, "type": "cumulative"})
			}
		}
	}
	out := []map[string]any{}
	for _, t := range slices.Sorted(maps.Keys(byTarget)) {
		out = append(out, map[string]any{"provider": "kvm", "target": t, "stats": byTarget[t]})
	}
	return out
}

// queryStats answers query-stats for target: the counters so far, as one
// vCPU (or the VM) reports them.
func (v *vm) queryStats(target string) []map[string]any {
	v.mu.Lock()
	defer v.mu.Unlock()
	var stats []map[string]any
	for _, sc := range v.statsSchemas() {
		if sc["target"] != target {
			continue
		}
		for _, st := range sc["stats"].([]map[string]any) {
			name := st["name"].(string)
			stats = append(stats, map[string]any{"name": name, "value": v.stats[target+"."+name]})
		}
	}
	if stats == nil {
		return []map[string]any{}
	}
	return []map[string]any{{"provider": "kvm", "qom-path": "/machine/unattached/device[0]", "stats": stats}}
}

// canonical returns the target description's spelling of a register name
// (New has checked that it exists).
func (v *vm) canonical(name string) string {
	if r, ok := v.layout.Lookup(name); ok {
		return r.Name
	}
	return name
}

// pc is the current program counter.
func (v *vm) pc() uint64 { return v.prog.States[v.idx].PC }

// stuck reports whether the guest cannot leave the current state: it spins
// there (Hang), or the program is over and ends by hanging.
func (v *vm) stuck() bool {
	if v.prog.States[v.idx].Event == Hang {
		return true
	}
	return v.idx == len(v.prog.States)-1 && (v.prog.End == None || v.prog.End == Hang)
}

// arrival is what executing one instruction did.
type arrival struct {
	event Event
	code  int
	moved bool
}

// next executes one instruction: it moves to the next state and fires its
// event, or past the last state fires the program's End. The caller has
// checked stuck.
func (v *vm) next() arrival {
	if v.idx == len(v.prog.States)-1 {
		a := arrival{event: v.prog.End, code: v.prog.ExitCode}
		v.fire(a.event, a.code)
		return a
	}
	v.arrive(v.idx + 1)
	s := &v.prog.States[v.idx]
	a := arrival{event: s.Event, code: s.Code, moved: true}
	v.fire(a.event, a.code)
	return a
}

// fire makes an event happen to the process.
func (v *vm) fire(e Event, code int) {
	switch e {
	case Exit:
		v.end(guest.ProcessExit{Code: code})
	case Kill:
		v.end(guest.ProcessExit{Code: -1, Signal: syscall.SIGKILL})
	case Freeze:
		v.frozen = true
	case InternalError:
		v.internal = true
		v.status = "internal-error"
		v.stderr.WriteString(internalErrorText)
	}
}

// end records how the process ended and closes exited.
func (v *vm) end(pe guest.ProcessExit) {
	if v.gone {
		return
	}
	v.gone = true
	v.exit = pe
	v.status = "shutdown"
	if lag := v.prog.ReapLag; lag > 0 && !pe.Closed && pe.Signal == 0 {
		time.AfterFunc(lag, func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			v.reaped = true
			close(v.exited)
		})
		return
	}
	v.reaped = true
	close(v.exited)
}

// readable reports whether [addr, addr+n) is mapped.
func (v *vm) readable(addr, n uint64) bool {
	if v.prog.Mapped == nil {
		return true
	}
	for n > 0 {
		i := slices.IndexFunc(v.prog.Mapped, func(r Range) bool { return r.has(addr) })
		if i < 0 {
			return false
		}
		r := v.prog.Mapped[i]
		k := min(n, r.Len-(addr-r.Addr))
		addr += k
		n -= k
	}
	return true
}

// read returns n bytes of memory at addr (mapped or not).
func (v *vm) read(addr uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v.mem[addr+uint64(i)]
	}
	return b
}

// watchHit returns the lowest write watchpoint whose range the current
// state's stores touch.
func (v *vm) watchHit() (uint64, bool) {
	var hit uint64
	found := false
	for bp := range v.bps {
		if bp.Kind != rsp.WatchWrite || (found && bp.Addr >= hit) {
			continue
		}
		for addr, b := range v.prog.States[v.idx].Mem {
			if overlap(addr, uint64(len(b)), bp.Addr, uint64(bp.Size)) {
				hit, found = bp.Addr, true
				break
			}
		}
	}
	return hit, found
}

// overlap reports whether [a, a+n) and [b, b+m) share a byte.
func overlap(a, n, b, m uint64) bool {
	if n == 0 || m == 0 {
		return false
	}
	if a <= b {
		return b-a < n
	}
	return a-b < m
}

// breakAt reports whether a software or hardware breakpoint is at pc.
func (v *vm) breakAt(pc uint64) bool {
	for bp := range v.bps {
		if (bp.Kind == rsp.Software || bp.Kind == rsp.Hardware) && bp.Addr == pc {
			return true
		}
	}
	return false
}

// breakpoints lists the inserted breakpoints in a stable order, once each.
func (v *vm) breakpoints() []Breakpoint {
	out := slices.Collect(maps.Keys(v.bps))
	slices.SortFunc(out, func(a, b Breakpoint) int {
		return cmp.Or(cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Size, b.Size))
	})
	return out
}

// save records snapshot tag, replacing one of the same name.
func (v *vm) save(tag string) {
	v.snapshots = slices.DeleteFunc(v.snapshots, func(s snapshot) bool { return s.tag == tag })
	v.snapshots = append(v.snapshots, snapshot{
		tag: tag, idx: v.idx, regs: maps.Clone(v.regs), mem: maps.Clone(v.mem), bps: v.breakpoints(),
	})
}

// load restores snapshot tag: the program's position, registers and
// memory. Breakpoints are gdbstub state, which loadvm leaves alone. It
// returns the HMP output: "" on success.
func (v *vm) load(tag string) string {
	i := slices.IndexFunc(v.snapshots, func(s snapshot) bool { return s.tag == tag })
	if i < 0 {
		return fmt.Sprintf("Error: Snapshot '%s' does not exist in one or more devices\n", tag)
	}
	s := v.snapshots[i]
	v.idx, v.regs, v.mem = s.idx, maps.Clone(s.regs), maps.Clone(s.mem)
	return ""
}

// drop deletes snapshot tag and returns the HMP output: "" on success.
func (v *vm) drop(tag string) string {
	n := len(v.snapshots)
	v.snapshots = slices.DeleteFunc(v.snapshots, func(s snapshot) bool { return s.tag == tag })
	if len(v.snapshots) == n {
		return fmt.Sprintf("Error: Snapshot '%s' not found\n", tag)
	}
	return ""
}
