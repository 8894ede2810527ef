package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/bisect"
	"github.com/lockstep-dev/lockstep/lockstep/bisect/bisecttest"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestBisectUsage checks the usage errors of lockstep bisect: exit 2 and
// nothing started.
func TestBisectUsage(t *testing.T) {
	repo, hashes := bisecttest.Repo(t, bisecttest.Spec{Commits: 2})
	sc := bisecttest.Scenario(t, "demo")
	base := []string{"bisect", "--repo", repo, "--build", "true", "--artifact", "k.elf", "--scenario", sc}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing good", append(base, "--bad", "main"), "good"},
		{"unknown revision", append(base, "--good", "nosuchrev", "--bad", "main"), "nosuchrev"},
		{"good not an ancestor", append(base, "--good", "main", "--bad", hashes[0]), "not an ancestor"},
		{"same commit", append(base, "--good", "main", "--bad", "main"), "same commit"},
		{"runs", append(base, "--good", hashes[0], "--bad", "main", "--runs", "0"), "--runs"},
		{"absolute artifact", []string{"bisect", "--repo", repo, "--build", "true", "--artifact", "/k.elf",
			"--scenario", sc, "--good", hashes[0], "--bad", "main"}, "relative"},
		{"missing scenario", []string{"bisect", "--repo", repo, "--build", "true", "--artifact", "k.elf",
			"--scenario", filepath.Join(t.TempDir(), "none.yaml"), "--good", hashes[0], "--bad", "main"}, "none.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cli(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}

// TestBisectCLI bisects the flaky fixture with one run per commit (run 1
// is odd, so the regression always shows) through the CLI, and checks the
// summary, the reports of the first bad commit in every format, the
// outcome JSON and the verdict log.
func TestBisectCLI(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	spec := bisecttest.Spec{Commits: 4, Flaky: 2}
	repo, hashes := bisecttest.Repo(t, spec)
	t.Setenv("REFERENCE", bisecttest.Reference(t, repo, hashes[0], "flaky"))
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := cli(t, "bisect", "--repo", repo, "--good", hashes[0], "--bad", "main",
		"--build", bisecttest.Build("flaky"), "--artifact", bisecttest.Artifact("flaky"),
		"--scenario", bisecttest.Scenario(t, "flaky"), "-o", out, "--tmp-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "first bad commit: "+hashes[spec.Flaky]) ||
		!strings.Contains(stdout, "plant the flaky regression") || !strings.Contains(stdout, "steps: 3") {
		t.Errorf("summary:\n%s", stdout)
	}
	if n := strings.Count(stderr, "bisect: "); n != 3 {
		t.Errorf("%d step lines on stderr, want 3:\n%s", n, stderr)
	}
	for _, f := range []string{"first-bad.txt", "first-bad.json", "first-bad.xml", "first-bad.html", "first-bad.md", "bisect.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	txt, _ := os.ReadFile(filepath.Join(out, "first-bad.txt"))
	if !strings.Contains(string(txt), "rsi") {
		t.Errorf("first-bad.txt does not show the rsi divergence:\n%s", txt)
	}
	es, err := bisect.ReadLog(filepath.Join(out, "bisect.jsonl"))
	if err != nil || len(es) != 3 || !es[0].BadEnd || es[0].Signature == nil {
		t.Errorf("log: %+v, %v", es, err)
	}
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
}
