// Package bisecttest builds scratch git repositories of the bisect
// fixture kernels (testdata/bisect) for the tests of lockstep bisect.
package bisecttest
