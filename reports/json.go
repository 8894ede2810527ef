package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/lockstep-dev/lockstep/compare"
	"github.com/lockstep-dev/lockstep/lockstep"
)

// MaxJSONSize bounds the document ReadJSON accepts.
const MaxJSONSize = 256 << 20

func renderJSON(w io.Writer, r *lockstep.Result) error {
	c := *r
	if c.Schema == "" {
		c.Schema = lockstep.SchemaVersion
	}
	if c.Syncs == nil {
		c.Syncs = []lockstep.SyncResult{}
	}
	if c.Divergences == nil {
		c.Divergences = []compare.Divergence{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// ReadJSON decodes a Result written by the json format. It fails with an
// error matching ErrSchema unless the document's schema is
// lockstep.SchemaVersion, and rejects documents over MaxJSONSize and
// trailing data. Unknown fields are ignored: later v1 writers may add some.
func ReadJSON(r io.Reader) (*lockstep.Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read json: %w", err)
	}
	if len(data) > MaxJSONSize {
		return nil, fmt.Errorf("read json: document exceeds %d bytes", MaxJSONSize)
	}
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("read json: %w", err)
	}
	switch {
	case probe.Schema == nil:
		return nil, fmt.Errorf("read json: %w: no \"schema\" field (want %q)", ErrSchema, lockstep.SchemaVersion)
	case *probe.Schema != lockstep.SchemaVersion:
		return nil, fmt.Errorf("read json: %w %q (this build reads %q)", ErrSchema, *probe.Schema, lockstep.SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var res lockstep.Result
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("read json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read json: trailing data after the result")
	}
	return &res, nil
}
