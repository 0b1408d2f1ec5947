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
// The outputs manifest is the sync engine's, which tells the Keeper each
// change (Record) for the journal. A snapshot holds the whole manifest: when
// one is due the Keeper asks for it (WantsManifest), and the sync engine
// hands a copy over (TakeManifest) before its next Checkpoint.
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
	// begun is the manifest Begin returned, read and never changed: the
	// snapshots' until the sync engine records a change (a collector without
	// the outputs sync never does).
	begun Manifest
	// outputs is the copy of the whole manifest the sync engine handed over
	// for a snapshot that was due, with the changes recorded since applied
	// to it; the snapshot takes it.
	outputs Manifest
	toLocal record // changes not in the local journal yet
	toStore record // changes not in the store yet
	// localDue and storeDue say a snapshot is due there: the next write is
	// one, or the journal has outgrown the snapshot.
	localDue, storeDue atomic.Bool

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
	k.begun = st.Outputs
	if k.begun == nil {
		k.begun = Manifest{}
	}
	if fi, err := os.Stat(path); err == nil {
		k.localSnap = fi.Size()
	} else {
		k.localStale = true // Begin could not save it: start with a snapshot
		k.localDue.Store(true)
	}
	k.storeDue.Store(bucket != nil) // an attempt's first write to the store is a snapshot
	return k
}

// Record notes that the store now holds e for the output rel, or nothing
// when e is nil (deleted). The change is saved by the next Checkpoint. It is
// cheap, made to be called at each change under the caller's own lock.
func (k *Keeper) Record(rel string, e *Entry) {
	k.mu.Lock()
	k.begun = nil
	switch {
	case k.outputs == nil:
	case e == nil:
		delete(k.outputs, rel)
	default:
		k.outputs[rel] = e
	}
	k.toLocal.setOutput(rel, e)
	k.toStore.setOutput(rel, e)
	k.mu.Unlock()
}

// WantsManifest tells whether a snapshot is due and waits for the whole
// manifest: the sync engine then hands a copy over (TakeManifest) before
// its next Checkpoint. Until then the changes go on in the journal.
func (k *Keeper) WantsManifest() bool {
	k.mu.Lock()
	has := k.outputs != nil || k.begun != nil
	k.mu.Unlock()
	return !has && (k.localDue.Load() || k.storeDue.Load())
}

// TakeManifest hands the Keeper m, a copy of the whole manifest, for the
// snapshots that are due; the Keeper keeps it until they are written. It
// must be called under the lock Record is called under, so that m holds
// exactly the changes recorded before it.
func (k *Keeper) TakeManifest(m Manifest) {
	k.mu.Lock()
	k.outputs = m
	k.mu.Unlock()
}

// Checkpoint saves the changes recorded since the last checkpoint: a record
// appended to the local journal, and one put in the store, or a snapshot
// where one is due and the Keeper has the manifest. The error is the
// store's: a local disk that refuses the record is logged and the state
// kept in memory.
func (k *Keeper) Checkpoint(ctx context.Context) error {
	k.saveLocal(true)
	err := k.saveStore(ctx)
	if !k.localDue.Load() && !k.storeDue.Load() {
		k.mu.Lock()
		k.outputs = nil // a snapshot that was due took it, or none is due any more
		k.mu.Unlock()
	}
	return err
}

// Flush saves every change not saved yet, locally and to the store: the
// run's final checkpoint, after every component has finished.
func (k *Keeper) Flush(ctx context.Context) error {
	return k.Checkpoint(ctx)
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

// whole returns the state as it is now, for a snapshot, or nil when the
// Keeper lacks the manifest (the sync engine hands it over when asked). A
// snapshot takes the manifest the sync engine handed over, or a copy of it
// when keep (the other snapshot is due too). k.mu is held.
func (k *Keeper) whole(keep bool) *State {
	st := k.meta
	switch {
	case k.outputs != nil && keep:
		st.Outputs = k.outputs.Clone()
	case k.outputs != nil:
		st.Outputs, k.outputs = k.outputs, nil
	case k.begun != nil:
		st.Outputs = k.begun
	default:
		return nil
	}
	st.Uploads = maps.Clone(k.uploads)
	st.Sections = maps.Clone(k.sections)
	return &st
}

// saveLocal appends the changes not saved locally yet to the local journal,
// and writes a snapshot instead when the journal has outgrown the snapshot
// or the local files lack changes. retry says the caller is a checkpoint,
// which tries a snapshot again after a failure (a save of progress does
// not: it comes after every part).
func (k *Keeper) saveLocal(retry bool) {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	defer func() { k.localDue.Store(k.localStale || k.localLog > compactAt(k.localSnap)) }()
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
		line, err := appendJournalLine(nil, &rec)
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
	st := k.whole(k.storeDue.Load())
	k.mu.Unlock()
	if st == nil {
		return // written once the sync engine hands the manifest over
	}
	// The manifest may hold changes not in the journal yet (in toLocal):
	// their records, after localSeq, set what it holds already.
	st.Seq = k.localSeq
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
