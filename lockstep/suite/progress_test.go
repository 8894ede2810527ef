package suite

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockstep-dev/lockstep/lockstep"
)

// screen replays what a Live display wrote on a minimal terminal that
// knows the three sequences it uses (cursor up, carriage return, clear
// to the end of the screen) and returns the rows left on it.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var rows []string
	row := 0
	seq := regexp.MustCompile(`^\x1b\[(\d*)([AJ])`)
	for len(out) > 0 {
		switch {
		case out[0] == '\x1b':
			m := seq.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("unknown escape sequence in %q", out[:min(len(out), 10)])
			}
			if m[2] == "A" {
				n := 1
				if m[1] != "" {
					n = atoiT(t, m[1])
				}
				row = max(0, row-n)
			} else {
				rows = rows[:min(row, len(rows))]
			}
			out = out[len(m[0]):]
		case out[0] == '\r':
			out = out[1:]
		case out[0] == '\n':
			row++
			out = out[1:]
		default:
			i := strings.IndexAny(out, "\x1b\r\n")
			if i < 0 {
				i = len(out)
			}
			for len(rows) <= row {
				rows = append(rows, "")
			}
			rows[row] += out[:i]
			out = out[i:]
		}
	}
	return rows
}

func atoiT(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestLive drives the terminal display by hand: one row per running
// scenario, redrawn in place; finished ones stay above as plain lines;
// rows never wider than the terminal; updates throttled.
func TestLive(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLive(&out, 60, 3)
	l.now = func() time.Time { return clock }

	l.Start("demo-self")
	l.Start("a-scenario-with-a-very-long-name-that-does-not-fit-in-sixty-columns")
	clock = clock.Add(1500 * time.Millisecond)
	l.Update("demo-self", lockstep.Progress{Sync: 2, Syncs: 5, Phase: "stepping", Steps: 1200, StepsPerSec: 800})
	rows := screen(t, out.String())
	want := []string{"  demo-self 1.5s sync 2/5 stepping, 1200 steps (800/s)", "  a-scenario-with-a-very-long-name-that-does-not-fit-in-si…"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range rows {
		if n := utf8.RuneCountInString(r); n >= 60 {
			t.Errorf("row of %d columns on a 60-column terminal: %q", n, r)
		}
	}

	// An update within 100 ms of the last redraw is not drawn.
	before := out.Len()
	clock = clock.Add(10 * time.Millisecond)
	l.Update("demo-self", lockstep.Progress{Sync: 3, Syncs: 5, Phase: "comparing"})
	if out.Len() != before {
		t.Error("an update 10 ms after a redraw was drawn")
	}

	l.Finish(ScenarioResult{Name: "demo-self", Status: StatusPassed, Duration: 2 * time.Second}, 1, 3)
	l.Start("third")
	rows = screen(t, out.String())
	want = []string{"passed demo-self (2s, 1/3)", want[1], "  third 0s starting"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	l.Finish(ScenarioResult{Name: "third", Status: StatusFailed, First: "rax: 1 vs 2"}, 2, 3)
	l.Close()
	rows = screen(t, out.String())
	want = []string{"passed demo-self (2s, 1/3)", "failed third (0s, 2/3): rax: 1 vs 2"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("after Close:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunProgress runs a fake suite with the plain reporter (what a
// pipe or a CI log gets): one start and one finish line per scenario,
// no escape sequences; and checks that the scenarios' progress reaches
// the reporter under the scenario's name.
func TestRunProgress(t *testing.T) {
	t.Parallel()
	p := fakePlan("ok-a", "fail-b", "ok-c")
	var attempts atomic.Int32
	base := fakeRun(&attempts)
	run := func(ctx context.Context, e Entry, o lockstep.Options) (*lockstep.Result, error) {
		o.Progress(lockstep.Progress{Sync: 1, Syncs: 1, Phase: "running"})
		return base(ctx, e, o)
	}
	var plain bytes.Buffer
	if _, err := Run(context.Background(), p, p.Names(), Options{Jobs: 2, OutDir: t.TempDir(), Progress: &plain, RunFunc: run}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 6 || strings.Contains(plain.String(), "\x1b") {
		t.Errorf("plain progress:\n%s", plain.String())
	}
	for _, w := range []string{"start  ok-a", "passed ok-a (", "failed fail-b (", ": rax: 0x1 vs 0x2", "/3)"} {
		if !strings.Contains(plain.String(), w) {
			t.Errorf("plain progress lacks %q:\n%s", w, plain.String())
		}
	}
	var live bytes.Buffer
	if _, err := Run(context.Background(), p, p.Names(), Options{Jobs: 1, OutDir: t.TempDir(), Reporter: NewLive(&live, 100, 3), RunFunc: run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(live.String(), "  ok-a 0s sync 1/1 running") {
		t.Errorf("the live display never showed a scenario's progress: %q", live.String())
	}
	if rows := screen(t, live.String()); len(rows) != 3 || !strings.HasPrefix(rows[2], "passed ok-c") {
		t.Errorf("live display ends with %q", rows)
	}
}
