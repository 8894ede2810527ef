// Package lockstep is the orchestrator: it launches two QEMU guests, attaches
// to their gdbstubs, drives both to each sync point of a scenario
// concurrently, captures registers, memory and call paths there, compares
// them with package compare and returns a Result.
package lockstep
