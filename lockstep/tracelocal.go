package lockstep

import "context"

// traceable reports whether the trace engine can localise: both sides TCG
// on x86_64.
func (r *run) traceable() bool {
	return false
}

// localizeTrace localises the first divergent instruction between sync
// points k-1 and k with QEMU's per-instruction CPU log instead of gdbstub
// single steps. It reports whether it recorded a divergence.
func (r *run) localizeTrace(ctx context.Context, pair [2]*side, k int) (bool, error) {
	return false, nil
}
