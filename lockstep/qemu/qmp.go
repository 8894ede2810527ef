package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EventBuffer is the capacity of the QMP event channel.
const EventBuffer = 256

// maxMessage bounds one QMP message (one line of JSON).
const maxMessage = 16 << 20

// Event is an asynchronous QMP event.
type Event struct {
	Name      string
	Data      json.RawMessage
	Timestamp time.Time
}

// Greeting is the QMP server's greeting.
type Greeting struct {
	Version      json.RawMessage `json:"version"`
	Capabilities []string        `json:"capabilities"`
}

// QMP is a QMP client. Replies are matched to commands by id; events go to
// a buffered channel and are dropped (and counted) when it is full, so a
// caller that ignores events never stalls a command reply. It is safe for
// concurrent use.
type QMP struct {
	conn       net.Conn
	transcript io.Writer
	tmu        sync.Mutex // guards transcript

	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex // guards pending, err
	pending map[string]chan reply
	err     error // why the read loop ended

	nextID  atomic.Uint64
	dropped atomic.Uint64
	events  chan Event
	done    chan struct{} // closed when the read loop ends
	once    sync.Once

	// Greeting is what the server sent on connect.
	Greeting Greeting
}

type reply struct {
	ret json.RawMessage
	err *QMPError
}

// message is one decoded line of the QMP wire protocol.
type message struct {
	QMP       *Greeting       `json:"QMP"`
	Return    json.RawMessage `json:"return"`
	Error     *wireError      `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	ID        json.RawMessage `json:"id"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

type wireError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

// parseMessage decodes and classifies one QMP line. Exactly one of a
// greeting, a reply (return or error) or an event must be present.
func parseMessage(line []byte) (message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode qmp message: %w", err)
	}
	kinds := 0
	if m.QMP != nil {
		kinds++
	}
	if m.Return != nil || m.Error != nil {
		kinds++
	}
	if m.Event != "" {
		kinds++
	}
	if kinds != 1 {
		return m, fmt.Errorf("decode qmp message: not exactly one of greeting, reply, event: %.200q", line)
	}
	if m.Return != nil && m.Error != nil {
		return m, fmt.Errorf("decode qmp message: both return and error: %.200q", line)
	}
	return m, nil
}

// ConnectQMP performs the QMP handshake on conn: it reads the greeting and
// negotiates capabilities. ctx bounds the handshake only; afterwards the
// connection lives until Close. transcript, if not nil, receives every
// message sent ("-> ") and received ("<- "). On error conn is closed.
func ConnectQMP(ctx context.Context, conn net.Conn, transcript io.Writer) (*QMP, error) {
	q := &QMP{
		conn:       conn,
		transcript: transcript,
		pending:    make(map[string]chan reply),
		events:     make(chan Event, EventBuffer),
		done:       make(chan struct{}),
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	stop := deadlineFromContext(ctx, conn)
	line, err := readLine(r)
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %w", ctxErr(ctx, err))
	}
	q.logf("<- ", line)
	m, err := parseMessage(line)
	if err == nil && m.QMP == nil {
		err = fmt.Errorf("qmp greeting: unexpected %.200q", line)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	q.Greeting = *m.QMP
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: clear deadline: %w", err)
	}
	go q.readLoop(r)
	if err := q.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		q.Close()
		return nil, fmt.Errorf("qmp handshake: %w", err)
	}
	return q, nil
}

// DialQMP connects to the QMP unix socket at path and performs the
// handshake, all bounded by ctx.
func DialQMP(ctx context.Context, path string, transcript io.Writer) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp dial: %w", err)
	}
	return ConnectQMP(ctx, conn, transcript)
}

// Execute runs a QMP command with optional args (nil for none) and decodes
// its return value into result (nil to discard). An error reply is a
// *QMPError. ctx bounds the wait; an abandoned command's late reply is
// discarded.
func (q *QMP) Execute(ctx context.Context, command string, args any, result any) error {
	id := strconv.FormatUint(q.nextID.Add(1), 10)
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	buf, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: encode: %w", command, err)
	}
	ch := make(chan reply, 1)
	q.mu.Lock()
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	q.pending[id] = ch
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.pending, id)
		q.mu.Unlock()
	}()

	if err := q.write(ctx, buf); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			r.err.Command = command
			return r.err
		}
		if result != nil {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp %s: decode return: %w", command, err)
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-q.done:
		select { // the reply may have raced the close
		case r := <-ch:
			if r.err != nil {
				r.err.Command = command
				return r.err
			}
			if result != nil {
				if err := json.Unmarshal(r.ret, result); err != nil {
					return fmt.Errorf("qmp %s: decode return: %w", command, err)
				}
			}
			return nil
		default:
		}
		return fmt.Errorf("qmp %s: %w", command, q.closeErr())
	}
}

