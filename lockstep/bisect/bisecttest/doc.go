// Package bisecttest builds scratch git repositories of the bisect
// fixture kernels (testdata/bisect; x86_64, and the demo kernel on aarch64,
// riscv64 and s390x) for the tests of lockstep bisect.
package bisecttest
