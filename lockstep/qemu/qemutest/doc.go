// Package qemutest holds helpers for tests that need a real QEMU, a real
// gdb, KVM or the demo guests. Every helper that cannot get what it needs
// skips the test and says why; none lets a test pass silently.
package qemutest
