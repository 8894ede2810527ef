// Package fake is a scripted, in-process stand-in for one QEMU guest: a
// Target (its gdbstub), a Machine (its process and QMP monitor) and a
// Launcher, implementing the interfaces of package guest. A Program lists
// the states the guest passes through, one per instruction, and the events
// that end or break it (an exit, a SIGKILL, a freeze, a KVM internal error,
// a lost single step), so that every engine path can be tested without
// QEMU. The fake answers as QEMU 7.2 does (PROTOCOL.md §1-5): T05 stop
// replies, W on exit, E14 on unreadable memory, write watchpoints that stop
// after the store, and blocking with no reply where QEMU would not answer.
// It is deterministic: it never sleeps and starts no goroutines; every wait
// is bounded by its context.
package fake
