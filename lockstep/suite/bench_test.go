package suite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/reports"
)

// sampler polls the QEMUs under a run directory and keeps the peak count
// and the peak of their summed resident memory.
type sampler struct {
	mu        sync.Mutex
	peakProcs int
	peakRSS   int64 // bytes
	stop      chan struct{}
	done      chan struct{}
}

func sample(runDir string, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			procs := qemutest.QEMUsUnder(runDir)
			var rss int64
			for _, p := range procs {
				rss += vmRSS(p.Pid)
			}
			s.mu.Lock()
			s.peakProcs = max(s.peakProcs, len(procs))
			s.peakRSS = max(s.peakRSS, rss)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) end() (procs int, rss int64) {
	close(s.stop)
	<-s.done
	return s.peakProcs, s.peakRSS
}

// vmRSS returns a process's resident memory in bytes (0 when gone).
func vmRSS(pid int) int64 {
	return procStatus(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmRSS:")
}

// procStatus returns the field key ("VmRSS:") of a /proc status file,
// in bytes; 0 when the file or the field is missing.
func procStatus(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkSuiteJobs runs the example suite (testdata/suites/guests.yaml,
// its 21 scenarios that are not optional, on real QEMU under TCG) with -j 1 and then -j 2, and
// reports each one's wall time, the speed-up of -j 2 over -j 1, the peak
// number of QEMUs and the peak of their summed resident memory
// (docs/performance.md). Every scenario must reach a verdict, the same
// with both -j.
func BenchmarkSuiteJobs(b *testing.B) {
	qemutest.Require(b, "x86_64", "tcg")
	p, err := Collect([]string{filepath.Join(qemutest.Root(b), "testdata", "suites", "guests.yaml")})
	if err != nil {
		b.Fatal(err)
	}
	// The optional scenarios (KVM, QEMU 10.0) depend on the machine: the
	// figures are for the others.
	p.Entries = slices.DeleteFunc(p.Entries, func(e Entry) bool { return e.Optional })
	if len(p.Entries) < 20 {
		b.Fatalf("the example suite has %d scenarios, want at least 20", len(p.Entries))
	}
	for _, e := range p.Entries {
		for _, g := range e.Scenario.Guests {
			if _, err := os.Stat(g.Kernel); err != nil {
				b.Skipf("%s: guest not built (make -C testdata/guests): %v", e.Name, err)
			}
		}
	}
	type figures struct {
		wall    time.Duration
		procs   int
		rss     int64
		verdict map[string]string
	}
	run := func(jobs int) figures {
		runDir := qemutest.ShortDir(b)
		s := sample(runDir, 50*time.Millisecond)
		start := time.Now()
		x, err := Run(context.Background(), p, p.Names(), Options{Jobs: jobs, OutDir: b.TempDir(),
			Formats: []reports.Format{reports.FormatJSON}, Run: lockstep.Options{RunDir: runDir}})
		wall := time.Since(start)
		procs, rss := s.end()
		qemutest.Release(runDir)
		if err != nil {
			b.Fatal(err)
		}
		f := figures{wall: wall, procs: procs, rss: rss, verdict: map[string]string{}}
		for _, r := range x.Results {
			if r.Status == StatusInfra || r.Status == StatusMissing {
				b.Fatalf("-j %d: %s: %s: %s", jobs, r.Name, r.Status, r.Error)
			}
			f.verdict[r.Name] = fmt.Sprintf("%s %s %s", r.Status, r.Outcome, r.First)
		}
		return f
	}
	for range b.N {
		j1 := run(1)
		j2 := run(2)
		for n, v := range j1.verdict {
			if j2.verdict[n] != v {
				b.Errorf("%s: -j 1 %q, -j 2 %q", n, v, j2.verdict[n])
			}
		}
		n := float64(len(p.Entries))
		b.ReportMetric(float64(len(p.Entries)), "scenarios")
		b.ReportMetric(j1.wall.Seconds(), "s-j1")
		b.ReportMetric(j2.wall.Seconds(), "s-j2")
		b.ReportMetric(n/j1.wall.Minutes(), "scenarios/min-j1")
		b.ReportMetric(n/j2.wall.Minutes(), "scenarios/min-j2")
		b.ReportMetric(j1.wall.Seconds()/j2.wall.Seconds(), "speedup-j2/j1")
		b.ReportMetric(float64(j1.procs), "peak-qemus-j1")
		b.ReportMetric(float64(j2.procs), "peak-qemus-j2")
		b.ReportMetric(float64(j1.rss)/(1<<20), "peak-qemu-rss-MiB-j1")
		b.ReportMetric(float64(j2.rss)/(1<<20), "peak-qemu-rss-MiB-j2")
	}
	b.ReportMetric(float64(vmHWM())/(1<<20), "lockstep-hwm-MiB")
	b.ReportMetric(0, "ns/op")
}

// vmHWM returns this process's peak resident memory in bytes: the
// suite's own cost (symbol tables, reports), apart from the QEMUs.
func vmHWM() int64 { return procStatus("/proc/self/status", "VmHWM:") }
