package rsp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fakeStub is the scripted peer of a client in tests: it reads the client's
// packets and writes whatever bytes the script wants, corrupt or not.
type fakeStub struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	naks int // '-' bytes seen from the client
	acks int // '+' bytes seen from the client
}

// socketPair returns two connected unix stream sockets.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "sock"+strconv.Itoa(i))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatalf("fileconn: %v", err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// runStub starts script on the stub side and returns the client side. The
// script's goroutine ends before the test does.
func runStub(t *testing.T, script func(s *fakeStub)) net.Conn {
	t.Helper()
	a, b := socketPair(t)
	s := &fakeStub{t: t, conn: b, r: bufio.NewReader(b)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		_ = b.SetDeadline(time.Now().Add(20 * time.Second))
		script(s)
	}()
	t.Cleanup(func() {
		a.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("stub script did not finish")
		}
	})
	return a
}

// rawClient returns a client over a scripted stub, without the attach sequence.
func rawClient(t *testing.T, script func(s *fakeStub), opts ...Option) *Client {
	t.Helper()
	nc := runStub(t, script)
	c, err := New(context.Background(), nc, append([]Option{WithoutAttach(), WithRequestTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.layout = &Layout{}
	t.Cleanup(func() { c.Close() })
	return c
}

// read returns the next packet payload from the client (checksum checked),
// counting acks and NAKs on the way. It returns "" and false at EOF.
func (s *fakeStub) read() (string, bool) {
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return "", false
		}
		switch b {
		case '+':
			s.acks++
			continue
		case '-':
			s.naks++
			continue
		case '$':
		default:
			if b == 0x03 {
				return "\x03", true
			}
			s.t.Errorf("stub: stray byte %q", b)
			continue
		}
		body, err := s.r.ReadString('#')
		if err != nil {
			return "", false
		}
		body = body[:len(body)-1]
		cs := make([]byte, 2)
		if _, err := s.r.Read(cs[:1]); err != nil {
			return "", false
		}
		if _, err := s.r.Read(cs[1:]); err != nil {
			return "", false
		}
		var sum byte
		for i := 0; i < len(body); i++ {
			sum += body[i]
		}
		if fmt.Sprintf("%02x", sum) != string(cs) {
			s.t.Errorf("stub: bad checksum from client on %q", body)
		}
		return body, true
	}
}

// expect reads a packet and fails the test unless it equals want.
func (s *fakeStub) expect(want string) bool {
	got, ok := s.read()
	if !ok || got != want {
		s.t.Errorf("stub: got packet %q (ok=%v), want %q", got, ok, want)
		return false
	}
	return true
}

// write sends raw bytes.
func (s *fakeStub) write(raw string) {
	if _, err := s.conn.Write([]byte(raw)); err != nil {
		s.t.Logf("stub write: %v", err)
	}
}

// reply acks the request and sends payload framed (unescaped, as given).
func (s *fakeStub) reply(payload string) { s.write("+" + pkt(payload)) }

// pkt frames a payload verbatim: "$payload#cc" (no escaping is applied).
func pkt(payload string) string {
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	return fmt.Sprintf("$%s#%02x", payload, sum)
}

// readAck reads one byte and reports whether it is '+'.
func (s *fakeStub) readByte() byte {
	b, err := s.r.ReadByte()
	if err != nil {
		return 0
	}
	return b
}
