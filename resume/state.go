package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/mlsidecar/collector/stores"
)

// Version is the state format this build writes. Load accepts it and older
// ones: 1 is a whole state rewritten at each checkpoint, with side files for
// the uploads' progress and the sections; 2 is a snapshot followed by a
// journal of records.
const Version = 2

// ErrNoCheckpoint says there is no saved state: a fresh start.
var ErrNoCheckpoint = errors.New("no checkpoint")

// StateKey is the key of the state's snapshot under the run's prefix in the
// store; the journal's records follow it under JournalPrefix.
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
	// Seq is the last journal record the state holds: in a snapshot, the
	// records of its journal up to Seq are in it already.
	Seq uint64 `json:"seq,omitempty"`
	// Uploads are the large uploads in flight, by object key under outputs/,
	// so a restarted collector continues them from their completed parts.
	Uploads map[string]stores.Progress `json:"uploads,omitempty"`
	// Sections are the components' sections (Section: the cursors of the
	// log sources, of the resource series), each under its own name, so
	// they continue across attempts. The file keeps the key they first had.
	Sections map[string]json.RawMessage `json:"extensions,omitempty"`
	// Outputs is what the store holds of the outputs folder.
	Outputs Manifest `json:"outputs,omitempty"`
}

// Load reads a local state: the snapshot at path and the journal beside it
// (see Keeper). A missing snapshot returns ErrNoCheckpoint; anything
// unreadable is an error naming the file, but for a last journal record that
// a crash cut short, which is ignored. A state of version 1 is read with its
// side files.
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
	if err := loadSideFiles(path, st); err != nil {
		return nil, err
	}
	jpath := journalPath(path)
	data, err = os.ReadFile(jpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read state journal %s: %w", jpath, err)
	default:
		err := readRecords(data, jpath, true, func(r *record) error {
			if r.Seq > st.Seq { // records up to Seq are in the snapshot already
				r.apply(st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

// journalPath is the local journal of the snapshot at statePath.
func journalPath(statePath string) string {
	return strings.TrimSuffix(statePath, ".json") + ".journal"
}

// loadSideFiles reads what a collector of state version 1 saved beside the
// state between its checkpoints: the uploads' progress and the sections.
func loadSideFiles(path string, st *State) error {
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
			return fmt.Errorf("state sections %s: corrupt: %w", sectionsPath(path), err)
		}
		st.Sections = sections
	}
	return nil
}

// sectionsPath is where a collector of state version 1 saved the components'
// sections between checkpoints.
func sectionsPath(statePath string) string {
	return strings.TrimSuffix(statePath, ".json") + ".sections.json"
}

// progressPath is where a collector of state version 1 saved the progress of
// large uploads between checkpoints.
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

// writeState writes st as JSON, the manifest through its own encoder
// (encoding/json would check and copy its megabytes once more) an entry at a
// time, and returns how many bytes it wrote.
func writeState(w io.Writer, st *State) (int64, error) {
	head := *st
	head.Outputs = nil
	b, err := json.Marshal(&head)
	if err != nil {
		return 0, fmt.Errorf("encode the state: %w", err)
	}
	cw := &countingWriter{w: w}
	b = append(b[:len(b)-1], `,"outputs":`...) // without its closing brace
	if _, err := cw.Write(b); err != nil {
		return cw.n, err
	}
	if err := st.Outputs.writeJSON(cw); err != nil {
		return cw.n, err
	}
	_, err = cw.Write([]byte{'}'})
	return cw.n, err
}

// countingWriter counts what it passes on.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Save writes st to path as a snapshot, atomically: a temp file in the same
// folder, fsync, rename, fsync of the folder. Mode 0600. The journal beside
// it, and the side files of a version 1 state, are removed, since the
// snapshot holds what they did.
func Save(path string, st *State) error {
	return saveSnapshot(osFS{}, path, st)
}

func saveSnapshot(fsys fileSystem, path string, st *State) error {
	_, _, err := writeSnapshot(fsys, path, st)
	return err
}

// writeSnapshot writes an encoded snapshot and removes what it replaces. It
// returns whether the journal was removed.
func writeSnapshot(fsys fileSystem, path string, st *State) (int64, bool, error) {
	var n int64
	if err := fsys.WriteFile(path, func(w io.Writer) (err error) {
		n, err = writeState(w, st)
		return err
	}); err != nil {
		return 0, false, err
	}
	// The journal's records are all in the snapshot: a journal left behind
	// is skipped on load (its records are up to the snapshot's Seq).
	removed := fsys.Remove(journalPath(path)) == nil
	for _, side := range []string{progressPath(path), sectionsPath(path)} {
		_ = fsys.Remove(side)
	}
	return n, removed, nil
}

// removeLocal removes the local state, the snapshot last, so that a restart
// does not read a journal without the snapshot it follows.
func removeLocal(fsys fileSystem, path string) error {
	return errors.Join(
		fsys.Remove(journalPath(path)),
		fsys.Remove(progressPath(path)),
		fsys.Remove(sectionsPath(path)),
		fsys.Remove(path),
	)
}
