package resume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// engine stands for the sync engine in these tests: it owns the manifest,
// tells the Keeper each change under its lock, hands a copy of the manifest
// over when the Keeper wants one, and checkpoints.
type engine struct {
	mu     stdsync.Mutex
	m      Manifest
	k      *Keeper
	handed int // copies of the manifest handed over
}

// run starts an attempt of a run on bucket with its state in stateDir, as
// the collector does: Begin, then a Keeper over what Begin returned.
func run(t *testing.T, bucket *blob.Bucket, stateDir string, log *slog.Logger) (*engine, *State) {
	t.Helper()
	path := filepath.Join(stateDir, "state.json")
	st, _, err := Begin(context.Background(), BeginOptions{
		Run: "r", StatePath: path, Outputs: t.TempDir(), Bucket: bucket, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &engine{m: st.Outputs.Clone(), k: NewKeeper(path, bucket, st, log)}, st
}

func entryFor(rel string, version int) *Entry {
	return &Entry{Size: int64(len(rel) + version), ModTime: int64(version), Inode: 7, SHA256: digest(fmt.Appendf(nil, "%s %d", rel, version))}
}

func (e *engine) put(rel string, version int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ent := entryFor(rel, version)
	e.m[rel] = ent
	e.k.Record(rel, ent)
}

func (e *engine) delete(rel string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, rel)
	e.k.Record(rel, nil)
}

func (e *engine) manifest() Manifest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m.Clone()
}

// save checkpoints as the sync engine does.
func (e *engine) save(ctx context.Context) error {
	e.mu.Lock()
	if e.k.WantsManifest() {
		e.k.TakeManifest(e.m.Clone())
		e.handed++
	}
	e.mu.Unlock()
	return e.k.Checkpoint(ctx)
}

func (e *engine) checkpoint(t *testing.T) {
	t.Helper()
	if err := e.save(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sameManifest fails when got and want differ.
func sameManifest(t *testing.T, what string, got, want Manifest) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d files, want %d", what, len(got), len(want))
	}
	for rel, w := range want {
		if g := got[rel]; g == nil || *g != *w {
			t.Fatalf("%s: %s = %+v, want %+v", what, rel, g, w)
		}
	}
}

// storeState reads the run's state from the store, as a new pod would.
func storeState(t *testing.T, b *blob.Bucket) *State {
	t.Helper()
	st, err := readStoreState(context.Background(), b, "r")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.Fatal("no state in the store")
	}
	return st
}

// stateObjects returns the run's state objects in the store: key -> bytes.
func stateObjects(t *testing.T, b *blob.Bucket) map[string][]byte {
	t.Helper()
	objs := storetest.Objects(t, b, "")
	maps.DeleteFunc(objs, func(k string, _ []byte) bool { return !strings.HasPrefix(k, ".collector/") })
	return objs
}

