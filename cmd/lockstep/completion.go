package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/lockstep/symbols"
	"github.com/lockstep-dev/lockstep/reports"
)

// yamlExts are the file extensions offered where a scenario is expected.
var yamlExts = []string{"yaml", "yml"}

// addCompletions registers shell completion for the argument and flag
// values of c and every command below it: report formats, colour modes,
// expect values, directories for -o and *.yaml files for scenarios.
func addCompletions(c *cobra.Command) {
	switch c.Name() {
	case "run", "calibrate":
		c.ValidArgsFunction = completeFiles(1, yamlExts...)
	case "validate":
		c.ValidArgsFunction = completeFiles(-1, yamlExts...)
	case "report":
		c.ValidArgsFunction = completeFiles(1, "json")
	case "replay":
		c.ValidArgsFunction = completeDirs
	}
	flags := map[string]cobra.CompletionFunc{
		"format":        completeFormats,
		"color":         cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp),
		"expect":        cobra.FixedCompletions([]string{"identical", "diverge"}, cobra.ShellCompDirectiveNoFileComp),
		"scenario":      completeFiles(-1, yamlExts...),
		"accel-a":       cobra.FixedCompletions([]string{"tcg", "kvm"}, cobra.ShellCompDirectiveNoFileComp),
		"accel-b":       cobra.FixedCompletions([]string{"tcg", "kvm"}, cobra.ShellCompDirectiveNoFileComp),
		"run-dir":       completeDirs,
		"on-divergence": cobra.FixedCompletions([]string{"kill", "hold"}, cobra.ShellCompDirectiveNoFileComp),
		"tmp-dir":       completeDirs,
	}
	if c.Name() == "init" {
		flags["sync"] = completeSyncSymbols
		for _, f := range []string{"a", "b", "symbols-a", "symbols-b", "initrd"} {
			flags[f] = completeAnyFile
		}
	}
	if c.Name() != "init" {
		// init's -o is a file; everywhere else it is a directory.
		flags["output"] = completeDirs
	}
	for name, fn := range flags {
		if c.LocalFlags().Lookup(name) != nil {
			_ = c.RegisterFlagCompletionFunc(name, fn)
		}
	}
	for _, sub := range c.Commands() {
		addCompletions(sub)
	}
}

// completeFiles offers files with the given extensions (and directories)
// for the first n arguments; n < 0 means any number.
func completeFiles(n int, exts ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return exts, cobra.ShellCompDirectiveFilterFileExt
	}
}

func completeAnyFile(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

// completeSyncSymbols offers the function names of side a's symbols
// (--symbols-a, else --a, a file or a kernel build directory) for init
// --sync, also after a comma.
func completeSyncSymbols(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	path, _ := cmd.Flags().GetString("symbols-a")
	if path == "" {
		path, _ = cmd.Flags().GetString("a")
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			path = filepath.Join(path, "vmlinux")
		}
	}
	if path == "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	t, err := symbols.Load(path)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	prefix, word := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		prefix, word = toComplete[:i+1], toComplete[i+1:]
	}
	var out []cobra.Completion
	for _, f := range t.Functions() {
		if strings.HasPrefix(f.Name, word) {
			out = append(out, prefix+f.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), cobra.ShellCompDirectiveNoFileComp
}

func completeDirs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// completeFormats offers report formats, also after a comma for the next
// entry of a list, without those already listed.
func completeFormats(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	prefix, listed := "", map[string]bool{}
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		prefix = toComplete[:i+1]
		for _, p := range strings.Split(toComplete[:i], ",") {
			listed[strings.TrimSpace(p)] = true
		}
	}
	var out []cobra.Completion
	for _, f := range reports.Formats {
		if !listed[string(f)] {
			out = append(out, prefix+string(f))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
