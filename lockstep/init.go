package lockstep

import (
	"errors"
	"fmt"
	"os"
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
		if err := fromBuildDir(&o.Kernel[i], &o.Symbols[i]); err != nil {
			errs = append(errs, fmt.Errorf("guest %s: %w", scenario.SideNames[i], err))
			continue
		}
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
			if _, ok := t.Lookup("start_kernel"); !ok {
				errs = append(errs, fmt.Errorf("guest %s: %s has no start_kernel, so it is not a Linux kernel: name the functions to stop at with --sync (e.g. --sync %s)",
					scenario.SideNames[i], syms, entryName(t)))
				continue
			}
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

// entryName suggests a first sync point: a main function of t if it has
// one, else the function at its entry point, else "main".
func entryName(t *symbols.Table) string {
	for _, n := range []string{"kmain", "kernel_main", "main"} {
		if _, ok := t.Lookup(n); ok {
			return n
		}
	}
	for _, f := range t.Functions() {
		if f.Addr == t.Entry() && f.Name != "" {
			return f.Name
		}
	}
	return "main"
}

// fromBuildDir turns a kernel build directory, given where a kernel is
// expected, into its boot image and its vmlinux, as virtme-ng does: the
// kernel is arch/*/boot/bzImage (or Image, zImage) when there is one, else
// vmlinux, and the symbols are vmlinux unless already set.
func fromBuildDir(kernel, syms *string) error {
	fi, err := os.Stat(*kernel)
	if err != nil || !fi.IsDir() {
		return nil // not a directory: the file itself, checked later
	}
	dir := *kernel
	vmlinux := filepath.Join(dir, "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		return fmt.Errorf("%s is a directory without a vmlinux: give a kernel build directory (after make) or the kernel file", dir)
	}
	*kernel = vmlinux
	for _, name := range []string{"bzImage", "Image", "zImage"} {
		m, _ := filepath.Glob(filepath.Join(dir, "arch", "*", "boot", name))
		if len(m) == 1 {
			*kernel = m[0]
			break
		}
	}
	if *syms == "" {
		*syms = vmlinux
	}
	return nil
}
