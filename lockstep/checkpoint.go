package lockstep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockstep-dev/lockstep/rsp"
	"github.com/lockstep-dev/lockstep/scenario"
)

// Checkpoints (docs/checkpoints.md). Localisation needs both guests back at
// sync point k-1 after sync point k diverged. It can relaunch both and
// replay from boot ("restart"), or restore a VM snapshot taken when the
// guests stood at k-1 ("snapshot"). Snapshots go to a scratch qcow2 in the
// run directory, hot-plugged with QMP blockdev-add, so no command line
// changes; HMP savevm/loadvm write and read them (faster here than the QMP
// snapshot-save/snapshot-load jobs, which the benchmark also measures).

// ckptNode is the block node name of the scratch qcow2 in each QEMU.
const ckptNode = "lockstep-ckpt"

// ckptImageSize is the virtual size of the scratch qcow2. The file is
// sparse: only the saved VM state takes space.
const ckptImageSize = "1G"

// Bounds of the checkpoint operations. A snapshot of a 512M guest takes
// well under a second here; the bounds leave room for a loaded machine.
const (
	ckptAttachTimeout = 10 * time.Second
	ckptJobTimeout    = 60 * time.Second
)

// Thresholds of localize.checkpoint: auto (docs/checkpoints.md). A
// snapshot is saved at a sync point only when getting there from boot took
// at least autoMinReplay: below it a relaunch plus replay costs less than
// the saves at every point, most of which are never restored.
const autoMinReplay = 1 * time.Second

// errNoCheckpoint means no snapshot of the wanted sync point exists.
var errNoCheckpoint = errors.New("no checkpoint")

// ckptTag names the snapshot taken at sync point k (0-based).
func ckptTag(k int) string { return fmt.Sprintf("lockstep-sync%d", k+1) }

// ckptFile is side s's scratch qcow2 in the run directory.
func (r *run) ckptFile(s *side) string {
	name := s.tag
	if name == "" {
		name = scenario.SideNames[s.idx]
	}
	return filepath.Join(r.dir, name+"-ckpt.qcow2")
}

// checkpointMode returns the scenario's localize.checkpoint, "auto" when
// unset.
func (r *run) checkpointMode() string {
	if m := r.sc.Localize.Checkpoint; m != "" {
		return m
	}
	return scenario.CheckpointAuto
}

// wantCheckpoint reports whether sync point k, which both sides reached,
// should be saved: localisation is on, the mode asks for snapshots, and
// under auto the run took long enough to get there that a replay would
// cost more than the saves.
func (r *run) wantCheckpoint(k int) bool {
	if !r.sc.Localize.Enabled || k >= len(r.sc.Sync)-1 {
		// The last sync point is never the k-1 of a localisation.
		return false
	}
	switch r.checkpointMode() {
	case scenario.CheckpointRestart:
		return false
	case scenario.CheckpointSnapshot:
		return true
	}
	return time.Since(r.start) >= autoMinReplay
}

// checkpointSyncPoint saves a snapshot of both guests at sync point k when
// the mode asks for it. It is meant to be called by syncPoint once both
// sides stand at sync point k, before a step window moves them on. A
// failure to save is a note, not an error: localisation then restarts.
func (r *run) checkpointSyncPoint(ctx context.Context, k int) error {
	if !r.wantCheckpoint(k) {
		return nil
	}
	have := true
	for _, s := range r.sides {
		if ok, err := hasSnapshot(ctx, s, ckptTag(k)); err != nil || !ok {
			have = false
		}
	}
	if have {
		return nil // localize saved it to come back to
	}
	t0 := time.Now()
	if err := r.checkpointSave(ctx, r.sides, k); err != nil {
		if ctx.Err() != nil {
			return err
		}
		r.note("checkpoint at sync point %d failed (%v); localisation will restart the guests", k+1, err)
		return nil
	}
	r.logf("checkpoint at sync point %d took %s", k+1, time.Since(t0).Round(time.Millisecond))
	return nil
}

