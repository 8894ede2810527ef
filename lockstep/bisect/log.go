package bisect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LogSchema identifies the layout of a log entry.
const LogSchema = "lockstep.bisect/v1"

// MaxLogLine bounds one line of a log.
const MaxLogLine = 1 << 20

// ErrLog is returned, wrapped in a *LogError, for a log that cannot be parsed.
var ErrLog = errors.New("bad bisect log")

// LogError locates a problem in a log.
type LogError struct {
	Line int
	Err  error
}

func (e *LogError) Error() string { return fmt.Sprintf("bisect log line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause and ErrLog.
func (e *LogError) Unwrap() []error { return []error{e.Err, ErrLog} }

// Entry is one line of a bisect log: the verdict on one commit.
type Entry struct {
	Schema  string  `json:"schema"`
	Commit  string  `json:"commit"`
	Subject string  `json:"subject,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Reason explains a skip, or notes a disagreement.
	Reason string `json:"reason,omitempty"`
	Runs   Counts `json:"runs"`
	// Signature is set on the bad end's entry: how it diverged.
	Signature *Signature `json:"signature,omitempty"`
	// BadEnd marks the entry of the --bad revision.
	BadEnd bool      `json:"bad_end,omitempty"`
	Time   time.Time `json:"time"`
}

// validate checks one entry.
func (e *Entry) validate() error {
	if e.Schema != LogSchema {
		return fmt.Errorf("schema %q, want %q", e.Schema, LogSchema)
	}
	if !isHash(e.Commit) {
		return fmt.Errorf("commit %q is not a full hex object name", e.Commit)
	}
	switch e.Verdict {
	case Good, Bad, Skip:
	default:
		return fmt.Errorf("verdict %q is not good, bad or skip", e.Verdict)
	}
	if e.Runs.Bad < 0 || e.Runs.Good < 0 || e.Runs.Other < 0 || e.Runs.Error < 0 {
		return errors.New("negative run count")
	}
	if e.BadEnd && e.Verdict == Bad && (e.Signature == nil || e.Signature.Kind == "") {
		return errors.New("bad end without a signature")
	}
	return nil
}

// isHash reports whether s is a 40 (SHA-1) or 64 (SHA-256) digit lowercase
// hex object name.
func isHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseLog reads a bisect log: JSON lines, one Entry each; blank lines are
// ignored. A last line without its newline that does not parse is the
// trace of an interrupted write and is dropped; any other bad line is a
// *LogError. A later entry for the same commit replaces an earlier one.
func ParseLog(r io.Reader) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []Entry
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return out, &LogError{Line: n, Err: err}
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			e, perr := parseEntry(line)
			switch {
			case perr == nil:
				out = append(out, e)
			case !complete && errors.Is(err, io.EOF):
				// An interrupted append: drop it.
			default:
				return out, &LogError{Line: n, Err: perr}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

// readLine reads one line, newline included, of at most MaxLogLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLogLine {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLogLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

func parseEntry(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("trailing data after the entry")
	}
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// ReadLog reads the log at path; a missing file is an empty log.
func ReadLog(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	return ParseLog(f)
}

// logWriter appends entries to a log file, one write and one sync each.
type logWriter struct{ f *os.File }

func openLog(path string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	// A previous run interrupted mid-line leaves no newline: start afresh.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		if last, err := lastByte(path); err == nil && last != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("append log: %w", err)
			}
		}
	}
	return &logWriter{f}, nil
}

func lastByte(path string) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()-1); err != nil {
		return 0, err
	}
	return b[0], nil
}

func (w *logWriter) append(e Entry) error {
	if w == nil {
		return nil
	}
	e.Schema = LogSchema
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append log: %w", err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append log: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("append log: %w", err)
	}
	return nil
}

func (w *logWriter) close() error {
	if w == nil {
		return nil
	}
	return w.f.Close()
}
