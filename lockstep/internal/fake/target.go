package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/lockstep-dev/lockstep/rsp"
)

// Defaults of rsp.Client that the fake mirrors.
const (
	defaultRequestTimeout = 10 * time.Second
	maxReadChunk          = 2048 // bytes per 'm' packet
	thread                = "p01.01"
)

// Target is the gdbstub of a fake guest; it implements guest.Target. It is
// used by one goroutine at a time, as rsp.Client is by the engine; its
// Machine may be used from others.
type Target struct {
	// RequestTimeout bounds a request other than a step or continue whose
	// context has no earlier deadline, as rsp.WithRequestTimeout does; 0
	// means rsp's default, 10s. It matters only while QEMU is frozen.
	RequestTimeout time.Duration

	v *vm
	// Guarded by v.mu:
	packets int
	closed  bool
	broken  error          // a request went unanswered: the connection is unusable
	exitErr *rsp.ExitError // the stub answered W
	resumed bool
}

// New returns the gdbstub and the process of a fake guest that runs p,
// paused at p.States[0].
func New(p Program) (*Target, *Machine, error) {
	if len(p.States) == 0 {
		return nil, nil, errors.New("fake: program has no states")
	}
	layout, err := layoutFor(p.Arch)
	if err != nil {
		return nil, nil, err
	}
	if p.End < None || p.End > SkipStep || p.End == LostStep || p.End == SkipStep {
		return nil, nil, fmt.Errorf("fake: program end %v: want hang, exit, kill, freeze or internal-error", p.End)
	}
	for i, s := range p.States {
		if s.Event < None || s.Event > SkipStep {
			return nil, nil, fmt.Errorf("fake: state %d: unknown event %v", i, s.Event)
		}
		for name := range s.Regs {
			if _, ok := layout.Lookup(name); !ok {
				return nil, nil, fmt.Errorf("fake: state %d: register %q: %w", i, name, rsp.ErrNoRegister)
			}
		}
	}
	p.States = slices.Clone(p.States)
	v := newVM(p, layout)
	return &Target{v: v}, &Machine{v: v, cmdline: "fake-qemu -S -gdb chardev:gdb0"}, nil
}

// Layout returns the register layout of the target description.
func (t *Target) Layout() *rsp.Layout { return t.v.layout }

// usable reports why no request can be made now, as rsp.Client does.
// v.mu must be held.
func (t *Target) usable(ctx context.Context, op string) error {
	switch {
	case t.exitErr != nil:
		return fmt.Errorf("rsp: %s: %w", op, t.exitErr)
	case t.closed:
		return fmt.Errorf("rsp: %s: %w", op, rsp.ErrClosed)
	case t.broken != nil:
		return fmt.Errorf("rsp: %s: %w: connection unusable after: %w", op, rsp.ErrClosed, t.broken)
	case t.v.gone:
		// The process ended: its end of the socket is closed.
		return fmt.Errorf("rsp: %s: %w: %w", op, rsp.ErrClosed, io.EOF)
	case t.resumed:
		return fmt.Errorf("rsp: %s: %w", op, rsp.ErrRunning)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rsp: %s: %w", op, err)
	}
	return nil
}

