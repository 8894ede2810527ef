package bisect

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
)

// Candidate is a commit still in the bisection range with its distance as
// `git rev-list --bisect-all` computes it: the smaller of the number of
// commits it would leave on either side. The best midpoint has the
// largest distance.
type Candidate struct {
	Hash string
	Dist int
}

// ParseBisectAll parses `git rev-list --bisect-all` output: lines of
// "<hash> (dist=<n>)", the parentheses holding the commit's decorations
// first when it has any. It rejects anything else.
func ParseBisectAll(out []byte) ([]Candidate, error) {
	var cs []Candidate
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 256), 4096)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		hash, rest, ok := bytes.Cut([]byte(line), []byte(" "))
		if !ok || !isHash(string(hash)) {
			return nil, fmt.Errorf("rev-list line %d: %q is not \"<hash> (dist=<n>)\"", n, line)
		}
		// "(dist=N)", or "(HEAD -> main, tag: v1, dist=N)" with decorations.
		inner, ok := bytes.CutPrefix(rest, []byte("("))
		if ok {
			inner, ok = bytes.CutSuffix(inner, []byte(")"))
		}
		var num []byte
		if ok {
			if i := bytes.LastIndex(inner, []byte(", ")); i >= 0 {
				inner = inner[i+2:]
			}
			num, ok = bytes.CutPrefix(inner, []byte("dist="))
		}
		if !ok {
			return nil, fmt.Errorf("rev-list line %d: %q is not \"<hash> (dist=<n>)\"", n, line)
		}
		d, err := strconv.ParseUint(string(num), 10, 31)
		if err != nil {
			return nil, fmt.Errorf("rev-list line %d: dist: %w", n, err)
		}
		cs = append(cs, Candidate{Hash: string(hash), Dist: int(d)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rev-list: %w", err)
	}
	return cs, nil
}

// Choose picks the next commit to test: the candidate with the largest
// distance that is neither bad (the current bad end) nor skipped, the
// earliest listed on a tie. Like `git bisect skip`, a skipped midpoint is
// replaced by its best-placed neighbour. It returns "" when only the bad
// end and skipped commits are left; left lists the skipped candidates then
// (the first bad commit is the bad end or one of them).
func Choose(cands []Candidate, bad string, skipped map[string]bool) (next string, left []string) {
	order := make([]Candidate, len(cands))
	copy(order, cands)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Dist > order[j].Dist })
	for _, c := range order {
		switch {
		case c.Hash == bad:
		case skipped[c.Hash]:
			left = append(left, c.Hash)
		default:
			return c.Hash, nil
		}
	}
	return "", left
}
