package arch

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// objdumpLine matches "  1002a4:\t55                   \tpush   %rbp".
var objdumpLine = regexp.MustCompile(`^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(\S+)`)

// TestDisasmMatchesObjdump cross-checks instruction boundaries and
// mnemonics against binutils objdump on the demo guests' 64-bit code.
func TestDisasmMatchesObjdump(t *testing.T) {
	t.Parallel()
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skipf("objdump not installed (Debian package binutils): %v", err)
	}
	a, _ := Lookup("x86_64")
	for _, guest := range []string{"demo-good", "deep-good"} {
		path := qemutest.Guest(t, guest)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		text := f.Section(".text")
		code, err := text.Data()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The PVH entry stub is 32-bit code; start at long_entry.
		out, err := exec.Command(objdump, "-d", "-j", ".text", "-w", path).Output()
		if err != nil {
			t.Fatalf("objdump: %v", err)
		}
		inLong, checked := false, 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasSuffix(line, ">:") {
				inLong = !strings.Contains(line, "<pvh_start>")
				continue
			}
			m := objdumpLine.FindStringSubmatch(line)
			if m == nil || !inLong {
				continue
			}
			addr, err := strconv.ParseUint(m[1], 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			n := len(strings.Fields(m[2]))
			mnem := m[3]
			got, l, err := a.Disasm(code[addr-text.Addr:], addr, nil)
			if err != nil {
				t.Errorf("%s %#x: objdump %q, Disasm error %v", guest, addr, line, err)
				continue
			}
			if l != n {
				t.Errorf("%s %#x: length %d, objdump %d (%q vs %q)", guest, addr, l, n, got, line)
			}
			gm := strings.Fields(got)[0]
			if normMnemonic(gm) != normMnemonic(mnem) {
				t.Errorf("%s %#x: mnemonic %q, objdump %q", guest, addr, gm, mnem)
			}
			checked++
		}
		if checked < 50 {
			t.Errorf("%s: only %d instructions checked", guest, checked)
		}
		t.Logf("%s: %d instructions match objdump", guest, checked)
	}
}

// normMnemonic removes spelling differences between x86asm and objdump
// that do not change the instruction: operand-size suffixes and movabs.
func normMnemonic(m string) string {
	if m == "movabs" {
		return "mov"
	}
	if strings.HasPrefix(m, "nop") {
		return "nop"
	}
	return strings.TrimSuffix(m, "q")
}
