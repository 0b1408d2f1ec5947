package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mlsidecar/collector/stores"
)

// fsyncs records the fsync calls of one test, with what was on disk at
// each, and can make them fail.
type fsyncs struct {
	final   string // the object's path
	calls   []string
	failFor string // "file" or "dir": that kind of fsync fails with EIO
}

// watch replaces the package's fsync functions for the test.
func (s *fsyncs) watch(t *testing.T) {
	t.Helper()
	file, dir := fsyncFile, fsyncDir
	t.Cleanup(func() { fsyncFile, fsyncDir = file, dir })
	fsyncFile = func(f *os.File) error {
		s.calls = append(s.calls, fmt.Sprintf("file %s (object there: %v)", rel(s.final, f.Name()), exists(s.final)))
		if s.failFor == "file" {
			return syscall.EIO
		}
		return file(f)
	}
	fsyncDir = func(d string) error {
		s.calls = append(s.calls, fmt.Sprintf("dir %s (object there: %v)", rel(s.final, d), exists(s.final)))
		if s.failFor == "dir" {
			return syscall.EIO
		}
		return dir(d)
	}
}

// rel names p for the record: "temp" for a partial file of the object,
// else its path relative to the object's folder.
func rel(final, p string) string {
	if stores.IsPartial(p) && strings.HasPrefix(filepath.Base(p), "."+filepath.Base(final)) {
		return "temp"
	}
	r, _ := filepath.Rel(filepath.Dir(final), p)
	return filepath.ToSlash(r)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func openTarget(t *testing.T, dir string) stores.Target {
	t.Helper()
	s, err := stores.Open(context.Background(), stores.Connection{Kind: stores.KindHostPath, Schema: stores.Schema{MountPath: dir}}, stores.Options{ForWriting: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := os.MkdirAll(filepath.Join(dir, "run/outputs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return s.Target("run/outputs/")
}

// TestUploadIsDurableBeforeItReturns checks the order of a host path upload
// that the manifest will record: the file's bytes are fsync'd before it is
// renamed into place, the folder after, and a new folder's parent too; and
// that an fsync that fails fails the upload, leaving no object behind when
// it was the file's.
func TestUploadIsDurableBeforeItReturns(t *testing.T) {
	ctx := context.Background()
	data := []byte("weights")

	t.Run("order", func(t *testing.T) {
		dir := t.TempDir()
		target := openTarget(t, dir)
		s := &fsyncs{final: filepath.Join(dir, "run/outputs/new/model.bin")}
		s.watch(t)
		if err := target.Upload(ctx, "new/model.bin", bytes.NewReader(data), stores.Sums{}, 0, 0); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"dir .. (object there: false)", // run/outputs, which holds the new folder
			"file temp (object there: false)",
			"dir . (object there: true)",
		}
		if strings.Join(s.calls, "\n") != strings.Join(want, "\n") {
			t.Errorf("fsync calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(want, "\n"))
		}
		if got, err := os.ReadFile(s.final); err != nil || !bytes.Equal(got, data) {
			t.Errorf("object = %q, %v; want %q", got, err, data)
		}
		assertOnly(t, filepath.Dir(s.final), "model.bin")
	})

	t.Run("file fsync fails", func(t *testing.T) {
		dir := t.TempDir()
		target := openTarget(t, dir)
		s := &fsyncs{final: filepath.Join(dir, "run/outputs/model.bin"), failFor: "file"}
		s.watch(t)
		err := target.Upload(ctx, "model.bin", bytes.NewReader(data), stores.Sums{}, 0, 0)
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("Upload = %v, want an EIO error", err)
		}
		if exists(s.final) {
			t.Error("the object is in place although its bytes were not made durable")
		}
		assertOnly(t, filepath.Dir(s.final))
	})

	t.Run("folder fsync fails", func(t *testing.T) {
		dir := t.TempDir()
		target := openTarget(t, dir)
		s := &fsyncs{final: filepath.Join(dir, "run/outputs/model.bin"), failFor: "dir"}
		s.watch(t)
		err := target.Upload(ctx, "model.bin", bytes.NewReader(data), stores.Sums{}, 0, 0)
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("Upload = %v, want an EIO error", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		target := openTarget(t, dir)
		ctx, cancel := context.WithCancel(ctx)
		r := readFunc(func(p []byte) (int, error) { cancel(); return 0, io.EOF })
		if err := target.Upload(ctx, "model.bin", r, stores.Sums{}, 0, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Upload = %v, want context.Canceled", err)
		}
		assertOnly(t, filepath.Join(dir, "run/outputs"))
	})

	t.Run("resumable upload", func(t *testing.T) {
		dir := t.TempDir()
		target := openTarget(t, dir)
		s := &fsyncs{final: filepath.Join(dir, "run/outputs/model.bin"), failFor: "dir"}
		s.watch(t)
		p := &stores.Progress{Key: "model.bin", Size: int64(len(data)), PartSize: 4}
		if _, err := target.Resumable.Upload(ctx, bytes.NewReader(data), p, nil, 1, nil); !errors.Is(err, syscall.EIO) {
			t.Fatalf("Upload = %v, want the folder's EIO", err)
		}
	})
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// assertOnly checks that dir holds exactly the named entries: no temp file
// is left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
