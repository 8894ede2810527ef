package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplateParses checks that every starter scenario parses, with the
// fields it was asked for.
func TestTemplateParses(t *testing.T) {
	dir := t.TempDir()
	ka, kb := filepath.Join(dir, "good $build.elf"), filepath.Join(dir, "bad.elf")
	for _, p := range []string{ka, kb} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		o    TemplateOptions
		sync []string
		mem  string
	}{
		{"minimal", TemplateOptions{Kernel: [2]string{ka, kb}}, []string{"start_kernel"}, DefaultMemory},
		{"linux", TemplateOptions{Name: "boot", Kernel: [2]string{ka, kb}, Symbols: [2]string{kb, ka},
			Accel: [2]string{"tcg", "kvm"}, Linux: true, Sync: []string{"start_kernel", "rest_init+0x4"}},
			[]string{"start_kernel", "rest_init+0x4"}, "512M"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Template(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := Parse(filepath.Join(dir, tt.name+".yaml"), b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if len(sc.Sync) != len(tt.sync) || sc.Guests[0].Kernel != ka || sc.Guests[1].Kernel != kb ||
				sc.Guests[0].Memory != tt.mem || !sc.Localize.Enabled {
				t.Errorf("parsed %+v\nfrom\n%s", sc, b)
			}
			for i, s := range tt.sync {
				if sc.Sync[i].Break != s {
					t.Errorf("sync %d = %q, want %q", i, sc.Sync[i].Break, s)
				}
			}
			if tt.o.Linux && (!strings.Contains(sc.Guests[0].Append, "nokaslr") || sc.Guests[1].Accel != "kvm" ||
				sc.Guests[0].Symbols != kb || len(sc.Trace.Functions) == 0) {
				t.Errorf("linux defaults missing: %+v", sc.Guests)
			}
		})
	}
	if _, err := Template(TemplateOptions{Kernel: [2]string{ka, ""}}); err == nil {
		t.Error("a missing kernel is not an error")
	}
}
