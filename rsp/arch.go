package rsp

import "strings"

// arch holds the little architecture knowledge the client needs: byte
// order, the names of the PC, SP and FP registers, and groups for registers
// that target descriptions leave ungrouped.
type arch struct {
	bigEndian bool
	special   [3]string // pc, sp, fp
	groups    map[string]string
	// normalize, when set, gives a register its group whatever its
	// target description calls it, so that "general", "float", "vector"
	// and "system" mean the same on every CPU model of the architecture.
	normalize func(r *Register) string
}

// archFor maps a target.xml <architecture> to its arch entry.
func archFor(name string) (arch, bool) {
	n := strings.ToLower(name)
	switch {
	case n == "i386:x86-64" || strings.HasPrefix(n, "i386:x86-64"):
		return x86_64, true
	case strings.HasPrefix(n, "i386") || strings.HasPrefix(n, "i8086"):
		return i386, true
	case strings.HasPrefix(n, "aarch64"):
		return arch{special: [3]string{"pc", "sp", "x29"}, normalize: aarch64Group}, true
	case strings.HasPrefix(n, "arm"):
		return arch{special: [3]string{"pc", "sp", "r11"}}, true
	case strings.HasPrefix(n, "riscv"):
		return arch{special: [3]string{"pc", "sp", "fp"}, normalize: riscvGroup}, true
	case strings.HasPrefix(n, "s390"):
		return arch{bigEndian: true, special: [3]string{"pswa", "r15", "r11"}, normalize: s390Group}, true
	case strings.HasPrefix(n, "m68k"), strings.HasPrefix(n, "sparc"), strings.HasPrefix(n, "hppa"),
		strings.HasPrefix(n, "or1k"), strings.HasPrefix(n, "powerpc"):
		return arch{bigEndian: true, special: [3]string{"pc", "sp", "fp"}}, true
	}
	return arch{}, false
}
