package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// do runs one job and records its outcome in the manifest.
func (s *Syncer) do(ctx context.Context, j job) (resume.Entry, error) {
	if j.delete {
		// The file may have come back since the scan; then the next pass uploads it.
		if _, err := os.Lstat(filepath.Join(s.root, filepath.FromSlash(j.rel))); err == nil {
			return resume.Entry{}, errChanged
		}
		key := s.objectKey(j.rel)
		err := s.retry(ctx, func() error {
			if s.shared && key == j.rel {
				if mine, err := s.ownsObject(ctx, j.rel); err != nil || !mine {
					return err
				}
			}
			if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return err
			}
			return nil
		})
		if err != nil {
			return resume.Entry{}, fmt.Errorf("delete %q: %w", j.rel, err)
		}
		s.mu.Lock()
		delete(s.entries, j.rel)
		delete(s.lastErr, j.rel)
		if s.ckpt != nil {
			s.ckpt.Record(j.rel, nil)
		}
		s.mu.Unlock()
		return resume.Entry{}, nil
	}
	// A replica's path stored aside stays aside; any other is looked at
	// first, as another replica may hold it (shared.go).
	key, sh := s.objectKey(j.rel), s.up.shared
	var entry resume.Entry
	err := s.retry(ctx, func() (err error) {
		var pre stores.Precondition
		if sh != nil && key == j.rel {
			if key, pre, err = sh.claim(ctx, j.rel); err != nil {
				key = j.rel
				return err
			}
		}
		entry, err = s.up.uploadIf(ctx, filepath.Join(s.root, filepath.FromSlash(j.rel)), key, j.state, j.storedMD5, pre)
		if errors.Is(err, stores.ErrPrecondition) {
			key = j.rel // written meanwhile by another replica: look again
			return fmt.Errorf("upload %q: %w", j.rel, errTakenMeanwhile)
		}
		return err
	})
	if err != nil {
		return entry, err
	}
	if key != j.rel {
		entry.Key = key
	} else if sh != nil {
		sh.stored(j.rel)
	}
	e := &entry
	s.mu.Lock()
	s.entries[j.rel] = e
	delete(s.lastErr, j.rel)
	if s.ckpt != nil {
		s.ckpt.Record(j.rel, e)
	}
	s.mu.Unlock()
	s.up.forget(ctx, key) // after Record: the Keeper saves both together
	return entry, nil
}

// someFailure names one file that failed and its error, for a summary.
func (s *Syncer) someFailure() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rel := range slices.Sorted(maps.Keys(s.lastErr)) {
		return fmt.Sprintf("%s: %s", rel, s.lastErr[rel])
	}
	return "no error recorded"
}

// logFailure logs an error once at Warn, and its repeats for the same path at
// Debug, so a store outage does not flood the log.
func (s *Syncer) logFailure(rel string, err error) {
	s.mu.Lock()
	repeat := s.lastErr[rel] == err.Error()
	s.lastErr[rel] = err.Error()
	s.mu.Unlock()
	level := slog.LevelWarn
	if repeat {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "sync failed; retrying next pass", "path", rel, "err", err)
}

func (s *Syncer) markPending(rel string) {
	s.mu.Lock()
	s.pending[rel] = struct{}{}
	s.mu.Unlock()
}

// count adds a job's outcome to the pass's stats.
func (s *Syncer) count(ctx context.Context, st *PassStats, j job, entry resume.Entry, err error) {
	switch {
	case err == nil && j.delete:
		st.Deleted++
	case err == nil:
		st.Uploaded++
		st.Bytes += entry.Size
	case errors.Is(err, errChanged):
		st.Pending++
		s.markPending(j.rel)
	default:
		st.Failed++
		if permanent(err) {
			st.Refused++
		}
		s.noteRefusal(ctx, j.rel, err)
		s.markPending(j.rel)
		if ctx.Err() == nil {
			s.logFailure(j.rel, err)
		}
	}
}
