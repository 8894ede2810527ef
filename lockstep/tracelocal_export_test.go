package lockstep

// SetTraceEngine turns the trace engine on or off for the tests of
// package lockstep_test and returns a function that restores the previous
// setting. Tests using it must not run in parallel.
func SetTraceEngine(on bool) (restore func()) {
	prev := traceOff
	traceOff = !on
	return func() { traceOff = prev }
}
