package lockstep_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
	"github.com/lockstep-dev/lockstep/scenario"
)

// TestHitIsRelative checks what docs/scenario.md says of hit: arrivals
// are counted from the previous sync point, so checksum hit 2 then
// checksum hit 1 is the same call as checksum hit 3 after kmain; and
// hit_total counts from boot.
func TestHitIsRelative(t *testing.T) {
	qemutest.Require(t, "x86_64", "tcg")
	good := qemutest.Guest(t, "demo-good")
	last := func(sync string) []compare.RegisterValue {
		t.Helper()
		p := filepath.Join(t.TempDir(), "hit.yaml")
		body := fmt.Sprintf("name: hit\nguests:\n  defaults: {kernel: %s}\n  a: {label: one}\n  b: {label: two}\n"+
			"compare: {registers: [rdi, rsi]}\nlocalize: {enabled: false}\nsync:\n%s", good, sync)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		sc, err := scenario.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := lockstep.Run(context.Background(), sc, lockstep.Options{})
		if err != nil {
			t.Fatal(err)
		}
		noLeftovers(t)
		s := res.Syncs[len(res.Syncs)-1]
		if !s.Reached[0] || len(s.State[0].Registers) != 2 {
			t.Fatalf("last sync point %+v", s)
		}
		return s.State[0].Registers
	}
	third := last("  - break: kmain\n  - {break: checksum, hit: 3}\n")
	twoThenOne := last("  - break: kmain\n  - {break: checksum, hit: 2}\n  - {break: checksum, hit: 1}\n")
	second := last("  - break: kmain\n  - {break: checksum, hit: 2}\n")
	if !slices.Equal(third, twoThenOne) {
		t.Errorf("hit 2 then hit 1 stopped at %v, hit 3 at %v: want the same call", twoThenOne, third)
	}
	if slices.Equal(third, second) {
		t.Errorf("hit 2 and hit 3 stopped at the same call %v", second)
	}
	// hit_total counts from boot: after checksum's 2nd call, its 3rd.
	total := last("  - {break: checksum, hit: 2}\n  - {break: checksum, hit_total: 3}\n")
	if !slices.Equal(third, total) {
		t.Errorf("hit 2 then hit_total 3 stopped at %v, the 3rd call at %v: want the same call", total, third)
	}
}
