// Package rsp is a client for the GDB Remote Serial Protocol as spoken by
// QEMU's gdbstub. It frames packets (checksums, acks, escapes, run-length
// decoding, bounded buffers), discovers the register layout from the
// target description, and offers typed operations: registers, memory,
// breakpoints, execution control, stop replies and QEMU's qqemu.*
// extensions. It knows nothing of scenarios or QEMU processes.
package rsp
