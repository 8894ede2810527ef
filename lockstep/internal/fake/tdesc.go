package fake

import (
	"embed"
	"fmt"
	"path"

	"github.com/lockstep-dev/lockstep/rsp"
)

// tdescFS holds the target descriptions QEMU 7.2's gdbstub serves, copied
// from rsp/testdata/tdesc.
//
//go:embed tdesc/x86_64/*.xml
var tdescFS embed.FS

// gSizes is the size of QEMU's 'g' reply per architecture (PROTOCOL.md §4).
var gSizes = map[string]int{"x86_64": 608}

// layoutFor parses the target description of arch ("" is x86_64) and
// places the registers in the 'g' reply as rsp.Client does.
func layoutFor(arch string) (*rsp.Layout, error) {
	if arch == "" {
		arch = "x86_64"
	}
	gsize, ok := gSizes[arch]
	if !ok {
		return nil, fmt.Errorf("fake: arch %q unsupported (only x86_64)", arch)
	}
	dir := path.Join("tdesc", arch)
	doc, err := tdescFS.ReadFile(path.Join(dir, "target.xml"))
	if err != nil {
		return nil, fmt.Errorf("fake: %w", err)
	}
	l, err := rsp.ParseTargetXML(doc, func(annex string) ([]byte, error) {
		return tdescFS.ReadFile(path.Join(dir, annex))
	})
	if err != nil {
		return nil, fmt.Errorf("fake: %w", err)
	}
	off, next := 0, 0
	for i := range l.Registers {
		r := &l.Registers[i]
		r.Offset = -1
		if r.Num == next && off+r.Size() <= gsize {
			r.Offset = off
			off += r.Size()
			next++
		}
	}
	l.GSize = off
	return l, nil
}
