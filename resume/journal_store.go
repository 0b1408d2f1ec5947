package resume

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
)

// In the store, the state is the snapshot at StateKey and the journal under
// JournalPrefix: immutable objects, each holding the records first to last,
// named "<first>-<last>.jsonl" with numbers of 20 digits, so that they list
// in order. A checkpoint puts one object of one record; every mergeAt of
// them are put again as one object and deleted, so that a restart reads few
// objects. A new snapshot is written, and the objects it replaces deleted,
// once the journal has outgrown compactAt of the snapshot, and by the first
// checkpoint of each attempt, which holds the attempt's number and whatever
// the store missed of the attempt before (records queued when it was killed).

// JournalPrefix is where the state's journal is, under the run's prefix.
const JournalPrefix = ".collector/journal/"

// SectionsKey is where a collector of state version 1 kept the components'
// sections, newer than the snapshot's. Version 2 keeps them in the journal.
const SectionsKey = ".collector/sections.json"

// mergeAt is how many one-record objects are merged into one.
const mergeAt = 64

// journalObject is one object of the journal in the store.
type journalObject struct {
	first, last uint64
	data        []byte // the records' lines; nil when only listed
}

func (o journalObject) key() string {
	return fmt.Sprintf("%s%020d-%020d.jsonl", JournalPrefix, o.first, o.last)
}

// parseJournalKey reads the records an object of the journal holds from its key.
func parseJournalKey(key string) (journalObject, bool) {
	name, ok := strings.CutPrefix(key, JournalPrefix)
	if !ok {
		return journalObject{}, false
	}
	name, ok = strings.CutSuffix(name, ".jsonl")
	a, b, ok2 := strings.Cut(name, "-")
	if !ok || !ok2 {
		return journalObject{}, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return journalObject{}, false
	}
	return journalObject{first: first, last: last}, true
}

// storeJournal is the Keeper's side of the state in the store. Its lock is
// held across the store's requests, and only by checkpoints: a save of
// progress or of a section never waits for the store.
type storeJournal struct {
	mu      stdsync.Mutex
	started bool            // this Keeper wrote a snapshot
	stale   bool            // the store lacks changes: the next write is a snapshot
	seq     uint64          // the last record numbered
	snap    int64           // bytes of the snapshot
	size    int64           // bytes of the records since the snapshot, put or queued
	queue   []journalObject // records not in the store yet, in order
	singles []journalObject // one-record objects not merged yet
}

// saveStore puts the changes not in the store yet as one record, after the
// records queued before it, or a snapshot when one is due. The state's
// first write to the store in an attempt is a snapshot; an attempt that
// changes nothing writes nothing. A snapshot due because the journal has
// outgrown the last one waits for the manifest with the records going on
// meanwhile; one due because the store lacks changes holds them.
func (k *Keeper) saveStore(ctx context.Context) error {
	j := &k.store
	j.mu.Lock()
	defer j.mu.Unlock()
	defer func() { k.storeDue.Store(k.bucket != nil && (!j.started || j.stale || j.size > compactAt(j.snap))) }()
	k.mu.Lock()
	rec := k.toStore
	k.toStore = record{}
	k.mu.Unlock()
	if k.bucket == nil {
		return nil
	}
	if !rec.empty() {
		if !j.started || j.stale {
			j.stale = true // the snapshot holds the changes
		} else {
			rec.Seq = j.seq + 1
			line, err := appendJournalLine(nil, &rec)
			if err != nil {
				return err
			}
			j.seq = rec.Seq
			j.queue = append(j.queue, journalObject{first: rec.Seq, last: rec.Seq, data: line})
			j.size += int64(len(line))
		}
	}
	if j.stale || j.size > compactAt(j.snap) { // also when the queue grew while the store was down
		if written, err := k.snapshotStore(ctx); written || err != nil || j.stale {
			return err
		}
	}
	for len(j.queue) > 0 {
		o := j.queue[0]
		if err := k.putState(ctx, o.key(), o.data); err != nil {
			return err
		}
		j.queue = j.queue[1:]
		j.singles = append(j.singles, o)
	}
	if len(j.singles) >= mergeAt {
		k.mergeStore(ctx)
	}
	return nil
}

