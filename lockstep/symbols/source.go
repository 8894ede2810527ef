package symbols

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lockstep-dev/lockstep/compare"
)

// ErrNoDWARF means the ELF file has no DWARF line tables (.debug_info and
// .debug_line), so addresses have no source lines: build with -g.
var ErrNoDWARF = errors.New("no DWARF line tables (build with -g)")

// DefaultSourceStrip are the prefixes Source removes from every file name
// after the compilation directory: the build directory of Debian's
// reproducible builds, "/build/reproducible-path/linux-6.1.170/".
var DefaultSourceStrip = []string{"/build/reproducible-path/*/"}

// lazySource is a Table's DWARF index, built on the first Source call.
type lazySource struct {
	mu   sync.Mutex
	done atomic.Bool
	idx  *sourceIndex
	err  error
}

// Source returns the source position of the instruction at addr from the
// file's DWARF: the file and line of the innermost (deepest inlined)
// function, and the inlined calls addr lies in, innermost first (see
// compare.Location). File names are relative to the build directory where
// they lie in it: the compilation directory (DW_AT_comp_dir) and
// DefaultSourceStrip are removed. ok is false when the address has no line.
//
// The first call reads the DWARF unit headers and indexes the address
// ranges of the compilation units; the first lookup in a unit indexes its
// line table and inlined subroutines. Later lookups cost a few binary
// searches. Load never reads DWARF. A file without DWARF gives ok false,
// and SourceErr says why.
func (t *Table) Source(addr uint64) (file string, line int, inlined []compare.InlinedFrame, ok bool) {
	idx := t.sourceIndex()
	if idx == nil {
		return "", 0, nil, false
	}
	return idx.lookup(addr)
}

// SourceErr returns why Source finds no lines: an error matching
// ErrNoDWARF when the file has no DWARF, another when the DWARF could not
// be read, or the first unit that could not be indexed. It is nil until
// the first Source call has loaded the DWARF.
func (t *Table) SourceErr() error {
	if t.src == nil || !t.src.done.Load() {
		return nil
	}
	if t.src.err != nil {
		return t.src.err
	}
	return t.src.idx.firstErr()
}

// sourceIndex loads the DWARF index once; nil when there is none.
func (t *Table) sourceIndex() *sourceIndex {
	s := t.src
	if s == nil {
		return nil
	}
	if s.done.Load() {
		return s.idx
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done.Load() {
		s.idx, s.err = openSourceIndex(t.path, t.IsText)
		if s.err != nil {
			s.idx = nil
			s.err = fmt.Errorf("symbols: source lines of %s: %w", t.path, s.err)
		}
		s.done.Store(true)
	}
	return s.idx
}

// StripSource removes the first of prefixes that matches the start of
// file, at a path-element boundary, and returns the rest; file is returned
// as is when none matches or nothing would be left. A prefix element may
// be a path.Match pattern ("/build/linux-*/"); a trailing slash is
// optional.
func StripSource(file string, prefixes []string) string {
	for _, p := range prefixes {
		if rest, ok := stripPrefix(file, p); ok {
			return rest
		}
	}
	return file
}

func stripPrefix(file, prefix string) (string, bool) {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" && !strings.HasPrefix(file, "/") {
		return file, false
	}
	if !strings.ContainsAny(prefix, `*?[\`) {
		rest, ok := strings.CutPrefix(file, prefix+"/")
		return rest, ok && rest != ""
	}
	n := strings.Count(prefix, "/") + 1
	parts := strings.SplitN(file, "/", n+1)
	if len(parts) <= n || parts[n] == "" {
		return file, false
	}
	pre := strings.Split(prefix, "/")
	for i, p := range pre {
		if ok, err := path.Match(p, parts[i]); err != nil || !ok {
			return file, false
		}
	}
	return parts[n], true
}