func journalKeys(objs map[string][]byte) []string {
	var keys []string
	for k := range objs {
		if strings.HasPrefix(k, JournalPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// fileSize returns the size of the file at path, 0 when there is none.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCheckpointCostsWhatChanged: over a 10,000-file run, a checkpoint after
// one change puts one small object in the store and appends one small record
// locally; neither snapshot is written again. A new pod, and a restart on the
// same one, read the state back with the change.
func TestCheckpointCostsWhatChanged(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 10_000 {
		e.put(fmt.Sprintf("d%03d/f%06d.bin", i%100, i), 1)
	}
	e.checkpoint(t) // the attempt's first: a snapshot in the store
	before := stateObjects(t, b)
	if len(before[StateKey]) < 10_000*100 {
		t.Fatalf("the store's snapshot has %d bytes for 10,000 files", len(before[StateKey]))
	}
	localSnap, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	localLog := fileSize(t, filepath.Join(dir, "state.journal"))

	e.put("d042/f000042.bin", 2)
	e.delete("d043/f000043.bin")
	e.checkpoint(t)

	after := stateObjects(t, b)
	if !bytes.Equal(after[StateKey], before[StateKey]) {
		t.Error("the store's snapshot was written again for one change")
	}
	added := slices.DeleteFunc(journalKeys(after), func(k string) bool { _, ok := before[k]; return ok })
	if len(added) != 1 || len(after[added[0]]) > 512 {
		t.Fatalf("objects added to the store for one change: %v (%d bytes); want one of at most 512 bytes", added, len(after[added[0]]))
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "state.json")); !bytes.Equal(got, localSnap) {
		t.Error("the local snapshot was written again for one change")
	}
	if grew := fileSize(t, filepath.Join(dir, "state.journal")) - localLog; grew <= 0 || grew > 512 {
		t.Errorf("the local journal grew by %d bytes for one change; want 1 to 512", grew)
	}

	sameManifest(t, "state in the store", storeState(t, b).Outputs, e.manifest())
	local, err := Load(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	sameManifest(t, "local state", local.Outputs, e.manifest())

	// A new pod: no local state.
	_, st := run(t, b, t.TempDir(), nil)
	sameManifest(t, "new pod's state", st.Outputs, e.manifest())
	if st.Attempt != 2 {
		t.Errorf("new pod's attempt = %d, want 2", st.Attempt)
	}
	// A restart on the same pod: the local state.
	_, st = run(t, b, dir, nil)
	sameManifest(t, "restart's state", st.Outputs, e.manifest())
	if st.Attempt != 2 {
		t.Errorf("restart's attempt = %d, want 2", st.Attempt)
	}
}

// TestManifestHandedOverForSnapshotsOnly: the sync engine copies its
// manifest for the Keeper when a snapshot is due (the attempt's first in
// the store, a journal that outgrew its snapshot), not at every checkpoint;
// the state in the store and on disk is the engine's manifest all along.
func TestManifestHandedOverForSnapshotsOnly(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 2_000 {
		e.put(fmt.Sprintf("d%02d/f%05d.bin", i%20, i), 1)
	}
	e.checkpoint(t)
	if e.handed != 1 {
		t.Fatalf("the first checkpoint took %d copies of the manifest, want 1 (the store's snapshot, and the local one that its journal outgrew)", e.handed)
	}
	snap := fileSize(t, filepath.Join(dir, "state.json"))
	for i := range 100 {
		e.put(fmt.Sprintf("d%02d/f%05d.bin", i%20, i), 2)
		e.checkpoint(t)
	}
	if e.handed != 1 {
		t.Errorf("100 checkpoints of one change took %d copies of the manifest, want none", e.handed-1)
	}
	sameManifest(t, "store state", storeState(t, b).Outputs, e.manifest())
	sameManifest(t, "local state", mustLoad(t, filepath.Join(dir, "state.json")).Outputs, e.manifest())
	// Enough changes for the journals to outgrow a quarter of the snapshots.
	for round := range 3 {
		for i := range 2_000 {
			e.put(fmt.Sprintf("d%02d/f%05d.bin", i%20, i), 3+round)
			if i%100 == 99 {
				e.checkpoint(t)
			}
		}
	}
	// A record of 100 changes is about a twentieth of the snapshot: a
	// journal outgrows its snapshot every five checkpoints or so.
	if n := e.handed - 1; n < 2 || n > 60/4 {
		t.Errorf("60 checkpoints of 100 changes each took %d copies of the manifest; want one for each snapshot that replaced the journals, 2 to 15", n)
	}
	if got := fileSize(t, filepath.Join(dir, "state.json")); got == snap {
		t.Error("the local snapshot was never written again")
	}
	sameManifest(t, "store state", storeState(t, b).Outputs, e.manifest())
	sameManifest(t, "local state", mustLoad(t, filepath.Join(dir, "state.json")).Outputs, e.manifest())
}

// TestSnapshotsWithoutTheOutputsSync: a collector without the outputs sync
// records no change of the manifest, and its snapshots hold the manifest
// Begin returned: a journal of sections that outgrew the snapshot is
// replaced, and the outputs of the attempt before are kept.
func TestSnapshotsWithoutTheOutputsSync(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 50 {
		e.put(fmt.Sprintf("f%03d.bin", i), 1)
	}
	e.checkpoint(t)
	want := e.manifest()

	st, _, err := Begin(context.Background(), BeginOptions{Run: "r", StatePath: filepath.Join(dir, "state.json"), Outputs: t.TempDir(), Bucket: b})
	must(t, err)
	k := NewKeeper(filepath.Join(dir, "state.json"), b, st, nil)
	sec := k.Section("logs")
	for i := range 1_000 {
		must(t, sec.Save(context.Background(), map[string]int{"offset": i}))
		if i%100 == 99 {
			must(t, k.Flush(context.Background()))
		}
		if k.WantsManifest() {
			t.Fatal("a Keeper with Begin's manifest and no change recorded asks for the manifest")
		}
	}
	if got := fileSize(t, journalPath(filepath.Join(dir, "state.json"))); got > 16<<10 {
		t.Errorf("the local journal has %d bytes of sections; want it replaced by a snapshot past 16 KiB", got)
	}
	for what, st := range map[string]*State{"local state": mustLoad(t, filepath.Join(dir, "state.json")), "store state": storeState(t, b)} {
		sameManifest(t, what, st.Outputs, want)
		if string(st.Sections["logs"]) != `{"offset":999}` || st.Attempt != 2 {
			t.Errorf("%s: attempt %d, section %s; want attempt 2, offset 999", what, st.Attempt, st.Sections["logs"])
		}
	}
}

// TestJournalCompaction: many checkpoints of a small run keep few objects in
// the store: one-record objects are merged, and a new snapshot replaces the
// journal once it outgrows the snapshot's share, the replaced objects deleted.
// The state read back is the last one, in the store and locally.
func TestJournalCompaction(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 20 {
		e.put(fmt.Sprintf("f%02d", i), 0)
	}
	e.checkpoint(t)
	sec := e.k.Section("logs")
	maxObjects := 0
	for i := 1; i <= 300; i++ {
		e.put(fmt.Sprintf("f%02d", i%20), i)
		if i%7 == 0 {
			e.delete(fmt.Sprintf("f%02d", (i+3)%20))
		}
		if err := sec.Save(context.Background(), map[string]int{"offset": i}); err != nil {
			t.Fatal(err)
		}
		e.checkpoint(t)
		maxObjects = max(maxObjects, len(journalKeys(stateObjects(t, b))))
	}
	objs := stateObjects(t, b)
	var snap State
	if err := json.Unmarshal(objs[StateKey], &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Seq == 0 {
		t.Fatal("no snapshot replaced the journal after 300 checkpoints")
	}
	for _, k := range journalKeys(objs) {
		if o, ok := parseJournalKey(k); !ok || o.first <= snap.Seq {
			t.Errorf("journal object %s left behind by the snapshot of record %d", k, snap.Seq)
		}
	}
	if maxObjects > mergeAt+1 {
		t.Errorf("up to %d journal objects in the store; want at most %d (merged)", maxObjects, mergeAt+1)
	}
	if fileSize(t, filepath.Join(dir, "state.journal")) > compactAt(fileSize(t, filepath.Join(dir, "state.json"))) {
		t.Error("the local journal outgrew its snapshot's share")
	}

	want := map[string]json.RawMessage{"logs": json.RawMessage(`{"offset":300}`)}
	for what, st := range map[string]*State{"store": storeState(t, b), "local": mustLoad(t, filepath.Join(dir, "state.json"))} {
		sameManifest(t, what, st.Outputs, e.manifest())
		if !reflect.DeepEqual(st.Sections, want) {
			t.Errorf("%s: sections %s, want %s", what, st.Sections, want)
		}
	}
}

func mustLoad(t *testing.T, path string) *State {
	t.Helper()
	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTornLastRecord: a last record cut short (a crash during its write) is
// ignored, locally and in the store; a corrupt record before the last is an
// error naming the file or object.
func TestTornLastRecord(t *testing.T) {
	ctx := context.Background()
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 4 {
		e.put(fmt.Sprintf("f%d", i), 1)
		e.checkpoint(t)
	}
	want := e.manifest()
	path := filepath.Join(dir, "state.json")
	jpath := journalPath(path)
	good, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	torn, err := appendJournalLine(nil, &record{Seq: 99, Outputs: Manifest{"f0": nil}})
	if err != nil {
		t.Fatal(err)
	}
	torn = torn[:len(torn)/2]

	t.Run("local torn", func(t *testing.T) {
		must(t, os.WriteFile(jpath, append(slices.Clone(good), torn...), 0o600))
		sameManifest(t, "local state", mustLoad(t, path).Outputs, want)
	})
	t.Run("local corrupt", func(t *testing.T) {
		bad := slices.Clone(good)
		bad[20] ^= 1 // in the first record
		must(t, os.WriteFile(jpath, bad, 0o600))
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), jpath) {
			t.Fatalf("Load of a journal corrupt in the middle: %v; want an error naming %s", err, jpath)
		}
	})

	keys := journalKeys(stateObjects(t, b))
	if len(keys) < 2 {
		t.Fatalf("journal objects %v; want at least 2", keys)
	}
	t.Run("store torn", func(t *testing.T) {
		last, _ := parseJournalKey(keys[len(keys)-1])
		next := journalObject{first: last.last + 1, last: last.last + 1}
		must(t, b.WriteAll(ctx, next.key(), torn, nil))
		defer b.Delete(ctx, next.key())
		sameManifest(t, "store state", storeState(t, b).Outputs, want)
	})
	t.Run("store corrupt", func(t *testing.T) {
		data, err := b.ReadAll(ctx, keys[0])
		must(t, err)
		bad := slices.Clone(data)
		bad[20] ^= 1
		must(t, b.WriteAll(ctx, keys[0], bad, nil))
		if _, err := readStoreState(ctx, b, "r"); err == nil || !strings.Contains(err.Error(), keys[0]) {
			t.Fatalf("reading a journal corrupt in the middle: %v; want an error naming %s", err, keys[0])
		}
		must(t, b.WriteAll(ctx, keys[0], data, nil))
		must(t, b.Delete(ctx, keys[0]))
		if _, err := readStoreState(ctx, b, "r"); err == nil || !strings.Contains(err.Error(), "lacks records") {
			t.Fatalf("reading a journal with a record missing: %v; want an error saying so", err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadsVersion1State: a state saved by a collector of state version 1 (a
// whole state, and side files for the uploads and the sections; in the store,
// the sections beside the state) still resumes, and is saved as version 2.
func TestLoadsVersion1State(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"state.json", "state.uploads.json", "state.sections.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "state-v1", name))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
	}
	check := func(t *testing.T, what string, st *State) {
		t.Helper()
		wantOut := Manifest{"model.pt": {Size: 5, ModTime: 1763900000123456789, Inode: 42, SHA256: digest([]byte("hello"))}}
		sameManifest(t, what, st.Outputs, wantOut)
		if p := st.Uploads["big.bin"]; p.ID != "upload-2" || len(p.Parts) != 2 {
			t.Errorf("%s: uploads %+v; want the side file's big.bin, 2 parts", what, st.Uploads)
		}
		if got := string(st.Sections["logs"]); got != `{"offset":12}` {
			t.Errorf("%s: logs section %s; want the side file's", what, got)
		}
	}
	path := filepath.Join(dir, "state.json")
	check(t, "Load", mustLoad(t, path))

	b := openFileBucket(t)
	_, st := run(t, b, dir, nil)
	check(t, "Begin", st)
	if st.Attempt != 4 {
		t.Errorf("attempt %d, want 4", st.Attempt)
	}
	for _, side := range []string{"state.uploads.json", "state.sections.json"} {
		if _, err := os.Stat(filepath.Join(dir, side)); err == nil {
			t.Errorf("%s left beside the version 2 snapshot", side)
		}
	}
	if v := mustLoad(t, path); v.Version != Version {
		t.Errorf("saved as version %d, want %d", v.Version, Version)
	}

	// In the store: version 1's state and sections.
	b = openFileBucket(t)
	v1, err := os.ReadFile(filepath.Join("testdata", "state-v1", "state.json"))
	must(t, err)
	must(t, b.WriteAll(ctx, StateKey, v1, nil))
	must(t, b.WriteAll(ctx, SectionsKey, []byte(`{"logs":{"offset":12}}`), nil))
	st = storeState(t, b)
	if got := string(st.Sections["logs"]); got != `{"offset":12}` {
		t.Errorf("store: logs section %s; want sections.json's", got)
	}
}

// fullDisk is the local disk, but for a switch that makes it full: writes
// fail with ENOSPC, after writing half of an append, as a disk that fills up
// midway does.
type fullDisk struct {
	osFS
	full atomic.Bool
}

func (d *fullDisk) WriteFile(name string, write func(io.Writer) error) error {
	if d.full.Load() {
		return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return d.osFS.WriteFile(name, write)
}

func (d *fullDisk) Append(name string, data []byte, durable bool) error {
	if d.full.Load() {
		_ = d.osFS.Append(name, data[:len(data)/2], durable)
		return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return d.osFS.Append(name, data, durable)
}

// logCount counts log records by message.
type logCount struct {
	mu     stdsync.Mutex
	counts map[string]int
}

func (h *logCount) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *logCount) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Level.String()+" "+r.Message]++
	return nil
}
func (h *logCount) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCount) WithGroup(string) slog.Handler      { return h }

func (h *logCount) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for msg, c := range h.counts {
		if strings.HasPrefix(msg, prefix) {
			n += c
		}
	}
	return n
}

// TestFullLocalDisk: with the state folder on a full disk, uploads go on:
// saving progress and sections does not fail, checkpoints still reach the
// store, one warning says so, and the local state is removed so that a
// restart reads the store's. Once the disk has room again, the next
// checkpoint saves the whole state locally.
func TestFullLocalDisk(t *testing.T) {
	ctx := context.Background()
	b := openFileBucket(t)
	dir := t.TempDir()
	logs := &logCount{counts: map[string]int{}}
	e, _ := run(t, b, dir, slog.New(logs))
	disk := &fullDisk{}
	e.k.fs = disk
	e.put("a", 1)
	e.checkpoint(t)

	disk.full.Store(true)
	progress := stores.Progress{Key: "big.bin", Size: 100 << 20, PartSize: 8 << 20, ID: "u1"}
	for i := range 5 {
		e.put(fmt.Sprintf("f%d", i), 1)
		progress.Parts = append(progress.Parts, stores.Part{Number: int32(i + 1), Size: 8 << 20})
		if err := e.k.SaveProgress(ctx, progress); err != nil {
			t.Fatalf("SaveProgress on a full disk: %v", err)
		}
		if err := e.k.Section("logs").Save(ctx, map[string]int{"offset": i}); err != nil {
			t.Fatalf("Section.Save on a full disk: %v", err)
		}
		e.checkpoint(t)
	}
	if n := logs.count("WARN cannot save the run's state locally"); n != 1 {
		t.Errorf("%d warnings about the full disk, want 1", n)
	}
	st := storeState(t, b)
	sameManifest(t, "store state on a full disk", st.Outputs, e.manifest())
	if p := st.Uploads["big.bin"]; len(p.Parts) != 5 || string(st.Sections["logs"]) != `{"offset":4}` {
		t.Errorf("store state on a full disk: uploads %+v, sections %s; want 5 parts and offset 4", st.Uploads, st.Sections)
	}
	if _, err := Load(filepath.Join(dir, "state.json")); err != ErrNoCheckpoint {
		t.Errorf("local state on a full disk: %v; want none (removed, the store's is newer)", err)
	}

	disk.full.Store(false)
	e.put("after", 1)
	e.checkpoint(t)
	local := mustLoad(t, filepath.Join(dir, "state.json"))
	sameManifest(t, "local state once the disk has room", local.Outputs, e.manifest())
	if p := local.Uploads["big.bin"]; len(p.Parts) != 5 || string(local.Sections["logs"]) != `{"offset":4}` {
		t.Errorf("local state once the disk has room: uploads %+v, sections %s", local.Uploads, local.Sections)
	}
	if n := logs.count("INFO saving the run's state locally again"); n != 1 {
		t.Errorf("%d notes that the state is saved locally again, want 1", n)
	}

	// A restart on the full disk starts all the same, from the store's
	// state, and leaves no stale local state behind.
	disk.full.Store(true)
	st, _, err := Begin(ctx, BeginOptions{Run: "r", StatePath: filepath.Join(dir, "state.json"), Outputs: t.TempDir(), Bucket: b, fs: disk})
	if err != nil {
		t.Fatalf("Begin on a full disk: %v", err)
	}
	sameManifest(t, "Begin's state on a full disk", st.Outputs, e.manifest())
	if _, err := Load(filepath.Join(dir, "state.json")); err != ErrNoCheckpoint {
		t.Errorf("local state after Begin on a full disk: %v; want none", err)
	}
}

// TestCheckpointOrder: changes recorded and checkpointed from many
// goroutines at once (a pass's workers) are saved in the order they were
// made: the state read back holds the last value of every file, in the store
// and locally.
func TestCheckpointOrder(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	var version atomic.Int64
	var wg stdsync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				// One file every worker changes, and one of its own.
				e.put("shared", int(version.Add(1)))
				e.put(fmt.Sprintf("w%d", w), i)
				if err := e.save(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	must(t, e.k.Flush(context.Background()))
	want := e.manifest()
	if got := want["shared"].ModTime; got != version.Load() {
		t.Fatalf("the engine's last shared version is %d, want %d", got, version.Load())
	}
	sameManifest(t, "store state", storeState(t, b).Outputs, want)
	sameManifest(t, "local state", mustLoad(t, filepath.Join(dir, "state.json")).Outputs, want)
}

// TestProgressDoesNotWaitForTheStore: while a checkpoint is uploading to a
// slow store (S3 through a slow proxy), saving the progress of parts and
// sections goes on; the store gets them with the next checkpoint.
func TestProgressDoesNotWaitForTheStore(t *testing.T) {
	f := storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, os.Getenv("COLLECTOR_TEST_S3_ENDPOINT"))
	bucket := strings.SplitN(f.Conn.Schema.Bucket, "/", 4)[2]
	conn, err := stores.Resolve("s3://" + bucket + "/slow?endpoint=" + proxy)
	must(t, err)
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY": os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY"),
	}
	s, err := stores.Open(context.Background(), conn, stores.Options{Getenv: func(k string) string { return env[k] }})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	b := blob.PrefixedBucket(s.Bucket(), "r/")

	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	for i := range 2000 {
		e.put(fmt.Sprintf("d%02d/f%05d.bin", i%20, i), 1)
	}
	snap := fileSize(t, filepath.Join(dir, "state.json"))
	traffic.BytesPerSecond.Store(64 << 10) // the store's snapshot (about 220 KB) takes 3 s
	done := make(chan error, 1)
	go func() { done <- e.save(context.Background()) }()
	// The checkpoint saves locally first (a snapshot, here), then to the store.
	for fileSize(t, filepath.Join(dir, "state.json")) == snap {
		select {
		case err := <-done:
			t.Fatalf("the checkpoint ended (%v) before its local snapshot", err)
		case <-time.After(time.Millisecond):
		}
	}
	progress := stores.Progress{Key: "big.bin", Size: 1 << 30, PartSize: 8 << 20, ID: "u1"}
	for i := range 20 {
		progress.Parts = append(progress.Parts, stores.Part{Number: int32(i + 1), Size: 8 << 20})
		must(t, e.k.SaveProgress(context.Background(), progress))
	}
	must(t, e.k.Section("logs").Save(context.Background(), map[string]int{"offset": 9}))
	select {
	case err := <-done:
		t.Fatalf("the checkpoint ended (%v) before saving progress did; saving progress waited for the store", err)
	default:
	}
	must(t, <-done)
	traffic.BytesPerSecond.Store(0)
	must(t, e.k.Flush(context.Background()))
	st := storeState(t, b)
	if p := st.Uploads["big.bin"]; len(p.Parts) != 20 || string(st.Sections["logs"]) != `{"offset":9}` {
		t.Errorf("store state after the next checkpoint: uploads %+v, sections %s; want 20 parts and offset 9", st.Uploads, st.Sections)
	}
	sameManifest(t, "store state", st.Outputs, e.manifest())
	if got := slices.Collect(maps.Keys(st.Uploads)); len(got) != 1 {
		t.Errorf("uploads in the store: %v", got)
	}
}

// TestSnapshotWaitsForTheManifest: before the sync engine's first checkpoint
// the Keeper does not know its manifest; a snapshot then due (the progress of
// a large upload outgrew the journal's share) does not lose the changes the
// engine recorded meanwhile.
func TestSnapshotWaitsForTheManifest(t *testing.T) {
	b := openFileBucket(t)
	dir := t.TempDir()
	e, _ := run(t, b, dir, nil)
	e.put("early.bin", 1)
	progress := stores.Progress{Key: "big.bin", Size: 100 << 30, PartSize: 8 << 20, ID: "u1"}
	for i := range 2000 { // about 60 KiB of progress
		progress.Parts = append(progress.Parts, stores.Part{Number: int32(i + 1), Size: 8 << 20, ETag: "etag"})
	}
	must(t, e.k.SaveProgress(context.Background(), progress))
	path := filepath.Join(dir, "state.json")
	sameManifest(t, "local state before the first checkpoint", mustLoad(t, path).Outputs, e.manifest())
	e.checkpoint(t)
	sameManifest(t, "local state after the first checkpoint", mustLoad(t, path).Outputs, e.manifest())
	sameManifest(t, "store state after the first checkpoint", storeState(t, b).Outputs, e.manifest())
	if fileSize(t, journalPath(path)) > 0 {
		t.Error("the journal that outgrew its snapshot is still there after the checkpoint")
	}
}
