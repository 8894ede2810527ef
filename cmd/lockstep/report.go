package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lockstep-dev/lockstep/reports"
)

// reportFlags are the flags of `lockstep report`.
type reportFlags struct {
	formats string
	outDir  string
	color   string
	verbose bool
}

func newReportCommand(s streams) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report RESULT.json",
		Short: "Re-render a saved JSON result in other formats",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			formats, err := parseFormats(f.formats, f.outDir)
			if err != nil {
				return withCode(exitUsage, err)
			}
			color, err := colorMode(f.color, s)
			if err != nil {
				return withCode(exitUsage, err)
			}
			in, err := os.Open(args[0])
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("open result: %w", err))
			}
			defer in.Close()
			res, err := reports.ReadJSON(in)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("%s: not a lockstep JSON result (write one with lockstep run -o DIR --format json): %w", args[0], err))
			}
			if f.outDir != "" {
				if err := checkOutput(f.outDir, reportBase(res.Scenario), formats); err != nil {
					return withCode(exitUsage, err)
				}
				files, err := reports.WriteAll(f.outDir, reportBase(res.Scenario), formats, res, reports.Options{Verbose: f.verbose})
				if err != nil {
					return err
				}
				for _, file := range files {
					fmt.Fprintln(s.out, file)
				}
				return nil
			}
			for _, fm := range formats {
				if err := reports.Render(s.out, fm, res, reports.Options{Color: color && fm == reports.FormatText, Verbose: f.verbose}); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.formats, "format", "text", "report format: text, json, junit, html, md or ktap; with -o, several comma-separated")
	cmd.Flags().StringVarP(&f.outDir, "output", "o", "", "write the formats to this directory instead of stdout")
	cmd.Flags().StringVar(&f.color, "color", "auto", "colour the text report: auto, always, never")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "show noise divergences, command lines and serial output in full")
	return cmd
}
