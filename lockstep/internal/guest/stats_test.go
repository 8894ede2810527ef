package guest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
)

// cumulativeVCPU is what query-stats-schemas says of the seed's counters.
var cumulativeVCPU = map[string]bool{"vcpu.io_exits": true, "vcpu.exits": true}

func TestAddStats(t *testing.T) {
	b, err := os.ReadFile("testdata/stats/query-stats-vcpu.json")
	if err != nil {
		t.Fatal(err)
	}
	var res []statsResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	out := compare.Counters{}
	if err := addStats(out, "vcpu", res, cumulativeVCPU); err != nil {
		t.Fatal(err)
	}
	// Summed over both vCPUs; instant values and histograms left out.
	want := compare.Counters{"vcpu.io_exits": 20, "vcpu.exits": 12407}
	if len(out) != len(want) || out["vcpu.io_exits"] != 20 || out["vcpu.exits"] != 12407 {
		t.Errorf("got %v, want %v", out, want)
	}
	bad := []statsResult{{Stats: []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}{{Name: "exits", Value: json.RawMessage(`-1`)}}}}
	if err := addStats(compare.Counters{}, "vcpu", bad, cumulativeVCPU); err == nil {
		t.Error("a negative cumulative counter was accepted")
	}
}

func TestCPUFromThread(t *testing.T) {
	for _, tt := range []struct {
		thread string
		want   int
	}{{"", 0}, {"p01.01", 0}, {"p01.02", 1}, {"p01.0a", 9}, {"03", 2}, {"p01.-1", 0}} {
		g := &Guest{thread: tt.thread}
		if got := g.CPU(); got != tt.want {
			t.Errorf("thread %q: cpu %d, want %d", tt.thread, got, tt.want)
		}
	}
}

func TestIRQContext(t *testing.T) {
	for _, tt := range []struct {
		pc   uint32
		want string
	}{{0, "task"}, {1, "task"}, {0x200, "task"}, {0x100, "softirq"}, {0x10000, "hardirq"}, {0x10100, "hardirq"}, {0x100000, "nmi"}} {
		if got := irqContext(tt.pc); got != tt.want {
			t.Errorf("preempt count %#x: %s, want %s", tt.pc, got, tt.want)
		}
	}
}

// FuzzAddStats feeds arbitrary query-stats replies to addStats: it must
// return counters or an error, never panic.
func FuzzAddStats(f *testing.F) {
	if b, err := os.ReadFile("testdata/stats/query-stats-vcpu.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"stats":[{"name":"exits","value":1e30}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var res []statsResult
		if json.Unmarshal(b, &res) != nil {
			return
		}
		_ = addStats(compare.Counters{}, "vcpu", res, cumulativeVCPU)
	})
}
