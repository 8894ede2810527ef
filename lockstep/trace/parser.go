package trace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrUnknownFormat is returned (wrapped in a *FormatError) when the input
// holds no recognisable QEMU x86 "-d cpu" register dump.
var ErrUnknownFormat = errors.New("not a qemu x86 cpu state log")

// ErrMalformed is wrapped by a *FormatError for a state line that has a known
// prefix but cannot be decoded, or a dump block that lacks required lines.
var ErrMalformed = errors.New("malformed cpu state")

// FormatError reports where a log could not be decoded.
type FormatError struct {
	Line uint64 // 1-based line number
	Text string // the offending line, truncated to 120 bytes
	Err  error  // ErrUnknownFormat, ErrMalformed or io.ErrUnexpectedEOF
	Msg  string // what was wrong
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("trace: line %d: %s: %v (%q)", e.Line, e.Msg, e.Err, e.Text)
}

// Unwrap returns the underlying sentinel.
func (e *FormatError) Unwrap() error { return e.Err }

const (
	// maxPreamble is how many lines may precede the first dump before the
	// input is declared an unknown format.
	maxPreamble = 2000
	bufSize     = 64 << 10
)

// Bits of Parser.seen: the lines of a dump block.
const (
	seenGPR1 = 1 << iota
	seenGPR2
	seenR8
	seenR12
	seenRIP
	seenCS
)

// Parser decodes QEMU's x86 "-d cpu" log incrementally. It keeps one line
// of lookahead and allocates nothing per state. Lines that are not part of
// a register dump ("Trace 0: ...", "IN:" blocks, "----", disassembly) are
// skipped. A Parser is not safe for concurrent use.
type Parser struct {
	r       *bufio.Reader
	line    uint64 // lines read
	seq     uint64 // states emitted
	cur     State  // the block being decoded
	csBase  uint64
	seen    uint
	inBlock bool
	sawAny  bool
	first   []byte // first non-empty line, for ErrUnknownFormat
	bytes   uint64
}

// NewParser returns a Parser reading from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{r: bufio.NewReaderSize(r, bufSize)}
}

// Bytes returns the number of bytes consumed so far.
func (p *Parser) Bytes() uint64 { return p.bytes }

// Line returns the number of lines consumed so far.
func (p *Parser) Line() uint64 { return p.line }

// Next decodes the next state into s. It returns io.EOF after the last
// state, a *FormatError for undecodable input, or the reader's error.
func (p *Parser) Next(s *State) error {
	for {
		line, rerr := p.r.ReadSlice('\n')
		p.bytes += uint64(len(line))
		if rerr == bufio.ErrBufferFull {
			if kindOf(line) != lineOther {
				p.line++
				return p.errf(line, ErrMalformed, "line longer than %d bytes", bufSize)
			}
			// An over-long line that is not state: skip the rest of it.
			for rerr == bufio.ErrBufferFull {
				var more []byte
				more, rerr = p.r.ReadSlice('\n')
				p.bytes += uint64(len(more))
			}
			p.line++
			if rerr != nil && rerr != io.EOF {
				return fmt.Errorf("trace: read: %w", rerr)
			}
			line = nil
		} else if len(line) > 0 {
			p.line++
		}
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
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
					Msg: "no register dump (RAX=/EAX=) in the input; expected QEMU -d cpu output, first line was"}
			}
			return io.EOF
		}
		if rerr != nil {
			return fmt.Errorf("trace: read: %w", rerr)
		}
	}
}

// handle decodes one line; done reports that s was filled.
func (p *Parser) handle(line []byte, s *State) (done bool, err error) {
	k := kindOf(line)
	if k == lineStart {
		if p.inBlock {
			if err := p.emit(s, line); err != nil {
				return false, err
			}
			done = true
		}
		p.sawAny = true
		p.inBlock = true
		p.cur = State{Mode: 32}
		p.csBase = 0
		p.seen = 0
		if line[0] == 'R' {
			p.cur.Mode = 64
		}
		return done, p.regLine(line, seenGPR1)
	}
	if !p.inBlock {
		if k == lineOther && len(bytes.TrimSpace(line)) > 0 {
			if p.first == nil {
				p.first = append([]byte(nil), trunc(line)...)
			}
			if !p.sawAny && p.line >= maxPreamble {
				return false, p.errf(p.first, ErrUnknownFormat,
					"no register dump (RAX=/EAX=) in the first %d lines; first line was", maxPreamble)
			}
		}
		return false, nil
	}
	switch k {
	case lineGPR2:
		return false, p.regLine(line, seenGPR2)
	case lineR8:
		return false, p.regLine(line, seenR8)
	case lineR12:
		return false, p.regLine(line, seenR12)
	case lineRIP:
		return false, p.regLine(line, seenRIP)
	case lineCR, lineEFER:
		return false, p.regLine(line, 0)
	case lineSeg:
		return false, p.segLine(line)
	}
	return false, nil
}

// emit validates the finished block and copies it to s. next is the line
// that ended the block (nil at EOF), for error messages.
func (p *Parser) emit(s *State, next []byte) error {
	need := uint(seenGPR1 | seenGPR2 | seenRIP)
	if p.cur.Mode == 64 {
		need |= seenR8 | seenR12
	}
	if p.seen&need != need {
		if next == nil {
			return p.errf(nil, io.ErrUnexpectedEOF, "log ends inside a register dump")
		}
		return p.errf(next, ErrMalformed, "register dump interrupted before its RIP/EIP line by")
	}
	p.cur.Seq = p.seq
	p.seq++
	pc := p.csBase + p.cur.Regs[RIP]
	if p.cur.Mode == 32 {
		pc &= 0xffffffff
	}
	p.cur.PC = pc
	*s = p.cur
	return nil
}

