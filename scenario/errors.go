package scenario

import (
	"fmt"
	"sort"
	"strings"
)

// Position is a place in a scenario file. Line and Col are 1-based; Col is 0
// when only the line is known (YAML syntax errors).
type Position struct {
	File string
	Line int
	Col  int
}

// String returns "file:line:col", or "file:line" when the column is unknown.
func (p Position) String() string {
	if p.Col == 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsValid reports whether p names a line.
func (p Position) IsValid() bool { return p.Line > 0 }

// Error is one problem found in a scenario, at a position.
type Error struct {
	Pos Position
	Msg string
	// Err is the underlying cause, if any (e.g. a Resolver's error); Msg
	// already includes its text.
	Err error
}

// Error returns "file:line:col: msg".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a scenario, in file order. Parse, Load
// and CheckSymbols return it (never empty) so that callers can list all
// problems at once; errors.As(err, &errs) recovers it, and errors.As(err,
// &e) with e *Error recovers the first problem.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errorList collects problems during decoding and validation.
type errorList struct {
	errs Errors
}

func (l *errorList) addf(pos Position, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// wrap records a problem caused by err.
func (l *errorList) wrap(pos Position, err error, format string, args ...any) {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	l.errs = append(l.errs, &Error{Pos: pos, Msg: msg, Err: err})
}

// err returns the collected problems sorted by position, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Pos, l.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l.errs
}
