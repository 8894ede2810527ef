// Package calibrate learns what varies when one side of a scenario runs
// against itself: registers (whole, or single named flag bits), memory
// bytes and call-path functions, as scenario noise, and the divergences
// that cannot be learned, as unstable items. A Plan decides how many runs
// a side takes (an exact count, or until runs stop finding anything new),
// and an IcountProbe tells whether the noise comes from time. It never
// runs a guest: package lockstep runs the scenarios SelfScenario and
// IcountScenario return and hands each run's notes and divergences over.
package calibrate
