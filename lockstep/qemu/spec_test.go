package qemu_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

func TestCommand(t *testing.T) {
	t.Parallel()
	const dir = "/tmp/run"
	tail := []string{
		"-serial", "file:/tmp/run/serial.log",
		"-qmp", "unix:/tmp/run/qmp.sock,server=on,wait=off",
		"-chardev", "socket,path=/tmp/run/gdb.sock,server=on,wait=off,id=gdb0",
		"-gdb", "chardev:gdb0",
	}
	head := []string{"-S", "-display", "none", "-no-reboot"}
	join := func(parts ...[]string) []string { return slices.Concat(parts...) }
	tests := []struct {
		name    string
		spec    qemu.Spec
		wantBin string
		want    []string // nil when an error is expected
	}{
		{
			name:    "tcg",
			spec:    qemu.Spec{Arch: "x86_64", Machine: "pc", CPU: "qemu64", Accel: "tcg", Memory: "64M", SMP: 2, Kernel: "k.elf", Append: "console=ttyS0"},
			wantBin: "qemu-system-x86_64",
			want: join(head, []string{"-machine", "pc", "-cpu", "qemu64", "-accel", "tcg", "-m", "64M", "-smp", "2",
				"-kernel", "k.elf", "-append", "console=ttyS0"}, tail),
		},
		{
			name:    "kvm with binary and extra args",
			spec:    qemu.Spec{Arch: "x86_64", Binary: "/opt/qemu/bin/qemu-system-x86_64", Accel: "kvm", Args: []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}},
			wantBin: "/opt/qemu/bin/qemu-system-x86_64",
			want:    join(head, []string{"-accel", "kvm"}, tail, []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}),
		},
		{
			name:    "icount and rtc",
			spec:    qemu.Spec{Arch: "aarch64", Accel: "tcg", Icount: "shift=0,sleep=off", RTC: "clock=vm"},
			wantBin: "qemu-system-aarch64",
			want:    join(head, []string{"-accel", "tcg", "-icount", "shift=0,sleep=off", "-rtc", "clock=vm"}, tail),
		},
		{name: "icount with kvm", spec: qemu.Spec{Arch: "x86_64", Accel: "kvm", Icount: "shift=0"}},
		{
			name:    "record keeps shift and sleep=off",
			spec:    qemu.Spec{Arch: "x86_64", Accel: "tcg", Icount: "shift=3,sleep=off,align=off", RR: qemu.RecordReplay{Mode: qemu.RRRecord, File: "/r/a,b.rr"}},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-accel", "tcg", "-icount", "shift=3,sleep=off,align=off,rr=record,rrfile=/r/a,,b.rr", "-net", "none"}, tail),
		},
		{
			name:    "replay without icount gets shift=0",
			spec:    qemu.Spec{Arch: "x86_64", RR: qemu.RecordReplay{Mode: qemu.RRReplay, File: "a.rr", Snapshot: "init"}},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-icount", "shift=0,rr=replay,rrfile=a.rr,rrsnapshot=init", "-net", "none"}, tail),
		},
		{name: "record with kvm", spec: qemu.Spec{Arch: "x86_64", Accel: "kvm", RR: qemu.RecordReplay{Mode: qemu.RRRecord, File: "a.rr"}}},
		{name: "record without a file", spec: qemu.Spec{Arch: "x86_64", RR: qemu.RecordReplay{Mode: qemu.RRRecord}}},
		{name: "bad record mode", spec: qemu.Spec{Arch: "x86_64", RR: qemu.RecordReplay{Mode: "rewind", File: "a.rr"}}},
		{name: "rr in icount", spec: qemu.Spec{Arch: "x86_64", Icount: "shift=0,rr=record", RR: qemu.RecordReplay{Mode: qemu.RRRecord, File: "a.rr"}}},
		{name: "trace with kvm", spec: qemu.Spec{Arch: "x86_64", Accel: "kvm", Trace: "t.log"}},
		{name: "no arch", spec: qemu.Spec{}},
		{name: "negative smp", spec: qemu.Spec{Arch: "x86_64", SMP: -1}},
		{name: "drive without file", spec: qemu.Spec{Arch: "x86_64", Drives: []qemu.Drive{{Format: "raw"}}}},
		{name: "bad version", spec: qemu.Spec{Arch: "x86_64", Trace: "t.log", QEMUVersion: "seven"}},
		{
			name:    "drives",
			spec:    qemu.Spec{Arch: "x86_64", BIOS: "bios.bin", Initrd: "i.cpio", Drives: []qemu.Drive{{File: "a,b.qcow2", Format: "qcow2", If: "none", Snapshot: true}, {File: "d.img"}}},
			wantBin: "qemu-system-x86_64",
			want: join(head, []string{"-bios", "bios.bin", "-initrd", "i.cpio",
				"-drive", "file=a,,b.qcow2,format=qcow2,if=none,snapshot=on", "-drive", "file=d.img"}, tail),
		},
		{
			name:    "trace 7.2",
			spec:    qemu.Spec{Arch: "x86_64", Accel: "tcg", Trace: "/tmp/t.log", QEMUVersion: "7.2.22"},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-accel", "tcg", "-D", "/tmp/t.log", "-d", "cpu,nochain", "-singlestep"}, tail),
		},
		{
			name:    "trace default version",
			spec:    qemu.Spec{Arch: "x86_64", Trace: "t.log"},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-D", "t.log", "-d", "cpu,nochain", "-singlestep"}, tail),
		},
		{
			name:    "trace 8.1",
			spec:    qemu.Spec{Arch: "x86_64", Accel: "tcg", Trace: "t.log", QEMUVersion: "8.1.0"},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-accel", "tcg,one-insn-per-tb=on", "-D", "t.log", "-d", "cpu,nochain"}, tail),
		},
		{
			name:    "trace 9.0 default accel",
			spec:    qemu.Spec{Arch: "x86_64", Trace: "t.log", QEMUVersion: "9.0"},
			wantBin: "qemu-system-x86_64",
			want:    join(head, []string{"-accel", "tcg,one-insn-per-tb=on", "-D", "t.log", "-d", "cpu,nochain"}, tail),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, args, err := tt.spec.Command(dir)
			if tt.want == nil {
				if !errors.Is(err, qemu.ErrBadSpec) {
					t.Fatalf("Command() err = %v, want ErrBadSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bin != tt.wantBin {
				t.Errorf("bin = %q, want %q", bin, tt.wantBin)
			}
			if !slices.Equal(args, tt.want) {
				t.Errorf("args =\n  %q\nwant\n  %q", args, tt.want)
			}
		})
	}
}

