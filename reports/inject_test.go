package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// TestInjectionsRendered: a fault injected into one side is shown in
// every human format, where it happened and what it set, as a deliberate
// difference, and kept in the JSON; so is a side lockstep attached to.
func TestInjectionsRendered(t *testing.T) {
	r := &lockstep.Result{Schema: lockstep.SchemaVersion, Scenario: "inj", Outcome: lockstep.OutcomeDiverged,
		Expect: "diverge", Passed: true, Divergences: []compare.Divergence{},
		Syncs: []lockstep.SyncResult{{Index: 0, Break: "kmain", Hit: 1, Status: lockstep.SyncMatch},
			{Index: 1, Break: "report", Hit: 1, Status: lockstep.SyncDiverge}},
		Sides: [2]lockstep.Side{{Label: "clean"}, {Label: "prod", Accel: "tcg", Attach: "/run/b.qmp", OnExit: "paused", State: lockstep.StateDetached}},
		Injections: []lockstep.Injection{{Index: 0, Side: "b", Where: "return of alloc (call 3)", Set: "rax=0x0",
			Sync: 1, PC: compare.Location{Addr: 0x1000, Symbol: "make_item", Offset: 0x16}}},
	}
	for _, f := range []Format{FormatText, FormatMarkdown, FormatHTML, FormatJSON} {
		var b bytes.Buffer
		if err := Render(&b, f, r, Options{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out := b.String()
		pc := map[Format]string{FormatText: "make_item+0x16", FormatMarkdown: `make\_item+0x16`,
			FormatHTML: "make_item&#43;0x16", FormatJSON: `"symbol": "make_item"`}[f]
		attached := "attached (QMP /run/b.qmp), left paused"
		if f == FormatJSON {
			attached = `"attach": "/run/b.qmp"`
		}
		for _, want := range []string{"return of alloc (call 3)", "rax=0x0", pc, attached} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", f, want, out)
			}
		}
		note := injectedNote
		if f == FormatText {
			note = "(deliberate)"
		}
		if f != FormatJSON && !strings.Contains(out, note) {
			t.Errorf("%s: the injection is not marked deliberate:\n%s", f, out)
		}
		if f == FormatText && !strings.Contains(out, "on the way to sync 2 (report)") {
			t.Errorf("text: the injection does not name its sync point:\n%s", out)
		}
	}
}
