package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutputChecked checks that -o and the report names are checked
// before anything starts: each scenario names a QEMU that does not exist,
// so a run that got as far as starting guests would exit 3, not 2.
func TestOutputChecked(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "k.bin")
	if err := os.WriteFile(kernel, []byte("not an ELF kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	named := func(name string) string {
		body := "name: " + name + `
guests:
  defaults: {kernel: KERNEL, qemu: /nonexistent/qemu-system-x86_64}
  a: {label: one}
  b: {label: two}
sync:
  - break: 0x1000
`
		return writeScenario(t, "s.yaml", body, kernel)
	}
	ok := named("fine")
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []badCase{
		{"regular file", []string{"run", "-o", regular, ok}, 2, []string{"regular", "not a directory"}, nil},
		{"device", []string{"run", "-o", "/dev/full", ok}, 2, []string{"/dev/full", "not a directory"}, nil},
		{"under a regular file", []string{"run", "-o", filepath.Join(regular, "sub"), ok}, 2, []string{"-o", "regular"}, nil},
		{"slash name", []string{"run", "-o", filepath.Join(dir, "out1"), named(`"/"`)}, 2, []string{"scenario name", "rename"}, nil},
		{"NUL name", []string{"run", "-o", filepath.Join(dir, "out2"), named(`"a\0b"`)}, 2, []string{"scenario name", "NUL"}, nil},
		{"long name", []string{"run", "-o", filepath.Join(dir, "out3"), named(strings.Repeat("x", 300))}, 2, []string{"too long"}, nil},
	}
	if _, err := os.Stat("/proc/self"); err == nil {
		tests = append(tests, badCase{"proc", []string{"run", "-o", "/proc/x", ok}, 2, []string{"/proc/x"}, nil})
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, badCase{"unwritable", []string{"run", "-o", ro, ok}, 2, []string{"cannot write reports", "permission denied"}, nil})
	}
	checkBad(t, tests)
}

// TestProbeWrite checks that the probe neither leaves a file behind nor
// truncates one already there.
func TestProbeWrite(t *testing.T) {
	dir := t.TempDir()
	if err := probeWrite(filepath.Join(dir, "new.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("probe left new.txt behind: %v", err)
	}
	old := filepath.Join(dir, "old.txt")
	if err := os.WriteFile(old, []byte("previous report"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := probeWrite(old); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(old); err != nil || string(b) != "previous report" {
		t.Errorf("old.txt after probe: %q, %v", b, err)
	}
}
