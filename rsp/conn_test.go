package rsp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func exch(c *Client, ctx context.Context, req string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, "test", req)
	return string(rep), err
}

func TestFraming(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("ab", 3000)
	tests := []struct {
		name    string
		opts    []Option
		script  func(s *fakeStub)
		want    string
		wantErr error
		check   func(t *testing.T, s *fakeStub)
	}{
		{
			name:   "plain",
			script: func(s *fakeStub) { s.expect("g"); s.reply("0011") },
			want:   "0011",
		},
		{
			name: "split reads",
			script: func(s *fakeStub) {
				s.expect("g")
				for _, b := range []byte("+" + pkt("deadbeef")) {
					s.write(string(b))
					time.Sleep(time.Millisecond)
				}
			},
			want: "deadbeef",
		},
		{
			name:   "escapes",
			script: func(s *fakeStub) { s.expect("q"); s.reply("a}\x03b}\x04c}]d}\x0a") },
			want:   "a#b$c}d*",
		},
		{
			name:   "run-length",
			script: func(s *fakeStub) { s.expect("m0,4"); s.reply("0* 1*!") },
			want:   "000011111",
		},
		{
			name:   "garbage before reply",
			script: func(s *fakeStub) { s.expect("g"); s.write("+\x00junk\r\n" + pkt("ok1")) },
			want:   "ok1",
		},
		{
			name: "bad checksum from peer is NAKed and resent",
			script: func(s *fakeStub) {
				s.expect("g")
				s.write("+$1234#00")
				if b := s.readByte(); b != '-' {
					s.t.Errorf("client sent %q after corrupt packet, want '-'", b)
				}
				s.write(pkt("1234"))
			},
			want: "1234",
		},
		{
			name:    "corrupt packets give up after retries",
			opts:    []Option{WithRetries(2)},
			script:  func(s *fakeStub) { s.expect("g"); s.write("+$1#00$1#00$1#00"); s.read() },
			wantErr: ErrRetries,
		},
		{
			name: "NAK from stub retransmits",
			script: func(s *fakeStub) {
				s.expect("g")
				s.write("-")
				s.expect("g")
				s.write("-")
				s.expect("g")
				s.reply("77")
			},
			want: "77",
		},
		{
			name: "NAK bound",
			opts: []Option{WithRetries(2)},
			script: func(s *fakeStub) {
				for i := 0; i < 3; i++ {
					if !s.expect("g") {
						return
					}
					s.write("-")
				}
				s.read()
			},
			wantErr: ErrRetries,
		},
		{
			name:    "oversized reply is bounded",
			opts:    []Option{WithMaxPacket(1024)},
			script:  func(s *fakeStub) { s.expect("g"); s.reply(big) },
			wantErr: ErrTooLarge,
		},
		{
			name:    "run-length bomb is bounded",
			opts:    []Option{WithMaxPacket(1024)},
			script:  func(s *fakeStub) { s.expect("g"); s.reply("0" + strings.Repeat("*~", 20)) },
			wantErr: ErrTooLarge,
		},
		{
			name:    "unsupported",
			script:  func(s *fakeStub) { s.expect("g"); s.reply("") },
			wantErr: ErrUnsupported,
		},
		{
			name:    "error reply",
			script:  func(s *fakeStub) { s.expect("g"); s.reply("E14") },
			wantErr: ErrRefused,
		},
		{
			name:    "peer closes mid-packet",
			script:  func(s *fakeStub) { s.expect("g"); s.write("+$0011") },
			wantErr: ErrClosed,
		},
		{
			name:    "peer closes before reply",
			script:  func(s *fakeStub) { s.expect("g") },
			wantErr: ErrClosed,
		},
		{
			name:    "dead socket hits request timeout",
			opts:    []Option{WithRequestTimeout(200 * time.Millisecond)},
			script:  func(s *fakeStub) { s.expect("g"); s.read() },
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "malformed escape",
			script:  func(s *fakeStub) { s.expect("g"); s.reply("ab}") },
			wantErr: ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := rawClient(t, tt.script, tt.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := "g"
			if tt.name == "escapes" {
				req = "q"
			}
			if tt.name == "run-length" {
				req = "m0,4"
			}
			got, err := exch(c, ctx, req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
					if _, err := exch(c, ctx, "g"); !errors.Is(err, ErrClosed) {
						t.Errorf("request after a desynchronising error = %v, want ErrClosed", err)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestProtocolError(t *testing.T) {
	t.Parallel()
	c := rawClient(t, func(s *fakeStub) { s.expect("m10,4"); s.reply("E22") })
	_, err := c.ReadMemory(context.Background(), 0x10, 4)
	var pe *ProtocolError
	var me *MemoryError
	if !errors.As(err, &pe) || pe.Code != 0x22 || pe.Packet != "m10,4" || !errors.As(err, &me) || me.Addr != 0x10 {
		t.Fatalf("err = %#v", err)
	}
	if errors.Is(err, ErrUnsupported) {
		t.Errorf("E22 matches ErrUnsupported")
	}
	for _, want := range []string{"m10,4", "E22", "0x10"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err.Error(), want)
		}
	}
}

func TestContextCancelInFlight(t *testing.T) {
	t.Parallel()
	c := rawClient(t, func(s *fakeStub) { s.expect("g"); s.read() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := exch(c, ctx, "g")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := exch(c, context.Background(), "g"); !errors.Is(err, ErrClosed) {
		t.Errorf("after cancel: %v, want ErrClosed", err)
	}
}

func TestNeverSendsOversizedPacket(t *testing.T) {
	t.Parallel()
	const limit = 0x100
	data := bytes.Repeat([]byte{0xa5}, 1000)
	var sizes []int
	c := rawClient(t, func(s *fakeStub) {
		total := 0
		for total < len(data) {
			p, ok := s.read()
			if !ok {
				return
			}
			sizes = append(sizes, len(p)+4)
			_, hexdata, _ := strings.Cut(p, ":")
			total += len(hexdata) / 2
			s.reply("OK")
		}
	})
	c.cn.maxOut = limit - packetSlack
	if err := c.WriteMemory(context.Background(), 0x1000, data); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, n := range sizes {
		if n > limit-packetSlack {
			t.Errorf("sent a %d-byte packet, limit %d", n, limit)
		}
	}
	if len(sizes) < 4 {
		t.Errorf("1000 bytes in %d packets", len(sizes))
	}
	// A single request that cannot fit is refused before it is sent.
	c2 := rawClient(t, func(s *fakeStub) {})
	c2.cn.maxOut = 16
	if _, err := exch(c2, context.Background(), strings.Repeat("q", 40)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized request: %v", err)
	}
}

func TestWaitSkipsConsoleAndAcceptsUnsolicitedStop(t *testing.T) {
	t.Parallel()
	c := rawClient(t, func(s *fakeStub) {
		s.expect("c")
		s.write("+" + pkt("O68690a"))
		// While "running" the client must send nothing (QEMU would stop).
		_ = s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if b, err := s.r.Peek(1); err == nil {
			s.t.Errorf("client sent %q while the target ran", b)
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		s.write(pkt("T02thread:p01.01;"))
		// Acks for both arrive only with the next request, once stopped.
		s.expect("c")
		if s.acks != 2 {
			s.t.Errorf("client sent %d acks before its next request, want 2", s.acks)
		}
		s.write("+" + pkt("W2a;process:1"))
		s.read()
	})
	ctx := context.Background()
	stop, err := c.Continue(ctx)
	if err != nil || stop.Signal != 2 || stop.Thread != "p01.01" {
		t.Fatalf("stop = %+v, %v", stop, err)
	}
	if string(c.Console()) != "hi\n" {
		t.Errorf("console = %q", c.Console())
	}
	stop, err = c.Continue(ctx)
	if err != nil || stop.Kind != 'W' || stop.ExitCode != 42 {
		t.Fatalf("stop = %+v, %v", stop, err)
	}
	_, err = c.Step(ctx)
	var ee *ExitError
	if !errors.Is(err, ErrClosed) || !errors.As(err, &ee) || ee.Stop.ExitCode != 42 {
		t.Errorf("after W: %v", err)
	}
}

func TestMonitorAndNoAck(t *testing.T) {
	t.Parallel()
	nc := runStub(t, func(s *fakeStub) {
		s.expect("qSupported:multiprocess+;vContSupported+")
		s.reply("PacketSize=200;qXfer:features:read-")
		s.expect("QStartNoAckMode")
		s.reply("OK")
		s.expect("?")
		s.write(pkt("S05")) // no acks from here on
		s.expect("qRcmd,6869")
		s.write(pkt("O6f6e65") + pkt("O2074776f") + pkt("OK"))
		s.read()
		if s.acks != 2 {
			s.t.Errorf("client sent %d acks, want 2 (qSupported reply and the OK to QStartNoAckMode)", s.acks)
		}
	})
	c, err := New(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.cn.maxOut != 0x200-packetSlack || c.Layout().Arch != "" {
		t.Errorf("maxOut %d layout %+v", c.cn.maxOut, c.Layout())
	}
	out, err := c.Monitor(context.Background(), "hi")
	if err != nil || out != "one two" {
		t.Errorf("monitor = %q, %v", out, err)
	}
	c.Close()
}

func TestCloseUnblocksRequest(t *testing.T) {
	t.Parallel()
	c := rawClient(t, func(s *fakeStub) { s.expect("g"); s.read() })
	time.AfterFunc(100*time.Millisecond, func() { c.Close() })
	if _, err := exch(c, context.Background(), "g"); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if _, err := c.ReadRegisters(context.Background()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no layout: %v", err)
	}
}

func TestConcurrentRequestsAreSerialised(t *testing.T) {
	t.Parallel()
	const n = 20
	c := rawClient(t, func(s *fakeStub) {
		for i := 0; i < n; i++ {
			p, ok := s.read()
			if !ok {
				return
			}
			s.reply("r" + p) // echo: a mixed-up pairing would show
		}
	})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			req := "q" + strings.Repeat("x", i)
			got, err := exch(c, context.Background(), req)
			if err == nil && got != "r"+req {
				err = errors.New("reply " + got + " to " + req)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if c.Packets() != n {
		t.Errorf("packets = %d", c.Packets())
	}
}
