// Package calibrate learns what varies when one side of a scenario runs
// against itself: registers (whole, or single named flag bits), memory
// bytes and call-path functions, as scenario noise, and the divergences
// that cannot be learned, as unstable items. It folds in what runs found
// and never runs a guest: package lockstep runs the scenario SelfScenario
// returns and hands each run's notes and divergences to a Learner.
package calibrate
