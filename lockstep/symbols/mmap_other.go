//go:build !unix

package symbols

import "os"

// mapping is a read-only view of a file; without mmap, data is nil and
// sections are read.
type mapping struct {
	data  []byte
	unmap func([]byte) error
}

func mapFile(*os.File, int64) *mapping { return &mapping{} }

func (m *mapping) close() {}
