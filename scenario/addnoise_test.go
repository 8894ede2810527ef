package scenario

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestAddNoiseRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		initial string // appended to minimal
		add     []Noise
		want    Noise
	}{
		{"new section", "", []Noise{{
			Registers: []string{"rax", "eflags.PF"},
			Memory:    []NoiseMemory{{Symbol: "results", Offsets: []uint64{41, 40, 41}}},
			CallPath:  []string{"tick"},
		}}, Noise{
			Registers: []string{"rax", "eflags.PF"},
			Memory:    []NoiseMemory{{Symbol: "results", Offsets: []uint64{40, 41}}},
			CallPath:  []string{"tick"},
		}},
		{"merge into existing", "# learned earlier\nnoise:\n  registers: [rbx] # kept\n  memory: [{symbol: results, offsets: [8]}]\n",
			[]Noise{{Registers: []string{"rax", "rbx"}, Memory: []NoiseMemory{
				{Symbol: "results", Offsets: []uint64{9, 8}},
				{HasAddress: true, Address: 0x1000, Offsets: []uint64{2}},
			}}},
			Noise{Registers: []string{"rbx", "rax"}, Memory: []NoiseMemory{
				{Symbol: "results", Offsets: []uint64{8, 9}},
				{HasAddress: true, Address: 0x1000, Offsets: []uint64{2}},
			}}},
		{"whole symbol wins", "noise:\n  memory:\n    - symbol: results\n      offsets: [1, 2]\n",
			[]Noise{{Memory: []NoiseMemory{{Symbol: "results"}}}, {Memory: []NoiseMemory{{Symbol: "results", Offsets: []uint64{7}}}}},
			Noise{Memory: []NoiseMemory{{Symbol: "results"}}}},
		{"null section", "noise:\n", []Noise{{CallPath: []string{"a", "a", "b"}}}, Noise{CallPath: []string{"a", "b"}}},
		{"idempotent", "", []Noise{{Registers: []string{"rax"}}, {Registers: []string{"rax"}}}, Noise{Registers: []string{"rax"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := filepath.Join(dir, "s.yaml")
			initial := "# Scenario header comment.\n" + minimal + "expect: identical # trailing comment\n" + tc.initial
			if err := os.WriteFile(p, []byte(initial), 0o640); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.add {
				if err := AddNoise(p, n, "learned by calibrate: 5 runs"); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s, err := parse(p, data, noEnv)
			if err != nil {
				t.Fatalf("rewritten file does not parse: %v\n%s", err, data)
			}
			got := s.Noise
			for i := range got.Memory {
				got.Memory[i].Pos = Position{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("noise = %+v, want %+v\n%s", got, tc.want, data)
			}
			text := string(data)
			for _, keep := range []string{"# Scenario header comment.", "# trailing comment", "# learned by calibrate: 5 runs\nnoise:"} {
				if !strings.Contains(text, keep) {
					t.Errorf("rewritten file lost %q:\n%s", keep, text)
				}
			}
			if strings.Contains(tc.initial, "# kept") && !strings.Contains(text, "# kept") {
				t.Errorf("comment inside noise lost:\n%s", text)
			}
			if i, j := strings.Index(text, "name:"), strings.Index(text, "sync:"); i < 0 || j < i {
				t.Errorf("key order changed:\n%s", text)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, %v; want 0640", fi.Mode(), err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".s.yaml.*")); len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

func TestAddNoiseErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		n          Noise
		want       string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), Noise{Registers: []string{"rax"}}, "no such file"},
		{"bad register", write("a.yaml", minimal), Noise{Registers: []string{"r a x"}}, "invalid noise"},
		{"memory needs target", write("b.yaml", minimal), Noise{Memory: []NoiseMemory{{Offsets: []uint64{1}}}}, "needs a symbol or an address"},
		{"noise not a mapping", write("c.yaml", minimal+"noise: [rax]\n"), Noise{Registers: []string{"rax"}}, "noise is not a mapping"},
		{"registers not a list", write("d.yaml", minimal+"noise: {registers: rax}\n"), Noise{Registers: []string{"rbx"}}, "noise.registers is not a list"},
		{"syntax error", write("e.yaml", "name: [\n"), Noise{Registers: []string{"rax"}}, "yaml:"},
	}
	for _, tc := range tests {
		before, _ := os.ReadFile(tc.path)
		err := AddNoise(tc.path, tc.n, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: AddNoise = %v, want %q", tc.name, err, tc.want)
		}
		if after, _ := os.ReadFile(tc.path); string(after) != string(before) {
			t.Errorf("%s: file changed on error", tc.name)
		}
	}
}

func TestNoiseYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    Noise
		want string
	}{
		{"registers", Noise{Registers: []string{"rdi", "eflags.RF"}},
			"noise:\n  registers: [rdi, eflags.RF]\n"},
		{"memory", Noise{Memory: []NoiseMemory{
			{Symbol: "tsc_sample", Offsets: []uint64{0, 1, 2, 3}},
			{HasAddress: true, Address: 0x1000},
		}}, "noise:\n  memory:\n    - {symbol: tsc_sample, offsets: [0, 1, 2, 3]}\n    - {address: 0x1000}\n"},
		{"names YAML 1.2 would misread are quoted", Noise{CallPath: []string{"tick", "true", "null", "no"}},
			"noise:\n  callpath: [tick, \"true\", \"null\", no]\n"},
		{"all", Noise{Registers: []string{"rax"}, Memory: []NoiseMemory{{Symbol: "results"}}, CallPath: []string{"tock"}},
			"noise:\n  registers: [rax]\n  memory:\n    - {symbol: results}\n  callpath: [tock]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := NoiseYAML(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("NoiseYAML() =\n%s\nwant\n%s", out, tc.want)
			}
			s, err := parse("s.yaml", []byte(minimal+string(out)), noEnv)
			if err != nil {
				t.Fatalf("output does not parse as a noise section: %v\n%s", err, out)
			}
			got := s.Noise
			for i := range got.Memory {
				got.Memory[i].Pos = Position{}
			}
			if !reflect.DeepEqual(got, tc.n) {
				t.Errorf("decoded noise = %+v, want %+v\n%s", got, tc.n, out)
			}
		})
	}
}

func TestNoiseIsZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    Noise
		want bool
	}{
		{Noise{}, true},
		{Noise{Registers: []string{"rax"}}, false},
		{Noise{Memory: []NoiseMemory{{Symbol: "x"}}}, false},
		{Noise{CallPath: []string{"f"}}, false},
	}
	for _, tc := range tests {
		if got := tc.n.IsZero(); got != tc.want {
			t.Errorf("%+v.IsZero() = %v, want %v", tc.n, got, tc.want)
		}
	}
}
