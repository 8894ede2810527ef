package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
	"github.com/lockstep-dev/lockstep/scenario"
)

// initFlags are the flags of `lockstep init`.
type initFlags struct {
	o      scenario.TemplateOptions
	expect string
	out    string
}

func newInitCommand(s streams) *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init --a KERNEL --b KERNEL [flags]",
		Short: "Write a starter scenario for two kernels",
		Long: `init writes a commented scenario that compares two kernels: sync points
(start_kernel by default), registers, call paths, localisation. Linux
kernels (with start_kernel) get Linux defaults: nokaslr, a serial console,
512M and initcall tracing. Give --symbols-a/--symbols-b when the kernel is
a bzImage and the symbols are in a vmlinux. Edit the result, then run
lockstep validate and lockstep run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.o.Expect = scenario.Expect(f.expect)
			if f.out != "" {
				if _, err := os.Stat(f.out); err == nil {
					return withCode(exitUsage, fmt.Errorf("%s exists; not overwriting it", f.out))
				}
			}
			b, err := lockstep.Starter(f.o)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if f.out == "" {
				_, err = s.out.Write(b)
				return err
			}
			if err := os.WriteFile(f.out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "wrote %s; check it with: lockstep validate %s\n", f.out, f.out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.o.Kernel[0], "a", "", "kernel of side a, or a kernel build directory (its arch/*/boot image and vmlinux) (required)")
	fl.StringVar(&f.o.Kernel[1], "b", "", "kernel of side b, or a kernel build directory (required)")
	fl.StringVar(&f.o.Symbols[0], "symbols-a", "", "ELF with symbols of side a (default: the kernel)")
	fl.StringVar(&f.o.Symbols[1], "symbols-b", "", "ELF with symbols of side b (default: the kernel)")
	fl.StringVar(&f.o.Accel[0], "accel-a", "tcg", "accelerator of side a: tcg or kvm")
	fl.StringVar(&f.o.Accel[1], "accel-b", "tcg", "accelerator of side b: tcg or kvm")
	fl.StringVar(&f.o.CPU[0], "cpu-a", "qemu64", "CPU model of side a")
	fl.StringVar(&f.o.CPU[1], "cpu-b", "qemu64", "CPU model of side b")
	fl.StringVar(&f.o.Initrd, "initrd", "", "initrd for both sides")
	fl.StringVar(&f.o.Append, "append", "", "kernel command line (Linux default: console=ttyS0 nokaslr panic=-1)")
	fl.StringVar(&f.o.Memory, "memory", "", "guest memory (default 64M, 512M for Linux)")
	fl.StringSliceVar(&f.o.Sync, "sync", nil, "sync points, in order (default start_kernel)")
	fl.StringVar(&f.o.Name, "name", "lockstep", "scenario name (names the report files)")
	fl.StringVar(&f.expect, "expect", "identical", "what exit status 0 means: identical or diverge")
	fl.StringVarP(&f.out, "output", "o", "", "write to this file instead of stdout (never overwrites)")
	cmd.MarkFlagRequired("a")
	cmd.MarkFlagRequired("b")
	return cmd
}
