package sync

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSentinel is the file each event test writes last: fsnotify delivers one
// watcher's events in order, so once it is dirty, every earlier change has
// been handled.
const watchSentinel = "zz-watchSentinel"

func TestWatchEvents(t *testing.T) {
	ignoreGit := func(rel string, dir bool) bool { return dir && path.Base(rel) == ".git" }
	tests := []struct {
		name   string
		before func(t *testing.T, root string) // the tree before watching starts
		act    func(t *testing.T, root string)
		want   []string // dirty paths
		rescan bool
		never  []string // paths that must not be dirty
	}{
		{
			name: "create file",
			act:  func(t *testing.T, root string) { watchWrite(t, root, "new.txt", "x") },
			want: []string{"new.txt"},
		},
		{
			name:   "write file",
			before: func(t *testing.T, root string) { watchWrite(t, root, "a/f.txt", "x") },
			act: func(t *testing.T, root string) {
				f, err := os.OpenFile(filepath.Join(root, "a/f.txt"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString("more"); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"a/f.txt"},
		},
		{
			name: "file in new nested folders",
			act: func(t *testing.T, root string) {
				if err := os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755); err != nil {
					t.Fatal(err)
				}
				watchWrite(t, root, "a/b/c/f.txt", "x")
				watchWrite(t, root, "a/b/g.txt", "x")
			},
			want: []string{"a/b/c/f.txt", "a/b/g.txt"},
		},
		{
			name:   "remove file",
			before: func(t *testing.T, root string) { watchWrite(t, root, "f.txt", "x") },
			act: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "f.txt")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"f.txt"},
		},
		{
			name:   "rename file",
			before: func(t *testing.T, root string) { watchWrite(t, root, "f.txt", "x") },
			act: func(t *testing.T, root string) {
				if err := os.Rename(filepath.Join(root, "f.txt"), filepath.Join(root, "g.txt")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"f.txt", "g.txt"},
		},
		{
			name: "rename folder",
			before: func(t *testing.T, root string) {
				watchWrite(t, root, "d/x.txt", "x")
				watchWrite(t, root, "d/sub/y.txt", "y")
			},
			act: func(t *testing.T, root string) {
				if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "e")); err != nil {
					t.Fatal(err)
				}
				watchWrite(t, root, "e/sub/z.txt", "z") // under the new name, watched or walked
			},
			want:   []string{"e/x.txt", "e/sub/y.txt", "e/sub/z.txt"},
			rescan: true,
		},
		{
			name:   "remove folder",
			before: func(t *testing.T, root string) { watchWrite(t, root, "d/x.txt", "x") },
			act: func(t *testing.T, root string) {
				if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
					t.Fatal(err)
				}
			},
			want:   []string{"d/x.txt"},
			rescan: true,
		},
		{
			name:   "chmod alone",
			before: func(t *testing.T, root string) { watchWrite(t, root, "f.txt", "x") },
			act: func(t *testing.T, root string) {
				if err := os.Chmod(filepath.Join(root, "f.txt"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			never: []string{"f.txt"},
		},
		{
			name:   "ignored folders",
			before: func(t *testing.T, root string) { watchWrite(t, root, ".git/HEAD", "x") },
			act: func(t *testing.T, root string) {
				watchWrite(t, root, ".git/HEAD", "y")
				watchWrite(t, root, ".git/refs/main", "y")
				watchWrite(t, root, "sub/.git/config", "y")
				watchWrite(t, root, "sub/ok.txt", "y")
				watchWrite(t, root, "sub/.git/config", "z")
			},
			want:  []string{"sub/ok.txt"},
			never: []string{".git/HEAD", ".git/refs", ".git/refs/main", "sub/.git", "sub/.git/config"},
		},
		{
			name: "link to a folder is not followed",
			act: func(t *testing.T, root string) {
				outside := t.TempDir()
				if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
					t.Fatal(err)
				}
				watchWrite(t, outside, "f.txt", "x")
			},
			want:  []string{"link"},
			never: []string{"link/f.txt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.before != nil {
				tt.before(t, root)
			}
			w := startWatcher(t, root, ignoreGit)
			tt.act(t, root)
			watchWrite(t, root, watchSentinel, "done")

			want := append([]string{watchSentinel}, tt.want...)
			got, rescan := takeUntil(t, w, func(dirty map[string]struct{}, rescan bool) bool {
				return hasPaths(dirty, want) && rescan == tt.rescan
			})
			for _, p := range tt.never {
				if _, ok := got[p]; ok {
					t.Errorf("%q is dirty; want it never dirty (dirty: %v)", p, pathList(got))
				}
			}
			if rescan != tt.rescan {
				t.Errorf("rescan = %v, want %v", rescan, tt.rescan)
			}
		})
	}
}

