package bisecttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// Spec describes the history of a fixture repository: commit 0 holds the
// sources; commits 1..Commits each change FIXTURE_REVISION in config.h (a
// macro nothing uses, so the kernels do not change), and some do more.
type Spec struct {
	// Commits is the number of commits after the initial one.
	Commits int
	// Regression is the commit that adds "#define REGRESSION" (0: none);
	// it stays in every later commit.
	Regression int
	// Flaky is the commit that adds "#define FLAKY" (0: none); it stays.
	Flaky int
	// Broken is a commit whose config.h does not compile (0: none); the
	// next commit fixes it.
	Broken int
	// Arch is the guest architecture: "" for the x86_64 demo and flaky
	// kernels (testdata/bisect/Makefile), or aarch64, riscv64 or s390x for
	// the demo kernel built with the Debian cross compiler
	// (testdata/bisect/cross.mk; see RequireCross). Build, Artifact and
	// Reference are the same for every architecture: the repository's
	// Makefile knows its own.
	Arch string
}

// Build is the fixture's build command for a kernel ("demo" or "flaky").
func Build(kernel string) string {
	return fmt.Sprintf(`make -s -C "$WORKTREE" build/%s.elf`, kernel)
}

// Artifact is the path of a fixture kernel in the work tree.
func Artifact(kernel string) string { return "build/" + kernel + ".elf" }

// RequireCross skips the test, with the reason, when the cross fixture of
// arch cannot be built (no <arch>-linux-gnu-gcc) or run (no
// qemu-system-<arch>).
func RequireCross(t testing.TB, arch string) {
	t.Helper()
	qemutest.Require(t, arch, "tcg")
	if _, err := exec.LookPath(arch + "-linux-gnu-gcc"); err != nil {
		t.Skipf("%s-linux-gnu-gcc not installed (Debian package gcc-%s-linux-gnu), so the %s bisect fixture cannot be built: %v",
			arch, arch, arch, err)
	}
}

// Scenario returns the path of the fixture scenario for a kernel: "demo"
// or "flaky" on x86_64, "<arch>-demo" on the cross architectures.
func Scenario(t testing.TB, kernel string) string {
	return filepath.Join(qemutest.Root(t), "testdata", "bisect", kernel+".yaml")
}

// Repo creates the repository in a new temporary directory and returns it
// with the hash of every commit, index 0 the initial one.
func Repo(t testing.TB, s Spec) (string, []string) {
	t.Helper()
	root := qemutest.Root(t)
	dir := t.TempDir()
	git(t, dir, "init", "--quiet", "--initial-branch=main")
	if s.Arch == "" {
		for _, f := range []string{"boot.S", "guest.ld", "lib.c", "lib.h", "demo.c"} {
			copyFile(t, filepath.Join(root, "testdata", "guests", f), filepath.Join(dir, f))
		}
		for _, f := range []string{"Makefile", "flaky.c"} {
			copyFile(t, filepath.Join(root, "testdata", "bisect", f), filepath.Join(dir, f))
		}
	} else {
		guests := filepath.Join(root, "testdata", "guests")
		for _, f := range []string{"cross.mk", "lib.c", "lib.h", "demo.c"} {
			copyFile(t, filepath.Join(guests, f), filepath.Join(dir, f))
		}
		ents, err := os.ReadDir(filepath.Join(guests, s.Arch))
		if err != nil {
			t.Fatalf("arch %q: %v", s.Arch, err)
		}
		if err := os.Mkdir(filepath.Join(dir, s.Arch), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				copyFile(t, filepath.Join(guests, s.Arch, e.Name()), filepath.Join(dir, s.Arch, e.Name()))
			}
		}
		mk, err := os.ReadFile(filepath.Join(root, "testdata", "bisect", "cross.mk"))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "Makefile"), "ARCH ?= "+s.Arch+"\n"+string(mk))
	}
	write(t, filepath.Join(dir, ".gitignore"), "build/\n")
	var hashes []string
	for i := 0; i <= s.Commits; i++ {
		var cfg strings.Builder
		cfg.WriteString("/* config.h: the bisect fixture's build configuration, forced into every C file. */\n")
		fmt.Fprintf(&cfg, "#define FIXTURE_REVISION %d\n", i)
		subject := fmt.Sprintf("revision %d", i)
		if s.Regression > 0 && i >= s.Regression {
			cfg.WriteString("#define REGRESSION 1\n")
		}
		if s.Flaky > 0 && i >= s.Flaky {
			cfg.WriteString("#define FLAKY 1\n")
		}
		switch {
		case i == 0:
			subject = "initial sources"
		case i == s.Regression:
			subject = "plant the regression"
		case i == s.Flaky:
			subject = "plant the flaky regression"
		case i == s.Broken:
			cfg.WriteString("this does not compile\n")
			subject = "break the build"
		case s.Broken > 0 && i == s.Broken+1:
			subject = "fix the build"
		}
		write(t, filepath.Join(dir, "config.h"), cfg.String())
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "--quiet", "-m", subject)
		hashes = append(hashes, strings.TrimSpace(git(t, dir, "rev-parse", "HEAD")))
	}
	return dir, hashes
}

// Reference builds a fixture kernel from commit hash of repo, outside the
// repository, and returns its path.
func Reference(t testing.TB, repo, hash, kernel string) string {
	t.Helper()
	dir := t.TempDir()
	arch := filepath.Join(dir, "src.tar")
	git(t, repo, "archive", "--format=tar", "-o", arch, hash)
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, src, nil, "tar", "-xf", arch)
	run(t, src, nil, "make", "-s", Artifact(kernel))
	return filepath.Join(src, Artifact(kernel))
}

// git runs git in dir with a fixed identity and dates, and returns stdout.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	env := []string{
		"GIT_AUTHOR_NAME=Fixture Author", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Fixture Committer", "GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	}
	return run(t, dir, env, "git", args...)
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, string(b))
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Git runs git in dir and returns its stdout, failing the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return git(t, dir, args...)
}
