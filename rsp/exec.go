package rsp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// interruptGrace bounds the wait for the stop reply after an interrupt.
const interruptGrace = 2 * time.Second

// maxConsole bounds the console output ('O' packets) kept while running.
const maxConsole = 64 << 10

// Continue resumes all threads with 'c' and waits for the next stop. If ctx
// ends first, it interrupts with 0x03, waits (at most 2s) for that stop and
// returns it together with an error wrapping ctx.Err().
func (c *Client) Continue(ctx context.Context) (StopReply, error) {
	return c.resumeWait(ctx, "continue", "c")
}

// Step single-steps with 's'. In QEMU it steps the current vCPU and lets the
// others run; StepThread steps one vCPU alone.
func (c *Client) Step(ctx context.Context) (StopReply, error) {
	return c.resumeWait(ctx, "step", "s")
}

// StepThread steps only the given thread with 'vCont;s:thread'; the other
// vCPUs stay stopped.
func (c *Client) StepThread(ctx context.Context, thread string) (StopReply, error) {
	return c.resumeWait(ctx, "step thread", "vCont;s:"+thread)
}

// ContinueThread resumes only the given thread with 'vCont;c:thread'.
func (c *Client) ContinueThread(ctx context.Context, thread string) (StopReply, error) {
	return c.resumeWait(ctx, "continue thread", "vCont;c:"+thread)
}

// Resume sends 'c' and returns without waiting; collect the stop with Wait
// or Interrupt. Until then only Wait, Interrupt and Close may be used.
func (c *Client) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumeLocked(ctx, "resume", "c")
}

func (c *Client) resumeLocked(ctx context.Context, op, req string) error {
	if err := c.usable(); err != nil {
		return fmt.Errorf("rsp: %s: %w", op, err)
	}
	if c.running {
		return fmt.Errorf("rsp: %s: %w", op, ErrRunning)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rsp: %s: %w", op, err)
	}
	unwatch := c.watch(ctx, c.reqTimeout)
	defer unwatch()
	if err := c.cn.send([]byte(req)); err != nil {
		return c.fail(ctx, op, err, true)
	}
	c.running = true
	c.cn.holdAcks = true
	c.console = c.console[:0]
	return nil
}

func (c *Client) resumeWait(ctx context.Context, op, req string) (StopReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resumeLocked(ctx, op, req); err != nil {
		return StopReply{}, err
	}
	sr, err := c.waitLocked(ctx, op)
	if err == nil || ctxErr(ctx) == nil || !c.running {
		return sr, err
	}
	// ctx ended while running: stop the target and collect that stop.
	sr, ierr := c.interruptLocked(context.WithoutCancel(ctx), op, interruptGrace)
	if ierr != nil {
		return sr, errors.Join(err, ierr)
	}
	return sr, err
}

// Wait waits for the next stop reply after Resume, skipping console output
// ('O' packets) and accepting unsolicited stops (QEMU 7.2 sends T02 when QMP
// stops the VM). If ctx ends first the target keeps running and the error
// wraps ctx.Err(); call Interrupt or Wait again.
func (c *Client) Wait(ctx context.Context) (StopReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitLocked(ctx, "wait")
}

func (c *Client) waitLocked(ctx context.Context, op string) (StopReply, error) {
	if err := c.usable(); err != nil {
		return StopReply{}, fmt.Errorf("rsp: %s: %w", op, err)
	}
	if !c.running {
		return StopReply{}, fmt.Errorf("rsp: %s: %w", op, ErrNotRunning)
	}
	if err := ctx.Err(); err != nil {
		return StopReply{}, fmt.Errorf("rsp: %s: %w", op, err)
	}
	unwatch := c.watch(ctx, 0)
	defer unwatch()
	for {
		pkt, err := c.cn.recv()
		if err != nil {
			return StopReply{}, c.fail(ctx, op, err, false)
		}
		if len(pkt) > 1 && pkt[0] == 'O' && string(pkt) != "OK" {
			if len(c.console) < maxConsole {
				c.console, _ = decodeHex(c.console, pkt[1:])
			}
			continue
		}
		c.packets++
		sr, err := ParseStopReply(pkt)
		if err != nil {
			return sr, fmt.Errorf("rsp: %s: %w", op, err)
		}
		c.running = false
		c.cn.holdAcks = false
		if sr.Exited() {
			c.exited = &ExitError{Stop: sr}
		}
		return sr, nil
	}
}

// Interrupt stops the running target with a single 0x03 byte and waits for
// the stop reply, at most until ctx ends or the request timeout passes. If
// none arrives the connection is closed, since its state is unknown.
func (c *Client) Interrupt(ctx context.Context) (StopReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interruptLocked(ctx, "interrupt", c.reqTimeout)
}

func (c *Client) interruptLocked(ctx context.Context, op string, bound time.Duration) (StopReply, error) {
	if err := c.usable(); err != nil {
		return StopReply{}, fmt.Errorf("rsp: %s: %w", op, err)
	}
	if !c.running {
		return StopReply{}, fmt.Errorf("rsp: %s: %w", op, ErrNotRunning)
	}
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	_ = c.nc.SetDeadline(time.Now().Add(c.reqTimeout))
	if err := c.cn.sendByte(0x03); err != nil {
		return StopReply{}, c.fail(ctx, op, err, true)
	}
	sr, err := c.waitLocked(ctx, op)
	if err != nil && c.running {
		// No stop arrived in time: the stream state is unknown.
		c.broken = fmt.Errorf("%s: no stop reply after interrupt", op)
		_ = c.Close()
	}
	return sr, err
}

// Console returns the console output ('O' packets) received during the last
// resume, up to 64 KiB.
func (c *Client) Console() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.console...)
}

// Detach sends 'D'. QEMU then resumes the guest. The connection is closed
// afterwards.
func (c *Client) Detach(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.exchange(ctx, "detach", "D")
	_ = c.Close()
	return err
}

// Kill sends 'k': QEMU exits. A 'W'/'X' reply or the connection closing are
// both success; afterwards every call returns an error wrapping ErrClosed.
func (c *Client) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited != nil || c.closed.Load() {
		return nil
	}
	if c.running {
		if _, err := c.interruptLocked(ctx, "kill", interruptGrace); err != nil {
			return err
		}
	}
	rep, err := c.roundTrip(ctx, "kill", []byte("k"))
	defer c.Close()
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	if sr, perr := ParseStopReply(rep); perr == nil && sr.Exited() {
		c.exited = &ExitError{Stop: sr}
		return nil
	}
	return nil
}
