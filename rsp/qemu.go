package rsp

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxThreads bounds the qsThreadInfo loop.
const maxThreads = 4096

// Threads lists thread ids with 'qfThreadInfo' and 'qsThreadInfo'. In QEMU
// system mode vCPU n is thread n+1 ("p01.01" after multiprocess+).
func (c *Client) Threads(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	req := "qfThreadInfo"
	for len(out) <= maxThreads {
		rep, err := c.exchange(ctx, "list threads", req)
		if err != nil {
			return nil, err
		}
		switch rep[0] {
		case 'l':
			return out, nil
		case 'm':
			for _, t := range strings.Split(string(rep[1:]), ",") {
				if t != "" {
					out = append(out, t)
				}
			}
		default:
			return nil, fmt.Errorf("rsp: list threads: reply %q: %w", trunc(rep), ErrMalformed)
		}
		req = "qsThreadInfo"
	}
	return nil, fmt.Errorf("rsp: list threads: more than %d: %w", maxThreads, ErrTooLarge)
}

// SstepBits returns the single-step mask bits the accelerator supports,
// from 'qqemu.sstepbits' (e.g. {"ENABLE":1,"NOIRQ":2,"NOTIMER":4}).
func (c *Client) SstepBits(ctx context.Context) (map[string]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, "query sstep bits", "qqemu.sstepbits")
	if err != nil {
		return nil, err
	}
	return parseSstepBits(string(rep))
}

func parseSstepBits(s string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("rsp: sstep bits %q: %w", s, ErrMalformed)
		}
		n, err := parseHex(v)
		if err != nil {
			return nil, fmt.Errorf("rsp: sstep bits %q: %w", s, err)
		}
		out[k] = n
	}
	return out, nil
}

// Sstep returns the current single-step mask from 'qqemu.sstep'.
func (c *Client) Sstep(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, "query sstep", "qqemu.sstep")
	if err != nil {
		return 0, err
	}
	n, err := parseHex(string(rep))
	if err != nil {
		return 0, fmt.Errorf("rsp: query sstep: %w", err)
	}
	return n, nil
}

// SetSstep sets the single-step mask with 'Qqemu.sstep=HEX'; QEMU refuses
// (E22) a bit the accelerator lacks.
func (c *Client) SetSstep(ctx context.Context, mask uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(ctx, "set sstep", fmt.Sprintf("Qqemu.sstep=%x", mask))
	if err != nil {
		return err
	}
	if string(rep) != "OK" {
		return fmt.Errorf("rsp: set sstep: reply %q: %w", trunc(rep), ErrMalformed)
	}
	return nil
}

// maxMonitorOutput bounds the text collected from one monitor command.
const maxMonitorOutput = 4 << 20

// Monitor runs an HMP monitor command with 'qRcmd,HEX' and returns the
// text of the 'O' packets that precede the final "OK".
func (c *Client) Monitor(ctx context.Context, cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	const op = "monitor command"
	req := hex.AppendEncode([]byte("qRcmd,"), []byte(cmd))
	rep, err := c.roundTrip(ctx, op, req)
	if err != nil {
		return "", err
	}
	unwatch := c.watch(ctx, c.reqTimeout)
	defer unwatch()
	var out []byte
	for {
		if len(rep) > 1 && rep[0] == 'O' && string(rep) != "OK" {
			if len(out) < maxMonitorOutput {
				if out, err = decodeHex(out, rep[1:]); err != nil {
					return "", fmt.Errorf("rsp: %s: output: %w", op, err)
				}
			}
			if rep, err = c.cn.recv(); err != nil {
				return "", c.fail(ctx, op, err, true)
			}
			continue
		}
		if err := replyError(op, req, rep); err != nil {
			return string(out), err
		}
		if string(rep) != "OK" {
			// Some stubs answer with the hex text itself.
			if d, err := decodeHex(nil, rep); err == nil {
				out = append(out, d...)
			} else {
				out = append(out, rep...)
			}
		}
		return string(out), nil
	}
}
