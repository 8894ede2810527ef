package lockstep_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// runningQEMU is a QEMU the test starts itself, as someone else would: with
// a QMP socket only, no gdbstub, not paused.
type runningQEMU struct {
	cmd    *exec.Cmd
	qmp    string
	serial string
	done   chan struct{}
}

// startRunning starts kernel under TCG with only -qmp, and waits until its
// serial output shows marker. The test's cleanup kills it (by its pid).
func startRunning(t *testing.T, dir, name, kernel, marker string, extra ...string) *runningQEMU {
	t.Helper()
	return startRunningAccel(t, dir, name, kernel, marker, "tcg", extra...)
}

// startRunningAccel is startRunning under accel ("tcg", "kvm"), with extra
// QEMU arguments. Under KVM it boots with qboot: SeaBIOS runs by
// instruction emulation under nested KVM and takes many seconds.
func startRunningAccel(t *testing.T, dir, name, kernel, marker, accel string, extra ...string) *runningQEMU {
	t.Helper()
	if accel == "kvm" {
		const qboot = "/usr/share/qemu/qboot.rom"
		if _, err := os.Stat(qboot); err != nil {
			t.Skipf("qboot (Debian package qemu-system-data) is needed to boot quickly under nested KVM: %v", err)
		}
		extra = append([]string{"-bios", qboot}, extra...)
	}
	q := &runningQEMU{qmp: filepath.Join(dir, name+".qmp"), serial: filepath.Join(dir, name+".serial"), done: make(chan struct{})}
	q.cmd = exec.Command("qemu-system-x86_64", "-M", "pc", "-cpu", "qemu64", "-m", "64M", "-accel", accel,
		"-display", "none", "-nodefaults", "-no-user-config", "-kernel", kernel,
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		"-serial", "file:"+q.serial, "-qmp", "unix:"+q.qmp+",server=on,wait=off")
	q.cmd.Args = append(q.cmd.Args, extra...)
	var stderr bytes.Buffer
	q.cmd.Stderr = &stderr
	q.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { q.cmd.Wait(); close(q.done) }()
	t.Cleanup(func() {
		q.cmd.Process.Kill()
		<-q.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(q.serial)
		if bytes.Contains(b, []byte(marker)) {
			break
		}
		select {
		case <-q.done:
			t.Fatalf("qemu %s exited: %s", name, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu %s: no %q on the serial port within 20s (got %q)", name, marker, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return q
}

// monitor connects to the QEMU's QMP socket (once lockstep has let go).
func (q *runningQEMU) monitor(t *testing.T) *qemu.QMP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := qemu.DialQMP(ctx, q.qmp, nil)
	if err != nil {
		t.Fatalf("qmp %s after the run: %v", q.qmp, err)
	}
	return m
}

func (q *runningQEMU) alive() bool {
	select {
	case <-q.done:
		return false
	default:
		return true
	}
}

// checkLeftAlone checks what lockstep must leave behind on an attached
// QEMU: the process alive, the VM in run state want and staying there (a
// breakpoint left in place would stop a running VM in "debug"), the code
// at each of bps as in the ELF, no gdbstub, and (running) the guest making
// progress.
func checkLeftAlone(t *testing.T, q *runningQEMU, want string, kernel string, bps ...string) {
	t.Helper()
	if !q.alive() {
		t.Fatalf("the attached QEMU %s is gone after the run", q.qmp)
	}
	m := q.monitor(t)
	defer m.Close()
	ctx := context.Background()
	status := func() string {
		var st struct{ Status string }
		if err := m.Execute(ctx, "query-status", nil, &st); err != nil {
			t.Fatal(err)
		}
		if want == "paused" && st.Status == "debug" {
			// Stopped by the gdbstub, then left stopped: QEMU keeps
			// calling that debug.
			return "paused"
		}
		return st.Status
	}
	if got := status(); got != want {
		t.Errorf("%s: run state after the run %q, want %q", q.qmp, got, want)
	}
	syms := elfSymbols(t, kernel)
	// The spin guests count their rounds; demo-hang counts nothing.
	counter, counts := syms["spin_ticks"]
	ticks := func() uint64 {
		if !counts {
			return 0
		}
		return hmpWord(t, m, counter.addr)
	}
	t0 := ticks()
	time.Sleep(300 * time.Millisecond)
	if got := status(); got != want {
		t.Errorf("%s: run state 300 ms after the run %q, want %q (a breakpoint left behind?)", q.qmp, got, want)
	}
	if t1 := ticks(); counts && want == "running" && t1 == t0 {
		t.Errorf("%s: spin_ticks stays at %d: the guest does not run", q.qmp, t0)
	} else if want == "paused" && t1 != t0 {
		t.Errorf("%s: spin_ticks moved from %d to %d while paused", q.qmp, t0, t1)
	}
	for _, bp := range bps {
		fn, ok := syms[bp]
		if !ok || len(fn.code) == 0 {
			t.Fatalf("%s: no function %s", kernel, bp)
		}
		addr, want := fn.addr, fn.code[:min(8, len(fn.code))]
		got := hmpBytes(t, m, addr, len(want))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: code at %s %#x is % x after the run, the ELF has % x", q.qmp, bp, addr, got, want)
		}
	}
	var chardevs []struct{ Label, Filename string }
	if err := m.Execute(ctx, "query-chardev", nil, &chardevs); err != nil {
		t.Fatal(err)
	}
	for _, c := range chardevs {
		if c.Label == "gdb" {
			t.Errorf("%s: a gdbstub is left listening: %s", q.qmp, c.Filename)
		}
	}
}

var hmpLine = regexp.MustCompile(`(?m)^[0-9a-f]+:((?:\s+0x[0-9a-f]+)+)`)

// hmpBytes reads guest memory through the monitor (HMP x), not the gdbstub.
func hmpBytes(t *testing.T, m *qemu.QMP, addr uint64, n int) []byte {
	t.Helper()
	out, err := m.HMP(context.Background(), fmt.Sprintf("x /%dxb %#x", n, addr))
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, l := range hmpLine.FindAllStringSubmatch(out, -1) {
		for _, f := range strings.Fields(l[1]) {
			v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 8)
			if err != nil {
				t.Fatalf("HMP x: %q", out)
			}
			b = append(b, byte(v))
		}
	}
	if len(b) != n {
		t.Fatalf("HMP x /%dxb %#x: %q", n, addr, out)
	}
	return b
}

func hmpWord(t *testing.T, m *qemu.QMP, addr uint64) uint64 {
	b := hmpBytes(t, m, addr, 8)
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func parseScenario(t *testing.T, dir, text string) *scenario.Scenario {
	t.Helper()
	file := filepath.Join(dir, "attach.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// attachDemo attaches to two QEMUs running demo-spin-good and -bad
// (name, QMP and symbols of a, then of b): the planted results[5]
// difference where they stand, then each run on to its third tick.
const attachDemo = `name: %s
timeout: 60s
guests:
  a: {label: good, attach: {qmp: %s}, symbols: %s}
  b: {label: regressed, attach: {qmp: %s}, symbols: %s}
compare:
  registers: []
sync:
  - break: now
    compare:
      memory: [{symbol: results}]
  - break: tick
    hit: 3
    compare:
      registers: [rsp]
expect: diverge
`

// checkAttachDemo checks the result of attachDemo: diverged, the
// results[5] difference found where the guests stood, tick reached, both
// sides detached under accel and left running.
func checkAttachDemo(t *testing.T, res *lockstep.Result, accel string) {
	t.Helper()
	if res.Outcome != lockstep.OutcomeDiverged {
		t.Errorf("outcome %s, want %s; notes %v", res.Outcome, lockstep.OutcomeDiverged, res.Notes)
	}
	found := false
	for _, d := range byKind(res, compare.KindMemory) {
		found = found || d.Sync == 0 && strings.Contains(d.Summary, "results")
	}
	if !found {
		t.Errorf("the results[5] difference was not reported at the now point: %+v", res.Divergences)
	}
	if !res.Syncs[1].Reached[0] || !res.Syncs[1].Reached[1] {
		t.Errorf("sync point tick not reached: %+v", res.Syncs[1])
	}
	for i, s := range res.Sides {
		if s.Accel != accel || s.State != lockstep.StateDetached || s.OnExit != "running" || s.Attach == "" {
			t.Errorf("side %d: accel %q state %q on_exit %q attach %q, want %s, detached, running", i, s.Accel, s.State, s.OnExit, s.Attach, accel)
		}
	}
}

// TestAttachRunningGuests is the acceptance test of attach mode: two QEMUs
// started without a gdbstub, running demo guests that spin forever after
// writing their results, are compared where they stand and at a symbol;
// the planted results[5] difference is found, and both QEMUs are left
// running (or paused, as on_exit asks) with no breakpoint and no gdbstub.
func TestAttachRunningGuests(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good, bad := qemutest.Guest(t, "demo-spin-good"), qemutest.Guest(t, "demo-spin-bad")
	dir := qemutest.ShortDir(t)
	qa := startRunning(t, dir, "a", good, "demo: spin")
	qb := startRunning(t, dir, "b", bad, "demo: spin")

	text := fmt.Sprintf(attachDemo, "attach", qa.qmp, good, qb.qmp, bad)
	sc := parseScenario(t, dir, text)
	runDir := qemutest.ShortDir(t)
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: runDir})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkAttachDemo(t, res, "tcg")
	if n, _ := filepath.Glob(filepath.Join(runDir, "*")); len(n) != 0 {
		t.Errorf("run directory left behind (gdbstub sockets): %v", n)
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", bad, "tick")

	// Again, with b left paused: on_exit: pause.
	sc = parseScenario(t, dir, strings.Replace(text, "attach: {qmp: "+qb.qmp+"}", "attach: {qmp: "+qb.qmp+", on_exit: pause}", 1))
	if _, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: runDir}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "paused", bad, "tick")
	noLeftovers(t)
}

// TestAttachDeadQEMUIsInfrastructure: an attached QEMU that dies while
// lockstep waits for it is an infrastructure failure, not a verdict, and
// the other attached QEMU is left running.
func TestAttachDeadQEMUIsInfrastructure(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good := qemutest.Guest(t, "demo-spin-good")
	dir := qemutest.ShortDir(t)
	qa := startRunning(t, dir, "a", good, "demo: spin")
	qb := startRunning(t, dir, "b", good, "demo: spin")
	sc := parseScenario(t, dir, fmt.Sprintf(`name: attach-dead
timeout: 60s
guests:
  a: {label: one, attach: {qmp: %s}, symbols: %s}
  b: {label: two, attach: {qmp: %s}, symbols: %s}
sync:
  - break: report
    timeout: 20s
`, qa.qmp, good, qb.qmp, good))
	go func() {
		time.Sleep(time.Second)
		qb.cmd.Process.Kill()
	}()
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if !errors.Is(err, lockstep.ErrInfrastructure) {
		t.Fatalf("err %v, want an infrastructure failure", err)
	}
	if res.Outcome != lockstep.OutcomeError {
		t.Errorf("outcome %s, want error", res.Outcome)
	}
	if !strings.Contains(err.Error(), "guest b") {
		t.Errorf("error does not name guest b: %v", err)
	}
	checkLeftAlone(t, qa, "running", good, "report")
}

// fakeMonitor listens on path like a monitor socket: it greets every
// client with greeting and, when replies is set, answers each command by
// name (echoing its id); without replies it answers nothing.
func fakeMonitor(t *testing.T, path, greeting string, replies map[string]string) string {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(greeting))
				if replies == nil {
					time.Sleep(5 * time.Second)
					return
				}
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					var req struct {
						Execute string          `json:"execute"`
						ID      json.RawMessage `json:"id"`
					}
					if json.Unmarshal(sc.Bytes(), &req) != nil {
						return
					}
					r, ok := replies[req.Execute]
					if !ok {
						r = `{"error": {"class": "CommandNotFound", "desc": "no"}}`
					}
					var m map[string]any
					json.Unmarshal([]byte(r), &m)
					if req.ID != nil {
						m["id"] = req.ID
					}
					b, _ := json.Marshal(m)
					c.Write(append(b, '\n'))
				}
			}()
		}
	}()
	return path
}

