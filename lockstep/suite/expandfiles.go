package suite

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteExpanded writes every matrix scenario of p to dir as NAME.yaml and
// returns the paths written.
func WriteExpanded(dir string, p *Plan) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("expand: %w", err)
	}
	var out []string
	for _, e := range p.Entries {
		if e.Expanded == nil {
			continue
		}
		path := filepath.Join(dir, sanitize(e.Name)+".yaml")
		if err := os.WriteFile(path, e.Expanded, 0o644); err != nil {
			return out, fmt.Errorf("expand: %w", err)
		}
		out = append(out, path)
	}
	return out, nil
}
