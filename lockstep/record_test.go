package lockstep

import (
	"slices"
	"testing"

	"github.com/lockstep-dev/lockstep/scenario"
)

// TestNotesOnce checks that a report holds one copy of each note, with how
// many times it came (issue 15, item 2: 516 copies of one backtrace note).
func TestNotesOnce(t *testing.T) {
	t.Parallel()
	r := newRun(&scenario.Scenario{Name: "notes"}, Options{})
	for range 516 {
		r.Note("guest a: in real mode (cr0.PE clear): no call path beyond the pc")
	}
	r.Note("localisation: done")
	r.Note("localisation: done")
	r.Note("once")
	r.finish(nil)
	want := []string{
		"guest a: in real mode (cr0.PE clear): no call path beyond the pc (516 times)",
		"localisation: done (2 times)",
		"once",
	}
	if !slices.Equal(r.res.Notes, want) {
		t.Errorf("notes %q, want %q", r.res.Notes, want)
	}
}
