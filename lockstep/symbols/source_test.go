package symbols

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// inlineFixture builds testdata/inline.c with -O2 -g: outer holds inlined
// calls two deep, one from another file (inline.h).
func inlineFixture(t testing.TB) string {
	t.Helper()
	fixture(t, false) // skips without gcc
	out := filepath.Join(t.TempDir(), "inline.elf")
	cmd := exec.Command("gcc", "-O2", "-g", "-nostdlib", "-static", "-no-pie", "-fcf-protection=none", "-o", out, "testdata/inline.c")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

// frame is one line of addr2line -f -i: a function and where it is.
type frame struct{ fn, pos string }

// addr2line returns, for each address, addr2line's inlining chain,
// innermost first, with dir stripped from the file names. It skips the
// test when binutils is not installed.
func addr2line(t *testing.T, path, dir string, addrs []uint64) map[uint64][]frame {
	t.Helper()
	if _, err := exec.LookPath("addr2line"); err != nil {
		t.Skipf("addr2line not installed (Debian package binutils), needed to cross-check: %v", err)
	}
	var in bytes.Buffer
	for _, a := range addrs {
		fmt.Fprintf(&in, "%#x\n", a)
	}
	cmd := exec.Command("addr2line", "-a", "-f", "-i", "-e", path)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("addr2line: %v", err)
	}
	res := map[uint64][]frame{}
	var cur uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "0x") {
			if cur, err = strconv.ParseUint(l, 0, 64); err != nil {
				t.Fatalf("addr2line line %q: %v", l, err)
			}
			res[cur] = nil
			continue
		}
		if !sc.Scan() {
			t.Fatalf("addr2line: function %q without a position", l)
		}
		pos, _, _ := strings.Cut(sc.Text(), " (discriminator")
		res[cur] = append(res[cur], frame{l, strings.TrimPrefix(pos, dir+"/")})
	}
	return res
}

// textAddrs returns every address of the ELF's .text.
func textAddrs(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".text")
	if s == nil {
		t.Fatalf("%s has no .text", path)
	}
	var out []uint64
	for a := s.Addr; a < s.Addr+s.Size; a++ {
		out = append(out, a)
	}
	return out
}