// TestAttachRefused: a socket that is not QMP, a QMP monitor that refuses
// human-monitor-command, and no socket at all give a clear error naming
// the socket, as an infrastructure failure.
func TestAttachRefused(t *testing.T) {
	dir := qemutest.ShortDir(t)
	greeting := `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\n"
	refusing := map[string]string{
		"qmp_capabilities":      `{"return": {}}`,
		"query-version":         `{"return": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}}`,
		"query-status":          `{"return": {"status": "running", "running": true}}`,
		"query-kvm":             `{"return": {"enabled": false, "present": false}}`,
		"query-target":          `{"return": {"arch": "x86_64"}}`,
		"query-chardev":         `{"return": []}`,
		"human-monitor-command": `{"error": {"class": "CommandNotFound", "desc": "The command human-monitor-command has not been found"}}`,
	}
	sym := qemutest.Guest(t, "demo-good")
	for _, tc := range []struct {
		name, want string
		serve      func(path string)
	}{
		{"not-qmp", "not a QMP monitor", func(p string) { fakeMonitor(t, p, "SSH-2.0-OpenSSH_9.2\r\n", nil) }},
		{"refuses-hmp", "refused human-monitor-command", func(p string) { fakeMonitor(t, p, greeting, refusing) }},
		{"missing", "no such file", func(string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var socks [2]string
			for i := range socks {
				socks[i] = filepath.Join(dir, fmt.Sprintf("%s-%d.sock", tc.name, i))
				tc.serve(socks[i])
			}
			sc := parseScenario(t, dir, fmt.Sprintf(`name: refused
