package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// dwarfSections are the sections the source index reads: the first five
// are given to dwarf.New, the rest added with AddSection (DWARF 5).
var dwarfSections = []string{
	".debug_abbrev", ".debug_info", ".debug_line", ".debug_ranges", ".debug_str",
	".debug_addr", ".debug_line_str", ".debug_str_offsets", ".debug_rnglists",
}

// openSourceIndex opens the DWARF of the ELF file at path and indexes its
// compilation units by address. Uncompressed sections are used in place
// from a read-only mapping of the file, so a 590 MB vmlinux costs only the
// pages the index touches; compressed ones are read and inflated.
func openSourceIndex(path string, isText func(uint64) bool) (*sourceIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, err
	}
	if ef.Section(".debug_info") == nil || ef.Section(".debug_line") == nil {
		return nil, ErrNoDWARF
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m := mapFile(f, st.Size())
	idx, err := indexDWARF(ef, m, isText)
	if err != nil {
		m.close()
		return nil, err
	}
	if m.unmap != nil {
		// The mapping lives as long as the index: nothing else keeps
		// slices of it (debug/dwarf copies the strings it returns).
		runtime.AddCleanup(idx, func(m *mapping) { m.close() }, m)
	}
	return idx, nil
}

// indexDWARF builds the index from the file's sections.
func indexDWARF(ef *elf.File, m *mapping, isText func(uint64) bool) (idx *sourceIndex, err error) {
	err = guarded(func() error {
		idx, err = indexSections(ef, m, isText)
		return err
	})
	return idx, err
}

func indexSections(ef *elf.File, m *mapping, isText func(uint64) bool) (*sourceIndex, error) {
	d, err := newDWARF(ef, m)
	if err != nil {
		return nil, err
	}
	return newSourceIndex(d, isText, m)
}

// newDWARF builds the DWARF reader over the file's sections (dwarfSections),
// slices of the mapping where they are stored uncompressed.
func newDWARF(ef *elf.File, m *mapping) (*dwarf.Data, error) {
	sec := make(map[string][]byte, len(dwarfSections))
	for _, name := range dwarfSections {
		s := ef.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS {
			continue
		}
		b, err := sectionBytes(s, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sec[name] = b
	}
	d, err := dwarf.New(sec[".debug_abbrev"], nil, nil, sec[".debug_info"], sec[".debug_line"], nil, sec[".debug_ranges"], sec[".debug_str"])
	if err != nil {
		return nil, err
	}
	for _, name := range dwarfSections[5:] {
		if b, ok := sec[name]; ok {
			if err := d.AddSection(name, b); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return d, nil
}

// sectionBytes returns a section's contents: a slice of the mapping when
// the section is stored as is, else its inflated data.
func sectionBytes(s *elf.Section, m *mapping) ([]byte, error) {
	if s.Flags&elf.SHF_COMPRESSED != 0 || m.data == nil {
		return s.Data()
	}
	end := s.Offset + s.FileSize
	if end < s.Offset || end > uint64(len(m.data)) {
		return nil, fmt.Errorf("section [%#x,%#x) past the end of the file", s.Offset, end)
	}
	return m.data[s.Offset:end:end], nil
}

// guarded runs fn, turning a memory fault while it reads the mapping (the
// file shrank under us) or a panic on malformed DWARF into an error: a
// report without source lines is better than a run lost.
func guarded(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("reading DWARF: %v", r)
		}
	}()
	return fn()
}
