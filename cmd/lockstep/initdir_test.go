package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// buildTree makes a kernel build directory: vmlinux (the ELF at elf) and
// arch/x86/boot/bzImage.
func buildTree(t *testing.T, elf string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(elf)
	if err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(dir, "arch", "x86", "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(boot, "bzImage"), []byte("a boot image"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInitFirstContact checks init as a kernel developer first meets it:
// a build directory for a kernel, a non-Linux ELF without --sync (a hint,
// not a bare unknown start_kernel), and --sync completion from the
// symbols.
func TestInitFirstContact(t *testing.T) {
	good, bad := qemutest.Guest(t, "demo-good"), qemutest.Guest(t, "demo-bad")
	ta, tb := buildTree(t, good), buildTree(t, bad)
	code, out, errs := cli(t, "init", "--a", ta, "--b", tb, "--sync", "kmain")
	if code != 0 {
		t.Fatalf("init with build directories: status %d\n%s", code, errs)
	}
	for _, w := range []string{filepath.Join(ta, "arch", "x86", "boot", "bzImage"), filepath.Join(ta, "vmlinux"), filepath.Join(tb, "vmlinux")} {
		if !strings.Contains(out, `"`+w+`"`) {
			t.Errorf("scenario lacks %s:\n%s", w, out)
		}
	}
	checkBad(t, []badCase{
		{"directory without vmlinux", []string{"init", "--a", t.TempDir(), "--b", good, "--sync", "kmain"}, 2,
			[]string{"without a vmlinux", "build directory"}, nil},
		{"non-Linux without --sync", []string{"init", "--a", good, "--b", bad}, 2,
			[]string{"no start_kernel", "not a Linux kernel", "--sync kmain"}, nil},
	})
	code, out, _ = cli(t, "__complete", "init", "--a", good, "--sync", "kmain,path_")
	if code != 0 || !strings.Contains(out, "kmain,path_a\n") || !strings.Contains(out, "kmain,path_c\n") || strings.Contains(out, "leaf") {
		t.Errorf("--sync completion:\n%s", out)
	}
}
