package scenario

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadBreak is matched (errors.Is) by every ParseBreak failure.
var ErrBadBreak = errors.New("bad break expression")

// ParseBreak parses a break expression: "symbol", "symbol+0x10",
// "symbol+16" or "0xADDR". For an address it returns isAddr with addr set;
// otherwise sym and off. Symbols are C-like names, optionally with '.', '$'
// or '@' after the first character (e.g. "foo.cold", "memcpy@plt").
func ParseBreak(expr string) (sym string, off uint64, addr uint64, isAddr bool, err error) {
	e := strings.TrimSpace(expr)
	if e == "" {
		return "", 0, 0, false, fmt.Errorf("%w: empty", ErrBadBreak)
	}
	if strings.HasPrefix(e, "0x") || strings.HasPrefix(e, "0X") {
		a, perr := strconv.ParseUint(e[2:], 16, 64)
		if perr != nil || strings.HasPrefix(e[2:], "+") || strings.HasPrefix(e[2:], "-") {
			return "", 0, 0, false, fmt.Errorf("%w: %q is not a hex address", ErrBadBreak, expr)
		}
		return "", 0, a, true, nil
	}
	name, offs, hasOff := strings.Cut(e, "+")
	name = strings.TrimSpace(name)
	if !isSymbol(name) {
		return "", 0, 0, false, fmt.Errorf("%w: %q is not a symbol, symbol+offset or 0xADDR", ErrBadBreak, expr)
	}
	if hasOff {
		offs = strings.TrimSpace(offs)
		o, perr := parseOffset(offs)
		if perr != nil {
			return "", 0, 0, false, fmt.Errorf("%w: bad offset %q in %q", ErrBadBreak, offs, expr)
		}
		off = o
	}
	return name, off, 0, false, nil
}

// parseOffset parses a decimal or 0x-hex unsigned number.
func parseOffset(s string) (uint64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		if len(s) == 2 || s[2] == '+' || s[2] == '-' {
			return 0, strconv.ErrSyntax
		}
		return strconv.ParseUint(s[2:], 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// isSymbol reports whether s looks like an ELF function or object name.
func isSymbol(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isIdentChar(c) && c != '.' && c != '$' && c != '@' {
			return false
		}
	}
	return true
}