func TestWatchChangedFires(t *testing.T) {
	root := t.TempDir()
	w := startWatcher(t, root, nil)
	watchWrite(t, root, "f.txt", "x")
	select {
	case <-w.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not fire after a file was created")
	}
	takeUntil(t, w, func(dirty map[string]struct{}, _ bool) bool { return hasPaths(dirty, []string{"f.txt"}) })
}

func TestWatchTakeResets(t *testing.T) {
	w := bareWatcher(t.TempDir(), nil)
	w.mark("a.txt")
	w.requestRescan()

	dirty, rescan := w.Take()
	if got, want := pathList(dirty), []string{"a.txt"}; !slices.Equal(got, want) || !rescan {
		t.Fatalf("first Take = %v, %v; want %v, true", got, rescan, want)
	}
	dirty, rescan = w.Take()
	if len(dirty) != 0 || rescan {
		t.Fatalf("second Take = %v, %v; want nothing", pathList(dirty), rescan)
	}
}

// TestWatchHandleEvent feeds events straight to the handler, for the cases a
// real file system cannot produce on demand.
func TestWatchHandleEvent(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name   string
		ev     fsnotify.Event
		want   []string
		rescan bool
	}{
		{"chmod", fsnotify.Event{Name: filepath.Join(root, "f"), Op: fsnotify.Chmod}, nil, false},
		{"write and chmod", fsnotify.Event{Name: filepath.Join(root, "f"), Op: fsnotify.Write | fsnotify.Chmod}, []string{"f"}, false},
		{"outside root", fsnotify.Event{Name: filepath.Join(filepath.Dir(root), "other", "f"), Op: fsnotify.Create}, nil, false},
		{"sibling with root as prefix", fsnotify.Event{Name: root + "x/f", Op: fsnotify.Write}, nil, false},
		{"root removed", fsnotify.Event{Name: root, Op: fsnotify.Remove}, nil, true},
		{"write on root", fsnotify.Event{Name: root, Op: fsnotify.Write}, nil, false},
		{"create, gone again", fsnotify.Event{Name: filepath.Join(root, "a", "gone"), Op: fsnotify.Create}, []string{"a/gone"}, false},
		{"remove", fsnotify.Event{Name: filepath.Join(root, "a", "b"), Op: fsnotify.Remove}, []string{"a/b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := bareWatcher(root, nil)
			w.handleEvent(tt.ev)
			dirty, rescan := w.Take()
			if got := pathList(dirty); !slices.Equal(got, tt.want) || rescan != tt.rescan {
				t.Errorf("after %v: Take = %v, %v; want %v, %v", tt.ev, got, rescan, tt.want, tt.rescan)
			}
		})
	}
}

func TestWatchErrorsAskForRescan(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // in the log line
	}{
		{"overflow", fsnotify.ErrEventOverflow, "overflowed"},
		{"other", errors.New("read inotify: bad file descriptor"), "bad file descriptor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			w := bareWatcher(t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
			w.handleError(tt.err)
			if _, rescan := w.Take(); !rescan {
				t.Error("rescan = false after an error; want true")
			}
			select {
			case <-w.Changed():
			default:
				t.Error("Changed did not fire after an error")
			}
			if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, tt.want) {
				t.Errorf("log = %q; want a warning containing %q", got, tt.want)
			}
		})
	}
}

func TestWatchWarningsRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		w := bareWatcher(t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
		count := func() int { return strings.Count(logs.String(), "level=WARN") }

		w.handleError(fsnotify.ErrEventOverflow)
		w.handleError(fsnotify.ErrEventOverflow)
		if got, want := count(), 1; got != want {
			t.Fatalf("%d warnings after two overflows in a row; want %d", got, want)
		}
		w.handleError(errors.New("another kind"))
		if got, want := count(), 2; got != want {
			t.Fatalf("%d warnings after an error of another kind; want %d", got, want)
		}
		time.Sleep(warnEvery)
		w.handleError(fsnotify.ErrEventOverflow)
		if got, want := count(), 3; got != want {
			t.Fatalf("%d warnings after an overflow a minute later; want %d", got, want)
		}
		if _, rescan := w.Take(); !rescan {
			t.Error("rescan = false; want true even when the warning is not logged")
		}
	})
}

// TestWatchAddFailure simulates a folder that cannot be watched (as with the
// inotify watch limit reached) with a closed fsnotify watcher, whose Add fails.
func TestWatchAddFailure(t *testing.T) {
	root := t.TempDir()
	var logs bytes.Buffer
	w, err := newWatcher(root, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	watchWrite(t, root, "new/f.txt", "x")

	w.addTree(filepath.Join(root, "new"), "new", true)

	dirty, rescan := w.Take()
	if !rescan {
		t.Error("rescan = false after a failed watch; want true")
	}
	if _, ok := dirty["new/f.txt"]; !ok {
		t.Errorf("dirty = %v; want new/f.txt, found by the walk", pathList(dirty))
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "path=new") {
		t.Errorf("log = %q; want a warning naming the folder", got)
	}
}

func TestWatchRootMissing(t *testing.T) {
	_, err := newWatcher(filepath.Join(t.TempDir(), "missing"), nil, nil)
	if err == nil {
		t.Fatal("newWatcher on a missing folder succeeded; want an error")
	}
}

// startWatcher watches root and runs the watcher until the test ends.
func startWatcher(t *testing.T, root string, ignore func(rel string, dir bool) bool) *watcher {
	t.Helper()
	w, err := newWatcher(root, ignore, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return w
}

// bareWatcher is a watcher without fsnotify, for calling its handlers directly.
func bareWatcher(root string, log *slog.Logger) *watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &watcher{
		root:     root,
		ignore:   func(string, bool) bool { return false },
		log:      log,
		dirs:     map[string]struct{}{"": {}},
		changed:  make(chan struct{}, 1),
		lastWarn: map[string]time.Time{},
	}
}

// takeUntil takes from w, each time it says something changed, until done
// holds for everything taken so far, and returns that. It fails the test
// after 5 s.
func takeUntil(t *testing.T, w *watcher, done func(dirty map[string]struct{}, rescan bool) bool) (map[string]struct{}, bool) {
	t.Helper()
	all := map[string]struct{}{}
	var rescan bool
	timeout := time.After(5 * time.Second)
	for {
		dirty, r := w.Take()
		for p := range dirty {
			all[p] = struct{}{}
		}
		rescan = rescan || r
		if done(all, rescan) {
			return all, rescan
		}
		select {
		case <-w.Changed():
		case <-timeout:
			t.Fatalf("timed out; dirty so far: %v, rescan: %v", pathList(all), rescan)
		}
	}
}

func watchWrite(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hasPaths(set map[string]struct{}, want []string) bool {
	for _, p := range want {
		if _, ok := set[p]; !ok {
			return false
		}
	}
	return true
}

func pathList(set map[string]struct{}) []string {
	return slices.Sorted(maps.Keys(set))
}
