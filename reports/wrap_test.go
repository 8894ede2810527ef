package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

func TestWrapLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		width    int
		want     []string
	}{
		{"short", "  first  sync 1", 20, []string{"  first  sync 1"}},
		{"exactly the width", "abcd efgh", 9, []string{"abcd efgh"}},
		{"hangs under the value", "    command  qemu -m 64M -kernel /x/y.elf -S -gdb unix:/tmp/a.gdb,server=on", 40,
			[]string{"    command  qemu -m 64M -kernel", "             /x/y.elf -S -gdb", "             unix:/tmp/a.gdb,server=on"}},
		{"sentence: four in", "  localised sync 3 report, step 17: call fib vs call fib_iter", 30,
			[]string{"  localised sync 3 report,", "      step 17: call fib vs", "      call fib_iter"}},
		{"a word longer than the line is cut", "  x " + strings.Repeat("z", 25), 12,
			[]string{"  x zzzzzzzz", "    zzzzzzzz", "    zzzzzzzz", "    z"}},
		{"colour takes no columns", "\x1b[1mab\x1b[0m cd ef", 8, []string{"\x1b[1mab\x1b[0m cd ef"}},
		{"colour kept whole at a break", "\x1b[1mab cd\x1b[0m ef gh", 6, []string{"\x1b[1mab cd\x1b[0m", "  ef", "  gh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := wrapLine(tt.in, tt.width)
			if !slices.Equal(got, tt.want) {
				t.Errorf("wrapLine(%q, %d) =\n%q\nwant\n%q", tt.in, tt.width, got, tt.want)
			}
			for _, l := range got {
				if w := visibleWidth(l); w > tt.width {
					t.Errorf("line %q is %d columns", l, w)
				}
			}
		})
	}
}

// TestTextWidth checks that no line of a golden text report, plain or
// coloured, is wider than TextWidth columns (issue 14: they reached 241).
func TestTextWidth(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden text reports: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(data), "\n") {
			if w := visibleWidth(l); w > TextWidth {
				t.Errorf("%s:%d: %d columns: %q", f, i+1, w, l)
			}
		}
	}
}

// TestTextTruncatedDump checks that a dump cut at compare.MaxRows says so,
// and that its hexdump rows keep their layout.
func TestTextTruncatedDump(t *testing.T) {
	t.Parallel()
	r := loadInput(t, "diverged")
	n := (compare.MaxRows + 10) * compare.RowSize
	a, b := make([]byte, n), bytes.Repeat([]byte{0x41}, n)
	md := compare.Memory("big", "physical", [2]uint64{0x100000, 0x100000}, a, b, compare.MemOptions{})
	r.Divergences = append(r.Divergences, compare.Divergence{Kind: compare.KindMemory, Sync: 0, Summary: compare.MemorySummary(md), Memory: md})
	// (Markdown is capped well below 4096 rows and gives the dump a line.)
	for _, f := range []Format{FormatText, FormatHTML} {
		var buf bytes.Buffer
		if err := Render(&buf, f, r, Options{Verbose: true}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "the dump stops after 4096 rows") {
			t.Errorf("%s: no note that the dump is cut", f)
		}
	}
	var buf bytes.Buffer
	if err := Render(&buf, FormatText, r, Options{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	var hexLines int
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "|AAAAAAAAAAAAAAAA|") {
			hexLines++
			if i := strings.Index(l, "41 41"); i < 0 || visibleWidth(l) > TextWidth {
				t.Fatalf("hex row %q", l)
			}
		}
	}
	if hexLines != compare.MaxRows {
		t.Errorf("%d b rows of the dump shown, want %d", hexLines, compare.MaxRows)
	}
}
