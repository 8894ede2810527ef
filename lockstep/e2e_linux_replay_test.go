//go:build e2e_linux

package lockstep_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// blake2sGlueInit is the address of arch/x86/crypto/blake2s-glue.c's
// blake2s_mod_init by kernel ABI (lib/crypto/blake2s.c has a function of
// the same name); LINUX_REPLAY_BREAK overrides it.
var blake2sGlueInit = map[string]string{"6.1.0-47": "0xffffffff830701d9"}

// TestLinuxReplay runs testdata/linux/linux-replay.yaml: one Debian kernel
// under TCG, -cpu qemu64 against qemu64,+ssse3, from the first initcall to
// the return of the initcall that tests SSSE3, localised by replay
// bisection (docs/linux.md). It checks that replay ran without falling
// back, over a window of at least 10^7 instructions, and named one
// instruction at the same instruction count on both sides.
func TestLinuxReplay(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	root := qemutest.Root(t)
	linuxEnv(t, root)
	if os.Getenv("LINUX_REPLAY_BREAK") == "" {
		addr, ok := blake2sGlueInit[os.Getenv("LINUX_A_VERSION")]
		if !ok {
			t.Skipf("no blake2s_mod_init address known for %s: set LINUX_REPLAY_BREAK (docs/linux.md)", os.Getenv("LINUX_A_VERSION"))
		}
		t.Setenv("LINUX_REPLAY_BREAK", addr)
	}
	if os.Getenv("LINUX_REPLAY_FROM") == "" {
		t.Setenv("LINUX_REPLAY_FROM", "1")
	}
	sc, err := scenario.Load(filepath.Join(root, "testdata", "linux", "linux-replay.yaml"))
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
	t.Logf("lockstep.Run: %s, outcome %s", time.Since(start).Round(time.Millisecond), res.Outcome)
	if res.Outcome != lockstep.OutcomeDiverged || len(res.Syncs) != 2 {
		t.Fatalf("outcome %s with %d sync points, want diverged at sync point 2; divergences %v", res.Outcome, len(res.Syncs), summaries(res))
	}
	if s := res.Syncs[0]; s.Status != lockstep.SyncMatch {
		t.Fatalf("sync point 1 %s, want match (replay bisects from a matching point); divergences %v", s.Status, summaries(res))
	}
	l := res.Syncs[1].Localization
	if l == nil || l.Method != scenario.MethodReplay || l.Fallback != "" {
		t.Fatalf("sync point 2 localisation %+v, want replay without fallback; notes %v", l, res.Notes)
	}
	t.Logf("replay: depth %d, %d passes, %d probes, recording %s, replay %s, icount %v",
		l.Depth, l.Passes, l.Probes, l.Record.Round(time.Millisecond), l.Replay.Round(time.Millisecond), l.ICount)
	if l.Depth < 10_000_000 {
		t.Errorf("depth %d instructions, want a window of at least 10^7", l.Depth)
	}
	if l.ICount[0] == 0 || l.ICount[0] != l.ICount[1] {
		t.Errorf("instruction counts at the localised instruction %v, want equal and non-zero (one binary)", l.ICount)
	}
	var inst *compare.Divergence
	for i, d := range res.Divergences {
		if d.Kind == compare.KindInstruction && d.Sync == 1 {
			inst = &res.Divergences[i]
		}
	}
	if inst == nil {
		t.Fatalf("no instruction divergence at sync point 2; divergences %v", summaries(res))
	}
	t.Logf("localised: %s", inst.Summary)
	if inst.Step <= 0 || uint64(inst.Step) > l.Depth {
		t.Errorf("step %d, want within the window of %d instructions", inst.Step, l.Depth)
	}
	// The sides differ in one CPUID bit only, and with a fixed RTC and
	// icount sleep=off nothing else: the first register difference after
	// a matching point must come from reading the CPU's feature words
	// (6.1.0-47: print_cpu_modalias testing each bit of
	// boot_cpu_data.x86_capability with bt).
	if !strings.Contains(inst.Summary, "boot_cpu_data") {
		t.Errorf("localised instruction %q does not read boot_cpu_data, where the CPU features are kept", inst.Summary)
	}
}
