package suite

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Shard is one of Total slices of a suite; Index is 1-based.
type Shard struct {
	Index int `json:"index"`
	Total int `json:"total"`
}

// String returns "INDEX/TOTAL".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Total) }

// All is the shard that holds every scenario.
var All = Shard{1, 1}

// ParseShard parses "INDEX/TOTAL" with 1 <= INDEX <= TOTAL.
func ParseShard(s string) (Shard, error) {
	i, t, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%w: shard %q: want INDEX/TOTAL, e.g. 1/3", ErrSuite, s)
	}
	idx, err1 := strconv.Atoi(i)
	tot, err2 := strconv.Atoi(t)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%w: shard %q: INDEX and TOTAL are numbers", ErrSuite, s)
	}
	return checkShard(Shard{idx, tot})
}

func checkShard(s Shard) (Shard, error) {
	if s.Total < 1 || s.Index < 1 || s.Index > s.Total {
		return Shard{}, fmt.Errorf("%w: shard %s: need 1 <= INDEX <= TOTAL", ErrSuite, s)
	}
	return s, nil
}

// ShardFromEnv reads the shard from CI variables: GitLab's CI_NODE_INDEX
// and CI_NODE_TOTAL (1-based), or Kubernetes' JOB_COMPLETION_INDEX
// (0-based) with the total from total (a flag) or LOCKSTEP_SHARD_TOTAL.
// ok is false when no variable is set.
func ShardFromEnv(getenv func(string) string, total int) (s Shard, ok bool, err error) {
	num := func(name string) (int, error) {
		n, err := strconv.Atoi(getenv(name))
		if err != nil {
			return 0, fmt.Errorf("%w: %s=%q is not a number", ErrSuite, name, getenv(name))
		}
		return n, nil
	}
	if getenv("CI_NODE_INDEX") != "" {
		idx, err := num("CI_NODE_INDEX")
		if err != nil {
			return Shard{}, false, err
		}
		tot, err := num("CI_NODE_TOTAL")
		if err != nil {
			return Shard{}, false, err
		}
		s, err := checkShard(Shard{idx, tot})
		return s, err == nil, err
	}
	if getenv("JOB_COMPLETION_INDEX") != "" {
		idx, err := num("JOB_COMPLETION_INDEX")
		if err != nil {
			return Shard{}, false, err
		}
		if total == 0 && getenv("LOCKSTEP_SHARD_TOTAL") != "" {
			if total, err = num("LOCKSTEP_SHARD_TOTAL"); err != nil {
				return Shard{}, false, err
			}
		}
		if total == 0 {
			return Shard{}, false, fmt.Errorf("%w: JOB_COMPLETION_INDEX is set but the shard total is not (--shard-total or LOCKSTEP_SHARD_TOTAL: the Job's completions)", ErrSuite)
		}
		s, err := checkShard(Shard{idx + 1, total})
		return s, err == nil, err
	}
	return Shard{}, false, nil
}

// Select returns the names that belong to shard s. Without durations a
// name goes to shard hash(name) mod Total, stable as the suite grows.
// With durations (from a previous index) names are assigned longest first
// to the least-loaded shard; unknown names count as the median duration.
// Every name lands in exactly one shard.
func Select(names []string, s Shard, durations map[string]time.Duration) []string {
	if s.Total <= 1 {
		return slices.Clone(names)
	}
	out := []string{}
	if len(durations) == 0 {
		for _, n := range names {
			if hashShard(n, s.Total) == s.Index {
				out = append(out, n)
			}
		}
		return out
	}
	assign := balance(names, s.Total, durations)
	for _, n := range names {
		if assign[n] == s.Index {
			out = append(out, n)
		}
	}
	return out
}

func hashShard(name string, total int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64()%uint64(total)) + 1
}

// balance assigns names to shards 1..total, longest first to the shard
// with the least total so far (ties: lowest index, names sorted).
func balance(names []string, total int, durations map[string]time.Duration) map[string]int {
	var known []time.Duration
	for _, n := range names {
		if d, ok := durations[n]; ok {
			known = append(known, d)
		}
	}
	slices.Sort(known)
	median := time.Second
	if len(known) > 0 {
		median = known[len(known)/2]
	}
	dur := func(n string) time.Duration {
		if d, ok := durations[n]; ok {
			return d
		}
		return median
	}
	sorted := slices.Clone(names)
	slices.SortStableFunc(sorted, func(a, b string) int {
		if c := cmp.Compare(dur(b), dur(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	load := make([]time.Duration, total+1)
	out := map[string]int{}
	for _, n := range sorted {
		best := 1
		for i := 2; i <= total; i++ {
			if load[i] < load[best] {
				best = i
			}
		}
		load[best] += dur(n)
		out[n] = best
	}
	return out
}

// ReadDurations reads the scenario durations recorded in an index file.
func ReadDurations(path string) (map[string]time.Duration, error) {
	idx, err := ReadIndex(path)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, r := range idx.Results {
		if r.Status != StatusMissing {
			out[r.Name] = r.Duration
		}
	}
	return out, nil
}
