package lockstep

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/engine"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// The benchmarks of issue 4, all on the deep guests (qemu64 vs max, one
// binary). `make bench` runs them in one go; docs/performance.md has the
// figures.

// deepScenario loads testdata/scenarios/deep.yaml with both sides running
// the named deep guest, and a timeout fit for a million instructions.
func deepScenario(b *testing.B, guest string) *scenario.Scenario {
	b.Helper()
	qemutest.Require(b, "x86_64", "tcg")
	elf := qemutest.Guest(b, guest)
	sc, err := scenario.Load(filepath.Join(qemutest.Root(b), "testdata", "scenarios", "deep.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range sc.Guests {
		sc.Guests[i].Kernel, sc.Guests[i].Symbols = elf, elf
	}
	sc.Timeout = 15 * time.Minute
	return sc
}

// benchRun launches both guests of sc and drives them to the first sync
// point (deep_start), where stepping starts.
func benchRun(b *testing.B, sc *scenario.Scenario) (*run, context.Context) {
	b.Helper()
	r, ctx := startRun(b, sc)
	if _, err := localize.Replay(ctx, r.eng, r.pair, 0, [2]map[uint64]string{}); err != nil {
		b.Fatalf("run to %s: %v (notes %q)", sc.Sync[0].Break, err, r.res.Notes)
	}
	return r, ctx
}

// rawSteps single-steps side s n times with plain 's' round trips and
// returns the rate.
func rawSteps(b *testing.B, ctx context.Context, g *guest.Guest, n int) float64 {
	b.Helper()
	t0 := time.Now()
	for range n {
		if _, err := g.T.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(t0).Seconds()
}

// rawStepsRegs is rawSteps plus the register read lockstepSteps makes
// after every step, on one side.
func rawStepsRegs(b *testing.B, ctx context.Context, g *guest.Guest, names []string, n int) float64 {
	b.Helper()
	t0 := time.Now()
	for range n {
		if _, err := g.T.Step(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := g.T.ReadRegisterSet(ctx, names...); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(t0).Seconds()
}

// lockstepRate runs lockstepSteps for n instructions in total from
// deep_start and returns the rate (instructions per second on each side),
// timing the stepping only, and how many times lockstepSteps reported a
// divergence. deep-1e5 runs the same on both sides for 100,000
// instructions, so each is false: QEMU 7.2 sometimes answers a step
// without executing the instruction (see docs/performance.md). The pair is
// then relaunched and stepping goes on until n.
func lockstepRate(b *testing.B, sc *scenario.Scenario, n int) (rate float64, falseDivs int) {
	b.Helper()
	spec := scenario.CompareSpec{Registers: []string{"general"}, Ignore: []string{"eflags.RF"}}
	var took time.Duration
	done := 0
	for done < n && falseDivs < 20 {
		r, ctx := benchRun(b, sc)
		t0 := time.Now()
		st, err := r.eng.LockstepSteps(ctx, r.pair, 1, spec, n-done, nil)
		took += time.Since(t0)
		closeRun(r)
		if err != nil {
			b.Fatal(err)
		}
		done += st.N
		if st.Diverged {
			falseDivs++
		}
	}
	return float64(done) / took.Seconds(), falseDivs
}

// rawCount is how many raw steps the ratio benchmarks take first.
const rawCount = 2000

// BenchmarkRawStep measures the single-guest gdbstub step round trip.
func BenchmarkRawStep(b *testing.B) {
	r, ctx := benchRun(b, deepScenario(b, "deep-1e5"))
	g := r.pair[0]
	b.ResetTimer()
	t0 := time.Now()
	n := 0
	for b.Loop() {
		if _, err := g.T.Step(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "steps/s")
}

// BenchmarkLockstepStep measures lockstepSteps on two guests (step both
// concurrently, read and compare the general registers), with the raw
// single-guest rate measured first on the same guests: ratio is
// lockstep/raw ('s' only), ratio_regs is lockstep/(raw 's' + register
// read), the work lockstepSteps does per side.
func BenchmarkLockstepStep(b *testing.B) {
	sc := deepScenario(b, "deep-1e5")
	raw, rawRegs := rawRates(b, sc)
	b.ResetTimer()
	rate, falseDivs := lockstepRate(b, sc, b.N)
	b.ReportMetric(float64(falseDivs), "false_divergences")
	b.ReportMetric(raw, "raw_steps/s")
	b.ReportMetric(rawRegs, "raw_steps+regs/s")
	b.ReportMetric(rate, "steps/s")
	b.ReportMetric(rate/raw, "ratio")
	b.ReportMetric(rate/rawRegs, "ratio_regs")
}

// rawRates measures the raw single-guest step rate, without and with the
// register read, on a pair of its own: raw steps on one side only would
// leave the two sides apart.
func rawRates(b *testing.B, sc *scenario.Scenario) (raw, rawRegs float64) {
	b.Helper()
	r, ctx := benchRun(b, sc)
	defer closeRun(r)
	g := r.pair[0]
	names, err := engine.RegNames(g.T.Layout(), scenario.CompareSpec{Registers: []string{"general", g.Arch.PC}})
	if err != nil {
		b.Fatal(err)
	}
	raw = rawSteps(b, ctx, g, rawCount)
	rawRegs = rawStepsRegs(b, ctx, g, names, rawCount)
	return raw, rawRegs
}

// closeRun tears down the guests of a benchRun early.
func closeRun(r *run) {
	tctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r.pair.Close(tctx)
}

// BenchmarkTraceCompare measures the instructions the live trace engine
// compares per second while localising deep-1e5 (about 100,000
// instructions from deep_start to the cpuid), against the gdbstub
// lockstep rate measured first on the same guests.
func BenchmarkTraceCompare(b *testing.B) {
	var lockRate float64
	{
		lockRate, _ = lockstepRate(b, deepScenario(b, "deep-1e5"), rawCount)
	}
	rate := traceRate(b, deepScenario(b, "deep-1e5"), 90_000)
	b.ReportMetric(rate, "insns/s")
	b.ReportMetric(lockRate, "lockstep_steps/s")
	b.ReportMetric(rate/lockRate, "ratio")
}

// localiseTook matches the run's log line with the localisation time.
var localiseTook = regexp.MustCompile(`localisation of sync point \d+ took ([0-9.]+[a-zµ]+)`)

// BenchmarkLocalize measures the time to localise a divergence N
// instructions after the last matching sync point (deep-1eN, qemu64 vs
// max), with the trace engine and, for N=1e3, with gdbstub stepping.
// s/localise covers the fresh pair, the replay, the search and the
// capture; s/run is the whole run.
func BenchmarkLocalize(b *testing.B) {
	cases := []struct {
		name, guest string
		trace       bool
		minStep     int
		method      string // localize.method; "" is the scenario's
	}{
		{"N=1e3/trace", "deep-1e3", true, 990, ""},
		{"N=1e3/gdbstub", "deep-1e3", false, 990, ""},
		{"N=1e5/trace", "deep-1e5", true, 99_000, ""},
		{"N=1e6/trace", "deep-1e6", true, 990_000, ""},
		// Record/replay bisection (issue 10). The trace engine beyond
		// 10^6 takes minutes to hours (docs/performance.md extrapolates).
		{"N=1e5/replay", "deep-1e5", true, 99_000, scenario.MethodReplay},
		{"N=1e6/replay", "deep-1e6", true, 990_000, scenario.MethodReplay},
		{"N=1e7/replay", "deep-1e7", true, 9_900_000, scenario.MethodReplay},
		{"N=1e8/replay", "deep-1e8", true, 99_000_000, scenario.MethodReplay},
		{"N=1e9/replay", "deep-1e9", true, 990_000_000, scenario.MethodReplay},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if c.guest == "deep-1e9" && os.Getenv("LOCKSTEP_REPLAY_DEEP") == "" {
				b.Skip("10^9 instructions deep: set LOCKSTEP_REPLAY_DEEP=1 (make bench and make e2e-replay do)")
			}
			sc := deepScenario(b, c.guest)
			if c.method != "" {
				sc.Localize.Method = c.method
			}
			var logBuf bytes.Buffer
			var total, run time.Duration
			n := 0
			for b.Loop() {
				logBuf.Reset()
				t0 := time.Now()
				res, err := Run(context.Background(), sc, Options{NoTraceEngine: !c.trace, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
				run += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				d := firstInstruction(res)
				if d == nil || d.Step < c.minStep || d.Step > c.minStep*11/10 {
					b.Fatalf("localised %+v (notes %q)", d, res.Notes)
				}
				m := localiseTook.FindSubmatch(logBuf.Bytes())
				if m == nil {
					b.Fatalf("no localisation time in the log:\n%s", logBuf.String())
				}
				took, err := time.ParseDuration(string(m[1]))
				if err != nil {
					b.Fatal(err)
				}
				total += took
				n++
			}
			b.ReportMetric(total.Seconds()/float64(n), "s/localise")
			b.ReportMetric(run.Seconds()/float64(n), "s/run")
		})
	}
}

func firstInstruction(res *Result) *compare.Divergence {
	for i := range res.Divergences {
		if res.Divergences[i].Kind == compare.KindInstruction {
			return &res.Divergences[i]
		}
	}
	return nil
}

// BenchmarkMemoryDiff reads 1 MiB of one guest's memory (the kernel image
// at 1 MiB) through 'm' packets and through QMP pmemsave.
func BenchmarkMemoryDiff(b *testing.B) {
	r, ctx := benchRun(b, deepScenario(b, "deep-1e3"))
	g := r.pair[0]
	const addr, size = 0x100000, 1 << 20
	want, err := g.BulkRead(ctx, scenario.SpacePhysical, addr, size)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		read func() ([]byte, error)
	}{
		{"rsp-m", func() ([]byte, error) { return g.T.ReadMemory(ctx, addr, size) }},
		{"pmemsave", func() ([]byte, error) { return g.BulkRead(ctx, scenario.SpacePhysical, addr, size) }},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(size)
			t0 := time.Now()
			n := 0
			for b.Loop() {
				got, err := m.read()
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					b.Fatalf("%s read differs from pmemsave", m.name)
				}
				n++
			}
			b.ReportMetric(float64(n*size)/(1<<20)/time.Since(t0).Seconds(), "MiB/s")
		})
	}
}
