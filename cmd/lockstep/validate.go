package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
)

func newValidateCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenarios without starting QEMU",
		Long: `validate parses each scenario strictly and checks that every breakpoint and
memory symbol resolves in that side's symbol file. It starts nothing.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, f := range args {
				if _, err := lockstep.Validate(f); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(s.out, "%s: ok\n", f)
			}
			return withCode(exitUsage, errors.Join(errs...))
		},
	}
}
