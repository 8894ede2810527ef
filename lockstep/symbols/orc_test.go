package symbols

import (
	"encoding/binary"
	"errors"
	"testing"
)

// orcBits packs an entry's register and type bits as the kernel lays them
// out (little-endian bitfields).
func orcBits(sp, bp, typ, flag uint16, newLayout bool) uint16 {
	if newLayout {
		return sp | bp<<4 | typ<<8 | flag<<11
	}
	return sp | bp<<4 | typ<<8 | flag<<10
}

func TestParseORC(t *testing.T) {
	t.Parallel()
	const base = 0xffffffff82000000
	type ent struct {
		ip     uint64
		sp, bp int16
		bits   uint16
	}
	tests := []struct {
		name      string
		newLayout bool
		ents      []ent
		pc        uint64
		want      ORCEntry
		ok        bool
	}{
		{"call, 6.1 layout", false, []ent{{0x1000, 8, 0, orcBits(ORCRegSP, 0, 0, 0, false)}, {0x1010, 40, -32, orcBits(ORCRegSP, ORCRegPrevSP, 0, 0, false)}},
			0x1015, ORCEntry{SPOffset: 40, BPOffset: -32, SPReg: ORCRegSP, BPReg: ORCRegPrevSP, Type: ORCCall}, true},
		{"regs, 6.1 layout", false, []ent{{0x1000, 0, 0, orcBits(ORCRegSP, 0, 1, 0, false)}},
			0x1000, ORCEntry{SPReg: ORCRegSP, Type: ORCRegs, Signal: true}, true},
		{"end, 6.1 layout", false, []ent{{0x1000, 0, 0, orcBits(0, 0, 0, 1, false)}},
			0x1003, ORCEntry{Type: ORCEnd}, true},
		{"call, 6.4 layout", true, []ent{{0x1000, 16, 0, orcBits(ORCRegSP, 0, 2, 0, true)}},
			0x1003, ORCEntry{SPOffset: 16, SPReg: ORCRegSP, Type: ORCCall}, true},
		{"undefined, 6.4 layout", true, []ent{{0x1000, 0, 0, orcBits(0, 0, 0, 0, true)}},
			0x1003, ORCEntry{Type: ORCUndefined}, true},
		{"signal regs-partial, 6.4 layout", true, []ent{{0x1000, 0, 0, orcBits(ORCRegSP, 0, 4, 1, true)}},
			0x1003, ORCEntry{SPReg: ORCRegSP, Type: ORCRegsPartial, Signal: true}, true},
		{"below the first entry", false, []ent{{0x1000, 8, 0, orcBits(ORCRegSP, 0, 0, 0, false)}}, 0xfff, ORCEntry{}, false},
		{"unsorted input", false, []ent{{0x1010, 16, 0, orcBits(ORCRegSP, 0, 0, 0, false)}, {0x1000, 8, 0, orcBits(ORCRegSP, 0, 0, 0, false)}},
			0x1008, ORCEntry{SPOffset: 8, SPReg: ORCRegSP, Type: ORCCall}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ip := make([]byte, 4*len(tc.ents))
			un := make([]byte, 6*len(tc.ents))
			for i, e := range tc.ents {
				binary.LittleEndian.PutUint32(ip[4*i:], uint32(int32(int64(base+e.ip)-int64(base+uint64(4*i)))))
				binary.LittleEndian.PutUint16(un[6*i:], uint16(e.sp))
				binary.LittleEndian.PutUint16(un[6*i+2:], uint16(e.bp))
				binary.LittleEndian.PutUint16(un[6*i+4:], e.bits)
			}
			o, err := ParseORC(ip, base, un, tc.newLayout)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := o.Lookup(base + tc.pc)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Lookup(%#x) = %+v, %v; want %+v, %v", tc.pc, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, err := ParseORC(make([]byte, 8), base, make([]byte, 6), false); err == nil {
		t.Error("2 ips and 1 entry: no error")
	}
}

// TestUnwindTablesLazy checks that Load reads no unwind table and that a
// file without them says so with the package's errors.
func TestUnwindTablesLazy(t *testing.T) {
	t.Parallel()
	tab, err := Load(fixture(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if tab.orc.tab != nil || tab.cfi.tab != nil {
		t.Fatal("Load read unwind tables")
	}
	if _, err := tab.ORC(); !errors.Is(err, ErrNoORC) {
		t.Errorf("ORC() error %v, want ErrNoORC", err)
	}
	c, err := tab.CFI()
	switch {
	case errors.Is(err, ErrNoCFI):
		t.Logf("fixture has no CFI: %v", err)
	case err != nil:
		t.Errorf("CFI(): %v", err)
	case c.Len() == 0:
		t.Error("CFI() has no entries")
	}
}
