package qemu_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/rsp"
)

// TestAttachExistingGDBStub: a QEMU started with its own gdbstub (-gdb) is
// attached through that stub, which lockstep neither replaces nor stops;
// one started without gets a private stub that Close stops; the process
// lives on either way.
func TestAttachExistingGDBStub(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "demo-hang")
	dir := qemutest.ShortDir(t)
	for _, own := range []bool{true, false} {
		qmp := filepath.Join(dir, "q.sock")
		gdb := filepath.Join(dir, "own-gdb.sock")
		args := []string{"-M", "pc", "-m", "64M", "-display", "none", "-nodefaults", "-kernel", kernel,
			"-qmp", "unix:" + qmp + ",server=on,wait=off"}
		if own {
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
		q, err := qemu.DialQMP(ctx, qmp, nil)
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
		for _, c := range chardevs {
			hasGDB = hasGDB || c.Label == "gdb"
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