// request starts request op and counts its packet. On success v.mu is
// held and the caller answers. A frozen QEMU does not answer: the request
// fails once ctx or the request timeout ends, and breaks the connection.
func (t *Target) request(ctx context.Context, op string) error {
	t.v.mu.Lock()
	if err := t.usable(ctx, op); err != nil {
		t.v.mu.Unlock()
		return err
	}
	t.packets++
	if !t.v.frozen {
		return nil
	}
	t.v.mu.Unlock()
	bound := t.RequestTimeout
	if bound <= 0 {
		bound = defaultRequestTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	select {
	case <-wctx.Done():
	case <-t.v.exited:
	}
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	var err error
	switch {
	case t.v.gone:
		err = fmt.Errorf("%w: %w", rsp.ErrClosed, io.EOF)
	case ctx.Err() != nil:
		err = ctx.Err()
	default:
		err = fmt.Errorf("%w (request timeout %v)", context.DeadlineExceeded, bound)
	}
	t.broken = fmt.Errorf("%s: %w", op, err)
	return fmt.Errorf("rsp: %s: %w", op, err)
}

// noReply waits for a stop reply that never comes (a frozen QEMU, or one
// that will not resume a VM in internal-error), until ctx ends; the
// interrupt that follows goes unanswered too and breaks the connection.
// v.mu must not be held.
func (t *Target) noReply(ctx context.Context, op string) error {
	select {
	case <-ctx.Done():
	case <-t.v.exited:
	}
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	if t.v.gone {
		return fmt.Errorf("rsp: %s: %w: %w", op, rsp.ErrClosed, io.EOF)
	}
	t.broken = fmt.Errorf("%s: no stop reply after interrupt", op)
	return errors.Join(fmt.Errorf("rsp: %s: %w", op, ctx.Err()),
		fmt.Errorf("rsp: %s: interrupt: no stop reply: %w", op, rsp.ErrClosed))
}

// stopReply is QEMU's stop reply "T<sig>thread:p01.01;", with a write
// watchpoint's "watch:ADDR;" when watch is set.
func stopReply(sig int, watch bool, addr uint64) rsp.StopReply {
	st := rsp.StopReply{Kind: 'T', Signal: sig, Thread: thread, Pairs: map[string]string{"thread": thread}}
	st.Raw = fmt.Sprintf("T%02xthread:%s;", sig, thread)
	if watch {
		a := fmt.Sprintf("%016x", addr)
		st.Watch, st.WatchAddr, st.Pairs["watch"] = "watch", addr, a
		st.Raw += "watch:" + a + ";"
	}
	return st
}

// exitReply is QEMU's "W<code>" when the guest ends.
func exitReply(code int) rsp.StopReply {
	c := code & 0xff
	return rsp.StopReply{Kind: 'W', ExitCode: c, Raw: fmt.Sprintf("W%02x", c)}
}

// Step executes one instruction ('s') and returns the stop reply.
func (t *Target) Step(ctx context.Context) (rsp.StopReply, error) {
	return t.step(ctx, "step")
}

// StepThread is Step: a fake guest has one vCPU ('vCont;s:thread').
func (t *Target) StepThread(ctx context.Context, thread string) (rsp.StopReply, error) {
	return t.step(ctx, "step thread")
}

func (t *Target) step(ctx context.Context, op string) (rsp.StopReply, error) {
	v := t.v
	v.mu.Lock()
	if err := t.usable(ctx, op); err != nil {
		v.mu.Unlock()
		return rsp.StopReply{}, err
	}
	t.packets++
	if v.frozen || v.internal {
		v.mu.Unlock()
		return rsp.StopReply{}, t.noReply(ctx, op)
	}
	if v.prog.States[v.idx].Event == LostStep && !v.lost[v.idx] {
		v.lost[v.idx] = true
		v.mu.Unlock()
		return stopReply(5, false, 0), nil
	}
	if v.stuck() {
		v.mu.Unlock()
		return stopReply(5, false, 0), nil
	}
	if v.prog.States[v.idx].Event == SkipStep && !v.lost[v.idx] {
		v.lost[v.idx] = true
		if a := v.next(); a.event != None || !a.moved || v.stuck() {
			return t.arrived(ctx, op, a)
		}
	}
	return t.arrived(ctx, op, v.next())
}

// arrived answers a step or continue that ended with arrival a. v.mu is
// held and is released.
func (t *Target) arrived(ctx context.Context, op string, a arrival) (rsp.StopReply, error) {
	v := t.v
	switch a.event {
	case Exit:
		st := exitReply(a.code)
		t.exitErr = &rsp.ExitError{Stop: st}
		v.mu.Unlock()
		return st, nil
	case Kill:
		v.mu.Unlock()
		return rsp.StopReply{}, fmt.Errorf("rsp: %s: %w: %w", op, rsp.ErrClosed, io.EOF)
	case Freeze:
		v.mu.Unlock()
		return rsp.StopReply{}, t.noReply(ctx, op)
	}
	var addr uint64
	var hit bool
	if a.moved {
		addr, hit = v.watchHit()
	}
	v.mu.Unlock()
	return stopReply(5, hit, addr), nil
}

// ctxCheckEvery is how many instructions a continue executes between
// looks at its context.
const ctxCheckEvery = 4096

// Continue runs ('c') until the guest reaches a software or hardware
// breakpoint, stores into a write watchpoint's range (x86: the store has
// happened), meets an event, or ends. It executes at least one
// instruction first. A guest that spins runs until ctx ends, and is then
// interrupted: the T02 stop comes with an error wrapping ctx.Err().
func (t *Target) Continue(ctx context.Context) (rsp.StopReply, error) {
	const op = "continue"
	v := t.v
	v.mu.Lock()
	if err := t.usable(ctx, op); err != nil {
		v.mu.Unlock()
		return rsp.StopReply{}, err
	}
	t.packets++
	if v.frozen || v.internal {
		v.mu.Unlock()
		return rsp.StopReply{}, t.noReply(ctx, op)
	}
	for n := 1; ; n++ {
		if v.stuck() {
			v.status = "running"
			v.mu.Unlock()
			return t.spin(ctx, op)
		}
		a := v.next()
		switch a.event {
		case Exit, Kill, Freeze, InternalError:
			return t.arrived(ctx, op, a)
		}
		if _, hit := v.watchHit(); hit || v.breakAt(v.pc()) {
			return t.arrived(ctx, op, a)
		}
		if n%ctxCheckEvery == 0 && ctx.Err() != nil {
			v.mu.Unlock()
			return stopReply(2, false, 0), fmt.Errorf("rsp: %s: %w", op, ctx.Err())
		}
	}
}

// spin waits while the guest runs in place, until ctx ends (an interrupt
// answered T02) or the process ends (the connection closes).
func (t *Target) spin(ctx context.Context, op string) (rsp.StopReply, error) {
	select {
	case <-ctx.Done():
	case <-t.v.exited:
	}
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	if t.v.gone {
		return rsp.StopReply{}, fmt.Errorf("rsp: %s: %w: %w", op, rsp.ErrClosed, io.EOF)
	}
	t.v.status = "debug"
	return stopReply(2, false, 0), fmt.Errorf("rsp: %s: %w", op, ctx.Err())
}

// Resume continues without waiting ('c'); the target is not used again
// except to be closed: later requests fail with rsp.ErrRunning.
func (t *Target) Resume(ctx context.Context) error {
	const op = "resume"
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	if err := t.usable(ctx, op); err != nil {
		return err
	}
	t.packets++
	t.resumed = true
	if !t.v.frozen && !t.v.internal {
		t.v.status = "running"
	}
	return nil
}

// PC reads the program counter (rip).
func (t *Target) PC(ctx context.Context) (uint64, error) {
	if err := t.request(ctx, "read registers"); err != nil {
		return 0, err
	}
	defer t.v.mu.Unlock()
	return t.v.pc(), nil
}

// ReadRegisterSet reads the named registers ('g'); a name missing from the
// target description gives an error wrapping rsp.ErrNoRegister.
func (t *Target) ReadRegisterSet(ctx context.Context, names ...string) (rsp.Registers, error) {
	l := t.v.layout
	regs := make([]*rsp.Register, 0, len(names))
	for _, n := range names {
		r, ok := l.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("rsp: read register %q: %w", n, rsp.ErrNoRegister)
		}
		regs = append(regs, r)
	}
	if err := t.request(ctx, "read registers"); err != nil {
		return nil, err
	}
	defer t.v.mu.Unlock()
	out := make(rsp.Registers, len(regs))
	for _, r := range regs {
		u := t.v.regs[r.Name]
		if r.Name == l.PC() {
			u = t.v.pc()
		}
		out[r.Name] = rsp.ValueFromUint64(u, r.Size(), l.BigEndian)
	}
	return out, nil
}

