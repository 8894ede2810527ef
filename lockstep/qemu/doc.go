// Package qemu launches QEMU guests for lockstep, talks to them over a small
// QMP client and tears them down without ever leaking a process.
//
// Building the command line (Spec.Command) is pure. Start owns the process:
// it runs QEMU in its own process group with Pdeathsig=SIGKILL inside a
// private 0700 run directory that holds the QMP socket, the gdbstub socket,
// the serial log and the captured stderr. Cancelling the context passed to
// Start, calling Close, or calling KillAll (which HandleSignals does on
// SIGINT/SIGTERM) kills the whole process group.
//
// The QMP client is written here rather than taken from
// github.com/digitalocean/go-qemu/qmp. That package was considered and
// rejected: its Run takes no context and sets no deadline, so a hung QEMU
// blocks the caller forever, and its event channel is unbuffered and fed by
// the same reader as command replies, so a caller that does not drain events
// stalls every later reply. This client bounds every wait by a context,
// matches replies to commands by id, and puts events on a buffered channel,
// dropping (and counting) them rather than ever blocking a reply.
package qemu