func (p *Parser) errf(line []byte, sentinel error, format string, args ...any) error {
	return &FormatError{Line: p.line, Text: string(trunc(line)), Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

func trunc(b []byte) []byte {
	if len(b) > 120 {
		return b[:120]
	}
	return b
}

type lineKind uint8

const (
	lineOther lineKind = iota
	lineStart
	lineGPR2
	lineR8
	lineR12
	lineRIP
	lineSeg
	lineCR
	lineEFER
	lineSkip // known dump line without compared state (LDT, DR0, XMM ...)
)

// kindOf classifies a line by its prefix.
func kindOf(l []byte) lineKind {
	if len(l) < 4 {
		return lineOther
	}
	switch string(l[:4]) {
	case "RAX=", "EAX=":
		return lineStart
	case "RSI=", "ESI=":
		return lineGPR2
	case "R8 =":
		return lineR8
	case "R12=":
		return lineR12
	case "RIP=", "EIP=":
		return lineRIP
	case "ES =", "CS =", "SS =", "DS =", "FS =", "GS =":
		return lineSeg
	case "CR0=":
		return lineCR
	case "EFER":
		return lineEFER
	case "LDT=", "TR =", "GDT=", "IDT=", "DR0=", "DR6=", "CCS=", "FCW=", "FPR0", "FPR2", "FPR4", "FPR6",
		"XMM0", "XMM1", "YMM0", "YMM1", "ZMM0", "ZMM1", "ZMM2", "ZMM3", "Opma":
		return lineSkip
	}
	return lineOther
}

// regLine decodes "KEY=hex KEY=hex ..." pairs; keys are the last word
// before each '=' so "R8 =..." and "[---Z-P-] CPL=0" both work.
func (p *Parser) regLine(line []byte, bit uint) error {
	i := 0
	for i < len(line) {
		eq := bytes.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		eq += i
		ke := eq
		for ke > i && line[ke-1] == ' ' {
			ke--
		}
		ks := ke
		for ks > i && line[ks-1] != ' ' {
			ks--
		}
		key := line[ks:ke]
		v, n, ok := parseHex(line[eq+1:])
		if end := eq + 1 + n; !ok || end < len(line) && line[end] != ' ' {
			return p.errf(line, ErrMalformed, "bad hex value for %q", key)
		}
		i = eq + 1 + n
		switch string(key) {
		case "CPL":
			p.cur.CPL = uint8(v)
			continue
		case "HLT":
			p.cur.Halted = v != 0
			continue
		}
		if r := regForKey(key); r >= 0 {
			p.cur.Regs[r] = v
		}
	}
	p.seen |= bit
	return nil
}

// segLine decodes "CS =sel base limit flags [...]".
func (p *Parser) segLine(line []byte) error {
	sel, n, ok := parseHex(line[4:])
	if !ok || 4+n >= len(line) || line[4+n] != ' ' {
		return p.errf(line, ErrMalformed, "bad segment selector")
	}
	base, _, ok := parseHex(line[5+n:])
	if !ok {
		return p.errf(line, ErrMalformed, "bad segment base")
	}
	switch string(line[:2]) {
	case "ES":
		p.cur.Regs[ES] = sel
	case "CS":
		p.cur.Regs[CS] = sel
		p.csBase = base
		p.seen |= seenCS
	case "SS":
		p.cur.Regs[SS] = sel
	case "DS":
		p.cur.Regs[DS] = sel
	case "FS":
		p.cur.Regs[FS] = sel
		p.cur.Regs[FSBase] = base
	case "GS":
		p.cur.Regs[GS] = sel
		p.cur.Regs[GSBase] = base
	}
	return nil
}

func regForKey(k []byte) int {
	switch string(k) {
	case "RAX", "EAX":
		return RAX
	case "RBX", "EBX":
		return RBX
	case "RCX", "ECX":
		return RCX
	case "RDX", "EDX":
		return RDX
	case "RSI", "ESI":
		return RSI
	case "RDI", "EDI":
		return RDI
	case "RBP", "EBP":
		return RBP
	case "RSP", "ESP":
		return RSP
	case "R8":
		return R8
	case "R9":
		return R9
	case "R10":
		return R10
	case "R11":
		return R11
	case "R12":
		return R12
	case "R13":
		return R13
	case "R14":
		return R14
	case "R15":
		return R15
	case "RIP", "EIP":
		return RIP
	case "RFL", "EFL":
		return RFL
	case "CR0":
		return CR0
	case "CR2":
		return CR2
	case "CR3":
		return CR3
	case "CR4":
		return CR4
	case "EFER":
		return EFER
	}
	return -1
}

// parseHex decodes 1 to 16 leading hex digits of b.
func parseHex(b []byte) (v uint64, n int, ok bool) {
	for n < len(b) {
		c := b[n]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return v, n, n > 0
		}
		if n == 16 {
			return 0, n, false
		}
		v = v<<4 | uint64(d)
		n++
	}
	return v, n, n > 0
}
