package fake_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// newGuest returns a guest of side a over a fake running p, closed at the
// end of the test.
func newGuest(t *testing.T, p fake.Program) (*guest.Guest, *fake.Target, *fake.Machine) {
	t.Helper()
	return newGuestSpec(t, p, scenario.Guest{Label: "good", Accel: scenario.AccelTCG})
}

func newGuestSpec(t *testing.T, p fake.Program, spec scenario.Guest) (*guest.Guest, *fake.Target, *fake.Machine) {
	t.Helper()
	tg, m, err := fake.New(p)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.New(0, "", spec, tg, m, nil, fake.Timeouts())
	if err != nil {
		t.Fatal(err)
	}
	g.Dir = t.TempDir()
	t.Cleanup(func() {
		if err := g.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return g, tg, m
}

// bounded returns a context that ends after d.
func bounded(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantFault checks that err is a *guest.Fault of side a, an
// infrastructure failure, whose message holds every one of parts.
func wantFault(t *testing.T, err error, parts ...string) *guest.Fault {
	t.Helper()
	var f *guest.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T): want a *guest.Fault", err, err)
	}
	if !errors.Is(err, guest.ErrInfrastructure) {
		t.Errorf("fault %v does not wrap guest.ErrInfrastructure", err)
	}
	for _, p := range append([]string{"guest a"}, parts...) {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("fault %q does not mention %q", err, p)
		}
	}
	return f
}

// mustPC reads the guest's program counter.
func mustPC(t *testing.T, g *guest.Guest) uint64 {
	t.Helper()
	pc, err := g.PC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// linear is a program of n states from 0x1000 with the given end.
func linear(n int, end fake.Event, code int) fake.Program {
	return fake.Program{States: fake.Linear(0x1000, n), End: end, ExitCode: code}
}

// with returns p with state i's event set.
func with(p fake.Program, i int, e fake.Event, code int) fake.Program {
	s := fake.At(p.States, i)
	s.Event, s.Code = e, code
	return p
}

// createFile creates an empty file at path.
func createFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// requireQemuImg skips the test when qemu-img is not in PATH.
func requireQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not in PATH:", err)
	}
}
