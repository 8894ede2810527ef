package trace

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// kernelRange is where the demo guests are loaded; logging only there
// leaves SeaBIOS (millions of identical instructions) out.
var kernelRange = Range{Lo: 0x100000, Hi: 0x1fffff}

// proc is a QEMU started in its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startQEMU(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return p
}

func guestArgs(kernel, cpu string, extra ...string) []string {
	return append([]string{"-machine", "pc", "-cpu", cpu, "-m", "64M", "-nodefaults", "-display", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel}, extra...)
}

// traced starts a QEMU logging through a FIFO in dir and returns its
// reader.
func traced(t testing.TB, ctx context.Context, bin, dir, name, kernel, cpu string, extra ...string) (io.ReadCloser, *proc) {
	t.Helper()
	ver, err := QEMUVersion(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFIFO(ctx, dir, name)
	if err != nil {
		t.Fatal(err)
	}
	f.Idle = 20 * time.Second
	args := guestArgs(kernel, cpu, extra...)
	args = append(args, Args(ver, f.Path())...)
	args = append(args, FilterArgs(kernelRange)...)
	p := startQEMU(t, bin, args...)
	go func() { <-p.done; f.Abort() }()
	r, err := f.Open()
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, p
}

// textAt returns up to 15 bytes of the ELF's loaded image at addr.
func textAt(t testing.TB, path string, addr uint64) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr < p.Vaddr+p.Filesz {
			n := min(15, p.Vaddr+p.Filesz-addr)
			b := make([]byte, n)
			if _, err := p.ReadAt(b, int64(addr-p.Vaddr)); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%#x not in a loaded segment of %s", addr, path)
	return nil
}

// TestLiveCPUProbe runs cpu-probe under -cpu qemu64 and -cpu max, streamed
// through FIFOs, and checks that the first divergence follows CPUID.
func TestLiveCPUProbe(t *testing.T) {
	bin := qemutest.Require(t, "x86_64", "tcg")
	kernel := qemutest.Guest(t, "cpu-probe")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	serial := filepath.Join(dir, "b.serial")
	ra, _ := traced(t, ctx, bin, dir, "a.fifo", kernel, "qemu64", "-serial", "file:"+filepath.Join(dir, "a.serial"))
	rb, pb := traced(t, ctx, bin, dir, "b.fifo", kernel, "max", "-serial", "file:"+serial)

	d, err := Compare(ctx, NewParser(ra), NewParser(rb), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; prev pc %#x hits %v prevhits %v", d.String(), d.Prev[0].PC, d.Hits, d.PrevHits)
	if d.Outcome != Differ || d.Index == 0 {
		t.Fatalf("outcome %v at %d, want differ", d.Outcome, d.Index)
	}
	if d.Prev[0].PC != d.Prev[1].PC || !slices.Contains(d.Regs, RCX) {
		t.Fatalf("prev pcs %#x/%#x regs %v", d.Prev[0].PC, d.Prev[1].PC, d.Regs)
	}
	inst, err := x86asm.Decode(textAt(t, kernel, d.Prev[0].PC), 64)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Op != x86asm.CPUID {
		t.Fatalf("instruction before the divergence is %v, want CPUID", inst)
	}
	if d.Prev[0].Regs[RAX] != 1 {
		t.Errorf("cpuid leaf %#x, want 1", d.Prev[0].Regs[RAX])
	}

	// Guest B is frozen: its writer blocks on the full pipe, so it never
	// prints its last line while we hold the reader.
	time.Sleep(500 * time.Millisecond)
	select {
	case <-pb.done:
		t.Fatal("guest b exited although its trace was not read")
	default:
	}
	if out, _ := os.ReadFile(serial); strings.Contains(string(out), "probe: done") {
		t.Fatalf("guest b ran on while its trace pipe was full:\n%s", out)
	}

	// Cross-check the hit count with the gdbstub: break at the cpuid,
	// skip PrevHits hits, step once and compare RCX with the trace.
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skipf("gdb not installed for the hit-count cross-check: %v", err)
	}
	script := fmt.Sprintf("break *%#x\nignore 1 %d\ncontinue\nstepi\nprintf \"RCX %%#lx PC %%#lx\\n\", $rcx, $pc\n", d.Prev[1].PC, d.PrevHits[1])
	out := gdbRun(t, ctx, bin, kernel, "max", script)
	want := fmt.Sprintf("RCX %#x PC %#x", d.State[1].Regs[RCX], d.State[1].PC)
	if !strings.Contains(out, want) {
		t.Fatalf("gdb after %d hits: want %q in\n%s", d.PrevHits[1]+1, want, out)
	}
}

// gdbRun starts a paused QEMU with a gdbstub and runs script in gdb batch
// mode, returning gdb's output.
func gdbRun(t *testing.T, ctx context.Context, bin, kernel, cpu, script string) string {
	t.Helper()
	gdb := qemutest.RequireGDB(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	startQEMU(t, bin, guestArgs(kernel, cpu, "-serial", "file:"+filepath.Join(t.TempDir(), "serial"), "-S", "-gdb", "tcp:127.0.0.1:"+strconv.Itoa(port))...)
	sf := filepath.Join(t.TempDir(), "cmds.gdb")
	full := fmt.Sprintf("set pagination off\nset confirm off\ntarget remote 127.0.0.1:%d\n%s\nkill\n", port, script)
	if err := os.WriteFile(sf, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for attempt := 0; attempt < 20; attempt++ { // QEMU may not listen yet
		out, err = exec.CommandContext(ctx, gdb, "-nx", "-batch", "-x", sf).CombinedOutput()
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("gdb: %v: %v\n%s", ctx.Err(), err, out)
	}
	if err != nil {
		t.Logf("gdb: %v", err) // "kill" may end gdb with a non-zero status
	}
	return string(out)
}

// TestSingleStepLogsEveryInstruction compares the PCs QEMU logs with
// -singlestep -d cpu against gdbstub single steps over the same window.
func TestSingleStepLogsEveryInstruction(t *testing.T) {
	bin := qemutest.Require(t, "x86_64", "tcg")
	qemutest.RequireGDB(t)
	kernel := qemutest.Guest(t, "cpu-probe")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 1500
	dir := t.TempDir()
	r, _ := traced(t, ctx, bin, dir, "t.fifo", kernel, "qemu64", "-serial", "file:"+filepath.Join(dir, "serial"))
	p := NewParser(r)
	var traced []uint64
	var s, prev State
	dups := 0
	for len(traced) < n {
		if err := p.Next(&s); err != nil {
			t.Fatalf("trace after %d states: %v", len(traced), err)
		}
		if len(traced) > 0 && sameState(&s, &prev) {
			dups++ // logged, then left unexecuted for an exit request
			continue
		}
		prev = s
		traced = append(traced, s.PC)
	}
	t.Logf("%d states, %d repeated states collapsed", n, dups)
	script := fmt.Sprintf("break *%#x\ncontinue\nset $i = 0\nwhile $i < %d\nprintf \"PC %%#lx\\n\", $pc\nstepi\nset $i = $i + 1\nend\n", traced[0], n)
	out := gdbRun(t, ctx, bin, kernel, "qemu64", script)
	var stepped []uint64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PC "); ok {
			x, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				t.Fatalf("gdb output %q: %v", sc.Text(), err)
			}
			stepped = append(stepped, x)
		}
	}
	if len(stepped) != n {
		t.Fatalf("gdb stepped %d instructions, want %d:\n%s", len(stepped), n, out)
	}
	for i := range stepped {
		if stepped[i] != traced[i] {
			t.Fatalf("instruction %d: gdbstub pc %#x, trace pc %#x", i, stepped[i], traced[i])
		}
	}
}
