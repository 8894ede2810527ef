package compare

import (
	"fmt"
	"strconv"
)

// Kind classifies a divergence. The values are part of the JSON report schema.
type Kind string

// The kinds of divergence, as specified in DESIGN.md.
const (
	KindRegister    Kind = "register"    // a compared register differs at a sync point
	KindMemory      Kind = "memory"      // a compared memory range differs at a sync point
	KindCallPath    Kind = "callpath"    // the backtrace or traced function entries differ
	KindArrival     Kind = "arrival"     // one side reached the sync point, the other did not
	KindExit        Kind = "exit"        // the guests ended differently
	KindInstruction Kind = "instruction" // first divergent step inside a step window / localisation
	KindStats       Kind = "stats"       // accelerator statistics (KVM exits, ...) moved differently between sync points
)

// Location is an address with its symbolic form, resolved through one side's
// symbols. Symbol is empty when the address lies in no known symbol.
//
// File, Line and Inlined come from the side's DWARF, when it has some, and
// are for people: comparisons between the sides use Addr, Symbol and Offset
// only, so a line number that moved between two builds is no difference.
type Location struct {
	Addr   uint64 `json:"addr"`
	Symbol string `json:"symbol,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	// File and Line are the source position of the instruction at Addr,
	// innermost (inside the deepest inlined function), with the build
	// directory stripped from File: "demo.c", "init/main.c". Line is 0
	// when unknown.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Inlined lists the inlined calls Addr lies in, innermost first:
	// Inlined[0].Function is executing at File:Line and was called at
	// Inlined[0].File:Line from Inlined[1].Function, and so on; the
	// last one was called from Symbol, the function the code belongs to.
	Inlined []InlinedFrame `json:"inlined,omitempty"`
}

// InlinedFrame is one inlined call: the function that was inlined and the
// call site it was inlined at, in its caller.
type InlinedFrame struct {
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// String returns "symbol+0xoff", "symbol" or "0xaddr".
func (l Location) String() string {
	switch {
	case l.Symbol == "":
		return fmt.Sprintf("%#x", l.Addr)
	case l.Offset == 0:
		return l.Symbol
	default:
		return fmt.Sprintf("%s+%#x", l.Symbol, l.Offset)
	}
}

// Source returns the source position as "file:line" ("demo.c:175"), the
// file alone when the line is unknown, or "" when there is no file.
func (l Location) Source() string { return sourcePos(l.File, l.Line) }

// Source returns the call site as "file:line", like Location.Source.
func (f InlinedFrame) Source() string { return sourcePos(f.File, f.Line) }

func sourcePos(file string, line int) string {
	switch {
	case file == "":
		return ""
	case line <= 0:
		return file
	default:
		return file + ":" + strconv.Itoa(line)
	}
}

// IsZero reports whether l is the zero Location: no address, no symbol,
// no source (a side that has no PC).
func (l Location) IsZero() bool {
	return l.Addr == 0 && l.Symbol == "" && l.Offset == 0 && l.File == "" && l.Line == 0 && len(l.Inlined) == 0
}

// SameCode reports whether l and m name the same code: the same address,
// symbol and offset. Source positions are not compared.
func (l Location) SameCode(m Location) bool {
	return l.Addr == m.Addr && l.Symbol == m.Symbol && l.Offset == m.Offset
}

// Side indexes the two guests: A is index 0, B is index 1.
const (
	A = 0
	B = 1
)

// Divergence is one structured difference between the two guests. Exactly one
// of the detail pointers (Register, Memory, CallPath, Arrival, Exit,
// Instruction) is set, matching Kind.
type Divergence struct {
	Kind Kind `json:"kind"`
	// Sync is the 0-based index of the sync point in the scenario, or -1 for
	// a divergence found outside any sync point (e.g. an exit after the last).
	Sync int `json:"sync"`
	// SyncName is the sync point's break expression, e.g. "checksum+0x4".
	SyncName string `json:"sync_name,omitempty"`
	// Hit is the hit count of the sync point's breakpoint (1-based).
	Hit int `json:"hit,omitempty"`
	// Step is the 1-based instruction index inside a step window, 0 if none.
	Step int `json:"step,omitempty"`
	// PC is each side's program counter where the divergence was seen.
	PC [2]Location `json:"pc"`
	// Summary is a one-line, plain-text statement of the divergence, e.g.
	// "rax: 0x2a vs 0x2b". Renderers may show it as is.
	Summary string `json:"summary"`
	// Noise is true when the divergence lies within learned noise (calibration)
	// and so does not fail the run.
	Noise bool `json:"noise,omitempty"`

	Register    *RegisterDiff    `json:"register,omitempty"`
	Memory      *MemoryDiff      `json:"memory,omitempty"`
	CallPath    *CallPathDiff    `json:"callpath,omitempty"`
	Arrival     *ArrivalDiff     `json:"arrival,omitempty"`
	Exit        *ExitDiff        `json:"exit,omitempty"`
	Instruction *InstructionDiff `json:"instruction,omitempty"`
	Stats       *StatsTable      `json:"stats,omitempty"`
}

// RegisterDiff is one register that differs.
type RegisterDiff struct {
	Name string `json:"name"`
	// Values are hex strings of the raw register values ("0x...", full width,
	// never truncated: a 128-bit xmm register keeps all 32 digits).
	Values [2]string `json:"values"`
	// Symbolic holds each value as symbol+offset when it points into a symbol
	// of that side; empty otherwise. When both are set and equal the register
	// is not reported as different (a layout shift between builds).
	Symbolic [2]string `json:"symbolic,omitempty"`
	// Bits lists the named flag bits that differ (e.g. "ZF", "CF") for flag
	// registers, after ignored bits are masked out.
	Bits []string `json:"bits,omitempty"`
}

// MemoryDiff is one memory range that differs.
type MemoryDiff struct {
	// Name is what the scenario asked for: a symbol or an address expression.
	Name string `json:"name"`
	// Space is "virtual" or "physical".
	Space string `json:"space"`
	// Addr is the range start on each side (they differ between builds).
	Addr [2]uint64 `json:"addr"`
	// Length is the number of bytes compared.
	Length int `json:"length"`
	// DiffBytes counts the bytes that differ.
	DiffBytes int `json:"diff_bytes"`
	// FirstOffset is the offset of the first differing byte.
	FirstOffset int `json:"first_offset"`
	// Rows are 16-byte hexdump rows: differing rows with Context rows of
	// context around them. Runs of equal rows outside the context are
	// collapsed into a single row with Skipped set.
	Rows []HexRow `json:"rows"`
	// Truncated says Rows stop after MaxRows shown rows: differing bytes
	// past them are counted in DiffBytes but not dumped.
	Truncated bool `json:"truncated,omitempty"`
}

// HexRow is one 16-byte row of a memory diff, or a marker for skipped rows.
type HexRow struct {
	// Offset is the row's offset from the range start.
	Offset int `json:"offset"`
	// A and B are the row's bytes on each side, hex-encoded, up to 32 digits.
	A string `json:"a,omitempty"`
	B string `json:"b,omitempty"`
	// Diff marks, per byte, whether it differs (len == bytes in the row).
	Diff []bool `json:"diff,omitempty"`
	// Skipped > 0 marks a collapsed run of that many equal rows.
	Skipped int `json:"skipped,omitempty"`
}

// Frame is one entry of a call path.
type Frame struct {
	Location
	// Uncertain marks a frame found by a stack scan rather than a
	// frame-pointer walk.
	Uncertain bool `json:"uncertain,omitempty"`
	// How says how a backtrace frame was found: "pc" (the stopped pc),
	// "orc" (the Linux kernel's ORC tables), "cfi" (DWARF call-frame
	// information), "fp" (the frame-pointer chain) or "scan" (a stack
	// scan; Uncertain). Empty for frames that are not from a backtrace.
	How string `json:"how,omitempty"`
	// Args holds argument registers at a traced function entry, by name.
	Args map[string]string `json:"args,omitempty"`
}

// CallPathDiff is a difference between two call paths, compared as sequences
// of symbol names.
type CallPathDiff struct {
	// Source is "backtrace" or "trace".
	Source string  `json:"source"`
	A      []Frame `json:"a"`
	B      []Frame `json:"b"`
	// Unified is a unified diff of the symbol names, one per line, "-" for a
	// only, "+" for b only, " " for both.
	Unified string `json:"unified"`
	// OnlyA and OnlyB are the names on the "-" and "+" lines of Unified, in
	// order: the frames found on one side only.
	OnlyA []string `json:"only_a,omitempty"`
	OnlyB []string `json:"only_b,omitempty"`
}

// ArrivalDiff says where each side was when only one reached a sync point.
type ArrivalDiff struct {
	Reached [2]bool `json:"reached"`
	// State describes each side: "reached", "stopped", "exited", "timeout"
	// or "error".
	State [2]string `json:"state"`
	// ExitCode is set for a side that exited.
	ExitCode [2]*int `json:"exit_code,omitempty"`
	// Detail says, complete on its own, what each side did: "reached
	// report", "exited with status 7", "did not arrive within 5s;
	// interrupted at hang_here+0xe". Renderers show it as is.
	Detail [2]string `json:"detail,omitempty"`
}

// ExitDiff says how each guest ended.
type ExitDiff struct {
	State    [2]string `json:"state"` // "exited", "panicked", "reset", "running", "stopped"
	ExitCode [2]*int   `json:"exit_code,omitempty"`
}

// Granularity is how a localised divergence was found.
type Granularity string

// The granularities of an InstructionDiff.
const (
	ByInstruction Granularity = "instruction" // one binary: instruction by instruction
	ByFunction    Granularity = "function"    // two builds: by function entry and arguments
	ByWrite       Granularity = "write"       // either: the stores to a watched word
)

// InstructionDiff is the first divergent instruction in a step window or
// found by localisation.
type InstructionDiff struct {
	// Granularity is how the two sides were compared to find it.
	Granularity Granularity `json:"granularity"`
	// Disasm is each side's disassembly of the instruction just executed.
	Disasm [2]string `json:"disasm"`
	// Bytes is each side's instruction bytes, hex.
	Bytes [2]string `json:"bytes,omitempty"`
	// Registers are the registers that differ after it.
	Registers []RegisterDiff `json:"registers,omitempty"`
	// CallPath is each side's call path at that point, outermost first.
	CallPath [2][]Frame `json:"callpath,omitempty"`
	// Entry, for a divergence by function entry, is which entry of its
	// function each side's call is (1-based), counted from the sync
	// point the calls were compared after: the hit count a breakpoint on
	// the function needs to stop there. 0: that side made no such call.
	Entry [2]int `json:"entry,omitzero"`
}
