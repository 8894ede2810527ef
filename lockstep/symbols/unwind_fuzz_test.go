package symbols

import (
	"encoding/binary"
	"testing"
)

// FuzzParseORC checks that ParseORC never panics, that a table it accepts
// has one entry per ip, and that Lookup answers for every address without
// panicking. Seeds (testdata/fuzz/FuzzParseORC) are a slice of a Debian
// 6.1 kernel's tables around do_one_initcall, in both layouts.
func FuzzParseORC(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0}, []byte{8, 0, 0, 0, 5, 0}, false, uint64(0x1000), uint64(0x1000))
	f.Fuzz(func(t *testing.T, ip, unwind []byte, newLayout bool, base, pc uint64) {
		o, err := ParseORC(ip, base, unwind, newLayout)
		if err != nil {
			return
		}
		if o.Len() != len(ip)/4 {
			t.Fatalf("%d entries from %d ip bytes", o.Len(), len(ip))
		}
		for i := 1; i < o.Len(); i++ {
			if o.ips[i] < o.ips[i-1] {
				t.Fatalf("entries not sorted at %d", i)
			}
		}
		if e, ok := o.Lookup(pc); ok && e.Type > ORCUndefined {
			t.Fatalf("Lookup(%#x): type %d", pc, e.Type)
		}
	})
}

// FuzzParseCFI checks that ParseCFI (delve's pkg/dwarf/frame underneath,
// which trusts its input) never panics out of this package and that
// Lookup at any pc returns a row or nothing. Seeds
// (testdata/fuzz/FuzzParseCFI) are the .eh_frame and .debug_frame of the
// unwind fixture of package guest and a slice of a kernel's .debug_frame.
func FuzzParseCFI(f *testing.F) {
	f.Add([]byte{0x0c, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 1, 0x78, 0x10, 0x0c}, false, uint64(0), uint64(0x401000))
	f.Fuzz(func(t *testing.T, data []byte, eh bool, ehAddr, pc uint64) {
		if !eh {
			ehAddr = 0
		} else if ehAddr == 0 {
			ehAddr = 0x400000
		}
		c, err := ParseCFI(data, binary.LittleEndian, 8, ehAddr)
		if err != nil {
			return
		}
		row, ok := c.Lookup(pc)
		if ok && row.Regs == nil {
			t.Fatalf("Lookup(%#x): a row without its register map", pc)
		}
	})
}

// FuzzSwapCFI checks that the big-endian conversion of call-frame
// information (swapCFI, for s390x) never panics, keeps the length, and
// that what it accepts parses and looks up without panicking. Seeds
// (testdata/fuzz/FuzzSwapCFI) are the .eh_frame and .debug_frame of
// testdata/frames.c of package guest built for s390x.
func FuzzSwapCFI(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0x0c, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 0x0e, 1, 0x1b, 0x0c, 0x0f, 0xa0, 0x01, 0}, true, uint64(0x10000))
	f.Fuzz(func(t *testing.T, data []byte, eh bool, pc uint64) {
		out, err := swapCFI(data, 8, eh)
		if err != nil {
			return
		}
		if len(out) != len(data) {
			t.Fatalf("swapCFI changed the length: %d -> %d", len(data), len(out))
		}
		ehAddr := uint64(0)
		if eh {
			ehAddr = 0x10000
		}
		if c, err := ParseCFI(data, binary.BigEndian, 8, ehAddr); err == nil {
			c.Lookup(pc)
		}
	})
}
