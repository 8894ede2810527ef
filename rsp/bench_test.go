package rsp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-dev/lockstep/lockstep/qemu/qemutest"
)

// Each client benchmark first runs the raw protocol loop for rawCount round
// trips on the same socket, then the client for b.N, and reports both rates
// and their ratio (client/raw: 1.0 means no overhead).
const rawCount = 2000

// rawLoop is the minimal protocol round trip: write a pre-encoded packet
// (with the previous reply's ack in front), skip to '$', scan to '#', read
// the two checksum digits. It does no decoding and no checks.
type rawLoop struct {
	nc  net.Conn
	r   *bufio.Reader
	pkt []byte
}

func newRawLoop(b *testing.B, c *Client, payload string) *rawLoop {
	b.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.cn.flushAck(); err != nil {
		b.Fatal(err)
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Minute))
	return &rawLoop{nc: c.nc, r: bufio.NewReaderSize(c.nc, 64<<10), pkt: frame([]byte("+"), []byte(payload))}
}

// run does n round trips and returns the elapsed time.
func (l *rawLoop) run(b *testing.B, n int) time.Duration {
	b.Helper()
	start := time.Now()
	for i := 0; i < n; i++ {
		p := l.pkt
		if i == 0 {
			p = p[1:] // nothing to ack yet
		}
		if _, err := l.nc.Write(p); err != nil {
			b.Fatal(err)
		}
		if _, err := l.r.ReadSlice('$'); err != nil {
			b.Fatal(err)
		}
		for {
			s, err := l.r.ReadSlice('#')
			if err == nil {
				break
			}
			if err != bufio.ErrBufferFull {
				b.Fatal(err, len(s))
			}
		}
		if _, err := l.r.Discard(2); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	if _, err := l.nc.Write([]byte{'+'}); err != nil {
		b.Fatal(err)
	}
	return el
}

// blockSize is the number of round trips per timed block. The machine is
// shared, so besides the mean rate each benchmark reports the best block
// of each loop, and the ratio of those best blocks, which noise from other
// processes disturbs far less than the means.
const blockSize = 100

// bestBlocks times fn in blocks of blockSize calls and returns the total
// time and the best block's time per call.
func bestBlocks(n int, fn func(k int)) (total, best time.Duration) {
	best = time.Duration(1 << 62)
	for done := 0; done < n; {
		k := min(blockSize, n-done)
		start := time.Now()
		fn(k)
		el := time.Since(start)
		total += el
		if per := el / time.Duration(k); per < best {
			best = per
		}
		done += k
	}
	return total, best
}

// benchClient attaches to demo-hang stopped inside its endless loop, so
// every step executes the same already-translated instruction.
func benchClient(b *testing.B) *Client {
	b.Helper()
	vm := startQEMU(b, "tcg", qemutest.Guest(b, "demo-hang"))
	c := vm.dial(b)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Continue(ctx); !errors.Is(err, context.DeadlineExceeded) {
		b.Fatalf("run demo-hang into its loop: %v", err)
	}
	return c
}

// measureRaw warms up, then times rawCount raw round trips of payload; it
// returns the mean and the best block's time per round trip.
func measureRaw(b *testing.B, c *Client, payload string) (mean, best time.Duration) {
	b.Helper()
	l := newRawLoop(b, c, payload)
	l.run(b, rawCount/4)
	total, best := bestBlocks(rawCount, func(k int) { l.run(b, k) })
	return total / rawCount, best
}

// benchOp runs op b.N times after the raw loop and reports ops/s, the raw
// rate and the ratios.
func benchOp(b *testing.B, payload string, op func(ctx context.Context, c *Client) error) {
	c := benchClient(b)
	ctx := context.Background()
	cpu0 := cpuTime()
	rawMean, rawBest := measureRaw(b, c, payload)
	rawCPU := (cpuTime() - cpu0) / time.Duration(rawCount+rawCount/4)
	for i := 0; i < rawCount/4; i++ { // warm up the client path too
		if err := op(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 = cpuTime()
	_, best := bestBlocks(b.N, func(k int) {
		for i := 0; i < k; i++ {
			if err := op(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	cpu := (cpuTime() - cpu0) / time.Duration(b.N)
	mean := b.Elapsed() / time.Duration(b.N)
	// CPU time of this process per round trip: the client's own cost,
	// which waiting for QEMU and other processes' load do not inflate.
	b.ReportMetric(float64(cpu)/float64(time.Microsecond), "cpu-us/op")
	b.ReportMetric(float64(rawCPU)/float64(time.Microsecond), "raw-cpu-us/op")
	b.ReportMetric(float64(time.Second)/float64(mean), "ops/s")
	b.ReportMetric(float64(time.Second)/float64(rawMean), "raw-ops/s")
	b.ReportMetric(float64(rawMean)/float64(mean), "ratio")
	b.ReportMetric(float64(rawBest)/float64(best), "best-ratio")
	b.ReportMetric(float64(time.Second)/float64(best), "best-ops/s")
	b.ReportMetric(float64(time.Second)/float64(rawBest), "best-raw-ops/s")
}

// cpuTime returns the user plus system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkStep(b *testing.B) {
	benchOp(b, "s", func(ctx context.Context, c *Client) error { _, err := c.Step(ctx); return err })
}

func BenchmarkReadRegisters(b *testing.B) {
	benchOp(b, "g", func(ctx context.Context, c *Client) error { _, err := c.ReadRegisters(ctx); return err })
}

func BenchmarkReadMemory2K(b *testing.B) {
	benchOp(b, "m100000,800", func(ctx context.Context, c *Client) error {
		_, err := c.ReadMemory(ctx, 0x100000, 2048)
		return err
	})
}

func benchRaw(b *testing.B, payload string) {
	c := benchClient(b)
	l := newRawLoop(b, c, payload)
	l.run(b, rawCount/4)
	b.ResetTimer()
	cpu0 := cpuTime()
	_, best := bestBlocks(b.N, func(k int) { l.run(b, k) })
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/float64(time.Microsecond), "cpu-us/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(time.Second)/float64(best), "best-ops/s")
}

func BenchmarkRawStep(b *testing.B)          { benchRaw(b, "s") }
func BenchmarkRawReadRegisters(b *testing.B) { benchRaw(b, "g") }
func BenchmarkRawReadMemory2K(b *testing.B)  { benchRaw(b, "m100000,800") }
