package bisect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// gitTimeout bounds every git command.
const gitTimeout = 2 * time.Minute

// Commit describes one commit.
type Commit struct {
	Hash    string    `json:"hash"`
	Subject string    `json:"subject"`
	Author  string    `json:"author"`
	Date    time.Time `json:"date"`
}

// Short returns the first 12 digits of the hash.
func (c Commit) Short() string {
	if len(c.Hash) > 12 {
		return c.Hash[:12]
	}
	return c.Hash
}

// gitEnv is the environment for git: the caller's, without the variables
// that would point git at another repository (as they are set inside a
// hook or a `git bisect run`), and without prompts.
func gitEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_NAMESPACE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"GIT_TERMINAL_PROMPT=0", "GIT_OPTIONAL_LOCKS=0"}, extra...)...)
}

// GitError is a git command that failed.
type GitError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *GitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		return fmt.Sprintf("git %s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.Args, " "), e.Err, msg)
}

// Unwrap returns the cause.
func (e *GitError) Unwrap() error { return e.Err }

// git runs git in dir with hooks disabled and returns its stdout.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	full := append([]string{"-c", "core.hooksPath=/dev/null", "-C", dir}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = gitEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return nil, &GitError{Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

// resolve returns the full hash of the commit rev names in repo.
func resolve(ctx context.Context, repo, rev string) (string, error) {
	out, err := git(ctx, repo, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a commit in %s", ErrUsage, rev, repo)
	}
	h := strings.TrimSpace(string(out))
	if !isHash(h) {
		return "", fmt.Errorf("rev-parse %s: unexpected output %q", rev, h)
	}
	return h, nil
}

// isAncestor reports whether a is an ancestor of b (or b itself).
func isAncestor(ctx context.Context, repo, a, b string) (bool, error) {
	_, err := git(ctx, repo, "merge-base", "--is-ancestor", a, b)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil
	}
	return false, err
}

// describe returns the hash, subject, author and date of a commit.
func describe(ctx context.Context, repo, hash string) (Commit, error) {
	out, err := git(ctx, repo, "show", "-s", "--format=%H%x00%s%x00%an <%ae>%x00%aI", hash, "--")
	if err != nil {
		return Commit{}, err
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\x00")
	if len(f) != 4 {
		return Commit{}, fmt.Errorf("describe %s: unexpected output %q", hash, out)
	}
	c := Commit{Hash: f[0], Subject: f[1], Author: f[2]}
	if t, err := time.Parse(time.RFC3339, f[3]); err == nil {
		c.Date = t
	}
	return c, nil
}

// candidates returns the commits reachable from bad and from none of
// goods, with their bisection distances.
func candidates(ctx context.Context, repo, bad string, goods []string) ([]Candidate, error) {
	args := []string{"rev-list", "--bisect-all", bad}
	for _, g := range goods {
		args = append(args, "^"+g)
	}
	out, err := git(ctx, repo, append(args, "--")...)
	if err != nil {
		return nil, err
	}
	return ParseBisectAll(out)
}

// scratch is a temporary clone of the user's repository sharing its object
// store (`git clone --shared --no-checkout`): the user's repository gains
// no worktree, ref, hook run or bisect state, and removing the directory
// removes every trace.
type scratch struct {
	dir  string // temporary parent, removed by close
	tree string // the clone's work tree: $WORKTREE
	// dog removes dir, and kills the running build, if lockstep dies
	// without closing the scratch (SIGKILL).
	dog *watchdog
}

func newScratch(ctx context.Context, repo, parent string) (*scratch, error) {
	dir, err := os.MkdirTemp(parent, "lockstep-bisect-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	s := &scratch{dir: dir, tree: dir + "/worktree"}
	if s.dog, err = startWatchdog(dir); err != nil {
		s.close()
		return nil, err
	}
	if _, err := git(ctx, dir, "clone", "--quiet", "--shared", "--no-checkout", "--", repo, s.tree); err != nil {
		s.close()
		return nil, fmt.Errorf("scratch clone: %w", err)
	}
	return s, nil
}

// checkout makes the scratch work tree the commit's tree, detached.
func (s *scratch) checkout(ctx context.Context, hash string) error {
	if _, err := git(ctx, s.tree, "checkout", "--quiet", "--force", "--detach", hash, "--"); err != nil {
		return fmt.Errorf("checkout %s: %w", hash, err)
	}
	return nil
}

func (s *scratch) close() error {
	if s == nil || s.dir == "" {
		return nil
	}
	s.dog.close()
	return os.RemoveAll(s.dir)
}
