package lockstep

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/arch"
	"github.com/lockstep-dev/lockstep/lockstep/qemu"
	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Validate loads a scenario and checks it without starting anything: the
// strict schema checks of package scenario, that each side's files exist,
// and that every breakpoint, memory and trace symbol resolves in that
// side's symbol file. Problems are returned together; scenario problems
// carry file:line:col.
func Validate(path string) (*scenario.Scenario, error) {
	sc, err := scenario.Load(path)
	if err != nil {
		return nil, err
	}
	if _, err := checkScenario(sc, nil); err != nil {
		return nil, err
	}
	if errs := checkModels(context.Background(), sc); len(errs) > 0 {
		return nil, &ScenarioError{Err: errors.Join(errs...)}
	}
	return sc, nil
}

// checkModels checks each side's cpu and machine against what its QEMU
// binary lists for -cpu help and -machine help, when the binary is there
// (a missing QEMU is a run-time infrastructure failure, not a scenario
// error, and a binary that cannot list them is not held against the
// scenario).
func checkModels(ctx context.Context, sc *scenario.Scenario) []error {
	var errs []error
	seen := map[string]bool{}
	for i, g := range sc.Guests {
		side := scenario.SideNames[i]
		bin, err := qemu.Spec{Arch: g.Arch, Binary: g.QEMU}.Resolve()
		if err != nil {
			continue
		}
		for _, c := range []struct {
			field, value, what string
			list               func(context.Context, string) ([]string, error)
		}{
			{"cpu", g.CPU, "CPU model", qemu.CPUModels},
			{"machine", g.Machine, "machine type", qemu.MachineTypes},
		} {
			name := qemu.ModelName(c.value)
			if name == "" || name == "help" {
				continue
			}
			names, err := c.list(ctx, bin)
			if err != nil || slices.Contains(names, name) {
				continue
			}
			msg := fmt.Sprintf("%s: guest %s: %s: %s does not know %s %q", sc.PosOf(fmt.Sprintf("guests.%s.%s", side, c.field)),
				side, c.field, bin, c.what, name)
			if near := closest(name, names); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			if !seen[msg] {
				seen[msg] = true
				errs = append(errs, errors.New(msg))
			}
		}
	}
	return errs
}

