package scenario

import (
	"testing"
)

func TestAttachParse(t *testing.T) {
	t.Parallel()
	s, err := Parse("/x/t.yaml", []byte(`name: t
guests:
  defaults: {kernel: k.elf, memory: 128M}
  a: {label: good}
  b: {label: prod, attach: {qmp: run/b.qmp, on_exit: pause}, symbols: vmlinux}
sync:
  - break: now
  - break: main
    hit: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Guests[0], s.Guests[1]
	if a.Attach != nil || a.Kernel != "/x/k.elf" || a.Memory != "128M" {
		t.Errorf("launched side a: %+v", a)
	}
	if b.Attach == nil || b.Attach.QMP != "/x/run/b.qmp" || b.Attach.OnExit != OnExitPause {
		t.Fatalf("attached side b: %+v", b.Attach)
	}
	if b.Kernel != "" || b.Memory != "" || b.QEMU != "" || b.Args != nil || b.Symbols != "/x/vmlinux" {
		t.Errorf("attached side b keeps launch fields: %+v", b)
	}
	if !s.AnyAttached() || s.Attached(0) || !s.Attached(1) {
		t.Errorf("Attached: %v %v", s.Attached(0), s.Attached(1))
	}
	if s.Localize.Enabled {
		t.Errorf("localize enabled with an attached side")
	}
	if !s.Sync[0].Now || s.Sync[0].Break != BreakNow || s.Sync[1].Now || s.Sync[1].Symbol != "main" {
		t.Errorf("sync points: %+v", s.Sync)
	}
	s, err = Parse("/x/t.yaml", []byte(`name: t
guests:
  a: {attach: {qmp: "tcp:127.0.0.1:4444"}, symbols: s}
  b: {attach: {qmp: /run/b.qmp}, symbols: s}
sync:
  - break: now+0
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Guests[0].Attach.QMP != "tcp:127.0.0.1:4444" || s.Sync[0].Now || s.Sync[0].Symbol != "now" {
		t.Errorf("tcp attach / now+0: %+v %+v", s.Guests[0].Attach, s.Sync[0])
	}
}
