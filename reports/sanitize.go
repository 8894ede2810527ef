package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// printable escapes control characters (C0, DEL, C1) in s as \xNN, so that
// text from a scenario or a guest (a name, a label, serial output) cannot
// move the cursor, clear the screen or print a fake verdict on a terminal.
// With multiline, newlines and tabs are kept.
func printable(s string, multiline bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD") // a stray 0x9b byte is a CSI on some terminals
	clean := true
	for _, r := range s {
		if isControl(r, multiline) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r, multiline) {
			fmt.Fprintf(&b, `\x%02x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune, multiline bool) bool {
	if multiline && (r == '\n' || r == '\t') {
		return false
	}
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0
}

// sanitized returns a copy of r whose free-text fields (from the scenario,
// the guests and QEMU) hold no control characters, for the renderers that
// write text a terminal or a browser shows. r is not changed.
func sanitized(r *lockstep.Result) *lockstep.Result {
	c := *r
	c.Scenario = printable(r.Scenario, false)
	c.File = printable(r.File, false)
	c.Description = printable(r.Description, true)
	c.Error = printable(r.Error, true)
	c.Notes = make([]string, len(r.Notes))
	for i, n := range r.Notes {
		c.Notes[i] = printable(n, true)
	}
	for i := range c.Sides {
		s := &c.Sides[i]
		s.Label = printable(s.Label, false)
		s.Kernel = printable(s.Kernel, false)
		s.Symbols = printable(s.Symbols, false)
		s.QEMU = printable(s.QEMU, false)
		s.Command = printable(s.Command, false)
		s.SerialTail = printable(s.SerialTail, true)
	}
	c.Syncs = slices.Clone(r.Syncs)
	for i := range c.Syncs {
		c.Syncs[i].Break = printable(c.Syncs[i].Break, false)
		for j := range c.Syncs[i].State {
			// A task names itself, and a corrupted task_struct holds
			// anything.
			if t := c.Syncs[i].State[j].Task; t != nil {
				tc := *t
				tc.Comm = printable(tc.Comm, false)
				c.Syncs[i].State[j].Task = &tc
			}
		}
	}
	c.Divergences = make([]compare.Divergence, len(r.Divergences))
	for i, d := range r.Divergences {
		d.Summary = printable(d.Summary, false)
		d.SyncName = printable(d.SyncName, false)
		c.Divergences[i] = d
	}
	return &c
}
