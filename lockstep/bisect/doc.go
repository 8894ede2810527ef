// Package bisect finds the commit that made two guests diverge. It builds
// the candidate kernel at commits between a good and a bad revision in a
// scratch clone of the user's repository, runs a lockstep scenario whose
// side a is a fixed reference and whose side b is the candidate, and
// classifies each commit as good, bad or skip, the way git bisect does but
// without touching the user's checkout, branches or bisect state.
package bisect
