package suite

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseFile: decoding any bytes as a suite file never panics; a
// file it accepts has a name and something to run, and every error it
// gives points into the file.
func FuzzParseFile(f *testing.F) {
	if data, err := os.ReadFile("../../testdata/suites/guests.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"name: s\nscenarios: [a.yaml]\n",
		"name: s\noptional: kvm.yaml\nmatrix:\n  - template: t.yaml\n    optional: true\n    side: b\n    qemu: [\"${HOME}/q\"]\n",
		"name: s\nmatrix:\n  - template: t.yaml\n    cpu: [a, b]\n    machine: [pc, q35]\n",
		"name: [\n",
		"- a\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseFile("s.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "s.yaml:") {
				t.Errorf("error without a position: %v", err)
			}
			return
		}
		if sf.Name == "" || len(sf.Scenarios)+len(sf.Optional)+len(sf.Matrix) == 0 {
			t.Errorf("accepted a suite without a name or anything to run: %+v", sf)
		}
		for _, m := range sf.Matrix {
			if m.Template == "" || len(m.Axes) == 0 {
				t.Errorf("accepted a matrix without template or axis: %+v", m)
			}
		}
	})
}
