package sync

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mlsidecar/collector/resume"
)

// Commit markers (Config.CommitMarkers): a file with a marker's name (Orbax's
// commit_success.txt, DeepSpeed's latest) says that its folder is complete,
// so a reader of the store that sees it must see the whole folder. Its folder
// is the folder it is in and everything below it. A pass uploads the other
// files first and the markers after them, each only once every other file of
// its folder is in the store as it is on disk now (a walk of that folder when
// the marker is due, nothing more); otherwise the marker waits, pending, for
// a later pass. A marker's deletion goes before the rest of the pass's work,
// so a folder deleted locally loses its marker in the store first. With no
// marker set, none of this runs.

// isMarker tells whether rel names a commit marker.
func (s *Syncer) isMarker(rel string) bool {
	return len(s.cfg.CommitMarkers) > 0 && slices.Contains(s.cfg.CommitMarkers, path.Base(rel))
}

// markerFolder is the folder a marker at rel vouches for ("" for the root).
func markerFolder(rel string) string {
	if d := path.Dir(rel); d != "." {
		return d
	}
	return ""
}

// splitMarkers takes the markers' uploads and deletions out of the plan's
// jobs, keeping the order of the rest.
func (s *Syncer) splitMarkers(jobs []job) (rest, markers, markerDeletes []job) {
	for _, j := range jobs {
		switch {
		case !s.isMarker(j.rel):
			rest = append(rest, j)
		case j.delete:
			markerDeletes = append(markerDeletes, j)
		default:
			markers = append(markers, j)
		}
	}
	// The deepest first: a marker inside another's folder is one of that
	// folder's files, stored before it.
	sort.SliceStable(markers, func(a, b int) bool {
		return strings.Count(markers[a].rel, "/") > strings.Count(markers[b].rel, "/")
	})
	return rest, markers, markerDeletes
}

