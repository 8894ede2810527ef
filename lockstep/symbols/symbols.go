package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNoSymbols means the ELF file has no .symtab.
	ErrNoSymbols = errors.New("no symbol table: build with symbols or set symbols:")
	// ErrUnknownSymbol is matched by *UnknownSymbolError.
	ErrUnknownSymbol = errors.New("unknown symbol")
	// ErrBadExpr means an address expression does not parse.
	ErrBadExpr = errors.New("bad address expression")
	// ErrNotInFile means ReadAt was asked for bytes the file does not hold.
	ErrNotInFile = errors.New("address not in file")
)

// Symbol is one ELF symbol.
type Symbol struct {
	Name string
	Addr uint64
	Size uint64
	// Func is true for STT_FUNC symbols.
	Func bool
	// Text is true when the symbol lies in an executable section.
	Text bool
}

// meta is what Table keeps about a symbol beyond Symbol.
type meta struct {
	section elf.SectionIndex
	typ     elf.SymType
	bind    elf.SymBind
}

// section is an allocated section of the file.
type section struct {
	index    elf.SectionIndex
	name     string
	addr     uint64
	size     uint64
	offset   uint64
	exec     bool
	inFile   bool // its bytes are in the file (not NOBITS)
	fileSize uint64
}

// Table is a loaded symbol table. It is immutable, apart from the DWARF
// index Source builds on first use, and safe for concurrent use.
type Table struct {
	path    string
	machine elf.Machine
	entry   uint64
	class   elf.Class
	order   binary.ByteOrder

	syms []Symbol
	meta []meta
	// byName maps a name to its preferred symbol.
	byName map[string]int32
	// sized indexes symbols with Size > 0 in allocated sections, by
	// address; maxEnd[i] is the largest end among sized[0..i].
	sized  []int32
	maxEnd []uint64
	// labels indexes size-0 text symbols by address.
	labels []int32
	// funcs indexes STT_FUNC symbols by address.
	funcs []int32
	// secs are the allocated sections by address.
	secs []section
	// marks maps the address of each size-0 data or absolute symbol
	// (linker marks such as __bss_end or _end) to it: an address equal to
	// one symbolises as that mark.
	marks map[uint64]int32
	// src is the DWARF line and inline index, loaded by the first Source
	// call (never by Load).
	src *lazySource
	// orc and cfi are the unwind tables, read by the first ORC or CFI
	// call (never by Load).
	orc lazyORC
	cfi lazyCFI
	// types are the DWARF structs StructMembers read (never by Load).
	types lazyTypes
}

// Load reads the symbol table of the ELF file at path. It reads the ELF
// and section headers, .symtab and its string table, and nothing else.
func Load(path string) (*Table, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: open %s: %w", path, err)
	}
	defer osf.Close()
	return load(osf, path)
}

// load reads a table from r; path is recorded for ReadAt and messages.
func load(r io.ReaderAt, path string) (*Table, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("symbols: %s is not an ELF file (%w); name the ELF with symbols (e.g. vmlinux) in symbols:", path, err)
		}
		return nil, fmt.Errorf("symbols: open %s: %w", path, err)
	}
	raw, err := f.Symbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("symbols: %s: %w", path, ErrNoSymbols)
		}
		return nil, fmt.Errorf("symbols: read %s: %w", path, err)
	}
	t := &Table{
		path:    path,
		machine: f.Machine,
		entry:   f.Entry,
		class:   f.Class,
		order:   f.ByteOrder,
		byName:  make(map[string]int32, len(raw)),
		src:     &lazySource{},
	}
	secByIndex := map[elf.SectionIndex]int{}
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		sec := section{
			index:  elf.SectionIndex(i),
			name:   s.Name,
			addr:   s.Addr,
			size:   s.Size,
			offset: s.Offset,
			exec:   s.Flags&elf.SHF_EXECINSTR != 0,
			inFile: s.Type != elf.SHT_NOBITS && s.Flags&elf.SHF_COMPRESSED == 0,
		}
		if sec.inFile {
			sec.fileSize = s.FileSize
		}
		t.secs = append(t.secs, sec)
	}
	sort.Slice(t.secs, func(i, j int) bool { return t.secs[i].addr < t.secs[j].addr })
	for i, s := range t.secs {
		secByIndex[s.index] = i
	}

	t.syms = make([]Symbol, 0, len(raw))
	t.meta = make([]meta, 0, len(raw))
	for _, s := range raw {
		typ := elf.ST_TYPE(s.Info)
		if s.Name == "" || typ == elf.STT_SECTION || typ == elf.STT_FILE || s.Section == elf.SHN_UNDEF {
			continue
		}
		if typ == elf.STT_NOTYPE && elf.ST_BIND(s.Info) == elf.STB_LOCAL && notAName(s.Name) {
			continue
		}
		si, alloc := secByIndex[s.Section]
		sym := Symbol{
			Name: s.Name,
			Addr: s.Value,
			Size: s.Size,
			Func: typ == elf.STT_FUNC,
			Text: alloc && t.secs[si].exec,
		}
		idx := int32(len(t.syms))
		t.syms = append(t.syms, sym)
		t.meta = append(t.meta, meta{section: s.Section, typ: typ, bind: elf.ST_BIND(s.Info)})
		if old, ok := t.byName[s.Name]; !ok || t.better(idx, old) {
			t.byName[s.Name] = idx
		}
		if s.Size == 0 && !sym.Text && typ != elf.STT_TLS && (alloc || s.Section == elf.SHN_ABS) {
			if t.marks == nil {
				t.marks = map[uint64]int32{}
			}
			if old, ok := t.marks[s.Value]; !ok || t.better(idx, old) {
				t.marks[s.Value] = idx
			}
		}
		if !alloc || typ == elf.STT_TLS {
			continue // absolute, common or non-allocated: not an address
		}
		switch {
		case s.Size > 0:
			t.sized = append(t.sized, idx)
		case sym.Text:
			t.labels = append(t.labels, idx)
		}
		if sym.Func {
			t.funcs = append(t.funcs, idx)
		}
	}
	t.sortByAddr(t.sized)
	t.sortByAddr(t.labels)
	t.sortByAddr(t.funcs)
	t.maxEnd = make([]uint64, len(t.sized))
	var m uint64
	for i, idx := range t.sized {
		m = max(m, t.syms[idx].Addr+t.syms[idx].Size)
		t.maxEnd[i] = m
	}
	return t, nil
}

