package lockstep

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
				dir, log := sameAnswerAsRestart(t, sc)
				// The VM state went to each side's scratch qcow2 on this
				// machine type: qemu-img lists the snapshots.
				for _, tag := range []string{"a", "b"} {
					img := filepath.Join(dir, tag+"-ckpt.qcow2")
					out, err := exec.Command("qemu-img", "snapshot", "-l", "-U", img).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "lockstep-sync") {
						t.Errorf("scratch qcow2 of %s holds no lockstep snapshot: %v\n%s", tag, err, out)
					}
				}
				t.Logf("checkpoint log:\n%s", grepLines(log, "checkpoint"))
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