// closest returns the name in names nearest to s by edit distance, if it
// is within a third of s's length.
func closest(s string, names []string) string {
	best, bestD := "", len(s)/3+1
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkScenario checks the files a scenario names, loads each side's
// symbols (once when both sides share a file, concurrently otherwise) and
// checks that every symbol the scenario uses resolves. A non-nil cache
// shares the tables with other runs.
func checkScenario(sc *scenario.Scenario, cache *symbols.Cache) ([2]*symbols.Table, error) {
	load := symbols.Load
	if cache != nil {
		load = cache.Load
	}
	var tables [2]*symbols.Table
	var errs []error
	for i, g := range sc.Guests {
		side := scenario.SideNames[i]
		for _, f := range []struct{ field, path string }{{"kernel", g.Kernel}, {"initrd", g.Initrd}, {"bios", g.BIOS}, {"symbols", g.Symbols}} {
			if f.field == "bios" && f.path == scenario.BIOSNone {
				if _, ok, why := scenario.NoFirmware(g.Arch); !ok {
					p := sc.PosOf(fmt.Sprintf("guests.%s.bios", side))
					errs = append(errs, fmt.Errorf("%s: guest %s: bios: none on %s: %s", p, side, g.Arch, why))
				}
				continue
			}
			if f.path == "" || (f.field == "symbols" && f.path == g.Kernel) {
				// symbols defaults to the kernel: one mistake, one message.
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				p := sc.PosOf(fmt.Sprintf("guests.%s.%s", side, f.field))
				errs = append(errs, fmt.Errorf("%s: guest %s: %s: %w", p, side, f.field, err))
			}
		}
	}
	if len(errs) > 0 {
		return tables, &ScenarioError{Err: errors.Join(errs...)}
	}
	errs = append(errs, checkIgnores(sc)...)
	var loadErrs [2]error
	var hints []string
	var g errgroup.Group
	for i, gu := range sc.Guests {
		if gu.Symbols == "" || (i == 1 && gu.Symbols == sc.Guests[0].Symbols) {
			continue
		}
		if gu.Symbols == gu.Kernel && !isELF(gu.Symbols) {
			// A bzImage or raw kernel has no symbols; symbols: can name the vmlinux.
			hints = append(hints, fmt.Sprintf("guest %s: kernel %s is not an ELF file, so it has no symbols; set symbols: to its ELF (e.g. the vmlinux)",
				scenario.SideNames[i], gu.Kernel))
			continue
		}
		g.Go(func() error {
			tables[i], loadErrs[i] = load(gu.Symbols)
			return nil
		})
	}
	g.Wait()
	if sc.Guests[1].Symbols != "" && sc.Guests[1].Symbols == sc.Guests[0].Symbols {
		tables[1], loadErrs[1] = tables[0], loadErrs[0]
	}
	var res [2]scenario.Resolver
	for i := range 2 {
		if loadErrs[i] != nil {
			p := sc.PosOf(fmt.Sprintf("guests.%s.symbols", scenario.SideNames[i]))
			errs = append(errs, fmt.Errorf("%s: guest %s: %w", p, scenario.SideNames[i], loadErrs[i]))
		}
		if tables[i] != nil {
			res[i] = tables[i]
		}
	}
	errs = append(errs, checkMachines(sc, tables)...)
	if len(errs) > 0 {
		return tables, &ScenarioError{Err: errors.Join(errs...)}
	}
	if err := sc.CheckSymbols(res); err != nil {
		if len(hints) > 0 {
			err = fmt.Errorf("%w\n%s", err, strings.Join(hints, "\n"))
		}
		return tables, &ScenarioError{Err: err}
	}
	return tables, nil
}

// checkIgnores checks every ignore rule ("reg" or "reg.BIT") against the
// flag bits of each side's architecture.
func checkIgnores(sc *scenario.Scenario) []error {
	a, err := arch.Lookup(sc.Guests[0].Arch)
	if err != nil {
		return nil // an architecture lockstep has no tables for: QEMU's target.xml decides
	}
	flags := a.CompareFlags()
	var errs []error
	check := func(field string, rules []string) {
		for _, rule := range rules {
			if err := compare.IgnoreValid(rule, flags); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", sc.PosOf(field), err))
			}
		}
	}
	check("compare.ignore", sc.Compare.Ignore)
	for i, sp := range sc.Sync {
		// A sync point's ignore inherited from compare: points at the
		// same place; check it once.
		if p, ok := sc.Pos[fmt.Sprintf("sync[%d].compare.ignore", i)]; ok && p != sc.Pos["compare.ignore"] {
			check(fmt.Sprintf("sync[%d].compare.ignore", i), sp.Compare.Ignore)
		}
	}
	check("noise.registers", sc.Noise.Registers)
	return errs
}

// elfMachines are the ELF machines each QEMU target architecture runs
// (QEMU's x86_64 loads 32-bit multiboot kernels too).
var elfMachines = map[string][]elf.Machine{
	"x86_64":  {elf.EM_X86_64, elf.EM_386},
	"i386":    {elf.EM_386},
	"aarch64": {elf.EM_AARCH64},
	"arm":     {elf.EM_ARM},
	"riscv64": {elf.EM_RISCV},
	"riscv32": {elf.EM_RISCV},
	"ppc64":   {elf.EM_PPC64, elf.EM_PPC},
	"ppc":     {elf.EM_PPC},
	"s390x":   {elf.EM_S390},
	"mips":    {elf.EM_MIPS},
	"mips64":  {elf.EM_MIPS},
}

