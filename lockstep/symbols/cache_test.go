package symbols

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestCache: twenty concurrent users of one file read it once; a copy
// at another path is another file; a rewritten file (new mtime) is read
// again; a missing file fails like Load.
func TestCache(t *testing.T) {
	t.Parallel()
	src := fixture(t, false)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.elf"), filepath.Join(dir, "b.elf")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := NewCache()
	tables := make([]*Table, 20)
	var wg sync.WaitGroup
	for i := range tables {
		wg.Go(func() {
			tab, err := c.Load(a)
			if err != nil {
				t.Error(err)
			}
			tables[i] = tab
		})
	}
	wg.Wait()
	if c.Loads() != 1 {
		t.Errorf("20 users of one file: %d loads, want 1", c.Loads())
	}
	for _, tab := range tables {
		if tab != tables[0] || tab == nil {
			t.Fatal("the users got different tables")
		}
	}
	if _, err := c.Load(b); err != nil || c.Loads() != 2 {
		t.Errorf("another path: %v, %d loads, want 2", err, c.Loads())
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(a, later, later); err != nil {
		t.Fatal(err)
	}
	again, err := c.Load(a)
	if err != nil || c.Loads() != 3 || again == tables[0] {
		t.Errorf("a changed file: %v, %d loads (want 3), same table %v", err, c.Loads(), again == tables[0])
	}
	if _, err := c.Load(filepath.Join(dir, "nope.elf")); err == nil {
		t.Error("a missing file loaded")
	}
}
