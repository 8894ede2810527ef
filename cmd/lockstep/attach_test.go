package main

import (
	"path/filepath"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// TestAttachRefusesReplay: what replays guests from boot refuses attached
// sides clearly: calibrate and run --calibrate before touching any QEMU
// (exit 2, the attach field's file:line:col), --hold after the run, with
// the reason. The QMP sockets do not exist: nothing is attached.
func TestAttachRefusesReplay(t *testing.T) {
	dir := qemutest.ShortDir(t)
	path := writeScenario(t, "att.yaml", `name: att
guests:
  a: {label: one, attach: {qmp: `+filepath.Join(dir, "a.qmp")+`}, symbols: KERNEL}
  b: {label: two, attach: {qmp: `+filepath.Join(dir, "b.qmp")+`}, symbols: KERNEL}
sync:
  - break: now
`, qemutest.Guest(t, "demo-good"))
	checkCLI(t, []cliCase{
		{"calibrate", []string{"calibrate", path}, 2, nil,
			[]string{"att.yaml:3:", "guest a attaches to a running QEMU"}},
		{"run --calibrate", []string{"run", "--calibrate", "3", path}, 2, nil,
			[]string{"att.yaml:3:", "guest a attaches to a running QEMU"}},
		{"run --hold", []string{"run", "--hold", "--run-dir", dir, path}, 3, nil,
			[]string{"not holding: a side attached to a running QEMU", "cannot be restarted", "cannot attach to the running QEMU at " + dir}},
	})
}

// TestRunTimeScenarioError: a scenario error only the running guests show
// (a register value wider than the register) is exit 2 with its
// file:line:col, and does not send the user to lockstep validate, which
// would say ok.
func TestRunTimeScenarioError(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	path := writeScenario(t, "wide.yaml", `name: wide
guests:
  defaults: {kernel: KERNEL}
  a: {label: clean}
  b: {label: injected}
sync:
  - break: kmain
  - break: report
inject:
  - side: b
    at: {sync: 1}
    set: {eflags: 0x1ffffffff}
`, qemutest.Guest(t, "alloc"))
	checkCLI(t, []cliCase{
		{"validate", []string{"validate", path}, 0, []string{"wide.yaml: ok"}, nil},
		{"run", []string{"run", "--run-dir", qemutest.ShortDir(t), path}, 2, nil,
			[]string{"wide.yaml:12:11: eflags=0x1ffffffff does not fit", "lockstep validate cannot check"}},
	})
}
