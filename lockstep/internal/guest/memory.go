package guest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// BulkThreshold is the size from which memory is read with QMP
// pmemsave/memsave instead of 'm' packets (about 2 KiB per round trip).
const BulkThreshold = 1 << 20

// Memory is one compared memory range as read on one guest. A failed read
// is kept: an unreadable range on one side only is itself a finding.
type Memory struct {
	Name  string
	Space string
	Addr  uint64
	// Data holds a range read over RSP; a bulk range stays in the dump
	// file Dump, which Source reads a chunk at a time and Release removes.
	Data []byte
	Dump string
	Err  error
}

// Source opens the range's bytes for compare.MemoryFrom; close it after.
func (m *Memory) Source() (compare.Source, io.Closer, error) {
	if m.Dump == "" {
		return bytes.NewReader(m.Data), io.NopCloser(nil), nil
	}
	f, err := os.Open(m.Dump)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return io.NewSectionReader(f, 0, fi.Size()), f, nil
}

// Release removes the range's dump file, if it has one.
func (m *Memory) Release() {
	if m.Dump != "" {
		os.Remove(m.Dump)
		m.Dump = ""
	}
}

// ReadRange reads one memory range of a compare spec.
func (g *Guest) ReadRange(ctx context.Context, m scenario.MemoryRange) Memory {
	mc := Memory{Space: m.Space}
	if mc.Space == "" {
		mc.Space = scenario.SpaceVirtual
	}
	length := m.Length
	if m.HasAddress {
		mc.Name = fmt.Sprintf("%#x", m.Address)
		mc.Addr = m.Address + m.Offset
	} else {
		mc.Name = m.Symbol
		a, err := g.Resolve(m.Symbol)
		if err != nil {
			mc.Err = err
			return mc
		}
		mc.Addr = a + m.Offset
		if length == 0 && g.Syms != nil {
			if size, _ := g.Syms.SymbolSize(m.Symbol); size > m.Offset {
				length = size - m.Offset
			}
		}
		if m.Offset > 0 {
			mc.Name = fmt.Sprintf("%s+%#x", m.Symbol, m.Offset)
		}
	}
	if length == 0 {
		mc.Err = fmt.Errorf("memory %s: zero length (give length:)", mc.Name)
		return mc
	}
	switch {
	case length >= BulkThreshold && g.M != nil:
		mc.Dump, mc.Err = g.BulkDump(ctx, mc.Space, mc.Addr, length)
	case mc.Space == scenario.SpacePhysical:
		mc.Data, mc.Err = g.T.ReadPhysical(ctx, mc.Addr, int(length))
	default:
		mc.Data, mc.Err = g.T.ReadMemory(ctx, mc.Addr, int(length))
	}
	return mc
}

// BulkDump has QEMU write a large range to a new file in the run
// directory through QMP pmemsave (physical) or memsave (virtual), at disk
// speed instead of 2 KiB 'm' packets, and returns the file's path.
func (g *Guest) BulkDump(ctx context.Context, space string, addr, n uint64) (string, error) {
	f, err := os.CreateTemp(g.Dir, fmt.Sprintf("%s-mem-%x-*.bin", g.Tag, addr))
	if err != nil {
		return "", fmt.Errorf("guest %s: memory dump: %w", g.Name(), err)
	}
	name := f.Name()
	f.Close()
	cmd := "memsave"
	if space == scenario.SpacePhysical {
		cmd = "pmemsave"
	}
	args := map[string]any{"val": int64(addr), "size": int64(n), "filename": name}
	if err := g.M.QMP(ctx, cmd, args, nil); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("guest %s: %s %#x+%#x: %w", g.Name(), cmd, addr, n, err)
	}
	return name, nil
}

// BulkRead reads a large range whole through BulkDump.
func (g *Guest) BulkRead(ctx context.Context, space string, addr, n uint64) ([]byte, error) {
	f, err := g.BulkDump(ctx, space, addr, n)
	if err != nil {
		return nil, err
	}
	defer os.Remove(f)
	return os.ReadFile(f)
}

// SetRegister writes a register (fault injection): value in the
// register's size and the target's byte order.
func (g *Guest) SetRegister(ctx context.Context, name string, value uint64) error {
	l := g.T.Layout()
	r, ok := l.Lookup(name)
	if !ok {
		return fmt.Errorf("guest %s: no register %q", g.Name(), name)
	}
	v := rsp.ValueFromUint64(value, r.Size(), l.BigEndian)
	if err := g.T.WriteRegister(ctx, r.Name, v); err != nil {
		return g.fail(ctx, fmt.Errorf("write register %s: %w", r.Name, err))
	}
	return nil
}

// WriteMemory writes guest memory at a virtual address (fault injection).
func (g *Guest) WriteMemory(ctx context.Context, addr uint64, data []byte) error {
	if err := g.T.WriteMemory(ctx, addr, data); err != nil {
		return g.fail(ctx, fmt.Errorf("write memory at %#x: %w", addr, err))
	}
	return nil
}
