//go:build e2e_linux

package lockstep_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// linuxCache returns the directory testdata/linux/fetch.sh fills.
func linuxCache(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LOCKSTEP_LINUX_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no LOCKSTEP_LINUX_CACHE and no home directory: %v", err)
	}
	return filepath.Join(home, ".cache", "lockstep", "linux")
}

// linuxEnv makes sure the kernels are cached (running fetch.sh when
// LOCKSTEP_LINUX_FETCH=1, skipping otherwise) and sets the variables of
// $CACHE/env.sh for the test.
func linuxEnv(t *testing.T, root string) {
	t.Helper()
	cache := linuxCache(t)
	envFile := filepath.Join(cache, "env.sh")
	if _, err := os.Stat(envFile); err != nil {
		if os.Getenv("LOCKSTEP_LINUX_FETCH") != "1" {
			t.Skipf("no Debian kernels cached in %s (%v): run testdata/linux/fetch.sh or set LOCKSTEP_LINUX_FETCH=1", cache, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "testdata", "linux", "fetch.sh"))
		cmd.Env = append(os.Environ(), "LOCKSTEP_LINUX_CACHE="+cache)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fetch.sh: %v\n%s", err, out)
		}
	}
	f, err := os.Open(envFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok || strings.HasPrefix(k, "#") || strings.Contains(v, "$") {
			continue // comments and the ${VAR:-default} lines
		}
		t.Setenv(k, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", envFile, err)
	}
	for k, v := range map[string]string{"LINUX_TIMEOUT": "900s", "LINUX_INITCALL_HIT": "20"} {
		if os.Getenv(k) == "" {
			t.Setenv(k, v)
		}
	}
}

// TestLinuxE2E runs testdata/linux/linux.yaml: two Debian cloud kernels
// under TCG. It checks the differences the two builds really have: the
// banner text and the initcalls' traced call paths.
func TestLinuxE2E(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	root := qemutest.Root(t)
	linuxEnv(t, root)

	for _, side := range []string{"LINUX_A_VMLINUX", "LINUX_B_VMLINUX"} {
		start := time.Now()
		tab, err := symbols.Load(os.Getenv(side))
		if err != nil {
			t.Fatalf("%s: %v", side, err)
		}
		t.Logf("symbols.Load %s: %d symbols in %s", os.Getenv(side), tab.Len(), time.Since(start).Round(time.Millisecond))
	}

	sc, err := scenario.Load(filepath.Join(root, "testdata", "linux", "linux.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := lockstep.Run(t.Context(), sc, lockstep.Options{})
	if live := qemu.Live(); len(live) > 0 {
		t.Errorf("QEMU processes left running: %v", live)
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("lockstep.Run: %s, outcome %s, %d divergences", time.Since(start).Round(time.Millisecond), res.Outcome, len(res.Divergences))

	for i, s := range res.Syncs {
		if s.Reached != [2]bool{true, true} {
			t.Errorf("sync %d (%s): reached %v, want both", i, s.Break, s.Reached)
		}
	}
	if res.Outcome != lockstep.OutcomeDiverged || !res.Passed {
		t.Errorf("outcome %s passed %v, want diverged and passed", res.Outcome, res.Passed)
	}

	// The banner names each kernel's ABI, e.g. "Linux version 6.1.0-47-cloud-amd64".
	banner := false
	for _, d := range res.Divergences {
		if d.Kind != compare.KindMemory || d.Sync != 0 || d.Memory == nil || d.Memory.Name != "linux_banner" {
			continue
		}
		banner = true
		var a, b strings.Builder
		for _, row := range d.Memory.Rows {
			a.WriteString(row.A)
			b.WriteString(row.B)
		}
		for i, v := range []string{os.Getenv("LINUX_A_VERSION"), os.Getenv("LINUX_B_VERSION")} {
			abi := hexOf(strings.TrimPrefix(v, "6.1.0")) // e.g. "-47"
			got := []string{a.String(), b.String()}[i]
			if !strings.Contains(got, abi) {
				t.Errorf("linux_banner rows of side %d do not contain %q (%s)", i, v, abi)
			}
		}
		if d.Memory.DiffBytes == 0 {
			t.Errorf("linux_banner divergence with 0 differing bytes")
		}
	}
	if !banner {
		t.Errorf("no linux_banner memory divergence at start_kernel; divergences: %v", summaries(res))
	}

	// 6.1.0-56 calls the out-of-line __wait_for_common where 6.1.0-47
	// inlines it into wait_for_completion*: the initcalls' call paths differ.
	callpath := false
	for _, d := range res.Divergences {
		if d.Kind == compare.KindCallPath && d.Sync == 1 && d.CallPath != nil {
			callpath = true
			t.Logf("initcall call path (%s): %s", d.CallPath.Source, d.Summary)
		}
	}
	if !callpath {
		t.Errorf("no call-path divergence at do_one_initcall; divergences: %v", summaries(res))
	}

	// Linux awareness: every reached sync point names the task each side
	// ran (TestLinuxE2ETaskGDB checks the name against gdb's).
	for _, sy := range res.Syncs {
		for i, st := range sy.State {
			if st.Task == nil || st.Task.Comm == "" || st.Task.Context == "" {
				t.Errorf("sync %d side %d: task %+v, want comm, pid and context", sy.Index+1, i, st.Task)
				continue
			}
			t.Logf("sync %d side %d: %s", sy.Index+1, i, st.Task)
		}
	}
}

// hexOf returns s as lowercase hex, as HexRow holds bytes.
func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, digits[s[i]>>4], digits[s[i]&0xf])
	}
	return string(out)
}

func summaries(res *lockstep.Result) []string {
	var out []string
	for _, d := range res.Divergences {
		out = append(out, string(d.Kind)+": "+d.Summary)
	}
	return out
}
