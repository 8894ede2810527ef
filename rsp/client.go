package rsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Option configures a Client.
type Option func(*Client)

// WithTranscript logs every packet sent ("->") and received ("<-"), one per
// line, prefixed with the seconds since the connection was made.
func WithTranscript(w io.Writer) Option { return func(c *Client) { c.cn.tr = w } }

// WithRetries bounds retransmissions after a NAK, and NAKs sent for corrupt
// packets, per request (default 3).
func WithRetries(n int) Option {
	return func(c *Client) {
		if n >= 0 {
			c.cn.retries = n
		}
	}
}

// WithMaxPacket bounds the size of a received packet, raw or decoded
// (default 1 MiB). Larger packets fail with ErrTooLarge.
func WithMaxPacket(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.cn.maxIn = n
		}
	}
}

// WithRequestTimeout bounds each request/reply exchange whose context has
// no earlier deadline (default 10s). Waits for stop replies are bounded by
// their context only.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.reqTimeout = d
		}
	}
}

// WithoutAttach makes New skip the attach sequence (qSupported,
// QStartNoAckMode, target.xml, '?', 'g'); for tests and raw use.
func WithoutAttach() Option { return func(c *Client) { c.noAttach = true } }

// Client is a GDB remote protocol client for one stub connection. It is
// safe for concurrent use, but it keeps one request in flight per
// connection: a mutex serialises requests, so concurrent callers queue.
// Close may be called at any time and unblocks a pending request.
type Client struct {
	mu         sync.Mutex
	nc         net.Conn
	cn         *conn
	reqTimeout time.Duration
	noAttach   bool

	closed  atomic.Bool
	broken  error      // set when the stream is out of sync; further calls fail
	exited  *ExitError // set after a 'W' or 'X' stop reply
	running bool

	supported map[string]string
	layout    *Layout
	initial   StopReply
	phyMode   int // -1 unknown, 0 or 1
	packets   int
	console   []byte
}

// Dial connects to a stub ("tcp", "host:port" or "unix", "/path") and
// attaches as New does.
func Dial(ctx context.Context, network, address string, opts ...Option) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("rsp: dial %s: %w", address, err)
	}
	c, err := New(ctx, nc, opts...)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// New attaches to a stub over an established connection: 'qSupported',
// 'QStartNoAckMode' (QEMU answers empty, so acks stay on), the target
// description through 'qXfer:features:read', one '?' (in QEMU it removes
// every breakpoint, so it is sent only here) and one 'g' to learn which
// registers the 'g' packet holds. On error the connection is closed.
func New(ctx context.Context, nc net.Conn, opts ...Option) (*Client, error) {
	c := &Client{nc: nc, cn: newConn(nc, nc), reqTimeout: 10 * time.Second, phyMode: -1}
	for _, o := range opts {
		o(c)
	}
	if c.noAttach {
		return c, nil
	}
	if err := c.attach(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("rsp: attach: %w", err)
	}
	return c, nil
}

func (c *Client) attach(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, "qSupported", "qSupported:multiprocess+;vContSupported+")
	if err != nil {
		return err
	}
	c.supported = parseSupported(string(rep))
	if ps, ok := c.supported["PacketSize"]; ok {
		if n, err := parseHex(ps); err == nil && n > 64 && n < 1<<24 {
			c.cn.maxOut = int(n) - packetSlack
		}
	}
	rep, err = c.exchange(ctx, "no-ack mode", "QStartNoAckMode")
	if err == nil && string(rep) == "OK" {
		if err := c.cn.flushAck(); err != nil {
			return err
		}
		c.cn.noAck = true
	} else if err != nil && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrRefused) {
		return err
	}
	if v := c.supported["qXfer:features:read"]; v == "+" {
		xml, err := c.readTargetXMLLocked(ctx)
		if err != nil {
			return err
		}
		c.layout = xml
	} else {
		c.layout = &Layout{}
	}
	rep, err = c.exchange(ctx, "query stop", "?")
	if err != nil {
		return err
	}
	if c.initial, err = ParseStopReply(rep); err != nil {
		return fmt.Errorf("initial stop reply: %w", err)
	}
	if c.initial.Exited() {
		c.exited = &ExitError{Stop: c.initial}
		return c.exited
	}
	if len(c.layout.Registers) > 0 {
		rep, err := c.exchange(ctx, "read registers", "g")
		if err != nil {
			return err
		}
		c.layout.assignOffsets(len(rep) / 2)
	}
	return nil
}

// Close closes the connection without detaching: QEMU keeps the guest in
// whatever state it is (a stopped guest stays stopped). It unblocks a
// request in flight.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}

