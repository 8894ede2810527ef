package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// newReplayCommand is `lockstep replay RUN_DIR [--at ICOUNT]`: it reopens
// the recordings a kept run left and holds both guests for gdb.
func newReplayCommand(s streams) *cobra.Command {
	var at uint64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "replay RUN_DIR",
		Short: "Replay a kept run's recordings and hold both guests for gdb",
		Long: `replay reopens the recordings that ` + "`lockstep run --keep`" + ` of a recorded
run that diverged (determinism.record, or localize.method: replay) left in its
run directory, replays both guests to an instruction count (default: the place the
run held, the localised divergence) and holds them there for gdb, with reverse
execution (reverse-stepi, reverse-continue), as --hold does (docs/hold.md).
Ctrl-C (SIGINT) or SIGTERM tears them down; the run directory stays.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := lockstep.ReplayRun(args[0], at, lockstep.Options{})
			if err != nil {
				var se *lockstep.ScenarioError
				if errors.Is(err, lockstep.ErrNoRecording) || errors.As(err, &se) || cmd.Flags().Changed("at") {
					return withCode(exitUsage, err)
				}
				return withCode(exitInfra, err)
			}
			if err := holdDivergence(cmd.Context(), s, h, timeout); err != nil {
				// Said already ("not holding: ..."): a replay that failed
				// is infrastructure.
				return &exitError{exitInfra, err}
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&at, "at", 0, "hold both guests at this instruction count since boot (default: each side's count at the place the run held)")
	cmd.Flags().DurationVar(&timeout, "hold-timeout", 0, "release the guests after this long (default: wait for Ctrl-C or SIGTERM)")
	return cmd
}
