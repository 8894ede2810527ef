package suite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep-dev/lockstep/scenario"
)

// Entry is one scenario of a suite.
type Entry struct {
	// Name is the scenario's name, unique in the suite.
	Name string
	// File is the scenario file, or for an expanded scenario the matrix
	// position it came from.
	File     string
	Scenario *scenario.Scenario
	// Expanded is the scenario's YAML when a matrix produced it.
	Expanded []byte
	// Optional scenarios (a suite file's optional: list or a matrix with
	// optional: true) are StatusSkipped, not failed, when this machine
	// cannot run them: their QEMU binary is missing or KVM is
	// unavailable. Other failures count as usual.
	Optional bool
}

// Plan is the full list of a suite's scenarios, before sharding.
type Plan struct {
	Name    string
	Entries []Entry
}

// Names returns the entries' names in order.
func (p *Plan) Names() []string {
	out := make([]string, len(p.Entries))
	for i, e := range p.Entries {
		out[i] = e.Name
	}
	return out
}

// Collect resolves args (scenario files, directories, globs, or suite
// files) into a plan. Every scenario is loaded and validated; all
// problems are returned at once. Names must be unique.
func Collect(args []string) (*Plan, error) {
	p := &Plan{}
	var errs []error
	seen := map[string]string{}
	add := func(e Entry) {
		if prev, dup := seen[e.Name]; dup {
			errs = append(errs, fmt.Errorf("%w: scenario name %q in %s is already used by %s", ErrSuite, e.Name, e.File, prev))
			return
		}
		seen[e.Name] = e.File
		p.Entries = append(p.Entries, e)
	}
	var addFiles func(dir string, args []string, fromSuite, optional bool)
	addFiles = func(dir string, args []string, fromSuite, optional bool) {
		for _, a := range args {
			if dir != "" {
				a = abs(dir, a)
			}
			files, err := expandArg(a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range files {
				if !fromSuite && isSuiteFile(f) {
					sf, err := LoadFile(f)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if p.Name == "" {
						p.Name = sf.Name
					}
					addFiles(sf.Dir, sf.Scenarios, true, false)
					addFiles(sf.Dir, sf.Optional, true, true)
					for _, m := range sf.Matrix {
						exp, err := Expand(sf.Dir, m)
						if err != nil {
							errs = append(errs, err)
							continue
						}
						for _, x := range exp {
							sc, err := x.Scenario(filepath.Join(sf.Dir, x.Name+".yaml"))
							if err != nil {
								errs = append(errs, fmt.Errorf("%s: matrix scenario %s: %w", m.Pos, x.Name, err))
								continue
							}
							add(Entry{Name: x.Name, File: m.Pos.String(), Scenario: sc, Expanded: x.YAML, Optional: m.Optional})
						}
					}
					continue
				}
				sc, err := scenario.Load(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				add(Entry{Name: sc.Name, File: f, Scenario: sc, Optional: optional})
			}
		}
	}
	addFiles("", args, false, false)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(p.Entries) == 0 {
		return nil, fmt.Errorf("%w: no scenarios in %s", ErrSuite, strings.Join(args, " "))
	}
	if p.Name == "" {
		p.Name = "lockstep"
	}
	return p, nil
}

// expandArg turns a file, a directory (its *.yaml and *.yml files) or a
// glob into files, sorted.
func expandArg(a string) ([]string, error) {
	if st, err := os.Stat(a); err == nil {
		if !st.IsDir() {
			return []string{a}, nil
		}
		var out []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(a, pat)) // the pattern is well-formed
			out = append(out, m...)
		}
		slices.Sort(out)
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: %s: no *.yaml files", ErrSuite, a)
		}
		return out, nil
	}
	m, err := filepath.Glob(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSuite, a, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: %s: no such file, directory or matching files", ErrSuite, a)
	}
	slices.Sort(m)
	return m, nil
}

// isSuiteFile reports whether f is a suite file: a mapping with a
// scenarios or matrix key and no guests.
func isSuiteFile(f string) bool {
	data, err := os.ReadFile(f)
	if err != nil {
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	suite, guests := false, false
	for k := range pairs(doc.Content[0]) {
		switch k.Value {
		case "scenarios", "matrix":
			suite = true
		case "guests":
			guests = true
		}
	}
	return suite && !guests
}
