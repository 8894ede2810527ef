package guest

import (
	"context"

	"github.com/lockstep-dev/lockstep/lockstep/arch"
)

// RepString reports whether the instruction at pc is an x86 REP-prefixed
// string instruction (rep movs, rep stos, repe cmps, ...), decoded in the
// mode the vCPU runs in. QEMU versions step and log those differently per
// iteration; the engine counts each as one instruction, at its retirement.
// False on other architectures or when the code cannot be read.
func (g *Guest) RepString(ctx context.Context, pc uint64) bool {
	if g.Arch.Name != "x86_64" && g.Arch.Name != "i386" {
		return false
	}
	return g.RepStringMode(ctx, pc, g.Mode(ctx))
}

// RepStringMode is RepString decoding in mode (16, 32 or 64; 0 is the
// architecture's default), for code the vCPU runs in another mode than
// now (a CPU log's state says which).
func (g *Guest) RepStringMode(ctx context.Context, pc uint64, mode int) bool {
	if g.Arch.Name != "x86_64" && g.Arch.Name != "i386" {
		return false
	}
	code, err := g.code(ctx, pc)
	if err != nil {
		return false
	}
	if mode == 0 {
		mode = 64
		if g.Arch.Name == "i386" {
			mode = 32
		}
	}
	return arch.X86RepString(code, mode)
}
