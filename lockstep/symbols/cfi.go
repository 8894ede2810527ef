package symbols

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	dwframe "github.com/go-delve/delve/pkg/dwarf/frame"
)

// ErrNoCFI means the ELF file has no call-frame information (.debug_frame
// or .eh_frame): build with -g or -fasynchronous-unwind-tables.
var ErrNoCFI = errors.New("no call-frame information (.debug_frame, .eh_frame)")

// CFIRuleKind says how a register of the caller is recovered.
type CFIRuleKind uint8

// Rule kinds. The zero value, CFISame, is what a register without a rule
// gets: its value is unchanged in the caller.
const (
	// CFISame: the caller's value is the callee's.
	CFISame CFIRuleKind = iota
	// CFIUndefined: the value is lost (for the return address: the
	// outermost frame).
	CFIUndefined
	// CFIOffset: saved in memory at CFA+Offset.
	CFIOffset
	// CFIValOffset: the value is CFA+Offset.
	CFIValOffset
	// CFIRegister: the value is in DWARF register Reg.
	CFIRegister
	// CFIRegOffset: the value is register Reg plus Offset (the CFA rule).
	CFIRegOffset
	// CFIExpression: a DWARF expression, which this package does not
	// evaluate.
	CFIExpression
)

// CFIRule is one rule of a CFI row.
type CFIRule struct {
	Kind   CFIRuleKind
	Reg    uint64
	Offset int64
}

// CFIRow is the call-frame information at one pc: how to compute the
// canonical frame address (CFA, the caller's stack pointer) and where the
// caller's registers are, by DWARF register number.
type CFIRow struct {
	CFA  CFIRule
	Regs map[uint64]CFIRule
	// RA is the DWARF number of the return-address column.
	RA uint64
}

// Rule returns the rule of DWARF register r (CFISame when there is none).
func (r *CFIRow) Rule(reg uint64) CFIRule { return r.Regs[reg] }

// CFITable is an image's call-frame information, from .debug_frame and
// .eh_frame together. It is parsed by delve's pkg/dwarf/frame.
type CFITable struct {
	fdes dwframe.FrameDescriptionEntries
}

// Len returns the number of frame description entries.
func (c *CFITable) Len() int {
	if c == nil {
		return 0
	}
	return len(c.fdes)
}

// Lookup returns the CFI row at pc; ok is false when no FDE covers pc or
// its program cannot be run.
func (c *CFITable) Lookup(pc uint64) (row CFIRow, ok bool) {
	if c == nil {
		return CFIRow{}, false
	}
	fde, err := c.fdes.FDEForPC(pc)
	if err != nil {
		return CFIRow{}, false
	}
	// The parser trusts its input; a malformed program must not take the
	// run down.
	defer func() {
		if recover() != nil {
			row, ok = CFIRow{}, false
		}
	}()
	fc, err := fde.EstablishFrame(pc)
	if err != nil || fc == nil {
		return CFIRow{}, false
	}
	cfa := fc.CFA
	if cfa.Rule == dwframe.RuleUndefined && (cfa.Reg != 0 || cfa.Offset != 0) {
		// DW_CFA_def_cfa_register (and _offset) define a register+offset
		// CFA; delve sets only the fields, leaving the rule undefined when
		// the CIE starts with them (riscv64's GCC CIE does).
		cfa.Rule = dwframe.RuleCFA
	}
	row = CFIRow{CFA: convRule(cfa), Regs: make(map[uint64]CFIRule, len(fc.Regs)), RA: fc.RetAddrReg}
	for r, rule := range fc.Regs {
		row.Regs[r] = convRule(rule)
		if rule.Rule == dwframe.RuleUndefined && restored(fde, pc, r) {
			row.Regs[r] = CFIRule{Kind: CFISame}
		}
	}
	return row, true
}

// maxRestoreScan bounds how many earlier rows restored looks at.
const maxRestoreScan = 4096

