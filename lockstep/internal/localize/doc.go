// Package localize finds where two guests parted between a matching sync
// point and a divergent one. A Rewinder gives it a pair of guests standing
// at the earlier sync point, by relaunching and replaying (Relaunch) or by
// restoring a VM snapshot of the run's own guests (Snapshot); the
// localisers then work on that pair alone: by instruction (gdbstub
// stepping or the trace engine, one binary), by function entry (two
// builds), and by write watchpoint (the store that made memory differ).
// Bisector localises one binary's divergence by QEMU record/replay
// instead: it records both guests once, replays them to instruction
// counts between the sync points, compares registers (and the sync
// point's compared memory under 1 MiB), narrows the window and steps the
// last instructions.
package localize
