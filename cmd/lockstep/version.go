package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// version is set at build time with -ldflags "-X main.version=..." (the
// Makefile does). Without it, versionString falls back to the module
// version of the build information, which `go install …@version` sets.
var version = "dev"

// versionString is lockstep's version: the linker's, else the main
// module's from the build information, else "dev".
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	return pickVersion(version, bi, ok)
}

// pickVersion chooses between the linker-set version and the build
// information's.
func pickVersion(linked string, bi *debug.BuildInfo, ok bool) string {
	if linked != "" && linked != "dev" {
		return linked
	}
	if ok && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what `lockstep version` and `lockstep --version` print.
func versionLine() string {
	return fmt.Sprintf("lockstep %s (%s, %s/%s, result schema %s)\n", versionString(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, lockstep.SchemaVersion)
}

func newVersionCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(s.out, versionLine())
			return nil
		},
	}
}