// restored reports whether reg, undefined at pc, had a rule at an earlier
// address of the FDE: then the undefined rule is delve's rendering of a
// DW_CFA_restore of a register the CIE gives no rule (the epilogues of
// aarch64, riscv64 and s390x restore x30, ra and r14 so), and the register
// holds its value again: the same value, not an outermost frame's
// undefined return address.
func restored(fde *dwframe.FrameDescriptionEntry, pc, reg uint64) bool {
	step := uint64(1)
	if fde.CIE != nil && fde.CIE.CodeAlignmentFactor > 0 {
		step = fde.CIE.CodeAlignmentFactor
	}
	for a, n := fde.Begin(), 0; a < pc && n < maxRestoreScan; a, n = a+step, n+1 {
		fc, err := fde.EstablishFrame(a)
		if err != nil || fc == nil {
			return false
		}
		if r, ok := fc.Regs[reg]; ok && r.Rule != dwframe.RuleUndefined {
			return true
		}
	}
	return false
}

func convRule(r dwframe.DWRule) CFIRule {
	switch r.Rule {
	case dwframe.RuleSameVal:
		return CFIRule{Kind: CFISame}
	case dwframe.RuleUndefined:
		return CFIRule{Kind: CFIUndefined}
	case dwframe.RuleOffset:
		return CFIRule{Kind: CFIOffset, Offset: r.Offset}
	case dwframe.RuleValOffset:
		return CFIRule{Kind: CFIValOffset, Offset: r.Offset}
	case dwframe.RuleRegister:
		return CFIRule{Kind: CFIRegister, Reg: r.Reg}
	case dwframe.RuleCFA:
		return CFIRule{Kind: CFIRegOffset, Reg: r.Reg, Offset: r.Offset}
	default:
		return CFIRule{Kind: CFIExpression}
	}
}

// ParseCFI decodes a .debug_frame section (ehFrameAddr 0) or an .eh_frame
// section mapped at ehFrameAddr.
func ParseCFI(data []byte, order binary.ByteOrder, ptrSize int, ehFrameAddr uint64) (c *CFITable, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("cfi: malformed section: %v", r)
		}
	}()
	if order == binary.BigEndian {
		// delve's parser reads little-endian only (s390x is big-endian).
		if data, err = swapCFI(data, ptrSize, ehFrameAddr != 0); err != nil {
			return nil, fmt.Errorf("cfi: %w", err)
		}
		order = binary.LittleEndian
	}
	fdes, err := dwframe.Parse(data, order, 0, ptrSize, ehFrameAddr)
	if err != nil {
		return nil, fmt.Errorf("cfi: %w", err)
	}
	// Append sorts by address and drops duplicates, as FDEForPC needs.
	return &CFITable{fdes: dwframe.FrameDescriptionEntries(nil).Append(fdes)}, nil
}

// merge adds other's entries to c.
func (c *CFITable) merge(other *CFITable) *CFITable {
	if c == nil {
		return other
	}
	if other == nil {
		return c
	}
	return &CFITable{fdes: c.fdes.Append(other.fdes)}
}

// lazyCFI is a Table's CFI, read on first use.
type lazyCFI struct {
	once sync.Once
	tab  *CFITable
	err  error
}

// CFI returns the file's call-frame information from .debug_frame and
// .eh_frame, reading it on the first call (Load never does). The error
// matches ErrNoCFI when the file has neither; a section that does not
// parse is an error only when the other is missing too.
func (t *Table) CFI() (*CFITable, error) {
	t.cfi.once.Do(func() {
		t.cfi.tab, t.cfi.err = loadCFI(t.path, t.PtrSize())
	})
	return t.cfi.tab, t.cfi.err
}

func loadCFI(path string, ptrSize int) (*CFITable, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: cfi: %w", err)
	}
	defer f.Close()
	var tab *CFITable
	var errs []error
	for _, name := range []string{".debug_frame", ".eh_frame"} {
		s := f.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		var eh uint64
		if name == ".eh_frame" {
			eh = s.Addr
			if eh == 0 {
				continue // not loaded: pc-relative pointers cannot be resolved
			}
		}
		c, err := ParseCFI(data, f.ByteOrder, ptrSize, eh)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		tab = tab.merge(c)
	}
	if tab == nil {
		if len(errs) > 0 {
			return nil, fmt.Errorf("symbols: %s: %w", path, errors.Join(errs...))
		}
		return nil, fmt.Errorf("symbols: %s: %w", path, ErrNoCFI)
	}
	return tab, nil
}
