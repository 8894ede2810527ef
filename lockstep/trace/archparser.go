package trace

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// ArchState is the CPU state QEMU logged before one instruction on a
// non-x86 target (aarch64, riscv64, s390x).
type ArchState struct {
	// Seq is the 0-based index of this state in its log.
	Seq uint64
	// PC is the address of the instruction.
	PC uint64
	// Regs holds the registers in the order ArchRegNames gives.
	Regs []uint64
}

// archFormat describes one target's "-d cpu" register dump.
type archFormat struct {
	names []string       // register names, in Regs order (target.xml spelling)
	keys  map[string]int // dump key -> index in names
	pcKey string         // the key that starts a block and holds the PC
	need  int            // registers a complete block has (the first need names)
	// pairs reports how a line is laid out: "KEY=hex" (aarch64) or
	// "key hex" (riscv64).
	equals bool
	// gpr decodes a general-purpose register key ("X07", "x7/t2") without
	// a map lookup: the parser's hot path.
	gpr func(k []byte) (int, bool)
	// compared, when not 0, is how many of the first names are compared
	// by default (the rest of need is logged state read but compared
	// only when asked: s390x's control registers).
	compared int
	// psw marks s390x's block-opening line, "PSW=mask M addr A cc C",
	// which is not KEY=value pairs: fields turns it into the PC (pcKey)
	// and pswKey.
	psw bool
}

// s390x's keys for the two halves of its PSW line (byte slices: the
// parser's hot path does not allocate).
const (
	pswLine = "PSW=mask "
	pswKey  = "PSWM"
)

var pswLineB, pswPCB, pswKeyB = []byte(pswLine), []byte("PSW"), []byte(pswKey)

// index returns the register index of dump key k, or false.
func (f *archFormat) index(k []byte) (int, bool) {
	if i, ok := f.gpr(k); ok {
		return i, true
	}
	i, ok := f.keys[string(k)]
	return i, ok
}

// decimal parses b as a small decimal number.
func decimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 2 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

var archFormats = map[string]*archFormat{}

func init() {
	// aarch64 (target/arm/cpu.c, aarch64_cpu_dump_state):
	//  PC=... X00=... X01=...
	//  X29=... X30=...  SP=...
	//  PSTATE=400003c5 -Z-- EL1h
	a := &archFormat{pcKey: "PC", equals: true, keys: map[string]int{}}
	for i := range 31 {
		a.names = append(a.names, fmt.Sprintf("x%d", i))
		a.keys[fmt.Sprintf("X%02d", i)] = i
	}
	a.gpr = func(k []byte) (int, bool) {
		if len(k) != 3 || k[0] != 'X' {
			return 0, false
		}
		n, ok := decimal(k[1:])
		return n, ok && n < 31
	}
	a.names = append(a.names, "sp", "cpsr")
	a.keys["SP"], a.keys["PSTATE"] = 31, 32
	a.need = len(a.names)
	archFormats["aarch64"] = a

	// riscv64 (target/riscv/cpu.c, riscv_cpu_dump_state):
	//  pc       0000000080000000
	//  mhartid  0000000000000000
	//  ...
	//  x0/zero  0000000000000000 x1/ra    ...
	r := &archFormat{pcKey: "pc", keys: map[string]int{}}
	abi := []string{"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1",
		"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
		"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"}
	qabi := append([]string(nil), abi...)
	qabi[8] = "s0" // the dump says x8/s0; target.xml says fp
	for i, n := range abi {
		r.names = append(r.names, n)
		r.keys[fmt.Sprintf("x%d/%s", i, qabi[i])] = i
	}
	r.need = len(r.names)
	r.gpr = func(k []byte) (int, bool) {
		slash := bytes.IndexByte(k, '/')
		if slash < 2 || k[0] != 'x' {
			return 0, false
		}
		n, ok := decimal(k[1:slash])
		if !ok || n >= 32 || string(k[slash+1:]) != qabi[n] {
			return 0, false
		}
		return n, true
	}
	for _, csr := range []string{"mhartid", "mstatus", "mip", "mie", "mideleg", "medeleg", "mtvec", "stvec",
		"mepc", "sepc", "mcause", "scause", "mtval", "stval", "mscratch", "sscratch", "satp"} {
		r.keys[csr] = len(r.names)
		r.names = append(r.names, csr)
	}
	archFormats["riscv64"] = r

	// s390x (target/s390x/helper.c, s390_cpu_dump_state); the mask holds
	// the condition code, computed from TCG's lazy cc_op (the "cc" word
	// names the cc_op and is not read):
	//  PSW=mask 0000000180000000 addr 0000000000020000 cc 00
	//  R00=... R01=... R02=... R03=...   (4 lines)
	//  C00=... C01=... C02=... C03=...   (4 lines)
	z := &archFormat{pcKey: "PSW", equals: true, psw: true, keys: map[string]int{}}
	for i := range 16 {
		z.names = append(z.names, fmt.Sprintf("r%d", i))
		z.keys[fmt.Sprintf("R%02d", i)] = i
	}
	z.keys[pswKey] = len(z.names)
	z.names = append(z.names, "pswm")
	z.compared = len(z.names)
	for i := range 16 {
		z.keys[fmt.Sprintf("C%02d", i)] = len(z.names)
		z.names = append(z.names, fmt.Sprintf("cr%d", i))
	}
	z.need = len(z.names)
	z.gpr = func(k []byte) (int, bool) {
		if len(k) != 3 || k[0] != 'R' {
			return 0, false
		}
		n, ok := decimal(k[1:])
		return n, ok && n < 16
	}
	archFormats["s390x"] = z
}

