package suite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Merged outputs in the merge's directory.
const (
	MergedJUnit    = "junit.xml"
	MergedMarkdown = "summary.md"
	MergedHTML     = "index.html"
	// MergedReports is the subdirectory the scenarios' reports are copied to.
	MergedReports = "scenarios"
)

// Merge joins the indexes of shard output directories into one index,
// written with the JUnit file, the Markdown summary and the HTML page into
// out; each scenario's reports are copied to out/scenarios. A scenario
// planned by any shard but reported by none is StatusMissing, and so is
// every scenario when no shard index is found. The error is for I/O only.
func Merge(dirs []string, out string) (*Index, error) {
	if err := os.MkdirAll(filepath.Join(out, MergedReports), 0o755); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	m := &Index{Schema: IndexSchema, Complete: true, Results: []ScenarioResult{}}
	got := map[string]bool{}
	shards := map[int]bool{}
	var start, end time.Time
	for _, dir := range dirs {
		x, err := ReadIndex(filepath.Join(dir, IndexFile))
		if errors.Is(err, os.ErrNotExist) {
			m.Notes = append(m.Notes, fmt.Sprintf("%s: no %s: the shard never started or its output was lost", dir, IndexFile))
			m.Complete = false
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if m.Suite == "" {
			m.Suite = x.Suite
		}
		if !x.Complete {
			m.Complete = false
			m.Notes = append(m.Notes, fmt.Sprintf("%s: shard %s did not finish (%d of %d scenarios reported)", dir, x.Shard, len(x.Results), len(x.Selected)))
		}
		if shards[x.Shard.Index] {
			m.Notes = append(m.Notes, fmt.Sprintf("%s: shard %s appears twice", dir, x.Shard))
		}
		shards[x.Shard.Index] = true
		m.Shards = append(m.Shards, x.Shard)
		m.Shard.Total = max(m.Shard.Total, x.Shard.Total)
		for _, n := range x.Planned {
			if !slices.Contains(m.Planned, n) {
				m.Planned = append(m.Planned, n)
			}
		}
		if start.IsZero() || x.Started.Before(start) {
			start = x.Started
		}
		if e := x.Started.Add(x.Duration); e.After(end) {
			end = e
		}
		for _, r := range x.Results {
			if got[r.Name] {
				m.Notes = append(m.Notes, fmt.Sprintf("%s: scenario %s ran more than once; the first result is kept", dir, r.Name))
				continue
			}
			got[r.Name] = true
			if r.Reports, err = copyReports(dir, out, r.Reports); err != nil {
				return nil, err
			}
			m.Results = append(m.Results, r)
		}
	}
	for i := 1; i <= m.Shard.Total; i++ {
		if !shards[i] {
			m.Complete = false
			m.Notes = append(m.Notes, fmt.Sprintf("shard %d/%d: no index found", i, m.Shard.Total))
		}
	}
	for _, n := range m.Planned {
		if !got[n] {
			m.Complete = false
			m.Results = append(m.Results, ScenarioResult{Name: n, Status: StatusMissing, Error: "no result: its shard was killed or never ran"})
		}
	}
	order := map[string]int{}
	for i, n := range m.Planned {
		order[n] = i
	}
	slices.SortStableFunc(m.Results, func(a, b ScenarioResult) int { return order[a.Name] - order[b.Name] })
	m.Started, m.Duration = start, end.Sub(start)
	m.Selected = m.Planned
	if m.Suite == "" {
		m.Suite = "lockstep"
	}
	if err := WriteIndex(out, m); err != nil {
		return nil, err
	}
	if err := writeMerged(out, m); err != nil {
		return nil, err
	}
	return m, nil
}

func writeMerged(out string, m *Index) error {
	for _, w := range []struct {
		name   string
		render func(io.Writer, string, *Index) error
	}{
		{MergedJUnit, RenderJUnit},
		{MergedMarkdown, func(wr io.Writer, dir string, x *Index) error { return RenderMarkdown(wr, dir, x, MarkdownCap) }},
		{MergedHTML, RenderHTML},
	} {
		f, err := os.Create(filepath.Join(out, w.name))
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		err = w.render(f, out, m)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("merge: %s: %w", w.name, err)
		}
	}
	return nil
}

// copyReports copies a scenario's report files from a shard directory to
// out/scenarios and returns their new paths, relative to out.
func copyReports(dir, out string, files map[string]string) (map[string]string, error) {
	moved := map[string]string{}
	for format, rel := range files {
		dst := filepath.Join(MergedReports, filepath.Base(rel))
		if err := copyFile(filepath.Join(dir, rel), filepath.Join(out, dst)); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		moved[format] = filepath.ToSlash(dst)
	}
	return moved, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(o, in)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return err
}
