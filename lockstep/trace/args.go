package trace

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Range is an inclusive guest address range.
type Range struct{ Lo, Hi uint64 }

// FilterArgs returns "-dfilter lo..hi[,...]", which restricts logging to
// instructions whose PC lies in one of the ranges (e.g. the kernel's text,
// leaving out SeaBIOS, which runs the same on both sides but takes millions
// of logged instructions). Nil for no ranges.
func FilterArgs(ranges ...Range) []string {
	if len(ranges) == 0 {
		return nil
	}
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = fmt.Sprintf("%#x..%#x", r.Lo, r.Hi)
	}
	return []string{"-dfilter", strings.Join(parts, ",")}
}

var versionRE = regexp.MustCompile(`version v?([0-9]+\.[0-9]+(\.[0-9]+)?)`)

// QEMUVersion runs "bin --version" and returns its version, e.g. "7.2.22".
func QEMUVersion(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("trace: qemu version: %w", err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("trace: qemu version: no version in %q", firstLine(out))
	}
	return string(m[1]), nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
