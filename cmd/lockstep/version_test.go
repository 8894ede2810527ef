package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionFlag checks that --version prints what `version` does.
func TestVersionFlag(t *testing.T) {
	code, out, errs := cli(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "lockstep ") {
		t.Fatalf("--version: status %d, stdout %q, stderr %q", code, out, errs)
	}
	_, want, _ := cli(t, "version")
	if out != want {
		t.Errorf("--version printed %q, version %q", out, want)
	}
}

// TestPickVersion checks the linker's version first, then the module
// version `go install …@version` records.
func TestPickVersion(t *testing.T) {
	mod := func(v string) *debug.BuildInfo { return &debug.BuildInfo{Main: debug.Module{Version: v}} }
	tests := []struct {
		linked string
		bi     *debug.BuildInfo
		ok     bool
		want   string
	}{
		{"v1.2.3-4-gabc", mod("v1.0.0"), true, "v1.2.3-4-gabc"},
		{"dev", mod("v1.0.0"), true, "v1.0.0"},
		{"", mod("v0.3.1-0.20261201-abcdef"), true, "v0.3.1-0.20261201-abcdef"},
		{"dev", mod("(devel)"), true, "dev"},
		{"dev", nil, false, "dev"},
	}
	for _, tt := range tests {
		if got := pickVersion(tt.linked, tt.bi, tt.ok); got != tt.want {
			t.Errorf("pickVersion(%q, %v) = %q, want %q", tt.linked, tt.bi, got, tt.want)
		}
	}
}
