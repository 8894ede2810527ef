package scenario

import "testing"

// TestLocalizeCheckpoint checks the values, the default and the error of
// localize.checkpoint.
func TestLocalizeCheckpoint(t *testing.T) {
	tests := []struct {
		name, yaml, want string
		errs             []string
	}{
		{"default", minimal, CheckpointAuto, nil},
		{"auto", minimal + "localize: {checkpoint: auto}\n", CheckpointAuto, nil},
		{"restart", minimal + "localize: {checkpoint: restart}\n", CheckpointRestart, nil},
		{"snapshot", minimal + "localize: {checkpoint: snapshot}\n", CheckpointSnapshot, nil},
		{"with enabled", minimal + "localize: {enabled: false, checkpoint: snapshot}\n", CheckpointSnapshot, nil},
		{"bad", minimal + "localize: {checkpoint: savevm}\n", "",
			[]string{`8:24: localize.checkpoint: "savevm" is not one of auto, restart, snapshot`}},
		{"not a string", minimal + "localize: {checkpoint: [a]}\n", "",
			[]string{`8:24: localize.checkpoint: expected a string, got a list`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := parse("t.yaml", []byte(tc.yaml), noEnv)
			if tc.errs != nil {
				checkErrors(t, err, tc.errs)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Localize.Checkpoint != tc.want {
				t.Errorf("localize.checkpoint = %q, want %q", s.Localize.Checkpoint, tc.want)
			}
		})
	}
}
