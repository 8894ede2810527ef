package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseSnapshotTags(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseSnapshotTags", "named-block-nodes"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := corpusString(raw)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := ParseSnapshotTags([]byte(seed), CheckpointNode)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0] != "lockstep-sync1" || tags[1] != "lockstep-sync2" {
		t.Errorf("tags %q", tags)
	}
	if tags, _ := ParseSnapshotTags([]byte(seed), "other"); len(tags) != 0 {
		t.Errorf("tags of a missing node %q", tags)
	}
}

// FuzzParseSnapshotTags checks that no query-named-block-nodes reply makes
// the parser panic.
func FuzzParseSnapshotTags(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		tags, err := ParseSnapshotTags([]byte(raw), CheckpointNode)
		if err != nil && tags != nil {
			t.Errorf("tags %q with error %v", tags, err)
		}
	})
}

// corpusString decodes a one-string file in Go's fuzz corpus format.
func corpusString(b []byte) (string, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
		return "", fmt.Errorf("not a fuzz corpus file")
	}
	return strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
}
