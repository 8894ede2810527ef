package engine

import (
	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/internal/guest"
)

// state is what c captured on g, as the report shows it: the pc with its
// source, the compared registers in compare order and the backtrace.
func (c *capture) state(g *guest.Guest) compare.SideState {
	return compare.SideState{
		PC:        g.Loc(c.pc),
		Registers: c.regs.List(),
		Backtrace: c.backtrace,
		Task:      c.task,
	}
}
