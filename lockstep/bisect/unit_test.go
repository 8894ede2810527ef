package bisect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

func hashN(i int) string { return fmt.Sprintf("%040x", i+1) }

func div(kind compare.Kind, symA, symB, sync string, mem string, noise bool) compare.Divergence {
	d := compare.Divergence{Kind: kind, SyncName: sync, Noise: noise}
	d.PC[0].Symbol, d.PC[1].Symbol = symA, symB
	if mem != "" {
		d.Memory = &compare.MemoryDiff{Name: mem}
	}
	return d
}

func result(ds ...compare.Divergence) *lockstep.Result {
	r := &lockstep.Result{Outcome: lockstep.OutcomeIdentical, Divergences: ds}
	for _, d := range ds {
		if !d.Noise {
			r.Outcome = lockstep.OutcomeDiverged
		}
	}
	return r
}

func TestSignatureOf(t *testing.T) {
	tests := []struct {
		name string
		d    compare.Divergence
		want Signature
	}{
		{"memory by range name", div(compare.KindMemory, "report", "report", "report", "results", false), Signature{"memory", "results"}},
		{"reference symbol", div(compare.KindRegister, "marker", "marker2", "marker", "", false), Signature{"register", "marker"}},
		{"candidate symbol", div(compare.KindCallPath, "", "leaf", "leaf", "", false), Signature{"callpath", "leaf"}},
		{"sync name", div(compare.KindArrival, "", "", "report", "", false), Signature{"arrival", "report"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignatureOf(tt.d); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassifyRun(t *testing.T) {
	sig := &Signature{"register", "marker"}
	marker := div(compare.KindRegister, "marker", "marker", "marker", "", false)
	leaf := div(compare.KindCallPath, "leaf", "leaf", "leaf", "", false)
	noise := div(compare.KindRegister, "marker", "marker", "marker", "", true)
	tests := []struct {
		name string
		res  *lockstep.Result
		err  error
		sig  *Signature
		want RunVerdict
	}{
		{"identical", result(), nil, sig, RunGood},
		{"noise only", result(noise), nil, sig, RunGood},
		{"same way", result(marker), nil, sig, RunBad},
		{"same way after another", result(leaf, marker), nil, sig, RunBad},
		{"other way", result(leaf), nil, sig, RunOther},
		{"noise does not match", result(noise, leaf), nil, sig, RunOther},
		{"bad end: any divergence", result(leaf), nil, nil, RunBad},
		{"infrastructure", result(), lockstep.ErrInfrastructure, sig, RunError},
		{"no result", nil, nil, sig, RunError},
		{"error outcome", &lockstep.Result{Outcome: lockstep.OutcomeError}, nil, sig, RunError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassifyRun(tt.res, tt.err, tt.sig); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDecideAndCounts(t *testing.T) {
	tests := []struct {
		c        Counts
		verdict  Verdict
		text     string
		disagree bool
	}{
		{Counts{Bad: 1}, Bad, "1 run: 1 bad", false},
		{Counts{Bad: 2, Good: 1}, Bad, "3 runs: 2 bad, 1 good", true},
		{Counts{Bad: 1, Other: 1, Error: 1}, Bad, "3 runs: 1 bad, 1 diverged otherwise, 1 failed", true},
		{Counts{Good: 3}, Good, "3 runs: 3 good", false},
		{Counts{Good: 2, Error: 1}, Good, "3 runs: 2 good, 1 failed", true},
		{Counts{Good: 2, Other: 1}, Skip, "3 runs: 2 good, 1 diverged otherwise", true},
		{Counts{Error: 2}, Skip, "2 runs: 2 failed", false},
		{Counts{}, Skip, "0 runs", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			v, why := Decide(tt.c)
			if v != tt.verdict || (v == Skip) != (why != "") {
				t.Errorf("Decide = %s %q, want %s", v, why, tt.verdict)
			}
			if s := tt.c.String(); s != tt.text {
				t.Errorf("String = %q, want %q", s, tt.text)
			}
			if d := tt.c.Disagree(); d != tt.disagree {
				t.Errorf("Disagree = %v, want %v", d, tt.disagree)
			}
		})
	}
}

// linear returns the --bisect-all candidates of a linear history of n
// commits after the good one, newest (the bad end) first, as git orders
// them: commit i (1-based from the oldest) has dist min(i, n-i).
func linear(n int) []Candidate {
	var cs []Candidate
	for i := n; i >= 1; i-- {
		cs = append(cs, Candidate{Hash: hashN(i), Dist: min(i, n-i)})
	}
	return cs
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name     string
		cands    []Candidate
		bad      string
		skipped  []int
		want     string
		wantLeft int
	}{
		{"midpoint", linear(20), hashN(20), nil, hashN(10), 0},
		{"skipped midpoint: a neighbour", linear(20), hashN(20), []int{10}, hashN(11), 0},
		{"two skipped", linear(20), hashN(20), []int{10, 11}, hashN(9), 0},
		{"only the bad end", linear(1), hashN(1), nil, "", 0},
		{"only skipped left", linear(3), hashN(3), []int{1, 2}, "", 2},
		{"unsorted input", []Candidate{{hashN(1), 0}, {hashN(2), 3}, {hashN(3), 5}}, hashN(1), nil, hashN(3), 0},
		{"empty", nil, hashN(1), nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skip := map[string]bool{}
			for _, i := range tt.skipped {
				skip[hashN(i)] = true
			}
			got, left := Choose(tt.cands, tt.bad, skip)
			if got != tt.want || len(left) != tt.wantLeft {
				t.Errorf("Choose = %q left %d, want %q left %d", got, len(left), tt.want, tt.wantLeft)
			}
		})
	}
}

// TestChooseConverges simulates whole bisections of linear histories with
// a regression at every position and a skipped commit: each finds the
// regression within ⌈log₂ n⌉ + 2 steps, bad end included.
func TestChooseConverges(t *testing.T) {
	const n = 20
	for reg := 1; reg <= n; reg++ {
		for _, broken := range []int{0, 10, reg - 1} {
			if broken == reg {
				continue
			}
			t.Run(fmt.Sprintf("reg%d-broken%d", reg, broken), func(t *testing.T) {
				lo, bad := 0, n // lo: newest good commit
				skip := map[string]bool{}
				steps := 1 // the bad end
				for {
					var cs []Candidate
					for i := bad; i > lo; i-- {
						cs = append(cs, Candidate{Hash: hashN(i), Dist: min(i-lo, bad-i)})
					}
					next, left := Choose(cs, hashN(bad), skip)
					if next == "" {
						if len(left) == 0 && bad != reg {
							t.Fatalf("found %d, want %d", bad, reg)
						}
						break
					}
					steps++
					var i int
					fmt.Sscanf(next, "%x", &i)
					i--
					switch {
					case i == broken:
						skip[next] = true
					case i >= reg:
						bad = i
					default:
						lo = i
					}
				}
				if steps > 7 {
					t.Errorf("%d steps, want at most 7", steps)
				}
			})
		}
	}
}

func TestParseBisectAll(t *testing.T) {
	good := hashN(1) + " (dist=3)\n" + hashN(2) + " (tag: v1, dist=2)\n\n" + hashN(3) + " (HEAD -> main, dist=0)\n"
	cs, err := ParseBisectAll([]byte(good))
	if err != nil || len(cs) != 3 || cs[0].Dist != 3 || cs[1].Hash != hashN(2) || cs[2].Dist != 0 {
		t.Fatalf("got %v, %v", cs, err)
	}
	for _, bad := range []string{
		"xyz (dist=1)", hashN(1), hashN(1) + " dist=1", hashN(1) + " (dist=-1)", hashN(1) + " (dist=1",
		hashN(1) + " (dist=99999999999)", strings.Repeat("A", 40) + " (dist=1)",
	} {
		if _, err := ParseBisectAll([]byte(bad)); err == nil {
			t.Errorf("ParseBisectAll(%q) accepted", bad)
		}
	}
}

func TestParseLog(t *testing.T) {
	entry := func(h string, v Verdict, extra string) string {
		return fmt.Sprintf(`{"schema":%q,"commit":%q,"verdict":%q,"runs":{"bad":1},"time":"2024-01-02T03:04:05Z"%s}`,
			LogSchema, h, v, extra)
	}
	sig := `,"bad_end":true,"signature":{"kind":"register","symbol":"marker"}`
	tests := []struct {
		name    string
		in      string
		n       int
		errLine int // 0: no error
	}{
		{"empty", "", 0, 0},
		{"two", entry(hashN(1), Bad, sig) + "\n" + entry(hashN(2), Good, "") + "\n", 2, 0},
		{"blank lines", "\n" + entry(hashN(1), Skip, "") + "\n\n", 1, 0},
		{"interrupted last line dropped", entry(hashN(1), Good, "") + "\n" + `{"schema":"lock`, 1, 0},
		{"bad last line with newline", entry(hashN(1), Good, "") + "\n" + `{"schema":"lock` + "\n", 1, 2},
		{"bad verdict", entry(hashN(1), "maybe", "") + "\n", 0, 1},
		{"short hash", entry("abc", Good, "") + "\n", 0, 1},
		{"unknown field", strings.Replace(entry(hashN(1), Good, ""), `"runs"`, `"extra":1,"runs"`, 1) + "\n", 0, 1},
		{"bad end without signature", entry(hashN(1), Bad, `,"bad_end":true`) + "\n", 0, 1},
		{"wrong schema", strings.Replace(entry(hashN(1), Good, ""), LogSchema, "x/v9", 1) + "\n", 0, 1},
		{"two objects", entry(hashN(1), Good, "") + entry(hashN(2), Good, "") + "\n", 0, 1},
		{"negative count", strings.Replace(entry(hashN(1), Good, ""), `"bad":1`, `"bad":-1`, 1) + "\n", 0, 1},
		{"too long", strings.Repeat(" ", MaxLogLine+1) + "\n", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := ParseLog(strings.NewReader(tt.in))
			var le *LogError
			switch {
			case tt.errLine == 0 && err != nil:
				t.Fatalf("error %v", err)
			case tt.errLine != 0 && (!errors.As(err, &le) || !errors.Is(err, ErrLog) || le.Line != tt.errLine):
				t.Fatalf("error %v, want a LogError at line %d", err, tt.errLine)
			}
			if len(es) != tt.n {
				t.Errorf("%d entries, want %d", len(es), tt.n)
			}
		})
	}
}

// TestLogRoundTrip appends entries, one of them after an interrupted
// write, and reads them back.
func TestLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	if err := os.WriteFile(path, []byte(`{"schema":"lockstep.bis`), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	sig := Signature{"callpath", "leaf"}
	in := []Entry{
		{Commit: hashN(1), Verdict: Bad, BadEnd: true, Signature: &sig, Runs: Counts{Bad: 2, Good: 1}},
		{Commit: hashN(2), Verdict: Skip, Reason: "build failed: exit status 2"},
	}
	for _, e := range in {
		if err := w.append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLog(path); err == nil {
		t.Fatal("a broken line in the middle was accepted")
	}
	// The broken prefix is on its own line: drop it as a user would.
	b, _ := os.ReadFile(path)
	lines := strings.SplitN(string(b), "\n", 2)
	if err := os.WriteFile(path, []byte(lines[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ReadLog(path)
	if err != nil || len(out) != 2 || *out[0].Signature != sig || out[0].Runs != in[0].Runs || out[1].Reason != in[1].Reason {
		t.Fatalf("read back %+v, %v", out, err)
	}
	if es, err := ReadLog(filepath.Join(t.TempDir(), "missing")); err != nil || es != nil {
		t.Errorf("missing log: %v %v", es, err)
	}
}

func TestNamesCandidate(t *testing.T) {
	for text, want := range map[string]bool{
		"kernel: ${CANDIDATE}":          true,
		"symbols: $CANDIDATE_SYMBOLS":   true,
		"kernel: ${WORKTREE}/vmlinux":   true,
		"kernel: ../build/demo-bad.elf": false,
		"# CANDIDATE goes here":         false,
	} {
		if got := namesCandidate(text); got != want {
			t.Errorf("namesCandidate(%q) = %v, want %v", text, got, want)
		}
	}
}
