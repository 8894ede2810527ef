package qemu

import (
	"context"
	"fmt"
)

// ReplayInfo is QMP query-replay's answer.
type ReplayInfo struct {
	// Mode is "none", "record" or "play".
	Mode     string `json:"mode"`
	Filename string `json:"filename,omitempty"`
	// ICount is the number of instructions the guest has executed.
	ICount uint64 `json:"icount"`
}

// Replay asks QEMU for its record/replay state and instruction count
// (QMP query-replay, QEMU 5.2 and later).
func (q *QMP) Replay(ctx context.Context) (ReplayInfo, error) {
	var ri ReplayInfo
	if err := q.Execute(ctx, "query-replay", nil, &ri); err != nil {
		return ri, fmt.Errorf("query-replay: %w", err)
	}
	return ri, nil
}

// ICount returns the number of instructions the guest has executed
// (under -icount; QMP query-replay).
func (i *Instance) ICount(ctx context.Context) (uint64, error) {
	ri, err := i.QMP.Replay(ctx)
	return ri.ICount, err
}

// ReplayBreak sets the replay breakpoint: a replaying guest stops (run
// state paused; a gdbstub continue returns) when it has executed icount
// instructions. One replay breakpoint exists at a time; a new one
// replaces it. QMP replay-break, QEMU 5.2 and later; replay mode only.
func (i *Instance) ReplayBreak(ctx context.Context, icount uint64) error {
	if err := i.QMP.Execute(ctx, "replay-break", map[string]any{"icount": icount}, nil); err != nil {
		return fmt.Errorf("replay-break %d: %w", icount, err)
	}
	return nil
}

// ReplayDeleteBreak removes the replay breakpoint (QMP
// replay-delete-break).
func (i *Instance) ReplayDeleteBreak(ctx context.Context) error {
	if err := i.QMP.Execute(ctx, "replay-delete-break", nil, nil); err != nil {
		return fmt.Errorf("replay-delete-break: %w", err)
	}
	return nil
}
