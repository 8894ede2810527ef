package qemu

import "testing"

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