// checkAgainstAddr2line compares Source with addr2line -f -i at every
// address of .text, and returns how many addresses had inlined calls.
func checkAgainstAddr2line(t *testing.T, path, dir string) (inlined int) {
	t.Helper()
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	addrs := textAddrs(t, path)
	want := addr2line(t, path, dir, addrs)
	bad := 0
	for _, a := range addrs {
		w := want[a]
		file, line, in, ok := tab.Source(a)
		known := len(w) > 0 && !strings.HasPrefix(w[0].pos, "??") && !strings.HasSuffix(w[0].pos, ":0") && !strings.HasSuffix(w[0].pos, ":?")
		if !known {
			if ok {
				t.Errorf("%#x: Source = %s:%d, addr2line knows no line", a, file, line)
				bad++
			}
			continue
		}
		got := []frame{}
		if ok {
			pos := fmt.Sprintf("%s:%d", file, line)
			for _, f := range in {
				got = append(got, frame{f.Function, pos})
				pos = f.Source()
			}
			fn := w[len(w)-1].fn // padding after a function: in its DWARF range, in no symbol
			if sym, ok := tab.Symbolize(a); ok {
				fn = sym.Symbol
			}
			got = append(got, frame{fn, pos})
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%#x: Source = %v, addr2line %v", a, got, w)
			bad++
		}
		if len(in) > 0 {
			inlined++
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
	if err := tab.SourceErr(); err != nil {
		t.Errorf("SourceErr() = %v", err)
	}
	return inlined
}

func TestSourceMatchesAddr2line(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	guests, err := filepath.Abs(filepath.Join("..", "..", "testdata", "guests"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, dir string
		inlined         bool
	}{
		{"inline fixture -O2", inlineFixture(t), wd, true},
		{"demo guest, C and assembly", qemutest.Guest(t, "demo-good"), guests, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := checkAgainstAddr2line(t, tc.path, tc.dir)
			if tc.inlined && n == 0 {
				t.Error("no address had inlined calls; the test proves nothing about them")
			}
		})
	}
}

func TestSource(t *testing.T) {
	t.Parallel()
	tab, err := Load(inlineFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	fns := map[string]Symbol{}
	for _, f := range tab.Functions() {
		fns[f.Name] = f
	}
	// The line of a function's opening brace and of a call, from the source.
	src, err := os.ReadFile("testdata/inline.c")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) int {
		for i, l := range strings.Split(string(src), "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		t.Fatalf("inline.c has no %q", s)
		return 0
	}
	plain := fns["plain"]
	file, line, in, ok := tab.Source(plain.Addr)
	if !ok || file != "testdata/inline.c" || line != lineOf("return x + counter;") || len(in) != 0 {
		t.Errorf("Source(plain) = %s:%d %v %v", file, line, in, ok)
	}
	// Somewhere in outer, scale is inlined into middle, inlined into outer.
	found := false
	for a := fns["outer"].Addr; a < fns["outer"].Addr+fns["outer"].Size && !found; a++ {
		file, _, in, ok := tab.Source(a)
		if !ok || len(in) != 2 {
			continue
		}
		found = true
		want := []compare.InlinedFrame{
			{Function: "scale", File: "testdata/inline.c", Line: lineOf("int y = scale(x, counter);")},
			{Function: "middle", File: "testdata/inline.c", Line: lineOf("s += middle(i);")},
		}
		if file != "testdata/inline.h" || !reflect.DeepEqual(in, want) {
			t.Errorf("Source(%#x) = %s %+v, want testdata/inline.h %+v", a, file, in, want)
		}
	}
	if !found {
		t.Error("no address of outer is in scale inlined in middle")
	}
	if _, _, _, ok := tab.Source(0x10); ok {
		t.Error("Source(0x10) found a line")
	}
	if _, _, _, ok := tab.Source(addr(t, tab, "counter")); ok {
		t.Error("Source(counter) found a line for data")
	}
}

func TestSourceWithoutDWARF(t *testing.T) {
	t.Parallel()
	tab := loadFixture(t) // built without -g
	if err := tab.SourceErr(); err != nil {
		t.Errorf("SourceErr() before Source = %v, want nil", err)
	}
	if file, line, _, ok := tab.Source(addr(t, tab, "alpha")); ok {
		t.Errorf("Source(alpha) = %s:%d without DWARF", file, line)
	}
	err := tab.SourceErr()
	if !errors.Is(err, ErrNoDWARF) || !strings.Contains(err.Error(), "build with -g") {
		t.Errorf("SourceErr() = %v, want ErrNoDWARF", err)
	}
	if _, _, _, ok := fuzzTable().Source(0x100000); ok {
		t.Error("a table not loaded from a file has source lines")
	}
}

// TestSourceConcurrent looks addresses up from several goroutines while
// the index and its units are built (run with -race).
func TestSourceConcurrent(t *testing.T) {
	t.Parallel()
	tab, err := Load(inlineFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	fns := tab.Functions()
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(fns))
	for g := range 8 {
		wg.Go(func() {
			for i := range fns {
				f := fns[(i+g)%len(fns)]
				if _, _, _, ok := tab.Source(f.Addr); !ok {
					errs <- f.Name
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("no line for %s", name)
	}
}

func TestStripSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		prefixes []string
		want     string
	}{
		{"/build/reproducible-path/linux-6.1.170/init/main.c", DefaultSourceStrip, "init/main.c"},
		{"/build/reproducible-path/linux-6.1.170", DefaultSourceStrip, "/build/reproducible-path/linux-6.1.170"},
		{"/build/reproducible-path/linux-6.1.170/", DefaultSourceStrip, "/build/reproducible-path/linux-6.1.170/"},
		{"/build/other/linux/init/main.c", DefaultSourceStrip, "/build/other/linux/init/main.c"},
		{"/home/me/linux/init/main.c", []string{"/home/me/linux/"}, "init/main.c"},
		{"/home/me/linux/init/main.c", []string{"/home/me/linux"}, "init/main.c"},
		{"/home/me/linux2/init/main.c", []string{"/home/me/linux"}, "/home/me/linux2/init/main.c"},
		{"/home/me/linux/init/main.c", []string{"/home/*/linux/"}, "init/main.c"},
		{"/home/me/linux/init/main.c", []string{"/home/[a-l]*/"}, "/home/me/linux/init/main.c"},
		{"/home/me/linux/init/main.c", []string{"/opt/", "/home/me/"}, "linux/init/main.c"},
		{"/usr/include/stdio.h", []string{"/"}, "usr/include/stdio.h"},
		{"init/main.c", []string{"/"}, "init/main.c"},
		{"linux-6.1/init/main.c", []string{"linux-*"}, "init/main.c"},
		{"demo.c", nil, "demo.c"},
		{"/a/b.c", []string{"/a/["}, "/a/b.c"}, // malformed pattern: no match
	}
	for _, tc := range tests {
		if got := StripSource(tc.file, tc.prefixes); got != tc.want {
			t.Errorf("StripSource(%q, %q) = %q, want %q", tc.file, tc.prefixes, got, tc.want)
		}
	}
}

func TestCleanSourcePath(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, compDir, want string }{
		{"/work/guests/demo.c", "/work/guests", "demo.c"},
		{"/work/guests/sub/x.h", "/work/guests", "sub/x.h"},
		{"/work/guests2/demo.c", "/work/guests", "/work/guests2/demo.c"},
		{"/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h", "/work/guests", "/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h"},
		{"/build/reproducible-path/linux-6.1.170/include/linux/list.h", "/build/reproducible-path/linux-6.1.170", "include/linux/list.h"},
		{"/build/reproducible-path/linux-6.1.170/init/main.c", "/somewhere/else", "init/main.c"},
		{"init/main.c", ".", "init/main.c"},
		{"/x.c", "/", "/x.c"},
	}
	for _, tc := range tests {
		if got := cleanSourcePath(tc.name, tc.compDir); got != tc.want {
			t.Errorf("cleanSourcePath(%q, %q) = %q, want %q", tc.name, tc.compDir, got, tc.want)
		}
	}
}

func TestInlineSegments(t *testing.T) {
	t.Parallel()
	iv := func(lo, hi uint64, call, depth int32) inlineInterval {
		return inlineInterval{lo: lo, hi: hi, call: call, depth: depth}
	}
	tests := []struct {
		name string
		ivs  []inlineInterval
		want []inlineSeg
	}{
		{"none", nil, nil},
		{"one", []inlineInterval{iv(10, 20, 0, 1)}, []inlineSeg{{10, 0}, {20, -1}}},
		{"nested", []inlineInterval{iv(12, 14, 1, 2), iv(10, 20, 0, 1)},
			[]inlineSeg{{10, 0}, {12, 1}, {14, 0}, {20, -1}}},
		{"nested at the same start", []inlineInterval{iv(10, 14, 1, 2), iv(10, 20, 0, 1)},
			[]inlineSeg{{10, 1}, {14, 0}, {20, -1}}},
		{"same range, deeper wins", []inlineInterval{iv(10, 20, 1, 2), iv(10, 20, 0, 1)},
			[]inlineSeg{{10, 1}, {20, -1}}},
		{"adjacent", []inlineInterval{iv(10, 20, 0, 1), iv(20, 30, 1, 1)},
			[]inlineSeg{{10, 0}, {20, 1}, {30, -1}}},
		{"gap", []inlineInterval{iv(10, 20, 0, 1), iv(25, 30, 1, 1)},
			[]inlineSeg{{10, 0}, {20, -1}, {25, 1}, {30, -1}}},
		{"two pieces of one call", []inlineInterval{iv(10, 12, 0, 1), iv(16, 18, 0, 1), iv(11, 12, 1, 2)},
			[]inlineSeg{{10, 0}, {11, 1}, {12, -1}, {16, 0}, {18, -1}}},
		{"badly nested stays ordered", []inlineInterval{iv(10, 20, 0, 1), iv(15, 25, 1, 2)},
			[]inlineSeg{{10, 0}, {15, 1}, {25, -1}}},
	}
	for _, tc := range tests {
		got := inlineSegments(tc.ivs)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: inlineSegments = %v, want %v", tc.name, got, tc.want)
		}
	}
}
