package qemu_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/rsp"
)

// TestAttachExistingGDBStub: a QEMU started with its own gdbstub (-gdb DEV,
// or -chardev socket,id=NAME -gdb chardev:NAME) is attached through that
// stub, which lockstep neither replaces nor stops (nor deletes the chardev);
// one started without gets a private stub that Close stops, through a
// unix or a TCP QMP socket; the process lives on either way.
func TestAttachExistingGDBStub(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "demo-hang")
	dir := qemutest.ShortDir(t)
	for _, tc := range []struct {
		own     bool
		chardev string // the stub's chardev: -gdb chardev:NAME
		tcp     bool
	}{{own: true}, {own: true, chardev: "dbg"}, {own: true, chardev: "dbg", tcp: true}, {}, {tcp: true}} {
		own := tc.own
		qmp := filepath.Join(dir, "q.sock")
		qmpArg := "unix:" + qmp + ",server=on,wait=off"
		if tc.tcp {
			// A free port, as far as anyone can know.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			qmp = "tcp:" + l.Addr().String()
			qmpArg = qmp + ",server=on,wait=off"
			l.Close()
		}
		gdb := filepath.Join(dir, "own-gdb.sock")
		args := []string{"-M", "pc", "-m", "64M", "-display", "none", "-nodefaults", "-kernel", kernel,
			"-qmp", qmpArg}
		switch {
		case tc.chardev != "":
			args = append(args, "-chardev", "socket,id="+tc.chardev+",path="+gdb+",server=on,wait=off", "-gdb", "chardev:"+tc.chardev)
		case own:
			args = append(args, "-gdb", "unix:"+gdb+",server=on,wait=off")
		}
		cmd := exec.Command("qemu-system-x86_64", args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		kill := func() { cmd.Process.Kill(); <-done }
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var a *qemu.Attached
		var err error
		for {
			a, err = qemu.Attach(ctx, qemu.AttachOptions{QMP: qmp, Dir: dir, Name: "t"})
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			kill()
			t.Fatalf("own gdbstub %v: attach: %v", own, err)
		}
		if own && (a.StartedGDB || a.GDBAddress != gdb) {
			t.Errorf("with -gdb: started %v at %s, want the existing %s", a.StartedGDB, a.GDBAddress, gdb)
		}
		if !own && (!a.StartedGDB || a.GDBNetwork != "unix" || filepath.Dir(a.GDBAddress) != dir) {
			t.Errorf("without -gdb: started %v at %s %s, want a private unix socket in %s", a.StartedGDB, a.GDBNetwork, a.GDBAddress, dir)
		}
		if !a.FoundRunning || a.KVM || a.Arch != "x86_64" {
			t.Errorf("found running %v kvm %v arch %q", a.FoundRunning, a.KVM, a.Arch)
		}
		c, err := rsp.Dial(ctx, a.GDBNetwork, a.GDBAddress)
		if err != nil {
			t.Errorf("dial the gdbstub: %v", err)
		} else {
			c.Close()
		}
		if err := a.Close(ctx, true); err != nil {
			t.Errorf("close: %v", err)
		}
		q, err := dialQMP(ctx, qmp)
		if err != nil {
			t.Fatalf("qmp after close: %v", err)
		}
		var chardevs []struct{ Label, Filename string }
		if err := q.Execute(ctx, "query-chardev", nil, &chardevs); err != nil {
			t.Fatal(err)
		}
		var st struct{ Status string }
		q.Execute(ctx, "query-status", nil, &st)
		hasGDB := false
		label := "gdb"
		if tc.chardev != "" {
			label = tc.chardev
		}
		for _, c := range chardevs {
			hasGDB = hasGDB || c.Label == label
		}
		if hasGDB != own {
			t.Errorf("own gdbstub %v: a gdb chardev after close: %v (%+v)", own, hasGDB, chardevs)
		}
		if st.Status != "running" {
			t.Errorf("own gdbstub %v: run state %q after close, want running", own, st.Status)
		}
		select {
		case <-done:
			t.Errorf("own gdbstub %v: QEMU exited", own)
		default:
		}
		q.Close()
		cancel()
		kill()
	}
}

// dialQMP connects to a QMP address as Attach takes it.
func dialQMP(ctx context.Context, addr string) (*qemu.QMP, error) {
	network := "unix"
	if rest, ok := strings.CutPrefix(addr, "tcp:"); ok {
		network, addr = "tcp", rest
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return qemu.ConnectQMP(ctx, c, nil)
}
