package qemu

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Drive is one -drive option.
type Drive struct {
	File     string
	Format   string // e.g. "raw", "qcow2"; "" lets QEMU probe
	If       string // e.g. "none", "ide", "virtio"; "" is QEMU's default
	Snapshot bool   // snapshot=on: writes go to a temporary overlay
}

// Spec describes one QEMU guest. It is pure data: Command turns it into an
// argv and Start runs it.
type Spec struct {
	Arch    string // "x86_64" selects qemu-system-x86_64 unless Binary is set
	Binary  string // explicit binary name or path
	Machine string
	CPU     string
	Accel   string // "tcg" | "kvm" ("" leaves QEMU's default)
	Memory  string
	SMP     int
	Kernel  string
	Initrd  string
	Append  string
	BIOS    string
	Drives  []Drive
	Args    []string // extra arguments, appended verbatim
	Icount  string   // e.g. "shift=0,sleep=off" gives -icount ...; TCG only
	RTC     string   // e.g. "clock=vm" gives -rtc ...
	// Trace, when set, is the path of QEMU's -D log. Command adds
	// -d cpu,nochain and one instruction per translation block
	// (-singlestep before QEMU 8.1, -accel tcg,one-insn-per-tb=on from 8.1).
	Trace string
	// QEMUVersion ("major.minor[.micro]") selects version-dependent flags.
	// "" means 7.2. Start fills it in from `qemu --version` when Trace is
	// set and it is empty.
	QEMUVersion string
	// RR, when its Mode is set, records or replays the guest's execution
	// (QEMU record/replay, -icount ...,rr=MODE,rrfile=FILE). TCG only.
	RR RecordReplay
}

// Record/replay modes of RecordReplay.Mode.
const (
	RRRecord = "record"
	RRReplay = "replay"
)

// RecordReplay is the record/replay part of a Spec.
type RecordReplay struct {
	// Mode is RRRecord, RRReplay or "" (neither).
	Mode string
	// File is the execution log written by a recording and read by a
	// replay.
	File string
	// Snapshot, when set, is rrsnapshot: the name of the VM snapshot a
	// recording takes at its start and a replay loads (it needs a
	// writable qcow2 drive).
	Snapshot string
}

// rrIcount returns the -icount value of a record/replay Spec: the Spec's
// own icount options (shift=0 when it has none) with rr, rrfile and
// rrsnapshot added. sleep=off stays when the Spec asks for it, except on a
// PVH boot (an x86 ELF kernel, see PVHBoot), where it is dropped: under
// QEMU 7.2 such a recording never gets the PVH option ROM past its first
// wait (the guest spins in real mode). Without sleep=off an idle vCPU's
// virtual clock follows the wall clock, so two recordings of guests that
// halt part on the timer values they read, not on what the two sides
// compare: two recordings of one Debian kernel read different ACPI PM
// timer values in SeaBIOS 2.2 million instructions after reset. With
// sleep=off, QEMU 7.2's default devices (VGA, NIC and their option ROMs)
// keep a bzImage boot in the firmware: such guests need -nodefaults
// (docs/linux.md).
func (s Spec) rrIcount() (string, error) {
	switch s.RR.Mode {
	case RRRecord, RRReplay:
	default:
		return "", fmt.Errorf("%w: record/replay mode %q is not record or replay", ErrBadSpec, s.RR.Mode)
	}
	if s.RR.File == "" {
		return "", fmt.Errorf("%w: record/replay needs a file", ErrBadSpec)
	}
	var opts []string
	for _, o := range strings.Split(s.Icount, ",") {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "":
			continue
		case "sleep":
			if o != "sleep=off" || PVHBoot(s.Arch, s.Kernel) {
				continue
			}
		case "rr", "rrfile", "rrsnapshot":
			return "", fmt.Errorf("%w: icount %q already sets %s; use Spec.RR", ErrBadSpec, s.Icount, k)
		}
		opts = append(opts, o)
	}
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "shift=") }) {
		opts = append([]string{"shift=0"}, opts...)
	}
	opts = append(opts, "rr="+s.RR.Mode, "rrfile="+escapeOpt(s.RR.File))
	if s.RR.Snapshot != "" {
		opts = append(opts, "rrsnapshot="+escapeOpt(s.RR.Snapshot))
	}
	return strings.Join(opts, ","), nil
}

