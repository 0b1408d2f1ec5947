package sync

import (
	"errors"
	"sort"
	"time"
)

// plan compares the scan with the manifest and returns the work to do, most
// recently settled files last so that old, complete files go first (first
// after Rush).
func (s *Syncer) plan(files map[string]fileState, unreadable map[string]error, final bool, now time.Time, st *PassStats, scope map[string]struct{}) []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if scope == nil {
		s.pending = map[string]struct{}{}
		for rel := range s.heldSince {
			if _, ok := files[rel]; !ok {
				delete(s.heldSince, rel)
			}
		}
	}
	for rel := range scope {
		delete(s.pending, rel)
	}
	if len(s.unseen) > 0 {
		for rel := range files {
			delete(s.unseen, rel) // seen now: this attempt's to sync, and to delete
		}
		if len(s.unseen) == 0 {
			s.unseen = nil
		}
	}
	var jobs []job
	settleBefore := now.Add(-s.cfg.Settle).UnixNano()
	skewLimit := now.Add(s.cfg.Settle).UnixNano()
	for rel, fs := range files {
		if e, ok := s.entries[rel]; ok && e.SameFile(fs.Size, fs.ModTime, fs.Inode) {
			st.Unchanged++
			continue
		}
		// A file settles once unmodified for Settle; an mtime far in the
		// future (clock skew on a network file system) does not hold it back.
		if !final && fs.ModTime > settleBefore && fs.ModTime < skewLimit && !s.heldLongEnough(rel, fs, now) {
			st.Pending++
			st.Unsettled++
			s.pending[rel] = struct{}{}
			continue
		}
		delete(s.heldSince, rel)
		j := job{rel: rel, state: fs}
		if o, ok := s.unrecorded[rel]; ok && o.size == fs.Size {
			j.storedMD5 = o.md5
		}
		jobs = append(jobs, j)
	}
	if !s.cfg.KeepDeleted {
		// Only what this attempt saw is its to delete: an entry never seen
		// stays in the store and in the manifest.
		gone := func(rel string) {
			_, never := s.unseen[rel]
			if _, ok := files[rel]; !ok && !never && s.scan.wanted(rel) && !underAny(rel, unreadable) {
				jobs = append(jobs, job{rel: rel, delete: true})
			}
		}
		if scope == nil {
			for rel := range s.entries {
				gone(rel)
			}
		} else {
			for rel := range scope {
				if _, ok := s.entries[rel]; ok {
					gone(rel)
				}
			}
		}
	}
	newest := s.newestFirst.Load()
	sort.Slice(jobs, func(a, b int) bool {
		if newest {
			return jobs[a].state.ModTime > jobs[b].state.ModTime
		}
		return jobs[a].state.ModTime < jobs[b].state.ModTime
	})
	return jobs
}

// oneRequest splits jobs, keeping their order, into those of one request to
// the store (a deletion, a file below --part-size) and large files.
func (s *Syncer) oneRequest(jobs []job) (small, large []job) {
	for _, j := range jobs {
		if j.delete || j.state.Size <= s.up.partSize {
			small = append(small, j)
		} else {
			large = append(large, j)
		}
	}
	return small, large
}

// underAny reports whether rel is one of the paths that could not be read,
// or lies in one of those folders.
func underAny(rel string, unreadable map[string]error) bool {
	for u := range unreadable {
		if under(rel, u) {
			return true
		}
	}
	return false
}

// errRootMoved marks the whole folder ("") as not known: see Syncer.pass.
var errRootMoved = errors.New("the outputs folder is on another file system than at the start")

// heldLongEnough tells whether a file that has not settled has been held
// back long enough: a file of one request (below --part-size) that has kept
// changing for a whole sync interval goes up as it is, read whole and
// checked unchanged while read, so that a training log or a metrics file
// appended to every second reaches the store during the run, not only at
// its end. A larger file waits to settle: it is read for seconds, and one
// that changes meanwhile is abandoned before its commit, its bytes sent for
// nothing. Called with s.mu held.
func (s *Syncer) heldLongEnough(rel string, fs fileState, now time.Time) bool {
	if s.cfg.Interval <= 0 || fs.Size >= int64(s.cfg.PartSize) {
		return false
	}
	since, ok := s.heldSince[rel]
	if !ok {
		s.heldSince[rel] = now
		return false
	}
	return now.Sub(since) >= max(s.cfg.Interval, s.cfg.Settle)
}
