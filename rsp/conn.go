package rsp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Framing limits and defaults.
const (
	// defaultMaxIn bounds the raw and the decoded size of one received packet.
	defaultMaxIn = 1 << 20
	// defaultPacketSize is assumed until qSupported names the stub's size.
	defaultPacketSize = 4096
	// packetSlack is kept free below the stub's PacketSize: QEMU needs room
	// for the frame and a terminating NUL, and drops larger packets silently.
	packetSlack = 16
	// defaultRetries bounds retransmissions after a NAK and NAKs sent for
	// corrupt packets, per request.
	defaultRetries = 3
)

// conn is the framing layer: "$payload#cc" packets, '+'/'-' acks, bounded
// retransmission, '}' escapes and '*' run-length decoding. It is not safe
// for concurrent use; Client serialises access.
type conn struct {
	r        *bufio.Reader
	w        io.Writer
	noAck    bool
	maxOut   int // largest framed packet we may send, in bytes
	maxIn    int // largest packet we accept, raw or decoded
	retries  int
	tr       io.Writer
	start    time.Time
	last     []byte // last framed packet sent (for retransmission)
	wbuf     []byte
	raw      []byte
	dec      []byte
	ackDue   int  // acks owed for received packets
	holdAcks bool // the target runs: owe acks instead of sending them
	awaitAck bool // our last packet is not acknowledged yet
	inPacket bool // a packet is partially read; the stream is out of sync
}

func newConn(r io.Reader, w io.Writer) *conn {
	return &conn{
		r:       bufio.NewReaderSize(r, 64<<10),
		w:       w,
		maxOut:  defaultPacketSize - packetSlack,
		maxIn:   defaultMaxIn,
		retries: defaultRetries,
		start:   time.Now(),
	}
}

// escaped reports whether b must be escaped with '}' inside a packet.
func escaped(b byte) bool { return b == '$' || b == '#' || b == '}' || b == '*' }

// frame encodes payload as "$payload#cc", escaping '$', '#', '}' and '*'.
func frame(dst, payload []byte) []byte {
	dst = append(dst, '$')
	var sum byte
	for _, b := range payload {
		if escaped(b) {
			dst = append(dst, '}')
			sum += '}'
			b ^= 0x20
		}
		dst = append(dst, b)
		sum += b
	}
	const hexdig = "0123456789abcdef"
	return append(dst, '#', hexdig[sum>>4], hexdig[sum&15])
}

// send writes one packet, preceded by an owed ack. It refuses packets the
// stub could not hold, since QEMU drops those without a reply.
func (c *conn) send(payload []byte) error {
	c.wbuf = c.wbuf[:0]
	for ; c.ackDue > 0; c.ackDue-- {
		c.wbuf = append(c.wbuf, '+')
	}
	start := len(c.wbuf)
	c.wbuf = frame(c.wbuf, payload)
	if n := len(c.wbuf) - start; n > c.maxOut {
		return fmt.Errorf("send %d-byte packet (stub limit %d): %w", n, c.maxOut, ErrTooLarge)
	}
	c.last = append(c.last[:0], c.wbuf[start:]...)
	c.awaitAck = !c.noAck
	c.trace("->", c.last)
	if _, err := c.w.Write(c.wbuf); err != nil {
		return fmt.Errorf("write: %w", netErr(err))
	}
	return nil
}

// sendByte writes a single out-of-band byte (0x03) with no framing.
func (c *conn) sendByte(b byte) error {
	c.trace("->", []byte{b})
	if _, err := c.w.Write([]byte{b}); err != nil {
		return fmt.Errorf("write: %w", netErr(err))
	}
	return nil
}

// flushAck sends owed acks on their own.
func (c *conn) flushAck() error {
	if c.ackDue == 0 {
		return nil
	}
	n := c.ackDue
	c.ackDue = 0
	if _, err := c.w.Write(bytes.Repeat([]byte{'+'}, n)); err != nil {
		return fmt.Errorf("write ack: %w", netErr(err))
	}
	return nil
}

// recv reads the next packet and returns its decoded payload, valid until
// the next call. It consumes acks for our last packet (retransmitting on
// '-', boundedly), NAKs corrupt packets (boundedly), and skips garbage
// between packets. The ack for the returned packet is owed and sent with
// the next packet, or by the next recv unless acks are held: while the
// target runs any byte but 0x03 would stop QEMU, so acks wait until it
// has stopped.
func (c *conn) recv() ([]byte, error) {
	if !c.holdAcks {
		if err := c.flushAck(); err != nil {
			return nil, err
		}
	}
	naks, resent, garbage := 0, 0, 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("read: %w", netErr(err))
		}
		switch b {
		case '+':
			c.awaitAck = false
			continue
		case '-':
			if !c.awaitAck {
				continue
			}
			if resent >= c.retries {
				return nil, fmt.Errorf("peer rejected packet %d times: %w", resent+1, ErrRetries)
			}
			resent++
			c.trace("->", c.last)
			if _, err := c.w.Write(c.last); err != nil {
				return nil, fmt.Errorf("retransmit: %w", netErr(err))
			}
			continue
		case '$':
		default:
			garbage++
			if garbage > c.maxIn {
				return nil, fmt.Errorf("%d bytes of garbage between packets: %w", garbage, ErrMalformed)
			}
			continue
		}
		c.awaitAck = false // a reply implies our packet arrived
		raw, sumOK, err := c.readBody()
		if err != nil {
			return nil, err
		}
		if !sumOK {
			c.trace("<- (bad checksum)", raw)
			if c.noAck {
				return nil, fmt.Errorf("checksum mismatch in no-ack mode: %w", ErrMalformed)
			}
			if naks >= c.retries {
				return nil, fmt.Errorf("%d corrupt packets in a row: %w", naks+1, ErrRetries)
			}
			naks++
			if _, err := c.w.Write([]byte{'-'}); err != nil {
				return nil, fmt.Errorf("write nak: %w", netErr(err))
			}
			continue
		}
		if c.tr != nil {
			c.trace("<-", append(append([]byte{'$'}, raw...), '#'))
		}
		dec := raw
		if bytes.IndexByte(raw, '}') >= 0 || bytes.IndexByte(raw, '*') >= 0 {
			if dec, err = decode(c.dec[:0], raw, c.maxIn); err != nil {
				return nil, err
			}
			c.dec = dec
		}
		if !c.noAck && c.ackDue < 1<<16 {
			c.ackDue++
		}
		return dec, nil
	}
}

