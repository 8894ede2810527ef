package lockstep

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Starter writes a starter scenario for two kernels (see
// scenario.Template). Paths become absolute. It reads each side's symbols
// to decide whether the kernels are Linux (start_kernel exists), which
// picks Linux defaults, and checks that every sync point resolves on both
// sides, so that what it writes validates.
func Starter(o scenario.TemplateOptions) ([]byte, error) {
	var errs []error
	for i := range 2 {
		for _, p := range []*string{&o.Kernel[i], &o.Symbols[i]} {
			if *p == "" {
				continue
			}
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
		syms := o.Symbols[i]
		if syms == "" {
			syms = o.Kernel[i]
		}
		t, err := symbols.Load(syms)
		if err != nil {
			errs = append(errs, fmt.Errorf("guest %s: %w", scenario.SideNames[i], err))
			continue
		}
		if _, ok := t.Lookup("start_kernel"); ok {
			o.Linux = true
		}
		sync := o.Sync
		if len(sync) == 0 {
			sync = []string{"start_kernel"}
		}
		for _, s := range sync {
			if _, err := t.Resolve(s); err != nil {
				errs = append(errs, fmt.Errorf("guest %s: sync point %q: %w", scenario.SideNames[i], s, err))
			}
		}
	}
	if o.Initrd != "" {
		abs, err := filepath.Abs(o.Initrd)
		if err != nil {
			return nil, err
		}
		o.Initrd = abs
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := scenario.Template(o)
	if err != nil {
		return nil, err
	}
	// What init writes must load: check it as lockstep validate would.
	if _, err := scenario.Parse("(lockstep init)", b); err != nil {
		return nil, err
	}
	return b, nil
}
