package symbols

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
	fixtureOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

var fixtureArgs = []string{"-O1", "-fno-inline", "-falign-functions=16", "-fcf-protection=none",
	"-nostdlib", "-static", "-no-pie", "testdata/fixture.c", "testdata/fixture2.c"}

// buildC links the fixture sources into out with extra gcc flags.
func buildC(t testing.TB, out string, extra ...string) {
	t.Helper()
	cmd := exec.Command("gcc", append(append(append([]string(nil), fixtureArgs...), extra...), "-o", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
}

// fixture builds testdata/fixture*.c with gcc once per test binary and
// returns the path of the ELF with symbols (stripped=false) or without.
func fixture(t testing.TB, stripped bool) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("gcc not installed (Debian package gcc), needed to build the ELF fixture: %v", err)
	}
	fixtureOnce.Do(func() {
		if fixtureDir, fixtureErr = os.MkdirTemp("", "symbols-fixture-"); fixtureErr != nil {
			return
		}
		args := fixtureArgs
		for _, v := range []struct {
			out   string
			extra []string
		}{{"fixture.elf", nil}, {"fixture-stripped.elf", []string{"-s"}}} {
			cmd := exec.Command(gcc, append(append(args, v.extra...), "-o", filepath.Join(fixtureDir, v.out))...)
			if fixtureOut, fixtureErr = cmd.CombinedOutput(); fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatalf("building ELF fixture: %v\n%s", fixtureErr, fixtureOut)
	}
	if stripped {
		return filepath.Join(fixtureDir, "fixture-stripped.elf")
	}
	return filepath.Join(fixtureDir, "fixture.elf")
}
