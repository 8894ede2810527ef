package bisect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseLog checks that ParseLog never panics, and that every entry it
// accepts is valid and survives a marshal and parse round trip. Seeds are
// in testdata/fuzz/FuzzParseLog.
func FuzzParseLog(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseLog(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, e := range es {
			if verr := e.validate(); verr != nil {
				t.Fatalf("accepted an invalid entry %+v: %v", e, verr)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(append(b, '\n'))
		}
		again, err := ParseLog(&buf)
		if err != nil || len(again) != len(es) {
			t.Fatalf("round trip: %d entries, %v; want %d", len(again), err, len(es))
		}
	})
}

// FuzzParseBisectAll checks that ParseBisectAll never panics and that what
// it accepts has full hashes and non-negative distances. Seeds are in
// testdata/fuzz/FuzzParseBisectAll.
func FuzzParseBisectAll(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseBisectAll(data)
		if err != nil {
			return
		}
		for _, c := range cs {
			if !isHash(c.Hash) || c.Dist < 0 || strings.ContainsAny(c.Hash, " ()") {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}
