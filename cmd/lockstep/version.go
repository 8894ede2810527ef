package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
)

func newVersionCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(s.out, "lockstep %s (%s, %s/%s, result schema %s)\n", version, runtime.Version(),
				runtime.GOOS, runtime.GOARCH, lockstep.SchemaVersion)
			return nil
		},
	}
}
