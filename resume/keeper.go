package resume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	stdsync "sync"
	"sync/atomic"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// Keeper holds a run's state and checkpoints it, locally and to the store,
// as a snapshot followed by a journal of what changed (see journal.go). It
// implements the sync engine's Checkpointer.
//
// It does not keep the outputs manifest, which is the sync engine's: the sync
// engine tells it each change (Record) and, at each Checkpoint, how to get a
// copy of the whole manifest for a snapshot.
//
// Saving locally and saving to the store are apart: a local disk that is full
// keeps nothing from the store, and a slow store keeps nothing from the local
// journal. When a local write fails, the state stays in memory and goes on
// to the store; a warning says so once, and each checkpoint tries the local
// disk again with a whole snapshot.
type Keeper struct {
	path   string       // local snapshot; the journal is beside it
	bucket *blob.Bucket // rooted at the run's prefix; may be nil
	log    *slog.Logger
	fs     fileSystem

	// mu guards what the state holds and the changes not yet saved. It is
	// never held across a write or a call out.
	mu       stdsync.Mutex
	meta     State // Version, Run, Store, Attempt, Restored
	uploads  map[string]stores.Progress
	sections map[string]json.RawMessage
	// outputs returns a copy of the whole manifest, for snapshots: the sync
	// engine's, from its first checkpoint (outputsKnown) on; before, Begin's,
	// which is the manifest until the first change is recorded (early).
	outputs      func() Manifest
	outputsKnown bool
	early        bool
	toLocal      record // changes not in the local journal yet
	toStore      record // changes not in the store yet

	// saveMu orders the local writes: the journal holds the changes in the
	// order they were made.
	saveMu     stdsync.Mutex
	localSeq   uint64 // the last record in the local journal
	localSnap  int64  // bytes of the local snapshot
	localLog   int64  // bytes of the local journal
	localStale bool   // the local files lack changes: the next write is a snapshot
	localWarn  bool   // a local failure was logged and not yet followed by a success

	store storeJournal // guarded by its own lock

	stored struct{ objects, bytes atomic.Int64 } // state objects put in the store
}

// StoreWrites returns how many objects of the state the Keeper has put in
// the store since it started, and their bytes: what checkpoints cost.
func (k *Keeper) StoreWrites() (objects, bytes int64) {
	return k.stored.objects.Load(), k.stored.bytes.Load()
}

// NewKeeper returns a Keeper that continues st, the state Begin returned and
// saved to path, saving to path and to bucket (nil: locally only).
func NewKeeper(path string, bucket *blob.Bucket, st *State, log *slog.Logger) *Keeper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keeper{
		path:     path,
		bucket:   bucket,
		log:      log.With("component", "state"),
		fs:       osFS{},
		meta:     State{Version: Version, Run: st.Run, Store: st.Store, Attempt: st.Attempt, Restored: st.Restored},
		uploads:  maps.Clone(st.Uploads),
		sections: maps.Clone(st.Sections),
		localSeq: st.Seq,
	}
	if k.uploads == nil {
		k.uploads = map[string]stores.Progress{}
	}
	if k.sections == nil {
		k.sections = map[string]json.RawMessage{}
	}
	// Until the sync engine's first checkpoint says where the manifest is,
	// the one Begin returned is it.
	initial := st.Outputs
	k.outputs = func() Manifest { return initial.Clone() }
	if fi, err := os.Stat(path); err == nil {
		k.localSnap = fi.Size()
	} else {
		k.localStale = true // Begin could not save it: start with a snapshot
	}
	return k
}

// Record notes that the store now holds e for the output rel, or nothing
// when e is nil (deleted). The change is saved by the next Checkpoint. It is
// cheap, made to be called at each change under the caller's own lock.
func (k *Keeper) Record(rel string, e *Entry) {
	k.mu.Lock()
	k.early = k.early || !k.outputsKnown
	k.toLocal.setOutput(rel, e)
	k.toStore.setOutput(rel, e)
	k.mu.Unlock()
}

// Checkpoint saves the changes recorded since the last checkpoint: a record
// appended to the local journal, and one put in the store. outputs returns a
// copy of the whole manifest, which the Keeper calls when it writes a
// snapshot; it must hold every change Record was told of before the call.
// The error is the store's: a local disk that refuses the record is logged
// and the state kept in memory.
func (k *Keeper) Checkpoint(ctx context.Context, outputs func() Manifest) error {
	k.mu.Lock()
	k.outputs, k.outputsKnown = outputs, true
	k.mu.Unlock()
	k.saveLocal(true)
	return k.saveStore(ctx)
}

