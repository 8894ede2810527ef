package qemu_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu"
)

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

// fakeServer runs a scripted QMP server on one end of a pipe. handle gets
// each request after qmp_capabilities and writes whatever it likes.
func fakeServer(t *testing.T, handle func(w *bufio.Writer, execute string, id json.RawMessage)) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		w := bufio.NewWriter(server)
		r := bufio.NewReader(server)
		fmt.Fprintln(w, greeting)
		w.Flush()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var req struct {
				Execute string          `json:"execute"`
				ID      json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal(line, &req); err != nil {
				return
			}
			if req.Execute == "qmp_capabilities" {
				fmt.Fprintf(w, `{"return": {}, "id": %s}`+"\n", req.ID)
			} else {
				handle(w, req.Execute, req.ID)
			}
			if w.Flush() != nil {
				return
			}
		}
	}()
	return client
}

func connect(t *testing.T, conn net.Conn) *qemu.QMP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := qemu.ConnectQMP(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestQMPEventsNeverStallReplies floods events ahead of every reply and
// never reads them: replies must still arrive and excess events are counted.
func TestQMPEventsNeverStallReplies(t *testing.T) {
	t.Parallel()
	const flood = 3 * qemu.EventBuffer
	q := connect(t, fakeServer(t, func(w *bufio.Writer, execute string, id json.RawMessage) {
		for k := 0; k < flood; k++ {
			fmt.Fprintf(w, `{"timestamp": {"seconds": 1, "microseconds": %d}, "event": "STOP"}`+"\n", k)
		}
		fmt.Fprintf(w, `{"return": {"status": "paused", "running": false}, "id": %s}`+"\n", id)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n := 0; n < 3; n++ {
		var st struct{ Status string }
		if err := q.Execute(ctx, "query-status", nil, &st); err != nil {
			t.Fatalf("Execute %d: %v", n, err)
		}
		if st.Status != "paused" {
			t.Errorf("status = %q", st.Status)
		}
	}
	if got, want := q.DroppedEvents(), uint64(3*flood-qemu.EventBuffer); got != want {
		t.Errorf("DroppedEvents = %d, want %d", got, want)
	}
	ev := <-q.Events()
	if ev.Name != "STOP" || ev.Timestamp.Unix() != 1 {
		t.Errorf("first event = %+v", ev)
	}
}

func TestQMPErrorReply(t *testing.T) {
	t.Parallel()
	q := connect(t, fakeServer(t, func(w *bufio.Writer, execute string, id json.RawMessage) {
		fmt.Fprintf(w, `{"id": %s, "error": {"class": "GenericError", "desc": "no"}}`+"\n", id)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := q.Execute(ctx, "stop", nil, nil)
	var qe *qemu.QMPError
	if !errors.As(err, &qe) || qe.Class != "GenericError" || qe.Desc != "no" || qe.Command != "stop" {
		t.Fatalf("err = %v, want *QMPError GenericError", err)
	}
}

// TestQMPHungServer checks that a server that never replies cannot block
// Execute beyond its context, and that Close fails later commands.
func TestQMPHungServer(t *testing.T) {
	t.Parallel()
	q := connect(t, fakeServer(t, func(*bufio.Writer, string, json.RawMessage) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := q.Execute(ctx, "query-status", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Execute(cctx, "query-status", nil, nil) }()
	ccancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Execute(context.Background(), "query-status", nil, nil); !errors.Is(err, qemu.ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed", err)
	}
	if _, ok := <-q.Events(); ok {
		t.Error("Events not closed after Close")
	}
}

// TestQMPCloseUnblocksPending checks that a command waiting without a
// deadline returns when the connection is closed.
func TestQMPCloseUnblocksPending(t *testing.T) {
	t.Parallel()
	q := connect(t, fakeServer(t, func(*bufio.Writer, string, json.RawMessage) {}))
	done := make(chan error, 1)
	go func() { done <- q.Execute(context.Background(), "query-status", nil, nil) }()
	time.Sleep(10 * time.Millisecond) // let the request be sent; the test is correct either way
	q.Close()
	select {
	case err := <-done:
		if !errors.Is(err, qemu.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Execute still blocked after Close")
	}
}

func TestQMPGreetingTimeout(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := qemu.ConnectQMP(ctx, client, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}