// ArchRegNames returns the register names of arch's ArchState.Regs (as
// QEMU's target description names them), or nil when no parser exists.
func ArchRegNames(arch string) []string {
	if f := archFormats[arch]; f != nil {
		return f.names
	}
	return nil
}

// ArchParser decodes the "-d cpu" log of a non-x86 target incrementally:
// each register dump becomes one ArchState; other lines ("IN:", "----",
// disassembly, FPU lines) are skipped. It is not safe for concurrent use.
type ArchParser struct {
	f       *archFormat
	arch    string
	r       *bufio.Reader
	line    uint64
	seq     uint64
	cur     ArchState
	seen    []bool
	nseen   int
	inBlock bool
	sawAny  bool
	first   []byte
	// Reused by fields.
	words, keys, vals [][]byte
}

// NewArchParser returns a parser for arch ("aarch64", "riscv64", "s390x").
func NewArchParser(arch string, r io.Reader) (*ArchParser, error) {
	f := archFormats[arch]
	if f == nil {
		return nil, fmt.Errorf("trace: no -d cpu parser for %q (have aarch64, riscv64, s390x and x86_64)", arch)
	}
	return &ArchParser{f: f, arch: arch, r: bufio.NewReaderSize(r, bufSize), seen: make([]bool, len(f.names))}, nil
}

// Line returns the number of lines consumed so far.
func (p *ArchParser) Line() uint64 { return p.line }

// Next decodes the next state into s (its Regs are reused when long
// enough). It returns io.EOF after the last state, a *FormatError for
// undecodable input, or the reader's error.
func (p *ArchParser) Next(s *ArchState) error {
	for {
		line, rerr := p.r.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			p.line++
			return p.errf(line, ErrMalformed, "line longer than %d bytes", bufSize)
		}
		if len(line) > 0 {
			p.line++
			for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
				line = line[:len(line)-1]
			}
			done, err := p.handle(line, s)
			if err != nil || done {
				return err
			}
		}
		if rerr == io.EOF {
			if p.inBlock {
				p.inBlock = false
				return p.emit(s, nil)
			}
			if !p.sawAny && p.first != nil {
				return &FormatError{Line: p.line, Text: string(p.first), Err: ErrUnknownFormat,
					Msg: fmt.Sprintf("no %s register dump in the input; expected QEMU -d cpu output, first line was", p.arch)}
			}
			return io.EOF
		}
		if rerr != nil {
			return fmt.Errorf("trace: read: %w", rerr)
		}
	}
}

