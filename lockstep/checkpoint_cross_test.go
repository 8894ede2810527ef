package lockstep

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestCrossCheckpointSameAnswerAsRestart is TestCheckpointSameAnswerAsRestart
// on aarch64 virt, riscv64 virt and s390x s390-ccw-virtio (issue 11): the
// scratch qcow2 attaches on each machine, savevm/loadvm work, and the
// localisation from a restored snapshot equals the one from a restart.
func TestCrossCheckpointSameAnswerAsRestart(t *testing.T) {
	for _, arch := range []string{"aarch64", "riscv64", "s390x"} {
		for _, name := range []string{"deep", "demo"} {
			t.Run(arch+"/"+name, func(t *testing.T) {
				qemutest.CrossGuest(t, arch, "deep-1e3")
				if _, err := exec.LookPath("qemu-img"); err != nil {
					t.Skipf("qemu-img (Debian package qemu-utils) not installed: no scratch qcow2 for snapshots: %v", err)
				}
				sc, err := scenario.Load(filepath.Join(qemutest.Root(t), "testdata", "scenarios", arch+"-"+name+".yaml"))
				if err != nil {
					t.Fatal(err)
				}
				sc.Localize.Checkpoint = scenario.CheckpointRestart
				want, err := Run(context.Background(), sc, Options{})
				if err != nil {
					t.Fatal(err)
				}
				sc.Localize.Checkpoint = scenario.CheckpointSnapshot
				got, dir, log := runWithCheckpoints(t, sc)
				if !strings.Contains(log, "checkpoint: restored sync point") {
					t.Errorf("localisation did not restore a checkpoint; log:\n%s\nnotes %q", log, got.Notes)
				}
				wi, gi := instructionDivs(want), instructionDivs(got)
				if len(wi) == 0 {
					t.Fatalf("restart found no instruction divergence (notes %q)", want.Notes)
				}
				if len(wi) != len(gi) {
					t.Fatalf("snapshot found %d instruction divergences, restart %d\nsnapshot: %+v\nrestart: %+v", len(gi), len(wi), gi, wi)
				}
				for i := range wi {
					if wi[i].Summary != gi[i].Summary || !reflect.DeepEqual(wi[i].PC, gi[i].PC) || wi[i].Step != gi[i].Step || wi[i].Sync != gi[i].Sync {
						t.Errorf("divergence %d:\nsnapshot %q at %v step %d\nrestart  %q at %v step %d", i,
							gi[i].Summary, gi[i].PC, gi[i].Step, wi[i].Summary, wi[i].PC, wi[i].Step)
					}
				}
				if len(want.Divergences) != len(got.Divergences) || want.Outcome != got.Outcome {
					t.Errorf("snapshot run: %d divergences, %s; restart run: %d, %s", len(got.Divergences), got.Outcome,
						len(want.Divergences), want.Outcome)
				}
				for i := range want.Syncs {
					if want.Syncs[i].Status != got.Syncs[i].Status {
						t.Errorf("sync point %d: snapshot %s, restart %s", i+1, got.Syncs[i].Status, want.Syncs[i].Status)
					}
				}
				for _, n := range got.Notes {
					if strings.Contains(n, "checkpoint") {
						t.Errorf("note: %s", n)
					}
				}
				// The VM state went to each side's scratch qcow2, on this
				// machine type: qemu-img lists the snapshots.
				for _, tag := range []string{"a", "b"} {
					img := filepath.Join(dir, tag+"-ckpt.qcow2")
					out, err := exec.Command("qemu-img", "snapshot", "-l", "-U", img).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "lockstep-sync") {
						t.Errorf("scratch qcow2 of %s holds no lockstep snapshot: %v\n%s", tag, err, out)
					}
				}
				t.Logf("checkpoint log:\n%s", grepLines(log, "checkpoint"))
				if live := qemu.Live(); len(live) > 0 {
					t.Errorf("QEMU left running: %v", live)
				}
			})
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
