package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1234 * time.Nanosecond, "1µs"},
		{342110280 * time.Nanosecond, "342ms"},
		{1632514862 * time.Nanosecond, "1.633s"},
		{9999400 * time.Microsecond, "9.999s"},
		{12345678901 * time.Nanosecond, "12.3s"},
		{125*time.Second + 40*time.Millisecond, "2m5s"},
	}
	for _, tt := range tests {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%d) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestDivPC(t *testing.T) {
	t.Parallel()
	rep := compare.Location{Addr: 0x1000, Symbol: "report"}
	hang := compare.Location{Addr: 0x200e, Symbol: "hang_here", Offset: 0xe}
	tests := []struct {
		name string
		d    compare.Divergence
		want string
	}{
		{"same", compare.Divergence{PC: [2]compare.Location{rep, rep}}, "report"},
		{"different", compare.Divergence{PC: [2]compare.Location{rep, hang}}, "a report, b hang_here+0xe"},
		{"none", compare.Divergence{}, ""},
		{"arrival exited", compare.Divergence{PC: [2]compare.Location{rep, {}},
			Arrival: &compare.ArrivalDiff{State: [2]string{"reached", "exited"}}}, "a report, b exited"},
		{"exit", compare.Divergence{PC: [2]compare.Location{{}, hang},
			Exit: &compare.ExitDiff{State: [2]string{"exited", "running"}}}, "a exited, b hang_here+0xe"},
		{"no pc", compare.Divergence{PC: [2]compare.Location{rep, {}}}, "a report, b not reached"},
	}
	for _, tt := range tests {
		if got := divPC(&tt.d); got != tt.want {
			t.Errorf("%s: divPC = %q, want %q", tt.name, got, tt.want)
		}
		if strings.Contains(pcPair(tt.d.PC), "0x0") {
			t.Errorf("%s: pcPair shows 0x0: %q", tt.name, pcPair(tt.d.PC))
		}
	}
}

func TestArrivalSide(t *testing.T) {
	t.Parallel()
	seven := 7
	hang := compare.Location{Addr: 0x200e, Symbol: "hang_here", Offset: 0xe}
	tests := []struct {
		name string
		a    compare.ArrivalDiff
		pc   compare.Location
		want string
	}{
		{"detail wins", compare.ArrivalDiff{State: [2]string{"exited"}, ExitCode: [2]*int{&seven},
			Detail: [2]string{"exited with status 7"}}, compare.Location{}, "exited with status 7"},
		{"timeout detail", compare.ArrivalDiff{State: [2]string{"timeout"},
			Detail: [2]string{"did not arrive within 5s; interrupted at hang_here+0xe"}}, hang,
			"did not arrive within 5s; interrupted at hang_here+0xe"},
		{"exited no detail", compare.ArrivalDiff{State: [2]string{"exited"}, ExitCode: [2]*int{&seven}}, compare.Location{}, "exited with code 7"},
		{"timeout no detail", compare.ArrivalDiff{State: [2]string{"timeout"}}, hang, "timeout at hang_here+0xe"},
		{"reached no state", compare.ArrivalDiff{Reached: [2]bool{true}}, hang, "reached at hang_here+0xe"},
		{"unknown", compare.ArrivalDiff{}, compare.Location{}, "unknown"},
	}
	for _, tt := range tests {
		if got := arrivalSide(&tt.a, tt.pc, 0); got != tt.want {
			t.Errorf("%s: arrivalSide = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFirstLineNoRepeatedWhere(t *testing.T) {
	t.Parallel()
	hang := compare.Location{Addr: 0x200e, Symbol: "hang_here", Offset: 0xe}
	rep := compare.Location{Addr: 0x1000, Symbol: "report"}
	arr := &compare.Divergence{Kind: compare.KindArrival, Sync: 1, SyncName: "report",
		PC: [2]compare.Location{rep, hang}, Summary: "a reached report; b did not arrive within 5s; interrupted at hang_here+0xe",
		Arrival: &compare.ArrivalDiff{State: [2]string{"reached", "timeout"}}}
	if got := firstLine(arr); strings.Count(got, "hang_here") != 1 || strings.HasSuffix(got, "b hang_here+0xe") {
		t.Errorf("arrival firstLine repeats the location: %q", got)
	}
	reg := &compare.Divergence{Kind: compare.KindRegister, Sync: 0, PC: [2]compare.Location{rep, rep}, Summary: "rax: 0x1 vs 0x2"}
	if got, want := firstLine(reg), "sync 1: register rax: 0x1 vs 0x2 at report"; got != want {
		t.Errorf("register firstLine = %q, want %q", got, want)
	}
}

func TestCallPathLabel(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"":          "backtrace, outermost first",
		"backtrace": "backtrace, outermost first",
		"trace":     "trace, in call order",
		"other":     "other",
	} {
		if got := callPathLabel(src); got != want {
			t.Errorf("callPathLabel(%q) = %q, want %q", src, got, want)
		}
	}
}

func TestAlignColumns(t *testing.T) {
	t.Parallel()
	got := alignColumns([][]string{{"a", "path_b", "", "call path_b"}, {"b", "leaf+0x10", "", "ret"}})
	want := "a  path_b     call path_b\nb  leaf+0x10  ret\n"
	if got != want {
		t.Errorf("alignColumns =\n%q\nwant\n%q", got, want)
	}
}

// TestSyncTitleHitTotal checks that a point given by hit_total is named by
// its arrival from boot, the number the scenario says.
func TestSyncTitleHitTotal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		sy   lockstep.SyncResult
		want string
	}{
		{lockstep.SyncResult{Index: 1, Break: "checksum", Hit: 2}, "sync 2: checksum (hit 2)"},
		{lockstep.SyncResult{Index: 1, Break: "checksum", Hit: 2, HitTotal: 5}, "sync 2: checksum (hit 5 from boot)"},
		{lockstep.SyncResult{Index: 0, Break: "kmain"}, "sync 1: kmain (hit 1)"},
	} {
		if got := syncTitle(tt.sy); got != tt.want {
			t.Errorf("syncTitle(%+v) = %q, want %q", tt.sy, got, tt.want)
		}
	}
}

