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

// layoutFor parses the target description of arch ("" is x86_64). The
// fake answers no 'g' packet, so register offsets in it do not matter.
func layoutFor(arch string) (*rsp.Layout, error) {
	if arch == "" {
		arch = "x86_64"
	}
	if arch != "x86_64" {
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
	return l, nil
}
