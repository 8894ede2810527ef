package rsp

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

func TestQEMUAttach(t *testing.T) {
	vm := startQEMU(t, "tcg", "")
	var tr bytes.Buffer
	c := vm.dial(t, WithTranscript(&tr))
	l := c.Layout()
	if l.Arch != "i386:x86-64" {
		t.Errorf("arch = %q, want i386:x86-64", l.Arch)
	}
	if l.GSize != 608 {
		t.Errorf("g size = %d, want 608", l.GSize)
	}
	if l.PC() != "rip" || l.SP() != "rsp" || l.FP() != "rbp" {
		t.Errorf("pc/sp/fp = %s/%s/%s", l.PC(), l.SP(), l.FP())
	}
	if got, want := names(l.Group("general")), "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs"; got != want {
		t.Errorf("general = %s\nwant      %s", got, want)
	}
	if c.Supported()["qXfer:features:read"] != "+" || c.Supported()["PacketSize"] != "1000" {
		t.Errorf("supported = %v", c.Supported())
	}
	if s := c.InitialStop(); s.Kind != 'T' || s.Thread != "p01.01" {
		t.Errorf("initial stop = %+v", s)
	}
	ctx := testCtx(t)
	regs, err := c.ReadRegisters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := regs["rip"].Hex(); got != "0x000000000000fff0" {
		t.Errorf("rip at reset = %s", got)
	}
	if got := regs["cs"].Hex(); got != "0x0000f000" {
		t.Errorf("cs at reset = %s", got)
	}
	if got := regs["xmm0"].Hex(); len(got) != 34 {
		t.Errorf("xmm0 hex %q not full width", got)
	}
	if len(regs) != len(l.Registers) {
		t.Errorf("read %d registers, layout has %d", len(regs), len(l.Registers))
	}
	// p works after target.xml was fetched.
	c.mu.Lock()
	r, _ := l.Lookup("rdx")
	v, ok, err := c.readRegLocked(ctx, r)
	c.mu.Unlock()
	if err != nil || !ok || !v.Equal(regs["rdx"]) {
		t.Errorf("p rdx = %v %v %v, g gave %v", v, ok, err, regs["rdx"])
	}
	if !strings.Contains(tr.String(), "-> $QStartNoAckMode") {
		t.Errorf("transcript lacks QStartNoAckMode:\n%s", tr.String())
	}
	var me *MemoryError
	if _, err := c.ReadMemory(ctx, 0xffff_ffff_ffff_0000, 16); !errors.As(err, &me) || !errors.Is(err, ErrRefused) {
		t.Errorf("read unmapped = %v, want MemoryError wrapping ProtocolError", err)
	}
	threads, err := c.Threads(ctx)
	if err != nil || len(threads) != 1 || threads[0] != "p01.01" {
		t.Errorf("threads = %v, %v", threads, err)
	}
	bits, err := c.SstepBits(ctx)
	if err != nil || bits["ENABLE"] != 1 || bits["NOIRQ"] != 2 || bits["NOTIMER"] != 4 {
		t.Errorf("sstep bits = %v, %v", bits, err)
	}
	if err := c.SetSstep(ctx, 0x1); err != nil {
		t.Errorf("set sstep: %v", err)
	}
	if m, err := c.Sstep(ctx); err != nil || m != 1 {
		t.Errorf("sstep = %#x, %v", m, err)
	}
	if err := c.SetSstep(ctx, 0x7); err != nil {
		t.Errorf("set sstep: %v", err)
	}
	if err := c.InsertBreakpoint(ctx, BreakKind(9), 0, 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad kind: %v", err)
	}
}

func names(rs []Register) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name)
	}
	return strings.Join(s, " ")
}

// breakAt runs vm to sym with a hardware breakpoint and removes it.
func breakAt(t *testing.T, c *Client, kernel, sym string) uint64 {
	t.Helper()
	ctx := testCtx(t)
	addr, _ := symbol(t, kernel, sym)
	if err := c.InsertBreakpoint(ctx, Hardware, addr, 1); err != nil {
		t.Fatalf("Z1 %s: %v", sym, err)
	}
	stop, err := c.Continue(ctx)
	if err != nil {
		t.Fatalf("continue to %s: %v", sym, err)
	}
	if stop.Kind != 'T' || stop.Signal != 5 {
		t.Fatalf("stop at %s = %+v", sym, stop)
	}
	pc, err := c.PC(ctx)
	if err != nil || pc != addr {
		t.Fatalf("pc = %#x, %v; want %s %#x", pc, err, sym, addr)
	}
	if err := c.RemoveBreakpoint(ctx, Hardware, addr, 1); err != nil {
		t.Fatalf("z1 %s: %v", sym, err)
	}
	return addr
}