// checkpointSave saves both sides of pair as the snapshot of sync point k,
// attaching the scratch qcow2 first if needed, and drops the snapshot of
// k-2, which no localisation can use any more.
func (r *run) checkpointSave(ctx context.Context, pair [2]*side, k int) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range pair {
		g.Go(func() error {
			if err := r.attachScratch(gctx, s); err != nil {
				return err
			}
			return s.withoutSoftwareBreakpoints(gctx, func() error {
				return hmpSnapshot(gctx, s, "savevm", ckptTag(k))
			})
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if k >= 2 {
		for _, s := range pair {
			// Best effort: a stale snapshot only costs disk space.
			if err := hmpSnapshot(ctx, s, "delvm", ckptTag(k-2)); err != nil {
				r.logf("checkpoint: drop snapshot of sync point %d on %s: %v", k-1, s.name(), err)
			}
		}
	}
	return nil
}

// checkpointRestore loads the snapshot of sync point k into both sides of
// pair. Afterwards the guests stand at sync point k with the breakpoints
// they had before the load re-inserted; register values must be re-read
// (nothing caches them across calls). It wraps errNoCheckpoint when a side
// has no such snapshot.
func (r *run) checkpointRestore(ctx context.Context, pair [2]*side, k int) error {
	for _, s := range pair {
		ok, err := hasSnapshot(ctx, s, ckptTag(k))
		if err != nil {
			return fmt.Errorf("restore checkpoint: %w", err)
		}
		if !ok {
			return fmt.Errorf("restore checkpoint: guest %s, sync point %d: %w", s.name(), k+1, errNoCheckpoint)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range pair {
		g.Go(func() error {
			if s.exited {
				return fmt.Errorf("guest %s has exited", s.name())
			}
			// Every breakpoint comes out before the load and goes back in
			// after it (PROTOCOL.md §6): under KVM an int3 lives in RAM,
			// which the load replaces.
			bps := make(map[uint64]rsp.BreakKind, len(s.bps))
			for a, kind := range s.bps {
				bps[a] = kind
			}
			if err := s.removeAll(gctx); err != nil {
				return err
			}
			if err := hmpSnapshot(gctx, s, "loadvm", ckptTag(k)); err != nil {
				return err
			}
			for a, kind := range bps {
				if err := s.insert(gctx, kind, a); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("restore checkpoint: %w", err)
	}
	return nil
}

// withoutSoftwareBreakpoints runs f with the side's software breakpoints
// removed when the guest runs under KVM, where they are int3 bytes in RAM
// that a snapshot would capture (PROTOCOL.md §5-6), and puts them back.
func (s *side) withoutSoftwareBreakpoints(ctx context.Context, f func() error) error {
	if s.guest.Accel != scenario.AccelKVM {
		return f()
	}
	var sw []uint64
	for a, kind := range s.bps {
		if kind == rsp.Software {
			sw = append(sw, a)
		}
	}
	for _, a := range sw {
		if err := s.remove(ctx, a); err != nil {
			return err
		}
	}
	ferr := f()
	var errs []error
	for _, a := range sw {
		errs = append(errs, s.insert(ctx, rsp.Software, a))
	}
	return errors.Join(append([]error{ferr}, errs...)...)
}

// attachScratch creates side s's scratch qcow2 in the run directory and
// hot-plugs it into the side's QEMU as block node ckptNode, unless that was
// done already.
func (r *run) attachScratch(ctx context.Context, s *side) error {
	path := r.ckptFile(s)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ckptAttachTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, ckptImageSize).CombinedOutput()
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create scratch qcow2: %w: %s", err, strings.TrimSpace(string(out)))
	}
	args := map[string]any{
		"driver": "qcow2", "node-name": ckptNode,
		"file": map[string]any{"driver": "file", "filename": path},
	}
	if err := s.inst.QMP.Execute(ctx, "blockdev-add", args, nil); err != nil {
		os.Remove(path)
		return fmt.Errorf("guest %s: attach scratch qcow2: %w", s.name(), err)
	}
	return nil
}

// hmpSnapshot runs HMP savevm, loadvm or delvm with tag on side s's QEMU.
// These commands answer with an empty string on success and with the
// error text otherwise. HMP savevm measured 4-7x faster than the QMP
// snapshot-save job on the same guest (docs/checkpoints.md).
func hmpSnapshot(ctx context.Context, s *side, command, tag string) error {
	ctx, cancel := context.WithTimeout(ctx, ckptJobTimeout)
	defer cancel()
	out, err := s.inst.QMP.HMP(ctx, command+" "+tag)
	if err != nil {
		return fmt.Errorf("guest %s: %s: %w", s.name(), command, err)
	}
	if out = strings.TrimSpace(out); out != "" {
		return fmt.Errorf("guest %s: %s %s: %s", s.name(), command, tag, out)
	}
	return nil
}

// hasSnapshot reports whether side s's scratch node holds snapshot tag.
func hasSnapshot(ctx context.Context, s *side, tag string) (bool, error) {
	if s.inst == nil || s.inst.QMP == nil {
		return false, nil
	}
	var raw json.RawMessage
	if err := s.inst.QMP.Execute(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &raw); err != nil {
		return false, fmt.Errorf("guest %s: %w", s.name(), err)
	}
	tags, err := parseSnapshotTags(raw, ckptNode)
	if err != nil {
		return false, fmt.Errorf("guest %s: %w", s.name(), err)
	}
	for _, t := range tags {
		if t == tag {
			return true, nil
		}
	}
	return false, nil
}

// parseSnapshotTags returns the snapshot names of block node node in a
// query-named-block-nodes reply; none when the node is not attached.
func parseSnapshotTags(raw []byte, node string) ([]string, error) {
	var nodes []struct {
		NodeName string `json:"node-name"`
		Image    *struct {
			Snapshots []struct {
				Name string `json:"name"`
			} `json:"snapshots"`
		} `json:"image"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return nil, fmt.Errorf("query-named-block-nodes: %w", err)
	}
	var tags []string
	for _, n := range nodes {
		if n.NodeName != node || n.Image == nil {
			continue
		}
		for _, sn := range n.Image.Snapshots {
			tags = append(tags, sn.Name)
		}
	}
	return tags, nil
}

// restorePair brings the run's own guests back to sync point k-1 from
// their checkpoint for localising sync point k, after saving sync point k
// (where they stand) so that finishLocalize can return them there. It
// reports false, with nothing changed, when there is no checkpoint of k-1
// or the mode is restart.
func (r *run) restorePair(ctx context.Context, k int) (bool, error) {
	if r.checkpointMode() == scenario.CheckpointRestart || k == 0 {
		return false, nil
	}
	for _, s := range r.sides {
		ok, err := hasSnapshot(ctx, s, ckptTag(k-1))
		if err != nil || !ok {
			return false, nil
		}
	}
	t0 := time.Now()
	if err := r.checkpointSave(ctx, r.sides, k); err != nil {
		r.note("localisation: could not save sync point %d to come back to (%v); restarting the guests instead", k+1, err)
		return false, nil
	}
	if err := r.checkpointRestore(ctx, r.sides, k-1); err != nil {
		// The guests may be anywhere now: that is an infrastructure failure.
		return false, infra(fmt.Errorf("localisation: %w", err))
	}
	r.logf("checkpoint: restored sync point %d in %s", k, time.Since(t0).Round(time.Millisecond))
	return true, nil
}

// finishLocalize returns the run's own guests to sync point k after a
// localisation that used their checkpoint of k-1, so the run goes on from
// where it was.
func (r *run) finishLocalize(ctx context.Context, k int) error {
	for _, s := range r.sides {
		if s.exited {
			// The guest's QEMU ended with it: there is nothing to load
			// the snapshot into.
			return infra(fmt.Errorf("localisation: guest %s exited while localising; it cannot return to sync point %d (use localize.checkpoint: restart)", s.name(), k+1))
		}
	}
	if err := r.checkpointRestore(ctx, r.sides, k); err != nil {
		return infra(fmt.Errorf("localisation: back to sync point %d: %w", k+1, err))
	}
	return nil
}