guests:
  a: {label: one, attach: {qmp: %s}, symbols: %s}
  b: {label: two, attach: {qmp: %s}, symbols: %s}
sync:
  - break: now
`, socks[0], sym, socks[1], sym))
			_, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err %v, want one naming the socket and saying %q", err, tc.want)
			}
			if !errors.Is(err, lockstep.ErrInfrastructure) {
				t.Errorf("err %v is not an infrastructure failure", err)
			}
		})
	}
}

// TestAttachHungGuest: a healthy guest against one hung in a loop
// (demo-hang, spinning in hang_here), both running and attached: b never
// reaches the symbol, which is an arrival divergence naming where it
// hangs; then a run interrupted (Ctrl-C) while waiting. Both QEMUs are
// left running after each.
func TestAttachHungGuest(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good, hang := qemutest.Guest(t, "demo-spin-good"), qemutest.Guest(t, "demo-hang")
	dir := qemutest.ShortDir(t)
	qa := startRunning(t, dir, "a", good, "demo: spin")
	qb := startRunning(t, dir, "b", hang, "demo: hang")
	text := fmt.Sprintf(`name: attach-hung
timeout: 60s
guests:
  a: {label: healthy, attach: {qmp: %s}, symbols: %s}
  b: {label: hung, attach: {qmp: %s}, symbols: %s}
