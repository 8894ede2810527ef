package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how much of a failed build's output a Step keeps.
const tailLines = 20

// build runs cfg.Build with sh -c in tree, in its own process group (killed
// whole on cancel or timeout), with $WORKTREE, $CANDIDATE and
// $CANDIDATE_SYMBOLS exported. dog, if not nil, is told the build's process
// group while it runs. It returns the tail of the output, and an error
// saying why the build failed.
func build(ctx context.Context, cfg Config, tree string, dog *watchdog) (string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.BuildTimeout,
		fmt.Errorf("build timed out after %v", cfg.BuildTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cfg.Build)
	cmd.Dir = tree
	var extra []string
	for k, v := range candidateEnv(tree, cfg, 0) {
		if k != EnvRun {
			extra = append(extra, k+"="+v)
		}
	}
	cmd.Env = gitEnv(extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	tail := &tailWriter{max: tailLines}
	var w io.Writer = tail
	if cfg.BuildOutput != nil {
		w = io.MultiWriter(tail, cfg.BuildOutput)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Start()
	if err == nil {
		dog.building(cmd.Process.Pid)
		err = cmd.Wait()
	}
	// Whatever the shell left behind in its group goes with it.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		dog.building(0)
	}
	if err != nil {
		if ctx.Err() != nil {
			return tail.String(), fmt.Errorf("build: %w", context.Cause(ctx))
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return tail.String(), fmt.Errorf("build failed: %v", ee.ProcessState)
		}
		return tail.String(), fmt.Errorf("build: %w", err)
	}
	return "", nil
}

// tailWriter keeps the last max lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  strings.Builder
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range string(p) {
		if c != '\n' {
			if t.part.Len() < 4096 {
				t.part.WriteRune(c)
			}
			continue
		}
		t.lines = append(t.lines, t.part.String())
		t.part.Reset()
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.part.Len() > 0 {
		lines = append(lines[:len(lines):len(lines)], t.part.String())
	}
	return strings.Join(lines, "\n")
}
