package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/suite"
)

// cliEnv makes the test binary act as the lockstep CLI (TestMain), so that
// shards run in separate processes as they would on separate runners.
const cliEnv = "LOCKSTEP_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// cliProcess returns the command running the CLI with args in a process.
func cliProcess(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	return cmd
}

// suiteScenarios are the few demo scenarios the real-QEMU suite tests run.
func suiteScenarios(t *testing.T) []string {
	qemutest.Guest(t, "demo-good")
	qemutest.Guest(t, "cpu-probe")
	return []string{scenarioPath(t, "demo-self.yaml"), scenarioPath(t, "demo.yaml"), scenarioPath(t, "cpu-models.yaml")}
}

// TestSuiteShards runs a small suite unsharded, then as 3 shards in 3
// processes, merges them, and checks that the verdicts match and that each
// scenario ran exactly once.
func TestSuiteShards(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	files := suiteScenarios(t)
	runDir := qemutest.ShortDir(t)
	t.Cleanup(func() { qemutest.Release(runDir) })
	tmp := t.TempDir()

	whole := filepath.Join(tmp, "whole")
	code, out, errOut := cli(t, append([]string{"suite", "-j", "2", "--shard", "1/1", "--run-dir", runDir, "-o", whole}, files...)...)
	if code != 0 {
		t.Fatalf("unsharded suite: status %d\n%s\n%s", code, out, errOut)
	}
	// Not a terminal: plain progress lines, one start and one end each.
	if n := strings.Count(errOut, "\nstart  "); n != len(files) || strings.Contains(errOut, "\x1b[") {
		t.Errorf("progress on a pipe: %d start lines for %d scenarios, or escape sequences:\n%s", n, len(files), errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Each shard picks its shard the way one CI engine makes it: the
	// GitHub workflow passes --shard, GitLab's parallel: sets
	// CI_NODE_INDEX/CI_NODE_TOTAL, a Kubernetes Indexed Job sets
	// JOB_COMPLETION_INDEX (0-based) and the manifest LOCKSTEP_SHARD_TOTAL
	// (docs/ci).
	engines := []struct {
		flags []string
		env   []string
	}{
		{[]string{"--shard", "1/3"}, nil},
		{nil, []string{"CI_NODE_INDEX=2", "CI_NODE_TOTAL=3"}},
		{nil, []string{"JOB_COMPLETION_INDEX=2", "LOCKSTEP_SHARD_TOTAL=3"}},
	}
	var dirs []string
	var cmds []*exec.Cmd
	for i, e := range engines {
		dir := filepath.Join(tmp, "shard"+strconv.Itoa(i+1))
		dirs = append(dirs, dir)
		args := append(append([]string{"suite", "-j", "1", "--run-dir", runDir, "-o", dir}, e.flags...), files...)
		cmd := cliProcess(ctx, args...)
		cmd.Env = append(withoutShardEnv(cmd.Env), e.env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("shard %d/3: %v", i+1, err)
		}
	}
	selected := 0
	for i, d := range dirs {
		x, err := suite.ReadIndex(filepath.Join(d, suite.IndexFile))
		if err != nil {
			t.Fatal(err)
		}
		if x.Shard != (suite.Shard{Index: i + 1, Total: 3}) {
			t.Errorf("%s: shard %s, want %d/3", d, x.Shard, i+1)
		}
		selected += len(x.Selected)
	}
	if selected != len(files) {
		t.Errorf("the shards selected %d scenarios, want %d", selected, len(files))
	}

	merged := filepath.Join(tmp, "merged")
	code, out, errOut = cli(t, append([]string{"merge", "-o", merged}, dirs...)...)
	if code != 0 {
		t.Fatalf("merge: status %d\n%s\n%s", code, out, errOut)
	}
	want, err := suite.ReadIndex(filepath.Join(whole, suite.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := suite.ReadIndex(filepath.Join(merged, suite.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	verdicts := func(x *suite.Index) map[string]string {
		m := map[string]string{}
		for _, r := range x.Results {
			m[r.Name] += string(r.Status) + " " + r.Outcome + " " + r.First + ";"
		}
		return m
	}
	w, g := verdicts(want), verdicts(got)
	if len(w) != len(files) || len(g) != len(files) {
		t.Errorf("scenarios: unsharded %d, merged %d, want %d", len(w), len(g), len(files))
	}
	for name, v := range w {
		if g[name] != v {
			t.Errorf("%s: merged %q, unsharded %q", name, g[name], v)
		}
	}
	for _, r := range got.Results {
		if r.Attempts != 1 {
			t.Errorf("%s ran %d times", r.Name, r.Attempts)
		}
	}
	for _, f := range []string{suite.MergedJUnit, suite.MergedMarkdown, suite.MergedHTML} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Error(err)
		}
	}
	qemutest.NoQEMUUnder(t, runDir)
	// The real runs' JUnit, per scenario and merged, is valid for Jenkins.
	single, _ := filepath.Glob(filepath.Join(whole, "*.xml"))
	if len(single) != len(files) {
		t.Errorf("%d JUnit files for %d scenarios", len(single), len(files))
	}
	validateJUnit(t, append(single, filepath.Join(merged, suite.MergedJUnit))...)

	// The merge against the unsharded run as its baseline: nothing
	// changed, localisations included.
	code, out, errOut = cli(t, append([]string{"merge", "--baseline", whole, "-o", filepath.Join(tmp, "vs-whole")}, dirs...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d scenarios, %d unchanged\n", len(files), len(files))) {
		t.Errorf("merge --baseline of the same suite: status %d\n%s\n%s", code, out, errOut)
	}
	localized := 0
	for _, r := range want.Results {
		if r.Localized != "" {
			localized++
		}
	}
	if localized == 0 {
		t.Errorf("no scenario recorded a localisation: %+v", want.Results)
	}
}

// validateJUnit checks files against the bundled Jenkins xunit JUnit
// schema with xmllint, skipping when xmllint is missing.
func validateJUnit(t *testing.T, files ...string) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		// Not a skip: the rest of the test ran (lockstep/suite
		// TestJUnitSchema skips for it).
		t.Log("xmllint not found (apt-get install libxml2-utils): the JUnit files are not validated against the Jenkins xunit schema")
		return
	}
	schema := filepath.Join(qemutest.Root(t), "testdata", "junit", "jenkins-junit.xsd")
	for _, f := range files {
		if out, err := exec.Command(xmllint, "--noout", "--schema", schema, f).CombinedOutput(); err != nil {
			t.Errorf("%s does not validate against the Jenkins xunit JUnit schema: %v\n%s", f, err, out)
		}
	}
}

// withoutShardEnv drops the shard variables of the CI running the tests
// (a GitLab runner sets CI_NODE_INDEX) from env.
func withoutShardEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CI_NODE_INDEX", "CI_NODE_TOTAL", "JOB_COMPLETION_INDEX", "LOCKSTEP_SHARD_TOTAL":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// TestSuiteKilledShard kills a shard's process in its second scenario:
// the merge reports the scenarios it did not finish as missing and fails.
func TestSuiteKilledShard(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	files := suiteScenarios(t)
	runDir := qemutest.ShortDir(t)
	t.Cleanup(func() { qemutest.Release(runDir) })
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "shard1")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := cliProcess(ctx, append([]string{"suite", "-j", "1", "--shard", "1/1", "--run-dir", runDir, "-o", dir}, files...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the first scenario is reported and the second one's
	// guests are up.
	for {
		x, err := suite.ReadIndex(filepath.Join(dir, suite.IndexFile))
		if err == nil && len(x.Results) >= 1 && len(qemutest.QEMUsUnder(runDir)) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the shard never reached its second scenario")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // killed: the error is expected
	qemutest.Release(runDir)

	merged := filepath.Join(tmp, "merged")
	code, out, errOut := cli(t, "merge", "-o", merged, dir)
	if code != exitMismatch {
		t.Errorf("merge of a killed shard: status %d, want %d\n%s\n%s", code, exitMismatch, out, errOut)
	}
	if !strings.Contains(out, "missing") || !strings.Contains(errOut, "did not finish") {
		t.Errorf("merge output lacks missing/did not finish:\n%s\n%s", out, errOut)
	}
	x, err := suite.ReadIndex(filepath.Join(merged, suite.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if x.Counts[suite.StatusMissing] < 1 || x.Counts[suite.StatusMissing]+x.Counts[suite.StatusPassed] != len(files) || x.Passed() {
		t.Errorf("counts %v", x.Counts)
	}
	qemutest.NoQEMUUnder(t, runDir)
}

// TestSuiteUsage checks the suite and merge commands' usage errors
// without QEMU.
func TestSuiteUsage(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: s\nscenarios: [x.yaml]\nmatrx: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"bad shard", []string{"suite", "--shard", "4/3", scenarioPath(t, "demo.yaml")}, exitUsage, "1 <= INDEX <= TOTAL"},
		{"bad jobs", []string{"suite", "-j", "0", scenarioPath(t, "demo.yaml")}, exitUsage, "-j 0"},
		{"qemu budget below a pair", []string{"suite", "--qemus", "1", scenarioPath(t, "demo.yaml")}, exitUsage, "--qemus 1: a scenario needs at least 2"},
		{"negative qemu budget", []string{"suite", "--qemus", "-3", scenarioPath(t, "demo.yaml")}, exitUsage, "--qemus -3"},
		{"no such file", []string{"suite", filepath.Join(tmp, "nope.yaml")}, exitUsage, "no such file"},
		{"bad suite file", []string{"suite", bad}, exitUsage, "bad.yaml:3:1: unknown key \"matrx\""},
		{"merge into a shard", []string{"merge", "-o", tmp, tmp}, exitUsage, "one of the shard directories"},
		{"merge of nothing", []string{"merge", "-o", filepath.Join(tmp, "m"), filepath.Join(tmp, "empty")}, exitMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.err) {
				t.Errorf("status %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
		})
	}
}

// TestSuiteOptional: an optional scenario whose QEMU is missing is
// skipped and says why; a suite in which every scenario was skipped exits
// 3 (nothing compared is not a pass), the empty shard of the same suite
// exits 0, and the same scenario not optional is an infrastructure
// failure. No QEMU starts.
func TestSuiteOptional(t *testing.T) {
	t.Parallel()
	qemutest.Guest(t, "demo-good")
	tmp := t.TempDir()
	suiteFile := func(optional bool) string {
		f := filepath.Join(tmp, fmt.Sprintf("opt-%v.yaml", optional))
		y := fmt.Sprintf("name: opt\nmatrix:\n  - template: %s\n    name: no-qemu\n    optional: %v\n    qemu: [%s]\n",
			scenarioPath(t, "demo-self.yaml"), optional, filepath.Join(tmp, "nope", "qemu-system-x86_64"))
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	opt, notOpt := suiteFile(true), suiteFile(false)
	code, out, errOut := cli(t, "suite", "--shard", "1/1", "--run-dir", tmp, "-o", filepath.Join(tmp, "o1"), opt)
	if code != exitInfra || !strings.Contains(out, "0 passed, 1 skipped") || !strings.Contains(errOut, "no scenario ran") || !strings.Contains(errOut, "optional, cannot run here") {
		t.Errorf("all skipped: status %d, want %d\n%s\n%s", code, exitInfra, out, errOut)
	}
	code, out, errOut = cli(t, "suite", "--shard", "1/1", "--baseline", filepath.Join(tmp, "o1"), "--run-dir", tmp, "-o", filepath.Join(tmp, "o1b"), opt)
	if code != exitInfra || !strings.Contains(out, "1 scenarios, 1 unchanged") || !strings.Contains(errOut, "no scenario ran") {
		t.Errorf("all skipped, against a baseline where it was skipped too: status %d, want %d\n%s\n%s", code, exitInfra, out, errOut)
	}
	codes := map[int]int{}
	for i := 1; i <= 2; i++ {
		code, out, errOut := cli(t, "suite", "--shard", fmt.Sprintf("%d/2", i), "--run-dir", tmp, "-o", filepath.Join(tmp, fmt.Sprint("s", i)), opt)
		codes[code]++
		if code != 0 && code != exitInfra {
			t.Errorf("shard %d/2: status %d\n%s\n%s", i, code, out, errOut)
		}
	}
	if codes[0] != 1 || codes[exitInfra] != 1 {
		t.Errorf("two shards of one skipped scenario: statuses %v, want one empty shard 0 and one 3", codes)
	}
	code, out, errOut = cli(t, "suite", "--shard", "1/1", "--run-dir", tmp, "-o", filepath.Join(tmp, "o2"), notOpt)
	if code != exitInfra || !strings.Contains(out, "1 infra") {
		t.Errorf("not optional: status %d, want %d with 1 infra\n%s\n%s", code, exitInfra, out, errOut)
	}
}