// ReadMemory reads n bytes at a virtual address, in 'm' packets of at most
// 2048 bytes. A chunk outside the program's Mapped ranges gives a
// *rsp.MemoryError wrapping the stub's E14 (*rsp.ProtocolError).
func (t *Target) ReadMemory(ctx context.Context, addr uint64, n int) ([]byte, error) {
	return t.readMemory(ctx, "read", addr, n, 0)
}

// ReadPhysical reads guest-physical memory: the fake has one address
// space, so it reads what ReadMemory reads (with the two packets that
// switch QEMU's physical mode on and off).
func (t *Target) ReadPhysical(ctx context.Context, addr uint64, n int) ([]byte, error) {
	return t.readMemory(ctx, "read physical", addr, n, 2)
}

func (t *Target) readMemory(ctx context.Context, op string, addr uint64, n, extra int) ([]byte, error) {
	if n < 0 {
		return nil, &rsp.MemoryError{Op: op, Addr: addr, Len: n, Err: rsp.ErrMalformed}
	}
	if n == 0 {
		return []byte{}, nil
	}
	if err := t.request(ctx, op+" memory"); err != nil {
		return nil, &rsp.MemoryError{Op: op, Addr: addr, Len: min(n, maxReadChunk), Err: err}
	}
	defer t.v.mu.Unlock()
	t.packets += extra - 1
	out := make([]byte, 0, n)
	for len(out) < n {
		k := min(n-len(out), maxReadChunk)
		a := addr + uint64(len(out))
		t.packets++
		if !t.v.readable(a, uint64(k)) {
			perr := &rsp.ProtocolError{Op: op + " memory", Packet: fmt.Sprintf("m%x,%x", a, k), Code: 0x14}
			return nil, &rsp.MemoryError{Op: op, Addr: a, Len: k, Err: perr}
		}
		out = append(out, t.v.read(a, k)...)
	}
	return out, nil
}

