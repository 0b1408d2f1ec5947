package resume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// storeKinds are the stores every restore test that does not depend on
// store quirks runs against: memblob keeps metadata, fileblob (as host_path
// stores open it) keeps none.
var storeKinds = []struct {
	name string
	open func(t *testing.T) *blob.Bucket
}{
	{"mem", func(t *testing.T) *blob.Bucket {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		return b
	}},
	{"file", openFileBucket},
}

func openFileBucket(t *testing.T) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// put writes the files (rel path -> bytes) under outputs/ the way the
// collector does, with their sha256 metadata, and returns the manifest a
// state would hold for them.
func put(t *testing.T, b *blob.Bucket, files map[string]string) Manifest {
	t.Helper()
	known := Manifest{}
	for rel, data := range files {
		putKey(t, b, OutputsPrefix+rel, []byte(data), sha([]byte(data)))
		known[rel] = &Entry{Size: int64(len(data)), SHA256: digest([]byte(data))}
	}
	return known
}

func putKey(t *testing.T, b *blob.Bucket, key string, data []byte, sum string) {
	t.Helper()
	opts := &blob.WriterOptions{Metadata: map[string]string{stores.HashMetadataKey: sum}}
	if err := b.WriteAll(context.Background(), key, data, opts); err != nil {
		t.Fatalf("write %q: %v", key, err)
	}
}

// tree returns every file and symlink under dir (slash rel path -> bytes,
// or "-> target" for a link).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		}
		data, err := os.ReadFile(p)
		got[rel] = string(data)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return got
}

func assertTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := tree(t, dir)
	for rel, w := range want {
		if g, ok := got[rel]; !ok {
			t.Errorf("%s: missing", rel)
		} else if g != w {
			t.Errorf("%s: got %d bytes %q, want %d bytes %q", rel, len(g), trim(g), len(w), trim(w))
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("%s: unexpected file", rel)
		}
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func sampleFiles() map[string]string {
	return map[string]string{
		"metrics.csv":              "step,loss\n1,0.5\n2,0.25\n",
		"ckpt/latest.pt":           strings.Repeat("weights!", 40_000),
		"ckpt/epoch-1/model.bin":   string(bytes.Repeat([]byte{0, 1, 2, 255}, 1000)),
		"a/b/c/d/deep.txt":         "deep",
		"with space/file name.txt": "spaces",
		"données/résumé 模型 ✓.json": `{"ok":true}`,
		"empty":                    "",
	}
}

func TestRestore(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			b := kind.open(t)
			files := sampleFiles()
			known := put(t, b, files)
			dir := filepath.Join(t.TempDir(), "outputs") // does not exist yet

			var progMu stdsync.Mutex
			var calls [][4]int64
			m, stats, err := Restore(ctx, b, dir, RestoreOptions{
				Known:   known,
				Workers: 3,
				Progress: func(done, total int, bytesDone, bytesTotal int64) {
					progMu.Lock()
					defer progMu.Unlock()
					calls = append(calls, [4]int64{int64(done), int64(total), bytesDone, bytesTotal})
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			assertTree(t, dir, files)

			var wantBytes int64
			for _, data := range files {
				wantBytes += int64(len(data))
			}
			if got, want := stats.Files, len(files); got != want {
				t.Errorf("stats.Files = %d, want %d", got, want)
			}
			if got, want := stats.Bytes, wantBytes; got != want {
				t.Errorf("stats.Bytes = %d, want %d", got, want)
			}
			if stats.Skipped != 0 {
				t.Errorf("stats.Skipped = %d, want 0", stats.Skipped)
			}

			// The manifest describes each local file, so the sync engine
			// sees it as already uploaded.
			if got, want := len(m), len(files); got != want {
				t.Errorf("manifest has %d entries, want %d", got, want)
			}
			for rel, data := range files {
				e, ok := m[rel]
				if !ok {
					t.Errorf("manifest: %s missing", rel)
					continue
				}
				fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := *e, (Entry{Size: int64(len(data)), ModTime: fi.ModTime().UnixNano(), Inode: InodeOf(fi), SHA256: digest([]byte(data))}); got != want {
					t.Errorf("manifest[%s] = %+v, want %+v", rel, got, want)
				}
				if !e.SameFile(fi.Size(), fi.ModTime().UnixNano(), InodeOf(fi)) {
					t.Errorf("manifest[%s] is not the same file as on disk", rel)
				}
			}

			progMu.Lock()
			if len(calls) == 0 {
				t.Fatal("progress never called")
			}
			if got, want := calls[len(calls)-1], [4]int64{int64(len(files)), int64(len(files)), wantBytes, wantBytes}; got != want {
				t.Errorf("last progress = %v, want %v", got, want)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i][0] < calls[i-1][0] || calls[i][2] < calls[i-1][2] {
					t.Errorf("progress went backwards: %v then %v", calls[i-1], calls[i])
				}
			}
			progMu.Unlock()

			// A second restore over the restored folder downloads nothing:
			// every file is kept as it is (same inode and mtime).
			m2, stats2, err := Restore(ctx, b, dir, RestoreOptions{Known: known})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := stats2.Skipped, len(files); got != want {
				t.Errorf("second restore: Skipped = %d, want %d", got, want)
			}
			if got, want := stats2.Files, len(files); got != want {
				t.Errorf("second restore: Files = %d, want %d", got, want)
			}
			for rel, want := range m {
				if got := m2[rel]; got == nil || *got != *want {
					t.Errorf("second restore: manifest[%s] = %+v, want %+v (unchanged)", rel, got, want)
				}
			}
			assertTree(t, dir, files)
		})
	}
}

