package suite

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseShard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"1/3", Shard{1, 3}, true},
		{"3/3", Shard{3, 3}, true},
		{"1/1", Shard{1, 1}, true},
		{"0/3", Shard{}, false},
		{"4/3", Shard{}, false},
		{"1/0", Shard{}, false},
		{"1", Shard{}, false},
		{"a/b", Shard{}, false},
		{"-1/3", Shard{}, false},
	}
	for _, tt := range tests {
		got, err := ParseShard(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		total int
		want  Shard
		ok    bool
		err   bool
	}{
		{"nothing", nil, 0, Shard{}, false, false},
		{"gitlab", map[string]string{"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4"}, 0, Shard{2, 4}, true, false},
		{"gitlab out of range", map[string]string{"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "4"}, 0, Shard{}, false, true},
		{"gitlab no total", map[string]string{"CI_NODE_INDEX": "1"}, 0, Shard{}, false, true},
		{"k8s with flag", map[string]string{"JOB_COMPLETION_INDEX": "0"}, 3, Shard{1, 3}, true, false},
		{"k8s with env", map[string]string{"JOB_COMPLETION_INDEX": "2", "LOCKSTEP_SHARD_TOTAL": "3"}, 0, Shard{3, 3}, true, false},
		{"k8s no total", map[string]string{"JOB_COMPLETION_INDEX": "2"}, 0, Shard{}, false, true},
		{"k8s out of range", map[string]string{"JOB_COMPLETION_INDEX": "3"}, 3, Shard{}, false, true},
		{"k8s garbage", map[string]string{"JOB_COMPLETION_INDEX": "x"}, 3, Shard{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := ShardFromEnv(func(k string) string { return tt.env[k] }, tt.total)
			if got != tt.want || ok != tt.ok || (err != nil) != tt.err {
				t.Errorf("ShardFromEnv = %v, %v, %v; want %v, %v, err=%v", got, ok, err, tt.want, tt.ok, tt.err)
			}
		})
	}
}

// TestSelectPartition is a property test: for random suites, totals and
// durations, every scenario lands in exactly one shard, and selection is
// stable (the same inputs give the same shards).
func TestSelectPartition(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		n := rng.IntN(60)
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("sc-%d-%d", iter, rng.IntN(1e6)*1000+i)
		}
		total := 1 + rng.IntN(8)
		var durations map[string]time.Duration
		if iter%2 == 1 {
			durations = map[string]time.Duration{}
			for _, nm := range names {
				if rng.IntN(4) > 0 { // some unknown
					durations[nm] = time.Duration(rng.IntN(100)) * time.Second
				}
			}
		}
		seen := map[string]int{}
		for i := 1; i <= total; i++ {
			a := Select(names, Shard{i, total}, durations)
			b := Select(names, Shard{i, total}, durations)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("iter %d: shard %d/%d is not stable", iter, i, total)
			}
			for _, nm := range a {
				seen[nm]++
			}
		}
		for _, nm := range names {
			if seen[nm] != 1 {
				t.Fatalf("iter %d: %s is in %d of %d shards", iter, nm, seen[nm], total)
			}
		}
	}
}

// TestSelectBalanced checks that durations balance the shards' totals.
func TestSelectBalanced(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c", "d", "e", "f"}
	d := map[string]time.Duration{"a": 60, "b": 50, "c": 40, "d": 30, "e": 20, "f": 10}
	var loads []time.Duration
	for i := 1; i <= 3; i++ {
		var sum time.Duration
		for _, n := range Select(names, Shard{i, 3}, d) {
			sum += d[n]
		}
		loads = append(loads, sum)
	}
	for _, l := range loads {
		if l != 70 {
			t.Errorf("loads = %v, want 70 each", loads)
			break
		}
	}
}
