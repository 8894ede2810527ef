package qemu

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		line    string
		kind    string // greeting, reply, error, event, bad
		wantID  string
		wantEvt string
	}{
		{`{"QMP": {"version": {}, "capabilities": ["oob"]}}`, "greeting", "", ""},
		{`{"return": {}, "id": "1"}`, "reply", `"1"`, ""},
		{`{"id": "4", "error": {"class": "CommandNotFound", "desc": "x"}}`, "error", `"4"`, ""},
		{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`, "event", "", "STOP"},
		{`{"return": {}, "error": {"class": "a", "desc": "b"}}`, "bad", "", ""},
		{`{"event": "X", "return": {}}`, "bad", "", ""},
		{`{}`, "bad", "", ""},
		{`[1]`, "bad", "", ""},
		{`{"return": `, "bad", "", ""},
	}
	for _, tt := range tests {
		m, err := parseMessage([]byte(tt.line))
		if tt.kind == "bad" {
			if err == nil {
				t.Errorf("parseMessage(%s): no error", tt.line)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseMessage(%s): %v", tt.line, err)
			continue
		}
		var got string
		switch {
		case m.QMP != nil:
			got = "greeting"
		case m.Error != nil:
			got = "error"
		case m.Return != nil:
			got = "reply"
		case m.Event != "":
			got = "event"
		}
		if got != tt.kind || string(m.ID) != tt.wantID || m.Event != tt.wantEvt {
			t.Errorf("parseMessage(%s) = kind %s id %s event %q; want %s %s %q", tt.line, got, m.ID, m.Event, tt.kind, tt.wantID, tt.wantEvt)
		}
	}
}

// FuzzParseMessage checks that no input panics and that accepted input is
// exactly one kind of message.
func FuzzParseMessage(f *testing.F) {
	for _, l := range readLines(f, "testdata/qmp-messages.txt") {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseMessage(line)
		if err != nil {
			return
		}
		n := 0
		if m.QMP != nil {
			n++
		}
		if m.Return != nil || m.Error != nil {
			n++
		}
		if m.Event != "" {
			n++
		}
		if n != 1 {
			t.Fatalf("accepted %q with %d kinds", line, n)
		}
	})
}

// FuzzParseVersionOutput checks that an accepted version always parses.
func FuzzParseVersionOutput(f *testing.F) {
	for _, l := range readLines(f, "testdata/versions.txt") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, out string) {
		v, err := ParseVersionOutput(out)
		if err != nil {
			return
		}
		if _, _, _, err := ParseVersion(v); err != nil {
			t.Fatalf("ParseVersionOutput(%q) = %q, which ParseVersion rejects: %v", out, v, err)
		}
		if strings.ContainsAny(v, " \n") {
			t.Fatalf("version %q contains space", v)
		}
	})
}