// A local file that differs from the store's is the job's newer work (a
// restarted container keeps its folder): it is kept, left out of the
// manifest so the sync uploads it, and never overwritten.
func TestRestoreKeepsDifferentLocalFile(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := kind.open(t)
			known := put(t, b, map[string]string{"model.bin": "old bytes", "other.txt": "other"})
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "model.bin"), []byte("new bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
			m, stats, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Kept != 1 || stats.Skipped != 0 {
				t.Errorf("stats = %+v, want 1 kept", stats)
			}
			if _, ok := m["model.bin"]; ok {
				t.Error("the kept file is in the manifest; the sync would not upload it")
			}
			assertTree(t, dir, map[string]string{"model.bin": "new bytes", "other.txt": "other"})
		})
	}
}

func TestRestoreLongName(t *testing.T) {
	// fileblob cannot store a name this long (its own temp name overflows),
	// so memblob only. The restore's temp name must be shortened to fit the
	// usual 255-byte limit, cutting no character in half.
	b := memblob.OpenBucket(nil)
	defer b.Close()
	files := map[string]string{"long/x" + strings.Repeat("é", 120): "long name"} // 241 bytes
	known := put(t, b, files)
	dir := t.TempDir()

	if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, files)
}

func TestRestoreHashMismatch(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	put(t, b, map[string]string{"ok.txt": "fine"})
	putKey(t, b, "outputs/ckpt/bad.pt", []byte("corrupted"), sha([]byte("original")))
	dir := t.TempDir()

	_, _, err := Restore(ctx, b, dir, RestoreOptions{Workers: 1})
	if err == nil {
		t.Fatal("restore of an object whose bytes do not match its sha256: no error")
	}
	if !strings.Contains(err.Error(), `"outputs/ckpt/bad.pt"`) {
		t.Errorf("error %q does not name the key", err)
	}
	for rel := range tree(t, dir) {
		if rel != "ok.txt" { // may or may not have been restored before the failure
			t.Errorf("%s is left in the folder", rel)
		}
	}
}

