package lockstep

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"

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
	if _, err := checkScenario(sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// checkScenario checks the files a scenario names, loads each side's
// symbols (once when both sides share a file, concurrently otherwise) and
// checks that every symbol the scenario uses resolves.
func checkScenario(sc *scenario.Scenario) ([2]*symbols.Table, error) {
	var tables [2]*symbols.Table
	var errs []error
	for i, g := range sc.Guests {
		side := scenario.SideNames[i]
		for _, f := range []struct{ field, path string }{{"kernel", g.Kernel}, {"initrd", g.Initrd}, {"bios", g.BIOS}, {"symbols", g.Symbols}} {
			if f.path == "" {
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
	var loadErrs [2]error
	var g errgroup.Group
	for i, gu := range sc.Guests {
		if gu.Symbols == "" || (i == 1 && gu.Symbols == sc.Guests[0].Symbols) {
			continue
		}
		if gu.Symbols == gu.Kernel && !isELF(gu.Symbols) {
			// A bzImage or raw kernel has no symbols; symbols: can name the vmlinux.
			continue
		}
		g.Go(func() error {
			tables[i], loadErrs[i] = symbols.Load(gu.Symbols)
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
	if len(errs) > 0 {
		return tables, &ScenarioError{Err: errors.Join(errs...)}
	}
	if err := sc.CheckSymbols(res); err != nil {
		return tables, &ScenarioError{Err: err}
	}
	return tables, nil
}

func isELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
