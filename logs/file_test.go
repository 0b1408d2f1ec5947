package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/spool"
)

// tailer is a collector with one file source, running in the background.
type tailer struct {
	b     *blob.Bucket
	stop  context.CancelFunc
	done  chan error
	spool chan error
}

func startTailer(t *testing.T, glob string, b *blob.Bucket, dir string, sec spool.Section) *tailer {
	t.Helper()
	cfg := testConfig()
	src, err := NewFileSource(glob, cfg.Poll, int(cfg.LineLimit))
	if err != nil {
		t.Fatal(err)
	}
	sp := testSpool(t, dir, b)
	c, err := New(cfg, sp, []Source{src}, Options{Section: sec, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(context.Background())
	tl := &tailer{b: b, stop: cancel, done: make(chan error, 1), spool: make(chan error, 1)}
	go func() { tl.spool <- sp.Run(stop, context.Background()) }()
	go func() { tl.done <- c.Run(stop, context.Background()) }()
	return tl
}

// end stops the run and returns the lines in the store.
func (tl *tailer) end(t *testing.T) []string {
	t.Helper()
	tl.stop()
	if err := <-tl.done; err != nil {
		t.Fatal(err)
	}
	if err := <-tl.spool; err != nil {
		t.Fatal(err)
	}
	return values(t, tl.b)
}

func values(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), b, Filter{}, func(e *StoredRecord, _ []byte) error {
		out = append(out, string(e.Line()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func numberedLines(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

// wantNumbered checks that got holds prefix 0 .. n-1 once each, in order.
func wantNumbered(t *testing.T, got []string, prefix string, n int) {
	t.Helper()
	var mine []string
	for _, g := range got {
		if strings.HasPrefix(g, prefix+" ") {
			mine = append(mine, g)
		}
	}
	if len(mine) != n {
		t.Fatalf("%d lines %q in the store, want %d:\n%s", len(mine), prefix, n, strings.Join(mine, "|"))
	}
	for i, g := range mine {
		if want := fmt.Sprintf("%s %d", prefix, i); g != want {
			t.Fatalf("line %d is %q, want %q", i, g, want)
		}
	}
}

// settle runs the fake clock of the test's synctest bubble past several
// polls, and waits until the tailer has done what they bring.
func settle() {
	time.Sleep(300 * time.Millisecond)
	synctest.Wait()
}

// waitStored waits, on the fake clock of the test's synctest bubble, until
// the store holds n lines.
func waitStored(t *testing.T, b *blob.Bucket, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); len(values(t, b)) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %d lines after 20 s, want %d", len(values(t, b)), n)
		}
		settle()
	}
}

func TestFileFormats(t *testing.T) {
	for _, tc := range []struct {
		name, glob string
		want       []string // container/stream timestamp value
	}{
		{"cri", "testdata/pods/*/trainer/*.log", []string{
			"trainer/stdout 2026-12-01T04:00:00.000000001Z epoch 1 loss 0.91",
			"trainer/stderr 2026-12-01T04:00:00.000000002Z WARNING: low memory",
			"trainer/stdout 2026-12-01T04:00:00.123456791Z a long line the runtime split, in three pieces, ends here",
			"trainer/stdout 2026-12-01T04:00:01.000000000Z ",
			"trainer/stderr 2026-12-01T04:00:02.500000000Z Traceback (most recent call last):",
		}},
		{"docker", "testdata/containers/*/*-json.log", []string{
			"4f9a1c2b3d4e/stdout 2026-12-01T04:00:00.000000001Z epoch 1 loss 0.91",
			`4f9a1c2b3d4e/stderr 2026-12-01T04:00:00.000000002Z WARNING: "low" memory`,
			"4f9a1c2b3d4e/stdout 2026-12-01T04:00:00.123456790Z a line docker split at 16k, ends here",
			"4f9a1c2b3d4e/stdout 2026-12-01T04:00:01.000000000Z ",
			"4f9a1c2b3d4e/stderr 2026-12-01T04:00:02.500000000Z tab\there é",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := memblob.OpenBucket(nil)
				tl := startTailer(t, tc.glob, b, t.TempDir(), &memSection{})
				settle()
				tl.end(t)
				var got []string
				Read(context.Background(), b, Filter{}, func(e *StoredRecord, _ []byte) error {
					got = append(got, e.Container+"/"+e.Stream+" "+e.Timestamp.UTC().Format(timeLayout)+" "+e.Value)
					return nil
				})
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
			})
		})
	}
}

func TestPlainFileAndLongLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		long := strings.Repeat("x", 300<<10)
		appendTo(t, log, "first\n"+long+"\nlast without newline")
		b := memblob.OpenBucket(nil)
		tl := startTailer(t, filepath.Join(dir, "*.log"), b, t.TempDir(), &memSection{})
		settle()
		tl.end(t)
		var got []string
		Read(context.Background(), b, Filter{}, func(e *StoredRecord, _ []byte) error {
			got = append(got, fmt.Sprintf("%s %d %v", e.Container, len(e.Value), e.Continued))
			return nil
		})
		want := []string{"app.log 5 false", "app.log 262144 true", "app.log 45056 false", "app.log 20 true"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("records (container, length, continued) = %v, want %v", got, want)
		}
	})
}