// readBody reads a packet body after '$' up to and including the checksum.
func (c *conn) readBody() (raw []byte, sumOK bool, err error) {
	c.inPacket = true
	raw = c.raw[:0]
	for {
		chunk, err := c.r.ReadSlice('#')
		if err != nil && err != bufio.ErrBufferFull {
			return nil, false, fmt.Errorf("read packet: %w", netErr(err))
		}
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if len(raw)+len(chunk) > c.maxIn {
			return nil, false, fmt.Errorf("packet exceeds %d bytes: %w", c.maxIn, ErrTooLarge)
		}
		raw = append(raw, chunk...)
		if err == nil {
			break
		}
	}
	var cs [2]byte
	for i := range cs {
		if cs[i], err = c.r.ReadByte(); err != nil {
			return nil, false, fmt.Errorf("read checksum: %w", netErr(err))
		}
	}
	c.inPacket = false
	c.raw = raw
	var sum byte
	for _, b := range raw {
		sum += b
	}
	hi, ok1 := unhex1(cs[0])
	lo, ok2 := unhex1(cs[1])
	return raw, ok1 && ok2 && hi<<4|lo == sum, nil
}

// decode undoes '}' escapes and '*' run-length encoding of a packet body,
// appending to dst and never growing past limit bytes.
func decode(dst, raw []byte, limit int) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		switch b {
		case '}':
			i++
			if i >= len(raw) {
				return nil, fmt.Errorf("escape at end of packet: %w", ErrMalformed)
			}
			b = raw[i] ^ 0x20
		case '*':
			i++
			if i >= len(raw) || len(dst) == 0 {
				return nil, fmt.Errorf("run-length marker without operand: %w", ErrMalformed)
			}
			n := int(raw[i]) - 29
			if n < 0 || raw[i] > 126 {
				return nil, fmt.Errorf("bad run-length count %q: %w", raw[i], ErrMalformed)
			}
			if len(dst)+n > limit {
				return nil, fmt.Errorf("decoded packet exceeds %d bytes: %w", limit, ErrTooLarge)
			}
			prev := dst[len(dst)-1]
			for ; n > 0; n-- {
				dst = append(dst, prev)
			}
			continue
		}
		if len(dst) >= limit {
			return nil, fmt.Errorf("decoded packet exceeds %d bytes: %w", limit, ErrTooLarge)
		}
		dst = append(dst, b)
	}
	return dst, nil
}

// DecodePacket decodes one complete framed packet "$body#cc": it checks the
// checksum and undoes escapes and run-length encoding. Leading bytes before
// '$' and trailing bytes after the checksum are errors.
func DecodePacket(b []byte) ([]byte, error) {
	if len(b) < 4 || b[0] != '$' || b[len(b)-3] != '#' {
		return nil, fmt.Errorf("not a framed packet: %w", ErrMalformed)
	}
	body := b[1 : len(b)-3]
	var sum byte
	for _, x := range body {
		if x == '#' || x == '$' {
			return nil, fmt.Errorf("unescaped %q in packet: %w", x, ErrMalformed)
		}
		sum += x
	}
	got, err := strconv.ParseUint(string(b[len(b)-2:]), 16, 8)
	if err != nil {
		return nil, fmt.Errorf("checksum %q: %w", b[len(b)-2:], ErrMalformed)
	}
	if byte(got) != sum {
		return nil, fmt.Errorf("checksum %02x, computed %02x: %w", got, sum, ErrMalformed)
	}
	return decode(nil, body, defaultMaxIn)
}

// trace writes one transcript line: relative time, direction, packet.
func (c *conn) trace(dir string, p []byte) {
	if c.tr == nil {
		return
	}
	fmt.Fprintf(c.tr, "%10.6f %s %s\n", time.Since(c.start).Seconds(), dir, printable(p))
}

// printable quotes non-printable bytes of p for the transcript.
func printable(p []byte) string {
	for _, b := range p {
		if b < 0x20 || b > 0x7e {
			q := strconv.Quote(string(p))
			return q[1 : len(q)-1]
		}
	}
	return string(p)
}
