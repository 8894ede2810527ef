package qemu

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// gdbDevices returns the gdbstub devices a QEMU command line asks for:
// the values of -gdb (or --gdb), and "tcp::1234" for -s, in order.
func gdbDevices(args []string) []string {
	var devs []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case name == "s":
			devs = append(devs, "tcp::1234")
		case name == "gdb" && i+1 < len(args):
			i++
			devs = append(devs, args[i])
		}
	}
	return devs
}

// gdbChardevName returns NAME when the command line's last gdbstub device
// is an existing chardev ("-gdb chardev:NAME"), which QEMU reports under
// NAME rather than the label "gdb".
func gdbChardevName(args []string) (string, bool) {
	devs := gdbDevices(args)
	if len(devs) == 0 {
		return "", false
	}
	name, ok := strings.CutPrefix(devs[len(devs)-1], "chardev:")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// peerCommandLine returns the command line of the process at the other
// end of conn, a local unix socket (SO_PEERCRED), read from /proc. It
// fails for other connections and where /proc does not show it.
func peerCommandLine(conn net.Conn) ([]string, bool) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil || cred.Pid <= 0 {
		return nil, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(cred.Pid)) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00"), true
}
