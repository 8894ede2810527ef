package qemu

import (
	"slices"
	"strings"
	"testing"
)

func TestGDBChardev(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		filename, network, addr string
		connected, ok           bool
	}{
		{"disconnected:unix:/tmp/x/gdb.sock,server=on", "unix", "/tmp/x/gdb.sock", false, true},
		{"unix:/tmp/x/gdb.sock,server=on", "unix", "/tmp/x/gdb.sock", true, true},
		{"disconnected:tcp:0.0.0.0:1234,server=on", "tcp", "127.0.0.1:1234", false, true},
		{"tcp:127.0.0.1:1234,server=on <-> 127.0.0.1:40000", "tcp", "127.0.0.1:1234", true, true},
		{"disconnected:tcp:[::]:1234,server=on", "tcp", "127.0.0.1:1234", false, true},
		{"pty:/dev/pts/3", "", "", false, false},
		{"disconnected:unix:/tmp/x/dbg.sock", "", "", false, false}, // a client socket
		{"unix:", "unix", "", true, true},                           // a client socket, connected
		{"disconnected:unix:/tmp/x/gdb.sock,server", "unix", "/tmp/x/gdb.sock", false, true},
		{"gdb", "", "", false, false},
	} {
		n, a, c, ok := gdbChardev(tc.filename)
		if n != tc.network || a != tc.addr || c != tc.connected || ok != tc.ok {
			t.Errorf("gdbChardev(%q) = %q %q %v %v, want %q %q %v %v", tc.filename, n, a, c, ok, tc.network, tc.addr, tc.connected, tc.ok)
		}
	}
}

// FuzzGDBChardev: any filename query-chardev may report parses without a
// panic, and what parses is a unix path or a host:port.
func FuzzGDBChardev(f *testing.F) {
	for _, s := range []string{"disconnected:unix:/tmp/x/gdb.sock,server=on", "tcp:127.0.0.1:1234,server=on <-> 127.0.0.1:40000",
		"disconnected:tcp:[::]:1234,server=on", "pty:/dev/pts/3", "", "unix:", "tcp::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, a, _, ok := gdbChardev(s)
		if !ok {
			if n != "" || a != "" {
				t.Errorf("%q: not ok but %q %q", s, n, a)
			}
			return
		}
		if n != "unix" && n != "tcp" {
			t.Errorf("%q: network %q", s, n)
		}
	})
}

func TestGDBChardevName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		name string
		ok   bool
	}{
		{[]string{"qemu", "-chardev", "socket,id=dbg,path=/x", "-gdb", "chardev:dbg"}, "dbg", true},
		{[]string{"qemu", "--gdb", "chardev:x"}, "x", true},
		{[]string{"qemu", "-gdb", "chardev:x", "-gdb", "tcp::1234"}, "", false},
		{[]string{"qemu", "-gdb", "tcp::1", "-gdb", "chardev:y"}, "y", true},
		{[]string{"qemu", "-s"}, "", false},
		{[]string{"qemu", "-gdb"}, "", false},
		{[]string{"qemu", "-kernel", "k"}, "", false},
		{nil, "", false},
	} {
		name, ok := gdbChardevName(tc.args)
		if name != tc.name || ok != tc.ok {
			t.Errorf("gdbChardevName(%q) = %q %v, want %q %v", tc.args, name, ok, tc.name, tc.ok)
		}
	}
}

// FuzzGDBChardevName: any command line (NUL-separated, as /proc shows it)
// parses without a panic, and a name found is what follows "chardev:" in
// one of its arguments.
func FuzzGDBChardevName(f *testing.F) {
	for _, s := range []string{"qemu\x00-gdb\x00chardev:dbg", "qemu\x00-s", "qemu\x00-gdb", "\x00\x00-gdb\x00chardev:", "--gdb\x00chardev:a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		name, ok := gdbChardevName(args)
		if !ok {
			if name != "" {
				t.Errorf("%q: not ok but %q", args, name)
			}
			return
		}
		if !slices.Contains(args, "chardev:"+name) {
			t.Errorf("%q: name %q in no argument", args, name)
		}
	})
}

func TestSocketInode(t *testing.T) {
	t.Parallel()
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000 03:00000471 00000000     0        0 0 3 0000000000000000
`
	for _, tc := range []struct {
		lport, rport int
		want         string
	}{
		{0x1f90, 0xd431, "222"}, // QEMU's end of our connection
		{0xd431, 0x1f90, "333"}, // ours
		{0x1f90, 0xd432, ""},    // TIME_WAIT: no inode
		{0x1f90, 0x1234, ""},
	} {
		if got := socketInode(table, tc.lport, tc.rport); got != tc.want {
			t.Errorf("socketInode(%d, %d) = %q, want %q", tc.lport, tc.rport, got, tc.want)
		}
	}
	if got := socketInode("garbage\n1: x y\n", 1, 2); got != "" {
		t.Errorf("garbage: %q", got)
	}
}

// FuzzSocketInode: any /proc/net/tcp text parses without a panic, and an
// inode found is one of its fields.
func FuzzSocketInode(f *testing.F) {
	f.Add("  sl  local_address rem_address   st\n   1: 0100007F:1F90 0100007F:D431 01 0:0 00:0 0 1000 0 222 1\n", 0x1f90, 0xd431)
	f.Add("1: :: :: 01 a b c d e f\n", 0, 0)
	f.Add("", 1, 2)
	f.Fuzz(func(t *testing.T, table string, lport, rport int) {
		got := socketInode(table, lport, rport)
		if got != "" && !slices.Contains(strings.Fields(table), got) {
			t.Errorf("inode %q is no field of the table", got)
		}
	})
}