// elfClass64 are the arches whose ELF kernels must be 64-bit (EM_RISCV
// and EM_S390 name both widths).
var elfClass64 = map[string]bool{"riscv64": true, "s390x": true}

// checkMachines checks each side's symbol file's and kernel's ELF machine
// against the side's arch, so that an aarch64 kernel given to
// qemu-system-x86_64 is a scenario error, not "Error while loading elf
// kernel" at run time.
func checkMachines(sc *scenario.Scenario, tables [2]*symbols.Table) []error {
	var errs []error
	for i, t := range tables {
		g := sc.Guests[i]
		want, known := elfMachines[g.Arch]
		if t == nil || !known || slices.Contains(want, t.Machine()) {
			continue
		}
		side := scenario.SideNames[i]
		errs = append(errs, fmt.Errorf("%s: guest %s: %s is built for %s, but arch is %s",
			sc.PosOf(fmt.Sprintf("guests.%s.arch", side)), side, t.Path(), machineName(t.Machine()), g.Arch))
	}
	for i, g := range sc.Guests {
		if err := checkKernelELF(sc, i, g, tables[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// checkKernelELF checks an ELF kernel against its side's arch: its machine
// (when the symbols, already checked, are another file), its class
// (riscv64 and s390x share their machine with the 32-bit arch), and, on
// riscv64 with QEMU's default firmware, that it does not load where OpenSBI
// sits (a bare M-mode image at the start of RAM needs bios: none). Not an
// ELF (a bzImage, an Image) is left to QEMU.
func checkKernelELF(sc *scenario.Scenario, i int, g scenario.Guest, t *symbols.Table) error {
	want, known := elfMachines[g.Arch]
	if g.Kernel == "" || !known {
		return nil
	}
	f, err := elf.Open(g.Kernel)
	if err != nil {
		return nil
	}
	defer f.Close()
	side := scenario.SideNames[i]
	at := sc.PosOf(fmt.Sprintf("guests.%s.kernel", side))
	if !slices.Contains(want, f.Machine) {
		if t != nil && t.Path() == g.Kernel {
			return nil // reported for the symbols
		}
		return fmt.Errorf("%s: guest %s: kernel %s is built for %s, but arch is %s", at, side, g.Kernel, classMachineName(f.Machine, f.Class), g.Arch)
	}
	if elfClass64[g.Arch] && f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s: guest %s: kernel %s is a 32-bit ELF (%s), but arch is %s", at, side, g.Kernel, f.Class, g.Arch)
	}
	if g.Arch == "riscv64" && g.BIOS == "" {
		const dramBase = 0x80000000 // the virt machine's RAM, where OpenSBI loads
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && p.Memsz > 0 && p.Paddr >= dramBase && p.Paddr < dramBase+0x200000 {
				return fmt.Errorf("%s: guest %s: kernel %s loads at %#x, where QEMU's default firmware (OpenSBI) sits; set bios: none to run it without firmware", at, side, g.Kernel, p.Paddr)
			}
		}
	}
	return nil
}

// machineName names an ELF machine as the arch that runs it ("aarch64"),
// else as debug/elf does. A machine of both widths (EM_RISCV, EM_MIPS)
// is named for 32 bits; classMachineName tells them apart.
func machineName(m elf.Machine) string {
	return classMachineName(m, elf.ELFCLASS32)
}

// classMachineName names an ELF machine of class c as the arch that runs it
// ("riscv64" for a 64-bit EM_RISCV).
func classMachineName(m elf.Machine, c elf.Class) string {
	var names []string
	for _, a := range slices.Sorted(maps.Keys(elfMachines)) {
		if elfMachines[a][0] == m {
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		return m.String()
	}
	for _, a := range names {
		if (c == elf.ELFCLASS64) == (strings.Contains(a, "64") || a == "s390x") {
			return a
		}
	}
	return names[0]
}

func isELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
