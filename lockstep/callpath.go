package lockstep

import (
	"context"
	"encoding/binary"
	"slices"

	"github.com/lockstep-dev/lockstep/compare"
)

type compareFrame = compare.Frame

const (
	maxFrames   = 64
	maxFrameGap = 1 << 20 // a saved frame pointer further than this is not a frame
	scanBytes   = 8 << 10 // how much stack a scan reads
	maxScanned  = 32      // frames a stack scan keeps
)

// backtrace returns side s's call path, outermost frame first. It walks
// the frame-pointer chain; where that chain is absent or broken (Linux
// built with ORC keeps no frame pointers) it falls back to a stack scan
// that keeps the words that land just after a call instruction in a text
// symbol, and marks those frames Uncertain.
func (r *run) backtrace(ctx context.Context, s *side) ([]compareFrame, error) {
	a := s.arch
	want := []string{a.PC, a.SP, a.FP}
	if a.Link != "" {
		want = append(want, a.Link)
	}
	regs, err := s.rsp.ReadRegisterSet(ctx, want...)
	if err != nil {
		return nil, infraf("guest %s: backtrace registers: %w", s.name(), err)
	}
	get := func(n string) uint64 { v, _ := regs[n].Uint64(); return v }
	pc, sp, fp := get(a.PC), get(a.SP), get(a.FP)

	frames := []compareFrame{{Location: s.loc(pc)}}
	walked, ok := r.walkFrames(ctx, s, pc, sp, fp, get)
	if ok {
		frames = append(frames, walked...)
	} else {
		frames = append(frames, r.scanStack(ctx, s, sp)...)
	}
	slices.Reverse(frames)
	return frames, nil
}

// walkFrames follows the frame-pointer chain. At a function's first
// instruction the frame is not yet set up: the return address is at the
// stack pointer (or in the link register) and fp still belongs to the
// caller.
func (r *run) walkFrames(ctx context.Context, s *side, pc, sp, fp uint64, get func(string) uint64) ([]compareFrame, bool) {
	a := s.arch
	ps := uint64(a.PtrSize)
	var out []compareFrame
	var ret uint64
	l, _ := s.symbolize(pc)
	switch {
	case l.Symbol != "" && l.Offset == 0 && a.Link != "":
		ret = get(a.Link)
	case l.Symbol != "" && l.Offset == 0:
		w, err := r.readWord(ctx, s, sp)
		if err != nil {
			return nil, false
		}
		ret = w
	case l.Symbol != "" && l.Offset == 1 && a.Name == "x86_64":
		// After "push %rbp", before "mov %rsp,%rbp".
		w, err := r.readWord(ctx, s, sp+ps)
		if err != nil {
			return nil, false
		}
		ret = w
	default:
		next, rv, err := r.frameAt(ctx, s, fp)
		if err != nil || !r.isReturn(ctx, s, rv) {
			return nil, false
		}
		ret = rv
		if next != 0 && (next <= fp || next-fp > maxFrameGap) {
			return []compareFrame{{Location: s.loc(ret)}}, true
		}
		fp = next
	}
	for len(out) < maxFrames {
		if !r.isReturn(ctx, s, ret) {
			break
		}
		out = append(out, compareFrame{Location: s.loc(ret)})
		if fp == 0 {
			break
		}
		next, rv, err := r.frameAt(ctx, s, fp)
		if err != nil {
			break
		}
		ret = rv
		if next != 0 && (next <= fp || next-fp > maxFrameGap) {
			if r.isReturn(ctx, s, ret) {
				out = append(out, compareFrame{Location: s.loc(ret)})
			}
			break
		}
		fp = next
	}
	return out, len(out) > 0
}

// frameAt reads the saved frame pointer and return address of the frame at fp.
func (r *run) frameAt(ctx context.Context, s *side, fp uint64) (next, ret uint64, err error) {
	ps := s.arch.PtrSize
	b, err := s.rsp.ReadMemory(ctx, fp, 2*ps)
	if err != nil {
		return 0, 0, err
	}
	return s.word(b[:ps]), s.word(b[ps:]), nil
}

func (r *run) readWord(ctx context.Context, s *side, addr uint64) (uint64, error) {
	b, err := s.rsp.ReadMemory(ctx, addr, s.arch.PtrSize)
	if err != nil {
		return 0, err
	}
	return s.word(b), nil
}

func (s *side) word(b []byte) uint64 {
	if s.arch.BigEndian {
		if len(b) == 4 {
			return uint64(binary.BigEndian.Uint32(b))
		}
		return binary.BigEndian.Uint64(b)
	}
	if len(b) == 4 {
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

// isReturn reports whether addr is a plausible return address: inside a
// text symbol and just after a call instruction.
func (r *run) isReturn(ctx context.Context, s *side, addr uint64) bool {
	if s.syms == nil || addr == 0 || !s.syms.IsText(addr) {
		return false
	}
	if s.arch.CallBefore == nil {
		return true
	}
	n := s.arch.MaxCallLen
	if n == 0 || uint64(n) > addr {
		return false
	}
	code, err := s.syms.ReadAt(addr-uint64(n), n)
	if err != nil {
		code, err = s.rsp.ReadMemory(ctx, addr-uint64(n), n)
		if err != nil {
			return false
		}
	}
	return s.arch.CallBefore(code)
}

// scanStack keeps the stack words above sp that look like return addresses.
func (r *run) scanStack(ctx context.Context, s *side, sp uint64) []compareFrame {
	var data []byte
	for n := scanBytes; n >= 256; n /= 2 {
		b, err := s.rsp.ReadMemory(ctx, sp, n)
		if err == nil {
			data = b
			break
		}
	}
	ps := s.arch.PtrSize
	var out []compareFrame
	for off := 0; off+ps <= len(data) && len(out) < maxScanned; off += ps {
		w := s.word(data[off : off+ps])
		if r.isReturn(ctx, s, w) {
			out = append(out, compareFrame{Location: s.loc(w), Uncertain: true})
		}
	}
	if len(out) == 0 {
		r.note("guest %s: no frame-pointer chain and no return addresses found on the stack at %#x", s.name(), sp)
	}
	return out
}
