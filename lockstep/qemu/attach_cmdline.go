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
// end of conn, read from /proc: for a unix socket the peer's credentials
// (SO_PEERCRED) name it, for a loopback TCP connection the process holding
// the socket /proc/net/tcp shows at the other end. It fails where /proc
// does not show it (another user's process, another host, a container).
func peerCommandLine(conn net.Conn) ([]string, bool) {
	if tc, ok := conn.(*net.TCPConn); ok {
		pid, ok := tcpPeerPID(tc)
		if !ok {
			return nil, false
		}
		return commandLine(pid)
	}
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
	return commandLine(int(cred.Pid))
}

// commandLine reads a process's arguments from /proc.
func commandLine(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00"), true
}

// tcpPeerPID finds the process holding the other end of a loopback TCP
// connection: the socket whose local port is conn's remote port and whose
// remote port is conn's local port, by its inode in /proc/net/tcp{,6},
// then the process with that socket open.
func tcpPeerPID(conn *net.TCPConn) (int, bool) {
	local, ok1 := conn.LocalAddr().(*net.TCPAddr)
	remote, ok2 := conn.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || !remote.IP.IsLoopback() {
		return 0, false
	}
	inode := ""
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if inode = socketInode(string(b), remote.Port, local.Port); inode != "" {
			break
		}
	}
	if inode == "" {
		return 0, false
	}
	want := "socket:[" + inode + "]"
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir("/proc/" + p.Name() + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); err == nil && l == want {
				return pid, true
			}
		}
	}
	return 0, false
}

// socketInode returns the inode of the socket in a /proc/net/tcp table
// with local port lport and remote port rport, or "".
func socketInode(table string, lport, rport int) string {
	port := func(addr string) int {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return -1
		}
		n, err := strconv.ParseUint(addr[i+1:], 16, 16)
		if err != nil {
			return -1
		}
		return int(n)
	}
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[0] == "sl" {
			continue
		}
		if port(f[1]) == lport && port(f[2]) == rport && f[9] != "0" {
			return f[9]
		}
	}
	return ""
}
