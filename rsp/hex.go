package rsp

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

func unhex1(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeHex appends the bytes of an even-length hex string to dst.
func decodeHex(dst, h []byte) ([]byte, error) {
	if len(h)%2 != 0 {
		return nil, fmt.Errorf("odd hex length %d: %w", len(h), ErrMalformed)
	}
	n := len(dst)
	dst = slices.Grow(dst, len(h)/2)[:n+len(h)/2]
	if _, err := hex.Decode(dst[n:], h); err != nil {
		return nil, fmt.Errorf("bad hex: %w: %w", err, ErrMalformed)
	}
	return dst, nil
}

// parseHex parses a hex number with an optional 0x prefix.
func parseHex(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("hex %q: %w", s, ErrMalformed)
	}
	return n, nil
}

// parseSupported splits a qSupported reply into features.
func parseSupported(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Split(s, ";") {
		switch {
		case f == "":
		case strings.Contains(f, "="):
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
		case strings.HasSuffix(f, "+") || strings.HasSuffix(f, "-") || strings.HasSuffix(f, "?"):
			m[f[:len(f)-1]] = f[len(f)-1:]
		default:
			m[f] = "+"
		}
	}
	return m
}