func TestRestoreStaleStateHash(t *testing.T) {
	// A host_path store keeps no metadata, and the state can lag behind an
	// object uploaded again in the pass that was interrupted: the store's
	// copy wins.
	ctx := context.Background()
	b := openFileBucket(t)
	put(t, b, map[string]string{"ckpt/latest.pt": "epoch 2"})
	known := Manifest{
		"ckpt/latest.pt": {Size: int64(len("epoch 1")), SHA256: digest([]byte("epoch 1"))},
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()

	m, _, err := Restore(ctx, b, dir, RestoreOptions{Known: known, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, map[string]string{"ckpt/latest.pt": "epoch 2"})
	if got, want := m["ckpt/latest.pt"].SHA256, digest([]byte("epoch 2")); got != want {
		t.Errorf("manifest sha256 = %s, want %s (the restored bytes')", got, want)
	}
	if !strings.Contains(logs.String(), "differs from the run's state") {
		t.Errorf("no warning logged; logs:\n%s", logs.String())
	}
}

// TestRestoreBackslashNames: on Linux a backslash is part of a file's name
// (the sync uploads such a file as it is): restored under that name, inside
// the folder, never as a folder separator.
func TestRestoreBackslashNames(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	for _, key := range []string{`outputs/a\b.txt`, `outputs/..\x`} {
		putKey(t, b, key, []byte(key), sha([]byte(key)))
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, map[string]string{`a\b.txt`: `outputs/a\b.txt`, `..\x`: `outputs/..\x`})
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("the restore wrote beside the folder: %v", entries)
	}
}

func TestRestoreUnsafeKeys(t *testing.T) {
	for _, key := range []string{
		"outputs/../x",
		"outputs/..",
		"outputs//etc/x",
		"outputs/a/../../x",
		"outputs/a/..",
		"outputs/./a",
		"outputs/a//b",
		"outputs/a\x00b",
	} {
		t.Run(key, func(t *testing.T) {
			b := memblob.OpenBucket(nil) // memblob keeps any key as it is
			defer b.Close()
			put(t, b, map[string]string{"aaa": "before", "zzz": "after"})
			putKey(t, b, key, []byte("payload"), sha([]byte("payload")))
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}

			_, _, err := Restore(context.Background(), b, dir, RestoreOptions{})
			var unsafe *UnsafeKeyError
			if !errors.As(err, &unsafe) {
				t.Fatalf("err = %v, want an *UnsafeKeyError", err)
			}
			if unsafe.Key != key {
				t.Errorf("UnsafeKeyError.Key = %q, want %q", unsafe.Key, key)
			}
			if !strings.Contains(err.Error(), strconv.Quote(key)) {
				t.Errorf("error %q does not name the key", err)
			}
			assertTree(t, dir, map[string]string{})
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "out" {
				t.Errorf("the parent of the folder has %v, want only out", entries)
			}
		})
	}
}

func TestRestoreSymlinkInPath(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	put(t, b, map[string]string{"aaa": "first", "link/x": "escaped", "link/sub/y": "escaped too"})
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	_, _, err := Restore(context.Background(), b, dir, RestoreOptions{})
	var unsafe *UnsafeKeyError
	if !errors.As(err, &unsafe) {
		t.Fatalf("err = %v, want an *UnsafeKeyError", err)
	}
	if !strings.HasPrefix(unsafe.Key, "outputs/link/") {
		t.Errorf("UnsafeKeyError.Key = %q, want a key under outputs/link/", unsafe.Key)
	}
	assertTree(t, outside, map[string]string{})
	assertTree(t, dir, map[string]string{"link": "-> " + outside})
}

func TestRestoreFileAndFolderConflict(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	put(t, b, map[string]string{"a": "file", "a/b": "under a", "c": "other"})
	dir := t.TempDir()

	_, _, err := Restore(context.Background(), b, dir, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), `"outputs/a"`) {
		t.Fatalf("err = %v, want one naming outputs/a", err)
	}
	assertTree(t, dir, map[string]string{})
}

func TestRestoreInclude(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := kind.open(t)
			known := put(t, b, map[string]string{
				"ckpt/latest.pt":       "latest",
				"ckpt/latest.json":     "{}",
				"ckpt/epoch-1.pt":      "old",
				"latest.txt":           "top level",
				"other/ckpt/latest.pt": "not under ckpt/",
				"metrics.csv":          "1,2",
			})
			dir := t.TempDir()

			m, stats, err := Restore(context.Background(), b, dir, RestoreOptions{Include: []string{"ckpt/latest*", "*.csv"}, Known: known})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"ckpt/latest.pt": "latest", "ckpt/latest.json": "{}", "metrics.csv": "1,2"}
			assertTree(t, dir, want)
			got := slices.Sorted(func(yield func(string) bool) {
				for rel := range m {
					if !yield(rel) {
						return
					}
				}
			})
			if want := []string{"ckpt/latest.json", "ckpt/latest.pt", "metrics.csv"}; !slices.Equal(got, want) {
				t.Errorf("manifest has %v, want %v", got, want)
			}
			if stats.Files != 3 {
				t.Errorf("stats.Files = %d, want 3", stats.Files)
			}
		})
	}
}