// Flush saves every change not saved yet, locally and to the store: the
// run's final checkpoint, after every component has finished.
func (k *Keeper) Flush(ctx context.Context) error {
	k.saveLocal(true)
	return k.saveStore(ctx)
}

// SaveProgress records a large upload's progress. It runs after every part,
// so it appends only that progress to the local journal, without fsync: what
// it guards against is a killed process, and a part lost with the machine is
// listed again from the store. The store gets it with the next checkpoint.
// A local disk that refuses it does not stop the upload: it is kept in memory.
func (k *Keeper) SaveProgress(_ context.Context, p stores.Progress) error {
	k.mu.Lock()
	k.uploads[p.Key] = p
	k.toLocal.setUpload(p.Key, &p)
	k.toStore.setUpload(p.Key, &p)
	k.mu.Unlock()
	k.saveLocal(false)
	return nil
}

// DropProgress forgets a large upload that finished or was abandoned.
func (k *Keeper) DropProgress(_ context.Context, key string) error {
	k.mu.Lock()
	delete(k.uploads, key)
	k.toLocal.setUpload(key, nil)
	k.toStore.setUpload(key, nil)
	k.mu.Unlock()
	k.saveLocal(false)
	return nil
}

// whole returns the state as it is now, but for the manifest, and the
// function that gives the manifest; nil when the manifest is not known (the
// sync engine recorded changes and has not checkpointed yet: a snapshot
// waits for its first checkpoint). k.mu is held.
func (k *Keeper) whole() (*State, func() Manifest) {
	st := k.meta
	st.Uploads = maps.Clone(k.uploads)
	st.Sections = maps.Clone(k.sections)
	if k.early && !k.outputsKnown {
		return &st, nil
	}
	return &st, k.outputs
}

// saveLocal appends the changes not saved locally yet to the local journal,
// and writes a snapshot instead when the journal has outgrown the snapshot
// or the local files lack changes. retry says the caller is a checkpoint,
// which tries a snapshot again after a failure (a save of progress does
// not: it comes after every part).
func (k *Keeper) saveLocal(retry bool) {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	rec := k.toLocal
	k.toLocal = record{}
	k.mu.Unlock()
	if k.localStale {
		// A snapshot holds every change; only a checkpoint tries it, or a
		// failing disk would be written a whole state after every part.
		if retry {
			k.snapshotLocal()
		}
		return
	}
	if !rec.empty() {
		rec.Seq = k.localSeq + 1
		line, err := appendRecord(nil, &rec)
		if err == nil {
			err = k.fs.Append(journalPath(k.path), line, rec.durable())
		}
		if err != nil {
			k.localFailed(err)
			return
		}
		k.localSeq = rec.Seq
		k.localLog += int64(len(line))
		k.localSaved()
	}
	if k.localLog > compactAt(k.localSnap) {
		k.snapshotLocal()
	}
}

// snapshotLocal replaces the local snapshot and journal with a snapshot of
// the state as it is now. k.saveMu is held.
func (k *Keeper) snapshotLocal() {
	k.mu.Lock()
	st, outputs := k.whole()
	k.mu.Unlock()
	if outputs == nil {
		return // the sync engine's first checkpoint writes it
	}
	// The manifest is taken after the state's other parts: it may hold
	// changes of records after localSeq, which then set what it holds
	// already.
	st.Seq = k.localSeq
	st.Outputs = outputs()
	size, removed, err := writeSnapshot(k.fs, k.path, st)
	if err != nil {
		k.localFailed(err)
		return
	}
	k.localSnap = size
	if removed {
		k.localLog = 0
	}
	k.localStale = false
	k.localSaved()
}

// localFailed keeps the state in memory after a local write failed: the
// local files are removed, so that a restart reads the store's copy rather
// than a stale one, and the next checkpoint tries a snapshot. The first
// failure is logged, not the ones that follow it. k.saveMu is held.
func (k *Keeper) localFailed(err error) {
	k.localStale = true
	k.localLog = 0
	if rmErr := removeLocal(k.fs, k.path); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove the stale local state: %w", rmErr))
	}
	if k.localWarn {
		k.log.Debug("cannot save the run's state locally", "path", k.path, "err", err)
		return
	}
	k.localWarn = true
	k.log.Warn("cannot save the run's state locally (is the disk full?); keeping it in memory and in the store, and trying again at each checkpoint",
		"path", k.path, "err", err)
}

// localSaved notes a local write that worked. k.saveMu is held.
func (k *Keeper) localSaved() {
	if k.localWarn {
		k.localWarn = false
		k.log.Info("saving the run's state locally again", "path", k.path)
	}
}
