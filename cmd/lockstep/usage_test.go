package main

import "testing"

// TestArgErrorsGiveUsage checks that a wrong number of arguments, or a
// bad flag, is a usage error that shows the command's usage line.
func TestArgErrorsGiveUsage(t *testing.T) {
	checkBad(t, []badCase{
		{"run without scenario", []string{"run"}, 2, []string{"accepts 1 arg", "usage: lockstep run SCENARIO", "lockstep run --help"}, nil},
		{"run with two", []string{"run", "a.yaml", "b.yaml"}, 2, []string{"usage: lockstep run SCENARIO"}, nil},
		{"validate without files", []string{"validate"}, 2, []string{"usage: lockstep validate FILE..."}, nil},
		{"report without result", []string{"report"}, 2, []string{"usage: lockstep report RESULT.json"}, nil},
		{"version with an argument", []string{"version", "x"}, 2, []string{"usage: lockstep version"}, nil},
		{"unknown flag", []string{"run", "--bogus", "a.yaml"}, 2, []string{"unknown flag: --bogus", "usage: lockstep run SCENARIO"}, nil},
	})
}
