package sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// warnEvery is how often the watcher logs the same kind of trouble at most.
const warnEvery = time.Minute

// watcher turns fsnotify events under root into a set of dirty paths. Events are
// hints; the periodic rescan is the truth.
//
// fsnotify is not recursive, so the watcher watches every folder of the tree
// and adds each new one as it appears. A folder that is removed or renamed,
// an event queue that overflowed, or a folder that could not be watched (the
// inotify limit fs.inotify.max_user_watches, say) sets the rescan flag: the
// engine should then scan the whole folder rather than trust the dirty set.
// Symbolic links to folders are not followed.
type watcher struct {
	root   string // absolute and clean
	ignore func(rel string, dir bool) bool
	log    *slog.Logger
	fsw    *fsnotify.Watcher

	// dirs are the watched folders by slash path relative to root ("" is
	// root). Only newWatcher and then the Run goroutine touch it.
	dirs map[string]struct{}

	changed chan struct{} // buffered 1; a send means "look at Take"

	mu       stdsync.Mutex // guards the fields below
	dirty    map[string]struct{}
	rescan   bool
	lastWarn map[string]time.Time // last Warn per kind of trouble
}

// newWatcher watches root and every folder under it, except the folders for
// which ignore returns true. ignore is called with slash paths relative to
// root, never for root itself, with dir true for folders and false for
// files; an ignored file is never marked dirty. A nil ignore ignores nothing.
// A folder under root that cannot be watched sets the rescan flag and is left
// to the periodic pass; root itself not being watchable is an error.
func newWatcher(root string, ignore func(rel string, dir bool) bool, log *slog.Logger) (*watcher, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if ignore == nil {
		ignore = func(string, bool) bool { return false }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", abs, err)
	}
	w := &watcher{
		root:     abs,
		ignore:   ignore,
		log:      log,
		fsw:      fsw,
		dirs:     map[string]struct{}{},
		changed:  make(chan struct{}, 1),
		lastWarn: map[string]time.Time{},
	}
	if err := fsw.Add(abs); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", abs, err)
	}
	w.dirs[""] = struct{}{}
	w.addTree(abs, "", false)
	return w, nil
}

// Run handles events until ctx ends, or until the watcher is closed. It
// returns nil.
func (w *watcher) Run(ctx context.Context) error {
	if w.fsw == nil { // a test's watcher, told of events by hand
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			w.handleEvent(ev)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			w.handleError(err)
		}
	}
}

// Take returns the paths marked dirty since the last Take (slash paths
// relative to root; nil if none) and whether a full rescan is needed, and
// resets both. A dirty path is a hint: it may name a file that is gone again,
// or a folder. It is safe to call from any goroutine.
func (w *watcher) Take() (dirty map[string]struct{}, rescan bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	dirty, rescan = w.dirty, w.rescan
	w.dirty, w.rescan = nil, false
	return dirty, rescan
}

// Changed receives when a path was marked dirty or a rescan was asked for
// since the last receive, so the engine can debounce and then call Take.
func (w *watcher) Changed() <-chan struct{} { return w.changed }

// Close stops watching; Run then returns.
func (w *watcher) Close() error {
	if w.fsw == nil {
		return nil
	}
	return w.fsw.Close()
}

// handleEvent marks what one fsnotify event changed.
func (w *watcher) handleEvent(ev fsnotify.Event) {
	op := ev.Op &^ fsnotify.Chmod
	if op == 0 {
		return
	}
	name := filepath.Clean(ev.Name)
	if name == w.root {
		if op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename) {
			w.requestRescan() // the outputs folder itself went away
		}
		return
	}
	if !within(w.root, name) {
		return
	}
	rel := filepath.ToSlash(name[len(w.root)+1:])

	if op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename) {
		if _, ok := w.dirs[rel]; ok {
			w.dropTree(rel)
			w.requestRescan()
		} else if !w.ignore(rel, false) {
			w.mark(rel)
		}
	}
	if op.Has(fsnotify.Create) {
		fi, err := os.Lstat(name)
		if err == nil && fi.IsDir() {
			if !w.ignore(rel, true) {
				w.addTree(name, rel, true)
			}
			return
		}
		// Gone again, a file or a link (not followed): a hint for its path.
		if !w.ignore(rel, false) {
			w.mark(rel)
		}
		return
	}
	if op.Has(fsnotify.Write) {
		if _, ok := w.dirs[rel]; !ok && !w.ignore(rel, false) {
			w.mark(rel)
		}
	}
}

// addTree watches the folder abs (rel from root) and every folder under it
// that is not ignored; with markFiles, it marks every file it finds dirty. A
// folder is watched before it is listed, so a file created in it meanwhile is
// seen by one or the other.
func (w *watcher) addTree(abs, rel string, markFiles bool) {
	_ = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone or unreadable: the periodic pass looks again
		}
		r := rel
		if p != abs {
			r = filepath.ToSlash(p[len(w.root)+1:])
		}
		if !d.IsDir() {
			if markFiles && !w.ignore(r, false) {
				w.mark(r)
			}
			return nil
		}
		if p != abs && w.ignore(r, true) {
			return filepath.SkipDir
		}
		if p == abs && rel == "" {
			return nil // root is watched by newWatcher
		}
		if err := w.fsw.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir // removed while we walked
			}
			w.watchFailed(r, err)
			return nil // still list it, for files created before the failure
		}
		w.dirs[r] = struct{}{}
		return nil
	})
}

// dropTree forgets the folder rel and the folders under it. A renamed folder's
// subfolders keep their watches under their old paths otherwise.
func (w *watcher) dropTree(rel string) {
	prefix := rel + "/"
	for d := range w.dirs {
		if d == rel || strings.HasPrefix(d, prefix) {
			delete(w.dirs, d)
			_ = w.fsw.Remove(filepath.Join(w.root, filepath.FromSlash(d))) // often gone already
		}
	}
}

// handleError takes an error from fsnotify's Errors channel: events may have
// been lost, so the next pass must rescan.
func (w *watcher) handleError(err error) {
	w.requestRescan()
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.warn("overflow", "file events overflowed; rescanning the outputs folder", "err", err)
		return
	}
	w.warn("error", "file watching failed; rescanning the outputs folder", "err", err)
}

// watchFailed handles a folder that could not be watched: changes under it
// are left to the periodic pass.
func (w *watcher) watchFailed(rel string, err error) {
	w.requestRescan()
	msg := "cannot watch a folder; changes under it are found by the periodic pass"
	if errors.Is(err, syscall.ENOSPC) {
		msg = "cannot watch a folder: inotify watch limit reached (raise fs.inotify.max_user_watches); changes under it are found by the periodic pass"
	}
	w.warn("watch", msg, "path", rel, "err", err)
}

func (w *watcher) mark(rel string) {
	w.mu.Lock()
	if w.dirty == nil {
		w.dirty = map[string]struct{}{}
	}
	w.dirty[rel] = struct{}{}
	w.mu.Unlock()
	w.notify()
}

func (w *watcher) requestRescan() {
	w.mu.Lock()
	w.rescan = true
	w.mu.Unlock()
	w.notify()
}

func (w *watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// warn logs at Warn, at most once per warnEvery for each kind.
func (w *watcher) warn(kind, msg string, args ...any) {
	now := time.Now()
	w.mu.Lock()
	last, seen := w.lastWarn[kind]
	due := !seen || now.Sub(last) >= warnEvery
	if due {
		w.lastWarn[kind] = now
	}
	w.mu.Unlock()
	if due {
		w.log.Warn(msg, args...)
	}
}
