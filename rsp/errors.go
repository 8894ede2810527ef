package rsp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrUnsupported reports an empty reply: the stub does not know the packet.
	ErrUnsupported = errors.New("rsp: packet not supported by stub")
	// ErrRefused is matched by every *ProtocolError (an Exx reply).
	ErrRefused = errors.New("rsp: request refused by stub")
	// ErrClosed reports that the connection is closed, hit EOF, or that the
	// target has exited.
	ErrClosed = errors.New("rsp: connection closed")
	// ErrRunning reports a request other than an interrupt while the target runs.
	ErrRunning = errors.New("rsp: target is running")
	// ErrNotRunning reports a wait or interrupt while the target is stopped.
	ErrNotRunning = errors.New("rsp: target is not running")
	// ErrTooLarge reports a packet larger than a bound: a peer packet over
	// the receive limit, or a request over the stub's PacketSize.
	ErrTooLarge = errors.New("rsp: packet too large")
	// ErrRetries reports that the bounded number of retransmissions ran out.
	ErrRetries = errors.New("rsp: too many retransmissions")
	// ErrMalformed reports a reply that does not parse.
	ErrMalformed = errors.New("rsp: malformed packet")
	// ErrNoRegister reports a register name missing from the layout.
	ErrNoRegister = errors.New("rsp: no such register")
)

// ProtocolError is an "Exx" error reply from the stub.
type ProtocolError struct {
	Op     string // operation, e.g. "read memory"
	Packet string // request packet payload (may be truncated in Error)
	Code   int    // xx
}

// Error implements error.
func (e *ProtocolError) Error() string {
	p := e.Packet
	if len(p) > 40 {
		p = p[:40] + "..."
	}
	return fmt.Sprintf("rsp: %s: packet %q refused with E%02X", e.Op, p, e.Code)
}

// Is makes every ProtocolError match ErrRefused.
func (e *ProtocolError) Is(target error) bool { return target == ErrRefused }

// MemoryError is a failed memory access; it names the address range.
type MemoryError struct {
	Op   string // "read", "write", "read physical", ...
	Addr uint64
	Len  int
	Err  error
}

// Error implements error.
func (e *MemoryError) Error() string {
	return fmt.Sprintf("rsp: %s memory at %#x (%d bytes): %v", e.Op, e.Addr, e.Len, e.Err)
}

// Unwrap returns the underlying error.
func (e *MemoryError) Unwrap() error { return e.Err }

// ExitError reports that the target exited ('W') or was terminated by a
// signal ('X'). It matches ErrClosed through errors.Is.
type ExitError struct {
	Stop StopReply
}

// Error implements error.
func (e *ExitError) Error() string {
	if e.Stop.Kind == 'X' {
		return fmt.Sprintf("rsp: target terminated by signal %d", e.Stop.Signal)
	}
	return fmt.Sprintf("rsp: target exited with code %d", e.Stop.ExitCode)
}

// Is makes an ExitError match ErrClosed.
func (e *ExitError) Is(target error) bool { return target == ErrClosed }
