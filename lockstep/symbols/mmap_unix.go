//go:build unix

package symbols

import (
	"os"
	"syscall"
)

// mapping is a read-only view of a file: mapped where the platform allows,
// nil data otherwise (sections are then read).
type mapping struct {
	data  []byte
	unmap func([]byte) error
}

// mapFile maps the whole file read-only. An empty or unmappable file gives
// a mapping with nil data: the sections are then read instead, so that is
// no error.
func mapFile(f *os.File, size int64) *mapping {
	if size <= 0 || int64(int(size)) != size {
		return &mapping{}
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return &mapping{}
	}
	return &mapping{data: b, unmap: syscall.Munmap}
}

// close unmaps the file; it is safe to call more than once. munmap of a
// whole mapping we made fails only for a bad address or length, which
// cannot happen here, so there is no error to return.
func (m *mapping) close() {
	if m.unmap == nil || m.data == nil {
		return
	}
	m.unmap(m.data)
	m.data = nil
}
