package bisect

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/lockstep-dev/lockstep/scenario"
)

// The environment variables a bisection sets for the build and for the
// scenario's ${VAR} expansion.
const (
	// EnvWorktree is the scratch work tree the candidate is built in.
	EnvWorktree = "WORKTREE"
	// EnvCandidate is the absolute path of the candidate kernel.
	EnvCandidate = "CANDIDATE"
	// EnvCandidateSymbols is the absolute path of the candidate's symbols
	// (the kernel unless --symbols names another file).
	EnvCandidateSymbols = "CANDIDATE_SYMBOLS"
	// EnvRun is the 1-based number of the run of this commit (--runs), for
	// scenarios that feed a per-run seed to a guest.
	EnvRun = "LOCKSTEP_RUN"
)

// candidateEnv is the environment of run i in the work tree.
func candidateEnv(tree string, cfg Config, run int) map[string]string {
	kernel := filepath.Join(tree, cfg.Artifact)
	syms := kernel
	if cfg.Symbols != "" {
		syms = filepath.Join(tree, cfg.Symbols)
	}
	return map[string]string{EnvWorktree: tree, EnvCandidate: kernel, EnvCandidateSymbols: syms, EnvRun: strconv.Itoa(run)}
}

// envMu serialises LoadScenario: scenario.Load expands ${VAR} from the
// process environment.
var envMu sync.Mutex

// LoadScenario loads the scenario with env set in the process environment
// for its ${VAR} expansion, then restores the environment. When the
// scenario names none of $CANDIDATE, $CANDIDATE_SYMBOLS or $WORKTREE, side
// b's kernel and symbols are replaced by env's CANDIDATE and
// CANDIDATE_SYMBOLS; otherwise the scenario says where the candidate is.
func LoadScenario(path string, env map[string]string) (*scenario.Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	envMu.Lock()
	restore := setenv(env)
	sc, err := scenario.Parse(path, data)
	restore()
	envMu.Unlock()
	if err != nil {
		return nil, err
	}
	if !namesCandidate(string(data)) {
		sc.Guests[1].Kernel = env[EnvCandidate]
		sc.Guests[1].Symbols = env[EnvCandidateSymbols]
	}
	return sc, nil
}

// namesCandidate reports whether scenario text refers to the candidate
// through one of the bisection's variables.
func namesCandidate(text string) bool {
	for _, v := range []string{EnvCandidate, EnvWorktree} {
		if strings.Contains(text, "${"+v) || strings.Contains(text, "$"+v) {
			return true
		}
	}
	return false
}

// setenv sets env in the process environment and returns a function that
// restores what was there.
func setenv(env map[string]string) func() {
	type old struct {
		v  string
		ok bool
	}
	saved := map[string]old{}
	for k, v := range env {
		ov, ok := os.LookupEnv(k)
		saved[k] = old{ov, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.ok {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}
