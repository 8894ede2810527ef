package rsp

import (
	"fmt"
	"strings"
)

// StopReply is a parsed stop reply packet.
type StopReply struct {
	Kind      byte              // 'T', 'S', 'W' (exited) or 'X' (terminated by signal)
	Signal    int               // for T, S and X
	Thread    string            // "p01.01" or "01" as sent; "" if absent
	Watch     string            // "watch", "rwatch", "awatch" or ""
	WatchAddr uint64            // address that triggered a watchpoint
	ExitCode  int               // for W
	Pairs     map[string]string // every n:r pair, as sent
	Raw       string            // the whole packet payload
}

// Exited reports whether the reply says the target is gone (W or X).
func (s StopReply) Exited() bool { return s.Kind == 'W' || s.Kind == 'X' }

// ParseStopReply parses "Sxx", "Txx n:r;...", "Wxx[;process:pid]" and
// "Xxx[;process:pid]".
func ParseStopReply(b []byte) (StopReply, error) {
	s := StopReply{Raw: string(b)}
	if len(b) < 3 {
		return s, fmt.Errorf("rsp: stop reply %q: too short: %w", trunc(b), ErrMalformed)
	}
	s.Kind = b[0]
	n, err := parseHex(string(b[1:3]))
	if err != nil {
		return s, fmt.Errorf("rsp: stop reply %q: %w", trunc(b), err)
	}
	rest := string(b[3:])
	switch s.Kind {
	case 'S':
		if rest != "" {
			return s, fmt.Errorf("rsp: stop reply %q: trailing data: %w", trunc(b), ErrMalformed)
		}
		s.Signal = int(n)
		return s, nil
	case 'W':
		s.ExitCode = int(n)
	case 'X':
		s.Signal = int(n)
	case 'T':
		s.Signal = int(n)
	default:
		return s, fmt.Errorf("rsp: stop reply %q: unknown kind %q: %w", trunc(b), s.Kind, ErrMalformed)
	}
	if s.Kind != 'T' {
		// W and X carry an optional ";process:pid".
		rest = strings.TrimPrefix(rest, ";")
	}
	if rest == "" {
		return s, nil
	}
	s.Pairs = map[string]string{}
	for _, p := range strings.Split(rest, ";") {
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" {
			return s, fmt.Errorf("rsp: stop reply %q: pair %q: %w", trunc(b), p, ErrMalformed)
		}
		s.Pairs[k] = v
		switch k {
		case "thread":
			s.Thread = v
		case "watch", "rwatch", "awatch":
			a, err := parseHex(v)
			if err != nil {
				return s, fmt.Errorf("rsp: stop reply %q: %s address: %w", trunc(b), k, err)
			}
			s.Watch, s.WatchAddr = k, a
		}
	}
	return s, nil
}

// String renders the reply briefly.
func (s StopReply) String() string {
	switch s.Kind {
	case 'W':
		return fmt.Sprintf("exited(%d)", s.ExitCode)
	case 'X':
		return fmt.Sprintf("killed(signal %d)", s.Signal)
	}
	if s.Watch != "" {
		return fmt.Sprintf("signal %d %s %#x thread %s", s.Signal, s.Watch, s.WatchAddr, s.Thread)
	}
	return fmt.Sprintf("signal %d thread %s", s.Signal, s.Thread)
}
