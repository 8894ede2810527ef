package scenario

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// finish applies defaults, merges guests and per-point comparisons, and
// checks the rules that span fields. It tolerates a partially decoded tree
// so that all problems are reported together.
func (b *builder) finish(root *yaml.Node) {
	s, d := b.s, b.d
	rootPos := d.at(root)
	if root.Kind != yaml.MappingNode {
		return
	}
	if _, ok := s.Pos["name"]; !ok || s.Name == "" {
		d.errs.addf(posOr(s.Pos, "name", rootPos), "name is required")
	}
	if !b.timeoutSet {
		s.Timeout = DefaultTimeout
	}
	if s.Expect == "" {
		s.Expect = ExpectIdentical
	}
	if !b.sstepSet {
		s.Determinism.Sstep = []string{SstepNoIRQ, SstepNoTimer}
	}
	if !b.localizeSet {
		s.Localize.Enabled = true
	}
	if !b.maxStepsSet {
		s.Localize.MaxSteps = DefaultMaxSteps
	}
	if s.Localize.MaxWrites == 0 {
		s.Localize.MaxWrites = DefaultMaxWrites
	}
	if s.Localize.Method == "" {
		s.Localize.Method = MethodAuto
	}
	if s.Localize.Checkpoint == "" {
		s.Localize.Checkpoint = CheckpointAuto
	}

	// Guests.
	switch {
	case b.guests == nil && b.guestsNode == nil:
		d.errs.addf(rootPos, "guests is required")
	case b.guests != nil:
		for i, side := range SideNames {
			if _, ok := b.guestsKeys[side]; !ok && b.guestsKeys != nil {
				d.errorf(b.guestsNode, "guests: %s is required", side)
			}
			s.Guests[i] = b.mergeGuest(i)
		}
		if s.Guests[0].Label == s.Guests[1].Label && !b.guestsBad {
			d.errs.addf(posOr(s.Pos, "guests.b.label", s.Guests[1].Pos),
				"guests: a and b have the same label %q", s.Guests[1].Label)
		}
	}

	// Comparison defaults, then each sync point's effective comparison.
	s.Compare = mergeCompare(CompareSpec{Registers: []string{"general"}, CallPath: CallPathNone}, b.compare)
	if !b.haveSync && b.syncNode == nil {
		d.errs.addf(rootPos, "sync is required")
	}
	for i := range s.Sync {
		s.Sync[i].Compare = mergeCompare(s.Compare, b.syncRaw[i])
		// An inherited field points at the top-level compare.
		for _, f := range []string{"registers", "ignore", "memory", "callpath", "stats"} {
			key := fmt.Sprintf("sync[%d].compare.%s", i, f)
			if _, set := s.Pos[key]; !set {
				if p, ok := s.Pos["compare."+f]; ok {
					s.Pos[key] = p
				}
			}
		}
	}

	// icount is TCG only.
	if s.Determinism.Icount != "" && b.guests != nil {
		for i, g := range s.Guests {
			if g.Accel == AccelKVM {
				d.errorf(b.icountNode, "determinism.icount: not supported with accel kvm (guest %s)", SideNames[i])
			}
		}
	}

	// Attached guests: nothing relaunches them, and their command line is
	// not lockstep's.
	if b.guests != nil && s.AnyAttached() {
		if s.Localize.Enabled && b.localizeSet {
			d.errs.addf(posOr(s.Pos, "localize", rootPos), "localize: not available when a side attaches to a running QEMU (localisation replays both guests from boot)")
		}
		s.Localize.Enabled = false
		if s.Determinism.Icount != "" {
			d.errorf(b.icountNode, "determinism.icount: cannot be applied to a QEMU that is already running (attach)")
		}
		if s.Attached(0) && s.Attached(1) && s.Guests[0].Attach.QMP == s.Guests[1].Attach.QMP {
			d.errs.addf(s.Guests[1].Attach.Pos, "guests.b.attach.qmp: the same QEMU as guests.a (%s)", s.Guests[1].Attach.QMP)
		}
	}

	// An injection at a sync point names one that exists.
	for i, in := range s.Inject {
		if in.Sync >= len(s.Sync) && len(s.Sync) > 0 {
			d.errorf(b.injectNodes[i], "inject[%d].at.sync: %d, but there are %d sync points", i, in.Sync+1, len(s.Sync))
		}
	}

	// Symbolic names need symbols on both sides.
	if name := s.usesSymbols(); name != "" && b.guests != nil && !b.guestsBad {
		for i, g := range s.Guests {
			if g.Symbols == "" {
				if g.Attach != nil {
					d.errs.addf(g.Pos, "guests.%s: %q needs symbols: set symbols to the ELF the attached guest runs", SideNames[i], name)
					continue
				}
				d.errs.addf(g.Pos, "guests.%s: %q needs symbols: set kernel or symbols", SideNames[i], name)
			}
		}
	}
}

func posOr(m map[string]Position, key string, dflt Position) Position {
	if p, ok := m[key]; ok {
		return p
	}
	return dflt
}
