package suite

import (
	"errors"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

func TestParseFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		// errs are substrings of the error, in order; none means valid.
		errs []string
	}{
		{"scenarios only", "name: s\nscenarios: [a.yaml, dir/]\n", nil},
		{"matrix", "name: s\nmatrix:\n  - template: t.yaml\n    cpu: [qemu64, max]\n    side: b\n", nil},
		{"scalar scenario", "name: s\nscenarios: a.yaml\n", nil},
		{"optional only", "name: s\noptional: [kvm.yaml]\n", nil},
		{"optional matrix", "name: s\nmatrix:\n  - template: t.yaml\n    optional: true\n    accel: [kvm]\n", nil},
		{"bad optional", "name: s\nmatrix:\n  - template: t.yaml\n    optional: maybe\n    accel: [kvm]\n", []string{"s.yaml:4:15: optional must be true or false"}},
		{"unknown top key", "name: s\nscenarios: [a.yaml]\nscenaros: [b.yaml]\n", []string{"s.yaml:3:1: unknown key \"scenaros\""}},
		{"unknown matrix key", "name: s\nmatrix:\n  - template: t.yaml\n    cpus: [max]\n", []string{"s.yaml:4:5: unknown key \"cpus\" in matrix", "s.yaml:3:5: matrix: no axis"}},
		{"bad side", "name: s\nmatrix:\n  - template: t.yaml\n    side: c\n    cpu: [max]\n", []string{"s.yaml:4:11: side must be a, b or both"}},
		{"no template", "name: s\nmatrix:\n  - cpu: [max]\n", []string{"s.yaml:3:5: matrix: template is required"}},
		{"empty axis", "name: s\nmatrix:\n  - template: t.yaml\n    cpu: []\n", []string{"s.yaml:4:10: cpu: at least one value"}},
		{"no name, nothing", "scenarios: []\n", []string{"name is required", "a suite needs scenarios or a matrix"}},
		{"not a mapping", "- a\n", []string{"s.yaml:1:1: a suite is a mapping"}},
		{"syntax", "name: [\n", []string{"s.yaml:"}},
		{"empty", "", []string{"s.yaml:1: empty suite"}},
		{"list of maps", "name: s\nscenarios: [{a: b}]\n", []string{"s.yaml:2:13: expected a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFile("s.yaml", []byte(tt.yaml))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("ParseFile: %v", err)
				}
				if f.Name != "s" {
					t.Errorf("Name = %q", f.Name)
				}
				return
			}
			var es scenario.Errors
			if !errors.As(err, &es) {
				t.Fatalf("ParseFile error = %v, want scenario.Errors", err)
			}
			msg := err.Error()
			for _, want := range tt.errs {
				i := strings.Index(msg, want)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, want)
				}
				msg = msg[i+len(want):]
			}
		})
	}
}
