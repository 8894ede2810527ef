package lockstep

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/internal/localize"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// BenchmarkCheckpoint measures the two ways back to sync point k-1 for
// localisation (docs/checkpoints.md), on real QEMU under TCG:
//   - s/restart: relaunch a pair and replay sync points 0..k-1;
//   - s/savevm, s/loadvm: HMP savevm/loadvm on the scratch qcow2;
//   - s/snapsave, s/snapload: QMP snapshot-save/snapshot-load jobs;
//   - MiB/snapshot: the scratch qcow2 after one snapshot.
//
// Figures are per pair (both sides, concurrently for restart, one side
// after the other for the snapshots; the per-pair save is about 2x those).
func BenchmarkCheckpoint(b *testing.B) {
	cases := []struct {
		name, scenario, memory string
		k1                     int // the sync point to get back to
		linux                  bool
		arch                   string // a cross architecture's demo (issue 11)
	}{
		{"demo/64M", "demo-self.yaml", "64M", 3, false, ""},
		{"demo/512M", "demo-self.yaml", "512M", 3, false, ""},
		{"linux/start_kernel", "", "512M", 0, true, ""},
		{"linux/initcall", "", "512M", 1, true, ""},
		// The cross demos compare two builds that are alike up to checksum
		// (sync point 2): aarch64 virt, riscv64 virt, s390x s390-ccw-virtio.
		{"aarch64-demo/128M", "aarch64-demo.yaml", "128M", 1, false, "aarch64"},
		{"riscv64-demo/128M", "riscv64-demo.yaml", "128M", 1, false, "riscv64"},
		{"s390x-demo/128M", "s390x-demo.yaml", "128M", 1, false, "s390x"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var sc *scenario.Scenario
			switch {
			case c.linux:
				sc = linuxCheckpointScenario(b)
			case c.arch != "":
				qemutest.CrossGuest(b, c.arch, "demo-bad")
				var err error
				sc, err = scenario.Load(filepath.Join(qemutest.Root(b), "testdata", "scenarios", c.scenario))
				if err != nil {
					b.Fatal(err)
				}
			default:
				sc = ckptScenario(b, c.scenario)
			}
			for i := range sc.Guests {
				sc.Guests[i].Memory = c.memory
			}
			sc.Timeout = 15 * time.Minute
			r, ctx := startRun(b, sc)
			t0 := time.Now()
			for j := 0; j <= c.k1; j++ {
				if _, err := localize.Replay(ctx, r.eng, r.pair, j, [2]map[uint64]string{}); err != nil {
					b.Fatalf("run to sync point %d: %v", j+1, err)
				}
			}
			first := time.Since(t0)
			g := r.pair[0]
			if err := g.AttachScratch(ctx); err != nil {
				b.Fatal(err)
			}
			var restart, save, load, hsave, hload time.Duration
			n := 0
			for b.Loop() {
				t := time.Now()
				rw := &localize.Relaunch{Engine: r.eng, Launcher: r.launcher, Specs: [2]scenario.Guest(sc.Guests), Syms: r.syms}
				_, err := rw.At(ctx, c.k1)
				restart += time.Since(t)
				if cerr := rw.Close(ctx); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}

				t = time.Now()
				if err := snapshotJob(ctx, g.M, "snapshot-save", "bench"); err != nil {
					b.Fatal(err)
				}
				save += time.Since(t)
				t = time.Now()
				if err := snapshotJob(ctx, g.M, "snapshot-load", "bench"); err != nil {
					b.Fatal(err)
				}
				load += time.Since(t)
				if err := snapshotJob(ctx, g.M, "snapshot-delete", "bench"); err != nil {
					b.Fatal(err)
				}

				t = time.Now()
				if out, err := g.M.HMP(ctx, "savevm hmp"); err != nil || out != "" {
					b.Fatalf("savevm: %v %q", err, out)
				}
				hsave += time.Since(t)
				t = time.Now()
				if out, err := g.M.HMP(ctx, "loadvm hmp"); err != nil || out != "" {
					b.Fatalf("loadvm: %v %q", err, out)
				}
				hload += time.Since(t)
				if st, err := os.Stat(g.CheckpointFile()); err == nil {
					b.ReportMetric(float64(st.Size())/(1<<20), "MiB/snapshot")
				}
				if _, err := g.M.HMP(ctx, "delvm hmp"); err != nil {
					b.Fatal(err)
				}
				n++
			}
			// The gdbstub still answers and the guest is where it was.
			pc, err := g.PC(ctx)
			if err != nil {
				b.Fatalf("gdbstub after the restores: %v", err)
			}
			if want, _ := g.Resolve(sc.Sync[c.k1].Break); pc != want {
				b.Errorf("after the restores pc %#x, want %#x", pc, want)
			}
			f := float64(n)
			b.ReportMetric(first.Seconds(), "s/first-reach")
			b.ReportMetric(restart.Seconds()/f, "s/restart")
			b.ReportMetric(save.Seconds()/f, "s/snapsave")
			b.ReportMetric(load.Seconds()/f, "s/snapload")
			b.ReportMetric(hsave.Seconds()/f, "s/savevm")
			b.ReportMetric(hload.Seconds()/f, "s/loadvm")
		})
	}
}