// Rotation by rename: the old file is read to its end (the writer may
// still add to it), the new one from its start; each line once.
func TestRenameRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendTo(t, log, numberedLines("line", 0, 100))
		b := memblob.OpenBucket(nil)
		tl := startTailer(t, log, b, t.TempDir(), &memSection{})
		waitStored(t, b, 100)
		if err := os.Rename(log, log+".1"); err != nil {
			t.Fatal(err)
		}
		appendTo(t, log+".1", numberedLines("line", 100, 150)) // late writes to the renamed file
		appendTo(t, log, numberedLines("line", 150, 300))
		settle()
		wantNumbered(t, tl.end(t), "line", 300)
	})
}

// Rotation by copytruncate: the copy is not read (it does not match the
// glob), the truncated file is read again from its start.
func TestCopyTruncate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendTo(t, log, numberedLines("line", 0, 100))
		b := memblob.OpenBucket(nil)
		tl := startTailer(t, log, b, t.TempDir(), &memSection{})
		waitStored(t, b, 100)
		data, _ := os.ReadFile(log)
		os.WriteFile(log+".1", data, 0o644)
		if err := os.Truncate(log, 0); err != nil {
			t.Fatal(err)
		}
		settle()
		appendTo(t, log, numberedLines("line", 100, 250))
		settle()
		wantNumbered(t, tl.end(t), "line", 250)
	})
}

// A truncated file that grew past the old offset before the next look is
// still seen as truncated: the bytes before the offset changed.
func TestCopyTruncateRegrownPastTheOffset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendTo(t, log, numberedLines("line", 0, 10))
		b := memblob.OpenBucket(nil)
		tl := startTailer(t, log, b, t.TempDir(), &memSection{})
		waitStored(t, b, 10)
		f, _ := os.OpenFile(log, os.O_WRONLY|os.O_TRUNC, 0)
		f.WriteString(numberedLines("line", 10, 100))
		f.Close()
		settle()
		wantNumbered(t, tl.end(t), "line", 100)
	})
}

// A new file that got the inode of a deleted one is read from its start,
// however far the old one was read; and a restart with the old file's
// cursor does the same.
func TestInodeReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendTo(t, log, "new file, first line\nsecond line\n")
		fi, _ := os.Stat(log)
		dev, ino := inode(fi)
		// The position a collector saved for an older file on the same inode:
		// a longer file with other first bytes.
		old := fmt.Sprintf(`{"files":[{"path":%q,"dev":%d,"inode":%d,"headLen":12,"head":"%s","offset":20,"tail":"%x","format":"plain"}]}`,
			log, dev, ino, hashHex([]byte("old content ")), "st line\n")
		src, _ := NewFileSource(log, 10*time.Millisecond, 1<<20)
		var got []string
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := src.Run(ctx, Position(old), func(r Record, _ Position) error {
			got = append(got, string(r.Value))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != "new file, first line|second line" {
			t.Errorf("read %q, want the new file from its start", got)
		}

		// While running: the file is deleted and a new one created (on this
		// file system it may or may not get the same inode).
		b := memblob.OpenBucket(nil)
		tl := startTailer(t, log, b, t.TempDir(), &memSection{})
		waitStored(t, b, 2)
		os.Remove(log)
		appendTo(t, log, "third\n")
		settle()
		got = tl.end(t)
		if strings.Join(got, "|") != "new file, first line|second line|third" {
			t.Errorf("read %q", got)
		}
	})
}