// InsertBreakpoint inserts a software or hardware breakpoint at addr, or a
// write watchpoint over [addr, addr+size) ('Zk,addr,size'). Read and
// access watchpoints are unsupported.
func (t *Target) InsertBreakpoint(ctx context.Context, kind rsp.BreakKind, addr uint64, size int) error {
	return t.breakpoint(ctx, true, kind, addr, size)
}

// RemoveBreakpoint removes what InsertBreakpoint inserted ('zk,addr,size');
// removing what is not there is refused with E22, as QEMU does.
func (t *Target) RemoveBreakpoint(ctx context.Context, kind rsp.BreakKind, addr uint64, size int) error {
	return t.breakpoint(ctx, false, kind, addr, size)
}

func (t *Target) breakpoint(ctx context.Context, insert bool, kind rsp.BreakKind, addr uint64, size int) error {
	op, z := "remove "+kind.String(), 'z'
	if insert {
		op, z = "insert "+kind.String(), 'Z'
	}
	if kind < rsp.Software || kind > rsp.WatchAccess || size <= 0 {
		return fmt.Errorf("rsp: %s at %#x size %d: %w", op, addr, size, rsp.ErrMalformed)
	}
	if err := t.request(ctx, op); err != nil {
		return fmt.Errorf("%w (at %#x)", err, addr)
	}
	defer t.v.mu.Unlock()
	if kind != rsp.Software && kind != rsp.Hardware && kind != rsp.WatchWrite {
		return fmt.Errorf("rsp: %s: %w (at %#x)", op, rsp.ErrUnsupported, addr)
	}
	bp := Breakpoint{Kind: kind, Addr: addr, Size: size}
	switch {
	case insert:
		t.v.bps[bp]++
	case t.v.bps[bp] == 0:
		perr := &rsp.ProtocolError{Op: op, Packet: fmt.Sprintf("%c%d,%x,%x", z, int(kind), addr, size), Code: 0x22}
		return fmt.Errorf("%w (at %#x)", perr, addr)
	case t.v.bps[bp] == 1:
		delete(t.v.bps, bp)
	default:
		t.v.bps[bp]--
	}
	return nil
}