// incomplete returns a file of the marker's folder that the store does not
// hold as it is on disk now (not uploaded yet, failed, changed since), or
// "" when the store holds them all. refused says that file is refused for
// good (its last upload got an answer that trying again will not change,
// or it is a marker withheld for such a file): it is the one returned when
// the folder has one. A folder it cannot read in full is not complete.
func (s *Syncer) incomplete(marker string) (missing string, refused bool, err error) {
	folder := markerFolder(marker)
	files := map[string]fileState{}
	unreadable := map[string]error{}
	if err := s.scan.walk(filepath.Join(s.root, filepath.FromSlash(folder)), folder, files, unreadable); err != nil {
		return "", false, fmt.Errorf("commit marker %q: read its folder: %w", marker, err)
	}
	for rel, err := range unreadable {
		return "", false, fmt.Errorf("commit marker %q: read %q: %w", marker, rel, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		if rel == marker {
			continue
		}
		fs := files[rel]
		if e, ok := s.entries[rel]; ok && e.SameFile(fs.Size, fs.ModTime, fs.Inode) {
			continue
		}
		if s.markers.refusedNow(rel, s.lastErr) {
			return rel, true, nil
		}
		if missing == "" {
			missing = rel
		}
	}
	return missing, false, nil
}

// uploadMarkers uploads each marker whose folder the store holds whole, the
// deepest first, once the pass's other work is done; the others wait for a
// later pass, counted pending, but for a marker whose folder has a file
// refused for good: it is counted failed and refused, as that file is, so
// that the final sync ends as it does when only refusals are left.
func (s *Syncer) uploadMarkers(ctx context.Context, st *PassStats, markers []job) {
	for _, j := range markers {
		if ctx.Err() != nil {
			return
		}
		missing, refused, err := s.incomplete(j.rel)
		switch {
		case err != nil:
			s.count(ctx, st, j, resume.Entry{}, err) // failed: tried again next pass
			s.markers.wait(j.rel)
		case refused:
			st.Failed++
			st.Refused++
			s.markPending(j.rel) // looked at again with the refused file
			s.markers.wait(j.rel)
			s.withhold(j.rel, missing)
		case missing != "":
			s.unwithhold(j.rel)
			st.Pending++
			s.markPending(j.rel)
			s.markers.wait(j.rel)
			s.log.Debug("commit marker waits for its folder", "path", j.rel, "waits_for", missing)
		default:
			s.unwithhold(j.rel)
			if s.progress != nil {
				waits, err := s.progress.holds(ctx, time.Unix(0, j.state.ModTime))
				if err != nil {
					s.count(ctx, st, j, resume.Entry{}, err) // failed: tried again next pass
					s.markers.wait(j.rel)
					continue
				}
				if len(waits) > 0 {
					st.Pending++
					st.Waiting++
					s.markPending(j.rel)
					s.markers.wait(j.rel)
					s.progress.logWaits(j.rel, waits)
					continue
				}
				s.progress.forget(j.rel)
			}
			e, err := s.do(ctx, j)
			s.count(ctx, st, j, e, err)
			if err == nil {
				s.markers.stored(j.rel)
			} else {
				s.markers.wait(j.rel)
			}
		}
	}
	s.markers.save(ctx, s.log)
}

// unwithhold forgets that a marker was withheld: its folder has no refused
// file now.
func (s *Syncer) unwithhold(marker string) {
	s.mu.Lock()
	delete(s.markers.withheld, marker)
	s.mu.Unlock()
}

// noteRefusal records, with markers set, whether a file's upload failed
// for good, for the marker of its folder (incomplete). A pass's failures
// when its context ends are not refusals.
func (s *Syncer) noteRefusal(ctx context.Context, rel string, err error) {
	if len(s.cfg.CommitMarkers) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() == nil && permanent(err) {
		if s.markers.refused == nil {
			s.markers.refused = map[string]struct{}{}
		}
		s.markers.refused[rel] = struct{}{}
	} else {
		delete(s.markers.refused, rel)
	}
}

// withhold keeps a marker out of the store for a refused file of its
// folder, and says so in one warning for that marker and file.
func (s *Syncer) withhold(marker, file string) {
	s.mu.Lock()
	if s.markers.withheld == nil {
		s.markers.withheld = map[string]string{}
	}
	repeat := s.markers.withheld[marker] == file
	s.markers.withheld[marker] = file
	reason := s.lastErr[file]
	if inner, ok := s.markers.withheld[file]; ok {
		reason = "a commit marker withheld for " + inner
	}
	s.mu.Unlock()
	level := slog.LevelWarn
	if repeat {
		level = slog.LevelDebug
	}
	folder := markerFolder(marker)
	if folder == "" {
		folder = "."
	}
	s.log.Log(context.Background(), level, "commit marker withheld: a file of its folder cannot be stored, and trying again will not change that; the folder stays incomplete in the store and the marker is not uploaded",
		"folder", folder, "marker", marker, "refused", file, "err", reason)
}

// Saver keeps a value in the run's state: a resume.Section.
type Saver interface {
	Save(ctx context.Context, v any) error
}

// markerState is the set of commit markers seen in the folder and not yet
// in the store, saved in the run's state whenever it changes, so that a
// restore knows which folders the store may hold incomplete
// (resume.RestoreOptions.Unmarked). Used by the pass's goroutine only.
type markerState struct {
	saver   Saver
	waiting map[string]struct{}
	changed bool
	// refused holds the files whose last upload failed for good, withheld
	// the markers kept out for such a file (the file): both guarded by the
	// Syncer's mu, as lastErr is.
	refused  map[string]struct{}
	withheld map[string]string
}

// refusedNow tells whether rel is refused for good: its last upload failed
// so and has not succeeded since (lastErr keeps its failure until then), or
// it is a marker withheld for such a file. Called with the Syncer's mu held.
func (m *markerState) refusedNow(rel string, lastErr map[string]string) bool {
	if _, ok := m.withheld[rel]; ok {
		return true
	}
	_, ok := m.refused[rel]
	return ok && lastErr[rel] != ""
}

func (m *markerState) wait(rel string) {
	if m.saver == nil {
		return
	}
	if _, ok := m.waiting[rel]; !ok {
		if m.waiting == nil {
			m.waiting = map[string]struct{}{}
		}
		m.waiting[rel] = struct{}{}
		m.changed = true
	}
}

func (m *markerState) stored(rel string) {
	if _, ok := m.waiting[rel]; ok {
		delete(m.waiting, rel)
		m.changed = true
	}
}

func (m *markerState) prune(files map[string]fileState) {
	for rel := range m.waiting {
		if _, ok := files[rel]; !ok {
			m.stored(rel)
		}
	}
}

// save saves the set if it changed, and tells whether it did.
func (m *markerState) save(ctx context.Context, log *slog.Logger) bool {
	if !m.changed {
		return false
	}
	if err := m.saver.Save(ctx, slices.Sorted(maps.Keys(m.waiting))); err != nil {
		log.Warn("cannot save the commit markers that wait in the state", "err", err)
		return false
	}
	m.changed = false
	return true
}

// passWithMarkers runs a pass's jobs with markers set (full: the pass
// scanned the whole folder, files is all of it): the markers' deletions first, then the other jobs, then the markers whose folders are
// complete. Under pressure (the final sync, after a Rush, a backlog of jobs)
// the checkpoint folders go one after the other, the newest (by its marker's
// mtime) first, each with its marker, and the other files after them: the
// newest checkpoint is the one a retry needs whole. run runs jobs and
// returns when they are done.
func (s *Syncer) passWithMarkers(ctx context.Context, st *PassStats, jobs []job, files map[string]fileState, final, full bool, run func([]job)) {
	jobs, markers, markerDeletes := s.splitMarkers(jobs)
	if full {
		s.markers.prune(files) // deleted before they were stored
	}
	// In the state, in the store too, before the folder's files go: a
	// collector killed in the middle of the folder leaves it named there,
	// for the restore.
	for _, m := range markers {
		s.markers.wait(m.rel)
	}
	if s.markers.save(ctx, s.log) && s.ckpt != nil {
		s.checkpoint(ctx)
	}
	if len(markerDeletes) > 0 {
		run(markerDeletes)
		for _, j := range markerDeletes {
			s.markers.stored(j.rel) // gone: waits no more
			s.unwithhold(j.rel)
		}
	}
	if !final && !s.newestFirst.Load() && len(jobs) < backlog {
		run(jobs)
		s.uploadMarkers(ctx, st, markers)
		return
	}
	groups, rest := checkpointGroups(jobs, markers, s.markedFolders(files))
	for _, g := range groups {
		if ctx.Err() != nil {
			return
		}
		run(g.jobs)
		s.uploadMarkers(ctx, st, g.markers)
	}
	run(rest.jobs)
	s.uploadMarkers(ctx, st, rest.markers)
}

// checkpoint is a marked folder's share of a pass.
type checkpoint struct {
	folder  string
	mtime   int64 // its marker's
	jobs    []job
	markers []job
}

// checkpointGroups splits jobs and markers by the marked folder they lie in
// (the deepest), the newest folder first, keeping the plan's order within
// each; rest has what lies in no marked folder, and the markers of folders
// this pass does not know as marked.
func checkpointGroups(jobs, markers []job, marked map[string]int64) ([]*checkpoint, checkpoint) {
	byFolder := map[string]*checkpoint{}
	var rest checkpoint
	folderOf := func(rel string) (string, bool) {
		for d := markerFolder(rel); ; d = markerFolder(d) {
			if _, ok := marked[d]; ok {
				return d, true
			}
			if d == "" {
				return "", false
			}
		}
	}
	group := func(rel string) *checkpoint {
		d, ok := folderOf(rel)
		if !ok {
			return &rest
		}
		g := byFolder[d]
		if g == nil {
			g = &checkpoint{folder: d, mtime: marked[d]}
			byFolder[d] = g
		}
		return g
	}
	for _, j := range jobs {
		g := group(j.rel)
		g.jobs = append(g.jobs, j)
	}
	for _, m := range markers {
		g := group(m.rel)
		g.markers = append(g.markers, m)
	}
	groups := slices.Collect(maps.Values(byFolder))
	sort.Slice(groups, func(a, b int) bool {
		if groups[a].mtime != groups[b].mtime {
			return groups[a].mtime > groups[b].mtime
		}
		return groups[a].folder > groups[b].folder
	})
	return groups, rest
}

// backlog is the number of jobs from which a pass orders checkpoint folders
// newest first, as a Rush and the final sync do.
const backlog = 1000

// markedFolders maps each folder with a marker among files to its marker's
// mtime.
func (s *Syncer) markedFolders(files map[string]fileState) map[string]int64 {
	marked := map[string]int64{}
	for rel, fs := range files {
		if s.isMarker(rel) {
			marked[markerFolder(rel)] = max(marked[markerFolder(rel)], fs.ModTime)
		}
	}
	return marked
}

// namesFlag is the flag.Value of a list of names, repeatable or
// comma-separated (as COLLECTOR_COMMIT_MARKER gives them).
type namesFlag struct{ dst *[]string }

func (f *namesFlag) String() string {
	if f.dst == nil {
		return ""
	}
	return strings.Join(*f.dst, ",")
}

func (f *namesFlag) Set(v string) error {
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" || !strings.Contains(v, ",") {
			*f.dst = append(*f.dst, n)
		}
	}
	return nil
}
