package rsp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// maxReadChunk is QEMU's limit for one 'm' packet; larger reads give E22.
const maxReadChunk = 2048

// ReadMemory reads n bytes at a virtual address with 'm addr,len' packets of
// at most 2048 bytes. A failed chunk gives a *MemoryError naming its address.
func (c *Client) ReadMemory(ctx context.Context, addr uint64, n int) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readMemLocked(ctx, "read", addr, n)
}

func (c *Client) readMemLocked(ctx context.Context, op string, addr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, &MemoryError{Op: op, Addr: addr, Len: n, Err: ErrMalformed}
	}
	chunk := maxReadChunk
	if lim := (c.cn.maxIn - 8) / 2; lim < chunk {
		chunk = lim
	}
	out := make([]byte, 0, n)
	req := make([]byte, 0, 40)
	for len(out) < n {
		k := min(n-len(out), chunk)
		a := addr + uint64(len(out))
		req = append(req[:0], 'm')
		req = strconv.AppendUint(req, a, 16)
		req = append(req, ',')
		req = strconv.AppendUint(req, uint64(k), 16)
		rep, err := c.exchangeBytes(ctx, op+" memory", req)
		if err != nil {
			return nil, &MemoryError{Op: op, Addr: a, Len: k, Err: err}
		}
		if len(rep) != 2*k {
			// Stubs may return fewer bytes than asked; QEMU never does.
			if len(rep) == 0 || len(rep) > 2*k {
				return nil, &MemoryError{Op: op, Addr: a, Len: k, Err: fmt.Errorf("reply of %d hex digits: %w", len(rep), ErrMalformed)}
			}
		}
		before := len(out)
		if out, err = decodeHex(out, rep); err != nil {
			return nil, &MemoryError{Op: op, Addr: a, Len: k, Err: err}
		}
		if len(out) == before {
			return nil, &MemoryError{Op: op, Addr: a, Len: k, Err: ErrMalformed}
		}
	}
	return out, nil
}

// WriteMemory writes data at a virtual address with 'M addr,len:hex'
// packets, each small enough for the stub's PacketSize (about 2 KiB for
// QEMU, which drops oversized packets without a reply).
func (c *Client) WriteMemory(ctx context.Context, addr uint64, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeMemLocked(ctx, "write", addr, data)
}

func (c *Client) writeMemLocked(ctx context.Context, op string, addr uint64, data []byte) error {
	req := make([]byte, 0, c.cn.maxOut)
	for done := 0; done < len(data) || (len(data) == 0 && done == 0); {
		a := addr + uint64(done)
		// Header at most "M" + 16 + "," + 8 + ":" = 27 bytes; 3 for the frame.
		k := min(len(data)-done, (c.cn.maxOut-27-4)/2)
		if k <= 0 && len(data) > 0 {
			return &MemoryError{Op: op, Addr: a, Len: len(data) - done, Err: ErrTooLarge}
		}
		req = append(req[:0], 'M')
		req = strconv.AppendUint(req, a, 16)
		req = append(req, ',')
		req = strconv.AppendUint(req, uint64(k), 16)
		req = append(req, ':')
		req = hex.AppendEncode(req, data[done:done+k])
		rep, err := c.exchangeBytes(ctx, op+" memory", req)
		if err != nil {
			return &MemoryError{Op: op, Addr: a, Len: k, Err: err}
		}
		if string(rep) != "OK" {
			return &MemoryError{Op: op, Addr: a, Len: k, Err: fmt.Errorf("reply %q: %w", trunc(rep), ErrMalformed)}
		}
		if len(data) == 0 {
			break
		}
		done += k
	}
	return nil
}

// ReadPhysical reads guest-physical memory: it switches QEMU to physical
// addressing with 'Qqemu.PhyMemMode:1', reads with 'm', and restores the
// previous mode.
func (c *Client) ReadPhysical(ctx context.Context, addr uint64, n int) (b []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	restore, err := c.physLocked(ctx)
	if err != nil {
		return nil, &MemoryError{Op: "read physical", Addr: addr, Len: n, Err: err}
	}
	defer func() { err = errors.Join(err, restore()) }()
	return c.readMemLocked(ctx, "read physical", addr, n)
}

// WritePhysical writes guest-physical memory, like ReadPhysical.
func (c *Client) WritePhysical(ctx context.Context, addr uint64, data []byte) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	restore, err := c.physLocked(ctx)
	if err != nil {
		return &MemoryError{Op: "write physical", Addr: addr, Len: len(data), Err: err}
	}
	defer func() { err = errors.Join(err, restore()) }()
	return c.writeMemLocked(ctx, "write physical", addr, data)
}

// physLocked enters physical addressing and returns how to restore the
// previous mode (queried once with 'qqemu.PhyMemMode', then tracked).
func (c *Client) physLocked(ctx context.Context) (func() error, error) {
	if c.phyMode < 0 {
		rep, err := c.exchange(ctx, "query physical mode", "qqemu.PhyMemMode")
		if err != nil {
			return nil, err
		}
		switch string(rep) {
		case "0", "1":
			c.phyMode = int(rep[0] - '0')
		default:
			return nil, fmt.Errorf("rsp: query physical mode: reply %q: %w", trunc(rep), ErrMalformed)
		}
	}
	if c.phyMode == 1 {
		return func() error { return nil }, nil
	}
	if err := c.setPhysLocked(ctx, 1); err != nil {
		return nil, err
	}
	return func() error {
		// Restore even if ctx expired, within a short bound of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.reqTimeoutOr())
		defer cancel()
		return c.setPhysLocked(rctx, 0)
	}, nil
}

func (c *Client) reqTimeoutOr() time.Duration { return c.reqTimeout }

func (c *Client) setPhysLocked(ctx context.Context, mode int) error {
	rep, err := c.exchange(ctx, "set physical mode", fmt.Sprintf("Qqemu.PhyMemMode:%d", mode))
	if err != nil {
		return err
	}
	if string(rep) != "OK" {
		return fmt.Errorf("rsp: set physical mode: reply %q: %w", trunc(rep), ErrMalformed)
	}
	c.phyMode = mode
	return nil
}