func TestRestoreRemovesStaleTempFiles(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := kind.open(t)
			known := put(t, b, map[string]string{"ckpt/model.pt": "model"})
			dir := t.TempDir()
			// Left by a restore killed mid-download, and a file of the job's own.
			for rel, data := range map[string]string{
				"ckpt/.model.pt.collector-restore-123456": "torn",
				".other.collector-restore-9":              "torn",
				"job-notes.txt":                           "mine",
			} {
				p := filepath.Join(dir, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known}); err != nil {
				t.Fatal(err)
			}
			assertTree(t, dir, map[string]string{"ckpt/model.pt": "model", "job-notes.txt": "mine"})
		})
	}
}

func TestRestoreCanceled(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	files := map[string]string{}
	for i := range 50 {
		files[fmt.Sprintf("part-%02d.bin", i)] = strings.Repeat(string(rune('a'+i%26)), 256<<10)
	}
	put(t, b, files)
	dir := t.TempDir()
	// Cancel as soon as the first file is in place, with others under way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(&onRecord{msg: "restored", do: cancel})

	_, _, err := Restore(ctx, b, dir, RestoreOptions{Workers: 4, Logger: log})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	got := tree(t, dir)
	if len(got) == 0 || len(got) == len(files) {
		t.Errorf("%d files restored, want some but not all", len(got))
	}
	for rel, data := range got {
		if files[rel] != data { // whole files only, under their final names; no temp files
			t.Errorf("%s: %d bytes left, not the object's", rel, len(data))
		}
	}
}

// onRecord is a slog.Handler that calls do on each record with message msg.
type onRecord struct {
	msg string
	do  func()
}

func (h *onRecord) Enabled(context.Context, slog.Level) bool { return true }
func (h *onRecord) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.do()
	}
	return nil
}
func (h *onRecord) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *onRecord) WithGroup(string) slog.Handler      { return h }

func TestRestoreSkipsFolderMarkers(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	put(t, b, map[string]string{"logs/x.txt": "x"})
	putKey(t, b, "outputs/logs/", nil, sha(nil))
	putKey(t, b, "outputs/", nil, sha(nil))
	dir := t.TempDir()

	m, _, err := Restore(context.Background(), b, dir, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, map[string]string{"logs/x.txt": "x"})
	if len(m) != 1 {
		t.Errorf("manifest = %v, want only logs/x.txt", m)
	}
}

// TestRestoreFromKnown: a restarted container with its own state restores
// what the state lists and the folder lacks, without listing the store.
func TestRestoreFromKnown(t *testing.T) {
	ctx := context.Background()
	b := openFileBucket(t)
	put(t, b, map[string]string{"a.pt": "kept", "b.pt": "missing locally", "d.pt": "not in the state"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.pt"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	known := Manifest{
		"a.pt": {Size: 4, SHA256: digest([]byte("kept"))},
		"b.pt": {Size: 15, SHA256: digest([]byte("missing locally"))},
		"c.pt": {Size: 1, SHA256: digest([]byte("x"))}, // gone from the store
	}
	var logs bytes.Buffer
	m, _, err := Restore(ctx, b, dir, RestoreOptions{Known: known, FromKnown: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, map[string]string{"a.pt": "kept", "b.pt": "missing locally"})
	if _, ok := m["c.pt"]; ok || len(m) != 2 {
		t.Errorf("manifest after restore: %v, want a.pt and b.pt", m)
	}
	if !strings.Contains(logs.String(), "no longer in the store") || !strings.Contains(logs.String(), "c.pt") {
		t.Errorf("no warning about c.pt; logs:\n%s", logs.String())
	}
}
