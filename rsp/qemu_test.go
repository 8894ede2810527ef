package rsp

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// guestVM is a QEMU started by a test, paused at -S, gdbstub on a unix socket.
type guestVM struct {
	cmd  *exec.Cmd
	dir  string
	sock string
	done chan error
}

// startQEMU launches qemu-system-x86_64 (TCG or KVM) in its own process
// group, killed in t.Cleanup. kernel may be "" to boot the BIOS reset vector.
func startQEMU(t testing.TB, accel, kernel string) *guestVM {
	t.Helper()
	bin := qemutest.Require(t, "x86_64", accel)
	dir := t.TempDir()
	vm := &guestVM{dir: dir, sock: filepath.Join(dir, "gdb.sock"), done: make(chan error, 1)}
	args := []string{"-S", "-nodefaults", "-display", "none", "-machine", "pc", "-cpu", "qemu64",
		"-accel", accel, "-m", "64M", "-serial", "file:" + filepath.Join(dir, "serial.log"),
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		"-chardev", "socket,path=" + vm.sock + ",server=on,wait=off,id=gdb0", "-gdb", "chardev:gdb0"}
	if kernel != "" {
		args = append(args, "-kernel", kernel)
	}
	vm.cmd = exec.Command(bin, args...)
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	vm.cmd.Stderr = &limitedBuffer{max: 8192}
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() { vm.done <- vm.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-vm.done:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu pid %d did not die", vm.cmd.Process.Pid)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(vm.sock); err == nil {
			return vm
		}
		select {
		case err := <-vm.done:
			vm.done <- err
			t.Fatalf("qemu exited before creating its gdb socket: %v\n%s", err, vm.cmd.Stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu gdb socket %s did not appear within 15s", vm.sock)
		}
	}
}

// dial attaches a client to vm, closed in t.Cleanup.
func (vm *guestVM) dial(t testing.TB, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The socket file exists from bind(); until QEMU's listen() a connect
	// is refused. Retry that, within the deadline.
	var c *Client
	var err error
	for {
		c, err = Dial(ctx, "unix", vm.sock, opts...)
		if !errors.Is(err, syscall.ECONNREFUSED) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// exited waits (bounded) for QEMU to exit and returns its error.
func (vm *guestVM) exited(d time.Duration) (error, bool) {
	if d <= 0 {
		select {
		case err := <-vm.done:
			vm.done <- err
			return err, true
		default:
			return nil, false
		}
	}
	select {
	case err := <-vm.done:
		vm.done <- err
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

// symbol returns the address and size of an ELF symbol.
func symbol(t testing.TB, path, name string) (uint64, uint64) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("symbols of %s: %v", path, err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value, s.Size
		}
	}
	t.Fatalf("symbol %s not in %s", name, path)
	return 0, 0
}

type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
