package resume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// Version is the state format this build writes. Load accepts it and older ones.
const Version = 1

// ErrNoCheckpoint says there is no saved state: a fresh start.
var ErrNoCheckpoint = errors.New("no checkpoint")

// StateKey is the state's key under the run's prefix in the store.
const StateKey = ".collector/state.json"

// State is everything the collector needs to continue a run where it stopped.
type State struct {
	Version int    `json:"version"`
	Run     string `json:"run"`
	// Store names the store the state describes (stores.Identity); a local
	// state of another store is not trusted.
	Store string `json:"store,omitempty"`
	// Attempt counts the starts of the run: 1 for the first, 2 after a retry, ...
	Attempt int `json:"attempt"`
	// Restored is set by `collector restore`, so the collector that starts
	// next takes over its attempt instead of counting another.
	Restored bool `json:"restored,omitempty"`
	// Outputs is what the store holds of the outputs folder.
	Outputs Manifest `json:"outputs"`
	// Uploads are the large uploads in flight, by object key under outputs/,
	// so a restarted collector continues them from their completed parts.
	Uploads map[string]stores.Progress `json:"uploads,omitempty"`
	// Extensions hold the cursors of other components (log sources, resource
	// series), each under its own name, so they continue across attempts.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// Load reads a state file, and the progress of large uploads saved beside it
// since (see Keeper.SaveProgress). A missing file returns ErrNoCheckpoint;
// anything unreadable is an error naming the path.
func Load(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	st, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	// Newer than the state's own Uploads when there. An unreadable one (a
	// machine crash before its data reached the disk) is ignored: the
	// uploads' parts are listed again from the store.
	if data, err := os.ReadFile(progressPath(path)); err == nil {
		var uploads map[string]stores.Progress
		if json.Unmarshal(data, &uploads) == nil {
			st.Uploads = uploads
		}
	}
	if data, err := os.ReadFile(sectionsPath(path)); err == nil {
		var sections map[string]json.RawMessage
		if err := json.Unmarshal(data, &sections); err != nil {
			return nil, fmt.Errorf("state sections %s: corrupt: %w", sectionsPath(path), err)
		}
		st.Extensions = sections
	}
	return st, nil
}

// sectionsPath is where the Keeper saves the components' sections between
// checkpoints (see Section.Save).
func sectionsPath(statePath string) string {
	return strings.TrimSuffix(statePath, ".json") + ".sections.json"
}

// progressPath is where the Keeper saves the progress of large uploads
// between checkpoints: beside the state, small, rewritten after each part.
func progressPath(statePath string) string {
	return strings.TrimSuffix(statePath, ".json") + ".uploads.json"
}

func decode(data []byte) (*State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	if st.Version < 1 || st.Version > Version {
		return nil, fmt.Errorf("version %d is not one this build reads (1 to %d)", st.Version, Version)
	}
	if st.Outputs == nil {
		st.Outputs = Manifest{}
	}
	return &st, nil
}

// Save writes the state to path atomically: a temp file in the same folder,
// fsync, rename, fsync of the folder. Mode 0600. The progress file beside it
// and the sections file are removed, since the state now holds them.
func Save(path string, st *State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return saveEncoded(path, data)
}

func saveEncoded(path string, data []byte) error {
	if err := writeFileAtomic(path, data, true); err != nil {
		return err
	}
	for _, side := range []string{progressPath(path), sectionsPath(path)} {
		if err := os.Remove(side); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data through a temp file in the same
// folder and a rename, so a killed process leaves the old file or the new,
// never a torn one. With durable, the data and the folder are fsynced too,
// which a machine crash needs and a killed process does not.
func writeFileAtomic(path string, data []byte, durable bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if durable {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}

// Keeper holds a run's state and checkpoints it locally and to the store. It
// implements the sync engine's Checkpointer.
type Keeper struct {
	path   string       // local state file
	bucket *blob.Bucket // rooted at the run's prefix; may be nil
	mu     stdsync.Mutex
	state  *State
	// sectionsDirty says a section was saved since the sections last went
	// to the store.
	sectionsDirty bool
}

// NewKeeper returns a Keeper for st, saving to path and to bucket.
func NewKeeper(path string, bucket *blob.Bucket, st *State) *Keeper {
	return &Keeper{path: path, bucket: bucket, state: st}
}

// SaveProgress records a large upload's progress. It runs after every part,
// so it writes only the uploads' progress, to a small file beside the state,
// without fsync: what it guards against is a killed process, and a part lost
// with the machine is listed again from the store.
func (k *Keeper) SaveProgress(_ context.Context, p stores.Progress) error {
	return k.updateUploads(func(uploads map[string]stores.Progress) { uploads[p.Key] = p })
}

// DropProgress forgets a large upload that finished or was abandoned.
func (k *Keeper) DropProgress(_ context.Context, key string) error {
	return k.updateUploads(func(uploads map[string]stores.Progress) { delete(uploads, key) })
}

// updateUploads changes a copy of the uploads' progress and saves it.
func (k *Keeper) updateUploads(change func(map[string]stores.Progress)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := *k.state
	next.Uploads = maps.Clone(next.Uploads)
	if next.Uploads == nil {
		next.Uploads = map[string]stores.Progress{}
	}
	change(next.Uploads)
	data, err := json.Marshal(next.Uploads)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(progressPath(k.path), data, false); err != nil {
		return fmt.Errorf("save upload progress %s: %w", progressPath(k.path), err)
	}
	k.state = &next
	return nil
}

// Checkpoint records the outputs manifest and saves the state.
func (k *Keeper) Checkpoint(ctx context.Context, outputs Manifest) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := *k.state
	next.Outputs = outputs
	data, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	if err := saveEncoded(k.path, data); err != nil {
		return fmt.Errorf("save state %s: %w", k.path, err)
	}
	// The manifest is the sync engine's, passed again at each checkpoint:
	// keeping this copy would double what an idle sidecar holds.
	next.Outputs = nil
	k.state = &next
	if k.bucket == nil {
		return nil
	}
	if err := stores.Upload(ctx, k.bucket, StateKey, bytes.NewReader(data), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("save state to the store: %w", err)
	}
	if len(k.state.Extensions) > 0 {
		if err := k.uploadSections(ctx); err != nil {
			return err
		}
	}
	k.sectionsDirty = false
	return nil
}
