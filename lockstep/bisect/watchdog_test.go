package bisect

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envWatchdogHelper makes the test binary act as a lockstep that is in the
// middle of a build in a scratch directory, until it is killed.
const envWatchdogHelper = "LOCKSTEP_TEST_WATCHDOG_DIR"

// TestWatchdogHelper is the killed process of TestKilledDuringBuild.
func TestWatchdogHelper(t *testing.T) {
	dir := os.Getenv(envWatchdogHelper)
	if dir == "" {
		t.Skip("helper process for TestKilledDuringBuild")
	}
	dog, err := startWatchdog(dir)
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "worktree")
	// The build leaves a grandchild (like make's compilers) and reports its pid.
	cfg := Config{Build: `sleep 300 & echo $! > "$WORKTREE/build.pid"; wait`, BuildTimeout: time.Minute, Artifact: "k"}
	build(context.Background(), cfg, tree, dog)
	t.Fatal("build returned before the helper was killed")
}

// TestKilledDuringBuild kills (SIGKILL) a lockstep in the middle of a
// build: the build's whole process group must die and the scratch
// directory go, though lockstep ran no cleanup.
func TestKilledDuringBuild(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "worktree"), 0o755); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestWatchdogHelper$", "-test.count=1")
	helper.Env = append(os.Environ(), envWatchdogHelper+"="+dir)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	pidFile := filepath.Join(dir, "worktree", "build.pid")
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the helper's build never started")
		}
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Give the build a moment to be announced to the watchdog.
	time.Sleep(200 * time.Millisecond)
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		errKill := syscall.Kill(pid, 0)
		_, errStat := os.Stat(dir)
		if errKill != nil && os.IsNotExist(errStat) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("after SIGKILL of lockstep: build grandchild %d alive %v, scratch left %v", pid, errKill == nil, errStat == nil)
		}
	}
}

// TestWatchdogClose checks that a closed watchdog does nothing.
func TestWatchdogClose(t *testing.T) {
	dir := t.TempDir()
	dog, err := startWatchdog(dir)
	if err != nil {
		t.Fatal(err)
	}
	dog.building(2147483646) // no such process group
	dog.building(0)
	dog.close()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("closed watchdog removed %s: %v", dir, err)
	}
}
