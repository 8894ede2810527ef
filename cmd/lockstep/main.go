package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

// Exit statuses.
const (
	exitOK       = 0
	exitMismatch = 1
	exitUsage    = 2
	exitInfra    = 3
	exitSkip     = 125
	// exitAbort stops a git bisect run (any status above 127 does): under
	// --bisect, an error in the scenario file itself, which no commit can
	// fix, must neither mark a commit bad (2 would) nor skip it.
	exitAbort = 128
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code, err}
}

// streams are the command's standard streams, replaceable in tests.
type streams struct {
	out, err io.Writer
}

func newRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "lockstep",
		Short: "Lockstep differential debugging of two QEMU guests",
		Long: `lockstep launches two QEMU guests that should behave the same, drives both
gdbstubs in lockstep to the same sync points, and reports where and how they
diverge: registers, memory and call paths.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetVersionTemplate(versionLine())
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.AddCommand(newRunCommand(s), newValidateCommand(s), newReportCommand(s), newVersionCommand(s), newInitCommand(s))
	root.AddCommand(newBisectCommand(s), newReplayCommand(s))
	root.AddCommand(newCalibrateCommand(s))
	root.AddCommand(newSuiteCommand(s), newMergeCommand(s))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return withCode(exitUsage, usageError(c, err)) })
	withUsageOnArgErrors(root)
	addCompletions(root)
	return root
}

// usageError adds c's usage line and a pointer to its help to err.
func usageError(c *cobra.Command, err error) error {
	return fmt.Errorf("%w\nusage: %s\n(see %s --help)", err, c.UseLine(), c.CommandPath())
}

// withUsageOnArgErrors makes the argument check of c and every command
// below it return the usage line with the error, as a usage error.
func withUsageOnArgErrors(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return withCode(exitUsage, usageError(cmd, err))
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		withUsageOnArgErrors(sub)
	}
}

// run executes the CLI with args and returns the exit status.
func run(ctx context.Context, args []string, s streams) int {
	root := newRoot(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code != exitMismatch {
			fmt.Fprintln(s.err, "lockstep:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(s.err, "lockstep:", err)
	return exitUsage
}

func main() {
	ctx, stop := qemu.HandleSignals(context.Background())
	code := run(ctx, os.Args[1:], streams{os.Stdout, os.Stderr})
	stop()
	os.Exit(code)
}
