package scenario

import (
	"fmt"
	"strings"
)

// expandEnv replaces ${VAR} and $VAR with values from lookup; "$$" is a
// literal "$" and a "$" not followed by a name or "{" is kept. It fails,
// naming the variable, on an unset variable or an unterminated "${".
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		var name string
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i += 2
			continue
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name = s[i+2 : i+2+end]
			if !isIdent(name) {
				return "", fmt.Errorf("bad variable name %q in %q", name, s)
			}
			i += 3 + end
		case isIdentStart(next):
			j := i + 2
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			name = s[i+1 : j]
			i = j
		default:
			b.WriteByte(c)
			i++
			continue
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }

// isIdent reports whether s is a non-empty [A-Za-z_][A-Za-z0-9_]* name.
func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}
