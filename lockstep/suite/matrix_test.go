package suite

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

const templateYAML = `name: demo
guests:
  defaults: {kernel: k.elf, cpu: qemu64, drives: [{file: disk.img}]}
  a: {label: one}
  b: {label: two, symbols: sym.elf}
sync:
  - break: kmain
expect: identical
`

func TestExpand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tdir := filepath.Join(dir, "scenarios")
	if err := os.Mkdir(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tdir, "t.yaml"), []byte(templateYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	type guestFields struct {
		Kernel  string `yaml:"kernel"`
		CPU     string `yaml:"cpu"`
		Accel   string `yaml:"accel"`
		Machine string `yaml:"machine"`
		Symbols string `yaml:"symbols"`
		Drives  []struct {
			File string `yaml:"file"`
		} `yaml:"drives"`
	}
	type doc struct {
		Name   string                 `yaml:"name"`
		Guests map[string]guestFields `yaml:"guests"`
	}
	tests := []struct {
		name  string
		m     Matrix
		names []string
		check func(t *testing.T, d doc)
	}{
		{"both sides, default names", Matrix{Template: "scenarios/t.yaml", Side: "both", Axes: []Axis{{"cpu", []string{"qemu64", "max"}}, {"accel", []string{"tcg"}}}},
			[]string{"demo-qemu64-tcg", "demo-max-tcg"},
			func(t *testing.T, d doc) {
				if d.Guests["a"].CPU != d.Guests["b"].CPU || d.Guests["a"].Accel != "tcg" {
					t.Errorf("guests = %+v", d.Guests)
				}
			}},
		{"side b, pattern, kernel path", Matrix{Template: "scenarios/t.yaml", Name: "{name}-on-{kernel}", Side: "b", Axes: []Axis{{"kernel", []string{"k/v6.1.elf"}}}},
			[]string{"demo-on-v6.1"},
			func(t *testing.T, d doc) {
				if d.Guests["a"].Kernel != "" || d.Guests["b"].Kernel != filepath.Join(dir, "k/v6.1.elf") {
					t.Errorf("kernels = %q, %q", d.Guests["a"].Kernel, d.Guests["b"].Kernel)
				}
				if d.Guests["defaults"].Kernel != filepath.Join(tdir, "k.elf") || d.Guests["b"].Symbols != filepath.Join(tdir, "sym.elf") ||
					d.Guests["defaults"].Drives[0].File != filepath.Join(tdir, "disk.img") {
					t.Errorf("template paths not absolute: %+v", d.Guests)
				}
			}},
		{"two axes, product", Matrix{Template: "scenarios/t.yaml", Name: "x-{cpu}-{machine}", Side: "a", Axes: []Axis{{"cpu", []string{"a", "b"}}, {"machine", []string{"pc", "q 35"}}}},
			[]string{"x-a-pc", "x-a-q-35", "x-b-pc", "x-b-q-35"},
			func(t *testing.T, d doc) {
				if d.Guests["b"].CPU != "" || d.Guests["a"].Machine == "" {
					t.Errorf("guests = %+v", d.Guests)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp, err := Expand(dir, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range exp {
				names = append(names, e.Name)
				var d doc
				if err := yaml.Unmarshal(e.YAML, &d); err != nil {
					t.Fatalf("%s: %v\n%s", e.Name, err, e.YAML)
				}
				if d.Name != e.Name {
					t.Errorf("name in YAML %q, want %q", d.Name, e.Name)
				}
				tt.check(t, d)
			}
			if !slices.Equal(names, tt.names) {
				t.Errorf("names = %q, want %q", names, tt.names)
			}
		})
	}
	if _, err := Expand(dir, Matrix{Template: "nope.yaml", Axes: []Axis{{"cpu", []string{"x"}}}}); err == nil {
		t.Error("Expand of a missing template succeeded")
	}
}

// TestCollectExample loads the example suite (and so every scenario and
// expansion in it) without running anything.
func TestCollectExample(t *testing.T) {
	t.Parallel()
	p, err := Collect([]string{"../../testdata/suites/guests.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "guests" || len(p.Entries) < 10 {
		t.Errorf("plan %s with %d entries: %q", p.Name, len(p.Entries), p.Names())
	}
	out, err := WriteExpanded(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Every written scenario loads again by itself.
	q, err := Collect(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Entries) != len(out) {
		t.Errorf("reloaded %d of %d", len(q.Entries), len(out))
	}
	if _, err := Collect([]string{"../../testdata/suites/guests.yaml", "../../testdata/scenarios/demo.yaml"}); err == nil {
		t.Error("a duplicate scenario name was accepted")
	}
}