compare: {registers: []}
sync:
  - break: now
  - break: marker
    timeout: %s
expect: diverge
`, qa.qmp, good, qb.qmp, hang, "2s")
	sc := parseScenario(t, dir, text)
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	arr := byKind(res, compare.KindArrival)
	if res.Outcome != lockstep.OutcomeDiverged || len(arr) != 1 {
		t.Fatalf("outcome %s, arrival divergences %+v", res.Outcome, arr)
	}
	if !res.Syncs[1].Reached[0] || res.Syncs[1].Reached[1] || arr[0].PC[1].Symbol != "hang_here" {
		t.Errorf("sync point 2: reached %v, b at %v; want a there and b interrupted in hang_here", res.Syncs[1].Reached, arr[0].PC[1])
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", hang, "kmain")

	// Interrupted while waiting for b: the run is cancelled, nothing is
	// killed, both are resumed.
	sc = parseScenario(t, dir, strings.Replace(text, "timeout: 2s", "timeout: 30s", 1))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	_, err = lockstep.Run(ctx, sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled run: err %v, want interrupted", err)
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", hang, "kmain")
	noLeftovers(t)
}

// TestAttachKVM: two KVM QEMUs started with only -qmp are attached to
// (query-kvm says KVM, so lockstep uses hardware breakpoints, Z1), the
// planted results[5] difference is found, and both are left running: every
// Z1 lockstep inserted was removed (the RSP transcripts pair each Z1 with
// a z1), no hardware breakpoint stops the guest afterwards (the run state
// stays "running" while tick keeps being called), and no gdbstub is left.
func TestAttachKVM(t *testing.T) {
	qemutest.RequireKVM(t, "qemu64")
	good, bad := qemutest.Guest(t, "demo-spin-good"), qemutest.Guest(t, "demo-spin-bad")
	dir := qemutest.ShortDir(t)
	qa := startRunningAccel(t, dir, "a", good, "demo: spin", "kvm")
	qb := startRunningAccel(t, dir, "b", bad, "demo: spin", "kvm")
	sc := parseScenario(t, dir, fmt.Sprintf(attachDemo, "attach-kvm", qa.qmp, good, qb.qmp, bad))
	runDir := qemutest.ShortDir(t)
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: runDir, Keep: true})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkAttachDemo(t, res, "kvm")
	logs, _ := filepath.Glob(filepath.Join(runDir, "lockstep-*", "*-rsp.log"))
	if len(logs) != 2 {
		t.Fatalf("RSP transcripts in %s: %v, want 2 (Keep)", runDir, logs)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		ins, del, sw := countBreakpoints(b)
		if len(ins) == 0 {
			t.Errorf("%s: no Z1 packet: KVM breakpoints must be hardware ones", l)
		}
		if sw != 0 {
			t.Errorf("%s: %d software breakpoints (Z0) under KVM", l, sw)
		}
		for addr, n := range ins {
			if del[addr] != n {
				t.Errorf("%s: hardware breakpoint at %s inserted %d times, removed %d times", l, addr, n, del[addr])
			}
		}
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", bad, "tick")
	noLeftovers(t)
}

var rspBreakpoint = regexp.MustCompile(`\$([zZ])([01]),([0-9a-fA-F]+),`)

// countBreakpoints counts the Z1 and z1 packets lockstep sent in an RSP
// transcript, by address, and the Z0 packets.
func countBreakpoints(transcript []byte) (ins, del map[string]int, sw int) {
	ins, del = map[string]int{}, map[string]int{}
	for _, m := range rspBreakpoint.FindAllSubmatch(transcript, -1) {
		addr := string(m[3])
		switch {
		case string(m[1]) == "Z" && string(m[2]) == "0":
			sw++
		case string(m[1]) == "Z":
			ins[addr]++
		case string(m[2]) == "1":
			del[addr]++
		}
	}
	return ins, del, sw
}

// TestAttachInjectionStays: an injection into an attached guest is
// compared like any other, and the report says that what it wrote stays
// in the running QEMU (lockstep restores its breakpoints, not the guest's
// state); the other side is untouched and both keep running.
func TestAttachInjectionStays(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good := qemutest.Guest(t, "demo-spin-good")
	dir := qemutest.ShortDir(t)
	qa := startRunning(t, dir, "a", good, "demo: spin")
	qb := startRunning(t, dir, "b", good, "demo: spin")
	sc := parseScenario(t, dir, fmt.Sprintf(`name: attach-inject
