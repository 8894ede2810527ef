// Package scenario is the lockstep scenario file: its YAML schema, strict
// decoding, validation that reports every problem at once as
// "file:line:col: message", defaults merged into each guest, and relative
// paths resolved against the scenario file's directory.
//
// A Scenario is a pure specification. The package starts nothing and does no
// I/O beyond reading the scenario file and the environment (for ${VAR}
// expansion); AddNoise is the one writer, used by calibration.
package scenario
