package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// ErrNoType means the DWARF has no complete definition of a struct, or
// the struct has no member of a name asked for.
var ErrNoType = errors.New("no DWARF type")

// Member is where a struct member lies: its byte offset from the start of
// the struct and its size.
type Member struct {
	Offset uint64
	Size   uint64
}

// lazyTypes is what StructMembers found, by struct name, read on first
// use and kept for the life of the Table (one lookup per vmlinux).
type lazyTypes struct {
	mu      sync.Mutex
	structs map[string]*dwarf.StructType
	err     map[string]error
}

// StructMembers returns the offset and size of each named member of
// struct name ("task_struct": "comm", "pid"), read from the file's DWARF
// types. A member inside an anonymous struct or union member is found as
// if it were a direct member, with its offset from the outer struct. The
// scan reads only the top-level entries of each compilation unit until the
// first complete definition of the struct, and only that struct's type
// graph: in a Debian vmlinux (about 160 MB of .debug_info) task_struct is
// in one of the first units. The struct is cached in the Table. The
// error matches ErrNoDWARF when the file has no .debug_info, ErrNoType
// when the struct or a member is not there.
func (t *Table) StructMembers(name string, members ...string) (map[string]Member, error) {
	st, err := t.structType(name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Member, len(members))
	for _, m := range members {
		mb, ok := findMember(st, m, 0)
		if !ok {
			return nil, fmt.Errorf("struct %s has no member %s: %w", name, m, ErrNoType)
		}
		out[m] = mb
	}
	return out, nil
}

func (t *Table) structType(name string) (*dwarf.StructType, error) {
	lt := &t.types
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if st, ok := lt.structs[name]; ok {
		return st, nil
	}
	if err, ok := lt.err[name]; ok {
		return nil, err
	}
	var st *dwarf.StructType
	err := guarded(func() error {
		var err error
		st, err = findStruct(t.path, name)
		return err
	})
	if lt.structs == nil {
		lt.structs, lt.err = map[string]*dwarf.StructType{}, map[string]error{}
	}
	if err != nil {
		lt.err[name] = err
		return nil, err
	}
	lt.structs[name] = st
	return st, nil
}

// findStruct opens the DWARF of the ELF at path and returns the first
// complete definition of struct name.
func findStruct(path, name string) (*dwarf.StructType, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, err
	}
	if ef.Section(".debug_info") == nil {
		return nil, ErrNoDWARF
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m := mapFile(f, st.Size())
	defer m.close()
	d, err := newDWARF(ef, m)
	if err != nil {
		return nil, err
	}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			return nil, fmt.Errorf("struct %s: %w", name, ErrNoType)
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit || e.Tag == 0 {
			continue // a unit's top-level entries follow it
		}
		if e.Tag == dwarf.TagStructType && e.Val(dwarf.AttrName) == name && e.Val(dwarf.AttrDeclaration) == nil {
			typ, err := d.Type(e.Offset)
			if err != nil {
				return nil, fmt.Errorf("struct %s: %w", name, err)
			}
			if st, ok := typ.(*dwarf.StructType); ok && !st.Incomplete {
				// The type graph holds copies of the names: the
				// mapping can go.
				return st, nil
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

// findMember finds member name (a dotted path such as "a.b" descends into
// named struct members) in st, looking through anonymous members.
func findMember(st *dwarf.StructType, name string, base uint64) (Member, bool) {
	first, rest, nested := strings.Cut(name, ".")
	for _, f := range st.Field {
		off := base + uint64(f.ByteOffset)
		if f.Name == first {
			if !nested {
				return Member{Offset: off, Size: uint64(max(f.Type.Size(), 0))}, true
			}
			if inner, ok := underlying(f.Type).(*dwarf.StructType); ok {
				return findMember(inner, rest, off)
			}
			return Member{}, false
		}
		if f.Name == "" {
			if inner, ok := underlying(f.Type).(*dwarf.StructType); ok {
				if m, ok := findMember(inner, name, off); ok {
					return m, true
				}
			}
		}
	}
	return Member{}, false
}

// underlying strips typedefs and qualifiers.
func underlying(t dwarf.Type) dwarf.Type {
	for {
		switch u := t.(type) {
		case *dwarf.TypedefType:
			t = u.Type
		case *dwarf.QualType:
			t = u.Type
		default:
			return t
		}
	}
}
