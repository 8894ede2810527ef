package rsp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Value is a register value: its bytes in target byte order exactly as on
// the wire, and that byte order.
type Value struct {
	Bytes     []byte
	BigEndian bool
}

// ValueFromUint64 makes a size-byte value holding u in the given byte order.
func ValueFromUint64(u uint64, size int, bigEndian bool) Value {
	b := make([]byte, size)
	for i := 0; i < size && i < 8; i++ {
		x := byte(u >> (8 * i))
		if bigEndian {
			b[size-1-i] = x
		} else {
			b[i] = x
		}
	}
	return Value{Bytes: b, BigEndian: bigEndian}
}

// be returns the bytes most significant first.
func (v Value) be() []byte {
	if v.BigEndian {
		return v.Bytes
	}
	return reverse(v.Bytes)
}

// Uint64 returns the numeric value; ok is false when the value is wider
// than 64 bits and a bit above bit 63 is set.
func (v Value) Uint64() (u uint64, ok bool) {
	ok = true
	n := len(v.Bytes)
	for i := 0; i < n; i++ {
		var b byte
		if v.BigEndian {
			b = v.Bytes[n-1-i]
		} else {
			b = v.Bytes[i]
		}
		if i < 8 {
			u |= uint64(b) << (8 * i)
		} else if b != 0 {
			ok = false
		}
	}
	return u, ok
}

// Hex returns the numeric value as "0x" and full-width big-endian hex:
// two digits per byte, never truncated (a 128-bit xmm gives 32 digits).
func (v Value) Hex() string {
	return "0x" + hex.EncodeToString(v.be())
}

// String returns Hex.
func (v Value) String() string { return v.Hex() }

// Equal reports whether two values hold the same bytes.
func (v Value) Equal(w Value) bool { return string(v.Bytes) == string(w.Bytes) }

// Registers maps register names to values.
type Registers map[string]Value

// ReadRegisters reads every register of the layout: one 'g' packet, plus
// one 'p n' packet per register outside 'g'. Registers the stub reports as
// unavailable ("xx") or refuses to read (an Exx reply to 'p': QEMU's riscv
// pmpcfg1 and pmpcfg3 on rv64) are left out.
func (c *Client) ReadRegisters(ctx context.Context) (Registers, error) {
	names := make([]string, len(c.layout.Registers))
	for i, r := range c.layout.Registers {
		names[i] = r.Name
	}
	return c.ReadRegisterSet(ctx, names...)
}

// ReadRegisterSet reads the named registers: one 'g' packet if any of them
// is in 'g', and one 'p n' packet for each of the others.
func (c *Client) ReadRegisterSet(ctx context.Context, names ...string) (Registers, error) {
	if len(c.layout.Registers) == 0 {
		return nil, fmt.Errorf("rsp: read registers: stub gave no target description: %w", ErrUnsupported)
	}
	regs := make([]*Register, 0, len(names))
	inG := false
	for _, n := range names {
		r, ok := c.layout.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("rsp: read register %q: %w", n, ErrNoRegister)
		}
		regs = append(regs, r)
		inG = inG || r.Offset >= 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Registers, len(regs))
	if inG {
		rep, err := c.exchange(ctx, "read registers", "g")
		if err != nil {
			return nil, err
		}
		buf := make([]byte, 0, len(rep)/2) // one backing array for all values
		for _, r := range regs {
			if _, dup := out[r.Name]; dup || r.Offset < 0 {
				continue
			}
			end := 2 * (r.Offset + r.Size())
			if end > len(rep) {
				return nil, fmt.Errorf("rsp: read registers: reply of %d bytes lacks %s: %w", len(rep)/2, r.Name, ErrMalformed)
			}
			h := rep[2*r.Offset : end]
			if h[0] == 'x' {
				continue
			}
			b, err := decodeHex(buf[len(buf):len(buf):cap(buf)], h)
			if err != nil {
				return nil, fmt.Errorf("rsp: read registers: %s: %w", r.Name, err)
			}
			buf = buf[:len(buf)+len(b)]
			out[r.Name] = Value{Bytes: b[:len(b):len(b)], BigEndian: c.layout.BigEndian}
		}
	}
	for _, r := range regs {
		if r.Offset >= 0 {
			continue
		}
		v, ok, err := c.readRegLocked(ctx, r)
		if err != nil {
			return nil, err
		}
		if ok {
			out[r.Name] = v
		}
	}
	return out, nil
}

// readRegLocked reads one register with 'p n'. A register the stub
// refuses (Exx) is unavailable, like "xx": the target description lists
// registers some stubs cannot read.
func (c *Client) readRegLocked(ctx context.Context, r *Register) (Value, bool, error) {
	rep, err := c.exchange(ctx, "read register "+r.Name, fmt.Sprintf("p%x", r.Num))
	if errors.Is(err, ErrRefused) {
		return Value{}, false, nil
	}
	if err != nil {
		return Value{}, false, err
	}
	if rep[0] == 'x' {
		return Value{}, false, nil
	}
	b, err := decodeHex(make([]byte, 0, r.Size()), rep)
	if err != nil {
		return Value{}, false, fmt.Errorf("rsp: read register %s: %w", r.Name, err)
	}
	if len(b) != r.Size() {
		return Value{}, false, fmt.Errorf("rsp: read register %s: %d bytes, want %d: %w", r.Name, len(b), r.Size(), ErrMalformed)
	}
	return Value{Bytes: b, BigEndian: c.layout.BigEndian}, true, nil
}

// ReadRegister reads one register: with 'p n' when it lies outside 'g',
// otherwise through 'g'.
func (c *Client) ReadRegister(ctx context.Context, name string) (Value, error) {
	regs, err := c.ReadRegisterSet(ctx, name)
	if err != nil {
		return Value{}, err
	}
	r, _ := c.layout.Lookup(name)
	v, ok := regs[r.Name]
	if !ok {
		return Value{}, fmt.Errorf("rsp: read register %s: unavailable: %w", name, ErrUnsupported)
	}
	return v, nil
}

// WriteRegister writes one register with 'P n=value'. The value must have
// the register's size; its bytes are sent in target order.
func (c *Client) WriteRegister(ctx context.Context, name string, v Value) error {
	r, ok := c.layout.Lookup(name)
	if !ok {
		return fmt.Errorf("rsp: write register %q: %w", name, ErrNoRegister)
	}
	if len(v.Bytes) != r.Size() {
		return fmt.Errorf("rsp: write register %s: %d bytes, want %d: %w", name, len(v.Bytes), r.Size(), ErrMalformed)
	}
	if v.BigEndian != c.layout.BigEndian {
		v = Value{Bytes: reverse(v.Bytes), BigEndian: c.layout.BigEndian}
	}
	req := hex.AppendEncode([]byte(fmt.Sprintf("P%x=", r.Num)), v.Bytes)
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchangeBytes(ctx, "write register "+r.Name, req)
	if err != nil {
		return err
	}
	if string(rep) != "OK" {
		return fmt.Errorf("rsp: write register %s: reply %q: %w", name, trunc(rep), ErrMalformed)
	}
	return nil
}

// PC reads the program counter.
func (c *Client) PC(ctx context.Context) (uint64, error) {
	name := c.layout.PC()
	if name == "" {
		return 0, fmt.Errorf("rsp: read pc: no pc in %q layout: %w", c.layout.Arch, ErrNoRegister)
	}
	v, err := c.ReadRegister(ctx, name)
	if err != nil {
		return 0, err
	}
	u, _ := v.Uint64()
	return u, nil
}

// reverse returns a reversed copy of b.
func reverse(b []byte) []byte {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}