// fields splits a dump line into key/value pairs, "K=v K=v" or
// "k v k v", into slices reused from line to line (no allocation).
func (p *ArchParser) fields(line []byte) (keys, vals [][]byte) {
	p.words = p.words[:0]
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > i {
			p.words = append(p.words, line[i:j])
		}
		i = j
	}
	p.keys, p.vals = p.keys[:0], p.vals[:0]
	if p.f.psw && bytes.HasPrefix(line, pswLineB) {
		// PSW=mask M addr A cc C: words 1 and 3. A line cut short gives
		// empty values, which handle rejects as bad hex.
		var mask, addr []byte
		if len(p.words) > 1 {
			mask = p.words[1]
		}
		if len(p.words) > 3 && string(p.words[2]) == "addr" {
			addr = p.words[3]
		}
		p.keys = append(p.keys, pswPCB, pswKeyB)
		p.vals = append(p.vals, addr, mask)
		return p.keys, p.vals
	}
	if p.f.equals {
		for _, w := range p.words {
			if eq := bytes.IndexByte(w, '='); eq >= 0 {
				p.keys, p.vals = append(p.keys, w[:eq]), append(p.vals, w[eq+1:])
			}
		}
		return p.keys, p.vals
	}
	for i := 0; i+1 < len(p.words); i += 2 {
		p.keys, p.vals = append(p.keys, p.words[i]), append(p.vals, p.words[i+1])
	}
	return p.keys, p.vals
}

// handle decodes one line; done reports that s was filled.
func (p *ArchParser) handle(line []byte, s *ArchState) (bool, error) {
	keys, vals := p.fields(line)
	known := false
	if len(keys) > 0 {
		_, isReg := p.f.index(keys[0])
		known = isReg || string(keys[0]) == p.f.pcKey
	}
	if !known {
		if !p.inBlock && len(bytes.TrimSpace(line)) > 0 {
			if p.first == nil {
				p.first = append([]byte(nil), trunc(line)...)
			}
			if !p.sawAny && p.line >= maxPreamble {
				return false, p.errf(p.first, ErrUnknownFormat, "no %s register dump in the first %d lines; first line was", p.arch, maxPreamble)
			}
		}
		return false, nil
	}
	done := false
	if string(keys[0]) == p.f.pcKey {
		if p.inBlock {
			if err := p.emit(s, line); err != nil {
				return false, err
			}
			done = true
		}
		p.inBlock, p.sawAny = true, true
		if cap(p.cur.Regs) < len(p.f.names) {
			p.cur.Regs = make([]uint64, len(p.f.names))
		}
		p.cur.Regs = p.cur.Regs[:len(p.f.names)]
		clear(p.cur.Regs)
		clear(p.seen)
		p.nseen = 0
	}
	if !p.inBlock {
		return false, nil // the tail of a block cut off at the start of the log
	}
	for i, k := range keys {
		isPC := string(k) == p.f.pcKey
		idx, isReg := 0, false
		if !isPC {
			idx, isReg = p.f.index(k)
		}
		if !isReg && !isPC {
			continue
		}
		v, n, ok := parseHex(vals[i])
		if !ok || n != len(vals[i]) {
			return false, p.errf(line, ErrMalformed, "bad hex value for %q", k)
		}
		if isPC {
			p.cur.PC = v
			continue
		}
		p.cur.Regs[idx] = v
		if idx < p.f.need && !p.seen[idx] {
			p.seen[idx] = true
			p.nseen++
		}
	}
	if !done && p.nseen == p.f.need {
		// The last line of the integer state (aarch64's PSTATE, riscv64's
		// x28-x31, s390x's C12-C15) completes the block: hand it out now rather than at the
		// next block's first line, which a live log may not write for a
		// long time (a halted CPU logs nothing). FPU lines that may follow
		// are skipped.
		p.inBlock = false
		return true, p.emit(s, nil)
	}
	return done, nil
}

// emit validates the finished block and copies it to s.
func (p *ArchParser) emit(s *ArchState, next []byte) error {
	if p.nseen < p.f.need {
		var missing []string
		for i := range p.f.need {
			if !p.seen[i] {
				missing = append(missing, p.f.names[i])
			}
		}
		if next == nil {
			return p.errf(nil, io.ErrUnexpectedEOF, "log ends inside a register dump (missing %s)", strings.Join(missing, " "))
		}
		return p.errf(next, ErrMalformed, "register dump without %s, interrupted by", strings.Join(missing, " "))
	}
	p.cur.Seq = p.seq
	p.seq++
	regs := s.Regs
	if cap(regs) < len(p.cur.Regs) {
		regs = make([]uint64, len(p.cur.Regs))
	}
	regs = regs[:len(p.cur.Regs)]
	copy(regs, p.cur.Regs)
	*s = p.cur
	s.Regs = regs
	return nil
}

func (p *ArchParser) errf(line []byte, sentinel error, format string, args ...any) error {
	return &FormatError{Line: p.line, Text: string(trunc(line)), Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}
