package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, streams{&out, &errb})
	return code, out.String(), errb.String()
}

func scenarioPath(t *testing.T, name string) string {
	return filepath.Join(qemutest.Root(t), "testdata", "scenarios", name)
}

// TestExitStatuses checks the statuses of DESIGN.md end to end on real QEMU.
func TestExitStatuses(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	tests := []cliCase{
		{"diverge as expected", []string{"run", "--color", "never", scenarioPath(t, "demo.yaml")}, 0,
			[]string{"DIVERGED", "rsi: 0x5a5a vs 0x5a5b", "-path_b", "+path_c"}, nil},
		{"identical as expected", []string{"run", scenarioPath(t, "demo-self.yaml")}, 0, []string{"IDENTICAL"}, nil},
		{"identical expected, diverged", []string{"run", scenarioPath(t, "tsc.yaml")}, 1, []string{"DIVERGED"}, nil},
		{"malformed scenario", []string{"run", "testdata/malformed.yaml"}, 2, nil,
			[]string{"testdata/malformed.yaml:9:5", "hti"}},
		{"unknown symbol", []string{"validate", "testdata/unknown-symbol.yaml"}, 2, nil,
			[]string{"testdata/unknown-symbol.yaml:8:", "kmian", "kmain"}},
		{"validate ok", []string{"validate", scenarioPath(t, "demo.yaml")}, 0, []string{"ok"}, nil},
		{"bad format", []string{"run", "--format", "pdf", scenarioPath(t, "demo.yaml")}, 2, nil, []string{"pdf"}},
		{"no args", []string{"run"}, 2, nil, []string{"accepts 1 arg"}},
		{"version", []string{"version"}, 0, []string{"lockstep", lockstep.SchemaVersion}, nil},
	}
	checkCLI(t, tests)
}

// cliCase is one CLI invocation: its exit status and what stdout and
// stderr must contain.
type cliCase struct {
	name   string
	args   []string
	code   int
	stdout []string
	stderr []string
}

// checkCLI runs each case as a subtest, then checks that no QEMU is left.
func checkCLI(t *testing.T, tests []cliCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cli(t, tt.args...)
			if code != tt.code {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU left running: %v", live)
	}
}

// TestMissingQEMU checks status 3 (125 with --bisect) naming the package.
func TestMissingQEMU(t *testing.T) {
	qemutest.Guest(t, "demo-good")
	path := scenarioPath(t, "demo-self.yaml")
	t.Setenv("PATH", t.TempDir())
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"run", path}, 3},
		{[]string{"run", "--bisect", path}, 125},
	} {
		code, _, errs := cli(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, "qemu-system-x86") {
			t.Errorf("%v: status %d, stderr %q; want %d naming qemu-system-x86", tt.args, code, errs, tt.code)
		}
	}
}

// TestReportsRoundTrip writes every format with -o, then re-renders the
// saved JSON with `report`.
func TestReportsRoundTrip(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	dir := t.TempDir()
	code, _, errs := cli(t, "run", "-o", dir, "--format", "text,json,junit,html,md", scenarioPath(t, "demo.yaml"))
	if code != 0 {
		t.Fatalf("run: status %d: %s", code, errs)
	}
	for _, ext := range []string{".txt", ".json", ".xml", ".html", ".md"} {
		if st, err := os.Stat(filepath.Join(dir, "demo-regression"+ext)); err != nil || st.Size() == 0 {
			t.Errorf("report %s missing or empty: %v", ext, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo-regression.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res lockstep.Result
	if err := json.Unmarshal(b, &res); err != nil || res.Outcome != lockstep.OutcomeDiverged {
		t.Fatalf("saved result: %v, outcome %q", err, res.Outcome)
	}
	code, out, errs := cli(t, "report", "--format", "md", filepath.Join(dir, "demo-regression.json"))
	if code != 0 || !strings.Contains(out, "rsi") {
		t.Errorf("report: status %d, stderr %s, output:\n%s", code, errs, out)
	}
}

// TestInit writes a starter scenario for the demo guests, validates and
// runs it, and checks that an unknown sync symbol is a usage error.
func TestInit(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good, bad := qemutest.Guest(t, "demo-good"), qemutest.Guest(t, "demo-bad")
	out := filepath.Join(t.TempDir(), "s.yaml")
	checkCLI(t, []cliCase{
		{"init", []string{"init", "--a", good, "--b", bad, "--sync", "kmain,leaf", "--expect", "diverge", "-o", out}, 0,
			[]string{"wrote " + out}, nil},
		{"no overwrite", []string{"init", "--a", good, "--b", bad, "-o", out}, 2, nil, []string{"exists"}},
		{"validate it", []string{"validate", out}, 0, []string{"ok"}, nil},
		{"run it", []string{"run", "--color", "never", out}, 0, []string{"DIVERGED", "call path: path_b → path_c"}, nil},
		{"unknown sync symbol", []string{"init", "--a", good, "--b", bad, "--sync", "kmian"}, 2, nil,
			[]string{`"kmian"`, "kmain"}},
		{"missing kernel flag", []string{"init", "--a", good}, 2, nil, []string{`"b" not set`}},
		{"bad expect", []string{"init", "--a", good, "--b", bad, "--sync", "kmain", "--expect", "maybe"}, 2, nil, []string{"expect", "maybe"}},
	})
}
