// Package engine drives a pair of guests to a sync point, captures and
// compares them there, steps them through windows in lockstep and lets
// them finish. It returns what it finds (arrivals, divergences) as values
// and never writes the run's result: package lockstep does that. It works
// on whatever pair it is handed (the run's own, a relaunched or restored
// one), through the narrow guest.Target interface, so the fake target can
// test every behaviour without QEMU.
package engine
