package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// writeScenario writes body to name in a temporary directory and returns
// its path. The placeholder KERNEL is replaced with kernel.
func writeScenario(t *testing.T, name, body, kernel string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "KERNEL", kernel)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// badCase is one bad input: the command, its exit status and what stdout
// and stderr must (and stdout must not) contain.
type badCase struct {
	name      string
	args      []string
	code      int
	stderr    []string
	stdoutNot []string
}

func checkBad(t *testing.T, tests []badCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cli(t, tt.args...)
			if code != tt.code {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			for _, w := range tt.stdoutNot {
				if strings.Contains(out, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
		})
	}
}

const okHead = `name: bad
guests:
  defaults: {kernel: KERNEL}
  a: {label: one}
  b: {label: two}
`

// TestBadScenarios checks that every kind of broken scenario is a usage
// error (status 2) that names the file, the position and the problem,
// from both validate and run, and that run prints no report for it.
func TestBadScenarios(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.elf")
	notELF := writeScenario(t, "notelf.bin", "this is not an ELF kernel\n", "")
	notELFSyms := writeScenario(t, "notelf.txt", "this is not an ELF file\n", "")
	files := map[string]string{
		"syntax":     writeScenario(t, "syntax.yaml", "name: bad\nguests: {a: {label: one}\n  b: [\n", ""),
		"wrongtype":  writeScenario(t, "wrongtype.yaml", okHead+"timeout: lots\nsync:\n  - {break: kmain, hit: three}\n", missing),
		"unknownkey": writeScenario(t, "unknownkey.yaml", okHead+"sync:\n  - break: kmain\nexpct: identical\n", missing),
		"missing":    writeScenario(t, "missing.yaml", "guests:\n  a: {label: one}\n  b: {label: two}\n", ""),
		"nokernel":   writeScenario(t, "nokernel.yaml", okHead+"sync:\n  - break: kmain\n", missing),
		"notelf": writeScenario(t, "notelf.yaml", strings.Replace(okHead, "{kernel: KERNEL}", "{kernel: KERNEL, symbols: "+notELFSyms+"}", 1)+
			"sync:\n  - break: kmain\n", notELF),
		"kernelnotelf": writeScenario(t, "kernelnotelf.yaml", okHead+"sync:\n  - break: kmain\n", notELF),
		"badignore":    writeScenario(t, "badignore.yaml", okHead+"compare: {ignore: [eflags.NOPE]}\nsync:\n  - break: kmain\n", qemutest.Guest(t, "demo-good")),
	}
	var tests []badCase
	for _, cmd := range []string{"validate", "run"} {
		tests = append(tests,
			badCase{cmd + " syntax error", []string{cmd, files["syntax"]}, 2,
				[]string{"syntax.yaml:", "yaml:"}, []string{"lockstep bad"}},
			badCase{cmd + " wrong types", []string{cmd, files["wrongtype"]}, 2,
				[]string{"wrongtype.yaml:6:10:", "not a duration", "wrongtype.yaml:8:", "not an integer"}, []string{"lockstep bad"}},
			badCase{cmd + " unknown key", []string{cmd, files["unknownkey"]}, 2,
				[]string{"unknownkey.yaml:8:1:", `unknown field "expct"`, `did you mean "expect"`}, []string{"lockstep bad"}},
			badCase{cmd + " missing required", []string{cmd, files["missing"]}, 2,
				[]string{"missing.yaml:1:1:", "name is required", "sync is required"}, []string{"lockstep bad"}},
			badCase{cmd + " missing kernel", []string{cmd, files["nokernel"]}, 2,
				[]string{"nokernel.yaml:3:", "kernel", "nope.elf", "no such file"}, []string{"lockstep bad"}},
			badCase{cmd + " symbols not ELF", []string{cmd, files["notelf"]}, 2,
				[]string{"notelf.yaml:3:", "symbols", "notelf.txt"}, []string{"lockstep bad"}},
			badCase{cmd + " kernel not ELF, no symbols", []string{cmd, files["kernelnotelf"]}, 2,
				[]string{"kernelnotelf.yaml:", "symbols", "kmain", "not an ELF file"}, []string{"lockstep bad"}},
			badCase{cmd + " unknown flag bit", []string{cmd, files["badignore"]}, 2,
				[]string{"badignore.yaml:6:", "eflags.NOPE", "unknown bit"}, []string{"lockstep bad"}},
		)
	}
	tests = append(tests,
		badCase{"run scenario error suggests validate", []string{"run", files["nokernel"]}, 2,
			[]string{"lockstep validate"}, []string{"lockstep bad"}},
		badCase{"scenario file missing", []string{"run", filepath.Join(t.TempDir(), "none.yaml")}, 2,
			[]string{"none.yaml", "no such file"}, nil},
	)
	checkBad(t, tests)
}

