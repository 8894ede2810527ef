package symbols

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errCFISwap is returned by swapCFI for a section it cannot walk.
var errCFISwap = errors.New("cannot convert big-endian call-frame information")

// swapCFI returns a little-endian copy of a big-endian .eh_frame (eh) or
// .debug_frame section: every fixed-size field (entry lengths, CIE ids and
// pointers, encoded addresses, advance_loc2/4 and set_loc operands)
// reversed, LEB128 and byte fields left alone. delve's parser reads only
// little-endian; s390x is big-endian. DWARF expressions (rare in compiler
// CFI, and not evaluated by the unwinder) are copied unchanged.
func swapCFI(data []byte, ptrSize int, eh bool) (_ []byte, err error) {
	// Every field access is bounded by its entry, but the entry's own
	// fields (augmentation, encodings) come from the input: a malformed
	// section must be an error, never a panic.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: malformed section: %v", errCFISwap, r)
		}
	}()
	out := append([]byte(nil), data...)
	type cieInfo struct {
		fdeEnc  byte
		augZ    bool
		version byte
	}
	cies := map[int]cieInfo{}
	swap := func(off, n int) error {
		if off < 0 || off+n > len(out) {
			return fmt.Errorf("%w: field at %#x past the end", errCFISwap, off)
		}
		for i, j := off, off+n-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return nil
	}
	uleb := func(off int) (uint64, int, error) {
		var v uint64
		for shift := 0; off < len(out); shift += 7 {
			b := out[off]
			off++
			if shift < 64 {
				v |= uint64(b&0x7f) << shift
			}
			if b&0x80 == 0 {
				return v, off, nil
			}
		}
		return 0, off, fmt.Errorf("%w: truncated LEB128", errCFISwap)
	}
	encSize := func(enc byte) int {
		switch enc & 0x0f {
		case 0x00:
			return ptrSize
		case 0x02, 0x0a:
			return 2
		case 0x03, 0x0b:
			return 4
		case 0x04, 0x0c:
			return 8
		}
		return -1 // LEB128 or unknown
	}
	// skipEnc passes over one encoded pointer at off, swapping it.
	skipEnc := func(off int, enc byte) (int, error) {
		if enc == 0xff {
			return off, nil
		}
		if n := encSize(enc); n > 0 {
			return off + n, swap(off, n)
		}
		if enc&0x0f == 0x01 || enc&0x0f == 0x09 {
			_, next, err := uleb(off)
			return next, err
		}
		return off, fmt.Errorf("%w: pointer encoding %#x", errCFISwap, enc)
	}
	// program swaps the operands of a CFA program.
	program := func(off, end int, addrEnc byte) error {
		for off < end {
			op := out[off]
			off++
			var err error
			switch {
			case op&0xc0 == 0x40, op&0xc0 == 0xc0: // advance_loc, restore
				continue
			case op&0xc0 == 0x80: // offset: ULEB
				_, off, err = uleb(off)
			default:
				switch op {
				case 0x00, 0x0a, 0x0b, 0x2d: // nop, remember/restore_state, GNU_window_save
				case 0x01: // set_loc
					off, err = skipEnc(off, addrEnc)
				case 0x02:
					off++
				case 0x03:
					err = swap(off, 2)
					off += 2
				case 0x04:
					err = swap(off, 4)
					off += 4
				case 0x06, 0x07, 0x08, 0x0d, 0x0e, 0x13, 0x2e: // one LEB128
					_, off, err = uleb(off)
				case 0x05, 0x09, 0x0c, 0x11, 0x12, 0x14, 0x15, 0x2f: // two LEB128
					if _, off, err = uleb(off); err == nil {
						_, off, err = uleb(off)
					}
				case 0x0f: // def_cfa_expression: block
					var n uint64
					n, off, err = uleb(off)
					off += int(n)
				case 0x10, 0x16: // expression, val_expression: reg, block
					var n uint64
					if _, off, err = uleb(off); err == nil {
						n, off, err = uleb(off)
						off += int(n)
					}
				default:
					return fmt.Errorf("%w: CFA opcode %#x", errCFISwap, op)
				}
			}
			if err != nil {
				return err
			}
		}
		if off > end {
			return fmt.Errorf("%w: CFA program past its entry", errCFISwap)
		}
		return nil
	}
	for off := 0; off+4 <= len(out); {
		start := off
		length := int(binary.BigEndian.Uint32(out[off:]))
		if err := swap(off, 4); err != nil {
			return nil, err
		}
		if length == 0 {
			off += 4
			continue // .eh_frame terminator
		}
		if length == 0xffffffff {
			return nil, fmt.Errorf("%w: 64-bit DWARF", errCFISwap)
		}
		body := off + 4
		end := body + length
		if end > len(out) || length < 4 {
			return nil, fmt.Errorf("%w: entry at %#x: length %d", errCFISwap, start, length)
		}
		id := binary.BigEndian.Uint32(out[body:])
		if err := swap(body, 4); err != nil {
			return nil, err
		}
		p := body + 4
		isCIE := eh && id == 0 || !eh && id == 0xffffffff
		if isCIE {
			ci := cieInfo{version: out[p]}
			p++
			aug := p
			for p < end && out[p] != 0 {
				p++
			}
			augStr := string(out[aug:p])
			p++
			if !eh && ci.version >= 4 {
				p += 2 // address_size, segment_selector_size
			}
			var err error
			if _, p, err = uleb(p); err != nil { // code alignment
				return nil, err
			}
			if _, p, err = uleb(p); err != nil { // data alignment (SLEB: same length)
				return nil, err
			}
			if ci.version == 1 {
				p++
			} else if _, p, err = uleb(p); err != nil {
				return nil, err
			}
			if !eh {
				ci.fdeEnc = 0x00
			}
			if len(augStr) > 0 && augStr[0] == 'z' {
				ci.augZ = true
				var n uint64
				if n, p, err = uleb(p); err != nil {
					return nil, err
				}
				aend := p + int(n)
				for _, c := range augStr[1:] {
					switch c {
					case 'R':
						ci.fdeEnc = out[p]
						p++
					case 'L':
						p++ // LSDA encoding
					case 'P':
						enc := out[p]
						if p, err = skipEnc(p+1, enc); err != nil {
							return nil, err
						}
					case 'S', 'B':
					default:
						p = aend
					}
				}
				p = aend
			}
			cies[start] = ci
			if err := program(p, end, ci.fdeEnc); err != nil {
				return nil, err
			}
		} else {
			cieOff := int(id)
			if eh {
				cieOff = body - int(id)
			}
			ci, ok := cies[cieOff]
			if !ok {
				return nil, fmt.Errorf("%w: FDE at %#x: no CIE at %#x", errCFISwap, start, cieOff)
			}
			n := encSize(ci.fdeEnc)
			if n <= 0 {
				return nil, fmt.Errorf("%w: FDE pointer encoding %#x", errCFISwap, ci.fdeEnc)
			}
			if err := swap(p, n); err != nil { // initial location
				return nil, err
			}
			if err := swap(p+n, n); err != nil { // address range
				return nil, err
			}
			p += 2 * n
			if ci.augZ {
				an, next, err := uleb(p)
				if err != nil {
					return nil, err
				}
				// The LSDA pointer, if any, is not used: leave it.
				p = next + int(an)
			}
			if err := program(p, end, ci.fdeEnc); err != nil {
				return nil, err
			}
		}
		off = end
	}
	return out, nil
}
