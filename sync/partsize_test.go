package sync

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

const mib = 1 << 20

// progressLog is the uploader's Checkpointer: it keeps every Progress
// saved. The uploader never checkpoints a manifest.
type progressLog struct {
	Checkpointer // nil
	mu           stdsync.Mutex
	saves        []stores.Progress
}

func (l *progressLog) DropProgress(context.Context, string) error { return nil }
func (l *progressLog) SaveProgress(_ context.Context, p stores.Progress) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.saves = append(l.saves, p)
	return nil
}

func (l *progressLog) first() stores.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saves[0]
}

// largeFile writes size patterned bytes to dir/rel and returns them and the
// file's state.
func largeFile(t *testing.T, dir, rel string, size int) ([]byte, fileState) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>12)
	}
	write(t, dir, rel, string(data))
	fi, err := os.Stat(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data, stateOf(fi)
}

// storeHolds checks the object key of the host path target's folder.
func storeHolds(t *testing.T, target stores.Target, key string, want []byte) {
	t.Helper()
	got, err := target.Bucket.ReadAll(context.Background(), key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("store holds %d bytes (%v) under %q, want the file's %d", len(got), err, key, len(want))
	}
}

// smallParts is the test's --part-size, below what Validate allows, so that
// files of a few MiB have many parts.
func smallParts() Config {
	cfg := testConfig()
	cfg.PartSize = 1 * mib
	return cfg
}

// TestLargeFileGetsLargerParts checks that a file with more parts of
// --part-size than the store takes is sent in larger parts, a whole number
// of MiB, that fit. The store's part limit is lowered to 4 so that a 4 MiB
// file in 1 MiB parts stands for an 80 GiB one in S3's 8 MiB parts.
func TestLargeFileGetsLargerParts(t *testing.T) {
	dir := t.TempDir()
	data, st := largeFile(t, dir, "model.bin", 4*mib+3)
	target := storetest.HostPath(t).OpenStore(t).Target("run/outputs/")
	log := &progressLog{}
	u := newUploader(target, smallParts(), Options{Checkpointer: log})
	u.limits = stores.Limits{MaxParts: 4}
	if _, err := u.upload(context.Background(), filepath.Join(dir, "model.bin"), "model.bin", st, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := log.first().PartSize, int64(2*mib); got != want {
		t.Errorf("part size = %d MiB, want %d MiB (4 MiB and 3 bytes in at most 4 parts)", got/mib, want/mib)
	}
	storeHolds(t, target, "model.bin", data)
}

// TestResumeKeepsTheSavedPartSize checks that an upload left behind with
// another part size than the file would get now (--part-size changed since)
// is continued with its own, and started over only when the store does not
// take the file in parts of that size.
func TestResumeKeepsTheSavedPartSize(t *testing.T) {
	for _, tt := range []struct {
		name     string
		limits   stores.Limits
		resumed  bool
		partSize int64
	}{
		{"continued with its part size", stores.Limits{}, true, 3 * mib},
		{"started over: too many parts for the store", stores.Limits{MaxParts: 1}, false, 5 * mib},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			data, st := largeFile(t, dir, "model.bin", 4*mib+3)
			target := storetest.HostPath(t).OpenStore(t).Target("run/outputs/")

			// An earlier attempt, with 3 MiB parts, stopped after its first part.
			saved := stores.Progress{Key: "model.bin", Size: st.Size, ModTime: st.ModTime, Inode: st.Inode, PartSize: 3 * mib}
			stop := errors.New("killed")
			_, err := target.Resumable.Upload(ctx, bytes.NewReader(data), &saved, nil, 1, stores.JournalFunc(func(_ context.Context, p stores.Progress) error {
				if len(p.Parts) > 0 {
					return stop
				}
				saved = p
				return nil
			}))
			if !errors.Is(err, stop) || saved.ID == "" {
				t.Fatalf("first attempt: %v, progress %+v", err, saved)
			}
			saved.Parts = []stores.Part{{Number: 1, Size: 3 * mib}}

			log := &progressLog{}
			u := newUploader(target, smallParts(), Options{Checkpointer: log, Uploads: map[string]stores.Progress{"model.bin": saved}})
			u.limits = tt.limits
			if _, err := u.upload(ctx, filepath.Join(dir, "model.bin"), "model.bin", st, nil); err != nil {
				t.Fatal(err)
			}
			p := log.first()
			if resumed := p.ID == saved.ID; resumed != tt.resumed || p.PartSize != tt.partSize {
				t.Errorf("upload id %s (saved %s), part size %d MiB; want resumed=%v with %d MiB parts", p.ID, saved.ID, p.PartSize/mib, tt.resumed, tt.partSize/mib)
			}
			storeHolds(t, target, "model.bin", data)
		})
	}
}

// TestFileAboveTheStoresLargestFailsOnce checks that a file larger than the
// store takes fails with a message saying so, is not retried within a pass,
// and is logged at Warn once, not at every pass.
func TestFileAboveTheStoresLargestFailsOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "huge.bin", "0123456789ab")
	write(t, dir, "small.txt", "ok")
	var logs bytes.Buffer
	fixture := storetest.HostPath(t)
	target := fixture.OpenStore(t).Target("run/outputs/")
	s, err := New(testConfig(), dir, target, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s.up.limits = stores.Limits{MaxObjectSize: 10}
	for range 2 {
		if st := pass(t, s, true); st.Failed != 1 {
			t.Fatalf("stats = %+v, want huge.bin failed", st)
		}
	}
	tries := 0
	fi, err := os.Stat(filepath.Join(dir, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	err = retry(context.Background(), uploadAttempts, func() error {
		tries++
		_, err := s.up.upload(context.Background(), filepath.Join(dir, "huge.bin"), "huge.bin", stateOf(fi), nil)
		return err
	})
	if !errors.Is(err, stores.ErrTooLarge) || tries != 1 {
		t.Errorf("upload tried %d times, error %v; want once, ErrTooLarge", tries, err)
	}
	var warns, attempts int
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "huge.bin") {
			continue
		}
		attempts++
		if !strings.Contains(line, "larger than the store's maximum object size") {
			t.Errorf("log line does not say why: %s", line)
		}
		if strings.Contains(line, "level=WARN") {
			warns++
		}
	}
	if warns != 1 || attempts != 2 {
		t.Errorf("huge.bin logged %d times, %d at Warn; want twice (one per pass), once at Warn:\n%s", attempts, warns, logs.String())
	}
	if got := storetest.Objects(t, target.Bucket, ""); len(got) != 1 || string(got["small.txt"]) != "ok" {
		t.Errorf("store holds %v, want only small.txt", keys(got))
	}
}