timeout: 60s
guests:
  a: {label: one, attach: {qmp: %s}, symbols: %s}
  b: {label: two, attach: {qmp: %s}, symbols: %s}
compare: {registers: []}
sync:
  - break: now
  - break: tick
    compare: {memory: [{symbol: results}]}
inject:
  - side: b
    at: {sync: 1}
    set: {memory: {symbol: results, offset: 0xf8, bytes: "ee ee"}}
expect: diverge
`, qa.qmp, good, qb.qmp, good))
	res, err := lockstep.Run(context.Background(), sc, lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if mem := byKind(res, compare.KindMemory); res.Outcome != lockstep.OutcomeDiverged || len(mem) != 1 || mem[0].Sync != 1 {
		t.Fatalf("outcome %s, memory divergences %+v; want the injected bytes at tick", res.Outcome, mem)
	}
	note := false
	for _, n := range res.Notes {
		note = note || strings.Contains(n, "guest b (two): what the injections set (results+0xf8: ee ee) stays in the running QEMU")
	}
	if !note {
		t.Errorf("no note that the injection stays in b: %q", res.Notes)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "guest a (one): what the injections set") {
			t.Errorf("a note about a, which was not injected: %q", n)
		}
	}
	results := elfSymbols(t, good)["results"].addr + 0xf8
	for _, q := range []*runningQEMU{qa, qb} {
		m := q.monitor(t)
		got := hmpBytes(t, m, results, 2)
		m.Close()
		if injected := bytes.Equal(got, []byte{0xee, 0xee}); injected != (q == qb) {
			t.Errorf("%s: results+0xf8 is % x after the run", q.qmp, got)
		}
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", good, "tick")
	noLeftovers(t)
}

// TestAttachStatsBaseline: two KVM QEMUs started a while apart count
// their exits from different starts, so the first sync point is a
// baseline (noted, not compared) and the deltas are compared from the
// next point on; with stats at the only point, nothing is compared and
// the run is incomplete, never a pass.
func TestAttachStatsBaseline(t *testing.T) {
	qemutest.RequireKVM(t, "qemu64")
	good := qemutest.Guest(t, "demo-spin-good")
	dir := qemutest.ShortDir(t)
	qa := startRunningAccel(t, dir, "a", good, "demo: spin", "kvm")
	time.Sleep(time.Second)
	qb := startRunningAccel(t, dir, "b", good, "demo: spin", "kvm")
	text := fmt.Sprintf(`name: attach-stats