// TestBadFlags checks usage errors that need no guest: bad formats,
// several formats on stdout, colour modes, and reports of files that are
// not lockstep results.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	notJSON := writeScenario(t, "demo.yaml", okHead, "k.elf")
	otherSchema := filepath.Join(dir, "v9.json")
	if err := os.WriteFile(otherSchema, []byte(`{"schema":"lockstep.result/v9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	demo := scenarioPath(t, "demo.yaml")
	checkBad(t, []badCase{
		{"run bogus format", []string{"run", "--format", "bogus", demo}, 2, []string{`"bogus"`, "text, json, junit, html, md"}, nil},
		{"run several formats to stdout", []string{"run", "--format", "text,json", demo}, 2, []string{"-o DIR"}, nil},
		{"run bad colour", []string{"run", "--color", "sometimes", demo}, 2, []string{"--color", "sometimes"}, nil},
		{"report bogus format", []string{"report", "--format", "pdf", otherSchema}, 2, []string{`"pdf"`}, nil},
		{"report several formats to stdout", []string{"report", "--format", "md,html", otherSchema}, 2, []string{"-o DIR"}, nil},
		{"report of YAML", []string{"report", notJSON}, 2, []string{"demo.yaml", "not a lockstep JSON result"}, nil},
		{"report of another schema", []string{"report", otherSchema}, 2, []string{"lockstep.result/v9", "lockstep.result/v1"}, nil},
		{"report of missing file", []string{"report", filepath.Join(dir, "none.json")}, 2, []string{"none.json", "no such file"}, nil},
		{"validate without args", []string{"validate"}, 2, []string{"at least 1 arg"}, nil},
		{"unknown command", []string{"frob"}, 2, []string{`unknown command "frob"`}, nil},
	})
}

// TestBadRuns checks bad input that is only found with QEMU running: a
// register the target lacks, a guest that hangs, one that exits early.
// None may leave a QEMU behind.
func TestBadRuns(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good := qemutest.Guest(t, "demo-good")
	qemutest.Guest(t, "demo-hang")
	qemutest.Guest(t, "demo-exit")
	unknownReg := writeScenario(t, "unkreg.yaml",
		okHead+"compare: {registers: [rax, rzz]}\nsync:\n  - break: kmain\nexpect: identical\n", good)
	tests := []cliCase{
		{"unknown register", []string{"run", unknownReg}, 2, nil, []string{"unkreg.yaml:6:", `"rzz"`, "register", "guest a", "guest b"}},
		{"guest hangs", []string{"run", "--color", "never", scenarioPath(t, "demo-hang.yaml")}, 0,
			[]string{"DIVERGED", "[arrival]", "did not arrive within 5s"}, nil},
		{"guest exits early", []string{"run", "--color", "never", scenarioPath(t, "demo-exit.yaml")}, 0,
			[]string{"DIVERGED", "[arrival]", "exited with status 7"}, nil},
	}
	checkCLI(t, tests)
}

// TestInterrupt cancels a run while one guest hangs, as SIGINT does
// through qemu.HandleSignals, and checks status 3, a message that says
// so, and that no QEMU is left.
func TestInterrupt(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	qemutest.Guest(t, "demo-good")
	qemutest.Guest(t, "demo-hang")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The hanging side waits up to 5s for its second sync point; cancel
	// well inside that. Whenever the cancel lands, the run must end with 3.
	timer := time.AfterFunc(1500*time.Millisecond, cancel)
	defer timer.Stop()
	var out, errb strings.Builder
	code := run(ctx, []string{"run", "--color", "never", scenarioPath(t, "demo-hang.yaml")}, streams{&out, &errb})
	if code != exitInfra {
		t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInfra, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", errb.String())
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU left running: %v", live)
	}
}