// Run-directory file names used by Command.
const (
	QMPSocketName  = "qmp.sock"
	GDBSocketName  = "gdb.sock"
	SerialLogName  = "serial.log"
	StderrLogName  = "stderr.log"
	maxUnixPathLen = 107 // sun_path is 108 bytes including the NUL
)

// BinaryName returns the QEMU binary the Spec runs: Binary if set,
// otherwise qemu-system-<Arch>.
func (s Spec) BinaryName() (string, error) {
	if s.Binary != "" {
		return s.Binary, nil
	}
	if s.Arch == "" {
		return "", fmt.Errorf("%w: neither arch nor binary set", ErrBadSpec)
	}
	if strings.ContainsAny(s.Arch, "/ \t\n") {
		return "", fmt.Errorf("%w: bad arch %q", ErrBadSpec, s.Arch)
	}
	return "qemu-system-" + s.Arch, nil
}

// Command builds the QEMU argv for a run directory dir. It does no I/O: the
// binary is returned as named (Start resolves it in PATH). The guest always
// starts paused (-S) with -display none and -no-reboot, its serial port
// logged to dir/serial.log, QMP on dir/qmp.sock and the gdbstub on
// dir/gdb.sock (unix sockets avoid TCP port races between parallel runs).
func (s Spec) Command(dir string) (bin string, args []string, err error) {
	return s.CommandSockets(dir, dir)
}

// SocketsFit reports whether the QMP and gdbstub sockets fit below dir:
// a unix socket path is at most 107 bytes.
func SocketsFit(dir string) bool {
	return len(filepath.Join(dir, QMPSocketName)) <= maxUnixPathLen && len(filepath.Join(dir, GDBSocketName)) <= maxUnixPathLen
}

// CommandSockets is Command with the QMP and gdbstub sockets in sockDir
// rather than dir, for a run directory too long to hold them.
func (s Spec) CommandSockets(dir, sockDir string) (bin string, args []string, err error) {
	bin, err = s.BinaryName()
	if err != nil {
		return "", nil, err
	}
	if dir == "" || sockDir == "" {
		return "", nil, fmt.Errorf("%w: empty run directory", ErrBadSpec)
	}
	qmpPath := filepath.Join(sockDir, QMPSocketName)
	gdbPath := filepath.Join(sockDir, GDBSocketName)
	if !SocketsFit(sockDir) {
		return "", nil, fmt.Errorf("%w: run directory %q too long for a unix socket path", ErrBadSpec, sockDir)
	}
	kvm := s.Accel == "kvm"
	if s.Icount != "" && kvm {
		return "", nil, fmt.Errorf("%w: icount %q needs tcg, not kvm", ErrBadSpec, s.Icount)
	}
	if s.RR.Mode != "" && kvm {
		return "", nil, fmt.Errorf("%w: record/replay needs tcg, not kvm", ErrBadSpec)
	}
	icount := s.Icount
	if s.RR.Mode != "" {
		if icount, err = s.rrIcount(); err != nil {
			return "", nil, err
		}
	}
	if s.Trace != "" && kvm {
		return "", nil, fmt.Errorf("%w: trace needs tcg, not kvm", ErrBadSpec)
	}
	if s.SMP < 0 {
		return "", nil, fmt.Errorf("%w: smp %d", ErrBadSpec, s.SMP)
	}
	if strings.ContainsAny(s.Accel, ", ") {
		return "", nil, fmt.Errorf("%w: bad accel %q", ErrBadSpec, s.Accel)
	}
	newTrace := false
	if s.Trace != "" {
		newTrace, err = oneInsnPerTBOption(s.QEMUVersion)
		if err != nil {
			return "", nil, err
		}
	}

	a := []string{"-S", "-display", "none", "-no-reboot"}
	add := func(flag, val string) {
		if val != "" {
			a = append(a, flag, val)
		}
	}
	add("-machine", s.Machine)
	add("-cpu", s.CPU)
	accel := s.Accel
	if s.Trace != "" && newTrace {
		if accel == "" {
			accel = "tcg"
		}
		accel += ",one-insn-per-tb=on"
	}
	add("-accel", accel)
	add("-m", s.Memory)
	if s.SMP > 0 {
		a = append(a, "-smp", strconv.Itoa(s.SMP))
	}
	add("-bios", s.BIOS)
	add("-kernel", s.Kernel)
	add("-initrd", s.Initrd)
	add("-append", s.Append)
	for i, d := range s.Drives {
		if d.File == "" {
			return "", nil, fmt.Errorf("%w: drive %d has no file", ErrBadSpec, i)
		}
		opt := "file=" + escapeOpt(d.File)
		if d.Format != "" {
			opt += ",format=" + escapeOpt(d.Format)
		}
		if d.If != "" {
			opt += ",if=" + escapeOpt(d.If)
		}
		if d.Snapshot {
			opt += ",snapshot=on"
		}
		a = append(a, "-drive", opt)
	}
	add("-icount", icount)
	if s.RR.Mode != "" && !slices.ContainsFunc(s.Args, isNetOption) {
		// No default NIC: a network card is not recorded (it needs
		// filter-replay), its option ROM adds instructions to boot, and
		// a replay that loads the start snapshot (rrsnapshot) hangs with
		// it (QEMU 7.2 and 10.0).
		a = append(a, "-net", "none")
	}
	add("-rtc", s.RTC)
	if s.Trace != "" {
		a = append(a, "-D", s.Trace, "-d", "cpu,nochain")
		if !newTrace {
			a = append(a, "-singlestep")
		}
	}
	a = append(a,
		"-serial", "file:"+filepath.Join(dir, SerialLogName),
		"-qmp", "unix:"+escapeOpt(qmpPath)+",server=on,wait=off",
		"-chardev", "socket,path="+escapeOpt(gdbPath)+",server=on,wait=off,id=gdb0",
		"-gdb", "chardev:gdb0",
	)
	a = append(a, s.Args...)
	return bin, a, nil
}

