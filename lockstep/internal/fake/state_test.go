package fake_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/internal/fake"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prog fake.Program
		want string
	}{
		{"no states", fake.Program{}, "no states"},
		{"arch", fake.Program{States: fake.Linear(0, 1), Arch: "aarch64"}, "aarch64"},
		{"register", fake.Program{States: []fake.State{{Regs: map[string]uint64{"x0": 1}}}}, "x0"},
		{"end", fake.Program{States: fake.Linear(0, 1), End: fake.LostStep}, "lost-step"},
		{"event", fake.Program{States: []fake.State{{Event: 99}}}, "Event(99)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := fake.New(tc.prog); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	t.Parallel()
	tg, _, err := fake.New(fake.Program{States: fake.Linear(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l := tg.Layout()
	if l.Arch != "i386:x86-64" || l.PC() != "rip" || l.SP() != "rsp" {
		t.Errorf("layout: arch %q pc %q sp %q", l.Arch, l.PC(), l.SP())
	}
	if r, ok := l.Lookup("mxcsr"); !ok || r.Size() != 4 {
		t.Errorf("mxcsr: %+v", r)
	}
}

func TestRegisters(t *testing.T) {
	t.Parallel()
	p := fake.Program{States: fake.Linear(0x4000, 3)}
	fake.At(p.States, 0).Regs = map[string]uint64{"rax": 1, "RBX": 2, "eflags": 0x1_0000_0246, "xmm3": 7}
	fake.At(p.States, 1).Regs = map[string]uint64{"rax": 10, "rip": 0xdead}
	g, _, _ := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	if _, err := g.Step(ctx); err != nil {
		t.Fatal(err)
	}
	regs, err := g.Registers(ctx, "rax", "rbx", "eflags", "xmm3", "rip", "r15", "st0")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]rsp.Value{
		"rax":    rsp.ValueFromUint64(10, 8, false),
		"rbx":    rsp.ValueFromUint64(2, 8, false),
		"eflags": rsp.ValueFromUint64(0x246, 4, false),
		"xmm3":   rsp.ValueFromUint64(7, 16, false),
		"rip":    rsp.ValueFromUint64(0x4001, 8, false),
		"r15":    rsp.ValueFromUint64(0, 8, false),
		"st0":    rsp.ValueFromUint64(0, 10, false),
	}
	for name, v := range want {
		if got, ok := regs[name]; !ok || !got.Equal(v) {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if _, err := g.Registers(ctx, "rax", "pc"); !errors.Is(err, rsp.ErrNoRegister) {
		t.Errorf("unknown register: %v, want rsp.ErrNoRegister", err)
	}
	if frames, _, err := g.Backtrace(ctx); err != nil || len(frames) == 0 || frames[len(frames)-1].Addr != 0x4001 {
		t.Errorf("backtrace: %v, %v", frames, err)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	p := fake.Program{
		States: fake.Linear(0x1000, 3),
		Mapped: []fake.Range{{Addr: 0x1000, Len: 0x1000}, {Addr: 0x2000, Len: 0x1000}, {Addr: 0x8000, Len: 0x10}},
	}
	fake.At(p.States, 0).Mem = map[uint64][]byte{0x1ffe: {1, 2, 3, 4}}
	fake.At(p.States, 1).Mem = map[uint64][]byte{0x1fff: {0xaa}}
	g, _, _ := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	read := func(space string, addr, n uint64) guest.Memory {
		return g.ReadRange(ctx, scenario.MemoryRange{HasAddress: true, Address: addr, Length: n, Space: space})
	}
	if m := read(scenario.SpaceVirtual, 0x1ffe, 4); m.Err != nil || !bytes.Equal(m.Data, []byte{1, 2, 3, 4}) {
		t.Errorf("initial memory across two ranges: %x, %v", m.Data, m.Err)
	}
	if _, err := g.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if m := read(scenario.SpacePhysical, 0x1ffe, 4); m.Err != nil || !bytes.Equal(m.Data, []byte{1, 0xaa, 3, 4}) {
		t.Errorf("memory after a store: %x, %v", m.Data, m.Err)
	}
	tests := []struct {
		name      string
		addr, n   uint64
		chunkAddr uint64
	}{
		{"unmapped", 0x5000, 4, 0x5000},
		{"runs off the end", 0x2ff0, 0x20, 0x2ff0},
		{"fifth chunk", 0x1000, 0x3000, 0x3000},
		{"small range", 0x8008, 0x10, 0x8008},
	}
	for _, tc := range tests {
		for _, space := range []string{scenario.SpaceVirtual, scenario.SpacePhysical} {
			m := read(space, tc.addr, tc.n)
			var pe *rsp.ProtocolError
			var me *rsp.MemoryError
			if !errors.Is(m.Err, rsp.ErrRefused) || !errors.As(m.Err, &pe) || pe.Code != 0x14 || !errors.As(m.Err, &me) || me.Addr != tc.chunkAddr {
				t.Errorf("%s %s: %v; want E14 in a MemoryError at %#x", tc.name, space, m.Err, tc.chunkAddr)
			}
		}
	}
	if text, _ := g.Disasm(ctx, 0x9000); !strings.Contains(text, "unreadable") {
		t.Errorf("disassembly of unmapped code: %q", text)
	}
}

func TestDefaultMemoryReadable(t *testing.T) {
	t.Parallel()
	tg, _, err := fake.New(fake.Program{States: fake.Linear(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := bounded(t, 5*time.Second)
	before := tg.Packets()
	b, err := tg.ReadMemory(ctx, 0xffff_ffff_ffff_f000, 0x1000)
	if err != nil || len(b) != 0x1000 || slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
		t.Errorf("read of unwritten memory: %d bytes, %v", len(b), err)
	}
	if n := tg.Packets() - before; n != 2 {
		t.Errorf("a 4 KiB read took %d packets, want 2", n)
	}
}

func TestBreakpointErrors(t *testing.T) {
	t.Parallel()
	tg, _, err := fake.New(fake.Program{States: fake.Linear(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := bounded(t, 5*time.Second)
	for _, kind := range []rsp.BreakKind{rsp.WatchRead, rsp.WatchAccess} {
		if err := tg.InsertBreakpoint(ctx, kind, 0x10, 4); !errors.Is(err, rsp.ErrUnsupported) {
			t.Errorf("insert %v: %v, want rsp.ErrUnsupported", kind, err)
		}
	}
	if err := tg.InsertBreakpoint(ctx, rsp.Software, 0x10, 0); !errors.Is(err, rsp.ErrMalformed) {
		t.Errorf("size 0: %v, want rsp.ErrMalformed", err)
	}
	var pe *rsp.ProtocolError
	if err := tg.RemoveBreakpoint(ctx, rsp.Software, 0x10, 1); !errors.As(err, &pe) || pe.Code != 0x22 {
		t.Errorf("removing a missing breakpoint: %v, want E22", err)
	}
	// Duplicates are kept, as QEMU does.
	for range 2 {
		if err := tg.InsertBreakpoint(ctx, rsp.Hardware, 0x20, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := tg.RemoveBreakpoint(ctx, rsp.Hardware, 0x20, 1); err != nil {
		t.Fatal(err)
	}
	if bps := tg.Breakpoints(); len(bps) != 1 || bps[0] != (fake.Breakpoint{Kind: rsp.Hardware, Addr: 0x20, Size: 1}) {
		t.Errorf("breakpoints after one of two removals: %v", bps)
	}
}

func TestSstep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		bits     map[string]uint64
		want     []string
		mask     uint64
		notes    int
		noPacket bool
	}{
		{"tcg", nil, []string{scenario.SstepNoIRQ, scenario.SstepNoTimer}, 7, 0, false},
		{"tcg plain", nil, nil, 1, 0, false},
		{"kvm", map[string]uint64{"ENABLE": 1, "NOIRQ": 2}, []string{scenario.SstepNoIRQ, scenario.SstepNoTimer}, 3, 1, false},
		{"no packet", map[string]uint64{}, []string{scenario.SstepNoIRQ}, 0, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, tg, _ := newGuest(t, fake.Program{States: fake.Linear(0, 1), SstepBits: tc.bits})
			ctx := bounded(t, 5*time.Second)
			notes, err := g.ApplySstep(ctx, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != tc.notes {
				t.Errorf("notes %q, want %d", notes, tc.notes)
			}
			if !tc.noPacket && tg.Sstep() != tc.mask {
				t.Errorf("mask %#x, want %#x", tg.Sstep(), tc.mask)
			}
		})
	}
	tg, _, err := fake.New(fake.Program{States: fake.Linear(0, 1), SstepBits: map[string]uint64{"ENABLE": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var pe *rsp.ProtocolError
	if err := tg.SetSstep(context.Background(), 5); !errors.As(err, &pe) || pe.Code != 0x22 {
		t.Errorf("unsupported sstep bit: %v, want E22", err)
	}
}

func TestPackets(t *testing.T) {
	t.Parallel()
	g, tg, _ := newGuest(t, linear(5, fake.Hang, 0))
	ctx := bounded(t, 5*time.Second)
	if tg.Packets() != 0 {
		t.Fatalf("packets %d at start", tg.Packets())
	}
	g.PC(ctx)
	g.Step(ctx)
	g.Insert(ctx, rsp.Software, 0x1003)
	if n := tg.Packets(); n != 3 {
		t.Errorf("packets %d, want 3", n)
	}
}

func TestMachine(t *testing.T) {
	t.Parallel()
	p := linear(3, fake.Exit, 0)
	p.Stderr = "qemu: warning: host doesn't support requested feature\n"
	p.Shutdown, p.Panicked = "guest-panic", true
	fake.At(p.States, 0).Serial = "boot\n"
	fake.At(p.States, 2).Serial = "bye\n"
	g, _, m := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	if m.Binary() != "fake-qemu" || m.Version() != "7.2.0" || m.CommandLine() == "" {
		t.Errorf("binary %q version %q command line %q", m.Binary(), m.Version(), m.CommandLine())
	}
	if st, err := m.Status(ctx); st != "debug" || err != nil {
		t.Errorf("status %q, %v", st, err)
	}
	var qs struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.QMP(ctx, "query-status", nil, &qs); err != nil || qs.Status != "debug" || qs.Running {
		t.Errorf("QMP query-status: %+v, %v", qs, err)
	}
	if err := m.QMP(ctx, "quit", nil, nil); err == nil || !strings.Contains(err.Error(), "fake: no QMP command quit") {
		t.Errorf("unknown QMP command: %v", err)
	}
	if _, err := m.HMP(ctx, "info registers"); err == nil {
		t.Errorf("unknown HMP command succeeds")
	}
	if r, panicked := m.Shutdown(); r != "" || panicked {
		t.Errorf("shutdown before the end: %q %v", r, panicked)
	}
	if f := g.Healthy(ctx); f != nil {
		t.Errorf("a QEMU warning makes the guest unhealthy: %v", f)
	}
	for range 2 {
		g.Step(ctx)
	}
	if s := g.SerialTail(10); s != "boot\nbye" {
		t.Errorf("serial %q", s)
	}
	st, err := g.Step(ctx)
	// A guest panic is the guest's own end.
	if err != nil || !st.Exited() || !g.Exited() {
		t.Fatalf("exit: %v, %v", st, err)
	}
	if r, panicked := m.Shutdown(); r != "guest-panic" || !panicked {
		t.Errorf("shutdown %q %v", r, panicked)
	}
}

// TestHostShutdown checks that an exit the host caused is a fault.
func TestHostShutdown(t *testing.T) {
	t.Parallel()
	p := linear(2, fake.Exit, 0)
	p.Shutdown = "host-signal"
	g, _, _ := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	g.Step(ctx)
	_, err := g.Step(ctx)
	wantFault(t, err, "shut down from the host")
}

func TestBulkRead(t *testing.T) {
	t.Parallel()
	p := fake.Program{States: fake.Linear(0, 1), Mapped: []fake.Range{{Addr: 0x100000, Len: 0x200000}}}
	fake.At(p.States, 0).Mem = map[uint64][]byte{0x100000: {1, 2}, 0x1fffff: {3}}
	g, _, m := newGuest(t, p)
	ctx := bounded(t, 5*time.Second)
	for _, space := range []string{scenario.SpaceVirtual, scenario.SpacePhysical} {
		mem := g.ReadRange(ctx, scenario.MemoryRange{HasAddress: true, Address: 0x100000, Length: guest.BulkThreshold, Space: space})
		if mem.Err != nil || mem.Data != nil || mem.Dump == "" {
			t.Fatalf("bulk read %s: %d bytes in memory, dump %q, %v; want a dump file only", space, len(mem.Data), mem.Dump, mem.Err)
		}
		src, c, err := mem.Source()
		if err != nil {
			t.Fatal(err)
		}
		var first [2]byte
		var last [1]byte
		src.ReadAt(first[:], 0)
		src.ReadAt(last[:], guest.BulkThreshold-1)
		c.Close()
		if src.Size() != guest.BulkThreshold || first != [2]byte{1, 2} || last[0] != 3 {
			t.Errorf("bulk read %s: %d bytes, % x ... % x", space, src.Size(), first, last)
		}
		dump := mem.Dump
		mem.Release()
		if _, err := os.Stat(dump); !os.IsNotExist(err) {
			t.Errorf("dump %s still there after Release: %v", dump, err)
		}
	}
	if got := m.Commands(); !slices.Equal(got, []string{"memsave", "pmemsave"}) {
		t.Errorf("commands %q", got)
	}
	if _, err := g.BulkRead(ctx, scenario.SpaceVirtual, 0x280000, guest.BulkThreshold); err == nil {
		t.Errorf("bulk read of unmapped memory succeeds")
	}
}

// TestCheckpoints saves and restores through package guest's checkpoint
// code. The scratch qcow2 is made up front, so qemu-img is not needed.
func TestCheckpoints(t *testing.T) {
	t.Parallel()
	for _, accel := range []string{scenario.AccelTCG, scenario.AccelKVM} {
		t.Run(accel, func(t *testing.T) {
			t.Parallel()
			p := linear(10, fake.Exit, 0)
			fake.At(p.States, 2).Regs = map[string]uint64{"rax": 2}
			fake.At(p.States, 5).Regs = map[string]uint64{"rax": 5}
			fake.At(p.States, 5).Mem = map[uint64][]byte{0x500: {5}}
			g, tg, m := newGuestSpec(t, p, scenario.Guest{Accel: accel})
			ctx := bounded(t, 5*time.Second)
			if err := createFile(g.CheckpointFile()); err != nil {
				t.Fatal(err)
			}
			for _, a := range []uint64{0x1003, 0x1008} {
				if err := g.Insert(ctx, rsp.Software, a); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := g.Cont(ctx); err != nil || tg.Index() != 3 {
				t.Fatalf("cont: %v at state %d", err, tg.Index())
			}
			if err := g.Save(ctx, "c3"); err != nil {
				t.Fatal(err)
			}
			snap, ok := m.Snapshot("c3")
			if !ok || snap.Index != 3 {
				t.Fatalf("snapshot %+v, %v", snap, ok)
			}
			// Under KVM software breakpoints come out of the snapshot.
			if wantBPs := map[string]int{scenario.AccelTCG: 2, scenario.AccelKVM: 0}[accel]; len(snap.Breakpoints) != wantBPs {
				t.Errorf("snapshot breakpoints %v, want %d", snap.Breakpoints, wantBPs)
			}
			if len(tg.Breakpoints()) != 2 {
				t.Errorf("breakpoints after save: %v", tg.Breakpoints())
			}
			if _, err := g.Cont(ctx); err != nil || tg.Index() != 8 {
				t.Fatalf("cont: %v at state %d", err, tg.Index())
			}
			if err := g.Load(ctx, "c3"); err != nil {
				t.Fatal(err)
			}
			regs, err := g.Registers(ctx, "rax", "rip")
			if err != nil {
				t.Fatal(err)
			}
			if rax, _ := regs["rax"].Uint64(); rax != 2 {
				t.Errorf("rax after load %d, want 2", rax)
			}
			if rip, _ := regs["rip"].Uint64(); rip != 0x1003 {
				t.Errorf("rip after load %#x, want 0x1003", rip)
			}
			if b, err := g.T.ReadMemory(ctx, 0x500, 1); err != nil || b[0] != 0 {
				t.Errorf("memory after load: %x, %v", b, err)
			}
			if len(tg.Breakpoints()) != 2 {
				t.Errorf("breakpoints after load: %v", tg.Breakpoints())
			}
			// The run goes on from the checkpoint as it did the first time.
			if _, err := g.Cont(ctx); err != nil || tg.Index() != 8 {
				t.Fatalf("cont after load: %v at state %d", err, tg.Index())
			}
			if ok, err := g.HasSnapshot(ctx, "c3"); !ok || err != nil {
				t.Errorf("HasSnapshot: %v, %v", ok, err)
			}
			if err := g.Load(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("loading a missing snapshot: %v", err)
			}
			if err := g.Drop(ctx, "c3"); err != nil {
				t.Fatal(err)
			}
			if ok, err := g.HasSnapshot(ctx, "c3"); ok || err != nil {
				t.Errorf("HasSnapshot after drop: %v, %v", ok, err)
			}
		})
	}
}

// TestCheckpointAttach runs the whole attach path, which needs qemu-img.
func TestCheckpointAttach(t *testing.T) {
	t.Parallel()
	requireQemuImg(t)
	g, _, m := newGuest(t, linear(4, fake.Hang, 0))
	ctx := bounded(t, 10*time.Second)
	if err := g.Save(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	if got := m.Commands(); !slices.Equal(got, []string{"blockdev-add", "savevm start"}) {
		t.Errorf("commands %q", got)
	}
	if ok, err := g.HasSnapshot(ctx, "start"); !ok || err != nil {
		t.Errorf("HasSnapshot: %v, %v", ok, err)
	}
}

func TestLauncher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := &fake.Launcher{
		Dir: dir,
		Program: func(side, launch int) fake.Program {
			p := linear(6, fake.Exit, side)
			if side == 1 && launch == 1 {
				// The relaunch dies.
				p = with(p, 2, fake.Kill, 0)
			}
			return p
		},
	}
	ctx := bounded(t, 5*time.Second)
	specs := [2]scenario.Guest{{Label: "good"}, {Label: "bad"}}
	p, err := guest.LaunchPair(ctx, l, specs, [2]*symbols.Table{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for i, g := range p {
		if g.Side != i || g.Dir != dir || g.Tag != scenario.SideNames[i] || g.Timeouts != fake.Timeouts() {
			t.Errorf("guest %d: side %d dir %q tag %q timeouts %+v", i, g.Side, g.Dir, g.Tag, g.Timeouts)
		}
		if g.Timeouts.ExitWait != 200*time.Millisecond || g.Timeouts.Health != 200*time.Millisecond {
			t.Errorf("timeouts %+v", g.Timeouts)
		}
		if st, err := g.Cont(ctx); err != nil || !st.Exited() || *g.ExitStatus() != i {
			t.Errorf("side %d: %v, %v", i, st, err)
		}
	}
	first, _ := l.Last(1)
	q, err := guest.LaunchPair(ctx, l, specs, [2]*symbols.Table{}, "-localise")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	if l.Launches(0) != 2 || l.Launches(1) != 2 {
		t.Errorf("launches %d, %d", l.Launches(0), l.Launches(1))
	}
	if tg, m := l.Last(1); tg == first || m == nil || !strings.Contains(m.CommandLine(), "b-localise") {
		t.Errorf("Last(1) is not the relaunch: %p %v", tg, m)
	}
	if q[1].Tag != "b-localise" || q[1].Name() != "b (bad)" {
		t.Errorf("relaunch tag %q name %q", q[1].Tag, q[1].Name())
	}
	_, err = q[1].Cont(ctx)
	var f *guest.Fault
	if !errors.As(err, &f) || !strings.Contains(f.Error(), "guest b (bad)") || !strings.Contains(f.Error(), "signal") {
		t.Errorf("relaunched side b: %v, want a fault naming guest b and the signal", err)
	}
}

func TestLauncherFail(t *testing.T) {
	t.Parallel()
	bad := linear(2, fake.Hang, 0)
	bad.Fail = errors.New("qemu: no such machine")
	l := &fake.Launcher{Program: fake.Sides(linear(2, fake.Hang, 0), bad)}
	_, err := guest.LaunchPair(bounded(t, 5*time.Second), l, [2]scenario.Guest{}, [2]*symbols.Table{}, "")
	if !errors.Is(err, guest.ErrInfrastructure) || !strings.Contains(err.Error(), "guest b: qemu: no such machine") {
		t.Fatalf("launch: %v", err)
	}
	if _, m := l.Last(0); m != nil {
		select {
		case <-m.Exited():
		default:
			t.Error("side a left running after side b failed to launch")
		}
	}
	if l.Launches(1) != 1 {
		t.Errorf("launches %d", l.Launches(1))
	}
}

func TestLauncherBoth(t *testing.T) {
	t.Parallel()
	l := &fake.Launcher{Program: fake.Both(linear(3, fake.Exit, 0))}
	ctx := bounded(t, 5*time.Second)
	for side := range 2 {
		g, err := l.Launch(ctx, guest.Config{Side: side})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := g.Cont(ctx); err != nil || !st.Exited() {
			t.Errorf("side %d: %v, %v", side, st, err)
		}
		if err := g.Close(ctx); err != nil {
			t.Error(err)
		}
	}
}
