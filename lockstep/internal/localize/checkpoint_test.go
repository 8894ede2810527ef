package localize

import (
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/scenario"
)

func TestWantCheckpoint(t *testing.T) {
	tests := []struct {
		mode    string
		enabled bool
		k       int
		elapsed time.Duration
		want    bool
	}{
		{scenario.CheckpointRestart, true, 0, time.Hour, false},
		{scenario.CheckpointSnapshot, true, 0, 0, true},
		{scenario.CheckpointSnapshot, false, 0, 0, false},
		{scenario.CheckpointSnapshot, true, 2, 0, false}, // the last point
		{scenario.CheckpointAuto, true, 0, 0, false},
		{scenario.CheckpointAuto, true, 1, AutoMinReplay + time.Second, true},
		{"", true, 1, AutoMinReplay + time.Second, true},
	}
	for _, tc := range tests {
		sc := &scenario.Scenario{Sync: make([]scenario.SyncPoint, 3),
			Localize: scenario.Localize{Enabled: tc.enabled, Checkpoint: tc.mode}}
		if got := WantCheckpoint(sc, tc.k, tc.elapsed); got != tc.want {
			t.Errorf("mode %q enabled %v k %d after %s: %v, want %v", tc.mode, tc.enabled, tc.k, tc.elapsed, got, tc.want)
		}
	}
}