// ckptJobSeq numbers the snapshot jobs of this process.
var ckptJobSeq = make(chan int, 1)

func init() { ckptJobSeq <- 0 }

func nextJobID() string {
	n := <-ckptJobSeq
	ckptJobSeq <- n + 1
	return fmt.Sprintf("lockstep-ckpt-%d", n)
}

// snapshotJob runs one of QMP's snapshot-save, snapshot-load or
// snapshot-delete jobs on the scratch node and waits for it to conclude,
// polling query-jobs, then dismisses it.
func snapshotJob(ctx context.Context, q guest.Machine, command, tag string) error {
	ctx, cancel := context.WithTimeout(ctx, guest.DefaultTimeouts().CheckpointJob)
	defer cancel()
	id := nextJobID()
	args := map[string]any{"job-id": id, "tag": tag, "devices": []string{guest.CheckpointNode}}
	if command != "snapshot-delete" {
		args["vmstate"] = guest.CheckpointNode
	}
	if err := q.QMP(ctx, command, args, nil); err != nil {
		return err
	}
	for {
		var raw json.RawMessage
		if err := q.QMP(ctx, "query-jobs", nil, &raw); err != nil {
			return err
		}
		st, err := parseJobs(raw, id)
		if err != nil {
			return fmt.Errorf("%s: %w", command, err)
		}
		if st.Status == "concluded" || st.Status == "null" {
			if st.Status == "concluded" {
				if err := q.QMP(ctx, "job-dismiss", map[string]string{"id": id}, nil); err != nil {
					return err
				}
			}
			if st.Error != "" {
				return fmt.Errorf("%s %s: %s", command, tag, st.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: %w", command, tag, ctx.Err())
		case <-time.After(snapshotJobPoll):
		}
	}
}

// jobStatus is one entry of query-jobs.
type jobStatus struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// errNoJob means query-jobs does not list the job.
var errNoJob = errors.New("job not listed")

// parseJobs finds job id in a query-jobs reply.
func parseJobs(raw []byte, id string) (jobStatus, error) {
	var jobs []jobStatus
	if err := json.Unmarshal(raw, &jobs); err != nil {
		return jobStatus{}, fmt.Errorf("query-jobs: %w", err)
	}
	for _, j := range jobs {
		if j.ID == id {
			if j.Status == "" {
				return j, fmt.Errorf("query-jobs: job %s has no status", id)
			}
			return j, nil
		}
	}
	return jobStatus{}, fmt.Errorf("query-jobs: %s: %w", id, errNoJob)
}

// snapshotJobPoll is how often snapshotJob polls query-jobs.
const snapshotJobPoll = 5 * time.Millisecond

// linuxCheckpointScenario loads testdata/linux/linux.yaml with the cached
// Debian kernels (docs/linux.md), or skips.
func linuxCheckpointScenario(b *testing.B) *scenario.Scenario {
	b.Helper()
	qemutest.Require(b, "x86_64", "tcg")
	cache := os.Getenv("LOCKSTEP_LINUX_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "lockstep", "linux")
	}
	f, err := os.Open(filepath.Join(cache, "env.sh"))
	if err != nil {
		b.Skipf("no cached Debian kernels (%v); run testdata/linux/fetch.sh", err)
	}
	defer f.Close()
	env := map[string]string{"LINUX_TIMEOUT": "900s", "LINUX_INITCALL_HIT": "20"}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if !strings.HasPrefix(v, "${") {
			env[k] = v
		}
	}
	for k, v := range env {
		b.Setenv(k, v)
	}
	s, err := scenario.Load(filepath.Join(qemutest.Root(b), "testdata", "linux", "linux.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}