timeout: 60s
guests:
  a: {label: early, attach: {qmp: %s}, symbols: %s}
  b: {label: late, attach: {qmp: %s}, symbols: %s}
compare:
  registers: []
  stats: {tolerance: {ratio: 1000, absolute: 1000000}}
sync:
  - break: now
  - {break: tick, hit: 3}
`, qa.qmp, good, qb.qmp, good)
	res, err := lockstep.Run(context.Background(), parseScenario(t, dir, text), lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Syncs[0].Stats != nil || len(res.Syncs[0].Uncompared) != 0 {
		t.Errorf("sync 1: stats %+v uncompared %v, want a baseline: not compared, not missing", res.Syncs[0].Stats, res.Syncs[0].Uncompared)
	}
	if st := res.Syncs[1].Stats; st == nil || st.Since != "sync 1" {
		t.Errorf("sync 2: stats %+v, want deltas since sync 1", st)
	}
	if res.Outcome != lockstep.OutcomeIdentical || !res.Passed {
		t.Errorf("outcome %s passed %v, want identical (within a wide tolerance); notes %q", res.Outcome, res.Passed, res.Notes)
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool {
		return strings.Contains(n, "sync point 1: stats not compared: an attached QEMU's counters count from when it started")
	}) {
		t.Errorf("no baseline note: %q", res.Notes)
	}

	// Stats at the only point: nothing to compare them with.
	one := strings.Replace(text, "  - {break: tick, hit: 3}\n", "", 1)
	res, err = lockstep.Run(context.Background(), parseScenario(t, dir, one), lockstep.Options{RunDir: qemutest.ShortDir(t)})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Outcome != lockstep.OutcomeIncomplete || res.Passed || !slices.Contains(res.Syncs[0].Uncompared, "stats") {
		t.Errorf("one point: outcome %s passed %v uncompared %v, want incomplete with stats", res.Outcome, res.Passed, res.Syncs[0].Uncompared)
	}
	checkLeftAlone(t, qa, "running", good, "tick")
	checkLeftAlone(t, qb, "running", good, "tick")
	noLeftovers(t)
}