// snapshotStore puts a snapshot of the state as it is now at StateKey, then
// deletes the journal objects it replaces. It writes nothing when the Keeper
// lacks the manifest. j.mu is held.
func (k *Keeper) snapshotStore(ctx context.Context) (bool, error) {
	j := &k.store
	k.mu.Lock()
	has := k.outputs != nil || k.begun != nil
	k.mu.Unlock()
	if !has {
		return false, nil // written once the sync engine hands the manifest over
	}
	j.stale = true // from here, what the store lacks waits for the snapshot
	// The journal as the store has it, also an earlier attempt's: the
	// snapshot comes after all of it.
	old, err := listJournal(ctx, k.bucket)
	if err != nil {
		return false, err
	}
	for _, o := range old {
		j.seq = max(j.seq, o.last)
	}
	k.mu.Lock()
	st := k.whole(k.localDue.Load())
	if st == nil {
		k.mu.Unlock()
		return false, nil // written once the sync engine hands the manifest over
	}
	k.toStore = record{}
	k.mu.Unlock()
	j.queue = nil // the snapshot holds them
	st.Seq = j.seq
	size, err := k.putSnapshot(ctx, st)
	if err != nil {
		return false, err
	}
	first := !j.started
	j.started, j.stale = true, false
	j.snap, j.size, j.singles = size, 0, nil
	// The snapshot is in the store: what it replaces can go. What cannot is
	// skipped by a reader (its records are up to the snapshot's Seq) and
	// deleted by the next snapshot.
	for _, o := range old {
		k.deleteState(ctx, o.key())
	}
	if first {
		k.deleteState(ctx, SectionsKey) // version 1's, in the snapshot now
	}
	return true, nil
}

// mergeStore puts the one-record objects not merged yet again as one object,
// then deletes them. A failure is logged: the records are in the store all
// the same. j.mu is held.
func (k *Keeper) mergeStore(ctx context.Context) {
	j := &k.store
	merged := journalObject{first: j.singles[0].first, last: j.singles[len(j.singles)-1].last}
	for _, o := range j.singles {
		merged.data = append(merged.data, o.data...)
	}
	if err := k.putState(ctx, merged.key(), merged.data); err != nil {
		k.log.Warn("cannot merge the state's journal records in the store; trying again at the next checkpoint", "err", err)
		return
	}
	for _, o := range j.singles {
		k.deleteState(ctx, o.key())
	}
	j.singles = nil
}

func (k *Keeper) putState(ctx context.Context, key string, data []byte) error {
	if err := stores.Upload(ctx, k.bucket, key, bytes.NewReader(data), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("save the run's state to the store: %w", err)
	}
	k.stored.objects.Add(1)
	k.stored.bytes.Add(int64(len(data)))
	return nil
}

// putSnapshot streams st to StateKey as it encodes it, so that a snapshot
// of a large manifest costs the store writer's buffer rather than the whole
// encoded state in memory, and returns its size.
func (k *Keeper) putSnapshot(ctx context.Context, st *State) (int64, error) {
	pr, pw := io.Pipe()
	var size int64
	encoded := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		n, err := writeState(bw, st)
		if err == nil {
			err = bw.Flush()
		}
		size = n
		pw.CloseWithError(err)
		encoded <- err
	}()
	err := stores.Upload(ctx, k.bucket, StateKey, pr, &blob.WriterOptions{ContentType: "application/json"})
	pr.CloseWithError(errors.New("the upload ended")) // unblocks the encoder when the upload failed
	if encErr := <-encoded; err == nil && encErr != nil {
		err = encErr
	}
	if err != nil {
		return 0, fmt.Errorf("save the run's state to the store: %w", err)
	}
	k.stored.objects.Add(1)
	k.stored.bytes.Add(size)
	return size, nil
}

// deleteState deletes an object the state no longer needs; a failure is
// logged, and left for the next snapshot.
func (k *Keeper) deleteState(ctx context.Context, key string) {
	if err := k.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		k.log.Debug("cannot delete a replaced part of the run's state from the store", "key", key, "err", stores.Redact(err))
	}
}

