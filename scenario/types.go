package scenario

import (
	"strings"
	"time"
)

// Defaults applied when a scenario leaves a field out.
const (
	DefaultTimeout  = 120 * time.Second
	DefaultArch     = "x86_64"
	DefaultMachine  = "pc"
	DefaultCPU      = "qemu64"
	DefaultAccel    = AccelTCG
	DefaultMemory   = "64M"
	DefaultSMP      = 1
	DefaultMaxSteps = 1000000
	// DefaultMaxWrites is localize.max_writes when unset.
	DefaultMaxWrites = 4096
)

// BIOSNone is the bios value that starts the machine with no firmware
// (QEMU's -bios none): a keyword, not a path. A file called "none" is
// spelled ./none.
const BIOSNone = "none"

// DefaultX86Args are the extra QEMU arguments an x86 guest gets when it sets
// no args: the isa-debug-exit device the test guests use to exit.
var DefaultX86Args = []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}

// Accelerators.
const (
	AccelTCG = "tcg"
	AccelKVM = "kvm"
)

// Single-step flags of determinism.sstep.
const (
	SstepNoIRQ   = "noirq"
	SstepNoTimer = "notimer"
)

// Memory address spaces of a compared range.
const (
	SpaceVirtual  = "virtual"
	SpacePhysical = "physical"
)

// Call-path comparison modes.
const (
	CallPathNone      = "none"
	CallPathBacktrace = "backtrace"
)

// Expect is what a run must find for exit status 0.
type Expect string

// The expectations.
const (
	ExpectIdentical Expect = "identical"
	ExpectDiverge   Expect = "diverge"
)

// SideNames are the keys of the two guests, by index.
var SideNames = [2]string{"a", "b"}

// Scenario is a validated scenario file with defaults applied and paths
// resolved. It is a pure specification.
type Scenario struct {
	// File is the scenario path as given to Load or Parse; Dir is the
	// absolute directory relative paths were resolved against.
	File        string
	Dir         string
	Name        string
	Description string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Guests are the two sides after merging guests.defaults: index 0 is
	// guest a, index 1 is guest b.
	Guests      [2]Guest
	Determinism Determinism
	// Compare is the top-level comparison, the default of every sync point.
	Compare CompareSpec
	// Sync lists the sync points in order; each carries its effective
	// (merged) comparison.
	Sync     []SyncPoint
	Trace    Trace
	Localize Localize
	Noise    Noise
	// Inject are the faults injected into one side.
	Inject []Injection
	Expect Expect
	// Pos maps dotted field paths ("timeout", "guests.b.kernel",
	// "sync[1].hit", "compare.memory[0].symbol") to the position of the
	// value that set them. A merged guest field maps to wherever its value
	// came from (guests.defaults or the side). Use PosOf for a fallback to
	// the nearest enclosing field.
	Pos map[string]Position
}

