package main

import (
	"crypto/rand"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestCrashAndRestart kills the collector with SIGKILL at 20 random moments
// while it syncs 1,000 files and a 256 MiB file to S3, restarting it each
// time on the same state. At the end the store must mirror the folder byte
// for byte, and each kill may cost the big file at most what was in flight:
// the parts being sent, never the parts already completed.
func TestCrashAndRestart(t *testing.T) {
	const (
		kills       = 20
		smallFiles  = 1000
		bigSize     = 256 << 20
		partSize    = 5 << 20
		concurrency = 4
	)
	store, env, traffic, f := s3Store(t)
	// A slow link (8 MiB/s a request, 32 MiB/s with 4 parts in flight), so
	// that the kills land while the big file is on its way.
	traffic.BytesPerSecond.Store(8 << 20)
	work := t.TempDir()
	out, state := filepath.Join(work, "outputs"), filepath.Join(work, "state")
	big := make([]byte, bigSize)
	_, _ = rand.Read(big)
	writeFile(t, filepath.Join(out, "model/big.bin"), big)
	for i := range smallFiles {
		data := make([]byte, 1024+i%7*1024)
		_, _ = rand.Read(data)
		writeFile(t, filepath.Join(out, fmt.Sprintf("shard-%02d/file-%04d.bin", i%20, i)), data)
	}
	args := []string{"--store", store, "--run", "crash", "--outputs-path", out, "--state-dir", state,
		"--sync-interval", "0.2", "--settle", "0", "--part-size", "5MiB", "--part-concurrency", fmt.Sprint(concurrency)}

	seed := uint64(time.Now().UnixNano())
	rng := mathrand.New(mathrand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	for i := range kills {
		// The job goes on writing: each attempt has new files to sync.
		for j := range 20 {
			data := make([]byte, 512+rng.IntN(4096))
			_, _ = rand.Read(data)
			writeFile(t, filepath.Join(out, fmt.Sprintf("epoch-%02d/sample-%02d.bin", i, j)), data)
		}
		p := startBinary(t, fastBinary, work, env, args...)
		wait := time.Duration(300+rng.IntN(900)) * time.Millisecond
		time.Sleep(wait)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t, 10*time.Second)
		t.Logf("kill %d after %v: big file bytes sent so far %d MiB", i+1, wait, traffic.PutBytes("model/big.bin")>>20)
	}

	traffic.BytesPerSecond.Store(0)
	last := startBinary(t, fastBinary, work, env, args...)
	root := f.Open(t)
	want := storetest.Folder(t, out)
	waitFor(t, 120*time.Second, "everything in the store", func() bool {
		return storetest.Diff(want, storetest.Objects(t, root, "crash/outputs/")) == ""
	})
	if code := last.stop(t, 60*time.Second); code != 0 {
		t.Fatalf("last run exited %d:\n%s", code, last.stderr.String())
	}
	if diff := storetest.Diff(want, storetest.Objects(t, root, "crash/outputs/")); diff != "" {
		t.Fatalf("store does not mirror the folder after %d kills:\n%s", kills, diff)
	}

	sent := traffic.PutBytes("model/big.bin")
	resent := sent - bigSize
	limit := int64(kills) * concurrency * partSize
	t.Logf("big file: %d MiB sent for %d MiB, %d MiB re-sent over %d kills (%.1f MiB a kill; in flight at most %d MiB a kill)",
		sent>>20, bigSize>>20, resent>>20, kills, float64(resent)/float64(kills)/(1<<20), concurrency*partSize>>20)
	t.Logf("small files: %d uploads for %d files", traffic.Puts("/crash/outputs/shard-"), smallFiles)
	if resent > limit {
		t.Errorf("re-sent %d MiB of the big file, more than what can be in flight at %d kills (%d MiB)", resent>>20, kills, limit>>20)
	}
	if _, err := os.Stat(filepath.Join(state, "crash", "state.json")); err != nil {
		t.Errorf("no local state: %v", err)
	}
}
