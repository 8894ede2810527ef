package rsp

import (
	"context"
	"fmt"
)

// BreakKind selects the Z/z packet type.
type BreakKind int

// Breakpoint and watchpoint kinds, numbered as the Z packet types.
const (
	Software    BreakKind = iota // Z0: software breakpoint (int3 under KVM)
	Hardware                     // Z1: hardware breakpoint
	WatchWrite                   // Z2: write watchpoint
	WatchRead                    // Z3: read watchpoint (unsupported under KVM)
	WatchAccess                  // Z4: access watchpoint
)

// String names the kind.
func (k BreakKind) String() string {
	switch k {
	case Software:
		return "software breakpoint"
	case Hardware:
		return "hardware breakpoint"
	case WatchWrite:
		return "write watchpoint"
	case WatchRead:
		return "read watchpoint"
	case WatchAccess:
		return "access watchpoint"
	}
	return fmt.Sprintf("BreakKind(%d)", int(k))
}

// InsertBreakpoint inserts a breakpoint or watchpoint with 'Zk,addr,size'.
// size is the kind (instruction length, 1 on x86) for breakpoints and the
// watched length for watchpoints. An empty reply gives ErrUnsupported, an
// error reply (KVM out of debug registers: E22) a *ProtocolError.
func (c *Client) InsertBreakpoint(ctx context.Context, kind BreakKind, addr uint64, size int) error {
	return c.breakpoint(ctx, 'Z', kind, addr, size)
}

// RemoveBreakpoint removes a breakpoint or watchpoint with 'zk,addr,size'.
func (c *Client) RemoveBreakpoint(ctx context.Context, kind BreakKind, addr uint64, size int) error {
	return c.breakpoint(ctx, 'z', kind, addr, size)
}

func (c *Client) breakpoint(ctx context.Context, z byte, kind BreakKind, addr uint64, size int) error {
	op := "insert "
	if z == 'z' {
		op = "remove "
	}
	op += kind.String()
	if kind < Software || kind > WatchAccess || size <= 0 {
		return fmt.Errorf("rsp: %s at %#x size %d: %w", op, addr, size, ErrMalformed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, op, fmt.Sprintf("%c%d,%x,%x", z, int(kind), addr, size))
	if err != nil {
		return fmt.Errorf("%w (at %#x)", err, addr)
	}
	if string(rep) != "OK" {
		return fmt.Errorf("rsp: %s at %#x: reply %q: %w", op, addr, trunc(rep), ErrMalformed)
	}
	return nil
}
