package rsp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodePacket checks that decoding a framed packet, and reading a
// stream of arbitrary bytes, never panics or exceeds its bounds, and that
// framing then decoding gives the payload back.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"$#00", "$OK#9a", "$0*\"1#00", "$a}\x03#00", "+$T05thread:p01.01;#06", "$E22#ad"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := DecodePacket(b); err == nil && len(p) > defaultMaxIn {
			t.Fatalf("decoded %d bytes", len(p))
		}
		const limit = 256
		c := newConn(bytes.NewReader(b), io.Discard)
		c.maxIn = limit
		for i := 0; i < 64; i++ {
			p, err := c.recv()
			if err != nil {
				break
			}
			if len(p) > limit {
				t.Fatalf("recv gave %d bytes over limit %d", len(p), limit)
			}
		}
		payload := b
		if len(payload) > limit {
			payload = payload[:limit]
		}
		got, err := DecodePacket(frame(nil, payload))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("round trip of %q = %q, %v", payload, got, err)
		}
	})
}

// FuzzParseStopReply checks that stop replies parse without panics and that
// a parsed reply's fields agree with its kind.
func FuzzParseStopReply(f *testing.F) {
	for _, s := range []string{"T05thread:p01.01;", "T05watch:0000000000108020;thread:p01.01;", "S05", "W00", "X09;process:1", "T0206:0100000000000000;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStopReply(b)
		if err != nil {
			return
		}
		switch s.Kind {
		case 'T', 'S', 'W', 'X':
		default:
			t.Fatalf("kind %q accepted", s.Kind)
		}
		if s.Watch != "" && s.Pairs[s.Watch] == "" {
			t.Fatalf("watch %q without pair", s.Watch)
		}
	})
}

// FuzzParseTargetXML checks that target descriptions parse within their
// bounds, and that every failure matches one of the package's sentinel
// errors; includes resolve to the samples in testdata/tdesc.
func FuzzParseTargetXML(f *testing.F) {
	samples, _ := filepath.Glob(filepath.Join("testdata", "tdesc", "*", "*.xml"))
	docs := map[string][]byte{}
	for _, p := range samples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		docs[filepath.Base(p)] = b
		f.Add(b)
	}
	for _, s := range []string{"<target", `<?xml version="1.0" encoding="latin1"?><target/>`, "<target><reg/></target>", `<xi:include href="nope.xml"/>`} {
		f.Add([]byte(s))
	}
	fetch := func(annex string) ([]byte, error) {
		if d, ok := docs[annex]; ok {
			return d, nil
		}
		return nil, ErrUnsupported
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseTargetXML(b, fetch)
		if err != nil {
			if l != nil {
				t.Fatal("layout with error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			return
		}
		if len(l.Registers) > maxRegisters {
			t.Fatalf("%d registers", len(l.Registers))
		}
		seen := map[int]bool{}
		for _, r := range l.Registers {
			if seen[r.Num] || r.BitSize <= 0 || r.Group == "" {
				t.Fatalf("bad register %+v", r)
			}
			seen[r.Num] = true
		}
		l.assignOffsets(608)
		if l.GSize > 608 {
			t.Fatalf("g size %d", l.GSize)
		}
		_ = l.PC()
	})
}