// Layout returns the register layout from the target description.
func (c *Client) Layout() *Layout { return c.layout }

// Supported returns the features from the stub's qSupported reply; "+" and
// "-" features map to "+" and "-", name=value features to the value.
func (c *Client) Supported() map[string]string { return c.supported }

// InitialStop returns the stop reply to the '?' sent at attach.
func (c *Client) InitialStop() StopReply { return c.initial }

// Packets returns the number of request round trips so far.
func (c *Client) Packets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets
}

// Running reports whether the client resumed the target and has not seen
// it stop since.
func (c *Client) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// usable reports why no request can be made now; mu must be held.
func (c *Client) usable() error {
	switch {
	case c.exited != nil:
		return c.exited
	case c.closed.Load():
		return ErrClosed
	case c.broken != nil:
		return fmt.Errorf("%w: connection unusable after: %w", ErrClosed, c.broken)
	}
	return nil
}

// watch arms ctx's deadline (or the fallback) on the socket and makes
// cancellation interrupt a blocked read. The returned func disarms it.
func (c *Client) watch(ctx context.Context, fallback time.Duration) func() {
	dl, ok := ctx.Deadline()
	if fallback > 0 && (!ok || time.Until(dl) > fallback) {
		dl, ok = time.Now().Add(fallback), true
	}
	if !ok {
		dl = time.Time{}
	}
	_ = c.nc.SetDeadline(dl)
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.nc.SetDeadline(time.Now())
		close(done)
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// fail classifies an I/O error of a request: a context error takes
// precedence over the timeout it caused; a stream left mid-packet or with a
// reply outstanding is marked broken. mu must be held.
func (c *Client) fail(ctx context.Context, op string, err error, desync bool) error {
	if isTimeout(err) {
		if cerr := ctxErr(ctx); cerr != nil {
			err = cerr
		} else {
			err = fmt.Errorf("%w (request timeout %v)", context.DeadlineExceeded, c.reqTimeout)
			desync = true
		}
	}
	if desync || c.cn.inPacket || errors.Is(err, ErrClosed) {
		c.broken = fmt.Errorf("%s: %w", op, err)
		_ = c.Close()
	}
	return fmt.Errorf("rsp: %s: %w", op, err)
}

// exchange sends one request and returns its reply, turning an empty reply
// into ErrUnsupported and "Exx" into *ProtocolError. mu must be held.
func (c *Client) exchange(ctx context.Context, op, req string) ([]byte, error) {
	return c.exchangeBytes(ctx, op, []byte(req))
}

func (c *Client) exchangeBytes(ctx context.Context, op string, req []byte) ([]byte, error) {
	rep, err := c.roundTrip(ctx, op, req)
	if err != nil {
		return nil, err
	}
	if err := replyError(op, req, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// roundTrip sends req and reads one reply packet without interpreting it.
func (c *Client) roundTrip(ctx context.Context, op string, req []byte) ([]byte, error) {
	if err := c.usable(); err != nil {
		return nil, fmt.Errorf("rsp: %s: %w", op, err)
	}
	if c.running {
		return nil, fmt.Errorf("rsp: %s: %w", op, ErrRunning)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rsp: %s: %w", op, err)
	}
	unwatch := c.watch(ctx, c.reqTimeout)
	defer unwatch()
	if err := c.cn.send(req); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("rsp: %s: %w", op, err)
		}
		return nil, c.fail(ctx, op, err, true)
	}
	rep, err := c.cn.recv()
	if err != nil {
		return nil, c.fail(ctx, op, err, true)
	}
	c.packets++
	return rep, nil
}

// replyError maps an empty reply and "Exx" to errors.
func replyError(op string, req, rep []byte) error {
	if len(rep) == 0 {
		return fmt.Errorf("rsp: %s: %w", op, ErrUnsupported)
	}
	if rep[0] == 'E' && (len(rep) == 3 || (len(rep) > 3 && rep[1] == '.')) {
		code := -1
		if n, err := parseHex(string(rep[1:3])); err == nil && len(rep) == 3 {
			code = int(n)
		}
		if code >= 0 || rep[1] == '.' {
			return &ProtocolError{Op: op, Packet: string(req), Code: code}
		}
	}
	return nil
}

// ctxErr returns ctx.Err(), or DeadlineExceeded once ctx's deadline has
// passed (the socket deadline can fire before the context's own timer).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// isTimeout reports whether err is a socket deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// netErr marks end-of-stream and reset errors with ErrClosed.
func netErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
