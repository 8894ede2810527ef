package lockstep

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// BenchmarkTraceArch measures the instructions the live trace engine
// compares per second while localising deep-1e5 (about 100,000
// instructions from deep_start to the instruction reading the CPU model)
// on x86_64 (deep.yaml: qemu64 vs max), aarch64 (cortex-a57 vs max) and
// riscv64 (rv64 vs rv64,c=false), s390x (qemu vs z900), and each cross
// architecture's rate as a
// ratio to the x86_64 one measured in the same run. The rate covers the
// comparison only (TraceStats.Compare), not the launch of the traced pair.
func BenchmarkTraceArch(b *testing.B) {
	var x86Rate float64
	for _, arch := range []string{"x86_64", "aarch64", "riscv64", "s390x"} {
		b.Run(arch, func(b *testing.B) {
			var sc *scenario.Scenario
			if arch == "x86_64" {
				sc = deepScenario(b, "deep-1e5")
			} else {
				elf := qemutest.CrossGuest(b, arch, "deep-1e5")
				var err error
				sc, err = scenario.Load(filepath.Join(qemutest.Root(b), "testdata", "scenarios", arch+"-deep.yaml"))
				if err != nil {
					b.Fatal(err)
				}
				for i := range sc.Guests {
					sc.Guests[i].Kernel, sc.Guests[i].Symbols = elf, elf
				}
				sc.Timeout = 15 * time.Minute
			}
			rate := traceRate(b, sc, 85_000) // s390x's loop: 89,478
			b.ReportMetric(rate, "insns/s")
			if arch == "x86_64" {
				x86Rate = rate
			} else if x86Rate > 0 {
				b.ReportMetric(rate/x86Rate, "ratio_to_x86")
			}
		})
	}
}

// traceRate runs sc b.N times, each localising a divergence at least
// minStep instructions in with the trace engine, and returns the
// instructions the engine compared per second of comparison.
func traceRate(b *testing.B, sc *scenario.Scenario, minStep int) float64 {
	b.Helper()
	var mu sync.Mutex
	var compared uint64
	var dur time.Duration
	observe := func(st engine.TraceStats) {
		mu.Lock()
		compared += st.Compared
		dur += st.Compare
		mu.Unlock()
	}
	for b.Loop() {
		res, err := Run(context.Background(), sc, Options{traceObserver: observe})
		if err != nil || res.Outcome != OutcomeDiverged {
			b.Fatalf("run: %v (outcome %s)", err, res.Outcome)
		}
		if d := firstInstruction(res); d == nil || d.Step < minStep {
			b.Fatalf("localised %+v, want at least %d instructions in (notes %q)", d, minStep, res.Notes)
		}
	}
	if compared == 0 {
		b.Fatal("the trace engine compared nothing")
	}
	return float64(compared) / dur.Seconds()
}
