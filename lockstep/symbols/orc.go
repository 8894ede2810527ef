package symbols

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrNoORC means the ELF file has no ORC unwind tables (.orc_unwind_ip and
// .orc_unwind): it is not an x86-64 Linux kernel built with the ORC
// unwinder.
var ErrNoORC = errors.New("no ORC unwind tables")

// ORC register numbers (arch/x86/include/asm/orc_types.h): which register
// a frame's stack pointer (SPReg) or saved frame pointer (BPReg) is found
// from.
const (
	ORCRegUndefined  = 0
	ORCRegPrevSP     = 1
	ORCRegDX         = 2
	ORCRegDI         = 3
	ORCRegBP         = 4
	ORCRegSP         = 5
	ORCRegR10        = 6
	ORCRegR13        = 7
	ORCRegBPIndirect = 8
	ORCRegSPIndirect = 9
)

// ORCType is what lies at a frame's stack pointer once it is computed.
type ORCType uint8

// ORC frame types, normalised over the kernel's two layouts (before and
// after Linux 6.4's .orc_header).
const (
	// ORCCall: the return address is just below the computed sp.
	ORCCall ORCType = iota
	// ORCRegs: a full struct pt_regs is at the computed sp.
	ORCRegs
	// ORCRegsPartial: the iret frame (ip, cs, flags, sp, ss) is at sp.
	ORCRegsPartial
	// ORCEnd: the end of the stack (an entry point); stop unwinding.
	ORCEnd
	// ORCUndefined: no unwind information for this ip.
	ORCUndefined
)

// ORCEntry is one ORC unwind entry: how to find the caller's stack
// pointer and frame pointer at an instruction.
type ORCEntry struct {
	SPOffset int16
	BPOffset int16
	SPReg    uint8
	BPReg    uint8
	Type     ORCType
	// Signal marks a frame whose ip is not a return address (an
	// exception or interrupt frame): look up ip itself, not ip-1.
	Signal bool
}

// ORCTable is a kernel's ORC unwind table: entries sorted by address.
type ORCTable struct {
	ips     []uint64
	entries []ORCEntry
}

// Len returns the number of entries.
func (o *ORCTable) Len() int {
	if o == nil {
		return 0
	}
	return len(o.ips)
}

// Lookup returns the entry covering pc: the last one whose address is at
// most pc. ok is false below the first entry.
func (o *ORCTable) Lookup(pc uint64) (ORCEntry, bool) {
	if o == nil {
		return ORCEntry{}, false
	}
	i := sort.Search(len(o.ips), func(k int) bool { return o.ips[k] > pc }) - 1
	if i < 0 {
		return ORCEntry{}, false
	}
	return o.entries[i], true
}

const orcEntrySize = 6

// ParseORC decodes the ORC tables: ipSec is .orc_unwind_ip (32-bit offsets,
// each relative to its own address; ipAddr is the section's address),
// unwind is .orc_unwind (6-byte entries), both little-endian (ORC is
// x86-64 only). newLayout selects the layout of
// Linux 6.4 and later (files with an .orc_header section: 3-bit type with
// an undefined and an end-of-stack type, and a signal bit); before it the
// type is 2 bits followed by an end bit. The entries are sorted by address.
func ParseORC(ipSec []byte, ipAddr uint64, unwind []byte, newLayout bool) (*ORCTable, error) {
	if len(ipSec)%4 != 0 {
		return nil, fmt.Errorf("orc: .orc_unwind_ip is %d bytes, not a multiple of 4", len(ipSec))
	}
	order := binary.LittleEndian
	n := len(ipSec) / 4
	if len(unwind) != n*orcEntrySize {
		return nil, fmt.Errorf("orc: %d ip entries but .orc_unwind is %d bytes (want %d)", n, len(unwind), n*orcEntrySize)
	}
	o := &ORCTable{ips: make([]uint64, n), entries: make([]ORCEntry, n)}
	for i := range n {
		rel := int32(order.Uint32(ipSec[4*i:]))
		o.ips[i] = ipAddr + uint64(4*i) + uint64(int64(rel))
		e := unwind[orcEntrySize*i:]
		bits := order.Uint16(e[4:])
		ent := ORCEntry{
			SPOffset: int16(order.Uint16(e[0:])),
			BPOffset: int16(order.Uint16(e[2:])),
			SPReg:    uint8(bits & 0xf),
			BPReg:    uint8(bits >> 4 & 0xf),
		}
		if newLayout {
			switch bits >> 8 & 0x7 {
			case 0:
				ent.Type = ORCUndefined
			case 1:
				ent.Type = ORCEnd
			case 2:
				ent.Type = ORCCall
			case 3:
				ent.Type = ORCRegs
			case 4:
				ent.Type = ORCRegsPartial
			default:
				ent.Type = ORCUndefined
			}
			ent.Signal = bits>>11&1 == 1
		} else {
			ent.Type = ORCType(bits >> 8 & 0x3)
			if ent.Type > ORCRegsPartial {
				ent.Type = ORCUndefined
			}
			if bits>>10&1 == 1 {
				ent.Type = ORCEnd
			}
			ent.Signal = ent.Type == ORCRegs || ent.Type == ORCRegsPartial
		}
		o.entries[i] = ent
	}
	// The kernel's build sorts the tables (sorttable); sort anyway, so a
	// table straight from objtool works too.
	if !sort.SliceIsSorted(o.ips, func(a, b int) bool { return o.ips[a] < o.ips[b] }) {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return o.ips[idx[a]] < o.ips[idx[b]] })
		ips, ents := make([]uint64, n), make([]ORCEntry, n)
		for k, i := range idx {
			ips[k], ents[k] = o.ips[i], o.entries[i]
		}
		o.ips, o.entries = ips, ents
	}
	return o, nil
}

// lazyORC is a Table's ORC table, read on first use.
type lazyORC struct {
	once sync.Once
	tab  *ORCTable
	err  error
}

// ORC returns the file's ORC unwind table, reading it on the first call
// (Load never does). The error matches ErrNoORC when the file has none.
func (t *Table) ORC() (*ORCTable, error) {
	t.orc.once.Do(func() {
		t.orc.tab, t.orc.err = loadORC(t.path)
	})
	return t.orc.tab, t.orc.err
}

func loadORC(path string) (*ORCTable, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: orc: %w", err)
	}
	defer f.Close()
	ip, un := f.Section(".orc_unwind_ip"), f.Section(".orc_unwind")
	if ip == nil || un == nil {
		return nil, fmt.Errorf("symbols: %s: %w", path, ErrNoORC)
	}
	ipData, err := ip.Data()
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: .orc_unwind_ip: %w", path, err)
	}
	unData, err := un.Data()
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: .orc_unwind: %w", path, err)
	}
	o, err := ParseORC(ipData, ip.Addr, unData, f.Section(".orc_header") != nil)
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: %w", path, err)
	}
	return o, nil
}