// A partial last line is held: a collector that stops in between (killed:
// only what it stored counts) resumes before it and reads it whole.
func TestPartialLastLineAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "one\ntwo\nthr")
	src, _ := NewFileSource(log, 10*time.Millisecond, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	var saved Position
	var got []string
	done := make(chan error, 1)
	killed := false
	go func() {
		done <- src.Run(ctx, nil, func(r Record, p Position) error {
			if killed {
				return nil // after the kill: nothing reaches the store
			}
			got = append(got, string(r.Value))
			if p != nil {
				saved = p
			}
			if string(r.Value) == "two" {
				killed = true
				cancel()
			}
			return nil
		})
	}()
	<-done
	if strings.Join(got, "|") != "one|two" {
		t.Fatalf("before the kill: %q", got)
	}
	appendTo(t, log, "ee\nfour\n")
	got = nil
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := src.Run(ctx2, saved, func(r Record, _ Position) error {
		got = append(got, string(r.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "three|four" {
		t.Errorf("after the restart: %q, want three|four", got)
	}
}

// A saved offset whose bytes before it changed is not trusted.
func TestSavedOffsetCheckedAgainstTheFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "app.log")
		appendTo(t, log, "aaaa\nbbbb\n")
		b := memblob.OpenBucket(nil)
		sec := &memSection{}
		spoolDir := t.TempDir()
		tl := startTailer(t, log, b, spoolDir, sec)
		waitStored(t, b, 2)
		tl.end(t)
		// Rewritten in place, same inode and first bytes, other bytes before
		// the offset.
		os.WriteFile(log, []byte("aaaa\ncccc\ndddd\n"), 0o644)
		tl = startTailer(t, log, b, spoolDir, sec)
		settle()
		got := tl.end(t)
		if strings.Join(got, "|") != "aaaa|bbbb|aaaa|cccc|dddd" {
			t.Errorf("store holds %q; want the rewritten file read again from its start", got)
		}
	})
}

// TestFileSourceBacksOffWhileIdle: while its file does not change, the
// source looks at it idlePolls polls apart, not every poll; a line written
// after the pause is read, and then it looks every poll again.
func TestFileSourceBacksOffWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "app.log")
		appendTo(t, log, "before\n")
		const poll = 10 * time.Millisecond
		src, _ := NewFileSource(log, poll, 1<<20)
		var looks, idleLooks atomic.Int64
		src.looked = func(moved bool) {
			looks.Add(1)
			if !moved {
				idleLooks.Add(1)
			}
		}
		lines := make(chan string, 10)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- src.Run(ctx, nil, func(r Record, _ Position) error {
				lines <- string(r.Value)
				return nil
			})
		}()
		if got := <-lines; got != "before" {
			t.Fatalf("first line %q", got)
		}
		idleLooks.Store(0)
		const pause = time.Second
		time.Sleep(pause) // on the bubble's fake clock
		// Every poll would be 100 looks; idlePolls apart, 25, and a couple
		// more while the wait doubles up to it. The bubble's clock makes
		// the count exact.
		if n, most := idleLooks.Load(), int64(pause/(idlePolls*poll))+2; n > most {
			t.Errorf("%d looks at an unchanged file in %v; want at most %d (one every %v)", n, pause, most, idlePolls*poll)
		}
		appendTo(t, log, "after\n")
		if got := <-lines; got != "after" {
			t.Fatalf("line after the pause %q", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
