package resume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// BeginOptions say how a run starts.
type BeginOptions struct {
	Run       string       // the run's name
	StatePath string       // the local state file
	Outputs   string       // the outputs folder
	Bucket    *blob.Bucket // rooted at the run's prefix
	// State is where the state is kept in the store, rooted like Bucket
	// (the replica's prefix in a distributed run); nil is Bucket.
	State *blob.Bucket
	// Own restores only the files of the state's manifest, those this
	// replica uploaded, not every object under outputs/: a replica of a
	// distributed run. Without a state, nothing is restored.
	Own bool
	// Replica is the replica's name: with Own, see RestoreOptions.Replica.
	Replica string
	// Attributes: see RestoreOptions.Attributes.
	Attributes func(ctx context.Context, key string) (*blob.Attributes, error)
	// Store names the store (stores.Identity). A local state saved for
	// another store is moved aside and the run continues from this store's.
	Store string
	// AutoResume restores the run's outputs from the store (Polyaxon's autoResume).
	AutoResume bool
	// Include limits the restore to matching paths.
	Include []string
	// CommitMarkers: see RestoreOptions.
	CommitMarkers []string
	// Workers is the number of parallel downloads.
	Workers  int
	Logger   *slog.Logger
	Progress func(done, total int, bytesDone, bytesTotal int64)
	// ForRestore is set by `collector restore`: the attempt it counts is
	// taken over, not counted again, by the collector that starts next.
	ForRestore bool

	fs fileSystem // the local disk; nil is the real one
}

// Begin works out the state a run continues from and, with AutoResume,
// brings its outputs back. The local state is trusted when it is there and
// readable; otherwise the store is the truth: its copy of the state and the
// objects under outputs/. A corrupt local state is moved aside, never
// silently dropped. The state is saved locally before Begin returns, as a
// snapshot that a Keeper continues; when the local disk refuses it, that is
// logged and the local state removed, and the run goes on.
func Begin(ctx context.Context, opts BeginOptions) (*State, RestoreStats, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var stats RestoreStats
	st, err := Load(opts.StatePath)
	local := err == nil
	switch {
	case local:
	case errors.Is(err, ErrNoCheckpoint):
	default:
		aside := fmt.Sprintf("%s.corrupt-%d", opts.StatePath, time.Now().Unix())
		if rerr := os.Rename(opts.StatePath, aside); rerr != nil {
			return nil, stats, fmt.Errorf("%w (and it cannot be moved aside: %v)", err, rerr)
		}
		log.Warn("local state is unreadable; moved it aside and rebuilding from the store", "err", err, "moved_to", aside)
	}
	if local && st.Store != "" && opts.Store != "" && st.Store != opts.Store {
		aside := fmt.Sprintf("%s.other-store-%d", opts.StatePath, time.Now().Unix())
		if err := os.Rename(opts.StatePath, aside); err != nil {
			return nil, stats, fmt.Errorf("local state %s was saved for another store (%s) and cannot be moved aside: %w", opts.StatePath, st.Store, err)
		}
		log.Warn("local state was saved for another store; moved it aside and continuing from this store's state",
			"state_store", st.Store, "store", opts.Store, "moved_to", aside)
		local, st = false, nil
	}
	stateBucket := opts.State
	if stateBucket == nil {
		stateBucket = opts.Bucket
	}
	if !local {
		if st, err = fromStore(ctx, stateBucket, opts.Run); err != nil {
			return nil, stats, err
		}
	}
	var hasOutputs bool
	if opts.Own {
		// Other replicas' outputs say nothing of this replica's attempts.
		hasOutputs = st != nil && len(st.Outputs) > 0
	} else if hasOutputs, err = storeHasOutputs(ctx, opts.Bucket); err != nil {
		return nil, stats, err
	}
	switch {
	case st == nil && !hasOutputs:
		st = &State{Version: Version, Run: opts.Run, Attempt: 0, Outputs: Manifest{}}
	case st == nil:
		// Outputs but no state: the earlier attempt died before its first checkpoint.
		st = &State{Version: Version, Run: opts.Run, Attempt: 1, Outputs: Manifest{}}
	}
	if st.Restored && !opts.ForRestore {
		st.Restored = false // `collector restore` counted this attempt already
	} else {
		st.Attempt++
		st.Restored = opts.ForRestore
	}
	st.Version, st.Run = Version, opts.Run
	if opts.Store != "" {
		st.Store = opts.Store
	}

	if opts.AutoResume && hasOutputs {
		replica := "" // --restore all takes the store's outputs as they are
		if opts.Own {
			replica = opts.Replica
		}
		m, rs, err := Restore(ctx, opts.Bucket, opts.Outputs, RestoreOptions{
			Replica:       replica,
			Attributes:    opts.Attributes,
			Include:       opts.Include,
			Workers:       opts.Workers,
			CommitMarkers: opts.CommitMarkers,
			Unmarked:      st.unmarked(),
			Known:         st.Outputs,
			FromKnown:     local || opts.Own,
			Logger:        log,
			Progress:      opts.Progress,
		})
		if err != nil {
			return nil, rs, err
		}
		stats = rs
		// What the store holds beyond what was restored (left out by
		// Include) is not ours to delete: keep only what is on disk.
		st.Outputs = m
	}
	fsys := opts.fs
	if fsys == nil {
		fsys = osFS{}
	}
	if err := saveSnapshot(fsys, opts.StatePath, st); err != nil {
		// A full local disk must not stop the run: the store keeps the
		// state (the Keeper writes a snapshot there first), and a restart
		// reads it from there rather than from a stale local copy.
		if rmErr := removeLocal(fsys, opts.StatePath); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove the stale local state: %w", rmErr))
		}
		log.Warn("cannot save the run's state locally (is the disk full?); continuing with the store's copy",
			"path", opts.StatePath, "err", err)
	}
	return st, stats, nil
}

// fromStore reads the run's state from the store; nil when there is none.
func fromStore(ctx context.Context, b *blob.Bucket, run string) (*State, error) {
	return readStoreState(ctx, b, run)
}

func storeHasOutputs(ctx context.Context, b *blob.Bucket) (bool, error) {
	it := stores.List(b, &blob.ListOptions{Prefix: OutputsPrefix})
	_, err := it.Next(ctx)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list the run's outputs in the store: %w", err)
	}
	return true, nil
}

// OutputsPrefix is where a run's outputs are, under the run's prefix.
const OutputsPrefix = "outputs/"

// MarkersSection is the state's section where the sync engine keeps the
// commit markers it saw in the folder and had not stored yet (a JSON list of
// paths under outputs/).
const MarkersSection = "commit-markers"

// unmarked returns the MarkersSection's paths; none when it cannot be read.
func (st *State) unmarked() []string {
	var rels []string
	if raw, ok := st.Sections[MarkersSection]; ok {
		_ = json.Unmarshal(raw, &rels)
	}
	return rels
}
