package qemu

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

var (
	// ErrNotFound is matched by a *NotFoundError when the QEMU binary is
	// not installed.
	ErrNotFound = errors.New("qemu binary not found")
	// ErrKVMUnavailable is returned (wrapped with the reason) when a Spec
	// asks for accel kvm but /dev/kvm cannot be opened read-write.
	ErrKVMUnavailable = errors.New("kvm unavailable")
	// ErrBadSpec is wrapped by every error Spec.Command returns for a Spec
	// that cannot be turned into a command line.
	ErrBadSpec = errors.New("invalid qemu spec")
	// ErrClosed is returned by QMP operations on a closed connection.
	ErrClosed = errors.New("qmp connection closed")
)

// NotFoundError reports a QEMU binary missing from PATH, and names the
// Debian package that provides it, or a binary given as a path that does
// not exist or cannot be run. It matches ErrNotFound through errors.Is.
type NotFoundError struct {
	Binary  string
	Package string
	Err     error
}

// Error implements error.
func (e *NotFoundError) Error() string {
	if strings.ContainsRune(e.Binary, '/') {
		// A path is not looked up in PATH: say what is wrong with it.
		msg := "qemu binary " + e.Binary
		var ee *exec.Error
		switch {
		case errors.As(e.Err, &ee) && ee.Err != nil:
			msg += ": " + ee.Err.Error()
		case e.Err != nil:
			msg += ": " + e.Err.Error()
		default:
			msg += ": not found"
		}
		return msg
	}
	msg := e.Binary + " not found in PATH"
	if e.Package != "" {
		msg += " (install Debian package " + e.Package + ")"
	}
	return msg
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Unwrap returns the underlying lookup error.
func (e *NotFoundError) Unwrap() error { return e.Err }

// StartError reports that QEMU exited or failed during start-up. Its
// message includes what QEMU wrote to stderr.
type StartError struct {
	Argv     []string
	Stderr   string
	ExitCode int // -1 when QEMU had not exited or was killed by a signal
	Pid      int // 0 if the process never started; it is reaped either way
	Err      error
}

// Error implements error. QEMU's own stderr comes first: it says why
// ("unable to find CPU model 'qemu65'"), where the error lockstep saw
// while waiting ("qmp greeting: … connection reset by peer") only says
// that it went away.
func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("qemu start")
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit status %d)", e.ExitCode)
	}
	stderr := strings.TrimSpace(e.Stderr)
	switch {
	case stderr != "" && e.Err != nil:
		fmt.Fprintf(&b, ": %s\n(then: %s)", stderr, e.Err)
	case stderr != "":
		b.WriteString(": " + stderr)
	case e.Err != nil:
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *StartError) Unwrap() error { return e.Err }

// QMPError is an error reply from QMP: {"error":{"class":..,"desc":..}}.
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

// Error implements error.
func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// DebianPackage names the Debian package that provides qemu-system-<arch>.
func DebianPackage(arch string) string {
	switch arch {
	case "x86_64", "i386":
		return "qemu-system-x86"
	case "aarch64", "arm":
		return "qemu-system-arm"
	case "ppc64", "ppc":
		return "qemu-system-ppc"
	default:
		return "qemu-system-misc"
	}
}