// TestLocalisedCallHeadline checks that a divergence localised by function
// entry is named and counted as a call, not as an instruction, and its
// headline starts with the finding (issue 14: "instruction localised
// between sync points 2 and 3 (by function entry: …): call #2: …" counted
// as an instruction).
func TestLocalisedCallHeadline(t *testing.T) {
	t.Parallel()
	call := &compare.Divergence{Kind: compare.KindInstruction, Sync: 2, SyncName: "leaf",
		Summary:     "call #2: path_b vs path_c (localised by function entry between sync points 2 and 3: different builds)",
		Instruction: &compare.InstructionDiff{Granularity: compare.ByFunction}}
	store := &compare.Divergence{Kind: compare.KindInstruction, Sync: 4, SyncName: "report",
		Summary:     "write #1 to results+0x28 in kmain: 0x1 vs 0x2 (localised by write watchpoint between sync points 4 and 5)",
		Instruction: &compare.InstructionDiff{Granularity: compare.ByWrite}}
	step := &compare.Divergence{Kind: compare.KindInstruction, Sync: 1, SyncName: "checksum", Step: 3, Summary: "cmp changed eflags"}
	for _, tt := range []struct {
		d    *compare.Divergence
		want string
	}{
		{call, "sync 3 leaf: call #2: path_b vs path_c (localised by function entry"},
		{store, "sync 5 report: write #1 to results+0x28 in kmain: 0x1 vs 0x2 (localised by write watchpoint"},
		{step, "sync 2 checksum, step 3: instruction cmp changed eflags"},
	} {
		if got := firstLine(tt.d); !strings.HasPrefix(got, tt.want) {
			t.Errorf("firstLine = %q, want it to start %q", got, tt.want)
		}
	}
	r := &lockstep.Result{Divergences: []compare.Divergence{*step, *call, *call, *store}}
	if got := countsLine(summarize(r)); !strings.Contains(got, "1 instruction, 2 call, 1 store") {
		t.Errorf("counts %q, want 1 instruction, 2 call, 1 store", got)
	}
}