// PosOf returns the position recorded for path, or for its nearest enclosing
// field ("sync[1].compare.registers" falls back to "sync[1].compare", then
// "sync[1]", then "sync"), or the file's first line.
func (s *Scenario) PosOf(path string) Position {
	for path != "" {
		if p, ok := s.Pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Position{File: s.File, Line: 1, Col: 1}
}

// Guest is one side's QEMU configuration.
type Guest struct {
	// Side is "a" or "b"; Label defaults to it.
	Side  string
	Label string
	Arch  string
	// QEMU is the binary: a bare name is looked up in PATH by the caller, a
	// name with a slash has been resolved against the scenario directory.
	QEMU    string
	Machine string
	CPU     string
	Accel   string
	Memory  string
	SMP     int
	// Kernel, Initrd, BIOS and Symbols are absolute paths, or empty; BIOS
	// may also be BIOSNone.
	Kernel string
	Initrd string
	Append string
	BIOS   string
	Drives []Drive
	// Args are extra QEMU arguments, appended verbatim.
	Args []string
	// Symbols is the ELF to symbolise this side with; it defaults to Kernel
	// (whether Kernel is an ELF is for the caller to check).
	Symbols string
	// SourceStrip are path prefixes removed from the source file names the
	// reports show, after the compilation directory; an element may be a
	// path.Match pattern ("/home/*/linux/"). They are build-machine paths:
	// never resolved against the scenario directory.
	SourceStrip []string
	// Attach, when set, names a QEMU that is already running: lockstep
	// attaches to it instead of launching one, and the launch fields
	// (kernel, qemu, machine, ...) do not apply.
	Attach *Attach
	// Pos is where guests.a or guests.b is.
	Pos Position
}

// Attach says how to reach a running QEMU.
type Attach struct {
	// QMP is the QMP socket: an absolute unix socket path, or
	// "tcp:HOST:PORT" with a loopback HOST.
	QMP string
	// OnExit is what the guest is left as when lockstep detaches:
	// OnExitResume, OnExitPause, or "" for the run state lockstep found.
	OnExit string
	Pos    Position
}

// Values of attach.on_exit.
const (
	OnExitResume = "resume"
	OnExitPause  = "pause"
)

// Attached reports whether side i attaches to a running QEMU.
func (s *Scenario) Attached(i int) bool { return s.Guests[i].Attach != nil }

// AnyAttached reports whether either side attaches to a running QEMU.
func (s *Scenario) AnyAttached() bool { return s.Attached(0) || s.Attached(1) }

// Drive is one -drive of a guest.
type Drive struct {
	File     string // absolute path
	Format   string
	If       string
	Snapshot bool
	Pos      Position
}

// Determinism holds the knobs that make two runs comparable.
type Determinism struct {
	// Sstep is a subset of {noirq, notimer}, applied where supported.
	Sstep []string
	// Icount is the -icount option (TCG only), e.g. "shift=0,sleep=off".
	Icount string
	// RTC is the -rtc option, e.g. "clock=vm".
	RTC string
	// Record makes the pair replayable: with localize.method auto, a
	// divergence is localised by recording both guests (QEMU
	// record/replay, -icount rr=record) and bisecting on the instruction
	// count when the depth makes that the fastest method.
	Record bool
}

// CompareSpec says what is compared at a sync point.
type CompareSpec struct {
	// Registers are target.xml groups or register names.
	Registers []string
	// Ignore are registers ("rip") or single bits ("eflags.RF") never
	// compared.
	Ignore []string
	Memory []MemoryRange
	// CallPath is CallPathNone or CallPathBacktrace.
	CallPath string
	// Stats compares accelerator statistics between consecutive sync
	// points; nil compares none.
	Stats *StatsSpec
}

// MemoryRange is one compared memory range: either Symbol+Offset (Length 0
// means the symbol's size) or Address+Offset with a Length.
type MemoryRange struct {
	Symbol     string
	Address    uint64
	HasAddress bool
	Length     uint64
	Offset     uint64
	// Space is SpaceVirtual or SpacePhysical.
	Space string
	// AllowLarge lifts the MaxMemoryLength bound on the range.
	AllowLarge bool
	Pos        Position
}

// MaxMemoryLength bounds a compared memory range (256 MiB) unless it sets
// allow_large: each range is dumped from both guests at every sync point
// that compares it, so a mistyped length (a terabyte of physical memory)
// would otherwise fill the disk until the timeout.
const MaxMemoryLength = 256 << 20

// SyncPoint is a place both guests must reach.
type SyncPoint struct {
	Index int
	// Break is the expression as written: symbol, symbol+off, 0xADDR,
	// or BreakNow.
	Break string
	// Now is set for break: now, a point where the guests stand: nothing
	// runs to reach it.
	Now bool
	// Symbol, Offset, Addr and IsAddr are Break parsed by ParseBreak.
	Symbol string
	Offset uint64
	Addr   uint64
	IsAddr bool
	// Hit is which arrival counts (1 = the first), counted from the
	// previous sync point (from boot for the first). A hit_total in the
	// file is converted to it.
	Hit int
	// HitTotal is the arrival counted from boot that the file asked for
	// with hit_total, or 0 (hit was used).
	HitTotal int
	// At is where at the break the point is: AtEntry (the address itself,
	// the default) or AtReturn (when the function entered there returns
	// to its caller).
	At string
	// Timeout bounds the wait for this point; 0 means the rest of the run
	// timeout.
	Timeout time.Duration
	// Step is the length of the single-step window after the point.
	Step int
	// Compare is the effective comparison: the top-level compare with this
	// point's override merged over it field by field.
	Compare CompareSpec
	Pos     Position
}

// BreakNow is the break expression of a sync point where the guests
// already stand (an attached guest where it was found, or where the
// previous point left it). A symbol literally named now is "now+0".
const BreakNow = "now"

// Values of sync[].at.
const (
	// AtEntry stops at the break address itself.
	AtEntry = "entry"
	// AtReturn stops where the function entered at the break address
	// returns to its caller, with its return value in place.
	AtReturn = "return"
)

// Trace lists functions whose entries are recorded between sync points.
type Trace struct {
	// Functions are names or path.Match globs.
	Functions []string
}

// Localize configures the search for the first divergent instruction.
type Localize struct {
	Enabled  bool
	MaxSteps int
	// MaxWrites bounds the stores to one watched word that write
	// localisation records per side between two sync points.
	MaxWrites int
	// Checkpoint is how localisation gets back to the last matching sync
	// point: CheckpointAuto (the default), CheckpointRestart or
	// CheckpointSnapshot.
	Checkpoint string
	// Method is how a divergence between one binary's two runs is
	// localised: MethodAuto (the default), MethodStep, MethodTrace or
	// MethodReplay.
	Method string
}

// Values of localize.method.
const (
	// MethodAuto picks from the pair and, when determinism.record is
	// set, from the depth measured by a recording.
	MethodAuto = "auto"
	// MethodStep single-steps both guests through the gdbstub.
	MethodStep = "step"
	// MethodTrace compares QEMU's per-instruction CPU logs.
	MethodTrace = "trace"
	// MethodReplay records both guests and bisects on the instruction
	// count by replaying them, then steps the last instructions.
	MethodReplay = "replay"
)

// Values of localize.checkpoint.
const (
	// CheckpointAuto snapshots only where that measurably beats a restart.
	CheckpointAuto = "auto"
	// CheckpointRestart relaunches both guests and replays from boot.
	CheckpointRestart = "restart"
	// CheckpointSnapshot saves a VM snapshot at every matching sync point
	// and restores it to localise.
	CheckpointSnapshot = "snapshot"
)

// Noise is what calibration learned varies between identical runs; a run
// marks divergences within it as noise.
type Noise struct {
	// Registers are whole registers or reg.BIT.
	Registers []string
	Memory    []NoiseMemory
	// CallPath are function names whose call-path differences are noise.
	CallPath []string
}

// IsZero reports whether n marks nothing as noise.
func (n Noise) IsZero() bool {
	return len(n.Registers) == 0 && len(n.Memory) == 0 && len(n.CallPath) == 0
}

// NoiseMemory is a symbol (or address) whose bytes at Offsets vary; no
// Offsets means the whole symbol. Offsets count from the symbol's (or
// address's) start.
type NoiseMemory struct {
	Symbol     string
	Address    uint64
	HasAddress bool
	Offsets    []uint64
	Pos        Position
}