func TestCommandEscapesSocketPaths(t *testing.T) {
	t.Parallel()
	_, args, err := qemu.Spec{Arch: "x86_64"}.Command("/tmp/a,b")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "unix:/tmp/a,,b/qmp.sock,server=on,wait=off") {
		t.Errorf("qmp option not escaped: %q", args)
	}
	long := "/" + strings.Repeat("d", 120)
	if _, _, err := (qemu.Spec{Arch: "x86_64"}).Command(long); !errors.Is(err, qemu.ErrBadSpec) {
		t.Errorf("long dir: err = %v, want ErrBadSpec", err)
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skipf("no sh: %v", err)
	}
	argv := []string{
		"qemu-system-x86_64", "-append", "console=ttyS0 root=/dev/sda", "", "it's", `"dq"`, "$HOME", "`id`",
		"a\\b", "tab\there", "new\nline", "*", "~", "semi;colon", "x=1,y=2", "ünï", "!bang", "a'b'c",
	}
	q := qemu.Quote(argv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", `printf '%s\0' `+q).Output()
	if err != nil {
		t.Fatalf("sh -c: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, argv) {
		t.Errorf("round trip:\n got %q\nwant %q\nquoted: %s", got, argv, q)
	}
	if s := qemu.Quote([]string{"-m", "64M", "file:/a/b.log"}); s != "-m 64M file:/a/b.log" {
		t.Errorf("safe args quoted needlessly: %s", s)
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                  string
		major, minor, micro int
		bad                 bool
	}{
		{in: "7.2.22", major: 7, minor: 2, micro: 22},
		{in: "8.1", major: 8, minor: 1},
		{in: "9.2.50 (v9.2.0-12)", major: 9, minor: 2, micro: 50},
		{in: "7", bad: true},
		{in: "", bad: true},
		{in: "1.2.3.4", bad: true},
		{in: "a.b", bad: true},
		{in: "7..2", bad: true},
	}
	for _, tt := range tests {
		ma, mi, mc, err := qemu.ParseVersion(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("ParseVersion(%q) err = %v, bad = %v", tt.in, err, tt.bad)
			continue
		}
		if !tt.bad && (ma != tt.major || mi != tt.minor || mc != tt.micro) {
			t.Errorf("ParseVersion(%q) = %d.%d.%d", tt.in, ma, mi, mc)
		}
	}
	v, err := qemu.ParseVersionOutput("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright\n")
	if err != nil || v != "7.2.22" {
		t.Errorf("ParseVersionOutput = %q, %v", v, err)
	}
}

// TestRecordSleepPVH: a recording keeps icount sleep=off for a bzImage-like
// kernel and drops it for an x86 ELF kernel (the PVH option ROM never gets
// past its first wait with sleep=off under QEMU 7.2).
func TestRecordSleepPVH(t *testing.T) {
	dir := t.TempDir()
	elf := filepath.Join(dir, "k.elf")
	bz := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(elf, []byte("\x7fELF\x02\x01\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bz, []byte("MZ\x00\x00HdrS"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch, kernel string
		pvh          bool
		icount       string
	}{
		{"x86_64", elf, true, "shift=0,rr=record,rrfile=a.rr"},
		{"x86_64", bz, false, "shift=0,sleep=off,rr=record,rrfile=a.rr"},
		{"aarch64", elf, false, "shift=0,sleep=off,rr=record,rrfile=a.rr"},
		{"x86_64", filepath.Join(dir, "missing"), false, "shift=0,sleep=off,rr=record,rrfile=a.rr"},
	} {
		if got := qemu.PVHBoot(tc.arch, tc.kernel); got != tc.pvh {
			t.Errorf("PVHBoot(%s, %s) = %v, want %v", tc.arch, filepath.Base(tc.kernel), got, tc.pvh)
		}
		spec := qemu.Spec{Arch: tc.arch, Accel: "tcg", Kernel: tc.kernel, Icount: "shift=0,sleep=off",
			RR: qemu.RecordReplay{Mode: qemu.RRRecord, File: "a.rr"}}
		_, args, err := spec.Command(filepath.Join(dir, "run"))
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(args, "-icount"); i < 0 || args[i+1] != tc.icount {
			t.Errorf("%s %s: args %q, want -icount %s", tc.arch, filepath.Base(tc.kernel), args, tc.icount)
		}
	}
}
