package symbols

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Cache shares loaded tables between runs in one process (the scenarios
// of a suite): a file is read once however many runs name it, and again
// only when it changes. A Table is safe for concurrent use, so runs share
// it as is. The zero value is not usable; use NewCache.
type Cache struct {
	mu    sync.Mutex
	m     map[cacheKey]*cacheEntry
	loads atomic.Int64
}

// cacheKey identifies one version of a file: a rebuilt vmlinux at the
// same path has another size or modification time.
type cacheKey struct {
	path  string
	size  int64
	mtime time.Time
}

type cacheEntry struct {
	once sync.Once
	t    *Table
	err  error
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{m: map[cacheKey]*cacheEntry{}} }

// Load returns the table of path, reading it with Load the first time
// this version of the file (path, size, modification time) is asked for.
// Concurrent calls for the same file wait for one read. A failed read is
// remembered like a table: the same file fails the same way.
func (c *Cache) Load(path string) (*Table, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Load(path) // the same message as without a cache
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	k := cacheKey{abs, st.Size(), st.ModTime()}
	c.mu.Lock()
	e, ok := c.m[k]
	if !ok {
		e = &cacheEntry{}
		c.m[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		c.loads.Add(1)
		e.t, e.err = Load(path)
	})
	return e.t, e.err
}

// Loads counts the files the cache has read.
func (c *Cache) Loads() int { return int(c.loads.Load()) }