func TestQEMUBreakReadStep(t *testing.T) {
	kernel := qemutest.Guest(t, "demo-good")
	vm := startQEMU(t, "tcg", kernel)
	c := vm.dial(t)
	ctx := testCtx(t)
	kmain := breakAt(t, c, kernel, "kmain")

	regs, err := c.ReadRegisterSet(ctx, "rip", "rsp", "cr0", "efer")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := regs["rip"].Uint64(); u != kmain {
		t.Errorf("rip = %s", regs["rip"].Hex())
	}
	if u, _ := regs["efer"].Uint64(); u&(1<<10) == 0 {
		t.Errorf("efer = %s: not in long mode at kmain", regs["efer"].Hex())
	}

	// Memory: the code at kmain and demo_input equal the ELF's bytes.
	f, err := elf.Open(kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, size := symbol(t, kernel, "demo_input")
	want := sectionBytes(t, f, in, int(size))
	got, err := c.ReadMemory(ctx, in, int(size))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("demo_input = %q, %v; want %q", got, err, want)
	}
	text := f.Section(".text")
	if text == nil {
		t.Fatal("no .text")
	}
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	got, err = c.ReadMemory(ctx, text.Addr, len(code)) // several 2 KiB chunks
	if err != nil || !bytes.Equal(got, code) {
		t.Errorf("read .text (%d bytes): %v, equal=%v", len(code), err, bytes.Equal(got, code))
	}
	phys, err := c.ReadPhysical(ctx, text.Addr, len(code))
	if err != nil || !bytes.Equal(phys, code) {
		t.Errorf("physical read of identity-mapped .text: %v, equal=%v", err, bytes.Equal(phys, code))
	}
	if got, err := c.ReadMemory(ctx, text.Addr, 16); err != nil || !bytes.Equal(got, code[:16]) {
		t.Errorf("virtual mode not restored after physical read: %x %v", got, err)
	}

	// Write memory beyond one packet and read it back.
	scratch := uint64(0x300000)
	pat := bytes.Repeat([]byte("lockstep*$#}"), 500) // 6000 bytes, all escapable characters
	if err := c.WriteMemory(ctx, scratch, pat); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadPhysical(ctx, scratch, len(pat)); err != nil || !bytes.Equal(got, pat) {
		t.Errorf("read back %d bytes: %v equal=%v", len(pat), err, bytes.Equal(got, pat))
	}
	if err := c.WritePhysical(ctx, scratch, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadMemory(ctx, scratch, 3); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("write physical then read = %x %v", got, err)
	}

	// Register write round trip.
	old := regs["rsp"]
	nv := ValueFromUint64(0x1234_5678_9abc_def0, 8, false)
	if err := c.WriteRegister(ctx, "r15", nv); err != nil {
		t.Fatal(err)
	}
	if v, err := c.ReadRegister(ctx, "r15"); err != nil || !v.Equal(nv) {
		t.Errorf("r15 = %v, %v", v, err)
	}
	if v, _ := c.ReadRegister(ctx, "rsp"); !v.Equal(old) {
		t.Errorf("rsp changed to %v", v)
	}

	// Single step moves the PC off kmain, one instruction.
	for i := 0; i < 3; i++ {
		stop, err := c.Step(ctx)
		if err != nil || stop.Kind != 'T' || stop.Signal != 5 {
			t.Fatalf("step %d: %+v %v", i, stop, err)
		}
	}
	pc, err := c.PC(ctx)
	if err != nil || pc == kmain || pc > kmain+64 {
		t.Errorf("pc after 3 steps = %#x, %v (kmain %#x)", pc, err, kmain)
	}
	stop, err := c.StepThread(ctx, c.InitialStop().Thread)
	if err != nil || stop.Kind != 'T' || stop.Signal != 5 {
		t.Fatalf("vCont step: %+v %v", stop, err)
	}
	if pc2, err := c.PC(ctx); err != nil || pc2 == pc {
		t.Errorf("pc after vCont;s = %#x, %v (was %#x)", pc2, err, pc)
	}
	out, err := c.Monitor(ctx, "info registers")
	if err != nil || !strings.Contains(out, "RIP=") || !strings.Contains(out, "EFER=") {
		t.Errorf("info registers = %q, %v", out, err)
	}
	if _, err := c.Monitor(ctx, "no-such-command"); err != nil {
		t.Logf("bad monitor command: %v", err)
	}
}

func sectionBytes(t *testing.T, f *elf.File, addr uint64, n int) []byte {
	t.Helper()
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && addr >= s.Addr && addr+uint64(n) <= s.Addr+s.Size {
			d, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			return d[addr-s.Addr : addr-s.Addr+uint64(n)]
		}
	}
	t.Fatalf("no section holds %#x+%d", addr, n)
	return nil
}