// escapeOpt escapes a value for QEMU's key=value,... option syntax, where
// a literal comma is written twice.
func escapeOpt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// oneInsnPerTBOption reports whether QEMU version v takes
// -accel tcg,one-insn-per-tb=on (8.1 and later) instead of -singlestep.
func oneInsnPerTBOption(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	major, minor, _, err := ParseVersion(v)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadSpec, err)
	}
	return major > 8 || (major == 8 && minor >= 1), nil
}

// ParseVersion parses "major.minor[.micro]" (trailing text after the
// numbers, such as " (Debian ...)", is ignored).
func ParseVersion(v string) (major, minor, micro int, err error) {
	v = strings.TrimSpace(v)
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, fmt.Errorf("parse qemu version %q: want major.minor[.micro]", v)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		if p == "" || len(p) > 6 {
			return 0, 0, 0, fmt.Errorf("parse qemu version %q: bad component %q", v, p)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("parse qemu version %q: %w", v, err)
		}
		nums[i] = n
	}
	return nums[0], nums[1], nums[2], nil
}

// ParseVersionOutput extracts the version from `qemu-system-* --version`
// output ("QEMU emulator version 7.2.22 (Debian ...)").
func ParseVersionOutput(out string) (string, error) {
	const marker = "version "
	line, _, _ := strings.Cut(out, "\n")
	i := strings.Index(line, marker)
	if i < 0 {
		return "", fmt.Errorf("parse qemu --version output: no %q in %q", strings.TrimSpace(marker), line)
	}
	rest := line[i+len(marker):]
	if j := strings.IndexAny(rest, " \t\r("); j >= 0 {
		rest = rest[:j]
	}
	if _, _, _, err := ParseVersion(rest); err != nil {
		return "", err
	}
	return rest, nil
}

// Quote returns argv as a shell command line that can be pasted into sh.
func Quote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	safe := true
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-+=:,./@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// PVHBoot reports whether QEMU boots kernel on arch through the PVH
// option ROM: an x86 kernel that is an ELF file (a bzImage is not). A
// record/replay of such a guest runs with icount's sleep on (see rrIcount),
// so its virtual clock follows the wall clock while the vCPU is idle.
func PVHBoot(arch, kernel string) bool {
	if (arch != "x86_64" && arch != "i386") || kernel == "" {
		return false
	}
	f, err := os.Open(kernel)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false
	}
	return string(magic[:]) == "\x7fELF"
}

// isNetOption reports whether a QEMU argument configures networking.
func isNetOption(arg string) bool {
	switch arg {
	case "-net", "-nic", "-netdev", "--net", "--nic", "--netdev":
		return true
	}
	return false
}