// notAName reports whether a local untyped symbol is a marker rather than
// a name for code or data: an ARM or RISC-V mapping symbol ("$x", "$d",
// "$a", "$t", with a ".suffix", or RISC-V's "$xrv64i2p1_m2p0" carrying the
// ISA string) or an assembler-local label (".L...", kept by as -L).
func notAName(name string) bool {
	if strings.HasPrefix(name, ".L") {
		return true
	}
	if len(name) < 2 || name[0] != '$' || !strings.ContainsRune("adtx", rune(name[1])) {
		return false
	}
	rest := name[2:]
	return rest == "" || rest[0] == '.' || name[1] == 'x' && strings.HasPrefix(rest, "rv")
}

// rank orders symbol kinds: typed (FUNC, OBJECT) before the rest.
func (t *Table) rank(i int32) int {
	r := 0
	switch t.meta[i].typ {
	case elf.STT_FUNC, elf.STT_OBJECT:
		r += 2
	}
	if t.meta[i].bind != elf.STB_LOCAL {
		r++
	}
	return r
}

// better reports whether symbol i is preferred over j for name lookup:
// global over local, typed over untyped.
func (t *Table) better(i, j int32) bool {
	gi, gj := t.meta[i].bind != elf.STB_LOCAL, t.meta[j].bind != elf.STB_LOCAL
	if gi != gj {
		return gi
	}
	return t.rank(i) > t.rank(j)
}

func (t *Table) sortByAddr(idx []int32) {
	slices.SortFunc(idx, func(a, b int32) int {
		if c := cmp.Compare(t.syms[a].Addr, t.syms[b].Addr); c != 0 {
			return c
		}
		if c := cmp.Compare(t.rank(b), t.rank(a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b) // symbol table order: deterministic
	})
}

// Path returns the file the table was loaded from.
func (t *Table) Path() string { return t.path }

// Machine returns the ELF machine (e.g. elf.EM_X86_64).
func (t *Table) Machine() elf.Machine { return t.machine }

// Entry returns the ELF entry point.
func (t *Table) Entry() uint64 { return t.entry }

// ByteOrder returns the file's byte order.
func (t *Table) ByteOrder() binary.ByteOrder { return t.order }

// PtrSize returns the pointer size implied by the ELF class: 4 or 8.
func (t *Table) PtrSize() int {
	if t.class == elf.ELFCLASS32 {
		return 4
	}
	return 8
}

// Len returns the number of symbols loaded. FILE and SECTION symbols,
// undefined ones, mapping symbols ("$x", "$d") and assembler-local labels
// (".L...") are skipped.
func (t *Table) Len() int { return len(t.syms) }

// Lookup returns the symbol called name, preferring a global one when
// several share the name.
func (t *Table) Lookup(name string) (Symbol, bool) {
	i, ok := t.byName[name]
	if !ok {
		return Symbol{}, false
	}
	return t.syms[i], true
}

// SymbolSize returns the size of the symbol called name.
func (t *Table) SymbolSize(name string) (uint64, bool) {
	s, ok := t.Lookup(name)
	return s.Size, ok
}

// Functions returns every STT_FUNC symbol, by address.
func (t *Table) Functions() []Symbol {
	out := make([]Symbol, len(t.funcs))
	for i, idx := range t.funcs {
		out[i] = t.syms[idx]
	}
	return out
}
