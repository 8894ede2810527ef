// Package compare holds pure functions that turn two captured guest states
// into structured divergences: registers (by name or group, with ignore masks
// for whole registers and named flag bits), memory (hexdump rows with
// context), and call paths (sequence diffs of symbol names via go-diff).
// It does no I/O; package reports renders what it returns.
package compare