// SstepBits answers qqemu.sstepbits: the program's SstepBits, by default
// TCG's ENABLE=1,NOIRQ=2,NOTIMER=4.
func (t *Target) SstepBits(ctx context.Context) (map[string]uint64, error) {
	const op = "query sstep bits"
	if err := t.request(ctx, op); err != nil {
		return nil, err
	}
	defer t.v.mu.Unlock()
	bits := t.v.sstepBits()
	if len(bits) == 0 {
		return nil, fmt.Errorf("rsp: %s: %w", op, rsp.ErrUnsupported)
	}
	return bits, nil
}

// SetSstep sets the single-step mask ('Qqemu.sstep=HEX'); a bit the stub
// does not offer is refused with E22.
func (t *Target) SetSstep(ctx context.Context, mask uint64) error {
	const op = "set sstep"
	if err := t.request(ctx, op); err != nil {
		return err
	}
	defer t.v.mu.Unlock()
	bits := t.v.sstepBits()
	if len(bits) == 0 {
		return fmt.Errorf("rsp: %s: %w", op, rsp.ErrUnsupported)
	}
	var all uint64
	for b := range maps.Values(bits) {
		all |= b
	}
	if mask&^all != 0 {
		return &rsp.ProtocolError{Op: op, Packet: fmt.Sprintf("Qqemu.sstep=%x", mask), Code: 0x22}
	}
	t.v.sstep = mask
	return nil
}

// Packets counts the requests made so far.
func (t *Target) Packets() int {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return t.packets
}

// Close closes the connection; later requests fail with rsp.ErrClosed.
func (t *Target) Close() error {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	t.closed = true
	return nil
}

// Index returns the index of the state the guest is at.
func (t *Target) Index() int {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return t.v.idx
}

// Breakpoints returns the breakpoints and watchpoints inserted, ordered by
// address.
func (t *Target) Breakpoints() []Breakpoint {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return t.v.breakpoints()
}

// Sstep returns the single-step mask in force.
func (t *Target) Sstep() uint64 {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return t.v.sstep
}

// Resumed reports whether Resume was called.
func (t *Target) Resumed() bool {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return t.resumed
}

// WriteRegister writes a register ('P'); it holds until a later state of
// the program sets it.
func (t *Target) WriteRegister(ctx context.Context, name string, v rsp.Value) error {
	r, ok := t.v.layout.Lookup(name)
	if !ok {
		return fmt.Errorf("rsp: write register %q: %w", name, rsp.ErrNoRegister)
	}
	u, _ := v.Uint64()
	if err := t.request(ctx, "write register "+r.Name); err != nil {
		return err
	}
	defer t.v.mu.Unlock()
	t.v.regs[r.Name] = u
	t.v.writes = append(t.v.writes, Write{Reg: r.Name, Value: u, At: t.v.idx})
	return nil
}

// WriteMemory writes memory ('M').
func (t *Target) WriteMemory(ctx context.Context, addr uint64, data []byte) error {
	if err := t.request(ctx, "write memory"); err != nil {
		return err
	}
	defer t.v.mu.Unlock()
	for i, c := range data {
		t.v.mem[addr+uint64(i)] = c
	}
	t.v.writes = append(t.v.writes, Write{Addr: addr, Bytes: append([]byte(nil), data...), At: t.v.idx})
	return nil
}

// Write is a register or memory write lockstep made (fault injection):
// At is the index of the state the guest stood at.
type Write struct {
	Reg   string
	Value uint64
	Addr  uint64
	Bytes []byte
	At    int
}

// Writes returns the writes made to the guest so far.
func (t *Target) Writes() []Write {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	return append([]Write(nil), t.v.writes...)
}