// HMP runs a human monitor command through human-monitor-command and
// returns its text output.
func (q *QMP) HMP(ctx context.Context, cmdline string) (string, error) {
	var out string
	err := q.Execute(ctx, "human-monitor-command", map[string]string{"command-line": cmdline}, &out)
	return out, err
}

// Events returns the event channel. It is buffered (EventBuffer); events
// arriving while it is full are dropped and counted by DroppedEvents. It is
// closed when the connection ends.
func (q *QMP) Events() <-chan Event { return q.events }

// DroppedEvents returns how many events were dropped because the event
// channel was full.
func (q *QMP) DroppedEvents() uint64 { return q.dropped.Load() }

// Done is closed when the connection has ended (Close, EOF or error).
func (q *QMP) Done() <-chan struct{} { return q.done }

// Close closes the connection. Pending commands fail with ErrClosed. It is
// idempotent.
func (q *QMP) Close() error {
	var err error
	q.once.Do(func() {
		q.mu.Lock()
		if q.err == nil {
			q.err = ErrClosed
		}
		q.mu.Unlock()
		err = q.conn.Close()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (q *QMP) closeErr() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		return ErrClosed
	}
	return q.err
}

func (q *QMP) write(ctx context.Context, buf []byte) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	q.logf("-> ", buf)
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Time{}
	}
	if err := q.conn.SetWriteDeadline(dl); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { q.conn.SetWriteDeadline(time.Now()) })
	defer stop()
	if _, err := q.conn.Write(append(buf, '\n')); err != nil {
		return fmt.Errorf("write: %w", ctxErr(ctx, err))
	}
	return nil
}

func (q *QMP) readLoop(r *bufio.Reader) {
	defer close(q.events)
	defer close(q.done)
	for {
		line, err := readLine(r)
		if err != nil {
			q.fail(fmt.Errorf("%w: read: %w", ErrClosed, err))
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		q.logf("<- ", line)
		m, err := parseMessage(line)
		if err != nil {
			q.fail(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.Timestamp = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			select {
			case q.events <- ev:
			default:
				q.dropped.Add(1)
			}
		case m.QMP != nil:
			// A second greeting is harmless; ignore it.
		default:
			var id string
			if err := json.Unmarshal(m.ID, &id); err != nil {
				continue // a reply to nothing we sent; ignore it
			}
			rep := reply{ret: m.Return}
			if m.Error != nil {
				rep.err = &QMPError{Class: m.Error.Class, Desc: m.Error.Desc}
			}
			q.mu.Lock()
			ch := q.pending[id]
			q.mu.Unlock()
			if ch != nil {
				ch <- rep // buffered, one reply per id
			}
		}
	}
}

func (q *QMP) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.conn.Close()
}

func (q *QMP) logf(dir string, line []byte) {
	if q.transcript == nil {
		return
	}
	q.tmu.Lock()
	defer q.tmu.Unlock()
	fmt.Fprintf(q.transcript, "%s%s\n", dir, bytes.TrimRight(line, "\r\n"))
}

// readLine reads one newline-terminated message of at most maxMessage bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > maxMessage {
			return nil, fmt.Errorf("qmp message longer than %d bytes", maxMessage)
		}
		line = append(line, frag...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// deadlineFromContext applies ctx's deadline to conn's reads and makes a
// cancellation interrupt a blocked read. The returned func undoes the
// cancellation hook.
func deadlineFromContext(ctx context.Context, conn net.Conn) func() {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	return func() { stop() }
}

// ctxErr prefers the context's error when a deadline hit was caused by it.
// The socket deadline can fire a moment before the context's own timer, so
// a timeout at or past ctx's deadline counts as DeadlineExceeded.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
	}
	return err
}