// listJournal lists the objects of the state's journal in the store, by
// their first record, the widest first where two start together (a merge
// whose one-record objects were not deleted yet).
func listJournal(ctx context.Context, b *blob.Bucket) ([]journalObject, error) {
	var objs []journalObject
	it := stores.List(b, &blob.ListOptions{Prefix: JournalPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list the run's state journal in the store: %w", err)
		}
		if o, ok := parseJournalKey(obj.Key); ok {
			objs = append(objs, o)
		}
	}
	slices.SortFunc(objs, func(a, b journalObject) int {
		if a.first != b.first {
			return cmpUint(a.first, b.first)
		}
		return cmpUint(b.last, a.last)
	})
	return objs, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// journalReaders is how many journal objects a restart reads at once.
const journalReaders = 16

// readStoreState reads the run's state from the store: the snapshot and the
// journal's records after it, in order. It returns nil when there is none. A
// last record cut short is ignored; a missing or corrupt record before the
// last is an error naming its object.
func readStoreState(ctx context.Context, b *blob.Bucket, run string) (*State, error) {
	var st *State
	data, err := b.ReadAll(ctx, StateKey)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
	case err != nil:
		return nil, fmt.Errorf("read the run's state from the store: %w", err)
	default:
		if st, err = decode(data); err != nil {
			return nil, fmt.Errorf("the run's state in the store (%s): %w", StateKey, err)
		}
	}
	if st == nil || st.Version < 2 {
		if st, err = readSections(ctx, b, run, st); err != nil {
			return nil, err
		}
	}
	objs, err := listJournal(ctx, b)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return st, nil
	}
	if st == nil {
		return nil, fmt.Errorf("the run's state in the store has a journal (%s) but no snapshot (%s)", objs[0].key(), StateKey)
	}
	if err := replayJournal(ctx, b, st, objs); err != nil {
		return nil, err
	}
	return st, nil
}

// readSections reads a version 1 state's sections into st.
func readSections(ctx context.Context, b *blob.Bucket, run string, st *State) (*State, error) {
	data, err := b.ReadAll(ctx, SectionsKey)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("read the run's state sections from the store: %w", err)
	}
	if st == nil {
		// Components checkpointed, the outputs never did: an earlier
		// attempt ran.
		st = &State{Version: 1, Run: run, Attempt: 1, Outputs: Manifest{}}
	}
	if err := json.Unmarshal(data, &st.Sections); err != nil {
		return nil, fmt.Errorf("the run's state sections in the store (%s): corrupt: %w", SectionsKey, err)
	}
	return st, nil
}

// replayJournal applies to st the records of objs after st.Seq.
func replayJournal(ctx context.Context, b *blob.Bucket, st *State, objs []journalObject) error {
	var read []journalObject
	next := st.Seq + 1
	for _, o := range objs {
		if o.last < next {
			continue // in the snapshot, or in a merged object read already
		}
		if o.first > next {
			return fmt.Errorf("the run's state journal in the store lacks records %d to %d (%s is next)", next, o.first-1, o.key())
		}
		read = append(read, o)
		next = o.last + 1
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(journalReaders)
	for i := range read {
		g.Go(func() error {
			data, err := b.ReadAll(gctx, read[i].key())
			if err != nil {
				return fmt.Errorf("read the run's state journal %s from the store: %w", read[i].key(), err)
			}
			read[i].data = data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, o := range read {
		tail := i == len(read)-1
		err := readRecords(o.data, o.key(), tail, func(r *record) error {
			switch {
			case r.Seq <= st.Seq:
				return nil
			case r.Seq != st.Seq+1 || r.Seq > o.last:
				return fmt.Errorf("journal %s: record %d where %d was expected", o.key(), r.Seq, st.Seq+1)
			}
			r.apply(st)
			return nil
		})
		if err != nil {
			return err
		}
		if !tail && st.Seq != o.last {
			return fmt.Errorf("journal %s: records %d to %d are missing", o.key(), st.Seq+1, o.last)
		}
	}
	return nil
}
