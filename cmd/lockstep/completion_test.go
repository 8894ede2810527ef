package main

import (
	"strings"
	"testing"
)

// TestCompletion checks the values offered by shell completion through
// cobra's hidden __complete command, as the shell scripts call it.
func TestCompletion(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []string
		directive string
	}{
		{"format", []string{"run", "--format", ""}, []string{"text", "json", "junit", "html", "md"}, ":6"},
		{"format list", []string{"report", "--format", "text,j"}, []string{"text,json", "text,junit"}, ":6"},
		{"color", []string{"run", "--color", ""}, []string{"auto", "always", "never"}, ":4"},
		{"expect", []string{"init", "--expect", ""}, []string{"identical", "diverge"}, ":4"},
		{"on-divergence", []string{"run", "--on-divergence", ""}, []string{"kill", "hold"}, ":4"},
		{"scenario arg", []string{"run", ""}, []string{"yaml", "yml"}, ":8"},
		{"validate args", []string{"validate", "a.yaml", ""}, []string{"yaml"}, ":8"},
		{"run second arg", []string{"run", "a.yaml", ""}, nil, ":4"},
		{"result arg", []string{"report", ""}, []string{"json"}, ":8"},
		{"bisect scenario", []string{"bisect", "--scenario", ""}, []string{"yaml"}, ":8"},
		{"output dir", []string{"run", "-o", ""}, nil, ":16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cli(t, append([]string{"__complete"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("status %d, stderr %s", code, errs)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if got := lines[len(lines)-1]; got != tt.directive {
				t.Errorf("directive %s, want %s\n%s", got, tt.directive, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