func TestQEMUWatchAndExit(t *testing.T) {
	kernel := qemutest.Guest(t, "demo-good")
	vm := startQEMU(t, "tcg", kernel)
	c := vm.dial(t)
	ctx := testCtx(t)
	breakAt(t, c, kernel, "kmain") // results is zeroed by boot code before kmain
	results, _ := symbol(t, kernel, "results")
	if err := c.InsertBreakpoint(ctx, WatchWrite, results, 8); err != nil {
		t.Fatal(err)
	}
	stop, err := c.Continue(ctx)
	if err != nil || stop.Watch != "watch" || stop.WatchAddr != results {
		t.Fatalf("watch stop = %+v, %v; want watch %#x", stop, err, results)
	}
	if err := c.RemoveBreakpoint(ctx, WatchWrite, results, 8); err != nil {
		t.Fatal(err)
	}
	// isa-debug-exit ends QEMU without a W packet: the socket just closes.
	stop, err = c.Continue(ctx)
	if (err == nil && stop.Kind != 'W') || (err != nil && !errors.Is(err, ErrClosed)) {
		t.Fatalf("run to end = %+v, %v; want W or ErrClosed", stop, err)
	}
	_, err = c.ReadRegisters(ctx)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("after exit: %v; want ErrClosed", err)
	}
	if _, err := c.Continue(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("continue after exit: %v", err)
	}
	if _, ok := vm.exited(10 * time.Second); !ok {
		t.Error("qemu still running after W")
	}
}

func TestQEMUKill(t *testing.T) {
	kernel := qemutest.Guest(t, "demo-good")
	vm := startQEMU(t, "tcg", kernel)
	c := vm.dial(t)
	ctx := testCtx(t)
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if _, ok := vm.exited(10 * time.Second); !ok {
		t.Fatal("qemu did not exit after k")
	}
	if _, err := c.PC(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("after kill: %v, want ErrClosed", err)
	}
}

func TestQEMUInterrupt(t *testing.T) {
	kernel := qemutest.Guest(t, "demo-hang")
	vm := startQEMU(t, "tcg", kernel)
	c := vm.dial(t)
	// Continue with a deadline: interrupted, stop returned with the ctx error.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	stop, err := c.Continue(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || stop.Kind != 'T' {
		t.Fatalf("continue on a hanging guest = %+v, %v", stop, err)
	}
	ctx = testCtx(t)
	if _, err := c.PC(ctx); err != nil {
		t.Fatalf("after interrupted continue: %v", err)
	}
	// Resume, Wait with a short deadline (still running), then Interrupt.
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("read while running: %v, want ErrRunning", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.Wait(wctx)
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) || !c.Running() {
		t.Fatalf("wait = %v running=%v", err, c.Running())
	}
	stop, err = c.Interrupt(ctx)
	if err != nil || stop.Kind != 'T' || stop.Signal != 2 {
		t.Fatalf("interrupt = %+v, %v", stop, err)
	}
	if _, err := c.Interrupt(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("interrupt while stopped: %v", err)
	}
	if _, err := c.PC(ctx); err != nil {
		t.Fatalf("after interrupt: %v", err)
	}
	// Cancel (no deadline) interrupts too.
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(300*time.Millisecond, ccancel)
	stop, err = c.Continue(cctx)
	if !errors.Is(err, context.Canceled) || stop.Kind != 'T' {
		t.Fatalf("cancelled continue = %+v, %v", stop, err)
	}
}

func TestQEMUKVMBreakAtSymbol(t *testing.T) {
	kernel := qemutest.Guest(t, "demo-good")
	vm := startQEMU(t, "kvm", kernel) // skips with the reason when /dev/kvm is unusable
	c := vm.dial(t)
	ctx := testCtx(t)
	breakAt(t, c, kernel, "kmain")
	// Under KVM: four debug registers, the fifth is refused; Z3 unsupported.
	for i := uint64(0); i < 4; i++ {
		if err := c.InsertBreakpoint(ctx, Hardware, 0x100000+i, 1); err != nil {
			t.Fatalf("Z1 #%d: %v", i+1, err)
		}
	}
	var pe *ProtocolError
	if err := c.InsertBreakpoint(ctx, Hardware, 0x100010, 1); !errors.As(err, &pe) || pe.Code != 0x22 {
		t.Errorf("5th Z1 = %v, want E22", err)
	}
	if err := c.InsertBreakpoint(ctx, WatchRead, 0x100000, 8); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Z3 under KVM = %v, want ErrUnsupported", err)
	}
}
