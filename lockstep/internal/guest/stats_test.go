package guest

import (
	"encoding/json"
	"math/big"
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

// FuzzAddStats feeds arbitrary query-stats-schemas and query-stats
// replies (odd types, missing targets and names, histograms, duplicates,
// huge values) to cumulativeOf and addStats: they must return counters or
// an error, never panic, and the counters must be exactly the cumulative
// ones the schema names, each the full sum of its values.
func FuzzAddStats(f *testing.F) {
	schema, err := os.ReadFile("testdata/stats/query-stats-schemas.json")
	if err != nil {
		f.Fatal(err)
	}
	reply, err := os.ReadFile("testdata/stats/query-stats-vcpu.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(schema, reply)
	f.Add([]byte(`[]`), []byte(`[]`))
	f.Add(schema, []byte(`[{"stats":[{"name":"exits","value":1e30}]}]`))
	f.Add(schema, []byte(`[{"stats":[{"name":"exits","value":18446744073709551615}]},{"stats":[{"name":"exits","value":1}]}]`))
	f.Add(schema, []byte(`[{"stats":[{"name":"exits","value":[1,2]},{"name":"exits","value":null}]}]`))
	f.Add([]byte(`[{"provider":"kvm","target":"vcpu","stats":[{"name":"exits","type":"cumulative"},{"name":"exits","type":"instant"}]},{"target":"","stats":[{"name":"","type":"cumulative"}]}]`),
		[]byte(`[{"provider":"kvm","qom-path":"/machine/unattached/device[0]","stats":[{"name":"exits","value":3},{"name":"exits","value":4}]}]`))
	f.Add([]byte(`[{"provider":"kvm","target":"vcpu","stats":null}]`), []byte(`[{"stats":null},{}]`))
	f.Fuzz(func(t *testing.T, schemaJSON, replyJSON []byte) {
		var schemas []statsSchema
		if json.Unmarshal(schemaJSON, &schemas) != nil {
			return
		}
		var res []statsResult
		if json.Unmarshal(replyJSON, &res) != nil {
			return
		}
		cum := cumulativeOf(schemas)
		out := compare.Counters{}
		if err := addStats(out, "vcpu", res, cum); err != nil {
			return
		}
		sums := map[string]*big.Int{}
		for _, r := range res {
			for _, st := range r.Stats {
				name := "vcpu." + st.Name
				if !cum[name] {
					continue
				}
				var v uint64
				json.Unmarshal(st.Value, &v)
				if sums[name] == nil {
					sums[name] = new(big.Int)
				}
				sums[name].Add(sums[name], new(big.Int).SetUint64(v))
			}
		}
		for name, v := range out {
			if !cum[name] {
				t.Errorf("counter %s is not cumulative in the schema", name)
			}
			if s := sums[name]; s == nil || !s.IsUint64() || s.Uint64() != v {
				t.Errorf("counter %s = %d, the values sum to %v", name, v, s)
			}
		}
	})
}
